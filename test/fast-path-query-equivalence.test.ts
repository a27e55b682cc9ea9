/**
 * The Query fast path answers byte for byte what the normal Connect handler answers: two servers
 * over the same cache, both built as the service builds its server, one with the fast path and
 * one without, get the same requests; status, headers (all but Date) and body bytes must be
 * identical. Only repeated hits are answered on the fast path; misses (coalesced on one flight,
 * held open by a gate in front of the real client), validation errors and an upstream failure go
 * to the normal handler on both sides. In Connect JSON and binary, POST and GET, with filters in
 * both forms, order, limit and page, stale and not; and over HTTP/2 in gRPC (binary, JSON) and
 * Connect (trailers compared too); and gRPC-web over HTTP/1.1 (binary, JSON; its trailer frame).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonObject } from "@bufbuild/protobuf";
import { QueryRequestSchema } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { ReadThroughCache } from "../src/cache/index.ts";
import { Metrics } from "../src/server/index.ts";
import { SchemaRegistry } from "../src/service/schema-registry.ts";
import { expectSame, metricValue, shapesOf, startPair, type Exchange, type Pair, type Shape, type Side, grpcWebTrailerOf } from "./fast-path-sides.ts";
import { BackendError } from "../src/shotgrid/errors.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import type { Backend } from "../src/shotgrid/types.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";

const PATH = "/shotgrid.cache.v1.CacheService/Query";
const { jsonPost, jsonGet, protoPost, protoGet, grpc, grpcWeb, allGrpcWeb, h2, all: shapes, allH2 } = shapesOf(QueryRequestSchema, PATH);

let site: SimulatorHandle;
let client: ShotGridClient;
let clock = 1_700_000_000_000;
let unreachable: string | undefined;
let cache: ReadThroughCache;
let pair: Pair;
let fast: Side;
let slow: Side;
const send = (s: Side, shape: Shape): Promise<Exchange> => pair.send(s, shape);
const same = (shape: Shape): Promise<Exchange> => pair.same(shape);
const cacheMetrics = new Metrics({ processMetrics: false });
/** Upstream searches made (through the gate). */
let searches = 0;
/** While set, searches wait for it; `fail` makes the next searches fail as an unreachable site would. */
let gate: Promise<void> | undefined;
let fail = false;

/** The real client, with its searches counted and, while `gate` is set, held. */
function gatedBackend(real: ShotGridClient): Backend {
  return new Proxy(real, {
    get(target, prop) {
      if (prop === "search") {
        return async (...args: Parameters<Backend["search"]>) => {
          searches++;
          if (gate) await gate;
          if (fail) throw new BackendError("SG_UNAVAILABLE", "the site did not answer (test)");
          return target.search(...args);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

beforeAll(async () => {
  site = await startSimulator({ shots: 30, assets: 2 });
  site.store.update("Shot", 2, { description: 'Plan séquence — "dernière" prise 🎬\n日本語', sg_cut_in: null }, { user: site.scriptUser });
  client = new ShotGridClient({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY });
  cache = new ReadThroughCache({ backend: gatedBackend(client), preloadTypes: [], now: () => clock, metrics: cacheMetrics });
  cache.startFrom(5_000_000_123);
  pair = await startPair({ cache, schema: new SchemaRegistry(client), unreachable: () => unreachable });
  ({ fast, slow } = pair);
  // Load the schema (the first request of a type waits for it) through the normal path.
  await send(slow, jsonPost({ entityType: "Shot", limit: 1 }));
  clock += 1234.6;
});

afterAll(async () => {
  await pair?.close();
  await client?.close();
  await site?.close();
});

const queries: JsonObject[] = [
  {
    entityType: "Shot",
    filters: [["sg_sequence", "is", { type: "Sequence", id: 1 }]],
    fields: ["code", "description", "sg_cut_in"],
    order: [{ field: "code", direction: "desc" }],
    limit: 5,
  },
  {
    entityType: "Shot",
    filters: {
      logical_operator: "or",
      conditions: [
        ["id", "is", 2],
        ["code", "contains", "0"],
      ],
    },
    fields: ["code", "description"],
    order: [{ field: "id" }],
    limit: 4,
    page: 2,
  },
  { entityType: "Shot", filters: [["id", "in", [1, 2, 3]]], fields: ["code", "project", "sg_sequence"] },
  // Nothing matches: the answer carries no entities.
  { entityType: "Shot", filters: [["code", "is", "no such shot"]] },
];

describe("Query fast path", () => {
  it("answers hits from its own path, identical to the normal handler, in every encoding", async () => {
    for (const msg of queries) await send(slow, jsonPost(msg)); // fills the cache
    // The first request of each distinct message too: its validation (the hit path's to keep) is
    // asynchronous, but with the schema loaded it settles at once, and the stored answer is a hit.
    const warm = pair.fastHandlerCalls;
    for (const msg of queries) for (const shape of shapes(msg)) await same(shape);
    expect(pair.fastHandlerCalls - warm).toBe(0);
    clock += 10.2;
    const before = pair.fastHandlerCalls;
    let ok = 0;
    for (const msg of queries) {
      for (const shape of shapes(msg)) if ((await same(shape)).status === 200) ok++;
    }
    expect(ok).toBe(queries.length * 4);
    expect(pair.fastHandlerCalls - before).toBe(0);
    const body = JSON.parse((await same(jsonPost(queries[0]!))).body.toString("utf8"));
    expect(body.entities.length).toBeGreaterThan(0);
    expect(body.freshness).toEqual({ source: "cache", ageMs: "10", asOfEventId: "5000000123", stale: false });
    // While the site is unreachable a cached answer is stale, on both paths.
    unreachable = "test: site down";
    try {
      await same(protoGet(queries[1]!));
      const stale = JSON.parse((await same(jsonGet(queries[1]!))).body.toString("utf8"));
      expect(stale.freshness.stale).toBe(true);
    } finally {
      unreachable = undefined;
    }
  });

  it("leaves misses to the normal handler, where identical ones share one upstream call", async () => {
    const msg: JsonObject = {
      entityType: "Shot",
      filters: [["sg_sequence", "is", { type: "Sequence", id: 2 }]],
      fields: ["code", "description"],
      order: [{ field: "code" }],
      limit: 50,
    };
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    const searches0 = searches;
    const rpcOk = () =>
      Promise.all([fast, slow].map((s) => metricValue(s.metrics, "shotgrid_cache_rpc_total", 'method="shotgrid.cache.v1.CacheService/Query",code="ok"')));
    const ok0 = await rpcOk();
    const before = pair.reads.count;
    const pending: Array<Promise<[Exchange, Exchange]>> = [];
    for (let round = 0; round < 3; round++) {
      for (const shape of shapes(msg)) pending.push(Promise.all([pair.sendNow(fast, shape), pair.sendNow(slow, shape)]));
    }
    // Everyone is waiting on the one held flight; then the site answers.
    await new Promise((r) => setTimeout(r, 200));
    clock += 7.4;
    gate = undefined;
    open();
    for (const [a, b] of await Promise.all(pending)) expectSame(a, b, "coalesced miss");
    expect(searches - searches0).toBe(1);
    // Every request, on both sides, was answered by the normal handler.
    expect(pair.reads.count - before).toBe(24);
    const ok1 = await rpcOk();
    expect([ok1[0]! - ok0[0]!, ok1[1]! - ok0[1]!]).toEqual([12, 12]);
    const first = JSON.parse((await pending[0]!)[0].body.toString("utf8"));
    expect(first.freshness.source).toBe("shotgrid");
    expect(first.entities.length).toBeGreaterThan(0);
  });

  it("leaves errors to the normal handler: invalid requests and an unreachable site", async () => {
    const invalid: JsonObject[] = [
      { entityType: "Shot", filters: [["no_such_field", "is", 1]] },
      { entityType: "Shot", limit: 100000 },
      { entityType: "Shot", order: [{ field: "code", direction: "sideways" }] },
      { entityType: "NoSuchType" },
    ];
    for (const msg of invalid) {
      for (const shape of shapes(msg)) expect((await same(shape)).status).toBe(400);
    }
    fail = true;
    const before = pair.fastHandlerCalls;
    try {
      const msg: JsonObject = { entityType: "Shot", filters: [["sg_sequence", "is", { type: "Sequence", id: 3 }]], fields: ["code"] };
      for (const shape of shapes(msg)) expect((await same(shape)).status).toBe(503);
    } finally {
      fail = false;
    }
    // The upstream failures were met by the normal handler on the fast side too.
    expect(pair.fastHandlerCalls - before).toBe(4);
  });

  it("answers repeated hits from one kept encoding, and a changed answer (never the old encoding) after an invalidation", async () => {
    const msg: JsonObject = { entityType: "Shot", filters: [["id", "in", [4, 5, 6]]], fields: ["code", "description"], order: [{ field: "id" }] };
    await send(slow, jsonPost(msg)); // fills the cache
    clock += 3.3;
    // Count what reaches the cache's asynchronous read (the normal handler's and the fast path's fallback).
    let asyncReads = 0;
    const queryPrepared = cache.queryPrepared.bind(cache);
    cache.queryPrepared = (...args) => {
      asyncReads++;
      return queryPrepared(...args);
    };
    const hitsOf = () => metricValue(cacheMetrics, "shotgrid_cache_hits_total", 'kind="query"');
    try {
      // Warm: the first request of each distinct message goes to the normal handler.
      for (const shape of shapes(msg)) await same(shape);
      const before = pair.fastHandlerCalls;
      const hits0 = await hitsOf();
      const reads0 = asyncReads;
      for (let round = 0; round < 5; round++) {
        clock += 1.7; // only the freshness changes between rounds
        for (const shape of shapes(msg)) await send(fast, shape).then((a) => send(slow, shape).then((b) => expectSame(a, b, `round ${round} ${shape.method}`)));
      }
      // Every repeated hit was counted once per answer on both sides, and the fast side never
      // asked the cache's asynchronous read (the slow side did, once per request).
      expect((await hitsOf()) - hits0).toBe(5 * 4 * 2);
      expect(asyncReads - reads0).toBe(5 * 4);
      expect(pair.fastHandlerCalls - before).toBe(0);

      // The site changes and an event invalidates: the normal side refills the entry first, so the
      // fast side finds a new stored text under a key it holds an encoding for.
      site.store.update("Shot", 5, { code: "renamed after the event" }, { user: site.scriptUser });
      await cache.invalidateType("Shot");
      await send(slow, jsonPost(msg));
      for (const shape of shapes(msg)) {
        const a = await same(shape);
        if (shape.headers?.["content-type"] !== "application/proto" && !shape.path.includes("encoding=proto")) {
          expect(a.body.toString("utf8")).toContain("renamed after the event");
        }
      }
      expect(pair.fastHandlerCalls - before).toBe(0);
      // And when the fast side itself meets the miss after an invalidation: its normal handler answers.
      site.store.update("Shot", 5, { code: "renamed again" }, { user: site.scriptUser });
      await cache.invalidateType("Shot");
      const fresh = await send(fast, jsonPost(msg));
      expect(fresh.body.toString("utf8")).toContain("renamed again");
      expect(pair.fastHandlerCalls - before).toBe(1);
      for (let round = 0; round < 2; round++) {
        for (const shape of shapes(msg)) {
          const a = await same(shape);
          expect(a.body.includes(Buffer.from("renamed again"))).toBe(true);
          expect(a.body.includes(Buffer.from("renamed after the event"))).toBe(false);
        }
      }
      expect(pair.fastHandlerCalls - before).toBe(1);
    } finally {
      cache.queryPrepared = queryPrepared;
    }
    // The invalidations dropped the other tests' entries: hold them again.
    for (const m of queries) await send(slow, jsonPost(m));
  });

  it("leaves what it does not handle to the normal handler", async () => {
    // An answer over connect's compression threshold, held and validated on both sides.
    const big: JsonObject = { entityType: "Shot", fields: ["code", "description", "sg_status_list"], order: [{ field: "id" }], limit: 30 };
    await send(slow, jsonPost(big)); // fills the cache
    await same(jsonPost(big));
    expect((await same(jsonPost(big))).body.length).toBeGreaterThan(1024);
    const msg = queries[0]!;
    // Validated again since the schema changed (an unknown type was asked for above).
    await same(jsonPost(msg));
    const before = pair.fastHandlerCalls;
    // A timeout header, a client that accepts compression of a large answer, a body the parser rejects.
    await same({ ...jsonPost(msg), headers: { "content-type": "application/json", "connect-timeout-ms": "5000" } });
    const gz = await same({ ...jsonPost(big), headers: { "content-type": "application/json", "accept-encoding": "gzip" } });
    expect(gz.headers).toContain("content-encoding: gzip");
    await same({ method: "POST", path: PATH, body: "{not json", headers: { "content-type": "application/json" } });
    expect(pair.fastHandlerCalls - before).toBe(2);
    // A request too large to keep its parse (so its validation) for: never peeked, always the normal handler.
    const long: JsonObject = { entityType: "Shot", filters: [["id", "in", Array.from({ length: 400 }, (_, i) => i + 1)]], fields: ["code"] };
    expect(JSON.stringify(long).length).toBeGreaterThan(1024);
    await send(slow, jsonPost(long)); // fills the cache
    for (let i = 0; i < 2; i++) for (const shape of [jsonPost(long), protoPost(long)]) expect((await same(shape)).status).toBe(200);
    expect(pair.fastHandlerCalls - before).toBe(6);
    // A small answer is never compressed: the fast path answers it whatever the client accepts.
    expect((await same({ ...jsonPost(msg), headers: { "content-type": "application/json", "accept-encoding": "gzip" } })).body.length).toBeLessThan(1024);
    expect(pair.fastHandlerCalls - before).toBe(6);
  });
});

describe("Query fast path over HTTP/2 (gRPC, Connect)", () => {
  it("answers repeated hits from its own path, identical to the normal handler; errors and misses go to the normal handler", async () => {
    for (const msg of queries) await send(slow, jsonPost(msg)); // held again (an earlier test invalidated)
    // The first request of each distinct message goes to the normal handler (see above).
    for (const msg of queries) for (const shape of allH2(msg)) await same(shape);
    clock += 4.4;
    const before = pair.fastHandlerCalls;
    let ok = 0;
    for (const msg of queries) {
      for (const shape of allH2(msg)) {
        const a = await same(shape);
        if (a.status === 200 && !a.trailers.some((t) => t.startsWith("grpc-status: ") && t !== "grpc-status: 0")) ok++;
      }
    }
    expect(ok).toBe(queries.length * 6);
    expect(pair.fastHandlerCalls - before).toBe(0);
    // Invalid requests: the normal handler's errors, in trailers for gRPC.
    for (const msg of [{ entityType: "Shot", limit: 100000 }, { entityType: "NoSuchType" }] as JsonObject[]) {
      for (const shape of allH2(msg)) await same(shape);
    }
    const invalid = await same(grpc({ entityType: "Shot", filters: [["no_such_field", "is", 1]] }));
    expect(invalid.trailers).toContain("grpc-status: 3");
    // A miss: the normal handler on both sides, one upstream call.
    const searches0 = searches;
    const miss: JsonObject = { entityType: "Shot", filters: [["sg_sequence", "is", { type: "Sequence", id: 3 }]], fields: ["code", "sg_cut_out"] };
    const b0 = pair.fastHandlerCalls;
    expect((await send(fast, grpc(miss))).trailers).toContain("grpc-status: 0");
    expect(searches - searches0).toBe(1);
    expect(pair.fastHandlerCalls - b0).toBe(1);
    await same(grpc(miss)); // now held: both sides answer the same hit
    // A large answer for a client that accepts compression: the normal path compresses it.
    const big: JsonObject = { entityType: "Shot", fields: ["code", "description", "sg_status_list"], order: [{ field: "id" }], limit: 30 };
    await send(slow, jsonPost(big));
    await same(grpc(big));
    const b1 = pair.fastHandlerCalls;
    const gz = await same(grpc(big, { "grpc-accept-encoding": "gzip" }));
    expect(gz.body[0]).toBe(1);
    const plain = await same(grpc(big));
    expect(plain.body.length).toBeGreaterThan(1024);
    expect(pair.fastHandlerCalls - b1).toBe(1);
    await same(h2(jsonPost(big, { "accept-encoding": "gzip" })));
    expect(pair.fastHandlerCalls - b1).toBe(2);
  });
});

describe("Query fast path for gRPC-web over HTTP/1.1", () => {
  const OK = "grpc-status: 0\r\n";

  it("answers repeated hits from its own path, identical to the normal handler; errors, misses and compressed answers go to the normal handler", async () => {
    for (const msg of queries) await send(slow, jsonPost(msg)); // held again (an earlier test invalidated)
    // The first request of each distinct message goes to the normal handler (see above).
    for (const msg of queries) for (const shape of allGrpcWeb(msg)) await same(shape);
    clock += 3.3;
    const before = pair.fastHandlerCalls;
    let ok = 0;
    for (const msg of queries) {
      for (const shape of allGrpcWeb(msg)) {
        const a = await same(shape);
        if (a.status === 200 && grpcWebTrailerOf(a) === OK) ok++;
      }
    }
    expect(ok).toBe(queries.length * 3);
    expect(pair.fastHandlerCalls - before).toBe(0);
    // Invalid requests: the normal handler's errors, in the trailer frame.
    for (const msg of [{ entityType: "Shot", limit: 100000 }, { entityType: "NoSuchType" }] as JsonObject[]) {
      for (const shape of allGrpcWeb(msg)) await same(shape);
    }
    const invalid = await same(grpcWeb({ entityType: "Shot", filters: [["no_such_field", "is", 1]] }));
    expect(grpcWebTrailerOf(invalid)).toContain("grpc-status: 3\r\n");
    // A miss: the normal handler on both sides, one upstream call.
    const searches0 = searches;
    const miss: JsonObject = { entityType: "Shot", filters: [["sg_sequence", "is", { type: "Sequence", id: 4 }]], fields: ["code", "sg_cut_in"] };
    const b0 = pair.fastHandlerCalls;
    expect(grpcWebTrailerOf(await send(fast, grpcWeb(miss)))).toBe(OK);
    expect(searches - searches0).toBe(1);
    expect(pair.fastHandlerCalls - b0).toBe(1);
    await same(grpcWeb(miss)); // now held: both sides answer the same hit
    // A deadline: the normal path keeps it.
    const b1 = pair.fastHandlerCalls;
    expect(grpcWebTrailerOf(await same(grpcWeb(queries[0]!, { "grpc-timeout": "5S" })))).toBe(OK);
    expect(pair.fastHandlerCalls - b1).toBe(1);
    // A large answer for a client that accepts compression: the normal path compresses it.
    const big: JsonObject = { entityType: "Shot", fields: ["code", "description", "sg_status_list"], order: [{ field: "id" }], limit: 30 };
    await send(slow, jsonPost(big));
    await same(grpcWeb(big));
    const b2 = pair.fastHandlerCalls;
    const gz = await same(grpcWeb(big, { "grpc-accept-encoding": "gzip" }));
    expect(gz.body[0]).toBe(1);
    const plain = await same(grpcWeb(big));
    expect(plain.body.length).toBeGreaterThan(1024);
    expect(pair.fastHandlerCalls - b2).toBe(1);
  });
});
