import { beforeEach, describe, expect, it } from "vitest";
import { MemoryEntityCache } from "../src/cache/index.ts";
import type { EntityQuery } from "../src/cache/types.ts";
import { AbortedError } from "../src/shotgrid/errors.ts";
import { MiniSite, ObservedBackend, catchUp, seedMiniSite } from "./cache-helpers.ts";

describe("cache races: no stale write-back, coalescing", () => {
  let site: MiniSite;
  let backend: ObservedBackend;
  let cache: MemoryEntityCache;
  let seed: ReturnType<typeof seedMiniSite>;

  beforeEach(async () => {
    site = new MiniSite();
    seed = seedMiniSite(site);
    backend = new ObservedBackend(site);
    cache = new MemoryEntityCache({ backend, preloadTypes: [], maxAgeMs: Infinity, lastAppliedEventId: await site.latestEventId() });
  });

  it("a record fetched before an invalidation is returned to its caller but never stored", async () => {
    const id = seed.shotsA[0]!;
    const gate = backend.holdNext("getEntity");
    const slow = cache.getEntity("Shot", id, ["code"]);
    await gate.reached; // the fetch has read code A10 and is held before the cache sees it
    site.set("Shot", id, { code: "A10_NEW" });
    await catchUp(cache, site);
    gate.open();
    const answer = await slow;
    expect(answer.value?.fields.code).toBe("A10");
    expect(answer.freshness.source).toBe("shotgrid");
    const next = await cache.getEntity("Shot", id, ["code"]);
    expect(next.value?.fields.code).toBe("A10_NEW");
    expect(next.freshness.source).toBe("shotgrid");
  });

  it("a query fetched before an invalidation never fills the cache", async () => {
    const q: EntityQuery = {
      entityType: "Shot",
      filters: [["project", "is", { type: "Project", id: seed.projectA }]],
      fields: ["code"],
      order: [],
      includeArchivedProjects: false,
      retired: false,
    };
    const gate = backend.holdNext("search");
    const slow = cache.query(q);
    await gate.reached;
    site.add("Shot", { code: "A99", project: { type: "Project", id: seed.projectA } });
    await catchUp(cache, site);
    gate.open();
    expect((await slow).value).toHaveLength(3);
    const next = await cache.query(q);
    expect(next.value).toHaveLength(4);
    expect(next.freshness.source).toBe("shotgrid");
  });

  it("a record fetched before a linked entity's rename is not stored with the old name", async () => {
    const id = seed.shotsA[0]!;
    const gate = backend.holdNext("getEntity");
    const slow = cache.getEntity("Shot", id, ["sg_sequence"]);
    await gate.reached;
    site.set("Sequence", seed.seqA, { code: "SQ_RENAMED" });
    await catchUp(cache, site);
    gate.open();
    await slow;
    const next = await cache.getEntity("Shot", id, ["sg_sequence"]);
    expect((next.value!.fields.sg_sequence as { name: string }).name).toBe("SQ_RENAMED");
  });

  it("a caller arriving after an invalidation does not join a fetch that began before it", async () => {
    const id = seed.shotsA[0]!;
    const gate = backend.holdNext("getEntity");
    const early = cache.getEntity("Shot", id, ["code"]);
    await gate.reached;
    site.set("Shot", id, { code: "A10_NEW" });
    await catchUp(cache, site);
    const late = await cache.getEntity("Shot", id, ["code"]);
    expect(late.value?.fields.code).toBe("A10_NEW");
    gate.open();
    await early;
  });

  it("concurrent identical misses make one upstream call", async () => {
    const gate = backend.holdNext("search");
    const q = (fields: string[]): EntityQuery => ({
      entityType: "Shot",
      filters: [["sg_status_list", "is", "wtg"]],
      fields,
      order: [],
      includeArchivedProjects: false,
      retired: false,
    });
    const answers = [cache.query(q(["code", "project"])), cache.query(q(["project", "code"])), cache.query(q(["code", "project", "code"]))];
    await gate.reached;
    answers.push(cache.query(q(["project", "code"])));
    gate.open();
    const results = await Promise.all(answers);
    expect(backend.calls.search).toBe(1);
    for (const r of results) expect(r.value).toHaveLength(5);
    const records = await Promise.all(Array.from({ length: 5 }, () => cache.getEntity("Sequence", seed.seqA, ["code"])));
    expect(backend.calls.getEntity).toBe(1);
    expect(records.every((r) => r.value?.fields.code === "SQ_A")).toBe(true);
  });

  it("one caller's abort does not abort the shared fetch for the others", async () => {
    const gate = backend.holdNext("getEntity");
    const controller = new AbortController();
    const aborted = cache.getEntity("Shot", seed.shotsB[0]!, ["code"], controller.signal);
    const other = cache.getEntity("Shot", seed.shotsB[0]!, ["code"]);
    await gate.reached;
    controller.abort();
    await expect(aborted).rejects.toBeInstanceOf(AbortedError);
    gate.open();
    expect((await other).value?.fields.code).toBe("B10");
    expect(backend.calls.getEntity).toBe(1);
    expect((await cache.getEntity("Shot", seed.shotsB[0]!, ["code"])).freshness.source).toBe("cache");
  });
});
