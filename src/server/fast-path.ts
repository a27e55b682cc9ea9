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
import type { FastPathCore, FastRoute, HitReply } from "./fast-path-core.ts";
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
  fallback: () => void,
) => boolean;

/** One HTTP/1.1 answer: a plain Connect unary response. */
class H1Reply implements HitReply {
  constructor(
    readonly res: http.ServerResponse,
    readonly compressible: boolean,
    /** The normal path answers (its body given back first, once read). */
    public orElse: () => void,
  ) {}
  get headersSent(): boolean {
    return this.res.headersSent;
  }
  write(body: Buffer, binary: boolean): void {
    this.res.writeHead(200, { "content-length": String(body.length), "content-type": binary ? contentTypeUnaryProto : contentTypeUnaryJson });
    this.res.end(body);
  }
}

/**
 * The trailer frame connect's gRPC-web handler ends a successful answer with: its trailers
 * (`grpc-status: 0` and nothing else) serialized and enveloped by connect's own code.
 */
const GRPC_WEB_OK_TRAILER = Buffer.from(encodeEnvelope(trailerFlag, trailerSerialize(new Headers({ "grpc-status": grpcStatusOk }))));

/** One HTTP/1.1 gRPC-web answer: the message frame, then the trailer frame, in the body. */
class H1GrpcWebReply implements HitReply {
  constructor(
    readonly res: http.ServerResponse,
    /** The `grpc-encoding` the normal path announces (its negotiated answer compression), or null. */
    readonly encoding: string | null,
    public orElse: () => void,
  ) {}
  get compressible(): boolean {
    return this.encoding !== null;
  }
  get headersSent(): boolean {
    return this.res.headersSent;
  }
  write(body: Buffer, binary: boolean): void {
    const contentType = binary ? grpcWebContentTypeProto : grpcWebContentTypeJson;
    // As connect-node writes it: headers without a length (so chunked), then each frame as a chunk of its own.
    this.res.writeHead(200, this.encoding === null ? { "content-type": contentType } : { "content-type": contentType, "grpc-encoding": this.encoding });
    this.res.write(sealEnvelope(body));
    this.res.end(GRPC_WEB_OK_TRAILER);
  }
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
  const grpcWeb = (req: http.IncomingMessage, res: http.ServerResponse, route: FastRoute, contentType: string, fallback: () => void): boolean => {
    const h = req.headers;
    const binary = grpcWebBinaryOf(contentType);
    if (binary === undefined || req.method !== "POST" || h["grpc-timeout"] !== undefined) return false;
    const encoding = h["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    // A declared length past any request the normal path accepts: it reads it and answers the error.
    const limit = readMaxBytes + ENVELOPE_PREFIX;
    const declared = h["content-length"];
    if (declared !== undefined && !(Number(declared) >= 0 && Number(declared) <= limit)) return false;
    const accept = h["grpc-accept-encoding"];
    if (accept !== undefined && typeof accept !== "string") return false;
    const caller = core.callerOf(h.authorization);
    if (caller === null) return false;
    const started = performance.now();
    const reply = new H1GrpcWebReply(res, grpcEncodingOf(accept), fallback);
    // Without a declared length (connect-node's own transports stream the body): read up to the limit.
    readBody(
      req,
      res,
      limit,
      reply,
      fallback,
      (read) => plausibleEnvelope(read, readMaxBytes),
      (body) => {
        const bytes = unenvelope(body);
        const request = bytes && core.parse(route, bytes, binary);
        return request !== undefined && core.answer(route, request, caller, started, reply, ENVELOPE_PREFIX);
      },
    );
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
    const reply = new H1Reply(res, h["accept-encoding"] !== undefined, fallback);
    if (req.method === "GET") {
      // connect-node refuses a GET that names a content type it does not read (415): leave those to it.
      if (contentType !== undefined) return false;
      const request = core.parseGet(route, req.url ?? "");
      return request !== undefined && core.answer(route, request, caller, started, reply, 0);
    }
    if (req.method !== "POST") return false;
    const binary = contentType === undefined ? undefined : core.connectBinaryOf(contentType);
    if (binary === undefined) return false;
    const encodingHeader = h["content-encoding"];
    if (encodingHeader !== undefined && encodingHeader !== "identity") return false;
    // Without a declared length the body could be any size: the normal path reads it with its limit.
    const declared = Number(h["content-length"]);
    if (!(declared >= 0 && declared <= readMaxBytes)) return false;
    readBody(req, res, readMaxBytes, reply, fallback, undefined, (body) => {
      const request = core.parse(route, body, binary);
      return request !== undefined && core.answer(route, request, caller, started, reply, 0);
    });
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

/**
 * Read `req`'s body (at most `limit` bytes), then `answer` it. When `answer` is false (not a hit),
 * when `reply` turns out not to be a hit later (`orElse`), or when the body runs past `limit` (one
 * without a declared length) or stops being `plausible`, the normal path gets the request with
 * its body as it came: what was read, then the rest.
 */
function readBody(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  limit: number,
  reply: { orElse: () => void },
  fallback: () => void,
  plausible: ((read: Buffer) => boolean) | undefined,
  answer: (body: Buffer) => boolean,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size <= limit && (plausible === undefined || plausible(chunks.length === 1 ? chunk : Buffer.concat(chunks)))) return;
    req.off("data", onData);
    req.off("end", onEnd);
    replayReadSoFar(req, chunks);
    fallback();
  };
  const onEnd = () => {
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    reply.orElse = () => {
      replayBody(req, body);
      fallback();
    };
    if (!answer(body)) reply.orElse();
  };
  req.on("data", onData);
  req.once("end", onEnd);
  // The client went away mid-body: there is nobody to answer.
  req.once("error", () => res.destroy());
}
