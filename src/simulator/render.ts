/**
 * Records in the REST answer shape: `{"type","attributes","relationships","id","links"}`, link
 * fields only under `relationships` as `{"data": …, "links": {"self"[, "related"]}}`, dates
 * `2021-06-16T08:55:13Z` in reads and `2021-06-16 08:55:17 UTC` in a create's answer.
 */
import type { SchemaIndex } from "./schema.ts";
import { LINK_TYPES } from "./schema.ts";
import type { SimRecord, SimStore } from "./store.ts";
import { readPath, resolvePath, type FieldPath } from "./query.ts";
import { formatCreateDateTime, formatReadDateTime, isLink, type Link } from "./values.ts";

export interface RenderContext {
  store: SimStore;
  /** "v1" or "v1.1": the prefix of the links the answer carries. */
  version: string;
  /** Date-time spelling: reads, or a create's answer. */
  dates: "read" | "create";
}

/** Parse a `fields` parameter ("a,b", ["a","b"], "*", absent) into paths; unknown fields are skipped like the site does. */
export function selectFields(schema: SchemaIndex, type: string, fields: unknown): FieldPath[] {
  let names: string[];
  if (fields === undefined || fields === null || fields === "") names = ["*"];
  else if (typeof fields === "string")
    names = fields
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  else if (Array.isArray(fields)) names = fields.filter((f): f is string => typeof f === "string");
  else names = ["*"];
  const out: FieldPath[] = [];
  const seen = new Set<string>();
  for (const name of names) {
    if (name === "*") {
      for (const f of schema.fields(type)) {
        if (f.name === "id" || seen.has(f.name)) continue;
        seen.add(f.name);
        out.push({ path: f.name, steps: [f.name], info: f });
      }
      continue;
    }
    if (name === "id" || name === "type" || seen.has(name)) continue;
    const fp = resolvePath(schema, type, name);
    if (!fp) continue;
    seen.add(name);
    out.push(fp);
  }
  return out;
}

/** The fields a create's 201 answer shows: what is set, plus every multi-entity field. */
export function createAnswerFields(schema: SchemaIndex, rec: SimRecord): FieldPath[] {
  return schema
    .fields(rec.type)
    .filter((f) => f.name !== "id" && (f.dataType === "multi_entity" || (rec.fields[f.name] !== undefined && rec.fields[f.name] !== null)))
    .map((f) => ({ path: f.name, steps: [f.name], info: f }));
}

export function entityUrl(schema: SchemaIndex, version: string, link: Link): string {
  return `/api/${version}/entity/${schema.urlName(link.type)}/${link.id}`;
}

export function renderRecord(ctx: RenderContext, rec: SimRecord, fields: FieldPath[]): Record<string, unknown> {
  const { store } = ctx;
  const schema = store.schema;
  const self = entityUrl(schema, ctx.version, rec);
  const attributes: Record<string, unknown> = {};
  const relationships: Record<string, unknown> = {};
  for (const fp of fields) {
    const value = readPath(store, rec, fp);
    if (LINK_TYPES.has(fp.info.dataType)) {
      const links: Record<string, string> = { self: `${self}/relationships/${fp.path}` };
      if (isLink(value)) links["related"] = entityUrl(schema, ctx.version, value);
      relationships[fp.path] = { data: linkData(store, fp, value), links };
      continue;
    }
    attributes[fp.path] = attributeValue(ctx, fp, value);
  }
  return { type: rec.type, attributes, relationships, id: rec.id, links: { self } };
}

/**
 * A record in the api3 (`/api3/json`) shape: `{"type","id", field: value…}` with links as
 * `{"id","name","type"}` and date-times in the read spelling, in creates too.
 */
export function renderApi3Record(store: SimStore, rec: SimRecord, fields: FieldPath[]): Record<string, unknown> {
  const out: Record<string, unknown> = { type: rec.type, id: rec.id };
  const ctx: RenderContext = { store, version: "v1.1", dates: "read" };
  for (const fp of fields) {
    const value = readPath(store, rec, fp);
    out[fp.path] = LINK_TYPES.has(fp.info.dataType) ? linkData(store, fp, value) : attributeValue(ctx, fp, value);
  }
  return out;
}

/** A link field's value as both APIs show it: a named link (or null), or a list of them. */
function linkData(store: SimStore, fp: FieldPath, value: unknown): unknown {
  if (fp.info.dataType === "entity") return isLink(value) ? namedLink(store, value) : null;
  return (value as Link[]).map((l) => namedLink(store, l));
}

function attributeValue(ctx: RenderContext, fp: FieldPath, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (fp.info.dataType === "date_time" && typeof value === "number") {
    return ctx.dates === "create" ? formatCreateDateTime(value) : formatReadDateTime(value);
  }
  return value;
}

/** A link the way answers show it: `{"id","name","type"}` with the current display name. */
export function namedLink(store: SimStore, l: Link): { id: number; name: string | null; type: string } {
  return { id: l.id, name: store.displayName(l), type: l.type };
}
