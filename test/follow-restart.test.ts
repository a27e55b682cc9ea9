/**
 * The cursor survives restarts: a saved gap set is still awaited after a restart, a kill -9 in
 * the middle of a batch leaves a whole state file and loses no event, and a state that cannot be
 * trusted is reported as lost.
 */
import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ChangeBus } from "../src/events/change-bus.ts";
import { CursorStateError, loadSavedCursor } from "../src/events/cursor-store.ts";
import { EventFollower } from "../src/events/event-follower.ts";
import { FileCursorStore } from "../src/events/file-cursor-store.ts";
import { DEFAULT_SCRIPT_KEY } from "../src/simulator/index.ts";
import { expectCacheAnswersTruth, shotIds, slowWrite, startRig, startSite, tempDir, waitFor, writeShot, type Cleanup } from "./follow-helpers.ts";

const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const quiet = { info() {}, warn() {} };

describe("follow: restarts", () => {
  it("reloads the gap set after a restart and still applies the late id", async () => {
    const { site, client } = await startSite(cleanups);
    const dir = await tempDir(cleanups);
    const first = await startRig(cleanups, site, client, { stateDir: dir, gapWindowMs: 60_000 });
    const [a, b] = shotIds(site);
    const slow = slowWrite(site, a!);
    writeShot(site, b!, "before the restart");
    await waitFor("the gap seen", () => first.follower.status.gapsAwaited === 1);
    await first.follower.stop();

    // A new process: new cache (loaded now, without the slow write), cursor from the file.
    const second = await startRig(cleanups, site, client, { stateDir: dir, resume: true, gapWindowMs: 60_000 });
    expect(second.follower.cursorState?.skipped.map((s) => s.id)).toEqual([slow.eventId]);
    slow.commit("committed after the restart");
    await waitFor("the late id applied by the new follower", () => second.follower.status.gapsFilled === 1);
    await expectCacheAnswersTruth(second.cache, site);
    expect((await second.cache.getEntity("Shot", a!, ["description"])).value?.fields["description"]).toBe("committed after the restart");
  });

  it("survives kill -9 in the middle of a batch: the state file is whole and no event is lost", async () => {
    const { site, client } = await startSite(cleanups);
    const dir = await tempDir(cleanups);
    const store = new FileCursorStore({ dir, site: site.url });
    const startId = site.store.latestEventId;
    await store.save({ lastAppliedId: startId, skipped: [] });
    const ids = shotIds(site);
    for (let i = 0; i < 40; i++) writeShot(site, ids[i % ids.length]!, `backlog ${i}`);
    const allIds = (await client.readEvents({ afterId: startId, limit: 1000 })).map((e) => e.id);

    const child = spawn(process.execPath, ["--import", "tsx", "test/follow-child-process.ts", site.url, site.scriptName, DEFAULT_SCRIPT_KEY, dir], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    cleanups.push(async () => void child.kill("SIGKILL"));
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const lines = () => out.split("\n").filter(Boolean);
    // Two batches done, a third being applied: kill now.
    await waitFor(
      `the child mid-batch (stderr: ${err})`,
      () => {
        const l = lines();
        return l.filter((x) => x.startsWith("applied ")).length >= 2 && l[l.length - 1]!.startsWith("applying ");
      },
      15_000,
    );
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));

    const l = lines();
    const interrupted = l
      .filter((x) => x.startsWith("applying "))
      .pop()!
      .split(" ")
      .slice(1)
      .map(Number);
    const childApplied = l.filter((x) => x.startsWith("applied ")).flatMap((x) => x.split(" ").slice(1).map(Number));
    expect(childApplied).not.toContain(interrupted[0]);

    // The file parses and is one of the states the child saved (never a torn mix).
    const text = await readFile(store.path, "utf8");
    expect(() => JSON.parse(text)).not.toThrow();
    const saved = await store.load();
    expect(saved!.lastAppliedId).toBeLessThan(interrupted[0]!);
    expect(saved!.lastAppliedId).toBeGreaterThanOrEqual(startId);

    // A new follower resumes from the file: the interrupted batch is applied again, all the rest too.
    const rig = await startRig(cleanups, site, client, { stateDir: dir, resume: true });
    await waitFor("caught up", () => rig.follower.lastAppliedEventId === site.store.latestEventId);
    const resumedFrom = saved!.lastAppliedId;
    const reapplied = allIds.filter((id) => id > resumedFrom);
    expect(reapplied).toContain(interrupted[0]);
    const union = new Set([...childApplied, ...reapplied]);
    expect(allIds.every((id) => union.has(id))).toBe(true);
    await expectCacheAnswersTruth(rig.cache, site);
  });

  it("writes the state atomically: no temporary file left, a valid file after each save", async () => {
    const dir = await tempDir(cleanups);
    const store = new FileCursorStore({ dir, site: "http://site" });
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.save({ lastAppliedId: i + 1, skipped: [{ id: i, firstSeenMs: 5 }].filter((s) => s.id > 0) })));
    expect((await store.load())?.lastAppliedId).toBe(20);
    const { readdir } = await import("node:fs/promises");
    expect(await readdir(dir)).toEqual(["event-cursor.json"]);
  });

  it("reports a torn, foreign or invalid state file as lost, naming the reason", async () => {
    const dir = await tempDir(cleanups);
    const store = new FileCursorStore({ dir, site: "http://site-a" });
    expect(await loadSavedCursor(store, quiet)).toEqual({});

    await writeFile(store.path, '{"version":1,"site":"http://site-a","cursor":{"lastAp');
    await expect(store.load()).rejects.toThrow(CursorStateError);
    expect((await loadSavedCursor(store, quiet)).lostReason).toMatch(/not valid JSON/);

    await new FileCursorStore({ dir, site: "http://site-b" }).save({ lastAppliedId: 7, skipped: [] });
    expect((await loadSavedCursor(store, quiet)).lostReason).toMatch(/another site/);

    await writeFile(store.path, JSON.stringify({ version: 1, site: "http://site-a", cursor: { lastAppliedId: -3, skipped: [] } }));
    expect((await loadSavedCursor(store, quiet)).lostReason).toMatch(/lastAppliedId/);
  });

  it("keeps following when the state cannot be saved, and says so", async () => {
    const { site, client } = await startSite(cleanups);
    const dir = await tempDir(cleanups);
    // A file where the directory should be: every save fails.
    await writeFile(join(dir, "blocked"), "x");
    const errors: string[] = [];
    let saveErrors = 0;
    const follower = new EventFollower({
      backend: client,
      sink: { applyEvents: async () => {} },
      bus: new ChangeBus(),
      store: new FileCursorStore({ dir: join(dir, "blocked"), site: site.url }),
      pollIntervalMs: 20,
      logger: { debug() {}, info() {}, warn() {}, error: (_o, m) => void errors.push(m ?? "") },
      metrics: { cursorSaveError: () => void saveErrors++ },
    });
    cleanups.push(() => follower.stop());
    follower.start();
    await follower.whenReady();
    writeShot(site, shotIds(site)[0]!, "x");
    await waitFor("applied", () => follower.lastAppliedEventId === site.store.latestEventId);
    expect(saveErrors).toBeGreaterThan(0);
    expect(errors.filter((m) => m.includes("cannot save")).length).toBe(1);
  });
});
