/**
 * Writes through the cache: each write goes to ShotGrid through the Backend (the only code that
 * knows the wire format, and the one that never repeats a write blindly), then, before it
 * resolves, invalidates in the cache everything the write can change. It does that by building
 * the event log rows ShotGrid will log for the write and applying them as hints (id 0): the same
 * rules as an event (cache/dependencies.ts), one source. So the writer's next read — here, or on
 * any instance sharing the store — shows the write; the real event arrives later and is applied
 * again harmlessly. A fetch that began before the write never fills the cache after it: the hint
 * bumps the generations that fetch checks (invariant 2).
 *
 * The rows carry what the rules read and nothing they could get wrong: no display name is patched
 * from a value we sent (a rename drops the records showing the link instead, so they are fetched
 * again), a project not known for sure invalidates the type's queries in every project, and an
 * outcome we cannot know invalidates as if the write had happened.
 */
import type { Logger } from "../logging/index.ts";
import { errorMessage, SILENT_LOGGER } from "../logging/index.ts";
import { BackendError } from "../shotgrid/errors.ts";
import type {
  ActingOptions,
  Backend,
  BatchRequest,
  BatchResult,
  Entity,
  EntityLink,
  EventLogEntry,
  FieldValue,
  MultiEntityUpdate,
  MultiEntityUpdateMode,
  WriteFields,
  WriteOptions,
} from "../shotgrid/types.ts";

/** What the write path needs of the cache: apply hint rows (and, to find old links, the held record). */
export interface WriteInvalidationSink {
  /** Invalidate as these rows would, without counting them as applied (ReadThroughCache.applyHints). */
  applyHints(events: EventLogEntry[]): Promise<void>;
  /** The full record held for `type`/`id`, if any: its links before the write (reverse fields to drop). */
  heldRecord?(type: string, id: number): Promise<Entity | null | undefined>;
  /**
   * Drop every answer about `type` (reloading it if preloaded): for a create whose outcome is
   * unknown, so whose id is unknown too. Without it such a create applies a row naming no
   * record, which the rules answer the same way but which also leaves a preloaded type unloaded.
   */
  invalidateType?(type: string): Promise<void>;
  /** Types loaded whole at start: their "this id does not exist" is answered from a local id set. */
  readonly preloadTypes?: readonly string[];
  /** Read through the cache (ReadThroughCache.getEntity), to fill the store with a record. */
  getEntity?(type: string, id: number, fields: string[]): Promise<unknown>;
}

export interface WriteThroughOptions {
  backend: Backend;
  cache: WriteInvalidationSink;
  logger?: Logger;
  /** Clock for the rows' `created_at`. Default Date.now. */
  now?: () => number;
}

/** One write to describe as rows: what was asked and, when known, what ShotGrid answered. */
type Described =
  | { kind: "create"; entityType: string; data: WriteFields; result?: Entity }
  | { kind: "update"; entityType: string; id: number; data: WriteFields; modes?: Record<string, MultiEntityUpdateMode>; result?: Entity }
  | { kind: "delete" | "revive"; entityType: string; id: number };

/**
 * Error codes after which ShotGrid provably made no change (it refused the request, or it was
 * never sent): nothing to invalidate. After any other failure (outcome unknown, timeout, abort
 * after sending, an unreadable answer) the write may have happened, so the cache is invalidated
 * as if it had.
 */
const NOT_WRITTEN = new Set(["SG_REQUEST_REJECTED", "SG_NOT_FOUND", "SG_AUTH_FAILED", "SG_CALLER_AUTH_FAILED", "SG_UNAVAILABLE"]);

function mayHaveWritten(err: unknown): boolean {
  if (err instanceof BackendError) return !NOT_WRITTEN.has(err.code);
  // Not a BackendError: our own checks refused it before anything was sent (TypeError, RangeError).
  return false;
}

export class WriteThrough {
  readonly #backend: Backend;
  readonly #cache: WriteInvalidationSink;
  readonly #log: Logger;
  readonly #now: () => number;

  constructor(options: WriteThroughOptions) {
    this.#backend = options.backend;
    this.#cache = options.cache;
    this.#log = options.logger ?? SILENT_LOGGER;
    this.#now = options.now ?? Date.now;
  }

  /** Create a record; resolves with ShotGrid's answer once the cache can no longer contradict it. */
  create(entityType: string, data: WriteFields, options: WriteOptions = {}): Promise<Entity> {
    return this.#write(
      () => this.#backend.create(entityType, data, options),
      (result) => [{ kind: "create", entityType, data, result }],
    );
  }

  update(entityType: string, id: number, data: WriteFields, options: WriteOptions = {}): Promise<Entity> {
    const modes = options.multiEntityUpdateModes;
    return this.#write(
      () => this.#backend.update(entityType, id, data, options),
      (result) => [{ kind: "update", entityType, id, data, modes, result }],
    );
  }

  /** Retire a record. */
  delete(entityType: string, id: number, options: ActingOptions = {}): Promise<void> {
    return this.#write(
      () => this.#backend.delete(entityType, id, options),
      () => [{ kind: "delete", entityType, id }],
    );
  }

  /** Bring a retired record back; false (and nothing invalidated) when it was not retired. */
  revive(entityType: string, id: number, options: ActingOptions = {}): Promise<boolean> {
    return this.#write(
      () => this.#backend.revive(entityType, id, options),
      (revived) => (revived === false ? [] : [{ kind: "revive", entityType, id }]),
    );
  }

  /** All or nothing, as ShotGrid runs it: a refused batch changed nothing, so invalidates nothing. */
  batch(requests: BatchRequest[], options: ActingOptions = {}): Promise<BatchResult[]> {
    return this.#write(
      () => this.#backend.batch(requests, options),
      (results) =>
        requests.map((r, i): Described => {
          const result = results?.[i];
          const entity = typeof result === "object" ? result : undefined;
          if (r.requestType === "create") return { kind: "create", entityType: r.entityType, data: r.data, result: entity };
          if (r.requestType === "update")
            return { kind: "update", entityType: r.entityType, id: r.id, data: r.data, modes: r.multiEntityUpdateModes, result: entity };
          return { kind: "delete", entityType: r.entityType, id: r.id };
        }),
    );
  }

  /**
   * Run `send`, then invalidate what `describe` says was written (with the answer, or with
   * undefined when the outcome is unknown), then answer. The write's own error is what the
   * caller gets; an invalidation failure is logged, never hides the write's result (the cache
   * already refuses to serve from a store whose invalidation failed: read-through-cache.ts).
   */
  async #write<T>(send: () => Promise<T>, describe: (result: T | undefined) => Described[]): Promise<T> {
    let result: T;
    try {
      result = await send();
    } catch (err) {
      if (mayHaveWritten(err)) await this.#invalidate(describe(undefined));
      throw err;
    }
    await this.#invalidate(describe(result));
    return result;
  }

  async #invalidate(writes: Described[]): Promise<void> {
    if (writes.length === 0) return;
    try {
      const rows: EventLogEntry[] = [];
      const unknownCreates = new Set<string>();
      for (const w of writes) {
        if (w.kind === "create" && w.result === undefined && this.#cache.invalidateType) unknownCreates.add(w.entityType);
        else rows.push(...(await this.#rows(w)));
      }
      if (rows.length > 0) await this.#cache.applyHints(rows);
      for (const type of unknownCreates) await this.#cache.invalidateType!(type);
      await this.#fill(writes);
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, "write made, but its cache invalidation failed; the event log will apply it");
    }
  }

  /** The rows ShotGrid logs for one write, with the meta the invalidation rules read. */
  async #rows(w: Described): Promise<EventLogEntry[]> {
    const created_at = new Date(this.#now()).toISOString().replace(/\.\d{3}Z$/, "Z");
    const row = (kind: string, id: number | undefined, project: EntityLink | null, attribute: string | null, meta: Record<string, unknown>): EventLogEntry => ({
      id: 0,
      event_type: `Shotgun_${w.entityType}_${kind}`,
      attribute_name: attribute,
      meta: { entity_type: w.entityType, ...(id === undefined ? {} : { entity_id: id }), ...meta },
      entity: id === undefined ? null : { type: w.entityType, id },
      project,
      user: null,
      session_uuid: null,
      created_at,
    });
    switch (w.kind) {
      case "create": {
        // Outcome unknown: which id it got is unknown too, so the row names no record (the whole type goes).
        const id = w.result?.id;
        const project = projectOf(w.entityType, id, w.result, w.data);
        const rows = [row("New", id, project, null, { type: "new_entity" })];
        if (id === undefined) return rows;
        for (const [field, value] of Object.entries(w.data)) {
          rows.push(
            row("Change", id, project, field, {
              type: "attribute_change",
              attribute_name: field,
              in_create: true,
              ...linkMeta(writtenValue(value), undefined),
            }),
          );
        }
        return rows;
      }
      case "update": {
        const held = await this.#held(w.entityType, w.id);
        // A write that moves the record names its field "project": the rules then drop every project's queries.
        const project = projectOf(w.entityType, w.id, w.result, w.data) ?? projectOf(w.entityType, w.id, held ?? undefined, {});
        return Object.entries(w.data).map(([field, value]) => {
          const mode = w.modes?.[field] ?? (isMultiEntityUpdate(value) ? value.multi_entity_update_mode : undefined);
          const meta = linkMeta(writtenValue(value), held?.fields[field], mode);
          return row("Change", w.id, project, field, { type: "attribute_change", attribute_name: field, ...meta });
        });
      }
      case "delete":
      case "revive": {
        const held = await this.#held(w.entityType, w.id);
        const project = projectOf(w.entityType, w.id, held ?? undefined, {});
        const kind = w.kind === "delete" ? "Retirement" : "Revival";
        return [row(kind, w.id, project, "retirement_date", { type: w.kind === "delete" ? "entity_retirement" : "entity_revival", class_name: w.entityType })];
      }
    }
  }

  /**
   * A record that came into being (created, revived) of a preloaded type is read into the store
   * now. Every instance answers "does not exist" for an id outside its own id set of a preloaded
   * type without asking, unless the shared store holds the record: so, with --redis, this is
   * what lets another instance show it before the event log tells it about the id.
   */
  async #fill(writes: Described[]): Promise<void> {
    const { getEntity, preloadTypes } = this.#cache;
    if (!getEntity || !preloadTypes) return;
    for (const w of writes) {
      const id = w.kind === "create" ? w.result?.id : w.kind === "revive" ? w.id : undefined;
      if (id === undefined || !preloadTypes.includes(w.entityType)) continue;
      await getEntity.call(this.#cache, w.entityType, id, []).catch(() => undefined);
    }
  }

  async #held(type: string, id: number): Promise<Entity | null | undefined> {
    try {
      return await this.#cache.heldRecord?.(type, id);
    } catch {
      return undefined; // only a refinement: without it the related records' reverse fields wait for the event
    }
  }
}

function isMultiEntityUpdate(value: unknown): value is MultiEntityUpdate {
  return typeof value === "object" && value !== null && !Array.isArray(value) && "multi_entity_update_mode" in value;
}

function writtenValue(value: FieldValue | MultiEntityUpdate): FieldValue {
  return isMultiEntityUpdate(value) ? value.value : value;
}

function isLink(value: unknown): value is EntityLink {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as EntityLink).type === "string" &&
    typeof (value as EntityLink).id === "number"
  );
}

/** The links in a field value (one link or a list of them); empty for anything else. */
function linksOf(value: unknown): EntityLink[] {
  if (isLink(value)) return [{ type: value.type, id: value.id }];
  if (Array.isArray(value)) return value.filter(isLink).map((l) => ({ type: l.type, id: l.id }));
  return [];
}

/**
 * The meta keys that name the other side of a link change (added/removed for a list, old and
 * new value for one link), so the rules drop those records' reverse fields. Plain values are
 * left out on purpose: a display-name change then drops the records showing the name instead of
 * patching in a value ShotGrid may store differently.
 */
function linkMeta(next: FieldValue, old: FieldValue | undefined, mode?: MultiEntityUpdateMode): Record<string, unknown> {
  const nextLinks = linksOf(next);
  const oldLinks = linksOf(old);
  if (mode === "add") return { added: nextLinks, removed: [] };
  if (mode === "remove") return { added: [], removed: nextLinks };
  if (Array.isArray(next) || mode === "set") return { added: nextLinks, removed: oldLinks };
  const meta: Record<string, unknown> = {};
  if (nextLinks.length > 0) meta["new_value"] = nextLinks[0];
  if (oldLinks.length > 0) meta["old_value"] = oldLinks[0];
  return meta;
}

/**
 * The project a written record is in, as its rows name it: a Project is its own; else the
 * `project` link of ShotGrid's answer, of the data written, or of the record held. Null when
 * none says: the rules then invalidate the type's queries in every project.
 */
function projectOf(entityType: string, id: number | undefined, record: Entity | undefined, data: WriteFields): EntityLink | null {
  if (entityType === "Project") return id === undefined ? null : { type: "Project", id };
  for (const v of [record?.fields["project"], data["project"]]) {
    if (isLink(v) && v.type === "Project") return { type: "Project", id: v.id };
  }
  return null;
}
