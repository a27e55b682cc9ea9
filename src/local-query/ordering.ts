/**
 * Ordering with ShotGrid's rules: each key in turn, text without regard to letter case, links
 * by the linked record's display name, empty values last ascending and first descending, ties
 * broken by id ascending. Only the first `keep` records are fully ordered (a page needs no more).
 *
 * Text is compared letter by letter after lower-casing; where that may not be the site's
 * collation's order, a pair is not `safe` (collation.ts). `check` flags neighbours in an answer
 * that are not; a kept sorted list whose neighbours are all safe (`stable`) serves any page of
 * any subset of it, and otherwise the records past a page are checked against its last one.
 */
import type { Entity, EntityLink, FieldValue, SortSpec } from "../shotgrid/types.ts";
import { CannotAnswer } from "./cannot-answer.ts";
import type { Evaluation } from "./filters.ts";
import type { Mirror } from "./mirror.ts";
import type { Compare } from "./order-index.ts";
import { collationDependent, lowersOddly } from "./collation.ts";
import { compilePath } from "./paths.ts";

type SortValue = string | number | null;

const ORDERABLE = new Set([
  "text",
  "status_list",
  "list",
  "entity_type",
  "color",
  "uuid",
  "number",
  "float",
  "percent",
  "currency",
  "duration",
  "timecode",
  "date",
  "date_time",
  "checkbox",
  "entity",
]);

function sortValue(v: FieldValue, dataType: string): SortValue {
  if (v === null || v === undefined) return null;
  if (dataType === "checkbox") return v === true ? 1 : 0;
  if (dataType === "entity") return (v as EntityLink).name ?? "";
  return v as string | number;
}

export interface CompiledOrder {
  compare: Compare;
  /** Whether a text key decides the order anywhere (else every pair is `safe`). */
  hasText: boolean;
  /** Whether every collation the site may sort text with puts `a` and `b` in the order `compare` does (pure: flags nothing). */
  safe: (a: Entity, b: Entity) => boolean;
  /** `compare`, and flags the evaluation unsure when the order of neighbours `a`, `b` in an answer hangs on the site's collation. */
  check: Compare;
  /** When the first key is text in ascending order and no other key is text: a record's key for collation.ts's `mayComeBefore` (lower case; null when empty). */
  firstKey: ((r: Entity) => string | null) | undefined;
  /** The first key's value before lower-casing, when `firstKey` is defined. */
  firstRaw: ((r: Entity) => string | null) | undefined;
  /** Whether a text key of `r` holds a letter whose lower case is the site's call (collation.ts `lowersOddly`): it may sort anywhere there. */
  odd: (r: Entity) => boolean;
  /** The order's fields when all are plain (none read through a link): it can be kept sorted. */
  plainFields: string[] | undefined;
}

/** A comparator for `order` over `type`'s records; the types it reads are added to `types`. */
export function compileOrder(mirror: Mirror, type: string, order: readonly SortSpec[], ev: Evaluation, types: Set<string>): CompiledOrder {
  const keys = order.map((s) => {
    const fp = compilePath(mirror, type, s.field, ev);
    const dt = fp.field.dataType;
    if (!ORDERABLE.has(dt)) throw new CannotAnswer("order", `ordering by ${dt} field ${s.field} is not modelled`);
    // By name, the engine assumes; across types (a Task's entity), the site may put the type first.
    if (dt === "entity" && fp.field.validTypes?.length !== 1) throw new CannotAnswer("order", `ordering by ${s.field}, a link to more than one entity type`);
    for (const t of fp.types) types.add(t);
    const text = dt !== "date" && dt !== "date_time" && typeof sortValue("", dt) === "string";
    return { read: fp.read, dt, desc: s.direction === "desc", text, path: s.field };
  });
  const compare: Compare = (a, b) => {
    for (const k of keys) {
      const x = sortValue(k.read(a), k.dt);
      const y = sortValue(k.read(b), k.dt);
      let c = 0;
      if (x === null || y === null) c = x === y ? 0 : x === null ? 1 : -1;
      else if (k.text && typeof x === "string" && typeof y === "string") {
        if (x !== y) {
          const lx = x.toLowerCase();
          const ly = y.toLowerCase();
          c = lx < ly ? -1 : lx > ly ? 1 : 0;
          // Equal but for letter case: whether the site ties them (then by id) is its collation's call.
          if (c === 0) ev.unsure ??= `ordering by ${k.path}: ${JSON.stringify(x)} and ${JSON.stringify(y)} differ only in letter case`;
        }
      } else {
        c = x < y ? -1 : x > y ? 1 : 0;
        // Shown to the second, kept finer by the site: two times in one second may be in either order there.
        if (c === 0 && k.dt === "date_time" && a.id !== b.id) ev.unsure ??= `ordering by ${k.path}: two records in the same second`;
      }
      if (c !== 0) return k.desc ? -c : c;
    }
    return a.id - b.id;
  };
  const safe = (a: Entity, b: Entity): boolean => {
    for (const k of keys) {
      const x = sortValue(k.read(a), k.dt);
      const y = sortValue(k.read(b), k.dt);
      if (x === y) continue;
      if (!k.text || typeof x !== "string" || typeof y !== "string") return true;
      if (lowersOddly(x) || lowersOddly(y)) return false;
      const lx = x.toLowerCase();
      const ly = y.toLowerCase();
      // Equal but for letter case: which one comes first is the site's collation's call.
      if (lx === ly) return false;
      return collationDependent(lx, ly) === undefined;
    }
    return true;
  };
  const check: Compare = (a, b) => {
    const c = compare(a, b);
    for (const k of keys) {
      const x = sortValue(k.read(a), k.dt);
      const y = sortValue(k.read(b), k.dt);
      if (x === y) continue;
      if (k.text && typeof x === "string" && typeof y === "string") {
        if (lowersOddly(x) || lowersOddly(y))
          ev.unsure ??= `ordering by ${k.path}: ${JSON.stringify(x)} or ${JSON.stringify(y)} holds a letter whose lower case the site may make otherwise`;
        const at = collationDependent(x.toLowerCase(), y.toLowerCase());
        if (at !== undefined)
          ev.unsure ??= `ordering by ${k.path}: ${JSON.stringify(x)} and ${JSON.stringify(y)} first differ at a character whose place depends on the site's collation`;
        if (at === undefined && x.toLowerCase() === y.toLowerCase()) continue;
      }
      break;
    }
    return c;
  };
  const hasText = keys.some((k) => k.text);
  const first = keys[0];
  const firstOnly = first?.text && !first.desc && keys.slice(1).every((k) => !k.text);
  const firstRaw = firstOnly
    ? (r: Entity): string | null => {
        const v = sortValue(first.read(r), first.dt);
        return typeof v === "string" ? v : null;
      }
    : undefined;
  const firstKey = firstRaw && ((r: Entity): string | null => firstRaw(r)?.toLowerCase() ?? null);
  const textKeys = keys.filter((k) => k.text);
  const odd = (r: Entity): boolean => {
    for (const k of textKeys) {
      const v = sortValue(k.read(r), k.dt);
      if (typeof v === "string" && lowersOddly(v)) return true;
    }
    return false;
  };
  return {
    compare,
    check,
    hasText,
    safe,
    firstKey,
    firstRaw,
    odd,
    plainFields: order.some((s) => s.field.includes(".")) ? undefined : order.map((s) => s.field),
  };
}

/** The first `keep` records of `records` in order (all of them when `keep` is undefined). */
export function firstInOrder(records: Entity[], compare: Compare, keep: number | undefined): Entity[] {
  if (keep === undefined || keep >= records.length / 4) return records.sort(compare).slice(0, keep);
  // A bounded insertion list: most records lose against the current last and cost one comparison.
  const top: Entity[] = [];
  for (const r of records) {
    if (top.length === keep && compare(r, top[keep - 1]!) >= 0) continue;
    let lo = 0;
    let hi = top.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compare(r, top[mid]!) < 0) hi = mid;
      else lo = mid + 1;
    }
    top.splice(lo, 0, r);
    if (top.length > keep) top.pop();
  }
  return top;
}
