/**
 * One port serves every protocol and client: raw HTTP/1.1 JSON POST and GET, Connect binary,
 * connect-node's Connect (HTTP/1.1 and HTTP/2), gRPC and gRPC-web transports, and @grpc/grpc-js
 * over cleartext HTTP/2, all from the same handlers; plus limits and the JSON 404.
 */
import http from "node:http";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheService } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { createServer, type Server } from "../src/server/index.ts";
import { SHOT_ID, startTestServer } from "./server-test-service.ts";

let server: Server;
let url: string;
let port: number;

beforeAll(async () => {
  ({ server, url, port } = await startTestServer({ limits: { readMaxBytes: 4096 } }));
});
afterAll(() => server.close(1000));

/** A request on a fresh connection; resolves with status, headers and body. */
function request(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("HTTP/1.1 clients without a Connect library", () => {
  it("answers a JSON POST", async () => {
    const res = await request("POST", "/shotgrid.cache.v1.CacheService/GetEntity", JSON.stringify({ entityType: "Shot", id: SHOT_ID }), {
      "content-type": "application/json",
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ entity: { type: "Shot", id: SHOT_ID, fields: { code: "SH010" } }, freshness: { source: "cache" } });
  });

  it("answers a Connect GET for a side-effect-free method", async () => {
    const message = encodeURIComponent(JSON.stringify({ entityType: "Shot", id: SHOT_ID }));
    const res = await request("GET", `/shotgrid.cache.v1.CacheService/GetEntity?connect=v1&encoding=json&message=${message}`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).entity.id).toBe(SHOT_ID);
  });

  it("maps a handler error to its Connect code and HTTP status", async () => {
    const res = await request("POST", "/shotgrid.cache.v1.CacheService/GetEntity", JSON.stringify({ entityType: "Shot", id: 1 }), {
      "content-type": "application/json",
    });
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body)).toEqual({ code: "not_found", message: "Shot 1 not found" });
  });

  it("speaks HTTP/1.1 on a raw socket (no HTTP/0.9 confusion)", async () => {
    const body = JSON.stringify({ entityType: "Shot", id: SHOT_ID });
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.write(
          `POST /shotgrid.cache.v1.CacheService/GetEntity HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        );
      });
      let text = "";
      socket.on("data", (c) => (text += c.toString("utf8")));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    expect(raw.startsWith("HTTP/1.1 200")).toBe(true);
    expect(raw).toContain('"code":"SH010"');
  });

  it("answers an oversized request with resource_exhausted", async () => {
    const res = await request("POST", "/shotgrid.cache.v1.CacheService/Query", JSON.stringify({ entityType: "Shot", fields: Array(2000).fill("code") }), {
      "content-type": "application/json",
    });
    expect(res.status).toBe(429);
    expect(JSON.parse(res.body).code).toBe("resource_exhausted");
  });

  it("answers unknown paths with a JSON 404", async () => {
    const res = await request("GET", "/no/such/thing?x=1");
    expect(res.status).toBe(404);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(JSON.parse(res.body)).toEqual({ code: "not_found", message: "no route for GET /no/such/thing" });
  });
});

describe("connect-node transports", () => {
  const transports: Record<string, () => Transport> = {
    "Connect JSON over HTTP/1.1": () => createConnectTransport({ baseUrl: url, httpVersion: "1.1" }),
    "Connect binary over HTTP/1.1": () => createConnectTransport({ baseUrl: url, httpVersion: "1.1", useBinaryFormat: true }),
    "Connect GET over HTTP/1.1": () => createConnectTransport({ baseUrl: url, httpVersion: "1.1", useHttpGet: true }),
    "Connect over HTTP/2": () => createConnectTransport({ baseUrl: url, httpVersion: "2" }),
    "gRPC over h2c": () => createGrpcTransport({ baseUrl: url }),
    "gRPC-web over HTTP/1.1": () => createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" }),
    "gRPC-web over HTTP/2": () => createGrpcWebTransport({ baseUrl: url, httpVersion: "2" }),
  };
  for (const [name, make] of Object.entries(transports)) {
    it(`${name}: unary, error codes and a server stream`, async () => {
      const client: Client<typeof CacheService> = createClient(CacheService, make());
      const got = await client.getEntity({ entityType: "Shot", id: SHOT_ID });
      expect(got.entity?.fields).toEqual({ code: "SH010" });
      expect(got.freshness?.asOfEventId).toBe(42n);

      const err = await client.getEntity({ entityType: "Shot", id: 7 }).catch((e: unknown) => ConnectError.from(e));
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.NotFound);

      const controller = new AbortController();
      for await (const msg of client.watchChanges({}, { signal: controller.signal })) {
        expect(msg.message.case).toBe("heartbeat");
        break;
      }
    });
  }
});

describe("@grpc/grpc-js over cleartext HTTP/2", () => {
  it("calls GetEntity and Query and reads a status", async () => {
    const definition = protoLoader.loadSync(fileURLToPath(new URL("../proto/shotgrid/cache/v1/cache.proto", import.meta.url)), {
      longs: String,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      shotgrid: { cache: { v1: { CacheService: grpc.ServiceClientConstructor } } };
    };
    const client = new pkg.shotgrid.cache.v1.CacheService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    type Call = (req: object, cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void) => void;
    const call = (method: string, req: object) =>
      new Promise<{ err: grpc.ServiceError | null; res: Record<string, unknown> }>((resolve) =>
        (client[method] as Call).call(client, req, (err, res) => resolve({ err, res })),
      );
    try {
      const one = await call("GetEntity", { entityType: "Shot", id: SHOT_ID });
      expect(one.err).toBeNull();
      expect(one.res.entity).toMatchObject({ type: "Shot", id: SHOT_ID });
      const many = await call("Query", { entityType: "Asset" });
      expect((many.res.entities as unknown[]).length).toBe(2);
      const missing = await call("GetEntity", { entityType: "Shot", id: 5 });
      expect(missing.err?.code).toBe(grpc.status.NOT_FOUND);
      expect(missing.err?.details).toBe("Shot 5 not found");
    } finally {
      client.close();
    }
  });
});

describe("connection handling", () => {
  /** Open a raw socket, write `chunks` with pauses between them, collect what comes back until the server closes or 300 ms of silence. */
  function rawExchange(chunks: Buffer[]): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1");
      const got: Buffer[] = [];
      let quiet: NodeJS.Timeout | undefined;
      const finish = () => {
        clearTimeout(quiet);
        socket.destroy();
        resolve(Buffer.concat(got));
      };
      socket.on("data", (c: Buffer) => {
        got.push(c);
        clearTimeout(quiet);
        quiet = setTimeout(finish, 300);
      });
      socket.on("close", finish);
      socket.on("error", reject);
      socket.once("connect", async () => {
        for (const chunk of chunks) {
          socket.write(chunk);
          await new Promise((r) => setTimeout(r, 20));
        }
        quiet ??= setTimeout(finish, 300);
      });
    });
  }

  it("recognises the HTTP/2 preface even when it arrives in pieces", async () => {
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
    const emptySettings = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
    const reply = await rawExchange([preface.subarray(0, 5), preface.subarray(5, 17), Buffer.concat([preface.subarray(17), emptySettings])]);
    // The server's first frame is its SETTINGS frame (type 4 at byte 3), not an HTTP/1.1 error.
    expect(reply.length).toBeGreaterThanOrEqual(9);
    expect(reply[3]).toBe(0x4);
  });

  it("survives garbage, a truncated preface and a broken HTTP/2 stream, and keeps serving", async () => {
    const garbage = await rawExchange([Buffer.from("\x00\x01\x02 not http at all\r\n\r\n", "latin1")]);
    expect(garbage.toString("latin1")).toMatch(/^HTTP\/1\.1 400 /);
    await rawExchange([Buffer.from("PRI * HTTP/2.0\r\n", "latin1")]);
    await rawExchange([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "latin1")]);
    const res = await request("GET", "/healthz");
    expect(res.status).toBe(200);
    const client = createClient(CacheService, createGrpcTransport({ baseUrl: url }));
    expect((await client.getEntity({ entityType: "Shot", id: SHOT_ID })).entity?.id).toBe(SHOT_ID);
  });

  it("closes a connection that sends nothing within the idle timeout", async () => {
    const quiet = await startTestServer({ idleTimeoutMs: 100 });
    try {
      const closedByServer = await new Promise<boolean>((resolve) => {
        const socket = net.connect(quiet.port, "127.0.0.1");
        const guard = setTimeout(() => {
          socket.destroy();
          resolve(false);
        }, 5000);
        socket.on("close", () => {
          clearTimeout(guard);
          resolve(true);
        });
        socket.on("error", () => undefined);
      });
      expect(closedByServer).toBe(true);
    } finally {
      await quiet.server.close(1000);
    }
  });

  it("rejects listen on a port already in use with the system's error", async () => {
    const second = createServer({ version: "t", mode: "demo", routes: () => undefined });
    await expect(second.listen(port, "127.0.0.1")).rejects.toThrow(/EADDRINUSE/);
    await second.close(100);
  });
});
