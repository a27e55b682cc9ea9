/**
 * The snapshot file: one JSON document per entity type, the contract shared with every reader
 * (the Python client's fallback among them). Its layout is docs/snapshots.md; change both or neither.
 */
import type { Entity, FieldValue } from "../shotgrid/types.ts";

export const SNAPSHOT_FORMAT = "shotgrid-cache-snapshot/1";

/** One record as ShotGrid's JSON shows it: `type`, `id`, then every field of the file's `fields`. */
export type SnapshotRecord = { type: string; id: number } & Record<string, FieldValue>;

export interface SnapshotFile {
  format: typeof SNAPSHOT_FORMAT;
  entityType: string;
  /** The last event applied when the records were read: the file is current to (at least) it. */
  eventId: number;
  /** UTC, `YYYY-MM-DDTHH:MM:SSZ`. */
  writtenAt: string;
  /** The site URL (never a secret: no credentials are ever part of it). */
  site: string;
  /** The fields every record carries besides `type` and `id`, sorted. */
  fields: string[];
  /** Every active record of the type, in id order. */
  entities: SnapshotRecord[];
}

/** ShotGrid's date-time spelling: whole seconds, UTC, `Z`. */
export function snapshotTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * The file for `records` of `entityType`: records in id order, each with every field any of them
 * has (null where it has none), so a reader can rely on `fields`.
 */
export function buildSnapshot(entityType: string, records: readonly Entity[], eventId: number, site: string, writtenAt: Date): SnapshotFile {
  const names = new Set<string>();
  for (const r of records) for (const name of Object.keys(r.fields)) names.add(name);
  names.delete("type");
  names.delete("id");
  const fields = [...names].sort();
  const entities = [...records]
    .sort((a, b) => a.id - b.id)
    .map((r) => {
      const out: SnapshotRecord = { type: r.type, id: r.id };
      for (const f of fields) out[f] = r.fields[f] ?? null;
      return out;
    });
  return { format: SNAPSHOT_FORMAT, entityType, eventId, writtenAt: snapshotTime(writtenAt), site, fields, entities };
}
