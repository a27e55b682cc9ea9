/**
 * The embedded store: a Map in LRU order, bounded by an estimate of bytes, with eager drops on
 * invalidation (an invalidated entry frees its memory at once and can never be served).
 */
import type { CacheStore, CacheStoreStats, StoredEntry } from "./cache-store.ts";
import { deepFreeze, renameLink } from "./links.ts";

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

interface Slot {
  entry: StoredEntry;
  bytes: number;
}

/** Fixed cost per entry: Map slot, entry object, index sets (a rough figure, not measured). */
const ENTRY_OVERHEAD_BYTES = 256;

/** Estimated memory of one entry: its JSON text, key and tags, plus fixed bookkeeping. */
export function estimateEntryBytes(key: string, entry: StoredEntry): number {
  let bytes = ENTRY_OVERHEAD_BYTES + key.length * 2 + JSON.stringify(entry.value ?? null).length * 2;
  for (const tag of entry.tags) bytes += tag.length * 2 + 16;
  for (const link of entry.links ?? []) bytes += link.length * 2 + 16;
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
  /** tag → clock value of its last bump, oldest first. */
  readonly #lastBump = new Map<string, number>();
  /** Every tag reads as bumped at least at this clock value (forgotten records, clear). */
  #floor = 0;
  #seq = 0;
  #bytes = 0;

  constructor(options: MemoryStoreOptions) {
    if (!(options.maxBytes > 0)) throw new RangeError(`maxBytes must be a positive number, got ${options.maxBytes}`);
    this.#maxBytes = options.maxBytes;
    this.#maxTagRecords = options.maxTagRecords ?? 100_000;
    this.#onEvict = options.onEvict;
  }

  async get(key: string): Promise<StoredEntry | undefined> {
    const slot = this.#slots.get(key);
    if (!slot) return undefined;
    this.#slots.delete(key);
    this.#slots.set(key, slot);
    return slot.entry;
  }

  async setIfFresh(key: string, entry: StoredEntry, guardTags: readonly string[] = []): Promise<boolean> {
    if (this.#bumpedSince(entry.tags, entry.seq) || this.#bumpedSince(guardTags, entry.seq)) return false;
    const existing = this.#slots.get(key);
    if (existing && existing.entry.seq > entry.seq) return false;
    const bytes = estimateEntryBytes(key, entry);
    if (bytes > this.#maxBytes) return false;
    if (existing) this.#remove(key, existing);
    const stored: StoredEntry = { ...entry, value: deepFreeze(entry.value) };
    this.#slots.set(key, { entry: stored, bytes });
    this.#bytes += bytes;
    for (const tag of stored.tags) addTo(this.#byTag, tag, key);
    for (const link of stored.links ?? []) addTo(this.#byLink, link, key);
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
      const value = renameLink(slot.entry.value, type, id, name);
      if (value === slot.entry.value) continue;
      const entry: StoredEntry = { ...slot.entry, value: deepFreeze(value) };
      const bytes = estimateEntryBytes(key, entry);
      this.#bytes += bytes - slot.bytes;
      slot.entry = entry;
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
    for (const tag of slot.entry.tags) removeFrom(this.#byTag, tag, key);
    for (const link of slot.entry.links ?? []) removeFrom(this.#byLink, link, key);
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

function removeFrom(index: Map<string, Set<string>>, name: string, key: string): void {
  const keys = index.get(name);
  if (!keys) return;
  keys.delete(key);
  if (keys.size === 0) index.delete(name);
}
