/**
 * Leader loss: the leader is SIGKILLed while changes keep coming; another instance takes over
 * from the shared cursor. A stream on a survivor receives every change exactly once, in order,
 * and every survivor answers the site's current truth.
 */
import { afterEach, describe, expect, it } from "vitest";
import { changeOf, watch, type Watch } from "./e2e-helpers.ts";
import { descriptionOn, isLeader, shotIds, startCluster, waitForLeader, waitUntil, writeShot, type Cleanup } from "./cluster-helpers.ts";

const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("cluster: leader killed", () => {
  it("another instance takes over from the shared cursor: no change lost, doubled or out of order", async () => {
    const cluster = await startCluster(cleanups, 3);
    const { site } = cluster;
    const leader = await waitForLeader(cluster.instances);
    const survivors = cluster.instances.filter((i) => i !== leader);
    const stream: Watch = watch(survivors[0]!.url, { entityTypes: ["Shot"] });
    cleanups.push(async () => stream.close());
    await stream.waitFor((m) => m.message.case === "heartbeat", 10_000);
    const startId = site.store.latestEventId;

    const ids = shotIds(site);
    let n = 0;
    const write = () => writeShot(site, ids[n % ids.length]!, `v${n++}`);
    const writer = setInterval(write, 40);
    cleanups.push(async () => clearInterval(writer));
    // Changes are flowing through the leader: kill it mid-stream.
    await stream.waitFor((m) => changeOf(m) !== undefined, 10_000);
    leader.signal("SIGKILL");
    await leader.exited;
    const next = await waitForLeader(survivors, 20_000);
    expect(survivors).toContain(next);
    await new Promise((r) => setTimeout(r, 500)); // a few more changes under the new leader
    clearInterval(writer);
    const lastId = site.store.latestEventId;

    await stream.waitFor((m) => Number(changeOf(m)?.eventId) === lastId, 20_000);
    const got = stream.messages
      .map(changeOf)
      .filter((c) => c !== undefined)
      .map((c) => Number(c.eventId));
    // Every event since the stream opened is a Shot change: the stream must hold each id once, in order.
    expect(got).toEqual(Array.from({ length: lastId - startId }, (_, i) => startId + 1 + i));
    expect(stream.messages.some((m) => m.message.case === "resync")).toBe(false);

    for (const instance of survivors) {
      for (const id of ids) {
        const truth = site.store.get("Shot", id)!.fields["description"] ?? null;
        await waitUntil(
          `instance ${instance.port} answers shot ${id}'s current description`,
          async () => (await descriptionOn(instance, id)) === truth,
          10_000,
        );
      }
    }
    expect(await isLeader(next)).toBe(true);
  }, 60_000);
});
