/**
 * Summaries the way ShotGrid computes them (REST `_summarize` and api3 `summarize` share this):
 * `summary_fields` `[{field, type}]` over the records the filters match, and optional `grouping`
 * `[{field, type, direction}]` that splits them into groups, one level per grouping entry, each
 * group with its own summaries: `{summaries, groups: [{group_name, group_value, summaries,
 * groups?}]}`.
 */
import { compileFilters, readPath, resolvePath, visible, compareText, type FieldPath } from "./query.ts";
import { namedLink } from "./render.ts";
import { badRequest } from "./sim-error.ts";
import type { SummaryAnswer, SummaryGroup } from "../shotgrid/types.ts";
import type { SimRecord, SimStore } from "./store.ts";
import { formatReadDateTime, isLink, short, type Link } from "./values.ts";

export const SUMMARY_TYPES = [
  "record_count",
  "count",
  "sum",
  "maximum",
  "minimum",
  "average",
  "earliest",
  "latest",
  "percentage",
  "status_percentage",
  "status_list",
  "checked",
  "unchecked",
];

/** Grouping types served; `clustered_date`, `oneday` and `fivedays` (UI-only buckets) are refused by name. */
export const GROUPING_TYPES = [
  "exact",
  "tens",
  "hundreds",
  "thousands",
  "tensofthousands",
  "hundredsofthousands",
  "millions",
  "day",
  "week",
  "month",
  "quarter",
  "year",
  "entitytype",
  "firstletter",
];

const NUMBER_BUCKETS: Record<string, number> = {
  tens: 10,
  hundreds: 100,
  thousands: 1_000,
  tensofthousands: 10_000,
  hundredsofthousands: 100_000,
  millions: 1_000_000,
};
const DATE_BUCKETS = new Set(["day", "week", "month", "quarter", "year"]);
const NUMERIC_TYPES = new Set(["number", "float", "duration", "percent", "currency", "timecode"]);

export interface SummarizeQuery {
  type: string;
  /** `[{field, type}]`. */
  summaryFields: unknown;
  filters: unknown;
  /** `[{field, type, direction}]` or absent. */
  grouping: unknown;
  includeArchived: boolean;
  /** How the caller names the summary list in errors (`summary_fields` for REST, `summaries` for api3). */
  summaryParam: string;
}

// The answer's shape is ShotGrid's (shared types only: no logic is shared with shotgrid/).
export type { SummaryAnswer, SummaryGroup };

interface Spec {
  field: string;
  info: FieldPath;
  type: string;
}

interface Grouping {
  fp: FieldPath;
  type: string;
  desc: boolean;
}

export function summarize(store: SimStore, now: number, q: SummarizeQuery): SummaryAnswer {
  const specs = parseSpecs(store, q.type, q.summaryFields, q.summaryParam);
  const grouping = parseGrouping(store, q.type, q.grouping);
  const predicate = compileFilters(store, q.type, q.filters, now, "summarize");
  const records = visible(store, q.type, "active", q.includeArchived).filter(predicate);
  return { summaries: summaryOf(store, records, specs), groups: group(store, records, specs, grouping) };
}

function parseSpecs(store: SimStore, type: string, raw: unknown, param: string): Spec[] {
  if (!Array.isArray(raw)) throw badRequest(`API summarize() ${param} must be a list of {field, type}.`, { [param]: ["must be a list"] });
  return raw.map((s, i) => {
    const o = (typeof s === "object" && s !== null ? s : {}) as Record<string, unknown>;
    const t = o["type"];
    if (typeof t !== "string" || !SUMMARY_TYPES.includes(t)) {
      throw badRequest(`API summarize() ${param}[${i}].type ${short(t)} is not valid: must be one of ${SUMMARY_TYPES.join(", ")}.`, {
        [param]: { [String(i)]: { type: [`type must be one of: ${SUMMARY_TYPES.join(", ")}`] } },
      });
    }
    const field = o["field"];
    const fp = typeof field === "string" ? resolvePath(store.schema, type, field) : undefined;
    if (!fp) throw badRequest(`API summarize() ${type}.${String(field)} doesn't exist.`, { [param]: [`${short(field)} is not a field of ${type}`] });
    return { field: field as string, info: fp, type: t };
  });
}

function parseGrouping(store: SimStore, type: string, raw: unknown): Grouping[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw badRequest("API summarize() grouping must be a list of {field, type, direction}.", { grouping: ["must be a list"] });
  return raw.map((g, i) => {
    const o = (typeof g === "object" && g !== null ? g : {}) as Record<string, unknown>;
    const fp = typeof o["field"] === "string" ? resolvePath(store.schema, type, o["field"]) : undefined;
    if (!fp)
      throw badRequest(`API summarize() grouping[${i}].field: ${type}.${String(o["field"])} doesn't exist.`, {
        grouping: { [String(i)]: { field: [`is not a field of ${type}`] } },
      });
    const t = o["type"] ?? "exact";
    if (typeof t !== "string" || !GROUPING_TYPES.includes(t)) {
      throw badRequest(`API summarize() grouping[${i}].type ${short(t)} is not supported: must be one of ${GROUPING_TYPES.join(", ")}.`, {
        grouping: { [String(i)]: { type: ["not supported"] } },
      });
    }
    const dt = fp.info.dataType;
    const numeric = NUMERIC_TYPES.has(dt) || fp.info.name === "id";
    const dated = dt === "date" || dt === "date_time";
    const fits =
      t === "exact" ||
      (t in NUMBER_BUCKETS && numeric) ||
      (DATE_BUCKETS.has(t) && dated) ||
      (t === "entitytype" && (dt === "entity" || dt === "multi_entity")) ||
      (t === "firstletter" && !numeric && !dated && dt !== "entity" && dt !== "multi_entity");
    if (!fits)
      throw badRequest(`API summarize() grouping[${i}].type ${t} does not apply to ${type}.${fp.path} (${dt}).`, {
        grouping: { [String(i)]: { type: [`not valid for ${dt} fields`] } },
      });
    const dir = o["direction"] ?? "asc";
    if (dir !== "asc" && dir !== "desc")
      throw badRequest(`API summarize() grouping[${i}].direction must be asc or desc, got ${short(dir)}.`, {
        grouping: { [String(i)]: { direction: ["must be asc or desc"] } },
      });
    return { fp, type: t, desc: dir === "desc" };
  });
}

/** One bucket a record falls in: a key to group on, what the answer shows, and what it sorts by. */
interface Bucket {
  key: string;
  value: unknown;
  name: string;
  sortBy: string | number | null;
}

const NULL_BUCKET: Bucket = { key: "null", value: null, name: "", sortBy: null };

function bucketsOf(store: SimStore, rec: SimRecord, g: Grouping): Bucket[] {
  const v = readPath(store, rec, g.fp);
  const dt = g.fp.info.dataType;
  if (dt === "entity" || dt === "multi_entity") {
    // A record with several links counts in the group of each.
    const links = (Array.isArray(v) ? v : isLink(v) ? [v] : []) as Link[];
    if (links.length === 0) return [NULL_BUCKET];
    if (g.type === "entitytype") return [...new Set(links.map((l) => l.type))].map((t) => ({ key: t, value: t, name: t, sortBy: t }));
    return links.map((l) => {
      const named = namedLink(store, l);
      return { key: `${l.type}:${l.id}`, value: named, name: named.name ?? "", sortBy: named.name ?? "" };
    });
  }
  if (v === null || v === undefined || (Array.isArray(v) && v.length === 0)) return [NULL_BUCKET];
  if (Array.isArray(v)) return v.map((t) => ({ key: `s:${String(t)}`, value: String(t), name: String(t), sortBy: String(t) }));
  const step = NUMBER_BUCKETS[g.type];
  if (step !== undefined && typeof v === "number") {
    const lo = Math.floor(v / step) * step;
    return [{ key: `n:${lo}`, value: lo, name: `${lo} - ${lo + step - 1}`, sortBy: lo }];
  }
  if (DATE_BUCKETS.has(g.type)) return [dateBucket(dt === "date" ? Date.parse(`${String(v)}T00:00:00Z`) : (v as number), g.type)];
  if (dt === "date_time" && typeof v === "number") {
    const s = formatReadDateTime(v);
    return [{ key: `d:${s}`, value: s, name: s, sortBy: v }];
  }
  if (g.type === "firstletter") {
    const c = String(v).charAt(0).toUpperCase();
    return [{ key: `s:${c}`, value: c, name: c, sortBy: c }];
  }
  return [{ key: `${typeof v}:${String(v)}`, value: v, name: String(v), sortBy: typeof v === "number" ? v : typeof v === "boolean" ? (v ? 1 : 0) : String(v) }];
}

/** Calendar buckets in UTC; a bucket's value is its first day, weeks start on Monday like in_calendar_week. */
function dateBucket(ms: number, type: string): Bucket {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  let start: number;
  let name: string;
  const day = (t: number) => new Date(t).toISOString().slice(0, 10);
  if (type === "day") {
    start = Date.UTC(y, m, d.getUTCDate());
    name = day(start);
  } else if (type === "week") {
    start = Date.UTC(y, m, d.getUTCDate()) - ((d.getUTCDay() + 6) % 7) * 86_400_000;
    name = `Week of ${day(start)}`;
  } else if (type === "month") {
    start = Date.UTC(y, m, 1);
    name = day(start).slice(0, 7);
  } else if (type === "quarter") {
    const q = Math.floor(m / 3);
    start = Date.UTC(y, q * 3, 1);
    name = `${y} Q${q + 1}`;
  } else {
    start = Date.UTC(y, 0, 1);
    name = String(y);
  }
  return { key: `t:${start}`, value: day(start), name, sortBy: start };
}

function group(store: SimStore, records: SimRecord[], specs: Spec[], grouping: Grouping[]): SummaryGroup[] {
  const [g, ...rest] = grouping;
  if (!g) return [];
  const byKey = new Map<string, { bucket: Bucket; records: SimRecord[] }>();
  for (const r of records) {
    for (const b of bucketsOf(store, r, g)) {
      let entry = byKey.get(b.key);
      if (!entry) byKey.set(b.key, (entry = { bucket: b, records: [] }));
      entry.records.push(r);
    }
  }
  // Ordered like sorts: nulls last ascending, first descending.
  const entries = [...byKey.values()].sort((a, b) => {
    const x = a.bucket.sortBy;
    const y = b.bucket.sortBy;
    let c: number;
    if (x === null && y === null) c = 0;
    else if (x === null) c = 1;
    else if (y === null) c = -1;
    else if (typeof x === "string" && typeof y === "string") c = compareText(x, y);
    else c = x < y ? -1 : x > y ? 1 : 0;
    return g.desc ? -c : c;
  });
  return entries.map(({ bucket, records: rs }) => {
    const out: SummaryGroup = { group_name: bucket.name, group_value: bucket.value, summaries: summaryOf(store, rs, specs) };
    if (rest.length > 0) out.groups = group(store, rs, specs, rest);
    return out;
  });
}

function summaryOf(store: SimStore, records: SimRecord[], specs: Spec[]): Record<string, unknown> {
  const summaries: Record<string, unknown> = {};
  for (const s of specs) {
    const values = records.map((r) => readPath(store, r, s.info));
    const present = values.filter((v) => v !== null && !(Array.isArray(v) && v.length === 0));
    const nums = present.filter((v): v is number => typeof v === "number");
    const dt = s.info.info.dataType;
    switch (s.type) {
      case "record_count":
        summaries[s.field] = records.length;
        break;
      case "count":
        summaries[s.field] = present.length;
        break;
      case "sum":
        summaries[s.field] = nums.reduce((a, b) => a + b, 0);
        break;
      case "maximum":
        summaries[s.field] = nums.length ? Math.max(...nums) : null;
        break;
      case "minimum":
        summaries[s.field] = nums.length ? Math.min(...nums) : null;
        break;
      case "earliest":
      case "latest":
        summaries[s.field] = extreme(dt, present, s.type === "latest");
        break;
      case "average":
        summaries[s.field] = nums.length ? nums.reduce((a, b) => a + b, 0) / nums.length : null;
        break;
      case "checked":
        summaries[s.field] = values.filter((v) => v === true).length;
        break;
      case "unchecked":
        summaries[s.field] = values.filter((v) => v !== true).length;
        break;
      default:
        summaries[s.field] = present.length;
    }
  }
  return summaries;
}

/** earliest/latest: dates stay `YYYY-MM-DD`, date-times come back in the read spelling. */
function extreme(dataType: string, present: unknown[], latest: boolean): unknown {
  if (dataType === "date") {
    const ds = present.filter((v): v is string => typeof v === "string").sort();
    return ds.length ? (latest ? ds[ds.length - 1] : ds[0]) : null;
  }
  const nums = present.filter((v): v is number => typeof v === "number");
  if (!nums.length) return null;
  const n = latest ? Math.max(...nums) : Math.min(...nums);
  return dataType === "date_time" ? formatReadDateTime(n) : n;
}
