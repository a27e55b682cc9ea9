/**
 * The site's schema as the service validates requests against it: entity types and their fields,
 * fetched from the Backend on first use and kept until told a type changed.
 *
 * Every rule that reads the schema is written once, synchronously, against what is loaded
 * (`typeKnown`, `fieldsOfLoaded`, `resolve`): when something it needs is not loaded it throws
 * `SchemaNotLoaded` naming what to load. `now` runs such a rule without waiting (undefined when
 * something is missing); `settle` loads what is missing, waiting no longer than the caller's
 * signal allows, and runs the rule again until it can decide.
 */
import { abortedBy, BackendError } from "../shotgrid/errors.ts";
import type { Backend, EntitySchema, FieldSchema } from "../shotgrid/types.ts";
import { quote } from "./invalid-input-error.ts";
import { abortable } from "../cache/single-flight.ts";

/** A field reached through a dotted path such as `sg_sequence.Sequence.code`. */
export interface ResolvedField {
  /** The entity type the last hop's field belongs to. */
  entityType: string;
  field: FieldSchema;
  /** Entity types crossed by the path's links (empty for a plain field). */
  via: string[];
}

export type FieldResolution = { ok: true; resolved: ResolvedField } | { ok: false; reason: string };

/** What a rule needs loaded before it can decide: the type list, or one type's fields. */
export type SchemaNeed = { kind: "types" } | { kind: "fields"; entityType: string };

/** Thrown by a synchronous rule that needs part of the schema not loaded yet. */
export class SchemaNotLoaded extends Error {
  override readonly name = "SchemaNotLoaded";
  constructor(readonly need: SchemaNeed) {
    super(need.kind === "types" ? "the site's entity types are not loaded" : `the fields of ${need.entityType} are not loaded`);
  }
}

/** Where the registry reports its calls to the site (the server's `Metrics` fits). */
export interface SchemaMetrics {
  upstreamCall(operation: string, outcome: "ok" | "error" | "timeout", seconds: number): void;
}

export interface SchemaRegistryOptions {
  /** Counts each schema call to the site as an upstream call (operation "schema"). */
  metrics?: SchemaMetrics;
  /**
   * A type not in the loaded list refreshes the list at most this often (ms): requests naming
   * unknown types cannot make one site call each. Schema change events still refresh at once
   * (`invalidate`). Default 30 000.
   */
  typeRefreshMs?: number;
  /** Clock (ms) the refresh interval is measured with. Default `performance.now`. */
  now?: () => number;
}

export const DEFAULT_TYPE_REFRESH_MS = 30_000;

/** Rounds of "load what is missing, decide again" before giving up (only reached if the schema keeps changing). */
const MAX_SETTLE_ROUNDS = 64;

export class SchemaRegistry {
  private types: Promise<Set<string>> | undefined;
  private readonly fields = new Map<string, Promise<EntitySchema>>();
  /** The settled values of `types` and `fields`: what the synchronous rules read. */
  private typesNow: Set<string> | undefined;
  /** When `typesNow` arrived from the site (`now()` clock). */
  private typesAt = 0;
  /** True while `types` is a fetch not settled yet (a refresh joins it instead of starting another). */
  private typesInFlight = false;
  private readonly fieldsNow = new Map<string, EntitySchema>();
  /**
   * Bumped whenever what is known changes (invalidate, a fetch settling): memoised validation
   * results taken at another generation are discarded.
   */
  private gen = 0;
  private readonly metrics: SchemaMetrics | undefined;
  private readonly typeRefreshMs: number;
  private readonly clock: () => number;

  constructor(
    private readonly backend: Backend,
    options: SchemaRegistryOptions = {},
  ) {
    this.metrics = options.metrics;
    this.typeRefreshMs = options.typeRefreshMs ?? DEFAULT_TYPE_REFRESH_MS;
    // 0 would make every decision about an unknown type wait for a refresh that cannot settle it.
    if (!(this.typeRefreshMs >= 1)) throw new RangeError(`typeRefreshMs must be at least 1, got ${this.typeRefreshMs}`);
    this.clock = options.now ?? (() => performance.now());
  }

  /** Counts changes to what is known; see `validateFieldsNow`. */
  get generation(): number {
    return this.gen;
  }

  // ---- the synchronous rules: decide from what is loaded, or throw SchemaNotLoaded ----

  /**
   * Whether the site knows the type. A type missing from the loaded list needs the list
   * refreshed (it may be new), unless the list was asked for less than `typeRefreshMs` ago.
   */
  typeKnown(entityType: string): boolean {
    const set = this.typesNow;
    if (set?.has(entityType)) return true;
    if (set && this.clock() - this.typesAt < this.typeRefreshMs) return false;
    throw new SchemaNotLoaded({ kind: "types" });
  }

  /** The loaded fields of a type. */
  fieldsOfLoaded(entityType: string): EntitySchema {
    const schema = this.fieldsNow.get(entityType);
    if (!schema) throw new SchemaNotLoaded({ kind: "fields", entityType });
    return schema;
  }

  /**
   * Resolve a field name or a deep dotted path (`entity.Shot.sg_sequence.Sequence.code`): each hop
   * is a single-entity link whose valid types include the named type.
   */
  resolve(entityType: string, path: string): FieldResolution {
    const parts = path.split(".");
    if (parts.length % 2 === 0 || parts.some((p) => p === "")) {
      return { ok: false, reason: `${quote(path)} is not a field name nor a dotted path of the form link.Type.field` };
    }
    let type = entityType;
    const via: string[] = [];
    for (let i = 0; i < parts.length; i += 2) {
      const name = parts[i]!;
      const schema = this.fieldsOfLoaded(type);
      const field = Object.hasOwn(schema, name) ? schema[name] : undefined;
      if (!field) return { ok: false, reason: `${type} has no field ${quote(name)}` };
      if (i === parts.length - 1) return { ok: true, resolved: { entityType: type, field, via } };
      const nextType = parts[i + 1]!;
      if (field.dataType !== "entity") {
        return { ok: false, reason: `${quote(name)} of ${type} is a ${field.dataType} field; a dotted path can only follow a single-entity link` };
      }
      if (field.validTypes && field.validTypes.length > 0 && !field.validTypes.includes(nextType)) {
        return { ok: false, reason: `${quote(name)} of ${type} cannot link to ${quote(nextType)} (it links to ${field.validTypes.join(", ")})` };
      }
      if (!this.typeKnown(nextType)) return { ok: false, reason: `unknown entity type ${quote(nextType)} in ${quote(path)}` };
      via.push(nextType);
      type = nextType;
    }
    return { ok: false, reason: `${quote(path)} is incomplete` };
  }

  // ---- running a rule: without waiting, or loading what it needs ----

  /** `rule`'s answer from what is loaded, or undefined when it needs something not loaded yet. */
  now<T>(rule: () => T): T | undefined {
    try {
      return rule();
    } catch (err) {
      if (err instanceof SchemaNotLoaded) return undefined;
      throw err;
    }
  }

  /**
   * `rule`'s answer, loading what it needs first. `signal` ends this caller's wait (rejecting
   * with an AbortedError carrying the signal's reason), never the shared fetch others may wait on.
   */
  async settle<T>(rule: () => T, signal?: AbortSignal): Promise<T> {
    for (let round = 0; ; round++) {
      try {
        return rule();
      } catch (err) {
        if (!(err instanceof SchemaNotLoaded) || round >= MAX_SETTLE_ROUNDS) throw err;
        await this.load(err.need, signal);
      }
    }
  }

  /** Load what `need` names (one shared fetch per thing), waiting at most until `signal` aborts. */
  async load(need: SchemaNeed, signal?: AbortSignal): Promise<void> {
    // Already given up: start no fetch for it.
    if (signal?.aborted) throw abortedBy(signal);
    await abortable<unknown>(need.kind === "types" ? this.typeSet(true) : this.fieldsOf(need.entityType), signal);
  }

  // ---- the async entries of the rules above ----

  /** True when the site knows the type (see `typeKnown`). */
  hasType(entityType: string, signal?: AbortSignal): Promise<boolean> {
    return this.settle(() => this.typeKnown(entityType), signal);
  }

  /** `typeKnown` without waiting: undefined when it would need the type list (re)loaded. */
  hasTypeNow(entityType: string): boolean | undefined {
    return this.now(() => this.typeKnown(entityType));
  }

  /** `resolve`, loading every schema the path crosses first. */
  resolveField(entityType: string, path: string, signal?: AbortSignal): Promise<FieldResolution> {
    return this.settle(() => this.resolve(entityType, path), signal);
  }

  /** `resolve` without waiting: undefined when a schema the path crosses is not loaded. */
  resolveFieldNow(entityType: string, path: string): FieldResolution | undefined {
    return this.now(() => this.resolve(entityType, path));
  }

  /** The fields of a known entity type: one shared fetch, kept until `invalidate`. */
  fieldsOf(entityType: string): Promise<EntitySchema> {
    let p = this.fields.get(entityType);
    if (!p) {
      const fetching = (p = this.counted(() => this.backend.schemaFields(entityType)));
      // A failed fetch must not stick: the next call asks again.
      p.then(
        (schema) => {
          // Only the fetch still current may publish: an invalidate meanwhile dropped it.
          if (this.fields.get(entityType) !== fetching) return;
          this.fieldsNow.set(entityType, schema);
          this.gen++;
        },
        () => {
          if (this.fields.get(entityType) === fetching) this.fields.delete(entityType);
        },
      );
      this.fields.set(entityType, p);
    }
    return p;
  }

  /** Entity types whose fields are held (fetched, or being fetched); schema events look through them. */
  cachedTypes(): string[] {
    return [...this.fields.keys()];
  }

  /** Forget what is known of one type (or all), after a schema change event. The type list is asked again at once. */
  invalidate(entityType?: string): void {
    if (entityType) {
      this.fields.delete(entityType);
      this.fieldsNow.delete(entityType);
    } else {
      this.fields.clear();
      this.fieldsNow.clear();
    }
    this.types = undefined;
    this.typesInFlight = false;
    this.typesNow = undefined;
    this.gen++;
  }

  /**
   * The type list, fetched once and shared. `refresh`: a loaded list is asked again when older
   * than `typeRefreshMs` (a type was not in it; `typeKnown` asks), unless a fetch is under way.
   * The age counts from the answer, so a slow site still gets at most one call per interval.
   */
  private typeSet(refresh = false): Promise<Set<string>> {
    const stale = refresh && !this.typesInFlight && this.typesNow !== undefined && this.clock() - this.typesAt >= this.typeRefreshMs;
    if (!this.types || stale) {
      const p = this.counted(() => this.backend.schemaEntityTypes()).then((list) => new Set(list));
      p.then(
        (set) => {
          if (this.types !== p) return;
          this.typesInFlight = false;
          this.typesNow = set;
          this.typesAt = this.clock();
          this.gen++;
        },
        () => {
          if (this.types !== p) return;
          this.typesInFlight = false;
          this.types = undefined;
          // A failed refresh counts as one too: the held list answers until the next interval.
          if (this.typesNow) this.typesAt = this.clock();
        },
      );
      this.types = p;
      this.typesInFlight = true;
    }
    return this.types;
  }

  /** One schema call to the site, counted in the upstream metric. */
  private async counted<T>(call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await call();
      this.metrics?.upstreamCall("schema", "ok", (performance.now() - started) / 1000);
      return result;
    } catch (err) {
      const timedOut = err instanceof BackendError && err.code === "SG_TIMEOUT";
      this.metrics?.upstreamCall("schema", timedOut ? "timeout" : "error", (performance.now() - started) / 1000);
      throw err;
    }
  }
}
