/**
 * The event follower against the simulated site over real HTTP, through the real REST client,
 * into a small real sink that records what it is given.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ChangeBus, type ChangeSubscription } from "../src/events/change-bus.ts";
import { EventFollower, type EventFollowerOptions, type FollowerMetrics } from "../src/events/event-follower.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import type { EventLogEntry } from "../src/shotgrid/types.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";

/** Records every batch it is given; `delayMs` makes applying take time, like a real cache. */
class RecordingSink {
  readonly applied: EventLogEntry[] = [];
  readonly appliedIds = new Set<number>();
  constructor(private readonly delayMs = 0) {}
  async applyEvents(events: EventLogEntry[]): Promise<void> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    for (const e of events) {
      this.applied.push(e);
      this.appliedIds.add(e.id);
    }
  }
}

class CountingMetrics implements FollowerMetrics {
  applied = 0;
  polls = 0;
  pollErrors = 0;
  gaps = 0;
  lastId = 0;
  lag = -1;
  eventsApplied(n: number): void {
    this.applied += n;
  }
  lastEventId(id: number): void {
    this.lastId = id;
  }
  lagSeconds(s: number): void {
    this.lag = s;
  }
  poll(): void {
    this.polls++;
  }
  pollError(): void {
    this.pollErrors++;
  }
  gapsDetected(n: number): void {
    this.gaps += n;
  }
  gapsGivenUp(): void {}
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setUp(options: Partial<EventFollowerOptions> = {}, sinkDelayMs = 0) {
  const site = await startSimulator({ shots: 5, assets: 2 });
  cleanups.push(() => site.close());
  const client = new ShotGridClient({
    siteUrl: site.url,
    scriptName: site.scriptName,
    scriptKey: DEFAULT_SCRIPT_KEY,
    // Fail fast during outages: the follower's own back-off is what is under test.
    maxRetries: 0,
  });
  cleanups.push(() => client.close());
  const sink = new RecordingSink(sinkDelayMs);
  const bus = new ChangeBus();
  const metrics = new CountingMetrics();
  const follower = new EventFollower({
    backend: client,
    sink,
    bus,
    metrics,
    pollIntervalMs: 20,
    maxBackoffMs: 100,
    ...options,
  });
  cleanups.push(() => follower.stop());
  return { site, client, sink, bus, metrics, follower };
}

function shotIds(site: SimulatorHandle): number[] {
  return [...site.store.records("Shot")].map((r) => r.id);
}

/** Write `n` field changes (one event each) to the site's shots. */
function writeChanges(site: SimulatorHandle, n: number, tag: string): void {
  const ids = shotIds(site);
  for (let i = 0; i < n; i++) {
    site.store.update("Shot", ids[i % ids.length]!, { description: `${tag} ${i}` }, { user: site.scriptUser });
  }
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The site's own event ids after `afterId`, read independently of the follower. */
async function siteEventIds(client: ShotGridClient, afterId: number): Promise<number[]> {
  return (await client.readEvents({ afterId, limit: 10_000 })).map((e) => e.id);
}

function expectExactlyOnceInOrder(applied: EventLogEntry[], expected: number[]): void {
  const ids = applied.map((e) => e.id);
  expect(ids).toEqual(expected);
}

describe("event follower", () => {
  it("starts after the newest event and applies each later event once, in id order", async () => {
    const { site, client, sink, follower, bus } = await setUp();
    writeChanges(site, 3, "before start");
    const startId = site.store.latestEventId;
    expect(startId).toBeGreaterThan(0);
    follower.start();
    await follower.whenReady();
    expect(follower.ready).toBe(true);
    expect(follower.lastAppliedEventId).toBe(startId);
    expect(bus.lastEventId).toBe(startId);

    writeChanges(site, 25, "live");
    site.store.appendEvent({ event_type: "Shotgun_User_Login", user: site.scriptUser });
    await waitFor("every event applied", () => follower.lastAppliedEventId === site.store.latestEventId);

    const expected = await siteEventIds(client, startId);
    expect(expected.length).toBe(26);
    expectExactlyOnceInOrder(sink.applied, expected);
    // The login row reaches the sink and moves the bus, but is not a change.
    expect(bus.lastEventId).toBe(site.store.latestEventId);
    expect(Number.isFinite(follower.lagSeconds)).toBe(true);
  });

  it("publishes a batch's changes only after the sink has applied it", async () => {
    const { site, sink, follower, bus } = await setUp({}, 30);
    follower.start();
    await follower.whenReady();
    const sub: ChangeSubscription = bus.subscribe({ entityTypes: ["Shot"] });
    cleanups.push(async () => void (await sub.return()));
    writeChanges(site, 12, "ordered");
    const seen: number[] = [];
    while (seen.length < 12) {
      const r = await sub.next();
      if (r.done || r.value.kind !== "change") throw new Error(`unexpected ${JSON.stringify(r)}`);
      // The sink records a batch only when its (slow) apply finishes.
      expect(sink.appliedIds.has(r.value.change.eventId)).toBe(true);
      expect(r.value.change).toMatchObject({ entityType: "Shot", kind: "change", attributeName: "description" });
      seen.push(r.value.change.eventId);
    }
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
  });

  it("publishes new, retirement and revival changes for writes made through the REST API", async () => {
    const { site, client, follower, bus } = await setUp();
    follower.start();
    await follower.whenReady();
    const sub = bus.subscribe({ entityTypes: ["Asset"] });
    cleanups.push(async () => void (await sub.return()));
    const project = [...site.store.records("Project")][0]!;
    const asset = await client.create("Asset", { code: "Prop_Lamp", project: { type: "Project", id: project.id } });
    await client.delete("Asset", asset.id);
    await client.revive("Asset", asset.id);
    const kinds: string[] = [];
    while (!kinds.includes("revival")) {
      const r = await sub.next();
      if (r.done || r.value.kind !== "change") throw new Error(`unexpected ${JSON.stringify(r)}`);
      expect(r.value.change).toMatchObject({ entityType: "Asset", entityId: asset.id, projectId: project.id });
      expect(r.value.change.user).toMatchObject({ type: "ApiUser", id: site.scriptUser.id });
      if (r.value.change.kind !== "change") kinds.push(r.value.change.kind);
    }
    expect(kinds).toEqual(["new", "retirement", "revival"]);
  });

  it("reads a backlog in full pages back to back, without waiting for the poll interval", async () => {
    const { site, client, sink, follower, metrics } = await setUp({ pageSize: 10, pollIntervalMs: 60_000 });
    follower.start();
    await follower.whenReady();
    const startId = follower.lastAppliedEventId;
    writeChanges(site, 45, "backlog");
    // One nudge; the rest must follow from full pages alone (the interval is a minute).
    await follower.pollNow();
    await waitFor("the backlog applied", () => follower.lastAppliedEventId === site.store.latestEventId);
    expectExactlyOnceInOrder(sink.applied, await siteEventIds(client, startId));
    expect(metrics.polls).toBeGreaterThanOrEqual(1 + 5);
    expect(metrics.applied).toBe(45);
  });

  it("keeps its cursor through an outage and loses no event when the site comes back", async () => {
    const { site, client, sink, follower, metrics } = await setUp();
    follower.start();
    await follower.whenReady();
    const startId = follower.lastAppliedEventId;
    writeChanges(site, 5, "before outage");
    await waitFor("first writes applied", () => follower.lastAppliedEventId === site.store.latestEventId);

    site.knobs.setOutage(Number.POSITIVE_INFINITY, "503");
    writeChanges(site, 20, "during outage");
    await waitFor("failed polls", () => metrics.pollErrors >= 3);
    expect(follower.lastError).toBeTruthy();
    expect(sink.applied.length).toBe(5);

    site.knobs.setOutage(Number.POSITIVE_INFINITY, "reset");
    await waitFor("failed polls on reset connections", () => metrics.pollErrors >= 5);

    site.knobs.endOutage();
    await waitFor("recovery", () => follower.lastAppliedEventId === site.store.latestEventId);
    expectExactlyOnceInOrder(sink.applied, await siteEventIds(client, startId));
    expect(follower.lastError).toBeUndefined();
  });

  it("asks again for a batch the sink failed to apply, so no event is skipped", async () => {
    const { site, client, sink, follower, metrics } = await setUp();
    let failures = 2;
    const original = sink.applyEvents.bind(sink);
    sink.applyEvents = async (events) => {
      if (failures-- > 0) throw new Error("cache store unavailable");
      await original(events);
    };
    follower.start();
    await follower.whenReady();
    const startId = follower.lastAppliedEventId;
    writeChanges(site, 4, "sink trouble");
    await waitFor("recovery", () => follower.lastAppliedEventId === site.store.latestEventId);
    expectExactlyOnceInOrder(sink.applied, await siteEventIds(client, startId));
    expect(metrics.pollErrors).toBe(2);
  });

  it("starts once the site is reachable when it is down at start", async () => {
    const { site, follower, metrics } = await setUp();
    site.knobs.setOutage(Number.POSITIVE_INFINITY, "503");
    follower.start();
    await waitFor("failed polls", () => metrics.pollErrors >= 2);
    expect(follower.ready).toBe(false);
    site.knobs.endOutage();
    await follower.whenReady();
    expect(follower.lastAppliedEventId).toBe(site.store.latestEventId);
  });

  it("records ids skipped by a late commit in the cursor's gap set", async () => {
    const { site, follower, metrics } = await setUp();
    follower.start();
    await follower.whenReady();
    const late = site.store.reserveEventId();
    writeChanges(site, 2, "after the reserved id");
    await waitFor("later events applied", () => follower.lastAppliedEventId === site.store.latestEventId);
    expect(follower.cursorState?.skipped.map((s) => s.id)).toEqual([late]);
    expect(metrics.gaps).toBe(1);
    site.store.dropReservedEvent(late);
  });

  it("stops promptly, aborting a request in flight", async () => {
    const { site, client, follower, metrics } = await setUp();
    await client.latestEventId(); // take the access token now, so the slow request is the follower's own
    site.knobs.set({ latencyMs: 20_000 });
    const before = site.stats.requests;
    follower.start();
    await waitFor("a request in flight", () => site.stats.requests > before);
    const stopped = follower.stop().then(() => "stopped");
    const slow = new Promise((r) => setTimeout(() => r("still running"), 5000));
    expect(await Promise.race([stopped, slow])).toBe("stopped");
    expect(follower.running).toBe(false);
    expect(metrics.pollErrors).toBe(0);
    await expect(follower.pollNow()).rejects.toThrow(/not running/);
  });

  it("stops promptly while sleeping between polls and resumes from its cursor", async () => {
    const { site, sink, follower } = await setUp({ pollIntervalMs: 60_000 });
    follower.start();
    await follower.whenReady();
    const stopped = follower.stop().then(() => "stopped");
    const slow = new Promise((r) => setTimeout(() => r("still sleeping"), 5000));
    expect(await Promise.race([stopped, slow])).toBe("stopped");

    writeChanges(site, 3, "while stopped");
    follower.start();
    await follower.pollNow();
    expect(sink.applied.length).toBe(3);
  });

  it("rejects bad options with an error naming the option", async () => {
    const bus = new ChangeBus();
    const sink = new RecordingSink();
    const backend = { readEvents: async () => [], latestEventId: async () => 0 };
    expect(() => new EventFollower({ backend, sink, bus, pollIntervalMs: 0 })).toThrow(/pollIntervalMs/);
    expect(() => new EventFollower({ backend, sink, bus, pageSize: 2.5 })).toThrow(/pageSize/);
  });
});
