/**
 * A Connect HTTP/1.1 Query that misses the cache while the site hangs ends with the server's
 * default deadline (`--deadline-ms`), exactly as through the normal handler: the fast path
 * answers only hits, everything else goes through the handler and its interceptors.
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
      ["GET", `${QUERY}?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify({ entityType: "Shot", filters: [["id", "is", 3]] }))}`, undefined, {}],
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
