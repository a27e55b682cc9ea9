/**
 * Every event kind reaches the cache right: New, Change (a multi-entity field's added/removed),
 * Retirement and Revival, on a preloaded type and on a custom type the cache only holds on demand;
 * and a thumbnail upload's transient image event costs no refetch. Real simulated site, real REST
 * client, events read from the site's event log and applied as the follower would.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ReadThroughCache } from "../src/cache/index.ts";
import type { CacheMetrics } from "../src/cache/observability.ts";
import type { EntityQuery } from "../src/cache/types.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import type { Entity } from "../src/shotgrid/types.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorOptions } from "../src/simulator/index.ts";

const FIXTURE_SCHEMA = new URL("./fixtures/schema/schema_read.json", import.meta.url).pathname;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

class CountingMetrics implements CacheMetrics {
  upstream = 0;
  cacheHit(): void {}
  cacheMiss(): void {}
  coalescedWait(): void {}
  upstreamCall(): void {
    this.upstream++;
  }
  setCacheSize(): void {}
}

async function setUp(site: SimulatorOptions, preloadTypes: string[]) {
  const sim = await startSimulator(site);
  const backend = new ShotGridClient({ siteUrl: sim.url, scriptName: sim.scriptName, scriptKey: DEFAULT_SCRIPT_KEY });
  cleanups.push(async () => {
    await backend.close();
    await sim.close();
  });
  const metrics = new CountingMetrics();
  let cursor = await backend.latestEventId();
  const cache = new ReadThroughCache({ backend, preloadTypes, metrics, lastAppliedEventId: cursor });
  await cache.preload();
  /** Apply what the log holds since the last call, as the follower would; returns the event types. */
  const follow = async (): Promise<string[]> => {
    const events = await backend.readEvents({ afterId: cursor });
    if (events.length > 0) cursor = events[events.length - 1]!.id;
    await cache.applyEvents(events);
    await cache.whenIdle();
    return events.map((e) => e.event_type);
  };
  return { sim, backend, cache, metrics, follow, user: { user: sim.scriptUser } };
}

const ids = (links: unknown): number[] => ((links as Array<{ id: number }>) ?? []).map((l) => l.id).sort((a, b) => a - b);

describe("event kinds", () => {
  it("multi-entity added and removed on a preloaded type", async () => {
    const { sim, cache, follow, user } = await setUp({ shots: 8, assets: 3 }, ["Project", "Sequence", "Shot"]);
    // A sequence with no shots yet (created with an event, so the preloaded type knows it).
    const seq = sim.store.create("Sequence", { code: "NLT_EMPTY", project: { type: "Project", id: 1 } }, user).id;
    expect(await follow()).toContain("Shotgun_Sequence_New");
    const shots = ids((await cache.getEntity("Sequence", seq, ["shots"])).value!.fields.shots);
    expect(shots).toEqual([]);
    const query: EntityQuery = {
      entityType: "Sequence",
      filters: [["id", "is", seq]],
      fields: ["shots"],
      order: [],
      includeArchivedProjects: true,
      retired: false,
    };
    expect(ids((await cache.query(query)).value[0]!.fields.shots)).toEqual([]);

    sim.store.update(
      "Sequence",
      seq,
      {
        shots: {
          multi_entity_update_mode: "add",
          value: [
            { type: "Shot", id: 3 },
            { type: "Shot", id: 5 },
          ],
        },
      },
      user,
    );
    expect(await follow()).toContain("Shotgun_Sequence_Change");
    expect(ids((await cache.getEntity("Sequence", seq, ["shots"])).value!.fields.shots)).toEqual([3, 5]);
    expect(ids((await cache.query(query)).value[0]!.fields.shots)).toEqual([3, 5]);

    sim.store.update("Sequence", seq, { shots: { multi_entity_update_mode: "remove", value: [{ type: "Shot", id: 3 }] } }, user);
    await follow();
    expect(ids((await cache.getEntity("Sequence", seq, ["shots"])).value!.fields.shots)).toEqual([5]);
    expect(ids((await cache.query(query)).value[0]!.fields.shots)).toEqual([5]);
  });

  it("New, multi-entity Change, Retirement and Revival of a custom type that is not preloaded", async () => {
    const { sim, cache, follow, user } = await setUp({ schema: FIXTURE_SCHEMA, dataset: "empty" }, ["Project"]);
    const project = sim.store.insert("Project", { name: "Custom Show" });
    const notes = [1, 2].map((i) => sim.store.insert("Note", { subject: `note ${i}`, project: { type: "Project", id: project.id } }));
    await follow();
    const query: EntityQuery = {
      entityType: "CustomEntity01",
      filters: [["project", "is", { type: "Project", id: project.id }]],
      fields: ["code", "notes"],
      order: [],
      includeArchivedProjects: true,
      retired: false,
    };
    const codes = async () => (await cache.query(query)).value.map((e: Entity) => e.fields.code);
    expect(await codes()).toEqual([]);

    // New
    const created = sim.store.create("CustomEntity01", { code: "GIZMO", project: { type: "Project", id: project.id } }, user);
    expect(await follow()).toContain("Shotgun_CustomEntity01_New");
    expect(await codes()).toEqual(["GIZMO"]);
    expect((await cache.getEntity("CustomEntity01", created.id, ["notes"])).value!.fields.notes).toEqual([]);

    // Change of a multi-entity field: added, then removed
    const noteLinks = notes.map((n) => ({ type: "Note", id: n.id }));
    sim.store.update("CustomEntity01", created.id, { notes: { multi_entity_update_mode: "add", value: noteLinks } }, user);
    await follow();
    expect(ids((await cache.getEntity("CustomEntity01", created.id, ["notes"])).value!.fields.notes)).toEqual(notes.map((n) => n.id));
    sim.store.update("CustomEntity01", created.id, { notes: { multi_entity_update_mode: "remove", value: [noteLinks[0]] } }, user);
    await follow();
    expect(ids((await cache.getEntity("CustomEntity01", created.id, ["notes"])).value!.fields.notes)).toEqual([notes[1]!.id]);
    expect(ids((await cache.query(query)).value[0]!.fields.notes)).toEqual([notes[1]!.id]);

    // Retirement
    sim.store.retire("CustomEntity01", created.id, user);
    expect(await follow()).toContain("Shotgun_CustomEntity01_Retirement");
    expect((await cache.getEntity("CustomEntity01", created.id, ["code"])).value).toBeNull();
    expect(await codes()).toEqual([]);

    // Revival
    sim.store.revive("CustomEntity01", created.id, user);
    expect(await follow()).toContain("Shotgun_CustomEntity01_Revival");
    expect((await cache.getEntity("CustomEntity01", created.id, ["code"])).value!.fields.code).toBe("GIZMO");
    expect(await codes()).toEqual(["GIZMO"]);
  });

  it("a thumbnail upload's transient image event causes no refetch; the final one causes one", async () => {
    const { sim, cache, metrics, follow, user } = await setUp({ shots: 6, assets: 3 }, ["Project", "Shot"]);
    const shot = sim.store.get("Shot", 1)!;
    await cache.getEntity("Shot", 1, ["image"]);
    const calls = metrics.upstream;

    // What a site logs first: the image field pointing at a placeholder, marked transient.
    sim.store.appendEvent({
      event_type: "Shotgun_Shot_Change",
      attribute_name: "image",
      meta: {
        type: "attribute_change",
        attribute_name: "image",
        entity_type: "Shot",
        entity_id: 1,
        field_data_type: "image",
        is_transient: true,
        old_value: null,
        new_value: "transient",
      },
      entity: { type: "Shot", id: 1 },
      project: shot.fields["project"] as { type: string; id: number },
      user: sim.scriptUser,
    });
    expect(await follow()).toEqual(["Shotgun_Shot_Change"]);
    expect(metrics.upstream).toBe(calls);
    expect((await cache.getEntity("Shot", 1, ["image"])).freshness.source).toBe("cache");

    // Then the final image.
    sim.store.update("Shot", 1, { image: "https://example.test/thumbs/shot1.jpg" }, user);
    await follow();
    expect(metrics.upstream).toBe(calls + 1);
    const after = await cache.getEntity("Shot", 1, ["image"]);
    expect(after.value!.fields.image).toBe("https://example.test/thumbs/shot1.jpg");
    expect(metrics.upstream).toBe(calls + 1);
  });
});
