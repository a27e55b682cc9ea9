/**
 * A paused old leader cannot write: the leader is SIGSTOPped past its lease, another takes over
 * and applies the changes made meanwhile, then the old one is SIGCONTed. Its token is refused by
 * every fenced write, the shared change log holds each change once in order (fences never going
 * back), the shared cursor never moves backwards, and the old leader serves the current truth.
 */
import { afterEach, describe, expect, it } from "vitest";
import { RedisConnection } from "../src/cluster/redis-connection.ts";
import { FencedOutError, LeaderLease, LeaderTerm } from "../src/cluster/leader-lease.ts";
import { parseLogEntry } from "../src/cluster/redis-change-log.ts";
import { RedisCursorStore } from "../src/cluster/redis-cursor-store.ts";
import { metricSum } from "./e2e-helpers.ts";
import { descriptionOn, isLeader, shotIds, startCluster, waitForLeader, waitUntil, writeShot, type Cleanup } from "./cluster-helpers.ts";

const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("cluster: paused old leader", () => {
  it("is fenced out after SIGSTOP past its lease and SIGCONT", async () => {
    const leaseMs = 1500;
    const cluster = await startCluster(cleanups, 2, leaseMs);
    const { site, keyBase } = cluster;
    const redis = cluster.redis.client();
    cleanups.push(async () => void redis.disconnect());
    const old = await waitForLeader(cluster.instances);
    const other = cluster.instances.find((i) => i !== old)!;
    const ids = shotIds(site);
    writeShot(site, ids[0]!, "before the pause");
    await waitUntil("the change applied", async () => (await descriptionOn(other, ids[0]!)) === "before the pause");

    // Watch the shared cursor for the whole test: it must never go back.
    const cursorSamples: number[] = [];
    const sampler = setInterval(() => void redis.hget(`${keyBase}cursor`, "last").then((v) => v !== null && cursorSamples.push(Number(v))), 20);
    cleanups.push(async () => clearInterval(sampler));

    const oldToken = (await redis.get(`${keyBase}leader`))!;
    expect(oldToken).toMatch(/#\d+$/);
    old.signal("SIGSTOP");
    for (let i = 0; i < 4; i++) writeShot(site, ids[i % ids.length]!, `during the pause ${i}`);
    const duringId = site.store.latestEventId;
    await waitUntil("the other instance leads", () => isLeader(other), 20_000);
    await waitUntil("the new leader applied the changes", async () => (await descriptionOn(other, ids[3]!)) === "during the pause 3", 15_000);
    await waitUntil("the shared cursor past them", async () => Number(await redis.hget(`${keyBase}cursor`, "last")) >= duringId, 10_000);
    expect(await redis.get(`${keyBase}leader`)).not.toBe(oldToken);

    // The old token is dead for every fenced write, whoever presents it.
    const connection = new RedisConnection({ url: cluster.redis.url });
    cleanups.push(() => connection.close());
    await connection.ready();
    const lease = new LeaderLease({ connection, keyBase });
    const staleTerm = new LeaderTerm(oldToken, Number(oldToken.split("#")[1]));
    const store = new RedisCursorStore({ connection, keyBase, lease, term: staleTerm });
    await expect(store.save({ lastAppliedId: duringId + 1000, skipped: [] })).rejects.toBeInstanceOf(FencedOutError);
    expect(lease.counters.fencedWritesRefused).toBe(1);

    old.signal("SIGCONT");
    await waitUntil("the old leader knows it lost", async () => (await metricSum(old.port, "shotgrid_cache_cluster_lease_losses_total")) >= 1, 10_000);
    expect(await isLeader(old)).toBe(false);
    expect(await isLeader(other)).toBe(true);
    writeShot(site, ids[1]!, "after the resume");
    for (const instance of cluster.instances) {
      await waitUntil(
        `instance ${instance.port} answers the newest value`,
        async () => (await descriptionOn(instance, ids[1]!)) === "after the resume",
        10_000,
      );
      for (const id of ids) {
        const truth = site.store.get("Shot", id)!.fields["description"] ?? null;
        expect(await descriptionOn(instance, id)).toBe(truth);
      }
    }
    clearInterval(sampler);

    // The log: each change once, ids ascending, fences never going back.
    const entries = (await redis.xrange(`${keyBase}changes`, "-", "+")).map(([, fields]) => parseLogEntry(fields)!);
    const changeIds = entries.flatMap((e) => (e.entry.c ? [e.entry.c.eventId] : []));
    expect(changeIds.length).toBeGreaterThanOrEqual(6);
    expect(new Set(changeIds).size).toBe(changeIds.length);
    expect([...changeIds].sort((a, b) => a - b)).toEqual(changeIds);
    const fences = entries.map((e) => e.fence);
    expect([...fences].sort((a, b) => a - b)).toEqual(fences);
    expect(cursorSamples.length).toBeGreaterThan(10);
    for (let i = 1; i < cursorSamples.length; i++) expect(cursorSamples[i]).toBeGreaterThanOrEqual(cursorSamples[i - 1]!);
  }, 60_000);
});
