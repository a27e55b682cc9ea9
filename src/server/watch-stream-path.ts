/**
 * The streaming path for WatchChanges: gRPC (HTTP/2), gRPC-web and Connect streaming (JSON or
 * binary, HTTP/1.1 or HTTP/2) answered here, writing frames to the response itself, instead of
 * through connect-node's per-message machinery (an async iterator, a chain of promises and an
 * awaited write per message and stream). The streams themselves are kept by the service's
 * fan-out (src/service/watch-fan-out.ts): one write per stream per event batch, the same bytes for
 * every stream that gets the same changes.
 *
 * Only what it can answer exactly as the normal handler would is served here; anything else goes
 * to the normal handler, with the request body handed on intact: a refused or unknown caller, a
 * request that fails its checks (`checkWatchRequest`, the handler's own), a deadline header,
 * request compression, a body that is not one plain message, gRPC's JSON codec, gRPC-web text,
 * gRPC over HTTP/1.1, a stream opened while the server drains. So every error answer is the
 * normal handler's. What is served here keeps the normal path's rules: the access check
 * (`authorizeWatch`, the interceptor's), the response headers, trailers and end-of-stream
 * messages of each protocol (connect's own serializers and header names), response compression
 * as connect negotiates it, the message size limit, metrics (open streams, `rpcFinished`) and
 * logs, a clean end (status OK) when the server drains, and a client's cancel counted as
 * canceled. test/watch-stream-path.test.ts proves the bytes equal the handler's.
 */
import type http from "node:http";
import type http2 from "node:http2";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { Code, ConnectError } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import {
  compressedFlag,
  compressionNegotiate,
  createMethodSerializationLookup,
  encodeEnvelope,
  validateReadWriteMaxBytes,
  type Compression,
} from "@connectrpc/connect/protocol";
import * as connectProtocol from "@connectrpc/connect/protocol-connect";
import * as grpcProtocol from "@connectrpc/connect/protocol-grpc";
import * as grpcWebProtocol from "@connectrpc/connect/protocol-grpc-web";
import { CacheService, type WatchChangesRequest, type WatchChangesResponse } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import type { Caller } from "../auth/caller.ts";
import { errorMessage, type Logger } from "../logging/index.ts";
import { CACHE_SERVICE_OPTIONS } from "../service/cache-service.ts";
import { isBatchFeed, type ChangeFeed } from "../service/change-feed.ts";
import type { SchemaRegistry } from "../service/schema-registry.ts";
import { createWatchFanOut, type WatchSink, type WatchStream } from "../service/watch-fan-out.ts";
import { checkWatchRequest } from "../service/watch-changes.ts";
import type { Metrics } from "./metrics.ts";
import type { RpcFinished } from "./rpc-interceptors.ts";
import { replayBody, replayReadSoFar } from "./body-replay.ts";
import type { FallbackHandler } from "./fast-path.ts";

/** What the CacheService's WatchChanges handler is built from, for this path to serve the same streams. */
export interface WatchStreamsOf {
  /** The handler's feed: only a feed that hands out whole batches (the change bus) is served here. */
  feed: ChangeFeed;
  /** The schema the handler checks entity types against. */
  schema: SchemaRegistry;
  /** The handler's heartbeat interval, in seconds. */
  heartbeatS: number;
}

export interface WatchStreamPathOptions extends WatchStreamsOf {
  /** As given to the Connect adapter. */
  readMaxBytes: number;
  writeMaxBytes: number;
  /** How the normal path counts and logs a finished call (`rpcFinished`). */
  finished: RpcFinished;
  metrics?: Metrics;
  logger?: Logger;
  /**
   * The access check the normal path's interceptor makes for a watch (`AccessPolicy.authorize(header,
   * "watch")`): the caller, or a throw when refused (the normal path then answers the refusal).
   * Without it every caller is anonymous.
   */
  authorizeWatch?: (authorization: string | undefined) => Caller;
  /** When aborted, open streams end cleanly (status OK) and new ones go to the normal handler. */
  drainSignal?: AbortSignal;
}

/** Handles the request and returns true (serving it, or passing it to `fallback` once its body is read), or false having touched nothing. */
export type WatchStreamPath = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
  path: string,
  fallback: FallbackHandler,
) => boolean;

const METHOD = CacheService.method.watchChanges;
const RPC = `${METHOD.parent.typeName}/${METHOD.name}`;
const PATH = `/${RPC}`;

/** The compressions connect-node's adapter accepts when not told otherwise (request-handler.ts does not). */
const ACCEPT_COMPRESSION: Compression[] = [compressionGzip, compressionBrotli];

/**
 * The same bytes connect-node's gzip and brotli give (`zlib.gzip(bytes, {})`, `zlib.brotliCompress(bytes,
 * {})`), computed at once so a batch is written in one step. Only messages of at least
 * `compressMinBytes` are compressed, as connect does: rare for a change.
 */
/** The size from which connect compresses a message for a client that accepts it (its default: the adapter is given none). */
const COMPRESS_MIN_BYTES = validateReadWriteMaxBytes(undefined, undefined, undefined).compressMinBytes;

const COMPRESS_SYNC: Record<string, (bytes: Uint8Array) => Uint8Array> = {
  gzip: (bytes) => gzipSync(bytes, {}),
  br: (bytes) => brotliCompressSync(bytes, {}),
};

interface Variant {
  binary: boolean;
  compression: string | undefined;
}

/** "proto", "json", "proto+gzip"…: the wire variant of a stream's data frames. */
function variantName(binary: boolean, compression: string | undefined): string {
  return `${binary ? "proto" : "json"}${compression ? `+${compression}` : ""}`;
}

function parseVariant(name: string): Variant {
  const plus = name.indexOf("+");
  const format = plus === -1 ? name : name.slice(0, plus);
  return { binary: format === "proto", compression: plus === -1 ? undefined : name.slice(plus + 1) };
}

/**
 * The frame encoder the fan-out needs: a WatchChanges response as one enveloped message of a
 * variant, serialized by connect's own serializers with the service's JSON options and the size
 * limit (a message over `writeMaxBytes` throws connect's resource_exhausted).
 */
export function watchFrameEncoder(readMaxBytes: number, writeMaxBytes: number): (message: WatchChangesResponse, variant: string) => Uint8Array {
  const serialization = createMethodSerializationLookup(METHOD, undefined, CACHE_SERVICE_OPTIONS.jsonOptions, { readMaxBytes, writeMaxBytes });
  const variants = new Map<string, Variant>();
  return (message, name) => {
    let v = variants.get(name);
    if (!v) variants.set(name, (v = parseVariant(name)));
    let data: Uint8Array = serialization.getO(v.binary).serialize(message);
    let flags = 0;
    if (v.compression !== undefined && data.byteLength >= COMPRESS_MIN_BYTES) {
      data = COMPRESS_SYNC[v.compression]!(data);
      flags |= compressedFlag;
    }
    return encodeEnvelope(flags, data);
  };
}

/** What differs between the three protocols on this path. */
interface Protocol {
  /** The response's content type for a binary (or JSON) stream. */
  contentType(binary: boolean): string;
  encodingHeader: string;
  acceptEncodingHeader: string;
  timeoutHeader: string;
  /** How the stream ends: gRPC's trailers, gRPC-web's trailer frame, Connect's end-of-stream message. */
  end(res: Response, error: ConnectError | undefined, compression: string | undefined): void;
}

type Response = http.ServerResponse | http2.Http2ServerResponse;

const endStreamSerialization = connectProtocol.createEndStreamSerialization(CACHE_SERVICE_OPTIONS.jsonOptions);

/** Headers as connect-node writes them: a fetch Headers object's order (sorted, lower case). */
function nodeHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, key) => {
    out[key] = value;
  });
  return out;
}

function grpcTrailer(error: ConnectError | undefined): Headers {
  const trailer = new Headers({ [grpcProtocol.headerGrpcStatus]: grpcProtocol.grpcStatusOk });
  if (error) grpcProtocol.setTrailerStatus(trailer, error);
  return trailer;
}

const GRPC: Protocol = {
  contentType: (binary) => (binary ? grpcProtocol.contentTypeProto : grpcProtocol.contentTypeJson),
  encodingHeader: grpcProtocol.headerEncoding.toLowerCase(),
  acceptEncodingHeader: grpcProtocol.headerAcceptEncoding.toLowerCase(),
  timeoutHeader: grpcProtocol.headerTimeout.toLowerCase(),
  end(res, error) {
    res.addTrailers(nodeHeaders(grpcTrailer(error)));
    res.end();
  },
};

const GRPC_WEB: Protocol = {
  contentType: (binary) => (binary ? grpcWebProtocol.contentTypeProto : grpcWebProtocol.contentTypeJson),
  encodingHeader: grpcProtocol.headerEncoding.toLowerCase(),
  acceptEncodingHeader: grpcProtocol.headerAcceptEncoding.toLowerCase(),
  timeoutHeader: grpcProtocol.headerTimeout.toLowerCase(),
  end(res, error, compression) {
    res.end(endFrame(grpcWebProtocol.trailerFlag, grpcWebProtocol.trailerSerialize(grpcTrailer(error)), compression));
  },
};

const CONNECT: Protocol = {
  contentType: (binary) => (binary ? connectProtocol.contentTypeStreamProto : connectProtocol.contentTypeStreamJson),
  encodingHeader: connectProtocol.headerStreamEncoding.toLowerCase(),
  acceptEncodingHeader: connectProtocol.headerStreamAcceptEncoding.toLowerCase(),
  timeoutHeader: connectProtocol.headerTimeout.toLowerCase(),
  end(res, error, compression) {
    const data = endStreamSerialization.serialize({ metadata: new Headers(), ...(error ? { error } : {}) });
    res.end(endFrame(connectProtocol.endStreamFlag, data, compression));
  },
};

/** Connect compresses the last frame too when it is large enough (an error's message may be), by the same rule as messages. */
function endFrame(flags: number, data: Uint8Array, compression: string | undefined): Uint8Array {
  if (compression !== undefined && data.byteLength >= COMPRESS_MIN_BYTES) return encodeEnvelope(flags | compressedFlag, COMPRESS_SYNC[compression]!(data));
  return encodeEnvelope(flags, data);
}

/** The protocol and format of a request's content type, as connect-node's router tells them apart; undefined: not served here. */
function protocolOf(contentType: string | undefined, h2: boolean): { protocol: Protocol; binary: boolean } | undefined {
  if (contentType === undefined) return undefined;
  const c = connectProtocol.parseContentType(contentType);
  if (c) return c.stream ? { protocol: CONNECT, binary: c.binary } : undefined;
  const g = grpcProtocol.parseContentType(contentType);
  // gRPC's JSON codec is rare: left to the normal handler. gRPC needs HTTP/2's trailers.
  if (g) return g.binary && h2 ? { protocol: GRPC, binary: true } : undefined;
  const w = grpcWebProtocol.parseContentType(contentType);
  if (w) return w.binary && !w.text ? { protocol: GRPC_WEB, binary: true } : undefined;
  return undefined;
}

/** The path, or undefined when the feed cannot serve it (the handler then serves every stream). */
export function createWatchStreamPath(options: WatchStreamPathOptions): WatchStreamPath | undefined {
  const { feed, schema, heartbeatS, readMaxBytes, writeMaxBytes, finished, metrics, logger, authorizeWatch, drainSignal } = options;
  if (!isBatchFeed(feed)) return undefined;
  const fanOut = createWatchFanOut({ feed, heartbeatS, encode: watchFrameEncoder(readMaxBytes, writeMaxBytes) });
  // The request parsed as connect parses it: its serializers, the service's JSON options, the size limit.
  const requests = createMethodSerializationLookup(METHOD, undefined, CACHE_SERVICE_OPTIONS.jsonOptions, { readMaxBytes, writeMaxBytes });

  /** Streams served here, to end on drain: one listener for all of them. */
  const open = new Set<Served>();
  drainSignal?.addEventListener(
    "abort",
    () => {
      for (const s of open) s.drain();
      // New streams go to the handler from now on: the fan-out stops hearing the feed.
      fanOut.close();
    },
    { once: true },
  );

  const callerOf = (authorization: string | undefined): Caller | undefined | null => {
    if (!authorizeWatch) return undefined;
    try {
      return authorizeWatch(authorization);
    } catch {
      return null;
    }
  };

  return (req, res, path, fallback) => {
    if (path !== PATH || req.method !== "POST" || drainSignal?.aborted) return false;
    const h = req.headers;
    const kind = protocolOf(h["content-type"], req.httpVersionMajor === 2);
    if (!kind) return false;
    const { protocol, binary } = kind;
    if (h[protocol.timeoutHeader] !== undefined) return false;
    const compression = compressionNegotiate(
      ACCEPT_COMPRESSION,
      headerValue(h[protocol.encodingHeader]),
      headerValue(h[protocol.acceptEncodingHeader]),
      protocol.acceptEncodingHeader,
    );
    if (compression.error || compression.request) return false;
    const caller = callerOf(headerValue(h.authorization) ?? undefined);
    if (caller === null) return false;
    const declared = h["content-length"] === undefined ? undefined : Number(h["content-length"]);
    if (declared !== undefined && !(declared >= 0 && declared <= readMaxBytes + 5)) return false;

    // The client may go away while its body is read or its request checked: then there is no one to serve.
    const received = performance.now();
    let gone = false;
    /** The body is still being read here (not handed on, not ended). */
    let reading = true;
    const onGone = () => {
      gone = true;
      if (!reading) return;
      // Gone mid-body: finished as the handler finishes it (its read of the body fails: code unknown,
      // whatever the transport's own message), so both paths count and log the call alike.
      reading = false;
      req.off("data", onData);
      req.off("end", onEnd);
      finished(RPC, received, new Error("aborted"), false);
    };
    res.once("close", onGone);
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      // Larger than one message may be: the normal handler reads (and refuses) it with its limit.
      if (size > readMaxBytes + 5) {
        reading = false;
        req.off("data", onData);
        req.off("end", onEnd);
        res.off("close", onGone);
        replayReadSoFar(req, chunks);
        fallback(req, res);
      }
    };
    const onEnd = () => {
      reading = false;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const handOn = () => {
        res.off("close", onGone);
        replayBody(req, body);
        fallback(req, res);
      };
      const message = oneMessage(body, (data) => requests.getI(binary).parse(data));
      if (!message) return handOn();
      checkWatchRequest(message, schema).then(
        (since) => {
          if (drainSignal?.aborted) return handOn();
          serve(message, since);
        },
        () => handOn(),
      );
    };
    req.on("data", onData);
    req.once("end", onEnd);
    // The client went away mid-body: there is nobody to answer.
    req.once("error", () => res.destroy());

    const serve = (message: WatchChangesRequest, since: number) => {
      res.off("close", onGone);
      const started = performance.now();
      if (gone) {
        // As the handler's stream would be: opened, then ended by the client's cancel.
        metrics?.streamOpened();
        metrics?.streamClosed();
        finished(RPC, started, undefined, true);
        return;
      }
      const variant = variantName(binary, compression.response?.name);
      const served = new Served(res, protocol, binary, variant, compression.response?.name, (error, canceled) => {
        open.delete(served);
        metrics?.streamClosed();
        finished(RPC, started, error, canceled);
      });
      metrics?.streamOpened();
      open.add(served);
      fanOut.open(message, since, caller, served, served.stop).then(
        (stream) => served.started(stream),
        (err: unknown) => {
          logger?.warn({ rpc: RPC, err: errorMessage(err) }, "watch stream failed to start");
          served.fail(err);
        },
      );
    };
    return true;
  };
}

function headerValue(v: string | string[] | undefined): string | null {
  if (v === undefined) return null;
  return Array.isArray(v) ? v.join(", ") : v;
}

/** The request message of a body that is exactly one plain (uncompressed) envelope; undefined for anything else. */
function oneMessage(body: Buffer, parse: (data: Uint8Array) => WatchChangesRequest): WatchChangesRequest | undefined {
  if (body.length < 5 || body[0] !== 0) return undefined;
  const length = body.readUInt32BE(1);
  if (body.length !== 5 + length) return undefined;
  try {
    return parse(body.subarray(5));
  } catch {
    return undefined;
  }
}

/** One stream served here: the response side the fan-out writes to. */
class Served implements WatchSink {
  readonly variant: string;
  /** Aborts when the client goes away or the server drains: a stream still waiting to start stops. */
  readonly #stopper = new AbortController();
  readonly #res: Response;
  readonly #protocol: Protocol;
  readonly #binary: boolean;
  readonly #compression: string | undefined;
  readonly #done: (error: unknown, canceled: boolean) => void;
  #stream: WatchStream | undefined;
  #ended = false;

  constructor(
    res: Response,
    protocol: Protocol,
    binary: boolean,
    variant: string,
    compression: string | undefined,
    done: (error: unknown, canceled: boolean) => void,
  ) {
    this.#res = res;
    this.#protocol = protocol;
    this.#binary = binary;
    this.variant = variant;
    this.#compression = compression;
    this.#done = done;
    // A write racing a reset connection must not become an uncaught error; "close" tells the rest.
    res.on("error", () => undefined);
    res.once("close", () => {
      if (this.#ended) return;
      // The client went away (or the connection broke) before the stream ended: canceled.
      this.#ended = true;
      this.#stopper.abort();
      this.#stream?.close();
      this.#done(undefined, true);
    });
  }

  get stop(): AbortSignal {
    return this.#stopper.signal;
  }

  /** The fan-out has started the stream (or stopped it while it waited: undefined). */
  started(stream: WatchStream | undefined): void {
    if (this.#ended) {
      stream?.close();
      return;
    }
    if (stream === undefined) {
      // Stopped while waiting: the drain (a client gone is handled on "close"). The normal path
      // then ends the stream without a message.
      this.end();
      return;
    }
    this.#stream = stream;
  }

  /** The server drains: end with status OK. */
  drain(): void {
    this.#stopper.abort();
    if (this.#stream) {
      this.#stream.close();
      this.end();
    }
    // A stream still waiting ends when its wait does (`started(undefined)`).
  }

  write(bytes: Uint8Array, flushed?: () => void): void {
    if (this.#ended) return;
    this.#head();
    // One call shape for both response types (their write overloads differ only in typing).
    const res = this.#res as http.ServerResponse;
    if (flushed) res.write(bytes, flushed);
    else res.write(bytes);
  }

  end(): void {
    this.#finish(undefined);
  }

  fail(error: unknown): void {
    this.#finish(error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, undefined, error));
  }

  #finish(error: ConnectError | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#stopper.abort();
    this.#stream?.close();
    this.#head();
    this.#protocol.end(this.#res, error, this.#compression);
    this.#done(error, false);
  }

  #head(): void {
    if (this.#res.headersSent) return;
    const headers = new Headers({ "content-type": this.#protocol.contentType(this.#binary) });
    if (this.#compression !== undefined) headers.set(this.#protocol.encodingHeader, this.#compression);
    this.#res.writeHead(200, nodeHeaders(headers));
  }
}
