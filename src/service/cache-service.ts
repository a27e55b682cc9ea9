/**
 * The CacheService handlers: validate, ask the cache, translate the answer. Nothing more: the
 * cache decides hits and misses, the change feed decides what a stream receives.
 */
import { create } from "@bufbuild/protobuf";
import type { JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { type CacheService, EntitySchema, FreshnessSchema, GetEntityResponseSchema, QueryResponseSchema } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import { servedFreshness, type EntityCache, type EntityQuery, type Freshness } from "../cache/types.ts";
import type { Entity } from "../shotgrid/types.ts";
import { toConnectError } from "./error-mapping.ts";
import {
  entityProjectId,
  needsProjectField,
  queryPaths,
  readConstraint,
  requireNoLinkedPaths,
  requireReadEntity,
  scopeQueryFilters,
} from "../auth/read-scope.ts";
import { callerOf } from "../auth/rpc-auth.ts";
import type { Caller } from "../auth/caller.ts";
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
  /** Create, Update, Delete, Revive and Batch (write-handlers.ts); without them those answer `unimplemented`. */
  writeHandlers?: Partial<ServiceImpl<typeof CacheService>>;
}

/**
 * How the CacheService is registered on the router. JSON clients parse answers by hand: an empty
 * result must still be `"entities":[]` and `stale` must be there when false, so every implicit
 * field is written out. They also write requests by hand: a misspelled key ("feilds") is an
 * error, not silently ignored.
 */
export const CACHE_SERVICE_OPTIONS = { jsonOptions: { alwaysEmitImplicit: true, ignoreUnknownFields: false } } as const;

export function createCacheService(opts: CacheServiceOptions): Partial<ServiceImpl<typeof CacheService>> {
  const { cache, schema, limits } = opts;
  const freshness = (f: Freshness) => toFreshness(servedFreshness(f, opts.siteUnreachable?.()));
  const impl: Partial<ServiceImpl<typeof CacheService>> = {
    async getEntity(req, ctx) {
      try {
        const caller = callerOf(ctx);
        const { entityType, id, fields } = await validateGetEntity(req, schema, limits, ctx.signal);
        requireNoLinkedPaths(
          caller,
          fields.map((path, i) => ({ path, where: `fields[${i}]` })),
        );
        // The caller's read limits (auth/read-scope.ts): a type it may not read is refused before
        // any fetch; a project limit is checked on the record, which then needs its `project`.
        const projectField = await hasProjectField(schema, entityType, ctx.signal);
        readConstraint(caller, entityType, projectField);
        const addProject = fields.length > 0 && !fields.includes("project") && needsProjectField(caller, entityType) && projectField;
        const answer = await cache.getEntity(entityType, id, addProject ? [...fields, "project"] : fields, ctx.signal);
        if (answer.value === null) throw new ConnectError(`${entityType} ${id} not found`, Code.NotFound);
        requireReadEntity(caller, entityType, entityProjectId(answer.value));
        const entity = addProject ? withoutField(answer.value, "project") : answer.value;
        return create(GetEntityResponseSchema, { entity: toEntityMessage(entity), freshness: freshness(answer.freshness) });
      } catch (err) {
        throw toConnectError(err);
      }
    },

    async query(req, ctx) {
      try {
        const caller = callerOf(ctx);
        const valid = await validateQuery(req, schema, limits, ctx.signal);
        const query = await scopedQuery(caller, valid, schema, ctx.signal);
        const answer = await cache.query(query, ctx.signal);
        return create(QueryResponseSchema, { entities: answer.value.map(toEntityMessage), freshness: freshness(answer.freshness) });
      } catch (err) {
        throw toConnectError(err);
      }
    },

    watchChanges: createWatchChanges({ feed: opts.feed, schema, heartbeatS: opts.heartbeatS, shutdownSignal: opts.shutdownSignal }),
    ...opts.writeHandlers,
  };
  return impl;
}

/**
 * `query` as `caller` may ask it: its read limits ANDed into the filters (auth/read-scope.ts),
 * so they are part of the cache key and an answer cached for a caller without limits is never
 * served to one with them. Throws permission_denied when it may read nothing of the type. The
 * one home of this step: the handler and the hit path both call it.
 */
export async function scopedQuery(caller: Caller, query: EntityQuery, schema: SchemaRegistry, signal?: AbortSignal): Promise<EntityQuery> {
  if (caller.projectIds === null && caller.entityTypes === null) return query;
  requireNoLinkedPaths(caller, queryPaths(query));
  const projectField = await hasProjectField(schema, query.entityType, signal);
  return { ...query, filters: scopeQueryFilters(caller, query.entityType, query.filters, projectField) };
}

/** Whether `entityType` has a `project` field on the site (loading its fields when no earlier request has). */
function hasProjectField(schema: SchemaRegistry, entityType: string, signal?: AbortSignal): Promise<boolean> {
  return schema.settle(() => Object.hasOwn(schema.fieldsOfLoaded(entityType), "project"), signal);
}

function withoutField(e: Entity, field: string): Entity {
  const { [field]: _, ...fields } = e.fields;
  return { type: e.type, id: e.id, fields };
}

export function toEntityMessage(e: Entity) {
  return create(EntitySchema, { type: e.type, id: e.id, fields: e.fields as JsonObject });
}

/** The Freshness message of `f`: the one encoding of a freshness, on every path that answers. */
export function toFreshness(f: Freshness) {
  return create(FreshnessSchema, { source: f.source, ageMs: BigInt(Math.max(0, Math.round(f.ageMs))), asOfEventId: BigInt(f.asOfEventId), stale: f.stale });
}
