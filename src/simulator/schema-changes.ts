/**
 * Schema changes on the simulated site, logged the way a real site logs them: on the
 * DisplayColumn entity that describes the field (`Shotgun_DisplayColumn_New|Change|Retirement`),
 * with `entity` = `{type: "DisplayColumn", id, name: <API name>}` and `meta.entity_type` =
 * "DisplayColumn". The field's owner type is not in the row (on a real site it is the
 * DisplayColumn's own `entity_type` field), so consumers must not rely on it.
 */
import type { Api3Field } from "./schema.ts";
import type { SimStore, WriteContext } from "./store.ts";

export interface NewFieldSpec {
  /** ShotGrid data type: text, number, float, checkbox, entity, multi_entity, status_list, … */
  dataType: string;
  /** Shown name. Default: the API name. */
  displayName?: string;
  /** For entity and multi_entity fields. */
  validTypes?: string[];
  /** For status_list and list fields. */
  validValues?: string[];
}

const FIELD_NAME = /^[a-z][a-z0-9_]*$/;

/** Create `type`.`name` (a site admin adding a field). Returns the event id. */
export function addField(store: SimStore, type: string, name: string, spec: NewFieldSpec, ctx: WriteContext = {}): number {
  if (!FIELD_NAME.test(name)) throw new Error(`addField: "${name}" is not a field API name (lower case, digits, _)`);
  const displayName = spec.displayName ?? name;
  const properties: Record<string, { value: unknown; editable: boolean }> = { default_value: { value: null, editable: false } };
  if (spec.validTypes) properties["valid_types"] = { value: spec.validTypes, editable: true };
  if (spec.validValues) properties["valid_values"] = { value: spec.validValues, editable: true };
  const field: Api3Field = {
    data_type: { value: spec.dataType, editable: false },
    description: { value: "", editable: true },
    editable: { value: true, editable: false },
    entity_type: { value: type, editable: false },
    mandatory: { value: false, editable: false },
    name: { value: displayName, editable: true },
    properties,
    unique: { value: false, editable: false },
  };
  store.schema.addField(type, name, field);
  const column = store.displayColumnId(type, name);
  return columnEvent(store, ctx, column, "New", null, { type: "new_entity", display_name: displayName }, `created field "${displayName}" on ${type}`);
}

/** Rename `type`.`name`: only its display name changes (the API name never does). Returns the event id. */
export function renameField(store: SimStore, type: string, name: string, displayName: string, ctx: WriteContext = {}): number {
  const old = store.schema.setDisplayName(type, name, displayName);
  const column = store.displayColumnId(type, name);
  const meta = {
    type: "attribute_change",
    attribute_name: "human_name",
    field_data_type: "text",
    old_value: old,
    new_value: displayName,
    display_name: displayName,
  };
  return columnEvent(store, ctx, column, "Change", "human_name", meta, `renamed field "${old ?? name}" to "${displayName}" on ${type}`);
}

/** Delete `type`.`name` (to the trash: gone from reads, filters and the schema). Returns the event id. */
export function deleteField(store: SimStore, type: string, name: string, ctx: WriteContext = {}): number {
  const displayName = (store.schema.entityFields(type)?.[name]?.name?.value as string | undefined) ?? name;
  store.schema.removeField(type, name);
  const column = store.displayColumnId(type, name);
  return columnEvent(
    store,
    ctx,
    column,
    "Retirement",
    null,
    { type: "entity_retirement", display_name: displayName },
    `deleted field "${displayName}" on ${type}`,
  );
}

function columnEvent(
  store: SimStore,
  ctx: WriteContext,
  column: number,
  kind: "New" | "Change" | "Retirement",
  attribute: string | null,
  meta: Record<string, unknown>,
  what: string,
): number {
  const who = (ctx.user && store.displayName(ctx.user)) || "Someone";
  return store.appendEvent({
    event_type: `Shotgun_DisplayColumn_${kind}`,
    attribute_name: attribute,
    meta: { ...meta, entity_type: "DisplayColumn", entity_id: column },
    entity: { type: "DisplayColumn", id: column },
    project: null,
    user: ctx.user ?? null,
    session_uuid: ctx.sessionUuid ?? null,
    description: `${who} ${what}`,
  });
}
