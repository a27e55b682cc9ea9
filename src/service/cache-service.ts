/**
 * The CacheService handlers: validate, ask the cache, translate the answer. Nothing more: the
 * cache decides hits and misses, the change feed decides what a stream receives.
 */
import { create } from "@bufbuild/protobuf";
import type { JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { type CacheService, EntitySchema, FreshnessSchema, GetEntityResponseSchema, QueryResponseSchema } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import { servedFreshness, type EntityCache, type Freshness } from "../cache/types.ts";
import type { Entity } from "../shotgrid/types.ts";
import { toConnectError } from "./error-mapping.ts";
import { validateGetEntity, validateQuery, type RequestLimits } from "./request-validation.ts";
import type { SchemaRegistry } from "./schema-registry.ts";
import type { ChangeFeed } from "./change-feed.ts";
import { createWatchChanges } from "./watch-changes.ts";

export interface CacheServiceOptions {
  cache: EntityCache;
  schema: SchemaRegistry;
  feed: ChangeFeed;
  limits: RequestLimits;
  /** Seconds between heartbeats on a WatchChanges stream. */
  heartbeatS: number;
  /** Aborted when the server shuts down: open streams end cleanly. */
  shutdownSignal?: AbortSignal;
  /**
   * Why ShotGrid cannot be reached right now (the event follower's last poll failed), or
   * undefined when it can. While it cannot, answers served from the cache are marked stale:
   * changes made meanwhile are unknown to the cache.
   */
  siteUnreachable?: () => string | undefined;
}

/**
 * How the CacheService is registered on the router. JSON clients parse answers by hand: an empty
 * result must still be `"entities":[]` and `stale` must be there when false, so every implicit
 * field is written out. They also write requests by hand: a misspelled key ("feilds") is an
 * error, not silently ignored.
 */
export const CACHE_SERVICE_OPTIONS = { jsonOptions: { alwaysEmitImplicit: true, ignoreUnknownFields: false } } as const;

export function createCacheService(opts: CacheServiceOptions): ServiceImpl<typeof CacheService> {
  const { cache, schema, limits } = opts;
  const freshness = (f: Freshness) => toFreshness(servedFreshness(f, opts.siteUnreachable?.()));
  const impl: ServiceImpl<typeof CacheService> = {
    async getEntity(req, ctx) {
      try {
        const { entityType, id, fields } = await validateGetEntity(req, schema, limits, ctx.signal);
        const answer = await cache.getEntity(entityType, id, fields, ctx.signal);
        if (answer.value === null) throw new ConnectError(`${entityType} ${id} not found`, Code.NotFound);
        return create(GetEntityResponseSchema, { entity: toEntityMessage(answer.value), freshness: freshness(answer.freshness) });
      } catch (err) {
        throw toConnectError(err);
      }
    },

    async query(req, ctx) {
      try {
        const query = await validateQuery(req, schema, limits, ctx.signal);
        const answer = await cache.query(query, ctx.signal);
        return create(QueryResponseSchema, { entities: answer.value.map(toEntityMessage), freshness: freshness(answer.freshness) });
      } catch (err) {
        throw toConnectError(err);
      }
    },

    watchChanges: createWatchChanges({ feed: opts.feed, schema, heartbeatS: opts.heartbeatS, shutdownSignal: opts.shutdownSignal }),
  };
  return impl;
}

export function toEntityMessage(e: Entity) {
  return create(EntitySchema, { type: e.type, id: e.id, fields: e.fields as JsonObject });
}

/** The Freshness message of `f`: the one encoding of a freshness, on every path that answers. */
export function toFreshness(f: Freshness) {
  return create(FreshnessSchema, { source: f.source, ageMs: BigInt(Math.max(0, Math.round(f.ageMs))), asOfEventId: BigInt(f.asOfEventId), stale: f.stale });
}
