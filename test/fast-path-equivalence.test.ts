/**
 * The GetEntity fast path answers byte for byte what the normal Connect handler answers: two
 * servers over the same cache, both built as the service builds its server, one with the fast
 * path and one without, get the same requests; status, headers (all but Date) and body bytes
 * must be identical, and so must the RPC metrics and log lines. Requests the fast path must not
 * answer (misses, errors, timeouts, compression) reach the normal handler with their body.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromJson, toBinary, type JsonObject } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { GetEntityRequestSchema } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { ReadThroughCache } from "../src/cache/index.ts";
import { Metrics } from "../src/server/index.ts";
import { SchemaRegistry } from "../src/service/schema-registry.ts";
import { countHandlerReads, exchange, startSide, type Exchange, type Side } from "./fast-path-sides.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";

const PATH = "/shotgrid.cache.v1.CacheService/GetEntity";
const SHOT_FIELDS = ["code", "description", "sg_status_list", "sg_sequence", "project", "sg_cut_in", "sg_cut_out"];


let site: SimulatorHandle;
let backend: ShotGridClient;
let clock = 1_700_000_000_000;
let unreachable: string | undefined;
let fast: Side;
let cache: ReadThroughCache;
/** The cache's own counters (hits), shared by both servers as the cache is. */
const cacheMetrics = new Metrics({ processMetrics: false });
let slow: Side;
/** Reads of the normal handlers (both sides share the cache). */
let reads: ReturnType<typeof countHandlerReads>;
/** The fast side's calls that reached the normal handler, counted by `same` and `send`. */
let fastHandlerCalls = 0;

async function side(fastPath: boolean, cache: ReadThroughCache, schema: SchemaRegistry): Promise<Side> {
  return startSide({ fastPath, cache, schema, unreachable: () => unreachable });
}

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
  const schema = new SchemaRegistry(backend);
  fast = await side(true, cache, schema);
  slow = await side(false, cache, schema);
  reads = countHandlerReads(cache);
});

afterAll(async () => {
  reads?.restore();
  await fast?.server.close(500);
  await slow?.server.close(500);
  await backend?.close();
  await site?.close();
});


type Shape = { method: string; path: string; body?: Buffer | string; headers?: Record<string, string> };

const jsonPost = (msg: JsonObject, headers: Record<string, string> = {}): Shape => ({
  method: "POST",
  path: PATH,
  body: JSON.stringify(msg),
  headers: { "content-type": "application/json", ...headers },
});
const jsonGet = (msg: JsonObject): Shape => ({ method: "GET", path: `${PATH}?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify(msg))}`, headers: {} });
const binary = (msg: JsonObject) => toBinary(GetEntityRequestSchema, fromJson(GetEntityRequestSchema, msg));
const protoPost = (msg: JsonObject): Shape => ({ method: "POST", path: PATH, body: Buffer.from(binary(msg)), headers: { "content-type": "application/proto" } });
const protoGet = (msg: JsonObject): Shape => ({
  method: "GET",
  path: `${PATH}?connect=v1&encoding=proto&base64=1&message=${encodeURIComponent(base64Encode(binary(msg), "url"))}`,
  headers: {},
});

/** Send `shape` to `s` (one at a time: the fast side's handler calls are counted). */
async function send(s: Side, shape: Shape): Promise<Exchange> {
  const before = reads.count;
  const answer = await exchange(s.port, shape.method, shape.path, shape.body, shape.headers);
  if (s === fast) fastHandlerCalls += reads.count - before;
  return answer;
}

/** Send `shape` to both servers; their answers must be identical. Returns the fast side's. */
async function same(shape: Shape): Promise<Exchange> {
  const a = await send(fast, shape);
  const b = await send(slow, shape);
  expect({ status: a.status, headers: a.headers }).toEqual({ status: b.status, headers: b.headers });
  expect(a.body.equals(b.body), `${shape.method} ${shape.path}\nfast: ${a.body.toString("latin1")}\nnormal: ${b.body.toString("latin1")}`).toBe(true);
  return a;
}

const metricValue = async (m: Metrics, name: string, labels: string) => {
  const text = await m.registry.metrics();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(" ").pop());
};

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
    const before = fastHandlerCalls;
    const readsBefore = reads.count;
    let ok = 0;
    for (const msg of requests) {
      for (const shape of [jsonPost(msg), jsonGet(msg), protoPost(msg), protoGet(msg)]) {
        const a = await same(shape);
        if (a.status === 200) ok++;
      }
    }
    // The sample is made of hits: every answer is a 200, none reached the fast side's handler.
    expect(ok).toBe(requests.length * 4);
    expect(fastHandlerCalls - before).toBe(0);
    expect(reads.count - readsBefore).toBe(requests.length * 4); // the normal side's, one per request
    // A content type connect accepts with a charset: a hit too.
    await same(jsonPost(requests[0]!, { "content-type": "application/json; charset=utf-8" }));
    expect(fastHandlerCalls - before).toBe(0);
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
      const [h0, r0, calls0] = [await hits(), await rpcs(s), reads.count];
      for (const msg of requests.slice(0, 3)) {
        const shape = jsonPost(msg);
        expect((await exchange(s.port, shape.method, shape.path, shape.body, shape.headers)).status).toBe(200);
      }
      expect(await hits()).toBe(h0 + 3);
      expect(await rpcs(s)).toBe(r0 + 3);
      // The same debug line per call as the normal path's interceptor writes.
      const lines = s.logs.slice(-3).map(({ component, rpc, code, msg, level }) => ({ component, rpc, code, msg, level }));
      expect(lines).toEqual(Array(3).fill({ component: "server", rpc: "shotgrid.cache.v1.CacheService/GetEntity", code: "ok", msg: "rpc", level: 20 }));
      expect(reads.count - calls0).toBe(s === fast ? 0 : 3);
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
      await exchange(slow.port, shape.method, shape.path, shape.body, shape.headers);
      const before = fastHandlerCalls;
      const a = await same(shape);
      // Each case is answered by the normal path on the fast side too (or refused before the handler).
      if (a.status === 200) expect(fastHandlerCalls - before).toBe(1);
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
    const before = fastHandlerCalls;
    const gz = await same(jsonPost(msg, { "accept-encoding": "gzip" }));
    expect(gz.headers).toContain("content-encoding: gzip");
    expect(fastHandlerCalls - before).toBe(1);
    // A small answer is never compressed: the fast path answers it whatever the client accepts.
    await same(jsonPost(requests[0]!, { "accept-encoding": "gzip" }));
    expect(fastHandlerCalls - before).toBe(1);
  });
});
