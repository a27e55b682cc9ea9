/**
 * Where cached answers live. The read-through cache owns the logic (keys, dependencies,
 * coalescing); a store owns bytes, eviction and invalidation generations. The memory store is the
 * embedded default; a Redis store can implement the same contract (every method is async so it can).
 *
 * Invalidation uses one logical clock per store: `bump(tags)` advances it and records, per tag,
 * the clock value of its last bump. An entry remembers the clock value taken *before* its fetch
 * began (`seq`); it is valid only while none of its tags was bumped after that. The same test, done
 * atomically inside `setIfFresh`, is what stops a fetch that began before an invalidation from
 * filling the cache after it (design invariant 2) — even for tags only known once the answer
 * arrived (the links inside it).
 */
import { CacheErrorCode } from "./errors.ts";
import type { RawEntry } from "./memory-store.ts";

/** One cached answer and what it depends on. Values are JSON-like and never mutated once stored. */
export interface StoredEntry {
  value: unknown;
  /** Clock reading (`currentSeq`) taken before the fetch that produced `value` began. */
  seq: number;
  /** Wall-clock ms when that fetch began: the basis of `ageMs` and of the max-age check. */
  fetchedAt: number;
  /** The newest applied event id when that fetch began. */
  asOfEventId: number;
  /** Invalidation tags: bumping any of them drops the entry. */
  tags: string[];
  /**
   * Links (`Type:id`) whose display name appears in `value` and can be patched in place by
   * `patchLinkName` instead of dropping the entry (entity records only).
   */
  links?: string[];
}

export interface CacheStoreStats {
  /** Estimated bytes of every stored entry (value, key, bookkeeping). */
  bytes: number;
  entries: number;
}

export interface CacheStore {
  /** A valid entry (never one whose tags were bumped after it was fetched), marked recently used. */
  get(key: string): Promise<StoredEntry | undefined>;
  /**
   * Store `entry` unless one of its tags or `guardTags` was bumped after `entry.seq`, a newer
   * entry already holds the key, or it cannot fit. The check and the write are one atomic step.
   * @returns whether it was stored.
   */
  setIfFresh(key: string, entry: StoredEntry, guardTags?: readonly string[]): Promise<boolean>;
  delete(key: string): Promise<void>;
  /** The clock's current value; take it before a fetch. */
  currentSeq(): Promise<number>;
  /** Advance the clock, mark `tags` as bumped now and drop every entry depending on one of them. */
  bump(tags: readonly string[]): Promise<number>;
  /**
   * A linked entity's display name changed: rewrite `name` in every stored link to `link`
   * (`Type:id`) inside patchable entries. `name` undefined (unknown new name) drops them instead.
   * @returns how many entries were patched or dropped.
   */
  patchLinkName(link: string, name: string | null | undefined): Promise<number>;
  /** Drop everything (tags stay bumped: nothing fetched before a clear may fill after it). */
  clear(): Promise<void>;
  stats(): CacheStoreStats;
  /**
   * For a store that holds hot entries in process but may serve one only after a round trip
   * (Redis's near cache): undefined at once when `key` has no such copy (use `get`), else the
   * copy's stored text once it is known current as of a moment after this call (undefined if
   * it is not). The server's hit path uses it; the memory store answers synchronously instead.
   */
  peekRawCurrent?(key: string): Promise<Readonly<RawEntry> | undefined> | undefined;
  /**
   * False while the store knows it cannot answer (its server is unreachable): the cache then goes
   * straight to the Backend without trying it. Absent means always healthy (the memory store).
   */
  readonly healthy?: boolean;
}

/**
 * A store backed by a server (Redis) could not be reached or did not answer in time. The cache
 * answers such reads from the Backend instead (marked source "shotgrid") and fills nothing.
 * Messages never carry connection URLs or passwords.
 */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
  readonly code = CacheErrorCode.storeUnavailable;
  constructor(
    /** The store operation that failed (`get`, `setIfFresh`, `bump`, …). */
    readonly operation: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cache store unavailable during ${operation}: ${reason}`, options);
  }
}
