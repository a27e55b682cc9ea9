/**
 * The plain routes (/healthz, /readyz, /metrics), the Metrics class, and per-call limits
 * (default deadline, maximum deadline).
 */
import http from "node:http";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { CacheService } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { createRequestHandler, Metrics, type Readiness, type Server } from "../src/server/index.ts";
import type { CacheMetrics } from "../src/cache/observability.ts";
import type { FollowerMetrics } from "../src/events/event-follower.ts";
import { SHOT_ID, SLOW_ID, startTestServer, testService } from "./server-test-service.ts";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close(1000)));
});

async function start(options: Parameters<typeof startTestServer>[0] = {}) {
  const started = await startTestServer({ metrics: new Metrics({ processMetrics: false }), ...options });
  servers.push(started.server);
  return started;
}

async function getJson(url: string, method = "GET") {
  const res = await fetch(url, { method });
  return { status: res.status, type: res.headers.get("content-type"), body: method === "HEAD" ? await res.text() : await res.json() };
}

describe("/healthz", () => {
  it("reports status, version, mode and uptime", async () => {
    const { url } = await start({ mode: "site", version: "1.2.3" });
    const res = await getJson(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({ status: "ok", version: "1.2.3", mode: "site" });
    expect(typeof res.body.uptimeSeconds).toBe("number");
  });

  it("answers HEAD with headers only, and other methods fall through to the 404", async () => {
    const { url } = await start();
    const head = await getJson(`${url}/healthz`, "HEAD");
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    const post = await fetch(`${url}/healthz`, { method: "POST" });
    expect(post.status).toBe(404);
  });
});

describe("/readyz", () => {
  it("follows the readiness function: 503 with reasons, then 200", async () => {
    let report: Readiness = { ready: false, reasons: ["preload of Shot in progress", "event follower not started"] };
    const { url } = await start({ readiness: () => report });
    const before = await getJson(`${url}/readyz`);
    expect(before.status).toBe(503);
    expect(before.body).toEqual({ status: "not_ready", reasons: ["preload of Shot in progress", "event follower not started"] });
    report = { ready: true };
    const after = await getJson(`${url}/readyz`);
    expect(after.status).toBe(200);
    expect(after.body).toEqual({ status: "ready" });
  });

  it("counts a failing readiness check as not ready, naming the failure", async () => {
    const { url } = await start({
      readiness: async () => {
        throw new Error("redis unreachable");
      },
    });
    const res = await getJson(`${url}/readyz`);
    expect(res.status).toBe(503);
    expect(res.body.reasons).toEqual(["readiness check failed: redis unreachable"]);
  });

  it("answers 503 while the server drains", async () => {
    let draining = false;
    const handler = createRequestHandler({
      version: "t",
      mode: "demo",
      routes: (router) => router.service(CacheService, testService().impl),
      isDraining: () => draining,
    });
    const plain = http.createServer(handler);
    await new Promise<void>((r) => plain.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(plain.address() as { port: number }).port}`;
      expect((await getJson(`${url}/readyz`)).status).toBe(200);
      draining = true;
      const res = await getJson(`${url}/readyz`);
      expect(res.status).toBe(503);
      expect(res.body.reasons).toEqual(["server is shutting down"]);
    } finally {
      plain.closeAllConnections();
      await new Promise((r) => plain.close(r));
    }
  });
});

describe("/metrics", () => {
  it("serves Prometheus text with RPC counts by method and code, and open streams", async () => {
    const { url, server } = await start();
    const client = createClient(CacheService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
    await client.getEntity({ entityType: "Shot", id: SHOT_ID });
    await client.getEntity({ entityType: "Shot", id: SHOT_ID });
    await client.getEntity({ entityType: "Shot", id: 3 }).catch(() => undefined);
    const watching = new AbortController();
    const stream = client.watchChanges({}, { signal: watching.signal })[Symbol.asyncIterator]();
    await stream.next();

    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toContain('shotgrid_cache_rpc_total{method="shotgrid.cache.v1.CacheService/GetEntity",code="ok"} 2');
    expect(text).toContain('shotgrid_cache_rpc_total{method="shotgrid.cache.v1.CacheService/GetEntity",code="not_found"} 1');
    expect(text).toMatch(/shotgrid_cache_rpc_duration_seconds_count\{method="shotgrid.cache.v1.CacheService\/GetEntity",code="ok"\} 2/);
    expect(text).toContain("shotgrid_cache_open_streams 1");

    watching.abort();
    // The stream's end is recorded once the server sees the client go.
    await expect.poll(async () => (await server.metrics.text()).includes("shotgrid_cache_open_streams 0")).toBe(true);
  });

  it("satisfies the cache's and the follower's metrics interfaces", () => {
    const metrics = new Metrics({ processMetrics: false });
    const forCache: CacheMetrics = metrics;
    const forFollower: FollowerMetrics = metrics;
    expect(forCache).toBe(forFollower);
  });

  it("reports what the other modules record through the typed methods", async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.cacheHit("entity");
    metrics.cacheHit("entity");
    metrics.cacheMiss("query");
    metrics.coalescedWait();
    metrics.upstreamCall("find", "ok", 0.2);
    metrics.upstreamCall("find", "error", 1.5);
    metrics.observeCacheSize(() => ({ bytes: 2048, entries: 3 }));
    metrics.cacheStaleServed("entity");
    metrics.lastEventId(12345);
    metrics.lagSeconds(2.5);
    metrics.poll();
    metrics.pollError();
    metrics.eventsApplied(7);
    metrics.gapsDetected(2);
    metrics.gapsGivenUp(1);
    const text = await metrics.text();
    expect(text).toContain('shotgrid_cache_hits_total{kind="entity"} 2');
    expect(text).toContain('shotgrid_cache_hits_total{kind="query"} 0');
    expect(text).toContain('shotgrid_cache_misses_total{kind="query"} 1');
    expect(text).toContain("shotgrid_cache_coalesced_waits_total 1");
    expect(text).toContain('shotgrid_cache_upstream_requests_total{operation="find",outcome="error"} 1');
    expect(text).toContain('shotgrid_cache_upstream_duration_seconds_bucket{le="0.25",operation="find",outcome="ok"} 1');
    expect(text).toContain("shotgrid_cache_cache_bytes 2048");
    expect(text).toContain("shotgrid_cache_cache_entries 3");
    expect(text).toContain("shotgrid_cache_last_event_id 12345");
    expect(text).toContain("shotgrid_cache_event_lag_seconds 2.5");
    expect(text).toContain('shotgrid_cache_stale_served_total{kind="entity"} 1');
    expect(text).toContain("shotgrid_cache_event_polls_total 1");
    expect(text).toContain("shotgrid_cache_event_poll_errors_total 1");
    expect(text).toContain("shotgrid_cache_events_applied_total 7");
    expect(text).toContain("shotgrid_cache_event_gaps_detected_total 2");
    expect(text).toContain("shotgrid_cache_event_gaps_given_up_total 1");
  });

  it("keeps each server's metrics apart", async () => {
    const a = await start();
    const b = await start();
    await createClient(CacheService, createConnectTransport({ baseUrl: a.url, httpVersion: "1.1" })).getEntity({ entityType: "Shot", id: SHOT_ID });
    expect(await a.server.metrics.text()).toContain('code="ok"} 1');
    expect(await b.server.metrics.text()).not.toContain("GetEntity");
  });
});

describe("deadlines", () => {
  it("gives unary calls without a deadline the server's default", async () => {
    const { url, controls } = await start({ limits: { defaultTimeoutMs: 50 } });
    const client = createClient(CacheService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
    const err = await client.getEntity({ entityType: "Shot", id: SLOW_ID }).catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.DeadlineExceeded);
    expect((err as ConnectError).rawMessage).toContain("default deadline of 50 ms");
    controls.release();
    // A fast call is unaffected.
    expect((await client.getEntity({ entityType: "Shot", id: SHOT_ID })).entity?.id).toBe(SHOT_ID);
  });

  it("rejects a client deadline above the maximum with invalid_argument", async () => {
    const { url } = await start({ limits: { maxTimeoutMs: 1000 } });
    const client = createClient(CacheService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
    const err = await client.getEntity({ entityType: "Shot", id: SHOT_ID }, { timeoutMs: 60_000 }).catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
  });
});
