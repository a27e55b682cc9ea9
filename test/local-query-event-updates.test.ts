/**
 * The mirror is brought up to date from a Change event's own meta where ShotGrid's meta carries
 * the new value (a status, a number, a single link…) before anything is read from the site (the
 * record's write stamps, which events do not carry, follow by a batched background refetch), and
 * by a batched refetch otherwise; never regressing a record whose fetched state is newer than the
 * event. Against the
 * simulated site over HTTP, whose event rows have ShotGrid's meta shapes (checked here too).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ReadThroughCache, NOOP_CACHE_METRICS } from "../src/cache/index.ts";
import type { EntityQuery } from "../src/cache/types.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import { Mirror } from "../src/local-query/index.ts";
import type { Entity, EntityLink, EntitySchema, EventLogEntry } from "../src/shotgrid/types.ts";
import { DEFAULT_SCRIPT_KEY, type SimulatorHandle, startSimulator } from "../src/simulator/index.ts";
import { catchUp, ObservedBackend } from "./cache-helpers.ts";

let sim: SimulatorHandle;
let client: ShotGridClient;

beforeAll(async () => {
  sim = await startSimulator({ shots: 40, assets: 4 });
  client = new ShotGridClient({ siteUrl: sim.url, scriptName: sim.scriptName, scriptKey: DEFAULT_SCRIPT_KEY, maxRetries: 0 });
});

afterAll(async () => {
  await client?.close();
  await sim?.close();
});

let backend: ObservedBackend;
let cache: ReadThroughCache;
const answers: Array<{ where: string; reason: string }> = [];
const updates = { event: 0, refetch: 0 };

function newCache(lastAppliedEventId: number): ReadThroughCache {
  const metrics = {
    ...NOOP_CACHE_METRICS,
    queryAnswered: (where: string, reason: string) => void answers.push({ where, reason }),
    mirrorUpdated: (source: "event" | "refetch", n: number) => void (updates[source] += n),
  };
  return new ReadThroughCache({ backend, metrics, lastAppliedEventId });
}

beforeEach(async () => {
  backend = new ObservedBackend(client);
  answers.length = 0;
  updates.event = 0;
  updates.refetch = 0;
  cache = newCache(await client.latestEventId());
  await cache.preload();
});

/**
 * A shot no test has touched yet: its `updated_at` is the dataset's, long before any event here
 * (a record changed moments ago may already hold a newer state than an event: that is refetched).
 */
let used = 0;
function freshShot(): { id: number; sequence: number; project: number } {
  const shots = [...sim.store.records("Shot")].filter((s) => !s.retired && s.fields.sg_sequence);
  const r = shots[used++]!;
  return { id: r.id, sequence: (r.fields.sg_sequence as EntityLink).id, project: (r.fields.project as EntityLink).id };
}

const bySequence = (
  sequence: number,
  fields = ["code", "sg_status_list", "sg_sequence", "sg_cut_in", "sg_frame_rate", "sg_target_date", "sg_omit"],
): EntityQuery => ({
  entityType: "Shot",
  filters: [["sg_sequence", "is", { type: "Sequence", id: sequence }]],
  fields,
  order: [{ field: "code", direction: "asc" }],
  includeArchivedProjects: false,
  retired: false,
});

/** The site's own answer to the same question (through the REST client, no cache). */
async function siteAnswer(q: EntityQuery): Promise<Entity[]> {
  return client.search(q.entityType, { filters: q.filters, fields: q.fields, sort: q.order, includeArchivedProjects: q.includeArchivedProjects });
}

/** The events after `afterId` (read from the site, as the follower does). */
const eventsAfter = (afterId: number): Promise<EventLogEntry[]> => client.readEvents({ afterId, limit: 500 });

describe("the simulated site's Change events", () => {
  it("carry ShotGrid's meta: attribute_change with old and new value; a link with its name; a multi-entity change as added/removed", async () => {
    const shot = freshShot();
    const other = [...sim.store.records("Sequence")].find((s) => !s.retired && s.id !== shot.sequence)!;
    const linked = (sim.store.get("Shot", shot.id)?.fields.assets as EntityLink[] | undefined) ?? [];
    const asset = [...sim.store.records("Asset")].find((a) => !a.retired && !linked.some((l) => l.id === a.id))!;
    const head = await client.latestEventId();
    sim.store.update("Shot", shot.id, {
      sg_status_list: "ip",
      sg_sequence: { type: "Sequence", id: other.id },
      assets: [...linked, { type: "Asset", id: asset.id }],
    });
    const events = await eventsAfter(head);
    const byField = new Map(events.map((e) => [e.attribute_name, e]));
    expect(byField.get("sg_status_list")?.meta).toEqual({
      type: "attribute_change",
      attribute_name: "sg_status_list",
      entity_type: "Shot",
      entity_id: shot.id,
      field_data_type: "status_list",
      old_value: expect.any(String),
      new_value: "ip",
    });
    expect(byField.get("sg_sequence")?.meta).toMatchObject({
      type: "attribute_change",
      field_data_type: "entity",
      new_value: { type: "Sequence", id: other.id, name: other.fields.code },
    });
    const multi = byField.get("assets")?.meta;
    expect(multi).toMatchObject({ type: "attribute_change", field_data_type: "multi_entity", added: [{ type: "Asset", id: asset.id }], removed: [] });
    expect(multi).not.toHaveProperty("new_value");
    expect(byField.get("sg_status_list")?.event_type).toBe("Shotgun_Shot_Change");
  });
});

describe("a Change event's meta", () => {
  it("updates the record from its meta before any site read (status, number, float, date, checkbox, single link); the write stamps come back in one background batch", async () => {
    const shot = freshShot();
    const other = [...sim.store.records("Sequence")].find((s) => !s.retired && s.id !== shot.sequence && (s.fields.project as EntityLink).id === shot.project)!;
    const reads = backend.upstreamReads;
    // The stamps' refetch is held: whatever the mirror answers until it opens comes from the events.
    const held = backend.holdNext("search");
    sim.store.update("Shot", shot.id, { sg_status_list: "fin", sg_cut_in: 1017, sg_frame_rate: 23.976, sg_target_date: "2027-03-04", sg_omit: true });
    await catchUp(cache, client);
    expect(updates.event).toBe(5);
    const q = bySequence(shot.sequence);
    const answer = await cache.query(q);
    expect(answers.at(-1)).toEqual({ where: "local", reason: "none" });
    expect(answer.value.find((e) => e.id === shot.id)?.fields).toMatchObject({ sg_status_list: "fin", sg_cut_in: 1017, sg_frame_rate: 23.976, sg_omit: true });
    expect(answer.value).toEqual(await siteAnswer(q));
    await held.reached;
    held.open();
    await cache.whenIdle();
    // Five events on one record: one refetch of it, in one search.
    expect(updates).toEqual({ event: 5, refetch: 1 });
    expect(backend.upstreamReads).toBe(reads + 1);

    // A single link: the Shot from its meta; the two Sequences, whose reverse field (shots)
    // changed, are refetched in one batch.
    sim.store.update("Shot", shot.id, { sg_sequence: { type: "Sequence", id: other.id } });
    await catchUp(cache, client);
    await cache.whenIdle();
    for (const seq of [shot.sequence, other.id]) {
      const moved = await cache.query(bySequence(seq));
      expect(answers.at(-1)).toEqual({ where: "local", reason: "none" });
      expect(moved.value).toEqual(await siteAnswer(bySequence(seq)));
    }
    expect((await cache.query(bySequence(other.id))).value.some((e) => e.id === shot.id)).toBe(true);
  });

  it("does not give updated_at/updated_by: until their refetch lands, only queries reading them go to the site; then all are local and exact", async () => {
    const shot = freshShot();
    const held = backend.holdNext("search");
    sim.store.update("Shot", shot.id, { sg_status_list: "hld" });
    await catchUp(cache, client);
    expect(updates.event).toBe(1);
    // The default fields include updated_at.
    await cache.query(bySequence(shot.sequence, []));
    expect(answers.at(-1)).toEqual({ where: "upstream", reason: "stamps_unknown" });
    // Queries not reading them are answered locally all along.
    await cache.query(bySequence(shot.sequence, ["code", "sg_status_list"]));
    expect(answers.at(-1)).toEqual({ where: "local", reason: "none" });
    await held.reached;
    held.open();
    await cache.whenIdle();
    const stamped = bySequence(shot.sequence, ["updated_by", "updated_at", "sg_status_list"]);
    const answer = await cache.query(stamped);
    expect(answers.at(-1)).toEqual({ where: "local", reason: "none" });
    expect(answer.value).toEqual(await siteAnswer(stamped));
  });

  it("takes later events of a record it updated in id order, and does not apply an event again", async () => {
    const shot = freshShot();
    const head = cache.lastAppliedEventId;
    // Both events land while the first one's stamps refetch is held.
    const held = backend.holdNext("search");
    sim.store.update("Shot", shot.id, { sg_status_list: "ip" });
    await catchUp(cache, client);
    sim.store.update("Shot", shot.id, { sg_status_list: "fin" });
    await catchUp(cache, client);
    expect(updates.event).toBe(2);
    held.open();
    await cache.whenIdle();
    // The first event once more (a batch retried after a failure): not older state over newer.
    const [first] = await eventsAfter(head);
    await cache.applyEvents([first!]);
    expect(updates.event).toBe(2);
    await cache.whenIdle();
    const q = bySequence(shot.sequence);
    const answer = await cache.query(q);
    expect(answers.at(-1)).toEqual({ where: "local", reason: "none" });
    expect(answer.value.find((e) => e.id === shot.id)?.fields.sg_status_list).toBe("fin");
    expect(answer.value).toEqual(await siteAnswer(q));
  });

  it("is not applied over a fetched state that may be newer than the event (a preload that ran after the change)", async () => {
    const shot = freshShot();
    const head = await client.latestEventId();
    sim.store.update("Shot", shot.id, { sg_status_list: "ip" });
    sim.store.update("Shot", shot.id, { sg_status_list: "fin" });
    // Started from the cursor before both changes, preloaded after them (as a service that
    // takes the cursor, then preloads, while someone is working).
    cache = newCache(head);
    await cache.preload();
    const [toIp, toFin] = await eventsAfter(head);
    expect(toIp?.meta?.new_value).toBe("ip");
    await cache.applyEvents([toIp!]);
    const q = bySequence(shot.sequence);
    const answer = await cache.query(q);
    expect(answers.at(-1)).toEqual({ where: "local", reason: "none" });
    expect(answer.value.find((e) => e.id === shot.id)?.fields.sg_status_list).toBe("fin");
    expect(updates).toEqual({ event: 0, refetch: 1 });
    await cache.applyEvents([toFin!]);
    expect((await cache.query(q)).value).toEqual(await siteAnswer(q));
  });

  it("is not used where it cannot be exact: a multi-entity change, a new display name, a back-reference: refetched", async () => {
    const shot = freshShot();
    const linked = (sim.store.get("Shot", shot.id)?.fields.assets as EntityLink[] | undefined) ?? [];
    const asset = [...sim.store.records("Asset")].find((a) => !a.retired && !linked.some((l) => l.id === a.id))!;
    sim.store.update("Shot", shot.id, { assets: [...linked, { type: "Asset", id: asset.id }] });
    await catchUp(cache, client);
    // The Shot's assets, and the Asset's shots (its reverse field).
    expect(updates.event).toBe(0);
    expect(updates.refetch).toBeGreaterThanOrEqual(2);
    const before = updates.refetch;
    sim.store.update("Shot", shot.id, { code: "AAA_NEW_NAME" });
    await catchUp(cache, client);
    expect(updates).toEqual({ event: 0, refetch: before + 1 });
    const q = bySequence(shot.sequence, ["code", "assets", "sg_status_list"]);
    const answer = await cache.query(q);
    expect(answers.at(-1)).toEqual({ where: "local", reason: "none" });
    expect(answer.value).toEqual(await siteAnswer(q));
  });

  it("keeps a rename that lands while a record's stamps refetch (which read the old name) is out", async () => {
    const shot = freshShot();
    const held = backend.holdNext("search");
    sim.store.update("Shot", shot.id, { sg_status_list: "rev" });
    await catchUp(cache, client);
    expect(updates.event).toBe(1);
    // The stamps refetch has read the shot (and its sequence's old name) and waits at the gate.
    await held.reached;
    const renamed = `renamed_during_refetch_${shot.sequence}`;
    sim.store.update("Sequence", shot.sequence, { code: renamed });
    await catchUp(cache, client);
    held.open();
    await cache.whenIdle();
    const q = bySequence(shot.sequence, ["code", "sg_sequence", "sg_status_list"]);
    const answer = await cache.query(q);
    expect(answers.at(-1)).toEqual({ where: "local", reason: "none" });
    expect((answer.value.find((e) => e.id === shot.id)!.fields.sg_sequence as EntityLink).name).toBe(renamed);
    expect(answer.value).toEqual(await siteAnswer(q));
  });
});

describe("Mirror.applyChange", () => {
  it("declines a type with a calculated (formula) field: the site recomputes it on any write, with no event of its own", () => {
    const schema: EntitySchema = {
      code: { name: "code", displayName: "Code", dataType: "text", editable: true },
      sg_status_list: { name: "sg_status_list", displayName: "Status", dataType: "status_list", editable: true, validValues: ["ip", "fin"] },
      updated_at: { name: "updated_at", displayName: "Updated", dataType: "date_time", editable: false },
    };
    const change = (mirror: Mirror) => {
      const pass = mirror.beginLoad(
        "Shot",
        mirror === withFormula ? { ...schema, sg_label: { name: "sg_label", displayName: "Label", dataType: "calculated", editable: false } } : schema,
      );
      mirror.put(
        {
          type: "Shot",
          id: 1,
          fields: { code: "a", sg_status_list: "ip", updated_at: "2020-01-01T00:00:00Z", ...(mirror === withFormula ? { sg_label: "a ip" } : {}) },
        },
        0,
      );
      mirror.finishLoad("Shot", pass);
      const meta = {
        type: "attribute_change",
        attribute_name: "sg_status_list",
        entity_type: "Shot",
        entity_id: 1,
        field_data_type: "status_list",
        old_value: "ip",
        new_value: "fin",
      };
      return mirror.applyChange("Shot", 1, { id: 10, createdAtMs: Date.UTC(2026, 0, 1), attribute: "sg_status_list", meta });
    };
    const withFormula = new Mirror(["Shot"]);
    expect(change(new Mirror(["Shot"]))).toBe(true);
    expect(change(withFormula)).toBe(false);
  });
});
