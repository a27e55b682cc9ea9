/**
 * Redis faults: the private redis-server is killed (SIGKILL) under load and restarted empty.
 * Nothing waits on it beyond a short bound, reads fall back to the Backend (source "shotgrid",
 * never a near copy), an event that could not be written to Redis keeps the store bypassed, and
 * caching resumes once it is back.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NOOP_CACHE_METRICS, ReadThroughCache, StoreUnavailableError, type CacheMetrics } from "../src/cache/index.ts";
import { RedisStore } from "../src/cluster/index.ts";
import { MiniSite, ObservedBackend, catchUp, seedMiniSite } from "./cache-helpers.ts";
import { TestRedisServer, randomPrefix } from "./support/redis-server.ts";

/** Fails the test if `promise` has not settled within `ms`: a hang, not a slow answer. */
async function settlesWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} hung for more than ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** Bound used by these tests: well above the command timeout (300 ms), far below a hang. */
const BOUND_MS = 3000;

describe("redis faults", () => {
  let server: TestRedisServer;
  let store: RedisStore;
  const unavailable: string[] = [];

  beforeEach(async () => {
    server = await TestRedisServer.start();
    store = new RedisStore({
      redis: { url: server.url, commandTimeoutMs: 300, connectTimeoutMs: 300, maxReconnectDelayMs: 100 },
      site: "fault-site",
      prefix: randomPrefix(),
    });
    await store.ready();
    unavailable.length = 0;
  });
  afterEach(async () => {
    await store.close();
    await server.stop();
  });

  it("every store operation fails fast with StoreUnavailableError while Redis is down", async () => {
    const seq = await store.currentSeq();
    await store.setIfFresh("k", { value: 1, seq, fetchedAt: 0, asOfEventId: 0, tags: ["t"] });
    await server.kill();
    await expect.poll(() => store.healthy).toBe(false);
    const ops: [string, () => Promise<unknown>][] = [
      ["get", () => store.get("k")],
      ["setIfFresh", () => store.setIfFresh("k", { value: 2, seq, fetchedAt: 0, asOfEventId: 0, tags: ["t"] })],
      ["currentSeq", () => store.currentSeq()],
      ["bump", () => store.bump(["t"])],
      ["patchLinkName", () => store.patchLinkName("Sequence:1", "x")],
      ["clear", () => store.clear()],
      ["delete", () => store.delete("k")],
    ];
    for (const [name, op] of ops) {
      const error = await settlesWithin(
        op().then(
          () => undefined,
          (e: unknown) => e,
        ),
        BOUND_MS,
        name,
      );
      expect(error, name).toBeInstanceOf(StoreUnavailableError);
      expect((error as StoreUnavailableError).message).not.toContain("redis://");
    }
  });

  it("killed mid-load and restarted: no read hangs, reads fall back to ShotGrid, no stale answer, caching resumes", async () => {
    const site = new MiniSite();
    const seed = seedMiniSite(site);
    const backend = new ObservedBackend(site);
    const metrics: CacheMetrics = { ...NOOP_CACHE_METRICS, storeUnavailable: (op) => void unavailable.push(op) };
    const cache = new ReadThroughCache({
      backend,
      store,
      preloadTypes: [],
      maxAgeMs: Infinity,
      metrics,
      storeRetryMs: 100,
      lastAppliedEventId: await site.latestEventId(),
    });
    const ids = [...seed.shotsA, ...seed.shotsB];
    for (const id of ids) await cache.getEntity("Shot", id, ["code"]);
    expect((await cache.getEntity("Shot", ids[0]!, ["code"])).freshness.source).toBe("cache");
    expect(store.nearCacheStats().entries).toBeGreaterThan(0);
    expect(cache.storeHealthy).toBe(true);

    // Load: readers keep asking while Redis dies.
    let stop = false;
    const sources = new Set<string>();
    const readers = Array.from({ length: 4 }, async (_, r) => {
      for (let i = 0; !stop; i++) {
        const id = ids[(i + r) % ids.length]!;
        const answer = await settlesWithin(cache.getEntity("Shot", id, ["code"]), BOUND_MS, "getEntity under load");
        expect(answer.value?.fields.code).toBeTypeOf("string");
        sources.add(answer.freshness.source);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await server.kill();
    await expect.poll(() => cache.storeHealthy).toBe(false);

    // Down: answers come from ShotGrid, never from the near cache.
    const before = backend.calls.getEntity;
    const down = await settlesWithin(cache.getEntity("Shot", ids[0]!, ["code"]), BOUND_MS, "getEntity while down");
    expect(down.freshness.source).toBe("shotgrid");
    expect(backend.calls.getEntity).toBeGreaterThan(before);
    // The subscriber's close may be reported a moment after the first failed command.
    await expect.poll(() => store.nearCacheStats()).toMatchObject({ active: false, entries: 0 });

    // An event arrives while Redis is down: applying it fails (the follower keeps its cursor).
    site.set("Shot", ids[0]!, { code: "A10_NEW" });
    await expect(settlesWithin(catchUp(cache, site), BOUND_MS, "applyEvents while down")).rejects.toBeInstanceOf(StoreUnavailableError);
    expect((await cache.getEntity("Shot", ids[0]!, ["code"])).value?.fields.code).toBe("A10_NEW");

    await server.restart();
    await expect.poll(() => store.healthy, { timeout: 5000 }).toBe(true);
    // Until the failed invalidation is applied, the store stays bypassed.
    expect(cache.storeHealthy).toBe(false);
    await catchUp(cache, site); // the follower's retry
    // (A reader that failed during the reconnection may hold the short storeRetryMs skip a moment longer.)
    await expect.poll(() => cache.storeHealthy).toBe(true);
    stop = true;
    await Promise.all(readers);
    expect(sources.has("shotgrid")).toBe(true);
    expect(unavailable.length).toBeGreaterThan(0);

    // Caching resumes, and nothing from before the outage comes back.
    const first = await cache.getEntity("Shot", ids[0]!, ["code"]);
    expect(first.value?.fields.code).toBe("A10_NEW");
    await expect.poll(async () => (await cache.getEntity("Shot", ids[0]!, ["code"])).freshness.source).toBe("cache");
    expect((await cache.getEntity("Shot", ids[0]!, ["code"])).value?.fields.code).toBe("A10_NEW");
  });

  it("a frozen Redis (SIGSTOP) costs a read at most a command timeout, then is skipped until it answers", async () => {
    const site = new MiniSite();
    const seed = seedMiniSite(site);
    const cache = new ReadThroughCache({ backend: new ObservedBackend(site), store, preloadTypes: [], maxAgeMs: Infinity, storeRetryMs: 100 });
    await cache.getEntity("Shot", seed.shotsA[0]!, ["code"]);
    server.pause();
    try {
      const answers = await settlesWithin(
        Promise.all(seed.shotsA.map((id) => cache.getEntity("Shot", id, ["code"]))),
        BOUND_MS,
        "getEntity against a frozen redis",
      );
      for (const a of answers) expect(a.freshness.source).toBe("shotgrid");
      expect(cache.storeHealthy).toBe(false);
      expect(store.healthy).toBe(false);
    } finally {
      server.resume();
    }
    await expect.poll(() => store.healthy, { timeout: 5000 }).toBe(true);
    await expect.poll(async () => (await cache.getEntity("Shot", seed.shotsA[1]!, ["code"])).freshness.source).toBe("cache");
  });

  it("a fetch begun before Redis lost its data cannot store after the restart", async () => {
    const seq = await store.currentSeq();
    await server.restart(); // empty: clock, bump records and entries are gone
    await expect.poll(() => store.healthy, { timeout: 5000 }).toBe(true);
    // The clock never goes back, and everything fetched before the loss is refused.
    expect(await store.currentSeq()).toBeGreaterThan(seq);
    expect(await store.setIfFresh("k", { value: "from before", seq, fetchedAt: 0, asOfEventId: 0, tags: ["t"] })).toBe(false);
  });
});
