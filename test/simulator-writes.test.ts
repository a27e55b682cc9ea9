import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openSite, type TestSite } from "./simulator-test-client.ts";

let site: TestSite;
beforeEach(async () => {
  site = await openSite({ dataset: "empty" });
  const s = site.sim.store;
  s.insert("Project", { id: 1, name: "Alpha" });
  s.insert("Sequence", { id: 10, code: "SQ010", project: { type: "Project", id: 1 } });
  s.insert("Asset", { id: 100, code: "Hero", project: { type: "Project", id: 1 } });
  s.insert("Asset", { id: 101, code: "Boat", project: { type: "Project", id: 1 } });
  s.insert("Asset", { id: 102, code: "Lamp", project: { type: "Project", id: 1 } });
});
afterEach(() => site.close());

type Ev = { id: number; attributes: Record<string, unknown>; relationships: Record<string, { data: unknown }> };
async function eventsAfter(id: number): Promise<Ev[]> {
  const a = await site.search("EventLogEntry", { filters: [["id", "greater_than", id]], sort: "id", fields: "*" });
  return a.body.data;
}

describe("simulator writes and their events", () => {
  it("creates with 201, the create date format, set fields plus every multi-entity, and New + Change events", async () => {
    const before = site.sim.store.latestEventId;
    const a = await site.request("POST", "/entity/Shot", {
      code: "SH010",
      project: { type: "Project", id: 1 },
      sg_sequence: { type: "Sequence", id: 10 },
      assets: [{ type: "Asset", id: 100 }],
    });
    expect(a.status).toBe(201);
    expect(Object.keys(a.body)).toEqual(["data"]);
    const d = a.body.data;
    expect(d.attributes.created_at).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    expect(d.attributes).toMatchObject({ code: "SH010", sg_status_list: "wtg" });
    expect(d.attributes).not.toHaveProperty("description");
    expect(d.relationships.parent_shots).toEqual({ data: [], links: { self: `/api/v1.1/entity/shots/${d.id}/relationships/parent_shots` } });
    expect(d.relationships.created_by.data).toMatchObject({ type: "ApiUser", name: "test-script 1.0" });
    const evs = await eventsAfter(before);
    expect(evs[0]!.attributes).toMatchObject({ event_type: "Shotgun_Shot_New", meta: { type: "new_entity", entity_type: "Shot", entity_id: d.id } });
    expect(evs[0]!.relationships["entity"]!.data).toMatchObject({ type: "Shot", id: d.id });
    expect(evs[0]!.relationships["project"]!.data).toMatchObject({ type: "Project", id: 1 });
    const changes = evs.slice(1).map((e) => e.attributes);
    expect(changes.every((c) => c["event_type"] === "Shotgun_Shot_Change")).toBe(true);
    const code = changes.find((c) => c["attribute_name"] === "code")!;
    expect(code["meta"]).toEqual({
      type: "attribute_change",
      attribute_name: "code",
      entity_type: "Shot",
      entity_id: d.id,
      field_data_type: "text",
      old_value: null,
      new_value: "SH010",
      in_create: true,
    });
    const assets = changes.find((c) => c["attribute_name"] === "assets")!;
    expect(assets["meta"]).toMatchObject({ field_data_type: "multi_entity", added: [{ type: "Asset", id: 100, name: "Hero" }], removed: [], in_create: true });
    // Reads then give the read date format.
    const read = await site.get(`/entity/Shot/${d.id}?fields=created_at`);
    expect(read.body.data.attributes.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it("refuses unknown fields (103), bad values and links to missing records, and writes nothing", async () => {
    const before = site.sim.store.nextEventIdValue;
    const unknown = await site.request("POST", "/entity/Asset", { not_existing_field: 1234 });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors[0]).toMatchObject({ code: 103, title: "API create() Asset.not_existing_field doesn't exist." });
    expect((await site.request("POST", "/entity/Shot", { code: 12 })).status).toBe(400);
    expect((await site.request("POST", "/entity/Shot", { sg_status_list: "bogus" })).status).toBe(400);
    expect((await site.request("POST", "/entity/Shot", { sg_sequence: { type: "Sequence", id: 999 } })).status).toBe(400);
    expect((await site.request("POST", "/entity/Shot", { sg_sequence: { type: "Asset", id: 100 } })).status).toBe(400);
    expect((await site.request("PUT", "/entity/Shot/400000", { description: "NOPE" })).body.errors[0]).toMatchObject({
      status: 404,
      code: 104,
      detail: "Entity of type [Shot] with id=400000 does not exist.",
    });
    expect(site.sim.store.nextEventIdValue).toBe(before);
    expect(site.sim.store.count("Shot")).toBe(0);
  });

  it("updates with one Change event per changed field, old and new values, and skips unchanged fields", async () => {
    const rec = site.sim.store.create("Shot", { code: "SH010", description: "old", project: { type: "Project", id: 1 } }, { user: site.sim.scriptUser });
    const before = site.sim.store.latestEventId;
    const a = await site.request("PUT", `/entity/Shot/${rec.id}`, { description: "new", code: "SH010", sg_cut_in: 1001 });
    expect(a.status).toBe(200);
    expect(a.body.links).toEqual({});
    expect(a.body.data.attributes).toMatchObject({ description: "new", sg_cut_in: 1001 });
    expect(a.body.data.attributes.updated_at).toMatch(/Z$/);
    const evs = await eventsAfter(before);
    expect(evs.map((e) => e.attributes["attribute_name"])).toEqual(["description", "sg_cut_in"]);
    expect(evs[0]!.attributes["meta"]).toMatchObject({ old_value: "old", new_value: "new", field_data_type: "text" });
    expect(evs[0]!.attributes["meta"]).not.toHaveProperty("in_create");
    const empty = await site.request("PUT", `/entity/Shot/${rec.id}`, {});
    expect(empty.status).toBe(200);
    expect(site.sim.store.latestEventId).toBe(evs.at(-1)!.id);
  });

  it("multi_entity_update_mode add, remove and set change the list and report added/removed", async () => {
    const rec = site.sim.store.create("Shot", { code: "SH010", assets: [{ type: "Asset", id: 100 }] });
    const put = (mode: string, ids: number[]) =>
      site.request("PUT", `/entity/Shot/${rec.id}`, { assets: { multi_entity_update_mode: mode, value: ids.map((id) => ({ type: "Asset", id })) } });
    let before = site.sim.store.latestEventId;
    let a = await put("add", [101, 100]);
    expect(a.body.data.relationships.assets.data.map((l: { id: number }) => l.id)).toEqual([100, 101]);
    expect((await eventsAfter(before))[0]!.attributes["meta"]).toMatchObject({ added: [{ type: "Asset", id: 101, name: "Boat" }], removed: [] });
    before = site.sim.store.latestEventId;
    a = await put("remove", [100]);
    expect(a.body.data.relationships.assets.data.map((l: { id: number }) => l.id)).toEqual([101]);
    expect((await eventsAfter(before))[0]!.attributes["meta"]).toMatchObject({ added: [], removed: [{ type: "Asset", id: 100, name: "Hero" }] });
    a = await put("set", [102]);
    expect(a.body.data.relationships.assets.data.map((l: { id: number }) => l.id)).toEqual([102]);
    expect((await put("sideways", [102])).status).toBe(400);
  });

  it("retires with 204 and revives with did_revive, each with its event; missing ids get 404 104", async () => {
    const rec = site.sim.store.create("Asset", { code: "Temp", project: { type: "Project", id: 1 } });
    const before = site.sim.store.latestEventId;
    const del = await site.request("DELETE", `/entity/Asset/${rec.id}`);
    expect(del.status).toBe(204);
    expect(del.text).toBe("");
    expect((await site.get(`/entity/Asset/${rec.id}`)).status).toBe(404);
    expect((await site.request("DELETE", `/entity/Asset/${rec.id}`)).status).toBe(404);
    const rev = await site.request("POST", `/entity/Asset/${rec.id}?revive=true`);
    expect(rev.body).toEqual({ data: { type: "Asset", id: rec.id }, links: { self: `/api/v1.1/entity/Asset/${rec.id}` }, meta: { did_revive: true } });
    const again = await site.request("POST", `/entity/Asset/${rec.id}?revive=true`);
    expect(again.body.meta.did_revive).toBe(false);
    expect((await site.request("POST", "/entity/Asset/400000?revive=true")).body.errors[0].code).toBe(104);
    const evs = await eventsAfter(before);
    expect(evs.map((e) => e.attributes["event_type"])).toEqual(["Shotgun_Asset_Retirement", "Shotgun_Asset_Revival"]);
    expect(evs[0]!.attributes["meta"]).toMatchObject({ type: "entity_retirement", entity_type: "Asset", entity_id: rec.id });
  });

  it("_batch applies all requests or none", async () => {
    const ok = await site.request("POST", "/entity/_batch", {
      requests: [
        { request_type: "create", entity: "Shot", data: { code: "B1" } },
        { request_type: "update", entity: "Asset", record_id: 100, data: { description: "batched" } },
        { request_type: "delete", entity: "Asset", record_id: 102 },
      ],
    });
    expect(ok.status).toBe(200);
    expect(ok.body.data[0]).toMatchObject({ type: "Shot", attributes: { code: "B1" } });
    expect(ok.body.data[1].attributes.description).toBe("batched");
    expect(ok.body.data[2]).toBe(true);

    const shotsBefore = site.sim.store.count("Shot");
    const nextEvent = site.sim.store.nextEventIdValue;
    const bad = await site.request("POST", "/entity/_batch", {
      requests: [
        { request_type: "create", entity: "Shot", data: { code: "B2" } },
        { request_type: "update", entity: "Asset", record_id: 100, data: { description: "should roll back" } },
        { request_type: "update", entity: "Asset", record_id: 999999, data: { description: "missing" } },
      ],
    });
    expect(bad.status).toBe(404);
    expect(bad.body.errors[0].code).toBe(104);
    expect(site.sim.store.count("Shot")).toBe(shotsBefore);
    expect(site.sim.store.get("Asset", 100)!.fields["description"]).toBe("batched");
    expect(site.sim.store.nextEventIdValue).toBe(nextEvent);
    // The id the rolled-back create took is handed out again.
    const next = await site.request("POST", "/entity/Shot", { code: "B3" });
    expect(next.body.data.id).toBe(ok.body.data[0].id + 1);
    expect((await site.request("POST", "/entity/_batch", { requests: [] })).status).toBe(400);
  });

  it("store writes append events like REST writes; writeWithoutEvents moves updated_at only", async () => {
    let t = Date.UTC(2025, 0, 1);
    await site.close();
    site = await openSite({ dataset: "empty", now: () => t });
    const s = site.sim.store;
    const rec = s.create("Project", { name: "P" }, { user: site.sim.scriptUser });
    const count = s.eventCount;
    expect(count).toBeGreaterThanOrEqual(2);
    t += 60_000;
    s.writeWithoutEvents("Project", rec.id, { name: "Quiet rename" });
    expect(s.eventCount).toBe(count);
    const read = await site.get(`/entity/Project/${rec.id}?fields=name,updated_at`);
    expect(read.body.data.attributes).toEqual({ name: "Quiet rename", updated_at: "2025-01-01T00:01:00Z" });
    s.retire("Project", rec.id);
    s.revive("Project", rec.id);
    expect(s.eventCount).toBe(count + 2);
  });

  it("reserved event ids commit out of order, and a dropped id stays a gap", async () => {
    const s = site.sim.store;
    const base = s.latestEventId;
    const late = s.reserveEventId();
    const dropped = s.reserveEventId();
    s.update("Asset", 100, { description: "after the reservations" });
    const visible = async () => (await eventsAfter(base)).map((e) => e.id);
    expect(await visible()).toEqual([dropped + 1]);
    s.commitReservedEvent(late, {
      event_type: "Shotgun_Asset_Change",
      attribute_name: "code",
      entity: { type: "Asset", id: 100 },
      meta: { type: "attribute_change" },
    });
    expect(await visible()).toEqual([late, dropped + 1]);
    s.dropReservedEvent(dropped);
    expect(s.reservedEventIds()).toEqual([]);
    expect(await visible()).toEqual([late, dropped + 1]);
    expect(() => s.commitReservedEvent(dropped, { event_type: "x" })).toThrow(/not reserved/);
  });

  it("renaming a linked record shows the new name in every link at once", async () => {
    const shot = site.sim.store.create("Shot", { code: "SH1", sg_sequence: { type: "Sequence", id: 10 } });
    await site.request("PUT", "/entity/Sequence/10", { code: "SQ999" });
    const a = await site.get(`/entity/Shot/${shot.id}?fields=sg_sequence`);
    expect(a.body.data.relationships.sg_sequence.data.name).toBe("SQ999");
  });
});
