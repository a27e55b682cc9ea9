/**
 * The mirror behind local Query answers stays exact: a change, a creation, a retirement, a
 * rename and an archived project show in local answers as soon as `applyEvents` resolves (that
 * is, before the follower publishes them to streams), and while a changed record's refetch is
 * still out, queries over its type go to the site instead of answering from the older state.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ReadThroughCache, NOOP_CACHE_METRICS } from "../src/cache/index.ts";
import type { EntityQuery } from "../src/cache/types.ts";
import { Mirror } from "../src/local-query/index.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import type { Entity, EntityLink } from "../src/shotgrid/types.ts";
import { DEFAULT_SCRIPT_KEY, type SimulatorHandle, startSimulator } from "../src/simulator/index.ts";
import { catchUp, ObservedBackend } from "./cache-helpers.ts";

let sim: SimulatorHandle;
let client: ShotGridClient;

beforeAll(async () => {
  sim = await startSimulator({ shots: 30, assets: 4 });
  client = new ShotGridClient({ siteUrl: sim.url, scriptName: sim.scriptName, scriptKey: DEFAULT_SCRIPT_KEY, maxRetries: 0 });
});

afterAll(async () => {
  await client?.close();
  await sim?.close();
});

let backend: ObservedBackend;
let cache: ReadThroughCache;
const answers: Array<{ where: string; reason: string }> = [];

beforeEach(async () => {
  backend = new ObservedBackend(client);
  answers.length = 0;
  const metrics = {
    ...NOOP_CACHE_METRICS,
    queryAnswered: (where: string, reason: string) => void answers.push({ where, reason }),
  };
  cache = new ReadThroughCache({ backend, metrics, lastAppliedEventId: await client.latestEventId() });
  await cache.preload();
});

function firstShot(): { id: number; sequence: number; project: number } {
  const r = [...sim.store.records("Shot")].find((s) => !s.retired && s.fields.sg_sequence)!;
  return { id: r.id, sequence: (r.fields.sg_sequence as EntityLink).id, project: (r.fields.project as EntityLink).id };
}

const bySequence = (sequence: number): EntityQuery => ({
  entityType: "Shot",
  filters: [["sg_sequence", "is", { type: "Sequence", id: sequence }]],
  fields: ["code", "sg_status_list", "sg_sequence"],
  order: [{ field: "code", direction: "asc" }],
  includeArchivedProjects: false,
  retired: false,
});

/** The site's own answer to the same question (through the REST client, no cache). */
async function siteAnswer(q: EntityQuery): Promise<Entity[]> {
  return client.search(q.entityType, {
    filters: q.filters,
    fields: q.fields,
    sort: q.order,
    includeArchivedProjects: q.includeArchivedProjects,
  });
}

describe("local answers over the mirror", () => {
  it("answer a preloaded type's Query with no upstream search, the site's answer entity for entity", async () => {
    const shot = firstShot();
    const searches = backend.calls.search;
    const answer = await cache.query(bySequence(shot.sequence));
    expect(backend.calls.search).toBe(searches);
    expect(answers.at(-1)).toEqual({ where: "local", reason: "none" });
    expect(answer.freshness.source).toBe("cache");
    expect(answer.value).toEqual(await siteAnswer(bySequence(shot.sequence)));
  });

  it("hold a change, a creation and a retirement as soon as applyEvents resolves", async () => {
    const shot = firstShot();
    const q = bySequence(shot.sequence);
    await cache.query(q);
    sim.store.update("Shot", shot.id, { code: "AAA_FIRST", sg_status_list: "fin" });
    const created = sim.store.create("Shot", {
      code: "ZZZ_LAST",
      project: { type: "Project", id: shot.project },
      sg_sequence: { type: "Sequence", id: shot.sequence },
    });
    const gone = [...sim.store.records("Shot")].find(
      (s) => !s.retired && (s.fields.sg_sequence as EntityLink | null)?.id === shot.sequence && s.id !== shot.id,
    )!;
    sim.store.retire("Shot", gone.id);
    await catchUp(cache, client);
    // No whenIdle(): the refetch is part of applying the batch.
    const searches = backend.calls.search;
    const after = await cache.query(q);
    expect(backend.calls.search).toBe(searches);
    expect(answers.at(-1)?.where).toBe("local");
    expect(after.value[0]).toMatchObject({ id: shot.id, fields: { code: "AAA_FIRST", sg_status_list: "fin" } });
    expect(after.value.at(-1)).toMatchObject({ id: created.id, fields: { code: "ZZZ_LAST" } });
    expect(after.value.some((e) => e.id === gone.id)).toBe(false);
    expect(after.value).toEqual(await siteAnswer(q));
  });

  it("go to the site while a changed record's refetch is out, never answering from the older state", async () => {
    const shot = firstShot();
    const q = bySequence(shot.sequence);
    // A new code is a new display name: refetched, never applied from the event's meta (a
    // status change could be, with no refetch to hold: local-query-event-updates.test.ts).
    sim.store.update("Shot", shot.id, { code: "AAB_REFETCHED" });
    const gate = backend.holdNext("search");
    const applying = catchUp(cache, client);
    await gate.reached;
    const during = await cache.query(q);
    expect(answers.at(-1)).toEqual({ where: "upstream", reason: "records_refreshing" });
    expect(during.value.find((e) => e.id === shot.id)?.fields.code).toBe("AAB_REFETCHED");
    gate.open();
    await applying;
    const after = await cache.query(q);
    // The site's answer fetched during the refetch (already after the change) was kept like any
    // answer: asking again is a plain hit, neither evaluated nor fetched again.
    expect(answers.at(-1)).toEqual({ where: "upstream", reason: "records_refreshing" });
    expect(after.freshness.source).toBe("cache");
    expect(after.value.find((e) => e.id === shot.id)?.fields.code).toBe("AAB_REFETCHED");
  });

  it("show a renamed Sequence in links, name filters and link order at once", async () => {
    const shot = firstShot();
    sim.store.update("Sequence", shot.sequence, { code: "aaa_renamed_seq" });
    await catchUp(cache, client);
    const q: EntityQuery = {
      entityType: "Shot",
      filters: [["sg_sequence", "name_starts_with", "AAA_REN"]],
      fields: ["sg_sequence", "sg_sequence.Sequence.code"],
      order: [{ field: "sg_sequence", direction: "asc" }],
      includeArchivedProjects: true,
      retired: false,
    };
    const answer = await cache.query(q);
    expect(answers.at(-1)?.where).toBe("local");
    expect(answer.value.length).toBeGreaterThan(0);
    for (const e of answer.value) expect((e.fields.sg_sequence as EntityLink).name).toBe("aaa_renamed_seq");
    expect(answer.value).toEqual(await siteAnswer(q));
  });

  it("hold one link object per linked record and name, a renamed one replaced for every record showing it", async () => {
    const shot = firstShot();
    const held = () =>
      [...cache.localQueries.mirror.typeMirror("Shot")!.records.values()].filter((r) => (r.fields.sg_sequence as EntityLink | null)?.id === shot.sequence);
    const before = held();
    expect(before.length).toBeGreaterThan(1);
    // One object for the link of every shot of the sequence (a million shots share a few hundred sequences).
    expect(new Set(before.map((r) => r.fields.sg_sequence)).size).toBe(1);
    expect(Object.isFrozen(before[0]!.fields.sg_sequence)).toBe(true);
    sim.store.update("Sequence", shot.sequence, { code: "shared_link_renamed" });
    await catchUp(cache, client);
    const after = held();
    expect(new Set(after.map((r) => r.fields.sg_sequence)).size).toBe(1);
    expect((after[0]!.fields.sg_sequence as EntityLink).name).toBe("shared_link_renamed");
    const answer = await cache.query(bySequence(shot.sequence));
    expect(answers.at(-1)?.where).toBe("local");
    expect(answer.value).toEqual(await siteAnswer(bySequence(shot.sequence)));
  });

  it("leave out an archived project's records once its archiving is applied", async () => {
    const shot = firstShot();
    const q: EntityQuery = { ...bySequence(shot.sequence), filters: [] };
    expect((await cache.query(q)).value.some((e) => e.id === shot.id)).toBe(true);
    sim.store.update("Project", shot.project, { archived: true });
    try {
      await catchUp(cache, client);
      const answer = await cache.query(q);
      expect(answers.at(-1)?.where).toBe("local");
      expect(answer.value.some((e) => e.id === shot.id)).toBe(false);
      expect(answer.value).toEqual(await siteAnswer(q));
    } finally {
      sim.store.update("Project", shot.project, { archived: false });
    }
  });

  it("decline what the mirror does not hold: retired records, types not preloaded", async () => {
    await cache.query({ ...bySequence(firstShot().sequence), retired: true });
    expect(answers.at(-1)).toEqual({ where: "upstream", reason: "retired_records" });
    await cache.query({ entityType: "Task", filters: [], fields: ["content"], order: [], includeArchivedProjects: true, retired: false });
    expect(answers.at(-1)).toEqual({ where: "upstream", reason: "type_not_mirrored" });
  });
});

describe("the mirror's shared link objects", () => {
  it("are let go once no record shows them: the map is made again from the records, a slice per turn, when it has doubled", async () => {
    const mirror = new Mirror(["Shot"]);
    const shot = (id: number, sequence: number): Entity => ({
      type: "Shot",
      id,
      fields: { code: `sh${id}`, sg_sequence: { type: "Sequence", id: sequence, name: `seq${sequence}` }, project: { type: "Project", id: 1, name: "demo" } },
    });
    // Thousands of shots that stay, and ten moved from sequence to sequence 140,000 times: a
    // service up for months whose records link to ever new records. Every sequence link but the
    // current ones is garbage.
    const stay = 10_000;
    for (let id = 100; id < 100 + stay; id++) mirror.put(shot(id, id % 50), mirror.generation());
    let peak = 0;
    let held = 0;
    for (let i = 0; i < 140_000; i++) {
      if (mirror.put(shot(i % 10, 1000 + i), mirror.generation())) held++;
      peak = Math.max(peak, mirror.heldLinks);
      // The service's event loop turns between event batches: the remaking goes on in between.
      if (i % 500 === 0) await new Promise(setImmediate);
    }
    await new Promise(setImmediate);
    await new Promise(setImmediate);
    await new Promise(setImmediate);
    expect(held).toBe(140_000);
    // The map grows to the bound, then is made again (over a few turns) from what the records
    // show: 61 links (the ten moving shots' sequences, 50 others, the project) and the few put meanwhile.
    expect(peak).toBeGreaterThan(65_536);
    expect(peak).toBeLessThan(65_536 + 2_000);
    expect(mirror.heldLinks).toBeLessThan(140_000 - 65_536);
    // Records still share one object per link, across remakings of the map.
    const records = mirror.typeMirror("Shot")!.records;
    expect(new Set([...records.values()].map((r) => r.fields.project)).size).toBe(1);
    const again = (id: number, like: number) =>
      mirror.put(
        { ...shot(id, 0), fields: { ...shot(id, 0).fields, sg_sequence: { ...(records.get(like)!.fields.sg_sequence as EntityLink) } } },
        mirror.generation(),
      );
    again(100_000, 100);
    again(100_001, 9);
    expect(records.get(100_000)!.fields.sg_sequence).toBe(records.get(100)!.fields.sg_sequence);
    expect(records.get(100_001)!.fields.sg_sequence).toBe(records.get(9)!.fields.sg_sequence);
    expect(records.get(100_000)!.fields.project).toBe(records.get(100)!.fields.project);
  });
});

describe("a rename applied to the mirror (relink)", () => {
  it("patches the link in single and multi-entity fields, marks the records showing a link of unknown name, and leaves the rest as they were", () => {
    const mirror = new Mirror(["Shot"]);
    const asset = (id: number, name: string) => ({ type: "Asset", id, name });
    const put = (id: number, fields: Entity["fields"]) => mirror.put({ type: "Shot", id, fields }, mirror.generation());
    put(1, { code: "a", sg_sequence: { type: "Sequence", id: 7, name: "old" }, assets: [asset(1, "tree"), asset(2, "rock")] });
    put(2, { code: "b", sg_sequence: { type: "Sequence", id: 8, name: "other" }, assets: [asset(2, "rock")] });
    put(3, { code: "c", sg_sequence: null, assets: [asset(3, "cloud")] });
    put(4, { code: "d", sg_sequence: { type: "Sequence", id: 9, name: "gone" }, assets: [] });
    const records = mirror.typeMirror("Shot")!.records;
    const untouched = records.get(3);
    mirror.deferRelink("Sequence", 7, "new");
    mirror.deferRelink("Asset", 2, "boulder");
    // An Asset id equal to a renamed Sequence's, and a Sequence whose new name is unknown.
    mirror.deferRelink("Asset", 7, "unused");
    mirror.deferRelink("Sequence", 9, undefined);
    expect(mirror.relinking).toBe(true);
    const marked = mirror.relink();
    expect(mirror.relinking).toBe(false);
    expect(marked).toEqual([{ type: "Shot", id: 4 }]);
    expect(records.get(1)!.fields).toEqual({
      code: "a",
      sg_sequence: { type: "Sequence", id: 7, name: "new" },
      assets: [asset(1, "tree"), asset(2, "boulder")],
    });
    expect(records.get(2)!.fields).toEqual({ code: "b", sg_sequence: { type: "Sequence", id: 8, name: "other" }, assets: [asset(2, "boulder")] });
    expect(records.get(3)).toBe(untouched);
    expect(mirror.relink()).toEqual([]);
  });
});
