/**
 * Schema changes in the event log: a field created, changed (renamed: ShotGrid renames only the
 * display name, `attribute_name: "human_name"`; or its properties), deleted (retired to the trash)
 * or restored. ShotGrid logs them as `Shotgun_DisplayColumn_New|Change|Retirement|Revival` on the
 * DisplayColumn entity that describes the field:
 * - `entity` is `{type: "DisplayColumn", id, name: <the field's API name>}`;
 * - `meta.entity_type` is "DisplayColumn" (the row's own entity, like every other event), with
 *   `meta.display_name` the field's display name;
 * - the entity type the field belongs to is NOT in the row: it is the DisplayColumn's own
 *   `entity_type` field, which the REST API does not serve.
 * So the owner is found from what the service already holds: for a change or a deletion, the
 * cached field lists that contain the field; for a new or restored field, any cached list may be
 * the one missing it, so all are refreshed (they are fetched again lazily, one type at a time).
 * Should a row carry the owner (a `meta.entity_type` other than DisplayColumn), only it is touched.
 */
import type { EventLogEntry } from "../shotgrid/types.ts";

export type SchemaChangeKind = "New" | "Change" | "Retirement" | "Revival";

export interface SchemaChange {
  kind: SchemaChangeKind;
  /** The field's API name (`sg_notes`), when the row names it. */
  field: string | undefined;
  /** The entity type the field belongs to, when the row says (ShotGrid's usually do not). */
  entityType: string | undefined;
  /** For a Change: what changed (`human_name` for a rename, `properties`, …). */
  attribute: string | null;
}

const SCHEMA_EVENT = /^Shotgun_DisplayColumn_(New|Change|Retirement|Revival)$/;

/** The schema change a row describes, or null when it is not a schema event. */
export function schemaChangeOf(event: EventLogEntry): SchemaChange | null {
  const m = SCHEMA_EVENT.exec(event.event_type);
  if (!m) return null;
  const meta = event.meta ?? {};
  const name = event.entity?.type === "DisplayColumn" ? event.entity.name : undefined;
  const owner = meta["entity_type"];
  return {
    kind: m[1] as SchemaChangeKind,
    field: typeof name === "string" && name !== "" ? name : undefined,
    entityType: typeof owner === "string" && owner !== "DisplayColumn" && owner !== "" ? owner : undefined,
    attribute: event.attribute_name ?? null,
  };
}

/** What a schema change refreshes: the SchemaRegistry satisfies `schema`, the cache `cache`. */
export interface SchemaChangeTargets {
  schema: {
    /** Types whose field lists are held. */
    cachedTypes(): string[];
    /** The held field list of a type (no fetch for a held type). */
    fieldsOf(entityType: string): Promise<Record<string, unknown>>;
    /** Forget one type's fields (and the type list), or everything. */
    invalidate(entityType?: string): void;
  };
  /** Drops every cached answer about a type (a preloaded type is reloaded). */
  cache?: { invalidateType(entityType: string): Promise<void> };
  logger?: { info(obj: Record<string, unknown>, msg: string): void };
}

/** Apply the schema events among `events`; returns how many there were. Idempotent. */
export async function applySchemaChanges(events: readonly EventLogEntry[], targets: SchemaChangeTargets): Promise<number> {
  let count = 0;
  for (const event of events) {
    const change = schemaChangeOf(event);
    if (!change) continue;
    count++;
    const owners = await ownersOf(change, targets.schema);
    if (owners === "all") targets.schema.invalidate();
    else for (const t of owners) targets.schema.invalidate(t);
    // A deleted field: answers holding it (records fetched with every field, queries naming it)
    // must go. New, restored or renamed fields change no stored value.
    const dropped = change.kind === "Retirement" && owners !== "all" && targets.cache ? owners : [];
    for (const t of dropped) await targets.cache!.invalidateType(t);
    targets.logger?.info(
      { eventId: event.id, kind: change.kind, field: change.field, owners, droppedTypes: dropped },
      "schema change: validation schema refreshed",
    );
  }
  return count;
}

async function ownersOf(change: SchemaChange, schema: SchemaChangeTargets["schema"]): Promise<string[] | "all"> {
  if (change.entityType) return [change.entityType];
  if (!change.field || change.kind === "New" || change.kind === "Revival") return "all";
  const owners: string[] = [];
  for (const type of schema.cachedTypes()) {
    const fields = await settledOrPending(schema.fieldsOf(type));
    // A list still being fetched may predate the change: refresh it too.
    if (fields === "pending" || (fields && Object.hasOwn(fields, change.field))) owners.push(type);
  }
  return owners;
}

/** The value if `p` has already settled (undefined if it failed), else "pending". */
async function settledOrPending<T>(p: Promise<T>): Promise<T | undefined | "pending"> {
  const pending = Symbol("pending");
  const result = await Promise.race([
    p.then(
      (v) => v,
      () => undefined,
    ),
    Promise.resolve().then(() => pending),
  ]);
  return result === pending ? "pending" : (result as T | undefined);
}
