/**
 * What ShotGrid does not document, the engine does not guess: each rule below is one a real site
 * might apply either way (and the simulated site, written by the same hands, cannot tell which),
 * so a query whose answer hangs on it for these very records goes to ShotGrid instead. Beside
 * each decline, the same query over records the rule does not touch is still answered.
 */
import { describe, expect, it } from "vitest";
import { loadServeConfig } from "../src/config.ts";
import { LocalQueryEngine } from "../src/local-query/index.ts";
import { ids, query } from "./support/local-query.ts";
import type { Entity, EntitySchema, FieldSchema, FilterGroup } from "../src/shotgrid/types.ts";

const field = (name: string, dataType: string, extra: Partial<FieldSchema> = {}): FieldSchema => ({
  name,
  displayName: name,
  dataType,
  editable: true,
  ...extra,
});

const SHOT: EntitySchema = {
  code: field("code", "text"),
  description: field("description", "text"),
  sg_cut_in: field("sg_cut_in", "number"),
  updated_at: field("updated_at", "date_time"),
  sg_target_date: field("sg_target_date", "date"),
  sg_sequence: field("sg_sequence", "entity", { validTypes: ["Sequence"] }),
  created_by: field("created_by", "entity", { validTypes: ["HumanUser", "ApiUser"] }),
};
const SEQUENCE: EntitySchema = { code: field("code", "text"), sg_flag: field("sg_flag", "checkbox") };
const PROJECT: EntitySchema = { name: field("name", "text"), archived: field("archived", "checkbox") };

/** 2026-03-10T12:30:00Z. */
const NOW = Date.UTC(2026, 2, 10, 12, 30);

const SHOT_DEFAULTS = { code: "X", description: null, sg_cut_in: null, updated_at: null, sg_target_date: null, sg_sequence: null, created_by: null };

function engine(shots: Array<Entity["fields"]>, options: { timeZone?: string; now?: number; sequences?: Array<Entity["fields"]> } = {}): LocalQueryEngine {
  const e = new LocalQueryEngine({
    types: ["Shot", "Sequence"],
    timeZone: "timeZone" in options ? options.timeZone : "UTC",
    defaultFields: ["code"],
    now: () => options.now ?? NOW,
  });
  const load = (type: string, schema: EntitySchema, rows: Array<Entity["fields"]>, defaults: Entity["fields"]) => {
    const pass = e.mirror.beginLoad(type, schema);
    for (const [i, fields] of rows.entries()) e.mirror.put({ type, id: i + 1, fields: { ...defaults, ...fields } }, 0);
    e.mirror.finishLoad(type, pass);
  };
  load("Shot", SHOT, shots, SHOT_DEFAULTS);
  load("Sequence", SEQUENCE, options.sequences ?? [{ code: "SEQ01", sg_flag: true }], { code: "S", sg_flag: false });
  return e;
}

const SEQ1 = { type: "Sequence", id: 1, name: "SEQ01" };

describe("the site's calendar must be known", () => {
  const records = [{ sg_target_date: "2026-03-10", updated_at: "2026-03-10T12:00:00Z" }];

  it("without --site-time-zone, relative dates that count days go to ShotGrid; hours on date-times need no calendar", () => {
    expect(loadServeConfig([], {}).siteTimeZone).toBeUndefined();
    const e = engine(records, { timeZone: undefined });
    expect(ids(e, query([["sg_target_date", "in_calendar_day", 0]]))).toBe("time_value");
    expect(ids(e, query([["sg_target_date", "in_last", 1, "DAY"]]))).toBe("time_value");
    expect(ids(e, query([["updated_at", "in_last", 1, "DAY"]]))).toBe("time_value");
    expect(ids(e, query([["updated_at", "in_calendar_month", 0]]))).toBe("time_value");
    expect(ids(e, query([["updated_at", "in_last", 1, "HOUR"]]))).toEqual([1]);
    expect(ids(engine(records), query([["sg_target_date", "in_calendar_day", 0]]))).toEqual([1]);
  });

  it("days across a daylight-saving change: 24 hours or the same time the day before is not known", () => {
    // The US moved its clocks on 2026-03-08 at 10:00 UTC.
    const across = engine(records, { timeZone: "America/Los_Angeles", now: Date.UTC(2026, 2, 8, 20, 0) });
    expect(ids(across, query([["updated_at", "in_last", 1, "DAY"]]))).toBe("time_value");
    expect(ids(across, query([["updated_at", "in_last", 5, "HOUR"]]))).toEqual([]);
    const after = engine(records, { timeZone: "America/Los_Angeles" });
    expect(ids(after, query([["updated_at", "in_last", 1, "DAY"]]))).toEqual([1]);
  });

  it("a window too far from now to place goes to ShotGrid (no error)", () => {
    const e = engine(records, { timeZone: "America/Los_Angeles" });
    expect(ids(e, query([["updated_at", "in_last", 1_000_000_000, "DAY"]]))).toBe("time_value");
    expect(ids(e, query([["sg_target_date", "in_last", 1_000_000_000, "DAY"]]))).toBe("time_value");
    expect(ids(e, query([["updated_at", "in_next", 5_000_000, "YEAR"]]))).toBe("time_value");
    expect(ids(e, query([["sg_target_date", "in_calendar_year", 1_000_000_000]]))).toBe("time_value");
    expect(ids(engine(records), query([["updated_at", "in_last", 100_000, "DAY"]]))).toEqual([1]);
  });

  it("a time within 2 s of a window's edge, and now within 2 s of the site's midnight", () => {
    // in_last 1 HOUR at 12:30:00 begins at 11:30:00.
    const edge = engine([{ updated_at: "2026-03-10T11:30:01Z" }, { updated_at: "2026-03-10T11:00:00Z" }, { updated_at: "2026-03-10T12:00:00Z" }]);
    expect(ids(edge, query([["updated_at", "in_last", 1, "HOUR"]]))).toBe("uncertain");
    expect(
      ids(
        edge,
        query([
          ["updated_at", "in_last", 1, "HOUR"],
          ["id", "in", [2, 3]],
        ]),
      ),
    ).toEqual([3]);
    const midnight = engine(records, { now: Date.UTC(2026, 2, 10, 0, 0, 1) });
    expect(ids(midnight, query([["sg_target_date", "in_calendar_day", 0]]))).toBe("uncertain");
    expect(ids(engine(records), query([["sg_target_date", "in_calendar_day", 0]]))).toEqual([1]);
  });
});

describe("empty values under negated operators", () => {
  const e = engine([
    { description: "hero", sg_cut_in: 1001 },
    { description: null, sg_cut_in: null },
  ]);
  const full = engine([
    { description: "hero", sg_cut_in: 1001 },
    { description: "crowd", sg_cut_in: 1010 },
  ]);

  it("a negated condition on a value over a record holding nothing", () => {
    expect(ids(e, query([["description", "is_not", "hero"]]))).toBe("uncertain");
    expect(ids(e, query([["description", "not_in", ["hero"]]]))).toBe("uncertain");
    expect(ids(e, query([["description", "not_contains", "her"]]))).toBe("uncertain");
    expect(ids(e, query([["sg_cut_in", "not_between", 1000, 1005]]))).toBe("uncertain");
    expect(ids(e, query([["sg_cut_in", "is_not", 1001]]))).toBe("uncertain");
    expect(ids(full, query([["description", "is_not", "hero"]]))).toEqual([2]);
    expect(ids(full, query([["sg_cut_in", "not_between", 1000, 1005]]))).toEqual([2]);
  });

  it("only a record whose verdict stays unknown counts: another condition that surely rules it out (or in) settles it", () => {
    const rows = engine([
      { code: "A", description: "hero", sg_cut_in: 1001 },
      { code: "B", description: null, sg_cut_in: 5 },
      { code: "C", description: null, sg_cut_in: 1002 },
    ]);
    // B is out by its cut whichever way its empty description goes, in either order of the conditions.
    expect(
      ids(
        rows,
        query([
          ["description", "is_not", "x"],
          ["sg_cut_in", "greater_than", 1000],
          ["sg_cut_in", "less_than", 1002],
        ]),
      ),
    ).toEqual([1]);
    expect(
      ids(
        rows,
        query([
          ["sg_cut_in", "less_than", 1002],
          ["description", "is_not", "x"],
          ["sg_cut_in", "greater_than", 1000],
        ]),
      ),
    ).toEqual([1]);
    // C's verdict hangs on it.
    expect(
      ids(
        rows,
        query([
          ["description", "is_not", "x"],
          ["sg_cut_in", "greater_than", 1000],
        ]),
      ),
    ).toBe("uncertain");
    // In an or group, a sure yes settles it.
    const either = {
      logical_operator: "or" as const,
      conditions: [
        ["description", "is_not", "x"],
        ["code", "in", ["B", "C"]],
      ] as FilterGroup["conditions"],
    };
    expect(ids(rows, { ...query([]), filters: { logical_operator: "and", conditions: [either] } })).toEqual([1, 2, 3]);
  });

  it("no link under type_is_not, and null mixed into a link list", () => {
    const e = engine([{ sg_sequence: SEQ1 }, { sg_sequence: null }]);
    expect(ids(e, query([["sg_sequence", "type_is_not", "Shot"]]))).toBe("uncertain");
    expect(
      ids(
        e,
        query([
          ["sg_sequence", "type_is_not", "Shot"],
          ["id", "is", 1],
        ]),
      ),
    ).toEqual([1]);
    expect(ids(e, query([["sg_sequence", "in", [null, SEQ1]]]))).toBe("uncertain");
    expect(ids(e, query([["sg_sequence", "in", [SEQ1]]]))).toEqual([1]);
    expect(ids(e, query([["sg_sequence", "is", null]]))).toEqual([2]);
  });

  it("is_not null and is null are documented; null mixed into a list, or compared, is not", () => {
    expect(ids(e, query([["description", "is_not", null]]))).toEqual([1]);
    expect(ids(e, query([["description", "is", null]]))).toEqual([2]);
    expect(ids(e, query([["description", "in", [null, "hero"]]]))).toBe("uncertain");
    expect(ids(full, query([["description", "in", [null, "hero"]]]))).toEqual([1]);
    expect(ids(e, query([["sg_cut_in", "less_than", null]]))).toBe("operator");
    expect(ids(e, query([["updated_at", "greater_than", null]]))).toBe("operator");
  });
});

describe("text rules beyond letter case", () => {
  it("_ and % in contains, starts_with and ends_with: literal or LIKE wildcards", () => {
    const e = engine([{ code: "SH_010" }, { code: "SHX010" }, { code: "AB_020" }]);
    expect(ids(e, query([["code", "contains", "h_0"]]))).toBe("uncertain");
    expect(ids(e, query([["code", "starts_with", "ab_"]]))).toEqual([3]);
    expect(ids(e, query([["code", "contains", "x01"]]))).toEqual([2]);
    expect(ids(e, query([["code", "contains", "a\\b"]]))).toBe("uncertain");
  });

  it("a link's name equal but for letter case, and name_not_contains over a record with no link", () => {
    const e = engine([{ sg_sequence: SEQ1 }, { sg_sequence: null }]);
    expect(ids(e, query([["sg_sequence", "name_is", "SEQ01"]]))).toEqual([1]);
    expect(ids(e, query([["sg_sequence", "name_is", "seq01"]]))).toBe("uncertain");
    expect(ids(e, query([["sg_sequence", "name_contains", "seq"]]))).toEqual([1]);
    expect(ids(e, query([["sg_sequence", "name_not_contains", "zz"]]))).toBe("uncertain");
    expect(
      ids(
        e,
        query([
          ["sg_sequence", "name_not_contains", "zz"],
          ["id", "is", 1],
        ]),
      ),
    ).toEqual([1]);
  });

  it("an order whose neighbours first differ at a character collations place differently", () => {
    const asc = { order: [{ field: "code", direction: "asc" as const }] };
    expect(ids(engine([{ code: "SH_010" }, { code: "SH0100" }, { code: "SH020" }]), query([], asc))).toBe("uncertain");
    expect(ids(engine([{ code: "Écran" }, { code: "Zebra" }]), query([], asc))).toBe("uncertain");
    expect(ids(engine([{ code: "SH_020" }, { code: "SH_010" }, { code: "SH_010_B" }]), query([], asc))).toEqual([2, 3, 1]);
    // The neighbour just past a page counts: it decides what the page holds.
    expect(ids(engine([{ code: "A1" }, { code: "A2" }, { code: "A3" }]), query([], { ...asc, limit: 1 }))).toEqual([1]);
    expect(ids(engine([{ code: "A1" }, { code: "A_2" }, { code: "A2" }]), query([], { ...asc, limit: 2 }))).toBe("uncertain");
    // A punctuation-ignoring collation would sort "AB" with "AB_" as one.
    expect(ids(engine([{ code: "AB_" }, { code: "AB" }]), query([], asc))).toBe("uncertain");
    expect(ids(engine([{ code: "AB_2" }, { code: "AB" }]), query([], asc))).toEqual([2, 1]);
  });

  it("a record far past the page that another collation would bring into it", () => {
    const asc = { order: [{ field: "code", direction: "asc" as const }], limit: 1 };
    // ICU puts "SH_005" first ("_" before digits); plain order puts it last, far from the page.
    expect(ids(engine([{ code: "SH010" }, { code: "SH020" }, { code: "SH_005" }]), query([], asc))).toBe("uncertain");
    expect(ids(engine([{ code: "Eva" }, { code: "Fred" }, { code: "Émile" }]), query([], asc))).toBe("uncertain");
    // The same through an index bucket (one sequence's shots), and through the gathered matches (a contains filter).
    const seq = (codes: string[]) => engine(codes.map((code) => ({ code, sg_sequence: SEQ1 })));
    expect(ids(seq(["SH010", "SH020", "SH_005"]), query([["sg_sequence", "is", SEQ1]], asc))).toBe("uncertain");
    expect(ids(seq(["SH010", "SH020", "SH_005"]), query([["code", "contains", "sh"]], asc))).toBe("uncertain");
    // A tie but for letter case past the page, not next to its last: ICU puts "ab" before "AB".
    expect(ids(engine([{ code: "AB" }, { code: "AB" }, { code: "ab" }]), query([], asc))).toBe("uncertain");
    expect(ids(seq(["AB", "AB", "ab"]), query([["code", "contains", "b"]], asc))).toBe("uncertain");
    // A list that is not the same in every collation ("B_1", "B1") still answers a page no record past it can enter.
    const mixed = seq(["B_1", "A2", "B1", "A1", "A3"]);
    expect(ids(mixed, query([["sg_sequence", "is", SEQ1]], asc))).toEqual([4]);
    expect(ids(mixed, query([], asc))).toEqual([4]);
    expect(ids(mixed, query([["sg_sequence", "is", SEQ1]], { ...asc, limit: 4 }))).toBe("uncertain");
    // Ordinary codes: every collation agrees, any page of any subset is answered.
    const vfx = seq(["NLT_050_0030", "NLT_050_0010", "NLT_060_0010", "NLT_050_0020", "NLT_050_0020_comp"]);
    expect(ids(vfx, query([], asc))).toEqual([2]);
    expect(ids(vfx, query([["sg_sequence", "is", SEQ1]], { ...asc, limit: 2, page: 2 }))).toEqual([5, 1]);
    expect(ids(vfx, query([["code", "contains", "0_00"]], asc))).toEqual([2]);
    expect(ids(vfx, query([["code", "contains", "0100"]], { ...asc, limit: 0 }))).toEqual([]);
    expect(ids(vfx, query([["code", "ends_with", "0"]], asc))).toEqual([2]);
  });
});

describe("letters JavaScript lower-cases otherwise than letter by letter (İ, Σ)", () => {
  it("in filters, searches, bucket keys and orders", () => {
    const e = engine([{ code: "İstanbul" }, { code: "ΟΔΟΣ" }, { code: "plain" }]);
    expect(ids(e, query([["code", "contains", "is"]]))).toBe("uncertain");
    expect(ids(e, query([["code", "contains", "σ"]]))).toBe("uncertain");
    expect(ids(e, query([["code", "is", "οδοσ"]]))).toBe("uncertain");
    // Where both readings agree (no way "İstanbul" or "ΟΔΟΣ" is "plain"), it is answered.
    expect(ids(e, query([["code", "is", "plain"]]))).toEqual([3]);
    expect(ids(e, query([["code", "contains", "ai"]]))).toEqual([3]);
    expect(ids(e, query([["code", "is", "istanbul"]]))).toBe("uncertain");
    const sorted = engine([{ code: "aΣ a" }, { code: "aς b" }]);
    expect(ids(sorted, query([], { order: [{ field: "code", direction: "asc" }], limit: 1 }))).toBe("uncertain");
    expect(ids(engine([{ code: "b" }, { code: "a" }]), query([], { order: [{ field: "code", direction: "asc" }], limit: 1 }))).toEqual([2]);
  });
});

describe("links and dotted paths", () => {
  it("ordering by a link that may point to more than one type", () => {
    const e = engine([{ created_by: { type: "HumanUser", id: 1, name: "Ana" } }]);
    expect(ids(e, query([], { order: [{ field: "created_by", direction: "asc" }] }))).toBe("order");
    expect(ids(e, query([], { order: [{ field: "sg_sequence", direction: "asc" }] }))).toEqual([1]);
  });

  it("a checkbox read through no link (false or null there?), in a filter or a returned field", () => {
    const e = engine([{ sg_sequence: SEQ1 }, { sg_sequence: null }]);
    expect(ids(e, query([["sg_sequence.Sequence.sg_flag", "is", true]]))).toBe("uncertain");
    expect(ids(e, query([["id", "is", 1]], { fields: ["sg_sequence.Sequence.sg_flag"] }))).toEqual([1]);
    expect(ids(e, query([], { fields: ["sg_sequence.Sequence.sg_flag"] }))).toBe("uncertain");
    expect(ids(e, query([], { fields: ["sg_sequence.Sequence.code"] }))).toEqual([1, 2]);
  });
});

describe("archived projects", () => {
  function projects(rows: Array<Entity["fields"]>): LocalQueryEngine {
    const e = new LocalQueryEngine({ types: ["Project"], timeZone: "UTC", defaultFields: ["name"], now: () => NOW });
    const pass = e.mirror.beginLoad("Project", PROJECT);
    for (const [i, fields] of rows.entries()) e.mirror.put({ type: "Project", id: i + 1, fields }, 0);
    e.mirror.finishLoad("Project", pass);
    return e;
  }
  const hidden = { entityType: "Project", includeArchivedProjects: false, fields: ["name"] };

  it("whether a Project query without archived projects hides an archived Project itself", () => {
    const e = projects([
      { name: "Live", archived: false },
      { name: "Old", archived: true },
    ]);
    expect(ids(e, query([], hidden))).toBe("uncertain");
    expect(ids(e, query([["name", "is", "Live"]], hidden))).toEqual([1]);
    expect(ids(e, query([], { ...hidden, includeArchivedProjects: true }))).toEqual([1, 2]);
  });
});
