/**
 * The simulated site's data: records by type and id, retirement, and the event log. Every write
 * that goes through `create`/`update`/`retire`/`revive` appends EventLogEntry rows the way a real
 * site does (New, one Change per field, Retirement, Revival); `writeWithoutEvents` is the
 * exception scripts with events disabled create. Event ids can be reserved now and committed
 * later, or dropped forever, so followers can be tested against gaps.
 */
import { randomUUID } from "node:crypto";
import type { FieldInfo, SchemaIndex } from "./schema.ts";
import { badRequest, writeNotFound } from "./sim-error.ts";
import { dedupeLinks, formatReadDateTime, isLink, normalizeWriteValue, parseDateTime, sameLink, short, type Link } from "./values.ts";

export type { Link } from "./values.ts";

/** One stored record. `fields` holds only set values (unset reads as null, [] or false). */
export interface SimRecord {
  readonly type: string;
  readonly id: number;
  retired: boolean;
  fields: Record<string, unknown>;
}

/** Who writes and how. */
export interface WriteContext {
  /** The user the event log names (the script's ApiUser for REST writes). */
  user?: Link | null;
  /** Write without event log rows (like a script with events disabled). */
  noEvents?: boolean;
  /** Session id recorded in the event rows. */
  sessionUuid?: string | null;
}

/** An event row before it gets its id. */
export interface EventInput {
  event_type: string;
  attribute_name?: string | null;
  meta?: Record<string, unknown> | null;
  entity?: Link | null;
  project?: Link | null;
  user?: Link | null;
  session_uuid?: string | null;
  description?: string | null;
  /** Epoch ms; default now. */
  created_at?: number;
}

/** A value to set on a multi_entity field with a mode instead of replacing the list. */
interface MultiEntityUpdate {
  multi_entity_update_mode: "add" | "remove" | "set";
  value: unknown;
}

function isMultiEntityUpdate(v: unknown): v is MultiEntityUpdate {
  return typeof v === "object" && v !== null && !Array.isArray(v) && "multi_entity_update_mode" in v;
}

/** Fields a site maintains itself: clients may set some on create, never through events. */
const AUTO_FIELDS = new Set(["id", "created_at", "updated_at", "created_by", "updated_by", "cached_display_name"]);

export interface StoreOptions {
  /** Clock (epoch ms); tests may pin it. */
  now?: () => number;
  /**
   * Events of each write are committed this many ms after the write (their ids are reserved at
   * write time), so a later write's events can become visible first. 0: commit at once.
   */
  eventCommitDelayMs?: () => number;
}

export class SimStore {
  readonly schema: SchemaIndex;
  private readonly tables = new Map<string, Map<number, SimRecord>>();
  private readonly nextIds = new Map<string, number>();
  private nextEventId = 1;
  private maxCommittedEventId = 0;
  private readonly reserved = new Set<number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly now: () => number;
  private readonly commitDelay: () => number;
  /** The undo log of the running transaction, newest last; null outside transactions. */
  private undo: Array<() => void> | null = null;
  /** Events of the running write/transaction, held until it succeeds. */
  private pending: Array<{ id: number; input: EventInput }> | null = null;
  private readonly committedListeners = new Set<(row: SimRecord) => void>();
  /** DisplayColumn ids by `Type.field`, and the field name each shows. */
  private readonly columnIds = new Map<string, number>();
  private readonly columnNames = new Map<number, string>();
  /** Bumped by every write: what was read at one version is still true while it stays the same. */
  private writes = 0;

  constructor(schema: SchemaIndex, options: StoreOptions = {}) {
    this.schema = schema;
    this.now = options.now ?? Date.now;
    this.commitDelay = options.eventCommitDelayMs ?? (() => 0);
  }

  // ---- reading ------------------------------------------------------------------------------

  /** Changes whenever any record, retirement or event changes (for caches of search results). */
  get version(): number {
    return this.writes;
  }

  private table(type: string): Map<number, SimRecord> {
    let t = this.tables.get(type);
    if (!t) {
      t = new Map();
      this.tables.set(type, t);
    }
    return t;
  }

  /** A record by type and id, retired or not. */
  get(type: string, id: number): SimRecord | undefined {
    return this.tables.get(type)?.get(id);
  }

  /** An active (not retired) record. */
  getActive(type: string, id: number): SimRecord | undefined {
    const r = this.get(type, id);
    return r && !r.retired ? r : undefined;
  }

  /** Every record of a type (retired ones too), in insertion order. */
  records(type: string): IterableIterator<SimRecord> {
    return this.table(type).values();
  }

  count(type: string, includeRetired = false): number {
    let n = 0;
    for (const r of this.records(type)) if (includeRetired || !r.retired) n++;
    return n;
  }

  /** The name a link to this record shows (`code`, `name`, `content`…). */
  displayName(link: Link): string | null {
    if (link.type === "DisplayColumn") return this.columnNames.get(link.id) ?? null;
    const rec = this.get(link.type, link.id);
    if (!rec) return null;
    if (link.type === "ApiUser") {
      const first = rec.fields["firstname"];
      const last = rec.fields["lastname"];
      if (typeof first === "string") return typeof last === "string" && last ? `${first} ${last}` : first;
    }
    if (link.type === "HumanUser" && typeof rec.fields["name"] !== "string") {
      const n = [rec.fields["firstname"], rec.fields["lastname"]].filter((x) => typeof x === "string").join(" ");
      if (n) return n;
    }
    const field = this.schema.displayField(link.type);
    const v = field ? rec.fields[field] : undefined;
    return typeof v === "string" ? v : null;
  }

  // ---- seeding (no validation beyond shape, no events) --------------------------------------

  /**
   * Put a record in place as it is, with no event: datasets and tests seed the site this way.
   * Values use the wire forms (links `{type, id}`, date-times as ISO strings or epoch ms).
   * `created_at`/`updated_at` default to now.
   */
  insert(type: string, fields: Record<string, unknown> & { id?: number }, options: { retired?: boolean } = {}): SimRecord {
    this.writes++;
    if (!this.schema.hasType(type)) throw new Error(`store.insert: unknown entity type ${type}`);
    const table = this.table(type);
    const id = fields.id ?? this.allocateId(type);
    if (table.has(id)) throw new Error(`store.insert: ${type} ${id} already exists`);
    const next = this.nextIds.get(type) ?? 1;
    if (id >= next) this.nextIds.set(type, id + 1);
    const stored: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(fields)) {
      if (name === "id" || name === "type" || value === undefined) continue;
      const info = this.schema.field(type, name);
      if (!info) throw new Error(`store.insert: ${type}.${name} is not in the schema`);
      stored[name] = seedValue(info, value);
    }
    const now = this.now();
    if (this.schema.field(type, "created_at") && stored["created_at"] === undefined) stored["created_at"] = now;
    if (this.schema.field(type, "updated_at") && stored["updated_at"] === undefined) stored["updated_at"] = stored["created_at"];
    const rec: SimRecord = { type, id, retired: options.retired ?? false, fields: stored };
    table.set(id, rec);
    this.refreshDisplayName(rec);
    if (type === "EventLogEntry") {
      if (id >= this.nextEventId) this.nextEventId = id + 1;
      if (id > this.maxCommittedEventId) this.maxCommittedEventId = id;
    }
    return rec;
  }

  private allocateId(type: string): number {
    const id = this.nextIds.get(type) ?? 1;
    this.nextIds.set(type, id + 1);
    return id;
  }

  // ---- writes with events --------------------------------------------------------------------

  /**
   * Run several writes as one: if `fn` throws, every record and event id is put back as it was
   * (the `_batch` endpoint's all-or-nothing rule).
   */
  transaction<T>(fn: () => T): T {
    if (this.undo) return fn();
    const undo: Array<() => void> = [];
    const savedIds = new Map(this.nextIds);
    const savedEventId = this.nextEventId;
    this.undo = undo;
    this.pending = [];
    try {
      const result = fn();
      const events = this.pending;
      this.undo = null;
      this.pending = null;
      this.flushEvents(events);
      return result;
    } catch (err) {
      this.writes++;
      for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
      this.nextIds.clear();
      for (const [k, v] of savedIds) this.nextIds.set(k, v);
      this.nextEventId = savedEventId;
      this.undo = null;
      this.pending = null;
      throw err;
    }
  }

  private remember(rec: SimRecord): void {
    if (!this.undo) return;
    const fields = { ...rec.fields };
    const retired = rec.retired;
    this.undo.push(() => {
      rec.fields = fields;
      rec.retired = retired;
    });
  }

  /** Create a record as a REST create does; returns it and the names of the fields it set. */
  create(type: string, data: Record<string, unknown>, ctx: WriteContext = {}): SimRecord {
    this.writes++;
    return this.transaction(() => {
      this.requireType(type);
      const values = this.normalizeAll(type, data, "create");
      const id = this.allocateId(type);
      const now = this.now();
      const fields: Record<string, unknown> = {};
      // Schema defaults (status lists start at their default, counts at 0) come first.
      for (const f of this.schema.fields(type)) {
        if (f.defaultValue !== null && f.defaultValue !== undefined && f.dataType !== "checkbox") fields[f.name] = f.defaultValue;
      }
      if (this.schema.field(type, "open_notes_count")) fields["open_notes_count"] = 0;
      for (const [name, v] of values) {
        const value = isMultiEntityUpdate(v) ? v.value : v;
        if (value === null || (Array.isArray(value) && value.length === 0 && name !== "tag_list")) delete fields[name];
        else fields[name] = value;
      }
      const code = this.schema.field(type, "code");
      if (code && code.dataType === "text" && fields["code"] === undefined && this.schema.displayField(type) === "code") {
        // What the recorded site did for a create without a code: "New Asset 1482".
        fields["code"] = `New ${type} ${id}`;
      }
      if (this.schema.field(type, "created_at") && fields["created_at"] === undefined) fields["created_at"] = now;
      if (this.schema.field(type, "updated_at")) fields["updated_at"] = fields["created_at"] ?? now;
      if (ctx.user) {
        if (this.schema.field(type, "created_by") && fields["created_by"] === undefined) fields["created_by"] = ctx.user;
        if (this.schema.field(type, "updated_by")) fields["updated_by"] = ctx.user;
      }
      const rec: SimRecord = { type, id, retired: false, fields };
      this.table(type).set(id, rec);
      this.undo?.push(() => this.table(type).delete(id));
      this.refreshDisplayName(rec);
      if (!ctx.noEvents) {
        this.event(ctx, rec, {
          event_type: `Shotgun_${type}_New`,
          attribute_name: null,
          meta: { type: "new_entity", entity_type: type, entity_id: id },
          description: `${this.userName(ctx)} created new ${type} ${this.displayName(rec) ?? `#${id}`}`,
        });
        for (const [name, value] of Object.entries(fields)) {
          if (AUTO_FIELDS.has(name)) continue;
          const info = this.schema.field(type, name)!;
          this.changeEvent(ctx, rec, info, info.dataType === "multi_entity" ? [] : null, value, true);
        }
      }
      return rec;
    });
  }

  /** Update a record as a REST update does (one Change event per field that changed). */
  update(type: string, id: number, data: Record<string, unknown>, ctx: WriteContext = {}): SimRecord {
    this.writes++;
    return this.transaction(() => {
      this.requireType(type);
      const rec = this.getActive(type, id);
      if (!rec) throw writeNotFound(type, id);
      const values = this.normalizeAll(type, data, "update");
      this.remember(rec);
      let changed = false;
      for (const [name, v] of values) {
        const info = this.schema.field(type, name)!;
        const old = this.current(rec, info);
        let next: unknown = v;
        if (isMultiEntityUpdate(v)) {
          const links = v.value as Link[];
          if (v.multi_entity_update_mode === "add") next = dedupeLinks([...(old as Link[]), ...links]);
          else if (v.multi_entity_update_mode === "remove") next = (old as Link[]).filter((o) => !links.some((l) => sameLink(l, o)));
          else next = links;
        }
        if (valuesEqual(old, next)) continue;
        changed = true;
        if (next === null || (Array.isArray(next) && next.length === 0) || next === false) delete rec.fields[name];
        else rec.fields[name] = next;
        if (name === this.schema.displayField(type)) this.refreshDisplayName(rec);
        if (!ctx.noEvents && !AUTO_FIELDS.has(name)) this.changeEvent(ctx, rec, info, old, next, false);
      }
      if (changed) this.touch(rec, ctx);
      return rec;
    });
  }

  /** Retire (REST DELETE). Returns false when there is no active record with that id. */
  retire(type: string, id: number, ctx: WriteContext = {}): boolean {
    this.writes++;
    return this.transaction(() => {
      const rec = this.getActive(type, id);
      if (!rec) return false;
      this.remember(rec);
      rec.retired = true;
      this.touch(rec, ctx);
      if (!ctx.noEvents) {
        this.event(ctx, rec, {
          event_type: `Shotgun_${type}_Retirement`,
          attribute_name: "retirement_date",
          meta: {
            type: "entity_retirement",
            entity_type: type,
            entity_id: id,
            class_name: type,
            display_name: this.displayName(rec),
            retirement_date: formatReadDateTime(this.now()),
          },
          description: `${this.userName(ctx)} retired ${type} ${this.displayName(rec) ?? `#${id}`}`,
        });
      }
      return true;
    });
  }

  /** Revive a retired record. Returns undefined when the id never existed, false when it was not retired. */
  revive(type: string, id: number, ctx: WriteContext = {}): boolean | undefined {
    this.writes++;
    return this.transaction(() => {
      const rec = this.get(type, id);
      if (!rec) return undefined;
      if (!rec.retired) return false;
      this.remember(rec);
      rec.retired = false;
      this.touch(rec, ctx);
      if (!ctx.noEvents) {
        this.event(ctx, rec, {
          event_type: `Shotgun_${type}_Revival`,
          attribute_name: "retirement_date",
          meta: { type: "entity_revival", entity_type: type, entity_id: id, class_name: type, display_name: this.displayName(rec) },
          description: `${this.userName(ctx)} revived ${type} ${this.displayName(rec) ?? `#${id}`}`,
        });
      }
      return true;
    });
  }

  /** An update that makes no event (scripts with events disabled); `updated_at` still moves. */
  writeWithoutEvents(type: string, id: number, data: Record<string, unknown>, ctx: WriteContext = {}): SimRecord {
    this.writes++;
    return this.update(type, id, data, { ...ctx, noEvents: true });
  }

  private requireType(type: string): void {
    if (!this.schema.hasType(type)) throw badRequest(`Entity type ${type} does not exist.`, { entity: [`${short(type)} is not a valid entity type`] });
  }

  private normalizeAll(type: string, data: Record<string, unknown>, op: "create" | "update"): Array<[string, unknown]> {
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      throw badRequest(`API ${op}() expects an object of field values`, { data: ["must be an object"] });
    }
    const out: Array<[string, unknown]> = [];
    const linkExists = (l: Link) => this.getActive(l.type, l.id) !== undefined;
    for (const [name, raw] of Object.entries(data)) {
      const info = this.schema.field(type, name);
      if (!info) throw badRequest(`API ${op}() ${type}.${name} doesn't exist.`, {});
      if (name === "id" || (!info.editable && !(op === "create" && AUTO_FIELDS.has(name)))) {
        throw badRequest(`API ${op}() ${type}.${name} is not editable.`, { [name]: ["is not editable"] });
      }
      if (info.dataType === "multi_entity" && isMultiEntityUpdate(raw)) {
        const mode = raw.multi_entity_update_mode;
        if (mode !== "add" && mode !== "remove" && mode !== "set") {
          throw badRequest(`API ${op}() ${type}.${name}: multi_entity_update_mode must be add, remove or set`, {
            [name]: ["invalid multi_entity_update_mode"],
          });
        }
        out.push([name, { multi_entity_update_mode: mode, value: normalizeWriteValue(type, info, raw.value ?? [], linkExists) }]);
        continue;
      }
      out.push([name, normalizeWriteValue(type, info, raw, linkExists)]);
    }
    return out;
  }

  /** A field's current value with the read defaults applied ([] for lists, false for checkboxes). */
  current(rec: SimRecord, info: FieldInfo): unknown {
    const v = rec.fields[info.name];
    if (v !== undefined) return v;
    if (info.dataType === "multi_entity" || info.dataType === "tag_list") return [];
    if (info.dataType === "checkbox") return false;
    return null;
  }

  private touch(rec: SimRecord, ctx: WriteContext): void {
    this.writes++;
    if (this.schema.field(rec.type, "updated_at")) rec.fields["updated_at"] = Math.max(this.now(), Number(rec.fields["updated_at"] ?? 0));
    if (ctx.user && this.schema.field(rec.type, "updated_by")) rec.fields["updated_by"] = ctx.user;
  }

  private refreshDisplayName(rec: SimRecord): void {
    this.writes++;
    if (!this.schema.field(rec.type, "cached_display_name")) return;
    const name = this.displayName(rec);
    if (name === null) delete rec.fields["cached_display_name"];
    else rec.fields["cached_display_name"] = name;
  }

  private userName(ctx: WriteContext): string {
    return (ctx.user && this.displayName(ctx.user)) || "Someone";
  }

  // ---- the event log -------------------------------------------------------------------------

  private changeEvent(ctx: WriteContext, rec: SimRecord, info: FieldInfo, old: unknown, next: unknown, inCreate: boolean): void {
    const meta: Record<string, unknown> = {
      type: "attribute_change",
      attribute_name: info.name,
      entity_type: rec.type,
      entity_id: rec.id,
      field_data_type: info.dataType,
    };
    if (info.dataType === "multi_entity") {
      const before = (old as Link[]) ?? [];
      const after = (next as Link[]) ?? [];
      meta["added"] = after.filter((a) => !before.some((b) => sameLink(a, b))).map((l) => this.namedLink(l));
      meta["removed"] = before.filter((b) => !after.some((a) => sameLink(a, b))).map((l) => this.namedLink(l));
    } else {
      meta["old_value"] = this.metaValue(info, old);
      meta["new_value"] = this.metaValue(info, next);
    }
    if (inCreate) meta["in_create"] = true;
    this.event(ctx, rec, {
      event_type: `Shotgun_${rec.type}_Change`,
      attribute_name: info.name,
      meta,
      description: `${this.userName(ctx)} changed "${info.name}" on ${rec.type} ${this.displayName(rec) ?? `#${rec.id}`}`,
    });
  }

  private namedLink(l: Link): { type: string; id: number; name: string | null } {
    return { type: l.type, id: l.id, name: this.displayName(l) };
  }

  private metaValue(info: FieldInfo, v: unknown): unknown {
    if (v === undefined) return null;
    if (info.dataType === "date_time" && typeof v === "number") return formatReadDateTime(v);
    if (isLink(v)) return this.namedLink(v);
    return v;
  }

  private event(ctx: WriteContext, rec: SimRecord, input: EventInput): void {
    const project = rec.type === "Project" ? { type: "Project", id: rec.id } : isLink(rec.fields["project"]) ? (rec.fields["project"] as Link) : null;
    const full: EventInput = {
      ...input,
      entity: { type: rec.type, id: rec.id },
      project,
      user: ctx.user ?? null,
      session_uuid: ctx.sessionUuid ?? null,
      created_at: this.now(),
    };
    const id = this.nextEventId++;
    if (this.pending) this.pending.push({ id, input: full });
    else this.flushEvents([{ id, input: full }]);
  }

  private flushEvents(events: Array<{ id: number; input: EventInput }>): void {
    if (events.length === 0) return;
    const delay = this.commitDelay();
    if (delay <= 0) {
      for (const e of events) this.commitEvent(e.id, e.input);
      return;
    }
    for (const e of events) this.reserved.add(e.id);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      for (const e of events) if (this.reserved.delete(e.id)) this.commitEvent(e.id, e.input);
    }, delay);
    timer.unref();
    this.timers.add(timer);
  }

  private commitEvent(id: number, input: EventInput): void {
    this.writes++;
    const fields: Record<string, unknown> = {
      event_type: input.event_type,
      attribute_name: input.attribute_name ?? null,
      meta: input.meta ?? null,
      entity: input.entity ?? null,
      project: input.project ?? null,
      user: input.user ?? null,
      session_uuid: input.session_uuid ?? null,
      description: input.description ?? null,
      created_at: input.created_at ?? this.now(),
    };
    for (const k of Object.keys(fields)) if (fields[k] === null || !this.schema.field("EventLogEntry", k)) delete fields[k];
    if (!this.schema.hasType("EventLogEntry")) return;
    const rec: SimRecord = { type: "EventLogEntry", id, retired: false, fields };
    this.table("EventLogEntry").set(id, rec);
    if (id > this.maxCommittedEventId) this.maxCommittedEventId = id;
    this.refreshDisplayName(rec);
    for (const listener of this.committedListeners) {
      try {
        listener(rec);
      } catch {
        // A listener (the webhook sender) must never break a write.
      }
    }
  }

  /**
   * Call `listener` with each event row as it is committed (the webhook sender). It runs inside
   * the write: it must only queue work. Returns a function that removes it.
   */
  onEventCommitted(listener: (row: SimRecord) => void): () => void {
    this.committedListeners.add(listener);
    return () => this.committedListeners.delete(listener);
  }

  /**
   * The id of the DisplayColumn entity describing `type`.`field` (schema events name it), given on
   * first use. Links to it show the field's API name, as on a real site.
   */
  displayColumnId(type: string, field: string): number {
    const key = `${type}.${field}`;
    let id = this.columnIds.get(key);
    if (id === undefined) {
      id = this.columnIds.size + 1;
      this.columnIds.set(key, id);
      this.columnNames.set(id, field);
    }
    return id;
  }

  /** Append an event row directly (for tests and datasets), committed at once. Returns its id. */
  appendEvent(input: EventInput): number {
    const id = this.nextEventId++;
    this.commitEvent(id, input);
    return id;
  }

  /** Take the next event id now; its row appears only on `commitReservedEvent`. */
  reserveEventId(): number {
    const id = this.nextEventId++;
    this.reserved.add(id);
    return id;
  }

  /** Write the row of a reserved id (later than ids taken after it: out-of-order commit). */
  commitReservedEvent(id: number, input: EventInput): void {
    if (!this.reserved.delete(id)) throw new Error(`event id ${id} is not reserved`);
    this.commitEvent(id, input);
  }

  /** Give up a reserved id: it stays a gap forever, like a rolled-back transaction. */
  dropReservedEvent(id: number): void {
    if (!this.reserved.delete(id)) throw new Error(`event id ${id} is not reserved`);
  }

  /** Ids reserved and not yet committed or dropped. */
  reservedEventIds(): number[] {
    return [...this.reserved].sort((a, b) => a - b);
  }

  /**
   * Delete committed event rows with an id below `beforeId`, as a site trimming its old event
   * log does (record data is untouched). Returns how many rows went.
   */
  trimEventsBefore(beforeId: number): number {
    this.writes++;
    const log = this.tables.get("EventLogEntry");
    if (!log) return 0;
    let removed = 0;
    for (const id of [...log.keys()]) if (id < beforeId && log.delete(id)) removed++;
    return removed;
  }

  /** Committed event rows. */
  get eventCount(): number {
    return this.tables.get("EventLogEntry")?.size ?? 0;
  }

  /** The highest committed event id (0 when the log is empty). */
  get latestEventId(): number {
    return this.maxCommittedEventId;
  }

  /** The next id an event will get (tests use it to predict ids). */
  get nextEventIdValue(): number {
    return this.nextEventId;
  }

  /** Stop pending delayed commits (server shutdown). */
  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

function seedValue(info: FieldInfo, value: unknown): unknown {
  if (value === null) return null;
  if (info.dataType === "date_time") {
    const ms = parseDateTime(value);
    if (Number.isNaN(ms)) throw new Error(`store.insert: ${info.name} is not a date-time: ${short(value)}`);
    return ms;
  }
  if (info.dataType === "entity") return isLink(value) ? { type: value.type, id: value.id } : null;
  if (info.dataType === "multi_entity") return Array.isArray(value) ? value.filter(isLink).map((l) => ({ type: l.type, id: l.id })) : [];
  return value;
}

function valuesEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (isLink(a) && isLink(b)) return sameLink(a, b);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => valuesEqual(x, b[i]));
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A fresh session id for a REST request's events. */
export function newSessionUuid(): string {
  return randomUUID();
}
