/**
 * The GetEntity fast path answers byte for byte what the normal Connect handler answers: two
 * servers over the same cache, both built as the service builds its server, one with the fast
 * path and one without, get the same requests; status, headers (all but Date) and body bytes
 * must be identical, and so must the RPC metrics and log lines. Requests the fast path must not
 * answer (misses, errors, timeouts, compression) reach the normal handler with their body.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonObject } from "@bufbuild/protobuf";
import { GetEntityRequestSchema } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { ReadThroughCache } from "../src/cache/index.ts";
import { Metrics } from "../src/server/index.ts";
import { SchemaRegistry } from "../src/service/schema-registry.ts";
import { metricValue, shapesOf, startPair, type Exchange, type Pair, type Shape, type Side } from "./fast-path-sides.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";

const PATH = "/shotgrid.cache.v1.CacheService/GetEntity";
const SHOT_FIELDS = ["code", "description", "sg_status_list", "sg_sequence", "project", "sg_cut_in", "sg_cut_out"];
const { jsonPost, jsonGet, protoPost, protoGet } = shapesOf(GetEntityRequestSchema, PATH);

let site: SimulatorHandle;
let backend: ShotGridClient;
let clock = 1_700_000_000_000;
let unreachable: string | undefined;
let cache: ReadThroughCache;
/** The cache's own counters (hits), shared by both servers as the cache is. */
const cacheMetrics = new Metrics({ processMetrics: false });
let pair: Pair;
let fast: Side;
let slow: Side;
const same = (shape: Shape): Promise<Exchange> => pair.same(shape);

beforeAll(async () => {
  site = await startSimulator({ shots: 12, assets: 2 });
  // Values a hand-written encoder gets wrong: non-ASCII text, emoji, quotes, nulls, a link.
  site.store.update("Shot", 2, { description: 'Plan séquence — "dernière" prise 🎬\n日本語', sg_cut_in: null }, { user: site.scriptUser });
  site.store.update("Shot", 3, { code: "SH\u00e9_003", description: null }, { user: site.scriptUser });
  site.store.update("Shot", 5, { description: "long ".repeat(300) }, { user: site.scriptUser });
  backend = new ShotGridClient({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY });
  // A pinned clock with a fraction, so ageMs (rounded) is the same on both sides and not 0.
  cache = new ReadThroughCache({ backend, preloadTypes: ["Project", "Sequence", "Shot"], now: () => clock, metrics: cacheMetrics });
  cache.startFrom(5_000_000_123); // an event id past 32 bits
  await cache.preload();
  clock += 1234.6;
  pair = await startPair({ cache, schema: new SchemaRegistry(backend), unreachable: () => unreachable });
  ({ fast, slow } = pair);
});

afterAll(async () => {
  await pair?.close();
  await backend?.close();
  await site?.close();
});

describe("GetEntity fast path", () => {
  const requests: JsonObject[] = [
    { entityType: "Shot", id: 1, fields: SHOT_FIELDS },
    { entityType: "Shot", id: 2, fields: SHOT_FIELDS },
    { entityType: "Shot", id: 3, fields: ["description", "code", "code", "id", "type"] },
    { entityType: "Shot", id: 4 },
    { entityType: "Shot", id: 2, fields: [] },
    { entityType: "Sequence", id: 1, fields: ["code", "project"] },
    { entityType: "Project", id: 1, fields: ["name", "sg_status"] },
  ];

  it("answers hits from its own path, identical to the normal handler, in every encoding", async () => {
    // The first request of a type loads its schema (asynchronously): that one takes the normal path.
    for (const msg of requests) await same(jsonPost(msg));
    const before = pair.fastHandlerCalls;
    const readsBefore = pair.reads.count;
    let ok = 0;
    for (const msg of requests) {
      for (const shape of [jsonPost(msg), jsonGet(msg), protoPost(msg), protoGet(msg)]) {
        const a = await same(shape);
        if (a.status === 200) ok++;
      }
    }
    // The sample is made of hits: every answer is a 200, none reached the fast side's handler.
    expect(ok).toBe(requests.length * 4);
    expect(pair.fastHandlerCalls - before).toBe(0);
    expect(pair.reads.count - readsBefore).toBe(requests.length * 4); // the normal side's, one per request
    // A content type connect accepts with a charset: a hit too.
    await same(jsonPost(requests[0]!, { "content-type": "application/json; charset=utf-8" }));
    expect(pair.fastHandlerCalls - before).toBe(0);
    // Asked twice: the second answer comes from the kept encoding and must still be the same.
    await same(jsonPost(requests[1]!));
    await same(protoGet(requests[1]!));
    const body = JSON.parse((await same(jsonPost(requests[1]!))).body.toString("utf8"));
    expect(body.entity.fields.description).toContain("🎬");
    expect(body.freshness).toEqual({ source: "cache", ageMs: "1235", asOfEventId: "5000000123", stale: false });
  });

  it("answers from the new record once the held one changes (kept encodings are per record text)", async () => {
    const msg = { entityType: "Shot", id: 1, fields: ["code", "sg_sequence"] };
    const before = JSON.parse((await same(jsonPost(msg))).body.toString("utf8"));
    await same(protoPost(msg));
    const link = before.entity.fields.sg_sequence as { type: string; id: number };
    // A renamed sequence: the held shot is patched in place (a new text), as an event would do.
    expect(await cache.store.patchLinkName(`${link.type}:${link.id}`, "Renamed ✓")).toBeGreaterThan(0);
    const after = JSON.parse((await same(jsonPost(msg))).body.toString("utf8"));
    expect(after.entity.fields.sg_sequence.name).toBe("Renamed ✓");
    await same(protoPost(msg));
    await same(jsonGet(msg));
  });

  it("counts hits and RPCs as the normal path does", async () => {
    const hits = () => metricValue(cacheMetrics, "shotgrid_cache_hits_total", 'kind="entity"');
    const rpcs = (s: Side) => metricValue(s.metrics, "shotgrid_cache_rpc_total", 'method="shotgrid.cache.v1.CacheService/GetEntity",code="ok"');
    for (const s of [fast, slow]) {
      const [h0, r0, calls0] = [await hits(), await rpcs(s), pair.reads.count];
      for (const msg of requests.slice(0, 3)) {
        const shape = jsonPost(msg);
        expect((await pair.send(s, shape)).status).toBe(200);
      }
      expect(await hits()).toBe(h0 + 3);
      expect(await rpcs(s)).toBe(r0 + 3);
      // The same debug line per call as the normal path's interceptor writes.
      const lines = s.logs.slice(-3).map(({ component, rpc, code, msg, level }) => ({ component, rpc, code, msg, level }));
      expect(lines).toEqual(Array(3).fill({ component: "server", rpc: "shotgrid.cache.v1.CacheService/GetEntity", code: "ok", msg: "rpc", level: 20 }));
      expect(pair.reads.count - calls0).toBe(s === fast ? 0 : 3);
    }
  });

  it("marks answers stale while the site is unreachable, as the normal path does", async () => {
    unreachable = "event log poll failed";
    try {
      for (const shape of [jsonPost(requests[0]!), protoPost(requests[0]!)]) await same(shape);
      const body = JSON.parse((await same(jsonGet(requests[0]!))).body.toString("utf8"));
      expect(body.freshness.stale).toBe(true);
    } finally {
      unreachable = undefined;
    }
  });

  it("hands everything that is not a plain hit to the normal handler, body intact", async () => {
    const cases: Shape[] = [
      jsonPost({ entityType: "Shot", id: 999_999, fields: ["code"] }), // does not exist
      jsonPost({ entityType: "Shot", id: 1, fields: ["no_such_field"] }),
      jsonPost({ entityType: "Shot", id: 1, feilds: ["code"] }), // unknown key
      jsonPost({ entityType: "Nope", id: 1 }),
      jsonPost({ entityType: "Shot", id: -3 }),
      jsonPost({ entityType: "Shot", id: 1, fields: ["sg_sequence.Sequence.code"] }), // a projection: fetched upstream
      jsonPost({ entityType: "Shot", id: 1, fields: SHOT_FIELDS }, { "connect-timeout-ms": "5000" }),
      { method: "POST", path: PATH, body: "{not json", headers: { "content-type": "application/json" } },
      { method: "POST", path: PATH, body: Buffer.from([0xff, 0xff, 0xff]), headers: { "content-type": "application/proto" } },
      { method: "GET", path: `${PATH}?connect=v1&encoding=xml&message=%7B%7D`, headers: {} },
      { method: "PUT", path: PATH, body: "{}", headers: { "content-type": "application/json" } },
    ];
    for (const shape of cases) {
      // Once to the normal side first: a fetched projection is then cached for both.
      await pair.send(slow, shape);
      const before = pair.fastHandlerCalls;
      const a = await same(shape);
      // Each case is answered by the normal path on the fast side too (or refused before the handler).
      if (a.status === 200) expect(pair.fastHandlerCalls - before).toBe(1);
    }
    const missing = await same(cases[0]!);
    expect(missing.status).toBe(404);
    const badField = JSON.parse((await same(cases[1]!)).body.toString("utf8"));
    expect(badField.code).toBe("invalid_argument");
  });

  it("leaves answers the normal path would compress to it", async () => {
    // A long description: over connect-es's 1 KiB compression threshold.
    const msg = { entityType: "Shot", id: 5, fields: ["code", "description"] };
    const plain = await same(jsonPost(msg));
    expect(plain.body.length).toBeGreaterThan(1024);
    const before = pair.fastHandlerCalls;
    const gz = await same(jsonPost(msg, { "accept-encoding": "gzip" }));
    expect(gz.headers).toContain("content-encoding: gzip");
    expect(pair.fastHandlerCalls - before).toBe(1);
    // A small answer is never compressed: the fast path answers it whatever the client accepts.
    await same(jsonPost(requests[0]!, { "accept-encoding": "gzip" }));
    expect(pair.fastHandlerCalls - before).toBe(1);
  });
});
