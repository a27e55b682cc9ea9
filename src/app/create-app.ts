/**
 * The composition root: builds the service from a configuration — the Backend (or, with no site
 * configured, the simulated demo site in-process), the cache, the event follower, the change bus
 * and the one-port server — and starts them in the order that loses no event.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { ReadThroughCache } from "../cache/index.ts";
import { abortable } from "../cache/single-flight.ts";
import { CacheErrorCode } from "../cache/errors.ts";
import type { ServeConfig } from "../config.ts";
import { ChangeBus, EventFollower, FileCursorStore, loadSavedCursor } from "../events/index.ts";
import { applyEntryToCache, ClusterFollow, guardedSink, type TermFollowerSetup } from "../cluster/cluster-follow.ts";
import { Reconciler } from "../events/reconciler.ts";
import { applySchemaChanges } from "../events/schema-change.ts";
import { WEBHOOK_PATH, WebhookReceiver } from "../events/webhook-receiver.ts";
import { ChangeSourceMetrics } from "../server/change-source-metrics.ts";
import { Metrics, type Readiness, type Server } from "../server/index.ts";
import { createCacheServer, requestLimitsOf } from "./cache-server.ts";
import { createApi3Route, SchemaAnswers, type Api3Route } from "../api3/index.ts";
import { SchemaRegistry } from "../service/schema-registry.ts";
import { openSharedStore, type SharedStore } from "../cluster/shared-store.ts";
import { ShotGridClient } from "../shotgrid/index.ts";
import type { Backend, EventLogEntry } from "../shotgrid/types.ts";
import { startSimulator, type SimulatorHandle } from "../simulator/index.ts";
import { errorMessage } from "../logging/index.ts";
import { statusAccess } from "../auth/status-access.ts";
import { AccessPolicy } from "../auth/access-policy.ts";
import { WriteThrough } from "../service/write-through.ts";
import { StatusSampler } from "../status/index.ts";
import { VERSION } from "../version.ts";
import { cacheSnapshotSource, SnapshotWriter } from "../snapshots/index.ts";

/** ShotGrid's own page size for api3 reads (what sites announce as `api_max_entities_per_page`). */
const API3_MAX_ENTITIES_PER_PAGE = 500;

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
  /** The webhook receiver, when `webhookSecret` is set. */
  readonly webhooks: WebhookReceiver | undefined;
  /** The reconciler, unless `reconcileIntervalS` is 0. */
  readonly reconciler: Reconciler | undefined;
  /** The Redis store and coalescer, with `--redis`; undefined with the memory store. */
  readonly shared: SharedStore | undefined;
  /** The api3 front (`POST /api3/json`): its credential verifier counts round trips. */
  readonly api3: Api3Route;
  /** Who may call: "open" without `--auth-file`, "tokens" with one. */
  readonly policy: AccessPolicy;
  /** Writes through the cache (ShotGrid first, then the invalidation): every write path uses this one. */
  readonly writes: WriteThrough;
  /** The snapshot writer, with `--snapshot-dir` (it writes once ready, on the follower's instance only). */
  readonly snapshots: SnapshotWriter | undefined;
  /** Graceful stop: streams end, in-flight calls finish, upstream connections close. */
  close(graceMs?: number): Promise<void>;
}

/** Build and start everything; resolves once the port is listening (readiness follows). */
export async function startService(config: ServeConfig, logger: Logger): Promise<RunningService> {
  // First: a faulty auth file stops the start before anything listens.
  const policy = await AccessPolicy.load(config.authFile);
  let demoSite: RunningService["demoSite"];
  let site = config.site;
  if (!site) {
    const sim = await startSimulator({ port: config.demoSitePort, host: "127.0.0.1", dataset: "demo" }).catch((err: unknown) => {
      throw new Error(`the demo site cannot listen on 127.0.0.1:${config.demoSitePort} (--demo-site-port): ${describeListenError(err)}`);
    });
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
    maxRetryTimeMs: config.upstreamRetryMs,
    logger: logger.child({ component: "shotgrid" }),
  });
  // --redis: one cache shared by every instance (entries, invalidations, coalesced misses).
  const shared = config.redis ? await openSharedStore(config.redis, site.url, logger.child({ component: "redis" })) : undefined;
  // The site's schema as requests are validated against it; the cache's preload reads the
  // preloaded types' schemas through it, so one fetch serves both (and validation waits for none).
  const schema = new SchemaRegistry(backend, { metrics });
  const cache = new ReadThroughCache({
    backend,
    schemaOf: (entityType, signal) => abortable(schema.fieldsOf(entityType), signal),
    store: shared?.store,
    coalescer: shared?.coalescer,
    preloadTypes: config.preloadTypes,
    maxBytes: config.cacheMaxBytes,
    maxAgeMs: config.maxAgeMs,
    // The built-in simulated site counts days on UTC's calendar; a real site's is its own.
    siteTimeZone: config.siteTimeZone ?? (demoSite ? "UTC" : undefined),
    metrics,
    logger: logger.child({ component: "cache" }),
  });
  metrics.observeCacheSize(() => cache.store.stats());
  metrics.observeStoreHealth(() => cache.storeHealthy);
  const bus = new ChangeBus({
    replayEvents: config.replayEvents,
    onListenerError: (err) => logger.error({ err, component: "change-bus" }, "a change listener failed (the others carry on)"),
  });
  // Schema events (fields created, renamed, deleted) refresh the validation schema of the type
  // concerned and drop cached answers holding a deleted field (events/schema-change.ts).
  const schemaLog = logger.child({ component: "schema" });
  // api3's schema answers are kept until a schema event too.
  const schemaAnswers = new SchemaAnswers({ maxAgeMs: config.maxAgeMs });
  const applySchema = async (events: EventLogEntry[]) => {
    const changes = await applySchemaChanges(events, { schema, cache, logger: schemaLog });
    if (changes > 0) schemaAnswers.drop();
    return changes;
  };
  const sourceMetrics = new ChangeSourceMetrics(metrics.registry);
  // The saved event cursor (--state-dir): a restart resumes exactly where the last run stopped,
  // and streams resuming from it replay what happened since instead of being told to resync.
  // With --redis the cursor is the cluster's, in Redis (cluster/cluster-follow.ts), not a local file.
  const cursorStore = config.stateDir && !config.redis ? new FileCursorStore({ dir: config.stateDir, site: site.url }) : undefined;
  const saved = await loadSavedCursor(cursorStore, logger.child({ component: "follower" }));
  if (saved.state) bus.advance(saved.state.lastAppliedId);
  const stopping = new AbortController();
  /**
   * Load the preloaded types whole (their schemas through the registry) and the site's type list:
   * once done, a request over a preloaded type is validated and answered with no site call.
   * Part of readiness: a failure fails the attempt, which is retried.
   */
  const preloadAll = async (signal: AbortSignal): Promise<void> => {
    await cache.preload(signal);
    await schema.load({ kind: "types" }, signal);
  };
  /** After a flush: load the preloaded types again, retrying until it works or the service stops. */
  const repreload = async (): Promise<void> => {
    for (let attempt = 0; !stopping.signal.aborted; attempt++) {
      try {
        return await preloadAll(stopping.signal);
      } catch (err) {
        if (stopping.signal.aborted) return;
        logger.warn({ err: errorMessage(err), attempt }, "preload after a cache flush failed; retrying");
        // Abortable: close() must not leave a back-off timer holding the process open.
        await sleep(Math.min(30_000, 1000 * 2 ** attempt), undefined, { signal: stopping.signal }).catch(() => undefined);
      }
    }
  };
  // One preload at a time: a second flush waits for the running reload, then loads again.
  let repreloading: Promise<void> = Promise.resolve();
  /** Drop everything (cache, validation schema, api3's schema answers) and load the preloaded types again. */
  const flushAll = async (): Promise<void> => {
    await cache.invalidateAll();
    schema.invalidate();
    schemaAnswers.drop();
    repreloading = repreloading.then(repreload);
  };
  let follower: EventFollower | undefined;
  const newFollower = (head: number, term?: TermFollowerSetup) =>
    new EventFollower({
      backend,
      sink: guardedSink(term, {
        applyEvents: async (events) => {
          await applySchema(events);
          await cache.applyEvents(events);
        },
        // The cursor cannot be trusted (the log was trimmed past it): drop everything, reload preloads.
        reset: flushAll,
      }),
      bus: term?.bus ?? bus,
      pollIntervalMs: config.pollIntervalMs,
      logger: logger.child({ component: "follower" }),
      metrics,
      initialCursor: term?.initialCursor ?? saved.state ?? { lastAppliedId: head, skipped: [] },
      store: term?.store ?? cursorStore,
      gapWindowMs: config.gapWindowMs,
    });

  // --redis: one follower per cluster, run by the holder of a lease; every instance tails the
  // shared change log into its bus (docs/cluster.md). `clusterHead` (taken before the preload)
  // is where a first leader starts when Redis holds no cursor.
  let clusterHead = 0;
  const cluster = config.redis
    ? new ClusterFollow({
        redisUrl: config.redis.url,
        prefix: config.redis.prefix,
        site: site.url,
        bus,
        replayEvents: config.replayEvents,
        leaseTtlMs: config.leaderLeaseMs,
        createFollower: (term) => newFollower(term.initialCursor.lastAppliedId, term),
        onFollowerChange: (f) => (follower = f),
        fallbackCursor: () => ({ lastAppliedId: clusterHead, skipped: [] }),
        onCursorLost: flushAll,
        onEntry: (entry, leader) => applyEntryToCache(cache, entry, leader, logger),
        registry: metrics.registry,
        logger: logger.child({ component: "cluster" }),
      })
    : undefined;

  // Webhook deliveries are hints: invalidate at once and make the follower poll now. They never
  // move the cursor nor publish to streams; the event log does both when the rows arrive.
  const pollNow = (): void => void follower?.pollNow().catch(() => undefined);
  // Redis is back: retry at once the event batch whose invalidation could not be written, so the
  // store (bypassed until then) is used again without waiting for the follower's error backoff.
  shared?.onReconnect(pollNow);
  const webhooks = config.webhookSecret
    ? new WebhookReceiver({
        secret: config.webhookSecret,
        sink: {
          applyHints: async (events) => {
            await applySchema(events);
            await cache.applyHints(events);
          },
        },
        pollNow,
        maxBodyBytes: config.maxRequestBytes,
        metrics: sourceMetrics,
        logger: logger.child({ component: "webhooks" }),
      })
    : undefined;
  // Reconcile catches changes made without events; constructed now, so its first window covers the preload.
  const reconciler =
    config.reconcileIntervalS > 0
      ? new Reconciler({
          backend,
          cache,
          intervalMs: config.reconcileIntervalS * 1000,
          settle: async () => follower?.pollNow(),
          metrics: sourceMetrics,
          logger: logger.child({ component: "reconcile" }),
        })
      : undefined;

  let preloadError: string | undefined;
  const readiness = (): Readiness => {
    const reasons: string[] = [];
    const preload = cache.preloadState;
    if (!preload.ready) reasons.push(preloadError ? `preload failed, retrying: ${preloadError}` : preload.reason);
    // A follower failing only because the store cannot take its invalidations is a store outage:
    // answers still come (from ShotGrid), so it is shown under details.store, not made unready.
    const storeOutage = shared !== undefined && !cache.storeHealthy && isStoreError(follower?.lastErrorCode);
    if (!follower?.running) {
      // A standby cluster instance runs no follower: it serves the shared store and tails the change log.
      if (!cluster) reasons.push("event follower not started");
    } else if (!follower.ready && !storeOutage)
      reasons.push(follower.lastError ? `event follower cannot read the event log: ${follower.lastError}` : "event follower has not polled yet");
    // Lag never makes the service unready (cached answers stay useful); it is shown instead.
    const details: Record<string, unknown> = {};
    if (follower) details["eventFollow"] = follower.status;
    if (reconciler?.lastRun) details["reconcile"] = reconciler.lastRun;
    if (cluster) details["cluster"] = cluster.status;
    if (shared) details["store"] = shared.status(cache);
    return { ready: reasons.length === 0, reasons, details: Object.keys(details).length > 0 ? details : undefined };
  };

  // Writes go to ShotGrid, then drop what they changed from the cache (shared with --redis); one
  // write path for the Connect RPCs and api3.
  const writes = new WriteThrough({ backend, cache, logger: logger.child({ component: "writes" }) });
  // ShotGrid's api3 protocol on the same port (src/api3): callers bring their own credentials.
  const api3 = createApi3Route({
    context: {
      cache,
      schema,
      backend,
      limits: requestLimitsOf(config),
      maxEntitiesPerPage: Math.min(API3_MAX_ENTITIES_PER_PAGE, config.maxPageSize),
      schemaAnswers,
      flushAll,
      writes,
      logger: logger.child({ component: "api3" }),
    },
    credentialTtlMs: config.api3CredentialTtlMs,
    maxBodyBytes: config.maxRequestBytes,
    deadlineMs: config.deadlineMs,
    metrics,
    policy,
  });
  // The live status page's figures: a ring of samples for its charts and the last changes applied.
  const store = config.redis ? "redis" : "memory";
  const status = new StatusSampler({
    totals: () => metrics.totals(),
    bus,
    context: () => {
      const report = readiness();
      const role = cluster ? (cluster.isLeader ? "leader" : "standby") : "single";
      // A standby polls nothing, so it cannot say whether ShotGrid answers.
      const polling = follower?.running === true;
      // A follower failing on the store (Redis) still reached ShotGrid.
      const error = isStoreError(follower?.lastErrorCode) ? undefined : follower?.lastError;
      return {
        version: VERSION,
        mode,
        store,
        role,
        ready: report.ready,
        reasons: report.reasons ?? [],
        shotgridReachable: polling ? error === undefined && (follower!.ready || follower!.lastError !== undefined) : null,
        ...(error ? { shotgridError: error } : {}),
        follow: polling ? follower!.status : undefined,
      };
    },
  });

  const server = createCacheServer({
    config,
    mode,
    cache,
    schema,
    feed: bus,
    store,
    logger: logger.child({ component: "server" }),
    metrics,
    readiness,
    extraRoutes: (req, res, path) => api3.route(req, res, path) || (webhooks?.route(req, res, path) ?? false),
    siteUnreachable: () => follower?.lastError,
    policy,
    writes,
    status: {
      report: () => status.report(),
      // One rule for who may see the status: the access policy's own check. Open mode stays
      // unchecked: the page is open without an auth file, and an anonymous caller has no
      // "status" scope.
      authorize: statusAccess(policy),
    },
  });
  let bound: Awaited<ReturnType<Server["listen"]>>;
  try {
    bound = await server.listen(config.port, config.host);
  } catch (err) {
    // Nothing else may keep the process alive: the demo site and the upstream pool close too.
    await backend.close().catch(() => undefined);
    await shared?.close();
    await demoSite?.close();
    throw new Error(`cannot listen on ${config.host}:${config.port} (--port): ${describeListenError(err)}`);
  }

  // Order matters: take the event cursor BEFORE preloading, so an event that lands during the
  // preload is applied afterwards instead of being lost between the two.
  const ready = (async () => {
    if (saved.lostReason) {
      // Saved state existed but is unusable: trust nothing built on it.
      await cache.invalidateAll();
      bus.reset(`saved event cursor unusable: ${saved.lostReason}`);
    }
    // Taken once: a retried preload keeps the first head, so the follower re-applies what happened
    // meanwhile instead of starting after it, and the position streams were told stays true.
    let firstHead: number | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        const head = saved.state?.lastAppliedId ?? (firstHead ??= await backend.latestEventId(stopping.signal));
        cache.startFrom(head);
        // The follower starts from `head`: streams may announce it now, not 0 during the preload.
        // A cluster's bus is positioned by the shared change log only (cluster-follow.ts).
        if (!cluster) bus.advance(head);
        await preloadAll(stopping.signal);
        if (cluster) clusterHead = head;
        else follower = newFollower(head);
        preloadError = undefined;
        break;
      } catch (err) {
        if (stopping.signal.aborted) throw err;
        preloadError = errorMessage(err);
        logger.warn({ err: preloadError, attempt }, "preload failed; retrying");
        // Abortable, so a close() during the back-off does not leave a timer holding the process.
        await sleep(Math.min(30_000, 1000 * 2 ** attempt), undefined, { signal: stopping.signal });
      }
    }
    // close() may have come while the last preload page was in flight: start nothing after it.
    stopping.signal.throwIfAborted();
    if (cluster) {
      cluster.start();
      reconciler?.start();
      // Ready once the shared change log is read (this bus's replay ring is seeded from it) and
      // has told this bus where the cluster stands (streams wait for that before announcing it).
      await new Promise<void>((resolve, reject) => {
        stopping.signal.addEventListener("abort", () => reject(stopping.signal.reason), { once: true });
        void cluster.tail
          .whenCaughtUp()
          .then(() => bus.whenPositioned(stopping.signal))
          .then((positioned) => positioned && resolve());
      });
      return;
    }
    follower!.start();
    reconciler?.start();
    await follower!.whenReady(stopping.signal);
  })();
  ready.catch(() => undefined);
  status.start();
  // Snapshot files: written by the instance that follows the event log (the leader with --redis),
  // from its cache, once the preload is done; one writer per cluster.
  const snapshots = config.snapshot
    ? new SnapshotWriter({
        dir: config.snapshot.dir,
        types: config.snapshot.types,
        intervalMs: config.snapshot.intervalS * 1000,
        source: cacheSnapshotSource(cache, site.url),
        mayWrite: () => (cluster ? cluster.isLeader : true) && follower?.running === true,
        metrics,
        logger: logger.child({ component: "snapshots" }),
      })
    : undefined;
  ready.then(
    () => snapshots?.start(),
    () => undefined,
  );

  const hostForUrl = bound.host === "0.0.0.0" || bound.host === "::" ? "127.0.0.1" : bound.host.includes(":") ? `[${bound.host}]` : bound.host;
  // Demo mode with a webhook secret: the simulated site sends its webhooks to this service.
  if (demoSite && config.webhookSecret && !config.tls) {
    demoSite.webhooks.add({ url: `http://${hostForUrl}:${bound.port}${WEBHOOK_PATH}`, secret: config.webhookSecret });
  }
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
    webhooks,
    reconciler,
    shared,
    api3,
    policy,
    writes,
    snapshots,
    async close(graceMs = 10_000) {
      stopping.abort();
      status.stop();
      await snapshots?.stop();
      await server.close(graceMs);
      await reconciler?.stop();
      await webhooks?.whenIdle();
      await follower?.stop();
      await cluster?.stop();
      await shared?.close();
      await backend.close();
      await demoSite?.close();
    },
  };
}

/** The follower's last error came from the cache store (`StoreUnavailableError`), not from the site: told by its code. */
function isStoreError(code: string | undefined): boolean {
  return code === CacheErrorCode.storeUnavailable;
}

function describeListenError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "EADDRINUSE") return "the port is already in use";
  if (code === "EACCES") return "permission denied (ports below 1024 need privileges)";
  if (code === "EADDRNOTAVAIL") return "no such address on this machine";
  return errorMessage(err);
}
