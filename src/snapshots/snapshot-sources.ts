/**
 * Where a snapshot's records come from. The service reads its own cache: preloaded types are
 * held whole and kept current by the event log, so a snapshot costs the site nothing but the few
 * records not held at that moment. `shotgrid-cache export` reads the site itself.
 */
import type { ReadThroughCache } from "../cache/index.ts";
import type { Backend, Entity } from "../shotgrid/types.ts";

export interface SnapshotSource {
  /** The site URL written into each file. */
  readonly site: string;
  /** The last event id applied: every record read after this call reflects at least this event. */
  eventId(signal?: AbortSignal): Promise<number>;
  /** Every active record of `type` with every field; undefined when the type cannot be read whole now. */
  records(type: string, signal?: AbortSignal): Promise<Entity[] | undefined>;
}

/** Held records looked up at a time (one store round trip each with Redis). */
const LOOKUP_BATCH = 200;
/** Records not held, asked of the site at a time. */
const FETCH_BATCH = 100;

/** The service's cache: its preloaded types, read from the store, the site asked only for what is not held. */
export function cacheSnapshotSource(cache: ReadThroughCache, site: string): SnapshotSource {
  return {
    site,
    eventId: async () => cache.lastAppliedEventId,
    async records(type, signal) {
      const ids = cache.idsHeldWhole(type);
      if (!ids) return undefined;
      const records: Entity[] = [];
      const missing: number[] = [];
      for (let i = 0; i < ids.length; i += LOOKUP_BATCH) {
        signal?.throwIfAborted();
        const chunk = ids.slice(i, i + LOOKUP_BATCH);
        const held = await Promise.all(chunk.map((id) => cache.heldRecord(type, id)));
        held.forEach((record, j) => {
          if (record) records.push(record);
          // undefined: not held now (evicted, or being refreshed after an event); null: known gone.
          else if (record === undefined) missing.push(chunk[j]!);
        });
      }
      for (let i = 0; i < missing.length; i += FETCH_BATCH) {
        const chunk = missing.slice(i, i + FETCH_BATCH);
        records.push(...(await cache.backend.search(type, { filters: [["id", "in", chunk]], fields: [], includeArchivedProjects: true, signal })));
      }
      // A flush meanwhile (the event cursor was lost): what was read is not known to be whole.
      return cache.idsHeldWhole(type) ? records : undefined;
    },
  };
}

/** A ShotGrid site read directly (every page of each type, every field): for `shotgrid-cache export`. */
export function siteSnapshotSource(backend: Backend, site: string): SnapshotSource {
  return {
    site,
    eventId: (signal) => backend.latestEventId(signal),
    async records(type, signal) {
      const records: Entity[] = [];
      for await (const page of backend.searchPages(type, { fields: [], includeArchivedProjects: true, pageSize: 500, signal })) records.push(...page);
      return records;
    },
  };
}
