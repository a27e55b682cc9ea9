/**
 * The GetEntity hit path: Connect unary calls over HTTP/1.1 (POST `application/json` or
 * `application/proto`, and GET `?encoding=json|proto&message=…`) that are plain cache hits are
 * answered here, without connect-node's generic machinery (URL and Headers objects, abort
 * controllers, async iterables, interceptors), from bytes encoded once per (record, fields,
 * encoding); only the freshness part is written per request (its `ageMs` changes every call).
 *
 * Query (same transports) takes this path too, hit or miss: validated once per distinct request
 * bytes, asked of the cache as the handler would (so hits, misses and coalesced waits count the
 * same), and a flight's shared answer is encoded once per (answer, encoding): each waiter only
 * appends its freshness. A repeated Query whose answer the cache holds is answered synchronously
 * from the stored text's encoding (kept per (query key, stored text, encoding) with GetEntity's,
 * so a changed entry is encoded anew), counted as a hit once sent. Its errors are written as
 * connect-node writes them. A client that
 * accepts compression goes to the normal path (it may compress the answer).
 *
 * It answers byte for byte what the normal handler would (test/fast-path-equivalence.test.ts,
 * test/fast-path-query-equivalence.test.ts).
 * Anything that is not a simple hit goes to the normal handler unchanged: a miss, an invalid
 * request, a schema not loaded yet, a timeout header, request compression, a response the
 * normal path would compress, an unusual content type or query, HTTP/2. A POST body already read
 * is handed on intact. The hit keeps the normal path's rules: request size limit, validation,
 * freshness (including "site unreachable, so stale"), cache and RPC metrics, the debug log line.
 */
import type http from "node:http";
import type http2 from "node:http2";
import { create, fromBinary, fromJsonString, toBinary, toJsonString, type DescMessage, type JsonWriteOptions, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { base64Decode } from "@bufbuild/protobuf/wire";
import type { Logger } from "pino";
import {
  CacheService,
  EntitySchema,
  GetEntityRequestSchema,
  QueryRequestSchema,
  QueryResponseSchema,
  type GetEntityRequest,
  type QueryRequest,
} from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import { toEntityMessage } from "../service/cache-service.ts";
import { toConnectError } from "../service/error-mapping.ts";
import type { CacheAnswer, Freshness } from "../cache/types.ts";
import type { Entity } from "../shotgrid/types.ts";
import type { EntityHit, HitPath, QueryHit } from "../service/hit-path.ts";
import type { Metrics } from "./metrics.ts";

export interface FastPathOptions {
  hits: HitPath;
  /** The JSON options the service was registered with (they shape the normal answers). */
  jsonOptions?: Partial<JsonWriteOptions> & { ignoreUnknownFields?: boolean };
  /** As given to the Connect adapter. */
  readMaxBytes: number;
  writeMaxBytes: number;
  metrics?: Metrics;
  logger?: Logger;
  /** Bound on the bytes of kept encodings (least recently made go first). Default 8 MiB. */
  maxEncodedBytes?: number;
}

/**
 * Handles the request and returns true (answering it, or passing it to `fallback` itself once
 * its body is read), or returns false having touched nothing: the caller runs the normal handler.
 */
export type FastPath = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
  path: string,
  fallback: () => void,
) => boolean;

const METHOD_NAME = `${CacheService.typeName}/${CacheService.method.getEntity.name}`;
export const GET_ENTITY_PATH = `/${METHOD_NAME}`;
const QUERY_METHOD_NAME = `${CacheService.typeName}/${CacheService.method.query.name}`;
export const QUERY_PATH = `/${QUERY_METHOD_NAME}`;
/** Codes the normal path logs as warnings (server faults), as rpc-interceptors.ts does. */
const SERVER_FAULT_CODES = new Set(["unknown", "internal", "unavailable", "data_loss", "unimplemented"]);
/** connect-es compresses unary answers from this size when the client accepts it (its default). */
const COMPRESS_MIN_BYTES = 1024;
/** Requests up to this size are parsed once per distinct bytes; at most this many kept. */
const PARSE_MEMO_MAX_BYTES = 1024;
const PARSE_MEMO_ENTRIES = 10_000;
/** JSON options whose effect on the answer this path reproduces; any other makes it stand aside. */
const KNOWN_JSON_OPTIONS = new Set(["alwaysEmitImplicit", "ignoreUnknownFields"]);

/** The entity (GetEntity) or entities (Query) part of one answer, encoded once. */
interface Encoded {
  /** The held record's (or stored Query answer's) text it was made from. */
  source: string;
  /** `{"entity":…,"freshness":{` (Query: `{"entities":[…],"freshness":{`) */
  jsonHead?: string;
  jsonHeadBytes?: number;
  /** Field 1 (the entity; Query: each entity) in full, then field 2's tag: the freshness length and bytes follow. */
  protoHead?: Buffer;
  bytes: number;
}

/** A fast path for `options`, or undefined when the service's options leave nothing it can answer alike. */
export function createFastPath(options: FastPathOptions): FastPath | undefined {
  const jsonOptions = options.jsonOptions ?? {};
  if (Object.keys(jsonOptions).some((k) => !KNOWN_JSON_OPTIONS.has(k))) return undefined;
  const emitImplicit = jsonOptions.alwaysEmitImplicit === true;
  // As connect-es reads JSON: unknown fields ignored unless the service says otherwise.
  const readJson = { ignoreUnknownFields: jsonOptions.ignoreUnknownFields ?? true };
  const writeJson = { alwaysEmitImplicit: emitImplicit };
  const { hits, metrics, logger, readMaxBytes, writeMaxBytes } = options;
  const encodings = new EncodingCache(options.maxEncodedBytes ?? 8 * 1024 * 1024);
  const decoder = new TextDecoder();

  /**
   * Answer a hit; false (nothing sent, nothing counted) when the normal path must answer. A fault
   * here is a bug, but it must cost one request its fast path, not the process: the normal path
   * then answers.
   */
  const answer = (req: http.IncomingMessage, res: http.ServerResponse, message: GetEntityRequest, binary: boolean, started: number): boolean => {
    try {
      return answerHit(req, res, message, binary, started);
    } catch (err) {
      logger?.warn({ rpc: METHOD_NAME, err: err instanceof Error ? err.message : String(err) }, "GetEntity fast path failed; answering on the normal path");
      return res.headersSent;
    }
  };
  const answerHit = (req: http.IncomingMessage, res: http.ServerResponse, message: GetEntityRequest, binary: boolean, started: number): boolean => {
    const hit = hits.getEntity(message);
    if (!hit) return false;
    const enc = encodings.get(hit);
    const body = binary ? protoBody(encodings, enc, hits, hit) : jsonBody(encodings, enc, hits, hit, emitImplicit, writeJson);
    if (body === undefined) return false;
    const length = typeof body === "string" ? Buffer.byteLength(body) : body.length;
    if (length > writeMaxBytes) return false;
    // The normal path would compress this answer: leave it to the normal path.
    if (length >= COMPRESS_MIN_BYTES && req.headers["accept-encoding"]) return false;
    hits.commit(hit);
    res.writeHead(200, { "content-length": String(length), "content-type": binary ? "application/proto" : "application/json" });
    res.end(body);
    const seconds = (performance.now() - started) / 1000;
    metrics?.rpcFinished(METHOD_NAME, "ok", seconds);
    if (logger?.isLevelEnabled("debug")) logger.debug({ rpc: METHOD_NAME, code: "ok", ms: Math.round(seconds * 1e4) / 10 }, "rpc");
    return true;
  };

  // Clients repeat the same requests: the same bytes parse to the same message, so keep it (and
  // the hit path keeps its validation per message). Small requests only, a bounded number.
  const parsed = new Map<string, object>();
  /** GET query strings (`connect=v1&encoding=…&message=…`), parsed, per method path. */
  const getQueries = new Map<string, { message: object; binary: boolean }>();
  /** A query the normal path would read as a plain (uncompressed) message, parsed; else undefined. */
  const parseGetQuery = <T extends DescMessage>(schema: T, query: string): { message: MessageShape<T>; binary: boolean } | undefined => {
    // connect-es reads the query through a URL, which drops a fragment: leave such oddities to it.
    if (query.includes("#")) return undefined;
    const params = new URLSearchParams(query);
    const compression = params.get("compression");
    if (compression !== null && compression !== "identity") return undefined;
    const encoding = params.get("encoding");
    if (encoding !== "json" && encoding !== "proto") return undefined;
    const text = params.get("message") ?? "";
    let bytes: Uint8Array;
    try {
      bytes = params.get("base64") === "1" ? base64Decode(text) : Buffer.from(text);
    } catch {
      return undefined;
    }
    // Over the limit the normal path answers resource_exhausted.
    if (bytes.length > readMaxBytes) return undefined;
    const message = parse(schema, bytes, encoding === "proto");
    return message && { message, binary: encoding === "proto" };
  };
  const parse = <T extends DescMessage>(schema: T, bytes: Uint8Array, binary: boolean): MessageShape<T> | undefined => {
    const memo = bytes.length <= PARSE_MEMO_MAX_BYTES;
    const key = memo ? (binary ? "p" : "j") + schema.typeName + " " + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1") : "";
    const known = memo ? (parsed.get(key) as MessageShape<T> | undefined) : undefined;
    if (known) return known;
    let message: MessageShape<T>;
    try {
      message = binary ? fromBinary(schema, bytes) : fromJsonString(schema, decoder.decode(bytes), readJson);
    } catch {
      return undefined; // the normal path answers the error
    }
    if (memo) {
      if (parsed.size >= PARSE_MEMO_ENTRIES) parsed.clear();
      parsed.set(key, message);
    }
    return message;
  };

  /** Encodings of Query answers, per answer array: coalesced waiters share one array, so one encoding. */
  const queryEncodings = new WeakMap<readonly Entity[], { json?: string; proto?: Buffer }>();
  const queryBody = (answer: CacheAnswer<Entity[]>, binary: boolean): string | Buffer => {
    let enc = queryEncodings.get(answer.value);
    if (!enc) queryEncodings.set(answer.value, (enc = {}));
    if (binary) return withFreshnessProto((enc.proto ??= queryProtoHead(answer.value)), answer.freshness);
    return `${(enc.json ??= queryJsonHead(answer.value, writeJson))}${freshnessJson(answer.freshness, emitImplicit)}}}`;
  };
  /**
   * Answer a Query hit from the encoding kept for its stored text (made on the first hit of that
   * text); false (nothing sent, nothing counted) when the asynchronous path must answer.
   */
  const answerQueryHit = (res: http.ServerResponse, hit: QueryHit, binary: boolean, started: number): boolean => {
    try {
      const enc = encodings.get(hit);
      let body: string | Buffer;
      if (binary) {
        if (enc.protoHead === undefined) {
          enc.protoHead = queryProtoHead(hits.entitiesOf(hit));
          encodings.grow(enc, enc.protoHead.length);
        }
        body = withFreshnessProto(enc.protoHead, hit.freshness);
      } else {
        if (enc.jsonHead === undefined) {
          const head = queryJsonHead(hits.entitiesOf(hit), writeJson);
          enc.jsonHead = head;
          encodings.grow(enc, Buffer.byteLength(head));
        }
        body = `${enc.jsonHead}${freshnessJson(hit.freshness, emitImplicit)}}}`;
      }
      const length = typeof body === "string" ? Buffer.byteLength(body) : body.length;
      // Too large: the asynchronous path writes the normal path's error (and counts as it does).
      if (length > writeMaxBytes) return false;
      hits.commitQuery(hit);
      res.writeHead(200, { "content-length": String(length), "content-type": binary ? "application/proto" : "application/json" });
      res.end(body);
      finished(QUERY_METHOD_NAME, "ok", started);
      return true;
    } catch (err) {
      logger?.warn({ rpc: QUERY_METHOD_NAME, err: err instanceof Error ? err.message : String(err) }, "Query fast path failed; answering on its asynchronous path");
      return res.headersSent;
    }
  };
  /** Counted and logged as observeRpcs (rpc-interceptors.ts) does on the normal path. */
  const finished = (name: string, code: string, started: number, err?: ConnectError): void => {
    const seconds = (performance.now() - started) / 1000;
    metrics?.rpcFinished(name, code, seconds);
    if (!logger) return;
    const ms = Math.round(seconds * 1e4) / 10;
    if (!err) {
      if (logger.isLevelEnabled("debug")) logger.debug({ rpc: name, code, ms }, "rpc");
    } else logger[SERVER_FAULT_CODES.has(code) ? "warn" : "info"]({ rpc: name, code, ms, err: err.rawMessage }, "rpc failed");
  };
  /** A Connect unary error, as connect-node writes it. */
  const writeError = (res: http.ServerResponse, name: string, error: ConnectError, started: number): void => {
    const body = errorToJsonBytes(error, jsonOptions);
    // connect-node's headers come out in name order: content-length, content-type, then metadata.
    const headers: Array<[string, string]> = [["content-type", "application/json"]];
    error.metadata.forEach((value, key) => void headers.push([key, value]));
    headers.push(["content-length", String(body.byteLength)]);
    headers.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    res.writeHead(codeToHttpStatus(error.code), headers.flat());
    res.end(body);
    finished(name, codeToString(error.code), started, error);
  };
  /** Answer a Query: always answered here (no fallback once the cache is asked: it has counted). */
  const answerQuery = (res: http.ServerResponse, message: QueryRequest, binary: boolean, started: number): void => {
    // A repeated request whose answer the cache holds: no promise, no parse, no re-encoding.
    const hit = hits.peekQuery(message);
    if (hit && answerQueryHit(res, hit, binary, started)) return;
    hits.query(message).then(
      (answer) => {
        let body: string | Buffer;
        try {
          body = queryBody(answer, binary);
        } catch (err) {
          writeError(res, QUERY_METHOD_NAME, toConnectError(err), started);
          return;
        }
        const length = typeof body === "string" ? Buffer.byteLength(body) : body.length;
        if (length > writeMaxBytes) {
          writeError(res, QUERY_METHOD_NAME, new ConnectError(`message size ${length} is larger than configured writeMaxBytes ${writeMaxBytes}`, Code.ResourceExhausted), started);
          return;
        }
        res.writeHead(200, { "content-length": String(length), "content-type": binary ? "application/proto" : "application/json" });
        res.end(body);
        finished(QUERY_METHOD_NAME, "ok", started);
      },
      (err: unknown) => writeError(res, QUERY_METHOD_NAME, toConnectError(err), started),
    );
  };

  return (anyReq, anyRes, path, fallback) => {
    const isQuery = path === QUERY_PATH;
    if ((!isQuery && path !== GET_ENTITY_PATH) || anyReq.httpVersionMajor !== 1) return false;
    const req = anyReq as http.IncomingMessage;
    const res = anyRes as http.ServerResponse;
    const h = req.headers;
    if (h["connect-timeout-ms"] !== undefined) return false;
    // A Query answer is often large enough to be compressed, which this path leaves to the normal one.
    if (isQuery && h["accept-encoding"] !== undefined) return false;
    const schema = isQuery ? QueryRequestSchema : GetEntityRequestSchema;
    const started = performance.now();
    if (req.method === "GET") {
      const url = req.url ?? "";
      const q = url.indexOf("?");
      if (q === -1) return false;
      const query = url.slice(q + 1);
      const memoKey = `${path}?${query}`;
      let get = getQueries.get(memoKey);
      if (!get) {
        get = parseGetQuery(schema, query);
        if (!get) return false;
        if (query.length <= PARSE_MEMO_MAX_BYTES) {
          if (getQueries.size >= PARSE_MEMO_ENTRIES) getQueries.clear();
          getQueries.set(memoKey, get);
        }
      }
      if (isQuery) {
        answerQuery(res, get.message as QueryRequest, get.binary, started);
        return true;
      }
      return answer(req, res, get.message as GetEntityRequest, get.binary, started);
    }
    if (req.method !== "POST") return false;
    const type = h["content-type"];
    if (type !== "application/json" && type !== "application/proto") return false;
    const encodingHeader = h["content-encoding"];
    if (encodingHeader !== undefined && encodingHeader !== "identity") return false;
    // Without a declared length the body could be any size: the normal path reads it with its limit.
    const declared = Number(h["content-length"]);
    if (!(declared >= 0 && declared <= readMaxBytes)) return false;
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.once("end", () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const binary = type === "application/proto";
      const message = parse(schema, body, binary);
      if (message !== undefined) {
        if (isQuery) return answerQuery(res, message as QueryRequest, binary, started);
        if (answer(req, res, message as GetEntityRequest, binary, started)) return;
      }
      replayBody(req, body);
      fallback();
    });
    // The client went away mid-body: there is nobody to answer.
    req.once("error", () => res.destroy());
    return true;
  };
}

/** The freshness members of a JSON answer (after `"freshness":{`), as the normal path writes them. */
function freshnessJson(f: Freshness, emitImplicit: boolean): string {
  let tail = `"source":${JSON.stringify(f.source)}`;
  const age = Math.max(0, Math.round(f.ageMs));
  // int64 is a JSON string; defaults are left out unless the service writes them all.
  if (age !== 0 || emitImplicit) tail += `,"ageMs":"${BigInt(age)}"`;
  if (f.asOfEventId !== 0 || emitImplicit) tail += `,"asOfEventId":"${BigInt(f.asOfEventId)}"`;
  if (f.stale || emitImplicit) tail += `,"stale":${f.stale}`;
  return tail;
}

/** Let the normal handler read `body` again from a request whose stream was consumed here. */
function replayBody(req: http.IncomingMessage, body: Buffer): void {
  Object.defineProperty(req, Symbol.asyncIterator, {
    configurable: true,
    value: async function* () {
      if (body.length > 0) yield body;
    },
  });
}

/** `{"entities":[…],"freshness":{` (`{"freshness":{` when none) as the normal path writes it: the freshness goes last (field 2). */
function queryJsonHead(entities: readonly Entity[], writeJson: Partial<JsonWriteOptions>): string {
  const whole = toJsonString(QueryResponseSchema, create(QueryResponseSchema, { entities: entities.map(toEntityMessage) }), writeJson);
  return `${whole.slice(0, -1)}${whole === "{}" ? "" : ","}"freshness":{`;
}

/** The entities (field 1, repeated) in full, then field 2's tag (freshness, length-delimited). */
function queryProtoHead(entities: readonly Entity[]): Buffer {
  const encoded = toBinary(QueryResponseSchema, create(QueryResponseSchema, { entities: entities.map(toEntityMessage) }));
  const head = Buffer.allocUnsafe(encoded.length + 1);
  head.set(encoded, 0);
  head[encoded.length] = 0x12;
  return head;
}

/** The JSON answer, or undefined when the held record cannot answer after all. */
function jsonBody(cache: EncodingCache, enc: Encoded, hits: HitPath, hit: EntityHit, emitImplicit: boolean, writeJson: Partial<JsonWriteOptions>): string | undefined {
  if (enc.jsonHead === undefined) {
    const answer = hits.entityOf(hit);
    if (!answer) return undefined;
    // `{"entity":E,"freshness":F}` is how JSON.stringify writes the message (fields in number
    // order, no spaces), so E can be written once and F appended per call.
    const entity = toJsonString(EntitySchema, toEntityMessage(answer), writeJson);
    enc.jsonHead = `{"entity":${entity},"freshness":{`;
    enc.jsonHeadBytes = Buffer.byteLength(enc.jsonHead);
    cache.grow(enc, enc.jsonHeadBytes);
  }
  return `${enc.jsonHead}${freshnessJson(hit.freshness, emitImplicit)}}}`;
}

/** The binary answer, or undefined when the held record cannot answer after all. */
function protoBody(cache: EncodingCache, enc: Encoded, hits: HitPath, hit: EntityHit): Buffer | undefined {
  if (enc.protoHead === undefined) {
    const answer = hits.entityOf(hit);
    if (!answer) return undefined;
    const entity = toBinary(EntitySchema, toEntityMessage(answer));
    const head = Buffer.allocUnsafe(1 + varintLength(entity.length) + entity.length + 1);
    let at = 0;
    head[at++] = 0x0a; // field 1, length-delimited
    at = writeVarint(head, at, entity.length);
    head.set(entity, at);
    head[at + entity.length] = 0x12; // field 2, length-delimited
    enc.protoHead = head;
    cache.grow(enc, head.length);
  }
  return withFreshnessProto(enc.protoHead, hit.freshness);
}

/** `head` (ending with field 2's tag), then the freshness' length and bytes. */
function withFreshnessProto(head: Buffer, f: Freshness): Buffer {
  const age = Math.max(0, Math.round(f.ageMs));
  const source = Buffer.from(f.source);
  // Freshness: source (1, string), age_ms (2, int64), as_of_event_id (3, int64), stale (4, bool);
  // proto3 leaves out fields at their default.
  let n = source.length > 0 ? 1 + varintLength(source.length) + source.length : 0;
  if (age !== 0) n += 1 + varintLength(age);
  if (f.asOfEventId !== 0) n += 1 + varintLength(f.asOfEventId);
  if (f.stale) n += 2;
  const out = Buffer.allocUnsafe(head.length + varintLength(n) + n);
  head.copy(out, 0);
  let at = writeVarint(out, head.length, n);
  if (source.length > 0) {
    out[at++] = 0x0a;
    at = writeVarint(out, at, source.length);
    at += source.copy(out, at);
  }
  if (age !== 0) {
    out[at++] = 0x10;
    at = writeVarint(out, at, age);
  }
  if (f.asOfEventId !== 0) {
    out[at++] = 0x18;
    at = writeVarint(out, at, f.asOfEventId);
  }
  if (f.stale) {
    out[at++] = 0x20;
    out[at++] = 1;
  }
  return out;
}

/** Bytes of a non-negative integer (below 2^53) as a protobuf varint. */
function varintLength(value: number): number {
  let n = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    n++;
  }
  return n;
}

function writeVarint(buf: Buffer, at: number, value: number): number {
  while (value >= 0x80) {
    buf[at++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  buf[at++] = value;
  return at;
}

/**
 * Encodings by request key, each valid only for the record text it was made from (a changed
 * record is a new text: its old encoding is replaced on the next hit). Bounded by bytes; the
 * least recently made go first.
 */
class EncodingCache {
  readonly #entries = new Map<string, Encoded>();
  #bytes = 0;

  constructor(readonly maxBytes: number) {}

  get(hit: { readonly key: string; readonly source: string }): Encoded {
    const known = this.#entries.get(hit.key);
    // Usually the very same string; equal text (a record refetched unchanged) is as good.
    if (known && known.source === hit.source) return known;
    if (known) this.#drop(hit.key, known);
    // The text is shared with the store while it holds it; counted here as if it were not.
    const fresh: Encoded = { source: hit.source, bytes: hit.key.length + hit.source.length + 64 };
    this.#entries.set(hit.key, fresh);
    this.#bytes += fresh.bytes;
    return fresh;
  }

  /** `enc` now holds `bytes` more; the oldest encodings go if that passes the bound (never `enc` itself). */
  grow(enc: Encoded, bytes: number): void {
    enc.bytes += bytes;
    this.#bytes += bytes;
    for (const [key, old] of this.#entries) {
      if (this.#bytes <= this.maxBytes || old === enc) break;
      this.#drop(key, old);
    }
  }

  #drop(key: string, enc: Encoded): void {
    this.#entries.delete(key);
    this.#bytes -= enc.bytes;
  }
}
