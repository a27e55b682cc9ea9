/**
 * The composition root: builds the service from a configuration — the Backend (or, with no site
 * configured, the simulated demo site in-process), the cache, the event follower, the change bus
 * and the one-port server — and starts them in the order that loses no event.
 */
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import { CacheService } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { ReadThroughCache } from "./cache/index.ts";
import type { ServeConfig } from "./config.ts";
import { ChangeBus, EventFollower } from "./events/index.ts";
import { createServer, Metrics, type Readiness, type Server } from "./server/index.ts";
import { createCacheService } from "./service/cache-service.ts";
import { SchemaRegistry } from "./service/schema-registry.ts";
import { ShotGridClient } from "./shotgrid/index.ts";
import type { Backend } from "./shotgrid/types.ts";
import { startSimulator, type SimulatorHandle } from "./simulator/index.ts";
import { VERSION } from "./version.ts";

export interface RunningService {
  /** `http://host:port` of the service. */
  readonly url: string;
  readonly port: number;
  /** "demo" (built-in simulated site) or "site". */
  readonly mode: "demo" | "site";
  /** In demo mode: the simulated site (URL, credentials, data). */
  readonly demoSite?: SimulatorHandle & { scriptKey: string };
  readonly cache: ReadThroughCache;
  /** The event follower (undefined until the starting cursor is known). */
  readonly follower: EventFollower | undefined;
  readonly bus: ChangeBus;
  readonly backend: Backend;
  readonly server: Server;
  /** Resolves when preload is done and the follower has polled once. */
  readonly ready: Promise<void>;
  /** Graceful stop: streams end, in-flight calls finish, upstream connections close. */
  close(graceMs?: number): Promise<void>;
}

/** Build and start everything; resolves once the port is listening (readiness follows). */
export async function startService(config: ServeConfig, logger: Logger): Promise<RunningService> {
  let demoSite: RunningService["demoSite"];
  let site = config.site;
  if (!site) {
    const sim = await startSimulator({ port: config.demoSitePort, host: "127.0.0.1", dataset: "demo" });
    const scriptKey = "demo-key";
    demoSite = Object.assign(sim, { scriptKey });
    site = { url: sim.url, scriptName: sim.scriptName, scriptKey };
  }
  const mode = demoSite ? "demo" : "site";

  const metrics = new Metrics();
  const backend = new ShotGridClient({
    siteUrl: site.url,
    scriptName: site.scriptName,
    scriptKey: site.scriptKey,
    maxConcurrent: config.upstreamConcurrency,
    logger: logger.child({ component: "shotgrid" }),
  });
  const cache = new ReadThroughCache({
    backend,
    preloadTypes: config.preloadTypes,
    maxBytes: config.cacheMaxBytes,
    maxAgeMs: config.maxAgeMs,
    metrics,
    logger: logger.child({ component: "cache" }),
  });
  metrics.observeCacheSize(() => cache.store.stats());
  const bus = new ChangeBus({ replayEvents: config.replayEvents });
  const schema = new SchemaRegistry(backend);
  let follower: EventFollower | undefined;
  const newFollower = (head: number) =>
    new EventFollower({
    backend,
    sink: {
      applyEvents: async (events) => {
        // Schema changes (fields created, renamed, deleted) make the validation schema stale.
        for (const e of events) if (e.event_type.startsWith("Shotgun_DisplayColumn_")) schema.invalidate();
        await cache.applyEvents(events);
      },
    },
    bus,
    pollIntervalMs: config.pollIntervalMs,
    logger: logger.child({ component: "follower" }),
    metrics,
      initialCursor: { lastAppliedId: head, skipped: [] },
    });

  let preloadError: string | undefined;
  const readiness = (): Readiness => {
    const reasons: string[] = [];
    const preload = cache.preloadState;
    if (!preload.ready) reasons.push(preloadError ? `preload failed, retrying: ${preloadError}` : preload.reason);
    if (!follower?.running) reasons.push("event follower not started");
    else if (!follower.ready) reasons.push(follower.lastError ? `event follower cannot read the event log: ${follower.lastError}` : "event follower has not polled yet");
    return { ready: reasons.length === 0, reasons };
  };

  const server = createServer({
    version: VERSION,
    mode,
    logger: logger.child({ component: "server" }),
    metrics,
    readiness,
    tls: config.tls ? { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) } : undefined,
    limits: { readMaxBytes: config.maxRequestBytes, defaultTimeoutMs: config.deadlineMs, maxTimeoutMs: 10 * config.deadlineMs },
    routes: (router, ctx) => {
      router.service(
        CacheService,
        createCacheService({
          cache,
          schema,
          feed: bus,
          limits: { maxFields: config.maxFields, maxPageSize: config.maxPageSize, maxConditions: 500 },
          heartbeatS: config.heartbeatS,
          shutdownSignal: ctx.drainSignal,
        }),
      );
    },
  });
  const bound = await server.listen(config.port, config.host);

  // Order matters: take the event cursor BEFORE preloading, so an event that lands during the
  // preload is applied afterwards instead of being lost between the two.
  const stopping = new AbortController();
  const ready = (async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        const head = await backend.latestEventId(stopping.signal);
        cache.startFrom(head);
        await cache.preload(stopping.signal);
        follower = newFollower(head);
        preloadError = undefined;
        break;
      } catch (err) {
        if (stopping.signal.aborted) throw err;
        preloadError = err instanceof Error ? err.message : String(err);
        logger.warn({ err: preloadError, attempt }, "preload failed; retrying");
        await new Promise((r) => setTimeout(r, Math.min(30_000, 1000 * 2 ** attempt)));
      }
    }
    follower!.start();
    await follower!.whenReady(stopping.signal);
  })();
  ready.catch(() => undefined);

  const hostForUrl = bound.host === "0.0.0.0" || bound.host === "::" ? "127.0.0.1" : bound.host.includes(":") ? `[${bound.host}]` : bound.host;
  return {
    url: `${config.tls ? "https" : "http"}://${hostForUrl}:${bound.port}`,
    port: bound.port,
    mode,
    demoSite,
    cache,
    get follower() {
      return follower;
    },
    bus,
    backend,
    server,
    ready,
    async close(graceMs = 10_000) {
      stopping.abort();
      await server.close(graceMs);
      await follower?.stop();
      await backend.close();
      await demoSite?.close();
    },
  };
}
