/**
 * The near cache: the rules that keep it exact (unit), and a real pub/sub disconnect (CLIENT KILL
 * TYPE pubsub on a private redis-server) flushing it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { StoredEntry } from "../src/cache/index.ts";
import { NearCache, RedisStore } from "../src/cluster/index.ts";
import { TestRedisServer, deletePrefix, randomPrefix } from "./support/redis-server.ts";

const entry = (value: unknown, tags: string[], links?: string[]): StoredEntry => ({
  value,
  seq: 1,
  fetchedAt: 1,
  asOfEventId: 0,
  tags,
  ...(links ? { links } : {}),
});

describe("near cache rules", () => {
  it("is bypassed until activated, and flushed and bypassed again when deactivated", async () => {
    const near = new NearCache();
    await near.keep("k", entry("v", ["t"]), 5);
    expect(await near.peek("k")).toBeUndefined(); // not subscribed yet: nothing kept
    near.activate(5);
    await near.keep("k", entry("v", ["t"]), 5);
    expect((await near.peek("k"))?.value).toBe("v");
    near.deactivate();
    expect(await near.peek("k")).toBeUndefined();
    near.activate(5);
    expect(await near.peek("k")).toBeUndefined(); // flushed, not just hidden
  });

  it("does not keep an entry read before an invalidation it has already seen", async () => {
    const near = new NearCache();
    near.activate(10);
    await near.apply({ seq: 11, tags: ["other"] });
    await near.keep("k", entry("read at 10", ["t"]), 10); // a message newer than the read was seen
    expect(await near.peek("k")).toBeUndefined();
    await near.keep("k", entry("read at 11", ["t"]), 11);
    expect((await near.peek("k"))?.value).toBe("read at 11");
  });

  it("drops copies by tag, link, key, and everything on clear", async () => {
    const near = new NearCache();
    near.activate(1);
    await near.keep("a", entry(1, ["t"]), 1);
    await near.keep("b", entry(2, ["u"], ["Sequence:1"]), 1);
    await near.keep("c", entry(3, ["v"]), 1);
    await near.keep("d", entry(4, ["w"]), 1);
    await near.apply({ seq: 2, tags: ["t"] });
    await near.apply({ seq: 3, links: ["Sequence:1"] });
    await near.apply({ seq: 4, keys: ["c"] });
    expect(await near.peek("a")).toBeUndefined();
    expect(await near.peek("b")).toBeUndefined();
    expect(await near.peek("c")).toBeUndefined();
    expect(await near.peek("d")).toBeDefined();
    await near.apply({ seq: 5, clear: true });
    expect(await near.peek("d")).toBeUndefined();
    expect(near.seenSeq).toBe(5);
  });

  it("keeps at most maxEntries copies, dropping the least recently used", async () => {
    const near = new NearCache({ maxEntries: 2 });
    near.activate(1);
    await near.keep("a", entry(1, ["t"]), 1);
    await near.keep("b", entry(2, ["t"]), 1);
    await near.peek("a");
    await near.keep("c", entry(3, ["t"]), 1);
    expect(near.stats().entries).toBe(2);
    expect(await near.peek("b")).toBeUndefined();
    expect(await near.peek("a")).toBeDefined();
  });
});

describe("near cache over a real pub/sub connection", () => {
  let server: TestRedisServer;
  const stores: { store: RedisStore; prefix: string }[] = [];
  const open = async (prefix: string) => {
    const store = new RedisStore({ redis: { url: server.url, maxReconnectDelayMs: 100 }, site: "near-site", prefix });
    stores.push({ store, prefix });
    await store.ready();
    return store;
  };

  beforeAll(async () => {
    server = await TestRedisServer.start();
  });
  afterAll(async () => {
    await server.stop();
  });
  afterEach(async () => {
    for (const { store, prefix } of stores.splice(0)) {
      if (store.healthy) await deletePrefix(store.connection.command, prefix);
      await store.close();
    }
  });

  it("a pub/sub disconnect flushes the near cache; it fills again once resubscribed", async () => {
    const prefix = randomPrefix();
    const a = await open(prefix);
    const b = await open(prefix);
    const seq = await a.currentSeq();
    await a.setIfFresh("k", { ...entry("v", ["t"]), seq });
    await b.get("k");
    expect(b.nearCacheStats().entries).toBe(1);

    const admin = server.client();
    try {
      const killed = await admin.client("KILL", "TYPE", "pubsub");
      expect(killed).toBeGreaterThanOrEqual(2);
    } finally {
      admin.disconnect();
    }
    await expect.poll(() => b.nearCacheStats().entries).toBe(0);
    await expect.poll(() => b.nearCacheStats().active).toBe(true);

    // Resubscribed: invalidations reach it again, and it serves near copies again.
    expect((await b.get("k"))?.value).toBe("v");
    expect(b.nearCacheStats().entries).toBe(1);
    await a.bump(["t"]);
    await expect.poll(() => b.nearCacheStats().entries).toBe(0);
    expect(await b.get("k")).toBeUndefined();
  });

  it("a change made while an instance's subscription was down is never served from its near cache", async () => {
    const prefix = randomPrefix();
    const a = await open(prefix);
    const b = await open(prefix);
    const seq = await a.currentSeq();
    await a.setIfFresh("k", { ...entry("old", ["t"]), seq });
    await b.get("k");
    // Drop B's subscriber and, before it is back, change the entry through A.
    b.connection.subscriber.disconnect(true);
    await a.bump(["t"]);
    const now = await a.currentSeq();
    await a.setIfFresh("k", { ...entry("new", ["t"]), seq: now });
    expect((await b.get("k"))?.value).toBe("new");
    await expect.poll(() => b.nearCacheStats().active).toBe(true);
    expect((await b.get("k"))?.value).toBe("new");
  });
});
