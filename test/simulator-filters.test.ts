import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HASH_CT, openSite, type TestSite } from "./simulator-test-client.ts";

const NOW = Date.UTC(2025, 5, 18, 12, 0, 0); // a Wednesday
const DAY = 86_400_000;
let site: TestSite;

beforeAll(async () => {
  site = await openSite({ dataset: "empty", now: () => NOW });
  const s = site.sim.store;
  s.insert("Project", { id: 1, name: "Alpha" });
  s.insert("Project", { id: 2, name: "Beta" });
  s.insert("Sequence", { id: 10, code: "SQ010", project: { type: "Project", id: 1 } });
  s.insert("Sequence", { id: 20, code: "BQ020", project: { type: "Project", id: 2 } });
  s.insert("Asset", { id: 100, code: "Hero", project: { type: "Project", id: 1 } });
  s.insert("Asset", { id: 101, code: "Boat", project: { type: "Project", id: 1 } });
  const iso = (ms: number) => new Date(ms).toISOString();
  s.insert("Shot", {
    id: 1,
    code: "SH010",
    project: { type: "Project", id: 1 },
    sg_sequence: { type: "Sequence", id: 10 },
    sg_cut_in: 1001,
    sg_frame_rate: 24,
    sg_omit: true,
    assets: [{ type: "Asset", id: 100 }],
    tag_list: ["hero"],
    sg_target_date: "2025-06-18",
    created_at: iso(NOW - 2 * 3600_000),
    description: "Wide establishing shot",
  });
  s.insert("Shot", {
    id: 2,
    code: "SH020",
    project: { type: "Project", id: 1 },
    sg_sequence: { type: "Sequence", id: 10 },
    sg_cut_in: 1010,
    sg_frame_rate: 25,
    assets: [
      { type: "Asset", id: 100 },
      { type: "Asset", id: 101 },
    ],
    sg_target_date: "2025-06-10",
    created_at: iso(NOW - 3 * DAY),
    description: "Close up",
  });
  s.insert("Shot", {
    id: 3,
    code: "BX030",
    project: { type: "Project", id: 2 },
    sg_sequence: { type: "Sequence", id: 20 },
    sg_cut_in: 1100,
    sg_target_date: "2025-07-02",
    created_at: iso(NOW - 40 * DAY),
    image: "https://example.invalid/t.jpg",
  });
  s.insert("Shot", { id: 4, code: "ZZ040", project: { type: "Project", id: 2 }, created_at: iso(NOW + 2 * DAY) });
});
afterAll(() => site.close());

async function match(filters: unknown): Promise<number[]> {
  const a = await site.search("Shot", { filters, fields: "code" }, Array.isArray(filters) ? undefined : HASH_CT);
  if (a.status !== 200) throw new Error(`${a.status} ${a.text}`);
  return a.body.data.map((d: { id: number }) => d.id);
}
async function rejected(filters: unknown): Promise<{ code: number; title: string }> {
  const a = await site.search("Shot", { filters, fields: "code" });
  expect(a.status).toBe(400);
  return a.body.errors[0];
}

describe("simulator filters", () => {
  it("text: is, is_not, contains, not_contains, starts_with, ends_with, in, not_in, less/greater", async () => {
    expect(await match([["code", "is", "SH010"]])).toEqual([1]);
    expect(await match([["code", "is_not", "SH010"]])).toEqual([2, 3, 4]);
    expect(await match([["description", "contains", "SHOT"]])).toEqual([1]);
    expect(await match([["description", "not_contains", "shot"]])).toEqual([2, 3, 4]);
    expect(await match([["code", "starts_with", "sh"]])).toEqual([1, 2]);
    expect(await match([["code", "ends_with", "30"]])).toEqual([3]);
    expect(await match([["code", "in", ["SH010", "ZZ040"]]])).toEqual([1, 4]);
    expect(await match([["code", "in", "SH010", "ZZ040"]])).toEqual([1, 4]);
    expect(await match([["code", "not_in", ["SH010", "ZZ040"]]])).toEqual([2, 3]);
    expect(await match([["code", "greater_than", "SH010"]])).toEqual([2, 4]);
    expect(await match([["description", "is", null]])).toEqual([3, 4]);
  });

  it("numbers: comparisons, between (flattened or list), strings coerced; checkbox is", async () => {
    expect(await match([["sg_cut_in", "less_than", 1010]])).toEqual([1]);
    expect(await match([["sg_cut_in", "greater_than", "1001"]])).toEqual([2, 3]);
    expect(await match([["sg_cut_in", "between", 1005, 1100]])).toEqual([2, 3]);
    expect(await match([["sg_cut_in", "not_between", [1005, 1100]]])).toEqual([1, 4]);
    expect(await match([["id", "in", [1, "3"]]])).toEqual([1, 3]);
    expect(await match([["sg_frame_rate", "is", 25]])).toEqual([2]);
    expect(await match([["sg_omit", "is", true]])).toEqual([1]);
    expect(await match([["sg_omit", "is", false]])).toEqual([2, 3, 4]);
    expect((await rejected([["sg_cut_in", "is", "abc"]])).code).toBe(103);
  });

  it("entity and multi_entity: is (contains for multi), in, type_is, name_* operators", async () => {
    expect(await match([["sg_sequence", "is", { type: "Sequence", id: 10 }]])).toEqual([1, 2]);
    expect(await match([["sg_sequence", "is", null]])).toEqual([4]);
    expect(await match([["sg_sequence", "is_not", null]])).toEqual([1, 2, 3]);
    expect(
      await match([
        [
          "sg_sequence",
          "in",
          [
            { type: "Sequence", id: 20 },
            { type: "Sequence", id: 10 },
          ],
        ],
      ]),
    ).toEqual([1, 2, 3]);
    expect(await match([["assets", "is", { type: "Asset", id: 101 }]])).toEqual([2]);
    expect(await match([["assets", "is_not", { type: "Asset", id: 100 }]])).toEqual([3, 4]);
    expect(await match([["assets", "in", [{ type: "Asset", id: 101 }]]])).toEqual([2]);
    expect(await match([["sg_sequence", "type_is", "Sequence"]])).toEqual([1, 2, 3]);
    expect(await match([["sg_sequence", "type_is_not", "Sequence"]])).toEqual([4]);
    expect(await match([["sg_sequence", "name_contains", "q0"]])).toEqual([1, 2, 3]);
    expect(await match([["sg_sequence", "name_starts_with", "bq"]])).toEqual([3]);
    expect(await match([["sg_sequence", "name_ends_with", "010"]])).toEqual([1, 2]);
    expect(await match([["sg_sequence", "name_is", "SQ010"]])).toEqual([1, 2]);
    expect(await match([["assets", "name_not_contains", "boat"]])).toEqual([1, 3, 4]);
    expect(await match([["project", "name_is", "Beta"]])).toEqual([3, 4]);
    expect((await rejected([["sg_sequence", "contains", "SQ"]])).code).toBe(103);
  });

  it("tag_list: is means contains", async () => {
    expect(await match([["tag_list", "is", "hero"]])).toEqual([1]);
    expect(await match([["tag_list", "is_not", "hero"]])).toEqual([2, 3, 4]);
  });

  it("dates and date-times: comparisons, between, in_last/in_next, in_calendar_*", async () => {
    expect(await match([["sg_target_date", "is", "2025-06-18"]])).toEqual([1]);
    expect(await match([["sg_target_date", "less_than", "2025-06-18"]])).toEqual([2]);
    expect(await match([["sg_target_date", "between", "2025-06-01", "2025-06-30"]])).toEqual([1, 2]);
    expect(await match([["sg_target_date", "in_next", 30, "DAY"]])).toEqual([1, 3]);
    expect(await match([["sg_target_date", "in_calendar_day", 0]])).toEqual([1]);
    expect(await match([["sg_target_date", "in_calendar_month", 1]])).toEqual([3]);
    expect(await match([["created_at", "in_last", 1, "DAY"]])).toEqual([1]);
    expect(await match([["created_at", "in_last", [7, "DAY"]]])).toEqual([1, 2]);
    expect(await match([["created_at", "not_in_last", 7, "DAY"]])).toEqual([3, 4]);
    expect(await match([["created_at", "in_next", 1, "WEEK"]])).toEqual([4]);
    expect(await match([["created_at", "in_last", 2, "MONTH"]])).toEqual([1, 2, 3]);
    expect(await match([["created_at", "in_calendar_day", 0]])).toEqual([1]);
    expect(await match([["created_at", "in_calendar_week", 0]])).toEqual([1, 4]); // weeks start on Monday: shot 2 was on Sunday
    expect(await match([["created_at", "in_calendar_week", -1]])).toEqual([2]);
    expect(await match([["created_at", "in_calendar_year", 0]])).toEqual([1, 2, 3, 4]);
    expect(await match([["created_at", "greater_than", "2025-06-18T00:00:00Z"]])).toEqual([1, 4]);
    expect(await match([["created_at", "between", "2025-06-01 00:00:00 UTC", "2025-06-18T09:59:59Z"]])).toEqual([2]);
    expect((await rejected([["created_at", "in_last", 1, "FORTNIGHT"]])).code).toBe(103);
    expect((await rejected([["sg_target_date", "is", "18/06/2025"]])).code).toBe(103);
  });

  it("deep paths through single-entity links filter like fields", async () => {
    expect(await match([["sg_sequence.Sequence.code", "is", "SQ010"]])).toEqual([1, 2]);
    expect(await match([["project.Project.name", "in", ["Beta"]]])).toEqual([3, 4]);
    expect(await match([["sg_sequence.Sequence.project.Project.name", "is", "Beta"]])).toEqual([3]);
    const bad = await rejected([["sg_sequence.Sequence.nope", "is", 1]]);
    expect(bad.title).toBe("API read() Shot.sg_sequence.Sequence.nope doesn't exist.");
  });

  it("nested logical groups combine with and/or", async () => {
    const filters = {
      logical_operator: "or",
      conditions: [
        ["code", "is", "ZZ040"],
        {
          logical_operator: "and",
          conditions: [
            ["sg_sequence.Sequence.code", "is", "SQ010"],
            ["sg_cut_in", "greater_than", 1001],
          ],
        },
      ],
    };
    expect(await match(filters)).toEqual([2, 4]);
    expect(await match({ logical_operator: "and", conditions: [] })).toEqual([1, 2, 3, 4]);
    const bad = await site.search("Shot", { filters: { logical_operator: "xor", conditions: [] } }, HASH_CT);
    expect(bad.status).toBe(400);
  });

  it("enforces the data-type rules: image only is/is_not null; url, serializable, password never", async () => {
    expect(await match([["image", "is_not", null]])).toEqual([3]);
    expect((await rejected([["image", "contains", "jpg"]])).code).toBe(103);
    expect((await rejected([["sg_metadata", "is", null]])).code).toBe(103);
    const pw = await site.search("HumanUser", { filters: [["password_proxy", "is", "x"]] });
    expect(pw.status).toBe(400);
    const url = await site.search("Project", { filters: [["billboard", "is", null]] });
    expect(url.status).toBe(400);
    expect((await rejected([["code", "frobnicates", 1]])).code).toBe(103);
    expect((await rejected([["code"]])).code).toBe(103);
  });

  it("reads the event log with id filters and sort, like followers do", async () => {
    const s = site.sim.store;
    s.update("Shot", 1, { description: "one" }, { user: site.sim.scriptUser });
    s.update("Shot", 2, { description: "two" }, { user: site.sim.scriptUser });
    const all = await site.search("EventLogEntry", { filters: [["id", "greater_than", 0]], sort: "id", fields: "event_type,entity,meta" });
    const evIds = all.body.data.map((d: { id: number }) => d.id);
    expect(evIds.length).toBe(2);
    const after = await site.search("EventLogEntry", { filters: [["id", "greater_than", evIds[0]]], sort: "id", fields: "id" });
    expect(after.body.data.map((d: { id: number }) => d.id)).toEqual([evIds[1]]);
    const byIds = await site.search("EventLogEntry", {
      filters: [
        ["id", "in", [evIds[1]]],
        ["event_type", "is", "Shotgun_Shot_Change"],
      ],
      fields: "id",
    });
    expect(byIds.body.data).toHaveLength(1);
  });
});
