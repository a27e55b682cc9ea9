/**
 * Reading records the way the site does: dotted paths through single-entity links
 * (`sg_sequence.Sequence.code`), filters in array and logical form with every operator and its
 * data-type rules, and multi-field sorts. Bad filters fail with the site's 400 / code 103 answers.
 */
import type { FieldInfo, SchemaIndex } from "./schema.ts";
import { UNFILTERABLE_TYPES } from "./schema.ts";
import type { SimRecord, SimStore } from "./store.ts";
import { badRequest } from "./sim-error.ts";
import { isDateString, isLink, parseDateTime, short, type Link } from "./values.ts";

/** A resolved dotted path: the field at its end and how to reach it. */
export interface FieldPath {
  path: string;
  /** [field, Type, field, Type, field…] */
  steps: string[];
  /** The final field. */
  info: FieldInfo;
}

/** Check a path against the schema. Returns undefined when some part does not exist. */
export function resolvePath(schema: SchemaIndex, type: string, path: string): FieldPath | undefined {
  const steps = path.split(".");
  if (steps.length % 2 === 0) return undefined;
  let current = type;
  for (let i = 0; i < steps.length - 1; i += 2) {
    const link = schema.field(current, steps[i]!);
    const next = steps[i + 1]!;
    if (link?.dataType !== "entity" || !schema.hasType(next)) return undefined;
    if (link.validTypes.length > 0 && !link.validTypes.includes(next)) return undefined;
    current = next;
  }
  const info = schema.field(current, steps[steps.length - 1]!);
  return info ? { path, steps, info } : undefined;
}

/** The value a path reads on a record (null when a link on the way is empty or points elsewhere). */
export function readPath(store: SimStore, rec: SimRecord, fp: FieldPath): unknown {
  let cur: SimRecord | undefined = rec;
  for (let i = 0; i < fp.steps.length - 1; i += 2) {
    const v: unknown = cur.fields[fp.steps[i]!];
    if (!isLink(v) || v.type !== fp.steps[i + 1]) return defaultFor(fp.info);
    cur = store.getActive(v.type, v.id);
    if (!cur) return defaultFor(fp.info);
  }
  if (fp.info.name === "id") return cur.id;
  const v = cur.fields[fp.info.name];
  return v === undefined ? defaultFor(fp.info) : v;
}

function defaultFor(info: FieldInfo): unknown {
  if (info.dataType === "multi_entity" || info.dataType === "tag_list") return [];
  if (info.dataType === "checkbox") return false;
  return null;
}

export type Predicate = (rec: SimRecord) => boolean;

interface Ctx {
  store: SimStore;
  type: string;
  now: number;
  /** "read" or "summarize": names the API call in error titles. */
  call: string;
}

/**
 * Compile filters: an array of conditions (ANDed), a logical group
 * `{"logical_operator":"and|or","conditions":[…]}`, or the api3 group form
 * `{"filter_operator":"all|any","filters":[…]}`; conditions are `[path, operator, …values]` or
 * `{"path","relation","values"}`.
 */
export function compileFilters(store: SimStore, type: string, filters: unknown, now = Date.now(), call = "read"): Predicate {
  return compileFiltersAt(store, type, filters, now, call).predicate;
}

/** As `compileFilters`, also telling whether the predicate depends on `now` (relative dates). */
export function compileFiltersAt(store: SimStore, type: string, filters: unknown, now: number, call = "read"): { predicate: Predicate; usesNow: boolean } {
  let usesNow = false;
  const ctx: Ctx = {
    store,
    type,
    get now() {
      usesNow = true;
      return now;
    },
    call,
  };
  let predicate: Predicate;
  if (filters === undefined || filters === null) predicate = () => true;
  else if (Array.isArray(filters)) predicate = allOf(filters.map((c) => compileNode(ctx, c)));
  else predicate = compileNode(ctx, filters);
  return { predicate, usesNow };
}

/** What a search asks for, as far as which records match and in which order. */
export interface SearchKey {
  type: string;
  filters: unknown;
  sort: unknown;
  returnOnly: string;
  includeArchived: boolean;
}

/** How long a sorted result is kept after its last use, and how many are kept per store. */
const RESULT_TTL_MS = 30_000;
const RESULTS_KEPT = 16;

interface CachedResult {
  version: number;
  usedAt: number;
  records: readonly SimRecord[];
}

const resultsByStore = new WeakMap<SimStore, Map<string, CachedResult>>();

/**
 * The matching records of a search in their final order, for slicing into a page. A paged read
 * asks the same search once per page: filtering and sorting every record each time made reading
 * N records cost N²/pageSize. The sorted list is therefore kept per (search, store version) for
 * a short while and later pages only slice it; any write changes the version, so a page never
 * reflects an older state than a fresh search would. Searches whose filters depend on the time
 * (relative dates: `usesNow` from `compileFiltersAt`) are not kept. `compute` returns the
 * matching records sorted.
 */
export function sortedSearch(store: SimStore, key: SearchKey, usesNow: boolean, compute: () => SimRecord[]): readonly SimRecord[] {
  let results = resultsByStore.get(store);
  if (!results) resultsByStore.set(store, (results = new Map()));
  const id = JSON.stringify([key.type, key.filters ?? null, key.sort ?? null, key.returnOnly, key.includeArchived]);
  const clock = performance.now();
  const hit = results.get(id);
  if (hit && hit.version === store.version && clock - hit.usedAt <= RESULT_TTL_MS) {
    hit.usedAt = clock;
    // Most recently used last, so the oldest is the first to go.
    results.delete(id);
    results.set(id, hit);
    return hit.records;
  }
  results.delete(id);
  const version = store.version;
  const records = compute();
  if (!usesNow && store.version === version) {
    results.set(id, { version, usedAt: clock, records });
    for (const [k, v] of results) {
      if (results.size <= RESULTS_KEPT && clock - v.usedAt <= RESULT_TTL_MS) break;
      results.delete(k);
    }
  }
  return records;
}

/** The records of a type visible with these options, unfiltered. */
export function visible(store: SimStore, type: string, returnOnly: "active" | "retired", includeArchived: boolean): SimRecord[] {
  const out: SimRecord[] = [];
  for (const r of store.records(type)) {
    if (r.retired !== (returnOnly === "retired")) continue;
    if (!includeArchived && inArchivedProject(store, r)) continue;
    out.push(r);
  }
  return out;
}

export function inArchivedProject(store: SimStore, r: SimRecord): boolean {
  const p = r.type === "Project" ? r : isLink(r.fields["project"]) ? store.get("Project", (r.fields["project"] as Link).id) : undefined;
  return p?.fields["archived"] === true;
}

/** A search whose options are already checked: `returnOnly` and `includeArchived` parsed. */
export interface SearchQuery extends SearchKey {
  returnOnly: "active" | "retired";
}

/**
 * The matching records of a search in their final order: the one home of "which records does
 * this question match", shared by REST `_search` and api3 `read` so both answer alike.
 */
export function findRecords(store: SimStore, now: number, q: SearchQuery): readonly SimRecord[] {
  const { predicate, usesNow } = compileFiltersAt(store, q.type, q.filters, now);
  const sort = parseSort(store.schema, q.type, q.sort);
  // Later pages of the same search slice the sorted list the first page computed.
  return sortedSearch(store, q, usesNow, () => {
    const matching = visible(store, q.type, q.returnOnly, q.includeArchived).filter(predicate);
    sortRecords(store, matching, sort);
    return matching;
  });
}

function allOf(preds: Predicate[]): Predicate {
  return (r) => preds.every((p) => p(r));
}

function compileNode(ctx: Ctx, node: unknown): Predicate {
  if (Array.isArray(node)) {
    if (node.length < 2 || typeof node[0] !== "string" || typeof node[1] !== "string") {
      throw badRequest(`Invalid filter ${short(node)}: expected [field, operator, value…].`, { filters: ["invalid condition"] });
    }
    return compileCondition(ctx, node[0], node[1], node.slice(2));
  }
  if (typeof node === "object" && node !== null) {
    const o = node as Record<string, unknown>;
    if ("conditions" in o || "logical_operator" in o) return compileGroup(ctx, o["logical_operator"], o["conditions"]);
    if ("filters" in o || "filter_operator" in o) {
      const op = o["filter_operator"] === "any" ? "or" : o["filter_operator"] === "all" ? "and" : o["filter_operator"];
      return compileGroup(ctx, op, o["filters"]);
    }
    if (typeof o["path"] === "string" && typeof o["relation"] === "string") {
      const values = Array.isArray(o["values"]) ? (o["values"] as unknown[]) : [o["values"]];
      return compileCondition(ctx, o["path"], o["relation"], values);
    }
  }
  throw badRequest(`Invalid filter ${short(node)}.`, { filters: ["invalid condition"] });
}

function compileGroup(ctx: Ctx, op: unknown, conditions: unknown): Predicate {
  if (op !== "and" && op !== "or") {
    throw badRequest(`Invalid logical_operator ${short(op)}: expected "and" or "or".`, { logical_operator: ["must be and or or"] });
  }
  if (!Array.isArray(conditions)) throw badRequest(`Filter group conditions must be a list.`, { conditions: ["must be a list"] });
  const preds = conditions.map((c) => compileNode(ctx, c));
  if (op === "and") return allOf(preds);
  return (r) => preds.some((p) => p(r));
}

const RELATIVE_UNITS: Record<string, number> = { HOUR: 3_600_000, DAY: 86_400_000, WEEK: 7 * 86_400_000 };

function compileCondition(ctx: Ctx, path: string, relation: string, rawValues: unknown[]): Predicate {
  const { store, type } = ctx;
  const fp = resolvePath(store.schema, type, path);
  if (!fp) {
    const shown = `{"path"=>${JSON.stringify(path)}, "relation"=>${JSON.stringify(relation)}, "values"=>${JSON.stringify(rawValues)}}`;
    throw badRequest(`API ${ctx.call}() ${type}.${path} doesn't exist.`, { [`${type}.${path}`]: ` does not exist. Value: ${shown}` });
  }
  const info = fp.info;
  const dt = info.dataType;
  const reject = (why: string) => badRequest(`API ${ctx.call}() ${type}.${path}: ${why}`, { [`${type}.${path}`]: why });
  if (UNFILTERABLE_TYPES.has(dt) || dt === "pivot_column") throw reject(`${dt} fields cannot be filtered.`);
  // Operators that take a list accept it flattened or as one array.
  const values = rawValues.length === 1 && Array.isArray(rawValues[0]) && relation !== "is" && relation !== "is_not" ? (rawValues[0] as unknown[]) : rawValues;
  const one = () => {
    if (values.length !== 1) throw reject(`operator ${relation} takes one value, got ${values.length}.`);
    return values[0];
  };
  const read = (r: SimRecord) => readPath(store, r, fp);
  const negate =
    (p: Predicate): Predicate =>
    (r) =>
      !p(r);

  if (dt === "image") {
    if ((relation === "is" || relation === "is_not") && one() === null) {
      const p: Predicate = (r) => read(r) === null;
      return relation === "is" ? p : negate(p);
    }
    throw reject(`image fields only support is / is_not null.`);
  }

  // Links: entity and multi_entity share the operators; multi-entity means "any of them".
  if (dt === "entity" || dt === "multi_entity") {
    const linksOf = (r: SimRecord): Link[] => {
      const v = read(r);
      if (Array.isArray(v)) return v as Link[];
      return isLink(v) ? [v] : [];
    };
    const toLink = (v: unknown): Link | null => {
      if (v === null) return null;
      if (isLink(v)) return v;
      if (typeof v === "object" && v !== null) {
        const o = v as Record<string, unknown>;
        const id = typeof o["id"] === "string" && /^\d+$/.test(o["id"]) ? Number(o["id"]) : o["id"];
        if (typeof o["type"] === "string" && typeof id === "number") return { type: o["type"], id };
      }
      throw reject(`expects an entity link like {"type": "Shot", "id": 1}, got ${short(v)}.`);
    };
    const has = (r: SimRecord, l: Link | null) => {
      const ls = linksOf(r);
      return l === null ? ls.length === 0 : ls.some((x) => x.type === l.type && x.id === l.id);
    };
    const names = (r: SimRecord) => linksOf(r).map((l) => (store.displayName(l) ?? "").toLowerCase());
    switch (relation) {
      case "is":
      case "is_not": {
        const l = toLink(one());
        const p: Predicate = (r) => has(r, l);
        return relation === "is" ? p : negate(p);
      }
      case "in":
      case "not_in": {
        const ls = values.map(toLink);
        const p: Predicate = (r) => ls.some((l) => has(r, l));
        return relation === "in" ? p : negate(p);
      }
      case "type_is":
      case "type_is_not": {
        const t = one();
        if (t !== null && typeof t !== "string") throw reject(`type_is expects an entity type name.`);
        const p: Predicate = (r) => (t === null ? linksOf(r).length === 0 : linksOf(r).some((l) => l.type === t));
        return relation === "type_is" ? p : negate(p);
      }
      case "name_contains":
      case "name_not_contains":
      case "name_starts_with":
      case "name_ends_with":
      case "name_is": {
        const s = one();
        if (typeof s !== "string") throw reject(`${relation} expects a string.`);
        const n = s.toLowerCase();
        const test: Record<string, (x: string) => boolean> = {
          name_contains: (x) => x.includes(n),
          name_not_contains: (x) => x.includes(n),
          name_starts_with: (x) => x.startsWith(n),
          name_ends_with: (x) => x.endsWith(n),
          name_is: (x) => x === n,
        };
        const p: Predicate = (r) => names(r).some(test[relation]!);
        return relation === "name_not_contains" ? negate(p) : p;
      }
      case "name_id": {
        const id = Number(one());
        if (!Number.isInteger(id)) throw reject(`name_id expects an id.`);
        return (r) => linksOf(r).some((l) => l.id === id);
      }
      default:
        throw reject(`operator ${relation} is not valid for ${dt} fields.`);
    }
  }

  if (dt === "tag_list") {
    const tagsOf = (r: SimRecord) => (read(r) as unknown[]).map((t) => String(t));
    switch (relation) {
      case "is":
      case "is_not": {
        const v = one();
        const p: Predicate = (r) => (v === null ? tagsOf(r).length === 0 : tagsOf(r).includes(String(v)));
        return relation === "is" ? p : negate(p);
      }
      case "in":
      case "not_in": {
        const vs = values.map(String);
        const p: Predicate = (r) => tagsOf(r).some((t) => vs.includes(t));
        return relation === "in" ? p : negate(p);
      }
      case "name_contains":
      case "name_not_contains": {
        const n = String(one()).toLowerCase();
        const p: Predicate = (r) => tagsOf(r).some((t) => t.toLowerCase().includes(n));
        return relation === "name_contains" ? p : negate(p);
      }
      default:
        throw reject(`operator ${relation} is not valid for tag_list fields.`);
    }
  }

  if (dt === "date" || dt === "date_time") return compileDateCondition(ctx, fp, relation, values, one, reject, read);

  // Scalars: numbers, text-like, checkboxes.
  const numeric = ["number", "float", "duration", "percent", "currency", "timecode"].includes(dt) || info.name === "id";
  const isText = ["text", "list", "status_list", "color", "uuid", "entity_type", "summary", "calculated"].includes(dt);
  const coerce = (v: unknown): unknown => {
    if (v === null) return null;
    if (numeric) {
      const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
      if (typeof n !== "number" || !Number.isFinite(n)) throw reject(`expects a number, got ${short(v)}.`);
      return n;
    }
    if (dt === "checkbox") {
      if (v === "true") return true;
      if (v === "false") return false;
      if (typeof v !== "boolean") throw reject(`expects true or false, got ${short(v)}.`);
      return v;
    }
    if (typeof v === "number") return String(v);
    if (typeof v !== "string") throw reject(`expects a string, got ${short(v)}.`);
    return v;
  };
  const cmp = (a: unknown, b: unknown): number =>
    typeof a === "string" && typeof b === "string" ? compareText(a, b) : (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
  switch (relation) {
    case "is":
    case "is_not": {
      const v = coerce(one());
      const p: Predicate = (r) => read(r) === v;
      return relation === "is" ? p : negate(p);
    }
    case "in":
    case "not_in": {
      const vs = values.map(coerce);
      const p: Predicate = (r) => vs.includes(read(r));
      return relation === "in" ? p : negate(p);
    }
    case "less_than":
    case "greater_than": {
      if (dt === "checkbox") throw reject(`operator ${relation} is not valid for checkbox fields.`);
      const v = coerce(one());
      return (r) => {
        const x = read(r);
        if (x === null || v === null) return false;
        const c = cmp(x, v);
        return relation === "less_than" ? c < 0 : c > 0;
      };
    }
    case "between":
    case "not_between": {
      if (!numeric && !isText) throw reject(`operator ${relation} is not valid for ${dt} fields.`);
      if (values.length !== 2) throw reject(`${relation} takes two values, got ${values.length}.`);
      const lo = coerce(values[0]);
      const hi = coerce(values[1]);
      const p: Predicate = (r) => {
        const x = read(r);
        return x !== null && cmp(x, lo) >= 0 && cmp(x, hi) <= 0;
      };
      return relation === "between" ? p : negate(p);
    }
    case "contains":
    case "not_contains":
    case "starts_with":
    case "ends_with": {
      if (!isText) throw reject(`operator ${relation} is not valid for ${dt} fields.`);
      const v = String(coerce(one()) ?? "").toLowerCase();
      const p: Predicate = (r) => {
        const x = read(r);
        if (typeof x !== "string") return false;
        const s = x.toLowerCase();
        return relation === "starts_with" ? s.startsWith(v) : relation === "ends_with" ? s.endsWith(v) : s.includes(v);
      };
      return relation === "not_contains" ? negate(p) : p;
    }
    default:
      throw reject(`operator ${relation} is not valid for ${dt} fields.`);
  }
}

function compileDateCondition(
  ctx: Ctx,
  fp: FieldPath,
  relation: string,
  values: unknown[],
  one: () => unknown,
  reject: (why: string) => Error,
  read: (r: SimRecord) => unknown,
): Predicate {
  const isDate = fp.info.dataType === "date";
  /** Everything compares as epoch ms; a date is its UTC midnight. */
  const toMs = (v: unknown): number | null => {
    if (v === null) return null;
    if (isDate) {
      if (!isDateString(v)) throw reject(`expects a date YYYY-MM-DD, got ${short(v)}.`);
      return Date.parse(`${v}T00:00:00Z`);
    }
    const ms = parseDateTime(v);
    if (Number.isNaN(ms)) throw reject(`expects a date-time like 2021-06-16T08:55:13Z, got ${short(v)}.`);
    return ms;
  };
  const valueMs = (r: SimRecord): number | null => {
    const v = read(r);
    if (v === null) return null;
    return isDate ? Date.parse(`${String(v)}T00:00:00Z`) : (v as number);
  };
  // date_time equality is to the second, the precision the site shows.
  const same = (a: number, b: number) => (isDate ? a === b : Math.floor(a / 1000) === Math.floor(b / 1000));
  const negate =
    (p: Predicate): Predicate =>
    (r) =>
      !p(r);
  const within =
    (lo: number, hi: number): Predicate =>
    (r) => {
      const x = valueMs(r);
      return x !== null && x >= lo && x < hi;
    };
  const dayStart = (ms: number) => Math.floor(ms / 86_400_000) * 86_400_000;
  switch (relation) {
    case "is":
    case "is_not": {
      const v = toMs(one());
      const p: Predicate = (r) => {
        const x = valueMs(r);
        return v === null ? x === null : x !== null && same(x, v);
      };
      return relation === "is" ? p : negate(p);
    }
    case "in":
    case "not_in": {
      const vs = values.map(toMs);
      const p: Predicate = (r) => {
        const x = valueMs(r);
        return vs.some((v) => (v === null ? x === null : x !== null && same(x, v)));
      };
      return relation === "in" ? p : negate(p);
    }
    case "less_than":
    case "greater_than": {
      const v = toMs(one());
      return (r) => {
        const x = valueMs(r);
        if (x === null || v === null) return false;
        return relation === "less_than" ? x < v : x > v;
      };
    }
    case "between":
    case "not_between": {
      if (values.length !== 2) throw reject(`${relation} takes two values, got ${values.length}.`);
      const lo = toMs(values[0]);
      const hi = toMs(values[1]);
      if (lo === null || hi === null) throw reject(`${relation} needs two dates.`);
      const p: Predicate = (r) => {
        const x = valueMs(r);
        return x !== null && x >= lo && (isDate ? x <= hi : x <= hi + 999);
      };
      return relation === "between" ? p : negate(p);
    }
    case "in_last":
    case "not_in_last":
    case "in_next":
    case "not_in_next": {
      if (values.length !== 2) throw reject(`${relation} takes a count and a unit, like [1, "DAY"].`);
      const n = Number(values[0]);
      const unit = String(values[1]).toUpperCase();
      if (!Number.isInteger(n) || n < 0) throw reject(`${relation} count must be a whole number, got ${short(values[0])}.`);
      if (!(unit in RELATIVE_UNITS) && unit !== "MONTH" && unit !== "YEAR") {
        throw reject(`${relation} unit must be HOUR, DAY, WEEK, MONTH or YEAR, got ${short(values[1])}.`);
      }
      const now = isDate ? dayStart(ctx.now) : ctx.now;
      const shift = (sign: number) => {
        if (unit === "MONTH" || unit === "YEAR") {
          const d = new Date(now);
          if (unit === "MONTH") d.setUTCMonth(d.getUTCMonth() + sign * n);
          else d.setUTCFullYear(d.getUTCFullYear() + sign * n);
          return d.getTime();
        }
        return now + sign * n * RELATIVE_UNITS[unit]!;
      };
      const end = isDate ? 86_400_000 : 1;
      const p = relation.endsWith("in_last") ? within(shift(-1), now + end) : within(now, shift(1) + end);
      return relation.startsWith("not_") ? negate(p) : p;
    }
    case "in_calendar_day":
    case "in_calendar_week":
    case "in_calendar_month":
    case "in_calendar_year": {
      const k = Number(one() ?? 0);
      if (!Number.isInteger(k)) throw reject(`${relation} takes a whole number offset (0 = current), got ${short(values[0])}.`);
      const today = new Date(dayStart(ctx.now));
      let lo: Date;
      let hi: Date;
      if (relation === "in_calendar_day") {
        lo = new Date(today.getTime() + k * 86_400_000);
        hi = new Date(lo.getTime() + 86_400_000);
      } else if (relation === "in_calendar_week") {
        // Weeks start on Monday (ISO 8601).
        const monday = today.getTime() - ((today.getUTCDay() + 6) % 7) * 86_400_000;
        lo = new Date(monday + k * 7 * 86_400_000);
        hi = new Date(lo.getTime() + 7 * 86_400_000);
      } else if (relation === "in_calendar_month") {
        lo = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() + k, 1));
        hi = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() + k + 1, 1));
      } else {
        lo = new Date(Date.UTC(today.getUTCFullYear() + k, 0, 1));
        hi = new Date(Date.UTC(today.getUTCFullYear() + k + 1, 0, 1));
      }
      return within(lo.getTime(), hi.getTime());
    }
    default:
      throw reject(`operator ${relation} is not valid for ${fp.info.dataType} fields.`);
  }
}

/** The site sorts text without regard to case. */
export function compareText(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

export interface SortKey {
  fp: FieldPath;
  desc: boolean;
}

/** Parse `"code,-created_at"`, `["code", "-id"]` or `[{"field","direction"}]`. */
export function parseSort(schema: SchemaIndex, type: string, sort: unknown): SortKey[] {
  if (sort === undefined || sort === null || sort === "") return [];
  const items: Array<{ field: string; desc: boolean }> = [];
  const list = typeof sort === "string" ? sort.split(",") : Array.isArray(sort) ? sort : [sort];
  for (const item of list) {
    if (typeof item === "string") {
      const s = item.trim();
      if (!s) continue;
      items.push(s.startsWith("-") ? { field: s.slice(1), desc: true } : { field: s, desc: false });
    } else if (typeof item === "object" && item !== null && typeof (item as Record<string, unknown>)["field"] === "string") {
      const o = item as Record<string, unknown>;
      items.push({ field: o["field"] as string, desc: o["direction"] === "desc" });
    } else {
      throw badRequest(`Invalid sort ${short(item)}.`, { sort: ["must be a field name, -field, or {field, direction}"] });
    }
  }
  return items.map(({ field, desc }) => {
    const fp = resolvePath(schema, type, field);
    if (!fp) throw badRequest(`API read() ${type}.${field} doesn't exist.`, { sort: [`${field} is not a field of ${type}`] });
    return { fp, desc };
  });
}

/** Sort records in place by the keys, then by id. Nulls sort last ascending, first descending. */
export function sortRecords(store: SimStore, records: SimRecord[], keys: SortKey[]): void {
  if (keys.length === 0) {
    records.sort((a, b) => a.id - b.id);
    return;
  }
  const cache = new Map<SimRecord, unknown[]>();
  const valuesOf = (r: SimRecord) => {
    let v = cache.get(r);
    if (!v) {
      v = keys.map((k) => sortable(store, readPath(store, r, k.fp)));
      cache.set(r, v);
    }
    return v;
  };
  records.sort((a, b) => {
    const va = valuesOf(a);
    const vb = valuesOf(b);
    for (let i = 0; i < keys.length; i++) {
      const x = va[i];
      const y = vb[i];
      let c: number;
      if (x === null && y === null) c = 0;
      else if (x === null) c = 1;
      else if (y === null) c = -1;
      else if (typeof x === "string" && typeof y === "string") c = compareText(x, y);
      else c = (x as number) < (y as number) ? -1 : (x as number) > (y as number) ? 1 : 0;
      if (c !== 0) return keys[i]!.desc ? -c : c;
    }
    return a.id - b.id;
  });
}

function sortable(store: SimStore, v: unknown): string | number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "number" || typeof v === "string") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (isLink(v)) return store.displayName(v) ?? "";
  if (Array.isArray(v)) return v.length === 0 ? null : v.map((x) => (isLink(x) ? (store.displayName(x) ?? "") : String(x))).join(",");
  return JSON.stringify(v);
}
