/**
 * The service half of the GetEntity hit path: for a request that is a plain cache hit, what the
 * `getEntity` handler would answer, decided synchronously (no await, no promise). Anything else
 * (a miss, a projection, "not found", an invalid request, a schema not loaded yet) is undefined,
 * and the caller runs the normal handler, which then decides exactly as before.
 *
 * The server half (server/fast-path.ts) owns the wire: it parses, encodes and writes. It finds
 * this half through `hitPathOf(impl)` on the implementation passed to `router.service`.
 */
import type { GetEntityRequest, QueryRequest } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import { canonicalFields, recordKey } from "../cache/query-key.ts";
import { projectRecord } from "../cache/entity-fields.ts";
import type { PreparedQuery } from "../cache/read-through-cache.ts";
import type { CacheAnswer, EntityCache, EntityQuery, Freshness } from "../cache/types.ts";
import type { Entity } from "../shotgrid/types.ts";
import { validateGetEntityNow, validateQuery, type RequestLimits } from "./request-validation.ts";
import type { SchemaRegistry } from "./schema-registry.ts";

/** A cache that can tell a GetEntity hit without waiting (the read-through cache over memory). */
export interface PeekableEntityCache extends EntityCache {
  prepareQuery(query: EntityQuery): PreparedQuery;
  queryPrepared(prepared: PreparedQuery): Promise<CacheAnswer<Entity[]>>;
  peekEntity(entityType: string, id: number, fields: readonly string[]): { text: string; freshness: Freshness } | undefined;
  heldRecordAnswering(text: string, fields: readonly string[]): Entity | undefined;
  countEntityHit(entityType: string): void;
  peekQuery(prepared: PreparedQuery): { text: string; freshness: Freshness } | undefined;
  queryAnswerOf(text: string): Entity[];
  countQueryHit(entityType: string): void;
}

/** One GetEntity hit, ready to be encoded. Plain data: a hit allocates nothing it does not need. */
export interface EntityHit {
  /**
   * What the entity part of the answer is made from: the held record's stored text. An encoding
   * made from it stays right for as long as the cache holds this same text.
   */
  readonly source: string;
  /** The request in canonical form (type, id, sorted fields): with `source`, names one encoding. */
  readonly key: string;
  readonly entityType: string;
  /** Canonical fields (`canonicalFields`) the answer carries. */
  readonly fields: readonly string[];
  /** The answer's freshness, the "site unreachable, so stale" rule applied. */
  readonly freshness: Freshness;
}

/** One Query hit, ready to be encoded. */
export interface QueryHit {
  /** The stored answer's text: an encoding made from it stays right while the cache holds this same text. */
  readonly source: string;
  /** The query's cache key: with `source`, names one encoding. */
  readonly key: string;
  readonly entityType: string;
  /** The answer's freshness, the "site unreachable, so stale" rule applied. */
  readonly freshness: Freshness;
}

export interface HitPath {
  /** The hit `getEntity` would answer `req` with, or undefined when it would do anything else. */
  getEntity(req: GetEntityRequest): EntityHit | undefined;
  /**
   * The entity as the answer carries it (computed on each call: encode it once and keep that),
   * or undefined when the held record lacks a requested field: then it is not a hit after all
   * (`getEntity` fetches those fields).
   */
  entityOf(hit: EntityHit): Entity | undefined;
  /** Record the hit as `getEntity` would (cache metrics): call once, when the answer is sent. */
  commit(hit: EntityHit): void;
  /**
   * What the `query` handler would answer `req` with: validated as it does (once per parsed
   * message and schema generation, so identical requests share one validation), asked of the
   * cache (which counts hits, misses and coalesced waits, and shares one flight among identical
   * misses), freshness with the "site unreachable, so stale" rule applied. Rejects with what the
   * handler would turn into its error (through `toConnectError`). Coalesced waiters get the very
   * same `value` array: encode it once per array.
   */
  query(req: QueryRequest): Promise<CacheAnswer<Entity[]>>;
  /**
   * The hit `query` would answer `req` with, decided synchronously, or undefined when it would do
   * anything else or cannot tell yet (`req` not validated by an earlier `query` under this schema
   * generation): then take `query`. Counts nothing: `commitQuery` once the answer is sent.
   */
  peekQuery(req: QueryRequest): QueryHit | undefined;
  /** The entities of `hit` (parsed on each call: encode them once and keep that). */
  entitiesOf(hit: QueryHit): Entity[];
  /** Record the hit as `query` would (cache metrics): call once, when the answer is sent. */
  commitQuery(hit: QueryHit): void;
}

export interface HitPathOptions {
  cache: EntityCache;
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

/** A hit path for `options`, or undefined when the cache cannot answer without waiting. */
export function createHitPath(options: HitPathOptions): HitPath | undefined {
  const { cache, schema, limits, siteUnreachable } = options;
  if (!isPeekable(cache)) return undefined;
  // Callers that parse identical requests once (the fast path does) get their plan back for free.
  const plans = new WeakMap<GetEntityRequest, Plan>();
  const planOf = (req: GetEntityRequest): Plan | undefined => {
    const known = plans.get(req);
    if (known && known.generation === schema.generation) return known;
    const generation = schema.generation;
    let valid;
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
  /** `prepared` is set once `valid` resolves, so a repeated request can be peeked without waiting. */
  const queries = new WeakMap<QueryRequest, { generation: number; valid: Promise<PreparedQuery>; prepared?: PreparedQuery }>();
  const validQuery = (req: QueryRequest): Promise<PreparedQuery> => {
    const known = queries.get(req);
    if (known && known.generation === schema.generation) return known.valid;
    const memo: { generation: number; valid: Promise<PreparedQuery>; prepared?: PreparedQuery } = {
      generation: schema.generation,
      valid: validateQuery(req, schema, limits).then((q) => (memo.prepared = cache.prepareQuery(q))),
    };
    queries.set(req, memo);
    // A failure may be passing (the site's schema could not be fetched): ask again next time.
    memo.valid.catch(() => {
      if (queries.get(req) === memo) queries.delete(req);
    });
    return memo.valid;
  };
  return {
    async query(req) {
      const answer = await cache.queryPrepared(await validQuery(req));
      const f = answer.freshness;
      // As the service's handler does: a cached answer while the site is unreachable is stale.
      if (f.source === "cache" && !f.stale && siteUnreachable?.() !== undefined) return { value: answer.value, freshness: { ...f, stale: true } };
      return answer;
    },
    peekQuery(req) {
      const known = queries.get(req);
      const prepared = known && known.generation === schema.generation ? known.prepared : undefined;
      if (!prepared) return undefined;
      const hit = cache.peekQuery(prepared);
      if (!hit) return undefined;
      // As `query` (and the service's handler) does: a cached answer while the site is unreachable is stale.
      const stale = !hit.freshness.stale && siteUnreachable?.() !== undefined;
      return { source: hit.text, key: prepared.key, entityType: prepared.q.entityType, freshness: stale ? { ...hit.freshness, stale: true } : hit.freshness };
    },
    entitiesOf(hit) {
      return cache.queryAnswerOf(hit.source);
    },
    commitQuery(hit) {
      cache.countQueryHit(hit.entityType);
    },
    getEntity(req) {
      const plan = planOf(req);
      if (!plan) return undefined;
      const hit = cache.peekEntity(plan.entityType, plan.id, plan.fields);
      if (!hit) return undefined;
      const stale = !hit.freshness.stale && siteUnreachable?.() !== undefined;
      return {
        source: hit.text,
        key: plan.key,
        entityType: plan.entityType,
        fields: plan.fields,
        freshness: stale ? { ...hit.freshness, stale: true } : hit.freshness,
      };
    },
    entityOf(hit) {
      const record = cache.heldRecordAnswering(hit.source, hit.fields);
      return record && projectRecord(record, hit.fields);
    },
    commit(hit) {
      cache.countEntityHit(hit.entityType);
    },
  };
}

function isPeekable(cache: EntityCache): cache is PeekableEntityCache {
  const c = cache as Partial<PeekableEntityCache>;
  return typeof c.peekEntity === "function" && typeof c.prepareQuery === "function" && typeof c.queryPrepared === "function" && typeof c.heldRecordAnswering === "function" && typeof c.countEntityHit === "function" && typeof c.peekQuery === "function" && typeof c.queryAnswerOf === "function" && typeof c.countQueryHit === "function";
}

/** Service implementations that offer a hit path, and theirs. */
const hitPaths = new WeakMap<object, HitPath>();

/** Offer `path` for `impl` (the object given to `router.service`). */
export function offerHitPath(impl: object, path: HitPath | undefined): void {
  if (path) hitPaths.set(impl, path);
}

/** The hit path `impl` offers, if any. */
export function hitPathOf(impl: object): HitPath | undefined {
  return hitPaths.get(impl);
}
