/**
 * Resumable change streams: a stream resumed from an old id gets everything it missed, late ids
 * included, with no duplicate, while changes keep arriving; and after a service restart with a
 * saved cursor, a stream resuming from that cursor is not told to resync.
 */
import { afterEach, describe, expect, it } from "vitest";
import pino from "pino";
import { startService } from "../src/app/create-app.ts";
import { loadServeConfig } from "../src/config.ts";
import type { ChangeSubscription } from "../src/events/change-bus.ts";
import type { Change } from "../src/events/change.ts";
import { DEFAULT_SCRIPT_KEY } from "../src/simulator/index.ts";
import { expectCacheAnswersTruth, shotIds, slowWrite, startRig, startSite, tempDir, waitFor, writeShot, type Cleanup } from "./follow-helpers.ts";

const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function readChanges(sub: ChangeSubscription, count: number): Promise<Change[]> {
  const out: Change[] = [];
  while (out.length < count) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`only ${out.length} of ${count} changes arrived: ${out.map((c) => c.eventId).join(",")}`)), 5000);
    });
    const r = await Promise.race([sub.next(), timeout]).finally(() => clearTimeout(timer));
    if (r.done) throw new Error("the subscription ended");
    if (r.value.kind !== "change") throw new Error(`unexpected ${JSON.stringify(r.value)}`);
    out.push(r.value.change);
  }
  return out;
}

describe("follow: resumable streams", () => {
  it("resumes from an old id with late ids and concurrent changes: nothing missing, nothing doubled", async () => {
    const { site, client } = await startSite(cleanups);
    const rig = await startRig(cleanups, site, client, { gapWindowMs: 60_000 });
    const ids = shotIds(site);
    const first = rig.bus.subscribe({ entityTypes: ["Shot"] });
    writeShot(site, ids[0]!, "one");
    const slow = slowWrite(site, ids[1]!);
    writeShot(site, ids[2]!, "two");
    writeShot(site, ids[3]!, "three");
    const seen = await readChanges(first, 3);
    await first.return(); // the client goes away; it has seen up to X
    const x = Math.max(...seen.map((c) => c.eventId));
    expect(seen.map((c) => c.eventId)).not.toContain(slow.eventId);

    // While it is away: the late id commits (published after X, below X) and more changes come.
    slow.commit("late");
    writeShot(site, ids[0]!, "four");
    await waitFor("applied", () => rig.follower.lastAppliedEventId === site.store.latestEventId && rig.follower.status.gapsFilled === 1);

    // It resumes from X while changes keep arriving.
    let n = 0;
    const writer = setInterval(() => writeShot(site, ids[n % ids.length]!, `live ${n++}`), 5);
    const resumed = rig.bus.subscribe({ entityTypes: ["Shot"], sinceEventId: x });
    cleanups.push(async () => void (await resumed.return()));
    await new Promise((r) => setTimeout(r, 150));
    clearInterval(writer);
    await waitFor("all applied", () => rig.follower.lastAppliedEventId === site.store.latestEventId);

    const expected = [slow.eventId, ...(await client.readEvents({ afterId: x, limit: 1000 })).map((e) => e.id)];
    const got = await readChanges(resumed, expected.length);
    const gotIds = got.map((c) => c.eventId);
    expect(new Set(gotIds).size).toBe(gotIds.length);
    expect([...gotIds].sort((p, q) => p - q)).toEqual([...expected].sort((p, q) => p - q));
    // Nothing more is pending: no duplicate arrives later.
    writeShot(site, ids[0]!, "sentinel");
    const [sentinel] = await readChanges(resumed, 1);
    expect(sentinel!.eventId).toBe(site.store.latestEventId);
    // Per entity, changes come in the order they were applied (the late id first among its batch).
    expect(gotIds[0]).toBe(slow.eventId);
    await expectCacheAnswersTruth(rig.cache, site);
  });

  it("sends a resync first when the id is older than the replay buffer", async () => {
    const { site, client } = await startSite(cleanups);
    const { ChangeBus } = await import("../src/events/change-bus.ts");
    const rig = await startRig(cleanups, site, client, { bus: new ChangeBus({ replayEvents: 3 }) });
    const start = rig.follower.lastAppliedEventId;
    const ids = shotIds(site);
    for (let i = 0; i < 6; i++) writeShot(site, ids[i % ids.length]!, `w ${i}`);
    await waitFor("applied", () => rig.follower.lastAppliedEventId === site.store.latestEventId);
    const sub = rig.bus.subscribe({ sinceEventId: start + 1 });
    cleanups.push(async () => void (await sub.return()));
    expect((await sub.next()).value).toMatchObject({ kind: "resync", resumeEventId: site.store.latestEventId });
    await expectCacheAnswersTruth(rig.cache, site);
  });

  it("after a service restart with saved state, a stream from the saved cursor gets every change made meanwhile", async () => {
    const { site } = await startSite(cleanups);
    const dir = await tempDir(cleanups);
    const config = () => {
      const { help: _h, ...c } = loadServeConfig(
        [
          "--site",
          site.url,
          "--script-name",
          site.scriptName,
          "--state-dir",
          dir,
          "--port",
          "0",
          "--host",
          "127.0.0.1",
          "--poll-interval-ms",
          "20",
          "--preload",
          "Shot",
        ],
        { SHOTGRID_SCRIPT_KEY: DEFAULT_SCRIPT_KEY },
      );
      return c;
    };
    const log = pino({ level: "silent" });
    const one = await startService(config(), log);
    await one.ready;
    const ids = shotIds(site);
    writeShot(site, ids[0]!, "before the stop");
    await waitFor("applied", () => one.follower?.lastAppliedEventId === site.store.latestEventId);
    const savedCursor = one.follower!.lastAppliedEventId;
    await one.close(500);

    // Down: changes happen.
    writeShot(site, ids[1]!, "while down 1");
    writeShot(site, ids[2]!, "while down 2");
    const missed = site.store.latestEventId;

    const two = await startService(config(), log);
    cleanups.push(() => two.close(500));
    // Before the follower even starts, the bus already resumes from the saved cursor.
    const sub = two.bus.subscribe({ sinceEventId: savedCursor });
    cleanups.push(async () => void (await sub.return()));
    await two.ready;
    const got = await readChanges(sub, 2);
    expect(got.map((c) => c.eventId)).toEqual([missed - 1, missed]);

    const readyz = (await (await fetch(`${two.url}/readyz`)).json()) as { status: string; details?: { eventFollow?: Record<string, unknown> } };
    expect(readyz.status).toBe("ready");
    expect(readyz.details?.eventFollow).toMatchObject({ lastEventId: missed, eventsBehind: 0, gapsAwaited: 0 });
    expect(typeof readyz.details?.eventFollow?.["lagSeconds"]).toBe("number");
    await expectCacheAnswersTruth(two.cache, site);
  });
});
