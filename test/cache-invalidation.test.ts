import { beforeEach, describe, expect, it } from "vitest";
import { MemoryEntityCache } from "../src/cache/index.ts";
import type { EntityQuery } from "../src/cache/types.ts";
import { MiniSite, ObservedBackend, catchUp, seedMiniSite } from "./cache-helpers.ts";

const shotsOf = (projectId: number, fields = ["code", "sg_sequence"]): EntityQuery => ({
  entityType: "Shot",
  filters: [["project", "is", { type: "Project", id: projectId }]],
  fields,
  order: [{ field: "code", direction: "asc" }],
  includeArchivedProjects: false,
  retired: false,
});

describe("cache invalidation by events", () => {
  let site: MiniSite;
  let backend: ObservedBackend;
  let cache: MemoryEntityCache;
  let seed: ReturnType<typeof seedMiniSite>;

  beforeEach(async () => {
    site = new MiniSite();
    seed = seedMiniSite(site);
    backend = new ObservedBackend(site);
    cache = new MemoryEntityCache({ backend, maxAgeMs: Infinity, lastAppliedEventId: await site.latestEventId() });
    await cache.preload();
  });

  it("answers GetEntity for preloaded types without going upstream, including ids that do not exist", async () => {
    expect(cache.preloadState).toEqual({ ready: true, reason: "preload done" });
    const before = backend.upstreamReads;
    const shot = await cache.getEntity("Shot", seed.shotsA[0]!, ["code", "project"]);
    expect(shot.value?.fields).toEqual({ code: "A10", project: { type: "Project", id: seed.projectA, name: "Alpha" } });
    expect(shot.freshness.source).toBe("cache");
    expect((await cache.getEntity("Shot", 9999, [])).value).toBeNull();
    expect(backend.upstreamReads).toBe(before);
  });

  it("serves the default fields for an empty field list", async () => {
    const shot = await cache.getEntity("Shot", seed.shotsA[0]!, []);
    expect(Object.keys(shot.value!.fields).sort()).toEqual(["code", "description", "project", "sg_status_list"]);
  });

  it("a changed record is fresh after its event, and a preloaded one is refetched in the background", async () => {
    const id = seed.shotsA[0]!;
    site.set("Shot", id, { sg_status_list: "ip" });
    await catchUp(cache, site);
    await cache.whenIdle();
    const before = backend.upstreamReads;
    const shot = await cache.getEntity("Shot", id, ["sg_status_list"]);
    expect(shot.value?.fields.sg_status_list).toBe("ip");
    expect(shot.freshness.source).toBe("cache");
    expect(shot.freshness.asOfEventId).toBe(cache.lastAppliedEventId);
    expect(backend.upstreamReads).toBe(before);
  });

  it("query membership follows New, Retirement and Revival", async () => {
    const q = shotsOf(seed.projectA, ["code"]);
    expect((await cache.query(q)).value.map((e) => e.fields.code)).toEqual(["A10", "A20", "A30"]);
    const created = site.add("Shot", { code: "A40", project: { type: "Project", id: seed.projectA } });
    await catchUp(cache, site);
    expect((await cache.query(q)).value.map((e) => e.fields.code)).toEqual(["A10", "A20", "A30", "A40"]);
    expect((await cache.getEntity("Shot", created, ["code"])).value?.fields.code).toBe("A40");
    site.retire("Shot", seed.shotsA[1]!);
    await catchUp(cache, site);
    expect((await cache.query(q)).value.map((e) => e.fields.code)).toEqual(["A10", "A30", "A40"]);
    expect((await cache.getEntity("Shot", seed.shotsA[1]!, ["code"])).value).toBeNull();
    await site.revive("Shot", seed.shotsA[1]!);
    await catchUp(cache, site);
    expect((await cache.query(q)).value.map((e) => e.fields.code)).toEqual(["A10", "A20", "A30", "A40"]);
    expect((await cache.getEntity("Shot", seed.shotsA[1]!, ["code"])).value?.fields.code).toBe("A20");
  });

  it("a renamed Sequence does not live on in cached Shots or cached queries, and records are patched without refetching", async () => {
    const q = shotsOf(seed.projectA);
    const names = async () => (await cache.query(q)).value.map((e) => (e.fields.sg_sequence as { name: string }).name);
    expect(await names()).toEqual(["SQ_A", "SQ_A", "SQ_A"]);
    site.set("Sequence", seed.seqA, { code: "SQ_A_RENAMED" });
    await catchUp(cache, site);
    await cache.whenIdle();
    const before = backend.calls.getEntity;
    for (const id of seed.shotsA) {
      const shot = await cache.getEntity("Shot", id, ["sg_sequence"]);
      expect(shot.freshness.source).toBe("cache");
      expect(shot.value?.fields.sg_sequence).toEqual({ type: "Sequence", id: seed.seqA, name: "SQ_A_RENAMED" });
    }
    expect(backend.calls.getEntity).toBe(before);
    expect(await names()).toEqual(["SQ_A_RENAMED", "SQ_A_RENAMED", "SQ_A_RENAMED"]);
  });

  it("a query reading through a deep path is invalidated by changes to the type it reads", async () => {
    const q: EntityQuery = { ...shotsOf(seed.projectA, ["code"]), filters: [["sg_sequence.Sequence.description", "is", "hero"]] };
    expect((await cache.query(q)).value).toEqual([]);
    site.set("Sequence", seed.seqA, { description: "hero" });
    await catchUp(cache, site);
    expect((await cache.query(q)).value.map((e) => e.fields.code)).toEqual(["A10", "A20", "A30"]);
  });

  it("a change in project A keeps project B's cached Shot query a hit", async () => {
    await cache.query(shotsOf(seed.projectA));
    await cache.query(shotsOf(seed.projectB));
    site.set("Shot", seed.shotsA[0]!, { code: "A10_NEW" });
    await catchUp(cache, site);
    await cache.whenIdle();
    const b = await cache.query(shotsOf(seed.projectB));
    expect(b.freshness.source).toBe("cache");
    const a = await cache.query(shotsOf(seed.projectA));
    expect(a.freshness.source).toBe("shotgrid");
    expect(a.value[0]!.fields.code).toBe("A10_NEW");
  });

  it("a query without a project scope is invalidated by a change in any project", async () => {
    const all: EntityQuery = { ...shotsOf(seed.projectA, ["code"]), filters: [["sg_status_list", "is", "wtg"]] };
    expect((await cache.query(all)).value).toHaveLength(5);
    site.set("Shot", seed.shotsB[0]!, { sg_status_list: "ip" });
    await catchUp(cache, site);
    const after = await cache.query(all);
    expect(after.freshness.source).toBe("shotgrid");
    expect(after.value).toHaveLength(4);
  });

  it("ignores events that are not entity changes but advances the cursor", async () => {
    await cache.query(shotsOf(seed.projectA));
    site.login();
    await catchUp(cache, site);
    expect(cache.lastAppliedEventId).toBe(await site.latestEventId());
    expect((await cache.query(shotsOf(seed.projectA))).freshness.source).toBe("cache");
  });

  it("non-preloaded types are cached on demand and dropped by their events", async () => {
    const small = new MemoryEntityCache({ backend, preloadTypes: [], maxAgeMs: Infinity });
    await catchUp(small, site);
    expect((await small.getEntity("Sequence", seed.seqB, ["code"])).freshness.source).toBe("shotgrid");
    expect((await small.getEntity("Sequence", seed.seqB, ["code"])).freshness.source).toBe("cache");
    site.set("Sequence", seed.seqB, { code: "SQ_B2" });
    await catchUp(small, site);
    const after = await small.getEntity("Sequence", seed.seqB, ["code"]);
    expect(after.freshness.source).toBe("shotgrid");
    expect(after.value?.fields.code).toBe("SQ_B2");
  });

  it("an entity event that does not say which record changed drops the whole type", async () => {
    await cache.query(shotsOf(seed.projectB));
    site.set("Shot", seed.shotsB[0]!, { code: "B10_SILENT" });
    const next = (await site.readEvents({ afterId: cache.lastAppliedEventId })).at(-1)!;
    await cache.applyEvents([{ ...next, entity: null, meta: null, project: null }]);
    const shot = await cache.getEntity("Shot", seed.shotsB[0]!, ["code"]);
    expect(shot.value?.fields.code).toBe("B10_SILENT");
    expect(shot.freshness.source).toBe("shotgrid");
    expect((await cache.query(shotsOf(seed.projectB))).value[0]!.fields.code).toBe("B10_SILENT");
    const before = backend.calls.getEntity;
    expect((await cache.getEntity("Shot", 9999, [])).value).toBeNull();
    expect(backend.calls.getEntity).toBe(before + 1);
  });
});
