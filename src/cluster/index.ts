/** Everything that exists only when several instances share Redis (`serve --redis`): the store, its near cache and coalescer, the leader lease, and the shared cursor and change stream. */
export { RedisStore, siteKey, type RedisStoreOptions } from "./redis-store.ts";
export { RedisConnection, type RedisConnectionOptions, type RedisConnectionEvent } from "./redis-connection.ts";
export { NearCache, type NearCacheOptions, type InvalidationMessage } from "./near-cache.ts";
export { RedisCoalescer, type RedisCoalescerOptions } from "./redis-coalescer.ts";
export { openSharedStore, redisLocation, type SharedStore, type SharedStoreConfig, type SharedStoreStatus } from "./shared-store.ts";
export { FencedOutError, LeaderLease, LeaderTerm, type LeaderLeaseOptions, type LeaseCounters } from "./leader-lease.ts";
export {
  ClusterFollow,
  applyEntryToCache,
  guardedSink,
  followKeyBase,
  type ClusterFollowOptions,
  type ClusterStatus,
  type TermFollowerSetup,
} from "./cluster-follow.ts";
export { ChangeLogTail, type ChangeLogTailOptions, type ChangeLogTailStatus } from "./change-log-tail.ts";
export { RedisChangeLog, type RedisChangeLogOptions, type LogEntry } from "./redis-change-log.ts";
export { RedisCursorStore, type RedisCursorStoreOptions } from "./redis-cursor-store.ts";
