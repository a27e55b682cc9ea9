/**
 * A Connect HTTP/1.1 Query that misses the cache while the site hangs ends with the server's
 * default deadline (`--deadline-ms`), or with the call's cancellation when shutdown's grace period ends,
 * exactly as through the normal handler: the fast path answers only hits, everything else goes
 * through the handler, its interceptors and its signals.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUERY, rawRequest, startE2E, type E2E } from "./e2e-helpers.ts";

const DEADLINE_MS = 300;
let e2e: E2E;

beforeAll(async () => {
  e2e = await startE2E({ site: { shots: 5, assets: 1 }, config: { deadlineMs: DEADLINE_MS, preloadTypes: ["Project"] } });
}, 20_000);

afterAll(async () => {
  e2e?.site.knobs.set({ latencyMs: 0 });
  await e2e?.close();
});

describe("fast path and the default deadline", () => {
  it("ends a Query miss against a hanging site with deadline_exceeded on time (JSON and proto POST, GET)", async () => {
    // The Shot schema is loaded first, so only the query itself waits on the site.
    const warm = await rawRequest(e2e.port, "POST", QUERY, JSON.stringify({ entityType: "Shot", limit: 1 }), { "content-type": "application/json" });
    expect(warm.status).toBe(200);
    e2e.site.knobs.set({ latencyMs: 5_000 });
    const shapes: Array<[string, string, string | Buffer | undefined, Record<string, string>]> = [
      ["POST", QUERY, JSON.stringify({ entityType: "Shot", filters: [["id", "is", 2]], fields: ["code"] }), { "content-type": "application/json" }],
      [
        "GET",
        `${QUERY}?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify({ entityType: "Shot", filters: [["id", "is", 3]] }))}`,
        undefined,
        {},
      ],
      // QueryRequest{entity_type: "Shot", limit: 2}, as connect-es encodes it.
      ["POST", QUERY, Buffer.from([0x0a, 0x04, 0x53, 0x68, 0x6f, 0x74, 0x28, 0x02]), { "content-type": "application/proto" }],
    ];
    for (const [method, path, body, headers] of shapes) {
      const started = performance.now();
      const answer = await rawRequest(e2e.port, method, path, body, headers);
      const ms = performance.now() - started;
      expect(answer.status, `${method} ${answer.body}`).toBe(504);
      expect(answer.json?.code).toBe("deadline_exceeded");
      expect(ms).toBeGreaterThanOrEqual(DEADLINE_MS - 20);
      expect(ms).toBeLessThan(DEADLINE_MS + 1_500);
    }
  }, 30_000);
});

describe("fast path and shutdown", () => {
  it("ends a Query miss against a hanging site when the grace period is over, as the normal handler does", async () => {
    const other = await startE2E({ site: { shots: 5, assets: 1 }, config: { deadlineMs: 20_000, preloadTypes: ["Project"] } });
    try {
      // Validation does not heed the shutdown signal: load what this query's validation needs first.
      const warm = await rawRequest(other.port, "POST", QUERY, JSON.stringify({ entityType: "Shot", filters: [["id", "is", 1]] }), {
        "content-type": "application/json",
      });
      expect(warm.status).toBe(200);
      other.site.knobs.set({ latencyMs: 5_000 });
      const started = performance.now();
      const pending = rawRequest(other.port, "POST", QUERY, JSON.stringify({ entityType: "Shot", filters: [["id", "is", 4]] }), {
        "content-type": "application/json",
      });
      await new Promise((r) => setTimeout(r, 100));
      const closing = other.service.close(300);
      const answer = await pending;
      // The normal handler's answer: its cache read heeds the call's signal, which shutdown aborts
      // (the service maps that abort to canceled).
      expect(answer.status, answer.body).toBe(499);
      expect(answer.json?.code).toBe("canceled");
      expect(performance.now() - started).toBeLessThan(2_000);
      await closing;
    } finally {
      other.site.knobs.set({ latencyMs: 0 });
      await other.site.close();
    }
  }, 30_000);
});
