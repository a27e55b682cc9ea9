/**
 * Local Query answers (src/local-query) are kept in the store like upstream answers, so a repeated
 * Query is a plain hit. These tests hold what keeping must never do: keep an answer older than an
 * applied event. Found by review: an order on a link the answer does not carry, and an answer
 * computed while a batch had bumped the store but not yet updated the mirror.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReadThroughCache } from "../src/cache/index.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import type { EntityQuery } from "../src/cache/types.ts";
import type { EntityLink, Filters } from "../src/shotgrid/types.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { Gate } from "./cache-helpers.ts";

let sim: SimulatorHandle;
let client: ShotGridClient;

beforeAll(async () => {
  sim = await startSimulator({ shots: 30, assets: 4 });
  client = new ShotGridClient({ siteUrl: sim.url, scriptName: sim.scriptName, scriptKey: DEFAULT_SCRIPT_KEY, maxRetries: 0 });
});
afterAll(async () => {
  await client.close();
  await sim.close();
});

async function freshCache(): Promise<ReadThroughCache> {
  const cache = new ReadThroughCache({ backend: client, lastAppliedEventId: await client.latestEventId() });
  await cache.preload();
  return cache;
}

async function catchUp(cache: ReadThroughCache): Promise<void> {
  for (;;) {
    const events = await client.readEvents({ afterId: cache.lastAppliedEventId, limit: 500 });
    if (events.length === 0) break;
    await cache.applyEvents(events);
  }
  await cache.whenIdle();
}

const liveShots = () => [...sim.store.records("Shot")].filter((s) => !s.retired && s.fields["sg_sequence"]);

describe("local answers kept in the store", () => {
  it("an order on a link the answer does not show follows a rename of that link", async () => {
    const cache = await freshCache();
    const project = (liveShots()[0]!.fields["project"] as EntityLink).id;
    const q: EntityQuery = {
      entityType: "Shot",
      filters: [["project", "is", { type: "Project", id: project }]],
      fields: ["code"],
      order: [
        { field: "sg_sequence", direction: "asc" },
        { field: "code", direction: "asc" },
      ],
      includeArchivedProjects: true,
      retired: false,
    };
    const first = await cache.query(q);
    const firstShot = liveShots().find((s) => s.id === first.value[0]!.id)!;
    sim.store.update("Sequence", (firstShot.fields["sg_sequence"] as EntityLink).id, { code: "zzzz_sorts_last" }, { user: sim.scriptUser });
    await catchUp(cache);
    const again = await cache.query(q);
    const site = await client.search("Shot", { filters: q.filters, fields: ["code"], sort: q.order, includeArchivedProjects: true });
    expect(again.value.map((e) => e.id)).toEqual(site.map((e) => e.id));
  });

  it("an answer computed while a batch is being applied is given but not kept", async () => {
    const cache = await freshCache();
    const shot = liveShots()[0]!;
    const seq = (shot.fields["sg_sequence"] as EntityLink).id;
    const filters: Filters = [["sg_sequence", "is", { type: "Sequence", id: seq }]];
    // Distinct keys (the limit differs), so each is computed and offered to the store.
    const q = (k: number): EntityQuery => ({
      entityType: "Shot",
      filters,
      fields: ["code", "sg_sequence"],
      order: [{ field: "code", direction: "asc" }],
      limit: 1000 + k,
      page: 1,
      includeArchivedProjects: true,
      retired: false,
    });
    sim.store.update("Sequence", seq, { code: "RENAMED_WHILE_ASKED" }, { user: sim.scriptUser });
    const events = await client.readEvents({ afterId: cache.lastAppliedEventId, limit: 500 });
    const applying = cache.applyEvents(events);
    const racing: Promise<unknown>[] = [];
    for (let k = 0; k < 40; k++) {
      racing.push(cache.query(q(k)));
      await Promise.resolve();
    }
    await applying;
    await Promise.all(racing);
    await cache.whenIdle();
    for (let k = 0; k < 40; k++) {
      const answer = await cache.query(q(k));
      const e = answer.value.find((x) => x.id === shot.id)!;
      expect((e.fields["sg_sequence"] as EntityLink).name, `query ${k}`).toBe("RENAMED_WHILE_ASKED");
    }
  });

  it("identical concurrent Queries share one evaluation; the next one is a stored hit; an event detaches it", async () => {
    const cache = await freshCache();
    const shot = liveShots()[3]!;
    const seq = (shot.fields["sg_sequence"] as EntityLink).id;
    const q: EntityQuery = {
      entityType: "Shot",
      filters: [["sg_sequence", "is", { type: "Sequence", id: seq }]],
      fields: ["code", "sg_status_list"],
      order: [{ field: "code", direction: "asc" }],
      limit: 50,
      includeArchivedProjects: false,
      retired: false,
    };
    // Count the engine's evaluations (the real engine, only observed).
    const engine = cache.localQueries;
    const answer = engine.answer.bind(engine);
    let evaluations = 0;
    engine.answer = (lq) => {
      evaluations++;
      return answer(lq);
    };
    const together = await Promise.all(Array.from({ length: 200 }, () => cache.query(q)));
    expect(evaluations).toBe(1);
    for (const a of together) expect(a.value).toEqual(together[0]!.value);
    const site = await client.search("Shot", { filters: q.filters, fields: q.fields, sort: q.order, limit: 50 });
    expect(together[0]!.value).toEqual(site);
    // Kept: the next identical Query is a stored hit, not evaluated again.
    await cache.query(q);
    expect(evaluations).toBe(1);
    // An evaluation made before an event, still in flight (its answer being kept in the store,
    // held here at the store's door), is not joined by callers arriving after the event.
    const statusBefore = together[0]!.value.find((e) => e.id === shot.id)?.fields["sg_status_list"];
    expect(statusBefore).not.toBe("omt");
    await cache.store.delete(cache.prepareQuery(q).key);
    const gate = new Gate();
    const setIfFresh = cache.store.setIfFresh.bind(cache.store);
    cache.store.setIfFresh = async (...args) => {
      cache.store.setIfFresh = setIfFresh;
      await gate.arrive();
      return setIfFresh(...args);
    };
    const before = cache.query(q);
    await gate.reached;
    sim.store.update("Shot", shot.id, { sg_status_list: "omt" }, { user: sim.scriptUser });
    const events = await client.readEvents({ afterId: cache.lastAppliedEventId, limit: 500 });
    await cache.applyEvents(events);
    const after = await Promise.all(Array.from({ length: 20 }, () => cache.query(q)));
    gate.open();
    // The held evaluation answers what it computed (before the event); nobody after the event gets it.
    expect((await before).value.find((e) => e.id === shot.id)?.fields["sg_status_list"]).toBe(statusBefore);
    for (const a of after) expect(a.value.find((e) => e.id === shot.id)?.fields["sg_status_list"]).toBe("omt");
  });
});
