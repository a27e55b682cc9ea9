/**
 * The one request handler behind both HTTP/1.1 and HTTP/2: plain routes first, then the RPCs
 * (Connect, gRPC and gRPC-web from the same implementations), then a JSON 404.
 */
import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { createHttpRoutes, notFound, type HttpRoutesOptions } from "./http-routes.ts";
import type { Metrics, RpcProtocol } from "./metrics.ts";
import { requestFault, type H2StreamHandler, type RequestHandler } from "./one-port-listener.ts";
import { registerReflection } from "./reflection.ts";
import { createFastPath, type FallbackHandler } from "./fast-path.ts";
import { createFastPathCore } from "./fast-path-core.ts";
import { createH2FastPath } from "./fast-path-h2.ts";
import { createWatchStreamPath, type WatchStreamPath, type WatchStreamsOf } from "./watch-stream-path.ts";
import type { HitPath } from "../service/hit-path.ts";
import type { Caller } from "../auth/caller.ts";
import { defaultDeadline, endStreamsOn, observeRpcs, rpcFinished } from "./rpc-interceptors.ts";
import { explainClientFaults } from "./client-faults.ts";

/** Size and time limits. Each violation answers a clear error code. */
export interface RpcLimits {
  /** Largest request message accepted, in bytes (after decompression). Over it: resource_exhausted. Default 1 MiB. */
  readMaxBytes?: number;
  /** Largest response message sent, in bytes. Over it: resource_exhausted. Default 16 MiB. */
  writeMaxBytes?: number;
  /** Largest deadline a client may ask for, in ms; more is invalid_argument. Default: no limit. */
  maxTimeoutMs?: number;
  /** Deadline for unary calls that arrive without one, in ms. Default: none. */
  defaultTimeoutMs?: number;
}

export interface RequestHandlerOptions extends HttpRoutesOptions {
  /** Registers the services, e.g. `(router) => router.service(CacheService, impl)`. */
  routes: (router: ConnectRouter) => void;
  limits?: RpcLimits;
  /** Serve gRPC server reflection (v1 and v1alpha) for every registered service. Default true. */
  reflection?: boolean;
  /** RPC metrics (calls by method and code, latency, open streams); also served on `/metrics`. */
  metrics?: Metrics;
  /** Logs finished RPCs (see `observeRpcs`). */
  logger?: Logger;
  /** Run after the built-in interceptors (metrics, logging), closest to the handlers. */
  interceptors?: Interceptor[];
  /** When aborted, open server streams end cleanly with status OK. Unary calls run on. */
  drainSignal?: AbortSignal;
  /**
   * More plain routes, tried before the built-in ones and the RPCs (any method): return true when
   * the request was handled. E.g. the webhook receiver's `POST /webhooks/shotgrid`.
   */
  extraRoutes?: (req: Parameters<RequestHandler>[0], res: Parameters<RequestHandler>[1], path: string) => boolean;
  /**
   * When aborted, every handler's `ctx.signal` aborts (the last resort once the grace period is
   * over). Abort it with a `ConnectError` to choose the code clients see.
   */
  shutdownSignal?: AbortSignal;
  /**
   * The hit path of the CacheService that `routes` registers (with `CACHE_SERVICE_OPTIONS`):
   * plain GetEntity and Query cache hits over Connect (HTTP/1.1 and HTTP/2) and gRPC are then
   * answered on a fast path, byte for byte as the normal handler would (see fast-path-core.ts).
   */
  hitPath?: HitPath;
  /**
   * Use `hitPath`'s fast path. Default true; when `interceptors` are given, only together with
   * `authorizeRead` (the interceptors may hold rules the fast path does not know otherwise).
   */
  fastPath?: boolean;
  /**
   * The access check the interceptors make for a read, for the fast path to make too (see
   * `FastPathOptions.authorizeRead`): one rule on every path.
   */
  authorizeRead?: (authorization: string | undefined) => Caller;
  /**
   * What the WatchChanges handler that `routes` registers is built from: its streams are then
   * served by the streaming path (watch-stream-path.ts), byte for byte as the handler would.
   * Used under the same conditions as the fast path, with `authorizeWatch` for `authorizeRead`.
   */
  watchStreams?: WatchStreamsOf;
  /** The access check the interceptors make for a watch, for the streaming path to make too. */
  authorizeWatch?: (authorization: string | undefined) => Caller;
}

/** The request handler, and what it offers the listener for HTTP/2 streams (`OnePortListenerOptions.streams`). */
export type RpcRequestHandler = RequestHandler & { readonly streams?: H2StreamHandler };

/** The compressions the RPCs accept and answer with (connect-node's default, named here for the fast path too). */
const ACCEPT_COMPRESSION = [compressionGzip, compressionBrotli];

export const DEFAULT_READ_MAX_BYTES = 1024 * 1024;
export const DEFAULT_WRITE_MAX_BYTES = 16 * 1024 * 1024;

/** Build the handler to pass to `OnePortListener`. */
export function createRequestHandler(options: RequestHandlerOptions): RpcRequestHandler {
  const limits = options.limits ?? {};
  const interceptors: Interceptor[] = [];
  if (options.metrics || options.logger) interceptors.push(observeRpcs({ metrics: options.metrics, logger: options.logger }));
  if (options.drainSignal) interceptors.push(endStreamsOn(options.drainSignal));
  if (limits.defaultTimeoutMs !== undefined) interceptors.push(defaultDeadline(limits.defaultTimeoutMs));
  interceptors.push(...(options.interceptors ?? []));

  const readMaxBytes = limits.readMaxBytes ?? DEFAULT_READ_MAX_BYTES;
  const writeMaxBytes = limits.writeMaxBytes ?? DEFAULT_WRITE_MAX_BYTES;
  const fastAllowed = (options.fastPath ?? true) && ((options.interceptors ?? []).length === 0 || options.authorizeRead !== undefined);
  const core =
    options.hitPath && fastAllowed
      ? createFastPathCore({
          hits: options.hitPath,
          readMaxBytes,
          writeMaxBytes,
          finished: rpcFinished({ metrics: options.metrics, logger: options.logger }),
          logger: options.logger,
          authorizeRead: options.authorizeRead,
        })
      : undefined;
  const fast = core && createFastPath(core, { acceptCompression: ACCEPT_COMPRESSION });
  // HTTP/2 streams it answers never reach the handler below: it counts them as received itself.
  const received = options.metrics && ((method: string, protocol: RpcProtocol) => options.metrics!.rpcReceived(method, protocol));
  const streams = core && createH2FastPath(core, { received, acceptCompression: ACCEPT_COMPRESSION });
  const watchAllowed = (options.fastPath ?? true) && ((options.interceptors ?? []).length === 0 || options.authorizeWatch !== undefined);
  const watch: WatchStreamPath | undefined =
    options.watchStreams && watchAllowed
      ? createWatchStreamPath({
          ...options.watchStreams,
          readMaxBytes,
          writeMaxBytes,
          finished: rpcFinished({ metrics: options.metrics, logger: options.logger }),
          metrics: options.metrics,
          logger: options.logger,
          authorizeWatch: options.authorizeWatch,
          drainSignal: options.drainSignal,
        })
      : undefined;
  // Registered RPC paths -> "package.Service/Method": only these are counted by protocol, so a
  // scan of random paths cannot grow the label set.
  const rpcPaths = new Map<string, string>();
  const rpc = connectNodeAdapter({
    routes(router) {
      options.routes(router);
      if (options.reflection ?? true) registerReflection(router, servicesOf(router));
      for (const h of router.handlers) rpcPaths.set(h.requestPath, h.requestPath.slice(1));
      // The adapter maps paths to these handlers once this returns: wrap each in place.
      const onFault = options.logger && ((rpc: string, code: string, err: string) => options.logger!.info({ rpc, code, err }, "rpc failed"));
      router.handlers.forEach((h, i) => (router.handlers[i] = explainClientFaults(h, onFault)));
    },
    connect: true,
    grpc: true,
    grpcWeb: true,
    acceptCompression: ACCEPT_COMPRESSION,
    readMaxBytes,
    writeMaxBytes,
    maxTimeoutMs: limits.maxTimeoutMs,
    shutdownSignal: options.shutdownSignal,
    interceptors,
    fallback: notFound,
  });
  const plain = createHttpRoutes(options);

  // The fast paths call this later (once the body is read, from an event or a promise), where a
  // throw of connect-node's (e.g. for a request without a usable Host) would end the process:
  // it fails that request as a throw here does (the listener's `requestFault`).
  const fallback: FallbackHandler = (req, res) => {
    options.logger?.debug({ path: (req.url ?? "/").split("?", 1)[0] }, "fast path handed the request to the normal handler after reading its body");
    try {
      rpc(req, res);
    } catch (err) {
      requestFault(err, req, res);
    }
  };
  const handler: RequestHandler = (req, res) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    if (options.extraRoutes?.(req, res, path)) return;
    if (plain(req, res, path)) return;
    const method = options.metrics && rpcPaths.get(path);
    if (method) options.metrics!.rpcReceived(method, protocolOf(req.headers["content-type"]));
    if (!fast && !watch) return rpc(req, res);
    if (fast?.(req, res, path, fallback)) return;
    if (watch?.(req, res, path, fallback)) return;
    rpc(req, res);
  };
  return Object.assign(handler, { streams });
}

/** The wire protocol a request's content type names (Connect GETs have none). */
function protocolOf(contentType: string | undefined): RpcProtocol {
  if (contentType === undefined || !contentType.startsWith("application/grpc")) return "connect";
  return contentType.startsWith("application/grpc-web") ? "grpc-web" : "grpc";
}

function servicesOf(router: ConnectRouter): DescService[] {
  const services = new Set<DescService>();
  for (const handler of router.handlers) services.add(handler.service);
  return [...services];
}
