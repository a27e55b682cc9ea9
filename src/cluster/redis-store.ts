/**
 * The shared store: every instance of the service reads and fills the same Redis, and an
 * invalidation made by one is seen by all at once (the clock, bump records and entries live in
 * Redis; every check-and-write is one Lua script, see redis-scripts.ts). A near cache keeps hot
 * entries in process, kept exact by pub/sub (see near-cache.ts).
 *
 * When Redis is unreachable every method fails fast with `StoreUnavailableError` (see
 * redis-connection.ts); the read-through cache then answers from ShotGrid.
 */
import { createHash } from "node:crypto";
import type { CacheStore, CacheStoreStats, StoredEntry } from "../cache/cache-store.ts";
import { StoreUnavailableError } from "../cache/cache-store.ts";
import { estimateEntryBytes, type RawEntry } from "../cache/memory-store.ts";
import { SharedRoundTrip } from "./shared-round-trip.ts";
import { deepFreeze, renameLink } from "../cache/links.ts";
import { NearCache, parseInvalidation, type NearCacheOptions } from "./near-cache.ts";
import { RedisConnection, type LuaScript, type RedisConnectionOptions } from "./redis-connection.ts";
import * as scripts from "./redis-scripts.ts";
import { errorMessage, type Logger, SILENT_LOGGER } from "../logging/index.ts";

export interface RedisStoreOptions {
  /** Where Redis is (with timeouts), or an existing connection to share (then `close` leaves it open). */
  redis: RedisConnectionOptions | RedisConnection;
  /**
   * Identifies the ShotGrid site (its URL or name): several sites can share one Redis. Kept
   * readable when short and plain, else hashed. Required: two sites must never share entries.
   */
  site: string;
  /** First part of every key and of the channel name. Letters, digits, `_ . -`. Default "sgc". */
  prefix?: string;
  /**
   * Lifetime of an entry (and of its index sets), in seconds. The memory bound is Redis's own
   * `maxmemory` with `maxmemory-policy volatile-lru` (see docs/redis.md). Default 86400 (a day).
   */
  ttlSeconds?: number;
  /** An entry estimated larger than this is not stored. Default 16 MiB. */
  maxEntryBytes?: number;
  /**
   * How many per-tag bump records to keep before forgetting the oldest half (raising the floor:
   * entries fetched before it read as invalid). Default 200000.
   */
  maxTagRecords?: number;
  /** The in-process near cache; `false` turns it off. Default on, 10000 entries / 32 MiB. */
  nearCache?: NearCacheOptions | false;
  /** How often `stats()` is refreshed from Redis (other instances change it too). Default 5000 ms. */
  statsIntervalMs?: number;
  /** Default: silent (or the connection's logger). */
  logger?: Logger;
}

const NAME_PART = /^[A-Za-z0-9_.-]{1,64}$/;

/** A key-safe form of the site: `studio.shotgrid.autodesk.com`, or a hash when that is not possible. */
export function siteKey(site: string): string {
  if (typeof site !== "string" || site.trim() === "") throw new RangeError("redis site: must be a non-empty string (the ShotGrid site)");
  const plain = site
    .trim()
    .toLowerCase()
    .replace(/^https?:\/\//, "")
    .replace(/\/+$/, "");
  return NAME_PART.test(plain) ? plain : `h-${createHash("sha256").update(site).digest("hex").slice(0, 24)}`;
}

function joinLines(items: readonly string[], field: string): string {
  for (const item of items) {
    if (item.includes("\n") || item === "") throw new RangeError(`${field}: "${item.slice(0, 40)}" is empty or contains a newline`);
  }
  return items.join("\n");
}

function parseEntry(json: string): StoredEntry {
  const entry = JSON.parse(json) as StoredEntry;
  deepFreeze(entry.value);
  return entry;
}

export class RedisStore implements CacheStore {
  readonly connection: RedisConnection;
  /** `<prefix>:{<site>}:`: every key of this store starts with it. */
  readonly keyBase: string;
  /** The pub/sub channel of invalidation messages. */
  readonly channel: string;
  readonly #ownsConnection: boolean;
  readonly #ttlMs: number;
  readonly #maxEntryBytes: number;
  readonly #maxTagRecords: number;
  readonly #near: NearCache | undefined;
  readonly #log: Logger;
  readonly #statsTimer: NodeJS.Timeout;
  readonly #offEvent: () => void;
  #stats: CacheStoreStats = { bytes: 0, entries: 0 };
  /**
   * The near cache's barrier: a PING on the subscriber connection, answered after every message
   * published before it ran. One in flight, shared by every read that arrived before it was sent.
   */
  readonly #barrier = new SharedRoundTrip(() => this.connection.run("get", () => this.connection.subscriber.ping()));
  /** Bumped on every connection loss: an activation begun before it must not complete. */
  #nearGeneration = 0;
  #closed = false;

  constructor(options: RedisStoreOptions) {
    const prefix = options.prefix ?? "sgc";
    if (!NAME_PART.test(prefix)) throw new RangeError(`redis prefix: must be 1-64 letters, digits, "_", "." or "-", got ${JSON.stringify(prefix)}`);
    this.keyBase = `${prefix}:{${siteKey(options.site)}}:`;
    this.channel = `${this.keyBase}inv`;
    const ttl = options.ttlSeconds ?? 86_400;
    if (!(Number.isFinite(ttl) && ttl > 0)) throw new RangeError(`redis ttlSeconds: must be a positive number, got ${ttl}`);
    this.#ttlMs = Math.max(1, Math.round(ttl * 1000));
    this.#maxEntryBytes = options.maxEntryBytes ?? 16 * 1024 * 1024;
    this.#maxTagRecords = options.maxTagRecords ?? 200_000;
    if (!(this.#maxTagRecords >= 2)) throw new RangeError(`redis maxTagRecords: must be at least 2, got ${options.maxTagRecords}`);
    this.#log = options.logger ?? SILENT_LOGGER;
    this.#ownsConnection = !(options.redis instanceof RedisConnection);
    this.connection = options.redis instanceof RedisConnection ? options.redis : new RedisConnection({ logger: options.logger, ...options.redis });
    this.#near = options.nearCache === false ? undefined : new NearCache({ ttlMs: Math.min(this.#ttlMs, 60_000), ...options.nearCache });

    this.#offEvent = this.connection.onEvent((client, event) => {
      if (event === "lost") {
        // It may have missed messages: flush, and stay off until the subscription is confirmed.
        this.#nearGeneration++;
        if (this.#near?.active) this.#log.info({ client }, "near cache flushed: redis connection lost");
        this.#near?.deactivate();
      } else {
        void this.#activateNear();
      }
    });
    if (this.#near) {
      const sub = this.connection.subscriber;
      sub.on("message", (channel: string, message: string) => {
        if (channel === this.channel) this.#near!.apply(parseInvalidation(message));
      });
      void this.#activateNear();
    }
    this.#statsTimer = setInterval(() => void this.refreshStats().catch(() => {}), options.statsIntervalMs ?? 5000).unref();
  }

  /** Connected, and its last command did not fail. */
  get healthy(): boolean {
    return this.connection.healthy;
  }

  /** Resolves once Redis answers and (with a near cache) the invalidation channel is subscribed. */
  async ready(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.connection.ready(timeoutMs);
    await this.currentSeq();
    while (this.#near && !this.#near.active) {
      if (Date.now() > deadline) throw new StoreUnavailableError("ready", `invalidation channel not subscribed after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await this.refreshStats();
  }

  /** For tests and metrics: the near cache's state. */
  nearCacheStats(): { active: boolean; hits: number; barriers: number } & CacheStoreStats {
    if (!this.#near) return { active: false, hits: 0, barriers: 0, bytes: 0, entries: 0 };
    return { active: this.#near.active, hits: this.#near.hits, barriers: this.#barrier.sent, ...this.#near.stats() };
  }

  async get(key: string): Promise<StoredEntry | undefined> {
    this.#checkOpen("get");
    const near = this.#near;
    if (near?.holds(key)) {
      const epoch = near.epoch;
      // Served only once a barrier sent after this call is answered (see near-cache.ts). A failed
      // one fails the read, as a failed command would (and marks the connection failing, through
      // `run`): a frozen Redis costs a read one command timeout, not one per round trip tried.
      if (!(await this.#barrier.wait())) throw new StoreUnavailableError("get", "the near cache's barrier PING failed");
      if (near.epoch === epoch) {
        const entry = near.peek(key);
        if (entry) {
          near.hits++;
          return entry;
        }
      }
    }
    const [clock, json] = (await this.#script("get", scripts.GET, [key])) as [number, string];
    if (json === "") return undefined;
    const entry = parseEntry(json);
    await near?.keep(key, entry, clock);
    return entry;
  }

  /**
   * The near copy of `key` as stored text, for the server's hit path: undefined at once when none
   * is held (then `get`), else a promise of it once the same barrier as `get`'s has been answered
   * (undefined if it was dropped meanwhile or the barrier failed). Counts a near hit when it gives one.
   */
  peekRawCurrent(key: string): Promise<Readonly<RawEntry> | undefined> | undefined {
    const near = this.#near;
    if (this.#closed || !near?.holds(key)) return undefined;
    const epoch = near.epoch;
    return this.#barrier.wait().then((ok) => {
      const raw = ok && near.epoch === epoch && !this.#closed ? near.peekRaw(key) : undefined;
      if (raw) near.hits++;
      return raw;
    });
  }

  async setIfFresh(key: string, entry: StoredEntry, guardTags: readonly string[] = []): Promise<boolean> {
    const bytes = estimateEntryBytes(key, entry);
    if (bytes > this.#maxEntryBytes) return false;
    const stored: StoredEntry = { ...entry, value: entry.value };
    const json = JSON.stringify(stored);
    const reply = (await this.#script("setIfFresh", scripts.SET_IF_FRESH, [
      key,
      String(entry.seq),
      joinLines(entry.tags, "tags"),
      joinLines(guardTags, "guardTags"),
      joinLines(entry.links ?? [], "links"),
      json,
      bytes,
      this.#ttlMs,
    ])) as [number, number, number, number];
    this.#setStats(reply[2], reply[3]);
    if (reply[0] !== 1) return false;
    await this.#near?.keep(key, { ...stored, value: deepFreeze(entry.value) }, reply[1]);
    return true;
  }

  async delete(key: string): Promise<void> {
    const reply = (await this.#script("delete", scripts.DELETE, [key, JSON.stringify(key)])) as number[];
    this.#setStats(reply[1]!, reply[2]!);
    this.#near?.apply({ seq: 0, keys: [key] });
  }

  async currentSeq(): Promise<number> {
    return (await this.#script("currentSeq", scripts.SEQ, [])) as number;
  }

  async bump(tags: readonly string[]): Promise<number> {
    const reply = (await this.#script("bump", scripts.BUMP, [this.#maxTagRecords, joinLines(tags, "tags"), JSON.stringify(tags)])) as number[];
    this.#setStats(reply[1]!, reply[2]!);
    // Our own near cache drops at once; the message on the channel tells the other instances.
    this.#near?.apply({ seq: 0, tags: [...tags] });
    return reply[0]!;
  }

  async patchLinkName(link: string, name: string | null | undefined): Promise<number> {
    if (name === undefined) {
      const reply = (await this.#script("patchLinkName", scripts.DROP_LINKING, [link, JSON.stringify(link)])) as number[];
      this.#setStats(reply[1]!, reply[2]!);
      this.#near?.apply({ seq: 0, links: [link] });
      return reply[0]!;
    }
    // Patched here rather than in Lua: JSON round trips in Lua lose number precision and turn empty
    // arrays into objects. Each write is conditional on the entry being unchanged since it was read.
    this.#near?.apply({ seq: 0, links: [link] });
    const sep = link.lastIndexOf(":");
    const type = link.slice(0, sep);
    const id = Number(link.slice(sep + 1));
    const keys = await this.connection.run("patchLinkName", (c) => c.smembers(`${this.keyBase}l:${link}`));
    let count = 0;
    for (let i = 0; i < keys.length; i += 100) {
      const chunk = keys.slice(i, i + 100);
      const jsons = await this.connection.run("patchLinkName", (c) => Promise.all(chunk.map((k) => c.hget(`${this.keyBase}e:${k}`, "v"))));
      const writes: Promise<unknown>[] = [];
      chunk.forEach((key, j) => {
        const json = jsons[j];
        if (!json) return;
        const entry = JSON.parse(json) as StoredEntry;
        if (!entry.links?.includes(link)) return;
        count++;
        const value = renameLink(entry.value, type, id, name);
        if (value === entry.value) return;
        const patched: StoredEntry = { ...entry, value };
        const args = [key, json, JSON.stringify(patched), estimateEntryBytes(key, patched)];
        writes.push(this.#script("patchLinkName", scripts.REPLACE_IF_SAME, args));
      });
      await Promise.all(writes);
    }
    await this.#script("patchLinkName", scripts.ANNOUNCE_PATCH, [JSON.stringify(link)]);
    await this.refreshStats();
    return count;
  }

  async clear(): Promise<void> {
    await this.#script("clear", scripts.CLEAR, []);
    this.#near?.flush();
    this.#stats = { bytes: 0, entries: 0 };
    // Every entry already reads as invalid (the floor moved); now free the memory.
    for (const pattern of ["e:*", "t:*", "l:*"]) {
      let cursor = "0";
      do {
        const [next, found] = await this.connection.run("clear", (c) => c.scan(cursor, "MATCH", `${this.keyBase}${pattern}`, "COUNT", 500));
        cursor = next;
        if (found.length > 0) await this.#script("clear", scripts.SWEEP, found);
      } while (cursor !== "0");
    }
  }

  stats(): CacheStoreStats {
    return this.#stats;
  }

  /** Read the shared size counters now (a timer does it every `statsIntervalMs`). */
  async refreshStats(): Promise<CacheStoreStats> {
    const [bytes, entries] = await this.connection.run("stats", (c) => c.hmget(`${this.keyBase}stats`, "bytes", "entries"));
    this.#setStats(Number(bytes ?? 0), Number(entries ?? 0));
    return this.#stats;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#statsTimer);
    this.#offEvent();
    this.#near?.deactivate();
    if (this.#ownsConnection) await this.connection.close();
  }

  #setStats(bytes: number, entries: number): void {
    this.#stats = { bytes: Math.max(0, bytes), entries: Math.max(0, entries) };
  }

  #checkOpen(operation: string): void {
    if (this.#closed) throw new StoreUnavailableError(operation, "the store is closed");
  }

  #script(operation: string, script: LuaScript, args: readonly (string | number)[]): Promise<unknown> {
    this.#checkOpen(operation);
    return this.connection.script(operation, script, [this.keyBase, this.channel, ...args]);
  }

  /** Subscribe (again), then read the clock: from here on every invalidation reaches the near cache. */
  async #activateNear(): Promise<void> {
    const near = this.#near;
    if (!near || this.#closed) return;
    const generation = this.#nearGeneration;
    const sub = this.connection.subscriber;
    if (sub.status !== "ready" || this.connection.command.status !== "ready") return; // the other "ready" will call again
    try {
      await sub.subscribe(this.channel);
      const clock = Number(await this.connection.command.get(`${this.keyBase}clock`));
      if (generation === this.#nearGeneration && !this.#closed) near.activate(clock);
    } catch (err) {
      this.#log.debug({ err: errorMessage(err) }, "near cache activation failed; retrying");
      if (generation === this.#nearGeneration && !this.#closed) setTimeout(() => void this.#activateNear(), 250).unref();
    }
  }
}
