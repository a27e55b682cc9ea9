/**
 * A typed client for shotgrid-cache, for Node tools: `createCacheClient("http://cache:8080")`.
 * Generated types come from gen/; any Connect, gRPC or gRPC-web client works as well.
 *
 * `query` takes ShotGrid filters as plain JSON, in the shapes ShotGrid's own clients use:
 * `[["code", "is", "SH010"]]`, shotgun_api3's `{filter_operator: "any", filters: [...]}` (also
 * nested inside a list), and the REST API's `{logical_operator: "or", conditions: [...]}`.
 *
 * Writes: `create({entityType, data, returnFields})`, `update({entityType, id, data,
 * multiEntityUpdateModes: {assets: "add"}})`, `delete`, `revive`, and `batch({operations: [{operation:
 * {case: "create", value: {...}}}]})` (all or nothing), made as the token's client.
 */
import { fromJson, isMessage, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type CallOptions, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { CacheService, type QueryRequestSchema, type QueryResponse } from "../gen/shotgrid/cache/v1/cache_pb.ts";

export interface CacheClientOptions {
  /** "connect" (default; JSON over HTTP/1.1, GET for reads), "grpc" (HTTP/2) or "grpc-web". */
  protocol?: "connect" | "grpc" | "grpc-web";
  /** Binary protobuf instead of JSON (Connect and gRPC-web). Default false. */
  binary?: boolean;
  /**
   * The client's bearer token (from `shotgrid-cache auth new-token`), sent as
   * `Authorization: Bearer <token>` on every call. Needed when the server runs with
   * `--auth-file`; writes (`create`, `update`, `delete`, `revive`, `batch`) always need one.
   */
  token?: string;
}

/** A condition: field path, operator, then the value(s), e.g. `["sg_status_list", "in", ["ip", "rdy"]]`. */
export type ShotgridCondition = readonly (JsonValue | Date | readonly (JsonValue | Date)[])[];
/** A group of conditions: shotgun_api3's shape or the REST API's. */
export type ShotgridFilterGroup =
  | { readonly filter_operator: string; readonly filters: readonly (ShotgridCondition | ShotgridFilterGroup)[] }
  | { readonly logical_operator?: string; readonly conditions: readonly (ShotgridCondition | ShotgridFilterGroup)[] };
/** What `query` takes as `filters`: a list of conditions and groups (all must match), or one group. */
export type ShotgridFilters = readonly (ShotgridCondition | ShotgridFilterGroup)[] | ShotgridFilterGroup;

export type CacheQueryRequest = Omit<MessageInitShape<typeof QueryRequestSchema>, "filters"> & {
  /** Plain ShotGrid filters, or a `google.protobuf.Value` already built. Absent or empty: every record. */
  filters?: ShotgridFilters | Value;
};

export type CacheClient = Omit<Client<typeof CacheService>, "query"> & {
  query(request: CacheQueryRequest, options?: CallOptions): Promise<QueryResponse>;
};

export function createCacheClient(baseUrl: string, options: CacheClientOptions = {}): CacheClient {
  const protocol = options.protocol ?? "connect";
  const useBinaryFormat = options.binary ?? false;
  const token = options.token;
  const interceptors: Interceptor[] = [];
  if (token !== undefined) {
    interceptors.push((next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    });
  }
  const transport =
    protocol === "grpc"
      ? createGrpcTransport({ baseUrl, interceptors })
      : protocol === "grpc-web"
        ? createGrpcWebTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat, interceptors })
        : createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat, useHttpGet: true, interceptors });
  const client = createClient(CacheService, transport);
  return {
    ...client,
    // async: a bad filter shape rejects like any other invalid_argument, it does not throw.
    query: async (request, callOptions) => {
      // $typeName dropped: the request is rebuilt around the converted filters.
      const { filters, $typeName: _typeName, ...rest } = request;
      const value = filters === undefined || isMessage(filters, ValueSchema) ? filters : shotgridFilters(filters);
      return client.query({ ...rest, ...(value ? { filters: value } : {}) }, callOptions);
    },
  };
}

/**
 * ShotGrid filters as the `google.protobuf.Value` the Query request carries, in the form the
 * service reads (a list of conditions, or `{logical_operator, conditions}` groups). Bad shapes
 * are `invalid_argument` errors naming the place, e.g. `filters[1].filter_operator`; what the
 * conditions say (fields, operators, values) is checked by the service against the site's schema.
 */
export function shotgridFilters(filters: ShotgridFilters | null): Value {
  const converted = filters === null ? null : convertTop(filters as unknown, "filters");
  return fromJson(ValueSchema, converted);
}

function invalid(where: string, reason: string): ConnectError {
  return new ConnectError(`${where}: ${reason}`, Code.InvalidArgument);
}

function convertTop(raw: unknown, where: string): JsonValue {
  if (Array.isArray(raw)) {
    const items = raw.map((item: unknown, i) => convertItem(item, `${where}[${i}]`));
    // The service's list form holds conditions only; a list with groups in it (as shotgun_api3
    // allows) means "all of these", which is an "and" group.
    return items.every((item) => Array.isArray(item)) ? items : { logical_operator: "and", conditions: items };
  }
  if (isPlainObject(raw)) return convertGroup(raw, where);
  throw invalid(
    where,
    `must be a list of conditions like [["code", "is", "SH010"]] or a group like {"filter_operator": "any", "filters": [...]}, got ${describe(raw)}`,
  );
}

function convertItem(raw: unknown, where: string): JsonValue {
  if (Array.isArray(raw)) return raw.map((value: unknown, i) => jsonValue(value, `${where}[${i}]`));
  if (isPlainObject(raw)) return convertGroup(raw, where);
  throw invalid(where, `must be a condition like ["code", "is", "SH010"] or a group like {"filter_operator": "any", "filters": [...]}, got ${describe(raw)}`);
}

const OPERATORS: Record<string, "and" | "or"> = { all: "and", and: "and", any: "or", or: "or" };

function convertGroup(raw: Record<string, unknown>, where: string): JsonValue {
  const keys = Object.keys(raw);
  const api3 = "filters" in raw;
  const rest = "conditions" in raw;
  if (api3 && rest) throw invalid(where, `a group has "filters" (shotgun_api3) or "conditions" (REST API), not both`);
  if (!api3 && !rest) throw invalid(where, `a group needs "filters" (with "filter_operator") or "conditions" (with "logical_operator")`);
  for (const key of keys) {
    if (!["filter_operator", "logical_operator", "filters", "conditions"].includes(key)) {
      throw invalid(`${where}.${key}`, `unknown key; a group has "filter_operator" and "filters" (or "logical_operator" and "conditions")`);
    }
  }
  if ("filter_operator" in raw && "logical_operator" in raw) throw invalid(where, `give "filter_operator" or "logical_operator", not both`);
  const opKey = "filter_operator" in raw ? "filter_operator" : "logical_operator";
  const op = raw[opKey] ?? "and";
  const logical = typeof op === "string" ? OPERATORS[op] : undefined;
  if (!logical) throw invalid(`${where}.${opKey}`, `must be "all" or "any" (or "and" / "or"), got ${describe(op)}`);
  const listKey = api3 ? "filters" : "conditions";
  const list = raw[listKey];
  if (!Array.isArray(list)) throw invalid(`${where}.${listKey}`, `must be a list of conditions and groups, got ${describe(list)}`);
  return { logical_operator: logical, conditions: list.map((item: unknown, i) => convertItem(item, `${where}.${listKey}[${i}]`)) };
}

/** A condition's part as JSON: dates become ShotGrid's ISO form; anything else not JSON is an error. */
function jsonValue(value: unknown, where: string): JsonValue {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw invalid(where, `must be a finite number, got ${value}`);
    return value;
  }
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw invalid(where, "is an invalid Date");
    return value.toISOString().replace(/\.\d{3}Z$/, "Z");
  }
  if (Array.isArray(value)) return value.map((v: unknown, i) => jsonValue(v, `${where}[${i}]`));
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonValue(v, `${where}.${k}`)]));
  throw invalid(where, `must be JSON (string, number, boolean, null, list or object), got ${describe(value)}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== "object") return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return value.constructor?.name && value.constructor !== Object ? `a ${value.constructor.name}` : "an object";
  return `${typeof value} ${JSON.stringify(value) ?? String(value)}`;
}
