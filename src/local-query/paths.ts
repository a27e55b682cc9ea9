/**
 * Reading a field, or a dotted path through single-entity links (`sg_sequence.Sequence.code`),
 * on a mirrored record, the way the site does: an empty link, or one to another type or to a
 * record that is not active, reads as the final field's empty value.
 */
import type { Entity, EntityLink, FieldSchema, FieldValue } from "../shotgrid/types.ts";
import { CannotAnswer } from "./cannot-answer.ts";
import type { Mirror, TypeMirror } from "./mirror.ts";
import { WRITE_STAMP_FIELDS } from "./event-values.ts";

/** `m`'s field `name` read as held: CannotAnswer while some record's value of it is not known (a write stamp after an event). */
export function checkKnown(m: TypeMirror, name: string): void {
  if (m.unstamped.size > 0 && WRITE_STAMP_FIELDS.has(name)) {
    throw new CannotAnswer("stamps_unknown", `${m.type}.${name} of ${m.unstamped.size} record(s) updated from their event is not known until fetched again`);
  }
}

export interface CompiledPath {
  path: string;
  /** The field at the end of the path. */
  field: FieldSchema;
  /** Every mirrored type the path reads (the query's own type first). */
  types: string[];
  read(record: Entity): FieldValue;
}

/** What a field that holds nothing reads as, by data type. */
export function emptyValue(dataType: string): FieldValue {
  if (dataType === "multi_entity" || dataType === "tag_list") return [];
  if (dataType === "checkbox") return false;
  return null;
}

function isLink(v: unknown): v is EntityLink {
  return v !== null && typeof v === "object" && !Array.isArray(v) && typeof (v as EntityLink).type === "string" && typeof (v as EntityLink).id === "number";
}

/** The mirrored type `type`, ready to be read, or CannotAnswer saying why not. */
export function readyType(mirror: Mirror, type: string): TypeMirror {
  const m = mirror.typeMirror(type);
  if (!m) throw new CannotAnswer("type_not_mirrored", `${type} is not a mirrored type`);
  if (!m.loaded || !m.schema) throw new CannotAnswer("type_not_loaded", `${type} is not fully loaded yet`);
  if (m.pending.size > 0) throw new CannotAnswer("records_refreshing", `${m.pending.size} ${type} record(s) are being refreshed after an event`);
  if (mirror.relinking) throw new CannotAnswer("records_refreshing", "link names are being updated after an event");
  return m;
}

function heldField(m: TypeMirror, name: string, path: string): FieldSchema {
  const field = name === "id" ? ({ name: "id", displayName: "Id", dataType: "number", editable: false } as FieldSchema) : m.schema![name];
  if (!field) throw new CannotAnswer("field_not_held", `${m.type}.${name} (in ${path}) is not in the mirrored schema`);
  if (name !== "id" && m.heldFields !== undefined && !m.heldFields.has(name)) {
    throw new CannotAnswer("field_not_held", `${m.type}.${name} (in ${path}) is not held by every mirrored record`);
  }
  checkKnown(m, name);
  return field;
}

/**
 * Resolve `path` from `type` against the mirror; throws CannotAnswer for anything it cannot read
 * exactly. `ev` (the evaluation's) hears of a record whose dotted path stops at an empty link
 * when the last field's own empty value is not null (a checkbox's false, a multi-entity's []):
 * what the site shows through a missing link there is not known.
 */
export function compilePath(mirror: Mirror, type: string, path: string, ev?: { unsure: string | undefined }): CompiledPath {
  const steps = path.split(".");
  if (steps.length % 2 === 0) throw new CannotAnswer("path_not_mirrored", `${path} is not a field path`);
  const hops: Array<{ field: string; type: TypeMirror }> = [];
  const types = [type];
  let current = readyType(mirror, type);
  for (let i = 0; i + 1 < steps.length; i += 2) {
    const link = heldField(current, steps[i]!, path);
    const next = steps[i + 1]!;
    if (link.dataType !== "entity")
      throw new CannotAnswer("path_not_mirrored", `${path} goes through ${current.type}.${link.name}, which is not a single-entity link`);
    if (!mirror.isMirrored(next)) throw new CannotAnswer("path_not_mirrored", `${path} goes through ${next}, which is not mirrored`);
    hops.push({ field: link.name, type: readyType(mirror, next) });
    types.push(next);
    current = hops[hops.length - 1]!.type;
  }
  const last = steps[steps.length - 1]!;
  const field = heldField(current, last, path);
  const empty = emptyValue(field.dataType);
  const readLast = (r: Entity): FieldValue => (last === "id" ? r.id : (r.fields[last] ?? empty));
  if (hops.length === 0) return { path, field, types, read: readLast };
  const throughNothing = (): FieldValue => {
    if (empty !== null && ev) ev.unsure ??= `${path}: a record with no link to read ${field.dataType} field ${last} through`;
    return empty;
  };
  const read = (record: Entity): FieldValue => {
    let r: Entity | undefined = record;
    for (const hop of hops) {
      const v: FieldValue | undefined = r.fields[hop.field];
      if (!isLink(v) || v.type !== hop.type.type) return throughNothing();
      r = hop.type.records.get(v.id);
      if (!r) return throughNothing();
    }
    return readLast(r);
  };
  return { path, field, types, read };
}
