/**
 * Reconcile: catch changes that made no event (scripts that turn events off, direct database
 * fixes). Every `intervalMs` it asks ShotGrid for the records of each cached type whose
 * `updated_at` is newer than the previous run's start (minus `overlapMs`, for clock skew between
 * this host and the site), lets the event follower catch up, then compares each with the cached
 * copy. What differs is invalidated — through the same path as events, as hints built from the
 * difference (one Change per differing field, so renamed display names and moved links are
 * handled like real events) — and counted: findings are a sign of event-less writers.
 *
 * It publishes nothing to WatchChanges. A change stream is keyed by event ids (resume, replay,
 * "nothing missing, nothing doubled"); a change with no event id would either break that contract
 * or need a fake id. Streams see event-logged changes only, like every other event-log consumer;
 * findings are logged and counted so operators can find the writer that disables events.
 *
 * Limits, by design: records not held by the cache are not compared (the next read fetches them
 * fresh), retirements without an event are not seen (retired records are not returned), and a
 * type with more than `maxRecordsPerType` changed records is dropped from the cache whole.
 */
import { NotFoundError, RequestRejectedError } from "../shotgrid/errors.ts";
import type { Backend, Entity, EventLogEntry } from "../shotgrid/types.ts";
import { errorMessage, type Logger, SILENT_LOGGER } from "../logging/index.ts";

/** What the reconciler needs of the cache; `ReadThroughCache` satisfies it. */
export interface ReconcileCache {
  /** Types the cache may hold answers for. */
  readonly cachedTypes: readonly string[];
  /** The full record the cache holds (null: held as "does not exist"; undefined: not held). */
  heldRecord(entityType: string, id: number): Promise<Entity | null | undefined>;
  /** For preloaded types: whether the cache knows the id exists; undefined for other types. */
  knowsId(entityType: string, id: number): boolean | undefined;
  /** Invalidate as events would, without counting them as applied. */
  applyHints(events: EventLogEntry[]): Promise<void>;
  /** Drop every answer about a type (too many changes to compare one by one). */
  invalidateType(entityType: string): Promise<void>;
  /** Background refetches have settled. */
  whenIdle(): Promise<void>;
}

export interface ReconcileMetrics {
  reconcileRun(outcome: "ok" | "error"): void;
  reconcileFindings(count: number): void;
}

/** One run's result. */
export interface ReconcileReport {
  /** ISO time the run started (its `updated_at` window ends here). */
  startedAt: string;
  finishedAt: string;
  /** Records compared with the cached copy. */
  checked: number;
  /** Records that differed from the cache with no event to say so. */
  findings: number;
  /** Up to 20 of them, for logs and /readyz. */
  examples: Array<{ entityType: string; id: number; fields: string[] }>;
  /** Set when the run failed (the next run covers the same window again). */
  error?: string;
}

export interface ReconcilerOptions {
  backend: Pick<Backend, "search">;
  cache: ReconcileCache;
  /** Time between runs, in ms; the first run comes one interval after `start()`. */
  intervalMs: number;
  /** Records changed since this time (epoch ms) are checked by the first run. Default: construction time. */
  since?: number;
  /** Reach this far before the previous run's start, in ms (clock skew between host and site). Default 60 000. */
  overlapMs?: number;
  /** More changed records than this in one type: drop the type instead of comparing. Default 10 000. */
  maxRecordsPerType?: number;
  /** Called after fetching, before comparing: lets the event follower apply what it has (e.g. `pollNow`). */
  settle?: () => Promise<unknown>;
  metrics?: Partial<ReconcileMetrics>;
  logger?: Logger;
  /** Epoch ms. Default `Date.now`. */
  now?: () => number;
}

export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #now: () => number;
  readonly #log: Logger;
  #since: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<ReconcileReport> | undefined;
  #last: ReconcileReport | undefined;
  #stopped = true;

  constructor(options: ReconcilerOptions) {
    if (!(options.intervalMs > 0)) throw new RangeError(`intervalMs must be > 0, got ${options.intervalMs}`);
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#log = options.logger ?? SILENT_LOGGER;
    this.#since = options.since ?? this.#now();
  }

  /** The last finished run, for /readyz and tests. */
  get lastRun(): ReconcileReport | undefined {
    return this.#last;
  }

  /** Run every `intervalMs` until `stop()`. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule();
  }

  /** Stop the timer and wait for a run in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running?.catch(() => undefined);
  }

  /** Run now (or join the run in progress). Never rejects: failures are in the report. */
  runNow(): Promise<ReconcileReport> {
    this.#running ??= this.#run().finally(() => (this.#running = undefined));
    return this.#running;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.runNow().finally(() => this.#schedule());
    }, this.#o.intervalMs);
    this.#timer.unref();
  }

  async #run(): Promise<ReconcileReport> {
    const startedMs = this.#now();
    const report: ReconcileReport = { startedAt: iso(startedMs), finishedAt: "", checked: 0, findings: 0, examples: [] };
    const after = iso(this.#since - (this.#o.overlapMs ?? 60_000));
    const max = this.#o.maxRecordsPerType ?? 10_000;
    try {
      const changed = new Map<string, Entity[]>();
      for (const type of this.#o.cache.cachedTypes) {
        const records = await this.#changedSince(type, after, max + 1).catch((err: unknown) => {
          // A type without `updated_at`, or gone from the site: nothing to compare; others go on.
          if (!(err instanceof RequestRejectedError || err instanceof NotFoundError)) throw err;
          this.#log.info({ entityType: type, err: err.message }, "reconcile: type skipped");
          return [];
        });
        if (records.length > max) {
          this.#log.warn(
            { entityType: type, changedSince: after, atLeast: records.length },
            "reconcile: too many changed records to compare; dropping the type from the cache",
          );
          await this.#o.cache.invalidateType(type);
        } else if (records.length > 0) changed.set(type, records);
      }
      // Let the follower apply events logged for these changes first: only what is still different
      // afterwards was changed without an event.
      await this.#o.settle?.().catch(() => undefined);
      await this.#o.cache.whenIdle();
      const hints: EventLogEntry[] = [];
      for (const [type, records] of changed) {
        for (const fresh of records) {
          const found = await this.#compare(type, fresh, hints);
          if (found === undefined) continue;
          report.checked++;
          if (found.length === 0) continue;
          report.findings++;
          if (report.examples.length < 20) report.examples.push({ entityType: type, id: fresh.id, fields: found });
        }
      }
      if (hints.length > 0) await this.#o.cache.applyHints(hints);
      this.#since = startedMs;
      this.#o.metrics?.reconcileRun?.("ok");
      if (report.findings > 0) {
        this.#o.metrics?.reconcileFindings?.(report.findings);
        this.#log.warn(
          { findings: report.findings, checked: report.checked, examples: report.examples },
          "reconcile: records changed without an event (a script with events turned off?); invalidated",
        );
      } else {
        this.#log.info({ checked: report.checked }, "reconcile: cache matches ShotGrid");
      }
    } catch (err) {
      report.error = errorMessage(err);
      this.#o.metrics?.reconcileRun?.("error");
      this.#log.warn({ err: report.error }, "reconcile failed; the next run covers the same window");
    }
    report.finishedAt = iso(this.#now());
    this.#last = report;
    return report;
  }

  async #changedSince(type: string, after: string, limit: number): Promise<Entity[]> {
    return this.#o.backend.search(type, {
      filters: [["updated_at", "greater_than", after]],
      fields: [],
      includeArchivedProjects: true,
      sort: [{ field: "id", direction: "asc" }],
      limit,
    });
  }

  /**
   * Compare one fresh record with the cached copy; push hints for what differs. Returns the
   * differing field names, or undefined when there is nothing to compare with.
   */
  async #compare(type: string, fresh: Entity, hints: EventLogEntry[]): Promise<string[] | undefined> {
    const held = await this.#o.cache.heldRecord(type, fresh.id).catch(() => undefined);
    if (held === undefined) {
      // A preloaded type holds every record: an id it does not know is a creation it missed.
      if (this.#o.cache.knowsId(type, fresh.id) !== false) return undefined;
      hints.push(hint(type, fresh, "New", null, {}));
      return ["(created)"];
    }
    if (held === null) {
      hints.push(hint(type, fresh, "Revival", null, {}));
      return ["(exists)"];
    }
    // The cache may already be newer (a change after our read, already applied): not a finding.
    if (timeOf(held.fields["updated_at"]) > timeOf(fresh.fields["updated_at"])) return [];
    const differing: string[] = [];
    for (const name of new Set([...Object.keys(held.fields), ...Object.keys(fresh.fields)])) {
      const before = held.fields[name] ?? null;
      const after = fresh.fields[name] ?? null;
      if (canonical(before) === canonical(after)) continue;
      differing.push(name);
      hints.push(
        hint(type, fresh, "Change", name, {
          type: "attribute_change",
          attribute_name: name,
          old_value: before,
          new_value: after,
        }),
      );
    }
    return differing;
  }
}

function hint(type: string, fresh: Entity, kind: "New" | "Change" | "Revival", attribute: string | null, meta: Record<string, unknown>): EventLogEntry {
  const project = type === "Project" ? { type: "Project", id: fresh.id } : asLink(fresh.fields["project"]);
  return {
    id: 0,
    event_type: `Shotgun_${type}_${kind}`,
    attribute_name: attribute,
    meta: { ...meta, entity_type: type, entity_id: fresh.id, reconciled: true },
    entity: { type, id: fresh.id },
    project,
    user: null,
    session_uuid: null,
    created_at: iso(Date.now()),
  };
}

function asLink(v: unknown): { type: string; id: number } | null {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return null;
  const l = v as Record<string, unknown>;
  return typeof l.type === "string" && typeof l.id === "number" ? { type: l.type, id: l.id } : null;
}

function timeOf(v: unknown): number {
  const ms = typeof v === "string" ? Date.parse(v) : NaN;
  return Number.isFinite(ms) ? ms : -Infinity;
}

/** JSON with object keys sorted, so equal values compare equal whatever their key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
