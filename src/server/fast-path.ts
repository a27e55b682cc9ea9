/**
 * The hit fast path for Connect unary calls over HTTP/1.1 (POST `application/json` or
 * `application/proto`, GET `?encoding=json|proto&message=…`) to GetEntity and Query: a plain
 * cache hit (service/hit-path.ts decides, synchronously) is answered here, without connect-node's
 * generic machinery (URL and Headers objects, abort controllers, async iterables, interceptors),
 * from the answer bytes of hit-encoding.ts.
 *
 * Only hits are answered here, and nothing here answers an error: anything else (a miss, an
 * invalid request, a schema not loaded yet, a timeout header, request compression, an answer
 * the normal path would compress or refuse as too large, an unusual content type or query,
 * HTTP/2) goes to the normal handler, with its deadline, signals and errors. A POST body already
 * read is handed on intact. A hit is parsed as connect parses requests (its serializer, the
 * service's JSON options, the size limit), counted and logged by `rpcFinished` as the normal
 * path's interceptor does, and answered byte for byte as the normal handler would
 * (test/fast-path-equivalence.test.ts, test/fast-path-query-equivalence.test.ts).
 *
 * This file is the Connect-unary-over-HTTP/1.1 framing only: what a hit is lives in
 * hit-path.ts, its message bytes in hit-encoding.ts.
 */
import type http from "node:http";
import type http2 from "node:http2";
import type { DescMessage, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { contentTypeUnaryJson, contentTypeUnaryProto, parseContentType } from "@connectrpc/connect/protocol-connect";
import { createMethodSerializationLookup, validateReadWriteMaxBytes } from "@connectrpc/connect/protocol";
import type { Logger } from "../logging/index.ts";
import { CacheService } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import { CACHE_SERVICE_OPTIONS } from "../service/cache-service.ts";
import type { Hit, HitPath } from "../service/hit-path.ts";
import type { Caller } from "../auth/caller.ts";
import { createHitEncoder } from "./hit-encoding.ts";
import type { RpcFinished } from "./rpc-interceptors.ts";
import { errorMessage } from "../logging/index.ts";

export interface FastPathOptions {
  /** The CacheService's hit path; the service is registered with `CACHE_SERVICE_OPTIONS`. */
  hits: HitPath;
  /** As given to the Connect adapter. */
  readMaxBytes: number;
  writeMaxBytes: number;
  /** How the normal path counts and logs a finished call (`rpcFinished`). */
  finished: RpcFinished;
  logger?: Logger;
  /** Bound on the bytes of kept encodings. Default 8 MiB. */
  maxEncodedBytes?: number;
  /**
   * The access check the normal path's interceptor makes for a read (`AccessPolicy.authorize(header,
   * "read")`): the caller, or a throw when refused (the normal path then answers the refusal).
   * Without it every caller is anonymous.
   */
  authorizeRead?: (authorization: string | undefined) => Caller;
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

/** Requests up to this size are parsed once per distinct bytes; at most this many kept. */
const PARSE_MEMO_MAX_BYTES = 1024;
const PARSE_MEMO_ENTRIES = 10_000;

/** One method this path serves: its name, its request parser, and its hits. Made once: a hit allocates no closures. */
interface Route {
  name: string;
  /** The request message, parsed as the normal path parses it (throws what it would answer). */
  parse(bytes: Uint8Array, binary: boolean): object;
  /** The hit `message` asks for on behalf of `caller` (its read limits apply), or undefined. `kept`: the same message object will come again for the same request bytes. */
  hit(message: object, kept: boolean, caller: Caller | undefined): Hit | undefined;
  /** The answer to `hit`, or undefined when it is not answered from the hit after all. */
  encode(hit: Hit, binary: boolean): Buffer | undefined;
  /** Record `hit` as answered. */
  commit(hit: Hit): void;
}

/** A parsed request: kept (see `Route.hit`) ones are shared by every request of the same bytes. */
interface Parsed {
  message: object;
  binary: boolean;
  kept: boolean;
}

/** Distinct content types kept parsed; the set is dropped when full. */
const CONTENT_TYPE_MEMO_ENTRIES = 64;

export function createFastPath(options: FastPathOptions): FastPath {
  const { hits, readMaxBytes, writeMaxBytes, finished, logger, authorizeRead } = options;
  const jsonOptions = CACHE_SERVICE_OPTIONS.jsonOptions;
  // The size from which connect compresses an answer for a client that accepts it (its default, as the adapter is not told another).
  const { compressMinBytes } = validateReadWriteMaxBytes(readMaxBytes, writeMaxBytes, undefined);
  const encoder = createHitEncoder({ hits, jsonOptions, writeMaxBytes, maxEncodedBytes: options.maxEncodedBytes });
  const routes = new Map<string, Route>();
  const route = <I extends DescMessage, O extends DescMessage, H extends Hit>(
    method: DescMethodUnary<I, O>,
    hit: (message: MessageShape<I>, kept: boolean, caller: Caller | undefined) => H | undefined,
    encode: (hit: H, binary: boolean) => Buffer | undefined,
    commit: (hit: H) => void,
  ) => {
    const name = `${method.parent.typeName}/${method.name}`;
    const serialization = createMethodSerializationLookup(method, undefined, jsonOptions, { readMaxBytes, writeMaxBytes });
    routes.set(`/${name}`, {
      name,
      parse: (bytes, binary) => serialization.getI(binary).parse(bytes),
      hit: hit as Route["hit"],
      encode: encode as Route["encode"],
      commit: commit as Route["commit"],
    });
  };
  route(
    CacheService.method.getEntity,
    (message, _kept, caller) => hits.getEntity(message, caller),
    (hit, binary) => encoder.entity(hit, binary),
    (hit) => hits.commit(hit),
  );
  route(
    CacheService.method.query,
    // A Query is validated asynchronously, once per message object: only a kept one can be a hit.
    (message, kept, caller) => (kept ? hits.peekQuery(message, caller) : undefined),
    (hit, binary) => encoder.query(hit, binary),
    (hit) => hits.commitQuery(hit),
  );

  /** The caller, undefined without an access check, or null when refused: the normal path answers that. */
  const callerOf = (authorization: string | undefined): Caller | undefined | null => {
    if (!authorizeRead) return undefined;
    try {
      return authorizeRead(authorization);
    } catch {
      return null;
    }
  };

  // Clients repeat the same requests: the same bytes parse to the same message object, which the
  // hit path keeps its validation for. Small requests only, a bounded number.
  const parsed = new Map<string, Parsed>();
  const parse = (route: Route, bytes: Uint8Array, binary: boolean): Parsed | undefined => {
    const memo = bytes.length <= PARSE_MEMO_MAX_BYTES;
    const key = memo ? `${binary ? "p" : "j"}${route.name} ${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1")}` : "";
    const known = memo ? parsed.get(key) : undefined;
    if (known) return known;
    let message: object;
    try {
      message = route.parse(bytes, binary);
    } catch {
      return undefined; // the normal path answers the error
    }
    const request = { message, binary, kept: memo };
    if (memo) {
      if (parsed.size >= PARSE_MEMO_ENTRIES) parsed.clear();
      parsed.set(key, request);
    }
    return request;
  };
  // The same for GET: a URL (path and query) is read once; the same URL gives the same request.
  const gets = new Map<string, Parsed>();
  const parseGet = (route: Route, url: string): Parsed | undefined => {
    const known = gets.get(url);
    if (known) return known;
    const get = getMessage(url);
    const request = get && parse(route, get.bytes, get.binary);
    if (request?.kept && url.length <= PARSE_MEMO_MAX_BYTES) {
      if (gets.size >= PARSE_MEMO_ENTRIES) gets.clear();
      gets.set(url, request);
    }
    return request;
  };
  // Whether a POST's content type is Connect unary binary (true) or JSON (false), as connect reads it; undefined: neither.
  const contentTypes = new Map<string, boolean | undefined>();
  const binaryOf = (header: string): boolean | undefined => {
    if (contentTypes.has(header)) return contentTypes.get(header);
    const type = parseContentType(header);
    const binary = type && !type.stream ? type.binary : undefined;
    if (contentTypes.size >= CONTENT_TYPE_MEMO_ENTRIES) contentTypes.clear();
    contentTypes.set(header, binary);
    return binary;
  };

  /** Answer a hit; false (nothing sent, nothing counted) when the normal path must answer. */
  const answer = (req: http.IncomingMessage, res: http.ServerResponse, route: Route, request: Parsed, started: number, caller: Caller | undefined): boolean => {
    try {
      const hit = route.hit(request.message, request.kept, caller);
      const body = hit && route.encode(hit, request.binary);
      if (!body) return false;
      // The normal path would compress this answer: leave it to the normal path.
      if (body.length >= compressMinBytes && req.headers["accept-encoding"] !== undefined) return false;
      route.commit(hit);
      res.writeHead(200, { "content-length": String(body.length), "content-type": request.binary ? contentTypeUnaryProto : contentTypeUnaryJson });
      res.end(body);
      finished(route.name, started, undefined, false);
      return true;
    } catch (err) {
      // A bug, but it must cost one request its fast path, not the process: the normal path answers.
      logger?.warn({ rpc: route.name, err: errorMessage(err) }, "fast path failed; answering on the normal path");
      return res.headersSent;
    }
  };

  return (anyReq, anyRes, path, fallback) => {
    const route = routes.get(path);
    if (!route || anyReq.httpVersionMajor !== 1) return false;
    const req = anyReq as http.IncomingMessage;
    const res = anyRes as http.ServerResponse;
    const h = req.headers;
    if (h["connect-timeout-ms"] !== undefined) return false;
    const caller = callerOf(h.authorization);
    if (caller === null) return false;
    const started = performance.now();
    if (req.method === "GET") {
      const request = parseGet(route, req.url ?? "");
      return request !== undefined && answer(req, res, route, request, started, caller);
    }
    if (req.method !== "POST") return false;
    const contentType = h["content-type"];
    const binary = contentType === undefined ? undefined : binaryOf(contentType);
    if (binary === undefined) return false;
    const encodingHeader = h["content-encoding"];
    if (encodingHeader !== undefined && encodingHeader !== "identity") return false;
    // Without a declared length the body could be any size: the normal path reads it with its limit.
    const declared = Number(h["content-length"]);
    if (!(declared >= 0 && declared <= readMaxBytes)) return false;
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.once("end", () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const request = parse(route, body, binary);
      if (request !== undefined && answer(req, res, route, request, started, caller)) return;
      replayBody(req, body);
      fallback();
    });
    // The client went away mid-body: there is nobody to answer.
    req.once("error", () => res.destroy());
    return true;
  };
}

/** The message bytes of a Connect GET the normal path would read as a plain (uncompressed) message; else undefined. */
function getMessage(url: string): { bytes: Uint8Array; binary: boolean } | undefined {
  const q = url.indexOf("?");
  // connect-es reads the query through a URL, which drops a fragment: leave such oddities to it.
  if (q === -1 || url.includes("#")) return undefined;
  const params = new URLSearchParams(url.slice(q + 1));
  const compression = params.get("compression");
  if (compression !== null && compression !== "identity") return undefined;
  const encoding = params.get("encoding");
  if (encoding !== "json" && encoding !== "proto") return undefined;
  const text = params.get("message") ?? "";
  try {
    return { bytes: params.get("base64") === "1" ? base64Decode(text) : Buffer.from(text), binary: encoding === "proto" };
  } catch {
    return undefined;
  }
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
