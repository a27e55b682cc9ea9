/**
 * The cluster's change log: a Redis stream (`<follow base>changes`) the leader appends each
 * applied batch to, and every instance tails into its local change bus (change-log-tail.ts). It
 * is the shared replay buffer too: capped at about `replayEvents` entries (`XADD MAXLEN ~`).
 *
 * The leader's follower publishes here instead of to a bus. An append is one Lua script that
 * checks the leader's fence, adds the batch's entries and saves the follower's cursor, all at
 * once: the stream and the shared cursor always agree, so the next leader resumes from a cursor
 * that neither skips a published change (loss) nor re-publishes one (duplicate), and a superseded
 * leader appends nothing.
 *
 * Entry fields: `e` (JSON `LogEntry`), `f` (the writer's fence), and `s` on the stream's very
 * first entry (so a reader knows nothing was trimmed before it).
 */
import { luaScript } from "./redis-connection.ts";
import type { Change } from "../events/change.ts";
import type { ChangePublisher } from "../events/event-follower.ts";
import type { CursorState } from "../events/follow-cursor.ts";
import { FENCE_CHECK_LUA, type LeaderLease, type LeaderTerm } from "./leader-lease.ts";
import { encodeCursor } from "./redis-cursor-store.ts";
import { errorMessage, type Logger } from "../logging/index.ts";

/** One stream entry, replayed by readers into their bus exactly as the leader published. */
export interface LogEntry {
  /** The log position (newest event id) before this entry. */
  p: number;
  /** A change: `bus.publish([c])`. */
  c?: Change;
  /** The batch covered events up to this id: `bus.advance(t)` after the change, if any. */
  t?: number;
  /** The history can no longer be trusted (cursor reset): `bus.reset(r)` after advancing to `t`. */
  r?: string;
}

/**
 * ARGV: base, token, max length, fence, cursor last id ('' for none), cursor JSON, entries…
 * Reply: 0 fenced, -1 the cursor would go backwards (nothing written), {1, last entry id}.
 */
const APPEND = luaScript(`${FENCE_CHECK_LUA}
local stream = ARGV[1] .. 'changes'
local cursor = ARGV[1] .. 'cursor'
if ARGV[5] ~= '' then
  local saved = tonumber(redis.call('HGET', cursor, 'last'))
  if saved and tonumber(ARGV[5]) < saved then return -1 end
end
local first = redis.call('EXISTS', stream) == 0
local id = ''
for i = 7, #ARGV do
  if first then
    id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[i], 'f', ARGV[4], 's', '1')
    first = false
  else
    id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[i], 'f', ARGV[4])
  end
end
if ARGV[5] ~= '' then redis.call('HSET', cursor, 'last', ARGV[5], 'state', ARGV[6]) end
return {1, id}
`);

/** Fewest entries kept, whatever `replayEvents` says: readers need time to read them. */
export const MIN_STREAM_LENGTH = 1000;

export interface RedisChangeLogOptions {
  lease: LeaderLease;
  /** Appends are fenced by this term. */
  term: LeaderTerm;
  /** Entries kept (approximately); at least `MIN_STREAM_LENGTH`. */
  maxLength: number;
  /** The follower's cursor after the batch being published (saved in the same step). */
  cursor(): CursorState | undefined;
  /**
   * An append failed (Redis down, or fenced out): the follower's in-memory cursor is now ahead
   * of the log, so this follower must not go on (nor save). Called once, before the error is thrown.
   */
  onFailure(reason: string): void;
  logger?: Logger;
}

/** The leader's side: satisfies the follower's `ChangePublisher`. */
export class RedisChangeLog implements ChangePublisher {
  readonly #options: RedisChangeLogOptions;
  readonly #maxLength: number;
  #position = 0;
  #failed: string | undefined;
  /** Appends in order, one at a time. */
  #chain: Promise<void> = Promise.resolve();

  constructor(options: RedisChangeLogOptions) {
    if (!Number.isSafeInteger(options.maxLength) || options.maxLength < 0) {
      throw new RangeError(`change log maxLength must be a whole number >= 0, got ${options.maxLength}`);
    }
    this.#options = options;
    this.#maxLength = Math.max(MIN_STREAM_LENGTH, options.maxLength);
  }

  /** The follower's starting cursor (or an event without changes): only moves the position. */
  advance(eventId: number): void {
    if (eventId > this.#position) this.#position = eventId;
  }

  publish(changes: readonly Change[], throughEventId?: number): Promise<void> {
    const entries: LogEntry[] = [];
    for (const change of changes) {
      entries.push({ p: this.#position, c: change });
      if (change.eventId > this.#position) this.#position = change.eventId;
    }
    const through = throughEventId ?? this.#position;
    if (entries.length > 0) entries[entries.length - 1]!.t = through;
    else if (through > this.#position) entries.push({ p: this.#position, t: through });
    if (through > this.#position) this.#position = through;
    return this.#append(entries);
  }

  /**
   * Append the position alone (a term's start). Readers learn where the cluster stands from the
   * log only; without this a fresh log leaves every bus unpositioned until the first change.
   */
  announce(): Promise<void> {
    return this.#append([{ p: this.#position, t: this.#position }]);
  }

  reset(reason: string): Promise<void> {
    return this.#append([{ p: this.#position, t: this.#position, r: reason }]);
  }

  #append(entries: LogEntry[]): Promise<void> {
    const run = this.#chain.then(() => this.#write(entries));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #write(entries: LogEntry[]): Promise<void> {
    if (this.#failed) throw new Error(`change log append refused: an earlier append failed (${this.#failed})`);
    const cursor = this.#options.cursor();
    if (entries.length === 0 && !cursor) return;
    const saved = cursor ? encodeCursor(cursor) : { last: "", json: "" };
    try {
      const reply = await this.#options.lease.fencedWrite(this.#options.term, "change log append", APPEND, [
        this.#maxLength,
        this.#options.term.fence,
        saved.last,
        saved.json,
        ...entries.map((e) => JSON.stringify(e)),
      ]);
      if (reply === -1) throw new Error(`change log append refused: cursor ${saved.last} is older than the shared cursor`);
    } catch (err) {
      const reason = errorMessage(err);
      this.#failed = reason;
      this.#options.logger?.warn(
        { err: reason, entries: entries.length },
        "change log append failed: this follower stops; the next leader resumes from the shared cursor",
      );
      this.#options.onFailure(reason);
      throw err;
    }
  }
}

/** Parse one stream entry's fields (`[name, value, …]`); undefined when malformed. */
export function parseLogEntry(fields: readonly string[]): { entry: LogEntry; fence: number; first: boolean } | undefined {
  let json: string | undefined;
  let fence = 0;
  let first = false;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === "e") json = fields[i + 1];
    else if (fields[i] === "f") fence = Number(fields[i + 1]);
    else if (fields[i] === "s") first = true;
  }
  if (json === undefined) return undefined;
  try {
    const entry = JSON.parse(json) as LogEntry;
    if (!entry || typeof entry !== "object" || !Number.isSafeInteger(entry.p)) return undefined;
    if (entry.t !== undefined && !Number.isSafeInteger(entry.t)) return undefined;
    if (entry.c !== undefined && (typeof entry.c !== "object" || !Number.isSafeInteger(entry.c.eventId))) return undefined;
    return { entry, fence, first };
  } catch {
    return undefined;
  }
}
