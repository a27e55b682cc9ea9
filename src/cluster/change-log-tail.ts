/**
 * Every instance (the leader too) reads the cluster's change log (redis-change-log.ts) with
 * `XREAD BLOCK` on a connection of its own, and replays each entry into its local change bus
 * exactly as the leader published it. All buses see the same sequence, so a WatchChanges client
 * gets every change on any instance, in the leader's order (per entity: event-id order), and can
 * resume from `sinceEventId` on any instance.
 *
 * Seeding: a tail starts from the stream's oldest entry, so a fresh instance's replay ring holds
 * what the shared log holds (up to `replayEvents`) and resumes from ids seen on another instance
 * replay without a resync. The bus's history starts at the first entry's position (one more when
 * older entries were trimmed, since a late change among them could be missing).
 *
 * Batches: the changes of one leader publish (consecutive change entries, the last carrying the
 * batch's `t`) are replayed as one `publish` when one read holds them (a batch split by the read's
 * COUNT is published in two). The bus is left exactly as one publish per entry would leave it
 * (no entry between them moves the position), and its batch listeners (the WatchChanges
 * streaming path) make one write per stream per leader batch instead of one per change.
 *
 * Faults: a failed read is retried with backoff. Once Redis answers again the tail checks the
 * entry it last read is still there; if it is not (Redis restarted empty, or the log was trimmed
 * past it), the bus is reset (every stream is told to resync: changes may have been missed) and
 * reading restarts from the oldest entry.
 */
import type { RedisConnection } from "./redis-connection.ts";
import type { ChangeBus } from "../events/change-bus.ts";
import { parseLogEntry, type LogEntry } from "./redis-change-log.ts";
import { errorMessage, type Logger, SILENT_LOGGER } from "../logging/index.ts";

export interface ChangeLogTailOptions {
  /** A connection of its own: `XREAD BLOCK` holds it; its command timeout must exceed `blockMs`. */
  connection: RedisConnection;
  /** Same as the lease's. */
  keyBase: string;
  /** The local bus the entries are replayed into. */
  bus: ChangeBus;
  /** Longest wait of one read. Default 1000 ms. */
  blockMs?: number;
  /** Entries per read at most. Default 500. */
  batchSize?: number;
  /** Called after each entry is replayed into the bus (the cache's freshness mark, hints). */
  onEntry?(entry: LogEntry): void;
  logger?: Logger;
}

export interface ChangeLogTailStatus {
  /** Stream id of the last entry read ("0-0" before any). */
  lastId: string;
  entriesRead: number;
  /** Times the bus was reset because the log lost entries this instance had not read. */
  resyncs: number;
  /** The last read error, until a read succeeds. */
  lastError?: string;
}

type XReadReply = Array<[string, Array<[string, string[]]>]> | null;

export class ChangeLogTail {
  readonly #options: ChangeLogTailOptions;
  readonly #key: string;
  readonly #bus: ChangeBus;
  readonly #log: Logger;
  readonly #blockMs: number;
  readonly #batchSize: number;
  #lastId = "0-0";
  #fed = false;
  /** Change entries of a leader batch read but not yet published (see `#flush`). */
  #pending: LogEntry[] = [];
  #entriesRead = 0;
  #resyncs = 0;
  #lastError: string | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #caughtUp = false;
  #caughtUpWaiters: Array<() => void> = [];
  #wake: (() => void) | undefined;

  constructor(options: ChangeLogTailOptions) {
    this.#options = options;
    this.#key = `${options.keyBase}changes`;
    this.#bus = options.bus;
    this.#log = options.logger ?? SILENT_LOGGER;
    this.#blockMs = options.blockMs ?? 1000;
    this.#batchSize = options.batchSize ?? 500;
    if (!Number.isSafeInteger(this.#blockMs) || this.#blockMs < 1)
      throw new RangeError(`change log tail blockMs: must be a whole number >= 1, got ${options.blockMs}`);
    if (!Number.isSafeInteger(this.#batchSize) || this.#batchSize < 1)
      throw new RangeError(`change log tail batchSize: must be a whole number >= 1, got ${options.batchSize}`);
  }

  get status(): ChangeLogTailStatus {
    return { lastId: this.#lastId, entriesRead: this.#entriesRead, resyncs: this.#resyncs, ...(this.#lastError ? { lastError: this.#lastError } : {}) };
  }

  /** True once a read found nothing more to read (the seed is done); false again while reads fail. */
  get caughtUp(): boolean {
    return this.#caughtUp;
  }

  /** Resolves once caught up (after the seed). */
  whenCaughtUp(): Promise<void> {
    if (this.#caughtUp) return Promise.resolve();
    return new Promise((resolve) => this.#caughtUpWaiters.push(resolve));
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Stop reading. The connection is the caller's to close (closing it also ends a blocked read at once). */
  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let failures = 0;
    let check = false;
    while (this.#running) {
      try {
        if (check) await this.#checkContinuity();
        check = false;
        const reply = (await this.#options.connection.run("change log read", (c) =>
          c.xread("COUNT", this.#batchSize, "BLOCK", this.#blockMs, "STREAMS", this.#key, this.#lastId),
        )) as XReadReply;
        if (!this.#running) break;
        if (this.#lastError !== undefined) this.#log.info({ lastId: this.#lastId }, "change log readable again");
        this.#lastError = undefined;
        failures = 0;
        const entries = reply?.[0]?.[1] ?? [];
        try {
          for (const [id, fields] of entries) this.#deliver(id, fields);
        } finally {
          // What a read ends with is published now, whole leader batch or not (see the file comment).
          this.#flush(undefined);
        }
        if (entries.length < this.#batchSize) this.#markCaughtUp();
      } catch (err) {
        if (!this.#running) break;
        const message = errorMessage(err);
        if (this.#lastError === undefined) this.#log.warn({ err: message }, "change log unreadable (redis); retrying with backoff");
        this.#lastError = message;
        this.#caughtUp = false;
        check = true;
        failures++;
        await this.#sleep(Math.min(2000, 100 * 2 ** Math.min(failures, 5)));
      }
    }
  }

  /** After a read failure: is the last entry read still there? If not, entries may be lost to us. */
  async #checkContinuity(): Promise<void> {
    if (this.#lastId === "0-0") return;
    const found = await this.#options.connection.run("change log check", (c) => c.xrange(this.#key, this.#lastId, this.#lastId));
    if (found.length > 0) return;
    this.#resyncs++;
    const reason = "the shared change log lost entries while this instance could not read it (redis restarted or trimmed); changes may have been missed";
    this.#log.warn({ lastId: this.#lastId }, "change log entries lost: streams told to resync");
    this.#bus.reset(reason);
    // Whatever the stream holds now is newer than what was read (trimmed) or a new log (restarted).
    this.#lastId = "0-0";
  }

  #deliver(id: string, fields: string[]): void {
    this.#lastId = id;
    this.#entriesRead++;
    const parsed = parseLogEntry(fields);
    if (!parsed) {
      this.#log.error({ id }, "change log entry malformed; skipped");
      return;
    }
    const { entry, first } = parsed;
    if (!this.#fed) {
      // Where this bus's history starts (see the file comment).
      this.#bus.advance(first ? entry.p : entry.p + 1);
      this.#fed = true;
    }
    if (entry.c && entry.r === undefined) {
      // Part of a leader batch: published with the rest of it, at its last entry (the one with `t`).
      this.#pending.push(entry);
      if (entry.t !== undefined) this.#flush(entry.t);
      return;
    }
    this.#flush(undefined);
    if (entry.c) this.#bus.publish([entry.c], entry.t);
    else if (entry.t !== undefined) this.#bus.advance(entry.t);
    if (entry.r !== undefined) this.#bus.reset(entry.r);
    this.#options.onEntry?.(entry);
  }

  /** Publish the pending change entries as one batch, then tell `onEntry` of each, in order. */
  #flush(through: number | undefined): void {
    if (this.#pending.length === 0) return;
    const entries = this.#pending;
    this.#pending = [];
    this.#bus.publish(
      entries.map((e) => e.c!),
      through,
    );
    for (const entry of entries) this.#options.onEntry?.(entry);
  }

  #markCaughtUp(): void {
    if (this.#caughtUp) return;
    this.#caughtUp = true;
    for (const resolve of this.#caughtUpWaiters.splice(0)) resolve();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}
