export type { CacheAnswer, EntityCache, EntityQuery, Freshness } from "./types.ts";
export type { CacheStore, CacheStoreStats, StoredEntry } from "./cache-store.ts";
export { MemoryStore, estimateEntryBytes, type MemoryStoreOptions } from "./memory-store.ts";
export { ReadThroughCache, MemoryEntityCache, DEFAULT_PRELOAD_TYPES, type ReadThroughCacheOptions } from "./read-through-cache.ts";
export { NOOP_CACHE_METRICS, SILENT_LOGGER, type CacheLogger, type CacheMetrics, type CacheReadKind, type UpstreamOutcome } from "./observability.ts";
export { InvalidCacheRequestError } from "./errors.ts";
export { DEFAULT_FIELDS, displayNameField } from "./entity-fields.ts";
export { canonicalQuery, queryKey, canonicalJson, type CanonicalQuery } from "./query-key.ts";
export { eventEffects, projectScope, type EventEffects } from "./dependencies.ts";
