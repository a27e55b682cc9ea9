/**
 * Coalescing across instances through Redis, for expensive misses (queries, records of types that
 * are not preloaded): a short lock per canonical key (`SET … NX PX`). The holder fetches and fills
 * the shared store; the others poll the store entry with a small backoff instead of going
 * upstream. The lock's TTL bounds every wait: a holder that died (or is slower than the TTL) never
 * blocks the others for longer, they then fetch themselves.
 *
 * Polling rather than a "filled" pub/sub message: a waiter costs one small round trip every
 * few tens of milliseconds, it needs no subscription state, and a fill refused by an invalidation
 * (the holder's answer predates an event) is seen the same way as a dead holder: the lock is gone,
 * no entry appeared, so a waiter takes the lock and fetches.
 */
import { createHash, randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { CoalescedResult, MissCoalescer } from "../cache/miss-coalescer.ts";
import { luaScript, type RedisConnection } from "./redis-connection.ts";
import { type Logger, SILENT_LOGGER } from "../logging/index.ts";

export interface RedisCoalescerOptions {
  /** The connection to use, usually the store's (`store.connection`). */
  connection: RedisConnection;
  /** Start of every key, usually the store's (`store.keyBase`), so locks are namespaced like entries. */
  keyBase: string;
  /**
   * Lifetime of a lock, and the longest a waiter waits for the holder's fill before it fetches
   * itself. Above the usual duration of an expensive fetch. Default 5000 ms.
   */
  lockTtlMs?: number;
  /** First pause between two looks at the store while waiting; doubled up to `maxPollMs`. Default 5 ms. */
  minPollMs?: number;
  /** Longest pause between two looks at the store. Default 50 ms. */
  maxPollMs?: number;
  /** Default: silent. */
  logger?: Logger;
}

/** Delete the lock only if this holder still owns it (it may have expired and been taken by another). */
const RELEASE = luaScript(`
if redis.call("get", ARGV[1]) == ARGV[2] then return redis.call("del", ARGV[1]) end
return 0
`);

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`redis coalescer ${name}: must be a positive number, got ${value}`);
  return value;
}

export class RedisCoalescer implements MissCoalescer {
  readonly #connection: RedisConnection;
  readonly #keyBase: string;
  readonly #ttlMs: number;
  readonly #minPollMs: number;
  readonly #maxPollMs: number;
  readonly #log: Logger;

  constructor(options: RedisCoalescerOptions) {
    this.#connection = options.connection;
    this.#keyBase = options.keyBase;
    this.#ttlMs = Math.round(positive("lockTtlMs", options.lockTtlMs ?? 5000));
    this.#minPollMs = positive("minPollMs", options.minPollMs ?? 5);
    this.#maxPollMs = Math.max(this.#minPollMs, positive("maxPollMs", options.maxPollMs ?? 50));
    this.#log = options.logger ?? SILENT_LOGGER;
  }

  /** The Redis key of the lock for a cache key (hashed: canonical query keys can be long). */
  lockKey(key: string): string {
    return `${this.#keyBase}lock:${createHash("sha256").update(key).digest("base64url").slice(0, 32)}`;
  }

  async coalesce<T>(key: string, fetch: () => Promise<T>, filled: () => Promise<T | undefined>): Promise<CoalescedResult<T>> {
    const lockKey = this.lockKey(key);
    const token = randomBytes(12).toString("base64url");
    const deadline = Date.now() + this.#ttlMs;
    const alone = async (): Promise<CoalescedResult<T>> => ({ value: await fetch(), waited: false });
    for (let attempt = 0, pause = this.#minPollMs; ; attempt++, pause = Math.min(pause * 2, this.#maxPollMs)) {
      let locked: boolean;
      try {
        locked = (await this.#connection.run("lock", (c) => c.set(lockKey, token, "PX", this.#ttlMs, "NX"))) === "OK";
      } catch {
        return alone(); // Redis unreachable: nobody to coalesce with, and the store is bypassed anyway
      }
      if (locked) {
        try {
          // The lock may be free because a holder just filled and let go: look once more first.
          if (attempt > 0) {
            const value = await filled().catch(() => undefined);
            if (value !== undefined) return { value, waited: true };
          }
          return await alone();
        } finally {
          // Not awaited: the answer need not wait for the unlock; waiters look for the fill first.
          this.#connection.script("unlock", RELEASE, [lockKey, token]).catch(() => undefined);
        }
      }
      let value: T | undefined;
      try {
        value = await filled();
      } catch {
        return alone();
      }
      if (value !== undefined) return { value, waited: true };
      if (Date.now() >= deadline) {
        this.#log.warn({ lockTtlMs: this.#ttlMs }, "cache: another instance's fetch did not fill in time; fetching here");
        return alone();
      }
      await sleep(pause);
    }
  }
}
