/**
 * A Query the store does not hold yet, over a preloaded type, is answered on the fast path once
 * the mirror has evaluated it, byte for byte as the normal handler answers it: two services over
 * the same site and the same preloaded state (two caches, one clock), one with the fast path and
 * one without, get the same first-time Queries in every wire shape. The fast one's normal
 * handler is never called for them, and each answer is counted once, as a local one. What the
 * mirror declines, an invalid request and a repeat still go where they went.
 */
import type { JsonObject } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QueryRequestSchema } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { ReadThroughCache } from "../src/cache/index.ts";
import { Metrics } from "../src/server/index.ts";
import { SchemaRegistry } from "../src/service/schema-registry.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import {
  closeSessions,
  countHandlerReads,
  exchange,
  exchange2,
  expectSame,
  metricValue,
  shapesOf,
  startSide,
  type Shape,
  type Side,
} from "./fast-path-sides.ts";

const PATH = "/shotgrid.cache.v1.CacheService/Query";
const { jsonPost, jsonGet, protoPost, protoGet, grpc, grpcJson, grpcWeb, grpcWebJson, h2 } = shapesOf(QueryRequestSchema, PATH);

let site: SimulatorHandle;
let client: ShotGridClient;
const clock = 1_800_000_000_000;
const sides: Array<{ side: Side; cache: ReadThroughCache; metrics: Metrics; reads: ReturnType<typeof countHandlerReads> }> = [];

async function startService(fastPath: boolean) {
  const metrics = new Metrics({ processMetrics: false });
  // As the service builds them: the preload loads each type's schema into the registry validation reads.
  const schema = new SchemaRegistry(client);
  const cache = new ReadThroughCache({
    backend: client,
    preloadTypes: ["Project", "Sequence", "Shot"],
    now: () => clock,
    metrics,
    schemaOf: (t) => schema.fieldsOf(t),
  });
  cache.startFrom(await client.latestEventId());
  await cache.preload();
  // The site's type list, which validation reads too (a running service has it after its first Query).
  await schema.hasType("Shot");
  const side = await startSide({ fastPath, cache, schema, unreachable: () => undefined });
  const entry = { side, cache, metrics, reads: countHandlerReads(cache) };
  sides.push(entry);
  return entry;
}

beforeAll(async () => {
  site = await startSimulator({ shots: 40, assets: 2 });
  site.store.update("Shot", 3, { description: 'Plan séquence — "dernière" prise 🎬\n日本語', sg_cut_in: null }, { user: site.scriptUser });
  client = new ShotGridClient({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY });
  await startService(true);
  await startService(false);
}, 60_000);

afterAll(async () => {
  for (const s of sides) s.reads.restore();
  await closeSessions();
  for (const s of sides) await s.side.server.close(500);
  await client?.close();
  await site?.close();
});

const send = (side: Side, shape: Shape) => (shape.h2 ? exchange2 : exchange)(side.port, shape.method, shape.path, shape.body, shape.headers);
const answered = (m: Metrics, where: string, reason: string) => metricValue(m, "shotgrid_cache_query_answers_total", `where="${where}",reason="${reason}"`);

/** A Query no one has asked yet: `n` makes it distinct. */
const fresh = (n: number): JsonObject => ({
  entityType: "Shot",
  filters: [
    ["sg_cut_in", "greater_than", n],
    ["sg_status_list", "in", ["ip", "wtg", "fin"]],
  ],
  fields: ["code", "description", "sg_status_list", "sg_sequence", "sg_cut_in", "project"],
  order: [{ field: "code", direction: "desc" }],
  limit: 20,
});

describe("a first-time Query over a preloaded type", () => {
  it("is answered on the fast path after the mirror's evaluation, the normal handler's bytes, in every wire shape", async () => {
    const [fast, slow] = sides as [(typeof sides)[0], (typeof sides)[0]];
    const shapes = [jsonPost, jsonGet, protoPost, protoGet, (m: JsonObject) => h2(jsonPost(m)), grpc, grpcJson, grpcWeb, grpcWebJson];
    const localBefore = await answered(fast.metrics, "local", "none");
    const hitsBefore = await metricValue(fast.metrics, "shotgrid_cache_hits_total", 'kind="query"');
    let n = 0;
    for (const shape of shapes) {
      const msg = fresh(-1000 + n++);
      const handlerCalls = fast.reads.count;
      const a = await send(fast.side, shape(msg));
      const b = await send(slow.side, shape(msg));
      expectSame(a, b, `first-time ${shape(msg).headers?.["content-type"] ?? "GET"}${shape(msg).h2 ? " over h2" : ""}`);
      expect(a.status).toBe(200);
      expect(fast.reads.count - handlerCalls, "the fast side's normal handler").toBe(0);
    }
    // Counted once each, as the normal path counts an answer from the mirror: not as hits.
    expect((await answered(fast.metrics, "local", "none")) - localBefore).toBe(shapes.length);
    expect(await metricValue(fast.metrics, "shotgrid_cache_hits_total", 'kind="query"')).toBe(hitsBefore);
    // Asked again: a plain hit, counted as one.
    const again = await send(fast.side, jsonPost(fresh(-1000)));
    expect(again.status).toBe(200);
    expect((await metricValue(fast.metrics, "shotgrid_cache_hits_total", 'kind="query"')) - hitsBefore).toBe(1);
  });

  it("the same for identical first-time Queries sent at once: one evaluation, every answer the normal handler's", async () => {
    const [fast, slow] = sides as [(typeof sides)[0], (typeof sides)[0]];
    const msg = fresh(-500);
    const localBefore = await answered(fast.metrics, "local", "none");
    const hitsBefore = await metricValue(fast.metrics, "shotgrid_cache_hits_total", 'kind="query"');
    const answers = await Promise.all(Array.from({ length: 6 }, () => send(fast.side, jsonPost(msg))));
    const reference = await send(slow.side, jsonPost(msg));
    for (const a of answers) expectSame(a, reference, "concurrent first-time");
    // Each counted once: as a local answer (the shared evaluation's), or as a hit if it came after.
    const local = (await answered(fast.metrics, "local", "none")) - localBefore;
    const hits = (await metricValue(fast.metrics, "shotgrid_cache_hits_total", 'kind="query"')) - hitsBefore;
    expect(local).toBeGreaterThanOrEqual(1);
    expect(local + hits).toBe(6);
  });

  it("an answer the mirror gives but the store does not keep is answered here too, from one evaluation", async () => {
    const [fast, slow] = sides as [(typeof sides)[0], (typeof sides)[0]];
    // Ordered by a field the answer does not show: not kept (a rename could reorder it unseen).
    const msg: JsonObject = { ...fresh(-100), fields: ["code"], order: [{ field: "sg_cut_in", direction: "asc" }] };
    const engine = fast.cache.localQueries;
    const answer = engine.answer.bind(engine);
    let evaluations = 0;
    engine.answer = (q) => (evaluations++, answer(q));
    try {
      const localBefore = await answered(fast.metrics, "local", "none");
      const handlerCalls = fast.reads.count;
      for (let i = 0; i < 3; i++) expectSame(await send(fast.side, jsonPost(msg)), await send(slow.side, jsonPost(msg)), "not kept");
      expect(fast.reads.count - handlerCalls).toBe(0);
      expect(evaluations).toBe(3);
      expect((await answered(fast.metrics, "local", "none")) - localBefore).toBe(3);
    } finally {
      engine.answer = answer;
    }
  });

  it("is left to the normal handler when it might compress the answer, and counted as it counts it", async () => {
    const [fast, slow] = sides as [(typeof sides)[0], (typeof sides)[0]];
    // Large enough to be compressed (1 KiB and more) for a client that accepts gzip.
    const msg: JsonObject = { ...fresh(-50), filters: [["sg_cut_in", "greater_than", -50]], limit: 40 };
    const counts = async (m: Metrics) => ({
      local: await answered(m, "local", "none"),
      hits: await metricValue(m, "shotgrid_cache_hits_total", 'kind="query"'),
    });
    const [fastBefore, slowBefore] = [await counts(fast.metrics), await counts(slow.metrics)];
    const handlerCalls = fast.reads.count;
    const a = await send(fast.side, jsonPost(msg, { "accept-encoding": "gzip" }));
    const b = await send(slow.side, jsonPost(msg, { "accept-encoding": "gzip" }));
    expectSame(a, b, "first-time, compressible");
    expect(a.headers.map((h) => h.toLowerCase())).toContain("content-encoding: gzip");
    expect(fast.reads.count - handlerCalls).toBe(1);
    const [fastAfter, slowAfter] = [await counts(fast.metrics), await counts(slow.metrics)];
    expect({ local: fastAfter.local - fastBefore.local, hits: fastAfter.hits - fastBefore.hits }).toEqual({ local: 1, hits: 0 });
    expect({ local: slowAfter.local - slowBefore.local, hits: slowAfter.hits - slowBefore.hits }).toEqual({ local: 1, hits: 0 });
  });

  it("goes to the normal handler when the mirror declines it, once, counted once as upstream", async () => {
    const [fast, slow] = sides as [(typeof sides)[0], (typeof sides)[0]];
    // Task is not preloaded: not the mirror's to answer.
    const msg: JsonObject = { entityType: "Task", filters: [["content", "contains", "a"]], fields: ["content"], limit: 5 };
    const before = await answered(fast.metrics, "upstream", "type_not_mirrored");
    const handlerCalls = fast.reads.count;
    const a = await send(fast.side, jsonPost(msg));
    expectSame(a, await send(slow.side, jsonPost(msg)), "a Query of a type not preloaded");
    expect(fast.reads.count - handlerCalls).toBe(1);
    expect((await answered(fast.metrics, "upstream", "type_not_mirrored")) - before).toBe(1);
  });

  it("an invalid Query is answered with the normal handler's error", async () => {
    const [fast, slow] = sides as [(typeof sides)[0], (typeof sides)[0]];
    for (const msg of [
      { entityType: "Shot", filters: [["no_such_field", "is", 1]], fields: ["code"] },
      { entityType: "Shot", filters: [["sg_cut_in", "greater_than", "not a number"]], fields: ["code"] },
    ] as JsonObject[]) {
      const a = await send(fast.side, jsonPost(msg));
      expectSame(a, await send(slow.side, jsonPost(msg)), "an invalid Query");
      expect(a.status).toBe(400);
    }
  });
});
