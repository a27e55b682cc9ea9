/**
 * Health, readiness and metrics of the whole service: /readyz says why it is not ready while a
 * slow site is still being preloaded, then 200; /healthz says which mode; /metrics counts hits,
 * misses, upstream calls and open streams.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { startService } from "../src/app/create-app.ts";
import { startSimulator } from "../src/simulator/index.ts";
import { GET_ENTITY, metricSum, pollUntil, postJson, rawRequest, startE2E, testConfig, watch, type E2E } from "./e2e-helpers.ts";

let e2e: E2E;
let readyzBefore: Awaited<ReturnType<typeof rawRequest>>;
beforeAll(async () => {
  // Every site answer takes 60 ms, so the preload (token, event head, five types, …) takes a while.
  e2e = await startE2E({ site: { knobs: { latencyMs: 60 } }, waitReady: false });
  readyzBefore = await rawRequest(e2e.port, "GET", "/readyz");
  await e2e.service.ready;
  e2e.site.knobs.set({ latencyMs: 0 });
});
afterAll(() => e2e?.close());

describe("readiness", () => {
  it("answers 503 with the reason before the preload is done, and 200 after", async () => {
    expect(readyzBefore.status).toBe(503);
    expect(readyzBefore.json.status).toBe("not_ready");
    expect(readyzBefore.json.reasons.join("; ")).toMatch(/preload/);
    const after = await rawRequest(e2e.port, "GET", "/readyz");
    expect(after.status).toBe(200);
    expect(after.json.status).toBe("ready");
  });

  it("reports site mode in /healthz when following a configured site", async () => {
    const health = await rawRequest(e2e.port, "GET", "/healthz");
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ status: "ok", mode: "site" });
  });
});

describe("metrics", () => {
  it("count hits, misses and upstream calls", async () => {
    const hitsBefore = await metricSum(e2e.port, "shotgrid_cache_hits_total");
    const missesBefore = await metricSum(e2e.port, "shotgrid_cache_misses_total");
    const upstreamBefore = await metricSum(e2e.port, "shotgrid_cache_upstream_requests_total");
    expect(upstreamBefore).toBeGreaterThan(0); // the preload

    await postJson(e2e.port, GET_ENTITY, { entityType: "Shot", id: 1, fields: ["code"] }); // preloaded: a hit
    await postJson(e2e.port, GET_ENTITY, { entityType: "Version", id: 1, fields: ["code"] }); // a miss, fetched
    await postJson(e2e.port, GET_ENTITY, { entityType: "Version", id: 1, fields: ["code"] }); // now a hit

    expect(await metricSum(e2e.port, "shotgrid_cache_hits_total")).toBe(hitsBefore + 2);
    expect(await metricSum(e2e.port, "shotgrid_cache_misses_total")).toBe(missesBefore + 1);
    expect(await metricSum(e2e.port, "shotgrid_cache_upstream_requests_total")).toBeGreaterThan(upstreamBefore);
    expect(await metricSum(e2e.port, "shotgrid_cache_rpc_total", { method: "shotgrid.cache.v1.CacheService/GetEntity", code: "ok" })).toBeGreaterThanOrEqual(3);
    expect(await metricSum(e2e.port, "shotgrid_cache_cache_entries")).toBeGreaterThan(0);
  });

  it("show open WatchChanges streams", async () => {
    const streams = [watch(e2e.url, {}), watch(e2e.url, { entityTypes: ["Shot"] }, "grpc")];
    try {
      await Promise.all(streams.map((s) => s.waitFor(() => true)));
      expect(await metricSum(e2e.port, "shotgrid_cache_open_streams")).toBe(2);
    } finally {
      for (const s of streams) s.close();
    }
    const closed = await pollUntil(
      () => metricSum(e2e.port, "shotgrid_cache_open_streams"),
      (n) => n === 0,
    );
    expect(closed).toBe(0);
  });
});

describe("a site that cannot be reached", () => {
  it("keeps /readyz at 503 saying why, and closes without hanging", async () => {
    const gone = await startSimulator();
    const url = gone.url;
    await gone.close();
    const service = await startService(testConfig({ site: { url, scriptName: "s", scriptKey: "k" }, upstreamRetryMs: 0 }), pino({ level: "silent" }));
    try {
      const readyz = await pollUntil(
        () => rawRequest(service.port, "GET", "/readyz"),
        (r) => /preload failed/.test(r.json?.reasons?.join(" ") ?? ""),
      );
      expect(readyz.status).toBe(503);
      expect(readyz.json.reasons.join(" ")).toMatch(/preload failed, retrying: .*(unavailable|connect|refused)/i);
      expect(JSON.stringify(readyz.json)).not.toContain('"k"');
    } finally {
      await service.close(500);
    }
    await expect(service.ready).rejects.toBeDefined();
  });
});
