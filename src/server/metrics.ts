/**
 * The service's Prometheus metrics. One `Metrics` owns one prom-client `Registry` (never the
 * global one, so several servers can live in one process, as tests do); other modules call its
 * typed methods and never touch prom-client themselves. It satisfies the cache's `CacheMetrics`
 * and the event follower's `FollowerMetrics` as is: pass it to both.
 *
 * Label children are created once and kept, so the hot path (a cache hit, an RPC) is a counter
 * increment with no label-object allocation.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** What a cache lookup was for. */
export type CacheKind = "entity" | "query";

/** How an upstream (ShotGrid) call ended. */
export type UpstreamOutcome = "ok" | "error" | "timeout";

/** Which wire protocol carried an RPC request. */
export type RpcProtocol = "connect" | "grpc" | "grpc-web";

/**
 * The running totals behind the status page (src/status): plain numbers kept beside the
 * Prometheus series, so reading them is a copy, not a registry walk.
 */
export interface MetricsTotals {
  hits: number;
  misses: number;
  coalescedWaits: number;
  upstreamCalls: number;
  staleServed: number;
  openStreams: number;
  /** RPC requests received, by "method protocol" (method is "package.Service/Method"). */
  requests: Record<string, { method: string; protocol: RpcProtocol; count: number }>;
  /** The follower's last reports (undefined until it reports). */
  follow: { lastEventId?: number; lagSeconds?: number; eventsBehind?: number; gapsAwaited?: number };
  /** Cache size now, when a source is observed. */
  cache?: CacheSize;
  storeHealthy: boolean;
}

/** A point-in-time size of the cache, read when /metrics is scraped. */
export interface CacheSize {
  bytes: number;
  entries: number;
}

export interface MetricsOptions {
  /**
   * Also export Node.js process metrics (`shotgrid_cache_process_*`, `shotgrid_cache_nodejs_*`):
   * memory, CPU, event loop lag. Default true.
   */
  processMetrics?: boolean;
  /** Static labels added to every metric, e.g. `{ site: "studio" }`. */
  defaultLabels?: Record<string, string>;
}

const PREFIX = "shotgrid_cache_";
/** Seconds; RPCs served from memory take well under a millisecond, upstream calls up to tens of seconds. */
const RPC_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const UPSTREAM_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

type CounterChild = ReturnType<Counter<string>["labels"]>;
type HistogramChild = ReturnType<Histogram<string>["labels"]>;

/**
 * A counter child the hot path counts in a plain number, added to its Prometheus series when the
 * registry is read (the counter's `collect`, which every read runs first): prom-client hashes the
 * labels again on each `inc`, a fair share of a cache hit's own cost when done per request.
 */
class HotCount {
  #pending = 0;
  constructor(readonly child: CounterChild) {}
  inc(): void {
    this.#pending++;
  }
  flush(): void {
    if (this.#pending === 0) return;
    this.child.inc(this.#pending);
    this.#pending = 0;
  }
}

/** A counter's `collect`: the pending counts of `hot` (which may grow later) added to their series. */
const flushing = (hot: readonly HotCount[]) => () => {
  for (const h of hot) h.flush();
};

interface RpcChildren {
  calls: HotCount;
  duration: HistogramChild;
}

/** The metrics of one server. Create one per server and pass it to the parts that report. */
export class Metrics {
  /** The registry behind `/metrics`; register extra metrics here if needed. */
  readonly registry: Registry;

  readonly #hits: Record<CacheKind, HotCount>;
  readonly #misses: Record<CacheKind, CounterChild>;
  readonly #staleServed: Record<CacheKind, CounterChild>;
  readonly #coalesced: Counter<string>;
  readonly #eventsApplied: Counter<string>;
  readonly #polls: Counter<string>;
  readonly #pollErrors: Counter<string>;
  readonly #gapsDetected: Counter<string>;
  readonly #gapsGivenUp: Counter<string>;
  readonly #upstreamCalls: Counter<string>;
  readonly #upstreamSeconds: Histogram<string>;
  readonly #cacheBytes: Gauge<string>;
  readonly #cacheEntries: Gauge<string>;
  readonly #eventLag: Gauge<string>;
  readonly #lastEventId: Gauge<string>;
  readonly #openStreams: Gauge<string>;
  readonly #followGauges: { behind: Gauge<string>; awaited: Gauge<string>; filled: Counter<string>; resets: Counter<string>; saveErrors: Counter<string> };
  readonly #rpcCalls: Counter<string>;
  /** The children of `#rpcCalls` and `#rpcRequests`, as made. */
  readonly #hotRpcCalls: HotCount[] = [];
  readonly #hotRpcRequests: HotCount[] = [];
  readonly #api3Calls: Counter<string>;
  readonly #rpcSeconds: Histogram<string>;
  /** method -> code -> children; both label sets are small and fixed. */
  readonly #rpcChildren = new Map<string, Map<string, RpcChildren>>();
  #cacheSizeSource: (() => CacheSize) | undefined;
  readonly #storeUnavailable: Counter<string>;
  readonly #queryAnswers: Counter<string>;
  readonly #mirrorUpdates: Counter<string>;
  #storeHealthSource: (() => boolean) | undefined;
  #lastEventAppliedAt: number | undefined;
  #textSource: (() => Promise<string>) | undefined;
  readonly #rpcRequests: Counter<string>;
  /** "method protocol" -> the counter child and its plain total; both label sets are small and fixed. */
  readonly #requestChildren = new Map<string, { child: HotCount; total: { method: string; protocol: RpcProtocol; count: number } }>();
  readonly #totals = { hits: 0, misses: 0, coalescedWaits: 0, upstreamCalls: 0, staleServed: 0, openStreams: 0 };
  readonly #follow: MetricsTotals["follow"] = {};

  constructor(options: MetricsOptions = {}) {
    const registers = [(this.registry = new Registry())];
    if (options.defaultLabels) this.registry.setDefaultLabels(options.defaultLabels);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: PREFIX });

    const hotHits: HotCount[] = [];
    const hits = new Counter({
      name: `${PREFIX}hits_total`,
      help: "Lookups answered from the cache.",
      labelNames: ["kind"],
      registers,
      collect: flushing(hotHits),
    });
    const misses = new Counter({
      name: `${PREFIX}misses_total`,
      help: "Lookups the cache could not answer (fetched upstream or joined a fetch in flight).",
      labelNames: ["kind"],
      registers,
    });
    this.#hits = { entity: new HotCount(hits.labels("entity")), query: new HotCount(hits.labels("query")) };
    hotHits.push(...Object.values(this.#hits));
    this.#misses = { entity: misses.labels("entity"), query: misses.labels("query") };
    // Labels: where ("local" or "upstream") and a reason code from a small fixed set (src/local-query/cannot-answer.ts).
    this.#queryAnswers = new Counter({
      name: `${PREFIX}query_answers_total`,
      help: 'Queries by where they were answered: "local" from the mirror of the preloaded types, or "upstream" with the reason the mirror could not answer exactly.',
      labelNames: ["where", "reason"],
      registers,
    });
    this.#mirrorUpdates = new Counter({
      name: `${PREFIX}mirror_updates_total`,
      help: 'Mirrored records brought up to date: "event" from a Change event\'s own meta, "refetch" by fetching them again.',
      labelNames: ["source"],
      registers,
    });
    this.#coalesced = new Counter({
      name: `${PREFIX}coalesced_waits_total`,
      help: "Misses that waited for an identical fetch already in flight instead of calling ShotGrid.",
      registers,
    });
    this.#upstreamCalls = new Counter({
      name: `${PREFIX}upstream_requests_total`,
      help: "Calls to ShotGrid, by operation and outcome.",
      labelNames: ["operation", "outcome"],
      registers,
    });
    this.#upstreamSeconds = new Histogram({
      name: `${PREFIX}upstream_duration_seconds`,
      help: "Latency of calls to ShotGrid.",
      labelNames: ["operation", "outcome"],
      buckets: UPSTREAM_BUCKETS,
      registers,
    });

    const self = this;
    this.#cacheBytes = new Gauge({
      name: `${PREFIX}cache_bytes`,
      help: "Approximate memory held by cached records and query answers.",
      registers,
      collect() {
        if (self.#cacheSizeSource) this.set(self.#cacheSizeSource().bytes);
      },
    });
    this.#cacheEntries = new Gauge({
      name: `${PREFIX}cache_entries`,
      help: "Cached records and query answers.",
      registers,
      collect() {
        if (self.#cacheSizeSource) this.set(self.#cacheSizeSource().entries);
      },
    });
    const stale = new Counter({
      name: `${PREFIX}stale_served_total`,
      help: "Cached answers served marked stale because ShotGrid was unreachable.",
      labelNames: ["kind"],
      registers,
    });
    this.#staleServed = { entity: stale.labels("entity"), query: stale.labels("query") };
    this.#storeUnavailable = new Counter({
      name: `${PREFIX}store_unavailable_total`,
      help: "Cache store (Redis) operations that failed, or reads that skipped it, because it was unavailable; the answer came from ShotGrid.",
      labelNames: ["operation"],
      registers,
    });
    new Gauge({
      name: `${PREFIX}store_healthy`,
      help: "1 while the cache store is in use, 0 while answers bypass it (Redis unreachable, or an invalidation not yet written).",
      registers,
      collect() {
        this.set(self.#storeHealthSource ? (self.#storeHealthSource() ? 1 : 0) : 1);
      },
    });
    this.#eventsApplied = new Counter({ name: `${PREFIX}events_applied_total`, help: "Event log entries applied to the cache.", registers });
    this.#polls = new Counter({ name: `${PREFIX}event_polls_total`, help: "Polls of ShotGrid's event log.", registers });
    this.#pollErrors = new Counter({ name: `${PREFIX}event_poll_errors_total`, help: "Failed polls of ShotGrid's event log.", registers });
    this.#gapsDetected = new Counter({
      name: `${PREFIX}event_gaps_detected_total`,
      help: "Skipped event ids seen (waited for, in case they appear late).",
      registers,
    });
    this.#gapsGivenUp = new Counter({ name: `${PREFIX}event_gaps_given_up_total`, help: "Skipped event ids no longer waited for.", registers });
    this.#eventLag = new Gauge({
      name: `${PREFIX}event_lag_seconds`,
      help: "How far the cache trails ShotGrid's event log, as last reported by the follower.",
      registers,
    });
    this.#lastEventId = new Gauge({ name: `${PREFIX}last_event_id`, help: "Id of the newest event log entry applied to the cache.", registers });
    new Gauge({
      name: `${PREFIX}seconds_since_last_event_applied`,
      help: "Seconds since the follower last applied an event (grows while ShotGrid is idle or the follower is stuck).",
      registers,
      collect() {
        if (self.#lastEventAppliedAt !== undefined) this.set((Date.now() - self.#lastEventAppliedAt) / 1000);
      },
    });
    this.#followGauges = {
      behind: new Gauge({ name: `${PREFIX}event_lag_events`, help: "Events known to exist on the site beyond the newest one applied.", registers }),
      awaited: new Gauge({ name: `${PREFIX}event_gaps_awaited`, help: "Skipped event ids currently awaited (out-of-order commits).", registers }),
      filled: new Counter({ name: `${PREFIX}event_gaps_filled_total`, help: "Skipped event ids that arrived late and were applied.", registers }),
      resets: new Counter({
        name: `${PREFIX}event_cursor_resets_total`,
        help: "Times the event cursor was older than the retained log: cache flushed, streams told to resync.",
        registers,
      }),
      saveErrors: new Counter({ name: `${PREFIX}event_cursor_save_errors_total`, help: "Failed saves of the event cursor state.", registers }),
    };
    // Export zeros from the start, so rates and dashboards work before the first lookup.
    for (const kinds of [this.#misses, this.#staleServed]) for (const child of Object.values(kinds)) child.inc(0);
    for (const hot of hotHits) hot.child.inc(0);
    this.#openStreams = new Gauge({ name: `${PREFIX}open_streams`, help: "Server streams (WatchChanges) currently open.", registers });
    this.#rpcCalls = new Counter({
      name: `${PREFIX}rpc_total`,
      help: "RPCs served, by method and Connect code.",
      labelNames: ["method", "code"],
      registers,
      collect: flushing(this.#hotRpcCalls),
    });
    this.#api3Calls = new Counter({
      name: `${PREFIX}api3_calls_total`,
      help: "api3 calls (POST /api3/json), by method (unknown names as other) and outcome (ok, auth_fault, fault).",
      labelNames: ["method", "outcome"],
      registers,
    });
    this.#rpcSeconds = new Histogram({
      name: `${PREFIX}rpc_duration_seconds`,
      help: "Time to serve an RPC (for streams: how long the stream was open).",
      labelNames: ["method", "code"],
      buckets: RPC_BUCKETS,
      registers,
    });
    this.#rpcRequests = new Counter({
      name: `${PREFIX}rpc_requests_total`,
      help: "RPC requests received, by method and wire protocol (connect, grpc, grpc-web); counted on arrival, fast path included.",
      labelNames: ["method", "protocol"],
      collect: flushing(this.#hotRpcRequests),
      registers,
    });
  }

  /** A lookup of `kind` was answered from the cache. */
  cacheHit(kind: CacheKind): void {
    this.#hits[kind].inc();
    this.#totals.hits++;
  }

  /** A lookup of `kind` missed the cache. */
  cacheMiss(kind: CacheKind): void {
    this.#misses[kind].inc();
    this.#totals.misses++;
  }

  /** A Query was answered locally from the mirror, or not (then from a cached answer or ShotGrid), and why not. */
  queryAnswered(where: "local" | "upstream", reason: string): void {
    this.#queryAnswers.labels(where, reason).inc();
  }

  /** Mirrored records updated from an event's meta, or refetched. */
  mirrorUpdated(source: "event" | "refetch", records: number): void {
    this.#mirrorUpdates.labels(source).inc(records);
  }

  /** A miss joined an identical fetch in flight instead of calling ShotGrid. */
  coalescedWait(): void {
    this.#coalesced.inc();
    this.#totals.coalescedWaits++;
  }

  /** One call to ShotGrid finished. `operation` is e.g. "read", "find", "schema", "events". */
  upstreamCall(operation: string, outcome: UpstreamOutcome, seconds: number): void {
    this.#upstreamCalls.labels(operation, outcome).inc();
    this.#upstreamSeconds.labels(operation, outcome).observe(seconds);
    this.#totals.upstreamCalls++;
  }

  /** Set the cache size now (for stores that push their size). */
  setCacheSize(size: CacheSize): void {
    this.#cacheBytes.set(size.bytes);
    this.#cacheEntries.set(size.entries);
  }

  /** Read the cache size from `source` at each scrape (for stores that can report it cheaply). */
  observeCacheSize(source: () => CacheSize): void {
    this.#cacheSizeSource = source;
  }

  /** A cached answer was served marked stale because ShotGrid was unreachable. */
  cacheStaleServed(kind: CacheKind): void {
    this.#staleServed[kind].inc();
    this.#totals.staleServed++;
  }

  /** A cache store operation failed because the store (Redis) was unreachable. */
  storeUnavailable(operation: string): void {
    this.#storeUnavailable.labels(operation).inc();
  }

  /** Read whether the cache store is in use from `source` at each scrape (`store_healthy`). */
  observeStoreHealth(source: () => boolean): void {
    this.#storeHealthSource = source;
  }

  // The event follower's reports (the shape of `FollowerMetrics` in src/events).

  /** The follower applied `count` events. */
  eventsApplied(count: number): void {
    this.#eventsApplied.inc(count);
  }

  /** The newest event log id applied to the cache. */
  lastEventId(id: number | bigint): void {
    this.#lastEventId.set(Number(id));
    this.#follow.lastEventId = Number(id);
    this.#lastEventAppliedAt = Date.now();
  }

  /** How far the cache trails ShotGrid's event log, in seconds. */
  lagSeconds(seconds: number): void {
    this.#eventLag.set(Math.max(0, seconds));
    this.#follow.lagSeconds = Math.max(0, seconds);
  }

  /** The follower polled the event log. */
  poll(): void {
    this.#polls.inc();
  }

  /** A poll of the event log failed. */
  pollError(): void {
    this.#pollErrors.inc();
  }

  /** The follower saw `count` skipped event ids (gaps it will wait for). */
  gapsDetected(count: number): void {
    this.#gapsDetected.inc(count);
  }

  /** The follower stopped waiting for `count` skipped event ids. */
  gapsGivenUp(count: number): void {
    this.#gapsGivenUp.inc(count);
  }

  /** Events known to exist beyond the cursor. */
  eventsBehind(count: number): void {
    this.#followGauges.behind.set(count);
    this.#follow.eventsBehind = count;
  }

  /** Skipped event ids awaited now. */
  gapsAwaited(count: number): void {
    this.#followGauges.awaited.set(count);
    this.#follow.gapsAwaited = count;
  }

  /** Late event ids that arrived and were applied. */
  gapsFilled(count: number): void {
    this.#followGauges.filled.inc(count);
  }

  /** The event cursor was too old to resume: the cache was flushed. */
  cursorReset(): void {
    this.#followGauges.resets.inc();
  }

  /** Saving the event cursor failed. */
  cursorSaveError(): void {
    this.#followGauges.saveErrors.inc();
  }

  /** A server stream opened. Pair with `streamClosed`. */
  streamOpened(): void {
    this.#openStreams.inc();
    this.#totals.openStreams++;
  }

  /** A server stream closed. */
  streamClosed(): void {
    this.#openStreams.dec();
    this.#totals.openStreams--;
  }

  /**
   * An RPC request arrived for `method` ("package.Service/Method", a registered method only: the
   * label set must stay bounded) over `protocol`.
   */
  rpcReceived(method: string, protocol: RpcProtocol): void {
    const key = `${method} ${protocol}`;
    let entry = this.#requestChildren.get(key);
    if (!entry) {
      entry = { child: new HotCount(this.#rpcRequests.labels(method, protocol)), total: { method, protocol, count: 0 } };
      this.#requestChildren.set(key, entry);
      this.#hotRpcRequests.push(entry.child);
    }
    entry.child.inc();
    entry.total.count++;
  }

  /** A copy of the running totals, for the status page. */
  totals(): MetricsTotals {
    const requests: MetricsTotals["requests"] = {};
    for (const [key, { total }] of this.#requestChildren) requests[key] = { ...total };
    return {
      ...this.#totals,
      requests,
      follow: { ...this.#follow },
      cache: this.#cacheSizeSource?.(),
      storeHealthy: this.#storeHealthSource?.() ?? true,
    };
  }

  /**
   * An RPC finished. `method` is "package.Service/Method"; `code` a Connect code name such as
   * "ok" or "not_found".
   */
  rpcFinished(method: string, code: string, seconds: number): void {
    let byCode = this.#rpcChildren.get(method);
    if (!byCode) this.#rpcChildren.set(method, (byCode = new Map()));
    let children = byCode.get(code);
    if (!children) {
      children = { calls: new HotCount(this.#rpcCalls.labels(method, code)), duration: this.#rpcSeconds.labels(method, code) };
      this.#hotRpcCalls.push(children.calls);
      byCode.set(code, children);
    }
    children.calls.inc();
    children.duration.observe(seconds);
  }

  /** An api3 call finished; `method` comes from a fixed set (src/api3 counts others as "other"). */
  api3Call(method: string, outcome: string): void {
    this.#api3Calls.labels(method, outcome).inc();
  }

  /** A snapshot round wrote its files (src/snapshots), taking `seconds`. */
  snapshotWritten(seconds: number): void {
    const m = this.#snapshotMetrics();
    m.writtenAt.set(Date.now() / 1000);
    m.duration.set(seconds);
  }

  /** A snapshot round failed (the files keep their previous content). */
  snapshotFailed(): void {
    this.#snapshotMetrics().failures.inc();
  }

  // Registered on first use: a service without --snapshot-dir shows no snapshot metrics.
  #snapshots: { writtenAt: Gauge<string>; duration: Gauge<string>; failures: Counter<string> } | undefined;
  #snapshotMetrics() {
    const registers = [this.registry];
    this.#snapshots ??= {
      writtenAt: new Gauge({
        name: `${PREFIX}snapshot_last_written_timestamp_seconds`,
        help: "When the last snapshot files were written (Unix time).",
        registers,
      }),
      duration: new Gauge({ name: `${PREFIX}snapshot_duration_seconds`, help: "How long the last snapshot round took.", registers }),
      failures: new Counter({ name: `${PREFIX}snapshot_failures_total`, help: "Snapshot rounds that failed (the old files stay).", registers }),
    };
    return this.#snapshots;
  }

  /**
   * The Prometheus text exposition of every metric: this registry's, or what `useTextSource`
   * set (with `serve --workers N`: the whole process group's, src/cli/pool-metrics.ts).
   */
  text(): Promise<string> {
    return this.#textSource ? this.#textSource() : this.registry.metrics();
  }

  /** Serve `source`'s text on `/metrics` instead of this registry's own. */
  useTextSource(source: () => Promise<string>): void {
    this.#textSource = source;
  }

  /** The content type of `text()`. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
