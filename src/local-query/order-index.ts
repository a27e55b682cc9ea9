/**
 * A type's records kept sorted by one order (plain fields only), so a page of a common query is
 * read off the front of it instead of sorting thousands of candidates each time. Kept current
 * in place when a change leaves the order's fields alone (a status change under a code order);
 * rebuilt on the next use after anything else (a record added, removed, or moved).
 */
import type { Entity, EntityLink, FieldValue } from "../shotgrid/types.ts";

export type Compare = (a: Entity, b: Entity) => number;

function isLink(v: unknown): v is EntityLink {
  return v !== null && typeof v === "object" && !Array.isArray(v) && typeof (v as EntityLink).id === "number";
}

/** Whether every neighbouring pair of `sorted` is `safe`: a collation that agrees on each agrees on the whole list. */
export function isStable(sorted: readonly Entity[], safe: (a: Entity, b: Entity) => boolean): boolean {
  for (let i = 1; i < sorted.length; i++) if (!safe(sorted[i - 1]!, sorted[i]!)) return false;
  return true;
}

/** Whether two values sort alike: equal scalars, or links to the same record under the same name. */
function sortsAlike(a: FieldValue | undefined, b: FieldValue | undefined): boolean {
  if (a === b) return true;
  if (isLink(a) && isLink(b)) return a.type === b.type && a.id === b.id && a.name === b.name;
  return false;
}

export class OrderIndex {
  #sorted: Entity[] | undefined;
  #stable = false;
  #odd = false;

  constructor(
    /** The plain fields the order reads (empty for the id order). */
    readonly fields: readonly string[],
    /** The order's comparator; it must not depend on anything but `fields` and the id. */
    readonly compare: Compare,
    /** Whether every collation the site may use agrees with `compare` on a pair (ordering.ts). */
    readonly safe: (a: Entity, b: Entity) => boolean,
    /** Whether a record's text keys hold a letter whose lower case is the site's call (ordering.ts). */
    readonly isOdd: (r: Entity) => boolean,
  ) {}

  /** The records in order, sorted now if a change made the kept order unusable. */
  sorted(all: Iterable<Entity>): readonly Entity[] {
    if (!this.#sorted) {
      this.#sorted = [...all].sort(this.compare);
      this.#stable = isStable(this.#sorted, this.safe);
      this.#odd = this.#sorted.some(this.isOdd);
    }
    return this.#sorted;
  }

  /**
   * Whether the sorted records (as `sorted` last made them) are in the same order in every
   * collation the site may use: then so is any subset of them, and a page read off them is exact.
   */
  get stable(): boolean {
    return this.#stable;
  }

  /** Whether a record (as `sorted` last made them) holds a letter whose lower case is the site's call: it may sort anywhere there, so the list serves no page. */
  get odd(): boolean {
    return this.#odd;
  }

  /** `next` replaced `old` (undefined: a new record). */
  replaced(old: Entity | undefined, next: Entity): void {
    const list = this.#sorted;
    if (!list) return;
    if (!old || !this.fields.every((f) => sortsAlike(old.fields[f], next.fields[f]))) {
      this.#sorted = undefined;
      return;
    }
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.compare(list[mid]!, old) < 0) lo = mid + 1;
      else hi = mid;
    }
    if (list[lo] === old) list[lo] = next;
    else this.#sorted = undefined;
  }

  /** A record left, or link names changed: sort again on the next use. */
  invalidate(): void {
    this.#sorted = undefined;
  }
}
