/**
 * The cache's invariants end to end: the simulated site over real HTTP, the real REST client, and
 * direct writes into the site's store (which append event rows the way a site does).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startSimulator, DEFAULT_SCRIPT_KEY, type SimulatorHandle } from "../src/simulator/index.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import { UnavailableError } from "../src/shotgrid/errors.ts";
import { MemoryEntityCache } from "../src/cache/index.ts";
import type { EntityQuery } from "../src/cache/types.ts";
import type { EntityLink } from "../src/shotgrid/types.ts";
import { ObservedBackend, catchUp } from "./cache-helpers.ts";

let sim: SimulatorHandle;
let client: ShotGridClient;

beforeAll(async () => {
  sim = await startSimulator({ shots: 24, assets: 6 });
  client = new ShotGridClient({ siteUrl: sim.url, scriptName: sim.scriptName, scriptKey: DEFAULT_SCRIPT_KEY, maxRetries: 0 });
});

afterAll(async () => {
  await client?.close();
  await sim?.close();
});

interface ShotInfo {
  id: number;
  project: number;
  sequence: number;
}

function shotsByProject(): Map<number, ShotInfo[]> {
  const out = new Map<number, ShotInfo[]>();
  for (const r of sim.store.records("Shot")) {
    if (r.retired) continue;
    const project = (r.fields.project as EntityLink | undefined)?.id;
    const sequence = (r.fields.sg_sequence as EntityLink | undefined)?.id;
    if (!project || !sequence) continue;
    const list = out.get(project) ?? [];
    list.push({ id: r.id, project, sequence });
    out.set(project, list);
  }
  return out;
}

const shotQuery = (projectId: number, fields = ["code", "sg_sequence"]): EntityQuery => ({
  entityType: "Shot",
  filters: [["project", "is", { type: "Project", id: projectId }]],
  fields,
  order: [{ field: "id", direction: "asc" }],
  includeArchivedProjects: true,
  retired: false,
});

describe("cache over the simulated site", () => {
  let backend: ObservedBackend;
  let cache: MemoryEntityCache;
  let projectA: number;
  let projectB: number;
  let shotA: ShotInfo;

  beforeEach(async () => {
    sim.knobs.endOutage();
    backend = new ObservedBackend(client);
    // These tests hold the stored-answer path of Query; local answers: test/local-query-*.test.ts.
    cache = new MemoryEntityCache({ backend, maxAgeMs: Infinity, lastAppliedEventId: await client.latestEventId(), answerQueriesLocally: false });
    await cache.preload();
    const byProject = [...shotsByProject().entries()].filter(([, shots]) => shots.length > 0);
    expect(byProject.length).toBeGreaterThanOrEqual(2);
    [projectA, projectB] = [byProject[0]![0], byProject[1]![0]];
    shotA = byProject[0]![1][0]!;
  });

  it("answers preloaded GetEntity without going upstream", async () => {
    const before = backend.upstreamReads;
    const answer = await cache.getEntity("Shot", shotA.id, ["code", "project"]);
    expect(answer.freshness.source).toBe("cache");
    expect(answer.value?.fields.code).toBe(sim.store.get("Shot", shotA.id)!.fields.code);
    expect((await cache.getEntity("Shot", 987654, [])).value).toBeNull();
    expect(backend.upstreamReads).toBe(before);
  });

  it("is fresh after events: a change, query membership and a renamed linked Sequence", async () => {
    const q = shotQuery(projectA);
    const before = (await cache.query(q)).value.length;
    sim.store.update("Shot", shotA.id, { code: "RENAMED_SHOT" });
    const created = sim.store.create("Shot", {
      code: "NEW_SHOT",
      project: { type: "Project", id: projectA },
      sg_sequence: { type: "Sequence", id: shotA.sequence },
    });
    sim.store.update("Sequence", shotA.sequence, { code: "SEQ_RENAMED" });
    await catchUp(cache, client);
    await cache.whenIdle();
    const shot = await cache.getEntity("Shot", shotA.id, ["code", "sg_sequence"]);
    expect(shot.value?.fields.code).toBe("RENAMED_SHOT");
    expect((shot.value!.fields.sg_sequence as EntityLink).name).toBe("SEQ_RENAMED");
    // A sibling shot nobody changed: its stored record is patched, not refetched.
    const sibling = shotsByProject()
      .get(projectA)!
      .find((s) => s.sequence === shotA.sequence && s.id !== shotA.id && s.id !== created.id)!;
    const fetchesBefore = backend.calls.getEntity;
    const siblingAnswer = await cache.getEntity("Shot", sibling.id, ["sg_sequence"]);
    expect(siblingAnswer.freshness.source).toBe("cache");
    expect((siblingAnswer.value!.fields.sg_sequence as EntityLink).name).toBe("SEQ_RENAMED");
    expect(backend.calls.getEntity).toBe(fetchesBefore);
    const after = await cache.query(q);
    expect(after.value.length).toBe(before + 1);
    expect(after.value.find((e) => e.id === created.id)?.fields.code).toBe("NEW_SHOT");
    for (const e of after.value.filter((e) => (e.fields.sg_sequence as EntityLink | null)?.id === shotA.sequence)) {
      expect((e.fields.sg_sequence as EntityLink).name).toBe("SEQ_RENAMED");
    }
    sim.store.retire("Shot", created.id);
    await catchUp(cache, client);
    expect((await cache.query(q)).value.length).toBe(before);
    expect((await cache.getEntity("Shot", created.id, ["code"])).value).toBeNull();
  });

  it("a page ordered by a link's name follows a rename of a link not on the page", async () => {
    // The first page of shots by sequence name: a sequence renamed to sort first brings its
    // shots onto the page although none of them (nor the sequence) was on it.
    const q: EntityQuery = {
      entityType: "Shot",
      filters: [],
      fields: ["code"],
      order: [
        { field: "sg_sequence", direction: "asc" },
        { field: "code", direction: "asc" },
      ],
      limit: 2,
      page: 1,
      includeArchivedProjects: true,
      retired: false,
    };
    const site = () => client.search("Shot", { filters: [], fields: ["code"], sort: q.order, limit: 2, includeArchivedProjects: true });
    const first = await cache.query(q);
    expect(first.value).toEqual(await site());
    expect((await cache.query(q)).freshness.source).toBe("cache");
    const onPage = new Set(first.value.map((e) => (sim.store.get("Shot", e.id)!.fields.sg_sequence as EntityLink).id));
    const other = [...sim.store.records("Sequence")].find(
      (r) =>
        !r.retired &&
        !onPage.has(r.id) &&
        [...sim.store.records("Shot")].some((s) => !s.retired && (s.fields.sg_sequence as EntityLink | undefined)?.id === r.id),
    )!;
    sim.store.update("Sequence", other.id, { code: "0000_SORTS_FIRST" });
    await catchUp(cache, client);
    const after = await cache.query(q);
    expect(after.value).toEqual(await site());
    expect(after.value.every((e) => (sim.store.get("Shot", e.id)!.fields.sg_sequence as EntityLink).id === other.id)).toBe(true);
  });

  it("a change in project A keeps project B's cached Shot query a hit", async () => {
    await cache.query(shotQuery(projectA));
    await cache.query(shotQuery(projectB));
    sim.store.update("Shot", shotA.id, { description: "changed in A" });
    await catchUp(cache, client);
    expect((await cache.query(shotQuery(projectB))).freshness.source).toBe("cache");
    expect((await cache.query(shotQuery(projectA))).freshness.source).toBe("shotgrid");
  });

  it("never writes back a fetch that began before an invalidation", async () => {
    const q = shotQuery(projectA, ["code", "description"]);
    const gate = backend.holdNext("search");
    const slow = cache.query(q);
    await gate.reached;
    sim.store.update("Shot", shotA.id, { description: "after the fetch" });
    await catchUp(cache, client);
    gate.open();
    expect((await slow).value.find((e) => e.id === shotA.id)?.fields.description).not.toBe("after the fetch");
    const next = await cache.query(q);
    expect(next.freshness.source).toBe("shotgrid");
    expect(next.value.find((e) => e.id === shotA.id)?.fields.description).toBe("after the fetch");
  });

  it("coalesces identical concurrent misses into one upstream call", async () => {
    const before = backend.calls.search;
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => cache.query(shotQuery(projectB, i % 2 ? ["code", "sg_sequence"] : ["sg_sequence", "code"]))),
    );
    expect(backend.calls.search).toBe(before + 1);
    expect(new Set(answers.map((a) => a.value.length)).size).toBe(1);
  });

  it("keeps answering from cache, marked stale, while the site is down; uncached reads fail", async () => {
    const now = { t: Date.now() };
    const aged = new MemoryEntityCache({ backend, preloadTypes: ["Sequence"], maxAgeMs: 1000, now: () => now.t });
    await aged.preload();
    await aged.query(shotQuery(projectA));
    now.t += 5000;
    sim.knobs.setOutage();
    try {
      const q = await aged.query(shotQuery(projectA));
      expect(q.freshness).toMatchObject({ source: "cache", stale: true });
      const seq = await aged.getEntity("Sequence", shotA.sequence, ["code"]);
      expect(seq.freshness).toMatchObject({ source: "cache", stale: true });
      await expect(aged.query(shotQuery(projectB))).rejects.toBeInstanceOf(UnavailableError);
    } finally {
      sim.knobs.endOutage();
    }
  });

  it("stays within its byte bound", async () => {
    const small = new MemoryEntityCache({ backend, maxBytes: 20_000, maxAgeMs: Infinity });
    await small.preload();
    expect(small.store.stats().bytes).toBeLessThanOrEqual(20_000);
    const shot = await small.getEntity("Shot", shotA.id, ["code"]);
    expect(shot.value?.fields.code).toBe(sim.store.get("Shot", shotA.id)!.fields.code);
  });
});
