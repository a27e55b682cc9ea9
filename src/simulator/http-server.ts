/**
 * The transport of the simulated site: a node:http server that reads requests, checks tokens,
 * applies the realism knobs (concurrency limit, outage, injected 5xx, latency, malformed
 * answers), and hands the request to the REST endpoints or to the api3 protocol (`/api3/json`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { type TokenIssuer, scopedPrincipal, type Principal } from "./auth.ts";
import { handleApi3 } from "./api3.ts";
import type { Knobs, MalformedKind } from "./knobs.ts";
import { handleApi, serverInfo, type ApiAnswer } from "./rest-api.ts";
import { SimError, badRequest } from "./sim-error.ts";
import { newSessionUuid, type SimStore } from "./store.ts";

/** Largest request body accepted (batch writes of many records fit easily). */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

export interface Credentials {
  scriptName: string;
  scriptKey: string;
  /** The ApiUser record the script writes as. */
  scriptUser: { type: "ApiUser"; id: number };
  /** login → password and HumanUser record. */
  users: Map<string, { password: string; user: { type: "HumanUser"; id: number } }>;
}

/** Counters tests read to check client behaviour (one token for many requests, etc.). */
export interface SimulatorStats {
  /** Every HTTP request received. */
  requests: number;
  /** Requests to the token endpoint. */
  authRequests: number;
  /** Reads of the event log (`/entity/event_log_entries…`): a follower's polls and gap checks. */
  eventLogReads: number;
  /** Requests answered 503 because of the concurrency limit. */
  rejectedOverLimit: number;
  /** The most requests in flight at once. */
  maxInFlight: number;
  /** Requests by method and path pattern ("GET entity/_"), for tests. */
  inFlight: number;
}

export interface HttpServerDeps {
  store: SimStore;
  tokens: TokenIssuer;
  credentials: Credentials;
  knobs: Knobs;
  random: () => number;
  now: () => number;
}

export class SimHttpServer {
  readonly server: Server;
  readonly stats: SimulatorStats = { requests: 0, authRequests: 0, eventLogReads: 0, rejectedOverLimit: 0, maxInFlight: 0, inFlight: 0 };
  private readonly sockets = new Set<Socket>();

  constructor(private readonly deps: HttpServerDeps) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        // Only a bug gets here; answer something rather than hang the client.
        if (!res.headersSent) sendJson(res, 500, new SimError(500, 500, "Internal Server Error", String(err)).envelope());
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 5_000;
    this.server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once("error", onError);
      this.server.listen(port, host, () => {
        this.server.off("error", onError);
        const addr = this.server.address();
        resolve(typeof addr === "object" && addr ? addr.port : port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { knobs } = this.deps;
    const stats = this.stats;
    stats.requests++;
    // Counted on arrival like `requests`, so the two can be subtracted at any moment.
    if (/^\/api\/v1(?:\.1)?\/entity\/(?:event_log_entries|EventLogEntry)(?:[/?]|$)/.test(req.url ?? "")) stats.eventLogReads++;
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    res.on("close", () => stats.inFlight--);
    try {
      const body = await readBody(req);
      if (knobs.maxConcurrent > 0 && stats.inFlight > knobs.maxConcurrent) {
        stats.rejectedOverLimit++;
        return sendJson(res, 503, new SimError(503, 503, "Service Unavailable", "Too many concurrent requests.").envelope());
      }
      const outage = knobs.activeOutage();
      if (outage === "reset") {
        req.socket.destroy();
        return;
      }
      if (outage === "502") return sendHtml502(res);
      if (outage === "503") return sendJson(res, 503, new SimError(503, 503, "Service Unavailable", "The site is down for maintenance.").envelope());
      if (knobs.errorRate > 0 && this.deps.random() < knobs.errorRate) {
        const statuses = knobs.errorStatuses;
        const status = statuses[Math.floor(this.deps.random() * statuses.length)] ?? 503;
        if (status === 502) return sendHtml502(res);
        return sendJson(res, status, new SimError(status, status, "Injected failure", "The simulator injected this error.").envelope());
      }
      const delay = knobs.delayFor(this.deps.random);
      if (delay > 0) await sleep(delay);
      if (res.destroyed) return;

      const url = new URL(req.url ?? "/", "http://simulator");
      const route = /^\/api\/(v1(?:\.1)?)(\/.*)?$/.exec(url.pathname);
      const method = (req.method ?? "GET").toUpperCase();
      if (url.pathname === "/" && method === "GET") return sendJson(res, 200, serverInfo("v1.1"));
      // The Python api3 protocol; a base URL with a path prefix posts to `/prefix/api3/json`.
      if (method === "POST" && /(^|\/)api3\/json$/.test(url.pathname)) {
        const { store, tokens, credentials, now } = this.deps;
        const answer: ApiAnswer = { status: 200, body: handleApi3({ store, tokens, credentials, now }, body.toString("utf8")) };
        const malformed = knobs.takeMalformed();
        if (malformed) return sendMalformed(res, malformed, answer);
        return sendJson(res, 200, answer.body);
      }
      if (!route) return sendJson(res, 404, new SimError(404, 104, "Not Found", `No route for ${method} ${url.pathname}`).envelope());
      const version = route[1]!;
      const rest = (route[2] ?? "").replace(/\/+$/, "");
      if (rest === "" && method === "GET") return sendJson(res, 200, serverInfo(version));
      if (rest === "/auth/access_token" && method === "POST") {
        stats.authRequests++;
        const answer = this.authenticate(url.searchParams, req.headers["content-type"] ?? "", body);
        return sendJson(res, answer.status, answer.body);
      }
      const principal = this.authorize(req);
      const contentType = String(req.headers["content-type"] ?? "");
      const answer: ApiAnswer = handleApi(
        { store: this.deps.store, now: this.deps.now },
        {
          method,
          version,
          segments: rest.split("/").slice(1).map(decodeURIComponent),
          path: url.pathname.replace(/\/+$/, ""),
          query: url.searchParams,
          contentType,
          body: parseJsonBody(body, contentType),
          principal,
          sessionUuid: newSessionUuid(),
        },
      );
      const malformed = knobs.takeMalformed();
      if (malformed) return sendMalformed(res, malformed, answer);
      if (answer.status === 204) {
        res.writeHead(204, { "cache-control": "no-cache, max-age=0" });
        res.end();
        return;
      }
      return sendJson(res, answer.status, answer.body);
    } catch (err) {
      if (err instanceof SimError) return sendJson(res, err.status, err.envelope());
      throw err;
    }
  }

  private authorize(req: IncomingMessage): Principal {
    const header = req.headers.authorization ?? "";
    const token = header.replace(/^Bearer\s+/i, "").trim();
    if (!token) throw new SimError(401, 102, "Unauthorized", "Missing Authorization: Bearer <token> header.");
    const v = this.deps.tokens.verify(token);
    if (v === "expired") throw new SimError(401, 102, "Unauthorized", "The access token has expired.");
    if (v === "unknown") throw new SimError(401, 102, "Unauthorized", "The access token is not valid.");
    return v;
  }

  /** `POST /auth/access_token`: grant fields from the query string and the form (or JSON) body. */
  private authenticate(query: URLSearchParams, contentType: string, body: Buffer): { status: number; body: unknown } {
    const p = new URLSearchParams(query);
    const text = body.toString("utf8");
    if (text) {
      if (contentType.includes("json")) {
        const parsed = parseJsonBody(body, contentType);
        if (parsed && typeof parsed === "object") for (const [k, v] of Object.entries(parsed)) p.set(k, String(v));
      } else {
        for (const [k, v] of new URLSearchParams(text)) p.set(k, v);
      }
    }
    const { credentials, tokens } = this.deps;
    const grant = p.get("grant_type");
    const fail = (title: string) => ({ status: 400, body: new SimError(400, 102, title).envelope() });
    switch (grant) {
      case "client_credentials": {
        const name = p.get("client_id") ?? "";
        if (name !== credentials.scriptName || p.get("client_secret") !== credentials.scriptKey) {
          return fail(`Can't authenticate script '${name}'`);
        }
        return {
          status: 200,
          body: tokens.issue(scopedPrincipal(this.deps.store, { kind: "script", user: credentials.scriptUser, login: name }, p.get("scope"))),
        };
      }
      case "password": {
        const login = p.get("username") ?? "";
        const u = credentials.users.get(login);
        if (!u || u.password !== p.get("password")) return fail(`Can't authenticate user '${login}'`);
        return { status: 200, body: tokens.issue(scopedPrincipal(this.deps.store, { kind: "user", user: u.user, login }, p.get("scope"))) };
      }
      case "session_token": {
        // A session token (api3's `get_session_token`, or a browser session) traded for an access token.
        const v = tokens.verify(p.get("session_token") ?? "");
        if (v === "expired") return fail("Can't authenticate: the session token has expired.");
        if (v === "unknown") return fail("Can't authenticate: the session token is not valid.");
        return { status: 200, body: tokens.issue(scopedPrincipal(this.deps.store, v, p.get("scope"))) };
      }
      case "refresh_token": {
        const principal = tokens.redeem(p.get("refresh_token") ?? "");
        if (!principal) return fail("Can't authenticate: the refresh token is not valid (they are single-use).");
        return { status: 200, body: tokens.issue(principal) };
      }
      default:
        return {
          status: 400,
          body: badRequest("Request Parameters invalid.", { grant_type: ["must be client_credentials, password, session_token or refresh_token"] }).envelope(),
        };
    }
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(badRequest("Request Parameters invalid.", { body: [`larger than ${MAX_BODY_BYTES} bytes`] }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function parseJsonBody(body: Buffer, contentType: string): unknown {
  if (body.length === 0) return undefined;
  const text = body.toString("utf8");
  if (contentType.includes("x-www-form-urlencoded")) return Object.fromEntries(new URLSearchParams(text));
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest("Request Parameters invalid.", { body: [`is not valid JSON: ${(err as Error).message}`] });
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "private, max-age=0, must-revalidate",
  });
  res.end(text);
}

const HTML_502 =
  "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

function sendHtml502(res: ServerResponse): void {
  res.writeHead(502, { "content-type": "text/html", "content-length": Buffer.byteLength(HTML_502) });
  res.end(HTML_502);
}

function sendMalformed(res: ServerResponse, kind: MalformedKind, answer: ApiAnswer): void {
  switch (kind) {
    case "html-502":
      sendHtml502(res);
      return;
    case "wrong-shape":
      sendJson(res, 200, { result: "ok", items: 3 });
      return;
    case "empty-200":
      res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": 0 });
      res.end();
      return;
    case "truncated-json": {
      const text = JSON.stringify(answer.body ?? { data: null });
      const cut = text.slice(0, Math.max(1, Math.floor(text.length / 2)));
      res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(cut) });
      res.end(cut);
      return;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
