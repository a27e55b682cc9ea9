/**
 * The change bus: the follower publishes each applied batch's changes; WatchChanges streams
 * subscribe with filters. Memory stays bounded (design invariant 4): each subscriber has a
 * bounded queue and is told to resync and dropped when it overflows, and the replay history is
 * a fixed-size ring.
 *
 * Resuming (`sinceEventId`) is gapless because the history is read and the subscriber is
 * registered in the same synchronous step: no publish can fall between the two.
 *
 * Late ids: ShotGrid commits ids out of order, so the follower may publish N after N+1 (a
 * filled gap). The history is therefore kept in publication order, each change with the bus
 * position (newest event id) just before it was published, and a resume from X replays every
 * change published after the bus first reached X: changes with an id above X, plus late
 * changes below X published after that point. A client resumes from the highest event id it
 * has seen (or the `resumeEventId` of a resync, or a heartbeat's last event id); a late change
 * it has not seen is replayed, one it has seen is not.
 *
 * Positions announced: a heartbeat (or a resync's resumeEventId) must only ever carry a position
 * the bus has reached, because a client resuming from it is promised everything after it. Before
 * the bus knows where it stands (`positioned` false) it has nothing true to announce, so the
 * stream waits (`whenPositioned`). A resume from beyond the newest id is answered with a resync:
 * skipping changes up to an id this bus never reached could skip changes the client never saw.
 */
import type { Change } from "./change.ts";
import { ReplayBuffer } from "./replay-buffer.ts";

/** What a subscriber reads. The shape matches the service's ChangeFeed contract (src/service/change-feed.ts). */
export type BusMessage =
  | { kind: "change"; change: Change }
  | {
      kind: "resync";
      /** Why the subscriber must drop its local copies. */
      reason: string;
      /** Changes after this event id follow on this subscription (when it stays open). */
      resumeEventId: number;
      /** The subscription ends right after this message ("subscriber too slow"). */
      closes: boolean;
    };

export interface ChangeBusOptions {
  /** How many changes to keep for resuming subscribers (`sinceEventId`). Default 100000; 0 disables replay. */
  replayEvents?: number;
  /**
   * How many live messages may wait for one subscriber. One more and the subscriber gets a
   * resync message ("subscriber too slow") and is closed. Default 1000.
   */
  subscriberQueue?: number;
  /**
   * Told when a batch listener threw (a bug in it). The bus carries on: the other listeners hear
   * the batch, and its position still moves. Default: ignored.
   */
  onListenerError?: (err: unknown) => void;
}

export interface SubscribeOptions {
  /** Only changes to these entity types; empty or absent means all. */
  entityTypes?: readonly string[];
  /** Only changes in these projects (0: entities with no project); empty or absent means all. */
  projectIds?: readonly number[];
  /**
   * The highest event id the client has seen (or a resync's `resumeEventId`, or a heartbeat's
   * last event id): replay every buffered change published after the bus reached it (ids above
   * it, and late ids below it published later), then go live. 0 or absent: live only. Older
   * than the bus can replay, or beyond the newest id it has reached: a resync message first
   * (resumeEventId: the bus's position), then live.
   */
  sinceEventId?: number;
  /** Aborting ends the subscription (its iterator finishes). */
  signal?: AbortSignal;
}

export const DEFAULT_REPLAY_EVENTS = 100_000;
export const DEFAULT_SUBSCRIBER_QUEUE = 1000;

/** A change in the replay history, with the bus position just before it was published. */
interface Published {
  change: Change;
  positionBefore: number;
}

/** Was `p` published after the bus first reached `since` (so a client resuming from `since` has not seen it)? */
function publishedAfter(p: Published, since: number): boolean {
  return p.change.eventId > since || p.positionBefore >= since;
}

/**
 * Hears every published batch at once, in publication order (the server's streaming path for
 * WatchChanges groups its streams behind one listener instead of one subscription each).
 */
export interface BatchListener {
  /** The changes of one `publish`, after the bus's position moved past them. */
  batch(changes: readonly Change[]): void;
  /** `reset(reason)` was called: every listener's streams must resync (they stay open). */
  reset(reason: string): void;
}

/** A resume's replay (`history`): the changes to send first, or why it cannot replay (send a resync). */
export type History = { refused: string; changes?: undefined } | { refused?: undefined; changes: Change[] };

export class ChangeBus {
  readonly #replay: ReplayBuffer<Published>;
  readonly #queueLimit: number;
  readonly #subscribers = new Set<ChangeSubscription>();
  readonly #listeners = new Set<BatchListener>();
  readonly #onListenerError: ((err: unknown) => void) | undefined;
  #lastEventId = 0;
  /** A replay from `sinceEventId >= #floor` is complete; undefined until the bus knows where its history starts. */
  #floor: number | undefined;
  /** Waiting for the bus to be positioned (`until` undefined) or to reach `until`. */
  #positionWaiters: Array<{ until: number | undefined; resolve: () => void }> = [];

  constructor(options: ChangeBusOptions = {}) {
    const replayEvents = options.replayEvents ?? DEFAULT_REPLAY_EVENTS;
    const queue = options.subscriberQueue ?? DEFAULT_SUBSCRIBER_QUEUE;
    if (!Number.isSafeInteger(replayEvents) || replayEvents < 0) {
      throw new RangeError(`replayEvents must be a whole number >= 0, got ${replayEvents}`);
    }
    if (!Number.isSafeInteger(queue) || queue < 1) {
      throw new RangeError(`subscriberQueue must be a whole number >= 1, got ${queue}`);
    }
    this.#replay = new ReplayBuffer<Published>(replayEvents);
    this.#queueLimit = queue;
    this.#onListenerError = options.onListenerError;
  }

  /** The newest event id the bus has been told about (for heartbeats); 0 before any. */
  get lastEventId(): number {
    return this.#lastEventId;
  }

  /** The smallest `sinceEventId` that replays without a resync; undefined while the bus has no history. */
  get oldestResumableEventId(): number | undefined {
    return this.#floor;
  }

  /** True once the bus knows its position (first `advance` or `publish`): `lastEventId` is then true. */
  get positioned(): boolean {
    return this.#floor !== undefined;
  }

  /** Resolves true once positioned; false if `signal` aborts first. */
  whenPositioned(signal: AbortSignal): Promise<boolean> {
    return this.#waitFor(undefined, signal);
  }

  /**
   * Resolves true once `lastEventId >= eventId`; false if `signal` aborts first. (In a cluster
   * an instance may be a moment behind the one a client comes from.)
   */
  whenReached(eventId: number, signal: AbortSignal): Promise<boolean> {
    return this.#waitFor(eventId, signal);
  }

  #reached(until: number | undefined): boolean {
    return until === undefined ? this.positioned : this.positioned && this.#lastEventId >= until;
  }

  #waitFor(until: number | undefined, signal: AbortSignal): Promise<boolean> {
    if (this.#reached(until)) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter = {
        until,
        resolve: (): void => {
          signal.removeEventListener("abort", onAbort);
          resolve(true);
        },
      };
      const onAbort = (): void => {
        this.#positionWaiters = this.#positionWaiters.filter((w) => w !== waiter);
        resolve(false);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#positionWaiters.push(waiter);
    });
  }

  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  /** How many live messages may wait for one subscriber before it is told to resync ("subscriber too slow"). */
  get subscriberQueue(): number {
    return this.#queueLimit;
  }

  /**
   * Hear every batch as it is published; returns the function that stops it. Pair with `history`
   * in one synchronous step (no await between) to resume without a gap or a duplicate.
   */
  listen(listener: BatchListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * What a subscriber resuming from `sinceEventId` (> 0) gets first: the buffered changes
   * published after the bus reached it that `matches` keeps, or why it cannot replay exactly.
   * The one rule `subscribe` uses too.
   */
  history(sinceEventId: number, matches: (change: Change) => boolean): History {
    const refused = this.#refusedResume(sinceEventId);
    if (refused !== undefined) return { refused };
    return { changes: this.#replay.filter((p) => publishedAfter(p, sinceEventId) && matches(p.change)).map((p) => p.change) };
  }

  /**
   * Move the bus's position to `eventId` without changes (events that changed no entity, or
   * the follower's starting cursor). The first call sets where the replay history starts.
   */
  advance(eventId: number): void {
    if (!Number.isSafeInteger(eventId) || eventId < 0) throw new RangeError(`eventId must be a whole number >= 0, got ${eventId}`);
    this.#floor ??= eventId;
    if (eventId > this.#lastEventId) this.#lastEventId = eventId;
    this.#notifyPositioned();
  }

  #notifyPositioned(): void {
    if (this.#positionWaiters.length === 0) return;
    const due = this.#positionWaiters.filter((w) => this.#reached(w.until));
    if (due.length === 0) return;
    this.#positionWaiters = this.#positionWaiters.filter((w) => !due.includes(w));
    for (const w of due) w.resolve();
  }

  /**
   * Fan out changes, in order, to every matching subscriber and keep them for replay.
   * `throughEventId`: the batch covered events up to this id (some of which may not be changes).
   */
  publish(changes: readonly Change[], throughEventId?: number): void {
    if (changes.length > 0) this.#floor ??= changes[0]!.eventId - 1;
    for (const change of changes) {
      const positionBefore = this.#lastEventId;
      const evicted = this.#replay.push({ change, positionBefore });
      if (evicted) {
        // A resume from below this threshold would have replayed the evicted change.
        const threshold = Math.max(evicted.change.eventId, evicted.positionBefore + 1);
        if (this.#floor === undefined || threshold > this.#floor) this.#floor = threshold;
      }
      if (change.eventId > this.#lastEventId) this.#lastEventId = change.eventId;
      for (const subscriber of this.#subscribers) subscriber.offer(change);
    }
    if (changes.length > 0) for (const listener of this.#listeners) this.#tell(() => listener.batch(changes));
    if (throughEventId !== undefined) this.advance(throughEventId);
    this.#notifyPositioned();
  }

  subscribe(options: SubscribeOptions = {}): ChangeSubscription {
    const entityTypes = checkList("entityTypes", options.entityTypes, (v) => typeof v === "string" && v.length > 0);
    const projectIds = checkList("projectIds", options.projectIds, (v) => Number.isSafeInteger(v) && (v as number) >= 0);
    const since = options.sinceEventId ?? 0;
    if (!Number.isSafeInteger(since) || since < 0) {
      throw new RangeError(`sinceEventId must be a whole number >= 0, got ${String(options.sinceEventId)}`);
    }
    const subscription = new ChangeSubscription(
      {
        entityTypes: entityTypes && new Set(entityTypes),
        projectIds: projectIds && new Set(projectIds),
        queueLimit: this.#queueLimit,
        lastEventId: () => this.#lastEventId,
        detach: (s) => this.#subscribers.delete(s),
      },
      options.signal,
    );
    if (subscription.done) return subscription;
    // From here to the `add` below nothing awaits, so no publish can slip between the
    // history read and the registration: no gap, no duplicate.
    if (since > 0) {
      const history = this.history(since, (c) => subscription.matches(c));
      if (history.refused !== undefined) {
        subscription.start({ kind: "resync", reason: history.refused, resumeEventId: this.#lastEventId, closes: false }, []);
      } else {
        subscription.start(undefined, history.changes);
      }
    }
    this.#subscribers.add(subscription);
    return subscription;
  }

  /** Why a resume from `since` (> 0) cannot replay exactly what the client missed; undefined if it can. */
  #refusedResume(since: number): string | undefined {
    if (this.#floor === undefined) return `cannot replay from event ${since}: no change history yet`;
    // Beyond the newest id reached: an id from another cluster instance that is ahead, another
    // site, or no real id. Skipping changes up to it could skip some the client never saw, and
    // it may never come (WatchChanges waits a moment for it first), so: resync from here.
    if (since > this.#lastEventId) return `cannot replay from event ${since}: it is beyond the newest event id applied here (${this.#lastEventId})`;
    if (since < this.#floor) return `cannot replay from event ${since}: the oldest resumable event id is ${this.#floor}`;
    return undefined;
  }

  /**
   * Forget the replay history and tell every subscriber to resync (they stay open). For when
   * the cache was flushed: nothing published before can be trusted to resume from.
   */
  reset(reason: string): void {
    this.#replay.clear();
    // Unpositioned, it stays so: its first advance sets the floor (announcing 0 now would be false).
    if (this.#floor !== undefined) this.#floor = this.#lastEventId;
    for (const subscriber of this.#subscribers) subscriber.resync(reason, false);
    for (const listener of this.#listeners) this.#tell(() => listener.reset(reason));
  }

  /** Run one listener: its throw must not keep the others from hearing, nor stop the publish. */
  #tell(hear: () => void): void {
    try {
      hear();
    } catch (err) {
      try {
        this.#onListenerError?.(err);
      } catch {
        // A failing report must not undo the isolation.
      }
    }
  }

  /** End every subscription (graceful shutdown); later subscriptions still work. */
  close(): void {
    for (const subscriber of [...this.#subscribers]) void subscriber.return();
  }
}

function checkList<T>(name: string, list: readonly T[] | undefined, valid: (v: unknown) => boolean): readonly T[] | undefined {
  if (list === undefined || list === null) return undefined;
  if (!Array.isArray(list)) throw new TypeError(`${name} must be a list`);
  list.forEach((v, i) => {
    if (!valid(v)) throw new TypeError(`${name}[${i}] is not valid: ${JSON.stringify(v)}`);
  });
  return list.length > 0 ? list : undefined;
}

interface SubscriptionSetup {
  entityTypes: Set<string> | undefined;
  projectIds: Set<number> | undefined;
  queueLimit: number;
  lastEventId: () => number;
  detach: (s: ChangeSubscription) => void;
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * One subscriber: an async iterator of bus messages. Order: an initial resync (if any), then
 * the replayed changes, then live ones. Ends when returned, aborted, closed by the bus, or
 * right after a "subscriber too slow" resync.
 */
export class ChangeSubscription implements AsyncIterableIterator<BusMessage, undefined> {
  readonly #setup: SubscriptionSetup;
  readonly #signal: AbortSignal | undefined;
  #first: BusMessage | undefined;
  #replay: Change[] = [];
  #replayIndex = 0;
  #queue: BusMessage[] = [];
  #waiters: Array<(result: IteratorResult<BusMessage, undefined>) => void> = [];
  /** No more messages will be accepted. */
  #detached = false;
  /** The iterator has finished (after draining what was left, if detached by a resync). */
  #done = false;
  readonly #onAbort = (): void => void this.return();

  constructor(setup: SubscriptionSetup, signal: AbortSignal | undefined) {
    this.#setup = setup;
    this.#signal = signal;
    if (signal?.aborted) {
      this.#detached = true;
      this.#done = true;
    } else {
      signal?.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  /** True once the iterator has finished. */
  get done(): boolean {
    return this.#done;
  }

  /** Live messages waiting to be read (the replay is not counted: it is already bounded). */
  get queued(): number {
    return this.#queue.length;
  }

  /** @internal Set the initial messages; called by the bus before registering. */
  start(first: BusMessage | undefined, replay: Change[]): void {
    this.#first = first;
    this.#replay = replay;
  }

  matches(change: Change): boolean {
    const { entityTypes, projectIds } = this.#setup;
    return (!entityTypes || entityTypes.has(change.entityType)) && (!projectIds || projectIds.has(change.projectId));
  }

  /** @internal Called by the bus for each published change. */
  offer(change: Change): void {
    if (this.#detached || !this.matches(change)) return;
    if (this.#queue.length >= this.#setup.queueLimit) {
      this.resync("subscriber too slow", true);
      return;
    }
    this.#push({ kind: "change", change });
  }

  /** @internal Drop everything pending and deliver a resync; `close` ends the subscription after it. */
  resync(reason: string, close: boolean): void {
    if (this.#detached) return;
    this.#first = undefined;
    this.#replay = [];
    this.#replayIndex = 0;
    this.#queue = [];
    if (close) this.#detach();
    this.#push({ kind: "resync", reason, resumeEventId: this.#setup.lastEventId(), closes: close });
  }

  next(): Promise<IteratorResult<BusMessage, undefined>> {
    const message = this.#take();
    if (message) return Promise.resolve({ done: false, value: message });
    if (this.#detached) return Promise.resolve(this.#finish());
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  return(): Promise<IteratorResult<BusMessage, undefined>> {
    this.#detach();
    this.#first = undefined;
    this.#replay = [];
    this.#queue = [];
    return Promise.resolve(this.#finish());
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #take(): BusMessage | undefined {
    if (this.#first) {
      const first = this.#first;
      this.#first = undefined;
      return first;
    }
    if (this.#replayIndex < this.#replay.length) {
      const change = this.#replay[this.#replayIndex++]!;
      if (this.#replayIndex === this.#replay.length) {
        this.#replay = [];
        this.#replayIndex = 0;
      }
      return { kind: "change", change };
    }
    return this.#queue.shift();
  }

  #push(message: BusMessage): void {
    const waiter = this.#waiters.shift();
    // A waiter exists only when nothing was pending, so handing over directly keeps order.
    if (waiter) waiter({ done: false, value: message });
    else this.#queue.push(message);
  }

  #detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#setup.detach(this);
  }

  #finish(): IteratorReturnResult<undefined> {
    this.#done = true;
    for (const waiter of this.#waiters.splice(0)) waiter(DONE);
    return DONE;
  }
}
