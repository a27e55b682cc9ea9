/**
 * Shared parts of the end-to-end tests: the whole service (`startService`) in front of a real
 * simulated site over real sockets, a raw HTTP/1.1 client that knows nothing of Connect, the
 * site's own REST API for making changes, and a bounded wait.
 */
import http from "node:http";
import { pino } from "pino";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Change, WatchChangesRequestSchema, WatchChangesResponse } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { startService, type RunningService } from "../src/app/create-app.ts";
import { createCacheClient } from "../src/client.ts";
import { loadServeConfig, type ServeConfig } from "../src/config.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle, type SimulatorOptions } from "../src/simulator/index.ts";

export const GET_ENTITY = "/shotgrid.cache.v1.CacheService/GetEntity";
export const QUERY = "/shotgrid.cache.v1.CacheService/Query";

export interface E2E {
  site: SimulatorHandle;
  service: RunningService;
  /** `http://127.0.0.1:PORT` of the service. */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The configuration `serve` would build with no flags, then the given overrides. */
export function testConfig(overrides: Partial<ServeConfig> = {}): ServeConfig {
  const { help: _help, ...defaults } = loadServeConfig([], {});
  return { ...defaults, port: 0, host: "127.0.0.1", pollIntervalMs: 100, heartbeatS: 1, logLevel: "silent", ...overrides };
}

/** A simulated site and the service following it; `ready` has resolved when this resolves. */
export async function startE2E(options: { site?: SimulatorOptions; config?: Partial<ServeConfig>; waitReady?: boolean } = {}): Promise<E2E> {
  const site = await startSimulator({ ...options.site });
  let service: RunningService;
  try {
    service = await startService(
      testConfig({ site: { url: site.url, scriptName: site.scriptName, scriptKey: options.site?.scriptKey ?? DEFAULT_SCRIPT_KEY }, ...options.config }),
      pino({ level: "silent" }),
    );
  } catch (err) {
    await site.close();
    throw err;
  }
  if (options.waitReady !== false) await service.ready;
  return {
    site,
    service,
    url: service.url,
    port: service.port,
    async close() {
      await service.close(1000);
      await site.close();
    },
  };
}

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: any;
}

/** One HTTP/1.1 exchange on a fresh connection, with no Connect library involved. */
export function rawRequest(port: number, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode!, headers: res.headers, body: text, json });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A Connect unary call with a JSON body, as curl would send it. */
export function postJson(port: number, path: string, message: unknown, headers: Record<string, string> = {}): Promise<RawAnswer> {
  return rawRequest(port, "POST", path, typeof message === "string" ? message : JSON.stringify(message), { "content-type": "application/json", ...headers });
}

/** A Connect GET of a side-effect-free method. */
export function getJson(port: number, path: string, message: unknown): Promise<RawAnswer> {
  const q = `connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify(message))}`;
  return rawRequest(port, "GET", `${path}?${q}`);
}

/** Change a record through the simulated site's REST API, as a user's tool would. */
export async function siteUpdate(site: SimulatorHandle, pluralType: string, id: number, attributes: Record<string, unknown>): Promise<void> {
  const tokenRes = await fetch(`${site.url}/api/v1.1/auth/access_token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_id: site.scriptName, client_secret: DEFAULT_SCRIPT_KEY }),
  });
  if (!tokenRes.ok) throw new Error(`site token: ${tokenRes.status} ${await tokenRes.text()}`);
  const { access_token } = (await tokenRes.json()) as { access_token: string };
  const res = await fetch(`${site.url}/api/v1.1/entity/${pluralType}/${id}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${access_token}`, "content-type": "application/json" },
    body: JSON.stringify(attributes),
  });
  if (!res.ok) throw new Error(`site update ${pluralType}/${id}: ${res.status} ${await res.text()}`);
}

/** Ask `probe` until `done` says yes, at most `timeoutMs`; returns the last answer either way. */
export async function pollUntil<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 3000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A port no one listens on right now (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** An open WatchChanges stream whose messages are collected as they arrive. */
export interface Watch {
  readonly messages: WatchChangesResponse[];
  /** Wait until some collected message (from index `from`) satisfies `match`; rejects after `timeoutMs`. */
  waitFor(match: (m: WatchChangesResponse) => boolean, timeoutMs?: number, from?: number): Promise<WatchChangesResponse>;
  /** Resolves when the stream has ended (server closed it, or `close`). */
  readonly ended: Promise<void>;
  close(): void;
}

export function watch(url: string, request: MessageInitShape<typeof WatchChangesRequestSchema>, protocol: "connect" | "grpc" | "grpc-web" = "connect"): Watch {
  const client = createCacheClient(url, { protocol });
  const controller = new AbortController();
  const messages: WatchChangesResponse[] = [];
  const waiters = new Set<() => void>();
  let done = false;
  const ended = (async () => {
    try {
      for await (const m of client.watchChanges(request, { signal: controller.signal })) {
        messages.push(m);
        for (const w of [...waiters]) w();
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err;
    } finally {
      done = true;
      for (const w of [...waiters]) w();
    }
  })();
  ended.catch(() => undefined);
  return {
    messages,
    ended,
    close: () => controller.abort(),
    waitFor(match, timeoutMs = 3000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.slice(from).find(match);
          if (found) {
            finish();
            resolve(found);
          } else if (done) {
            finish();
            reject(new Error(`stream ended without the awaited message; got ${messages.map((m) => m.message.case).join(", ")}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`no matching message within ${timeoutMs} ms; got ${messages.map((m) => m.message.case).join(", ")}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        queueMicrotask(check);
      });
    },
  };
}

/** The change carried by a message, if it is one. */
export function changeOf(m: WatchChangesResponse): Change | undefined {
  return m.message.case === "change" ? m.message.value : undefined;
}

/** The sum of every series of one metric in the service's /metrics text (0 when absent). */
export async function metricSum(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = (await rawRequest(port, "GET", "/metrics")).body;
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-z0-9_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (!Object.entries(labels).every(([k, v]) => (m[2] ?? "").includes(`${k}="${v}"`))) continue;
    sum += Number(m[3]);
  }
  return sum;
}
