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
import { compressionNegotiate, type Compression } from "@connectrpc/connect/protocol";
import { contentTypeUnaryJson, contentTypeUnaryProto } from "@connectrpc/connect/protocol-connect";
import {
  contentTypeJson as grpcContentTypeJson,
  contentTypeProto as grpcContentTypeProto,
  parseContentType as parseGrpcContentType,
} from "@connectrpc/connect/protocol-grpc";
import type { Caller } from "../auth/caller.ts";
import type { FastPathCore, FastRoute, HitReply } from "./fast-path-core.ts";
import type { RpcProtocol } from "./metrics.ts";
import type { H2StreamHandler } from "./one-port-listener.ts";

export interface H2FastPathOptions {
  /** Counts each call this path answers by method and protocol, as the request handler counts the rest. */
  received?: (method: string, protocol: RpcProtocol) => void;
  /** The compressions the Connect adapter accepts (for gRPC's `grpc-encoding` answer header). */
  acceptCompression: Compression[];
}

/** The gRPC envelope's prefix: a flags byte and the message length. */
const ENVELOPE_PREFIX = 5;
/** What gRPC's normal path sends after a message: status OK and nothing else. */
const GRPC_OK_TRAILERS = { "grpc-status": "0" };
/** Distinct header values kept parsed; each set is dropped when full. */
const HEADER_MEMO_ENTRIES = 64;

/** One gRPC answer: headers, one envelope, trailers. */
class GrpcReply implements HitReply {
  constructor(
    readonly stream: http2.ServerHttp2Stream,
    /** The `grpc-encoding` the normal path announces (its negotiated answer compression), or null. */
    readonly encoding: string | null,
    readonly received: H2FastPathOptions["received"],
    readonly name: string,
  ) {}
  get compressible(): boolean {
    return this.encoding !== null;
  }
  get headersSent(): boolean {
    return this.stream.headersSent;
  }
  write(body: Buffer, binary: boolean): void {
    this.received?.(this.name, "grpc");
    const stream = this.stream;
    if (stream.destroyed) return; // the client went away: nobody to answer
    body[0] = 0;
    body.writeUInt32BE(body.length - ENVELOPE_PREFIX, 1);
    const contentType = binary ? grpcContentTypeProto : grpcContentTypeJson;
    stream.respond(this.encoding === null ? { "content-type": contentType } : { "content-type": contentType, "grpc-encoding": this.encoding }, {
      waitForTrailers: true,
    });
    stream.once("wantTrailers", sendOkTrailers);
    stream.end(body);
  }
}

function sendOkTrailers(this: http2.ServerHttp2Stream): void {
  this.sendTrailers(GRPC_OK_TRAILERS);
}

/** One Connect unary answer over HTTP/2. */
class ConnectReply implements HitReply {
  constructor(
    readonly stream: http2.ServerHttp2Stream,
    readonly compressible: boolean,
    readonly received: H2FastPathOptions["received"],
    readonly name: string,
  ) {}
  get headersSent(): boolean {
    return this.stream.headersSent;
  }
  write(body: Buffer, binary: boolean): void {
    this.received?.(this.name, "connect");
    const stream = this.stream;
    if (stream.destroyed) return;
    // In the order connect-node's compat response sends them.
    stream.respond({ "content-length": String(body.length), "content-type": binary ? contentTypeUnaryProto : contentTypeUnaryJson });
    stream.end(body);
  }
}

export function createH2FastPath(core: FastPathCore, options: H2FastPathOptions): H2StreamHandler {
  const { received, acceptCompression } = options;
  const readMaxBytes = core.readMaxBytes;
  // Whether a gRPC content type is binary (true) or JSON (false), as connect reads it; undefined: not gRPC (gRPC-web among them).
  const grpcTypes = new Map<string, boolean | undefined>();
  const grpcBinaryOf = (header: string): boolean | undefined => {
    if (grpcTypes.has(header)) return grpcTypes.get(header);
    const binary = parseGrpcContentType(header)?.binary;
    if (grpcTypes.size >= HEADER_MEMO_ENTRIES) grpcTypes.clear();
    grpcTypes.set(header, binary);
    return binary;
  };
  // The answer compression connect's gRPC handler negotiates for a `grpc-accept-encoding` (none: null).
  const grpcEncodings = new Map<string, string | null>();
  const grpcEncodingOf = (accept: string | undefined): string | null => {
    if (accept === undefined) return null;
    let name = grpcEncodings.get(accept);
    if (name !== undefined) return name;
    name = compressionNegotiate(acceptCompression, null, accept, "grpc-accept-encoding").response?.name ?? null;
    if (grpcEncodings.size >= HEADER_MEMO_ENTRIES) grpcEncodings.clear();
    grpcEncodings.set(accept, name);
    return name;
  };

  /** Read the body, then answer it (`message` makes the request of it) or hand the stream on. */
  const readThenAnswer = (
    stream: http2.ServerHttp2Stream,
    route: FastRoute,
    caller: Caller | undefined,
    started: number,
    reply: HitReply,
    reserve: number,
    limit: number,
    message: (body: Buffer) => Uint8Array | undefined,
    binary: boolean,
    fallback: (body: Buffer, more?: AsyncIterable<Buffer>) => void,
  ): void => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size <= limit) return;
      // Larger than any request the normal path accepts: it reads the rest and answers the error.
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.pause();
      fallback(Buffer.concat(chunks), stream);
    };
    const onEnd = () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const orElse = () => fallback(body);
      const bytes = message(body);
      const request = bytes && core.parse(route, bytes, binary);
      if (request === undefined || !core.answer(route, request, caller, started, reply, reserve, orElse)) orElse();
    };
    stream.on("data", onData);
    stream.once("end", onEnd);
  };

  return (stream, headers, fallback) => {
    const url = headers[":path"];
    if (url === undefined) return false;
    const q = url.indexOf("?");
    const route = core.route(q === -1 ? url : url.slice(0, q));
    if (!route) return false;
    // connect-node refuses a request it cannot tell the authority of.
    if (headers[":authority"] === undefined && headers.host === undefined) return false;
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
      const started = performance.now();
      const reply = new GrpcReply(stream, grpcEncodingOf(accept), received, route.name);
      readThenAnswer(stream, route, caller, started, reply, ENVELOPE_PREFIX, ENVELOPE_PREFIX + readMaxBytes, unenvelope, binary, fallback);
      return true;
    }
    if (headers["connect-timeout-ms"] !== undefined) return false;
    const caller = core.callerOf(headers.authorization);
    if (caller === null) return false;
    const started = performance.now();
    const reply = new ConnectReply(stream, headers["accept-encoding"] !== undefined, received, route.name);
    if (method === "GET") {
      const request = core.parseGet(route, url);
      // A GET's body is empty: nothing was read, the normal path gets the stream as it came.
      return request !== undefined && core.answer(route, request, caller, started, reply, 0, () => fallback(Buffer.alloc(0)));
    }
    if (method !== "POST" || contentType === undefined) return false;
    const binary = core.connectBinaryOf(contentType);
    if (binary === undefined) return false;
    const encoding = headers["content-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    const declared = headers["content-length"];
    if (declared !== undefined && !(Number(declared) >= 0 && Number(declared) <= readMaxBytes)) return false;
    readThenAnswer(stream, route, caller, started, reply, 0, readMaxBytes, plain, binary, fallback);
    return true;
  };
}

const plain = (body: Buffer): Uint8Array => body;

/** The message of a gRPC body that is exactly one uncompressed envelope; else undefined (the normal path answers). */
function unenvelope(body: Buffer): Uint8Array | undefined {
  if (body.length < ENVELOPE_PREFIX || body[0] !== 0) return undefined;
  if (body.readUInt32BE(1) !== body.length - ENVELOPE_PREFIX) return undefined;
  return body.subarray(ENVELOPE_PREFIX);
}
