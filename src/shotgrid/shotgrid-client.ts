/**
 * The ShotGrid REST implementation of Backend. Each method builds one request (wire-codec.ts),
 * sends it through the shared transport (site-transport.ts) and decodes the answer.
 */
import { MalformedResponseError, NotFoundError } from "./errors.ts";
import { resolveClientOptions, type ResolvedClientOptions, type ShotGridClientOptions } from "./client-options.ts";
import { SiteTransport } from "./site-transport.ts";
import {
  ARRAY_FILTERS_CONTENT_TYPE,
  EVENT_FIELDS,
  checkEntityType,
  checkId,
  decodeBatchResults,
  decodeEntityTypes,
  decodeRecordList,
  decodeReviveResult,
  decodeSchemaFields,
  decodeSingleRecord,
  describe,
  encodeBatch,
  encodeFields,
  encodeFilters,
  encodeSort,
  encodeWriteData,
  toEventLogEntry,
} from "./wire-codec.ts";
import type {
  Backend,
  BatchRequest,
  BatchResult,
  Entity,
  EntitySchema,
  EventLogEntry,
  EventReadOptions,
  FilterCondition,
  ReadOptions,
  SearchOptions,
  ActingOptions,
  Api3RelayOptions,
  CallerCredentials,
  SummarizeOptions,
  SummaryAnswer,
  WriteFields,
  WriteOptions,
} from "./types.ts";

/** Keys of an api3 `params[0]` whose values are secrets (kept out of every message). */
const API3_SECRET_KEYS = ["script_key", "user_password", "session_token", "auth_token"];

function checkPositiveInt(value: unknown, where: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new TypeError(`${where} must be an integer >= ${min}, got ${describe(value)}`);
  }
  return value;
}

/** `options[return_only]` / `options[include_archived_projects]` as the REST API spells them. */
function readOptionsBody(o: ReadOptions): Record<string, unknown> | undefined {
  const opts: Record<string, unknown> = {};
  if (o.returnOnly !== undefined) {
    if (o.returnOnly !== "active" && o.returnOnly !== "retired") throw new TypeError(`returnOnly must be "active" or "retired", got ${describe(o.returnOnly)}`);
    opts.return_only = o.returnOnly;
  }
  if (o.includeArchivedProjects !== undefined) {
    if (typeof o.includeArchivedProjects !== "boolean")
      throw new TypeError(`includeArchivedProjects must be a boolean, got ${describe(o.includeArchivedProjects)}`);
    opts.include_archived_projects = o.includeArchivedProjects;
  }
  return Object.keys(opts).length > 0 ? opts : undefined;
}

/** The options of a delete, revive or batch (an object, or nothing). */
function actingOptions(options: unknown): ActingOptions {
  if (options === undefined) return {};
  if (typeof options !== "object" || options === null || Array.isArray(options)) throw new TypeError(`options must be an object, got ${describe(options)}`);
  return options as ActingOptions;
}

/** The write options; a bare list is the older form of `{ fields }`. */
function writeOptions(options: WriteOptions | string[] | undefined): WriteOptions {
  return Array.isArray(options) ? { fields: options } : (actingOptions(options) as WriteOptions);
}

/** `?options[fields]=…` of a create or update, when the caller named fields. */
function answerFields(fields: string[] | undefined): string {
  return query({ "options[fields]": fields && fields.length > 0 ? encodeFields(fields, "options.fields") : undefined });
}

function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * A Backend that talks to a ShotGrid site's REST API. One instance per site: it owns the
 * keep-alive pool, the shared access token and the cap on concurrent requests. Reads are retried
 * on transient failures; writes only when the site cannot have processed them (see retry.ts).
 * Bad arguments throw a TypeError naming the argument before anything is sent.
 */
export class ShotGridClient implements Backend {
  readonly description: string;
  readonly #o: ResolvedClientOptions;
  readonly #site: SiteTransport;

  constructor(options: ShotGridClientOptions) {
    this.#o = resolveClientOptions(options);
    this.#site = new SiteTransport(this.#o);
    this.description = `ShotGrid ${this.#o.origin}${this.#o.basePath}`;
  }

  /** Access-token fetches so far: one per token lifetime, not one per request. */
  get tokenFetches(): number {
    return this.#site.tokenFetches;
  }

  /** Token fetches for sudo logins and callers' own credentials, and identities holding a token now. */
  get actingTokens(): { fetches: number; held: number } {
    return this.#site.actingTokens;
  }

  /** Upstream requests in flight and queued behind the concurrency cap now. */
  get upstreamLoad(): { active: number; waiting: number } {
    return this.#site.load;
  }

  async getEntity(entityType: string, id: number, options: ReadOptions = {}): Promise<Entity | null> {
    checkEntityType(entityType);
    checkId(id);
    const opts = readOptionsBody(options);
    const path = `/entity/${entityType}/${id}${query({
      fields: encodeFields(options.fields),
      "options[return_only]": opts?.return_only as string | undefined,
      "options[include_archived_projects]": opts?.include_archived_projects === undefined ? undefined : String(opts.include_archived_projects),
    })}`;
    try {
      const answer = await this.#site.send({ method: "GET", path, idempotent: true, signal: options.signal });
      return decodeSingleRecord(answer.body);
    } catch (err) {
      if (err instanceof NotFoundError) return null;
      throw err;
    }
  }

  async search(entityType: string, options: SearchOptions = {}): Promise<Entity[]> {
    const all: Entity[] = [];
    for await (const page of this.searchPages(entityType, options)) all.push(...page);
    return all;
  }

  /**
   * Pages of records, fetched one at a time as the caller iterates. ShotGrid always sends
   * `links.next`, even after the last record, so the stop rule is a page shorter than asked for
   * (or the caller's limit reached).
   */
  async *searchPages(entityType: string, options: SearchOptions = {}): AsyncGenerator<Entity[], void, undefined> {
    checkEntityType(entityType);
    const limit = checkPositiveInt(options.limit, "limit", 0);
    const pageSize = checkPositiveInt(options.pageSize, "pageSize") ?? this.#o.pageSize;
    let page = checkPositiveInt(options.page, "page") ?? 1;
    const { contentType, filters } = encodeFilters(options.filters);
    const fields = encodeFields(options.fields);
    const sort = encodeSort(options.sort);
    const opts = readOptionsBody(options);
    if (limit === 0) return;
    // The size stays the same on every page: ShotGrid pages by number × size.
    const size = limit !== undefined ? Math.min(pageSize, limit) : pageSize;
    let remaining = limit ?? Number.POSITIVE_INFINITY;
    for (;;) {
      const records = await this.#searchPage(
        entityType,
        contentType,
        {
          filters,
          fields,
          ...(sort ? { sort } : {}),
          page: { size, number: page },
          ...(opts ? { options: opts } : {}),
        },
        options.signal,
      );
      const full = records.length >= size;
      const kept = records.length > remaining ? records.slice(0, remaining) : records;
      remaining -= kept.length;
      if (kept.length > 0) yield kept;
      if (!full || remaining <= 0) return;
      page++;
    }
  }

  async #searchPage(entityType: string, contentType: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<Entity[]> {
    const answer = await this.#site.send({
      method: "POST",
      path: `/entity/${entityType}/_search`,
      json: body,
      contentType,
      // A search changes nothing: safe to repeat although it is a POST.
      idempotent: true,
      signal,
    });
    return decodeRecordList(answer.body);
  }

  async schemaFields(entityType: string, signal?: AbortSignal): Promise<EntitySchema> {
    checkEntityType(entityType);
    const answer = await this.#site.send({ method: "GET", path: `/schema/${entityType}/fields`, idempotent: true, signal });
    return decodeSchemaFields(answer.body);
  }

  async schemaEntityTypes(signal?: AbortSignal): Promise<string[]> {
    const answer = await this.#site.send({ method: "GET", path: `/schema`, idempotent: true, signal });
    return decodeEntityTypes(answer.body);
  }

  /** One page of the event log, ascending by id (a `_search` on EventLogEntry). */
  async readEvents(options: EventReadOptions): Promise<EventLogEntry[]> {
    const o = options ?? {};
    const filters: FilterCondition[] = [];
    const afterId = checkPositiveInt(o.afterId, "afterId", 0);
    if (afterId !== undefined) filters.push(["id", "greater_than", afterId]);
    if (o.ids !== undefined) {
      if (!Array.isArray(o.ids)) throw new TypeError(`ids must be a list of event ids, got ${describe(o.ids)}`);
      if (o.ids.length === 0) return [];
      o.ids.forEach((id, i) => checkId(id, `ids[${i}]`));
      filters.push(["id", "in", [...o.ids]]);
    }
    if (o.createdAfter !== undefined) {
      if (typeof o.createdAfter !== "string" || Number.isNaN(Date.parse(o.createdAfter))) {
        throw new TypeError(`createdAfter must be an ISO 8601 time, got ${describe(o.createdAfter)}`);
      }
      // "At or after" with ShotGrid's whole-second datetimes: strictly after the second before.
      const from = Math.floor(Date.parse(o.createdAfter) / 1000) * 1000 - 1000;
      filters.push(["created_at", "greater_than", new Date(from).toISOString().replace(/\.\d{3}Z$/, "Z")]);
    }
    const limit = checkPositiveInt(o.limit, "limit") ?? Math.max(500, o.ids?.length ?? 0);
    const records = await this.#searchPage(
      "EventLogEntry",
      ARRAY_FILTERS_CONTENT_TYPE,
      { filters, fields: EVENT_FIELDS.join(","), sort: "id", page: { size: limit, number: 1 } },
      o.signal,
    );
    return records.map(toEventLogEntry);
  }

  async latestEventId(signal?: AbortSignal): Promise<number> {
    const records = await this.#searchPage(
      "EventLogEntry",
      ARRAY_FILTERS_CONTENT_TYPE,
      { filters: [], fields: "id", sort: "-id", page: { size: 1, number: 1 } },
      signal,
    );
    return records[0]?.id ?? 0;
  }

  /*
   * Writes. Each is made as the identity its options name (the service's script by default; a
   * sudo login with `asLogin`; the caller's own `credentials`), is sent once unless the site
   * provably did not process it (retry.ts), and ends in WriteOutcomeUnknownError when nobody can
   * say whether it happened.
   */

  async create(entityType: string, data: WriteFields, options?: WriteOptions | string[]): Promise<Entity> {
    checkEntityType(entityType);
    const o = writeOptions(options);
    if (o.multiEntityUpdateModes !== undefined) throw new TypeError("multiEntityUpdateModes applies to update only; a create sets the whole list");
    const body = encodeWriteData(data);
    const as = this.#site.identity(o);
    const answer = await this.#site.send({
      method: "POST",
      path: `/entity/${entityType}${answerFields(o.fields)}`,
      json: body,
      idempotent: false,
      as,
      signal: o.signal,
    });
    return decodeSingleRecord(answer.body);
  }

  async update(entityType: string, id: number, data: WriteFields, options?: WriteOptions | string[]): Promise<Entity> {
    checkEntityType(entityType);
    checkId(id);
    const o = writeOptions(options);
    const body = encodeWriteData(data, "data", o.multiEntityUpdateModes);
    const as = this.#site.identity(o);
    const answer = await this.#site.send({
      method: "PUT",
      path: `/entity/${entityType}/${id}${answerFields(o.fields)}`,
      json: body,
      idempotent: false,
      as,
      signal: o.signal,
    });
    return decodeSingleRecord(answer.body);
  }

  async delete(entityType: string, id: number, options?: ActingOptions): Promise<void> {
    const o = actingOptions(options);
    checkEntityType(entityType);
    checkId(id);
    const as = this.#site.identity(o);
    await this.#site.send({ method: "DELETE", path: `/entity/${entityType}/${id}`, idempotent: false, as, signal: o.signal });
  }

  async revive(entityType: string, id: number, options?: ActingOptions): Promise<boolean> {
    const o = actingOptions(options);
    checkEntityType(entityType);
    checkId(id);
    const as = this.#site.identity(o);
    const answer = await this.#site.send({ method: "POST", path: `/entity/${entityType}/${id}?revive=true`, idempotent: false, as, signal: o.signal });
    return decodeReviveResult(answer.body);
  }

  /** All or nothing: ShotGrid runs the requests in one transaction. */
  async batch(requests: BatchRequest[], options?: ActingOptions): Promise<BatchResult[]> {
    const o = actingOptions(options);
    const body = encodeBatch(requests);
    const as = this.#site.identity(o);
    const answer = await this.#site.send({ method: "POST", path: `/entity/_batch`, json: body, idempotent: false, as, signal: o.signal });
    return decodeBatchResults(answer.body, requests);
  }

  /** REST `_summarize`; the answer's `{summaries, groups}` as the site sent them. */
  async summarize(entityType: string, options: SummarizeOptions): Promise<SummaryAnswer> {
    checkEntityType(entityType);
    const o = options ?? ({} as SummarizeOptions);
    if (!Array.isArray(o.summaryFields) || o.summaryFields.length === 0) {
      throw new TypeError(`summaryFields must be a non-empty list of {field, type}, got ${describe(o.summaryFields)}`);
    }
    if (o.grouping !== undefined && !Array.isArray(o.grouping))
      throw new TypeError(`grouping must be a list of {field, type, direction}, got ${describe(o.grouping)}`);
    const { contentType, filters } = encodeFilters(o.filters);
    const body: Record<string, unknown> = { filters, summary_fields: o.summaryFields };
    if (o.grouping && o.grouping.length > 0) body.grouping = o.grouping;
    if (o.includeArchivedProjects !== undefined) body.options = { include_archived_projects: o.includeArchivedProjects };
    const answer = await this.#site.send({
      method: "POST",
      path: `/entity/${entityType}/_summarize`,
      json: body,
      contentType,
      idempotent: true,
      signal: o.signal,
    });
    const data = (answer.body as { data?: unknown } | undefined)?.data as Partial<SummaryAnswer> | undefined;
    if (typeof data !== "object" || data === null || typeof data.summaries !== "object" || data.summaries === null) {
      throw new MalformedResponseError(`POST /entity/${entityType}/_summarize: the answer has no data.summaries`, answer.status);
    }
    return { summaries: data.summaries, groups: Array.isArray(data.groups) ? data.groups : [] };
  }

  /** A token grant with the caller's credentials (see Backend.verifyCaller). */
  async verifyCaller(credentials: CallerCredentials, options: { asLogin?: string; signal?: AbortSignal } = {}): Promise<void> {
    await this.#site.verify(this.#site.identity({ credentials, asLogin: options.asLogin }));
  }

  /** One api3 call relayed to the site's `/api3/json` with the caller's own credentials. */
  async relayApi3(method: string, args: unknown, options: Api3RelayOptions): Promise<unknown> {
    if (typeof method !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(method))
      throw new TypeError(`method must be an api3 method name, got ${describe(method)}`);
    const auth = options?.auth;
    if (auth === undefined) {
      if (method !== "info") throw new TypeError(`options.auth: ${method} needs the caller's api3 credentials (only info goes without)`);
    } else if (typeof auth !== "object" || auth === null || Array.isArray(auth))
      throw new TypeError("options.auth must be the caller's api3 credentials object");
    const secrets = auth ? API3_SECRET_KEYS.map((k) => auth[k]).filter((v): v is string => typeof v === "string") : [];
    const params = [...(auth ? [auth] : []), ...(args === undefined ? [] : [args])];
    const body = { method_name: method, params };
    const answer = await this.#site.relayApi3(body, secrets, options.readOnly === true, options.signal);
    return answer.body;
  }

  async close(): Promise<void> {
    await this.#site.close();
  }
}
