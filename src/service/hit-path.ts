/**
 * The service half of the hit path: for a GetEntity or Query request that is a plain cache hit,
 * what the handler (cache-service.ts) would answer, decided synchronously (no await, no promise).
 * Anything else (a miss, a projection, "not found", an invalid request, a schema not loaded yet)
 * is undefined, and the caller runs the normal handler, which then decides exactly as before
 * (with its deadline, its signals, its errors).
 *
 * The server half (server/fast-path.ts) owns the wire: it parses, encodes and writes. The
 * composition root gives it this half (see src/app/cache-server.ts).
 */
import type { GetEntityRequest, QueryRequest } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import { canonicalFields, recordKey } from "../cache/query-key.ts";
import { projectRecord } from "../cache/entity-fields.ts";
import type { PreparedQuery } from "../cache/read-through-cache.ts";
import { servedFreshness, type Freshness, type PeekableEntityCache, type PeekedEntry } from "../cache/types.ts";
import type { Entity } from "../shotgrid/types.ts";
import { ANONYMOUS, type Caller } from "../auth/caller.ts";
import { entityProjectId, mayReadEntity } from "../auth/read-scope.ts";
import { scopedQuery } from "./cache-service.ts";
import { validateGetEntityNow, validateQuery, type RequestLimits } from "./request-validation.ts";
import type { SchemaRegistry } from "./schema-registry.ts";

/**
 * One hit, ready to be encoded. Plain data: a hit allocates nothing it does not need. `source`
 * (the held record's or stored answer's text) and `key` (the request in canonical form) name one
 * encoding: an encoding made from `source` stays right for as long as the cache holds that text.
 */
export interface Hit {
  readonly source: string;
  readonly key: string;
  readonly entityType: string;
  /** The answer's freshness, the "site unreachable, so stale" rule applied. */
  readonly freshness: Freshness;
  /** A Query answer the mirror just made (`queryLocal`): counted as `query` counts those, not as a hit. */
  readonly local?: true;
}

/** One GetEntity hit. */
export interface EntityHit extends Hit {
  /** Canonical fields (`canonicalFields`) the answer carries. */
  readonly fields: readonly string[];
}

export interface HitPath {
  /**
   * The hit `getEntity` would answer `req` with, or undefined when it would do anything else
   * (for `caller`, default anonymous: a record its read limits refuse is left to the handler,
   * which answers permission_denied).
   */
  getEntity(req: GetEntityRequest, caller?: Caller): EntityHit | undefined;
  /**
   * For a cache that decides a hit only after a round trip (the Redis store's near cache, which
   * must first learn that no invalidation is on its way): undefined at once when there is
   * nothing to wait for (the normal handler answers), else the hit `getEntity` would answer, or
   * undefined, once decided. Ask only when `getEntity` gave undefined.
   */
  getEntityCurrent(req: GetEntityRequest, caller?: Caller): Promise<EntityHit | undefined> | undefined;
  /**
   * The entity as the answer carries it (computed on each call: encode it once and keep that),
   * or undefined when the held record lacks a requested field: then it is not a hit after all
   * (`getEntity` fetches those fields).
   */
  entityOf(hit: EntityHit): Entity | undefined;
  /** Record the hit as `getEntity` would (cache metrics): call once, when the answer is sent. */
  commit(hit: EntityHit): void;
  /**
   * The hit `query` would answer `req` with, or undefined when it would do anything else or
   * cannot tell yet. A request object seen for the first time is validated in the background
   * (asynchronously, as the handler validates), so the same object asked again (callers keep one
   * parsed message per distinct request bytes) can be peeked without waiting.
   */
  peekQuery(req: QueryRequest, caller?: Caller): Hit | undefined;
  /**
   * For a request `peekQuery` gave undefined for (ask it first: it starts the validation): the
   * hit `query` would answer it with once the mirror has evaluated it (validated as the handler
   * validates, the same evaluation `query` makes), or undefined, then or at once, when `query`
   * would do anything else (go upstream, answer an error): the handler then answers, exactly as
   * before.
   */
  queryLocal(req: QueryRequest, caller?: Caller): Promise<Hit | undefined> | undefined;
  /** The entities of `hit` (parsed on each call: encode them once and keep that). */
  entitiesOf(hit: Hit): Entity[];
  /** Record the hit as `query` would (cache metrics): call once, when the answer is sent. */
  commitQuery(hit: Hit): void;
}

export interface HitPathOptions {
  cache: PeekableEntityCache;
  schema: SchemaRegistry;
  limits: RequestLimits;
  /** As in `CacheServiceOptions`: while it returns a reason, cached answers are marked stale. */
  siteUnreachable?: () => string | undefined;
}

/** A request validated and put in canonical form, valid while the schema generation holds. */
interface Plan {
  generation: number;
  entityType: string;
  id: number;
  fields: string[];
  key: string;
}

/** A Query request's validation, kept per request object; `prepared` once it has succeeded. */
interface QueryPlan {
  generation: number;
  prepared?: PreparedQuery;
  /** The validation: `prepared`, or undefined when it failed. */
  ready?: Promise<PreparedQuery | undefined>;
}

/**
 * `validation`'s outcome if it settles within this turn of the event loop (everything it needs
 * is loaded: it only chains promises), else undefined: a validation waiting for the site (a
 * schema not loaded yet) is left to the normal handler, whose deadline covers that wait.
 */
function settledThisTurn<T>(validation: Promise<T | undefined>): Promise<T | undefined> {
  return Promise.race([validation, new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined)))]);
}

/** Whether `caller` has read limits (projects or entity types). */
function limited(caller: Caller): boolean {
  return caller.projectIds !== null || caller.entityTypes !== null;
}

/** The hit path of the CacheService over `options.cache`. */
export function createHitPath(options: HitPathOptions): HitPath {
  const { cache, schema, limits, siteUnreachable } = options;
  // Hits are built as literals of one shape (no spread): the encoder reads them on every answer.
  const served = (peeked: PeekedEntry): Freshness => servedFreshness(peeked.freshness, siteUnreachable?.());
  // Callers that parse identical requests once (the fast path does) get their plan back for free.
  const plans = new WeakMap<GetEntityRequest, Plan>();
  const planOf = (req: GetEntityRequest): Plan | undefined => {
    const known = plans.get(req);
    if (known && known.generation === schema.generation) return known;
    const generation = schema.generation;
    let valid: ReturnType<typeof validateGetEntityNow>;
    try {
      valid = validateGetEntityNow(req, schema, limits);
    } catch {
      return undefined; // the normal handler gives the error answer
    }
    if (!valid) return undefined;
    const fields = canonicalFields(valid.fields);
    const plan = { generation, entityType: valid.entityType, id: valid.id, fields, key: `${recordKey(valid.entityType, valid.id)}|${fields.join(",")}` };
    plans.set(req, plan);
    return plan;
  };
  // Per request object, per caller (a caller's read limits join its filters; callers are the
  // policy's own objects, one per auth file client, so there are few).
  const queries = new WeakMap<QueryRequest, Map<Caller, QueryPlan>>();
  /** The prepared query of `req` for `caller`, or undefined while it is not known (its validation is then started). */
  const preparedOf = (req: QueryRequest, caller: Caller): PreparedQuery | undefined => {
    let plans = queries.get(req);
    const known = plans?.get(caller);
    if (known && known.generation === schema.generation) return known.prepared;
    if (!plans) queries.set(req, (plans = new Map()));
    const byCaller = plans;
    const plan: QueryPlan = { generation: schema.generation };
    byCaller.set(caller, plan);
    plan.ready = validateQuery(req, schema, limits)
      .then((q) => scopedQuery(caller, q, schema))
      .then((q) => (plan.prepared = cache.prepareQuery(q)))
      // Invalid or refused (the handler answers the error), or the schema could not be fetched
      // (which may pass): ask again next time.
      .catch(() => {
        if (byCaller.get(caller) === plan) byCaller.delete(caller);
        return undefined;
      });
    return undefined;
  };
  /** The hit `peeked` answers for `caller`, or undefined when its read limits refuse the record. */
  const entityHit = (plan: Plan, peeked: PeekedEntry, caller: Caller): EntityHit | undefined => {
    // The handler's rule (auth/read-scope.ts) on the held full record, which has its `project`.
    if (limited(caller)) {
      // Dotted paths are refused to limited callers (auth/read-scope.ts): the handler answers that.
      if (plan.fields.some((f) => f.includes("."))) return undefined;
      const record = cache.heldRecordAnswering(peeked.text, []);
      if (!record || !mayReadEntity(caller, plan.entityType, entityProjectId(record))) return undefined;
    }
    return { source: peeked.text, key: plan.key, entityType: plan.entityType, freshness: served(peeked), fields: plan.fields };
  };
  return {
    getEntity(req, caller = ANONYMOUS) {
      const plan = planOf(req);
      const peeked = plan && cache.peekEntity(plan.entityType, plan.id, plan.fields);
      return peeked ? entityHit(plan, peeked, caller) : undefined;
    },
    getEntityCurrent(req, caller = ANONYMOUS) {
      if (!cache.peekEntityCurrent) return undefined;
      const plan = planOf(req);
      if (!plan) return undefined;
      return cache.peekEntityCurrent(plan.entityType, plan.id, plan.fields)?.then((peeked) => (peeked ? entityHit(plan, peeked, caller) : undefined));
    },
    entityOf(hit) {
      const record = cache.heldRecordAnswering(hit.source, hit.fields);
      return record && projectRecord(record, hit.fields);
    },
    commit(hit) {
      cache.countEntityHit(hit.entityType);
    },
    peekQuery(req, caller = ANONYMOUS) {
      const prepared = preparedOf(req, caller);
      const peeked = prepared && cache.peekQuery(prepared);
      return peeked && { source: peeked.text, key: prepared.key, entityType: prepared.q.entityType, freshness: served(peeked) };
    },
    queryLocal(req, caller = ANONYMOUS) {
      if (!cache.answersQueriesLocally) return undefined;
      const plan = queries.get(req)?.get(caller);
      if (!plan?.ready || plan.generation !== schema.generation || plan.prepared?.deps.volatile) return undefined;
      const ready = plan.prepared ? Promise.resolve(plan.prepared) : settledThisTurn(plan.ready);
      return ready
        .then((prepared) => prepared && cache.peekLocalAnswer(prepared).then((found) => found && { prepared, ...found }))
        .then((found): Hit | undefined => {
          if (!found) return undefined;
          const { prepared, entry } = found;
          const hit = { source: entry.text, key: prepared.key, entityType: prepared.q.entityType, freshness: served(entry) };
          return found.local ? { ...hit, local: true } : hit;
        })
        .catch(() => undefined);
    },
    entitiesOf(hit) {
      return cache.queryAnswerOf(hit.source);
    },
    commitQuery(hit) {
      if (hit.local) cache.countLocalAnswer(hit.entityType);
      else cache.countQueryHit(hit.entityType);
    },
  };
}
