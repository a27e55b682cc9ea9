/**
 * Three instances, one Redis, one site: exactly one follows the event log; a change made on the
 * site is seen on every instance (GetEntity and WatchChanges); a stream resumed on another
 * instance from the last id it saw gets exactly what it missed, with no resync. Hits over HTTP/2
 * (gRPC, Connect) through each instance's near cache (decided after a shared round trip) answer,
 * and answer the new value once a change is seen.
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheService } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { changeOf, watch, type Watch } from "./e2e-helpers.ts";
import { descriptionOn, shotIds, startCluster, waitForLeader, waitUntil, writeShot, type Cleanup, type Cluster } from "./cluster-helpers.ts";

const cleanups: Cleanup[] = [];
const streams: Watch[] = [];
let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster(cleanups, 3);
}, 60_000);
afterAll(async () => {
  for (const s of streams.splice(0)) s.close();
  for (const c of cleanups.splice(0).reverse()) await c();
});

const changeIds = (w: Watch) =>
  w.messages
    .map(changeOf)
    .filter((c) => c !== undefined)
    .map((c) => Number(c.eventId));

describe("cluster: change fan-out", () => {
  it("elects one leader and shows a site change on every instance, by GetEntity and by stream", async () => {
    const leader = await waitForLeader(cluster.instances);
    expect(cluster.instances).toContain(leader);
    const watches = cluster.instances.map((i) => watch(i.url, { entityTypes: ["Shot"] }));
    streams.push(...watches);
    await Promise.all(watches.map((w) => w.waitFor((m) => m.message.case === "heartbeat", 10_000)));

    const [shot] = shotIds(cluster.site);
    writeShot(cluster.site, shot!, "seen everywhere");
    const eventId = cluster.site.store.latestEventId;
    for (const instance of cluster.instances) {
      await waitUntil(`instance ${instance.port} answers the new value`, async () => (await descriptionOn(instance, shot!)) === "seen everywhere");
    }
    for (const w of watches) {
      const m = await w.waitFor((x) => Number(changeOf(x)?.eventId) === eventId, 10_000);
      expect(changeOf(m)).toMatchObject({ entityType: "Shot", entityId: shot });
    }
  });

  it("answers hits over gRPC and Connect on HTTP/2 on every instance, and the new value once a change is seen", async () => {
    const [, shot] = shotIds(cluster.site);
    const clients = cluster.instances.flatMap((i) => [
      createClient(CacheService, createGrpcTransport({ baseUrl: i.url })),
      createClient(CacheService, createConnectTransport({ baseUrl: i.url, httpVersion: "2" })),
    ]);
    const descriptions = () =>
      Promise.all(clients.map(async (c) => (await c.getEntity({ entityType: "Shot", id: shot!, fields: ["description"] })).entity?.fields?.description));
    const before = await descriptions(); // the first read of each instance fills its near cache
    for (let round = 0; round < 3; round++) expect(await descriptions()).toEqual(before);
    writeShot(cluster.site, shot!, "over h2 too");
    for (const instance of cluster.instances) {
      await waitUntil(`instance ${instance.port} answers the new value`, async () => (await descriptionOn(instance, shot!)) === "over h2 too");
    }
    for (let round = 0; round < 3; round++) expect(await descriptions()).toEqual(clients.map(() => "over h2 too"));
  });

  it("resumes a stream on another instance from the last id seen: nothing missing, nothing doubled, no resync", async () => {
    const [a, b, c] = cluster.instances;
    const ids = shotIds(cluster.site);
    const first = watch(a!.url, { entityTypes: ["Shot"] });
    streams.push(first);
    await first.waitFor((m) => m.message.case === "heartbeat", 10_000);
    writeShot(cluster.site, ids[0]!, "r1");
    writeShot(cluster.site, ids[1]!, "r2");
    const seenUpTo = cluster.site.store.latestEventId;
    await first.waitFor((m) => Number(changeOf(m)?.eventId) === seenUpTo, 10_000);
    first.close();

    // While the client is away, more changes; it comes back on other instances.
    const start = cluster.site.store.latestEventId;
    for (let i = 0; i < 5; i++) writeShot(cluster.site, ids[i % ids.length]!, `away ${i}`);
    const last = cluster.site.store.latestEventId;
    const missed = Array.from({ length: last - start }, (_, i) => start + 1 + i);
    for (const other of [b!, c!]) {
      const resumed = watch(other.url, { entityTypes: ["Shot"], sinceEventId: BigInt(seenUpTo) });
      streams.push(resumed);
      await resumed.waitFor((m) => Number(changeOf(m)?.eventId) === last, 10_000);
      expect(resumed.messages.some((m) => m.message.case === "resync")).toBe(false);
      expect(changeIds(resumed)).toEqual(missed);
      resumed.close();
    }
  });
});
