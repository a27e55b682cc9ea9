/** Reads against the simulated site over real HTTP: paging, filters, fields, sort, schema, events. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";

let site: SimulatorHandle;
let client: ShotGridClient;

beforeAll(async () => {
  site = await startSimulator({ scriptName: "reads", scriptKey: "reads-key-0123456789" });
  client = new ShotGridClient({ siteUrl: site.url, scriptName: "reads", scriptKey: "reads-key-0123456789" });
});
afterAll(async () => {
  await client?.close();
  await site?.close();
});

/** Requests the site saw during `fn` (auth excluded). */
async function countRequests<T>(fn: () => Promise<T>): Promise<{ result: T; requests: number }> {
  const before = site.stats.requests - site.stats.authRequests;
  const result = await fn();
  return { result, requests: site.stats.requests - site.stats.authRequests - before };
}

describe("paging", () => {
  it("pages to completion and stops on a short page", async () => {
    const total = site.store.count("Shot");
    expect(total).toBeGreaterThan(20);
    const pageSize = 7;
    const { result, requests } = await countRequests(() => client.search("Shot", { fields: ["code"], pageSize, sort: [{ field: "id", direction: "asc" }] }));
    expect(result.length).toBe(total);
    expect(new Set(result.map((e) => e.id)).size).toBe(total);
    expect(requests).toBe(Math.floor(total / pageSize) + 1);
  });

  it("stops after an empty last page when the total is a multiple of the page size", async () => {
    const total = site.store.count("Shot");
    const { result, requests } = await countRequests(() => client.search("Shot", { fields: ["code"], pageSize: total }));
    expect(result.length).toBe(total);
    expect(requests).toBe(2);
  });

  it("stops at the caller's limit without fetching further pages", async () => {
    const { result, requests } = await countRequests(() => client.search("Shot", { fields: ["code"], pageSize: 4, limit: 10 }));
    expect(result.length).toBe(10);
    expect(requests).toBe(3);
    const small = await countRequests(() => client.search("Shot", { fields: ["code"], limit: 3 }));
    expect(small.result.length).toBe(3);
    expect(small.requests).toBe(1);
    expect(await client.search("Shot", { limit: 0 })).toEqual([]);
  });

  it("yields a page at a time, starting at the caller's page", async () => {
    const sizes: number[] = [];
    for await (const page of client.searchPages("Shot", { fields: ["code"], pageSize: 25 })) sizes.push(page.length);
    const total = site.store.count("Shot");
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(total);
    expect(sizes.slice(0, -1).every((s) => s === 25)).toBe(true);
    const all = await client.search("Shot", { fields: ["code"], pageSize: 5, sort: [{ field: "id", direction: "asc" }] });
    const fromPage3 = await client.search("Shot", { fields: ["code"], pageSize: 5, page: 3, limit: 5, sort: [{ field: "id", direction: "asc" }] });
    expect(fromPage3.map((e) => e.id)).toEqual(all.slice(10, 15).map((e) => e.id));
  });

  it("rejects a bad limit or page size naming it", async () => {
    await expect(client.search("Shot", { limit: -1 })).rejects.toThrow("limit");
    await expect(client.search("Shot", { pageSize: 0 })).rejects.toThrow("pageSize");
    await expect(client.search("Not A Type")).rejects.toThrow("entityType");
  });
});

describe("filters, fields and sort", () => {
  it("sends a list of conditions in array form", async () => {
    const first = (await client.search("Shot", { fields: ["code"], limit: 1 }))[0]!;
    const found = await client.search("Shot", { filters: [["code", "is", first.fields.code as string]], fields: ["code"] });
    expect(found.map((e) => e.id)).toEqual([first.id]);
  });

  it("sends a logical group in hash form, with or", async () => {
    const two = await client.search("Shot", { fields: ["code"], limit: 2 });
    const found = await client.search("Shot", {
      filters: { logical_operator: "or", conditions: two.map((e) => ["code", "is", e.fields.code] as [string, string, unknown]) },
      fields: ["code"],
    });
    expect(found.map((e) => e.id).sort()).toEqual(two.map((e) => e.id).sort());
  });

  it("filters and returns deep dotted paths through single links", async () => {
    const shot = (
      await client.search("Shot", { fields: ["sg_sequence", "sg_sequence.Sequence.code"], filters: [["sg_sequence", "is_not", null]], limit: 1 })
    )[0]!;
    const seq = shot.fields.sg_sequence as { type: string; id: number; name: string };
    expect(seq.type).toBe("Sequence");
    expect(shot.fields["sg_sequence.Sequence.code"]).toBe(seq.name);
    const inSeq = await client.search("Shot", { filters: [["sg_sequence.Sequence.code", "is", seq.name]], fields: ["sg_sequence"] });
    expect(inSeq.length).toBeGreaterThan(0);
    expect(inSeq.every((e) => (e.fields.sg_sequence as { id: number }).id === seq.id)).toBe(true);
  });

  it("sorts by several fields, descending ones included", async () => {
    const shots = await client.search("Shot", {
      fields: ["code"],
      sort: [
        { field: "code", direction: "desc" },
        { field: "id", direction: "asc" },
      ],
    });
    const codes = shots.map((e) => e.fields.code as string);
    expect(codes).toEqual([...codes].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0)));
  });

  it("passes ShotGrid's rejection of an unknown field on with its code", async () => {
    const err = await client.search("Shot", { filters: [["no_such_field", "is", 1]] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "SG_REQUEST_REJECTED", status: 400 });
    expect((err as { shotgridCode: number }).shotgridCode).toBe(103);
  });
});

describe("records by id and retirement", () => {
  it("reads one record, and null for a missing one", async () => {
    const shot = (await client.search("Shot", { fields: ["code"], limit: 1 }))[0]!;
    expect(await client.getEntity("Shot", shot.id, { fields: ["code"] })).toEqual(shot);
    expect(await client.getEntity("Shot", 987_654)).toBeNull();
  });

  it("sees retired records only when asked", async () => {
    const project = (await client.search("Project", { limit: 1, fields: ["name"] }))[0]!;
    const created = await client.create("Shot", { code: "RETIRE_ME", project: { type: "Project", id: project.id } });
    await client.delete("Shot", created.id);
    expect(await client.getEntity("Shot", created.id)).toBeNull();
    expect((await client.getEntity("Shot", created.id, { returnOnly: "retired", fields: ["code"] }))?.fields.code).toBe("RETIRE_ME");
    const retired = await client.search("Shot", { returnOnly: "retired", fields: ["code"], includeArchivedProjects: true });
    expect(retired.map((e) => e.id)).toContain(created.id);
    const active = await client.search("Shot", { fields: ["code"] });
    expect(active.map((e) => e.id)).not.toContain(created.id);
  });
});

describe("schema", () => {
  it("reads entity types and flattens field schemas", async () => {
    const types = await client.schemaEntityTypes();
    expect(types).toEqual(expect.arrayContaining(["Shot", "Asset", "EventLogEntry"]));
    const shot = await client.schemaFields("Shot");
    expect(shot.code).toMatchObject({ name: "code", dataType: "text" });
    expect(shot.sg_sequence).toMatchObject({ dataType: "entity", validTypes: ["Sequence"] });
    expect(shot.sg_status_list?.validValues).toEqual(expect.arrayContaining(["ip", "fin"]));
  });
});

describe("event log", () => {
  it("reads events after an id, by ids, and the latest id", async () => {
    const project = (await client.search("Project", { limit: 1 }))[0]!;
    const before = await client.latestEventId();
    const shot = await client.create("Shot", { code: "EVENTFUL", project: { type: "Project", id: project.id } });
    await client.update("Shot", shot.id, { description: "changed" });
    const latest = await client.latestEventId();
    expect(latest).toBe(site.store.latestEventId);
    expect(latest).toBeGreaterThan(before);

    const events = await client.readEvents({ afterId: before });
    expect(events.map((e) => e.id)).toEqual([...events.map((e) => e.id)].sort((a, b) => a - b));
    expect(events.every((e) => e.id > before)).toBe(true);
    expect(events.map((e) => e.event_type)).toEqual(expect.arrayContaining(["Shotgun_Shot_New", "Shotgun_Shot_Change"]));
    const change = events.find((e) => e.attribute_name === "description")!;
    expect(change.entity).toEqual({ type: "Shot", id: shot.id, name: "EVENTFUL" });
    expect(change.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);

    const limited = await client.readEvents({ afterId: before, limit: 1 });
    expect(limited.map((e) => e.id)).toEqual([events[0]!.id]);
    const byIds = await client.readEvents({ ids: [events[1]!.id, events[0]!.id] });
    expect(byIds.map((e) => e.id)).toEqual([events[0]!.id, events[1]!.id]);
    expect(await client.readEvents({ ids: [] })).toEqual([]);
    const since = await client.readEvents({ afterId: before, createdAfter: change.created_at });
    expect(since.map((e) => e.id)).toContain(change.id);
    expect(await client.readEvents({ afterId: before, createdAfter: "2999-01-01T00:00:00Z" })).toEqual([]);
    await expect(client.readEvents({ createdAfter: "yesterday" })).rejects.toThrow("createdAfter");
    await expect(client.readEvents({ afterId: -5 })).rejects.toThrow("afterId");
  });
});
