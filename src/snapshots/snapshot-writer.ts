/**
 * Writes the snapshot files: one round at once, then one every interval (never two at a time).
 * Each type's records and event id are taken together: the event id is read before and after the
 * records, and the read is repeated (up to three times) while events arrive in between; the id
 * before is written either way, since everything read after it reflects at least that event.
 *
 * Only one instance of a cluster should write (`mayWrite`: the event follower's, the leader with
 * --redis). It is asked before each round and again just before each rename, so an instance that
 * lost the lead mid-round replaces nothing.
 */
import { errorMessage, type Logger, SILENT_LOGGER } from "../logging/index.ts";
import { buildSnapshot } from "./snapshot-format.ts";
import { writeSnapshotFile } from "./snapshot-file.ts";
import type { SnapshotSource } from "./snapshot-sources.ts";

export interface SnapshotMetrics {
  snapshotWritten(seconds: number): void;
  snapshotFailed(): void;
}

export interface SnapshotWriterOptions {
  /** The folder of the files (created if missing). */
  dir: string;
  /** Entity types written, one file each. */
  types: readonly string[];
  source: SnapshotSource;
  /** Between the end of one round and the start of the next (ms). Default 300 000. */
  intervalMs?: number;
  /** Whether this instance writes now. Default: always. */
  mayWrite?: () => boolean;
  metrics?: SnapshotMetrics;
  logger?: Logger;
}

/** What one round did for one type. */
export type TypeOutcome =
  | { type: string; written: true; path: string; eventId: number; records: number }
  | { type: string; written: false; reason: string; failed: boolean };

const READ_ATTEMPTS = 3;

export class SnapshotWriter {
  readonly #o: SnapshotWriterOptions;
  readonly #log: Logger;
  readonly #stopping = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<TypeOutcome[]> | undefined;

  constructor(options: SnapshotWriterOptions) {
    this.#o = options;
    this.#log = options.logger ?? SILENT_LOGGER;
  }

  /** Write a round now, then one every interval until `stop()`. */
  start(): void {
    if (this.#stopping.signal.aborted || this.#timer) return;
    const tick = async () => {
      await this.writeNow().catch(() => undefined);
      if (!this.#stopping.signal.aborted) this.#timer = setTimeout(tick, this.#o.intervalMs ?? 300_000).unref();
    };
    this.#timer = setTimeout(tick, 0).unref();
  }

  /** One round for every type (joins a round in progress). Resolves with what each type did. */
  writeNow(): Promise<TypeOutcome[]> {
    this.#round ??= this.#writeRound().finally(() => (this.#round = undefined));
    return this.#round;
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    clearTimeout(this.#timer);
    await this.#round?.catch(() => undefined);
  }

  async #writeRound(): Promise<TypeOutcome[]> {
    const mayWrite = this.#o.mayWrite ?? (() => true);
    if (!mayWrite()) return this.#o.types.map((type) => ({ type, written: false, reason: "this instance does not follow the event log", failed: false }));
    const started = performance.now();
    const outcomes: TypeOutcome[] = [];
    for (const type of this.#o.types) {
      if (this.#stopping.signal.aborted) break;
      outcomes.push(await this.#writeType(type, mayWrite));
    }
    if (outcomes.some((o) => !o.written && o.failed)) this.#o.metrics?.snapshotFailed();
    else if (outcomes.length === this.#o.types.length && outcomes.every((o) => o.written))
      this.#o.metrics?.snapshotWritten((performance.now() - started) / 1000);
    return outcomes;
  }

  async #writeType(type: string, mayWrite: () => boolean): Promise<TypeOutcome> {
    const { source, dir } = this.#o;
    const signal = this.#stopping.signal;
    try {
      for (let attempt = 1; ; attempt++) {
        const before = await source.eventId(signal);
        const records = await source.records(type, signal);
        if (!records) {
          this.#log.info({ entityType: type }, "snapshot skipped: the cache does not hold this type whole now (preload running); the old file stays");
          return { type, written: false, reason: "not held whole now", failed: false };
        }
        const after = await source.eventId(signal);
        if (after !== before && attempt < READ_ATTEMPTS) continue;
        const path = await writeSnapshotFile(dir, buildSnapshot(type, records, before, source.site, new Date()), mayWrite);
        if (!path) return { type, written: false, reason: "this instance stopped following the event log", failed: false };
        this.#log.debug({ entityType: type, eventId: before, records: records.length, path }, "snapshot written");
        return { type, written: true, path, eventId: before, records: records.length };
      }
    } catch (err) {
      if (signal.aborted) return { type, written: false, reason: "stopping", failed: false };
      this.#log.warn({ entityType: type, dir, err: errorMessage(err) }, "snapshot failed; the old file stays");
      return { type, written: false, reason: errorMessage(err), failed: true };
    }
  }
}
