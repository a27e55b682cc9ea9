/**
 * The fast path's own binary writer of entity answers (src/server/entity-binary.ts) gives
 * exactly protobuf-es's bytes: on seeded random values (every JSON kind, nesting, empty and long
 * strings, lone surrogates, integer-like keys, -0, lengths that need 1 to 3 length bytes), on
 * every record the demo site holds and on the records of the real recorded traffic; and it
 * declines (undefined) what it does not reproduce.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { GetEntityResponseSchema, QueryResponseSchema } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { entityResponseBinary, queryResponseBinary } from "../src/server/entity-binary.ts";
import { toEntityMessage } from "../src/service/cache-service.ts";
import type { Entity, FieldValue } from "../src/shotgrid/types.ts";
import { type SimulatorHandle, startSimulator } from "../src/simulator/index.ts";

const CASES = Number(process.env.ENTITY_BINARY_CASES ?? 1500);

const stock = {
  entity: (e: Entity) => Buffer.from(toBinary(GetEntityResponseSchema, create(GetEntityResponseSchema, { entity: toEntityMessage(e) }))),
  query: (es: Entity[]) => Buffer.from(toBinary(QueryResponseSchema, create(QueryResponseSchema, { entities: es.map(toEntityMessage) }))),
};

function generator(seed: number) {
  let x = seed;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff) / 0x7fffffff;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const TEXT = ["", "a", "shot_010", "Ünïcödé", "日本語のショット", "emoji 🎬🎞️", "\ud800 lone", "tail \udfff", 'quote " back \\ nl \n', "\u0000nul"];
  const text = (): string => {
    const r = rnd();
    if (r < 0.01) return "x".repeat(100 + Math.floor(rnd() * 20_000)); // 1 to 3 length bytes
    if (r < 0.1) return pick(TEXT).repeat(1 + Math.floor(rnd() * 40));
    return pick(TEXT) + (rnd() < 0.5 ? String(Math.floor(rnd() * 1000)) : "");
  };
  const NUMBERS = [0, -0, 1, -1, 1001, 24.5, -3.25, 1e300, -1e-300, 2 ** 31, 2 ** 53 - 1, 0.1];
  const value = (depth: number): unknown => {
    const r = rnd();
    if (r < 0.25) return text();
    if (r < 0.45) return rnd() < 0.5 ? pick(NUMBERS) : Math.floor(rnd() * 1e6) - 5e5;
    if (r < 0.52) return rnd() < 0.5;
    if (r < 0.6) return null;
    if (depth >= 4) return text();
    if (r < 0.8) return Array.from({ length: Math.floor(rnd() * (depth < 2 && rnd() < 0.05 ? 200 : 5)) }, () => value(depth + 1));
    return object(depth + 1);
  };
  const KEYS = ["code", "", "sg_status_list", "1", "10", "2", "name", "type", "id", "sg_sequence", "ключ", "a.b"];
  const object = (depth: number): Record<string, unknown> => {
    const o: Record<string, unknown> = {};
    for (let n = Math.floor(rnd() * (depth === 0 && rnd() < 0.1 ? 60 : 6)); n > 0; n--) o[rnd() < 0.7 ? pick(KEYS) : text().slice(0, 30)] = value(depth);
    return o;
  };
  const IDS = [0, 1, 127, 128, 16_383, 16_384, 2 ** 31 - 1];
  const entity = (): Entity => ({
    type: rnd() < 0.05 ? "" : pick(["Shot", "Asset", "Sequence", "CustomEntity01"]),
    id: rnd() < 0.3 ? pick(IDS) : 1 + Math.floor(rnd() * 1e6),
    fields: object(0) as Record<string, FieldValue>,
  });
  return { entity, rnd };
}

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
      for (const type of ["Project", "Sequence", "Shot", "Asset", "Step", "Task", "Version", "HumanUser"]) {
        const records = [...sim.store.records(type)].map((r): Entity => ({ type, id: r.id, fields: JSON.parse(JSON.stringify(r.fields)) }));
        for (const e of records) expect(entityResponseBinary(e)!.equals(stock.entity(e))).toBe(true);
        expect(queryResponseBinary(records)!.equals(stock.query(records))).toBe(true);
        seen += records.length;
      }
      expect(seen).toBeGreaterThan(200);
    });

    it("every record answered in the recorded ShotGrid traffic (test/fixtures/shotgrid-recorded)", () => {
      const root = new URL("./fixtures/shotgrid-recorded", import.meta.url).pathname;
      const files = (dir: string): string[] =>
        readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
          d.isDirectory() ? files(join(dir, d.name)) : d.name.endsWith(".yml") ? [join(dir, d.name)] : [],
        );
      let seen = 0;
      for (const file of files(root)) {
        for (const i of (parse(readFileSync(file, "utf8")) as { http_interactions: Array<{ response: { body: { string: string } } }> }).http_interactions) {
          let body: unknown;
          try {
            body = JSON.parse(i.response.body.string);
          } catch {
            continue;
          }
          const data = (body as { data?: unknown }).data;
          for (const r of Array.isArray(data) ? data : data ? [data] : []) {
            const rec = r as { type?: unknown; id?: unknown; attributes?: Record<string, FieldValue>; relationships?: Record<string, { data: FieldValue }> };
            if (typeof rec.type !== "string" || typeof rec.id !== "number") continue;
            const fields: Record<string, FieldValue> = { ...(rec.attributes ?? {}) };
            for (const [k, v] of Object.entries(rec.relationships ?? {})) fields[k] = v.data;
            const e: Entity = { type: rec.type, id: rec.id, fields };
            expect(entityResponseBinary(e)!.equals(stock.entity(e))).toBe(true);
            seen++;
          }
        }
      }
      expect(seen).toBeGreaterThan(20);
    });
  });
});
