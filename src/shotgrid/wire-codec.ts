/**
 * ShotGrid REST JSON ⇄ the flat, wire-neutral types of types.ts. The only place that knows where
 * the REST API puts things: `id` at the top level, plain values under `attributes`, links under
 * `relationships` as `{data, links}`, schema values as `{value, editable}` pairs.
 *
 * Decoders throw MalformedResponseError on a wrong shape, never a TypeError: a site (or a proxy
 * in front of it) that answers something unexpected must not crash a caller.
 */
import { MalformedResponseError } from "./errors.ts";
import type {
  BatchRequest,
  Entity,
  EntityLink,
  EntitySchema,
  EventLogEntry,
  FieldSchema,
  FieldValue,
  FilterCondition,
  FilterGroup,
  Filters,
  SortSpec,
  WriteFields,
} from "./types.ts";

/** Content type of `_search` with filters in array form (all conditions ANDed). */
export const ARRAY_FILTERS_CONTENT_TYPE = "application/vnd+shotgun.api3_array+json";
/** Content type of `_search` with filters in logical (hash) form. */
export const HASH_FILTERS_CONTENT_TYPE = "application/vnd+shotgun.api3_hash+json";

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** `2021-06-16 08:55:17 UTC` (what a create's 201 answer carries) → `2021-06-16T08:55:17Z`. */
const UTC_SPACE_FORM = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) UTC$/;

/**
 * Datetimes in one ISO form, `YYYY-MM-DDTHH:MM:SSZ`, whatever the endpoint used. A text field
 * whose whole value is exactly in the create-answer form would be rewritten too; the form is
 * specific enough that this is taken as acceptable.
 */
export function normaliseDateTime<T>(value: T): T | string {
  if (typeof value !== "string") return value;
  const m = UTC_SPACE_FORM.exec(value);
  return m ? `${m[1]}T${m[2]}Z` : value;
}

/** A link object `{type, id, name?}` → EntityLink (name null when the site sent none). */
export function decodeLink(raw: unknown, where: string): EntityLink {
  if (!isObject(raw) || typeof raw.type !== "string" || typeof raw.id !== "number") {
    throw new MalformedResponseError(`${where}: expected an entity link {type, id}, got ${describe(raw)}`);
  }
  const name = typeof raw.name === "string" ? raw.name : null;
  return { type: raw.type, id: raw.id, name };
}

/** One `relationships` entry → null, a link, or a list of links. */
function decodeRelationship(raw: unknown, where: string): FieldValue {
  // Recorded answers wrap the value as {data, links}; the vendor's spec examples (batch) show the
  // bare value. Accept both.
  const value = isObject(raw) && "data" in raw ? raw.data : raw;
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.map((item, i) => decodeLink(item, `${where}[${i}]`));
  return decodeLink(value, where);
}

/** One REST record `{type, id, attributes, relationships, links}` → a flat Entity. */
export function decodeRecord(raw: unknown, where = "record"): Entity {
  if (!isObject(raw)) throw new MalformedResponseError(`${where}: expected a record object, got ${describe(raw)}`);
  const { type, id, attributes, relationships } = raw;
  if (typeof type !== "string" || type === "") throw new MalformedResponseError(`${where}.type: expected an entity type name, got ${describe(type)}`);
  if (typeof id !== "number" || !Number.isInteger(id)) throw new MalformedResponseError(`${where}.id: expected an integer id, got ${describe(id)}`);
  const fields: Record<string, FieldValue> = {};
  if (attributes !== undefined && attributes !== null) {
    if (!isObject(attributes)) throw new MalformedResponseError(`${where}.attributes: expected an object, got ${describe(attributes)}`);
    for (const [name, value] of Object.entries(attributes)) {
      fields[name] = normaliseDateTime(value) as FieldValue;
    }
  }
  if (relationships !== undefined && relationships !== null) {
    if (!isObject(relationships)) throw new MalformedResponseError(`${where}.relationships: expected an object, got ${describe(relationships)}`);
    for (const [name, value] of Object.entries(relationships)) {
      fields[name] = decodeRelationship(value, `${where}.relationships.${name}`);
    }
  }
  // `fields` never holds type or id (types.ts), even when the caller asked for them by name.
  delete fields.type;
  delete fields.id;
  return { type, id, fields };
}

/** `{"data": {record}}` → Entity. */
export function decodeSingleRecord(body: unknown): Entity {
  if (!isObject(body)) throw new MalformedResponseError(`expected a JSON object with "data", got ${describe(body)}`);
  return decodeRecord(body.data, "data");
}

/** `{"data": [records…], "links": {…}}` → Entity[]. */
export function decodeRecordList(body: unknown): Entity[] {
  if (!isObject(body) || !Array.isArray(body.data)) {
    throw new MalformedResponseError(`expected a JSON object with a "data" list, got ${describe(isObject(body) ? body.data : body)}`);
  }
  return body.data.map((r, i) => decodeRecord(r, `data[${i}]`));
}

/** A revive answer `{"data":{type,id},"meta":{"did_revive":bool}}` → did_revive. */
export function decodeReviveResult(body: unknown): boolean {
  if (!isObject(body)) throw new MalformedResponseError(`revive: expected a JSON object, got ${describe(body)}`);
  const meta = body.meta;
  if (isObject(meta) && typeof meta.did_revive === "boolean") return meta.did_revive;
  throw new MalformedResponseError(`revive: expected meta.did_revive to be a boolean, got ${describe(isObject(meta) ? meta.did_revive : meta)}`);
}

/** The `value` of a `{value, editable}` pair, or the value itself when it comes unwrapped. */
function unwrap(pair: unknown): unknown {
  return isObject(pair) && "value" in pair ? pair.value : pair;
}

function stringList(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every((s) => typeof s === "string") ? (v as string[]) : undefined;
}

/** One field of `GET /schema/{type}/fields` (or of api3 `schema_field_read`) → FieldSchema. */
export function decodeFieldSchema(name: string, raw: unknown): FieldSchema {
  if (!isObject(raw)) throw new MalformedResponseError(`schema field ${name}: expected an object, got ${describe(raw)}`);
  const dataType = unwrap(raw.data_type);
  if (typeof dataType !== "string") throw new MalformedResponseError(`schema field ${name}: data_type.value must be a string, got ${describe(dataType)}`);
  const displayName = unwrap(raw.name);
  const editable = unwrap(raw.editable);
  const properties = isObject(raw.properties) ? raw.properties : {};
  const field: FieldSchema = {
    name,
    displayName: typeof displayName === "string" ? displayName : name,
    dataType,
    editable: editable === true,
  };
  const validTypes = stringList(unwrap(properties.valid_types));
  if (validTypes) field.validTypes = validTypes;
  const validValues = stringList(unwrap(properties.valid_values));
  if (validValues) field.validValues = validValues;
  return field;
}

/** `{"data": {field: {...}}}` → EntitySchema. */
export function decodeSchemaFields(body: unknown): EntitySchema {
  if (!isObject(body) || !isObject(body.data))
    throw new MalformedResponseError(`schema: expected {"data": {field: …}}, got ${describe(isObject(body) ? body.data : body)}`);
  const schema: EntitySchema = {};
  for (const [name, raw] of Object.entries(body.data)) schema[name] = decodeFieldSchema(name, raw);
  return schema;
}

/**
 * `GET /schema` → entity type names. Sites answer `{"data": {Type: {...}}}`; the vendor's spec
 * shows `{"data": [{Type: {...}, …}]}`. Accept both.
 */
export function decodeEntityTypes(body: unknown): string[] {
  if (!isObject(body)) throw new MalformedResponseError(`schema: expected a JSON object, got ${describe(body)}`);
  const data = body.data;
  const maps = Array.isArray(data) ? data : [data];
  const names = new Set<string>();
  for (const m of maps) {
    if (!isObject(m)) throw new MalformedResponseError(`schema: expected an object of entity types, got ${describe(m)}`);
    for (const name of Object.keys(m)) names.add(name);
  }
  return [...names].sort();
}

function linkOrNull(v: FieldValue | undefined, where: string): EntityLink | null {
  if (v === undefined || v === null) return null;
  if (Array.isArray(v) || !isObject(v)) throw new MalformedResponseError(`${where}: expected a single link or null, got ${describe(v)}`);
  return v as unknown as EntityLink;
}

function stringOrNull(v: FieldValue | undefined): string | null {
  return typeof v === "string" ? v : null;
}

/** An EventLogEntry record (decoded) → EventLogEntry. */
export function toEventLogEntry(e: Entity): EventLogEntry {
  const f = e.fields;
  const where = `EventLogEntry ${e.id}`;
  if (typeof f.event_type !== "string") throw new MalformedResponseError(`${where}: event_type must be a string, got ${describe(f.event_type)}`);
  if (typeof f.created_at !== "string") throw new MalformedResponseError(`${where}: created_at must be a string, got ${describe(f.created_at)}`);
  const meta = f.meta;
  const entry: EventLogEntry = {
    id: e.id,
    event_type: f.event_type,
    attribute_name: stringOrNull(f.attribute_name),
    meta: isObject(meta) ? meta : null,
    entity: linkOrNull(f.entity, `${where}.entity`),
    project: linkOrNull(f.project, `${where}.project`),
    user: linkOrNull(f.user, `${where}.user`),
    session_uuid: stringOrNull(f.session_uuid),
    created_at: f.created_at,
  };
  if ("description" in f) entry.description = stringOrNull(f.description);
  return entry;
}

/** The fields an event read asks for. */
export const EVENT_FIELDS = ["event_type", "attribute_name", "meta", "entity", "project", "user", "session_uuid", "created_at", "description"];

// ---------------------------------------------------------------------------------------------
// Encoding (caller input is checked here: a clear TypeError naming the part, never a request
// the site would answer with a puzzling 400)

const ENTITY_TYPE = /^[A-Za-z][A-Za-z0-9_]*$/;
/** A field name or a deep path `entity.Shot.sg_sequence.Sequence.code`. */
const FIELD_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*)*$/;

export function checkEntityType(entityType: unknown, where = "entityType"): string {
  if (typeof entityType !== "string" || !ENTITY_TYPE.test(entityType)) {
    throw new TypeError(`${where} must be an entity type name like "Shot" or "CustomEntity01", got ${describe(entityType)}`);
  }
  return entityType;
}

export function checkId(id: unknown, where = "id"): number {
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 1) {
    throw new TypeError(`${where} must be a positive integer, got ${describe(id)}`);
  }
  return id;
}

export function checkFieldPath(path: unknown, where: string): string {
  if (typeof path !== "string" || !FIELD_PATH.test(path)) {
    throw new TypeError(`${where} must be a field name or a deep path like "sg_sequence.Sequence.code", got ${describe(path)}`);
  }
  return path;
}

/** `["code", "sg_sequence.Sequence.code"]` → `"code,sg_sequence.Sequence.code"`; none → `"*"`. */
export function encodeFields(fields: readonly string[] | undefined, where = "fields"): string {
  if (fields === undefined || fields.length === 0) return "*";
  if (!Array.isArray(fields)) throw new TypeError(`${where} must be a list of field names, got ${describe(fields)}`);
  return fields.map((f, i) => (f === "*" ? f : checkFieldPath(f, `${where}[${i}]`))).join(",");
}

/** `[{field:"code",direction:"asc"},{field:"created_at",direction:"desc"}]` → `"code,-created_at"`. */
export function encodeSort(sort: readonly SortSpec[] | undefined, where = "sort"): string | undefined {
  if (sort === undefined || sort.length === 0) return undefined;
  if (!Array.isArray(sort)) throw new TypeError(`${where} must be a list of {field, direction}, got ${describe(sort)}`);
  return sort
    .map((s, i) => {
      if (!isObject(s)) throw new TypeError(`${where}[${i}] must be {field, direction}, got ${describe(s)}`);
      const field = checkFieldPath(s.field, `${where}[${i}].field`);
      if (s.direction !== "asc" && s.direction !== "desc") {
        throw new TypeError(`${where}[${i}].direction must be "asc" or "desc", got ${describe(s.direction)}`);
      }
      return s.direction === "desc" ? `-${field}` : field;
    })
    .join(",");
}

function checkCondition(c: unknown, where: string): FilterCondition {
  if (!Array.isArray(c) || c.length < 2) throw new TypeError(`${where} must be a condition [path, operator, ...values], got ${describe(c)}`);
  checkFieldPath(c[0], `${where}[0]`);
  if (typeof c[1] !== "string" || !/^[a-z_]+$/.test(c[1])) throw new TypeError(`${where}[1] must be an operator name like "is", got ${describe(c[1])}`);
  return c as FilterCondition;
}

function checkGroup(g: unknown, where: string, depth: number): FilterGroup {
  if (depth > 32) throw new TypeError(`${where}: filter groups nest more than 32 deep`);
  if (!isObject(g)) throw new TypeError(`${where} must be a condition or a {logical_operator, conditions} group, got ${describe(g)}`);
  if (g.logical_operator !== "and" && g.logical_operator !== "or") {
    throw new TypeError(`${where}.logical_operator must be "and" or "or", got ${describe(g.logical_operator)}`);
  }
  if (!Array.isArray(g.conditions)) throw new TypeError(`${where}.conditions must be a list, got ${describe(g.conditions)}`);
  g.conditions.forEach((c, i) => (Array.isArray(c) ? checkCondition(c, `${where}.conditions[${i}]`) : checkGroup(c, `${where}.conditions[${i}]`, depth + 1)));
  return g as unknown as FilterGroup;
}

/**
 * Filters → the `_search` content type and the `filters` body member. The array form goes out
 * as-is with the array content type; the logical form with the hash content type. Conditions are
 * passed through unchanged (`between` and `in_last` keep their flattened arguments).
 */
export function encodeFilters(filters: Filters | undefined, where = "filters"): { contentType: string; filters: Filters } {
  if (filters === undefined) return { contentType: ARRAY_FILTERS_CONTENT_TYPE, filters: [] };
  if (Array.isArray(filters)) {
    filters.forEach((c, i) => checkCondition(c, `${where}[${i}]`));
    return { contentType: ARRAY_FILTERS_CONTENT_TYPE, filters };
  }
  return { contentType: HASH_FILTERS_CONTENT_TYPE, filters: checkGroup(filters, where, 0) };
}

function checkWriteFields(data: unknown, where: string): WriteFields {
  if (!isObject(data)) throw new TypeError(`${where} must be an object of field values, got ${describe(data)}`);
  for (const [name, value] of Object.entries(data)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new TypeError(`${where}: "${name}" is not a field name`);
    if (isObject(value) && "multi_entity_update_mode" in value) {
      const mode = value.multi_entity_update_mode;
      if (mode !== "set" && mode !== "add" && mode !== "remove") {
        throw new TypeError(`${where}.${name}.multi_entity_update_mode must be "set", "add" or "remove", got ${describe(mode)}`);
      }
      if (!Array.isArray(value.value)) throw new TypeError(`${where}.${name}.value must be a list of links, got ${describe(value.value)}`);
    }
  }
  return data as WriteFields;
}

/**
 * `multiEntityUpdateModes` → the REST form of each listed field:
 * `{"field": {"multi_entity_update_mode": "add", "value": [links]}}`. Every listed field must be
 * set in `data` to a list of links; a value that already carries a mode must carry the same one.
 */
function applyUpdateModes(data: WriteFields, modes: unknown, where: string, dataWhere: string): WriteFields {
  if (modes === undefined) return data;
  if (!isObject(modes)) throw new TypeError(`${where} must be an object of field name → "set", "add" or "remove", got ${describe(modes)}`);
  const out: WriteFields = { ...data };
  for (const [name, mode] of Object.entries(modes)) {
    if (mode !== "set" && mode !== "add" && mode !== "remove") {
      throw new TypeError(`${where}.${name} must be "set", "add" or "remove", got ${describe(mode)}`);
    }
    if (!(name in data)) throw new TypeError(`${where}.${name}: ${dataWhere} does not set the field "${name}"`);
    const value = data[name];
    if (isObject(value) && "multi_entity_update_mode" in value) {
      if (value.multi_entity_update_mode !== mode) {
        throw new TypeError(`${where}.${name} is "${mode}" but ${dataWhere}.${name}.multi_entity_update_mode is ${describe(value.multi_entity_update_mode)}`);
      }
      continue;
    }
    if (!Array.isArray(value)) throw new TypeError(`${dataWhere}.${name} must be a list of links for a multi-entity update mode, got ${describe(value)}`);
    value.forEach((l, i) => {
      if (!isObject(l) || typeof l.type !== "string" || typeof l.id !== "number") {
        throw new TypeError(`${dataWhere}.${name}[${i}] must be an entity link {type, id}, got ${describe(l)}`);
      }
    });
    out[name] = { multi_entity_update_mode: mode, value: value as EntityLink[] };
  }
  return out;
}

/** Create and update bodies are the field values themselves (update modes folded in). */
export function encodeWriteData(data: unknown, where = "data", modes?: unknown, modesWhere = "multiEntityUpdateModes"): WriteFields {
  return applyUpdateModes(checkWriteFields(data, where), modes, modesWhere, where);
}

/** A batch request's `options`: the fields its answer holds. */
function batchOptions(fields: unknown, where: string): { options?: { fields: string[] } } {
  if (fields === undefined) return {};
  if (!Array.isArray(fields)) throw new TypeError(`${where} must be a list of field names, got ${describe(fields)}`);
  if (fields.length === 0) return {};
  encodeFields(fields, where);
  return { options: { fields: [...(fields as string[])] } };
}

/** Batch requests → the `_batch` body. */
export function encodeBatch(requests: readonly BatchRequest[]): { requests: Json[] } {
  if (!Array.isArray(requests) || requests.length === 0) throw new TypeError(`requests must be a non-empty list, got ${describe(requests)}`);
  return {
    requests: requests.map((r, i) => {
      const where = `requests[${i}]`;
      if (!isObject(r)) throw new TypeError(`${where} must be an object, got ${describe(r)}`);
      const entity = checkEntityType(r.entityType, `${where}.entityType`);
      switch (r.requestType) {
        case "create":
          if (r.multiEntityUpdateModes !== undefined) throw new TypeError(`${where}.multiEntityUpdateModes applies to update requests only`);
          return { request_type: "create", entity, data: checkWriteFields(r.data, `${where}.data`), ...batchOptions(r.fields, `${where}.fields`) };
        case "update":
          return {
            request_type: "update",
            entity,
            record_id: checkId(r.id, `${where}.id`),
            data: encodeWriteData(r.data, `${where}.data`, r.multiEntityUpdateModes, `${where}.multiEntityUpdateModes`),
            ...batchOptions(r.fields, `${where}.fields`),
          };
        case "delete":
          return { request_type: "delete", entity, record_id: checkId(r.id, `${where}.id`) };
        default:
          throw new TypeError(`${where}.requestType must be "create", "update" or "delete", got ${describe((r as Json).requestType)}`);
      }
    }),
  };
}

/** Short, secret-free description of a value for error messages. */
export function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
  return String(v);
}

/** `_batch` answer `{"data":[…]}` → one result per request: an Entity, or true for a delete. */
export function decodeBatchResults(body: unknown, requests: readonly BatchRequest[]): Array<Entity | boolean> {
  if (!isObject(body) || !Array.isArray(body.data)) {
    throw new MalformedResponseError(`batch: expected a JSON object with a "data" list, got ${describe(isObject(body) ? body.data : body)}`);
  }
  if (body.data.length !== requests.length) {
    throw new MalformedResponseError(`batch: sent ${requests.length} requests but the answer has ${body.data.length} results`);
  }
  return body.data.map((item, i) => {
    if (requests[i]!.requestType === "delete") return typeof item === "boolean" ? item : true;
    return decodeRecord(item, `data[${i}]`);
  });
}
