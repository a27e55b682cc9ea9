/**
 * The event follower: polls ShotGrid's event log, applies each batch to the cache, then
 * publishes the batch's changes on the change bus. Applying before publishing means a client
 * told of a change and re-reading gets the new data (design invariant 1).
 *
 * It never skips an event: on any error (backend down, sink failure) the cursor stays put and
 * the same page is asked for again after a back-off, so delivery to the sink is at-least-once
 * and in id order. It never crashes: errors are logged and counted.
 *
 * First version: starts from the newest event id (or from `initialCursor`), detects skipped ids
 * and records them in the cursor's gap set without waiting for them; a skipped id is given up
 * after `gapWindowMs`.
 */
import { BackendError } from "../shotgrid/errors.ts";
import type { Backend, EventLogEntry } from "../shotgrid/types.ts";
import type { ChangeBus } from "./change-bus.ts";
import { changeFromEvent, type Change } from "./change.ts";
import { FollowCursor, type CursorState } from "./follow-cursor.ts";

/** Where applied events go. `EntityCache` satisfies it. */
export interface EventSink {
  /** Apply rows in id order; must tolerate seeing a row again (delivery is at-least-once). */
  applyEvents(events: EventLogEntry[]): Promise<void>;
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
}

/** A structured logger; pino's satisfies it. */
export interface FollowerLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
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
  /** Where changes are published after being applied. */
  bus: ChangeBus;
  /** Sleep after a short page (the log is drained). Default 1000. */
  pollIntervalMs?: number;
  /** Events per poll; a full page is followed at once by another poll (catch-up). Default 500. */
  pageSize?: number;
  /** Longest back-off after consecutive errors; the first back-off is `pollIntervalMs`. Default 30000. */
  maxBackoffMs?: number;
  /** How long a skipped event id stays in the gap set before it is given up. Default 300000 (5 minutes). */
  gapWindowMs?: number;
  /** Resume from this cursor instead of the newest event id (a restart with saved state). */
  initialCursor?: CursorState;
  logger?: FollowerLogger;
  metrics?: Partial<FollowerMetrics>;
  /** Default: the system clock. */
  clock?: Clock;
}

/** How one poll went. */
export interface PollOutcome {
  ok: boolean;
  /** Events applied by this poll. */
  applied: number;
  /** The page was full, so more events are probably waiting. */
  fullPage: boolean;
  /** The error's message when not ok. */
  error?: string;
}

const SILENT: FollowerLogger = { debug() {}, info() {}, warn() {}, error() {} };

function positiveOption(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a whole number >= 1, got ${String(value)}`);
  return v;
}

export class EventFollower {
  readonly #backend: EventFollowerOptions["backend"];
  readonly #sink: EventSink;
  readonly #bus: ChangeBus;
  readonly #pollIntervalMs: number;
  readonly #pageSize: number;
  readonly #maxBackoffMs: number;
  readonly #gapWindowMs: number;
  readonly #log: FollowerLogger;
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
  #newestAppliedCreatedAtMs: number | undefined;
  #lastError: string | undefined;

  constructor(options: EventFollowerOptions) {
    this.#backend = options.backend;
    this.#sink = options.sink;
    this.#bus = options.bus;
    this.#pollIntervalMs = positiveOption("pollIntervalMs", options.pollIntervalMs, 1000);
    this.#pageSize = positiveOption("pageSize", options.pageSize, 500);
    this.#maxBackoffMs = positiveOption("maxBackoffMs", options.maxBackoffMs, 30_000);
    this.#gapWindowMs = positiveOption("gapWindowMs", options.gapWindowMs, 300_000);
    this.#log = options.logger ?? SILENT;
    this.#metrics = options.metrics ?? {};
    this.#clock = options.clock ?? Date;
    if (options.initialCursor) this.#cursor = new FollowCursor(options.initialCursor);
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

  /** The cursor as plain data (for saving), or undefined before it is known. */
  get cursorState(): CursorState | undefined {
    return this.#cursor?.toJSON();
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
        this.#log.error({ err: err instanceof Error ? err.message : String(err) }, "event follower loop ended by an error");
      })
      .finally(() => {
        this.#loop = undefined;
        for (const waiter of this.#pollWaiters.splice(0)) {
          waiter.resolve({ ok: false, applied: 0, fullPage: false, error: "the event follower stopped" });
        }
      });
  }

  /**
   * Stop: abort the in-flight request, let a batch being applied finish (so cache and bus stay
   * in step), and resolve once the loop has ended. The cursor is kept; `start` resumes from it.
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
      let outcome: PollOutcome;
      let delayMs: number;
      try {
        outcome = await this.#pollOnce(signal);
        this.#consecutiveErrors = 0;
        this.#lastError = undefined;
        delayMs = outcome.fullPage ? 0 : this.#pollIntervalMs;
      } catch (err) {
        if (signal.aborted) break;
        const message = err instanceof Error ? err.message : String(err);
        this.#consecutiveErrors++;
        this.#lastError = message;
        this.#metrics.pollError?.();
        delayMs = this.#backoffMs();
        this.#log.warn(
          { err: message, code: err instanceof BackendError ? err.code : undefined, attempt: this.#consecutiveErrors, retryInMs: delayMs },
          "event poll failed; cursor kept, retrying",
        );
        outcome = { ok: false, applied: 0, fullPage: false, error: message };
      }
      this.#metrics.lagSeconds?.(this.lagSeconds);
      this.#settle(pollNumber, outcome);
      if (this.#pollWaiters.length > 0) delayMs = 0;
      if (delayMs > 0) await this.#sleep(delayMs, signal);
    }
  }

  async #pollOnce(signal: AbortSignal): Promise<PollOutcome> {
    const cursor = this.#cursor ?? (await this.#initialCursor(signal));
    const startedAtMs = this.#clock.now();
    const page = await this.#backend.readEvents({ afterId: cursor.lastAppliedId, limit: this.#pageSize, signal });
    this.#metrics.poll?.();
    const fresh = freshEvents(page, cursor);
    if (fresh.length > 0) {
      // Apply first, publish second: a subscriber told of a change must find the cache fresh.
      await this.#sink.applyEvents(fresh);
      this.#recordApplied(cursor, fresh);
    }
    const givenUp = cursor.expire(this.#clock.now(), this.#gapWindowMs);
    if (givenUp.length > 0) {
      this.#metrics.gapsGivenUp?.(givenUp.length);
      this.#log.warn({ count: givenUp.length, ids: givenUp.slice(0, 20) }, "skipped event ids given up after the gap window");
    }
    const fullPage = page.length >= this.#pageSize;
    if (!fullPage) this.#caughtUpAtMs = startedAtMs;
    if (!this.#ready) {
      this.#ready = true;
      this.#readyResolve();
      this.#log.info({ lastEventId: cursor.lastAppliedId }, "event follower ready");
    }
    return { ok: true, applied: fresh.length, fullPage };
  }

  async #initialCursor(signal: AbortSignal): Promise<FollowCursor> {
    // Whatever existed before this moment is not ours to follow (the cache loads it fresh).
    const askedAtMs = this.#clock.now();
    const latest = await this.#backend.latestEventId(signal);
    const cursor = new FollowCursor({ lastAppliedId: latest, skipped: [] });
    this.#cursor = cursor;
    this.#caughtUpAtMs = askedAtMs;
    this.#bus.advance(latest);
    this.#log.info({ eventId: latest }, "event follower starting after the newest event");
    return cursor;
  }

  #recordApplied(cursor: FollowCursor, fresh: EventLogEntry[]): void {
    const advance = cursor.advance(
      fresh.map((e) => e.id),
      this.#clock.now(),
    );
    if (advance.gaps.length > 0 || advance.overflow > 0) {
      this.#metrics.gapsDetected?.(advance.gaps.length + advance.overflow);
      this.#log.warn(
        { count: advance.gaps.length, ids: advance.gaps.slice(0, 20), notRecorded: advance.overflow },
        "event ids skipped (not yet committed, or never coming)",
      );
    }
    const changes = fresh.map(changeFromEvent).filter((c): c is Change => c !== null);
    this.#bus.publish(changes, cursor.lastAppliedId);
    const newest = Date.parse(fresh[fresh.length - 1]!.created_at);
    if (Number.isFinite(newest)) this.#newestAppliedCreatedAtMs = Math.max(this.#newestAppliedCreatedAtMs ?? newest, newest);
    this.#metrics.eventsApplied?.(fresh.length);
    this.#metrics.lastEventId?.(cursor.lastAppliedId);
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
