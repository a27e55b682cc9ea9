/**
 * The REST endpoints of the simulated site (the `/api/v1` and `/api/v1.1` subset), as plain
 * functions from a parsed request to an answer. Transport, auth and the realism knobs live in
 * http-server.ts.
 */
import type { Principal } from "./auth.ts";
import type { SchemaIndex } from "./schema.ts";
import { findRecords, inArchivedProject } from "./query.ts";
import { summarize } from "./summarize.ts";
import { createAnswerFields, renderRecord, selectFields, type RenderContext } from "./render.ts";
import { SimError, badRequest, readNotFound, writeNotFound } from "./sim-error.ts";
import type { SimStore, WriteContext } from "./store.ts";
import { isLink, short, type Link } from "./values.ts";
import { namedLink, entityUrl } from "./render.ts";

export interface ApiRequest {
  method: string;
  /** "v1" or "v1.1". */
  version: string;
  /** Path after the version prefix, split: ["entity", "Shot", "12"]. */
  segments: string[];
  /** The request path as sent, without the query. */
  path: string;
  query: URLSearchParams;
  contentType: string;
  /** Parsed JSON body, or undefined when there was none. */
  body: unknown;
  principal: Principal;
  sessionUuid: string;
}

export interface ApiAnswer {
  status: number;
  body?: unknown;
}

export interface ApiContext {
  store: SimStore;
  now: () => number;
}

/** Default records per page, as on a real site. */
const DEFAULT_PAGE_SIZE = 500;

export function handleApi(ctx: ApiContext, req: ApiRequest): ApiAnswer {
  const [head, a, b, c, d] = req.segments;
  const m = req.method;
  if (head === "preferences" && m === "GET" && !a) return preferences(req);
  if (head === "schema" && m === "GET") return schemaRoute(ctx, req);
  if (head !== "entity" || !a) throw new SimError(404, 104, "Not Found", `No route for ${m} ${req.path}`);
  if (a === "_batch" && m === "POST" && !b) return batch(ctx, req);
  const type = resolveType(ctx.store.schema, a);
  if (!b) {
    if (m === "GET") return search(ctx, req, type, fromQuery(req.query));
    if (m === "POST") return create(ctx, req, type);
  } else if (b === "_search" && m === "POST" && !c) {
    return search(ctx, req, type, fromBody(req));
  } else if (b === "_summarize" && m === "POST" && !c) {
    return summarizeRoute(ctx, req, type);
  } else {
    const id = parseId(b);
    if (!c) {
      if (m === "GET") return readOne(ctx, req, type, id);
      if (m === "PUT") return update(ctx, req, type, id);
      if (m === "DELETE") return retire(ctx, req, type, id);
      if (m === "POST" && req.query.get("revive") === "true") return revive(ctx, req, type, id, a);
    } else if (c === "relationships" && d && m === "GET") {
      return relationship(ctx, req, type, id, d);
    }
  }
  throw new SimError(405, 103, "Method Not Allowed", `${m} is not supported on ${req.path}`);
}

function resolveType(schema: SchemaIndex, segment: string): string {
  const type = schema.resolveUrlType(segment);
  if (!type) throw badRequest("Request Parameters invalid.", { entity: [`${segment} is not a valid entity type`] });
  return type;
}

function parseId(raw: string): number {
  if (!/^\d+$/.test(raw)) throw badRequest("Request Parameters invalid.", { id: [`${short(raw)} is not a valid record id`] });
  return Number(raw);
}

function writeContext(req: ApiRequest): WriteContext {
  return { user: req.principal.user, sessionUuid: req.sessionUuid };
}

function render(ctx: ApiContext, req: ApiRequest, dates: "read" | "create" = "read"): RenderContext {
  return { store: ctx.store, version: req.version, dates };
}

// ---- reads ---------------------------------------------------------------------------------

interface SearchParams {
  filters: unknown;
  fields: unknown;
  sort: unknown;
  pageSize: unknown;
  pageNumber: unknown;
  returnOnly: unknown;
  includeArchived: unknown;
}

function fromQuery(q: URLSearchParams): SearchParams {
  const conditions: unknown[] = [];
  for (const [key, value] of q) {
    const m = /^filter\[([^\]]+)\]$/.exec(key);
    if (!m) continue;
    // `filter[field]=a,b` means "in"; a single value means "is".
    const parts = value.split(",");
    conditions.push(parts.length > 1 ? [m[1], "in", parts] : [m[1], "is", value]);
  }
  let filters: unknown = conditions;
  const rawFilters = q.get("filters");
  if (rawFilters) filters = parseJsonParam("filters", rawFilters);
  return {
    filters,
    fields: q.get("fields") ?? undefined,
    sort: q.get("sort") ?? undefined,
    pageSize: q.get("page[size]") ?? undefined,
    pageNumber: q.get("page[number]") ?? undefined,
    returnOnly: q.get("options[return_only]") ?? undefined,
    includeArchived: q.get("options[include_archived_projects]") ?? undefined,
  };
}

function fromBody(req: ApiRequest): SearchParams {
  const body = req.body ?? {};
  if (typeof body !== "object" || Array.isArray(body)) throw badRequest("Request Parameters invalid.", { body: ["must be a JSON object"] });
  const o = body as Record<string, unknown>;
  const q = fromQuery(req.query);
  const page = (o["page"] ?? {}) as Record<string, unknown>;
  const options = (o["options"] ?? {}) as Record<string, unknown>;
  const explicit = o["filters"] !== undefined;
  const filters = explicit ? o["filters"] : q.filters;
  const ct = req.contentType;
  if (!explicit) {
    // No filters in the body: nothing to check against the content type.
  } else if (ct.includes("api3_array") && !Array.isArray(filters)) {
    throw badRequest("Request Parameters invalid.", { filters: ["must be an array of conditions with content type application/vnd+shotgun.api3_array+json"] });
  } else if (ct.includes("api3_hash") && (Array.isArray(filters) || typeof filters !== "object" || filters === null)) {
    throw badRequest("Request Parameters invalid.", {
      filters: ["must be a {logical_operator, conditions} object with content type application/vnd+shotgun.api3_hash+json"],
    });
  }
  return {
    filters,
    fields: o["fields"] ?? q.fields,
    sort: o["sort"] ?? q.sort,
    pageSize: page["size"] ?? q.pageSize,
    pageNumber: page["number"] ?? q.pageNumber,
    returnOnly: options["return_only"] ?? q.returnOnly,
    includeArchived: options["include_archived_projects"] ?? q.includeArchived,
  };
}

function parseJsonParam(name: string, raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    throw badRequest("Request Parameters invalid.", { [name]: ["is not valid JSON"] });
  }
}

function positiveInt(name: string, v: unknown, fallback: number): number {
  if (v === undefined || v === null || v === "") return fallback;
  const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
    throw badRequest("Request Parameters invalid.", { [name]: [`must be a whole number of at least 1, got ${short(v)}`] });
  }
  return n;
}

function parseReturnOnly(v: unknown): "active" | "retired" {
  if (v === undefined || v === null || v === "" || v === "active") return "active";
  if (v === "retired") return "retired";
  throw badRequest("Request Parameters invalid.", { "options[return_only]": [`must be active or retired, got ${short(v)}`] });
}

function parseBool(name: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined || v === null || v === "") return fallback;
  if (v === true || v === "true") return true;
  if (v === false || v === "false") return false;
  throw badRequest("Request Parameters invalid.", { [name]: [`must be true or false, got ${short(v)}`] });
}

function search(ctx: ApiContext, req: ApiRequest, type: string, p: SearchParams): ApiAnswer {
  const { store } = ctx;
  const pageSize = positiveInt("page[size]", p.pageSize, DEFAULT_PAGE_SIZE);
  const pageNumber = positiveInt("page[number]", p.pageNumber, 1);
  const returnOnly = parseReturnOnly(p.returnOnly);
  const includeArchived = parseBool("options[include_archived_projects]", p.includeArchived, true);
  const records = findRecords(store, ctx.now(), { type, filters: p.filters, sort: p.sort, returnOnly, includeArchived });
  const fields = selectFields(store.schema, type, p.fields);
  const start = (pageNumber - 1) * pageSize;
  const page = records.slice(start, start + pageSize);
  const rc = render(ctx, req);
  const links = pageLinks(req, pageNumber, pageSize);
  return { status: 200, body: { data: page.map((r) => renderRecord(rc, r, fields)), links } };
}

/** CGI-style escaping as the site's links use it (`*` → `%2A`, space → `+`). */
function escapeLinkQuery(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, "+")
    .replace(/%7E/g, "~");
}

/** Query parameters re-serialised the way the site does it: escaped and sorted. */
function serialiseQuery(pairs: Array<[string, string]>): string {
  return pairs
    .map(([k, v]) => `${escapeLinkQuery(k)}=${escapeLinkQuery(v)}`)
    .sort()
    .join("&");
}

/** `links.self`, `links.next` (always, even on the last page) and `links.prev` (after page 1). */
function pageLinks(req: ApiRequest, pageNumber: number, pageSize: number): Record<string, string> {
  const base = [...req.query].filter(([k]) => k !== "page[number]" && k !== "page[size]");
  const selfQuery = serialiseQuery([...req.query]);
  const at = (n: number) => `${req.path}?${serialiseQuery([...base, ["page[number]", String(n)], ["page[size]", String(pageSize)]])}`;
  const links: Record<string, string> = { self: selfQuery ? `${req.path}?${selfQuery}` : req.path, next: at(pageNumber + 1) };
  if (pageNumber > 1) links["prev"] = at(pageNumber - 1);
  return links;
}

function readOne(ctx: ApiContext, req: ApiRequest, type: string, id: number): ApiAnswer {
  const q = req.query;
  const returnOnly = parseReturnOnly(q.get("options[return_only]") ?? undefined);
  const includeArchived = parseBool("options[include_archived_projects]", q.get("options[include_archived_projects]") ?? undefined, true);
  const rec = ctx.store.get(type, id);
  if (!rec || rec.retired !== (returnOnly === "retired") || (!includeArchived && inArchivedProject(ctx.store, rec))) {
    throw readNotFound(type, id);
  }
  const fields = selectFields(ctx.store.schema, type, q.get("fields") ?? undefined);
  const selfQuery = serialiseQuery([...q]);
  return {
    status: 200,
    body: { data: renderRecord(render(ctx, req), rec, fields), links: { self: selfQuery ? `${req.path}?${selfQuery}` : req.path } },
  };
}

function relationship(ctx: ApiContext, req: ApiRequest, type: string, id: number, field: string): ApiAnswer {
  const rec = ctx.store.getActive(type, id);
  if (!rec) throw readNotFound(type, id);
  const info = ctx.store.schema.field(type, field);
  if (!info || (info.dataType !== "entity" && info.dataType !== "multi_entity")) {
    throw badRequest(`API read() ${type}.${field} is not a link field.`, { field: [`${field} is not an entity or multi_entity field of ${type}`] });
  }
  const v = ctx.store.current(rec, info);
  const data = Array.isArray(v) ? (v as Link[]).map((l) => namedLink(ctx.store, l)) : isLink(v) ? namedLink(ctx.store, v) : null;
  return { status: 200, body: { data, links: { self: req.path } } };
}

// ---- writes --------------------------------------------------------------------------------

function bodyObject(req: ApiRequest): Record<string, unknown> {
  const b = req.body ?? {};
  if (typeof b !== "object" || Array.isArray(b) || b === null)
    throw badRequest("Request Parameters invalid.", { body: ["must be a JSON object of field values"] });
  return b as Record<string, unknown>;
}

function optionFields(req: ApiRequest): string | undefined {
  return req.query.get("options[fields]") ?? req.query.get("fields") ?? undefined;
}

function create(ctx: ApiContext, req: ApiRequest, type: string): ApiAnswer {
  const rec = ctx.store.create(type, bodyObject(req), writeContext(req));
  const wanted = optionFields(req);
  const fields = wanted ? selectFields(ctx.store.schema, type, wanted) : createAnswerFields(ctx.store.schema, rec);
  return { status: 201, body: { data: renderRecord(render(ctx, req, "create"), rec, fields) } };
}

function update(ctx: ApiContext, req: ApiRequest, type: string, id: number): ApiAnswer {
  const rec = ctx.store.update(type, id, bodyObject(req), writeContext(req));
  const fields = selectFields(ctx.store.schema, type, optionFields(req));
  // The recorded site adds `"status": "successful"` to update answers.
  return { status: 200, body: { data: renderRecord(render(ctx, req), rec, fields), links: {}, status: "successful" } };
}

function retire(ctx: ApiContext, req: ApiRequest, type: string, id: number): ApiAnswer {
  if (!ctx.store.retire(type, id, writeContext(req))) throw writeNotFound(type, id);
  return { status: 204 };
}

function revive(ctx: ApiContext, req: ApiRequest, type: string, id: number, urlType: string): ApiAnswer {
  const did = ctx.store.revive(type, id, writeContext(req));
  if (did === undefined) throw writeNotFound(type, id);
  return {
    status: 200,
    body: { data: { type, id }, links: { self: `/api/${req.version}/entity/${urlType}/${id}` }, meta: { did_revive: did } },
  };
}

/** `POST /entity/_batch`: all requests in one transaction; the first failure undoes them all. */
function batch(ctx: ApiContext, req: ApiRequest): ApiAnswer {
  const body = bodyObject(req);
  const requests = body["requests"];
  if (!Array.isArray(requests) || requests.length === 0) {
    throw badRequest("Request Parameters invalid.", { requests: ["must be a non-empty list"] });
  }
  const wctx = writeContext(req);
  const results = ctx.store.transaction(() =>
    requests.map((r, i) => {
      if (typeof r !== "object" || r === null) throw badRequest("Request Parameters invalid.", { [`requests[${i}]`]: ["must be an object"] });
      const o = r as Record<string, unknown>;
      const kind = o["request_type"];
      if (typeof o["entity"] !== "string") throw badRequest("Request Parameters invalid.", { entity: ["entity is not valid"] });
      const type = resolveType(ctx.store.schema, o["entity"]);
      const opts = (o["options"] ?? {}) as Record<string, unknown>;
      const data = (o["data"] ?? {}) as Record<string, unknown>;
      if (kind === "create") {
        const rec = ctx.store.create(type, data, wctx);
        const fields = opts["fields"] ? selectFields(ctx.store.schema, type, opts["fields"]) : createAnswerFields(ctx.store.schema, rec);
        return renderRecord(render(ctx, req, "create"), rec, fields);
      }
      const id = typeof o["record_id"] === "number" ? o["record_id"] : NaN;
      if (!Number.isInteger(id)) throw badRequest("Request Parameters invalid.", { record_id: [`requests[${i}].record_id must be a record id`] });
      if (kind === "update") {
        const rec = ctx.store.update(type, id, data, wctx);
        return renderRecord(render(ctx, req), rec, selectFields(ctx.store.schema, type, opts["fields"]));
      }
      if (kind === "delete") {
        if (!ctx.store.retire(type, id, wctx)) throw writeNotFound(type, id);
        return true;
      }
      throw badRequest("Request Parameters invalid.", { request_type: [`requests[${i}].request_type must be create, update or delete`] });
    }),
  );
  return { status: 200, body: { data: results } };
}

// ---- summaries -----------------------------------------------------------------------------

/** `POST /entity/{type}/_summarize`: summary_fields, filters, grouping, options[include_archived_projects]. */
function summarizeRoute(ctx: ApiContext, req: ApiRequest, type: string): ApiAnswer {
  const body = bodyObject(req);
  const options = (body["options"] ?? {}) as Record<string, unknown>;
  const includeArchived = parseBool("options[include_archived_projects]", options["include_archived_projects"], true);
  const data = summarize(ctx.store, ctx.now(), {
    type,
    summaryFields: body["summary_fields"],
    filters: body["filters"],
    grouping: body["grouping"],
    includeArchived,
    summaryParam: "summary_fields",
  });
  return { status: 200, body: { data } };
}

// ---- schema and site info ------------------------------------------------------------------

function schemaRoute(ctx: ApiContext, req: ApiRequest): ApiAnswer {
  const schema = ctx.store.schema;
  const [, a, b, c] = req.segments;
  const self = { self: req.path };
  if (!a) {
    const data: Record<string, unknown> = {};
    for (const t of schema.types()) data[t] = entitySchema(t);
    return { status: 200, body: { data, links: self } };
  }
  const type = resolveType(schema, a);
  if (!b) return { status: 200, body: { data: entitySchema(type), links: self } };
  if (b !== "fields") throw new SimError(404, 104, "Not Found", `No route for GET ${req.path}`);
  const raw = schema.entityFields(type)!;
  if (c) {
    const f = raw[c];
    if (!f) throw badRequest(`API schema_field_read() ${type}.${c} doesn't exist.`, { field_name: [`${c} is not a field of ${type}`] });
    return { status: 200, body: { data: restField(type, f as unknown as Record<string, unknown>), links: self } };
  }
  const data: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(raw)) data[name] = restField(type, f as unknown as Record<string, unknown>);
  return { status: 200, body: { data, links: self } };
}

export function entitySchema(type: string): Record<string, unknown> {
  return { name: { value: type, editable: false }, visible: { value: true, editable: false } };
}

/** A field in the REST schema form: the api3 form plus the keys REST adds, in the site's order. */
function restField(type: string, f: Record<string, unknown>): Record<string, unknown> {
  const pair = (v: unknown, editable: boolean) => ({ value: v, editable });
  const out: Record<string, unknown> = {
    name: f["name"] ?? pair(type, true),
    description: f["description"] ?? pair("", true),
    custom_metadata: f["custom_metadata"] ?? pair("", true),
    entity_type: f["entity_type"] ?? pair(type, false),
    data_type: f["data_type"],
    editable: f["editable"] ?? pair(true, false),
    mandatory: f["mandatory"] ?? pair(false, false),
    unique: f["unique"] ?? pair(false, false),
    properties: f["properties"] ?? {},
    visible: f["visible"] ?? pair(true, false),
    ui_value_displayable: f["ui_value_displayable"] ?? pair(true, false),
  };
  for (const [k, v] of Object.entries(f)) if (!(k in out)) out[k] = v;
  return out;
}

function preferences(req: ApiRequest): ApiAnswer {
  return { status: 200, body: { data: sitePreferences(), links: { self: req.path } } };
}

/** The site preferences both APIs serve (REST `GET /preferences`, api3 `preferences_read`). */
export function sitePreferences(): Record<string, unknown> {
  return {
    format_date_fields: "08/04/22 OR 04/08/22 (depending on the Month order preference)",
    date_component_order: "month_day",
    format_time_hour_fields: "12 hour",
    format_currency_fields_display_dollar_sign: false,
    format_currency_fields_decimal_options: "$1,000.99",
    format_currency_fields_negative_options: "- $1,000",
    format_number_fields: "1,000",
    format_float_fields: "9,999.99",
    format_float_fields_rounding: "9.999999",
    format_footage_fields: "10-05",
    support_local_storage: true,
    view_master_settings: JSON.stringify({ status_groups: [] }),
    duration_units: "days",
    hours_per_day: 8.0,
    enable_rv_integration: true,
    enable_shotgun_review_for_rv: false,
  };
}

/** `GET /api/v1` (and `/`): what the site is. Answered without a token, like a real site. */
export function serverInfo(version: string): Record<string, unknown> {
  return {
    data: {
      shotgun_version: "v8.26.0.8069 (build simulator)",
      api_version: version,
      shotgun_version_number: "8.26.0.8069",
      shotgun_build_number: "simulator",
      portfolio_version: "8.26.0.8069",
      unified_login_flow_enabled: false,
      user_authentication_method: "default",
      site_id: "1",
      site_name: "shotgrid_cache_simulator",
    },
  };
}

export { entityUrl };
