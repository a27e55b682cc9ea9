/**
 * A bounded memory of recently seen ids (webhook delivery ids): replay protection without
 * unbounded growth. The oldest id is forgotten first, when the bound is reached or its time is up.
 */
export class RecentIds {
  /** id → when it was first seen (ms). A Map keeps insertion order: the oldest entry comes first. */
  readonly #seen = new Map<string, number>();
  readonly #max: number;
  readonly #ttlMs: number;
  readonly #now: () => number;

  /**
   * @param max ids remembered at most (≥ 1).
   * @param ttlMs how long an id is remembered, in ms.
   */
  constructor(max: number, ttlMs: number, now: () => number = Date.now) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`max must be a whole number >= 1, got ${max}`);
    if (!(ttlMs > 0)) throw new RangeError(`ttlMs must be > 0, got ${ttlMs}`);
    this.#max = max;
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** True when `id` was seen within the time to live; otherwise remembers it and returns false. */
  checkAndAdd(id: string): boolean {
    const now = this.#now();
    this.#expire(now);
    if (this.#seen.has(id)) return true;
    this.#seen.set(id, now);
    if (this.#seen.size > this.#max) {
      const oldest = this.#seen.keys().next().value;
      if (oldest !== undefined) this.#seen.delete(oldest);
    }
    return false;
  }

  /** Forget `id` (its processing failed before it took effect: a resend must be processed). */
  forget(id: string): void {
    this.#seen.delete(id);
  }

  #expire(now: number): void {
    for (const [id, at] of this.#seen) {
      if (now - at < this.#ttlMs) break;
      this.#seen.delete(id);
    }
  }
}
