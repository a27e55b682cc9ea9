/**
 * The mirror: every active record of each preloaded type, held whole in this process, with the
 * type's schema and lazily built indexes. It knows, record by record, whether it is exact: an
 * applied event marks the records it touched as refreshing until their refetch lands, and a
 * fetch that began before an event never overwrites what that event changed (generations, as
 * the store's sequence guards do for cached entries).
 */
import type { Entity, EntityLink, EntitySchema, FieldValue } from "../shotgrid/types.ts";
import { valueFromChange, WRITE_STAMP_FIELDS } from "./event-values.ts";
import type { OrderIndex } from "./order-index.ts";
import { lowersOddly } from "./collation.ts";
import { TextSearch, type TextSearchOp } from "./text-search.ts";

/**
 * A record fetched before an event may already hold that event's change, or a later one: its
 * `updated_at` must be older than the event by more than this (ms) for the event to be applied on
 * top of it (both are whole seconds; a write and its event row may straddle a second).
 */
const EVENT_AFTER_FETCH_MARGIN_MS = 1000;

/** What an applied Change event says (see `Mirror.applyChange`). */
export interface ChangeEvent {
  /** The event's id: events on one record are applied in id order. */
  id: number;
  /** When the site logged it (`created_at`, ms since the epoch). */
  createdAtMs: number;
  attribute: string;
  meta: Readonly<Record<string, unknown>>;
}

/** Index keys: a link as `Type:id`, a text value in lower case, an empty value as "". */
export type IndexKey = string;

/** Text fields searched by substring per type (each holds its values' text once more). */
const MAX_SEARCHES_PER_TYPE = 4;

/** Data types held in an index (by project, by link, by status): single links and list values. */
const INDEXED_TYPES = new Set(["entity", "status_list", "list"]);

export interface TypeMirror {
  readonly type: string;
  /** Every active record, by id (records are frozen: answers share their values). */
  readonly records: Map<number, Entity>;
  schema: EntitySchema | undefined;
  /** True once a whole preload pass has landed (and no flush has superseded it). */
  loaded: boolean;
  /** The preload pass under way (`beginLoad`'s token): only it may mark the type loaded. */
  loading: number | undefined;
  /** Ids an applied event changed whose refetch has not landed yet: the type is not exact meanwhile. */
  readonly pending: Set<number>;
  /** The mirror generation of the newest event on each id: older fetches of it are ignored. */
  readonly changedAt: Map<number, number>;
  /**
   * Records last updated from an event's meta rather than fetched: the id of that event. They are
   * exact as of it, except for their write stamps (`unstamped`).
   */
  readonly asOfEvent: Map<number, number>;
  /** Records updated from an event whose `updated_at`/`updated_by` are not known until fetched again. */
  readonly unstamped: Set<number>;
  /** Fields every record holds (undefined before the first record): a field outside it cannot be read. */
  heldFields: Set<string> | undefined;
  /** Built on first use: field → key → ids. */
  readonly indexes: Map<string, Map<IndexKey, Set<number>>>;
  /** Fetches begun before this generation (before a flush) are ignored. */
  readonly floor: number;
  /** Advances with every change to the records: sorted copies made at another version are stale. */
  version: number;
  /** Records kept sorted by the orders queries used, by order key (a few at most). */
  readonly orders: Map<string, OrderIndex>;
  /** Substring searches over text fields `contains` filters used, by field (a few at most). */
  readonly searches: Map<string, TextSearch>;
  /** Indexed fields a record held a value of whose lower case the site may make otherwise: not indexed until the type is loaded again. */
  readonly oddIndexed: Set<string>;
}

function newTypeMirror(type: string, floor: number): TypeMirror {
  return {
    type,
    floor,
    records: new Map(),
    schema: undefined,
    loaded: false,
    loading: undefined,
    pending: new Set(),
    changedAt: new Map(),
    asOfEvent: new Map(),
    unstamped: new Set(),
    heldFields: undefined,
    indexes: new Map(),
    orders: new Map(),
    searches: new Map(),
    oddIndexed: new Set(),
    version: 0,
  };
}

function isLink(v: unknown): v is EntityLink {
  return v !== null && typeof v === "object" && !Array.isArray(v) && typeof (v as EntityLink).type === "string" && typeof (v as EntityLink).id === "number";
}

/** The index key of a field value. */
export function indexKeyOf(value: FieldValue | undefined): IndexKey {
  if (value === null || value === undefined) return "";
  if (isLink(value)) return `${value.type}:${value.id}`;
  // Text is indexed without letter case: the filters decide what a case difference means.
  return typeof value === "string" ? value.toLowerCase() : JSON.stringify(value);
}

function freeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as object)) freeze(child);
  }
  return value;
}

/** Every empty multi-entity value held: one frozen array (a shot has several, nearly always empty). */
/** Whether `schema` has a calculated (formula) field: the site recomputes it on any write to its record. */
const formulaSchemas = new WeakMap<EntitySchema, boolean>();
function hasFormulaField(schema: EntitySchema): boolean {
  let known = formulaSchemas.get(schema);
  if (known === undefined) formulaSchemas.set(schema, (known = Object.values(schema).some((f) => f.dataType === "calculated")));
  return known;
}

const EMPTY_LIST: FieldValue = Object.freeze([]) as unknown as FieldValue;

/**
 * Holds the mirror's records compactly, because a mirror holds every record of its types (a
 * million shots is a million records). Two things make the difference, measured on a demo shot
 * of 25 fields: about 2,070 bytes as decoded, about 280 as held here.
 *
 * - The decoder fills `fields` one computed key at a time, and V8 turns an object grown that way
 *   past about 16 properties into a hash table ("dictionary mode", ~1.4 KB more for a shot). A
 *   spread copy is a plain object with a fixed layout.
 * - Single-entity links (project, sequence, step, created_by) point at few records, so each is
 *   held once: one frozen `{type, id, name}` per link and name. Multi-entity lists (tasks,
 *   versions) mostly point at records of their own, so only the empty list is shared.
 */
class CompactRecords {
  /** type → id → the link held for it (its current name; a renamed link replaces the entry). */
  readonly #links = new Map<string, Map<number, EntityLink>>();
  #held = 0;
  /** Links held when this map was made from the records (0 for an empty mirror). */
  #atRebuild = 0;
  /** The map being made from the records to replace this one: links held from now on go there too. */
  #next: CompactRecords | undefined;

  /**
   * The map keeps a link after the last record showing it lets it go (a record retired, a link
   * changed): in a service up for months that is every record ever linked. So once it has more
   * than doubled since it was last made (and past `LINK_REBUILD_MIN`), the mirror makes it again
   * from the links its records show (`remake`), which keeps it within about twice what they use.
   */
  get rebuildDue(): boolean {
    return this.#next === undefined && this.#held > Math.max(LINK_REBUILD_MIN, 2 * this.#atRebuild);
  }

  /** Links held, for tests. */
  get heldLinks(): number {
    return this.#held;
  }

  /**
   * Make the map again from the links `records` show (the same objects; records are not
   * touched), `LINK_REBUILD_SLICE` records per turn of the event loop, so that a million-record
   * mirror does not stop answering for the second the pass takes. Meanwhile this map serves, and
   * whatever it holds from now on is held by the new one too. `done` is given the new map, unless
   * `current()` says this one is no longer in use (the mirror was cleared). A record changed or
   * dropped while the pass runs can only leave a link more than needed (the next pass drops it):
   * the map only ever decides which equal link objects are shared.
   */
  remake(records: Iterator<Entity>, current: () => boolean, done: (made: CompactRecords) => void): void {
    const made = (this.#next = new CompactRecords());
    const step = (): void => {
      if (!current()) return;
      for (let n = 0; n < LINK_REBUILD_SLICE; n++) {
        const r = records.next();
        if (r.done) {
          made.#atRebuild = made.#held;
          done(made);
          return;
        }
        for (const k in r.value.fields) {
          const v = r.value.fields[k]!;
          if (isLink(v) && internable(v)) made.#adopt(v);
        }
      }
      setImmediate(step);
    };
    step();
  }

  /** Hold `link` (already frozen, internable) as the one for its record, unless one is held. */
  #adopt(link: EntityLink): void {
    const byId = this.#byType(link.type);
    // Two records may show different names for a moment (one relinked, one refetching): either will do.
    if (byId.has(link.id)) return;
    byId.set(link.id, link);
    this.#held++;
  }

  record(record: Entity): Entity {
    const fields: Record<string, FieldValue> = { ...record.fields };
    for (const k in fields) {
      const v = fields[k]!;
      if (Array.isArray(v)) {
        if (v.length === 0) fields[k] = EMPTY_LIST;
        else freeze(v);
      } else if (isLink(v)) fields[k] = this.link(v);
      else freeze(v);
    }
    return Object.freeze({ type: record.type, id: record.id, fields: Object.freeze(fields) });
  }

  /** The one held link equal to `link`; a link with more than type, id and name is held as it is. */
  link(link: EntityLink): EntityLink {
    if (!internable(link)) return freeze(link);
    const byId = this.#byType(link.type);
    const held = byId.get(link.id);
    if (held && held.name === link.name) {
      if (this.#next) this.#next.#take(held);
      return held;
    }
    const fresh = Object.freeze({ type: link.type, id: link.id, name: link.name });
    if (!held) this.#held++;
    byId.set(link.id, fresh);
    if (this.#next) this.#next.#take(fresh);
    return fresh;
  }

  /** Hold `link` as the one for its record (it is the newest: it replaces one held). */
  #take(link: EntityLink): void {
    const byId = this.#byType(link.type);
    if (!byId.has(link.id)) this.#held++;
    byId.set(link.id, link);
  }

  #byType(type: string): Map<number, EntityLink> {
    let byId = this.#links.get(type);
    if (!byId) this.#links.set(type, (byId = new Map()));
    return byId;
  }
}

/** Link name changes waiting for `relink()`: type → id → the new name (undefined: refetch the records showing it). */
type LinkChanges = Map<string, Map<number, string | null | undefined>>;

/** Links held before the link map is first made again from the records (a few MB of them). */
const LINK_REBUILD_MIN = 65_536;
/** Records the remaking of the link map reads per turn of the event loop (a few milliseconds' work). */
const LINK_REBUILD_SLICE = 4096;

/** Whether `link` is the plain `{type, id, name}` the link map holds (one with more keys is held as it is). */
const internable = (link: EntityLink): boolean => Object.keys(link).length === 3 && link.name !== undefined;

/** `value` with the `name` of each link to `type`/`id` replaced (a new value when something changed). */
function renamed(value: FieldValue, type: string, id: number, name: string | null): FieldValue {
  if (Array.isArray(value)) return (value as unknown[]).map((v) => (isLink(v) && v.type === type && v.id === id ? { ...v, name } : v)) as FieldValue;
  return isLink(value) && value.type === type && value.id === id ? { ...value, name } : value;
}

export class Mirror {
  readonly #types = new Map<string, TypeMirror>();
  #compact = new CompactRecords();
  /** Link name changes of the batch being applied (`Type:id` → new name, undefined: refetch the records showing it). */
  readonly #relinks: LinkChanges = new Map();
  /** Advances with every change an event makes; fetches carry the value taken before they began. */
  #generation = 0;

  constructor(types: readonly string[]) {
    for (const t of types) this.#types.set(t, newTypeMirror(t, 0));
  }

  isMirrored(type: string): boolean {
    return this.#types.has(type);
  }

  typeMirror(type: string): TypeMirror | undefined {
    return this.#types.get(type);
  }

  /** Take before a fetch; pass to `put` / `settle` with what it returned. */
  generation(): number {
    return this.#generation;
  }

  /**
   * A preload pass of `type` starts: what was held is kept, but the type is not exact until
   * `finishLoad` with the token returned here.
   */
  beginLoad(type: string, schema: EntitySchema | undefined): number {
    const pass = ++this.#generation;
    const m = this.#types.get(type);
    if (!m) return pass;
    m.loaded = false;
    m.loading = pass;
    m.schema = schema;
    return pass;
  }

  /** Pass `pass` landed whole: the type answers queries (once nothing is pending), unless a flush or a later pass superseded it. */
  finishLoad(type: string, pass: number): void {
    const m = this.#types.get(type);
    if (m?.schema && m.loading === pass) m.loaded = true;
  }

  /** Hold `record` as fetched at `since` (a `generation()`), unless an event changed it after that. */
  put(record: Entity, since: number): boolean {
    const m = this.#types.get(record.type);
    if (!m || since < m.floor || (m.changedAt.get(record.id) ?? -1) > since) return false;
    const old = m.records.get(record.id);
    record = this.#compact.record(record);
    this.#replace(m, old, record);
    // Fetched whole: exact, stamps included.
    m.asOfEvent.delete(record.id);
    m.unstamped.delete(record.id);
    if (m.heldFields === undefined) m.heldFields = new Set(Object.keys(record.fields));
    else if (m.heldFields.size > 0) for (const f of m.heldFields) if (!(f in record.fields)) m.heldFields.delete(f);
    this.#compactLinksIfDue();
    return true;
  }

  /** Hold `record` in place of `old`, keeping indexes and kept orders current. */
  #replace(m: TypeMirror, old: Entity | undefined, record: Entity): void {
    m.records.set(record.id, record);
    m.version++;
    for (const order of m.orders.values()) order.replaced(old, record);
    for (const [field, search] of m.searches) if (!search.replaced(old, record)) m.searches.delete(field);
    for (const [field, index] of m.indexes) {
      const value = record.fields[field];
      if (typeof value === "string" && lowersOddly(value)) {
        m.indexes.delete(field);
        m.oddIndexed.add(field);
        continue;
      }
      const before = old ? indexKeyOf(old.fields[field]) : undefined;
      const after = indexKeyOf(record.fields[field]);
      if (before === after) continue;
      if (before !== undefined) index.get(before)?.delete(record.id);
      let ids = index.get(after);
      if (!ids) index.set(after, (ids = new Set()));
      ids.add(record.id);
    }
  }

  /**
   * Apply a Change event to `type`/`id` from its own meta, when that is exact: the type is loaded,
   * the record is held, exact (no refetch pending) and known to predate the event (updated from
   * an earlier event, or fetched with an `updated_at` clearly older than the event), and the meta
   * carries the field's whole new value (event-values.ts). Returns false otherwise, changing
   * nothing: the caller then marks the record for a refetch (`markChanged`). The record's write
   * stamps are not known afterwards (`unstamped`) until it is fetched again.
   */
  applyChange(type: string, id: number, event: ChangeEvent): boolean {
    const m = this.#types.get(type);
    if (!m?.loaded || !m.schema || m.pending.has(id)) return false;
    const old = m.records.get(id);
    const field = Object.hasOwn(m.schema, event.attribute) ? m.schema[event.attribute] : undefined;
    if (!old || !field || WRITE_STAMP_FIELDS.has(event.attribute) || !(event.attribute in old.fields)) return false;
    // A formula field may read any field of its record and has no event of its own when it changes.
    if (hasFormulaField(m.schema)) return false;
    const asOf = m.asOfEvent.get(id);
    if (asOf !== undefined) {
      // Already holds this event (applied again after a failed batch) or a later one: not older.
      if (event.id <= asOf) return false;
    } else {
      const stamp = old.fields["updated_at"];
      const updatedAt = typeof stamp === "string" ? Date.parse(stamp) : Number.NaN;
      // The fetched state may already hold this change, or a later one: only a refetch can say.
      if (!(updatedAt + EVENT_AFTER_FETCH_MARGIN_MS < event.createdAtMs)) return false;
    }
    const change = valueFromChange(field, event.meta);
    if (!change) return false;
    const record = this.#compact.record({ type: old.type, id, fields: { ...old.fields, [event.attribute]: change.value } });
    this.#replace(m, old, record);
    // Fetches begun before this event must not overwrite it.
    m.changedAt.set(id, ++this.#generation);
    m.asOfEvent.set(id, event.id);
    m.unstamped.add(id);
    this.#compactLinksIfDue();
    return true;
  }

  /** Whether `type`/`id` was updated from an event and its write stamps are not known yet. */
  isUnstamped(type: string, id: number): boolean {
    return this.#types.get(type)?.unstamped.has(id) ?? false;
  }

  /** Records of every type updated from events whose write stamps are not known (fetch them to know). */
  unstampedIds(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const m of this.#types.values()) if (m.unstamped.size > 0) out.set(m.type, [...m.unstamped]);
    return out;
  }

  /** `id` is no longer an active record (retired, or not found by a refetch). */
  #drop(m: TypeMirror, id: number): void {
    m.asOfEvent.delete(id);
    m.unstamped.delete(id);
    const old = m.records.get(id);
    if (!old) return;
    m.records.delete(id);
    m.version++;
    for (const order of m.orders.values()) order.invalidate();
    for (const [field, index] of m.indexes) index.get(indexKeyOf(old.fields[field]))?.delete(id);
  }

  /** An applied event changed `type`/`id` in a way only a refetch can show: not exact until `settle`. */
  markChanged(type: string, id: number): void {
    const m = this.#types.get(type);
    if (!m) return;
    m.changedAt.set(id, ++this.#generation);
    m.pending.add(id);
  }

  /** An applied event retired `type`/`id`. */
  retire(type: string, id: number): void {
    const m = this.#types.get(type);
    if (!m) return;
    m.changedAt.set(id, ++this.#generation);
    m.pending.delete(id);
    this.#drop(m, id);
  }

  /** A refetch begun at `since` found `record` (null: not an active record any more). */
  settle(type: string, id: number, record: Entity | null, since: number): void {
    const m = this.#types.get(type);
    if (!m || since < m.floor || (m.changedAt.get(id) ?? -1) > since) return;
    if (record) this.put(record, since);
    else this.#drop(m, id);
    m.pending.delete(id);
  }

  /** Ids of every type that are waiting for a refetch (a failed refetch is retried with the next batch). */
  pendingIds(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const m of this.#types.values()) if (m.pending.size > 0) out.set(m.type, [...m.pending]);
    return out;
  }

  /**
   * `type`/`id`'s display name changed to `name` (undefined: unknown, or the record was
   * retired and links to it are no longer shown). Nothing reads the mirror as exact from here
   * until `relink()`, which applies every such change of a batch in one pass over the records.
   */
  deferRelink(type: string, id: number, name: string | null | undefined): void {
    let byId = this.#relinks.get(type);
    if (!byId) this.#relinks.set(type, (byId = new Map()));
    byId.set(id, name);
  }

  /** Whether link names are waiting for `relink()`. */
  get relinking(): boolean {
    return this.#relinks.size > 0;
  }

  /**
   * Patch every held link whose name changed, or mark the records showing a link whose new name
   * is unknown for a refetch (returned).
   */
  relink(): Array<{ type: string; id: number }> {
    const changes = this.#relinks;
    const marked: Array<{ type: string; id: number }> = [];
    if (changes.size === 0) return marked;
    for (const m of this.#types.values()) {
      for (const record of m.records.values()) {
        let fields: Record<string, FieldValue> | undefined;
        let refetch = false;
        // The hot loop of a rename (every field of every record): no allocation, no key strings.
        for (const k in record.fields) {
          const v = record.fields[k]!;
          const list = Array.isArray(v);
          const count = list ? v.length : 1;
          for (let i = 0; i < count; i++) {
            const l: unknown = list ? v[i] : v;
            if (!isLink(l)) continue;
            const byId = changes.get(l.type);
            if (byId === undefined || !byId.has(l.id)) continue;
            const name = byId.get(l.id);
            if (name === undefined) refetch = true;
            else {
              fields ??= { ...record.fields };
              fields[k] = renamed(fields[k]!, l.type, l.id, name);
            }
          }
        }
        if (refetch) marked.push({ type: m.type, id: record.id });
        else if (fields) {
          m.records.set(record.id, this.#compact.record({ type: record.type, id: record.id, fields }));
          // A fetch of it already under way (a refetch, the write stamps' one) may have read the
          // old name: it must not put the record back with it. It is refused, and asked again.
          m.changedAt.set(record.id, ++this.#generation);
          if (m.pending.has(record.id) || m.unstamped.has(record.id)) marked.push({ type: m.type, id: record.id });
        }
      }
      // Link names are sort keys too, and replaced records must not linger in a kept order.
      m.version++;
      for (const order of m.orders.values()) order.invalidate();
    }
    changes.clear();
    for (const r of marked) this.markChanged(r.type, r.id);
    this.#compactLinksIfDue();
    return marked;
  }

  /** Ids of `type` whose `field` has index key `key` (the index is built on first use). */
  lookup(type: string, field: string, key: IndexKey): ReadonlySet<number> | undefined {
    const m = this.#types.get(type);
    const dataType = m?.schema?.[field]?.dataType;
    if (!m || !dataType || !INDEXED_TYPES.has(dataType) || m.oddIndexed.has(field)) return undefined;
    let index = m.indexes.get(field);
    if (!index) {
      index = new Map();
      for (const r of m.records.values()) {
        const v = r.fields[field];
        // A value whose lower case the site may make otherwise: its bucket is not sure, and with it the index (collation.ts).
        if (typeof v === "string" && lowersOddly(v)) {
          m.oddIndexed.add(field);
          return undefined;
        }
        const k = indexKeyOf(v);
        let ids = index.get(k);
        if (!ids) index.set(k, (ids = new Set()));
        ids.add(r.id);
      }
      m.indexes.set(field, index);
    }
    return index.get(key) ?? new Set();
  }

  /**
   * Ids of `type` whose text field `field` may hold `needle` (lower case) where `op` looks for
   * it, a superset (see text-search.ts); the search is made on first use, a few per type.
   * Undefined when the field is not text or the needle cannot be searched.
   */
  search(type: string, field: string, needle: string, op: TextSearchOp): number[] | undefined {
    const m = this.#types.get(type);
    const dataType = m?.schema?.[field]?.dataType;
    if (!m || dataType !== "text") return undefined;
    let search = m.searches.get(field);
    if (!search) {
      search = new TextSearch(field, m.records.values());
      if (m.searches.size >= MAX_SEARCHES_PER_TYPE) m.searches.delete(m.searches.keys().next().value!);
      m.searches.set(field, search);
    }
    return search.candidates(needle, op);
  }

  /** Links the mirror holds one object for (each linked record's current one, and some no record shows any more). */
  get heldLinks(): number {
    return this.#compact.heldLinks;
  }

  #compactLinksIfDue(): void {
    const from = this.#compact;
    if (!from.rebuildDue) return;
    const records = (function* (types) {
      for (const m of types) yield* m.records.values();
    })([...this.#types.values()]);
    from.remake(
      records,
      () => this.#compact === from,
      (made) => {
        this.#compact = made;
      },
    );
  }

  /** Forget `type` (its schema changed, or an event named no record): not answerable until loaded again. */
  dropType(type: string): void {
    if (this.#types.has(type)) this.#types.set(type, newTypeMirror(type, ++this.#generation));
  }

  /** Forget everything (the cache was flushed). */
  clear(): void {
    const floor = ++this.#generation;
    for (const t of [...this.#types.keys()]) this.#types.set(t, newTypeMirror(t, floor));
    this.#compact = new CompactRecords();
  }
}
