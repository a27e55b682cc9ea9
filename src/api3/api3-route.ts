/**
 * `POST /api3/json` on the service's one port: ShotGrid's api3 protocol, what unmodified
 * `shotgun_api3` scripts speak (`Shotgun("http://cache-host:8080", script_name, key)`). Each call
 * is `{"method_name", "params": [credentials, arguments]}`; every answer is HTTP 200 JSON, a
 * failure `{"exception": true, "message", "error_code"}`. `info` needs no credentials; every other
 * call is made only for a caller ShotGrid accepts (caller-auth.ts). Reads, summaries and schema
 * come from the cache, writes go through the service's write path, anything else is relayed to
 * the site (docs/api3.md has the table). Logs name the method and the outcome, never a credential.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { errorMessage, type Logger, SILENT_LOGGER } from "../logging/index.ts";
import { CallerVerifier, parseCaller, type Api3Caller } from "./caller-auth.ts";
import type { Api3Context, Api3Method } from "./context.ts";
import { API3_CODES, Api3Error, fault, toFault } from "./faults.ts";
import { READ_ONLY_RELAYED, readsOnly, relay } from "./pass-through.ts";
import type { AccessPolicy } from "../auth/access-policy.ts";
import type { Scope } from "../auth/caller.ts";
import { read } from "./read.ts";
import { summarize } from "./summarize.ts";
import { batch, create, retire, revive, update } from "./writes.ts";

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

/** What a call ended as, for the metric: answered, a fault of the caller's credentials, another fault. */
export type Api3Outcome = "ok" | "auth_fault" | "fault";

export interface Api3Metrics {
  api3Call(method: string, outcome: Api3Outcome): void;
}

export interface Api3RouteOptions {
  context: Omit<Api3Context, "logger"> & { logger?: Logger };
  /** How long a verified credential is remembered (ms); 0: every call is verified with ShotGrid. */
  credentialTtlMs: number;
  /** Largest request body (bytes). */
  maxBodyBytes: number;
  /** Longest a call may take (ms). */
  deadlineMs: number;
  metrics?: Api3Metrics;
  /** The auth file's policy: a call that also carries a bearer token gets that client's scopes and read limits. */
  policy?: AccessPolicy;
}

/** The methods answered here (not relayed): name → handler. */
const METHODS: Record<string, Api3Method> = {
  read: (ctx, caller, args, signal) => {
    // Filter presets are the site's to apply: such a read cannot be answered from the cache.
    const presets = typeof args === "object" && args !== null ? (args as { additional_filter_presets?: unknown }).additional_filter_presets : undefined;
    if (Array.isArray(presets) && presets.length > 0) return relayed(relayFor(ctx, caller, "read", args, signal));
    return read(ctx, args, signal, caller.client);
  },
  summarize: (ctx, caller, args, signal) => summarize(ctx, args, signal, caller.client),
  schema_read: schemaMethod("schema_read"),
  schema_entity_read: schemaMethod("schema_entity_read"),
  schema_field_read: schemaMethod("schema_field_read"),
  create,
  update,
  delete: retire,
  revive,
  batch,
};

/** Methods named in metrics; any other is counted as "other" so callers cannot grow the label set. */
const COUNTED = new Set([...Object.keys(METHODS), ...READ_ONLY_RELAYED, "info"]);

/** Marks an answer the site gave (relayed as it is) apart from one made here (wrapped in `results`). */
const RELAYED = Symbol("relayed");
interface Relayed {
  [RELAYED]: unknown;
}

/** Scopes of the auth file each method needs (when the call carries a bearer token). */
function scopeOf(method: string): Scope {
  return readsOnly(method) ? "read" : "write";
}

/** A relay, unless the caller has read limits: the site's answer could not be held to them. */
function relayFor(ctx: Api3Context, caller: Api3Caller, method: string, args: unknown, signal: AbortSignal): Promise<unknown> {
  const c = caller.client;
  if (c && (c.projectIds !== null || c.entityTypes !== null)) {
    throw new Api3Error(
      `API ${method}(): client "${c.name}" has read limits (projects or entity types) and ${method === "read" ? "a read with additional_filter_presets" : method} is answered by ShotGrid itself, which the limits cannot be applied to`,
      API3_CODES.badRequest,
    );
  }
  return relay(ctx, caller, method, args, signal);
}

async function relayed(answer: Promise<unknown>): Promise<Relayed> {
  return { [RELAYED]: await answer };
}

function schemaMethod(method: string): Api3Method {
  return (ctx, caller, args, signal) => relayed(ctx.schemaAnswers.answer(method, args, () => relay(ctx, caller, method, args, signal)));
}

/** How long `info` (the site's own, with our page size) is kept before it is asked again. */
const INFO_TTL_MS = 10 * 60_000;

export interface Api3Route {
  /** The route for the server's `extraRoutes`: true when it took the request. */
  route(req: Req, res: Res, path: string): boolean;
  readonly verifier: CallerVerifier;
}

export function createApi3Route(o: Api3RouteOptions): Api3Route {
  const ctx: Api3Context = { ...o.context, logger: o.context.logger ?? SILENT_LOGGER };
  const verifier = new CallerVerifier({ backend: ctx.backend, ttlMs: o.credentialTtlMs });
  let info: { answer: Record<string, unknown>; at: number } | undefined;

  /** The site's own `info` (its version, features), with the page size this service serves. */
  const siteInfo = async (signal: AbortSignal): Promise<Record<string, unknown>> => {
    if (info && Date.now() - info.at < INFO_TTL_MS) return info.answer;
    let site: Record<string, unknown> = {};
    try {
      const answer = await relay(ctx, undefined, "info", undefined, signal);
      if (typeof answer === "object" && answer !== null && !Array.isArray(answer) && !(answer as { exception?: unknown }).exception) {
        site = answer as Record<string, unknown>;
      }
    } catch (err) {
      ctx.logger.warn({ err: errorMessage(err) }, "api3: the site's info could not be read; answering the service's own");
    }
    const version = Array.isArray(site.version) && site.version.length >= 3 ? site.version : FALLBACK_VERSION;
    const answer = { ...site, version, api_max_entities_per_page: ctx.maxEntitiesPerPage };
    if (site.version) info = { answer, at: Date.now() };
    return answer;
  };

  const answer = async (method: string, params: unknown[], authorization: string | undefined, signal: AbortSignal): Promise<unknown> => {
    // `info` is a plain object on ShotGrid, not wrapped in `results`.
    if (method === "info") return relayed(siteInfo(signal));
    const caller: Api3Caller = parseCaller(params[0]);
    // A bearer token of the auth file (a script may set `sg.config.authorization`): its scopes
    // and read limits apply too. Without one the ShotGrid credentials alone decide.
    if (o.policy?.mode === "tokens" && authorization !== undefined && /^\s*bearer\s/i.test(authorization)) {
      caller.client = o.policy.authorize(authorization, scopeOf(method));
    }
    await verifier.verify(caller, signal);
    const handler = Object.hasOwn(METHODS, method) ? METHODS[method] : undefined;
    if (!handler) return relayed(relayFor(ctx, caller, method, params[1], signal));
    return handler(ctx, caller, params[1], signal);
  };

  const route = (req: Req, res: Res, path: string): boolean => {
    if (!/(^|\/)api3\/json$/.test(path)) return false;
    if (req.method !== "POST") {
      send(res, 405, { exception: true, message: '/api3/json takes POST {"method_name", "params"}', error_code: API3_CODES.badRequest }, { allow: "POST" });
      return true;
    }
    readBody(req, o.maxBodyBytes).then(
      async (text) => {
        const controller = new AbortController();
        // A "TimeoutError" reason: the error funnel tells a deadline from a client that went away.
        const timer = setTimeout(() => controller.abort(new DOMException(`the call ran past its ${o.deadlineMs} ms deadline`, "TimeoutError")), o.deadlineMs);
        const onClose = () => controller.abort(new Error("the client went away"));
        res.once("close", onClose);
        let method = "unknown";
        try {
          const body = parseBody(text);
          method = body.method;
          const authorization = req.headers.authorization;
          const result = await answer(body.method, body.params, typeof authorization === "string" ? authorization : undefined, controller.signal);
          o.metrics?.api3Call(COUNTED.has(method) ? method : "other", relayedFault(result) ? "fault" : "ok");
          send(res, 200, isRelayed(result) ? result[RELAYED] : { results: result });
        } catch (err) {
          const f = toFault(method, err);
          o.metrics?.api3Call(COUNTED.has(method) ? method : "other", f.error_code === API3_CODES.authentication ? "auth_fault" : "fault");
          if (f.error_code === API3_CODES.internal) ctx.logger.error({ method, err: errorMessage(err) }, "api3 call failed");
          else ctx.logger.debug({ method, code: f.error_code }, "api3 fault");
          send(res, 200, f);
        } finally {
          clearTimeout(timer);
          res.off("close", onClose);
        }
      },
      (err: unknown) => {
        if (err instanceof TooLarge) send(res, 413, fault(`the request body is larger than ${o.maxBodyBytes} bytes`, API3_CODES.badRequest));
        else res.destroy();
      },
    );
    return true;
  };
  return { route, verifier };
}

/** Used when the site cannot say its own: >= 7.4.0, so clients page with `has_next_page`. */
const FALLBACK_VERSION = [8, 50, 0];

function isRelayed(v: unknown): v is Relayed {
  return typeof v === "object" && v !== null && RELAYED in v;
}

function relayedFault(v: unknown): boolean {
  if (!isRelayed(v)) return false;
  const a = v[RELAYED];
  return typeof a === "object" && a !== null && (a as { exception?: unknown }).exception === true;
}

function parseBody(text: string): { method: string; params: unknown[] } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new Api3Error(`the request body is not valid JSON: ${errorMessage(err)}`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Api3Error('the request body must be {"method_name", "params"}');
  const { method_name: method, params = [] } = body as Record<string, unknown>;
  if (typeof method !== "string" || !/^[A-Za-z_][A-Za-z0-9_]{0,99}$/.test(method))
    throw new Api3Error('method_name must be an api3 method name such as "read"');
  if (!Array.isArray(params)) throw new Api3Error("params must be a list [credentials, arguments]");
  return { method, params };
}

class TooLarge extends Error {}

function readBody(req: Req, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > max) {
      req.resume();
      return reject(new TooLarge());
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.removeAllListeners("data");
        req.resume();
        reject(new TooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: Res, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const bytes = Buffer.from(JSON.stringify(body));
  (res as ServerResponse).writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": bytes.length, ...headers });
  (res as ServerResponse).end(bytes);
}
