/**
 * Client mistakes answered as the client's, with a message that says what is wrong (issue 9):
 * malformed protobuf is invalid_argument in every protocol (not internal), invalid base64 in a
 * Connect GET is invalid_argument (not a bare 500), a wrong or missing content type gets a body
 * naming the accepted ones; a handler that throws fails only its own request; an HTTP/2
 * session that goes quiet is closed, one with a call in flight is not.
 */
import http2 from "node:http2";
import net from "node:net";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { h1Request, envelope, h2Exchange, rawExchange } from "./port-fuzz-kit.ts";
import { startTestServer } from "./server-test-service.ts";
import type { Server } from "../src/server/index.ts";

const SVC = "/shotgrid.cache.v1.CacheService";
/** Not protobuf: field 12 with wire type 7 does not exist. */
const GARBAGE = Buffer.from("garbage!!");
/** Valid start, then cut: a string field announcing 10 bytes with 2 present. */
const TRUNCATED = Buffer.from([0x0a, 0x0a, 0x53, 0x68]);

let server: Server;
let port: number;
/** The server's log lines. */
const logged: string[] = [];

beforeAll(async () => {
  ({ server, port } = await startTestServer({
    keepAliveTimeoutMs: 300,
    logger: pino({ level: "info" }, { write: (line: string) => void logged.push(line) }),
    extraRoutes: (_req, _res, path) => {
      if (path === "/boom") throw new Error("a bug in a route");
      return false;
    },
  }));
});
afterAll(() => server.close(1000));

const post = (path: string, type: string, body: Buffer) =>
  rawExchange(port, h1Request("POST", path, type ? { "content-type": type, connection: "close" } : { connection: "close" }, body), 3000);
const bodyOf = (text: string) => text.slice(text.indexOf("\r\n\r\n") + 4);

describe("malformed protobuf is the caller's fault: invalid_argument", () => {
  it.each([
    ["garbage", GARBAGE],
    ["truncated", TRUNCATED],
  ])("Connect binary POST (%s)", async (_name, bytes) => {
    const before = logged.length;
    const res = await post(`${SVC}/GetEntity`, "application/proto", bytes);
    expect(res.status).toBe(400);
    expect(logged.slice(before).filter((l) => l.includes('"code":"invalid_argument"') && l.includes("parse binary"))).toHaveLength(1);
    expect(JSON.parse(bodyOf(res.text))).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/^parse binary: /) });
  });

  it("Connect GET with encoding=proto", async () => {
    const res = await rawExchange(
      port,
      h1Request("GET", `${SVC}/GetEntity?connect=v1&encoding=proto&base64=1&message=${TRUNCATED.toString("base64url")}`, { connection: "close" }, undefined),
      3000,
    );
    expect(res.status).toBe(400);
    expect(JSON.parse(bodyOf(res.text))).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/^parse binary: premature EOF/) });
  });

  it("Connect streaming (WatchChanges, binary)", async () => {
    const res = await post(`${SVC}/WatchChanges`, "application/connect+proto", envelope(TRUNCATED));
    expect(res.text).toContain('"code":"invalid_argument"');
    expect(res.text).not.toContain('"internal"');
    // Logged (and counted) as the caller's error too: info, not a server-fault warning.
    const lines = logged.filter((l) => l.includes("WatchChanges") && l.includes("parse binary"));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, code: "invalid_argument" });
  });

  it("gRPC over HTTP/2, unary and streaming", async () => {
    for (const method of ["GetEntity", "WatchChanges"]) {
      const res = await h2Exchange(port, { ":path": `${SVC}/${method}`, "content-type": "application/grpc", te: "trailers" }, envelope(GARBAGE), 3000);
      expect(res.trailers["grpc-status"] ?? res.headers["grpc-status"], method).toBe("3");
      expect(decodeURIComponent(String(res.trailers["grpc-message"] ?? res.headers["grpc-message"]))).toMatch(/^parse binary: /);
    }
  });

  it("gRPC-web over HTTP/1.1", async () => {
    const res = await post(`${SVC}/GetEntity`, "application/grpc-web+proto", envelope(GARBAGE));
    expect(res.text).toMatch(/grpc-status: ?3\r\n/);
    expect(res.text).toMatch(/grpc-message: ?parse%20binary/);
  });
});

describe("other requests the framework answered badly", () => {
  it("invalid base64 in a Connect GET: invalid_argument naming the parameter", async () => {
    const res = await rawExchange(
      port,
      h1Request("GET", `${SVC}/GetEntity?connect=v1&encoding=json&base64=1&message=!!!!`, { connection: "close" }, undefined),
      3000,
    );
    expect(res.status).toBe(400);
    expect(JSON.parse(bodyOf(res.text))).toMatchObject({ code: "invalid_argument", message: expect.stringContaining('"message" is not valid base64') });
    expect(logged.some((l) => l.includes("GetEntity") && l.includes("not valid base64"))).toBe(true);
  });

  it("a wrong content type: 415 with the accepted ones", async () => {
    const res = await post(`${SVC}/GetEntity`, "text/plain", Buffer.from("{}"));
    expect(res.status).toBe(415);
    const body = JSON.parse(bodyOf(res.text));
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain('unsupported content-type "text/plain"');
    for (const type of ["application/json", "application/proto", "application/grpc", "application/grpc-web+proto"]) expect(body.message).toContain(type);
  });

  it("a missing content type on a stream: 415 naming the streaming types", async () => {
    const res = await post(`${SVC}/WatchChanges`, "", envelope(Buffer.from("{}")));
    expect(res.status).toBe(415);
    const body = JSON.parse(bodyOf(res.text));
    expect(body.message).toMatch(/^missing content-type/);
    expect(body.message).toContain("application/connect+json");
  });

  it("a wrong method (405) or a bidirectional stream over HTTP/1.1 (505): a body saying what to do", async () => {
    const put = await rawExchange(
      port,
      h1Request("PUT", `${SVC}/GetEntity`, { "content-type": "application/json", connection: "close" }, Buffer.from("{}")),
      3000,
    );
    expect(put.status).toBe(405);
    expect(JSON.parse(bodyOf(put.text)).message).toContain("does not accept PUT: use POST or GET");
    // No "connection: close" from the client: the server's own header must close the connection.
    const bidi = await rawExchange(
      port,
      h1Request(
        "POST",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        { "content-type": "application/grpc-web+proto" },
        envelope(Buffer.alloc(0)),
      ),
      3000,
    );
    expect(bidi.status).toBe(505);
    expect(JSON.parse(bodyOf(bidi.text)).message).toContain("needs HTTP/2");
    // Still closes the connection, so a client expecting full duplex is not left hanging.
    expect(bidi.text.slice(0, bidi.text.indexOf("\r\n\r\n"))).toMatch(/^connection: close$/im);
  });

  it("a handler that throws fails its own request with code internal; the server carries on", async () => {
    const res = await rawExchange(port, h1Request("GET", "/boom", { connection: "close" }, undefined), 3000);
    expect(res.status).toBe(500);
    expect(JSON.parse(bodyOf(res.text))).toEqual({ code: "internal", message: "internal error" });
    expect(logged.filter((l) => l.includes('"path":"/boom"') && l.includes("a bug in a route"))).toHaveLength(1);
    const ok = await post(`${SVC}/GetEntity`, "application/json", Buffer.from('{"entityType":"Shot","id":1234}'));
    expect(ok.status).toBe(200);
  });
});

describe("HTTP/2 sessions have an idle timeout (keepAliveTimeoutMs)", () => {
  it("closes a session that sent its preface and SETTINGS, then nothing", async () => {
    const socket = net.connect(port, "127.0.0.1");
    const closed = new Promise<number>((resolve) => {
      const start = Date.now();
      socket.on("close", () => resolve(Date.now() - start));
      socket.on("error", () => undefined);
      socket.resume();
    });
    socket.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
    const ms = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 3000))]);
    socket.destroy();
    expect(ms).toBeGreaterThan(0);
  });

  it("keeps a session whose stream is open but quiet", async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", () => undefined);
    const stream = session.request({ ":method": "POST", ":path": `${SVC}/WatchChanges`, "content-type": "application/grpc", te: "trailers" });
    stream.on("error", () => undefined);
    stream.end(envelope(Buffer.alloc(0)));
    const gotHeartbeat = new Promise<void>((resolve) => stream.once("data", () => resolve()));
    await gotHeartbeat;
    await new Promise((r) => setTimeout(r, 900));
    expect(session.closed || session.destroyed).toBe(false);
    expect(stream.closed).toBe(false);
    stream.close();
    session.destroy();
  });
});
