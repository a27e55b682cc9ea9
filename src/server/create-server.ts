/**
 * The server as the `serve` command uses it: the request handler on the one-port listener, with
 * metrics, reflection and graceful shutdown wired together.
 */
import { setMaxListeners } from "node:events";
import type { ConnectRouter } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { Metrics } from "./metrics.ts";
import { OnePortListener, type BoundAddress, type TlsOptions } from "./one-port-listener.ts";
import { createRequestHandler, type RequestHandlerOptions } from "./request-handler.ts";

/** What `routes` gets besides the router, to build services that cooperate with shutdown. */
export interface RoutesContext {
  /** Aborted when shutdown starts: long-lived streams should end (WatchChanges returns). */
  drainSignal: AbortSignal;
  /** The server's metrics, for handlers that report their own. */
  metrics: Metrics;
}

export interface ServerOptions extends Omit<RequestHandlerOptions, "routes" | "drainSignal" | "shutdownSignal" | "isDraining" | "metrics"> {
  /** Registers the services. Called once, synchronously, by `createServer`. */
  routes: (router: ConnectRouter, context: RoutesContext) => void;
  /** Metrics to report into and serve on `/metrics`. Default: a new `Metrics()`. */
  metrics?: Metrics;
  /** Serve TLS (HTTP/2 and HTTP/1.1 negotiated by ALPN) instead of cleartext h2c + HTTP/1.1. */
  tls?: TlsOptions;
  /** A connection that sends nothing for this long is closed. Default 30 000 ms. */
  idleTimeoutMs?: number;
  /**
   * Connections idle this long between requests are closed: HTTP/1.1 keep-alive sockets, and
   * HTTP/2 sessions with no call in flight (GOAWAY). Default 65 000 ms.
   */
  keepAliveTimeoutMs?: number;
}

/** A server on one port. Create with `createServer`, then `listen`. */
export interface Server {
  /** Start listening; port 0 picks a free one. Host defaults to 127.0.0.1. */
  listen(port: number, host?: string): Promise<BoundAddress>;
  /** The bound address (after `listen`). */
  readonly address: BoundAddress;
  readonly metrics: Metrics;
  /** Aborted when `close` starts. */
  readonly drainSignal: AbortSignal;
  /**
   * Shut down gracefully: stop accepting; `/readyz` answers 503; open streams end cleanly;
   * unary calls in flight finish; idle connections close, HTTP/2 sessions get GOAWAY. After
   * `graceMs` (default 10 000), remaining calls are cancelled (unavailable) and connections
   * destroyed. Resolves when every connection is closed.
   */
  close(graceMs?: number): Promise<void>;
}

/** Build a server for `options.routes`. Nothing listens until `listen`. */
export function createServer(options: ServerOptions): Server {
  const metrics = options.metrics ?? new Metrics();
  const drain = new AbortController();
  const shutdown = new AbortController();
  // connect-node links every call's context signal to `shutdown`: one abort listener per call in
  // flight, removed when the call ends. Thousands at once are normal load, not a leak.
  setMaxListeners(0, shutdown.signal);
  const logger = options.logger;
  const context: RoutesContext = { drainSignal: drain.signal, metrics };

  const handler = createRequestHandler({
    ...options,
    routes: (router) => options.routes(router, context),
    metrics,
    drainSignal: drain.signal,
    shutdownSignal: shutdown.signal,
    isDraining: () => drain.signal.aborted,
  });
  const listener = new OnePortListener({
    handler,
    streams: handler.streams,
    tls: options.tls,
    idleTimeoutMs: options.idleTimeoutMs,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs,
    onDrain: () => drain.abort(),
    onForce: () => {
      logger?.warn("grace period over: cancelling calls still running");
      shutdown.abort(new ConnectError("the server is shutting down", Code.Unavailable));
    },
    onClientError: (err) => logger?.debug({ err: err.message }, "client connection error"),
    onRequestFault: (err, req) =>
      logger?.error(
        { err, method: req.method, path: req.url?.split("?", 1)[0] },
        "request failed: a fault in serving it (the request got an internal error; the server carries on)",
      ),
  });

  return {
    listen: (port, host) => listener.listen(port, host),
    get address() {
      return listener.address;
    },
    metrics,
    drainSignal: drain.signal,
    close: (graceMs) => listener.close(graceMs),
  };
}
