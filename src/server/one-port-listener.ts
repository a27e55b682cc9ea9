/**
 * One TCP port for every client: HTTP/1.1 (Connect, gRPC-web, curl) and HTTP/2 (gRPC, Connect).
 *
 * Without TLS, Node's HTTP/2 server cannot fall back to HTTP/1.1 (`allowHTTP1` needs ALPN), so a
 * plain `net.Server` accepts each connection, looks at its first bytes, and hands it to an
 * `http2` server when they are the HTTP/2 prior-knowledge preface, else to an `http` server.
 * With TLS, `http2.createSecureServer({ allowHTTP1: true })` negotiates per connection (ALPN);
 * the `net.Server` still accepts, so shutdown tracks every socket in one place.
 *
 * Graceful close: stop accepting; tell streams to end (`onDrain`); answer new HTTP/1.1 requests
 * with `Connection: close`; close idle keep-alive sockets; send GOAWAY on HTTP/2 sessions, which
 * then close once their open streams finish; after the grace period, `onForce` and destroy
 * whatever is left.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { TLSSocket } from "node:tls";
import { replayBody } from "./body-replay.ts";

/** A request handler for both HTTP/1.1 and HTTP/2 (compat API), e.g. from `connectNodeAdapter`. */
export type RequestHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/**
 * Offered every HTTP/2 stream before node's compat layer makes a request and a response of it
 * (a fast path). Returns false having touched nothing: the stream goes on to `handler` at once.
 * Returns true when it answers the stream itself, or hands it on later through `fallback`.
 */
export type H2StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, fallback: H2Fallback) => boolean;

/**
 * Hands a stream taken by an `H2StreamHandler` on to `handler` as if untouched, its body read
 * back from `body` (what was read of it) and then from `more` (the rest, when it was not read to
 * its end). One function for every stream (a fast path allocates no closure per call).
 */
export type H2Fallback = (stream: http2.ServerHttp2Stream, body: Buffer, more?: AsyncIterable<Buffer>) => void;

export interface TlsOptions {
  /** PEM certificate chain. */
  cert: string | Buffer;
  /** PEM private key. */
  key: string | Buffer;
}

export interface OnePortListenerOptions {
  /** Serves every request, HTTP/1.1 and HTTP/2 alike. */
  handler: RequestHandler;
  /** Sees each HTTP/2 stream before `handler` does (see `H2StreamHandler`). */
  streams?: H2StreamHandler;
  /** Serve TLS, negotiating HTTP/2 or HTTP/1.1 by ALPN. Default: cleartext (h2c + HTTP/1.1). */
  tls?: TlsOptions;
  /** A connection that sends nothing for this long is closed. Default 30 000 ms. */
  idleTimeoutMs?: number;
  /**
   * Connections idle between requests close after this long: HTTP/1.1 keep-alive sockets, and
   * HTTP/2 sessions with no call in flight and no frame sent or received (GOAWAY). Default 65 000 ms.
   */
  keepAliveTimeoutMs?: number;
  /** Called once when `close()` starts: end streams now, while unary calls run on. */
  onDrain?: () => void;
  /** Called when the grace period ends with calls still running, just before sockets are destroyed. */
  onForce?: () => void;
  /** Called for errors on client sockets and sessions (resets, TLS failures); never fatal. */
  onClientError?: (err: Error) => void;
  /**
   * Called when serving one request threw (a bug): that request fails (a 500 with code
   * "internal", or its connection or stream is reset if the answer had started), the process
   * carries on.
   */
  onRequestFault?: (err: unknown, req: { method?: string; url?: string }) => void;
}

/** The address the listener is bound to. */
export interface BoundAddress {
  host: string;
  port: number;
  /** "http://host:port" or "https://host:port", IPv6 hosts in brackets. */
  url: string;
}

/** How long forced-off calls get to answer before their connections are destroyed. */
const FORCE_FLUSH_MS = 100;
const BAD_REQUEST = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
/** How long an idle HTTP/2 session closed with GOAWAY may take to end before it is destroyed. */
const H2_CLOSE_GRACE_MS = 1000;
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** Per HTTP/1.1 socket (the socket the HTTP layer sees: raw, or TLS on top of raw). */
interface H1State {
  listener: OnePortListener;
  inflight: number;
}
const kH1 = Symbol("one-port-h1");
type H1Socket = net.Socket & { [kH1]?: H1State };
/**
 * The socket an HTTP/1.1 response was served on, kept on the response itself: by the time the
 * response's "close" fires, Node may already have detached it (`req.socket` is null when the
 * request body was not read to its end, e.g. an RPC refused before reading it).
 */
const kSocket = Symbol("one-port-socket");
type H1Response = http.ServerResponse & { [kSocket]?: H1Socket };
/** Per HTTP/2 session: its calls in flight (those that reached the handler). */
const kH2 = Symbol("one-port-h2");
type H2Session = http2.Http2Session & { [kH2]?: { inflight: number } };
/** The session an HTTP/2 response belongs to (as kSocket for HTTP/1.1). */
const kSession = Symbol("one-port-session");
type H2Response = http2.Http2ServerResponse & { [kSession]?: H2Session };
/** What a stream taken by `OnePortListenerOptions.streams` needs to be handed on, and what it had read of its body then. */
const kTaken = Symbol("one-port-taken");
interface Taken {
  headers: http2.IncomingHttpHeaders;
  flags: number;
  rawHeaders: string[];
  /** Its session's state, while the stream counts as a call in flight there. */
  session: { inflight: number } | undefined;
  replay?: { body: Buffer; more: AsyncIterable<Buffer> | undefined };
}
type TakenStream = http2.ServerHttp2Stream & { [kTaken]?: Taken };
/** What a request whose handler threw gets (see `requestFault`). */
const INTERNAL_ERROR = JSON.stringify({ code: "internal", message: "internal error" });
/** Who hears of a fault in serving a request: kept on the request by the listener serving it (see `requestFault`). */
const kFaultReport = Symbol("one-port-fault-report");
type Reported = { [kFaultReport]?: OnePortListenerOptions["onRequestFault"] };

/** Accepts connections on one port and routes each to HTTP/1.1 or HTTP/2. */
export class OnePortListener {
  readonly #opts: OnePortListenerOptions;
  readonly #tcp: net.Server;
  readonly #h1: http.Server | undefined;
  readonly #h2: http2.Http2Server | http2.Http2SecureServer;
  /** Every accepted TCP connection, destroyed if still open when the grace period ends. */
  readonly #all = new Set<net.Socket>();
  /** Connections accepted and not yet known to be HTTP/1.1 or HTTP/2. */
  readonly #pending = new Set<net.Socket>();
  /** HTTP/1.1 sockets, with their requests in flight. */
  readonly #h1Sockets = new Set<H1Socket>();
  readonly #sessions = new Set<http2.Http2Session>();
  #draining = false;
  #closing: Promise<void> | undefined;
  #address: BoundAddress | undefined;

  constructor(options: OnePortListenerOptions) {
    this.#opts = options;
    const handler = this.#wrapHandler(options.handler);
    const onClientError = (err: Error) => options.onClientError?.(err);

    if (options.tls) {
      const secure = http2.createSecureServer({ cert: options.tls.cert, key: options.tls.key, allowHTTP1: true }, handler);
      secure.on("secureConnection", (socket: TLSSocket) => {
        socket.on("error", onClientError);
        if (socket.alpnProtocol !== "h2") this.#trackH1(socket);
      });
      secure.on("tlsClientError", (err, socket) => {
        onClientError(err);
        socket.destroy();
      });
      this.#h2 = secure;
    } else {
      this.#h2 = http2.createServer(handler);
      this.#h1 = http.createServer({ keepAliveTimeout: options.keepAliveTimeoutMs ?? 65_000 }, handler);
      this.#h1.on("clientError", (err: NodeJS.ErrnoException, socket) => {
        onClientError(err);
        // A malformed request gets a plain 400 (as Node's default does); a reset needs no answer.
        if (err.code !== "ECONNRESET" && socket.writable) socket.end(BAD_REQUEST);
        else socket.destroy();
      });
      // This server never listens itself, but Node starts its request/headers timeout checks
      // (slow-client protection) on "listening"; `close()` stops them again.
      this.#h1.emit("listening");
    }
    if (options.streams) this.#offerStreams(options.streams);
    const sessionIdleMs = options.keepAliveTimeoutMs ?? 65_000;
    this.#h2.on("session", (session: H2Session) => {
      session[kH2] = { inflight: 0 };
      this.#sessions.add(session);
      session.once("close", () => this.#sessions.delete(session));
      session.on("error", onClientError);
      // Without this a client that opens a session and goes quiet holds it forever.
      session.setTimeout(sessionIdleMs, h2SessionIdle);
      if (this.#draining) session.close();
    });
    this.#h2.on("sessionError", onClientError);

    this.#tcp = net.createServer({ noDelay: true }, (socket) => this.#accept(socket));
    this.#tcp.on("error", onClientError);
  }

  /** Start listening. Port 0 picks a free port; see `address` for the one chosen. */
  listen(port: number, host = "127.0.0.1"): Promise<BoundAddress> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#tcp.once("error", onError);
      this.#tcp.listen(port, host, () => {
        this.#tcp.off("error", onError);
        const addr = this.#tcp.address() as net.AddressInfo;
        const shownHost = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
        this.#address = { host: addr.address, port: addr.port, url: `${this.#opts.tls ? "https" : "http"}://${shownHost}:${addr.port}` };
        resolve(this.#address);
      });
    });
  }

  /** The bound address; throws before `listen` resolved. */
  get address(): BoundAddress {
    if (!this.#address) throw new Error("the listener is not listening yet");
    return this.#address;
  }

  /** True once `close()` has been called. */
  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Close gracefully: stop accepting, let calls in flight finish (streams are asked to end via
   * `onDrain`), close idle connections; after `graceMs`, force the rest closed. Resolves when
   * every connection is gone. Calling it again returns the same promise.
   */
  close(graceMs = 10_000): Promise<void> {
    this.#closing ??= this.#close(graceMs);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    this.#draining = true;
    const closed = new Promise<void>((resolve) => {
      if (!this.#tcp.listening) return resolve();
      // Resolves once every accepted connection has ended, not just when accepting stops.
      this.#tcp.close(() => resolve());
    });
    this.#opts.onDrain?.();
    // Only stops the h1 server's timers; it never listened (the callback gets ERR_SERVER_NOT_RUNNING).
    this.#h1?.close(() => undefined);
    for (const socket of this.#pending) socket.destroy();
    for (const socket of this.#h1Sockets) if (socket[kH1]!.inflight === 0) socket.end();
    for (const session of this.#sessions) session.close();

    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"grace-over">((resolve) => {
      timer = setTimeout(() => resolve("grace-over"), graceMs);
    });
    const first = await Promise.race([closed, graceOver]);
    clearTimeout(timer);
    if (first !== "grace-over") return;

    this.#opts.onForce?.();
    // A moment for handlers that honour their (now aborted) signal to send "unavailable"
    // before their connections go.
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, FORCE_FLUSH_MS))]);
    for (const session of this.#sessions) session.destroy();
    for (const socket of this.#all) socket.destroy();
    await closed;
  }

  #accept(socket: net.Socket): void {
    socket.on("error", (err) => this.#opts.onClientError?.(err));
    if (this.#draining) return void socket.destroy();
    this.#all.add(socket);
    socket.once("close", () => this.#all.delete(socket));
    if (this.#opts.tls) {
      // The TLS server wraps the socket; HTTP/1.1 or HTTP/2 is chosen by ALPN.
      this.#h2.emit("connection", socket);
      return;
    }
    this.#pending.add(socket);
    socket.setTimeout(this.#opts.idleTimeoutMs ?? 30_000, () => socket.destroy());
    socket.once("close", () => this.#pending.delete(socket));
    let seen: Buffer | undefined;
    const onData = (chunk: Buffer) => {
      seen = seen ? Buffer.concat([seen, chunk]) : chunk;
      const verdict = classify(seen);
      if (verdict === "need-more") return;
      socket.off("data", onData);
      socket.pause();
      socket.setTimeout(0);
      this.#pending.delete(socket);
      // Give the bytes back so the HTTP server parses the stream from its start.
      socket.unshift(seen);
      try {
        if (verdict === "h2") {
          // The HTTP/2 server reads the buffered bytes itself; resuming here would lose the preface.
          this.#h2.emit("connection", socket);
        } else {
          this.#trackH1(socket);
          this.#h1!.emit("connection", socket);
          socket.resume();
        }
      } catch (err) {
        // A throw from an event callback would end the process: this connection fails instead.
        this.#opts.onClientError?.(err instanceof Error ? err : new Error(String(err)));
        socket.destroy();
      }
    };
    socket.on("data", onData);
  }

  /**
   * Put `take` in front of the compat layer: node serves `handler` through one listener of the
   * server's "stream" event, which gets each stream `take` declines or hands back.
   */
  #offerStreams(take: H2StreamHandler): void {
    const server = this.#h2;
    const compat = server.listeners("stream");
    // Node's compat API has always been this one listener; should that change, say so at startup.
    if (compat.length !== 1)
      throw new Error(
        `node:http2 serves its compat API through ${compat.length} "stream" listeners, not one: the HTTP/2 fast path cannot be put in front of it`,
      );
    const toCompat = compat[0] as (...args: unknown[]) => void;
    server.removeListener("stream", toCompat);
    const onStreamError = (err: Error) => this.#opts.onClientError?.(err);
    const handOn: H2Fallback = (stream: TakenStream, body, more) => {
      const taken = stream[kTaken];
      // A bug in the fast path: that stream fails; a throw here (in an event listener) would end the process.
      if (!taken || taken.replay) return this.#streamFault(new Error("a stream was handed on that was not taken, or twice"), stream, taken?.headers ?? {});
      taken.replay = { body, more };
      try {
        toCompat.call(server, stream, taken.headers, taken.flags, taken.rawHeaders);
      } catch (err) {
        this.#streamFault(err, stream, taken.headers);
      }
    };
    server.on("stream", (stream: TakenStream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
      // Set before `take` runs: it may hand the stream on at once.
      const taken: Taken = { headers, flags, rawHeaders, session: (stream.session as H2Session | undefined)?.[kH2] };
      stream[kTaken] = taken;
      let took: boolean;
      try {
        took = take(stream, headers, handOn);
      } catch (err) {
        return this.#streamFault(err, stream, headers);
      }
      if (!took) {
        // Handed on already (the hook should have said true): the compat layer has it once.
        if (taken.replay) return;
        stream[kTaken] = undefined;
        return void toCompat.call(server, stream, headers, flags, rawHeaders);
      }
      // As the compat layer's requests get (see #wrapHandler): no 'error' may end the process, and a call in flight keeps its session open.
      stream.on("error", onStreamError);
      if (taken.session) {
        taken.session.inflight++;
        stream.on("close", takenStreamClosed);
      }
    });
  }

  /** A stream whose fast path threw (a bug): it fails (500, or reset once answered), the process carries on. */
  #streamFault(err: unknown, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    try {
      this.#opts.onRequestFault?.(err, { method: headers[":method"], url: headers[":path"] });
    } catch {
      // As in #requestFault.
    }
    try {
      stream.on("error", () => undefined);
      if (stream.headersSent || stream.destroyed) return void stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      stream.respond({ ":status": 500, "content-type": "application/json", "content-length": Buffer.byteLength(INTERNAL_ERROR) });
      stream.end(INTERNAL_ERROR);
    } catch {
      stream.destroy();
    }
  }

  #trackH1(socket: H1Socket): void {
    socket[kH1] = { listener: this, inflight: 0 };
    this.#h1Sockets.add(socket);
    socket.once("close", () => this.#h1Sockets.delete(socket));
  }

  #wrapHandler(handler: RequestHandler): RequestHandler {
    // Nothing may end the process: an 'error' with no listener would, so every request and response has one.
    const onStreamError = (err: Error) => this.#opts.onClientError?.(err);
    return (req, res) => {
      req.on("error", onStreamError);
      res.on("error", onStreamError);
      if (req.httpVersionMajor === 2) {
        const replay = ((req as http2.Http2ServerRequest).stream as TakenStream)[kTaken]?.replay;
        if (replay) replayBody(req, replay.body, replay.more);
        const session = (req as http2.Http2ServerRequest).stream.session as H2Session | undefined;
        const state = session?.[kH2];
        if (state) {
          state.inflight++;
          (res as H2Response)[kSession] = session;
          // on, not once (which makes a wrapper per call): the listener forgets the session when it runs.
          res.on("close", h2ResponseClosed);
        }
      } else if (req.httpVersionMajor === 1) {
        const socket = req.socket as H1Socket;
        const state = socket[kH1];
        if (state) {
          state.inflight++;
          (res as H1Response)[kSocket] = socket;
          res.on("close", h1ResponseClosed);
        }
        // Tell the client not to reuse this connection: the server is going away.
        if (this.#draining) (res as http.ServerResponse).shouldKeepAlive = false;
      }
      // Handlers that go on serving later, outside this try (a fast path hands the request to the
      // normal handler once its body is read), end a throw there with `requestFault` too.
      if (this.#opts.onRequestFault) (req as Reported)[kFaultReport] = this.#opts.onRequestFault;
      try {
        handler(req, res);
      } catch (err) {
        requestFault(err, req, res);
      }
    };
  }
}

/**
 * The last resort for a request whose serving threw (a bug, or connect-node refusing a request it
 * cannot make a URL of): fail that request, report it (`onRequestFault` of the listener serving
 * it), carry on. The listener calls it for a throw of the handler; a handler that goes on later
 * (from an event or a promise, where a throw would end the process) calls it for its own.
 */
export function requestFault(err: unknown, req: Parameters<RequestHandler>[0], res: Parameters<RequestHandler>[1]): void {
  try {
    (req as Reported)[kFaultReport]?.(err, { method: req.method, url: req.url });
  } catch {
    // A failing logger must not turn one bad request into a crash either.
  }
  try {
    if (res.headersSent || res.destroyed) return void res.destroy();
    (res as http.ServerResponse).writeHead(500, { "content-type": "application/json", "content-length": Buffer.byteLength(INTERNAL_ERROR) });
    (res as http.ServerResponse).end(INTERNAL_ERROR);
  } catch {
    res.destroy();
  }
}

/** Runs with `this` the HTTP/1.1 response, so no closure is allocated per request. */
function h1ResponseClosed(this: H1Response): void {
  const socket = this[kSocket];
  const state = socket?.[kH1];
  if (!state) return;
  this[kSocket] = undefined;
  state.inflight--;
  // end(), not destroy(): the response may still sit in the socket's write buffer.
  if (state.inflight === 0 && state.listener.draining) socket!.end();
}

/** Runs with `this` the HTTP/2 response (see h1ResponseClosed). */
function h2ResponseClosed(this: H2Response): void {
  const state = this[kSession]?.[kH2];
  this[kSession] = undefined;
  if (state) state.inflight--;
}

/** Runs with `this` a stream taken by the fast path (see h1ResponseClosed). */
function takenStreamClosed(this: TakenStream): void {
  const session = this[kTaken]?.session;
  if (session) session.inflight--;
}

/** A session with no frame for the idle time: close it (GOAWAY) unless calls are in flight. */
function h2SessionIdle(this: H2Session): void {
  if (this.closed || this.destroyed || (this[kH2]?.inflight ?? 0) > 0) return;
  this.close();
  // close() waits for streams that never reached the handler (e.g. headers with no path): give them no longer.
  setTimeout(() => this.destroy(), H2_CLOSE_GRACE_MS).unref();
}

/** HTTP/2 prior knowledge starts with the preface; anything that diverges from it is HTTP/1.1. */
function classify(bytes: Buffer): "h2" | "h1" | "need-more" {
  const n = Math.min(bytes.length, H2_PREFACE.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== H2_PREFACE[i]) return "h1";
  return bytes.length >= H2_PREFACE.length ? "h2" : "need-more";
}
