/**
 * The service under test in its own process: `start` builds the configuration the `serve`
 * command would (flags as given) and runs startService; `usage` reports CPU time and memory of
 * this process (after a full GC when run with --expose-gc); `dropCache` empties the cache so the
 * heap it held can be measured; `close` stops it gracefully.
 */
import { pino } from "pino";
import { startService, type RunningService } from "../src/app/create-app.ts";
import { loadServeConfig } from "../src/config.ts";
import { serveParent } from "./lib/ipc.ts";

let service: RunningService | undefined;
let cpuMark = process.cpuUsage();
let cpuMarkAt = performance.now();

function gc(): boolean {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) return false;
  // Twice: the first pass can leave weakly held garbage for the second.
  g();
  g();
  return true;
}

function memory() {
  const collected = gc();
  const m = process.memoryUsage();
  return { collected, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss };
}

serveParent({
  async start(arg: { argv: string[] }) {
    const { help: _help, ...config } = loadServeConfig(arg.argv, {});
    const before = memory();
    const began = performance.now();
    service = await startService(config, pino({ level: config.logLevel }));
    await service.ready;
    const readyMs = performance.now() - began;
    return { url: service.url, port: service.port, readyMs, memoryBefore: before, cache: service.cache.store.stats() };
  },
  /** Mark the start of a CPU measurement window. */
  cpuMark() {
    cpuMark = process.cpuUsage();
    cpuMarkAt = performance.now();
  },
  /** CPU time since `cpuMark`, as a share of one core over the wall time. */
  cpuSince() {
    const d = process.cpuUsage(cpuMark);
    const wallMs = performance.now() - cpuMarkAt;
    return { userMs: d.user / 1000, systemMs: d.system / 1000, wallMs, coreShare: (d.user + d.system) / 1000 / wallMs };
  },
  memory() {
    return { ...memory(), cache: service?.cache.store.stats() };
  },
  async dropCache() {
    await service?.cache.invalidateAll();
    return { ...memory(), cache: service?.cache.store.stats() };
  },
  async close() {
    await service?.close(2000);
    service = undefined;
  },
});
