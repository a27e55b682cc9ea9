/**
 * The event follower: polls ShotGrid's event log, applies each batch to the cache, then
 * publishes the batch's changes on the change bus, then saves its cursor. Applying before
 * publishing means a client told of a change and re-reading gets the new data (design
 * invariant 1); publishing before saving means a crash can only make a change arrive twice,
 * never make it missing (at-least-once).
 *
 * It never skips an event: on any error (backend down, sink failure) the cursor stays put and
 * the same page is asked for again after a back-off. It never crashes: errors are logged and
 * counted.
 *
 * Id gaps: ShotGrid hands ids out before commit, so a poll can see N+1 before N. A skipped id
 * is kept in the cursor's gap set and re-asked for by id (`["id","in",[…]]`, one small request
 * at most once per poll interval) while the main poll moves on from the newest id, so a gap
 * never makes it read a page twice. A late id is applied and published when it arrives; after
 * `gapWindowMs` it is given up, counted and logged.
 *
 * Trimmed log: when the log's oldest retained id is beyond the cursor, the events in between
 * are gone; the follower flushes the sink (`reset`) and tells streams to resync rather than
 * trust a cache that missed them.
 */
import { errorCode } from "../cache/errors.ts";
import type { Backend, EventLogEntry } from "../shotgrid/types.ts";
import { changeFromEvent, type Change } from "./change.ts";
import type { CursorStore } from "./cursor-store.ts";
import { FollowCursor, type CursorState } from "./follow-cursor.ts";
import { errorMessage, type Logger, SILENT_LOGGER } from "../logging/index.ts";

/** Where applied events go. `ReadThroughCache` satisfies it (with `reset` wired to a flush). */
export interface EventSink {
  /** Apply rows in id order; must tolerate seeing a row again (delivery is at-least-once). */
  applyEvents(events: EventLogEntry[]): Promise<void>;
  /**
   * Forget everything: the follower can no longer vouch for it (the log was trimmed past the
   * cursor). Absent: the follower logs an error and goes on, and the sink stays as it was.
   */
  reset?(reason: string): Promise<void>;
}

/**
 * Where the follower publishes applied changes: the local `ChangeBus`, or in a cluster the shared
 * change log (redis-change-log.ts), whose writes are asynchronous and awaited in order.
 */
export interface ChangePublisher {
  /** Move the position without changes (the starting cursor, events that changed no entity). */
  advance(eventId: number): void;
  /** Publish a batch's changes in order; `throughEventId`: the batch covered events up to it. */
  publish(changes: readonly Change[], throughEventId?: number): void | Promise<void>;
  /** The history can no longer be trusted (the cursor was reset): subscribers must resync. */
  reset(reason: string): void | Promise<void>;
}

/** What the follower reports; every method is optional (a no-op when absent). */
export interface FollowerMetrics {
  eventsApplied(count: number): void;
  lastEventId(id: number): void;
  lagSeconds(seconds: number): void;
  poll(): void;
  pollError(): void;
  gapsDetected(count: number): void;
  gapsGivenUp(count: number): void;
  /** Late ids that arrived while awaited. */
  gapsFilled?(count: number): void;
  /** Events known to exist beyond the cursor (0 when drained). */
  eventsBehind?(count: number): void;
  /** Skipped ids currently awaited. */
  gapsAwaited?(count: number): void;
  /** The cursor could not be trusted: the sink was flushed and streams told to resync. */
  cursorReset?(): void;
  /** Saving the cursor failed (it is retried after the next batch). */
  cursorSaveError?(): void;
}

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export interface EventFollowerOptions {
  /** Where events come from (only `readEvents` and `latestEventId` are used). */
  backend: Pick<Backend, "readEvents" | "latestEventId">;
  /** Where events are applied, before they are published. */
  sink: EventSink;
  /** Where changes are published after being applied (a `ChangeBus`, or a cluster's change log). */
  bus: ChangePublisher;
  /** Sleep after a short page (the log is drained). Default 1000. */
  pollIntervalMs?: number;
  /** Events per poll; a full page is followed at once by another poll (catch-up). Default 500. */
  pageSize?: number;
  /** Longest back-off after consecutive errors; the first back-off is `pollIntervalMs`. Default 30000. */
  maxBackoffMs?: number;
  /** How long a skipped event id is awaited before it is given up. Default 300000 (5 minutes). */
  gapWindowMs?: number;
  /** Re-ask for awaited ids at most this often. Default `pollIntervalMs`. */
  gapRecheckMs?: number;
  /** While catching up, ask the site for its newest id (events behind) at most this often. Default 5000. */
  headRefreshMs?: number;
  /** Resume from this cursor instead of the newest event id (a restart with saved state). */
  initialCursor?: CursorState;
  /** Saves the cursor after every applied batch (and on stop). Absent: nothing is saved. */
  store?: CursorStore;
  logger?: Logger;
  metrics?: Partial<FollowerMetrics>;
  /** Default: the system clock. */
  clock?: Clock;
}

/** How one poll went. */
export interface PollOutcome {
  ok: boolean;
  /** Events applied by this poll (late ids included). */
  applied: number;
  /** The page was full, so more events are probably waiting. */
  fullPage: boolean;
  /** The error's message when not ok. */
  error?: string;
}

/** Where the follower stands, for /readyz and tests. */
export interface FollowerStatus {
  /** The newest event id applied (0 before the cursor is known). */
  lastEventId: number;
  /** The newest event id known to exist on the site. */
  headEventId: number;
  /** `headEventId - lastEventId`, never negative. */
  eventsBehind: number;
  /** See `EventFollower.lagSeconds`. */
  lagSeconds: number;
  /** Skipped ids awaited now. */
  gapsAwaited: number;
  /** Totals since start. */
  gapsDetected: number;
  gapsFilled: number;
  gapsGivenUp: number;
  /** Times the cursor was found too old and the sink flushed. */
  cursorResets: number;
  /** The last poll error, until a poll succeeds. */
  lastError?: string;
  /** Its stable code (`CACHE_STORE_UNAVAILABLE`, `SG_UNAVAILABLE`, …), when it has one: decide by this, not by the message. */
  lastErrorCode?: string;
}

function positiveOption(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a whole number >= 1, got ${String(value)}`);
  return v;
}

export class EventFollower {
  readonly #backend: EventFollowerOptions["backend"];
  readonly #sink: EventSink;
  readonly #bus: ChangePublisher;
  readonly #store: CursorStore | undefined;
  readonly #pollIntervalMs: number;
  readonly #pageSize: number;
  readonly #maxBackoffMs: number;
  readonly #gapWindowMs: number;
  readonly #gapRecheckMs: number;
  readonly #headRefreshMs: number;
  readonly #log: Logger;
  readonly #metrics: Partial<FollowerMetrics>;
  readonly #clock: Clock;

  #cursor: FollowCursor | undefined;
  #controller: AbortController | undefined;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #pollsStarted = 0;
  #pollWaiters: Array<{ after: number; resolve: (outcome: PollOutcome) => void }> = [];
  #consecutiveErrors = 0;
  #ready = false;
  #readyResolve!: () => void;
  readonly #readyPromise: Promise<void>;
  #startedAtMs: number | undefined;
  /** Start time of the last poll that found the log drained: everything created before it is applied. */
  #caughtUpAtMs: number | undefined;
  /** The newest `created_at` applied (the site's clock). */
  #newestAppliedCreatedAtMs: number | undefined;
  #lastError: string | undefined;
  #lastErrorCode: string | undefined;
  #headEventId = 0;
  #headAskedAtMs = -Infinity;
  #recheckedAtMs = -Infinity;
  #recheckOffset = 0;
  #totals = { gapsDetected: 0, gapsFilled: 0, gapsGivenUp: 0, cursorResets: 0 };
  /** The cursor changed since it was last saved. */
  #dirty = false;
  #saveFailing = false;

  constructor(options: EventFollowerOptions) {
    this.#backend = options.backend;
    this.#sink = options.sink;
    this.#bus = options.bus;
    this.#store = options.store;
    this.#pollIntervalMs = positiveOption("pollIntervalMs", options.pollIntervalMs, 1000);
    this.#pageSize = positiveOption("pageSize", options.pageSize, 500);
    this.#maxBackoffMs = positiveOption("maxBackoffMs", options.maxBackoffMs, 30_000);
    this.#gapWindowMs = positiveOption("gapWindowMs", options.gapWindowMs, 300_000);
    this.#gapRecheckMs = positiveOption("gapRecheckMs", options.gapRecheckMs, this.#pollIntervalMs);
    this.#headRefreshMs = positiveOption("headRefreshMs", options.headRefreshMs, 5000);
    this.#log = options.logger ?? SILENT_LOGGER;
    this.#metrics = options.metrics ?? {};
    this.#clock = options.clock ?? Date;
    if (options.initialCursor) {
      this.#cursor = new FollowCursor(options.initialCursor);
      this.#headEventId = this.#cursor.lastAppliedId;
    }
    this.#readyPromise = new Promise((resolve) => (this.#readyResolve = resolve));
  }

  /** True once the starting cursor is known and the first poll has been applied. */
  get ready(): boolean {
    return this.#ready;
  }

  get running(): boolean {
    return this.#loop !== undefined;
  }

  /** The newest event id applied to the sink (0 before the cursor is known). */
  get lastAppliedEventId(): number {
    return this.#cursor?.lastAppliedId ?? 0;
  }

  /**
   * An upper bound, in seconds, on how stale the sink may be: time since the follower last saw
   * the log drained, or since the newest applied event was created, whichever is more recent.
   * It grows while ShotGrid is unreachable. 0 before start.
   */
  get lagSeconds(): number {
    // Before anything is known, count from start: the state at start is all we can vouch for.
    const known =
      this.#caughtUpAtMs === undefined && this.#newestAppliedCreatedAtMs === undefined
        ? this.#startedAtMs
        : Math.max(this.#caughtUpAtMs ?? -Infinity, this.#newestAppliedCreatedAtMs ?? -Infinity);
    if (known === undefined) return 0;
    return Math.max(0, (this.#clock.now() - known) / 1000);
  }

  /** The message of the last poll error, until a poll succeeds (for /readyz reasons). */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** The stable code of the last poll error (see `FollowerStatus.lastErrorCode`), until a poll succeeds. */
  get lastErrorCode(): string | undefined {
    return this.#lastErrorCode;
  }

  /** The cursor as plain data (for saving), or undefined before it is known. */
  get cursorState(): CursorState | undefined {
    return this.#cursor?.toJSON();
  }

  get status(): FollowerStatus {
    const lastEventId = this.lastAppliedEventId;
    const headEventId = Math.max(this.#headEventId, lastEventId);
    return {
      lastEventId,
      headEventId,
      eventsBehind: headEventId - lastEventId,
      lagSeconds: Math.round(this.lagSeconds * 1000) / 1000,
      gapsAwaited: this.#cursor?.skippedCount ?? 0,
      ...this.#totals,
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
      ...(this.#lastErrorCode !== undefined ? { lastErrorCode: this.#lastErrorCode } : {}),
    };
  }

  /** Resolves once `ready`; rejects if `signal` aborts first. */
  whenReady(signal?: AbortSignal): Promise<void> {
    if (!signal) return this.#readyPromise;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason ?? new Error("aborted"));
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      void this.#readyPromise.then(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }

  /** Start polling in the background. Calling it while running does nothing. */
  start(): void {
    if (this.#loop) return;
    const controller = new AbortController();
    this.#controller = controller;
    this.#startedAtMs ??= this.#clock.now();
    // Resuming from a known cursor: the bus's history starts there (no-op if it already has one).
    if (this.#cursor) this.#bus.advance(this.#cursor.lastAppliedId);
    this.#loop = this.#run(controller.signal)
      .catch((err: unknown) => {
        // Only a throwing logger or metrics sink gets here; report it rather than crash the process.
        this.#log.error({ err: errorMessage(err) }, "event follower loop ended by an error");
      })
      .finally(async () => {
        // Keep what the last batches did (gaps filled or given up) for the next run.
        await this.#save();
        this.#loop = undefined;
        for (const waiter of this.#pollWaiters.splice(0)) {
          waiter.resolve({ ok: false, applied: 0, fullPage: false, error: "the event follower stopped" });
        }
      });
  }

  /**
   * Stop: abort the in-flight request, let a batch being applied finish (so cache and bus stay
   * in step), save the cursor, and resolve once the loop has ended. The cursor is kept; `start`
   * resumes from it.
   */
  async stop(): Promise<void> {
    this.#controller?.abort();
    await this.#loop;
  }

  /**
   * Poll now instead of waiting for the interval (a webhook hint, a test). Resolves with the
   * outcome of a poll that started after this call. Cuts an error back-off short too.
   */
  pollNow(): Promise<PollOutcome> {
    if (!this.#loop) return Promise.reject(new Error("the event follower is not running (call start() first)"));
    const promise = new Promise<PollOutcome>((resolve) => this.#pollWaiters.push({ after: this.#pollsStarted, resolve }));
    this.#wake?.();
    return promise;
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const pollNumber = ++this.#pollsStarted;
      const pollStartedAt = this.#clock.now();
      let outcome: PollOutcome;
      let delayMs: number;
      try {
        outcome = await this.#pollOnce(signal);
        this.#consecutiveErrors = 0;
        this.#lastError = undefined;
        this.#lastErrorCode = undefined;
        // Fixed rate: the interval runs from the start of one poll to the start of the next, so
        // the time a poll takes (site latency, applying the page) does not stretch the cycle and
        // a change waits on average half the interval, not half of interval plus poll time.
        delayMs = outcome.fullPage ? 0 : Math.max(0, this.#pollIntervalMs - (this.#clock.now() - pollStartedAt));
      } catch (err) {
        if (signal.aborted) break;
        const message = errorMessage(err);
        this.#consecutiveErrors++;
        this.#lastError = message;
        this.#lastErrorCode = errorCode(err);
        this.#metrics.pollError?.();
        delayMs = this.#backoffMs();
        this.#log.warn(
          { err: message, code: this.#lastErrorCode, attempt: this.#consecutiveErrors, retryInMs: delayMs },
          "event poll failed; cursor kept, retrying",
        );
        outcome = { ok: false, applied: 0, fullPage: false, error: message };
      }
      this.#metrics.lagSeconds?.(this.lagSeconds);
      const status = this.status;
      this.#metrics.eventsBehind?.(status.eventsBehind);
      this.#metrics.gapsAwaited?.(status.gapsAwaited);
      this.#settle(pollNumber, outcome);
      if (this.#pollWaiters.length > 0) delayMs = 0;
      if (delayMs > 0) await this.#sleep(delayMs, signal);
    }
  }

  async #pollOnce(signal: AbortSignal): Promise<PollOutcome> {
    const cursor = this.#cursor ?? (await this.#initialCursor(signal));
    const startedAtMs = this.#clock.now();
    let applied = await this.#recheckGaps(cursor, signal);
    const page = await this.#backend.readEvents({ afterId: cursor.lastAppliedId, limit: this.#pageSize, signal });
    this.#metrics.poll?.();
    const fresh = freshEvents(page, cursor);
    if (fresh.length > 0 && fresh[0]!.id > cursor.lastAppliedId + 1) await this.#checkRetention(cursor, signal);
    if (fresh.length > 0) {
      await this.#applyBatch(cursor, fresh);
      applied += fresh.length;
    }
    const givenUp = cursor.expire(this.#clock.now(), this.#gapWindowMs, this.#newestAppliedCreatedAtMs);
    if (givenUp.length > 0) {
      this.#dirty = true;
      this.#totals.gapsGivenUp += givenUp.length;
      this.#metrics.gapsGivenUp?.(givenUp.length);
      this.#log.warn(
        { count: givenUp.length, ids: givenUp.slice(0, 20), windowMs: this.#gapWindowMs },
        "skipped event ids given up: not committed within the gap window (rolled back, or too late to wait for)",
      );
    }
    const fullPage = page.length >= this.#pageSize;
    if (fullPage) await this.#refreshHead(signal);
    else {
      this.#caughtUpAtMs = startedAtMs;
      this.#headEventId = Math.max(this.#headEventId, cursor.lastAppliedId);
    }
    await this.#save();
    if (!this.#ready) {
      this.#ready = true;
      this.#readyResolve();
      this.#log.info({ lastEventId: cursor.lastAppliedId, gapsAwaited: cursor.skippedCount }, "event follower ready");
    }
    return { ok: true, applied, fullPage };
  }

  async #initialCursor(signal: AbortSignal): Promise<FollowCursor> {
    // Whatever existed before this moment is not ours to follow (the cache loads it fresh).
    const askedAtMs = this.#clock.now();
    const latest = await this.#backend.latestEventId(signal);
    const cursor = new FollowCursor({ lastAppliedId: latest, skipped: [] });
    this.#cursor = cursor;
    this.#caughtUpAtMs = askedAtMs;
    this.#headEventId = latest;
    this.#dirty = true;
    this.#bus.advance(latest);
    this.#log.info({ eventId: latest }, "event follower starting after the newest event");
    return cursor;
  }

  /** Ask by id for awaited skipped ids (one small request), applying those that arrived. */
  async #recheckGaps(cursor: FollowCursor, signal: AbortSignal): Promise<number> {
    const now = this.#clock.now();
    if (cursor.skippedCount === 0 || now - this.#recheckedAtMs < this.#gapRecheckMs) return 0;
    this.#recheckedAtMs = now;
    const awaited = cursor.awaitedIds();
    // More awaited ids than one request should carry: take turns, so each is asked for in time.
    if (this.#recheckOffset >= awaited.length) this.#recheckOffset = 0;
    const ids = awaited.slice(this.#recheckOffset, this.#recheckOffset + this.#pageSize);
    this.#recheckOffset += ids.length;
    const found = await this.#backend.readEvents({ ids, limit: ids.length, signal });
    const late = freshEvents(found, cursor).filter((e) => cursor.isAwaited(e.id));
    if (late.length === 0) return 0;
    this.#log.info({ count: late.length, ids: late.slice(0, 20).map((e) => e.id) }, "late event ids arrived; applying them");
    await this.#applyBatch(cursor, late);
    return late.length;
  }

  /**
   * The page starts beyond cursor+1: a commit in flight, or the log was trimmed past the cursor.
   * One tiny request (the oldest retained id) tells which; trimmed means events are lost to us,
   * so the sink is flushed and streams told to resync, and the cursor jumps to the oldest id.
   */
  async #checkRetention(cursor: FollowCursor, signal: AbortSignal): Promise<void> {
    const [oldest] = await this.#backend.readEvents({ afterId: 0, limit: 1, signal });
    if (!oldest || oldest.id <= cursor.lastAppliedId + 1) return;
    const from = cursor.lastAppliedId;
    const reason = `event cursor ${from} is older than the site's retained event log (oldest event id ${oldest.id}); cache flushed`;
    this.#log.warn({ cursor: from, oldestEventId: oldest.id }, "event cursor older than the retained log: flushing the cache and resyncing streams");
    if (this.#sink.reset) await this.#sink.reset(reason);
    else this.#log.error({ cursor: from }, "the sink cannot be flushed: it may hold changes the follower missed");
    cursor.reset(oldest.id - 1);
    this.#dirty = true;
    this.#totals.cursorResets++;
    this.#metrics.cursorReset?.();
    // Move first, then reset: a client resuming from before the trim must be told to resync.
    this.#bus.advance(oldest.id - 1);
    await this.#bus.reset(reason);
  }

  /** Apply, record in the cursor, publish, in that order. */
  async #applyBatch(cursor: FollowCursor, fresh: EventLogEntry[]): Promise<void> {
    // Apply first, publish second: a subscriber told of a change must find the cache fresh.
    await this.#sink.applyEvents(fresh);
    const advance = cursor.advance(
      fresh.map((e) => ({ id: e.id, createdAtMs: Date.parse(e.created_at) })),
      this.#clock.now(),
    );
    this.#dirty = true;
    if (advance.gaps.length > 0 || advance.overflow > 0) {
      const count = advance.gaps.length + advance.overflow;
      this.#totals.gapsDetected += count;
      this.#metrics.gapsDetected?.(count);
      this.#log.info(
        { count: advance.gaps.length, ids: advance.gaps.slice(0, 20), notRecorded: advance.overflow },
        "event ids skipped (not yet committed, or never coming); awaiting them",
      );
    }
    if (advance.overflow > 0) {
      // Too many to track: those are given up at once, and said so.
      this.#totals.gapsGivenUp += advance.overflow;
      this.#metrics.gapsGivenUp?.(advance.overflow);
    }
    if (advance.filled.length > 0) {
      this.#totals.gapsFilled += advance.filled.length;
      this.#metrics.gapsFilled?.(advance.filled.length);
    }
    const changes = fresh.map(changeFromEvent).filter((c): c is Change => c !== null);
    await this.#bus.publish(changes, cursor.lastAppliedId);
    for (const e of fresh) {
      const created = Date.parse(e.created_at);
      if (Number.isFinite(created)) this.#newestAppliedCreatedAtMs = Math.max(this.#newestAppliedCreatedAtMs ?? created, created);
    }
    this.#headEventId = Math.max(this.#headEventId, cursor.lastAppliedId);
    this.#metrics.eventsApplied?.(fresh.length);
    this.#metrics.lastEventId?.(cursor.lastAppliedId);
    await this.#save();
  }

  /** While catching up, learn how far the head is (for "events behind"); throttled. */
  async #refreshHead(signal: AbortSignal): Promise<void> {
    const now = this.#clock.now();
    if (now - this.#headAskedAtMs < this.#headRefreshMs) return;
    this.#headAskedAtMs = now;
    try {
      this.#headEventId = Math.max(this.#headEventId, await this.#backend.latestEventId(signal));
    } catch (err) {
      if (signal.aborted) throw err;
      // Only a number for dashboards: the next poll carries on either way.
      this.#log.debug({ err: errorMessage(err) }, "could not read the newest event id");
    }
  }

  /** Save the cursor when it changed. A failure is logged (once per failing spell) and retried after the next batch. */
  async #save(): Promise<void> {
    if (!this.#store || !this.#dirty || !this.#cursor) return;
    const state = this.#cursor.toJSON();
    this.#dirty = false;
    try {
      await this.#store.save(state);
      if (this.#saveFailing) this.#log.info({ store: this.#store.description }, "event cursor saved again");
      this.#saveFailing = false;
    } catch (err) {
      this.#dirty = true;
      this.#metrics.cursorSaveError?.();
      if (!this.#saveFailing) {
        this.#log.error(
          { store: this.#store.description, err: errorMessage(err) },
          "cannot save the event cursor; a restart would resume from an older one (events re-applied, none lost)",
        );
      }
      this.#saveFailing = true;
    }
  }

  #settle(pollNumber: number, outcome: PollOutcome): void {
    this.#pollWaiters = this.#pollWaiters.filter((waiter) => {
      if (waiter.after >= pollNumber) return true;
      waiter.resolve(outcome);
      return false;
    });
  }

  #backoffMs(): number {
    const exp = this.#pollIntervalMs * 2 ** Math.min(this.#consecutiveErrors - 1, 20);
    // Jitter spreads retries of several instances after a shared outage.
    return Math.round(Math.min(this.#maxBackoffMs, exp) * (0.8 + Math.random() * 0.4));
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      // A stop that came while the poll was finishing must not leave the loop asleep.
      if (signal.aborted) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.#wake = done;
    });
  }
}

/** The page's events not yet applied, ascending by id, each once. */
function freshEvents(page: EventLogEntry[], cursor: FollowCursor): EventLogEntry[] {
  const seen = new Set<number>();
  const fresh: EventLogEntry[] = [];
  for (const event of page) {
    if (!Number.isSafeInteger(event.id) || event.id <= 0 || seen.has(event.id) || !cursor.isNew(event.id)) continue;
    seen.add(event.id);
    fresh.push(event);
  }
  // The backend sorts by id; sorting again costs nothing on sorted input and protects the order.
  return fresh.sort((a, b) => a.id - b.id);
}
