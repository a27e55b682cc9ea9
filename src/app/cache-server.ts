/**
 * The one-port server of the `serve` command: the CacheService (with its hit path, for the
 * server's fast path) registered as the service registers it, with the configured limits, logger
 * and default deadline. The composition root (create-app.ts) builds its server here; so do the tests
 * that compare the fast path with the normal handler, so they compare what runs.
 */
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import { CacheService } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import type { PeekableEntityCache } from "../cache/types.ts";
import type { ServeConfig } from "../config.ts";
import { createServer, type Metrics, type Readiness, type Server, type ServerOptions } from "../server/index.ts";
import { CACHE_SERVICE_OPTIONS, createCacheService } from "../service/cache-service.ts";
import type { ChangeFeed } from "../service/change-feed.ts";
import { createHitPath } from "../service/hit-path.ts";
import type { RequestLimits } from "../service/request-validation.ts";
import type { SchemaRegistry } from "../service/schema-registry.ts";
import { VERSION } from "../version.ts";
import { AccessPolicy } from "../auth/access-policy.ts";
import { authorizeRpcs } from "../auth/rpc-auth.ts";
import { createWriteHandlers } from "../service/write-handlers.ts";
import type { WriteThrough } from "../service/write-through.ts";

export interface CacheServerOptions {
  config: Pick<ServeConfig, "maxRequestBytes" | "deadlineMs" | "maxFields" | "maxPageSize" | "heartbeatS" | "tls">;
  mode: "demo" | "site";
  /** Where entries are kept, as the home page (`GET /`) shows it. */
  store?: "memory" | "redis";
  cache: PeekableEntityCache;
  schema: SchemaRegistry;
  feed: ChangeFeed;
  /** The server's logger. */
  logger: Logger;
  metrics: Metrics;
  readiness: () => Readiness;
  /** Why ShotGrid cannot be reached right now, or undefined (see `CacheServiceOptions.siteUnreachable`). */
  siteUnreachable: () => string | undefined;
  extraRoutes?: ServerOptions["extraRoutes"];
  /** The live status page and `/status.json` (src/status); none: both are 404. */
  status?: ServerOptions["status"];
  /** False: every call through the normal handler (the tests' reference). Default true. */
  fastPath?: boolean;
  /** Who may call (`--auth-file`); default open: reads and watches for anyone, no writes. */
  policy?: AccessPolicy;
  /** Where writes go (ShotGrid, then the cache's invalidation); without it writes answer `unimplemented`. */
  writes?: WriteThrough;
}

/** The request limits of every read path (Connect, the fast path, api3), from the configuration. */
export function requestLimitsOf(config: Pick<ServeConfig, "maxFields" | "maxPageSize">): RequestLimits {
  return { maxFields: config.maxFields, maxPageSize: config.maxPageSize, maxConditions: 500 };
}

export function createCacheServer(o: CacheServerOptions): Server {
  const { config, cache, schema } = o;
  const limits = requestLimitsOf(config);
  // While the event log cannot be read, the cache cannot know what changed: say so.
  const siteUnreachable = o.siteUnreachable;
  const policy = o.policy ?? AccessPolicy.open();
  const writeHandlers = o.writes && createWriteHandlers({ writes: o.writes, schema, limits, policy });
  return createServer({
    version: VERSION,
    mode: o.mode,
    store: o.store,
    logger: o.logger,
    metrics: o.metrics,
    readiness: o.readiness,
    tls: config.tls ? { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) } : undefined,
    limits: { readMaxBytes: config.maxRequestBytes, defaultTimeoutMs: config.deadlineMs, maxTimeoutMs: 10 * config.deadlineMs },
    extraRoutes: o.extraRoutes,
    status: o.status,
    // The fast path answers the hits this decides exactly as the handlers below would.
    hitPath: createHitPath({ cache, schema, limits, siteUnreachable }),
    fastPath: o.fastPath,
    // Every RPC is authorized first; the fast path makes the same check for the reads it answers.
    interceptors: [authorizeRpcs(policy)],
    authorizeRead: (authorization) => policy.authorize(authorization, "read"),
    // WatchChanges streams on the server's streaming path, from what the handler below is built from.
    watchStreams: { feed: o.feed, schema, heartbeatS: config.heartbeatS },
    authorizeWatch: (authorization) => policy.authorize(authorization, "watch"),
    routes: (router, ctx) => {
      router.service(
        CacheService,
        createCacheService({
          cache,
          schema,
          feed: o.feed,
          limits,
          heartbeatS: config.heartbeatS,
          shutdownSignal: ctx.drainSignal,
          siteUnreachable,
          writeHandlers,
        }),
        CACHE_SERVICE_OPTIONS,
      );
    },
  });
}
