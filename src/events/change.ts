/**
 * A change to one entity, as WatchChanges streams show it, derived from one EventLogEntry row.
 * Only entity lifecycle events (`Shotgun_<Type>_New|Change|Retirement|Revival`) are changes;
 * the log also holds logins, attachment views and the like, which change no record.
 */
import type { EventLogEntry } from "../shotgrid/types.ts";

export type ChangeKind = "new" | "change" | "retirement" | "revival";

/** Who made a change (a HumanUser, ApiUser…), as ShotGrid links it. */
export interface ChangeUser {
  type: string;
  id: number;
  name: string | null;
}

export interface Change {
  /** The EventLogEntry id. */
  eventId: number;
  /** ShotGrid's event type, e.g. "Shotgun_Shot_Change". */
  eventType: string;
  kind: ChangeKind;
  entityType: string;
  entityId: number;
  /** 0 when the entity belongs to no project. */
  projectId: number;
  /** The changed field for kind "change"; null otherwise (or when ShotGrid names none). */
  attributeName: string | null;
  /** ISO 8601 UTC, as ShotGrid logged it. */
  createdAt: string;
  user: ChangeUser | null;
}

const KIND_BY_SUFFIX: Readonly<Record<string, ChangeKind>> = {
  New: "new",
  Change: "change",
  Retirement: "retirement",
  Revival: "revival",
};

// ShotGrid API names are identifiers; custom types keep digits (CustomEntity01, CustomNonProjectEntity05).
const ENTITY_TYPE = /^[A-Za-z][A-Za-z0-9_]*$/;

/**
 * Split an event type into entity type and kind: the entity type lies between `Shotgun_` and the
 * last `_`, so `Shotgun_CustomEntity01_Change` → CustomEntity01 / change. Null for any event type
 * that is not an entity lifecycle event (`Shotgun_User_Login`, `Shotgun_Attachment_View`…).
 */
export function parseEventType(eventType: string): { entityType: string; kind: ChangeKind } | null {
  if (!eventType.startsWith("Shotgun_")) return null;
  const last = eventType.lastIndexOf("_");
  if (last <= "Shotgun".length) return null;
  const kind = KIND_BY_SUFFIX[eventType.slice(last + 1)];
  const entityType = eventType.slice("Shotgun_".length, last);
  if (!kind || !ENTITY_TYPE.test(entityType)) return null;
  return { entityType, kind };
}

function positiveInt(value: unknown): number | null {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? value : null;
}

/**
 * The change an event log row describes, or null when the row is not an entity change or does
 * not say which record changed. Pure: the same row always gives the same change.
 */
export function changeFromEvent(entry: EventLogEntry): Change | null {
  const parsed = parseEventType(entry.event_type);
  if (!parsed) return null;
  // Retirement rows often carry no `entity` link (the record is gone from normal reads), but
  // their meta still names it; prefer the link, fall back to meta.
  const meta = entry.meta ?? {};
  const entityId = entry.entity?.type === parsed.entityType ? positiveInt(entry.entity.id) : positiveInt(meta["entity_id"]);
  if (entityId === null) return null;
  return {
    eventId: entry.id,
    eventType: entry.event_type,
    kind: parsed.kind,
    entityType: parsed.entityType,
    entityId,
    projectId: positiveInt(entry.project?.id) ?? 0,
    attributeName: entry.attribute_name ?? null,
    createdAt: entry.created_at,
    user: entry.user ? { type: entry.user.type, id: entry.user.id, name: entry.user.name ?? null } : null,
  };
}
