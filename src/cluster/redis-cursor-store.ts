/**
 * The event cursor in Redis, shared by the cluster: the leader saves it (fenced by its term), and
 * the next leader loads it and resumes exactly there. A save is one Lua script that refuses when
 * the writer's term is over, and refuses to move the cursor backwards, so neither a paused old
 * leader nor a confused one can make the cluster re-follow from an older point.
 *
 * Key: `<follow base>cursor`, a hash: `last` (the last applied id, for the backwards check) and
 * `state` (`{"version":1,"cursor":{…}}`).
 */
import { luaScript, type RedisConnection } from "./redis-connection.ts";
import { CursorStateError, type CursorStore } from "../events/cursor-store.ts";
import { FollowCursor, type CursorState } from "../events/follow-cursor.ts";
import { FENCE_CHECK_LUA, type LeaderLease, type LeaderTerm } from "./leader-lease.ts";

/**
 * Fenced, monotonic save. ARGV: base, token, last applied id, state JSON. Reply: 0 fenced,
 * -1 refused (older than the saved cursor), 1 saved.
 */
export const SAVE_CURSOR = luaScript(`${FENCE_CHECK_LUA}
local key = ARGV[1] .. 'cursor'
local saved = tonumber(redis.call('HGET', key, 'last'))
if saved and tonumber(ARGV[3]) < saved then return -1 end
redis.call('HSET', key, 'last', ARGV[3], 'state', ARGV[4])
return 1
`);

interface SavedState {
  version: 1;
  cursor: CursorState;
}

/** The hash fields for a cursor, as `SAVE_CURSOR` and the change log's append want them. */
export function encodeCursor(state: CursorState): { last: string; json: string } {
  const doc: SavedState = { version: 1, cursor: state };
  return { last: String(state.lastAppliedId), json: JSON.stringify(doc) };
}

export interface RedisCursorStoreOptions {
  connection: RedisConnection;
  /** Same as the lease's. */
  keyBase: string;
  /** Saves are fenced by this term; absent: a read-only store (`save` throws). */
  lease?: LeaderLease;
  term?: LeaderTerm;
}

export class RedisCursorStore implements CursorStore {
  readonly #connection: RedisConnection;
  readonly #base: string;
  readonly #lease: LeaderLease | undefined;
  readonly #term: LeaderTerm | undefined;
  /** Set by the owner when this term must not save any more (a publish failed after the cursor moved). */
  #poisoned: string | undefined;

  constructor(options: RedisCursorStoreOptions) {
    this.#connection = options.connection;
    this.#base = options.keyBase;
    this.#lease = options.lease;
    this.#term = options.term;
  }

  get description(): string {
    return `redis ${this.#base}cursor`;
  }

  /**
   * Refuse every later save of this store: the in-memory cursor got ahead of what was published,
   * and saving it would make the next leader skip events that were never published.
   */
  poison(reason: string): void {
    this.#poisoned ??= reason;
  }

  async load(): Promise<CursorState | undefined> {
    const json = await this.#connection.run("cursor load", (c) => c.hget(`${this.#base}cursor`, "state"));
    if (json === null) return undefined;
    let parsed: Partial<SavedState>;
    try {
      parsed = JSON.parse(json) as Partial<SavedState>;
    } catch (err) {
      throw new CursorStateError(`the event cursor in ${this.description} is not valid JSON: ${(err as Error).message}`);
    }
    if (parsed === null || typeof parsed !== "object" || parsed.version !== 1) {
      throw new CursorStateError(`the event cursor in ${this.description} has an unknown format (version ${JSON.stringify(parsed?.version)})`);
    }
    try {
      return new FollowCursor(parsed.cursor as CursorState).toJSON();
    } catch (err) {
      throw new CursorStateError(`the event cursor in ${this.description} is invalid: ${(err as Error).message}`);
    }
  }

  async save(state: CursorState): Promise<void> {
    if (!this.#lease || !this.#term) throw new Error(`${this.description}: read-only (no leader term)`);
    if (this.#poisoned) throw new Error(`cursor save refused: ${this.#poisoned}`);
    const { last, json } = encodeCursor(state);
    const reply = await this.#lease.fencedWrite(this.#term, "cursor save", SAVE_CURSOR, [last, json]);
    if (reply === -1) throw new CursorStateError(`cursor save refused: event ${last} is older than the shared cursor`);
  }
}
