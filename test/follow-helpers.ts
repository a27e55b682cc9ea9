/**
 * Shared pieces of the follow-* tests: a simulated site, the real REST client, the real
 * read-through cache as the sink, the change bus, and a follower that saves its cursor in a
 * temporary directory. Every test ends by checking that the cache answers the site's truth.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { ReadThroughCache } from "../src/cache/index.ts";
import { ChangeBus } from "../src/events/change-bus.ts";
import { EventFollower, type EventFollowerOptions, type FollowerMetrics } from "../src/events/event-follower.ts";
import { FileCursorStore } from "../src/events/file-cursor-store.ts";
import type { CursorState } from "../src/events/follow-cursor.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import type { EventReadOptions } from "../src/shotgrid/types.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";

export type Cleanup = () => Promise<void>;

/** Counts what the follower reports. */
export class CountingMetrics implements Partial<FollowerMetrics> {
  polls = 0;
  pollErrors = 0;
  gapsDetectedTotal = 0;
  gapsGivenUpTotal = 0;
  gapsFilledTotal = 0;
  resets = 0;
  poll(): void {
    this.polls++;
  }
  pollError(): void {
    this.pollErrors++;
  }
  gapsDetected(n: number): void {
    this.gapsDetectedTotal += n;
  }
  gapsGivenUp(n: number): void {
    this.gapsGivenUpTotal += n;
  }
  gapsFilled(n: number): void {
    this.gapsFilledTotal += n;
  }
  cursorReset(): void {
    this.resets++;
  }
}

/** The event reads the follower makes, recorded on their way to the real client. */
export interface EventCall {
  afterId?: number;
  ids?: number[];
  limit?: number;
  returned: number;
}

export async function startSite(cleanups: Cleanup[], shots = 6): Promise<{ site: SimulatorHandle; client: ShotGridClient }> {
  const site = await startSimulator({ shots, assets: 2 });
  cleanups.push(() => site.close());
  const client = new ShotGridClient({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY, maxRetries: 0 });
  cleanups.push(() => client.close());
  return { site, client };
}

export async function tempDir(cleanups: Cleanup[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "sgc-follow-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface Rig {
  cache: ReadThroughCache;
  bus: ChangeBus;
  follower: EventFollower;
  store: FileCursorStore | undefined;
  metrics: CountingMetrics;
  calls: EventCall[];
}

export interface RigOptions extends Partial<EventFollowerOptions> {
  /** Save the cursor here (a FileCursorStore); also loaded from here when `resume`. */
  stateDir?: string;
  /** Start from the cursor saved in `stateDir`. */
  resume?: boolean;
  bus?: ChangeBus;
  /** Feed this cache (already loaded) instead of a new one: a follower restarted in the same process. */
  cache?: ReadThroughCache;
}

/**
 * A cache preloaded from the site and a follower feeding it, started and ready. Like the
 * service: the cursor is taken (or loaded) before the preload.
 */
export async function startRig(cleanups: Cleanup[], site: SimulatorHandle, client: ShotGridClient, options: RigOptions = {}): Promise<Rig> {
  const { stateDir, resume, bus: givenBus, cache: givenCache, ...followerOptions } = options;
  const store = stateDir ? new FileCursorStore({ dir: stateDir, site: site.url }) : undefined;
  let initialCursor: CursorState | undefined = followerOptions.initialCursor;
  if (resume && store) initialCursor = await store.load();
  const head = initialCursor?.lastAppliedId ?? (await client.latestEventId());
  const cache = givenCache ?? new ReadThroughCache({ backend: client, preloadTypes: ["Shot"] });
  if (!givenCache) {
    cache.startFrom(head);
    await cache.preload();
  }
  const bus = givenBus ?? new ChangeBus();
  const metrics = new CountingMetrics();
  const calls: EventCall[] = [];
  const backend: EventFollowerOptions["backend"] = {
    async readEvents(o: EventReadOptions) {
      const rows = await client.readEvents(o);
      calls.push({ afterId: o.afterId, ids: o.ids && [...o.ids], limit: o.limit, returned: rows.length });
      return rows;
    },
    latestEventId: (signal) => client.latestEventId(signal),
  };
  const follower = new EventFollower({
    backend,
    sink: {
      applyEvents: (events) => cache.applyEvents(events),
      reset: async () => {
        await cache.invalidateAll();
        await cache.preload();
      },
    },
    bus,
    metrics,
    store,
    pollIntervalMs: 20,
    maxBackoffMs: 100,
    ...followerOptions,
    initialCursor: initialCursor ?? { lastAppliedId: head, skipped: [] },
  });
  cleanups.push(() => follower.stop());
  follower.start();
  await follower.whenReady();
  return { cache, bus, follower, store, metrics, calls };
}

export function shotIds(site: SimulatorHandle): number[] {
  return [...site.store.records("Shot")].map((r) => r.id);
}

/** A REST-like update with its events committed at once. */
export function writeShot(site: SimulatorHandle, id: number, description: string): void {
  site.store.update("Shot", id, { description }, { user: site.scriptUser });
}

/**
 * A write whose event id is taken now and committed later (a slow transaction): the returned
 * function changes the record and commits its event under the reserved id, together.
 */
export function slowWrite(site: SimulatorHandle, id: number): { eventId: number; commit(description: string): void; drop(): void } {
  const eventId = site.store.reserveEventId();
  return {
    eventId,
    commit(description: string) {
      const before = site.store.get("Shot", id)!.fields["description"] ?? null;
      site.store.writeWithoutEvents("Shot", id, { description });
      const project = site.store.get("Shot", id)!.fields["project"] as { type: string; id: number } | undefined;
      site.store.commitReservedEvent(eventId, {
        event_type: "Shotgun_Shot_Change",
        attribute_name: "description",
        entity: { type: "Shot", id },
        project: project ?? null,
        user: site.scriptUser,
        meta: { type: "attribute_change", attribute_name: "description", entity_type: "Shot", entity_id: id, old_value: before, new_value: description },
      });
    },
    drop() {
      site.store.dropReservedEvent(eventId);
    },
  };
}

export async function waitFor(what: string, condition: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every shot as the cache answers it equals the site's record (code and description). */
export async function expectCacheAnswersTruth(cache: ReadThroughCache, site: SimulatorHandle): Promise<void> {
  await cache.whenIdle();
  for (const record of site.store.records("Shot")) {
    const answer = await cache.getEntity("Shot", record.id, ["code", "description"]);
    expect({ id: record.id, code: answer.value?.fields["code"], description: answer.value?.fields["description"] ?? null }).toEqual({
      id: record.id,
      code: record.fields["code"],
      description: record.fields["description"] ?? null,
    });
  }
}
