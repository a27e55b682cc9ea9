import { beforeEach, describe, expect, it } from "vitest";
import { MemoryEntityCache } from "../src/cache/index.ts";
import type { EntityQuery } from "../src/cache/types.ts";
import { UnavailableError } from "../src/shotgrid/errors.ts";
import { MiniSite, ObservedBackend, catchUp, seedMiniSite } from "./cache-helpers.ts";

describe("cache freshness and outages", () => {
  let site: MiniSite;
  let backend: ObservedBackend;
  let cache: MemoryEntityCache;
  let seed: ReturnType<typeof seedMiniSite>;
  let now: number;
  const q = (projectId: number): EntityQuery => ({
    entityType: "Shot",
    filters: [["project", "is", { type: "Project", id: projectId }]],
    fields: ["code"],
    order: [],
    includeArchivedProjects: false,
    retired: false,
  });

  beforeEach(async () => {
    site = new MiniSite();
    seed = seedMiniSite(site);
    backend = new ObservedBackend(site);
    now = 1_000_000;
    cache = new MemoryEntityCache({ backend, preloadTypes: ["Shot"], maxAgeMs: 60_000, now: () => now, lastAppliedEventId: await site.latestEventId() });
    await cache.preload();
  });

  it("every answer says where it came from, how old it is and as of which event", async () => {
    const fetched = await cache.query(q(seed.projectA));
    expect(fetched.freshness).toEqual({ source: "shotgrid", ageMs: 0, asOfEventId: cache.lastAppliedEventId, stale: false });
    now += 1500;
    const cached = await cache.query(q(seed.projectA));
    expect(cached.freshness).toEqual({ source: "cache", ageMs: 1500, asOfEventId: cache.lastAppliedEventId, stale: false });
  });

  it("refetches entries past max age", async () => {
    await cache.query(q(seed.projectA));
    now += 61_000;
    const before = backend.calls.search;
    const again = await cache.query(q(seed.projectA));
    expect(again.freshness.source).toBe("shotgrid");
    expect(backend.calls.search).toBe(before + 1);
    const shot = await cache.getEntity("Shot", seed.shotsA[0]!, ["code"]);
    expect(shot.freshness.source).toBe("shotgrid");
  });

  it("serves cached answers marked stale while the site is down, even past max age", async () => {
    await cache.query(q(seed.projectA));
    now += 120_000;
    site.down = true;
    const query = await cache.query(q(seed.projectA));
    expect(query.freshness).toMatchObject({ source: "cache", stale: true, ageMs: 120_000 });
    expect(query.value).toHaveLength(3);
    const shot = await cache.getEntity("Shot", seed.shotsA[0]!, ["code"]);
    expect(shot.freshness).toMatchObject({ source: "cache", stale: true });
    expect(shot.value?.fields.code).toBe("A10");
  });

  it("fails with UnavailableError for uncached answers while the site is down", async () => {
    site.down = true;
    await expect(cache.query(q(seed.projectB))).rejects.toBeInstanceOf(UnavailableError);
    await expect(cache.getEntity("Sequence", seed.seqA, ["code"])).rejects.toBeInstanceOf(UnavailableError);
  });

  it("never serves an entry an event invalidated, even while the site is down", async () => {
    await cache.query(q(seed.projectA));
    site.set("Shot", seed.shotsA[0]!, { code: "A10_NEW" });
    await catchUp(cache, site);
    await cache.whenIdle();
    site.down = true;
    await expect(cache.query(q(seed.projectA))).rejects.toBeInstanceOf(UnavailableError);
  });

  it("keeps what it has cached when a request is rejected upstream", async () => {
    await cache.query(q(seed.projectA));
    const rejecting = { ...q(seed.projectA), filters: [["code", "bogus_operator", "x"]] } as EntityQuery;
    await expect(cache.query(rejecting)).rejects.toThrow();
    site.down = true;
    expect((await cache.query(q(seed.projectA))).value).toHaveLength(3);
    expect((await cache.getEntity("Shot", seed.shotsA[0]!, ["code"])).freshness.source).toBe("cache");
  });
});
