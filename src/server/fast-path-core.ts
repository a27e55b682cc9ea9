/**
 * What every hit fast path shares, whatever the wire: the methods served (GetEntity and Query),
 * the caller's access check, the request parse (as connect parses requests: its serializer, the
 * service's JSON options, the size limit; kept per distinct request bytes), the hit decision
 * (service/hit-path.ts), the answer bytes (hit-encoding.ts), the commit, and the count and log
 * line of a finished call (`rpcFinished`, as the normal path's interceptor makes them).
 *
 * A framing (fast-path.ts: Connect unary and gRPC-web over HTTP/1.1; fast-path-h2.ts: gRPC and
 * Connect unary over HTTP/2) only reads a request off its wire, says what the normal path would do about
 * compression, and writes the answer as its protocol frames it. Every rule about what is a hit
 * and what its answer is lives here, once.
 */
import type { DescMessage, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { createMethodSerializationLookup, validateReadWriteMaxBytes } from "@connectrpc/connect/protocol";
import { parseContentType } from "@connectrpc/connect/protocol-connect";
import { CacheService } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import type { Caller } from "../auth/caller.ts";
import { errorMessage, type Logger } from "../logging/index.ts";
import { CACHE_SERVICE_OPTIONS } from "../service/cache-service.ts";
import type { Hit, HitPath } from "../service/hit-path.ts";
import { createHitEncoder } from "./hit-encoding.ts";
import type { RpcFinished } from "./rpc-interceptors.ts";

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

/** One method a fast path serves. Opaque to framings: they hand it back to the core. */
export interface FastRoute {
  /** "package.Service/Method", as metrics and logs name it. */
  readonly name: string;
}

/** A parsed request: kept ones are shared by every request of the same bytes. */
export interface ParsedRequest {
  readonly message: object;
  readonly binary: boolean;
  /** The same message object comes again for the same request bytes (the hit path keeps its validation for it). */
  readonly kept: boolean;
}

/** The framing's half of answering one request. */
export interface HitReply {
  /**
   * The normal path would compress an answer to this request were it large enough (the client
   * accepts an encoding it knows): an answer of `compressMinBytes` or more is then left to it.
   */
  readonly compressible: boolean;
  /** The answer has begun on the wire (a fault after that cannot be handed to the normal path). */
  readonly headersSent: boolean;
  /**
   * Write the answer, `body` being the answer message after `reserve` bytes left for the framing
   * (see `FastPathCore.reserve`). Called at most once, after the hit is committed.
   */
  write(body: Buffer, binary: boolean): void;
  /** A hit decided later (see `FastPathCore.answer`) was not one after all: the normal path answers. */
  orElse(): void;
}

export interface FastPathCore {
  readonly readMaxBytes: number;
  /** The route serving `path` ("/package.Service/Method"), or undefined. */
  route(path: string): FastRoute | undefined;
  /** The caller, undefined without an access check, or null when refused: the normal path answers that. */
  callerOf(authorization: string | undefined): Caller | undefined | null;
  /** Whether a Connect unary content type is binary (true) or JSON (false), as connect reads it; undefined: neither. */
  connectBinaryOf(contentType: string): boolean | undefined;
  /** The request message in `bytes`, or undefined when it does not parse (the normal path answers the error). */
  parse(route: FastRoute, bytes: Uint8Array, binary: boolean): ParsedRequest | undefined;
  /** The request message of a Connect GET (`url`: path and query), or undefined when the normal path must read it. */
  parseGet(route: FastRoute, url: string): ParsedRequest | undefined;
  /**
   * Answer `request` if it is a hit: true when answered, or when the hit is decided later (a
   * --redis store's shared round trip; then `reply.orElse()` runs if it is not a hit after all); false
   * (nothing sent, nothing counted) when the normal path must answer. `reserve` bytes are left
   * free in front of the answer for the framing (a gRPC envelope's prefix).
   */
  answer(route: FastRoute, request: ParsedRequest, caller: Caller | undefined, started: number, reply: HitReply, reserve: number): boolean;
}

/** Requests up to this size are parsed once per distinct bytes; at most this many kept. */
const PARSE_MEMO_MAX_BYTES = 1024;
const PARSE_MEMO_ENTRIES = 10_000;
/** Distinct content types kept parsed; the set is dropped when full. */
const CONTENT_TYPE_MEMO_ENTRIES = 64;

/** The route as the core sees it. Made once: a hit allocates no closures. */
interface Route extends FastRoute {
  /** The request message, parsed as the normal path parses it (throws what it would answer). */
  parse(bytes: Uint8Array, binary: boolean): object;
  /**
   * The hit `message` asks for on behalf of `caller` (its read limits apply), or undefined.
   * `kept`: see `ParsedRequest.kept`; `compressible`: `HitReply.compressible`.
   */
  hit(message: object, kept: boolean, caller: Caller | undefined, compressible: boolean): Hit | Promise<Hit | undefined> | undefined;
  /** The answer to `hit` after `reserve` free bytes, or undefined when it is not answered from the hit after all. */
  encode(hit: Hit, binary: boolean, reserve: number): Buffer | undefined;
  /** Record `hit` as answered. */
  commit(hit: Hit): void;
}

export function createFastPathCore(options: FastPathOptions): FastPathCore {
  const { hits, readMaxBytes, writeMaxBytes, finished, logger, authorizeRead } = options;
  const jsonOptions = CACHE_SERVICE_OPTIONS.jsonOptions;
  // The size from which connect compresses an answer for a client that accepts it (its default, as the adapter is not told another).
  const { compressMinBytes } = validateReadWriteMaxBytes(readMaxBytes, writeMaxBytes, undefined);
  const encoder = createHitEncoder({ hits, jsonOptions, writeMaxBytes, maxEncodedBytes: options.maxEncodedBytes });
  const routes = new Map<string, Route>();
  const route = <I extends DescMessage, O extends DescMessage, H extends Hit>(
    method: DescMethodUnary<I, O>,
    hit: (message: MessageShape<I>, kept: boolean, caller: Caller | undefined, compressible: boolean) => H | Promise<H | undefined> | undefined,
    encode: (hit: H, binary: boolean, reserve: number) => Buffer | undefined,
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
    // A store that decides hits only after one shared round trip (Redis's near cache) answers later.
    (message, _kept, caller) => hits.getEntity(message, caller) ?? hits.getEntityCurrent(message, caller),
    (hit, binary, reserve) => encoder.entity(hit, binary, reserve),
    (hit) => hits.commit(hit),
  );
  route(
    CacheService.method.query,
    // A Query is validated asynchronously, once per message object: only a kept one can be a hit.
    // Known differences with the normal path, both on rare branches: a mirror answer kept in the
    // store and then not sent from here (past writeMaxBytes, or its encoding failed) is counted by
    // the normal path, which answers it, as a hit; and a -0 in a mirror answer is written as 0 in
    // binary (answers are encoded from JSON text, as every later hit of the normal path is too).
    // One the store does not hold yet is answered here too when the mirror answers it (after its
    // validation and evaluation), unless the normal path might compress the answer: it would then
    // answer the evaluation's stored answer as a hit, counted as one. Anything else goes to it.
    (message, kept, caller, compressible) =>
      kept ? (hits.peekQuery(message, caller) ?? (compressible ? undefined : hits.queryLocal(message, caller))) : undefined,
    (hit, binary, reserve) => encoder.query(hit, binary, reserve),
    (hit) => hits.commitQuery(hit),
  );

  // Clients repeat the same requests: the same bytes parse to the same message object, which the
  // hit path keeps its validation for. Small requests only, a bounded number.
  const parsed = new Map<string, ParsedRequest>();
  const parse = (route: Route, bytes: Uint8Array, binary: boolean): ParsedRequest | undefined => {
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
  const gets = new Map<string, ParsedRequest>();
  const parseGet = (route: Route, url: string): ParsedRequest | undefined => {
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
  const contentTypes = new Map<string, boolean | undefined>();
  const connectBinaryOf = (header: string): boolean | undefined => {
    if (contentTypes.has(header)) return contentTypes.get(header);
    const type = parseContentType(header);
    const binary = type && !type.stream ? type.binary : undefined;
    if (contentTypes.size >= CONTENT_TYPE_MEMO_ENTRIES) contentTypes.clear();
    contentTypes.set(header, binary);
    return binary;
  };

  const send = (route: Route, request: ParsedRequest, hit: Hit | undefined, started: number, reply: HitReply, reserve: number): boolean => {
    try {
      const body = hit && route.encode(hit, request.binary, reserve);
      if (!hit || !body) return false;
      // The normal path would compress this answer: leave it to the normal path.
      if (body.length - reserve >= compressMinBytes && reply.compressible) return false;
      route.commit(hit);
      reply.write(body, request.binary);
      finished(route.name, started, undefined, false);
      return true;
    } catch (err) {
      // A bug, but it must cost one request its fast path, not the process: the normal path answers.
      logger?.warn({ rpc: route.name, err: errorMessage(err) }, "fast path failed; answering on the normal path");
      return reply.headersSent;
    }
  };

  return {
    readMaxBytes,
    route: (path) => routes.get(path),
    callerOf(authorization) {
      if (!authorizeRead) return undefined;
      try {
        return authorizeRead(authorization);
      } catch {
        return null;
      }
    },
    connectBinaryOf,
    parse: (route, bytes, binary) => parse(route as Route, bytes, binary),
    parseGet: (route, url) => parseGet(route as Route, url),
    answer(anyRoute, request, caller, started, reply, reserve) {
      const route = anyRoute as Route;
      let hit: ReturnType<Route["hit"]>;
      try {
        hit = route.hit(request.message, request.kept, caller, reply.compressible);
      } catch (err) {
        logger?.warn({ rpc: route.name, err: errorMessage(err) }, "fast path failed; answering on the normal path");
        return false;
      }
      if (!(hit instanceof Promise)) return send(route, request, hit, started, reply, reserve);
      hit.then(
        (later) => send(route, request, later, started, reply, reserve) || reply.orElse(),
        () => reply.orElse(),
      );
      return true;
    },
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
