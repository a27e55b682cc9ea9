/**
 * The hit fast path over HTTP/1.1 for Connect unary calls (POST `application/json` or
 * `application/proto`, GET `?encoding=json|proto&message=…`) and gRPC-web unary calls (POST
 * `application/grpc-web`, `+proto` or `+json`: one length-prefixed message; the answer's message
 * frame then its trailer frame, flag 0x80, `grpc-status: 0`) to GetEntity and Query: a plain
 * cache hit (service/hit-path.ts decides) is answered here, without connect-node's generic
 * machinery (URL and Headers objects, abort controllers, async iterables, interceptors), from the
 * answer bytes of hit-encoding.ts.
 *
 * Only hits are answered here, and nothing here answers an error: anything else (a miss, an
 * invalid request, a schema not loaded yet, a deadline header — `connect-timeout-ms`,
 * `grpc-timeout` —, request compression, a gRPC-web body that is not exactly one plain message,
 * grpc-web-text, an answer the normal path would compress or refuse as too large, an unusual
 * content type or query) goes to the normal handler, with its deadline, signals and errors. A
 * POST body already read is handed on intact. HTTP/2 streams have their own framing
 * (fast-path-h2.ts), before node's compat layer; both share fast-path-core.ts (parse, access
 * check, hit, encoding, commit, metrics and logs) and grpc-envelope.ts (the gRPC envelope and
 * answer-compression negotiation), and test/fast-path-equivalence.test.ts and
 * test/fast-path-query-equivalence.test.ts prove their answers byte for byte the normal path's.
 *
 * This file is the HTTP/1.1 framing only.
 */
import type http from "node:http";
import type http2 from "node:http2";
import { encodeEnvelope, type Compression } from "@connectrpc/connect/protocol";
import { contentTypeUnaryJson, contentTypeUnaryProto } from "@connectrpc/connect/protocol-connect";
import {
  contentTypeJson as grpcWebContentTypeJson,
  contentTypeProto as grpcWebContentTypeProto,
  grpcStatusOk,
  parseContentType as parseGrpcWebContentType,
  trailerFlag,
  trailerSerialize,
} from "@connectrpc/connect/protocol-grpc-web";
import { replayBody, replayReadSoFar } from "./body-replay.ts";
import type { Caller } from "../auth/caller.ts";
import type { FastPathCore, FastRoute, HitReply, ParsedRequest } from "./fast-path-core.ts";
import { createAuthorityCheck, createGrpcEncodingNegotiator, ENVELOPE_PREFIX, memoized, sealEnvelope, unenvelope } from "./grpc-envelope.ts";

export interface FastPathFramingOptions {
  /** The compressions the Connect adapter accepts (for gRPC-web's `grpc-encoding` answer header). */
  acceptCompression: Compression[];
}

/**
 * Handles the request and returns true (answering it, or passing it to `fallback` itself once
 * its body is read), or returns false having touched nothing: the caller runs the normal handler.
 */
export type FastPath = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
  path: string,
  fallback: FallbackHandler,
) => boolean;

/**
 * The normal handler, for a request a fast path took and then handed on (its body given back
 * first): a function shared by every request, called with it, not a closure made per request.
 */
export type FallbackHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/**
 * The trailer frame connect's gRPC-web handler ends a successful answer with: its trailers
 * (`grpc-status: 0` and nothing else) serialized and enveloped by connect's own code.
 */
const GRPC_WEB_OK_TRAILER = Buffer.from(encodeEnvelope(trailerFlag, trailerSerialize(new Headers({ "grpc-status": grpcStatusOk }))));

/** The call a request carries while its body is read: its listeners are shared functions, not closures made per request. */
const kCall = Symbol("h1-fast-call");
type CallRequest = http.IncomingMessage & { [kCall]?: H1Call };

/**
 * One unary call over HTTP/1.1, Connect or gRPC-web: reads the body (at most `limit` bytes),
 * asks the core, writes the answer as its protocol frames it, or hands the request to the normal
 * path with its body as it came (what was read, then the rest). One object per request, for
 * the hot path's sake: every closure made per request was garbage for the collector, and under
 * tsx each also cost a `name` definition.
 */
class H1Call implements HitReply {
  readonly #chunks: Buffer[] = [];
  #size = 0;
  /** The whole body, once read: the normal path is given it back if it answers after all. */
  #body: Buffer | undefined;

  constructor(
    readonly core: FastPathCore,
    readonly req: http.IncomingMessage,
    readonly res: http.ServerResponse,
    readonly route: FastRoute,
    readonly caller: Caller | undefined,
    readonly started: number,
    /** The normal path answers (the body given back first, once read). */
    readonly fallback: FallbackHandler,
    readonly binary: boolean,
    /** gRPC-web's framing (one enveloped message in, message and trailer frames out); else Connect unary. */
    readonly grpcWeb: boolean,
    /** gRPC-web: the `grpc-encoding` the normal path announces (its negotiated answer compression), or null. */
    readonly encoding: string | null,
    /** Connect: the client sent `accept-encoding`; gRPC-web: an answer compression was negotiated. */
    readonly compressible: boolean,
    /** Bytes of body read at most before the normal path is given the request. */
    readonly limit: number,
  ) {}

  get headersSent(): boolean {
    return this.res.headersSent;
  }

  /** Read the body, then answer. */
  read(): void {
    const req = this.req as CallRequest;
    req[kCall] = this;
    req.on("data", onCallData);
    req.on("end", onCallEnd);
    // The client went away mid-body: there is nobody to answer.
    req.on("error", onCallError);
  }

  /** Answer a request already read (a GET's is its URL): true when taken. */
  answer(request: ParsedRequest | undefined): boolean {
    return request !== undefined && this.core.answer(this.route, request, this.caller, this.started, this, this.grpcWeb ? ENVELOPE_PREFIX : 0);
  }

  data(chunk: Buffer): void {
    const chunks = this.#chunks;
    chunks.push(chunk);
    this.#size += chunk.length;
    // A streamed gRPC-web body is handed on as soon as it cannot be one plain message (connect-node answers then, not at its end).
    if (this.#size <= this.limit && (!this.grpcWeb || plausibleEnvelope(chunks.length === 1 ? chunk : Buffer.concat(chunks), this.core.readMaxBytes))) return;
    const req = this.req;
    req.off("data", onCallData);
    req.off("end", onCallEnd);
    replayReadSoFar(req, chunks);
    this.fallback(req, this.res);
  }

  end(): void {
    const chunks = this.#chunks;
    const body = (this.#body = chunks.length === 1 ? chunks[0]! : chunks.length === 0 ? EMPTY : Buffer.concat(chunks));
    const bytes = this.grpcWeb ? unenvelope(body) : body;
    if (!this.answer(bytes && this.core.parse(this.route, bytes, this.binary))) this.orElse();
  }

  orElse(): void {
    if (this.#body !== undefined) replayBody(this.req, this.#body);
    this.fallback(this.req, this.res);
  }

  write(body: Buffer, binary: boolean): void {
    const res = this.res;
    if (!this.grpcWeb) {
      res.writeHead(200, { "content-length": String(body.length), "content-type": binary ? contentTypeUnaryProto : contentTypeUnaryJson });
      res.end(body);
      return;
    }
    const contentType = binary ? grpcWebContentTypeProto : grpcWebContentTypeJson;
    // As connect-node writes it: headers without a length (so chunked), then each frame as a chunk of its own.
    res.writeHead(200, this.encoding === null ? { "content-type": contentType } : { "content-type": contentType, "grpc-encoding": this.encoding });
    res.write(sealEnvelope(body));
    res.end(GRPC_WEB_OK_TRAILER);
  }
}

const EMPTY = Buffer.alloc(0);

function onCallData(this: CallRequest, chunk: Buffer): void {
  this[kCall]!.data(chunk);
}

function onCallEnd(this: CallRequest): void {
  this[kCall]!.end();
}

function onCallError(this: CallRequest): void {
  this[kCall]!.res.destroy();
}

export function createFastPath(core: FastPathCore, options: FastPathFramingOptions): FastPath {
  const { readMaxBytes } = core;
  // Whether a gRPC-web content type is binary (true) or JSON (false), as connect reads it;
  // undefined: not one its handler reads as is (grpc-web-text, base64 bodies, among them).
  const grpcWebBinaryOf = memoized((header) => {
    const type = parseGrpcWebContentType(header);
    return type && !type.text ? type.binary : undefined;
  });
  const grpcEncodingOf = createGrpcEncodingNegotiator(options.acceptCompression);

  /** A gRPC-web unary call: true when taken (answered, or handed on once its body is read). */
  const grpcWeb = (req: http.IncomingMessage, res: http.ServerResponse, route: FastRoute, contentType: string, fallback: FallbackHandler): boolean => {
    const h = req.headers;
    const binary = grpcWebBinaryOf(contentType);
    if (binary === undefined || req.method !== "POST" || h["grpc-timeout"] !== undefined) return false;
    const requestEncoding = h["grpc-encoding"];
    if (requestEncoding !== undefined && requestEncoding !== "identity") return false;
    // A declared length past any request the normal path accepts: it reads it and answers the error.
    const limit = readMaxBytes + ENVELOPE_PREFIX;
    const declared = h["content-length"];
    if (declared !== undefined && !(Number(declared) >= 0 && Number(declared) <= limit)) return false;
    const accept = h["grpc-accept-encoding"];
    if (accept !== undefined && typeof accept !== "string") return false;
    const caller = core.callerOf(h.authorization);
    if (caller === null) return false;
    const encoding = grpcEncodingOf(accept);
    // Without a declared length (connect-node's own transports stream the body): read up to the limit.
    new H1Call(core, req, res, route, caller, performance.now(), fallback, binary, true, encoding, encoding !== null, limit).read();
    return true;
  };

  const usableAuthority = createAuthorityCheck();

  return (anyReq, anyRes, path, fallback) => {
    if (anyReq.httpVersionMajor !== 1) return false;
    const route = core.route(path);
    if (!route) return false;
    const req = anyReq as http.IncomingMessage;
    const res = anyRes as http.ServerResponse;
    const h = req.headers;
    if (!usableAuthority(h.host)) return false;
    const contentType = h["content-type"];
    if (contentType?.startsWith("application/grpc-web")) return grpcWeb(req, res, route, contentType, fallback);
    if (h["connect-timeout-ms"] !== undefined) return false;
    const caller = core.callerOf(h.authorization);
    if (caller === null) return false;
    const started = performance.now();
    const compressible = h["accept-encoding"] !== undefined;
    if (req.method === "GET") {
      // connect-node refuses a GET that names a content type it does not read (415): leave those to it.
      if (contentType !== undefined) return false;
      return new H1Call(core, req, res, route, caller, started, fallback, false, false, null, compressible, 0).answer(core.parseGet(route, req.url ?? ""));
    }
    if (req.method !== "POST") return false;
    const binary = contentType === undefined ? undefined : core.connectBinaryOf(contentType);
    if (binary === undefined) return false;
    const encodingHeader = h["content-encoding"];
    if (encodingHeader !== undefined && encodingHeader !== "identity") return false;
    // Without a declared length the body could be any size: the normal path reads it with its limit.
    const declared = Number(h["content-length"]);
    if (!(declared >= 0 && declared <= readMaxBytes)) return false;
    new H1Call(core, req, res, route, caller, started, fallback, binary, false, null, compressible, readMaxBytes).read();
    return true;
  };
}

/**
 * Whether the body read so far can still be one plain message in a gRPC envelope. connect-node
 * answers as soon as the envelope's head says otherwise (a compressed or trailer flag, a length
 * past `readMaxBytes`) or more bytes follow the message: such a body is handed
 * to it at once, not after it ends (a streamed body may stay open).
 */
function plausibleEnvelope(read: Buffer, readMaxBytes: number): boolean {
  if (read.length < ENVELOPE_PREFIX) return true;
  const length = read.readUInt32BE(1);
  return read[0] === 0 && length <= readMaxBytes && read.length <= ENVELOPE_PREFIX + length;
}
