/**
 * The server: one port for Connect, gRPC and gRPC-web (cleartext h2c + HTTP/1.1, or TLS with
 * ALPN), plain `/healthz`, `/readyz` and `/metrics` routes, gRPC reflection, RPC metrics and
 * logs, and graceful shutdown.
 *
 * Typical use (the `serve` command):
 * ```ts
 * const server = createServer({
 *   version, mode: "demo", logger, readiness: () => ({ ready: follower.running, reasons }),
 *   routes: (router, { drainSignal, metrics }) =>
 *     router.service(CacheService, createCacheService({ ..., shutdownSignal: drainSignal })),
 * });
 * const { url } = await server.listen(8080, "0.0.0.0");
 * closeOnSignals(server, { graceMs: 10_000, logger, beforeExit: () => follower.stop() });
 * ```
 */
export { createServer, type Server, type ServerOptions, type RoutesContext } from "./create-server.ts";
export { Metrics, type MetricsOptions, type MetricsTotals, type CacheKind, type CacheSize, type RpcProtocol, type UpstreamOutcome } from "./metrics.ts";
export {
  OnePortListener,
  type OnePortListenerOptions,
  type BoundAddress,
  type TlsOptions,
  type RequestHandler,
  type H2StreamHandler,
} from "./one-port-listener.ts";
export {
  createRequestHandler,
  DEFAULT_READ_MAX_BYTES,
  DEFAULT_WRITE_MAX_BYTES,
  type RequestHandlerOptions,
  type RpcRequestHandler,
  type RpcLimits,
} from "./request-handler.ts";
export { createHttpRoutes, notFound, type HttpRoutesOptions, type Readiness, type StatusRoutesOptions } from "./http-routes.ts";
export { DescriptorIndex, registerReflection, reflectionServices } from "./reflection.ts";
export { observeRpcs, endStreamsOn, defaultDeadline, type ObserveRpcsOptions } from "./rpc-interceptors.ts";
export { closeOnSignals, type ShutdownSignalOptions } from "./shutdown-signals.ts";
