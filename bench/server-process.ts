/**
 * The service under test in its own process: `start` builds the configuration the `serve`
 * command would (flags as given) and runs startService; `usage` reports CPU time and memory of
 * this process (after a full GC when run with --expose-gc); `dropCache` empties the cache so the
 * heap it held can be measured; `gcPauses` says which of its garbage collections (each a pause of
 * its event loop) fell in a measured span; `close` stops it gracefully.
 */
import { constants, PerformanceObserver } from "node:perf_hooks";
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

/** This process's garbage collections (the latest ones), each a pause of its event loop, placed on the wall clock. */
const collections: Array<{ atMs: number; ms: number; kind: string }> = [];
const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: "young",
  [constants.NODE_PERFORMANCE_GC_MAJOR]: "full",
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental marking",
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weak callbacks",
};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    collections.push({ atMs: performance.timeOrigin + e.startTime, ms: e.duration, kind: GC_KINDS[kind ?? -1] ?? "other" });
  }
  if (collections.length > 10_000) collections.splice(0, collections.length - 10_000);
}).observe({ entryTypes: ["gc"] });

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
  /** The collections that overlapped a wall-clock span (a load generator's `window`): count, total and longest pause. */
  gcPauses(arg: { fromMs: number; toMs: number }) {
    const within = collections.filter((c) => c.atMs < arg.toMs && c.atMs + c.ms > arg.fromMs);
    return {
      count: within.length,
      totalMs: within.reduce((sum, c) => sum + c.ms, 0),
      longestMs: within.reduce((most, c) => Math.max(most, c.ms), 0),
      kinds: [...new Set(within.map((c) => c.kind))],
    };
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
