/**
 * One event follower per cluster: instances compete for a lease in Redis, and only the holder
 * follows the event log. The lease is a key set with `NX PX ttl` and renewed every `ttl/3` by a
 * compare-and-extend script; each acquisition takes the next value of a fencing counter, and the
 * lease's value (the term's token) embeds it, so a token can never be current again once
 * superseded.
 *
 * Fencing: every write the leader makes to shared follow state (cursor, change stream) is a Lua
 * script that first checks the lease still holds the writer's token (`fencedWrite`). An old
 * leader that was paused (SIGSTOP, a long GC, a partition) past its lease and then resumes finds
 * its writes refused: it cannot save a cursor or publish changes after a new leader took over.
 *
 * Losing the lease — a renew answered "not yours", a fenced write refused, or no successful renew
 * for the lease's whole lifetime (Redis unreachable) — ends the term at once: its `signal` aborts,
 * and the owner stops its follower. The instance then competes again like any other.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { luaScript, type LuaScript, type RedisConnection } from "./redis-connection.ts";
import { errorMessage, type Logger, SILENT_LOGGER } from "../logging/index.ts";

/** Acquire: SET NX PX with a fresh fencing number. ARGV: base, instance id, ttl ms. */
const ACQUIRE = luaScript(`
local leader = ARGV[1] .. 'leader'
local held = redis.call('GET', leader)
if held then return {0, held, 0} end
local fence = redis.call('INCR', ARGV[1] .. 'fence')
local token = ARGV[2] .. '#' .. fence
redis.call('SET', leader, token, 'NX', 'PX', tonumber(ARGV[3]))
return {1, token, fence}
`);

/** Compare-and-extend. ARGV: base, token, ttl ms. */
const RENEW = luaScript(`
local leader = ARGV[1] .. 'leader'
if redis.call('GET', leader) ~= ARGV[2] then return 0 end
redis.call('PEXPIRE', leader, tonumber(ARGV[3]))
return 1
`);

/** Compare-and-delete. ARGV: base, token. */
const RELEASE = luaScript(`
local leader = ARGV[1] .. 'leader'
if redis.call('GET', leader) ~= ARGV[2] then return 0 end
redis.call('DEL', leader)
return 1
`);

/** Is this token still the lease's? ARGV: base, token. */
const CHECK = luaScript(`
if redis.call('GET', ARGV[1] .. 'leader') ~= ARGV[2] then return 0 end
return 1
`);

/**
 * The fence every shared-state write script starts with: ARGV[1] is the key base, ARGV[2] the
 * writer's token. A script built with it returns 0 (refused) or its own reply.
 */
export const FENCE_CHECK_LUA = `if redis.call('GET', ARGV[1] .. 'leader') ~= ARGV[2] then return 0 end\n`;

/** A write refused because the writer's leader term is over (a newer leader holds the lease). */
export class FencedOutError extends Error {
  override readonly name = "FencedOutError";
  readonly code = "LEADER_FENCED_OUT";
}

/** One tenure as leader: from an acquisition to the loss of the lease. */
export class LeaderTerm {
  readonly #controller = new AbortController();
  #lostReason: string | undefined;

  constructor(
    /** The lease's value during this term: `<instance id>#<fence>`. */
    readonly token: string,
    /** The fencing number: grows with every acquisition in the cluster. */
    readonly fence: number,
  ) {}

  /** Aborts when the term ends (lease lost, superseded, or released). */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get over(): boolean {
    return this.#controller.signal.aborted;
  }

  get lostReason(): string | undefined {
    return this.#lostReason;
  }

  /** @internal End the term (idempotent). */
  end(reason: string): void {
    if (this.over) return;
    this.#lostReason = reason;
    this.#controller.abort(new FencedOutError(`leader term ${this.fence} ended: ${reason}`));
  }
}

export interface LeaderLeaseOptions {
  /** The Redis connection for lease and fenced writes (fail-fast; see redis-connection.ts). */
  connection: RedisConnection;
  /** Prefix of the cluster's follow keys, e.g. `sgc:{studio.shotgrid.autodesk.com}:follow:`. */
  keyBase: string;
  /** Lease lifetime: a dead leader is replaced within about this plus `renewEveryMs`. Default 5000. */
  ttlMs?: number;
  /** Renew (or, when not leader, try to acquire) this often. Default `ttlMs / 3`. */
  renewEveryMs?: number;
  /** Who this instance is, in the lease's value and logs. Default `<host>-<pid>-<random>`. */
  instanceId?: string;
  /** Called when this instance becomes leader. */
  onAcquired?(term: LeaderTerm): void;
  /** Called when a term ends for any reason but `stop()`. */
  onLost?(term: LeaderTerm, reason: string): void;
  logger?: Logger;
}

/** Counters for /metrics and tests. */
export interface LeaseCounters {
  acquisitions: number;
  losses: number;
  /** Writes refused by the fence (this instance's, after it lost the lease). */
  fencedWritesRefused: number;
}

const KEY_BASE = /^[^\s]{1,300}:$/;

export class LeaderLease {
  readonly instanceId: string;
  readonly ttlMs: number;
  readonly renewEveryMs: number;
  readonly counters: LeaseCounters = { acquisitions: 0, losses: 0, fencedWritesRefused: 0 };
  readonly #connection: RedisConnection;
  readonly #base: string;
  readonly #options: LeaderLeaseOptions;
  readonly #log: Logger;
  #term: LeaderTerm | undefined;
  /** Until when (local clock) the current term's lease is surely valid: last renew's send time + ttl. */
  #validUntil = 0;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #ticking: Promise<void> = Promise.resolve();
  #lastError: string | undefined;

  constructor(options: LeaderLeaseOptions) {
    if (!KEY_BASE.test(options.keyBase))
      throw new RangeError(`leader lease keyBase: must be a key prefix ending in ":", got ${JSON.stringify(options.keyBase)}`);
    const ttl = options.ttlMs ?? 5000;
    if (!Number.isSafeInteger(ttl) || ttl < 300) throw new RangeError(`leader lease ttlMs: must be a whole number >= 300, got ${options.ttlMs}`);
    const every = options.renewEveryMs ?? Math.floor(ttl / 3);
    if (!Number.isSafeInteger(every) || every < 10 || every > ttl / 2) {
      throw new RangeError(`leader lease renewEveryMs: must be a whole number from 10 to ttlMs/2, got ${options.renewEveryMs}`);
    }
    const id = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
    if (!/^[A-Za-z0-9_.:-]{1,100}$/.test(id)) throw new RangeError(`leader lease instanceId: 1-100 letters, digits or "_.:-", got ${JSON.stringify(id)}`);
    this.instanceId = id;
    this.ttlMs = ttl;
    this.renewEveryMs = every;
    this.#connection = options.connection;
    this.#base = options.keyBase;
    this.#options = options;
    this.#log = options.logger ?? SILENT_LOGGER;
  }

  /** The current term while this instance leads, else undefined. */
  get term(): LeaderTerm | undefined {
    return this.#term && !this.#term.over ? this.#term : undefined;
  }

  get isLeader(): boolean {
    return this.term !== undefined;
  }

  /** Why the last lease operation failed (Redis unreachable), until one succeeds. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Start competing (at once, then every `renewEveryMs`). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  /** Stop competing; a held lease is released so another instance takes over without waiting for it to expire. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    await this.#ticking;
    const term = this.term;
    if (!term) return;
    term.end("stopped");
    await this.#connection.script("lease release", RELEASE, [this.#base, term.token]).catch(() => undefined);
    this.#log.info({ fence: term.fence }, "leader lease released");
  }

  /** Who holds the lease now (its token), or undefined; throws when Redis is unreachable. */
  async holder(): Promise<string | undefined> {
    const v = await this.#connection.run("lease holder", (c) => c.get(`${this.#base}leader`));
    return v ?? undefined;
  }

  /**
   * Run a write script fenced by `term`: the script must start with `FENCE_CHECK_LUA` and take
   * ARGV[1] = key base, ARGV[2] = token, then `args`. A refusal (reply 0) ends the term and
   * throws `FencedOutError`; Redis failures throw `StoreUnavailableError`.
   */
  async fencedWrite(term: LeaderTerm, operation: string, script: LuaScript, args: readonly (string | number)[]): Promise<unknown> {
    if (term.over) {
      this.counters.fencedWritesRefused++;
      throw new FencedOutError(`${operation} refused: leader term ${term.fence} is over (${term.lostReason ?? "lost"})`);
    }
    const reply = await this.#connection.script(operation, script, [this.#base, term.token, ...args]);
    if (reply === 0) {
      this.counters.fencedWritesRefused++;
      this.#lose(term, `a fenced write (${operation}) was refused: another instance holds the lease`);
      throw new FencedOutError(`${operation} refused: leader term ${term.fence} was superseded`);
    }
    return reply;
  }

  /**
   * Give up `term` now (its follower cannot go on, e.g. a publish failed): the term ends, the
   * lease is released, and the instances compete again (this one included, with a new term).
   */
  async resign(term: LeaderTerm, reason: string): Promise<void> {
    if (term.over) return;
    this.#lose(term, reason);
    await this.#connection.script("lease release", RELEASE, [this.#base, term.token]).catch(() => undefined);
  }

  /** One round trip: is `term` still the lease's? Ends the term when it is not. */
  async confirm(term: LeaderTerm): Promise<boolean> {
    if (term.over) return false;
    const reply = await this.#connection.script("lease check", CHECK, [this.#base, term.token]);
    if (reply === 1) return true;
    this.#lose(term, "the lease is held by another instance");
    return false;
  }

  #schedule(ms: number): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => {
      this.#ticking = this.#tick().finally(() => this.#schedule(this.renewEveryMs));
    }, ms);
  }

  async #tick(): Promise<void> {
    const term = this.term;
    // Checked before any await: a process resumed after a pause stops following at once,
    // without waiting for a round trip to learn what its clock already says.
    if (term && Date.now() >= this.#validUntil) {
      this.#lose(term, `lease not renewed for ${this.ttlMs} ms`);
      return;
    }
    const sentAt = Date.now();
    try {
      if (term) {
        const ok = await this.#connection.script("lease renew", RENEW, [this.#base, term.token, this.ttlMs]);
        this.#lastError = undefined;
        if (ok === 1) this.#validUntil = sentAt + this.ttlMs;
        else this.#lose(term, "the lease was taken by another instance");
        return;
      }
      const [won, token, fence] = (await this.#connection.script("lease acquire", ACQUIRE, [this.#base, this.instanceId, this.ttlMs])) as [
        number,
        string,
        number,
      ];
      this.#lastError = undefined;
      if (won !== 1 || !this.#running) {
        // Stopped while the acquire was in flight: give the lease back at once.
        if (won === 1) await this.#connection.script("lease release", RELEASE, [this.#base, token]).catch(() => undefined);
        return;
      }
      const newTerm = new LeaderTerm(token, Number(fence));
      this.#term = newTerm;
      this.#validUntil = sentAt + this.ttlMs;
      this.counters.acquisitions++;
      this.#log.info({ fence: newTerm.fence, instance: this.instanceId }, "leader lease acquired: this instance follows the event log");
      this.#options.onAcquired?.(newTerm);
    } catch (err) {
      const message = errorMessage(err);
      if (this.#lastError === undefined) this.#log.warn({ err: message }, "leader lease: redis unreachable; retrying");
      this.#lastError = message;
      // A failed renew is not yet a loss: the lease is ours until #validUntil (checked next tick).
    }
  }

  #lose(term: LeaderTerm, reason: string): void {
    if (term.over) return;
    term.end(reason);
    if (this.#term === term) this.#term = undefined;
    this.counters.losses++;
    this.#log.warn({ fence: term.fence, reason }, "leader lease lost: the event follower stops");
    this.#options.onLost?.(term, reason);
  }
}
