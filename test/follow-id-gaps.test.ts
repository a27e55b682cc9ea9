/**
 * Skipped event ids (ShotGrid hands ids out before commit): awaited, re-asked for by id, applied
 * when they arrive, given up after the window, never a cause of page re-reads.
 */
import { afterEach, describe, expect, it } from "vitest";
import { expectCacheAnswersTruth, shotIds, slowWrite, startRig, startSite, tempDir, waitFor, writeShot, type Cleanup } from "./follow-helpers.ts";

const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("follow: id gaps", () => {
  it("applies and publishes id N+1 when it commits after N+2, and the cache shows it", async () => {
    const { site, client } = await startSite(cleanups);
    const dir = await tempDir(cleanups);
    const rig = await startRig(cleanups, site, client, { stateDir: dir, gapWindowMs: 60_000 });
    const [a, b] = shotIds(site);
    const sub = rig.bus.subscribe({ entityTypes: ["Shot"] });
    cleanups.push(async () => void (await sub.return()));

    const slow = slowWrite(site, a!); // takes id N+1
    writeShot(site, b!, "committed first"); // takes N+2, visible at once
    await waitFor("N+2 applied with N+1 awaited", () => rig.follower.lastAppliedEventId === site.store.latestEventId);
    expect(rig.follower.cursorState?.skipped.map((s) => s.id)).toEqual([slow.eventId]);
    await rig.follower.pollNow(); // a whole poll, its save included
    // The awaited id is saved with the cursor, so a restart keeps waiting for it.
    expect((await rig.store!.load())?.skipped.map((s) => s.id)).toEqual([slow.eventId]);

    slow.commit("committed late");
    await waitFor("the late id applied", () => rig.metrics.gapsFilledTotal === 1);
    expect(rig.follower.status.gapsAwaited).toBe(0);
    await rig.follower.pollNow();
    expect((await rig.store!.load())?.skipped).toEqual([]);

    const seen: number[] = [];
    while (seen.length < 2) {
      const r = await sub.next();
      if (r.done || r.value.kind !== "change") throw new Error(`unexpected ${JSON.stringify(r)}`);
      seen.push(r.value.change.eventId);
    }
    expect(seen).toEqual([slow.eventId + 1, slow.eventId]);
    await expectCacheAnswersTruth(rig.cache, site);
    expect((await rig.cache.getEntity("Shot", a!, ["description"])).value?.fields["description"]).toBe("committed late");
  });

  it("gives up an id that never commits after the window, counts it, and stops asking", async () => {
    const { site, client } = await startSite(cleanups);
    const dir = await tempDir(cleanups);
    const rig = await startRig(cleanups, site, client, { stateDir: dir, gapWindowMs: 300 });
    const [a, b] = shotIds(site);
    const never = slowWrite(site, a!);
    writeShot(site, b!, "after the lost id");
    await waitFor("the gap given up", () => rig.metrics.gapsGivenUpTotal === 1, 5000);
    expect(rig.follower.status).toMatchObject({ gapsAwaited: 0, gapsGivenUp: 1, gapsDetected: 1, gapsFilled: 0 });
    await waitFor("the saved state forgets it", () => rig.follower.cursorState?.skipped.length === 0);
    await rig.follower.pollNow();
    expect((await rig.store!.load())?.skipped).toEqual([]);
    const asksBefore = rig.calls.filter((c) => c.ids).length;
    await rig.follower.pollNow();
    await rig.follower.pollNow();
    expect(rig.calls.filter((c) => c.ids).length).toBe(asksBefore);
    never.drop();
    writeShot(site, a!, "later");
    await waitFor("later write applied", () => rig.follower.lastAppliedEventId === site.store.latestEventId);
    await expectCacheAnswersTruth(rig.cache, site);
  });

  it("does not re-read a full page because of a gap inside it; re-asks only the missing id", async () => {
    const { site, client } = await startSite(cleanups);
    const rig = await startRig(cleanups, site, client, { pageSize: 10, gapWindowMs: 60_000, pollIntervalMs: 60_000, gapRecheckMs: 1 });
    const ids = shotIds(site);
    for (let i = 0; i < 4; i++) writeShot(site, ids[i % ids.length]!, `before ${i}`);
    const slow = slowWrite(site, ids[0]!);
    for (let i = 0; i < 15; i++) writeShot(site, ids[(i + 1) % ids.length]!, `after ${i}`);
    await rig.follower.pollNow();
    await waitFor("the backlog applied", () => rig.follower.lastAppliedEventId === site.store.latestEventId);
    // Keep polling while the gap stays open: each poll may ask for the gap, never the page again.
    for (let i = 0; i < 5; i++) await rig.follower.pollNow();

    const pageReads = rig.calls.filter((c) => c.afterId !== undefined && c.ids === undefined && c.limit === 10);
    const full = pageReads.filter((c) => c.returned === 10).map((c) => c.afterId);
    expect(full.length).toBe(1);
    expect(new Set(full).size).toBe(full.length);
    const asks = rig.calls.filter((c) => c.ids !== undefined);
    expect(asks.length).toBeGreaterThanOrEqual(5);
    for (const ask of asks) expect(ask.ids).toEqual([slow.eventId]);

    slow.commit("inside a full page");
    await rig.follower.pollNow();
    expect(rig.follower.status.gapsFilled).toBe(1);
    await expectCacheAnswersTruth(rig.cache, site);
  });

  it("does not wait for an id whose neighbour was created longer ago than the window", async () => {
    const { site, client } = await startSite(cleanups);
    const rig = await startRig(cleanups, site, client, { gapWindowMs: 60_000 });
    const [a] = shotIds(site);
    const rolledBack = slowWrite(site, a!);
    // The row after the gap is ten minutes old (a backlog read after downtime), the newest is now.
    site.store.appendEvent({ event_type: "Shotgun_User_Login", user: site.scriptUser, created_at: Date.now() - 600_000 });
    writeShot(site, a!, "now");
    await waitFor("the old gap given up", () => rig.metrics.gapsGivenUpTotal === 1, 3000);
    expect(rig.follower.status.gapsAwaited).toBe(0);
    rolledBack.drop();
    await expectCacheAnswersTruth(rig.cache, site);
  });
});
