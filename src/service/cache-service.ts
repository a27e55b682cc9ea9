/**
 * The CacheService handlers: validate, ask the cache, translate the answer. Nothing more: the
 * cache decides hits and misses, the change feed decides what a stream receives.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  CacheService,
  ChangeKind,
  ChangeSchema,
  EntitySchema,
  FreshnessSchema,
  GetEntityResponseSchema,
  QueryResponseSchema,
  WatchChangesResponseSchema,
  type WatchChangesResponse,
} from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import type { EntityCache, Freshness } from "../cache/types.ts";
import type { Entity } from "../shotgrid/types.ts";
import { toConnectError } from "./error-mapping.ts";
import { validateEntityType, validateGetEntity, validateQuery, type RequestLimits } from "./request-validation.ts";
import type { SchemaRegistry } from "./schema-registry.ts";
import type { ChangeFeed, FeedChange } from "./change-feed.ts";

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

const KIND: Record<FeedChange["kind"], ChangeKind> = {
  new: ChangeKind.NEW,
  change: ChangeKind.CHANGE,
  retirement: ChangeKind.RETIREMENT,
  revival: ChangeKind.REVIVAL,
};

export function createCacheService(opts: CacheServiceOptions): ServiceImpl<typeof CacheService> {
  const { cache, schema, limits } = opts;
  const freshness = (f: Freshness) => toFreshness(f.source === "cache" && !f.stale && opts.siteUnreachable?.() !== undefined ? { ...f, stale: true } : f);
  return {
    async getEntity(req, ctx) {
      try {
        const { entityType, id, fields } = await validateGetEntity(req, schema, limits);
        const answer = await cache.getEntity(entityType, id, fields, ctx.signal);
        if (answer.value === null) throw new ConnectError(`${entityType} ${id} not found`, Code.NotFound);
        return create(GetEntityResponseSchema, { entity: toEntityMessage(answer.value), freshness: freshness(answer.freshness) });
      } catch (err) {
        throw toConnectError(err);
      }
    },

    async query(req, ctx) {
      try {
        const query = await validateQuery(req, schema, limits);
        const answer = await cache.query(query, ctx.signal);
        return create(QueryResponseSchema, { entities: answer.value.map(toEntityMessage), freshness: freshness(answer.freshness) });
      } catch (err) {
        throw toConnectError(err);
      }
    },

    async *watchChanges(req, ctx) {
      for (let i = 0; i < req.projectIds.length; i++) {
        if (req.projectIds[i]! <= 0) throw new ConnectError(`projectIds[${i}]: must be a positive project id`, Code.InvalidArgument);
      }
      // A misspelled type would otherwise give a stream that silently never delivers anything.
      try {
        for (let i = 0; i < req.entityTypes.length; i++) await validateEntityType(req.entityTypes[i]!, schema, `entityTypes[${i}]`);
      } catch (err) {
        throw toConnectError(err);
      }
      if (req.sinceEventId < 0n) throw new ConnectError("sinceEventId: must not be negative", Code.InvalidArgument);
      const stop = AbortSignal.any([ctx.signal, ...(opts.shutdownSignal ? [opts.shutdownSignal] : [])]);
      const messages = opts.feed.subscribe({
        entityTypes: req.entityTypes,
        projectIds: req.projectIds,
        sinceEventId: Number(req.sinceEventId),
        signal: stop,
      });
      // The first message goes out at once, so the client knows the stream is open.
      yield heartbeat(opts.feed.lastEventId);
      const it = messages[Symbol.asyncIterator]();
      let pending: Promise<IteratorResult<unknown>> | undefined;
      const stopped = new Promise<"stop">((resolve) => {
        if (stop.aborted) resolve("stop");
        else stop.addEventListener("abort", () => resolve("stop"), { once: true });
      });
      try {
        while (!stop.aborted) {
          pending ??= it.next();
          let timer: NodeJS.Timeout | undefined;
          const tick = new Promise<"tick">((resolve) => {
            timer = setTimeout(() => resolve("tick"), opts.heartbeatS * 1000);
          });
          const winner = await Promise.race([pending, tick, stopped]);
          clearTimeout(timer);
          if (winner === "stop") return;
          if (winner === "tick") {
            yield heartbeat(opts.feed.lastEventId);
            continue;
          }
          pending = undefined;
          const result = winner as IteratorResult<Awaited<ReturnType<typeof it.next>>["value"]>;
          if (result.done) return;
          const msg = result.value;
          if (msg.kind === "resync") {
            yield create(WatchChangesResponseSchema, {
              message: { case: "resync", value: { reason: msg.reason, resumeEventId: BigInt(msg.resumeEventId) } },
            });
            if (msg.closes) return;
            continue;
          }
          yield toChangeMessage(msg.change);
        }
      } finally {
        await it.return?.();
      }
    },
  };
}

function heartbeat(lastEventId: number): WatchChangesResponse {
  return create(WatchChangesResponseSchema, {
    message: { case: "heartbeat", value: { lastEventId: BigInt(lastEventId), time: timestampFromDate(new Date()) } },
  });
}

function toChangeMessage(c: FeedChange): WatchChangesResponse {
  return create(WatchChangesResponseSchema, {
    message: {
      case: "change",
      value: create(ChangeSchema, {
        eventId: BigInt(c.eventId),
        eventType: c.eventType,
        kind: KIND[c.kind],
        entityType: c.entityType,
        entityId: c.entityId,
        projectId: c.projectId,
        attributeName: c.attributeName ?? "",
        createdAt: timestampFromDate(new Date(c.createdAt)),
        user: c.user ? { type: c.user.type, id: c.user.id, name: c.user.name ?? "" } : undefined,
      }),
    },
  });
}

export function toEntityMessage(e: Entity) {
  return create(EntitySchema, { type: e.type, id: e.id, fields: e.fields as JsonObject });
}

export function toFreshness(f: Freshness) {
  return create(FreshnessSchema, { source: f.source, ageMs: BigInt(Math.max(0, Math.round(f.ageMs))), asOfEventId: BigInt(f.asOfEventId), stale: f.stale });
}
