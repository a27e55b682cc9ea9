/**
 * The plain HTTP routes served beside the RPCs: `/` (what this is, home-page.ts; the live status
 * page for a browser), `/status` and `/status.json` (src/status), `/healthz`, `/readyz`,
 * `/metrics`, and a JSON 404 for everything else.
 */
import type http from "node:http";
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import { ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";
import { homePage } from "./home-page.ts";
import type { StatusReport } from "../status/status-report.ts";
import type { Metrics } from "./metrics.ts";
import { errorMessage } from "../logging/index.ts";

/** The adapter's request and response types: HTTP/1.1 or HTTP/2 compat. */
type NodeHandler = NonNullable<ConnectNodeAdapterOptions["fallback"]>;
type Req = Parameters<NodeHandler>[0];
type Res = Parameters<NodeHandler>[1];

/** Whether the service can take traffic; `reasons` say why not. */
export interface Readiness {
  ready: boolean;
  /** Why the service is not ready, e.g. "preload of Shot in progress (1200/5400)". */
  reasons?: string[];
  /**
   * Numbers shown in the `/readyz` JSON either way (ready or not), e.g. the event follower's
   * lag: `{ eventFollow: { lagSeconds, eventsBehind, … } }`. They never change the status code.
   */
  details?: Record<string, unknown>;
}

export interface HttpRoutesOptions {
  /** The product version reported by `/healthz`. */
  version: string;
  /** How the service runs, reported by `/healthz`, e.g. "demo" or "site". */
  mode: string;
  /** Where the cache lives, shown on `/`: "memory" or "redis". */
  store?: string;
  /** Answers `/readyz`. Default: always ready. A throw or rejection counts as not ready. */
  readiness?: () => Readiness | Promise<Readiness>;
  /** Serves `/metrics`; without it `/metrics` is a 404. */
  metrics?: Metrics;
  /** True while the server shuts down: `/readyz` then answers 503 so balancers move away. */
  isDraining?: () => boolean;
  /** Serves the live status page (`/status`, and `/` for browsers) and `/status.json`; without it both are 404. */
  status?: StatusRoutesOptions;
}

export interface StatusRoutesOptions {
  /** The figures `/status.json` answers (`StatusSampler.report`). */
  report: () => StatusReport;
  /**
   * Checks the caller of `/status.json` before any figure is computed: throw a `ConnectError`
   * (unauthenticated, permission_denied) to refuse, with the code's HTTP status and message.
   * It is given the request's Authorization header. Meant to be the access policy's own check
   * (`policy.authorize(header, "status")`); leave it undefined when there is no auth file, so
   * the page stays open. The HTML page itself holds no figures and is always served.
   */
  authorize?: (authorization: string | undefined) => void;
}

/** Returns a function that serves the plain routes and returns true, or returns false for RPC paths. */
export function createHttpRoutes(options: HttpRoutesOptions): (req: Req, res: Res, path: string) => boolean {
  const startedAt = performance.now();
  const readiness = options.readiness ?? (() => ({ ready: true }));

  const readyz = async (res: Res, head: boolean) => {
    if (options.isDraining?.()) return sendJson(res, 503, { status: "not_ready", reasons: ["server is shutting down"] }, head);
    let report: Readiness;
    try {
      report = await readiness();
    } catch (err) {
      report = { ready: false, reasons: [`readiness check failed: ${errorMessage(err)}`] };
    }
    const details = report.details ? { details: report.details } : {};
    if (report.ready) sendJson(res, 200, { status: "ready", ...details }, head);
    else sendJson(res, 503, { status: "not_ready", reasons: report.reasons?.length ? report.reasons : ["not ready"], ...details }, head);
  };

  const metrics = async (res: Res, head: boolean) => {
    try {
      const text = await options.metrics!.text();
      send(res, 200, options.metrics!.contentType, text, head);
    } catch (err) {
      sendJson(res, 500, { code: "internal", message: `metrics collection failed: ${errorMessage(err)}` }, head);
    }
  };

  const statusJson = (req: Req, res: Res, head: boolean) => {
    const status = options.status!;
    try {
      status.authorize?.(req.headers.authorization);
    } catch (err) {
      // The policy's message says what is missing; it never contains the header.
      const e = ConnectError.from(err);
      return sendJson(res, codeToHttpStatus(e.code), { code: codeToString(e.code), message: e.rawMessage }, head);
    }
    sendJson(res, 200, status.report(), head);
  };

  const home = (req: Req, asStatusPage: boolean) =>
    homePage(
      { version: options.version, mode: options.mode, store: options.store, metrics: options.metrics !== undefined, status: options.status !== undefined },
      asStatusPage ? "text/html" : req.headers.accept,
      req.headers.host ?? (req.headers[":authority"] as string | undefined),
    );

  return (req, res, path) => {
    const method = req.method;
    const head = method === "HEAD";
    if (method !== "GET" && !head) return false;
    switch (path) {
      case "/": {
        const page = home(req, false);
        send(res, 200, page.contentType, page.body, head);
        return true;
      }
      case "/status": {
        if (!options.status) return false;
        const page = home(req, true);
        send(res, 200, page.contentType, page.body, head);
        return true;
      }
      case "/status.json":
        if (!options.status) return false;
        statusJson(req, res, head);
        return true;
      case "/healthz":
        sendJson(
          res,
          200,
          // pid: with `serve --workers N` it tells which process answered.
          {
            status: "ok",
            version: options.version,
            mode: options.mode,
            pid: process.pid,
            uptimeSeconds: Math.round((performance.now() - startedAt) / 100) / 10,
          },
          head,
        );
        return true;
      case "/readyz":
        // A throw once the client is gone must not become an unhandled rejection (fatal).
        readyz(res, head).catch(() => res.destroy());
        return true;
      case "/metrics":
        if (!options.metrics) return false;
        // A throw once the client is gone must not become an unhandled rejection (fatal).
        metrics(res, head).catch(() => res.destroy());
        return true;
      default:
        return false;
    }
  };
}

/** The fallback for paths that are neither an RPC nor a plain route. */
export function notFound(req: Req, res: Res): void {
  const path = (req.url ?? "/").split("?", 1)[0];
  sendJson(res, 404, { code: "not_found", message: `no route for ${req.method} ${path}` }, req.method === "HEAD");
}

function sendJson(res: Res, status: number, body: unknown, head: boolean): void {
  send(res, status, "application/json", JSON.stringify(body), head);
}

function send(res: Res, status: number, contentType: string, body: string, head: boolean): void {
  // The client may have gone while readiness or metrics were computed.
  if (res.headersSent || res.destroyed) return;
  const bytes = Buffer.from(body);
  // Both response types support writeHead/end; their TypeScript overloads differ.
  (res as http.ServerResponse).writeHead(status, {
    "content-type": contentType.includes("charset") ? contentType : `${contentType}; charset=utf-8`,
    "content-length": bytes.length,
    "cache-control": "no-store",
  });
  (res as http.ServerResponse).end(head ? undefined : bytes);
}
