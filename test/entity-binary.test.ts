import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetEntityResponseSchema, QueryResponseSchema } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { entityResponseBinary, queryResponseBinary } from "../src/server/entity-binary.ts";
import { toEntityMessage } from "../src/service/cache-service.ts";
import type { Entity } from "../src/shotgrid/types.ts";
import { generator } from "./support/random-entities.ts";
import { demoSiteEntities, recordedEntities } from "./support/recorded-entities.ts";
import { type SimulatorHandle, startSimulator } from "../src/simulator/index.ts";

const CASES = Number(process.env.ENTITY_BINARY_CASES ?? 1500);

const stock = {
  entity: (e: Entity) => Buffer.from(toBinary(GetEntityResponseSchema, create(GetEntityResponseSchema, { entity: toEntityMessage(e) }))),
  query: (es: Entity[]) => Buffer.from(toBinary(QueryResponseSchema, create(QueryResponseSchema, { entities: es.map(toEntityMessage) }))),
};

describe("the binary writer of entity answers", () => {
  it(`gives protobuf-es's bytes for ${CASES} random entities and Queries`, () => {
    const g = generator(20261129);
    for (let i = 0; i < CASES; i++) {
      const e = g.entity();
      expect(entityResponseBinary(e)?.equals(stock.entity(e)), JSON.stringify(e).slice(0, 500)).toBe(true);
      if (i % 10 === 0) {
        const es = Array.from({ length: Math.floor(g.rnd() * 60) }, g.entity);
        expect(queryResponseBinary(es)?.equals(stock.query(es))).toBe(true);
      }
    }
  });

  it("gives them for an answer past 1 MiB, and for an empty Query", () => {
    const big: Entity = {
      type: "Shot",
      id: 1,
      fields: { description: "d".repeat(1_500_000), list: Array.from({ length: 20_000 }, (_, i) => ({ type: "Task", id: i, name: `t${i}` })) },
    };
    expect(entityResponseBinary(big)!.equals(stock.entity(big))).toBe(true);
    expect(queryResponseBinary([big, big])!.equals(stock.query([big, big]))).toBe(true);
    expect(queryResponseBinary([])!.equals(stock.query([]))).toBe(true);
    // The next answer after a large one is still right (the scratch space was let go).
    const small: Entity = { type: "Shot", id: 2, fields: { code: "sh2" } };
    expect(entityResponseBinary(small)!.equals(stock.entity(small))).toBe(true);
  });

  it("declines what it does not reproduce: an id outside int32, a value JSON cannot hold", () => {
    for (const id of [-1, 2 ** 31, 1.5, Number.NaN]) expect(entityResponseBinary({ type: "Shot", id, fields: {} })).toBeUndefined();
    const odd = { type: "Shot", id: 1, fields: { when: undefined } } as unknown as Entity;
    expect(entityResponseBinary(odd)).toBeUndefined();
    expect(queryResponseBinary([{ type: "Shot", id: 1, fields: {} }, odd])).toBeUndefined();
    // JSON.parse makes `__proto__` a member; protobuf-es loses it (it sets the prototype there).
    const proto = JSON.parse('{"type":"Shot","id":1,"fields":{"code":"a","sg_data":{"__proto__":{"x":1},"y":2}}}') as Entity;
    expect(entityResponseBinary(proto)).toBeUndefined();
    const text = { type: "Shot", id: 1, fields: { description: '"__proto__": in a text' } } as Entity;
    expect(entityResponseBinary(text)!.equals(stock.entity(text))).toBe(true);
  });

  describe("on real records", () => {
    let sim: SimulatorHandle;
    beforeAll(async () => {
      sim = await startSimulator({ shots: 200, assets: 40 });
    });
    afterAll(async () => {
      await sim?.close();
    });

    it("every record of the demo site, one by one and as one Query per type", () => {
      let seen = 0;
      for (const records of demoSiteEntities(sim)) {
        for (const e of records) expect(entityResponseBinary(e)!.equals(stock.entity(e))).toBe(true);
        expect(queryResponseBinary(records)!.equals(stock.query(records))).toBe(true);
        seen += records.length;
      }
      expect(seen).toBeGreaterThan(200);
    });

    it("every record answered in the recorded ShotGrid traffic (test/fixtures/shotgrid-recorded)", () => {
      const records = recordedEntities();
      for (const e of records) expect(entityResponseBinary(e)!.equals(stock.entity(e))).toBe(true);
      const seen = records.length;
      expect(seen).toBeGreaterThan(20);
    });
  });
});
