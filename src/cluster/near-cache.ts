/**
 * A small in-process copy of hot Redis entries, so a hit moves no JSON value and, under load,
 * shares one round trip with every other hit waiting at the same time (see `SharedRoundTrip`).
 *
 * Kept correct by the invalidation messages every instance publishes (bump, patch, delete, clear:
 * see redis-scripts.ts), in clock order on one channel. Three rules make it exact (the argument
 * is in docs/redis.md, "The near cache"):
 * - It is used only while subscribed. Any disconnect flushes it (messages may have been missed);
 *   it stays off until the subscription is confirmed again.
 * - A copy is served only after a PING sent on the subscriber connection *after the request
 *   arrived* has been answered: Redis answers it after every message published before it ran,
 *   on the same connection, and each message is applied here as it is parsed (`apply` is
 *   synchronous), so by then every invalidation acknowledged before the request has dropped
 *   what it had to.
 * - An entry read from Redis at clock R is kept only if no message newer than R was seen yet;
 *   every later message then reaches the kept copy.
 */
import type { CacheStoreStats, StoredEntry } from "../cache/cache-store.ts";
import { MemoryStore, type RawEntry } from "../cache/memory-store.ts";

export interface NearCacheOptions {
  /** Bound on the estimated bytes of near entries (least recently used go first). Default 32 MiB. */
  maxBytes?: number;
  /** Bound on the number of near entries. Default 10000. */
  maxEntries?: number;
  /**
   * A near copy is served for at most this long after it was kept (then Redis is read again), so
   * it never outlives the Redis entry's TTL by much. Default 60000 ms (the store lowers it to its TTL).
   */
  ttlMs?: number;
}

/** An invalidation message, as published by the Redis scripts. */
export interface InvalidationMessage {
  seq: number;
  tags?: string[];
  links?: string[];
  keys?: string[];
  clear?: boolean;
}

/** Parse a published message; anything malformed reads as "clear" (safe: it only drops entries). */
export function parseInvalidation(text: string): InvalidationMessage {
  try {
    const m = JSON.parse(text) as Partial<InvalidationMessage>;
    if (typeof m.seq === "number") return m as InvalidationMessage;
  } catch {
    // fall through
  }
  return { seq: 0, clear: true };
}

export class NearCache {
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  /** The LRU itself: the memory store already bounds bytes and indexes tags and links. */
  #lru: MemoryStore;
  readonly #ttlMs: number;
  /** key → when kept, in recency order, for the count bound and the TTL (may hold keys the LRU dropped). */
  #order = new Map<string, number>();
  #active = false;
  #seenSeq = 0;
  /** Counts flushes: a copy peeked before a flush must not be served after it. */
  #epoch = 0;
  hits = 0;

  constructor(options: NearCacheOptions = {}) {
    this.#maxBytes = options.maxBytes ?? 32 * 1024 * 1024;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#ttlMs = options.ttlMs ?? 60_000;
    if (!(this.#ttlMs > 0)) throw new RangeError(`nearCache.ttlMs must be a positive number, got ${options.ttlMs}`);
    if (!(this.#maxBytes > 0)) throw new RangeError(`nearCache.maxBytes must be a positive number, got ${options.maxBytes}`);
    if (!(Number.isInteger(this.#maxEntries) && this.#maxEntries > 0)) {
      throw new RangeError(`nearCache.maxEntries must be a positive integer, got ${options.maxEntries}`);
    }
    this.#lru = new MemoryStore({ maxBytes: this.#maxBytes });
  }

  /** Subscribed and in step with the invalidation messages. */
  get active(): boolean {
    return this.#active;
  }

  get seenSeq(): number {
    return this.#seenSeq;
  }

  get epoch(): number {
    return this.#epoch;
  }

  stats(): CacheStoreStats {
    return this.#lru.stats();
  }

  /** The subscription is (back) up and the Redis clock read after it is `clock`. */
  activate(clock: number): void {
    this.#seenSeq = Math.max(this.#seenSeq, clock);
    this.#active = true;
  }

  /** The subscription is gone: messages may be missed from now on. */
  deactivate(): void {
    this.#active = false;
    this.flush();
  }

  flush(): void {
    this.#epoch++;
    // A fresh LRU rather than clear(): clear() would also count as a bump for its own bookkeeping.
    this.#lru = new MemoryStore({ maxBytes: this.#maxBytes });
    this.#order = new Map();
  }

  /**
   * Whether a copy of `key` is held (and not past its TTL). A copy held now may still be dropped
   * before it is served: the caller waits for a round trip, then peeks.
   */
  holds(key: string): boolean {
    if (!this.#active) return false;
    const keptAt = this.#order.get(key);
    return keptAt !== undefined && Date.now() - keptAt <= this.#ttlMs;
  }

  /** The near entry (its value a fresh copy), or undefined. Serve it only as the rules above say. */
  peek(key: string): StoredEntry | undefined {
    if (!this.holds(key)) return undefined;
    const entry = this.#lru.peek(key);
    if (entry) this.#touch(key, this.#order.get(key)!);
    return entry;
  }

  /** `peek` without parsing: the entry's stored text (the same text while it is unchanged). */
  peekRaw(key: string): Readonly<RawEntry> | undefined {
    if (!this.holds(key)) return undefined;
    const raw = this.#lru.peekRaw(key);
    if (raw) this.#touch(key, this.#order.get(key)!);
    return raw;
  }

  /** Keep an entry read (or written) at clock `readClock`, if that is still safe. */
  async keep(key: string, entry: StoredEntry, readClock: number): Promise<void> {
    if (!this.#active || this.#seenSeq > readClock) return;
    if (await this.#lru.setIfFresh(key, entry)) this.#touch(key, Date.now());
    // The order may also hold keys the LRU dropped on invalidation: bound it too.
    for (const oldest of this.#order.keys()) {
      if (this.#lru.stats().entries <= this.#maxEntries && this.#order.size <= 2 * this.#maxEntries) break;
      this.#order.delete(oldest);
      await this.#lru.delete(oldest);
    }
  }

  /**
   * Apply a message (from the channel, or this instance's own invalidation right away), fully
   * before returning: a PING answered after the message was parsed must find it applied. (The
   * memory store's methods do all their work before they return their promise.)
   */
  apply(message: InvalidationMessage): void {
    if (message.seq > this.#seenSeq) this.#seenSeq = message.seq;
    if (message.clear) {
      this.flush();
      return;
    }
    if (message.tags?.length) void this.#lru.bump(message.tags);
    for (const link of message.links ?? []) void this.#lru.patchLinkName(link, undefined);
    for (const key of message.keys ?? []) void this.#lru.delete(key);
  }

  #touch(key: string, keptAt: number): void {
    this.#order.delete(key);
    this.#order.set(key, keptAt);
  }
}
