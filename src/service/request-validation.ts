/**
 * Validation of GetEntity and Query requests against the site's schema and the service's limits.
 * Everything a handler passes to the cache has been through here (design invariant 7).
 *
 * Each rule is written once, synchronously, against the loaded schema (the `check*` functions:
 * they throw SchemaNotLoaded when a part of the schema they need is not loaded). The `…Now`
 * entries run a rule without waiting (undefined when the schema is not loaded far enough); the
 * async entries have the registry load what the rule needs, no longer than the call's signal
 * allows, and run it again (`SchemaRegistry.settle`).
 */
import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import type { GetEntityRequest, QueryRequest } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import type { EntityQuery } from "../cache/types.ts";
import type { SortSpec } from "../shotgrid/types.ts";
import { checkFilters } from "./filter-validation.ts";
import { InvalidInputError, quote } from "./invalid-input-error.ts";
import type { SchemaRegistry } from "./schema-registry.ts";

export interface RequestLimits {
  /** Most fields (and order clauses) one request may name. */
  maxFields: number;
  /** Largest Query page; also the limit of a Query that sets none. */
  maxPageSize: number;
  /** Most filter conditions in one Query, nested ones included. */
  maxConditions: number;
}

const TYPE_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const FIELD_PATH = /^[A-Za-z0-9_.]+$/;

/** A GetEntity request after validation. */
export interface ValidGetEntity {
  entityType: string;
  id: number;
  fields: string[];
}

// ---- the rules ----

/** `field` names where the type sits in the request (default `entityType`). */
export function checkEntityType(entityType: string, schema: SchemaRegistry, field = "entityType"): void {
  if (entityType === "") throw new InvalidInputError(field, 'is required, e.g. "Shot"');
  if (!TYPE_NAME.test(entityType)) throw new InvalidInputError(field, `${quote(entityType)} is not an entity type name`);
  if (!schema.typeKnown(entityType)) throw new InvalidInputError(field, `unknown entity type ${quote(entityType)} on this site`);
}

/** Validated field lists, per schema generation: a hit re-validates nothing it saw before. */
interface FieldsMemo {
  generation: number;
  lists: Map<string, { input: readonly string[]; fields: string[] }>;
}
const fieldsMemos = new WeakMap<SchemaRegistry, FieldsMemo>();
/** Distinct (type, field list) pairs remembered per registry before starting over. */
const FIELDS_MEMO_MAX = 4096;

/** The requested fields, checked, without `id`/`type` (always returned) and duplicates. Successful lists are memoised per (type, list). */
export function checkFields(fields: readonly string[], entityType: string, schema: SchemaRegistry, limits: RequestLimits): string[] {
  if (fields.length > limits.maxFields) throw new InvalidInputError("fields", `too many fields: ${fields.length} (at most ${limits.maxFields})`);
  let memo = fieldsMemos.get(schema);
  if (!memo || memo.generation !== schema.generation) fieldsMemos.set(schema, (memo = { generation: schema.generation, lists: new Map() }));
  const key = `${entityType}|${fields.join(",")}`;
  const known = memo.lists.get(key);
  // The key alone could collide ("a,b" as one name): the list itself must match.
  if (known && sameList(known.input, fields)) return known.fields.slice();
  const out: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (!FIELD_PATH.test(f)) throw new InvalidInputError(`fields[${i}]`, `${quote(f)} is not a field name`);
    if (f === "id" || f === "type") continue; // always returned
    const r = schema.resolve(entityType, f);
    if (!r.ok) throw new InvalidInputError(`fields[${i}]`, r.reason);
    if (!seen.has(f)) {
      seen.add(f);
      out.push(f);
    }
  }
  if (memo.lists.size >= FIELDS_MEMO_MAX) memo.lists.clear();
  memo.lists.set(key, { input: fields.slice(), fields: out.slice() });
  return out;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkGetEntity(req: GetEntityRequest, schema: SchemaRegistry, limits: RequestLimits): ValidGetEntity {
  checkEntityType(req.entityType, schema);
  if (!Number.isInteger(req.id) || req.id <= 0) throw new InvalidInputError("id", `must be a positive entity id, got ${req.id}`);
  return { entityType: req.entityType, id: req.id, fields: checkFields(req.fields, req.entityType, schema, limits) };
}

function checkQuery(req: QueryRequest, schema: SchemaRegistry, limits: RequestLimits): EntityQuery {
  checkEntityType(req.entityType, schema);
  const fields = checkFields(req.fields, req.entityType, schema, limits);
  const rawFilters = req.filters ? toJson(ValueSchema, req.filters) : undefined;
  const filters = checkFilters(rawFilters, req.entityType, schema, { maxConditions: limits.maxConditions });
  if (req.order.length > limits.maxFields) throw new InvalidInputError("order", `too many sort clauses (at most ${limits.maxFields})`);
  const order: SortSpec[] = [];
  for (let i = 0; i < req.order.length; i++) {
    const o = req.order[i]!;
    if (o.field === "") throw new InvalidInputError(`order[${i}].field`, "is required");
    if (o.field !== "id") {
      const r = schema.resolve(req.entityType, o.field);
      if (!r.ok) throw new InvalidInputError(`order[${i}].field`, r.reason);
    }
    const dir = o.direction.toLowerCase();
    if (dir !== "" && dir !== "asc" && dir !== "desc") {
      throw new InvalidInputError(`order[${i}].direction`, `must be "asc" or "desc", got ${quote(o.direction)}`);
    }
    order.push({ field: o.field, direction: dir === "desc" ? "desc" : "asc" });
  }
  if (req.limit < 0) throw new InvalidInputError("limit", `must not be negative, got ${req.limit}`);
  if (req.limit > limits.maxPageSize)
    throw new InvalidInputError("limit", `${req.limit} is over the largest page (${limits.maxPageSize}); page through with "page"`);
  if (req.page < 0) throw new InvalidInputError("page", `must not be negative, got ${req.page}`);
  return {
    entityType: req.entityType,
    filters,
    fields,
    order,
    limit: req.limit === 0 ? limits.maxPageSize : req.limit,
    page: req.page === 0 ? 1 : req.page,
    includeArchivedProjects: req.includeArchivedProjects,
    retired: req.retired,
  };
}

// ---- the entries: without waiting (…Now: undefined when the schema is not loaded far enough), or loading what is needed ----

export function validateEntityType(entityType: string, schema: SchemaRegistry, field = "entityType", signal?: AbortSignal): Promise<void> {
  return schema.settle(() => checkEntityType(entityType, schema, field), signal);
}

/** Throws the same errors as `validateEntityType`; true when the type is known, undefined when deciding needs the type list fetched. */
export function validateEntityTypeNow(entityType: string, schema: SchemaRegistry, field = "entityType"): true | undefined {
  return schema.now(() => {
    checkEntityType(entityType, schema, field);
    return true as const;
  });
}

export function validateFields(
  fields: readonly string[],
  entityType: string,
  schema: SchemaRegistry,
  limits: RequestLimits,
  signal?: AbortSignal,
): Promise<string[]> {
  return schema.settle(() => checkFields(fields, entityType, schema, limits), signal);
}

export function validateFieldsNow(fields: readonly string[], entityType: string, schema: SchemaRegistry, limits: RequestLimits): string[] | undefined {
  return schema.now(() => checkFields(fields, entityType, schema, limits));
}

/** For the hit path: the same errors and result as `validateGetEntity`, or undefined when a schema it needs is not loaded yet. */
export function validateGetEntityNow(req: GetEntityRequest, schema: SchemaRegistry, limits: RequestLimits): ValidGetEntity | undefined {
  return schema.now(() => checkGetEntity(req, schema, limits));
}

/** Once the schema is loaded (nearly always) this takes no fetch; `signal` bounds the wait for one. */
export function validateGetEntity(req: GetEntityRequest, schema: SchemaRegistry, limits: RequestLimits, signal?: AbortSignal): Promise<ValidGetEntity> {
  return schema.settle(() => checkGetEntity(req, schema, limits), signal);
}

export function validateQueryNow(req: QueryRequest, schema: SchemaRegistry, limits: RequestLimits): EntityQuery | undefined {
  return schema.now(() => checkQuery(req, schema, limits));
}

export function validateQuery(req: QueryRequest, schema: SchemaRegistry, limits: RequestLimits, signal?: AbortSignal): Promise<EntityQuery> {
  return schema.settle(() => checkQuery(req, schema, limits), signal);
}
