/**
 * `/metrics` with `serve --workers 2 --redis` (the real command, a child process) answers for the
 * whole pool whichever worker a scrape reaches: counters of requests served by both workers add
 * up in one scrape, gauges keep one series per worker (`worker` label). And every metric the
 * Grafana dashboard (docs/grafana-dashboard.json) queries is in that scrape.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { GET_ENTITY, pollUntil, postJson, rawRequest } from "./e2e-helpers.ts";
import { TestRedisServer, randomPrefix } from "./support/redis-server.ts";

const BIN = new URL("../bin/shotgrid-cache.mjs", import.meta.url).pathname;
const DASHBOARD = new URL("../docs/grafana-dashboard.json", import.meta.url);

/** The value of `name{labels…}` series in a scrape, summed; undefined when there is none. */
function seriesSum(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of text.split("\n")) {
    const m = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name || !Object.entries(labels).every(([k, v]) => (m[2] ?? "").includes(`${k}="${v}"`))) continue;
    sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}

describe("serve --workers 2: /metrics answers for the pool", () => {
  let redis: TestRedisServer;
  let site: SimulatorHandle;
  let child: ChildProcess | undefined;
  let port = 0;
  const workerPids: number[] = [];
  let stderr = "";

  beforeAll(async () => {
    redis = await TestRedisServer.start();
    site = await startSimulator({ shots: 12, assets: 4 });
    child = spawn(
      process.execPath,
      [
        BIN,
        ...["serve", "--workers", "2", "--redis", redis.url, "--redis-prefix", randomPrefix(), "--site", site.url],
        ...["--script-name", site.scriptName, "--script-key", DEFAULT_SCRIPT_KEY, "--port", "0", "--host", "127.0.0.1"],
        ...["--preload", "Project", "--state-dir", "", "--poll-interval-ms", "200"],
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const listening: { pid: number; port: number }[] = [];
    createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        const log = JSON.parse(line) as Record<string, unknown>;
        if (log["msg"] === "worker listening") listening.push({ pid: Number(log["pid"]), port: Number(log["port"]) });
      } catch {
        // not a log line
      }
    });
    await pollUntil(
      async () => listening.length,
      (n) => n >= 2,
      30_000,
      50,
    );
    if (listening.length < 2) throw new Error(`the pool did not start: ${stderr}`);
    port = listening[0]!.port;
    workerPids.push(...listening.map((l) => l.pid));
    // Both ready (the primary hands each new connection to the next worker).
    const ready = await pollUntil(
      async () => Promise.all([0, 1, 2, 3].map(() => rawRequest(port, "GET", "/readyz").then((r) => r.status))),
      (codes) => codes.every((c) => c === 200),
      30_000,
      100,
    );
    expect(ready).toEqual([200, 200, 200, 200]);
  }, 90_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once("exit", resolve));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    for (const pid of workerPids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await site?.close();
    await redis?.stop();
  }, 30_000);

  it("counters from requests served by both workers add up in one scrape; gauges carry the worker", { timeout: 60_000 }, async () => {
    const shot = [...site.store.records("Shot")][0]!;
    // Each call is a new connection: the primary spreads them over both workers.
    const calls = 20;
    for (let i = 0; i < calls; i++) {
      expect((await postJson(port, GET_ENTITY, { entityType: "Shot", id: shot.id, fields: ["code"] })).status).toBe(200);
    }
    // Each worker's own count (its /status.json is its own view): both served some, and together all.
    const local = new Map<number, number>();
    await pollUntil(
      async () => {
        const status = (await rawRequest(port, "GET", "/status.json")).json as { pid: number; requests: { byMethod: { method: string; total: number }[] } };
        local.set(status.pid, status.requests.byMethod.find((m) => m.method.endsWith("/GetEntity"))?.total ?? 0);
        return local.size;
      },
      (n) => n >= 2,
      10_000,
      20,
    );
    expect(local.size).toBe(2);
    expect([...local.values()].every((n) => n > 0 && n < calls)).toBe(true);
    expect([...local.values()].reduce((a, b) => a + b)).toBe(calls);
    const getEntity = { method: "shotgrid.cache.v1.CacheService/GetEntity" };
    // Several scrapes, so both workers answer some: each tells the pool's total.
    for (let i = 0; i < 4; i++) {
      const text = (await rawRequest(port, "GET", "/metrics")).body;
      expect(seriesSum(text, "shotgrid_cache_rpc_total", { ...getEntity, code: "ok" })).toBe(calls);
      expect(seriesSum(text, "shotgrid_cache_rpc_requests_total", { ...getEntity, protocol: "connect" })).toBe(calls);
      expect(seriesSum(text, "shotgrid_cache_rpc_duration_seconds_count", getEntity)).toBe(calls);
      expect(seriesSum(text, "shotgrid_cache_pool_workers_reporting")).toBe(2);
      for (const w of ["1", "2"]) expect(seriesSum(text, "shotgrid_cache_process_resident_memory_bytes", { worker: w })).toBeGreaterThan(0);
      // One leader in the pool, seen as one series per worker.
      expect(seriesSum(text, "shotgrid_cache_cluster_leader")).toBe(1);
      // One line per series: no name/label set twice (the exposition would be invalid).
      const series = text
        .split("\n")
        .filter((l) => l && !l.startsWith("#"))
        .map((l) => l.slice(0, l.lastIndexOf(" ")));
      expect(new Set(series).size).toBe(series.length);
    }
  });

  it("every metric the Grafana dashboard queries is in the scrape", async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    expect(exprs.length).toBeGreaterThan(20);
    const names = new Set(exprs.flatMap((e) => e.match(/shotgrid_cache_[a-z0-9_]+/g) ?? []));
    const text = (await rawRequest(port, "GET", "/metrics")).body;
    // A sample line, or a declared metric with no series yet (a labelled counter before its first event).
    const exported = new Set(text.split("\n").flatMap((l) => (l.startsWith("#") || !l ? [] : [/^[a-z_:0-9]+/.exec(l)![0]])));
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      exported.add(name!);
      if (type === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) exported.add(name! + suffix);
    }
    const missing = [...names].filter((n) => !exported.has(n));
    expect(missing).toEqual([]);
  });
});
