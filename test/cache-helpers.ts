/**
 * Test support for the cache tests: a tiny in-memory ShotGrid-like site implementing `Backend` with
 * real data semantics (filters, deep paths, live link names, retirement, an event log written the
 * way a site writes it), and a wrapper that counts upstream calls and can hold them at a gate.
 */
import type {
  Backend,
  Entity,
  EntityLink,
  EventLogEntry,
  EventReadOptions,
  FieldValue,
  FilterCondition,
  FilterGroup,
  Filters,
  ReadOptions,
  SearchOptions,
} from "../src/shotgrid/types.ts";
import { UnavailableError } from "../src/shotgrid/errors.ts";
import type { EntityCache } from "../src/cache/types.ts";

const NAME_FIELD: Record<string, string> = { Project: "name", Task: "content" };
const nameFieldOf = (type: string) => NAME_FIELD[type] ?? "code";

interface Row {
  type: string;
  id: number;
  retired: boolean;
  fields: Record<string, unknown>;
}

function isLinkValue(v: unknown): v is { type: string; id: number } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && typeof (v as EntityLink).type === "string" && typeof (v as EntityLink).id === "number";
}

/** An in-memory site: the Backend's read side plus writes that append event log rows. */
export class MiniSite implements Backend {
  readonly description = "mini-site (test)";
  readonly #rows = new Map<string, Row>();
  readonly #nextId = new Map<string, number>();
  readonly #events: EventLogEntry[] = [];
  /** While true every call fails like an unreachable site. */
  down = false;

  #row(type: string, id: number): Row | undefined {
    return this.#rows.get(`${type}:${id}`);
  }

  #name(link: { type: string; id: number }): string | null {
    const v = this.#row(link.type, link.id)?.fields[nameFieldOf(link.type)];
    return typeof v === "string" ? v : null;
  }

  #render(v: unknown): FieldValue {
    if (isLinkValue(v)) return { type: v.type, id: v.id, name: this.#name(v) };
    if (Array.isArray(v)) return v.map((x) => this.#render(x)) as FieldValue;
    return (v ?? null) as FieldValue;
  }

  #resolve(row: Row, path: string): unknown {
    const parts = path.split(".");
    let value: unknown = parts[0] === "id" ? row.id : row.fields[parts[0]!];
    for (let i = 1; i + 1 < parts.length; i += 2) {
      if (!isLinkValue(value) || value.type !== parts[i]) return null;
      const next = this.#row(value.type, value.id);
      if (!next || next.retired) return null;
      value = parts[i + 1] === "id" ? next.id : next.fields[parts[i + 1]!];
    }
    return value ?? null;
  }

  #matches(row: Row, filters: Filters | undefined): boolean {
    if (!filters) return true;
    const group: FilterGroup = Array.isArray(filters) ? { logical_operator: "and", conditions: filters } : filters;
    const results = group.conditions.map((c) => (Array.isArray(c) ? this.#condition(row, c) : this.#matches(row, c)));
    return group.logical_operator === "or" ? results.some(Boolean) : results.every(Boolean);
  }

  #condition(row: Row, [path, op, ...values]: FilterCondition): boolean {
    const v = this.#resolve(row, path);
    const same = (a: unknown, b: unknown) => (isLinkValue(a) && isLinkValue(b) ? a.type === b.type && a.id === b.id : a === b);
    switch (op) {
      case "is":
        return same(v, values[0] ?? null);
      case "is_not":
        return !same(v, values[0] ?? null);
      case "in": {
        const list = values.length === 1 && Array.isArray(values[0]) ? (values[0] as unknown[]) : values;
        return list.some((x) => same(v, x));
      }
      case "greater_than":
        return typeof v === "number" && v > (values[0] as number);
      case "less_than":
        return typeof v === "number" && v < (values[0] as number);
      case "starts_with":
        return typeof v === "string" && v.startsWith(values[0] as string);
      case "name_contains":
        return isLinkValue(v) && (this.#name(v) ?? "").includes(values[0] as string);
      default:
        throw new Error(`mini-site: operator ${op} not supported`);
    }
  }

  #entity(row: Row, fields: string[] | undefined): Entity {
    const names = fields && fields.length > 0 ? fields : Object.keys(row.fields);
    const out: Record<string, FieldValue> = {};
    for (const f of names) if (f !== "id" && f !== "type") out[f] = this.#render(f.includes(".") ? this.#resolve(row, f) : row.fields[f]);
    return { type: row.type, id: row.id, fields: out };
  }

  #check(): void {
    if (this.down) throw new UnavailableError("mini-site is down");
  }

  async getEntity(entityType: string, id: number, options: ReadOptions = {}): Promise<Entity | null> {
    this.#check();
    const row = this.#row(entityType, id);
    if (!row || row.retired !== (options.returnOnly === "retired")) return null;
    return this.#entity(row, options.fields);
  }

  async search(entityType: string, options: SearchOptions = {}): Promise<Entity[]> {
    this.#check();
    const wantRetired = options.returnOnly === "retired";
    let rows = [...this.#rows.values()].filter((r) => r.type === entityType && r.retired === wantRetired && this.#matches(r, options.filters));
    const sort = options.sort?.length ? options.sort : [{ field: "id", direction: "asc" as const }];
    rows.sort((a, b) => {
      for (const s of sort) {
        const av = this.#sortValue(a, s.field);
        const bv = this.#sortValue(b, s.field);
        if (av === bv) continue;
        const cmp = String(av).localeCompare(String(bv), undefined, { numeric: true });
        return s.direction === "desc" ? -cmp : cmp;
      }
      return 0;
    });
    const size = options.pageSize ?? 500;
    if (options.page && options.page > 1) rows = rows.slice((options.page - 1) * size);
    if (options.limit) rows = rows.slice(0, options.limit);
    return rows.map((r) => this.#entity(r, options.fields));
  }

  #sortValue(row: Row, field: string): unknown {
    const v = this.#resolve(row, field);
    return isLinkValue(v) ? this.#name(v) : v;
  }

  async *searchPages(entityType: string, options: SearchOptions = {}): AsyncIterable<Entity[]> {
    const all = await this.search(entityType, { ...options, pageSize: undefined, page: undefined });
    const size = options.pageSize ?? 500;
    for (let i = 0; i < all.length; i += size) {
      this.#check();
      yield all.slice(i, i + size);
    }
  }

  async readEvents(options: EventReadOptions): Promise<EventLogEntry[]> {
    this.#check();
    return this.#events.filter((e) => e.id > (options.afterId ?? 0)).slice(0, options.limit ?? 500);
  }

  async latestEventId(): Promise<number> {
    return this.#events.at(-1)?.id ?? 0;
  }

  // ---- writes (the test's hands on the site; each appends event rows) ----

  #event(row: Row, kind: string, extra: Partial<EventLogEntry> = {}): void {
    const project =
      row.type === "Project"
        ? { type: "Project", id: row.id, name: this.#name(row) }
        : isLinkValue(row.fields.project)
          ? (this.#render(row.fields.project) as EntityLink)
          : null;
    this.#events.push({
      id: this.#events.length + 1,
      event_type: `Shotgun_${row.type}_${kind}`,
      attribute_name: null,
      meta: { type: kind === "New" ? "new_entity" : "entity_retirement", entity_type: row.type, entity_id: row.id },
      entity: { type: row.type, id: row.id, name: this.#name(row) },
      project,
      user: null,
      session_uuid: null,
      created_at: new Date().toISOString(),
      ...extra,
    });
  }

  add(type: string, fields: Record<string, unknown>): number {
    const id = (this.#nextId.get(type) ?? 0) + 1;
    this.#nextId.set(type, id);
    const row: Row = { type, id, retired: false, fields: { ...fields } };
    this.#rows.set(`${type}:${id}`, row);
    this.#event(row, "New");
    return id;
  }

  set(type: string, id: number, fields: Record<string, unknown>): void {
    const row = this.#row(type, id);
    if (!row || row.retired) throw new Error(`mini-site: no active ${type} ${id}`);
    for (const [name, value] of Object.entries(fields)) {
      const old = row.fields[name] ?? null;
      row.fields[name] = value;
      this.#event(row, "Change", {
        attribute_name: name,
        meta: {
          type: "attribute_change",
          attribute_name: name,
          entity_type: type,
          entity_id: id,
          old_value: this.#render(old),
          new_value: this.#render(value),
        },
      });
    }
  }

  retire(type: string, id: number): void {
    const row = this.#row(type, id)!;
    row.retired = true;
    this.#event(row, "Retirement");
  }

  async revive(type: string, id: number): Promise<boolean> {
    const row = this.#row(type, id);
    if (!row?.retired) return false;
    row.retired = false;
    this.#event(row, "Revival");
    return true;
  }

  /** A site event that is not an entity change. */
  login(): void {
    this.#events.push({
      id: this.#events.length + 1,
      event_type: "Shotgun_User_Login",
      attribute_name: null,
      meta: null,
      entity: null,
      project: null,
      user: null,
      session_uuid: null,
      created_at: new Date().toISOString(),
    });
  }

  // ---- the rest of Backend: not used by the cache ----
  schemaFields(): never {
    throw new Error("mini-site: schemaFields not supported");
  }
  schemaEntityTypes(): never {
    throw new Error("mini-site: schemaEntityTypes not supported");
  }
  create(): never {
    throw new Error("mini-site: use add()");
  }
  update(): never {
    throw new Error("mini-site: use set()");
  }
  delete(): never {
    throw new Error("mini-site: use retire()");
  }
  batch(): never {
    throw new Error("mini-site: batch not supported");
  }
  async close(): Promise<void> {}
}

/** A gate that holds calls until opened. */
export class Gate {
  #open!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.#open = resolve));
  /** Resolves when a call has reached the gate. */
  readonly reached: Promise<void>;
  #reach!: () => void;
  constructor() {
    this.reached = new Promise<void>((resolve) => (this.#reach = resolve));
  }
  arrive(): Promise<void> {
    this.#reach();
    return this.opened;
  }
  open(): void {
    this.#open();
  }
}

/**
 * Wraps any Backend: counts the cache's upstream read calls per method and, when a gate is set for
 * a method, holds the next such call's *answer* at the gate (the fetch has happened; the cache has
 * not seen it yet), which is exactly the window a stale write-back would use.
 */
export class ObservedBackend implements Backend {
  readonly calls = { getEntity: 0, search: 0, searchPages: 0 };
  readonly #gates = new Map<string, Gate>();
  constructor(readonly inner: Backend) {}

  get description(): string {
    return this.inner.description;
  }
  get upstreamReads(): number {
    return this.calls.getEntity + this.calls.search + this.calls.searchPages;
  }
  /** Hold the next call of `method` after it has fetched, until the returned gate opens. */
  holdNext(method: "getEntity" | "search"): Gate {
    const gate = new Gate();
    this.#gates.set(method, gate);
    return gate;
  }
  async #held<T>(method: "getEntity" | "search", result: T): Promise<T> {
    const gate = this.#gates.get(method);
    if (gate) {
      this.#gates.delete(method);
      await gate.arrive();
    }
    return result;
  }

  async getEntity(entityType: string, id: number, options?: ReadOptions): Promise<Entity | null> {
    this.calls.getEntity++;
    return this.#held("getEntity", await this.inner.getEntity(entityType, id, options));
  }
  async search(entityType: string, options?: SearchOptions): Promise<Entity[]> {
    this.calls.search++;
    return this.#held("search", await this.inner.search(entityType, options));
  }
  searchPages(entityType: string, options?: SearchOptions): AsyncIterable<Entity[]> {
    this.calls.searchPages++;
    return this.inner.searchPages(entityType, options);
  }
  schemaFields: Backend["schemaFields"] = (t, s) => this.inner.schemaFields(t, s);
  schemaEntityTypes: Backend["schemaEntityTypes"] = (s) => this.inner.schemaEntityTypes(s);
  readEvents: Backend["readEvents"] = (o) => this.inner.readEvents(o);
  latestEventId: Backend["latestEventId"] = (s) => this.inner.latestEventId(s);
  create: Backend["create"] = (t, d, f) => this.inner.create(t, d, f);
  update: Backend["update"] = (t, i, d, f) => this.inner.update(t, i, d, f);
  delete: Backend["delete"] = (t, i) => this.inner.delete(t, i);
  revive: Backend["revive"] = (t, i) => this.inner.revive(t, i);
  batch: Backend["batch"] = (r) => this.inner.batch(r);
  close: Backend["close"] = () => this.inner.close();
}

/** What the event follower does, done by hand: apply every event after the cache's cursor. */
export async function catchUp(cache: EntityCache, site: Backend): Promise<void> {
  for (;;) {
    const events = await site.readEvents({ afterId: cache.lastAppliedEventId, limit: 500 });
    if (events.length === 0) return;
    await cache.applyEvents(events);
  }
}

/** Two projects, a sequence in each, shots in each. */
export function seedMiniSite(site: MiniSite): { projectA: number; projectB: number; seqA: number; seqB: number; shotsA: number[]; shotsB: number[] } {
  const projectA = site.add("Project", { name: "Alpha" });
  const projectB = site.add("Project", { name: "Beta" });
  const pa = { type: "Project", id: projectA };
  const pb = { type: "Project", id: projectB };
  const seqA = site.add("Sequence", { code: "SQ_A", project: pa, description: null });
  const seqB = site.add("Sequence", { code: "SQ_B", project: pb, description: null });
  const shotsA = [1, 2, 3].map((n) =>
    site.add("Shot", { code: `A${n}0`, project: pa, sg_sequence: { type: "Sequence", id: seqA }, sg_status_list: "wtg", description: null }),
  );
  const shotsB = [1, 2].map((n) =>
    site.add("Shot", { code: `B${n}0`, project: pb, sg_sequence: { type: "Sequence", id: seqB }, sg_status_list: "wtg", description: null }),
  );
  return { projectA, projectB, seqA, seqB, shotsA, shotsB };
}
