/**
 * ShotGrid's api3 protocol (`POST /api3/json`, what the Python `shotgun_api3` client speaks) on
 * the simulated site: `{"method_name", "params": [credentials, arguments]}` in, `{"results": …}`
 * out, failures as HTTP 200 `{"exception": true, "message", "error_code"}` (102 for credentials).
 * The methods run the REST side's own search, write, summary and schema code (api3-translate.ts
 * turns the api3 shapes into its inputs), over the same store, accounts and event log.
 */
import type { Principal, TokenIssuer } from "./auth.ts";
import type { Credentials } from "./http-server.ts";
import {
  API3_MAX_PAGE,
  argsObject,
  entityType,
  fieldValues,
  readArgs,
  recordId,
  returnFields,
  optionalBool,
  filters as api3Filters,
} from "./api3-translate.ts";
import { findRecords } from "./query.ts";
import { renderApi3Record, selectFields } from "./render.ts";
import { entitySchema, serverInfo, sitePreferences } from "./rest-api.ts";
import { SimError, SG_CODES, writeNotFound } from "./sim-error.ts";
import { newSessionUuid, type SimRecord, type SimStore, type WriteContext } from "./store.ts";
import { summarize } from "./summarize.ts";
import { short } from "./values.ts";

export interface Api3Deps {
  store: SimStore;
  tokens: TokenIssuer;
  credentials: Credentials;
  now: () => number;
}

/** The fault body the client raises from (`AuthenticationFault` for 102, `Fault` otherwise). */
export interface Api3Fault {
  exception: true;
  message: string;
  error_code: number;
}

/** Who calls, and the session id their writes' events carry. */
interface Caller {
  principal: Principal;
  sessionUuid: string;
}

type Method = (deps: Api3Deps, caller: Caller, args: unknown) => unknown;

const METHODS: Record<string, Method> = {
  read,
  create,
  update,
  delete: retire,
  revive,
  batch,
  summarize: summarizeMethod,
  schema_read: (d) => d.store.schema.raw,
  schema_entity_read: (d) => Object.fromEntries(d.store.schema.types().map((t) => [t, entitySchema(t)])),
  schema_field_read: schemaFieldRead,
  preferences_read: preferencesRead,
  get_session_token: (d, c) => ({ session_id: d.tokens.issue(c.principal).access_token }),
};

/** Answer one api3 request body. Always an HTTP 200 answer, as on a real site. */
export function handleApi3(deps: Api3Deps, bodyText: string): unknown {
  try {
    let body: unknown;
    try {
      body = JSON.parse(bodyText);
    } catch (err) {
      throw fault(`The request body is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw fault(`The request body must be {"method_name", "params"}, got ${short(body)}`);
    const { method_name: method, params = [] } = body as Record<string, unknown>;
    if (typeof method !== "string") throw fault(`method_name must be a string, got ${short(method)}`);
    if (!Array.isArray(params)) throw fault(`params must be a list [credentials, arguments], got ${short(params)}`);
    // `info` is what the client asks before it has credentials.
    if (method === "info") return info();
    const handler = Object.hasOwn(METHODS, method) ? METHODS[method] : undefined;
    const caller = authenticate(deps, params[0]);
    if (!handler) throw fault(`API method ${short(method)} is not served by the simulated site (served: info, ${Object.keys(METHODS).join(", ")})`);
    return { results: handler(deps, caller, params[1]) };
  } catch (err) {
    if (err instanceof SimError) return toFault(err);
    throw err;
  }
}

function fault(message: string, code: number = SG_CODES.badRequest): SimError {
  return new SimError(200, code, message);
}

/** A SimError as api3 reports it: one message naming the field and the reason. */
function toFault(err: SimError): Api3Fault {
  let message = err.detail ? `${err.title}: ${err.detail}` : err.title;
  const source = describeSource(err.source);
  if (source && !message.includes(source)) message += ` (${source})`;
  return { exception: true, message, error_code: err.code };
}

function describeSource(source: unknown): string {
  if (typeof source !== "object" || source === null) return "";
  return Object.entries(source as Record<string, unknown>)
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : typeof v === "string" ? v.trim() : JSON.stringify(v)}`)
    .join("; ");
}

function info(): Record<string, unknown> {
  const site = serverInfo("v1.1")["data"] as Record<string, unknown>;
  const full = String(site["shotgun_version_number"]).split(".").map(Number);
  return {
    // >= 7.4.0: the client pages with `return_paging_info_without_counts` / `has_next_page`.
    version: full.slice(0, 3),
    full_version: full,
    api_max_entities_per_page: API3_MAX_PAGE,
    s3_uploads_enabled: false,
    user_authentication_method: site["user_authentication_method"],
    unified_login_flow_enabled: site["unified_login_flow_enabled"],
    site_name: site["site_name"],
  };
}

// ---- credentials ---------------------------------------------------------------------------

function authenticate(deps: Api3Deps, auth: unknown): Caller {
  const deny = (message: string) => fault(message, SG_CODES.badCredentials);
  if (typeof auth !== "object" || auth === null || Array.isArray(auth)) {
    throw deny("params[0] must hold the credentials: script_name + script_key, user_login + user_password, or session_token.");
  }
  const a = auth as Record<string, unknown>;
  const { credentials } = deps;
  let principal: Principal;
  if (a["script_name"] !== undefined) {
    const name = String(a["script_name"]);
    if (name !== credentials.scriptName || a["script_key"] !== credentials.scriptKey) throw deny(`Can't authenticate script '${name}'`);
    principal = { kind: "script", user: credentials.scriptUser, login: name };
  } else if (a["user_login"] !== undefined) {
    const login = String(a["user_login"]);
    const u = credentials.users.get(login);
    if (!u || u.password !== a["user_password"]) throw deny(`Can't authenticate user '${login}'`);
    principal = { kind: "user", user: u.user, login };
  } else if (a["session_token"] !== undefined) {
    const v = typeof a["session_token"] === "string" ? deps.tokens.verify(a["session_token"]) : "unknown";
    if (v === "expired") throw deny("The session token has expired.");
    if (v === "unknown") throw deny("The session token is not valid.");
    principal = v;
  } else {
    throw deny("No credentials: params[0] needs script_name + script_key, user_login + user_password, or session_token.");
  }
  const sudo = a["sudo_as_login"];
  if (sudo !== undefined && sudo !== null) {
    const u = credentials.users.get(String(sudo));
    if (!u) throw deny(`sudo_as_login: there is no user with login ${short(sudo)}`);
    principal = { kind: "user", user: u.user, login: String(sudo) };
  }
  const uuid = a["session_uuid"];
  return { principal, sessionUuid: typeof uuid === "string" && uuid ? uuid : newSessionUuid() };
}

function writeContext(c: Caller): WriteContext {
  return { user: c.principal.user, sessionUuid: c.sessionUuid };
}

// ---- reads ---------------------------------------------------------------------------------

function read(deps: Api3Deps, _c: Caller, rawArgs: unknown): unknown {
  const { store } = deps;
  const q = readArgs(store.schema, argsObject("read", rawArgs));
  const records = findRecords(store, deps.now(), {
    type: q.type,
    filters: q.filters,
    sort: q.sort,
    returnOnly: q.returnOnly,
    includeArchived: q.includeArchived,
  });
  const fields = selectFields(store.schema, q.type, q.returnFields);
  const start = (q.page - 1) * q.pageSize;
  const entities = records.slice(start, start + q.pageSize).map((r) => renderApi3Record(store, r, fields));
  const out: Record<string, unknown> = { entities };
  if (q.pagingInfo === "without_counts") out["paging_info"] = { has_next_page: start + q.pageSize < records.length };
  if (q.pagingInfo === "counts") {
    out["paging_info"] = {
      entity_count: records.length,
      current_page: q.page,
      entities_per_page: q.pageSize,
      page_count: Math.ceil(records.length / q.pageSize),
    };
  }
  return out;
}

function summarizeMethod(deps: Api3Deps, _c: Caller, rawArgs: unknown): unknown {
  const m = "summarize";
  const args = argsObject(m, rawArgs);
  return summarize(deps.store, deps.now(), {
    type: entityType(deps.store.schema, m, args["type"]),
    summaryFields: args["summaries"],
    filters: api3Filters(m, args["filters"]),
    grouping: args["grouping"],
    includeArchived: optionalBool(m, "include_archived_projects", args["include_archived_projects"], true),
    summaryParam: "summaries",
  });
}

// ---- writes --------------------------------------------------------------------------------

/** The answer of a create or update: type, id, the fields written and the asked return_fields. */
function written(store: SimStore, rec: SimRecord, data: Record<string, unknown>, extra: string[]): Record<string, unknown> {
  return renderApi3Record(store, rec, selectFields(store.schema, rec.type, [...Object.keys(data), ...extra]));
}

function create(deps: Api3Deps, c: Caller, rawArgs: unknown, m = "create"): unknown {
  const { store } = deps;
  const args = argsObject(m, rawArgs);
  const type = entityType(store.schema, m, args["type"]);
  const data = fieldValues(m, args["fields"] ?? []);
  const wanted = returnFields(m, args["return_fields"]);
  const rec = store.create(type, data, writeContext(c));
  return written(store, rec, data, wanted);
}

function update(deps: Api3Deps, c: Caller, rawArgs: unknown, m = "update"): unknown {
  const { store } = deps;
  const args = argsObject(m, rawArgs);
  const type = entityType(store.schema, m, args["type"]);
  const id = recordId(m, args["id"]);
  const data = fieldValues(m, args["fields"], args["multi_entity_update_modes"]);
  const rec = store.update(type, id, data, writeContext(c));
  return written(store, rec, data, []);
}

/** true when retired now, false when it already was; a Fault when it never existed. */
function retire(deps: Api3Deps, c: Caller, rawArgs: unknown, m = "delete"): boolean {
  const { store } = deps;
  const args = argsObject(m, rawArgs);
  const type = entityType(store.schema, m, args["type"]);
  const id = recordId(m, args["id"]);
  if (!store.get(type, id)) throw writeNotFound(type, id);
  return store.retire(type, id, writeContext(c));
}

/** true when revived, false when it was not retired; a Fault when it never existed. */
function revive(deps: Api3Deps, c: Caller, rawArgs: unknown): boolean {
  const m = "revive";
  const { store } = deps;
  const args = argsObject(m, rawArgs);
  const did = store.revive(entityType(store.schema, m, args["type"]), recordId(m, args["id"]), writeContext(c));
  if (did === undefined) throw writeNotFound(String(args["type"]), String(args["id"]));
  return did;
}

/** Every request in one transaction: the first failure undoes them all and names its index. */
function batch(deps: Api3Deps, c: Caller, rawArgs: unknown): unknown[] {
  if (!Array.isArray(rawArgs) || rawArgs.length === 0) {
    throw fault(`API batch() params[1] must be a non-empty list of requests, got ${short(rawArgs)}`);
  }
  return deps.store.transaction(() =>
    rawArgs.map((r, i) => {
      const kind = typeof r === "object" && r !== null ? (r as Record<string, unknown>)["request_type"] : undefined;
      const m = `batch[${i}] ${String(kind)}`;
      try {
        if (kind === "create") return create(deps, c, r, m);
        if (kind === "update") return update(deps, c, r, m);
        if (kind === "delete") return retire(deps, c, r, m);
        throw fault(`API batch() request ${i}: request_type must be create, update or delete, got ${short(kind)}`);
      } catch (err) {
        if (err instanceof SimError && !err.title.startsWith("API batch")) {
          throw new SimError(err.status, err.code, `API batch() request ${i} (${String(kind)}): ${err.title}`, err.detail, err.source);
        }
        throw err;
      }
    }),
  );
}

// ---- schema and preferences ----------------------------------------------------------------

function schemaFieldRead(deps: Api3Deps, _c: Caller, rawArgs: unknown): unknown {
  const m = "schema_field_read";
  const schema = deps.store.schema;
  const args = argsObject(m, rawArgs);
  const type = entityType(schema, m, args["type"]);
  const fields = schema.entityFields(type) ?? {};
  const name = args["field_name"];
  if (name === undefined || name === null) return fields;
  if (typeof name !== "string" || !Object.hasOwn(fields, name)) {
    throw new SimError(200, SG_CODES.badRequest, `API schema_field_read() ${type}.${String(name)} doesn't exist.`, null, {
      field_name: [`${short(name)} is not a field of ${type}`],
    });
  }
  return { [name]: fields[name] };
}

function preferencesRead(_d: Api3Deps, _c: Caller, rawArgs: unknown): unknown {
  const m = "preferences_read";
  const prefs = rawArgs === undefined ? [] : (argsObject(m, rawArgs)["prefs"] ?? []);
  if (!Array.isArray(prefs) || prefs.some((p) => typeof p !== "string"))
    throw fault(`API preferences_read() prefs must be a list of preference names, got ${short(prefs)}`);
  const all = sitePreferences();
  if (prefs.length === 0) return all;
  return Object.fromEntries((prefs as string[]).filter((p) => Object.hasOwn(all, p)).map((p) => [p, all[p]]));
}
