/**
 * Filters compiled to predicates over mirrored records, with ShotGrid's rules per data type.
 * Written apart from the simulated site's own filter code on purpose: the differential tests
 * compare the two. Anything whose semantics are not certain throws CannotAnswer at compile time
 * or, when only some records make it uncertain (text equal but for letter case), flags the
 * evaluation as unsure so the engine declines the whole query.
 */
import type { Entity, EntityLink, FieldValue, FilterCondition, FilterGroup } from "../shotgrid/types.ts";
import { CannotAnswer } from "./cannot-answer.ts";
import type { Mirror } from "./mirror.ts";
import { compilePath, type CompiledPath } from "./paths.ts";
import { dateTimeMs, relativeWindow, calendarWindow } from "./time-windows.ts";
import { dayOf, startOfDay } from "./time-zone.ts";
import { foldOddCase, lowersOddly } from "./collation.ts";

export type Predicate = (record: Entity) => boolean;

/** Shared by every predicate of one evaluation: set when a record's answer depends on a rule the engine cannot be sure of. */
export interface Evaluation {
  unsure: string | undefined;
  /** Milliseconds since the epoch, for relative dates. */
  now: number;
  /** The site's IANA time zone; undefined when it is not configured (relative dates that need a calendar are then declined). */
  timeZone: string | undefined;
}

export interface CompiledFilters {
  predicate: Predicate;
  /** Every mirrored type the filters read. */
  types: Set<string>;
}

const TEXT_TYPES = new Set(["text", "status_list", "list", "entity_type", "color", "uuid"]);
const NUMBER_TYPES = new Set(["number", "float", "percent", "currency", "duration", "timecode"]);

function isLink(v: unknown): v is EntityLink {
  return v !== null && typeof v === "object" && !Array.isArray(v) && typeof (v as EntityLink).type === "string" && typeof (v as EntityLink).id === "number";
}

function linksOf(v: FieldValue): EntityLink[] {
  if (Array.isArray(v)) return (v as unknown[]).filter(isLink);
  return isLink(v) ? [v] : [];
}

/** Values of `in`/`not_in` (validation sends one list) or `between` (two values). */
function listOf(values: unknown[]): unknown[] {
  return values.length === 1 && Array.isArray(values[0]) ? (values[0] as unknown[]) : values;
}

const not =
  (p: Predicate): Predicate =>
  (r) =>
    !p(r);

/**
 * The negation of `p` (`is_not`, `not_in`, `not_contains`, `not_between`, `not_in_last`…) over a
 * plain field. ShotGrid documents `is_not null` but not whether a record whose field is empty
 * matches a negated condition on a value (SQL's `<>` leaves it out, an explicit `IS NULL` branch
 * keeps it): the engine is not sure of such a record.
 */
function notOrEmpty(p: Predicate, read: (r: Entity) => FieldValue, what: string, ev: Evaluation): Predicate {
  return (r) => {
    if (read(r) === null) {
      ev.unsure ??= `${what}: whether an empty value matches is not documented`;
      return true;
    }
    return !p(r);
  };
}

/**
 * `contains`, `starts_with`, `ends_with` and the `name_*` operators read with `_` and `%` as
 * literal characters. Should the site hand the text to SQL's LIKE unescaped, they would be
 * wildcards: a record on which the two readings disagree makes the engine unsure.
 */
function likeReading(needle: string, op: string): RegExp | undefined {
  // LIKE's escape character: what it makes of the text is a reading of its own.
  if (needle.includes("\\")) throw new CannotAnswer("uncertain", `${op} with a backslash in its text`);
  if (!/[_%]/.test(needle)) return undefined;
  const body = needle
    .replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    .replace(/_/g, ".")
    .replace(/%/g, ".*");
  const anchored = op.endsWith("starts_with") ? `^${body}` : op.endsWith("ends_with") ? `${body}$` : op.endsWith("_is") ? `^${body}$` : body;
  return new RegExp(anchored, "s");
}

/**
 * How close (seconds) a held date-time may be to a relative window's edge before the engine is
 * not sure of its side: the window is computed from this process's clock, the site computes it
 * from its own (both synchronised, not to the millisecond), and shows times truncated to the
 * second. The same slack around the site's midnight for calendar days.
 */
const EDGE_SLACK_S = 2;

/** Declines when `now` is so close to the site's midnight that its clock may already be on the other day. */
function nearMidnight(now: number, zone: string): void {
  const today = dayOf(now, zone);
  if (now - startOfDay(today, zone) < EDGE_SLACK_S * 1000 || startOfDay(today + 1, zone) - now < EDGE_SLACK_S * 1000)
    throw new CannotAnswer("uncertain", `the site's day turns within ${EDGE_SLACK_S} s of now: its clock may be on the other day`);
}

/** A condition's verdict on one record: no, yes, or not known (a rule the site does not document decides). */
const NO = 0;
const YES = 1;
const UNKNOWN = 2;
type Verdict = typeof NO | typeof YES | typeof UNKNOWN;

/**
 * The filters as one predicate. Each condition's verdict is no, yes or not known (it flagged
 * itself unsure on that record), combined as three-valued logic: an `and` with a sure "no" is
 * no whatever else is unknown, an `or` with a sure "yes" is yes. Only a record whose verdict is
 * still unknown makes the whole evaluation unsure (the predicate then says yes; the engine
 * declines the query): a record another condition surely rules out does not.
 */
export function compileFilters(mirror: Mirror, type: string, filters: FilterGroup, ev: Evaluation): CompiledFilters {
  const types = new Set<string>([type]);
  /** Why the last unknown verdict is unknown. */
  let why: string | undefined;
  const group = (g: FilterGroup): ((r: Entity) => Verdict) => {
    const parts = g.conditions.map((c) => (Array.isArray(c) ? condition(c) : group(c)));
    if (parts.length === 0) {
      // An empty `and` holds for every record; what the site makes of an empty `or` is not documented.
      if (g.logical_operator === "or") throw new CannotAnswer("operator", "an empty or group");
      return () => YES;
    }
    if (parts.length === 1) return parts[0]!;
    const decisive = g.logical_operator === "or" ? YES : NO;
    return (r) => {
      let out: Verdict = decisive === YES ? NO : YES;
      for (const p of parts) {
        const v = p(r);
        if (v === decisive) return v;
        if (v === UNKNOWN) out = UNKNOWN;
      }
      return out;
    };
  };
  const condition = ([path, op, ...values]: FilterCondition): ((r: Entity) => Verdict) => {
    const fp = compilePath(mirror, type, path, ev);
    for (const t of fp.types) types.add(t);
    const p = compileCondition(fp, op, values, ev);
    return (r) => {
      // The condition flags `ev` when unsure of this record: caught here, as its verdict.
      const before = ev.unsure;
      ev.unsure = undefined;
      const yes = p(r);
      const unsure = ev.unsure;
      ev.unsure = before;
      if (unsure === undefined) return yes ? YES : NO;
      why = unsure;
      return UNKNOWN;
    };
  };
  const root = group(filters);
  const predicate: Predicate = (r) => {
    const v = root(r);
    if (v !== UNKNOWN) return v === YES;
    ev.unsure ??= why;
    return true;
  };
  return { predicate, types };
}

function compileCondition(fp: CompiledPath, op: string, values: unknown[], ev: Evaluation): Predicate {
  const dt = fp.field.dataType;
  if (dt === "entity" || dt === "multi_entity") return linkCondition(fp, op, values, ev);
  if (dt === "date" || dt === "date_time") return dateCondition(fp, op, values, ev);
  if (dt === "image") {
    if ((op === "is" || op === "is_not") && values[0] === null) {
      const p: Predicate = (r) => fp.read(r) === null;
      return op === "is" ? p : not(p);
    }
    throw new CannotAnswer("operator", `${op} on image field ${fp.path}`);
  }
  if (dt === "checkbox") {
    if ((op === "is" || op === "is_not") && typeof values[0] === "boolean") {
      const v = values[0];
      const p: Predicate = (r) => fp.read(r) === v;
      return op === "is" ? p : not(p);
    }
    throw new CannotAnswer("operator", `${op} on checkbox field ${fp.path}`);
  }
  if (fp.path === "id" || fp.path.endsWith(".id") || NUMBER_TYPES.has(dt)) return numberCondition(fp, op, values, ev);
  if (TEXT_TYPES.has(dt)) return textCondition(fp, op, values, ev);
  throw new CannotAnswer("data_type", `filters on ${dt} fields (${fp.path}) are not modelled`);
}

function numberCondition(fp: CompiledPath, op: string, values: unknown[], ev: Evaluation): Predicate {
  const read = fp.read;
  const negated = (p: Predicate) => notOrEmpty(p, read, `${op} on ${fp.path}`, ev);
  const num = (v: unknown): number | null => {
    if (v === null || (typeof v === "number" && Number.isFinite(v))) return v;
    throw new CannotAnswer("operator", `${op} on ${fp.path} with a value that is not a number`);
  };
  switch (op) {
    case "is":
    case "is_not": {
      const v = num(values[0]);
      const p: Predicate = (r) => read(r) === v;
      return op === "is" ? p : v === null ? not(p) : negated(p);
    }
    case "in":
    case "not_in": {
      const set = new Set(listOf(values).map(num));
      const p: Predicate = (r) => {
        const x = read(r) as number | null;
        // `null` among the values: the site documents `is null`, not a list mixing it with values.
        if (x === null && set.has(null)) ev.unsure ??= `${op} on ${fp.path}: null among the values`;
        return set.has(x);
      };
      return op === "in" ? p : negated(p);
    }
    case "less_than":
    case "greater_than": {
      const v = num(values[0]);
      if (v === null) throw new CannotAnswer("operator", `${op} null on ${fp.path}`);
      return op === "less_than"
        ? (r) => (read(r) as number | null) !== null && (read(r) as number) < v
        : (r) => (read(r) as number | null) !== null && (read(r) as number) > v;
    }
    case "between":
    case "not_between": {
      const [lo, hi] = listOf(values).map(num);
      if (lo === null || hi === null || lo === undefined || hi === undefined) throw new CannotAnswer("operator", `${op} on ${fp.path} with an empty bound`);
      const p: Predicate = (r) => {
        const x = read(r) as number | null;
        return x !== null && x >= lo && x <= hi;
      };
      return op === "between" ? p : negated(p);
    }
    default:
      throw new CannotAnswer("operator", `${op} on ${fp.field.dataType} field ${fp.path}`);
  }
}

function textCondition(fp: CompiledPath, op: string, values: unknown[], ev: Evaluation): Predicate {
  const read = fp.read;
  const str = (v: unknown): string | null => {
    if (v === null || typeof v === "string") return v;
    throw new CannotAnswer("operator", `${op} on ${fp.path} with a value that is not text`);
  };
  /** Equal ignoring letter case; when only the case differs, the site's rule decides and the engine is not sure of it. */
  const equal = (x: FieldValue, v: string | null): boolean => {
    if (v === null || x === null) return x === v;
    if (typeof x !== "string") return false;
    if (x === v) return true;
    if (lowersOddly(x) || lowersOddly(v)) {
      const js = x.toLowerCase() === v.toLowerCase();
      if (js !== (foldOddCase(x) === foldOddCase(v)) || js)
        ev.unsure ??= `${fp.path}: ${JSON.stringify(x)} against ${JSON.stringify(v)}: a letter whose lower case the site may make otherwise`;
      return js;
    }
    if (x.length === v.length && x.toLowerCase() === v.toLowerCase()) {
      ev.unsure ??= `${fp.path}: text equal to ${JSON.stringify(v)} but for letter case`;
      return true;
    }
    return false;
  };
  const negated = (p: Predicate) => notOrEmpty(p, read, `${op} on ${fp.path}`, ev);
  switch (op) {
    case "is":
    case "is_not": {
      const v = str(values[0]);
      const p: Predicate = (r) => equal(read(r), v);
      return op === "is" ? p : v === null ? not(p) : negated(p);
    }
    case "in":
    case "not_in": {
      const vs = listOf(values).map(str);
      const p: Predicate = (r) => {
        const x = read(r);
        // `null` among the values: the site documents `is null`, not a list mixing it with values.
        if (x === null && vs.includes(null)) ev.unsure ??= `${op} on ${fp.path}: null among the values`;
        let hit = false;
        for (const v of vs) if (equal(x, v)) hit = true;
        return hit;
      };
      return op === "in" ? p : negated(p);
    }
    case "contains":
    case "not_contains":
    case "starts_with":
    case "ends_with": {
      const v = str(values[0]);
      if (v === null) throw new CannotAnswer("operator", `${op} null on ${fp.path}`);
      const needle = v.toLowerCase();
      const test =
        op === "starts_with" ? (s: string) => s.startsWith(needle) : op === "ends_with" ? (s: string) => s.endsWith(needle) : (s: string) => s.includes(needle);
      const like = likeReading(needle, op);
      const oddNeedle = lowersOddly(v);
      const foldedNeedle = foldOddCase(v);
      const folded = (s: string) =>
        op === "starts_with" ? s.startsWith(foldedNeedle) : op === "ends_with" ? s.endsWith(foldedNeedle) : s.includes(foldedNeedle);
      const p: Predicate = (r) => {
        const x = read(r);
        if (typeof x !== "string") return false;
        const lower = x.toLowerCase();
        const hit = test(lower);
        if ((oddNeedle || lowersOddly(x)) && (hit || folded(foldOddCase(x))))
          ev.unsure ??= `${op} ${JSON.stringify(v)} on ${fp.path}: a letter whose lower case the site may make otherwise`;
        if (like && like.test(lower) !== hit) ev.unsure ??= `${op} ${JSON.stringify(v)} on ${fp.path}: "_" or "%" read as a wildcard would decide otherwise`;
        return hit;
      };
      return op === "not_contains" ? negated(p) : p;
    }
    default:
      throw new CannotAnswer("operator", `${op} on ${fp.field.dataType} field ${fp.path}`);
  }
}

function linkCondition(fp: CompiledPath, op: string, values: unknown[], ev: Evaluation): Predicate {
  const read = fp.read;
  const target = (v: unknown): EntityLink | null => {
    if (v === null) return null;
    if (isLink(v)) return v;
    throw new CannotAnswer("operator", `${op} on ${fp.path} with a value that is not an entity link`);
  };
  /** `is` on a multi-entity field means "contains"; null means "holds no link". */
  const holds = (r: Entity, l: EntityLink | null): boolean => {
    const v = read(r);
    if (!Array.isArray(v)) return l === null ? !isLink(v) : isLink(v) && v.id === l.id && v.type === l.type;
    const links = linksOf(v);
    if (l === null) return links.length === 0;
    for (const x of links) if (x.id === l.id && x.type === l.type) return true;
    return false;
  };
  switch (op) {
    case "is":
    case "is_not": {
      const l = target(values[0]);
      const p: Predicate = (r) => holds(r, l);
      return op === "is" ? p : not(p);
    }
    case "in":
    case "not_in": {
      const ls = listOf(values).map(target);
      const mixed = ls.includes(null) && ls.length > 1;
      const p: Predicate = (r) => {
        // `null` mixed into the list: the site documents `is null`, not a list mixing it with links.
        if (mixed && holds(r, null)) ev.unsure ??= `${op} on ${fp.path}: null among the links`;
        return ls.some((l) => holds(r, l));
      };
      return op === "in" ? p : not(p);
    }
    case "type_is":
    case "type_is_not": {
      const t = values[0];
      if (t !== null && typeof t !== "string") throw new CannotAnswer("operator", `${op} on ${fp.path} without a type name`);
      const p: Predicate = (r) => {
        const links = linksOf(read(r));
        // No link at all: whether that "is not of type T" is not documented (as name_not_contains).
        if (op === "type_is_not" && t !== null && links.length === 0) ev.unsure ??= `${op} on ${fp.path}: a record with no link`;
        return t === null ? links.length === 0 : links.some((l) => l.type === t);
      };
      return op === "type_is" ? p : not(p);
    }
    case "name_contains":
    case "name_not_contains":
    case "name_starts_with":
    case "name_ends_with":
    case "name_is": {
      const v = values[0];
      if (typeof v !== "string") throw new CannotAnswer("operator", `${op} on ${fp.path} without text`);
      const needle = v.toLowerCase();
      const test =
        op === "name_starts_with"
          ? (s: string) => s.startsWith(needle)
          : op === "name_ends_with"
            ? (s: string) => s.endsWith(needle)
            : op === "name_is"
              ? (s: string) => s === needle
              : (s: string) => s.includes(needle);
      const like = likeReading(needle, op);
      const oddNeedle = lowersOddly(v);
      const named = (l: EntityLink): boolean => {
        const name = l.name ?? "";
        if (oddNeedle || lowersOddly(name)) ev.unsure ??= `${op} ${JSON.stringify(v)} on ${fp.path}: a letter whose lower case the site may make otherwise`;
        const lower = name.toLowerCase();
        const hit = test(lower);
        // As text `is`: a name equal but for letter case is the site's collation's call.
        if (hit && op === "name_is" && name !== v) ev.unsure ??= `${op} ${JSON.stringify(v)} on ${fp.path}: a name equal but for letter case`;
        if (like && like.test(lower) !== hit) ev.unsure ??= `${op} ${JSON.stringify(v)} on ${fp.path}: "_" or "%" read as a wildcard would decide otherwise`;
        return hit;
      };
      const p: Predicate = (r) => linksOf(read(r)).some(named);
      if (op !== "name_not_contains") return p;
      return (r) => {
        // No link at all: whether that "does not contain" the text is not documented.
        if (linksOf(read(r)).length === 0) ev.unsure ??= `${op} on ${fp.path}: a record with no link`;
        return !p(r);
      };
    }
    default:
      throw new CannotAnswer("operator", `${op} on ${fp.field.dataType} field ${fp.path}`);
  }
}

function dateCondition(fp: CompiledPath, op: string, values: unknown[], ev: Evaluation): Predicate {
  const isDate = fp.field.dataType === "date";
  const read = fp.read;
  /** Dates compare as their text (YYYY-MM-DD sorts as it reads); date-times as whole seconds since the epoch. */
  const key = (v: unknown): string | number | null => {
    if (v === null) return null;
    if (isDate) {
      if (typeof v === "string" && /^\d{4}-\d{2}-\d{2}$/.test(v)) return v;
    } else {
      const s = dateTimeMs(v);
      if (s !== undefined) return s / 1000;
    }
    throw new CannotAnswer("time_value", `${op} on ${fp.path} with ${JSON.stringify(v)}: not a time the engine can place exactly`);
  };
  /** A held value's key; a held value the engine cannot read makes the whole query go upstream. */
  const held = (r: Entity): string | number | null => {
    const x = read(r);
    if (x === null) return null;
    if (isDate) return typeof x === "string" ? x : bad(x);
    const ms = dateTimeMs(x);
    return ms === undefined ? bad(x) : ms / 1000;
  };
  /**
   * Date-times are shown to the second but the site keeps finer times: a held value in the same
   * second as a filter's value may be before, at or after it there. The engine is not sure of those.
   */
  const sameSecond = (x: string | number | null, v: string | number | null): boolean => {
    if (!isDate && x !== null && x === v) ev.unsure ??= `${fp.path}: a held time in the same second as ${op}'s value`;
    return x === v;
  };
  const bad = (x: unknown): never => {
    throw new CannotAnswer("time_value", `${fp.path} holds ${JSON.stringify(x)}`);
  };
  const negated = (p: Predicate) => notOrEmpty(p, read, `${op} on ${fp.path}`, ev);
  switch (op) {
    case "is":
    case "is_not": {
      const v = key(values[0]);
      const p: Predicate = (r) => sameSecond(held(r), v);
      return op === "is" ? p : v === null ? not(p) : negated(p);
    }
    case "in":
    case "not_in": {
      const vs = new Set(listOf(values).map(key));
      const p: Predicate = (r) => {
        const x = held(r);
        // `null` among the values: the site documents `is null`, not a list mixing it with values.
        if (x === null && vs.has(null)) ev.unsure ??= `${op} on ${fp.path}: null among the values`;
        return vs.has(x) && sameSecond(x, x);
      };
      return op === "in" ? p : negated(p);
    }
    case "less_than":
    case "greater_than": {
      const v = key(values[0]);
      if (v === null) throw new CannotAnswer("operator", `${op} null on ${fp.path}`);
      return (r) => {
        const x = held(r);
        return x !== null && !sameSecond(x, v) && (op === "less_than" ? x < v : x > v);
      };
    }
    case "between":
    case "not_between": {
      const [lo, hi] = listOf(values).map(key);
      if (lo === null || hi === null || lo === undefined || hi === undefined) throw new CannotAnswer("operator", `${op} on ${fp.path} with an empty bound`);
      const p: Predicate = (r) => {
        const x = held(r);
        if (x !== null) sameSecond(x, lo) || sameSecond(x, hi);
        return x !== null && x >= lo && x <= hi;
      };
      return op === "between" ? p : negated(p);
    }
    case "in_last":
    case "not_in_last":
    case "in_next":
    case "not_in_next":
    case "in_calendar_day":
    case "in_calendar_week":
    case "in_calendar_month":
    case "in_calendar_year": {
      const calendar = op.startsWith("in_calendar_");
      // An hour is an hour anywhere; days, weeks, months and years are the site's calendar's.
      const hours = !isDate && !calendar && typeof values[1] === "string" && values[1].toUpperCase() === "HOUR";
      const zone = ev.timeZone;
      if (zone === undefined && !hours) throw new CannotAnswer("time_value", `${op} on ${fp.path}: the site's time zone is not configured (--site-time-zone)`);
      const z = zone ?? "UTC"; // read by hour windows on date-times only to place `now`, which needs no zone
      if (isDate || calendar) nearMidnight(ev.now, z);
      const w = calendar ? calendarWindow(op, values[0], isDate, ev.now, z) : relativeWindow(op.replace("not_", ""), values[0], values[1], isDate, ev.now, z);
      if (!w) throw new CannotAnswer("time_value", `${op} ${JSON.stringify(values)} on ${fp.path}`);
      const from = w.from;
      const to = w.to;
      const p: Predicate = (r) => {
        const x = held(r);
        if (x === null) return false;
        // The site's clock is not this one, and it keeps finer times than it shows: a time this
        // close to either end may fall on either side there.
        if (!isDate && (Math.abs((x as number) - (from as number)) <= EDGE_SLACK_S || Math.abs((x as number) - (to as number)) <= EDGE_SLACK_S))
          ev.unsure ??= `${fp.path}: a held time within ${EDGE_SLACK_S} s of ${op}'s window edge`;
        return x >= from && x < to;
      };
      return op.startsWith("not_") ? negated(p) : p;
    }
    default:
      throw new CannotAnswer("operator", `${op} on ${fp.field.dataType} field ${fp.path}`);
  }
}
