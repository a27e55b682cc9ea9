/**
 * The GetEntity fast path answers byte for byte what the normal Connect handler answers: two
 * servers over the same cache, both built as the service builds its server, one with the fast
 * path and one without, get the same requests; status, headers (all but Date) and body bytes
 * must be identical, and so must the RPC metrics and log lines. Requests the fast path must not
 * answer (misses, errors, timeouts, compression) reach the normal handler with their body. Over
 * HTTP/1.1 (Connect) and HTTP/2 (gRPC and Connect, h2c; trailers compared too), and with an auth
 * file (refusals and read limits answered by the normal path).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { fromJson, toBinary, toJson, type JsonObject } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpcJs from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { CacheService, GetEntityRequestSchema, GetEntityResponseSchema } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { ReadThroughCache } from "../src/cache/index.ts";
import { AccessPolicy } from "../src/auth/index.ts";
import { hashToken } from "../src/auth/token.ts";
import { Metrics } from "../src/server/index.ts";
import { SchemaRegistry } from "../src/service/schema-registry.ts";
import {
  envelope,
  exchangeWire,
  metricValue,
  shapesOf,
  startPair,
  type Exchange,
  type Pair,
  type Shape,
  type Side,
  grpcWebTrailerOf,
} from "./fast-path-sides.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";

const PATH = "/shotgrid.cache.v1.CacheService/GetEntity";
const SHOT_FIELDS = ["code", "description", "sg_status_list", "sg_sequence", "project", "sg_cut_in", "sg_cut_out"];
const { jsonPost, jsonGet, protoPost, protoGet, grpc, grpcJson, grpcWeb, grpcWebJson, allGrpcWeb, h2, allH2 } = shapesOf(GetEntityRequestSchema, PATH);
const binaryOf = (msg: JsonObject) => toBinary(GetEntityRequestSchema, fromJson(GetEntityRequestSchema, msg));

let site: SimulatorHandle;
let backend: ShotGridClient;
let clock = 1_700_000_000_000;
let unreachable: string | undefined;
let cache: ReadThroughCache;
/** The cache's own counters (hits), shared by both servers as the cache is. */
const cacheMetrics = new Metrics({ processMetrics: false });
let pair: Pair;
let fast: Side;
let slow: Side;
const same = (shape: Shape): Promise<Exchange> => pair.same(shape);

beforeAll(async () => {
  site = await startSimulator({ shots: 12, assets: 2 });
  // Values a hand-written encoder gets wrong: non-ASCII text, emoji, quotes, nulls, a link.
  site.store.update("Shot", 2, { description: 'Plan séquence — "dernière" prise 🎬\n日本語', sg_cut_in: null }, { user: site.scriptUser });
  site.store.update("Shot", 3, { code: "SH\u00e9_003", description: null }, { user: site.scriptUser });
  site.store.update("Shot", 5, { description: "long ".repeat(300) }, { user: site.scriptUser });
  backend = new ShotGridClient({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY });
  // A pinned clock with a fraction, so ageMs (rounded) is the same on both sides and not 0.
  cache = new ReadThroughCache({ backend, preloadTypes: ["Project", "Sequence", "Shot"], now: () => clock, metrics: cacheMetrics });
  cache.startFrom(5_000_000_123); // an event id past 32 bits
  await cache.preload();
  clock += 1234.6;
  pair = await startPair({ cache, schema: new SchemaRegistry(backend), unreachable: () => unreachable });
  ({ fast, slow } = pair);
});

afterAll(async () => {
  await pair?.close();
  await backend?.close();
  await site?.close();
});

describe("GetEntity fast path", () => {
  const requests: JsonObject[] = [
    { entityType: "Shot", id: 1, fields: SHOT_FIELDS },
    { entityType: "Shot", id: 2, fields: SHOT_FIELDS },
    { entityType: "Shot", id: 3, fields: ["description", "code", "code", "id", "type"] },
    { entityType: "Shot", id: 4 },
    { entityType: "Shot", id: 2, fields: [] },
    { entityType: "Sequence", id: 1, fields: ["code", "project"] },
    { entityType: "Project", id: 1, fields: ["name", "sg_status"] },
  ];

  it("answers hits from its own path, identical to the normal handler, in every encoding", async () => {
    // The first request of a type loads its schema (asynchronously): that one takes the normal path.
    for (const msg of requests) await same(jsonPost(msg));
    const before = pair.fastHandlerCalls;
    const readsBefore = pair.reads.count;
    let ok = 0;
    for (const msg of requests) {
      for (const shape of [jsonPost(msg), jsonGet(msg), protoPost(msg), protoGet(msg)]) {
        const a = await same(shape);
        if (a.status === 200) ok++;
      }
    }
    // The sample is made of hits: every answer is a 200, none reached the fast side's handler.
    expect(ok).toBe(requests.length * 4);
    expect(pair.fastHandlerCalls - before).toBe(0);
    expect(pair.reads.count - readsBefore).toBe(requests.length * 4); // the normal side's, one per request
    // A content type connect accepts with a charset: a hit too.
    await same(jsonPost(requests[0]!, { "content-type": "application/json; charset=utf-8" }));
    expect(pair.fastHandlerCalls - before).toBe(0);
    // Asked twice: the second answer comes from the kept encoding and must still be the same.
    await same(jsonPost(requests[1]!));
    await same(protoGet(requests[1]!));
    const body = JSON.parse((await same(jsonPost(requests[1]!))).body.toString("utf8"));
    expect(body.entity.fields.description).toContain("🎬");
    expect(body.freshness).toEqual({ source: "cache", ageMs: "1235", asOfEventId: "5000000123", stale: false });
  });

  it("answers from the new record once the held one changes (kept encodings are per record text)", async () => {
    const msg = { entityType: "Shot", id: 1, fields: ["code", "sg_sequence"] };
    const before = JSON.parse((await same(jsonPost(msg))).body.toString("utf8"));
    await same(protoPost(msg));
    const link = before.entity.fields.sg_sequence as { type: string; id: number };
    // A renamed sequence: the held shot is patched in place (a new text), as an event would do.
    expect(await cache.store.patchLinkName(`${link.type}:${link.id}`, "Renamed ✓")).toBeGreaterThan(0);
    const after = JSON.parse((await same(jsonPost(msg))).body.toString("utf8"));
    expect(after.entity.fields.sg_sequence.name).toBe("Renamed ✓");
    await same(protoPost(msg));
    await same(jsonGet(msg));
  });

  it("counts hits and RPCs as the normal path does", async () => {
    const hits = () => metricValue(cacheMetrics, "shotgrid_cache_hits_total", 'kind="entity"');
    const rpcs = (s: Side) => metricValue(s.metrics, "shotgrid_cache_rpc_total", 'method="shotgrid.cache.v1.CacheService/GetEntity",code="ok"');
    for (const s of [fast, slow]) {
      const [h0, r0, calls0] = [await hits(), await rpcs(s), pair.reads.count];
      for (const msg of requests.slice(0, 3)) {
        const shape = jsonPost(msg);
        expect((await pair.send(s, shape)).status).toBe(200);
      }
      expect(await hits()).toBe(h0 + 3);
      expect(await rpcs(s)).toBe(r0 + 3);
      // The same debug line per call as the normal path's interceptor writes.
      const lines = s.logs.slice(-3).map(({ component, rpc, code, msg, level }) => ({ component, rpc, code, msg, level }));
      expect(lines).toEqual(Array(3).fill({ component: "server", rpc: "shotgrid.cache.v1.CacheService/GetEntity", code: "ok", msg: "rpc", level: 20 }));
      expect(pair.reads.count - calls0).toBe(s === fast ? 0 : 3);
    }
  });

  it("marks answers stale while the site is unreachable, as the normal path does", async () => {
    unreachable = "event log poll failed";
    try {
      for (const shape of [jsonPost(requests[0]!), protoPost(requests[0]!)]) await same(shape);
      const body = JSON.parse((await same(jsonGet(requests[0]!))).body.toString("utf8"));
      expect(body.freshness.stale).toBe(true);
    } finally {
      unreachable = undefined;
    }
  });

  it("hands everything that is not a plain hit to the normal handler, body intact", async () => {
    const cases: Shape[] = [
      jsonPost({ entityType: "Shot", id: 999_999, fields: ["code"] }), // does not exist
      jsonPost({ entityType: "Shot", id: 1, fields: ["no_such_field"] }),
      jsonPost({ entityType: "Shot", id: 1, feilds: ["code"] }), // unknown key
      jsonPost({ entityType: "Nope", id: 1 }),
      jsonPost({ entityType: "Shot", id: -3 }),
      jsonPost({ entityType: "Shot", id: 1, fields: ["sg_sequence.Sequence.code"] }), // a projection: fetched upstream
      jsonPost({ entityType: "Shot", id: 1, fields: SHOT_FIELDS }, { "connect-timeout-ms": "5000" }),
      { method: "POST", path: PATH, body: "{not json", headers: { "content-type": "application/json" } },
      { method: "POST", path: PATH, body: Buffer.from([0xff, 0xff, 0xff]), headers: { "content-type": "application/proto" } },
      { method: "GET", path: `${PATH}?connect=v1&encoding=xml&message=%7B%7D`, headers: {} },
      { method: "PUT", path: PATH, body: "{}", headers: { "content-type": "application/json" } },
      // A GET naming a content type connect does not read: it answers 415.
      { ...jsonGet({ entityType: "Shot", id: 1, fields: SHOT_FIELDS }), headers: { "content-type": "text/plain" } },
    ];
    for (const shape of cases) {
      // Once to the normal side first: a fetched projection is then cached for both.
      await pair.send(slow, shape);
      const before = pair.fastHandlerCalls;
      const a = await same(shape);
      // Each case is answered by the normal path on the fast side too (or refused before the handler).
      if (a.status === 200) expect(pair.fastHandlerCalls - before).toBe(1);
    }
    const missing = await same(cases[0]!);
    expect(missing.status).toBe(404);
    const badField = JSON.parse((await same(cases[1]!)).body.toString("utf8"));
    expect(badField.code).toBe("invalid_argument");
  });

  it("leaves answers the normal path would compress to it", async () => {
    // A long description: over connect-es's 1 KiB compression threshold.
    const msg = { entityType: "Shot", id: 5, fields: ["code", "description"] };
    const plain = await same(jsonPost(msg));
    expect(plain.body.length).toBeGreaterThan(1024);
    const before = pair.fastHandlerCalls;
    const gz = await same(jsonPost(msg, { "accept-encoding": "gzip" }));
    expect(gz.headers).toContain("content-encoding: gzip");
    expect(pair.fastHandlerCalls - before).toBe(1);
    // A small answer is never compressed: the fast path answers it whatever the client accepts.
    await same(jsonPost(requests[0]!, { "accept-encoding": "gzip" }));
    expect(pair.fastHandlerCalls - before).toBe(1);
  });
});

describe("GetEntity fast path over HTTP/2 (gRPC, Connect)", () => {
  const msgs: JsonObject[] = [
    { entityType: "Shot", id: 1, fields: SHOT_FIELDS },
    { entityType: "Shot", id: 2, fields: SHOT_FIELDS },
    { entityType: "Shot", id: 3, fields: ["description", "code", "code", "id", "type"] },
    { entityType: "Sequence", id: 1, fields: ["code", "project"] },
  ];
  const grpcStatus = (a: Exchange) => a.trailers.find((t) => t.startsWith("grpc-status: ")) ?? a.headers.find((t) => t.startsWith("grpc-status: "));

  it("answers hits from its own path, identical to the normal handler: headers, body and trailers", async () => {
    for (const msg of msgs) await same(jsonPost(msg)); // schemas loaded, records held
    const before = pair.fastHandlerCalls;
    let ok = 0;
    for (const msg of msgs) {
      for (const shape of allH2(msg)) {
        const a = await same(shape);
        if (a.status === 200 && (!shape.headers?.["content-type"]?.startsWith("application/grpc") || grpcStatus(a) === "grpc-status: 0")) ok++;
      }
    }
    expect(ok).toBe(msgs.length * 6);
    expect(pair.fastHandlerCalls - before).toBe(0);
    // A client that accepts compressed answers (as grpc-js does): a small answer is sent plain,
    // announced as the normal path announces it (grpc-encoding), and still from the fast path.
    const gz = await same(grpc(msgs[0]!, { "grpc-accept-encoding": "identity,deflate,gzip" }));
    expect(gz.headers).toContain("grpc-encoding: gzip");
    await same(grpc(msgs[0]!, { "grpc-accept-encoding": "br" }));
    await same(grpc(msgs[0]!, { "grpc-accept-encoding": "snappy" }));
    await same(h2(jsonPost(msgs[1]!, { "accept-encoding": "gzip" })));
    expect(pair.fastHandlerCalls - before).toBe(0);
  });

  it("counts and logs hits over HTTP/2 as the normal path does, by protocol", async () => {
    const rpcs = (s: Side) => metricValue(s.metrics, "shotgrid_cache_rpc_total", 'method="shotgrid.cache.v1.CacheService/GetEntity",code="ok"');
    const received = (s: Side, protocol: string) =>
      metricValue(s.metrics, "shotgrid_cache_rpc_requests_total", `method="shotgrid.cache.v1.CacheService/GetEntity",protocol="${protocol}"`);
    for (const s of [fast, slow]) {
      const [r0, g0, c0] = [await rpcs(s), await received(s, "grpc"), await received(s, "connect")];
      for (const shape of [grpc(msgs[0]!), grpcJson(msgs[1]!), h2(protoPost(msgs[2]!))]) expect((await pair.send(s, shape)).status).toBe(200);
      expect([(await rpcs(s)) - r0, (await received(s, "grpc")) - g0, (await received(s, "connect")) - c0]).toEqual([3, 2, 1]);
      const lines = s.logs.slice(-3).map(({ rpc, code, msg, level }) => ({ rpc, code, msg, level }));
      expect(lines).toEqual(Array(3).fill({ rpc: "shotgrid.cache.v1.CacheService/GetEntity", code: "ok", msg: "rpc", level: 20 }));
    }
  });

  it("hands everything that is not a plain hit to the normal handler, body intact", async () => {
    const hit = msgs[0]!;
    const message = binaryOf(hit);
    const raw = (body: Buffer, headers: Record<string, string> = {}): Shape =>
      h2({ method: "POST", path: PATH, body, headers: { "content-type": "application/grpc+proto", te: "trailers", ...headers } });
    const cases: Shape[] = [
      grpc({ entityType: "Shot", id: 999_999, fields: ["code"] }), // not found
      grpc({ entityType: "Shot", id: 1, fields: ["no_such_field"] }),
      grpcJson({ entityType: "Shot", id: 1, feilds: ["code"] }),
      h2(jsonPost({ entityType: "Nope", id: 1 })),
      grpc({ entityType: "Shot", id: 1, fields: ["sg_sequence.Sequence.code"] }), // a projection: fetched upstream
      grpc(hit, { "grpc-timeout": "5S" }), // a deadline: the normal path keeps it
      h2(jsonPost(hit, { "connect-timeout-ms": "5000" })),
      grpc(hit, { "grpc-encoding": "gzip" }), // says compressed, is not
      raw(envelope(message, 1)), // the compressed flag without an encoding
      raw(Buffer.concat([envelope(message), envelope(message)])), // two messages for a unary call
      raw(envelope(message).subarray(0, 10)), // cut short
      raw(Buffer.alloc(0)),
      raw(envelope(message), { "content-type": "application/grpc-web+proto" }),
      raw(envelope(message), { "content-type": "application/grpc+xml" }),
      h2({ method: "PUT", path: PATH, body: "{}", headers: { "content-type": "application/json" } }),
      h2({ method: "POST", path: PATH, body: "{not json", headers: { "content-type": "application/json" } }),
      h2({ method: "GET", path: `${PATH}?connect=v1&encoding=xml&message=%7B%7D` }),
      grpc(hit, { ":authority": "a:99999" }), // an authority connect-node cannot make a URL of
      h2({ ...jsonGet(hit), headers: { "content-type": "text/plain" } }), // connect answers 415
    ];
    for (const shape of cases) {
      // Once to the normal side first: a fetched projection is then cached for both.
      await pair.send(slow, shape);
      const before = pair.fastHandlerCalls;
      const a = await same(shape);
      // Answered by the normal path on the fast side too (or refused before the handler).
      if (grpcStatus(a) === "grpc-status: 0") expect(pair.fastHandlerCalls - before).toBe(1);
    }
    expect(grpcStatus(await same(cases[0]!))).toBe("grpc-status: 5"); // not_found
    expect(grpcStatus(await same(cases[1]!))).toBe("grpc-status: 3"); // invalid_argument
    expect(grpcStatus(await same(cases[8]!))).not.toBe("grpc-status: 0");
    expect(grpcStatus(await same(cases[9]!))).not.toBe("grpc-status: 0");
  });

  it("leaves answers the normal path would compress, and bodies over the size limit, to it", async () => {
    const msg = { entityType: "Shot", id: 5, fields: ["code", "description"] }; // over 1 KiB
    await same(grpc(msg));
    const before = pair.fastHandlerCalls;
    const gz = await same(grpc(msg, { "grpc-accept-encoding": "gzip" }));
    expect(gz.headers).toContain("grpc-encoding: gzip");
    expect(gz.body[0]).toBe(1); // a compressed message
    expect(pair.fastHandlerCalls - before).toBe(1);
    // A body past the size limit (1 MiB), read partly by the fast path, then whole by the normal one.
    const huge = grpc({ entityType: "Shot", id: 1, fields: Array.from({ length: 90_000 }, (_, i) => `field_${i}`) });
    expect((huge.body as Buffer).length).toBeGreaterThan(1024 * 1024);
    const big = await same(huge);
    expect(grpcStatus(big)).toBe("grpc-status: 8"); // resource_exhausted
  });
});

describe("GetEntity fast path for gRPC-web over HTTP/1.1", () => {
  const msgs: JsonObject[] = [
    { entityType: "Shot", id: 1, fields: SHOT_FIELDS },
    { entityType: "Shot", id: 2, fields: SHOT_FIELDS },
    { entityType: "Shot", id: 3, fields: ["description", "code", "code", "id", "type"] },
    { entityType: "Sequence", id: 1, fields: ["code", "project"] },
  ];

  it("hands a streamed body on as soon as its envelope cannot be a plain message, without waiting for its end", async () => {
    // A chunked body left open after a head that says "compressed", or "2 MiB": connect answers at
    // once; so must the fast side (it would otherwise wait for an end that may never come).
    const held = (port: number, head: Buffer): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = net.connect(port, "127.0.0.1", () =>
          socket.write(
            `POST ${PATH} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/grpc-web+proto\r\nTransfer-Encoding: chunked\r\n\r\n${head.length.toString(16)}\r\n${head.toString("latin1")}\r\n`,
            "latin1",
          ),
        );
        let text = "";
        socket.on("data", (c: Buffer) => {
          text += c.toString("latin1");
          // The answer is whole at its last chunk; the request's body is still open.
          if (text.includes("\r\n0\r\n\r\n")) {
            socket.destroy();
            resolve(text.replace(/\r\nDate: [^\r]*/, ""));
          }
        });
        socket.on("error", reject);
      });
    const message = Buffer.from(toBinary(GetEntityRequestSchema, fromJson(GetEntityRequestSchema, { entityType: "Shot", id: 1, fields: ["code"] })));
    const compressed = envelope(message, 1);
    const huge = Buffer.from([0, 0, 0x20, 0, 0]); // a 2 MiB message announced
    for (const head of [compressed, huge]) {
      const [a, b] = [await held(fast.port, head), await held(slow.port, head)];
      expect(a).toBe(b);
      expect(a).toMatch(/grpc-status: [1-9]/);
    }
  });

  it("answers hits from its own path, identical to the normal handler: headers, frames and trailer", async () => {
    for (const msg of msgs) await same(jsonPost(msg)); // schemas loaded, records held
    const before = pair.fastHandlerCalls;
    let ok = 0;
    for (const msg of msgs) {
      for (const shape of allGrpcWeb(msg)) {
        const a = await same(shape);
        if (a.status === 200 && grpcWebTrailerOf(a) === "grpc-status: 0\r\n") ok++;
      }
    }
    expect(ok).toBe(msgs.length * 3);
    expect(pair.fastHandlerCalls - before).toBe(0);
    // A client that accepts compressed answers: a small answer is sent plain, announced as the
    // normal path announces it (grpc-encoding), and still from the fast path.
    const gz = await same(grpcWeb(msgs[0]!, { "grpc-accept-encoding": "identity,deflate,gzip" }));
    expect(gz.headers).toContain("grpc-encoding: gzip");
    await same(grpcWeb(msgs[0]!, { "grpc-accept-encoding": "br" }));
    await same(grpcWeb(msgs[0]!, { "grpc-encoding": "identity" }));
    await same(grpcWeb(msgs[0]!, { "content-type": "application/grpc-web+json; charset=utf-8" }));
    expect(pair.fastHandlerCalls - before).toBe(0);
    // The same bytes on the wire: headers in their order and case, the body in the same chunks.
    for (const shape of [grpcWeb(msgs[1]!), grpcWebJson(msgs[2]!), grpcWeb(msgs[0]!, { "grpc-accept-encoding": "gzip" })]) {
      const [a, b] = [await exchangeWire(fast.port, shape), await exchangeWire(slow.port, shape)];
      expect(a.toString("latin1")).toBe(b.toString("latin1"));
      expect(a.toString("latin1")).toContain("Transfer-Encoding: chunked");
    }
    expect(pair.fastHandlerCalls - before).toBe(0);
    // A hit asked with no Host (HTTP/1.0) or one that is no URL authority: connect-node cannot
    // serve it (500 internal), and neither path answers it as a hit.
    for (const shape of [grpcWeb(msgs[1]!), jsonPost(msgs[1]!)])
      for (const wire of [{ version: "1.0" as const, host: null }, { host: "[" }]) {
        const [a, b] = [await exchangeWire(fast.port, shape, wire), await exchangeWire(slow.port, shape, wire)];
        expect(a.toString("latin1")).toBe(b.toString("latin1"));
        expect(a.toString("latin1")).toMatch(/^HTTP\/1\.1 500/);
      }
  });

  it("counts and logs gRPC-web hits as the normal path does, by protocol", async () => {
    const rpcs = (s: Side) => metricValue(s.metrics, "shotgrid_cache_rpc_total", 'method="shotgrid.cache.v1.CacheService/GetEntity",code="ok"');
    const received = (s: Side, protocol: string) =>
      metricValue(s.metrics, "shotgrid_cache_rpc_requests_total", `method="shotgrid.cache.v1.CacheService/GetEntity",protocol="${protocol}"`);
    for (const s of [fast, slow]) {
      const [r0, w0, c0] = [await rpcs(s), await received(s, "grpc-web"), await received(s, "connect")];
      for (const shape of [grpcWeb(msgs[0]!), grpcWebJson(msgs[1]!), protoPost(msgs[2]!)]) expect((await pair.send(s, shape)).status).toBe(200);
      expect([(await rpcs(s)) - r0, (await received(s, "grpc-web")) - w0, (await received(s, "connect")) - c0]).toEqual([3, 2, 1]);
      const lines = s.logs.slice(-3).map(({ component, rpc, code, msg, level }) => ({ component, rpc, code, msg, level }));
      expect(lines).toEqual(Array(3).fill({ component: "server", rpc: "shotgrid.cache.v1.CacheService/GetEntity", code: "ok", msg: "rpc", level: 20 }));
    }
  });

  it("hands everything that is not a plain hit to the normal handler, body intact", async () => {
    const hit = msgs[0]!;
    const message = binaryOf(hit);
    const raw = (body: Buffer, headers: Record<string, string> = {}): Shape => ({
      method: "POST",
      path: PATH,
      body,
      headers: { "content-type": "application/grpc-web+proto", ...headers },
    });
    const cases: Shape[] = [
      grpcWeb({ entityType: "Shot", id: 999_999, fields: ["code"] }), // not found
      grpcWeb({ entityType: "Shot", id: 1, fields: ["no_such_field"] }),
      grpcWebJson({ entityType: "Shot", id: 1, feilds: ["code"] }),
      grpcWeb({ entityType: "Shot", id: 1, fields: ["sg_sequence.Sequence.code"] }), // a projection: fetched upstream
      grpcWeb(hit, { "grpc-timeout": "5S" }), // a deadline: the normal path keeps it
      grpcWeb(hit, { "grpc-encoding": "gzip" }), // says compressed, is not
      raw(envelope(message, 1)), // the compressed flag without an encoding
      raw(envelope(message, 0x80)), // a trailer frame as the request
      raw(Buffer.concat([envelope(message), envelope(message)])), // two messages for a unary call
      raw(envelope(message).subarray(0, 10)), // cut short
      raw(Buffer.alloc(0)),
      raw(Buffer.from(envelope(message).toString("base64")), { "content-type": "application/grpc-web-text" }),
      raw(envelope(message), { "content-type": "application/grpc-web+xml" }),
      { method: "GET", path: PATH, headers: { "content-type": "application/grpc-web+proto" } },
      { method: "PUT", path: PATH, body: envelope(message), headers: { "content-type": "application/grpc-web+proto" } },
    ];
    let handedOn = 0;
    for (const shape of cases) {
      // Once to the normal side first: a fetched projection is then cached for both.
      await pair.send(slow, shape);
      const before = pair.fastHandlerCalls;
      const a = await same(shape);
      // Answered by the normal path on the fast side too (or refused before the handler).
      if (grpcWebTrailerOf(a) === "grpc-status: 0\r\n") {
        expect(pair.fastHandlerCalls - before, `${shape.headers?.["content-type"]} ${JSON.stringify(shape.headers)}`).toBe(1);
        handedOn++;
      }
    }
    expect(handedOn).toBe(3); // the projection, the deadline, the plain "gzip" message
    expect(grpcWebTrailerOf(await same(cases[0]!))).toMatch(/^grpc-message: .*\r\ngrpc-status: 5\r\n$/); // not_found, in connect's order
    expect(grpcWebTrailerOf(await same(cases[1]!))).toContain("grpc-status: 3\r\n"); // invalid_argument
    expect(grpcWebTrailerOf(await same(cases[6]!))).not.toBe("grpc-status: 0\r\n");
    expect(grpcWebTrailerOf(await same(cases[8]!))).not.toBe("grpc-status: 0\r\n");
  });

  it("leaves answers the normal path would compress, and bodies over the size limit, to it", async () => {
    const msg = { entityType: "Shot", id: 5, fields: ["code", "description"] }; // over 1 KiB
    await same(grpcWeb(msg));
    const before = pair.fastHandlerCalls;
    const gz = await same(grpcWeb(msg, { "grpc-accept-encoding": "gzip" }));
    expect(gz.headers).toContain("grpc-encoding: gzip");
    expect(gz.body[0]).toBe(1); // a compressed message
    expect(pair.fastHandlerCalls - before).toBe(1);
    const huge = grpcWeb({ entityType: "Shot", id: 1, fields: Array.from({ length: 90_000 }, (_, i) => `field_${i}`) });
    expect((huge.body as Buffer).length).toBeGreaterThan(1024 * 1024);
    expect(grpcWebTrailerOf(await same(huge))).toContain("grpc-status: 8"); // resource_exhausted
    // The same without a declared length (chunked): the fast path reads up to the limit, then the
    // normal path reads what it read and the rest.
    const chunked = { "transfer-encoding": "chunked" };
    expect(grpcWebTrailerOf(await same({ ...huge, headers: { ...huge.headers, ...chunked } }))).toContain("grpc-status: 8");
    const b1 = pair.fastHandlerCalls;
    expect(grpcWebTrailerOf(await same(grpcWeb({ entityType: "Shot", id: 1, fields: ["code"] }, chunked)))).toBe("grpc-status: 0\r\n");
    expect(pair.fastHandlerCalls - b1).toBe(0); // a hit without a declared length: the fast path
  });

  it("answers connect-node's gRPC-web transport over HTTP/1.1 (a body without a length) on the fast path, as the normal handler does", async () => {
    const clients = (s: Side) => [
      createClient(CacheService, createGrpcWebTransport({ baseUrl: `http://127.0.0.1:${s.port}`, httpVersion: "1.1" })),
      createClient(CacheService, createGrpcWebTransport({ baseUrl: `http://127.0.0.1:${s.port}`, httpVersion: "1.1", useBinaryFormat: false })),
    ];
    const answers = async (s: Side) => {
      const out: unknown[] = [];
      for (const client of clients(s))
        for (const msg of msgs) out.push(toJson(GetEntityResponseSchema, await client.getEntity(fromJson(GetEntityRequestSchema, msg))));
      return out;
    };
    await answers(fast); // connections opened
    // These calls do not go through the pair's counted sends: the fast side's handler reads are counted here.
    const readsBefore = pair.reads.count;
    const a = await answers(fast);
    expect(pair.reads.count - readsBefore).toBe(0);
    const b = await answers(slow);
    expect(a).toEqual(b);
    expect((a[1] as { entity: { id: number } }).entity.id).toBe(2);
    // Errors read the same through the client too (the normal path answers them on both sides).
    const missing = { entityType: "Shot", id: 999_999, fields: ["code"] };
    const errors = await Promise.all(
      [fast, slow].map((s) =>
        clients(s)[0]!
          .getEntity(fromJson(GetEntityRequestSchema, missing))
          .catch((e: unknown) => String(e)),
      ),
    );
    expect(errors[0]).toBe(errors[1]);
    expect(errors[0]).toContain("not_found");
  });
});

describe("GetEntity fast path for real HTTP/2 clients", () => {
  it("answers connect-node's gRPC and Connect h2c transports and @grpc/grpc-js on the fast path, as the normal handler does", async () => {
    const req = { entityType: "Shot", id: 2, fields: SHOT_FIELDS };
    const connectClients = (s: Side) => [
      createClient(CacheService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${s.port}` })),
      createClient(CacheService, createConnectTransport({ baseUrl: `http://127.0.0.1:${s.port}`, httpVersion: "2" })),
      createClient(CacheService, createConnectTransport({ baseUrl: `http://127.0.0.1:${s.port}`, httpVersion: "2", useBinaryFormat: true })),
    ];
    const definition = protoLoader.loadSync(fileURLToPath(new URL("../proto/shotgrid/cache/v1/cache.proto", import.meta.url)), {
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
      includeDirs: [fileURLToPath(new URL("../node_modules/protobufjs", import.meta.url))],
    });
    const pkg = grpcJs.loadPackageDefinition(definition) as unknown as { shotgrid: { cache: { v1: { CacheService: grpcJs.ServiceClientConstructor } } } };
    const grpcJsCall = (s: Side) =>
      new Promise<unknown>((resolve, reject) => {
        const client = new pkg.shotgrid.cache.v1.CacheService(`127.0.0.1:${s.port}`, grpcJs.credentials.createInsecure());
        (client.GetEntity as (r: object, cb: (err: Error | null, res: unknown) => void) => void).call(client, req, (err, res) => {
          client.close();
          if (err) reject(err);
          else resolve(res);
        });
      });
    const answers = async (s: Side) => {
      const out: unknown[] = [];
      for (const client of connectClients(s)) out.push(toJson(GetEntityResponseSchema, await client.getEntity(req)));
      out.push(await grpcJsCall(s));
      return out;
    };
    await answers(fast); // connections and sessions opened
    // These calls do not go through the pair's counted sends: the fast side's handler reads are counted here.
    const readsBefore = pair.reads.count;
    const a = await answers(fast);
    expect(pair.reads.count - readsBefore).toBe(0);
    const b = await answers(slow);
    expect(a).toEqual(b);
    expect((a[0] as { entity: { id: number } }).entity.id).toBe(2);
  });
});

describe("fast path with an auth file, over HTTP/1.1 and HTTP/2", () => {
  const TOKENS = { reader: "sgc_reader_token_for_tests", limited: "sgc_limited_token_for_tests" };
  let authPair: Pair;
  beforeAll(async () => {
    const policy = AccessPolicy.fromFile({
      clients: [
        { name: "reader", tokenSha256: hashToken(TOKENS.reader), scopes: ["read"], projects: null, entityTypes: null, sudoAsLogin: null },
        // May read only what is not in project 1 (the held shots are).
        { name: "limited", tokenSha256: hashToken(TOKENS.limited), scopes: ["read"], projects: [999], entityTypes: null, sudoAsLogin: null },
      ],
    });
    authPair = await startPair({ cache, schema: new SchemaRegistry(backend), unreachable: () => undefined, policy });
  });
  afterAll(async () => {
    await authPair?.close();
  });

  it("answers a reader's hits on the fast path and leaves refusals (no token, a bad one, read limits) to the normal path", async () => {
    const msg = { entityType: "Shot", id: 1, fields: SHOT_FIELDS };
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
    const shapesFor = (headers: Record<string, string>): Shape[] => [
      grpc(msg, headers),
      h2(jsonPost(msg, headers)),
      jsonPost(msg, headers),
      { ...h2(jsonGet(msg)), headers },
      grpcWeb(msg, headers),
    ];
    for (const shape of shapesFor(bearer(TOKENS.reader))) await authPair.same(shape); // schema loaded on this pair's registry
    const before = authPair.fastHandlerCalls;
    for (const shape of shapesFor(bearer(TOKENS.reader))) expect((await authPair.same(shape)).status).toBe(200);
    expect(authPair.fastHandlerCalls - before).toBe(0);
    const refusals = [...shapesFor({}), ...shapesFor(bearer("sgc_not_a_known_token")), ...shapesFor(bearer(TOKENS.limited))];
    for (const shape of refusals) {
      const a = await authPair.same(shape);
      // gRPC-web's status is in the trailer frame at the end of its body.
      const webStatus = /grpc-status: (\d+)/.exec(a.body.toString("latin1"))?.[1];
      const refused =
        a.status === 401 ||
        a.status === 403 ||
        a.trailers.some((t) => t === "grpc-status: 16" || t === "grpc-status: 7") ||
        webStatus === "16" ||
        webStatus === "7";
      expect(refused, `${shape.headers?.authorization ?? "no token"} ${shape.h2 ? "h2" : "h1"}`).toBe(true);
    }
    // A refused caller never reached the cache on the fast side's fast path; the limited one's
    // refusal comes from the normal handler, which reads the record first.
    expect(authPair.fastHandlerCalls - before).toBe(5);
  });
});
