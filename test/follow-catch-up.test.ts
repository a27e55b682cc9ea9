/**
 * After downtime: the backlog is read in full pages at full speed with the lag visible; a gap
 * outlives an outage longer than its window when it commits meanwhile; a cursor older than the
 * retained log flushes the cache and tells streams to resync instead of trusting it.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { BusMessage } from "../src/events/change-bus.ts";
import { expectCacheAnswersTruth, shotIds, slowWrite, startRig, startSite, tempDir, waitFor, writeShot, type Cleanup } from "./follow-helpers.ts";

const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("follow: catch-up", () => {
  it("reads a backlog in full pages back to back, showing events behind, then settles", async () => {
    const { site, client } = await startSite(cleanups);
    const rig = await startRig(cleanups, site, client, { pageSize: 10, pollIntervalMs: 60_000, headRefreshMs: 1 });
    const ids = shotIds(site);
    for (let i = 0; i < 60; i++) writeShot(site, ids[i % ids.length]!, `backlog ${i}`);
    const behind: number[] = [];
    const poll = rig.follower.pollNow();
    await poll;
    behind.push(rig.follower.status.eventsBehind);
    await waitFor("the backlog applied", () => rig.follower.lastAppliedEventId === site.store.latestEventId);
    // The first full page learned the head: 60 written, 10 applied.
    expect(behind[0]).toBe(50);
    expect(rig.follower.status).toMatchObject({ eventsBehind: 0, headEventId: site.store.latestEventId });
    const pages = rig.calls.filter((c) => c.afterId !== undefined && c.limit === 10);
    expect(pages.filter((c) => c.returned === 10).length).toBe(6);
    await expectCacheAnswersTruth(rig.cache, site);
  });

  it("applies a gap that committed during an outage longer than the window, and gives up the one that did not", async () => {
    const { site, client } = await startSite(cleanups);
    const dir = await tempDir(cleanups);
    const rig = await startRig(cleanups, site, client, { stateDir: dir, gapWindowMs: 400 });
    const [a, b, c] = shotIds(site);
    const late = slowWrite(site, a!);
    const never = slowWrite(site, b!);
    writeShot(site, c!, "before the outage");
    await waitFor("two gaps awaited", () => rig.follower.status.gapsAwaited === 2);

    site.knobs.setOutage(Number.POSITIVE_INFINITY, "503");
    const errorsBefore = rig.metrics.pollErrors;
    late.commit("committed during the outage");
    writeShot(site, c!, "during the outage");
    await waitFor("the outage outlasting the window", () => rig.metrics.pollErrors >= errorsBefore + 2);
    await new Promise((r) => setTimeout(r, 500));
    expect(rig.follower.status.gapsFilled).toBe(0);
    site.knobs.endOutage();

    await waitFor("caught up", () => rig.follower.lastAppliedEventId === site.store.latestEventId && rig.follower.status.gapsAwaited === 0);
    expect(rig.follower.status).toMatchObject({ gapsFilled: 1, gapsGivenUp: 1 });
    never.drop();
    await expectCacheAnswersTruth(rig.cache, site);
    expect((await rig.cache.getEntity("Shot", a!, ["description"])).value?.fields["description"]).toBe("committed during the outage");
  });

  it("flushes the cache and tells streams to resync when the cursor is older than the retained log", async () => {
    const { site, client } = await startSite(cleanups);
    const dir = await tempDir(cleanups);
    const first = await startRig(cleanups, site, client, { stateDir: dir });
    const [a, b] = shotIds(site);
    writeShot(site, a!, "seen");
    await waitFor("applied", () => first.follower.lastAppliedEventId === site.store.latestEventId);
    await first.follower.stop();
    const cursor = first.follower.lastAppliedEventId;

    // While the follower is away: changes, then the site trims its log past the cursor.
    writeShot(site, a!, "changed while away, event trimmed");
    writeShot(site, b!, "also trimmed");
    writeShot(site, b!, "retained");
    const removed = site.store.trimEventsBefore(site.store.latestEventId);
    expect(removed).toBeGreaterThan(cursor);

    const live = first.bus.subscribe({ entityTypes: ["Shot"] });
    cleanups.push(async () => void (await live.return()));
    // Same cache and bus (the process stayed up); without the flush, shot a would stay "seen".
    const second = await startRig(cleanups, site, client, { stateDir: dir, resume: true, cache: first.cache, bus: first.bus });
    expect(second.follower.status.cursorResets).toBe(1);
    expect(second.metrics.resets).toBe(1);
    const first1 = (await live.next()).value as BusMessage;
    expect(first1).toMatchObject({ kind: "resync", closes: false });
    expect(first1.kind === "resync" && first1.reason).toMatch(/older than the site's retained event log/);

    // A client resuming from before the trim is told to resync too.
    const resumed = first.bus.subscribe({ sinceEventId: cursor });
    cleanups.push(async () => void (await resumed.return()));
    expect((await resumed.next()).value).toMatchObject({ kind: "resync" });
    await expectCacheAnswersTruth(second.cache, site);
    expect((await second.cache.getEntity("Shot", a!, ["description"])).value?.fields["description"]).toBe("changed while away, event trimmed");
  });
});
