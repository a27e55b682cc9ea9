/**
 * The `CacheStore` contract, run against every backend (vitest projects "memory" and "redis").
 */
import { describe, expect, it } from "vitest";
import type { CacheStore, StoredEntry } from "../../src/cache/index.ts";
import { useStoreFactory } from "./store-factory.ts";

const stores = useStoreFactory();

const entry = (value: unknown, seq: number, tags: string[], links?: string[]): StoredEntry => ({
  value,
  seq,
  fetchedAt: 1_000,
  asOfEventId: 7,
  tags,
  ...(links ? { links } : {}),
});

describe(`cache store contract (${stores.kind})`, () => {
  let store: CacheStore;
  const fresh = async (options?: { maxBytes?: number; ttlSeconds?: number }) => (store = await stores.create(options));

  it("stores and returns an entry with everything it carries", async () => {
    await fresh();
    const seq = await store.currentSeq();
    const value = { type: "Shot", id: 1, fields: { code: "A10", n: 1.5, tags: [], empty: {}, none: null } };
    expect(await store.setIfFresh("rec:Shot:1", entry(value, seq, ["rec:Shot:1", "ty:Shot"], ["Sequence:2"]))).toBe(true);
    const got = await store.get("rec:Shot:1");
    expect(got).toEqual(entry(value, seq, ["rec:Shot:1", "ty:Shot"], ["Sequence:2"]));
    expect(await store.get("rec:Shot:2")).toBeUndefined();
    expect(store.stats().entries).toBe(1);
    expect(store.stats().bytes).toBeGreaterThan(0);
  });

  it("the clock advances with every bump", async () => {
    await fresh();
    const before = await store.currentSeq();
    const first = await store.bump(["a"]);
    const second = await store.bump(["b"]);
    expect(first).toBeGreaterThan(before);
    expect(second).toBeGreaterThan(first);
    expect(await store.currentSeq()).toBe(second);
  });

  it("a bump drops every entry carrying the tag and keeps the others", async () => {
    await fresh();
    const seq = await store.currentSeq();
    await store.setIfFresh("k1", entry("one", seq, ["t", "u"]));
    await store.setIfFresh("k2", entry("two", seq, ["u"]));
    await store.setIfFresh("k3", entry("three", seq, ["v"]));
    await store.bump(["u"]);
    expect(await store.get("k1")).toBeUndefined();
    expect(await store.get("k2")).toBeUndefined();
    expect((await store.get("k3"))?.value).toBe("three");
    expect(store.stats().entries).toBe(1);
  });

  it("refuses an entry fetched before a bump of one of its tags or guard tags (no stale write-back)", async () => {
    await fresh();
    const seq = await store.currentSeq(); // taken before the "fetch"
    await store.bump(["rec:Shot:1"]);
    expect(await store.setIfFresh("rec:Shot:1", entry("old", seq, ["rec:Shot:1"]))).toBe(false);
    expect(await store.get("rec:Shot:1")).toBeUndefined();
    await store.bump(["ln:Sequence:2"]);
    const later = await store.currentSeq();
    expect(await store.setIfFresh("rec:Shot:3", entry("old", later - 1, ["rec:Shot:3"]), ["ln:Sequence:2"])).toBe(false);
    // Fetched after the bumps: stored.
    expect(await store.setIfFresh("rec:Shot:1", entry("new", later, ["rec:Shot:1"]), ["ln:Sequence:2"])).toBe(true);
    expect((await store.get("rec:Shot:1"))?.value).toBe("new");
  });

  it("never replaces an entry with one fetched earlier", async () => {
    await fresh();
    const early = await store.currentSeq();
    await store.bump(["unrelated"]);
    const late = await store.currentSeq();
    expect(await store.setIfFresh("k", entry("late", late, ["t"]))).toBe(true);
    expect(await store.setIfFresh("k", entry("early", early, ["t"]))).toBe(false);
    expect((await store.get("k"))?.value).toBe("late");
  });

  it("patches a renamed link in place, or drops the entries when the new name is unknown", async () => {
    await fresh();
    const seq = await store.currentSeq();
    const shot = (id: number) => ({ type: "Shot", id, fields: { sg_sequence: { type: "Sequence", id: 2, name: "SQ" }, n: 0.1 } });
    await store.setIfFresh("rec:Shot:1", entry(shot(1), seq, ["rec:Shot:1"], ["Sequence:2"]));
    await store.setIfFresh("rec:Shot:2", entry(shot(2), seq, ["rec:Shot:2"], ["Sequence:2"]));
    await store.setIfFresh("other", entry("x", seq, ["o"]));
    expect(await store.patchLinkName("Sequence:2", "SQ_NEW")).toBe(2);
    const patched = await store.get("rec:Shot:1");
    expect(patched?.value).toEqual({ type: "Shot", id: 1, fields: { sg_sequence: { type: "Sequence", id: 2, name: "SQ_NEW" }, n: 0.1 } });
    expect(patched?.seq).toBe(seq);
    expect(await store.patchLinkName("Sequence:9", "nobody")).toBe(0);
    expect(await store.patchLinkName("Sequence:2", undefined)).toBe(2);
    expect(await store.get("rec:Shot:1")).toBeUndefined();
    expect(await store.get("rec:Shot:2")).toBeUndefined();
    expect((await store.get("other"))?.value).toBe("x");
  });

  it("delete drops one entry", async () => {
    await fresh();
    const seq = await store.currentSeq();
    await store.setIfFresh("a", entry(1, seq, ["t"]));
    await store.setIfFresh("b", entry(2, seq, ["t"]));
    await store.delete("a");
    expect(await store.get("a")).toBeUndefined();
    expect((await store.get("b"))?.value).toBe(2);
    expect(store.stats().entries).toBe(1);
  });

  it("clear drops everything, and nothing fetched before it can be stored after it", async () => {
    await fresh();
    const seq = await store.currentSeq();
    await store.setIfFresh("a", entry(1, seq, ["t"]));
    await store.setIfFresh("b", entry(2, seq, ["u"]));
    await store.clear();
    expect(await store.get("a")).toBeUndefined();
    expect(await store.get("b")).toBeUndefined();
    expect(store.stats()).toEqual({ bytes: 0, entries: 0 });
    expect(await store.setIfFresh("a", entry(1, seq, ["t"]))).toBe(false);
    const after = await store.currentSeq();
    expect(await store.setIfFresh("a", entry(3, after, ["t"]))).toBe(true);
    expect((await store.get("a"))?.value).toBe(3);
  });

  it("frees the size of invalidated entries at once", async () => {
    await fresh();
    const seq = await store.currentSeq();
    await store.setIfFresh("k", entry("v".repeat(100), seq, ["t"]));
    expect(store.stats().bytes).toBeGreaterThan(200);
    await store.bump(["t"]);
    expect(store.stats()).toEqual({ bytes: 0, entries: 0 });
  });

  it.runIf(stores.kind === "memory")("is bounded: least recently used entries are evicted past maxBytes", async () => {
    await fresh({ maxBytes: 3000 });
    const seq = await store.currentSeq();
    const big = "x".repeat(300);
    for (const k of ["a", "b", "c"]) await store.setIfFresh(k, entry(big, seq, ["t"]));
    await store.get("a");
    await store.setIfFresh("d", entry(big, seq, ["t"]));
    expect(store.stats().bytes).toBeLessThanOrEqual(3000);
    expect(await store.get("b")).toBeUndefined();
    expect(await store.get("a")).toBeDefined();
  });

  it.runIf(stores.kind === "redis")("is bounded: entries expire after their TTL", async () => {
    await fresh({ ttlSeconds: 0.2 });
    const seq = await store.currentSeq();
    await store.setIfFresh("a", entry("v", seq, ["t"]));
    expect(await store.get("a")).toBeDefined();
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      await new Promise((r) => setTimeout(r, 20));
      gone = (await store.get("a")) === undefined;
    }
    expect(gone).toBe(true);
  });
});
