/**
 * Two instances (two RedisStores with their own connections, as two processes would have) sharing
 * one redis-server: an invalidation by one holds for the other at once, near caches included.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ReadThroughCache, type StoredEntry } from "../src/cache/index.ts";
import { RedisStore } from "../src/cluster/index.ts";
import { MiniSite, ObservedBackend, catchUp, seedMiniSite } from "./cache-helpers.ts";
import { TestRedisServer, deletePrefix, randomPrefix } from "./support/redis-server.ts";

const entry = (value: unknown, seq: number, tags: string[], links?: string[]): StoredEntry => ({
  value,
  seq,
  fetchedAt: 1,
  asOfEventId: 0,
  tags,
  ...(links ? { links } : {}),
});

describe("redis store shared by two instances", () => {
  let server: TestRedisServer;
  let prefix: string;
  let a: RedisStore;
  let b: RedisStore;

  beforeAll(async () => {
    server = await TestRedisServer.start();
  });
  afterAll(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    prefix = randomPrefix();
    a = new RedisStore({ redis: { url: server.url, clientName: "instance-a" }, site: "https://studio.shotgrid.example", prefix });
    b = new RedisStore({ redis: { url: server.url, clientName: "instance-b" }, site: "https://studio.shotgrid.example", prefix });
    await Promise.all([a.ready(), b.ready()]);
  });
  afterEach(async () => {
    await deletePrefix(a.connection.command, prefix);
    await Promise.all([a.close(), b.close()]);
  });

  it("a bump on one instance invalidates the other's entry and near copy at once", async () => {
    const seq = await a.currentSeq();
    await a.setIfFresh("rec:Shot:1", entry("v1", seq, ["rec:Shot:1"]));
    expect((await b.get("rec:Shot:1"))?.value).toBe("v1"); // read from Redis, kept near
    expect((await b.get("rec:Shot:1"))?.value).toBe("v1"); // served near
    expect(b.nearCacheStats()).toMatchObject({ active: true, entries: 1, hits: 1 });
    await a.bump(["rec:Shot:1"]);
    // No wait for the pub/sub message: the clock check refuses the near copy.
    expect(await b.get("rec:Shot:1")).toBeUndefined();
    await expect.poll(() => b.nearCacheStats().entries).toBe(0); // and the message drops it
  });

  it("no stale write-back across instances: a fetch begun before the other's bump is not stored", async () => {
    const seqB = await b.currentSeq(); // instance B starts a fetch
    await a.bump(["rec:Shot:1"]); // instance A applies an event meanwhile
    expect(await b.setIfFresh("rec:Shot:1", entry("old", seqB, ["rec:Shot:1"]))).toBe(false);
    expect(await a.get("rec:Shot:1")).toBeUndefined();
    const later = await b.currentSeq();
    expect(await b.setIfFresh("rec:Shot:1", entry("new", later, ["rec:Shot:1"]))).toBe(true);
    expect((await a.get("rec:Shot:1"))?.value).toBe("new");
  });

  it("a rename patched by one instance is seen by the other, near copies included", async () => {
    const seq = await a.currentSeq();
    const shot = { type: "Shot", id: 1, fields: { sg_sequence: { type: "Sequence", id: 2, name: "SQ" } } };
    await a.setIfFresh("rec:Shot:1", entry(shot, seq, ["rec:Shot:1"], ["Sequence:2"]));
    await b.get("rec:Shot:1");
    expect(b.nearCacheStats().entries).toBe(1);
    await a.patchLinkName("Sequence:2", "SQ_NEW");
    const seen = await b.get("rec:Shot:1");
    expect((seen!.value as typeof shot).fields.sg_sequence.name).toBe("SQ_NEW");
  });

  it("a clear on one instance empties the other at once", async () => {
    const seq = await a.currentSeq();
    await a.setIfFresh("k", entry(1, seq, ["t"]));
    await b.get("k");
    await a.clear();
    expect(await b.get("k")).toBeUndefined();
    expect(await b.setIfFresh("k", entry(1, seq, ["t"]))).toBe(false);
  });

  it("two read-through caches over one Redis: a change applied by one is fresh on the other", async () => {
    const site = new MiniSite();
    const seed = seedMiniSite(site);
    const backendA = new ObservedBackend(site);
    const backendB = new ObservedBackend(site);
    const start = await site.latestEventId();
    const cacheA = new ReadThroughCache({ backend: backendA, store: a, preloadTypes: [], maxAgeMs: Infinity, lastAppliedEventId: start });
    const cacheB = new ReadThroughCache({ backend: backendB, store: b, preloadTypes: [], maxAgeMs: Infinity, lastAppliedEventId: start });
    const id = seed.shotsA[0]!;
    expect((await cacheA.getEntity("Shot", id, ["code"])).freshness.source).toBe("shotgrid");
    const shared = await cacheB.getEntity("Shot", id, ["code"]); // filled by A
    expect(shared.freshness.source).toBe("cache");
    expect(backendB.calls.getEntity).toBe(0);

    // B begins a fetch of another record; A (the follower's instance) applies a change to it.
    const other = seed.shotsA[1]!;
    const gate = backendB.holdNext("getEntity");
    const slow = cacheB.getEntity("Shot", other, ["code"]);
    await gate.reached;
    site.set("Shot", other, { code: "A20_NEW" });
    site.set("Shot", id, { code: "A10_NEW" });
    await catchUp(cacheA, site);
    gate.open();
    expect((await slow).value?.fields.code).toBe("A20"); // its caller gets it, marked shotgrid
    for (const [shotId, code] of [
      [id, "A10_NEW"],
      [other, "A20_NEW"],
    ] as const) {
      const answer = await cacheB.getEntity("Shot", shotId, ["code"]);
      expect(answer.value?.fields.code).toBe(code);
      expect(answer.freshness.source).toBe("shotgrid");
    }
  });
});
