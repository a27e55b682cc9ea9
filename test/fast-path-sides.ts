/**
 * The two servers the fast-path equivalence tests compare: both built by `createCacheServer`, the
 * function the service itself builds its server with (the configuration `serve` makes with no
 * flags: limits, default deadline; a debug logger), over the same cache, one with the fast path
 * and one without. The normal handler's calls are counted where it reads the cache (the fast
 * path only peeks).
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { Writable } from "node:stream";
import { expect } from "vitest";
import { fromJson, toBinary, type DescMessage, type JsonObject } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { pino } from "pino";
import type { ReadThroughCache } from "../src/cache/index.ts";
import { createCacheServer } from "../src/app/cache-server.ts";
import type { AccessPolicy } from "../src/auth/index.ts";
import { ChangeBus } from "../src/events/index.ts";
import { Metrics, type Server } from "../src/server/index.ts";
import type { SchemaRegistry } from "../src/service/schema-registry.ts";
import { testConfig } from "./e2e-helpers.ts";

export interface Side {
  server: Server;
  port: number;
  metrics: Metrics;
  /** What the server logged (debug and up), parsed. */
  logs: Array<Record<string, unknown>>;
}

export interface SideOptions {
  fastPath: boolean;
  cache: ReadThroughCache;
  schema: SchemaRegistry;
  /** What the service's `siteUnreachable` answers (read on every call). */
  unreachable: () => string | undefined;
  /** Who may call (default open). */
  policy?: AccessPolicy;
}

export async function startSide(o: SideOptions): Promise<Side> {
  const metrics = new Metrics({ processMetrics: false });
  const logs: Side["logs"] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const server = createCacheServer({
    config: testConfig(),
    mode: "site",
    cache: o.cache,
    schema: o.schema,
    feed: new ChangeBus({ replayEvents: 10 }),
    logger: pino({ level: "debug" }, sink).child({ component: "server" }),
    metrics,
    readiness: () => ({ ready: true, reasons: [] }),
    siteUnreachable: o.unreachable,
    fastPath: o.fastPath,
    policy: o.policy,
  });
  const port = (await server.listen(0, "127.0.0.1")).port;
  return { server, port, metrics, logs };
}

/** Counts the calls the normal handlers make to `cache` (GetEntity and Query reads). */
export function countHandlerReads(cache: ReadThroughCache): { readonly count: number; restore(): void } {
  const { getEntity, query } = cache;
  let count = 0;
  cache.getEntity = (...args) => (count++, getEntity.apply(cache, args));
  cache.query = (...args) => (count++, query.apply(cache, args));
  return {
    get count() {
      return count;
    },
    restore() {
      cache.getEntity = getEntity;
      cache.query = query;
    },
  };
}

/** One raw exchange: status, headers as sent (Date left out), body bytes, and HTTP/2 trailers (none: empty). */
export interface Exchange {
  status: number;
  headers: string[];
  body: Buffer;
  trailers: string[];
}

/** One HTTP/2 session per server port, opened on first use (`closeSessions` ends them). */
const sessions = new Map<number, http2.ClientHttp2Session>();

function sessionTo(port: number): http2.ClientHttp2Session {
  let session = sessions.get(port);
  if (!session || session.closed || session.destroyed) {
    session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", () => sessions.delete(port));
    sessions.set(port, session);
  }
  return session;
}

export async function closeSessions(): Promise<void> {
  await Promise.all([...sessions.values()].map((s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.close(() => resolve())))));
  sessions.clear();
}

/** `name: value` lines in the order received, pseudo-headers and Date left out. */
const linesOf = (h: http2.IncomingHttpHeaders): string[] =>
  Object.entries(h)
    .filter(([name]) => !name.startsWith(":") && name !== "date")
    .map(([name, value]) => `${name}: ${Array.isArray(value) ? value.join(", ") : value}`);

/** One raw HTTP/2 exchange over the port's session (h2c, prior knowledge, as gRPC clients connect). */
export function exchange2(port: number, method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const stream = sessionTo(port).request({ ":method": method, ":path": path, ...headers }, { endStream: method === "GET" });
    const out: Exchange = { status: 0, headers: [], body: Buffer.alloc(0), trailers: [] };
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      out.status = Number(h[":status"]);
      out.headers = linesOf(h);
    });
    stream.on("trailers", (h) => (out.trailers = linesOf(h)));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", reject);
    // The answer is whole once the server ends its side: a server that answers before reading
    // a body it refuses (over the size limit) leaves ours unsent, so the client cancels it.
    const done = () => {
      out.body = Buffer.concat(chunks);
      resolve(out);
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    };
    stream.on("end", done);
    stream.on("close", done);
    if (method !== "GET") stream.end(body);
  });
}

export function exchange(port: number, method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const raw: string[] = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          if (res.rawHeaders[i]!.toLowerCase() !== "date") raw.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
        }
        resolve({ status: res.statusCode ?? 0, headers: raw, body: Buffer.concat(chunks), trailers: [] });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * One HTTP/1.1 exchange as bytes on the wire (its Date line left out): the chunks of a chunked
 * answer as the server framed them. The request carries a Content-Length; the answer is read
 * until the server's last chunk (the connection is closed after).
 */
export function exchangeWire(port: number, shape: Shape, wire: { version?: "1.0" | "1.1"; host?: string | null } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const body = typeof shape.body === "string" ? Buffer.from(shape.body) : (shape.body ?? Buffer.alloc(0));
    const host = wire.host === undefined ? `127.0.0.1:${port}` : wire.host;
    const head = [`${shape.method} ${shape.path} HTTP/${wire.version ?? "1.1"}`, ...(host === null ? [] : [`Host: ${host}`]), `Content-Length: ${body.length}`];
    for (const [name, value] of Object.entries(shape.headers ?? {})) head.push(`${name}: ${value}`);
    const socket = net.connect(port, "127.0.0.1", () => socket.end(Buffer.concat([Buffer.from(`${head.join("\r\n")}\r\n\r\n`), body])));
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () =>
      resolve(
        Buffer.from(
          Buffer.concat(chunks)
            .toString("latin1")
            .replace(/\r\nDate: [^\r]*/, ""),
          "latin1",
        ),
      ),
    );
  });
}

/** One request as sent. */
export interface Shape {
  method: string;
  path: string;
  body?: Buffer | string;
  headers?: Record<string, string>;
  /** Sent over HTTP/2 (h2c) rather than HTTP/1.1. */
  h2?: boolean;
}

/** `msg` as one gRPC message: flags (0: not compressed), length, bytes. */
export function envelope(msg: Uint8Array, flags = 0): Buffer {
  const out = Buffer.alloc(5 + msg.length);
  out[0] = flags;
  out.writeUInt32BE(msg.length, 1);
  out.set(msg, 5);
  return out;
}

/** The Connect unary shapes of a request message to `path`: JSON and binary, POST and GET. */
export function shapesOf(schema: DescMessage, path: string) {
  const binary = (msg: JsonObject) => toBinary(schema, fromJson(schema, msg));
  const jsonPost = (msg: JsonObject, headers: Record<string, string> = {}): Shape => ({
    method: "POST",
    path,
    body: JSON.stringify(msg),
    headers: { "content-type": "application/json", ...headers },
  });
  const jsonGet = (msg: JsonObject): Shape => ({ method: "GET", path: `${path}?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify(msg))}` });
  const protoPost = (msg: JsonObject): Shape => ({ method: "POST", path, body: Buffer.from(binary(msg)), headers: { "content-type": "application/proto" } });
  const protoGet = (msg: JsonObject): Shape => ({
    method: "GET",
    path: `${path}?connect=v1&encoding=proto&base64=1&message=${encodeURIComponent(base64Encode(binary(msg), "url"))}`,
  });
  const h2 = (shape: Shape): Shape => ({ ...shape, h2: true });
  /** gRPC over h2c, as generated clients send it (`+json`: gRPC's JSON codec, which connect also serves). */
  const grpc = (msg: JsonObject, headers: Record<string, string> = {}): Shape =>
    h2({ method: "POST", path, body: envelope(binary(msg)), headers: { "content-type": "application/grpc", te: "trailers", ...headers } });
  const grpcJson = (msg: JsonObject): Shape =>
    h2({ method: "POST", path, body: envelope(Buffer.from(JSON.stringify(msg))), headers: { "content-type": "application/grpc+json", te: "trailers" } });
  /** gRPC-web over HTTP/1.1, as browsers (and connect's gRPC-web transports) send it; `+json`: its JSON codec. */
  const grpcWeb = (msg: JsonObject, headers: Record<string, string> = {}): Shape => ({
    method: "POST",
    path,
    body: envelope(binary(msg)),
    headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", ...headers },
  });
  const grpcWebJson = (msg: JsonObject): Shape => ({
    method: "POST",
    path,
    body: envelope(Buffer.from(JSON.stringify(msg))),
    headers: { "content-type": "application/grpc-web+json", "x-grpc-web": "1" },
  });
  /** Every gRPC-web shape served: binary (both names connect reads as binary) and JSON. */
  const allGrpcWeb = (msg: JsonObject): Shape[] => [grpcWeb(msg), grpcWeb(msg, { "content-type": "application/grpc-web" }), grpcWebJson(msg)];
  /** Every HTTP/2 shape: gRPC binary and JSON, Connect JSON and binary POST and GET over h2c. */
  const allH2 = (msg: JsonObject): Shape[] => [grpc(msg), grpcJson(msg), h2(jsonPost(msg)), h2(protoPost(msg)), h2(jsonGet(msg)), h2(protoGet(msg))];
  return {
    jsonPost,
    jsonGet,
    protoPost,
    protoGet,
    grpc,
    grpcJson,
    grpcWeb,
    grpcWebJson,
    allGrpcWeb,
    h2,
    all: (msg: JsonObject): Shape[] => [jsonPost(msg), jsonGet(msg), protoPost(msg), protoGet(msg)],
    allH2,
  };
}

/** The fast side and the normal one over one cache, compared. */
export interface Pair {
  fast: Side;
  slow: Side;
  /** The fast side's calls that reached the normal handler, as counted by `send` and `same`. */
  readonly fastHandlerCalls: number;
  /** The normal handlers' reads of the cache, both sides. */
  readonly reads: { readonly count: number };
  /** Send `shape` to one side (one exchange at a time: the fast side's handler calls are counted). */
  send(s: Side, shape: Shape): Promise<Exchange>;
  /** Send `shape` to one side without counting (for exchanges made concurrently). */
  sendNow(s: Side, shape: Shape): Promise<Exchange>;
  /** Send `shape` to both sides, one after the other; their answers must be identical. Returns the fast side's. */
  same(shape: Shape): Promise<Exchange>;
  close(): Promise<void>;
}

export async function startPair(o: Omit<SideOptions, "fastPath">): Promise<Pair> {
  const fast = await startSide({ ...o, fastPath: true });
  const slow = await startSide({ ...o, fastPath: false });
  const reads = countHandlerReads(o.cache);
  let fastHandlerCalls = 0;
  const sendNow = (s: Side, shape: Shape) => (shape.h2 ? exchange2 : exchange)(s.port, shape.method, shape.path, shape.body, shape.headers);
  const send = async (s: Side, shape: Shape) => {
    const before = reads.count;
    const answer = await sendNow(s, shape);
    if (s === fast) fastHandlerCalls += reads.count - before;
    return answer;
  };
  return {
    fast,
    slow,
    reads,
    get fastHandlerCalls() {
      return fastHandlerCalls;
    },
    send,
    sendNow,
    async same(shape) {
      const a = await send(fast, shape);
      const b = await send(slow, shape);
      expectSame(a, b, `${shape.method} ${shape.path}${shape.h2 ? ` over h2 (${shape.headers?.["content-type"] ?? "GET"})` : ""}`);
      return a;
    },
    async close() {
      reads.restore();
      await closeSessions();
      await fast.server.close(500);
      await slow.server.close(500);
    },
  };
}

/** The lines of the trailer frame (flag 0x80) that ends a gRPC-web body, if any. */
export function grpcWebTrailerOf(a: Exchange): string | undefined {
  let at = 0;
  while (at + 5 <= a.body.length) {
    const length = a.body.readUInt32BE(at + 1);
    if (a.body[at] === 0x80) return a.body.subarray(at + 5, at + 5 + length).toString("latin1");
    at += 5 + length;
  }
  return undefined;
}

export function expectSame(a: Exchange, b: Exchange, what: string): void {
  expect(a.body.equals(b.body), `${what}\nfast: ${a.body.toString("latin1")}\nnormal: ${b.body.toString("latin1")}`).toBe(true);
  expect({ status: a.status, headers: a.headers, trailers: a.trailers }, what).toEqual({ status: b.status, headers: b.headers, trailers: b.trailers });
}

/** The value of metric `name` with exactly `labels` (`k="v",…`), 0 when absent. */
export async function metricValue(m: Metrics, name: string, labels: string): Promise<number> {
  const text = await m.registry.metrics();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(" ").pop());
}
