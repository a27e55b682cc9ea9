/**
 * The cache's invariants over every store backend (vitest projects "memory" and "redis"): fresh
 * after an event, no stale write-back, coalescing, honest freshness. The same scenarios as the
 * cache-*.test.ts files, with the store coming from the factory.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { ReadThroughCache } from "../../src/cache/index.ts";
import type { EntityQuery } from "../../src/cache/types.ts";
import { UnavailableError } from "../../src/shotgrid/errors.ts";
import { MiniSite, ObservedBackend, catchUp, seedMiniSite } from "../cache-helpers.ts";
import { useStoreFactory } from "./store-factory.ts";

const stores = useStoreFactory();

const shotsOf = (projectId: number, fields = ["code", "sg_sequence"]): EntityQuery => ({
  entityType: "Shot",
  filters: [["project", "is", { type: "Project", id: projectId }]],
  fields,
  order: [{ field: "code", direction: "asc" }],
  includeArchivedProjects: false,
  retired: false,
});

describe(`cache contract (${stores.kind})`, () => {
  let site: MiniSite;
  let backend: ObservedBackend;
  let seed: ReturnType<typeof seedMiniSite>;
  let now: number;
  const cacheOver = async (preloadTypes: string[], maxAgeMs = Infinity) =>
    new ReadThroughCache({ backend, store: await stores.create(), preloadTypes, maxAgeMs, now: () => now, lastAppliedEventId: await site.latestEventId() });

  beforeEach(() => {
    site = new MiniSite();
    seed = seedMiniSite(site);
    backend = new ObservedBackend(site);
    now = 1_000_000;
  });

  it("fresh after an event: a changed record, a query's membership, a renamed link", async () => {
    const cache = await cacheOver(["Shot"]);
    await cache.preload();
    const q = shotsOf(seed.projectA);
    expect((await cache.query(q)).value).toHaveLength(3);
    site.set("Shot", seed.shotsA[0]!, { sg_status_list: "ip" });
    site.add("Shot", { code: "A40", project: { type: "Project", id: seed.projectA } });
    site.set("Sequence", seed.seqA, { code: "SQ_A_RENAMED" });
    await catchUp(cache, site);
    await cache.whenIdle();
    const shot = await cache.getEntity("Shot", seed.shotsA[0]!, ["sg_status_list", "sg_sequence"]);
    expect(shot.value?.fields).toEqual({ sg_status_list: "ip", sg_sequence: { type: "Sequence", id: seed.seqA, name: "SQ_A_RENAMED" } });
    expect(shot.freshness.source).toBe("cache"); // refetched in the background, or patched in place
    const names = (await cache.query(q)).value.map((e) => (e.fields.sg_sequence as { name: string } | null)?.name ?? null);
    expect(names).toEqual(["SQ_A_RENAMED", "SQ_A_RENAMED", "SQ_A_RENAMED", null]);
  });

  it("no stale write-back: a fetch that began before an invalidation never fills the store", async () => {
    const cache = await cacheOver([]);
    const id = seed.shotsA[0]!;
    const gate = backend.holdNext("getEntity");
    const slow = cache.getEntity("Shot", id, ["code"]);
    await gate.reached;
    site.set("Shot", id, { code: "A10_NEW" });
    await catchUp(cache, site);
    gate.open();
    expect((await slow).value?.fields.code).toBe("A10");
    const next = await cache.getEntity("Shot", id, ["code"]);
    expect(next.value?.fields.code).toBe("A10_NEW");
    expect(next.freshness.source).toBe("shotgrid");

    const q = shotsOf(seed.projectB, ["code"]);
    const held = backend.holdNext("search");
    const slowQuery = cache.query(q);
    await held.reached;
    site.add("Shot", { code: "B99", project: { type: "Project", id: seed.projectB } });
    await catchUp(cache, site);
    held.open();
    expect((await slowQuery).value).toHaveLength(2);
    expect((await cache.query(q)).value).toHaveLength(3);
  });

  it("coalescing: concurrent identical misses make one upstream call, and the answer is then cached", async () => {
    const cache = await cacheOver([]);
    const gate = backend.holdNext("search");
    const q = shotsOf(seed.projectA, ["code"]);
    const answers = [cache.query(q), cache.query(q), cache.query({ ...q, fields: ["code", "code"] })];
    await gate.reached;
    gate.open();
    for (const a of await Promise.all(answers)) expect(a.value).toHaveLength(3);
    expect(backend.calls.search).toBe(1);
    expect((await cache.query(q)).freshness.source).toBe("cache");
    expect(backend.calls.search).toBe(1);
  });

  it("honest freshness: source, age and event id; stale only while the site is down; never an invalidated entry", async () => {
    const cache = await cacheOver(["Shot"], 60_000);
    await cache.preload();
    const q = shotsOf(seed.projectA, ["code"]);
    expect((await cache.query(q)).freshness).toEqual({ source: "shotgrid", ageMs: 0, asOfEventId: cache.lastAppliedEventId, stale: false });
    now += 1500;
    expect((await cache.query(q)).freshness).toEqual({ source: "cache", ageMs: 1500, asOfEventId: cache.lastAppliedEventId, stale: false });
    now += 120_000;
    site.down = true;
    expect((await cache.query(q)).freshness).toMatchObject({ source: "cache", stale: true, ageMs: 121_500 });
    await expect(cache.query(shotsOf(seed.projectB, ["code"]))).rejects.toBeInstanceOf(UnavailableError);
    site.down = false;
    site.set("Shot", seed.shotsA[0]!, { code: "A10_NEW" });
    await catchUp(cache, site);
    await cache.whenIdle();
    site.down = true;
    await expect(cache.query(q)).rejects.toBeInstanceOf(UnavailableError);
  });
});
