/**
 * The engine's own rules, on a hand-built mirror: relative dates counted on the site's calendar
 * (its time zone), and the cases it declines instead of guessing (letter case, times in one
 * second, an empty `or`). The differential test covers the rest against the simulated site.
 */
import { describe, expect, it } from "vitest";
import { loadServeConfig } from "../src/config.ts";
import { UsageError } from "../src/cli/args.ts";
import { LocalQueryEngine } from "../src/local-query/index.ts";
import { ids, query } from "./support/local-query.ts";
import type { Entity, EntitySchema } from "../src/shotgrid/types.ts";

const SCHEMA: EntitySchema = {
  code: { name: "code", displayName: "Code", dataType: "text", editable: true },
  sg_status_list: { name: "sg_status_list", displayName: "Status", dataType: "status_list", editable: true },
  sg_target_date: { name: "sg_target_date", displayName: "Target", dataType: "date", editable: true },
  updated_at: { name: "updated_at", displayName: "Updated", dataType: "date_time", editable: false },
};

/** 2026-03-10T12:30:00Z: in Kiritimati (UTC+14) it is already 2026-03-11, 02:30. */
const NOW = Date.UTC(2026, 2, 10, 12, 30);

function engine(timeZone: string, records: Array<Entity["fields"]>): LocalQueryEngine {
  const e = new LocalQueryEngine({ types: ["Shot"], timeZone, defaultFields: ["code"], now: () => NOW });
  const pass = e.mirror.beginLoad("Shot", SCHEMA);
  for (const [i, fields] of records.entries()) {
    e.mirror.put({ type: "Shot", id: i + 1, fields: { sg_status_list: "ip", updated_at: null, sg_target_date: null, ...fields } }, 0);
  }
  e.mirror.finishLoad("Shot", pass);
  return e;
}

describe("local query engine: the site's calendar", () => {
  const records = [
    { code: "A", sg_target_date: "2026-03-10", updated_at: "2026-03-10T09:00:00Z" },
    { code: "B", sg_target_date: "2026-03-11", updated_at: "2026-03-10T11:00:00Z" },
  ];

  it("counts today in the site's time zone, for dates and date-times", () => {
    const utc = engine("UTC", records);
    const kiritimati = engine("Pacific/Kiritimati", records);
    expect(ids(utc, query([["sg_target_date", "in_calendar_day", 0]]))).toEqual([1]);
    expect(ids(kiritimati, query([["sg_target_date", "in_calendar_day", 0]]))).toEqual([2]);
    // The site's 2026-03-11 began at 2026-03-10T10:00:00Z.
    expect(ids(utc, query([["updated_at", "in_calendar_day", 0]]))).toEqual([1, 2]);
    expect(ids(kiritimati, query([["updated_at", "in_calendar_day", 0]]))).toEqual([2]);
    expect(ids(kiritimati, query([["sg_target_date", "in_last", 1, "DAY"]]))).toEqual([1, 2]);
    expect(ids(kiritimati, query([["sg_target_date", "in_next", 0, "DAY"]]))).toEqual([2]);
  });

  it("declines what it cannot place exactly: weeks (the first weekday), hours on dates, times without a zone", () => {
    const e = engine("UTC", records);
    expect(ids(e, query([["sg_target_date", "in_calendar_week", 0]]))).toBe("time_value");
    expect(ids(e, query([["sg_target_date", "in_last", 3, "HOUR"]]))).toBe("time_value");
    expect(ids(e, query([["updated_at", "greater_than", "2026-03-10T09:00:00"]]))).toBe("time_value");
  });

  it("is configured by --site-time-zone, which must be a zone the runtime knows", () => {
    expect(loadServeConfig(["--site-time-zone", "Europe/London"], {}).siteTimeZone).toBe("Europe/London");
    expect(loadServeConfig([], {}).siteTimeZone).toBeUndefined();
    expect(() => loadServeConfig(["--site-time-zone", "Mars/Olympus"], {})).toThrow(UsageError);
  });
});

describe("local query engine: declines instead of guessing", () => {
  it("text equal but for letter case", () => {
    const e = engine("UTC", [{ code: "SH010" }, { code: "sh010" }, { code: "SH020" }]);
    expect(ids(e, query([["code", "is", "SH020"]]))).toEqual([3]);
    expect(ids(e, query([["code", "is", "SH010"]]))).toBe("uncertain");
    expect(ids(e, query([], { order: [{ field: "code", direction: "asc" }] }))).toBe("uncertain");
    expect(ids(e, query([["code", "contains", "sh0"]]))).toEqual([1, 2, 3]);
  });

  it("date-times in the same second as a bound, or as each other in an order", () => {
    const e = engine("UTC", [
      { code: "A", updated_at: "2026-03-10T09:00:00Z" },
      { code: "B", updated_at: "2026-03-10T09:00:00Z" },
      { code: "C", updated_at: "2026-03-10T10:00:00Z" },
    ]);
    expect(ids(e, query([["updated_at", "greater_than", "2026-03-10T09:30:00Z"]]))).toEqual([3]);
    expect(ids(e, query([["updated_at", "greater_than", "2026-03-10T09:00:00Z"]]))).toBe("uncertain");
    expect(ids(e, query([], { order: [{ field: "updated_at", direction: "desc" }] }))).toBe("uncertain");
  });

  it("an empty or group", () => {
    const e = engine("UTC", [{ code: "A" }]);
    expect(ids(e, { ...query([]), filters: { logical_operator: "or", conditions: [] } })).toBe("operator");
  });
});

describe("local query engine: loading", () => {
  it("a preload pass superseded by a later one (a schema change reloads the type) does not mark the type loaded", () => {
    const e = new LocalQueryEngine({ types: ["Shot"], defaultFields: ["code"], now: () => NOW });
    const first = e.mirror.beginLoad("Shot", SCHEMA);
    e.mirror.dropType("Shot");
    const second = e.mirror.beginLoad("Shot", SCHEMA);
    e.mirror.put({ type: "Shot", id: 1, fields: { code: "A", sg_status_list: "ip", updated_at: null, sg_target_date: null } }, e.mirror.generation());
    e.mirror.finishLoad("Shot", first);
    expect(ids(e, query([]))).toBe("type_not_loaded");
    e.mirror.finishLoad("Shot", second);
    expect(ids(e, query([]))).toEqual([1]);
  });
});
