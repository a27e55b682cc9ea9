/**
 * A fixed-capacity ring of the newest items, oldest first. The change bus keeps its replay
 * history here so resuming streams cost bounded memory however long the service runs.
 */
export class ReplayBuffer<T> {
  readonly #items: Array<T | undefined>;
  #start = 0;
  #length = 0;

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 0) {
      throw new RangeError(`replay buffer capacity must be a whole number >= 0, got ${capacity}`);
    }
    this.#items = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.#length;
  }

  /** Append an item; returns the item pushed out to make room, if any. */
  push(item: T): T | undefined {
    if (this.capacity === 0) return item;
    if (this.#length < this.capacity) {
      this.#items[(this.#start + this.#length) % this.capacity] = item;
      this.#length++;
      return undefined;
    }
    const evicted = this.#items[this.#start];
    this.#items[this.#start] = item;
    this.#start = (this.#start + 1) % this.capacity;
    return evicted;
  }

  /** The oldest item still held. */
  oldest(): T | undefined {
    return this.#length === 0 ? undefined : this.#items[this.#start];
  }

  /** Items, oldest first, that satisfy `keep`. */
  filter(keep: (item: T) => boolean): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.#length; i++) {
      const item = this.#items[(this.#start + i) % this.capacity] as T;
      if (keep(item)) out.push(item);
    }
    return out;
  }

  clear(): void {
    this.#items.fill(undefined);
    this.#start = 0;
    this.#length = 0;
  }
}
