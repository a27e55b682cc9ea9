/**
 * Canonical keys: equivalent requests share one cache entry. Only rewrites that cannot change an
 * answer are made: object keys sorted, fields sorted and deduplicated (answers are objects keyed by
 * field), the default sort direction made explicit, the array filter form written as the `and`
 * group it means. Conditions keep their order and their values are not reinterpreted.
 */
import type { FilterCondition, FilterGroup, Filters, SortSpec } from "../shotgrid/types.ts";
import type { EntityQuery } from "./types.ts";
import { InvalidCacheRequestError } from "./errors.ts";

/** A query in the one form its cache key is made from. */
export interface CanonicalQuery {
  entityType: string;
  filters: FilterGroup;
  /** Sorted, without duplicates; empty means the type's default fields. */
  fields: string[];
  order: SortSpec[];
  /** 0: no limit. */
  limit: number;
  /** 1-based; always 1 without a limit. */
  page: number;
  includeArchivedProjects: boolean;
  retired: boolean;
}

/** JSON with object keys in sorted order at every depth (arrays keep their order). */
export function canonicalJson(value: unknown): string {
  // Written into one string as it goes: every Query is keyed by this, and building it from
  // per-level arrays and joins made a key cost ~10 KB of garbage.
  let out = "";
  const write = (v: unknown): void => {
    if (v === null || typeof v !== "object") {
      out += JSON.stringify(v ?? null);
      return;
    }
    if (Array.isArray(v)) {
      out += "[";
      for (let i = 0; i < v.length; i++) {
        if (i > 0) out += ",";
        write(v[i]);
      }
      out += "]";
      return;
    }
    const obj = v as Record<string, unknown>;
    out += "{";
    let first = true;
    for (const k of Object.keys(obj).sort()) {
      const x = obj[k];
      if (x === undefined) continue;
      if (!first) out += ",";
      first = false;
      out += JSON.stringify(k);
      out += ":";
      write(x);
    }
    out += "}";
  };
  write(value);
  return out;
}

export function canonicalFields(fields: readonly string[] | undefined, field = "fields"): string[] {
  if (fields === undefined) return [];
  if (!Array.isArray(fields)) throw new InvalidCacheRequestError(field, "must be a list of field names");
  for (const [i, f] of fields.entries()) {
    if (typeof f !== "string" || f.length === 0) throw new InvalidCacheRequestError(`${field}[${i}]`, "must be a non-empty string");
  }
  return [...new Set(fields)].sort();
}

function canonicalGroup(group: FilterGroup, path: string): FilterGroup {
  const op = group.logical_operator;
  if (op !== "and" && op !== "or") {
    throw new InvalidCacheRequestError(`${path}.logical_operator`, `must be "and" or "or", got ${JSON.stringify(op)}`);
  }
  if (!Array.isArray(group.conditions)) throw new InvalidCacheRequestError(`${path}.conditions`, "must be a list");
  return { logical_operator: op, conditions: group.conditions.map((c, i) => canonicalCondition(c, `${path}.conditions[${i}]`)) };
}

function canonicalCondition(c: FilterCondition | FilterGroup, path: string): FilterCondition | FilterGroup {
  if (Array.isArray(c)) {
    if (c.length < 2 || typeof c[0] !== "string" || typeof c[1] !== "string") {
      throw new InvalidCacheRequestError(path, "a condition must be [path, operator, ...values]");
    }
    // Values are parsed back from canonical JSON so `{"id":1,"type":"Shot"}` and
    // `{"type":"Shot","id":1}` produce the same key; nothing else about them changes.
    return c.map((v, i) => (i < 2 ? v : JSON.parse(canonicalJson(v)))) as FilterCondition;
  }
  if (c !== null && typeof c === "object") return canonicalGroup(c, path);
  throw new InvalidCacheRequestError(path, "must be a condition array or a logical group");
}

/** The filters as one group (a bare list is an `and` of its conditions). */
export function canonicalFilters(filters: Filters | undefined): FilterGroup {
  if (filters === undefined || filters === null) return { logical_operator: "and", conditions: [] };
  if (Array.isArray(filters)) return canonicalGroup({ logical_operator: "and", conditions: filters }, "filters");
  if (typeof filters === "object") return canonicalGroup(filters, "filters");
  throw new InvalidCacheRequestError("filters", "must be a list of conditions or a logical group");
}

export function canonicalOrder(order: readonly SortSpec[] | undefined): SortSpec[] {
  if (order === undefined) return [];
  if (!Array.isArray(order)) throw new InvalidCacheRequestError("order", "must be a list");
  return order.map((s, i) => {
    if (s === null || typeof s !== "object" || typeof s.field !== "string" || s.field.length === 0) {
      throw new InvalidCacheRequestError(`order[${i}].field`, "must be a non-empty string");
    }
    const direction = (s.direction as string | undefined) ?? "asc";
    if (direction !== "asc" && direction !== "desc") {
      throw new InvalidCacheRequestError(`order[${i}].direction`, `must be "asc" or "desc", got ${JSON.stringify(direction)}`);
    }
    return { field: s.field, direction };
  });
}

export function checkEntityType(entityType: unknown): string {
  if (typeof entityType !== "string" || !/^[A-Za-z][A-Za-z0-9_]*$/.test(entityType)) {
    throw new InvalidCacheRequestError("entityType", `must be an entity type name like "Shot", got ${JSON.stringify(entityType)}`);
  }
  return entityType;
}

function nonNegativeInt(value: number | undefined, field: string): number {
  if (value === undefined || value === null) return 0;
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidCacheRequestError(field, `must be a non-negative integer, got ${value}`);
  return value;
}

export function canonicalQuery(q: EntityQuery): CanonicalQuery {
  const limit = nonNegativeInt(q.limit, "limit");
  const page = nonNegativeInt(q.page, "page");
  return {
    entityType: checkEntityType(q.entityType),
    filters: canonicalFilters(q.filters),
    fields: canonicalFields(q.fields),
    order: canonicalOrder(q.order),
    limit,
    page: limit > 0 && page > 1 ? page : 1,
    includeArchivedProjects: q.includeArchivedProjects === true,
    retired: q.retired === true,
  };
}

export function queryKey(q: CanonicalQuery): string {
  return `q:${canonicalJson(q)}`;
}

export function recordKey(entityType: string, id: number): string {
  return `rec:${entityType}:${id}`;
}

/** A GetEntity asking for fields a stored full record cannot answer (deep paths): its own entry. */
export function projectionKey(entityType: string, id: number, fields: readonly string[]): string {
  return `get:${entityType}:${id}:${canonicalJson(fields)}`;
}
