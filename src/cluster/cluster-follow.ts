/**
 * Following the event log as a cluster (several instances, one Redis): the lease elects one
 * leader (leader-lease.ts); only the leader runs an EventFollower, resuming from the shared
 * cursor (redis-cursor-store.ts) and publishing to the shared change log (redis-change-log.ts);
 * every instance tails that log into its local change bus (change-log-tail.ts). See
 * docs/cluster.md for the guarantees.
 *
 * One leader term runs one follower: it is built when the lease is won, stopped the moment the
 * term ends, and never restarted (a new term builds a new follower from the shared cursor, so
 * whatever the old one held in memory is never trusted).
 */
import { Counter, Gauge, type Registry } from "prom-client";
import { RedisConnection } from "./redis-connection.ts";
import { siteKey } from "./redis-store.ts";
import type { EventLogEntry } from "../shotgrid/types.ts";
import type { ChangeBus } from "../events/change-bus.ts";
import { ChangeLogTail, type ChangeLogTailStatus } from "./change-log-tail.ts";
import type { Change } from "../events/change.ts";
import { CursorStateError, type CursorStore } from "../events/cursor-store.ts";
import type { ChangePublisher, EventFollower, EventSink } from "../events/event-follower.ts";
import type { CursorState } from "../events/follow-cursor.ts";
import { FencedOutError, LeaderLease, type LeaderTerm } from "./leader-lease.ts";
import { RedisChangeLog, type LogEntry } from "./redis-change-log.ts";
import { RedisCursorStore } from "./redis-cursor-store.ts";
import { errorMessage, type Logger, SILENT_LOGGER } from "../logging/index.ts";

/** The key prefix of a cluster's follow state: `<prefix>:{<site>}:follow:` (next to the store's keys). */
export function followKeyBase(prefix: string, site: string): string {
  return `${prefix}:{${siteKey(site)}}:follow:`;
}

/** What one leader term's follower is built from. */
export interface TermFollowerSetup {
  /** Where to resume: the shared cursor, or `fallbackCursor` when Redis holds none. */
  initialCursor: CursorState;
  /** The shared change log, fenced by the term. */
  bus: ChangePublisher;
  /** The shared cursor, fenced by the term. */
  store: CursorStore;
  /** Wrap the sink: each batch first confirms the term still holds the lease. */
  guard(sink: EventSink): EventSink;
}

export interface ClusterFollowOptions {
  /** `redis://…` (never logged). Two connections are opened: lease/writes, and the log reader. */
  redisUrl: string;
  /** Key prefix (`--redis-prefix`). */
  prefix: string;
  /** The ShotGrid site (its URL): one cluster state per site. */
  site: string;
  /** The local bus: fed only by the change log. */
  bus: ChangeBus;
  /** Entries kept in the shared log (`--replay-events`; at least 1000). */
  replayEvents: number;
  /** Lease lifetime (ms); a dead leader is replaced within about 4/3 of it. Default 5000. */
  leaseTtlMs?: number;
  /** Longest wait of one log read (ms). Default 1000. */
  tailBlockMs?: number;
  /** Build the follower of one leader term (not started). */
  createFollower(setup: TermFollowerSetup): EventFollower;
  /** Told when this instance's follower starts (a term began) and stops (undefined). */
  onFollowerChange?(follower: EventFollower | undefined): void;
  /** The cursor for a leader when Redis holds none (the first leader, or after Redis lost its data). */
  fallbackCursor(): CursorState;
  /** The shared cursor exists but cannot be trusted: flush what depends on it. */
  onCursorLost(reason: string): Promise<void>;
  /** After each log entry is replayed into the local bus; `leader` says if this instance leads now. */
  onEntry?(entry: LogEntry, leader: boolean): void;
  /** Register cluster metrics here (`/metrics`). */
  registry?: Registry;
  instanceId?: string;
  logger?: Logger;
}

/** Where this instance stands in the cluster, for /readyz. */
export interface ClusterStatus {
  role: "leader" | "standby";
  instance: string;
  /** The fencing number of this instance's term, while leader. */
  fence?: number;
  /** Why the lease cannot be competed for (Redis unreachable), if so. */
  leaseError?: string;
  changeLog: ChangeLogTailStatus;
}

export class ClusterFollow {
  readonly lease: LeaderLease;
  readonly tail: ChangeLogTail;
  readonly keyBase: string;
  readonly #options: ClusterFollowOptions;
  readonly #connection: RedisConnection;
  readonly #tailConnection: RedisConnection;
  readonly #log: Logger;
  #follower: EventFollower | undefined;
  /** Terms run one after another: a new follower starts only after the old one stopped. */
  #terms: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: ClusterFollowOptions) {
    this.#options = options;
    this.#log = options.logger ?? SILENT_LOGGER;
    this.keyBase = followKeyBase(options.prefix, options.site);
    const blockMs = options.tailBlockMs ?? 1000;
    this.#connection = new RedisConnection({ url: options.redisUrl, clientName: "shotgrid-cache-lease" });
    this.#tailConnection = new RedisConnection({ url: options.redisUrl, clientName: "shotgrid-cache-changes", commandTimeoutMs: blockMs + 2000 });
    this.lease = new LeaderLease({
      connection: this.#connection,
      keyBase: this.keyBase,
      ttlMs: options.leaseTtlMs,
      instanceId: options.instanceId,
      logger: this.#log,
      onAcquired: (term) => {
        this.#terms = this.#terms
          .then(() => this.#lead(term))
          .catch((err: unknown) => {
            this.#log.error({ err: errorMessage(err) }, "leader term ended by an error");
          });
      },
    });
    this.tail = new ChangeLogTail({
      connection: this.#tailConnection,
      keyBase: this.keyBase,
      bus: options.bus,
      blockMs,
      logger: this.#log,
      onEntry: options.onEntry && ((entry) => options.onEntry!(entry, this.lease.isLeader)),
    });
    if (options.registry) registerClusterMetrics(options.registry, this);
  }

  /** The running follower while this instance leads; undefined otherwise. */
  get follower(): EventFollower | undefined {
    return this.#follower;
  }

  get isLeader(): boolean {
    return this.lease.isLeader;
  }

  get status(): ClusterStatus {
    const term = this.lease.term;
    return {
      role: term ? "leader" : "standby",
      instance: this.lease.instanceId,
      ...(term ? { fence: term.fence } : {}),
      ...(this.lease.lastError ? { leaseError: this.lease.lastError } : {}),
      changeLog: this.tail.status,
    };
  }

  /** Start reading the change log and competing for the lease. */
  start(): void {
    this.tail.start();
    this.lease.start();
  }

  /** Stop following (a held lease is released at once), stop reading, close both connections. */
  async stop(): Promise<void> {
    this.#stopped = true;
    // The follower first, while the lease is still ours: its last cursor save is accepted.
    await this.#follower?.stop();
    await this.lease.stop();
    await this.#terms;
    const closing = this.#tailConnection.close();
    await this.tail.stop();
    await closing;
    await this.#connection.close();
  }

  /** One leader term: load the shared cursor, run a follower until the term ends, stop it. */
  async #lead(term: LeaderTerm): Promise<void> {
    if (term.over || this.#stopped) return;
    const store = new RedisCursorStore({ connection: this.#connection, keyBase: this.keyBase, lease: this.lease, term });
    let saved: CursorState | undefined;
    let lostReason: string | undefined;
    try {
      saved = await store.load();
    } catch (err) {
      if (!(err instanceof CursorStateError)) {
        // Redis failed: following without knowing where the cluster stands could skip events.
        await this.lease.resign(term, `cannot read the shared cursor: ${errorMessage(err)}`);
        return;
      }
      lostReason = err.message;
    }
    const initialCursor = saved ?? this.#options.fallbackCursor();
    this.#log.info(
      {
        fence: term.fence,
        lastEventId: initialCursor.lastAppliedId,
        gapsAwaited: initialCursor.skipped.length,
        from: saved ? "shared cursor" : "this instance's start",
      },
      "leader: resuming the event log",
    );
    let follower: EventFollower | undefined;
    const log = new RedisChangeLog({
      lease: this.lease,
      term,
      maxLength: this.#options.replayEvents,
      cursor: () => follower?.cursorState,
      onFailure: (reason) => {
        store.poison(reason);
        void this.lease.resign(term, `the change log append failed: ${reason}`);
      },
      logger: this.#log,
    });
    log.advance(initialCursor.lastAppliedId);
    if (lostReason !== undefined) {
      this.#log.warn({ err: lostReason }, "shared event cursor unusable: flushing the cache; streams told to resync");
      try {
        await this.#options.onCursorLost(lostReason);
        await log.reset(`shared event cursor unusable: ${lostReason}`);
      } catch (err) {
        await this.lease.resign(term, `cannot flush after losing the shared cursor: ${errorMessage(err)}`);
        return;
      }
    }
    if (term.over || this.#stopped) return;
    // Every bus (this one too) is positioned by the log: announce the term's starting position,
    // so heartbeats carry it before the first change is published.
    try {
      await log.announce();
    } catch {
      return; // the log's onFailure has resigned the term
    }
    if (term.over || this.#stopped) return;
    follower = this.#options.createFollower({
      initialCursor,
      bus: log,
      store,
      guard: (sink) => ({
        ...sink,
        applyEvents: async (events) => {
          // One round trip per batch: a leader resumed after a pause learns it was superseded
          // before touching the cache, not after.
          if (!(await this.lease.confirm(term))) throw new FencedOutError(`leader term ${term.fence} superseded: batch not applied`);
          await sink.applyEvents(events);
        },
      }),
    });
    this.#follower = follower;
    this.#options.onFollowerChange?.(follower);
    follower.start();
    await new Promise<void>((resolve) => {
      if (term.signal.aborted) return resolve();
      term.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    this.#follower = undefined;
    await follower.stop();
    this.#options.onFollowerChange?.(undefined);
    this.#log.info({ fence: term.fence, reason: term.lostReason }, "leader term over: event follower stopped");
  }
}

/** `setup.guard(sink)` for a term's follower; the sink itself for a single instance. */
export function guardedSink(setup: TermFollowerSetup | undefined, sink: EventSink): EventSink {
  return setup ? setup.guard(sink) : sink;
}

/** The parts of the read-through cache a log entry updates on every instance. */
export interface EntryCache {
  startFrom(eventId: number): void;
  applyHints(events: EventLogEntry[]): Promise<void>;
}

/**
 * What a change log entry means for this instance's cache. Entries are read after the leader
 * applied them to the shared store, so answers may say "as of" the entry's event id. A standby
 * applies new, revival and retirement changes as hints too: its in-process set of existing ids
 * (which lets it answer "no such record" without asking) would otherwise miss them.
 */
export function applyEntryToCache(cache: EntryCache, entry: LogEntry, leader: boolean, log: Logger = SILENT_LOGGER): void {
  const through = Math.max(entry.t ?? 0, entry.c?.eventId ?? 0);
  if (through > 0) cache.startFrom(through);
  const change = entry.c;
  if (leader || !change || change.kind === "change") return;
  cache.applyHints([eventFromChange(change)]).catch((err: unknown) => {
    log.warn({ err: errorMessage(err), eventId: change.eventId }, "standby: could not apply a change from the change log as a hint");
  });
}

/**
 * The event a change came from, as much as a cache hint needs (standby instances apply new,
 * revival and retirement changes as hints, so their in-process id sets stay right).
 */
export function eventFromChange(change: Change): EventLogEntry {
  return {
    id: change.eventId,
    event_type: change.eventType,
    attribute_name: change.attributeName,
    meta: { entity_type: change.entityType, entity_id: change.entityId },
    entity: { type: change.entityType, id: change.entityId },
    project: change.projectId > 0 ? { type: "Project", id: change.projectId } : null,
    user: change.user,
    session_uuid: null,
    created_at: change.createdAt,
  };
}

function registerClusterMetrics(registry: Registry, cluster: ClusterFollow): void {
  const registers = [registry];
  const counters = cluster.lease.counters;
  new Gauge({
    name: "shotgrid_cache_cluster_leader",
    help: "1 while this instance holds the leader lease (and follows the event log), else 0.",
    registers,
    collect() {
      this.set(cluster.isLeader ? 1 : 0);
    },
  });
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  counter("shotgrid_cache_cluster_lease_acquisitions_total", "Times this instance became leader.", () => counters.acquisitions);
  counter("shotgrid_cache_cluster_lease_losses_total", "Times this instance lost the lead (superseded, expired or resigned).", () => counters.losses);
  counter(
    "shotgrid_cache_cluster_fenced_writes_refused_total",
    "Writes to shared follow state (cursor, change log) refused because this instance's leader term was over.",
    () => counters.fencedWritesRefused,
  );
  counter(
    "shotgrid_cache_cluster_change_log_resyncs_total",
    "Times the local change bus was reset because the shared change log lost unread entries.",
    () => cluster.tail.status.resyncs,
  );
}
