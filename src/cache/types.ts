/**
 * The contract between the cache and its neighbours: the service reads through `EntityCache`,
 * the event follower feeds it through `applyEvents`. Neither knows how entries are stored.
 */
import type { Entity, EventLogEntry, Filters, SortSpec } from "../shotgrid/types.ts";

/** How fresh an answer is; every answer carries one (design invariant 5). */
export interface Freshness {
  /** "cache" when answered from a cached entry, "shotgrid" when fetched from the Backend for this call. */
  source: "cache" | "shotgrid";
  /** Milliseconds since the answer's data was fetched from the Backend (0 for a fresh fetch). */
  ageMs: number;
  /** The newest event id the cache had applied when the data was fetched (0 before any). */
  asOfEventId: number;
  /** True only when served from cache because the Backend is unreachable. */
  stale: boolean;
}

export interface CacheAnswer<T> {
  value: T;
  freshness: Freshness;
}

/** A Query request after validation, in canonical form where it matters. */
export interface EntityQuery {
  entityType: string;
  filters: Filters;
  /** Fields to return; empty means the type's default fields. */
  fields: string[];
  order: SortSpec[];
  /** Maximum records; 0 or undefined means no limit beyond the server's page-size cap. */
  limit?: number;
  /** 1-based page of `limit` records; 0 or undefined means page 1. */
  page?: number;
  includeArchivedProjects: boolean;
  /** Return retired records instead of active ones. */
  retired: boolean;
}

export interface EntityCache {
  /** One record; `value` is null when it does not exist upstream. */
  getEntity(entityType: string, id: number, fields: string[], signal?: AbortSignal): Promise<CacheAnswer<Entity | null>>;
  query(query: EntityQuery, signal?: AbortSignal): Promise<CacheAnswer<Entity[]>>;
  /** Apply event log rows in id order: invalidate (or refresh) exactly what they changed. */
  applyEvents(events: EventLogEntry[]): Promise<void>;
  /** The newest event id applied so far. */
  readonly lastAppliedEventId: number;
}
