/**
 * The embedded store: a Map in LRU order, bounded by an estimate of bytes, with eager drops on
 * invalidation (an invalidated entry frees its memory at once and can never be served).
 *
 * Values are kept as their JSON text, not as objects: a shot record parsed into objects takes
 * ~2.2 KB of heap, its text ~0.4–0.7 KB. Each read parses the text (microseconds), so a reader
 * always gets its own copy and nothing it does can change what is stored. Tag and link names
 * shared by many entries (`ty:Shot`, `Project:70`) are stored once.
 */
import type { CacheStore, CacheStoreStats, StoredEntry } from "./cache-store.ts";
import { renameLink } from "./links.ts";

export interface MemoryStoreOptions {
  /** Upper bound on the estimated bytes of all entries; least recently used entries go first. */
  maxBytes: number;
  /**
   * How many per-tag bump records to keep before forgetting the oldest half. A forgotten tag reads
   * as bumped at the newest forgotten bump, which can only refuse a fill, never allow a stale one.
   * Default 100000.
   */
  maxTagRecords?: number;
  /** Called with the key of each entry evicted to respect `maxBytes`. */
  onEvict?: (key: string) => void;
}

/** One stored entry, compact: the value as JSON text, the rest as `StoredEntry` has it. */
interface Slot {
  text: string;
  seq: number;
  fetchedAt: number;
  asOfEventId: number;
  tags: string[];
  links: string[] | undefined;
  bytes: number;
  /** The store's `#tick` when this entry last moved to the recent end. */
  order: number;
}

/** A stored value as the hit path sees it: its text (the same text while the value is unchanged). */
export interface RawEntry {
  text: string;
  fetchedAt: number;
  asOfEventId: number;
}

/** Fixed cost per entry: Map slot, entry object, index sets (a rough figure, not measured). */
const ENTRY_OVERHEAD_BYTES = 256;

/** Estimated memory of one entry: its JSON text, key and tags, plus fixed bookkeeping. */
export function estimateEntryBytes(key: string, entry: StoredEntry): number {
  return estimateBytes(key, JSON.stringify(entry.value ?? null), entry.tags, entry.links);
}

function estimateBytes(key: string, text: string, tags: readonly string[], links: readonly string[] | undefined): number {
  // Two bytes per character: exact for text with characters past U+00FF, twice the truth for
  // plain Latin-1 text (most records): the bound errs on the safe side.
  let bytes = ENTRY_OVERHEAD_BYTES + key.length * 2 + text.length * 2;
  for (const tag of tags) bytes += tag.length * 2 + 16;
  for (const link of links ?? []) bytes += link.length * 2 + 16;
  return bytes;
}

export class MemoryStore implements CacheStore {
  readonly #maxBytes: number;
  readonly #maxTagRecords: number;
  readonly #onEvict?: (key: string) => void;
  /** Insertion order is recency order: the first key is the least recently used. */
  readonly #slots = new Map<string, Slot>();
  readonly #byTag = new Map<string, Set<string>>();
  readonly #byLink = new Map<string, Set<string>>();
  /** One copy of each tag and link name in use (entries share them). */
  readonly #names = new Map<string, string>();
  /** tag → clock value of its last bump, oldest first. */
  readonly #lastBump = new Map<string, number>();
  /** Every tag reads as bumped at least at this clock value (forgotten records, clear). */
  #floor = 0;
  #seq = 0;
  #bytes = 0;
  /** Counts moves to the recent end (inserts and touches that move an entry). */
  #tick = 0;

  constructor(options: MemoryStoreOptions) {
    if (!(options.maxBytes > 0)) throw new RangeError(`maxBytes must be a positive number, got ${options.maxBytes}`);
    this.#maxBytes = options.maxBytes;
    this.#maxTagRecords = options.maxTagRecords ?? 100_000;
    this.#onEvict = options.onEvict;
  }

  async get(key: string): Promise<StoredEntry | undefined> {
    return this.peek(key);
  }

  /** `get` without a promise: the entry (its value a fresh copy), marked recently used. */
  peek(key: string): StoredEntry | undefined {
    const slot = this.#touch(key);
    if (!slot) return undefined;
    const entry: StoredEntry = {
      value: JSON.parse(slot.text),
      seq: slot.seq,
      fetchedAt: slot.fetchedAt,
      asOfEventId: slot.asOfEventId,
      tags: slot.tags.slice(),
    };
    if (slot.links) entry.links = slot.links.slice();
    return entry;
  }

  /**
   * The stored text of an entry and its times, marked recently used, without parsing it: the hit
   * path keeps answers encoded per text and parses only when it has none for this text.
   */
  peekRaw(key: string): Readonly<RawEntry> | undefined {
    return this.#touch(key);
  }

  /**
   * Mark an entry recently used. Only an entry in the older half of the order moves (fewer than
   * half the entries moved after it): one already among the recent ones is far from eviction.
   * Moving it every time would cost more than the rest of a hit: V8's Map keeps a deleted key in
   * its hash chain until the next rehash, so re-adding one hot key over and over makes that
   * chain, and every lookup in it, longer (23 µs a touch at 10 000 entries, growing with size).
   */
  #touch(key: string): Slot | undefined {
    const slot = this.#slots.get(key);
    if (!slot) return undefined;
    if (this.#tick - slot.order > this.#slots.size >> 1) {
      this.#slots.delete(key);
      this.#slots.set(key, slot);
      slot.order = ++this.#tick;
    }
    return slot;
  }

  async setIfFresh(key: string, entry: StoredEntry, guardTags: readonly string[] = []): Promise<boolean> {
    if (this.#bumpedSince(entry.tags, entry.seq) || this.#bumpedSince(guardTags, entry.seq)) return false;
    const existing = this.#slots.get(key);
    if (existing && existing.seq > entry.seq) return false;
    const text = JSON.stringify(entry.value ?? null);
    const bytes = estimateBytes(key, text, entry.tags, entry.links);
    if (bytes > this.#maxBytes) return false;
    if (existing) this.#remove(key, existing);
    const slot: Slot = {
      text,
      seq: entry.seq,
      fetchedAt: entry.fetchedAt,
      asOfEventId: entry.asOfEventId,
      // The entry's own key as a tag (a record's usual first tag) is the key string itself.
      tags: entry.tags.map((t) => (t === key ? key : this.#name(t))),
      links: entry.links?.map((l) => this.#name(l)),
      bytes,
      order: ++this.#tick,
    };
    this.#slots.set(key, slot);
    this.#bytes += bytes;
    // A tag naming the entry's own key needs no index: `bump` finds that entry by key.
    for (const tag of slot.tags) if (tag !== key) addTo(this.#byTag, tag, key);
    for (const link of slot.links ?? []) addTo(this.#byLink, link, key);
    this.#evictOver();
    return true;
  }

  async delete(key: string): Promise<void> {
    const slot = this.#slots.get(key);
    if (slot) this.#remove(key, slot);
  }

  async currentSeq(): Promise<number> {
    return this.#seq;
  }

  async bump(tags: readonly string[]): Promise<number> {
    const seq = ++this.#seq;
    for (const tag of tags) {
      this.#lastBump.delete(tag);
      this.#lastBump.set(tag, seq);
      const own = this.#slots.get(tag);
      if (own?.tags.includes(tag)) this.#remove(tag, own);
      const keys = this.#byTag.get(tag);
      if (!keys) continue;
      for (const key of [...keys]) {
        const slot = this.#slots.get(key);
        if (slot) this.#remove(key, slot);
      }
    }
    this.#forgetOldTags();
    return seq;
  }

  async patchLinkName(link: string, name: string | null | undefined): Promise<number> {
    const keys = this.#byLink.get(link);
    if (!keys) return 0;
    const sep = link.lastIndexOf(":");
    const type = link.slice(0, sep);
    const id = Number(link.slice(sep + 1));
    let count = 0;
    for (const key of [...keys]) {
      const slot = this.#slots.get(key);
      if (!slot) continue;
      count++;
      if (name === undefined) {
        this.#remove(key, slot);
        continue;
      }
      const value = JSON.parse(slot.text) as unknown;
      const renamed = renameLink(value, type, id, name);
      if (renamed === value) continue;
      // A new text (never an edit of the old one): readers holding the old text keep a consistent value.
      slot.text = JSON.stringify(renamed);
      const bytes = estimateBytes(key, slot.text, slot.tags, slot.links);
      this.#bytes += bytes - slot.bytes;
      slot.bytes = bytes;
    }
    this.#evictOver();
    return count;
  }

  async clear(): Promise<void> {
    this.#floor = ++this.#seq;
    this.#lastBump.clear();
    this.#slots.clear();
    this.#byTag.clear();
    this.#byLink.clear();
    this.#names.clear();
    this.#bytes = 0;
  }

  stats(): CacheStoreStats {
    return { bytes: this.#bytes, entries: this.#slots.size };
  }

  #bumpedSince(tags: readonly string[], seq: number): boolean {
    if (this.#floor > seq) return true;
    for (const tag of tags) if ((this.#lastBump.get(tag) ?? 0) > seq) return true;
    return false;
  }

  #remove(key: string, slot: Slot): void {
    this.#slots.delete(key);
    this.#bytes -= slot.bytes;
    for (const tag of slot.tags) if (tag !== key && removeFrom(this.#byTag, tag, key)) this.#forgetName(tag);
    for (const link of slot.links ?? []) if (removeFrom(this.#byLink, link, key)) this.#forgetName(link);
  }

  /** The shared copy of a tag or link name. */
  #name(name: string): string {
    const known = this.#names.get(name);
    if (known !== undefined) return known;
    this.#names.set(name, name);
    return name;
  }

  /** A name no index uses any more is not kept. */
  #forgetName(name: string): void {
    if (!this.#byTag.has(name) && !this.#byLink.has(name)) this.#names.delete(name);
  }

  #evictOver(): void {
    while (this.#bytes > this.#maxBytes) {
      const oldest = this.#slots.entries().next();
      if (oldest.done) return;
      const [key, slot] = oldest.value;
      this.#remove(key, slot);
      this.#onEvict?.(key);
    }
  }

  #forgetOldTags(): void {
    if (this.#lastBump.size <= this.#maxTagRecords) return;
    let drop = this.#lastBump.size - Math.floor(this.#maxTagRecords / 2);
    for (const [tag, seq] of this.#lastBump) {
      if (drop-- <= 0) break;
      this.#lastBump.delete(tag);
      if (seq > this.#floor) this.#floor = seq;
    }
  }
}

function addTo(index: Map<string, Set<string>>, name: string, key: string): void {
  let keys = index.get(name);
  if (!keys) index.set(name, (keys = new Set()));
  keys.add(key);
}

/** Returns true when `name` has no keys left (and was dropped from `index`). */
function removeFrom(index: Map<string, Set<string>>, name: string, key: string): boolean {
  const keys = index.get(name);
  if (!keys) return false;
  keys.delete(key);
  if (keys.size > 0) return false;
  index.delete(name);
  return true;
}
