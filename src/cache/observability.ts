/**
 * What the cache reports, as small interfaces: the server's prom-client metrics and its pino logger
 * satisfy them; tests and library users get silent defaults.
 */

/** Which kind of read an observation is about. */
export type CacheReadKind = "entity" | "query";

/** How one upstream call ended. */
export type UpstreamOutcome = "ok" | "error" | "timeout";

/** Shaped so the server's prom-client `Metrics` class satisfies it as is. */
export interface CacheMetrics {
  /** Answered from a valid cached entry (including "does not exist" known from a preloaded type). */
  cacheHit(kind: CacheReadKind): void;
  /** Not answered from the cache: fetched upstream, or joined an identical fetch in flight. */
  cacheMiss(kind: CacheReadKind): void;
  /** A miss that joined an identical fetch in flight instead of calling upstream. */
  coalescedWait(): void;
  /** One Backend call made by the cache: `operation` is the Backend method. */
  upstreamCall(operation: string, outcome: UpstreamOutcome, seconds: number): void;
  /** Current size of the store (a gauge pair), pushed after changes. */
  setCacheSize(size: { bytes: number; entries: number }): void;
  /** Served a cached entry marked stale because the Backend was unavailable. */
  cacheStaleServed?(kind: CacheReadKind): void;
  /** A store operation failed because the store (Redis) was unreachable; the read went to the Backend. */
  storeUnavailable?(operation: string): void;
  /**
   * Where a Query was answered: "local" from the mirror of the preloaded types (reason "none"),
   * or "upstream" (from a cached answer or ShotGrid) with the code of why the mirror could not
   * answer exactly (src/local-query/cannot-answer.ts).
   */
  queryAnswered?(where: "local" | "upstream", reason: string): void;
  /**
   * Mirrored records brought up to date: "event" from a Change event's own meta, "refetch" by
   * fetching them again (after events the meta could not settle, or to learn the write stamps of
   * records updated from events).
   */
  mirrorUpdated?(source: "event" | "refetch", records: number): void;
}

export const NOOP_CACHE_METRICS: CacheMetrics = {
  cacheHit() {},
  cacheMiss() {},
  coalescedWait() {},
  upstreamCall() {},
  setCacheSize() {},
};
