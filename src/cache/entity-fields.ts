/**
 * Field conventions the cache needs: which field is a type's display name (the `name` inside links
 * to it) and which fields an empty field list means.
 */
import type { Entity, FieldValue } from "../shotgrid/types.ts";

/** Display-name field of the standard types whose name field is not `code`. */
const DISPLAY_NAME_FIELD: Record<string, string> = {
  Project: "name",
  HumanUser: "name",
  Department: "name",
  Status: "name",
  Tag: "name",
  Task: "content",
  Reply: "content",
  Note: "subject",
  Ticket: "title",
  Delivery: "title",
  EventLogEntry: "description",
  TimeLog: "description",
  Attachment: "this_file",
};

/** Types whose display name is `code` (the ShotGrid default, and every CustomEntity). */
const CODE_NAMED =
  /^(Sequence|Shot|Asset|Step|Version|PublishedFile|Playlist|Episode|Scene|Group|Camera|CustomEntity\d+|CustomNonProjectEntity\d+|CustomThreadedEntity\d+)$/;

/** Fields that can hold a display name on types the cache does not know. */
const NAME_LIKE_FIELDS = new Set(["code", "name", "content", "subject", "title", "description", "firstname", "lastname"]);

/** Fields whose change alters a known type's display name without being it (HumanUser.name is derived). */
const DERIVED_NAME_SOURCES: Record<string, string[]> = {
  HumanUser: ["firstname", "lastname"],
  ApiUser: ["firstname", "lastname"],
};

export function displayNameField(entityType: string): string | undefined {
  return DISPLAY_NAME_FIELD[entityType] ?? (CODE_NAMED.test(entityType) ? "code" : undefined);
}

/**
 * Whether a Change of `attribute` on `entityType` renames it, and to what. `name` is undefined
 * when the new name is not known for sure (derived fields, unknown types, no `new_value` in meta):
 * then the records showing the old name are dropped rather than patched.
 */
export function displayNameChange(entityType: string, attribute: string, meta: Record<string, unknown>): { name: string | null | undefined } | undefined {
  const field = displayNameField(entityType);
  if (field === attribute) {
    const v = meta.new_value;
    return { name: typeof v === "string" || v === null ? v : undefined };
  }
  if (DERIVED_NAME_SOURCES[entityType]?.includes(attribute)) return { name: undefined };
  if (field === undefined && NAME_LIKE_FIELDS.has(attribute)) return { name: undefined };
  return undefined;
}

/**
 * ShotGrid's "smart" cut fields are computed by the site from the cut, head and tail fields (and
 * from each other) in the same write, with no event of their own.
 */
const SMART_CUT_SOURCE = /^(smart_)?(cut|head|tail|working)_/;

/**
 * Whether a Change of `attribute` on `entityType` may also change other fields of the record that
 * no event reports (its display name feeds `cached_display_name` and every link's name; cut
 * fields feed the smart cut fields): such a change is refetched, never applied from its meta.
 */
export function changesOtherFields(entityType: string, attribute: string): boolean {
  if (displayNameField(entityType) === attribute || DERIVED_NAME_SOURCES[entityType]?.includes(attribute)) return true;
  if (displayNameField(entityType) === undefined && NAME_LIKE_FIELDS.has(attribute)) return true;
  return SMART_CUT_SOURCE.test(attribute);
}

/**
 * The fields an empty field list means, for every type: these, where the type has them. Kept small
 * on purpose: enough to show and find a record; ask for more by name.
 */
export const DEFAULT_FIELDS = ["code", "name", "content", "subject", "title", "description", "project", "sg_status_list", "created_at", "updated_at"] as const;

/** `record` with only `fields` (all of which it must hold); an empty list means DEFAULT_FIELDS it has. */
export function projectRecord(record: Entity, fields: readonly string[]): Entity {
  const wanted = fields.length === 0 ? DEFAULT_FIELDS.filter((f) => f in record.fields) : fields;
  const out: Record<string, FieldValue> = {};
  for (const f of wanted) if (f in record.fields) out[f] = record.fields[f]!;
  return { type: record.type, id: record.id, fields: out };
}

/** Whether a stored full record can answer a request for `fields` (plain fields it holds). */
export function recordAnswers(record: Entity, fields: readonly string[]): boolean {
  return fields.every((f) => f in record.fields || f === "id" || f === "type");
}
