/**
 * The local query engine: answers a validated, canonical Query over the mirror exactly as the
 * site would, or says why it cannot (then the cache asks the site, as before). It never guesses:
 * a rule it is not sure of for the records at hand is a "cannot answer".
 */
import type { Entity, FieldValue, FilterCondition, FilterGroup, SortSpec } from "../shotgrid/types.ts";
import { CannotAnswer, type CannotAnswerCode } from "./cannot-answer.ts";
import { compileFilters, type Evaluation } from "./filters.ts";
import { indexKeyOf, Mirror, type TypeMirror } from "./mirror.ts";
import { lowersOddly, mayComeBefore } from "./collation.ts";
import { isStable, OrderIndex } from "./order-index.ts";
import { compileOrder, firstInOrder, type CompiledOrder } from "./ordering.ts";
import { checkKnown, compilePath, readyType } from "./paths.ts";
import { checkTimeZone } from "./time-zone.ts";

/** A Query after validation and canonicalisation (the cache's `CanonicalQuery` fits). */
export interface LocalQuery {
  entityType: string;
  filters: FilterGroup;
  /** Empty: the default fields. */
  fields: readonly string[];
  order: readonly SortSpec[];
  /** 0: no limit. */
  limit: number;
  /** 1-based page of `limit` records. */
  page: number;
  includeArchivedProjects: boolean;
  retired: boolean;
}

export type LocalAnswer = { ok: true; entities: Entity[] } | { ok: false; code: CannotAnswerCode; reason: string };

export interface LocalQueryEngineOptions {
  /** The mirrored types (the cache's preloaded ones). */
  types: readonly string[];
  /** The site's IANA time zone, for relative dates. Undefined: not known (Queries that need it are declined). */
  timeZone?: string;
  /** The fields an empty field list means, among those a record holds. */
  defaultFields: readonly string[];
  /** Milliseconds since the epoch. Default `Date.now`. */
  now?: () => number;
}

function isProjectLink(v: FieldValue | undefined): v is { type: "Project"; id: number } {
  return v !== null && typeof v === "object" && !Array.isArray(v) && (v as { type?: unknown }).type === "Project";
}

export class LocalQueryEngine {
  readonly mirror: Mirror;
  readonly timeZone: string | undefined;
  readonly #defaultFields: readonly string[];
  readonly #now: () => number;
  /** Index buckets sorted per kept order, with the type version they were sorted at (dropped with their bucket). */
  readonly #sortedBuckets = new WeakMap<ReadonlySet<number>, Map<OrderIndex, Map<ReadonlySet<number>, SortedBucket>>>();

  constructor(options: LocalQueryEngineOptions) {
    this.mirror = new Mirror(options.types);
    this.timeZone = options.timeZone === undefined ? undefined : checkTimeZone(options.timeZone);
    this.#defaultFields = options.defaultFields;
    this.#now = options.now ?? Date.now;
  }

  answer(q: LocalQuery): LocalAnswer {
    try {
      return { ok: true, entities: this.#answer(q) };
    } catch (err) {
      if (err instanceof CannotAnswer) return { ok: false, code: err.code, reason: err.reason };
      throw err;
    }
  }

  #answer(q: LocalQuery): Entity[] {
    if (q.retired) throw new CannotAnswer("retired_records", "the mirror holds active records only");
    const m = readyType(this.mirror, q.entityType);
    const ev: Evaluation = { unsure: undefined, now: this.#now(), timeZone: this.timeZone };
    const { predicate } = compileFilters(this.mirror, q.entityType, q.filters, ev);
    const visible = q.includeArchivedProjects ? undefined : this.#notArchived(q.entityType, ev);
    const fields = this.#fieldReaders(m, q.fields, ev);
    const order = compileOrder(this.mirror, q.entityType, q.order, ev, new Set());
    const keep = q.limit > 0 ? q.limit * q.page : undefined;
    const { best: candidates, also } = this.#indexCandidates(m, q.filters);
    const kept = this.#orderIndex(m, q.order, order);
    // The filters first: what `visible` is unsure of matters only for a record they keep.
    const accept = (r: Entity) => predicate(r) && (!visible || visible(r));
    let page: Entity[] | undefined;
    // A kept sorted list serves a page only when every collation the site may use sorts it the
    // same (ordering.ts): a page read off it then holds what the site's would. Else the matching
    // records are gathered and each one past the page is checked against the page's last.
    // A list that is not stable still serves when its first key is ascending text: the few
    // records past the page that a collation could bring before its last are looked up.
    const usable = (list: SortedList) => !order.hasText || (!list.odd && (list.stable || order.firstKey !== undefined));
    // The whole type in the kept order, sorted now if a change made it stale: only where it is read.
    const keptList = (k: OrderIndex): SortedList => {
      const records = k.sorted(m.records.values());
      return { records, stable: k.stable, odd: k.odd };
    };
    let walked: SortedList | undefined;
    if (kept && candidates === undefined) {
      const list = keptList(kept);
      if (usable(list)) page = walk((walked = list).records, accept, keep, order.check, Infinity);
    } else if (kept && candidates instanceof Set) {
      // An index bucket (one link, status or list value) sorted in this order, kept until the type changes.
      const bucket = this.#sortedBucket(m, candidates, also, kept);
      if (usable(bucket)) page = walk((walked = bucket).records, accept, keep, order.check, Infinity);
    } else if (kept && candidates) {
      // The kept order from the front while that is cheaper than the hit; a filter that goes
      // with the order (codes grouped by project) makes it long, so it has a budget.
      const hit = size(candidates);
      if (keep !== undefined && ((keep + 1) * m.records.size) / Math.max(1, hit) < hit) {
        const list = keptList(kept);
        if (usable(list)) page = walk((walked = list).records, accept, keep, order.check, 2 * hit);
      }
    }
    const walkedLast = page?.[page.length - 1];
    if (walked && walkedLast && order.hasText && !walked.stable && keep !== undefined) {
      const lastKey = order.firstKey!(walkedLast);
      const lastRaw = order.firstRaw!(walkedLast);
      if (lastKey !== null && mayComeBefore(walked.records, lastKey, order.firstKey!, accept, (r: Entity) => order.firstRaw!(r) !== lastRaw)) {
        ev.unsure ??= `ordering by ${q.order[0]!.field}: a record past the page differs from its last at a character whose place depends on the site's collation`;
      }
    }
    if (!page) {
      const matching: Entity[] = [];
      for (const r of candidates ? this.#records(m, candidates) : m.records.values()) if (accept(r)) matching.push(r);
      // One past the page, so that the neighbours at its end are checked too.
      page = firstInOrder(matching, order.compare, keep === undefined ? undefined : keep + 1);
      for (let i = 1; i < page.length; i++) order.check(page[i - 1]!, page[i]!);
      if (keep !== undefined) page = page.slice(0, keep);
      // Past the page: each record must come after the page's last in every collation too.
      const last = page[page.length - 1];
      if (order.hasText && last && matching.length > page.length) {
        const inPage = new Set(page);
        for (const r of matching) {
          if (inPage.has(r) || order.safe(last, r)) continue;
          ev.unsure ??= `ordering by ${q.order.map((s) => s.field).join(", ")}: a record past the page differs from its last at a character whose place depends on the site's collation`;
          break;
        }
      }
    }
    if (ev.unsure) throw new CannotAnswer("uncertain", ev.unsure);
    if (q.limit > 0) page = page.slice(q.limit * (q.page - 1));
    const entities = page.map((r) => {
      const out: Record<string, FieldValue> = {};
      for (const [name, read] of fields) {
        const v = read(r);
        if (v !== undefined) out[name] = v;
      }
      return { type: r.type, id: r.id, fields: out };
    });
    // Reading the fields may meet what the engine is not sure of too (a dotted path through no link).
    if (ev.unsure) throw new CannotAnswer("uncertain", ev.unsure);
    return entities;
  }

  /** Records outside archived projects (a Project is itself archived or not). */
  #notArchived(type: string, ev: Evaluation): ((r: Entity) => boolean) | undefined {
    const m = this.mirror.typeMirror(type)!;
    if (type !== "Project" && !m.schema!["project"]) return undefined;
    const projects = readyType(this.mirror, "Project");
    if (type === "Project") {
      // ShotGrid documents hiding the records of archived projects; whether a Project query
      // hides the archived Project records themselves is not said.
      return (r) => {
        if (r.fields["archived"] !== true) return true;
        ev.unsure ??= `Project ${r.id} is archived: whether the site hides an archived Project itself is not documented`;
        return false;
      };
    }
    return (r) => {
      const link = r.fields["project"];
      if (!isProjectLink(link)) return true;
      const p = projects.records.get(link.id);
      if (!p) {
        ev.unsure ??= `${type} ${r.id} belongs to project ${link.id}, which is not an active mirrored project`;
        return true;
      }
      return p.fields["archived"] !== true;
    };
  }

  /** How each returned field is read: plain fields as held, dotted ones through the mirror. */
  #fieldReaders(m: TypeMirror, wanted: readonly string[], ev: Evaluation): Array<[string, (r: Entity) => FieldValue | undefined]> {
    if (wanted.length === 0) {
      for (const f of this.#defaultFields) checkKnown(m, f);
      return this.#defaultFields.map((f) => [f, (r: Entity) => r.fields[f]]);
    }
    return wanted.map((f) => {
      if (!f.includes(".")) {
        if (f !== "id" && f !== "type" && m.heldFields !== undefined && !m.heldFields.has(f)) {
          throw new CannotAnswer("field_not_held", `${m.type}.${f} is not held by every mirrored record`);
        }
        checkKnown(m, f);
        return [f, (r: Entity) => r.fields[f]];
      }
      return [f, compilePath(this.mirror, m.type, f, ev).read];
    });
  }

  /**
   * The smallest index hit among the top-level `and` conditions that pin a link, a status or
   * list value, or ids, or look for text in a text field (text-search.ts); undefined when none
   * does. The filters still run on each record.
   */
  #indexCandidates(m: TypeMirror, filters: FilterGroup): { best?: number[] | ReadonlySet<number>; also?: ReadonlySet<number> } {
    if (filters.logical_operator !== "and") return {};
    const hits: Array<number[] | ReadonlySet<number>> = [];
    for (const c of filters.conditions) {
      if (!Array.isArray(c)) continue;
      const ids = this.#indexHit(m, c);
      if (ids) hits.push(ids);
    }
    hits.sort((a, b) => size(a) - size(b));
    // A second bucket narrows the first (a status within a project) when both are buckets.
    const also = hits[0] instanceof Set && hits[1] instanceof Set ? hits[1] : undefined;
    return { best: hits[0], also };
  }

  *#records(m: TypeMirror, ids: Iterable<number>): Iterable<Entity> {
    for (const id of ids) {
      const r = m.records.get(id);
      if (r) yield r;
    }
  }

  /** `bucket`'s records (those also in `also`, when given) sorted by `kept`'s order: made once, used until the type changes. */
  #sortedBucket(m: TypeMirror, bucket: ReadonlySet<number>, also: ReadonlySet<number> | undefined, kept: OrderIndex): SortedBucket {
    let byOrder = this.#sortedBuckets.get(bucket);
    if (!byOrder) this.#sortedBuckets.set(bucket, (byOrder = new Map()));
    let byOther = byOrder.get(kept);
    if (!byOther) {
      // Copies for orders no longer kept go: at most one per kept order per bucket.
      const live = new Set(m.orders.values());
      for (const o of byOrder.keys()) if (!live.has(o)) byOrder.delete(o);
      byOrder.set(kept, (byOther = new Map()));
    }
    let entry = byOther.get(also ?? bucket);
    if (!entry || entry.version !== m.version) {
      const ids = also ? [...bucket].filter((id) => also.has(id)) : bucket;
      const records = [...this.#records(m, ids)].sort(kept.compare);
      entry = { version: m.version, records, stable: isStable(records, kept.safe), odd: records.some(kept.isOdd) };
      byOther.set(also ?? bucket, entry);
    }
    return entry;
  }

  /** The kept sorted copy of `m`'s records for `order` (plain fields only), made on first use; a few per type. */
  #orderIndex(m: TypeMirror, spec: readonly SortSpec[], order: CompiledOrder): OrderIndex | undefined {
    if (!order.plainFields) return undefined;
    const key = JSON.stringify(spec);
    let kept = m.orders.get(key);
    if (!kept) {
      // Its own comparator: what it notices while sorting is not about any one query.
      const quiet: Evaluation = { unsure: undefined, now: 0, timeZone: this.timeZone };
      const own = compileOrder(this.mirror, m.type, spec, quiet, new Set());
      kept = new OrderIndex(order.plainFields, own.compare, own.safe, own.odd);
      if (m.orders.size >= MAX_ORDERS_PER_TYPE) m.orders.delete(m.orders.keys().next().value!);
      m.orders.set(key, kept);
    }
    return kept;
  }

  #indexHit(m: TypeMirror, [path, op, ...values]: FilterCondition): number[] | ReadonlySet<number> | undefined {
    if (path.includes(".")) return undefined;
    if ((op === "contains" || op === "starts_with" || op === "ends_with") && typeof values[0] === "string") {
      // With "_" or "%" every record must meet the filter: one that matches only if they are
      // wildcards is what makes the engine unsure (filters.ts likeReading), and the search would hide it.
      return /[_%]/.test(values[0]) ? undefined : this.mirror.search(m.type, path, values[0].toLowerCase(), op);
    }
    if (op !== "is" && op !== "in") return undefined;
    const list = op === "is" ? values.slice(0, 1) : values.length === 1 && Array.isArray(values[0]) ? (values[0] as unknown[]) : values;
    if (path === "id") return list.every((v) => typeof v === "number") ? [...new Set(list as number[])] : undefined;
    const hits: ReadonlySet<number>[] = [];
    for (const v of list) {
      // Lower-cased keys: a value whose lower case the site may make otherwise could sit in another bucket there.
      if (typeof v === "string" && lowersOddly(v)) return undefined;
      const ids = this.mirror.lookup(m.type, path, indexKeyOf(v as FieldValue));
      if (!ids) return undefined;
      hits.push(ids);
    }
    // One value: the index's own bucket (a Set: its sorted copies can be kept); several: a list.
    if (hits.length === 1) return hits[0];
    const union = new Set<number>();
    for (const h of hits) for (const id of h) union.add(id);
    return [...union];
  }
}

/**
 * The first `keep` (all when undefined) records of `sorted` that `accept` takes, or undefined
 * after `budget` records were looked at. Neighbours (and the one past the page) are compared as
 * a sort would, so the engine notices a tie whose order only the site knows.
 */
function walk(
  sorted: readonly Entity[],
  accept: (r: Entity) => boolean,
  keep: number | undefined,
  compare: (a: Entity, b: Entity) => number,
  budget: number,
): Entity[] | undefined {
  const matched: Entity[] = [];
  let seen = 0;
  for (const r of sorted) {
    if (++seen > budget) return undefined;
    if (!accept(r)) continue;
    matched.push(r);
    if (keep !== undefined && matched.length > keep) break;
  }
  for (let i = 1; i < matched.length; i++) compare(matched[i - 1]!, matched[i]!);
  return keep === undefined ? matched : matched.slice(0, keep);
}

/** Sorted copies kept per type (each holds one reference per record). */
const MAX_ORDERS_PER_TYPE = 8;

/** Records in a kept order; `stable` and `odd` as `OrderIndex`'s. */
interface SortedList {
  readonly records: readonly Entity[];
  readonly stable: boolean;
  readonly odd: boolean;
}

/** An index bucket's records sorted in a kept order, as of the type's `version`. */
interface SortedBucket extends SortedList {
  readonly version: number;
}

function size(ids: number[] | ReadonlySet<number>): number {
  return Array.isArray(ids) ? ids.length : (ids as ReadonlySet<number>).size;
}
