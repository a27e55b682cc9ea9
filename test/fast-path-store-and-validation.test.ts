/**
 * What the hit path relies on: the memory store keeps values as text (a read is a private copy;
 * the text changes exactly when the value does), and synchronous validation gives the same
 * answers and errors as the asynchronous one once the schema is loaded.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { GetEntityRequestSchema } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { MemoryStore } from "../src/cache/index.ts";
import { validateGetEntity, validateGetEntityNow } from "../src/service/request-validation.ts";
import { SchemaRegistry } from "../src/service/schema-registry.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";

describe("memory store values kept as text", () => {
  const entry = (value: unknown) => ({ value, seq: 0, fetchedAt: 5, asOfEventId: 7, tags: ["rec:Shot:1", "ty:Shot"], links: ["Sequence:3"] });

  it("gives each reader its own copy, so no reader can change what is stored", async () => {
    const store = new MemoryStore({ maxBytes: 1e6 });
    await store.setIfFresh("rec:Shot:1", entry({ type: "Shot", id: 1, fields: { code: "SH1", sg_sequence: { type: "Sequence", id: 3, name: "SQ" } } }));
    const a = await store.get("rec:Shot:1");
    (a!.value as { fields: { code: string } }).fields.code = "mutated";
    const b = await store.get("rec:Shot:1");
    expect((b!.value as { fields: { code: string } }).fields.code).toBe("SH1");
    expect(b).toMatchObject({ fetchedAt: 5, asOfEventId: 7, tags: ["rec:Shot:1", "ty:Shot"], links: ["Sequence:3"] });
  });

  it("keeps the same text while the value is unchanged, a new one once a link is renamed", async () => {
    const store = new MemoryStore({ maxBytes: 1e6 });
    await store.setIfFresh("rec:Shot:1", entry({ type: "Shot", id: 1, fields: { sg_sequence: { type: "Sequence", id: 3, name: "SQ" } } }));
    const t1 = store.peekRaw("rec:Shot:1")!.text;
    expect(store.peekRaw("rec:Shot:1")!.text).toBe(t1);
    await store.patchLinkName("Sequence:3", "SQ renamed");
    const t2 = store.peekRaw("rec:Shot:1")!.text;
    expect(t2).not.toBe(t1);
    expect(JSON.parse(t2).fields.sg_sequence.name).toBe("SQ renamed");
  });

  it("drops an entry when its own key is bumped as a tag, with no index kept for it", async () => {
    const store = new MemoryStore({ maxBytes: 1e6 });
    await store.setIfFresh("rec:Shot:1", entry({ type: "Shot", id: 1, fields: {} }));
    await store.setIfFresh("rec:Shot:2", { ...entry({ type: "Shot", id: 2, fields: {} }), tags: ["rec:Shot:2", "ty:Shot"] });
    await store.bump(["rec:Shot:1"]);
    expect(await store.get("rec:Shot:1")).toBeUndefined();
    expect(await store.get("rec:Shot:2")).toBeDefined();
    await store.bump(["ty:Shot"]);
    expect(store.stats()).toEqual({ bytes: 0, entries: 0 });
  });
});

describe("synchronous validation", () => {
  let site: SimulatorHandle;
  let backend: ShotGridClient;
  const limits = { maxFields: 5, maxPageSize: 500, maxConditions: 50 };
  beforeAll(async () => {
    site = await startSimulator({ shots: 3, assets: 1 });
    backend = new ShotGridClient({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY });
  });
  afterAll(async () => {
    await backend?.close();
    await site?.close();
  });

  const outcome = async (run: () => unknown) => {
    try {
      return { ok: await run() };
    } catch (err) {
      return { error: (err as Error).message };
    }
  };

  it("cannot decide before the schema is loaded, then decides exactly as the async form", async () => {
    const schema = new SchemaRegistry(backend);
    const req = (init: Parameters<typeof create<typeof GetEntityRequestSchema>>[1]) => create(GetEntityRequestSchema, init);
    expect(validateGetEntityNow(req({ entityType: "Shot", id: 1, fields: ["code"] }), schema, limits)).toBeUndefined();
    const cases = [
      req({ entityType: "Shot", id: 1, fields: ["code", "code", "id", "description"] }),
      req({ entityType: "Shot", id: 1, fields: ["sg_sequence.Sequence.code"] }),
      req({ entityType: "Shot", id: 1, fields: ["nope"] }),
      req({ entityType: "Shot", id: 1, fields: ["code.x"] }),
      req({ entityType: "Shot", id: 1, fields: ["a", "b", "c", "d", "e", "f"] }),
      req({ entityType: "Shot", id: 1, fields: ["bad name"] }),
      req({ entityType: "Shot", id: 0 }),
      req({ entityType: "", id: 1 }),
      req({ entityType: "9x", id: 1 }),
    ];
    // The async form loads what it needs; then the sync form must agree on every case.
    const asyncOutcomes = [];
    for (const r of cases) asyncOutcomes.push(await outcome(() => validateGetEntity(r, schema, limits)));
    for (const [i, r] of cases.entries()) {
      expect(await outcome(() => validateGetEntityNow(r, schema, limits)), `case ${i}`).toEqual(asyncOutcomes[i]);
      // Asked again (memoised): the same.
      expect(await outcome(() => validateGetEntityNow(r, schema, limits)), `case ${i} again`).toEqual(asyncOutcomes[i]);
    }
    expect(asyncOutcomes[0]).toEqual({ ok: { entityType: "Shot", id: 1, fields: ["code", "description"] } });
    // An unknown type may be new on the site, but the list was asked within the refresh interval:
    // the sync form decides too, as the async form would (without asking the site again).
    expect(await outcome(() => validateGetEntityNow(req({ entityType: "Nope", id: 1 }), schema, limits))).toEqual(
      await outcome(() => validateGetEntity(req({ entityType: "Nope", id: 1 }), schema, limits)),
    );
    // After a schema change the memo is not trusted: undecided until loaded again.
    schema.invalidate("Shot");
    expect(validateGetEntityNow(cases[0]!, schema, limits)).toBeUndefined();
  });
});
