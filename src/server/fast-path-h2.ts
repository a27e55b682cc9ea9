/**
 * The hit fast path over HTTP/2: unary gRPC (`application/grpc`, `+proto` or `+json`, one
 * length-prefixed message, status in the trailers) and Connect unary (POST JSON or binary, GET)
 * to GetEntity and Query, answered on node's raw stream API before its compat layer makes a
 * request and a response of the stream (the compat objects and connect-node's generic machinery
 * cost several times the answer itself).
 *
 * The same rules as the HTTP/1.1 framing (fast-path.ts), through the same core
 * (fast-path-core.ts): only hits are answered here, nothing here answers an error. Anything else
 * (a miss, an invalid request, a deadline header — `grpc-timeout`, `connect-timeout-ms` —,
 * request compression, an answer the normal path would compress, an unusual content type, a
 * gRPC body that is not exactly one plain message) goes to the normal handler with its body
 * intact, through `fallback`. test/fast-path-equivalence.test.ts and
 * test/fast-path-query-equivalence.test.ts prove the answers byte for byte the normal path's.
 */
import type http2 from "node:http2";
import type { Compression } from "@connectrpc/connect/protocol";
import { contentTypeUnaryJson, contentTypeUnaryProto } from "@connectrpc/connect/protocol-connect";
import {
  contentTypeJson as grpcContentTypeJson,
  contentTypeProto as grpcContentTypeProto,
  parseContentType as parseGrpcContentType,
} from "@connectrpc/connect/protocol-grpc";
import type { Caller } from "../auth/caller.ts";
import type { FastPathCore, FastRoute, HitReply } from "./fast-path-core.ts";
import { createAuthorityCheck, createGrpcEncodingNegotiator, ENVELOPE_PREFIX, memoized, sealEnvelope, unenvelope } from "./grpc-envelope.ts";
import type { RpcProtocol } from "./metrics.ts";
import type { H2Fallback, H2StreamHandler } from "./one-port-listener.ts";

export interface H2FastPathOptions {
  /** Counts each call this path answers by method and protocol, as the request handler counts the rest. */
  received?: (method: string, protocol: RpcProtocol) => void;
  /** The compressions the Connect adapter accepts (for gRPC's `grpc-encoding` answer header). */
  acceptCompression: Compression[];
}

/** What gRPC's normal path sends after a message: status OK and nothing else. */
const GRPC_OK_TRAILERS = { "grpc-status": "0" };
const EMPTY = Buffer.alloc(0);

/** The call a stream carries, kept on the stream: its listeners are shared functions (no closures per call). */
const kCall = Symbol("h2-fast-call");
type CallStream = http2.ServerHttp2Stream & { [kCall]?: H2Call };

/**
 * One unary call on its stream: reads the body, asks the core, writes the answer as its protocol
 * frames it (the core's `HitReply`), or hands the stream on.
 */
class H2Call implements HitReply {
  readonly #chunks: Buffer[] = [];
  #size = 0;

  constructor(
    readonly core: FastPathCore,
    readonly stream: http2.ServerHttp2Stream,
    readonly route: FastRoute,
    readonly caller: Caller | undefined,
    readonly started: number,
    readonly fallback: H2Fallback,
    readonly received: H2FastPathOptions["received"],
    /** gRPC: its framing; else Connect unary. */
    readonly grpc: boolean,
    readonly binary: boolean,
    /** The normal path would compress a large answer (Connect: `accept-encoding` present). */
    readonly compressible: boolean,
    /** gRPC: the `grpc-encoding` the normal path announces (its negotiated answer compression), or null. */
    readonly encoding: string | null,
  ) {}

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  /** Read the body, then answer. */
  read(): void {
    const stream = this.stream as CallStream;
    stream[kCall] = this;
    stream.on("data", onCallData);
    stream.on("end", onCallEnd);
  }

  data(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    // Larger than any request the normal path accepts: it reads the rest and answers the error.
    if (this.#size <= this.core.readMaxBytes + (this.grpc ? ENVELOPE_PREFIX : 0)) return;
    const stream = this.stream;
    stream.off("data", onCallData);
    stream.off("end", onCallEnd);
    stream.pause();
    this.fallback(stream, Buffer.concat(this.#chunks), stream);
  }

  end(): void {
    const chunks = this.#chunks;
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const bytes = this.grpc ? unenvelope(body) : body;
    const request = bytes && this.core.parse(this.route, bytes, this.binary);
    if (request === undefined || !this.core.answer(this.route, request, this.caller, this.started, this, this.grpc ? ENVELOPE_PREFIX : 0)) this.orElse();
  }

  /** The normal path answers: the body as read. */
  orElse(): void {
    const chunks = this.#chunks;
    this.fallback(this.stream, chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  }

  write(body: Buffer, binary: boolean): void {
    this.received?.(this.route.name, this.grpc ? "grpc" : "connect");
    const stream = this.stream;
    if (stream.destroyed) return; // the client went away: nobody to answer
    if (!this.grpc) {
      // In the order connect-node's compat response sends them.
      stream.respond({ "content-length": String(body.length), "content-type": binary ? contentTypeUnaryProto : contentTypeUnaryJson });
      stream.end(body);
      return;
    }
    sealEnvelope(body);
    const contentType = binary ? grpcContentTypeProto : grpcContentTypeJson;
    stream.respond(this.encoding === null ? { "content-type": contentType } : { "content-type": contentType, "grpc-encoding": this.encoding }, {
      waitForTrailers: true,
    });
    stream.on("wantTrailers", sendOkTrailers);
    stream.end(body);
  }
}

function onCallData(this: CallStream, chunk: Buffer): void {
  this[kCall]!.data(chunk);
}

function onCallEnd(this: CallStream): void {
  this[kCall]!.end();
}

function sendOkTrailers(this: http2.ServerHttp2Stream): void {
  this.sendTrailers(GRPC_OK_TRAILERS);
}

export function createH2FastPath(core: FastPathCore, options: H2FastPathOptions): H2StreamHandler {
  const { received, acceptCompression } = options;
  const readMaxBytes = core.readMaxBytes;
  // Whether a gRPC content type is binary (true) or JSON (false), as connect reads it; undefined: not gRPC (gRPC-web among them).
  const grpcBinaryOf = memoized((header) => parseGrpcContentType(header)?.binary);
  // The answer compression connect's gRPC handler negotiates for a `grpc-accept-encoding` (none: null).
  const grpcEncodingOf = createGrpcEncodingNegotiator(acceptCompression);

  const usableAuthority = createAuthorityCheck();

  return (stream, headers, fallback) => {
    const url = headers[":path"];
    if (url === undefined) return false;
    const q = url.indexOf("?");
    const route = core.route(q === -1 ? url : url.slice(0, q));
    if (!route) return false;
    // connect-node refuses a request it cannot tell the authority of, or cannot make a URL of.
    if (!usableAuthority(headers[":authority"] ?? headers.host)) return false;
    const method = headers[":method"];
    const contentType = headers["content-type"];
    if (contentType?.startsWith("application/grpc")) {
      const binary = grpcBinaryOf(contentType);
      if (binary === undefined || method !== "POST" || headers["grpc-timeout"] !== undefined) return false;
      const encoding = headers["grpc-encoding"];
      if (encoding !== undefined && encoding !== "identity") return false;
      const accept = headers["grpc-accept-encoding"];
      if (accept !== undefined && typeof accept !== "string") return false;
      const caller = core.callerOf(headers.authorization);
      if (caller === null) return false;
      const answer = grpcEncodingOf(accept);
      new H2Call(core, stream, route, caller, performance.now(), fallback, received, true, binary, answer !== null, answer).read();
      return true;
    }
    if (headers["connect-timeout-ms"] !== undefined) return false;
    const caller = core.callerOf(headers.authorization);
    if (caller === null) return false;
    const compressible = headers["accept-encoding"] !== undefined;
    if (method === "GET") {
      // connect-node refuses a GET that names a content type it does not read (415): leave those to it.
      if (contentType !== undefined) return false;
      const request = core.parseGet(route, url);
      if (request === undefined) return false;
      // A GET's body is empty: the normal path gets the stream as it came.
      const call = new H2Call(core, stream, route, caller, performance.now(), fallback, received, false, request.binary, compressible, null);
      return core.answer(route, request, caller, call.started, call, 0);
    }
    if (method !== "POST" || contentType === undefined) return false;
    const binary = core.connectBinaryOf(contentType);
    if (binary === undefined) return false;
    const encoding = headers["content-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    const declared = headers["content-length"];
    if (declared !== undefined && !(Number(declared) >= 0 && Number(declared) <= readMaxBytes)) return false;
    new H2Call(core, stream, route, caller, performance.now(), fallback, received, false, binary, compressible, null).read();
    return true;
  };
}
