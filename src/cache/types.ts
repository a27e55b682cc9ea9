/**
 * The contract between the cache and its neighbours: the service reads through `EntityCache`,
 * the event follower feeds it through `applyEvents`. Neither knows how entries are stored.
 */
import type { Entity, EventLogEntry, Filters, SortSpec } from "../shotgrid/types.ts";
import type { PreparedQuery } from "./read-through-cache.ts";

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

/**
 * The one home of the "site unreachable, so stale" rule: while ShotGrid cannot be reached (the
 * event follower's last poll failed, `unreachable` is its reason), an answer served from the
 * cache is marked stale: changes made meanwhile are unknown to the cache. Every path that
 * answers (the service's handlers, the server's hit path) applies it through this function.
 */
export function servedFreshness(f: Freshness, unreachable: string | undefined): Freshness {
  return f.source === "cache" && !f.stale && unreachable !== undefined ? { ...f, stale: true } : f;
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

/** What a cache holds for a hit, as stored text (the same text while the entry is unchanged), with its freshness. */
export interface PeekedEntry {
  text: string;
  freshness: Freshness;
}

/**
 * A cache that can tell a hit without waiting (the read-through cache over its memory store):
 * what the server's hit path (service/hit-path.ts) asks. Each peek decides exactly as the
 * asynchronous read would, or answers undefined (then the caller takes the asynchronous read);
 * peeks count nothing, the `count…Hit` methods record a hit once its answer is given.
 */
export interface PeekableEntityCache extends EntityCache {
  /** The held full record of `entityType`/`id` when `getEntity` would answer it from the cache; `fields` validated and canonical. */
  peekEntity(entityType: string, id: number, fields: readonly string[]): PeekedEntry | undefined;
  /**
   * `peekEntity` for a store that must first make a round trip (Redis's near cache): undefined
   * at once when the hit cannot be decided that way (then `getEntity`), else the peeked entry, or
   * undefined, once it is known current as of a moment after this call.
   */
  peekEntityCurrent?(entityType: string, id: number, fields: readonly string[]): Promise<PeekedEntry | undefined> | undefined;
  /** The record `peekEntity` gave as `text`, or undefined when it lacks one of `fields` (`getEntity` would fetch them). */
  heldRecordAnswering(text: string, fields: readonly string[]): Entity | undefined;
  countEntityHit(entityType: string): void;
  /** The canonical form, key and dependencies of a validated query, made once per distinct request. */
  prepareQuery(query: EntityQuery): PreparedQuery;
  /** The stored answer of `prepared` when `query` would answer it from the cache. */
  peekQuery(prepared: PreparedQuery): PeekedEntry | undefined;
  /** The entities of a Query answer `peekQuery` gave as `text` (a fresh copy on each call). */
  queryAnswerOf(text: string): Entity[];
  countQueryHit(entityType: string): void;
  /**
   * When `peekQuery` found nothing: the mirror's answer as text, with its freshness (`local`), or
   * a stored answer found meanwhile; undefined when `query` would do anything else. Counts nothing.
   */
  peekLocalAnswer(prepared: PreparedQuery): Promise<{ entry: PeekedEntry; local: boolean } | undefined>;
  /** What `query` records for an answer from the mirror. */
  countLocalAnswer(entityType: string): void;
  /** Whether Queries over the preloaded types may be answered from the mirror at all. */
  readonly answersQueriesLocally: boolean;
}
