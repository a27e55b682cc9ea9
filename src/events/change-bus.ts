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
   * than the bus can replay: a resync message first, then live.
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

export class ChangeBus {
  readonly #replay: ReplayBuffer<Published>;
  readonly #queueLimit: number;
  readonly #subscribers = new Set<ChangeSubscription>();
  #lastEventId = 0;
  /** A replay from `sinceEventId >= #floor` is complete; undefined until the bus knows where its history starts. */
  #floor: number | undefined;

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
  }

  /** The newest event id the bus has been told about (for heartbeats); 0 before any. */
  get lastEventId(): number {
    return this.#lastEventId;
  }

  /** The smallest `sinceEventId` that replays without a resync; undefined while the bus has no history. */
  get oldestResumableEventId(): number | undefined {
    return this.#floor;
  }

  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  /**
   * Move the bus's position to `eventId` without changes (events that changed no entity, or
   * the follower's starting cursor). The first call sets where the replay history starts.
   */
  advance(eventId: number): void {
    if (!Number.isSafeInteger(eventId) || eventId < 0) throw new RangeError(`eventId must be a whole number >= 0, got ${eventId}`);
    this.#floor ??= eventId;
    if (eventId > this.#lastEventId) this.#lastEventId = eventId;
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
      for (const subscriber of this.#subscribers) subscriber.offer(change, positionBefore);
    }
    if (throughEventId !== undefined) this.advance(throughEventId);
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
      if (this.#floor === undefined || since < this.#floor) {
        const reason =
          this.#floor === undefined
            ? `cannot replay from event ${since}: no change history yet`
            : `cannot replay from event ${since}: the oldest resumable event id is ${this.#floor}`;
        subscription.start({ kind: "resync", reason, resumeEventId: this.#lastEventId, closes: false }, [], 0);
      } else {
        const replay = this.#replay
          .filter((p) => publishedAfter(p, since) && subscription.matches(p.change))
          .map((p) => p.change);
        // A client ahead of the bus (it saw ids the follower has not applied yet) must not get them twice.
        subscription.start(undefined, replay, since > this.#lastEventId ? since : 0);
      }
    }
    this.#subscribers.add(subscription);
    return subscription;
  }

  /**
   * Forget the replay history and tell every subscriber to resync (they stay open). For when
   * the cache was flushed: nothing published before can be trusted to resume from.
   */
  reset(reason: string): void {
    this.#replay.clear();
    this.#floor = this.#lastEventId;
    for (const subscriber of this.#subscribers) subscriber.resync(reason, false);
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
  #skipThrough = 0;
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
  start(first: BusMessage | undefined, replay: Change[], skipThrough: number): void {
    this.#first = first;
    this.#replay = replay;
    this.#skipThrough = skipThrough;
  }

  matches(change: Change): boolean {
    const { entityTypes, projectIds } = this.#setup;
    return (!entityTypes || entityTypes.has(change.entityType)) && (!projectIds || projectIds.has(change.projectId));
  }

  /**
   * @internal Called by the bus for each published change. A subscriber ahead of the bus
   * skips in-order changes it already saw, but never a late one (an id below the position it
   * was published at): that one it cannot have seen.
   */
  offer(change: Change, positionBefore = 0): void {
    if (this.#detached || !this.matches(change)) return;
    if (change.eventId <= this.#skipThrough && change.eventId > positionBefore) return;
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
