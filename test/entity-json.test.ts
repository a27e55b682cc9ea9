import { create, type JsonWriteOptions } from "@bufbuild/protobuf";
import { createMethodSerializationLookup } from "@connectrpc/connect/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheService, GetEntityResponseSchema, QueryResponseSchema } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { entityResponseJsonHead, queryResponseJsonHead } from "../src/server/entity-json.ts";
import { CACHE_SERVICE_OPTIONS, toEntityMessage } from "../src/service/cache-service.ts";
import type { Entity } from "../src/shotgrid/types.ts";
import { type SimulatorHandle, startSimulator } from "../src/simulator/index.ts";
import { generator } from "./support/random-entities.ts";
import { demoSiteEntities, recordedEntities } from "./support/recorded-entities.ts";

const CASES = Number(process.env.ENTITY_JSON_CASES ?? 1500);
const limits = { readMaxBytes: Infinity, writeMaxBytes: Infinity };

/** The serializer's answer with `,` for its closing brace, as hit-encoding.ts splices it. */
function stockWith(jsonOptions: Partial<JsonWriteOptions>) {
  const head = (bytes: Uint8Array) => (bytes.length === 2 ? Buffer.from("{") : Buffer.concat([Buffer.from(bytes).subarray(0, -1), Buffer.from(",")]));
  const entityOut = createMethodSerializationLookup(CacheService.method.getEntity, undefined, jsonOptions, limits).getO(false);
  const queryOut = createMethodSerializationLookup(CacheService.method.query, undefined, jsonOptions, limits).getO(false);
  return {
    entity: (e: Entity) => head(entityOut.serialize(create(GetEntityResponseSchema, { entity: toEntityMessage(e) }))),
    query: (es: Entity[]) => head(queryOut.serialize(create(QueryResponseSchema, { entities: es.map(toEntityMessage) }))),
  };
}

const MODES = [
  { name: "the service's options (implicit values written)", options: CACHE_SERVICE_OPTIONS.jsonOptions, emitImplicit: true },
  { name: "protobuf's default (implicit values left out)", options: {}, emitImplicit: false },
];

describe("the JSON writer of entity answers", () => {
  for (const mode of MODES) {
    it(`gives the serializer's bytes for ${CASES} random entities and Queries, ${mode.name}`, () => {
      const stock = stockWith(mode.options);
      const g = generator(20261129);
      for (let i = 0; i < CASES; i++) {
        // From JSON text, as the store holds records.
        const e = JSON.parse(JSON.stringify(g.entity())) as Entity;
        const mine = entityResponseJsonHead(e, mode.emitImplicit);
        expect(mine?.equals(stock.entity(e)), `${mine?.toString()}\n${stock.entity(e).toString()}`).toBe(true);
        if (i % 10 === 0) {
          const es = JSON.parse(JSON.stringify(Array.from({ length: Math.floor(g.rnd() * 60) }, g.entity))) as Entity[];
          expect(queryResponseJsonHead(es, mode.emitImplicit)?.equals(stock.query(es))).toBe(true);
        }
      }
      expect(queryResponseJsonHead([], mode.emitImplicit)!.equals(stock.query([]))).toBe(true);
    });
  }

  it("declines a `__proto__` member, which the serializer loses, and not the same text inside a string", () => {
    const stock = stockWith(CACHE_SERVICE_OPTIONS.jsonOptions);
    const proto = JSON.parse('{"type":"Shot","id":1,"fields":{"code":"a","sg_data":{"__proto__":{"x":1},"y":2}}}') as Entity;
    expect(entityResponseJsonHead(proto, true)).toBeUndefined();
    expect(queryResponseJsonHead([{ type: "Shot", id: 2, fields: {} }, proto], true)).toBeUndefined();
    for (const description of ['"__proto__": in a text', "__proto__", '{"__proto__":1}']) {
      const e: Entity = { type: "Shot", id: 1, fields: { description } };
      expect(entityResponseJsonHead(e, true)!.equals(stock.entity(e))).toBe(true);
    }
  });

  it("declines an id outside int32 (the serializer writes those answers)", () => {
    for (const id of [-1, 2 ** 31, 1.5]) {
      expect(entityResponseJsonHead({ type: "Shot", id, fields: {} }, true)).toBeUndefined();
      expect(
        queryResponseJsonHead(
          [
            { type: "Shot", id: 1, fields: {} },
            { type: "Shot", id, fields: {} },
          ],
          true,
        ),
      ).toBeUndefined();
    }
  });

  describe("on real records", () => {
    let sim: SimulatorHandle;
    beforeAll(async () => {
      sim = await startSimulator({ shots: 200, assets: 40 });
    });
    afterAll(async () => {
      await sim?.close();
    });

    it("every record of the demo site and of the recorded ShotGrid traffic", () => {
      const stock = stockWith(CACHE_SERVICE_OPTIONS.jsonOptions);
      const records: Entity[] = [...demoSiteEntities(sim).flat(), ...recordedEntities()];
      expect(records.length).toBeGreaterThan(300);
      for (const e of records) expect(entityResponseJsonHead(e, true)!.equals(stock.entity(e))).toBe(true);
      expect(queryResponseJsonHead(records, true)!.equals(stock.query(records))).toBe(true);
    });
  });
});
