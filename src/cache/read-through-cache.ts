/**
 * The read-through entity cache: answers GetEntity and Query from a store, fetches misses from the
 * Backend (one fetch per set of identical concurrent misses), preloads whole entity types, and
 * applies the event log precisely (see dependencies.ts for what each event invalidates).
 */
import type { Backend, Entity, EntitySchema, EventLogEntry, Filters, SearchOptions, SummaryAnswer, SummaryField, SummaryGrouping } from "../shotgrid/types.ts";
import { BackendError } from "../shotgrid/errors.ts";
import type { CacheAnswer, EntityCache, EntityQuery, Freshness, PeekableEntityCache, PeekedEntry } from "./types.ts";
import { StoreUnavailableError, type CacheStore, type StoredEntry } from "./cache-store.ts";
import { MemoryStore, type RawEntry } from "./memory-store.ts";
import { SingleFlight, abortable } from "./single-flight.ts";
import type { MissCoalescer } from "./miss-coalescer.ts";
import { canonicalFields, canonicalJson, canonicalQuery, checkEntityType, projectionKey, queryKey, recordKey, type CanonicalQuery } from "./query-key.ts";
import { eventEffects, pageDependsOnAnyName, projectionDependencies, queryDependencies, typesOnPath } from "./dependencies.ts";
import { projectRecord, recordAnswers } from "./entity-fields.ts";
import { collectLinks } from "./links.ts";
import { InvalidCacheRequestError } from "./errors.ts";
import { NOOP_CACHE_METRICS, type CacheMetrics, type CacheReadKind } from "./observability.ts";
import { type Logger, SILENT_LOGGER } from "../logging/index.ts";
import { LocalQueryEngine } from "../local-query/index.ts";
import { changesOtherFields, DEFAULT_FIELDS } from "./entity-fields.ts";

export const DEFAULT_PRELOAD_TYPES: readonly string[] = ["Project", "Sequence", "Shot", "Asset", "Step"];

export interface ReadThroughCacheOptions {
  /** Where misses are fetched from (the ShotGrid REST client, or any other source). */
  backend: Backend;
  /**
   * Entity types loaded whole by `preload()`, every field of every active record. Once a type is
   * loaded, GetEntity for it is answered without going upstream (until an event or the max age
   * says otherwise). Default: Project, Sequence, Shot, Asset, Step.
   */
  preloadTypes?: readonly string[];
  /** Bound on the estimated bytes of everything stored (memory store only). Default 256 MiB. */
  maxBytes?: number;
  /**
   * Safety net against missed events: an entry older than this is fetched again on its next read.
   * While the Backend is unavailable such an entry is still served, marked stale. Default one hour;
   * `Infinity` turns the net off.
   */
  maxAgeMs?: number;
  /** Where entries live. Default: a `MemoryStore` bounded by `maxBytes`. */
  store?: CacheStore;
  /** Milliseconds since the epoch; tests pass a controllable clock. Default `Date.now`. */
  now?: () => number;
  /** Counters and gauges (hits, misses, coalesced waits, upstream calls, size). Default: none. */
  metrics?: CacheMetrics;
  /** Structured logger (pino-compatible). Default: silent. */
  logger?: Logger;
  /** Records per upstream page during preload. Default 500 (ShotGrid's own default). */
  preloadPageSize?: number;
  /** Preloaded records refetched after events are asked for this many at a time. Default 100. */
  refreshBatchSize?: number;
  /** The event id the cache is current with at start (the follower's cursor). Default 0. */
  lastAppliedEventId?: number;
  /**
   * After the store fails (`StoreUnavailableError`: Redis unreachable or too slow), reads skip it
   * for this long and go straight to the Backend, so no request keeps paying a store timeout.
   * Default 1000 ms.
   */
  storeRetryMs?: number;
  /**
   * Coalesces expensive misses across instances sharing the store (a `RedisCoalescer`): query
   * misses and GetEntity misses of types that are not preloaded make one upstream call across all
   * instances, the others read its fill. Default: none (single-flight within this process only).
   */
  coalescer?: MissCoalescer;
  /**
   * The site's IANA time zone ("Europe/London"): the calendar relative dates (`in_last`,
   * `in_calendar_day`…) are counted in when Queries over the preloaded types are answered
   * locally (src/local-query). Undefined (the default): not known, and such Queries that count
   * days go upstream.
   */
  siteTimeZone?: string;
  /**
   * Answer Queries over the preloaded types from their mirror when it can answer exactly (the
   * others go upstream as before). Default: true with the in-process memory store, false with a
   * shared store (a standby instance does not apply every event to its own process, so its
   * mirror would fall behind). False keeps every Query on the stored-answer path.
   */
  answerQueriesLocally?: boolean;
  /**
   * Where `preload()` reads each preloaded type's schema (the mirror needs it to answer Queries).
   * Default: the Backend's `schemaFields`, counted as an upstream call. The service passes its
   * validation schema registry, so the one fetch that preloading makes serves validation too and
   * the first requests over a preloaded type wait for no site call.
   */
  schemaOf?: (entityType: string, signal?: AbortSignal) => Promise<EntitySchema>;
}

interface Fetched<T> {
  value: T;
  fetchedAt: number;
  asOfEventId: number;
  /** "cache": read from the shared store, filled there by another instance's fetch. Default "shotgrid". */
  source?: "cache";
}

const MIB = 1024 * 1024;

/** What the mirror made of a Query: its answer, or the code of why it could not answer exactly ("none" when it did). */
interface LocalVerdict {
  reason: string;
  answer?: CacheAnswer<Entity[]>;
  /** The answer is in the store now (not when computed during a batch, nor when the store refused it). */
  kept?: boolean;
}

const DISABLED: Promise<LocalVerdict> = Promise.resolve({ reason: "disabled" });

function isOutage(err: unknown): boolean {
  return err instanceof BackendError && (err.code === "SG_UNAVAILABLE" || err.code === "SG_TIMEOUT");
}

function checkId(id: unknown): number {
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id <= 0) {
    throw new InvalidCacheRequestError("id", `must be a positive integer, got ${JSON.stringify(id)}`);
  }
  return id;
}

function withoutFields(entity: Entity, drop: ReadonlySet<string>): Entity {
  if (drop.size === 0) return entity;
  const fields: Entity["fields"] = {};
  for (const [k, v] of Object.entries(entity.fields)) if (!drop.has(k)) fields[k] = v;
  return { type: entity.type, id: entity.id, fields };
}

/** A `summarize` question, validated by the caller (src/api3). */
export interface SummaryRequest {
  filters: Filters;
  summaryFields: SummaryField[];
  grouping?: SummaryGrouping[];
  includeArchivedProjects: boolean;
}

/** A query made ready once for `queryPrepared` (see `prepareQuery`). */
export interface PreparedQuery {
  readonly q: CanonicalQuery;
  readonly key: string;
  readonly deps: ReturnType<typeof queryDependencies>;
}

export class ReadThroughCache implements EntityCache, PeekableEntityCache {
  readonly backend: Backend;
  readonly store: CacheStore;
  readonly preloadTypes: readonly string[];
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  readonly #metrics: CacheMetrics;
  readonly #log: Logger;
  readonly #preloadPageSize: number;
  readonly #refreshBatchSize: number;
  readonly #flights = new SingleFlight<Fetched<unknown>>();
  /**
   * Local evaluations in progress, by query key: identical concurrent Queries share one (a farm
   * asking the same question at once evaluates it once). Detached with `#flights`.
   */
  readonly #localFlights = new SingleFlight<LocalVerdict>();
  /** Preloaded types fully loaded, and when. */
  readonly #readyAt = new Map<string, number>();
  /**
   * For each preloaded type, every id that may exist (a superset: preload, New and Revival add;
   * Retirement removes). An id outside it does not exist, so GetEntity answers null without asking.
   */
  readonly #knownIds = new Map<string, Set<number>>();
  /** Types asked for through getEntity or query (for reconcile); bounded by the site's type count. */
  readonly #typesRead = new Set<string>();
  readonly #background = new Set<Promise<void>>();
  #applying: Promise<void> = Promise.resolve();
  /** Event batches queued or being applied: while any is, the mirror may trail the store's invalidations. */
  #batchesInFlight = 0;
  #preloading: { type: string; records: number } | undefined;
  /** The refetch of records whose write stamps are unknown, while one runs (`#refreshStamps`). */
  #stampRefresh: Promise<void> | undefined;
  #lastApplied: number;
  readonly #storeRetryMs: number;
  readonly #coalescer: MissCoalescer | undefined;
  /** Answers Queries over the preloaded types from their mirror (src/local-query). */
  readonly localQueries: LocalQueryEngine;
  readonly #answerLocallyOn: boolean;
  readonly #schemaOf: ((entityType: string, signal?: AbortSignal) => Promise<EntitySchema>) | undefined;
  /** Until then (wall-clock ms) the store is skipped: it failed recently. */
  #storeDownUntil = 0;
  /**
   * An invalidation (bump, patch, clear) failed: the store may hold entries an applied event should
   * have dropped. Reads skip it until a later batch of events is applied in full.
   */
  #invalidationPending = false;
  /**
   * The batch that must be applied in full to clear `#invalidationPending`: up to this event id
   * (the failed event's), or `Infinity` when a clear failed (only a successful clear will do).
   * Hint batches (id 0) never clear it.
   */
  #pendingUntilEventId = 0;

  constructor(options: ReadThroughCacheOptions) {
    this.backend = options.backend;
    this.store = options.store ?? new MemoryStore({ maxBytes: options.maxBytes ?? 256 * MIB });
    this.preloadTypes = [...new Set(options.preloadTypes ?? DEFAULT_PRELOAD_TYPES)].map(checkEntityType);
    this.#maxAgeMs = options.maxAgeMs ?? 3_600_000;
    if (!(this.#maxAgeMs >= 0)) throw new RangeError(`maxAgeMs must be >= 0, got ${options.maxAgeMs}`);
    this.#now = options.now ?? Date.now;
    this.#metrics = options.metrics ?? NOOP_CACHE_METRICS;
    this.#log = options.logger ?? SILENT_LOGGER;
    this.#preloadPageSize = options.preloadPageSize ?? 500;
    this.#refreshBatchSize = options.refreshBatchSize ?? 100;
    this.#lastApplied = options.lastAppliedEventId ?? 0;
    this.#storeRetryMs = options.storeRetryMs ?? 1000;
    this.#coalescer = options.coalescer;
    // A shared store (--redis) means standby instances: they apply only some events to their own
    // process (the leader keeps the shared store current), so their mirror could fall behind.
    this.#answerLocallyOn = options.answerQueriesLocally ?? this.store instanceof MemoryStore;
    this.#schemaOf = options.schemaOf;
    this.localQueries = new LocalQueryEngine({ types: this.preloadTypes, timeZone: options.siteTimeZone, defaultFields: DEFAULT_FIELDS, now: this.#now });
  }

  /**
   * False while answers bypass the store (it is unreachable, failed within `storeRetryMs`, or an
   * invalidation could not be written): reads go to the Backend, marked source "shotgrid", and
   * nothing is filled. For /readyz and metrics.
   */
  get storeHealthy(): boolean {
    return this.store.healthy !== false && !this.#invalidationPending && Date.now() >= this.#storeDownUntil;
  }

  /** Why answers bypass the store now, for /readyz; undefined while the store is in use. */
  get storeBypassReason(): string | undefined {
    if (this.store.healthy === false) return "the cache store is unreachable";
    if (this.#invalidationPending) return "an event's invalidation could not be written to the cache store; it is bypassed until the event is applied again";
    if (Date.now() < this.#storeDownUntil) return "a cache store operation failed moments ago";
    return undefined;
  }

  get lastAppliedEventId(): number {
    return this.#lastApplied;
  }

  /**
   * Say where the event log stood when the cache began loading (the follower's starting cursor):
   * answers fetched from now on report at least this `asOfEventId`.
   */
  startFrom(eventId: number): void {
    if (eventId > this.#lastApplied) this.#lastApplied = eventId;
  }

  /** True once every preload type is loaded. */
  get ready(): boolean {
    return this.preloadTypes.every((t) => this.#readyAt.has(t));
  }

  /** Where preload stands, for readiness checks: `{ready:false, reason:"preload of Shot in progress (1000 records)"}`. */
  get preloadState(): { ready: boolean; reason: string } {
    if (this.ready) return { ready: true, reason: "preload done" };
    const p = this.#preloading;
    if (p) return { ready: false, reason: `preload of ${p.type} in progress (${p.records} records)` };
    return { ready: false, reason: "preload not started" };
  }

  /** Load every preload type whole, a page at a time, logging progress. Rejects on upstream failure. */
  async preload(signal?: AbortSignal): Promise<void> {
    for (const type of this.preloadTypes) if (!this.#knownIds.has(type)) this.#knownIds.set(type, new Set());
    const started = this.#now();
    for (const type of this.preloadTypes) await this.#preloadType(type, signal);
    this.#log.info({ types: this.preloadTypes, ms: this.#now() - started, ...this.store.stats() }, "cache preload done");
  }

  async getEntity(entityType: string, id: number, fields: string[], signal?: AbortSignal): Promise<CacheAnswer<Entity | null>> {
    checkEntityType(entityType);
    this.#noteTypeRead(entityType);
    checkId(id);
    const wanted = canonicalFields(fields);
    if (wanted.some((f) => f.includes("."))) return this.#getProjection(entityType, id, wanted, signal);
    const key = recordKey(entityType, id);
    const entry = await this.#storeGet(key);
    if (entry) {
      const record = entry.value as Entity | null;
      if (record !== null && !recordAnswers(record, wanted)) return this.#getProjection(entityType, id, wanted, signal);
      if (this.#fresh(entry)) {
        this.#metrics.cacheHit("entity");
        return { value: record && projectRecord(record, wanted), freshness: this.#cached(entry, false) };
      }
    } else if (this.#readyAt.has(entityType) && !this.#knownIds.get(entityType)?.has(id)) {
      this.#metrics.cacheHit("entity");
      const age = this.#now() - this.#readyAt.get(entityType)!;
      return { value: null, freshness: { source: "cache", ageMs: age, asOfEventId: this.#lastApplied, stale: false } };
    }
    // A record of a preloaded type is cheap (one by id, refreshed by events): only others are coalesced across instances.
    const load = () => this.#loadRecord(entityType, id);
    const shared = !this.preloadTypes.includes(entityType);
    const { promise, joined } = this.#flights.run(key, [key, "nm:any"], () => (shared ? this.#acrossInstances(key, load) : load()));
    this.#counted("entity", joined);
    let fetched: Fetched<unknown>;
    try {
      fetched = await abortable(promise, signal);
    } catch (err) {
      return this.#staleOr(err, key, "entity", (v) => (v === null ? null : projectRecord(v as Entity, wanted)));
    }
    const record = fetched.value as Entity | null;
    // A plain field that `*` does not return (or that does not exist): ask for it by name.
    if (record !== null && !recordAnswers(record, wanted)) return this.#getProjection(entityType, id, wanted, signal);
    return { value: record && projectRecord(record, wanted), freshness: this.#fetched(fetched) };
  }

  /**
   * A GetEntity hit decided without waiting, for the server's hit path: the held full record of
   * `entityType`/`id` as stored text (the same text while the record is unchanged: answers
   * encoded from it can be kept and reused), with the freshness `getEntity` would report.
   * Undefined whenever `getEntity` would do anything else that can be told without parsing
   * (miss, dotted fields, "does not exist", past max age, store bypassed or not in memory); the
   * caller then takes `getEntity`. `fields` must be validated and canonical (`canonicalFields`);
   * whether the record holds them all is `heldRecordAnswering`'s to say. Counts nothing: call
   * `countEntityHit` once the answer is actually given.
   */
  peekEntity(entityType: string, id: number, fields: readonly string[]): PeekedEntry | undefined {
    if (!(this.store instanceof MemoryStore) || !this.storeHealthy) return undefined;
    for (const f of fields) if (f.includes(".")) return undefined;
    return this.#peekedRecord(this.store.peekRaw(recordKey(entityType, id)));
  }

  /**
   * `peekEntity` over a store that serves its in-process copies only after a round trip
   * (`CacheStore.peekRawCurrent`: Redis's near cache). Undefined at once when there is no such
   * copy to wait for (the caller takes `getEntity`), else the same answer `peekEntity` would
   * give, decided once the copy is known current as of a moment after this call.
   */
  peekEntityCurrent(entityType: string, id: number, fields: readonly string[]): Promise<PeekedEntry | undefined> | undefined {
    if (!this.store.peekRawCurrent || !this.storeHealthy) return undefined;
    for (const f of fields) if (f.includes(".")) return undefined;
    // The store may have been bypassed meanwhile (a failed invalidation): then not a hit.
    return this.store.peekRawCurrent(recordKey(entityType, id))?.then((raw) => (this.storeHealthy ? this.#peekedRecord(raw) : undefined));
  }

  #peekedRecord(raw: Readonly<RawEntry> | undefined): PeekedEntry | undefined {
    if (!raw || raw.text === "null" || !this.#fresh(raw)) return undefined;
    return { text: raw.text, freshness: this.#cached(raw, false) };
  }

  /** The record `peekEntity` gave as `text`, or undefined when it lacks one of `fields` (`getEntity` would fetch them). */
  heldRecordAnswering(text: string, fields: readonly string[]): Entity | undefined {
    const record = JSON.parse(text) as Entity;
    return recordAnswers(record, fields) ? record : undefined;
  }

  /** What `getEntity` records for a hit: the metric, and the type as read (for reconcile). */
  countEntityHit(entityType: string): void {
    this.#noteTypeRead(entityType);
    this.#metrics.cacheHit("entity");
  }

  async query(query: EntityQuery, signal?: AbortSignal): Promise<CacheAnswer<Entity[]>> {
    return this.queryPrepared(this.prepareQuery(query), signal);
  }

  /**
   * `query` in two halves: the canonical form, key and dependencies of `query` (pure: the same
   * query always gives the same), made once and kept by a caller that sees the same query many
   * times (the server's hit path, which peeks it: `peekQuery`), then `queryPrepared`, which answers exactly
   * as `query` does. Throws `InvalidCacheRequestError` as `query` rejects with it.
   */
  prepareQuery(query: EntityQuery): PreparedQuery {
    const q = canonicalQuery(query);
    return { q, key: queryKey(q), deps: queryDependencies(q) };
  }

  /**
   * A Query hit decided without waiting, for the server's hit path: the stored answer of
   * `prepared` as text (the same text while the entry is unchanged: encodings made from it can be
   * kept), with the freshness `queryPrepared` would report. Undefined whenever `queryPrepared`
   * would do anything else (miss, volatile query, past max age, store bypassed or not in memory);
   * the caller then takes `queryPrepared`. Counts nothing: call `countQueryHit` once the answer is
   * actually given; `queryAnswerOf` gives the entities.
   */
  peekQuery(prepared: PreparedQuery): PeekedEntry | undefined {
    if (!(this.store instanceof MemoryStore) || !this.storeHealthy || prepared.deps.volatile) return undefined;
    const raw = this.store.peekRaw(prepared.key);
    if (!raw || !this.#fresh(raw)) return undefined;
    return { text: raw.text, freshness: this.#cached(raw, false) };
  }

  /**
   * For the server's hit path, when `peekQuery` found nothing: what `queryPrepared` would answer
   * from the store or the mirror, as text. `local`: the mirror's answer (the evaluation
   * `queryPrepared` would make, shared with identical concurrent ones), with its own freshness,
   * its text the store's when it was kept (encodings made from it are then reused), else made
   * here; otherwise a stored answer found meanwhile, a plain hit. Undefined whenever
   * `queryPrepared` would do anything else (the mirror declines, the store is not in memory, the
   * query is volatile): the caller then takes `queryPrepared`, which decides again. Counts
   * nothing: `countLocalAnswer` or `countQueryHit` once the answer is given.
   */
  async peekLocalAnswer(prepared: PreparedQuery): Promise<{ entry: PeekedEntry; local: boolean } | undefined> {
    if (!this.answersQueriesLocally || !this.storeHealthy || prepared.deps.volatile) return undefined;
    const held = this.peekQuery(prepared);
    if (held) return { entry: held, local: false };
    const verdict = await this.#answerLocally(prepared.q, prepared.key, prepared.deps);
    const answer = verdict.answer;
    if (!answer) return undefined;
    const kept = verdict.kept && this.store instanceof MemoryStore ? this.store.peekRaw(prepared.key) : undefined;
    const text = kept?.text ?? JSON.stringify(answer.value);
    return { entry: { text, freshness: answer.freshness }, local: true };
  }

  /** Whether Queries over the preloaded types may be answered from the mirror (off with a shared store, or by option). */
  get answersQueriesLocally(): boolean {
    return this.#answerLocallyOn && this.store instanceof MemoryStore;
  }

  /** What `queryPrepared` records for an answer from the mirror. */
  countLocalAnswer(entityType: string): void {
    this.#noteTypeRead(entityType);
    this.#metrics.queryAnswered?.("local", "none");
  }

  /** The entities of a Query answer `peekQuery` gave as `text` (a fresh copy on each call). */
  queryAnswerOf(text: string): Entity[] {
    return JSON.parse(text) as Entity[];
  }

  /** What `queryPrepared` records for a hit: the metric, and the type as read (for reconcile). */
  countQueryHit(entityType: string): void {
    this.#noteTypeRead(entityType);
    this.#metrics.cacheHit("query");
  }

  async queryPrepared(prepared: PreparedQuery, signal?: AbortSignal): Promise<CacheAnswer<Entity[]>> {
    const { q, key, deps } = prepared;
    this.#noteTypeRead(q.entityType);
    const entry = await this.#storeGet(key);
    if (entry && !deps.volatile && this.#fresh(entry)) {
      this.#metrics.cacheHit("query");
      return { value: entry.value as Entity[], freshness: this.#cached(entry, false) };
    }
    const verdict = await this.#answerLocally(q, key, deps);
    this.#metrics.queryAnswered?.(verdict.answer ? "local" : "upstream", verdict.reason);
    if (verdict.answer) return verdict.answer;
    const load = () => this.#loadQuery(q, key, deps.tags);
    // A volatile query is never answered from the store, so there is no fill to wait for.
    const { promise, joined } = this.#flights.run(key, [...deps.tags, "nm:any"], () => (deps.volatile ? load() : this.#acrossInstances(key, load)));
    this.#counted("query", joined);
    try {
      const fetched = await abortable(promise, signal);
      return { value: fetched.value as Entity[], freshness: this.#fetched(fetched) };
    } catch (err) {
      return this.#staleOr(err, key, "query", (v) => v as Entity[]);
    }
  }

  /**
   * ShotGrid summaries (`Backend.summarize`), cached like a query of the same type and filters: one
   * entry under a canonical key, dropped by the same events (the type's records in the filters'
   * projects, types read through dotted paths, renamed links shown in groups). Identical
   * concurrent misses make one upstream call.
   */
  async summarize(entityType: string, request: SummaryRequest, signal?: AbortSignal): Promise<CacheAnswer<SummaryAnswer>> {
    const summarize = this.backend.summarize?.bind(this.backend);
    if (!summarize) throw new InvalidCacheRequestError("summarize", `${this.backend.description} does not offer summaries`);
    const q = canonicalQuery({
      entityType,
      filters: request.filters,
      fields: [...request.summaryFields.map((s) => s.field), ...(request.grouping ?? []).map((g) => g.field)],
      order: [],
      includeArchivedProjects: request.includeArchivedProjects,
      retired: false,
    });
    const grouping = (request.grouping ?? []).map((g) => ({ field: g.field, type: g.type, direction: g.direction ?? "asc" }));
    const summaryFields = request.summaryFields.map((s) => ({ field: s.field, type: s.type }));
    const key = `su:${canonicalJson({ q, summaryFields, grouping })}`;
    const deps = queryDependencies(q);
    this.#noteTypeRead(entityType);
    const entry = await this.#storeGet(key);
    if (entry && !deps.volatile && this.#fresh(entry)) {
      this.#metrics.cacheHit("query");
      return { value: entry.value as SummaryAnswer, freshness: this.#cached(entry, false) };
    }
    const load = async (): Promise<Fetched<SummaryAnswer>> => {
      const seq = await this.#storeSeq();
      const fetchedAt = this.#now();
      const asOf = this.#lastApplied;
      const options = { filters: q.filters, summaryFields, grouping, includeArchivedProjects: q.includeArchivedProjects };
      const value = await this.#upstream("summarize", () => summarize(entityType, options));
      if (seq !== undefined && !deps.volatile) {
        const links = [...collectLinks(value.groups)].map((l) => `ln:${l}`);
        await this.#storeSet(key, { value, seq, fetchedAt, asOfEventId: asOf, tags: [...deps.tags, ...links] });
      }
      this.#reportSize();
      return { value, fetchedAt, asOfEventId: asOf };
    };
    const { promise, joined } = this.#flights.run(key, [...deps.tags, "nm:any"], () => (deps.volatile ? load() : this.#acrossInstances(key, load)));
    this.#counted("query", joined);
    try {
      const fetched = await abortable(promise, signal);
      return { value: fetched.value as SummaryAnswer, freshness: this.#fetched(fetched) };
    } catch (err) {
      return this.#staleOr(err, key, "query", (v) => v as SummaryAnswer);
    }
  }

  /**
   * The mirror's answer to a query over preloaded types, or why it cannot answer exactly (see
   * src/local-query). Identical concurrent calls share one evaluation.
   */
  #answerLocally(q: CanonicalQuery, key: string, deps: PreparedQuery["deps"]): Promise<LocalVerdict> {
    if (!this.#answerLocallyOn) return DISABLED;
    return this.#localFlights.run(key, [...deps.tags, "nm:any"], () => this.#answerAndKeep(q, key, deps)).promise;
  }

  /**
   * The mirror's answer, kept in the store like an upstream answer (same tags, so the same events
   * drop it), so that asking again is a plain hit (the server's hit path answers those without
   * evaluating anything). The generation is read before the answer is computed: an invalidation
   * in between makes the store refuse it, never keep a state older than an applied event.
   */
  async #answerAndKeep(q: CanonicalQuery, key: string, deps: PreparedQuery["deps"]): Promise<LocalVerdict> {
    const seq = deps.volatile ? undefined : await this.#storeSeq();
    // A batch bumps the store's generation before it updates the mirror: an answer computed in
    // between reflects the old state under the new generation, so it is given, never kept.
    const keep = seq !== undefined && this.#batchesInFlight === 0;
    const answer = this.localQueries.answer(q);
    if (!answer.ok) {
      if (answer.code === "stamps_unknown") this.#refreshStamps();
      return { reason: answer.code };
    }
    const fetchedAt = this.#now();
    const asOf = this.#lastApplied;
    const tags = keep ? answerTags(q, answer.entities, deps.tags) : undefined;
    let kept = false;
    if (seq !== undefined && tags) {
      kept = await this.#storeSet(key, { value: answer.entities, seq, fetchedAt, asOfEventId: asOf, tags });
      this.#reportSize();
    }
    return { reason: "none", kept, answer: { value: answer.entities, freshness: { source: "cache", ageMs: 0, asOfEventId: asOf, stale: false } } };
  }

  /** New callers no longer join fetches or local evaluations reading any of `tags` (all of them with `all`). */
  #detach(tags: readonly string[], all = false): void {
    this.#flights.detach(tags, all);
    this.#localFlights.detach(tags, all);
  }

  /** Apply event log rows: invalidate exactly what they changed, refetch changed preloaded records. */
  applyEvents(events: EventLogEntry[]): Promise<void> {
    // One batch at a time, in order, even if a caller does not wait for the previous one.
    this.#batchesInFlight++;
    const run = this.#applying.then(() => this.#apply(events)).finally(() => this.#batchesInFlight--);
    this.#applying = run.catch(() => {});
    return run;
  }

  /**
   * Apply rows as hints (webhook deliveries, reconcile findings): the same invalidation as
   * `applyEvents`, but they do not count as applied — `lastAppliedEventId` (the `asOfEventId`
   * answers report) moves only with the event log, which stays the source of truth.
   */
  applyHints(events: EventLogEntry[]): Promise<void> {
    // Id 0 is below every real event id: invalidated, never counted as applied.
    return this.applyEvents(events.map((e) => ({ ...e, id: 0 })));
  }

  /** Entity types the cache may hold answers for: the preloaded ones and every type read since start. */
  get cachedTypes(): string[] {
    return [...new Set([...this.preloadTypes, ...this.#typesRead])];
  }

  /** The full record held for `type`/`id` (null: held as "does not exist"; undefined: not held). For reconcile. */
  async heldRecord(type: string, id: number): Promise<Entity | null | undefined> {
    const entry = await this.#storeGet(recordKey(type, id));
    return entry ? (entry.value as Entity | null) : undefined;
  }

  /**
   * For a preloaded type loaded whole (not since dropped by a flush or an event naming no
   * record): every id that may exist, ascending. Undefined otherwise. For snapshots.
   */
  idsHeldWhole(type: string): number[] | undefined {
    const ids = this.#knownIds.get(type);
    return ids && this.#readyAt.has(type) ? [...ids].sort((a, b) => a - b) : undefined;
  }

  /** For a preloaded type: whether the cache knows `id` may exist; undefined for other types. */
  knowsId(type: string, id: number): boolean | undefined {
    return this.#knownIds.get(type)?.has(id);
  }

  /**
   * Drop every answer about `type` (its schema changed: a field was deleted or changed). A
   * preloaded type is loaded again in the background.
   */
  async invalidateType(type: string): Promise<void> {
    const tags = [`ty:${type}`, `qt:${type}:all`, `dt:${type}`, `dt:${type}:life`];
    this.#detach(tags);
    this.localQueries.mirror.dropType(type);
    await this.#invalidating("bump", () => this.store.bump(tags));
    if (this.#readyAt.has(type)) this.#track(this.#preloadType(type));
    this.#reportSize();
  }

  /**
   * Forget everything (the event cursor can no longer be trusted). Preloaded types stop being
   * ready until `preload()` runs again.
   */
  async invalidateAll(): Promise<void> {
    await this.#invalidating("clear", () => this.store.clear());
    // Everything is gone, including whatever a failed invalidation should have dropped.
    this.#invalidationPending = false;
    this.#pendingUntilEventId = 0;
    this.#detach([], true);
    this.#readyAt.clear();
    this.#knownIds.clear();
    this.localQueries.mirror.clear();
    this.#reportSize();
  }

  /** Resolves when background refetches (after events) have settled; for tests and shutdown. */
  async whenIdle(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
    await this.#applying;
  }

  async #apply(events: EventLogEntry[]): Promise<void> {
    const refresh = new Map<string, Set<number>>();
    const addRefresh = (type: string, id: number) => {
      let ids = refresh.get(type);
      if (!ids) refresh.set(type, (ids = new Set()));
      ids.add(id);
    };
    // Records updated from their event's meta: exact for every field but their write stamps
    // (updated_at, updated_by), which events do not carry. They are fetched again in the
    // background, batched as any refetch, and the batch is published without waiting for that:
    // until it lands, only Queries reading the stamps go upstream (stamps_unknown), and a
    // GetEntity of such a record joins its refetch.
    const restamps = new Map<string, Set<number>>();
    const restamp = (type: string, id: number) => {
      let ids = restamps.get(type);
      if (!ids) restamps.set(type, (ids = new Set()));
      ids.add(id);
    };
    for (const event of [...events].sort((a, b) => a.id - b.id)) {
      const fx = eventEffects(event);
      if (fx) {
        // Detached first: even if the store fails below, no new caller joins a fetch from before the event.
        this.#detach(fx.tags);
        await this.#invalidating("bump", () => this.store.bump(fx.tags), event.id);
        const { rename, dropLinking } = fx;
        if (rename) await this.#invalidating("patchLinkName", () => this.store.patchLinkName(rename.link, rename.name), event.id);
        if (dropLinking) await this.#invalidating("patchLinkName", () => this.store.patchLinkName(dropLinking, undefined), event.id);
        const known = this.#knownIds.get(fx.entityType);
        const mirror = this.localQueries.mirror;
        if (fx.entityId === undefined) {
          // Which record changed is unknown: the type's id set can no longer answer "does not exist".
          this.#readyAt.delete(fx.entityType);
          mirror.dropType(fx.entityType);
          this.#log.warn({ eventId: event.id, eventType: event.event_type }, "cache: event names no record; dropped its whole type");
        } else if (known) {
          if (fx.kind === "Retirement") {
            known.delete(fx.entityId);
            refresh.get(fx.entityType)?.delete(fx.entityId);
            mirror.retire(fx.entityType, fx.entityId);
          } else {
            known.add(fx.entityId);
            if (this.#applyFromMeta(event, fx)) {
              this.#metrics.mirrorUpdated?.("event", 1);
              restamp(fx.entityType, fx.entityId);
            } else {
              addRefresh(fx.entityType, fx.entityId);
              mirror.markChanged(fx.entityType, fx.entityId);
            }
          }
        }
        for (const r of fx.related) {
          if (!this.#knownIds.get(r.type)?.has(r.id)) continue;
          addRefresh(r.type, r.id);
          mirror.markChanged(r.type, r.id);
        }
        // Mirrored records showing the entity's name: patched from the event, or refetched when
        // the new name is unknown or the entity was retired (its links are no longer shown).
        if (fx.entityId !== undefined && (rename || dropLinking)) mirror.deferRelink(fx.entityType, fx.entityId, dropLinking ? undefined : rename!.name);
        // (fx.entityId undefined: nothing to refetch; records come back on demand.)
        this.#log.debug({ eventId: event.id, eventType: event.event_type, entityId: fx.entityId }, "cache applied event");
      }
      if (event.id > this.#lastApplied) this.#lastApplied = event.id;
    }
    // Every invalidation of this batch reached the store (a failed batch is retried by the follower).
    const newest = events.reduce((max, e) => Math.max(max, e.id), 0);
    if (this.#invalidationPending && newest > 0 && newest >= this.#pendingUntilEventId) {
      this.#invalidationPending = false;
      this.#pendingUntilEventId = 0;
      this.#log.info({ lastAppliedEventId: this.#lastApplied }, "cache store invalidations caught up; reading from the store again");
    }
    this.#reportSize();
    // One pass over the mirror for every name change of the batch (a bulk retirement is one pass, not one per event).
    for (const r of this.localQueries.mirror.relink()) addRefresh(r.type, r.id);
    // Mirrored records a failed refetch left behind are tried again with this batch.
    for (const [type, ids] of this.localQueries.mirror.pendingIds()) for (const id of ids) addRefresh(type, id);
    const refreshing = [...refresh].map(([type, ids]) => this.#refreshRecords(type, [...ids]));
    for (const work of refreshing) this.#track(work);
    for (const [type, ids] of restamps) {
      const left = [...ids].filter((id) => !refresh.get(type)?.has(id) && this.localQueries.mirror.isUnstamped(type, id));
      if (left.length > 0) this.#track(this.#refreshRecords(type, left));
    }
    // Before the batch counts as applied (and is published to streams), the mirror holds what it changed.
    await Promise.allSettled(refreshing);
  }

  /**
   * Bring the mirrored record a Change event names up to date from the event's own meta, when
   * that is exact (Mirror.applyChange says when); false: it must be refetched. Only events of the
   * log (hints have no place in its order), about the record the event names (a back-reference's
   * meta describes the other side), of a field whose change moves no other field but the stamps.
   */
  #applyFromMeta(event: EventLogEntry, fx: NonNullable<ReturnType<typeof eventEffects>>): boolean {
    const meta = event.meta;
    if (event.id <= 0 || fx.kind !== "Change" || !fx.attribute || fx.entityId === undefined || !meta) return false;
    if (event.event_type !== `Shotgun_${fx.entityType}_Change` || meta["entity_type"] !== fx.entityType || meta["entity_id"] !== fx.entityId) return false;
    if (meta["attribute_name"] !== fx.attribute || changesOtherFields(fx.entityType, fx.attribute)) return false;
    const createdAtMs = Date.parse(event.created_at);
    if (!Number.isFinite(createdAtMs)) return false;
    return this.localQueries.mirror.applyChange(fx.entityType, fx.entityId, { id: event.id, createdAtMs, attribute: fx.attribute, meta });
  }

  /**
   * Fetch again the records updated from events, whose write stamps are not known: asked for when
   * a query needed them (it went upstream meanwhile). One round at a time.
   */
  #refreshStamps(): void {
    if (this.#stampRefresh) return;
    const work = (async () => {
      for (const [type, ids] of this.localQueries.mirror.unstampedIds()) await this.#refreshRecords(type, ids);
    })();
    this.#stampRefresh = work.finally(() => {
      this.#stampRefresh = undefined;
    });
    this.#track(this.#stampRefresh);
  }

  async #preloadType(type: string, signal?: AbortSignal): Promise<void> {
    const known = this.#knownIds.get(type) ?? new Set<number>();
    this.#knownIds.set(type, known);
    const pages = this.backend
      .searchPages(type, { fields: [], includeArchivedProjects: true, pageSize: this.#preloadPageSize, signal })
      [Symbol.asyncIterator]();
    let records = 0;
    let stored = 0;
    let page = 0;
    this.#preloading = { type, records };
    const mirror = this.localQueries.mirror;
    const pass = mirror.beginLoad(type, await this.#mirrorSchema(type, signal));
    for (;;) {
      // Taken before each page is asked for: a record changed meanwhile is not stored from it.
      const seq = await this.#storeSeq();
      const fetchedAt = this.#now();
      const asOf = this.#lastApplied;
      const generation = mirror.generation();
      const result = await this.#upstream("searchPages", () => pages.next());
      if (result.done) break;
      page++;
      for (const record of result.value) {
        mirror.put(record, generation);
        known.add(record.id);
        records++;
        if (await this.#fillRecord(type, record.id, record, seq, fetchedAt, asOf)) stored++;
      }
      this.#preloading = { type, records };
      this.#log.info({ entityType: type, page, records }, "cache preload progress");
    }
    this.#preloading = undefined;
    // A flush (invalidateAll) during this preload replaced the known-id set: what this pass saw is
    // not the whole type any more, so it must not mark the type ready (ids would look missing).
    if (this.#knownIds.get(type) !== known) {
      this.#log.info({ entityType: type }, "cache preload of type superseded by a flush");
      return;
    }
    this.#readyAt.set(type, this.#now());
    mirror.finishLoad(type, pass);
    this.#reportSize();
    if (stored < records) {
      this.#log.warn(
        { entityType: type, records, stored, ...this.store.stats() },
        "cache preload: not every record was kept (raise the cache size, or events arrived during preload)",
      );
    }
    this.#log.info({ entityType: type, records, pages: page }, "cache preload of type done");
  }

  /** The schema the mirror reads `type` with; undefined (the type is then not answered locally) when the site does not give it. */
  async #mirrorSchema(type: string, signal?: AbortSignal): Promise<EntitySchema | undefined> {
    try {
      // The registry given as `schemaOf` counts its own site calls.
      if (this.#schemaOf) return await this.#schemaOf(type, signal);
      return await this.#upstream("schemaFields", () => this.backend.schemaFields(type, signal));
    } catch (err) {
      if (signal?.aborted) throw err;
      this.#log.warn({ entityType: type, err: String(err) }, "cache: no schema for a preloaded type; its queries go to ShotGrid");
      return undefined;
    }
  }

  async #loadRecord(type: string, id: number): Promise<Fetched<Entity | null>> {
    const seq = await this.#storeSeq();
    const fetchedAt = this.#now();
    const asOf = this.#lastApplied;
    const record = await this.#upstream("getEntity", () => this.backend.getEntity(type, id, { fields: [], includeArchivedProjects: true }));
    await this.#fillRecord(type, id, record, seq, fetchedAt, asOf);
    return { value: record, fetchedAt, asOfEventId: asOf };
  }

  /** Store a full record (or "does not exist") unless it was invalidated since `seq`. */
  async #fillRecord(type: string, id: number, record: Entity | null, seq: number | undefined, fetchedAt: number, asOf: number): Promise<boolean> {
    if (seq === undefined) return false;
    const key = recordKey(type, id);
    const links = record ? [...collectLinks(record.fields)] : [];
    const entry: StoredEntry = { value: record, seq, fetchedAt, asOfEventId: asOf, tags: [key, `ty:${type}`], links };
    // Links are guards, not tags: a rename patches stored records instead of dropping them, but a
    // record fetched before the rename must not be stored with the old name.
    const ok = await this.#storeSet(
      key,
      entry,
      links.map((l) => `ln:${l}`),
    );
    if (ok && record && this.#knownIds.has(type)) this.#knownIds.get(type)!.add(id);
    return ok;
  }

  async #getProjection(type: string, id: number, fields: string[], signal?: AbortSignal): Promise<CacheAnswer<Entity | null>> {
    const key = projectionKey(type, id, fields);
    const deps = projectionDependencies(type, id, fields);
    const entry = await this.#storeGet(key);
    if (entry && this.#fresh(entry)) {
      this.#metrics.cacheHit("entity");
      return { value: entry.value as Entity | null, freshness: this.#cached(entry, false) };
    }
    const { promise, joined } = this.#flights.run(key, [...deps, "nm:any"], async () => {
      const seq = await this.#storeSeq();
      const fetchedAt = this.#now();
      const asOf = this.#lastApplied;
      const record = await this.#upstream("getEntity", () => this.backend.getEntity(type, id, { fields, includeArchivedProjects: true }));
      const links = record ? [...collectLinks(record.fields)].map((l) => `ln:${l}`) : [];
      if (seq !== undefined) await this.#storeSet(key, { value: record, seq, fetchedAt, asOfEventId: asOf, tags: [...deps, ...links] });
      this.#reportSize();
      return { value: record, fetchedAt, asOfEventId: asOf };
    });
    this.#counted("entity", joined);
    try {
      const fetched = await abortable(promise, signal);
      return { value: fetched.value as Entity | null, freshness: this.#fetched(fetched) };
    } catch (err) {
      return this.#staleOr(err, key, "entity", (v) => v as Entity | null);
    }
  }

  async #loadQuery(q: CanonicalQuery, key: string, tags: string[]): Promise<Fetched<Entity[]>> {
    const seq = await this.#storeSeq();
    const fetchedAt = this.#now();
    const asOf = this.#lastApplied;
    // Sorting by a link field sorts by the linked names: fetch such fields too, to know which
    // links the order depends on, then take them out again.
    const extra = new Set<string>();
    if (q.fields.length > 0) {
      for (const s of q.order) if (!q.fields.includes(s.field) && typesOnPath(s.field).length === 0) extra.add(s.field);
    }
    const options: SearchOptions = {
      filters: q.filters,
      fields: q.fields.length === 0 ? [] : [...q.fields, ...extra],
      sort: q.order,
      returnOnly: q.retired ? "retired" : "active",
      includeArchivedProjects: q.includeArchivedProjects,
    };
    if (q.limit > 0) options.limit = q.limit;
    if (q.limit > 0 && q.page > 1) Object.assign(options, { pageSize: q.limit, page: q.page });
    const found = await this.#upstream("search", () => this.backend.search(q.entityType, options));
    const links = new Set<string>();
    for (const e of found) collectLinks(e.fields, links);
    const value = found.map((e) => (q.fields.length === 0 ? projectRecord(e, []) : withoutFields(e, extra)));
    if (seq !== undefined) {
      const stored = [...tags, ...[...links].map((l) => `ln:${l}`)];
      // Read on what was fetched, the order's fields included: a page ordered by link names.
      if (pageDependsOnAnyName(q, found)) stored.push("nm:any");
      await this.#storeSet(key, { value, seq, fetchedAt, asOfEventId: asOf, tags: stored });
    }
    this.#reportSize();
    return { value, fetchedAt, asOfEventId: asOf };
  }

  /** Refetch changed preloaded records a batch at a time; each id is a flight GetEntity can join. */
  async #refreshRecords(type: string, ids: number[]): Promise<void> {
    this.#metrics.mirrorUpdated?.("refetch", ids.length);
    for (let i = 0; i < ids.length; i += this.#refreshBatchSize) {
      const chunk = ids.slice(i, i + this.#refreshBatchSize);
      const seq = await this.#storeSeq();
      const fetchedAt = this.#now();
      const asOf = this.#lastApplied;
      const generation = this.localQueries.mirror.generation();
      const batch = this.#upstream("search", () =>
        this.backend.search(type, { filters: [["id", "in", chunk]], fields: [], includeArchivedProjects: true }),
      ).then((list) => {
        const found = new Map(list.map((e) => [e.id, e]));
        for (const id of chunk) this.localQueries.mirror.settle(type, id, found.get(id) ?? null, generation);
        return found;
      });
      const flights = chunk.map((id) => {
        const key = recordKey(type, id);
        return this.#flights.run(key, [key, "nm:any"], async () => {
          const record = (await batch).get(id) ?? null;
          await this.#fillRecord(type, id, record, seq, fetchedAt, asOf);
          return { value: record, fetchedAt, asOfEventId: asOf };
        }).promise;
      });
      try {
        await batch;
        await Promise.allSettled(flights);
      } catch (err) {
        this.#log.warn({ entityType: type, ids: chunk.length, err: String(err) }, "cache refresh after events failed; records will be fetched on demand");
      }
    }
    this.#reportSize();
  }

  /** Through the cross-instance coalescer, when there is one and the store is in use. */
  async #acrossInstances(key: string, load: () => Promise<Fetched<unknown>>): Promise<Fetched<unknown>> {
    if (!this.#coalescer || !this.storeHealthy) return load();
    const { value, waited } = await this.#coalescer.coalesce(key, load, () => this.#filled(key));
    if (waited) this.#metrics.coalescedWait();
    return value;
  }

  /** Another instance's fill of `key`, if there is a fresh one; rejects when the store must not be used. */
  async #filled(key: string): Promise<Fetched<unknown> | undefined> {
    if (!this.storeHealthy) throw new StoreUnavailableError("get", "the store is being bypassed");
    const entry = await this.#storeGet(key);
    if (!this.storeHealthy) throw new StoreUnavailableError("get", "the store is being bypassed");
    if (!entry || !this.#fresh(entry)) return undefined;
    return { value: entry.value, fetchedAt: entry.fetchedAt, asOfEventId: entry.asOfEventId, source: "cache" };
  }

  async #staleOr<T>(err: unknown, key: string, kind: CacheReadKind, shape: (value: unknown) => T): Promise<CacheAnswer<T>> {
    if (!isOutage(err)) throw err;
    // Only entries no event has invalidated are still in the store; those past max age may be served.
    const entry = await this.#storeGet(key);
    if (!entry) throw err;
    this.#metrics.cacheStaleServed?.(kind);
    return { value: shape(entry.value), freshness: this.#cached(entry, true) };
  }

  /** A stored entry, or undefined when the store is skipped or fails (the read goes upstream). */
  async #storeGet(key: string): Promise<StoredEntry | undefined> {
    if (!this.storeHealthy) {
      // Counted like a failure: a read that could not use the store because it is unavailable.
      this.#metrics.storeUnavailable?.("get");
      return undefined;
    }
    try {
      return await this.store.get(key);
    } catch (err) {
      this.#storeFailed("get", err);
      return undefined;
    }
  }

  /** The store's clock before a fetch, or undefined when the store is skipped (then nothing is filled). */
  async #storeSeq(): Promise<number | undefined> {
    if (!this.storeHealthy) return undefined;
    try {
      return await this.store.currentSeq();
    } catch (err) {
      this.#storeFailed("currentSeq", err);
      return undefined;
    }
  }

  async #storeSet(key: string, entry: StoredEntry, guardTags?: readonly string[]): Promise<boolean> {
    try {
      return await this.store.setIfFresh(key, entry, guardTags);
    } catch (err) {
      this.#storeFailed("setIfFresh", err);
      return false;
    }
  }

  /** An invalidation must reach the store: on failure reads skip the store until one succeeds, and the error propagates. */
  async #invalidating<T>(operation: string, call: () => Promise<T>, failedEventId = this.#lastApplied + 1): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof StoreUnavailableError) {
        this.#invalidationPending = true;
        this.#pendingUntilEventId = Math.max(this.#pendingUntilEventId, operation === "clear" ? Infinity : failedEventId);
      }
      this.#storeFailed(operation, err);
      throw err;
    }
  }

  /** Anything but a store outage is a bug and propagates; an outage is counted, logged on change, and skipped. */
  #storeFailed(operation: string, err: unknown): void {
    if (!(err instanceof StoreUnavailableError)) throw err;
    const wasHealthy = Date.now() >= this.#storeDownUntil;
    this.#storeDownUntil = Date.now() + this.#storeRetryMs;
    this.#metrics.storeUnavailable?.(operation);
    if (wasHealthy) this.#log.warn({ operation, err: err.message }, "cache store unavailable; answering from the Backend");
  }

  async #upstream<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await call();
      this.#metrics.upstreamCall(operation, "ok", (performance.now() - started) / 1000);
      return result;
    } catch (err) {
      const outcome = err instanceof BackendError && err.code === "SG_TIMEOUT" ? "timeout" : "error";
      this.#metrics.upstreamCall(operation, outcome, (performance.now() - started) / 1000);
      throw err;
    }
  }

  /** Remember `entityType` as read (for reconcile), up to a cap kept as a safety net. */
  #noteTypeRead(entityType: string): void {
    if (this.#typesRead.size < 10_000) this.#typesRead.add(entityType);
  }

  #fresh(entry: Pick<StoredEntry, "fetchedAt">): boolean {
    return this.#now() - entry.fetchedAt <= this.#maxAgeMs;
  }

  #cached(entry: Pick<StoredEntry, "fetchedAt" | "asOfEventId">, stale: boolean): Freshness {
    return { source: "cache", ageMs: Math.max(0, this.#now() - entry.fetchedAt), asOfEventId: entry.asOfEventId, stale };
  }

  #fetched(f: Fetched<unknown>): Freshness {
    return { source: f.source ?? "shotgrid", ageMs: Math.max(0, this.#now() - f.fetchedAt), asOfEventId: f.asOfEventId, stale: false };
  }

  #counted(kind: CacheReadKind, joined: boolean): void {
    this.#metrics.cacheMiss(kind);
    if (joined) this.#metrics.coalescedWait();
  }

  #reportSize(): void {
    this.#metrics.setCacheSize(this.store.stats());
  }

  #track(work: Promise<void>): void {
    const p = work.catch((err: unknown) => this.#log.warn({ err: String(err) }, "cache background work failed"));
    this.#background.add(p);
    void p.finally(() => this.#background.delete(p));
  }
}

/** The embedded default: a read-through cache over a bounded in-memory LRU store. */
export class MemoryEntityCache extends ReadThroughCache {
  constructor(options: Omit<ReadThroughCacheOptions, "store">) {
    super({ ...options, store: undefined });
  }
}

/**
 * The tags a local Query answer is kept under: the query's own, plus every link it shows (a rename
 * drops it), or undefined when it must not be kept. The order is part of the answer: an order on
 * a field the answer does not carry (or through a link) could change with a record the tags do
 * not name, so such answers are not kept; with a page, an order on a link field changes with any
 * rename, even of a link not on the page (`nm:any`).
 */
function answerTags(q: CanonicalQuery, entities: readonly Entity[], queryTags: readonly string[]): string[] | undefined {
  const links = new Set<string>();
  for (const e of entities) collectLinks(e.fields, links);
  const tags = [...queryTags, ...[...links].map((l) => `ln:${l}`)];
  for (const s of q.order) {
    if (s.field === "id") continue;
    if (s.field.includes(".") || !entities.every((e) => Object.hasOwn(e.fields, s.field))) return undefined;
  }
  // The same rule as upstream answers (dependencies.ts).
  if (pageDependsOnAnyName(q, entities)) tags.push("nm:any");
  return tags;
}
