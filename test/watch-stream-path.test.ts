/**
 * The WatchChanges streaming path (src/server/watch-stream-path.ts) sends byte for byte what the
 * normal handler sends: two servers built as the service builds its server (createCacheServer),
 * one with the path and one without (`fastPath: false`), follow the same change bus. The same
 * streams are opened on both over raw HTTP/1.1 and HTTP/2 (gRPC, gRPC-web, Connect JSON and
 * binary, with and without response compression), the same batches are published, the servers
 * drain, and status, headers (all but Date), every frame (a heartbeat's time aside), trailers and
 * end-of-stream messages must be identical, and so must the RPC metrics. Real clients
 * (@grpc/grpc-js over h2c; connect-node's Connect transports over HTTP/1.1 and HTTP/2 and its
 * gRPC-web transport) read the same messages from both. Then scoped callers, resume, resync (a
 * feed reset, a subscriber too slow), heartbeats, client cancel, and what goes to the normal
 * handler (errors, deadlines).
 */
import http from "node:http";
import http2 from "node:http2";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { create, fromBinary, fromJsonString, toBinary, toJsonString, type MessageInitShape } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { pino } from "pino";
import { CacheService, WatchChangesRequestSchema, WatchChangesResponseSchema, type WatchChangesResponse } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { createCacheServer } from "../src/app/cache-server.ts";
import { AccessPolicy } from "../src/auth/access-policy.ts";
import { hashToken } from "../src/auth/token.ts";
import { ChangeBus, type Change } from "../src/events/index.ts";
import { Metrics, type Server } from "../src/server/index.ts";
import { CACHE_SERVICE_OPTIONS } from "../src/service/cache-service.ts";
import { SchemaRegistry } from "../src/service/schema-registry.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { testConfig } from "./e2e-helpers.ts";
import type { ReadThroughCache } from "../src/cache/index.ts";

const PATH = "/shotgrid.cache.v1.CacheService/WatchChanges";
const RPC = "shotgrid.cache.v1.CacheService/WatchChanges";
const PROTO = fileURLToPath(new URL("../proto/shotgrid/cache/v1/cache.proto", import.meta.url));

const TOKENS = {
  full: "sgc_full_token_for_tests_0000000000000000",
  project2: "sgc_project_two_token_0000000000000000000",
  assets: "sgc_assets_only_token_000000000000000000",
};
const policy = AccessPolicy.fromFile({
  clients: [
    { name: "full", tokenSha256: hashToken(TOKENS.full), scopes: ["read", "watch"], projects: null, entityTypes: null, sudoAsLogin: null },
    { name: "project2", tokenSha256: hashToken(TOKENS.project2), scopes: ["watch"], projects: [2], entityTypes: null, sudoAsLogin: null },
    // Limited to projects and listing Asset: Assets outside any project too, Shots only in project 1.
    { name: "assets", tokenSha256: hashToken(TOKENS.assets), scopes: ["watch"], projects: [1], entityTypes: ["Asset", "Shot"], sudoAsLogin: null },
  ],
});

interface Side {
  server: Server;
  port: number;
  metrics: Metrics;
}

let site: SimulatorHandle;
let backend: ShotGridClient;
let schema: SchemaRegistry;

beforeAll(async () => {
  site = await startSimulator({ shots: 4, assets: 2 });
  backend = new ShotGridClient({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY });
  schema = new SchemaRegistry(backend);
});
afterAll(async () => {
  await backend?.close();
  await site?.close();
});

const sides: Side[] = [];
afterEach(async () => {
  for (const s of sides.splice(0)) await s.server.close(500);
});

/** A side of the comparison: the streaming path on (`fastPath`) or off; `logged` gets its log lines (debug and up). */
async function startSide(bus: ChangeBus, fastPath: boolean, heartbeatS = 60, logged?: string[]): Promise<Side> {
  const metrics = new Metrics({ processMetrics: false });
  const server = createCacheServer({
    config: testConfig({ heartbeatS }),
    mode: "site",
    cache: {} as ReadThroughCache,
    schema,
    feed: bus,
    logger: logged ? pino({ level: "debug" }, { write: (line: string) => void logged.push(line) }) : pino({ level: "silent" }),
    metrics,
    readiness: () => ({ ready: true, reasons: [] }),
    siteUnreachable: () => undefined,
    fastPath,
    policy,
  });
  const port = (await server.listen(0, "127.0.0.1")).port;
  const side = { server, port, metrics };
  sides.push(side);
  return side;
}

let nextId = 1000;
function change(entityType: string, projectId: number, extra: Partial<Change> = {}): Change {
  const eventId = ++nextId;
  return {
    eventId,
    eventType: `Shotgun_${entityType}_Change`,
    kind: "change",
    entityType,
    entityId: eventId % 97,
    projectId,
    attributeName: "description",
    createdAt: "2026-03-04T05:06:07Z",
    user: { type: "HumanUser", id: 7, name: "Ann" },
    ...extra,
  };
}

/** A bus positioned at `nextId` with some history. */
function newBus(options: { replayEvents?: number; subscriberQueue?: number } = {}): ChangeBus {
  const bus = new ChangeBus({ replayEvents: options.replayEvents ?? 100, subscriberQueue: options.subscriberQueue });
  bus.advance(nextId);
  bus.publish([change("Shot", 1), change("Asset", 2), change("Shot", 2)]);
  return bus;
}

/** Batches that exercise filters, read limits and (one large message) response compression. */
function batches(): Change[][] {
  return [
    [change("Shot", 1), change("Shot", 2), change("Asset", 0), change("Project", 0, { entityId: 2, eventType: "Shotgun_Project_Change" })],
    [change("Asset", 1, { attributeName: null, user: null, kind: "new", eventType: "Shotgun_Asset_New" })],
    [change("Shot", 2, { user: { type: "HumanUser", id: 8, name: `Zoë ${"long name ".repeat(150)}` } }), change("Shot", 3), change("Shot", 1)],
  ];
}

// ---- raw exchanges -------------------------------------------------------------------------------

interface Raw {
  status: number;
  /** Response headers as sent, Date left out. */
  headers: string[];
  body: Buffer;
  trailers: string[];
  /** Resolves when the response has ended (or the stream was reset). */
  ended: Promise<void>;
  /** The first bytes have arrived. */
  started: Promise<void>;
  close(): void;
}

type Transport = "h1" | "h2";

function envelope(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + bytes.length);
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}

function requestBody(json: boolean, request: MessageInitShape<typeof WatchChangesRequestSchema>): Buffer {
  const message = create(WatchChangesRequestSchema, request);
  return envelope(json ? Buffer.from(toJsonString(WatchChangesRequestSchema, message)) : toBinary(WatchChangesRequestSchema, message));
}

function rawH1(port: number, headers: Record<string, string>, body: Buffer): Raw {
  let resolveStarted!: () => void;
  const started = new Promise<void>((r) => (resolveStarted = r));
  const raw: Raw = { status: 0, headers: [], body: Buffer.alloc(0), trailers: [], ended: Promise.resolve(), started, close: () => req.destroy() };
  const req = http.request({ host: "127.0.0.1", port, method: "POST", path: PATH, headers, agent: false });
  raw.ended = new Promise<void>((resolve) => {
    req.on("response", (res) => {
      raw.status = res.statusCode ?? 0;
      for (let i = 0; i < res.rawHeaders.length; i += 2)
        if (res.rawHeaders[i]!.toLowerCase() !== "date") raw.headers.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
      res.on("data", (c: Buffer) => {
        raw.body = Buffer.concat([raw.body, c]);
        resolveStarted();
      });
      res.on("end", () => {
        for (let i = 0; i < res.rawTrailers.length; i += 2) raw.trailers.push(`${res.rawTrailers[i]}: ${res.rawTrailers[i + 1]}`);
        resolve();
      });
      res.on("error", () => resolve());
      res.on("close", () => resolve());
    });
    req.on("error", () => resolve());
  });
  req.end(body);
  return raw;
}

function rawH2(
  port: number,
  headers: Record<string, string>,
  body: Buffer,
  settings: http2.Settings = {},
): Raw & { session: http2.ClientHttp2Session; stream: http2.ClientHttp2Stream } {
  const session = http2.connect(`http://127.0.0.1:${port}`, { settings });
  session.on("error", () => undefined);
  const stream = session.request({ ":method": "POST", ":path": PATH, ...headers });
  let resolveStarted!: () => void;
  const started = new Promise<void>((r) => (resolveStarted = r));
  const raw = {
    status: 0,
    headers: [] as string[],
    body: Buffer.alloc(0),
    trailers: [] as string[],
    started,
    session,
    stream,
    ended: Promise.resolve(),
    close: () => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      session.close();
    },
  };
  raw.ended = new Promise<void>((resolve) => {
    stream.on("response", (h) => {
      raw.status = Number(h[":status"]);
      for (const [k, v] of Object.entries(h)) if (k !== "date" && k !== ":status") raw.headers.push(`${k}: ${String(v)}`);
    });
    stream.on("data", (c: Buffer) => {
      raw.body = Buffer.concat([raw.body, c]);
      resolveStarted();
    });
    stream.on("trailers", (t) => {
      for (const [k, v] of Object.entries(t)) raw.trailers.push(`${k}: ${String(v)}`);
    });
    stream.on("close", () => {
      session.close();
      resolve();
    });
    stream.on("error", () => undefined);
  });
  stream.end(body);
  return raw;
}

/** One stream shape: protocol, format and transport, with the headers a real client of it sends. */
interface Shape {
  name: string;
  transport: Transport;
  json: boolean;
  headers: Record<string, string>;
}

const SHAPES: Shape[] = [
  {
    name: "gRPC over h2 (grpc-js's headers)",
    transport: "h2",
    json: false,
    headers: { "content-type": "application/grpc", te: "trailers", "grpc-accept-encoding": "identity,deflate,gzip" },
  },
  { name: "gRPC over h2, plain", transport: "h2", json: false, headers: { "content-type": "application/grpc+proto", te: "trailers" } },
  {
    name: "Connect binary over HTTP/1.1",
    transport: "h1",
    json: false,
    headers: { "content-type": "application/connect+proto", "connect-protocol-version": "1" },
  },
  { name: "Connect JSON over HTTP/1.1", transport: "h1", json: true, headers: { "content-type": "application/connect+json", "connect-protocol-version": "1" } },
  {
    name: "Connect binary over h2, gzip or br accepted",
    transport: "h2",
    json: false,
    headers: { "content-type": "application/connect+proto", "connect-accept-encoding": "gzip,br" },
  },
  {
    name: "Connect JSON over h2, br accepted",
    transport: "h2",
    json: true,
    headers: { "content-type": "application/connect+json", "connect-accept-encoding": "br" },
  },
  { name: "gRPC-web over HTTP/1.1", transport: "h1", json: false, headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" } },
  {
    name: "gRPC-web over h2, gzip accepted",
    transport: "h2",
    json: false,
    headers: { "content-type": "application/grpc-web", "grpc-accept-encoding": "gzip" },
  },
];

function open(side: Side, shape: Shape, request: MessageInitShape<typeof WatchChangesRequestSchema>, token: string = TOKENS.full): Raw {
  const headers = { ...shape.headers, authorization: `Bearer ${token}` };
  const body = requestBody(shape.json, request);
  return shape.transport === "h1" ? rawH1(side.port, headers, body) : rawH2(side.port, headers, body);
}

function frameCount(body: Buffer): number {
  let n = 0;
  for (let i = 0; i + 5 <= body.length; i += 5 + body.readUInt32BE(i + 1)) n++;
  return n;
}

/** The frames of a body; a heartbeat's time replaced by 0, so two streams' frames compare. */
function frames(body: Buffer, json: boolean): string[] {
  const out: string[] = [];
  let i = 0;
  while (i + 5 <= body.length) {
    const flags = body[i]!;
    const len = body.readUInt32BE(i + 1);
    const data = body.subarray(i + 5, i + 5 + len);
    i += 5 + len;
    out.push(`${flags}:${normalized(flags, data, json)}`);
  }
  if (i !== body.length) out.push(`trailing bytes: ${body.subarray(i).toString("hex")}`);
  return out;
}

function normalized(flags: number, data: Buffer, json: boolean): string {
  if (flags !== 0) return data.toString("latin1");
  const message = json ? fromJsonString(WatchChangesResponseSchema, data.toString("utf8")) : fromBinary(WatchChangesResponseSchema, data);
  if (message.message.case !== "heartbeat") return data.toString("latin1");
  message.message.value.time = undefined;
  return `heartbeat ${json ? toJsonString(WatchChangesResponseSchema, message, CACHE_SERVICE_OPTIONS.jsonOptions) : Buffer.from(toBinary(WatchChangesResponseSchema, message)).toString("hex")}`;
}

/** The messages of a body (compressed frames inflated), for reading what a stream said. */
function messagesOf(body: Buffer, json: boolean): WatchChangesResponse[] {
  const out: WatchChangesResponse[] = [];
  let i = 0;
  while (i + 5 <= body.length) {
    const flags = body[i]!;
    const len = body.readUInt32BE(i + 1);
    let data = body.subarray(i + 5, i + 5 + len);
    i += 5 + len;
    if (flags & 0x82) continue; // Connect's end of stream, gRPC-web's trailers
    if (flags & 1) data = gunzipSync(data);
    out.push(json ? fromJsonString(WatchChangesResponseSchema, data.toString("utf8")) : fromBinary(WatchChangesResponseSchema, data));
  }
  return out;
}

async function metricLines(m: Metrics): Promise<string[]> {
  const text = await m.registry.metrics();
  return text
    .split("\n")
    .filter((l) => l.includes(RPC) || l.startsWith("shotgrid_cache_open_streams"))
    .filter((l) => !l.includes("_duration_seconds_sum"))
    .filter((l) => !l.includes("_duration_seconds_bucket"));
}

async function until(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Open `request` on both sides in every shape, publish `batches`, drain both servers: every answer must be the same. */
async function compareAll(
  bus: ChangeBus,
  fast: Side,
  slow: Side,
  requests: Array<{ request: MessageInitShape<typeof WatchChangesRequestSchema>; token?: string }>,
  publish: Change[][],
  shapes: Shape[] = SHAPES,
  sameMetrics = true,
): Promise<Array<{ shape: Shape; fast: Raw; slow: Raw }>> {
  const pairs: Array<{ shape: Shape; fast: Raw; slow: Raw }> = [];
  for (const { request, token } of requests) {
    for (const shape of shapes) pairs.push({ shape, fast: open(fast, shape, request, token), slow: open(slow, shape, request, token) });
  }
  await Promise.all(pairs.flatMap((p) => [p.fast.started, p.slow.started]));
  // The fast side's streams are not bus subscribers: they are served by the streaming path.
  expect(bus.subscriberCount).toBe(pairs.length);
  for (const batch of publish) {
    bus.publish(batch, batch.at(-1)!.eventId);
    await new Promise((r) => setTimeout(r, 20));
  }
  // A drain ends a handler's stream without what its queue still holds: on a busy machine, wait
  // until both sides have sent as many frames (the comparison below says if they differ).
  const count = (r: Raw) => frameCount(r.body);
  await until("both sides' frames", () => pairs.every((p) => count(p.fast) === count(p.slow))).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 50));
  await Promise.all([fast.server.close(2000), slow.server.close(2000)]);
  await Promise.all(pairs.flatMap((p) => [p.fast.ended, p.slow.ended]));
  for (const { shape, fast: a, slow: b } of pairs) {
    expect(a.status, shape.name).toBe(200);
    expect({ status: a.status, headers: a.headers, trailers: a.trailers }, shape.name).toEqual({ status: b.status, headers: b.headers, trailers: b.trailers });
    expect(frames(a.body, shape.json), shape.name).toEqual(frames(b.body, shape.json));
  }
  if (sameMetrics) expect(await metricLines(fast.metrics)).toEqual(await metricLines(slow.metrics));
  return pairs;
}

describe("WatchChanges streaming path: the same bytes as the handler", () => {
  it("in every protocol, format, transport and compression, for live batches, then a drain (status OK)", async () => {
    const bus = newBus();
    const fast = await startSide(bus, true);
    const slow = await startSide(bus, false);
    const pairs = await compareAll(
      bus,
      fast,
      slow,
      [{ request: { entityTypes: ["Shot"] } }, { request: {} }, { request: { projectIds: [2], entityTypes: ["Shot", "Asset"] } }],
      batches(),
    );
    // The sample means something: the changes arrived, one large message compressed where accepted.
    // pairs: requests x shapes; the second request asks for everything.
    const all = pairs[SHAPES.length + 2]!;
    expect(all.shape.name).toBe("Connect binary over HTTP/1.1");
    expect(messagesOf(all.fast.body, false).filter((m) => m.message.case === "change")).toHaveLength(8);
    const gz = pairs.find((p) => p.shape.name.includes("gzip or br"))!;
    expect(gz.fast.headers).toContain("connect-content-encoding: gzip");
    expect([...frames(gz.fast.body, false)].some((f) => f.startsWith("1:"))).toBe(true);
    for (const p of pairs) {
      const ends = frames(p.fast.body, p.shape.json).at(-1)!;
      if (p.shape.name.startsWith("Connect")) expect(ends).toBe("2:{}");
      if (p.shape.name.startsWith("gRPC-web")) expect(ends).toBe("128:grpc-status: 0\r\n");
      if (p.shape.name.startsWith("gRPC over")) expect(p.fast.trailers).toEqual(["grpc-status: 0"]);
    }
  });

  it("scoped callers get only what their read limits allow, as on the handler", async () => {
    const bus = newBus();
    const fast = await startSide(bus, true);
    const slow = await startSide(bus, false);
    const shapes = [SHAPES[0]!, SHAPES[3]!];
    const published = batches();
    const pairs = await compareAll(
      bus,
      fast,
      slow,
      [
        { request: {}, token: TOKENS.project2 },
        { request: { entityTypes: ["Shot"] }, token: TOKENS.project2 },
        { request: {}, token: TOKENS.assets },
      ],
      published,
      shapes,
    );
    const show = (c: { entityType: string; projectId: number; entityId: number }) => `${c.entityType}:${c.projectId}:${c.entityId}`;
    const got = (i: number) =>
      messagesOf(pairs[i]!.fast.body, pairs[i]!.shape.json).flatMap((m) => (m.message.case === "change" ? [show(m.message.value)] : []));
    const all = published.flat();
    // project2: project 2's records, and Project 2 itself; nothing outside any project.
    const project2 = all.filter((c) => (c.entityType === "Project" ? c.entityId === 2 : c.projectId === 2)).map(show);
    expect(project2.length).toBeGreaterThan(2);
    expect(got(0)).toEqual(project2);
    expect(got(1)).toEqual(project2);
    expect(got(2)).toEqual(all.filter((c) => c.entityType === "Shot" && c.projectId === 2).map(show));
    // assets: Shots and Assets of project 1, and (the type being listed) Assets outside any project.
    const assets = all
      .filter((c) => (c.entityType === "Asset" || c.entityType === "Shot") && (c.projectId === 1 || (c.projectId === 0 && c.entityType === "Asset")))
      .map(show);
    expect(assets.length).toBeGreaterThan(2);
    expect(got(4)).toEqual(assets);
  });

  it("resumes: replays the history after the id, or says resync when it cannot", async () => {
    const bus = newBus({ replayEvents: 5 });
    const first = nextId - 2;
    const fast = await startSide(bus, true);
    const slow = await startSide(bus, false);
    const shapes = [SHAPES[0]!, SHAPES[3]!, SHAPES[6]!];
    const pairs = await compareAll(
      bus,
      fast,
      slow,
      [
        { request: { sinceEventId: BigInt(first) } },
        { request: { sinceEventId: BigInt(first - 50) } },
        { request: { sinceEventId: BigInt(first), entityTypes: ["Asset"] } },
      ],
      batches(),
      shapes,
    );
    const cases = (i: number) => messagesOf(pairs[i]!.fast.body, pairs[i]!.shape.json).map((m) => m.message.case);
    expect(cases(0).slice(0, 3)).toEqual(["heartbeat", "change", "change"]);
    expect(cases(3).slice(0, 2)).toEqual(["heartbeat", "resync"]);
    expect(cases(6).slice(0, 2)).toEqual(["heartbeat", "change"]);
  });

  it("a feed reset tells every stream to resync, which stays open", async () => {
    const bus = newBus();
    const fast = await startSide(bus, true);
    const slow = await startSide(bus, false);
    const shapes = [SHAPES[0]!, SHAPES[4]!];
    const pairs: Array<{ shape: Shape; fast: Raw; slow: Raw }> = [];
    for (const shape of shapes) pairs.push({ shape, fast: open(fast, shape, {}), slow: open(slow, shape, {}) });
    await Promise.all(pairs.flatMap((p) => [p.fast.started, p.slow.started]));
    bus.reset("the cache was flushed");
    bus.publish([change("Shot", 1)]);
    await new Promise((r) => setTimeout(r, 100));
    await Promise.all([fast.server.close(2000), slow.server.close(2000)]);
    await Promise.all(pairs.flatMap((p) => [p.fast.ended, p.slow.ended]));
    for (const p of pairs) {
      expect(frames(p.fast.body, p.shape.json), p.shape.name).toEqual(frames(p.slow.body, p.shape.json));
      expect(messagesOf(p.fast.body, false).map((m) => m.message.case)).toEqual(["heartbeat", "resync", "change"]);
    }
  });

  it("a stream still waiting for the feed's position ends on drain as on the handler: status OK, no message", async () => {
    const bus = new ChangeBus({ replayEvents: 10 });
    const fast = await startSide(bus, true);
    const slow = await startSide(bus, false);
    const pairs = [SHAPES[0]!, SHAPES[3]!, SHAPES[6]!].map((shape) => ({ shape, fast: open(fast, shape, {}), slow: open(slow, shape, {}) }));
    await until("the slow side's streams waiting", () => slow.metrics.totals().openStreams === pairs.length);
    await until("the fast side's streams waiting", () => fast.metrics.totals().openStreams === pairs.length);
    await Promise.all([fast.server.close(2000), slow.server.close(2000)]);
    await Promise.all(pairs.flatMap((p) => [p.fast.ended, p.slow.ended]));
    for (const p of pairs) {
      expect({ status: p.fast.status, headers: p.fast.headers, trailers: p.fast.trailers }, p.shape.name).toEqual({
        status: p.slow.status,
        headers: p.slow.headers,
        trailers: p.slow.trailers,
      });
      expect(p.fast.body.equals(p.slow.body), p.shape.name).toBe(true);
      expect(messagesOf(p.fast.body, p.shape.json)).toEqual([]);
    }
    expect(await metricLines(fast.metrics)).toEqual(await metricLines(slow.metrics));
  });

  it("a change over the message size limit ends the stream with the handler's error", async () => {
    const bus = newBus();
    const fast = await startSide(bus, true);
    const slow = await startSide(bus, false);
    const huge = change("Shot", 1, { attributeName: "x".repeat(16 * 1024 * 1024 + 1) });
    const shapes = [SHAPES[0]!, SHAPES[3]!, SHAPES[7]!];
    // Not first in its batch: the changes before it are sent, then the error (as the handler does).
    const before = change("Shot", 2);
    const pairs = await compareAll(
      bus,
      fast,
      slow,
      [{ request: {} }],
      [[change("Shot", 1)], [before, huge, change("Shot", 2)], [change("Shot", 3)]],
      shapes,
      false,
    );
    expect(pairs[0]!.fast.trailers).toContain("grpc-status: 8");
    expect(frames(pairs[1]!.fast.body, true).at(-1)).toMatch(/^2:\{"error":\{"code":"resource_exhausted"/);
    const ids = (body: Buffer, json: boolean) => messagesOf(body, json).flatMap((m) => (m.message.case === "change" ? [m.message.value.eventId] : []));
    expect(ids(pairs[1]!.fast.body, true).at(-1)).toBe(BigInt(before.eventId));
    // The handler's interceptor sees only its stream being stopped (the message fails to encode
    // after it), so it counts canceled; this path counts what the client was told.
    const counted = (lines: string[]) => lines.filter((l) => l.startsWith("shotgrid_cache_rpc_total"));
    expect(counted(await metricLines(fast.metrics))).toEqual([`shotgrid_cache_rpc_total{method="${RPC}",code="resource_exhausted"} 3`]);
    expect(counted(await metricLines(slow.metrics))).toEqual([`shotgrid_cache_rpc_total{method="${RPC}",code="canceled"} 3`]);
  });

  it("a replay holding a change over the size limit: the first heartbeat and the changes before it, then the error", async () => {
    const bus = newBus({ replayEvents: 10 });
    const since = nextId;
    const kept = change("Shot", 1);
    bus.publish([kept, change("Shot", 1, { attributeName: "x".repeat(16 * 1024 * 1024 + 1) }), change("Shot", 2)]);
    const fast = await startSide(bus, true);
    const slow = await startSide(bus, false);
    const shapes = [SHAPES[0]!, SHAPES[3]!];
    const pairs = shapes.map((shape) => ({
      shape,
      fast: open(fast, shape, { sinceEventId: BigInt(since) }),
      slow: open(slow, shape, { sinceEventId: BigInt(since) }),
    }));
    await Promise.all(pairs.flatMap((p) => [p.fast.ended, p.slow.ended]));
    for (const p of pairs) {
      expect({ status: p.fast.status, headers: p.fast.headers, trailers: p.fast.trailers }, p.shape.name).toEqual({
        status: p.slow.status,
        headers: p.slow.headers,
        trailers: p.slow.trailers,
      });
      expect(frames(p.fast.body, p.shape.json), p.shape.name).toEqual(frames(p.slow.body, p.shape.json));
      const said = messagesOf(p.fast.body, p.shape.json);
      expect(said.map((m) => m.message.case)).toEqual(["heartbeat", "change"]);
      expect(said[1]!.message.case === "change" && said[1]!.message.value.eventId).toBe(BigInt(kept.eventId));
    }
    expect(pairs[0]!.fast.trailers).toContain("grpc-status: 8");
    expect(frames(pairs[1]!.fast.body, true).at(-1)).toMatch(/^2:\{"error":\{"code":"resource_exhausted"/);
  });

  it("real clients read the same messages from both: grpc-js, Connect over HTTP/1.1 and HTTP/2, gRPC-web", async () => {
    const bus = newBus();
    const fast = await startSide(bus, true);
    const slow = await startSide(bus, false);
    const definition = protoLoader.loadSync(PROTO, {
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
      includeDirs: [fileURLToPath(new URL("../node_modules/protobufjs", import.meta.url))],
    });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as { shotgrid: { cache: { v1: { CacheService: grpc.ServiceClientConstructor } } } };
    const auth = { authorization: `Bearer ${TOKENS.full}` };
    const read = (side: Side) => {
      const received: Record<string, unknown[]> = { grpcjs: [], connect11: [], connect2: [], grpcweb: [] };
      const grpcClient = new pkg.shotgrid.cache.v1.CacheService(`127.0.0.1:${side.port}`, grpc.credentials.createInsecure());
      const meta = new grpc.Metadata();
      meta.set("authorization", auth.authorization);
      const call = (
        grpcClient as unknown as Record<
          string,
          (req: object, meta: grpc.Metadata) => grpc.ClientReadableStream<{ message: string; change?: object; heartbeat?: { lastEventId: string } }>
        >
      )["WatchChanges"]!.call(grpcClient, { entityTypes: ["Shot"] }, meta);
      const grpcDone = new Promise<void>((resolve) => {
        call.on("data", (m) =>
          received.grpcjs!.push(m.message === "heartbeat" ? `heartbeat ${m.heartbeat!.lastEventId}` : m.message === "change" ? m.change : m.message),
        );
        call.on("error", () => resolve());
        call.on("end", () => resolve());
      });
      const connectRead = async (key: string, transport: Parameters<typeof createClient>[1]) => {
        const client = createClient(CacheService, transport);
        for await (const m of client.watchChanges({ entityTypes: ["Shot"] }, { headers: auth })) {
          received[key]!.push(
            m.message.case === "heartbeat" ? `heartbeat ${m.message.value.lastEventId}` : m.message.case === "change" ? toPlain(m) : m.message.case,
          );
        }
      };
      const base = `http://127.0.0.1:${side.port}`;
      const done = Promise.all([
        grpcDone,
        connectRead("connect11", createConnectTransport({ baseUrl: base, httpVersion: "1.1" })),
        connectRead("connect2", createConnectTransport({ baseUrl: base, httpVersion: "2" })),
        connectRead("grpcweb", createGrpcWebTransport({ baseUrl: base, httpVersion: "1.1" })),
      ]).finally(() => grpcClient.close());
      return { received, done };
    };
    const a = read(fast);
    const b = read(slow);
    await until("every stream open", () => Object.values(a.received).every((l) => l.length > 0) && Object.values(b.received).every((l) => l.length > 0));
    expect(bus.subscriberCount).toBe(4);
    for (const batch of batches()) bus.publish(batch, batch.at(-1)!.eventId);
    await until("every change delivered", () => [...Object.values(a.received), ...Object.values(b.received)].every((l) => l.length === 6));
    await Promise.all([fast.server.close(2000), slow.server.close(2000)]);
    await Promise.all([a.done, b.done]);
    expect(a.received).toEqual(b.received);
    expect(a.received.connect2).toEqual(a.received.grpcweb);
  });
});

function toPlain(m: WatchChangesResponse): unknown {
  return JSON.parse(toJsonString(WatchChangesResponseSchema, m, CACHE_SERVICE_OPTIONS.jsonOptions)) as unknown;
}

describe("WatchChanges streaming path: its own rules", () => {
  it("a subscriber that does not read is told to resync (too slow) and its stream ends OK; others carry on", async () => {
    const bus = newBus({ subscriberQueue: 3 });
    const fast = await startSide(bus, true);
    // A client whose receive window stays closed: nothing written to it is flushed.
    const stuck = rawH2(fast.port, { ...SHAPES[1]!.headers, authorization: `Bearer ${TOKENS.full}` }, requestBody(false, {}), { initialWindowSize: 0 });
    const reader = open(fast, SHAPES[1]!, {});
    await reader.started;
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 6; i++) {
      bus.publish([change("Shot", 1)]);
      await new Promise((r) => setTimeout(r, 20));
    }
    // Now let the stuck client read what it was sent.
    stuck.session.settings({ initialWindowSize: 1 << 20 });
    await stuck.ended;
    const cases = messagesOf(stuck.body, false).map((m) => m.message.case);
    expect(cases.at(-1)).toBe("resync");
    expect(cases.filter((c) => c === "change").length).toBeLessThanOrEqual(3);
    const resync = messagesOf(stuck.body, false).at(-1)!;
    expect(resync.message.case === "resync" && resync.message.value.reason).toBe("subscriber too slow");
    expect(stuck.trailers).toEqual(["grpc-status: 0"]);
    // The reading stream got all six.
    await until("six changes", () => messagesOf(reader.body, false).filter((m) => m.message.case === "change").length === 6);
    reader.close();
    await reader.ended;
  });

  it("a resume from far back is written in slices: live changes meanwhile follow it, each once, in order; the event loop keeps turning", async () => {
    const REPLAYED = 60_000;
    const bus = new ChangeBus({ replayEvents: REPLAYED });
    const since = nextId;
    bus.advance(since);
    for (let i = 0; i < REPLAYED; i += 1000) bus.publish(Array.from({ length: 1000 }, () => change("Shot", 1 + (i % 3))));
    const fast = await startSide(bus, true);
    // A first, short resume warms the path up (the first encodes compile code: tens of ms, once).
    const warm = open(fast, SHAPES[2]!, { sinceEventId: BigInt(since + REPLAYED - 2000) });
    await until("the warm-up replay", () => frameCount(warm.body) >= 2001, 10_000);
    warm.close();
    await warm.ended;
    // The longest the event loop went without running a timer, while the replay is written.
    let last = performance.now();
    let longest = 0;
    const beat = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 2);
    // Chunks are kept as they come (one concat at the end: the body is megabytes), frames counted
    // as they complete: reading the client's side must not be what holds the loop.
    const chunks: Buffer[] = [];
    let rest: Buffer = Buffer.alloc(0);
    let framesSeen = 0;
    let ended!: () => void;
    const done = new Promise<void>((r) => (ended = r));
    const req = http.request({
      host: "127.0.0.1",
      port: fast.port,
      method: "POST",
      path: PATH,
      agent: false,
      headers: { ...SHAPES[2]!.headers, authorization: `Bearer ${TOKENS.full}` },
    });
    req.on("response", (res) => {
      res.on("data", (c: Buffer) => {
        chunks.push(c);
        rest = rest.length > 0 ? Buffer.concat([rest, c]) : c;
        let i = 0;
        while (i + 5 <= rest.length && i + 5 + rest.readUInt32BE(i + 1) <= rest.length) {
          i += 5 + rest.readUInt32BE(i + 1);
          framesSeen++;
        }
        rest = rest.subarray(i);
      });
      res.on("close", () => ended());
    });
    req.end(requestBody(false, { sinceEventId: BigInt(since) }));
    // Live batches while the replay is being written.
    const live: number[] = [];
    await until("the replay started", () => chunks.length > 0);
    for (let i = 0; i < 20; i++) {
      const batch = [change("Shot", 1), change("Asset", 2)];
      live.push(...batch.map((c) => c.eventId));
      bus.publish(batch, batch.at(-1)!.eventId);
      await new Promise((r) => setImmediate(r));
    }
    const expected = REPLAYED + live.length;
    // The first heartbeat, then every change.
    await until("every change", () => framesSeen >= 1 + expected, 30_000);
    clearInterval(beat);
    req.destroy();
    await done;
    const ids = messagesOf(Buffer.concat(chunks), false).flatMap((m) => (m.message.case === "change" ? [Number(m.message.value.eventId)] : []));
    // Every change once, in order: the replay (since+1 ...), then the live ones with no gap or duplicate.
    expect(ids).toHaveLength(expected);
    expect(ids).toEqual(Array.from({ length: expected }, (_, i) => since + 1 + i));
    expect(ids.slice(REPLAYED)).toEqual(live);
    // Encoded at once, 60,000 changes held the loop for half a second; a slice takes milliseconds.
    expect(longest).toBeLessThan(150);
  }, 60_000);

  it("live changes held behind a replay count against the queue limit: a client that does not read is told it is too slow", async () => {
    const bus = new ChangeBus({ replayEvents: 5000, subscriberQueue: 3 });
    const since = nextId;
    bus.advance(since);
    bus.publish(Array.from({ length: 3000 }, () => change("Shot", 1)));
    const fast = await startSide(bus, true);
    const stuck = rawH2(fast.port, { ...SHAPES[1]!.headers, authorization: `Bearer ${TOKENS.full}` }, requestBody(false, { sinceEventId: BigInt(since) }), {
      initialWindowSize: 0,
    });
    await until("the stream open", () => fast.metrics.totals().openStreams === 1);
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 4; i++) {
      bus.publish([change("Shot", 1)]);
      await new Promise((r) => setTimeout(r, 10));
    }
    stuck.session.settings({ initialWindowSize: 1 << 20 });
    await stuck.ended;
    const said = messagesOf(stuck.body, false);
    const last = said.at(-1)!;
    expect(last.message.case === "resync" && last.message.value.reason).toBe("subscriber too slow");
    // The replay was cut short by the resync (as on the bus): fewer than the 3,000 replayed, no live one.
    const changes = said.filter((m) => m.message.case === "change").length;
    expect(changes).toBeGreaterThan(0);
    expect(changes).toBeLessThan(3000);
    expect(stuck.trailers).toEqual(["grpc-status: 0"]);
  });

  it("an idle stream gets a heartbeat with the feed's position", async () => {
    const bus = newBus();
    const fast = await startSide(bus, true, 1);
    const raw = open(fast, SHAPES[3]!, {});
    await raw.started;
    bus.advance(nextId + 10);
    await until("a second heartbeat", () => messagesOf(raw.body, true).length >= 2, 3000);
    const [firstBeat, second] = messagesOf(raw.body, true);
    expect(firstBeat!.message.case === "heartbeat" && firstBeat!.message.value.lastEventId).toBe(BigInt(nextId));
    expect(second!.message.case === "heartbeat" && second!.message.value.lastEventId).toBe(BigInt(nextId + 10));
    raw.close();
  });

  it("a client that cancels is counted as canceled, as on the handler, and leaves nothing open", async () => {
    const bus = newBus();
    const fast = await startSide(bus, true);
    const slow = await startSide(bus, false);
    for (const shape of [SHAPES[0]!, SHAPES[2]!]) {
      const a = open(fast, shape, {});
      const b = open(slow, shape, {});
      await Promise.all([a.started, b.started]);
      a.close();
      b.close();
      await Promise.all([a.ended, b.ended]);
    }
    await until("streams closed", () => bus.subscriberCount === 0);
    await new Promise((r) => setTimeout(r, 50));
    const lines = await metricLines(fast.metrics);
    expect(lines).toEqual(await metricLines(slow.metrics));
    expect(lines.find((l) => l.startsWith("shotgrid_cache_rpc_total") && l.includes('code="canceled"'))).toMatch(/ 2$/);
    expect(lines.find((l) => l.startsWith("shotgrid_cache_open_streams"))).toMatch(/ 0$/);
  });

  it("a client gone mid-body is counted and logged as the handler counts it", async () => {
    const bus = newBus();
    const fastLog: string[] = [];
    const slowLog: string[] = [];
    const fast = await startSide(bus, true, 60, fastLog);
    const slow = await startSide(bus, false, 60, slowLog);
    const body = requestBody(true, { entityTypes: ["Shot"] });
    for (const side of [fast, slow]) {
      // HTTP/1.1 and HTTP/2: the body's first half, then the connection goes.
      const auth = { authorization: `Bearer ${TOKENS.full}`, "content-length": String(body.length) };
      const h1 = http.request({ host: "127.0.0.1", port: side.port, method: "POST", path: PATH, agent: false, headers: { ...SHAPES[3]!.headers, ...auth } });
      h1.on("error", () => undefined);
      h1.write(body.subarray(0, 4));
      const session = http2.connect(`http://127.0.0.1:${side.port}`);
      session.on("error", () => undefined);
      const h2 = session.request({ ":method": "POST", ":path": PATH, ...SHAPES[5]!.headers, ...auth });
      h2.on("error", () => undefined);
      h2.write(body.subarray(0, 4));
      await new Promise((r) => setTimeout(r, 150));
      h1.destroy();
      session.destroy();
    }
    const finished = async (m: Metrics) => (await metricLines(m)).filter((l) => l.startsWith("shotgrid_cache_rpc_total"));
    await until("the handler's calls finished", () => slowLog.some((l) => l.includes("rpc failed")), 3000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    expect(await finished(fast.metrics)).toEqual(await finished(slow.metrics));
    expect(await metricLines(fast.metrics)).toEqual(await metricLines(slow.metrics));
    // The handler's read of the body fails (code unknown, a warning): the same here, once per call.
    const logged = (lines: string[]) =>
      lines
        .map((l) => JSON.parse(l) as { level: number; msg: string; code?: string; rpc?: string })
        .filter((l) => l.msg === "rpc failed")
        .map((l) => `${l.level} ${l.rpc} ${l.code}`);
    expect(logged(fastLog)).toEqual(logged(slowLog));
    expect(logged(fastLog)).toEqual([`40 ${RPC} unknown`, `40 ${RPC} unknown`]);
  });

  it("errors, deadlines and unusual requests are answered by the normal handler, identically", async () => {
    const bus = newBus();
    const fastLog: string[] = [];
    const fast = await startSide(bus, true, 60, fastLog);
    const slow = await startSide(bus, false);
    const cases: Array<{ shape: Shape; request: MessageInitShape<typeof WatchChangesRequestSchema>; token?: string; headers?: Record<string, string> }> = [
      { shape: SHAPES[0]!, request: { entityTypes: ["Shott"] } },
      { shape: SHAPES[3]!, request: { projectIds: [0] } },
      { shape: SHAPES[6]!, request: {}, token: "sgc_unknown_token_00000000000000000000000" },
      { shape: SHAPES[0]!, request: {}, token: TOKENS.project2, headers: { "grpc-timeout": "200m" } },
      { shape: SHAPES[2]!, request: {}, headers: { "connect-timeout-ms": "200" } },
    ];
    for (const c of cases) {
      const shape = { ...c.shape, headers: { ...c.shape.headers, ...c.headers } };
      const a = open(fast, shape, c.request, c.token);
      const b = open(slow, shape, c.request, c.token);
      await Promise.all([a.ended, b.ended]);
      expect({ status: a.status, headers: a.headers, trailers: a.trailers }, JSON.stringify(c)).toEqual({
        status: b.status,
        headers: b.headers,
        trailers: b.trailers,
      });
      expect(frames(a.body, shape.json), JSON.stringify(c)).toEqual(frames(b.body, shape.json));
    }
    // A body over one message's limit, sent chunked: read here up to the limit, then handed on
    // with the rest still unread (the replayed body continues from the request itself).
    const big = Buffer.concat([requestBody(true, {}), Buffer.alloc(1024 * 1024 + 64, 0x20)]);
    const chunked = { ...SHAPES[3]!.headers, authorization: `Bearer ${TOKENS.full}`, "transfer-encoding": "chunked" };
    const [a, b] = [rawH1(fast.port, chunked, big), rawH1(slow.port, chunked, big)];
    await Promise.all([a.ended, b.ended]);
    expect({ status: a.status, headers: a.headers, trailers: a.trailers }).toEqual({ status: b.status, headers: b.headers, trailers: b.trailers });
    expect(frames(a.body, true)).toEqual(frames(b.body, true));
    expect(frames(a.body, true).at(-1)).toMatch(/"code":"resource_exhausted"/);
    expect(await metricLines(fast.metrics)).toEqual(await metricLines(slow.metrics));
    // The streaming path read these bodies and handed them on (the others it declined at once).
    const handedOn = fastLog.filter((l) => l.includes("handed the request to the normal handler")).length;
    expect(handedOn).toBe(3); // "Shott", project 0 and the oversized body
    expect(fast.metrics.totals().openStreams).toBe(0);
  });
});
