/**
 * TLS on the one port: HTTP/1.1 and HTTP/2 negotiated by ALPN, both serving the same handlers.
 * The certificate is self-signed, made for this test with openssl.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http2 from "node:http2";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheService } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import type { Server } from "../src/server/index.ts";
import { SHOT_ID, startTestServer } from "./server-test-service.ts";

const run = promisify(execFile);
const BUF = fileURLToPath(new URL("../node_modules/.bin/buf", import.meta.url));

let dir: string;
let cert: Buffer;
let server: Server;
let url: string;
let port: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "server-tls-"));
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    join(dir, "key.pem"),
    "-out",
    join(dir, "cert.pem"),
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
  ]);
  cert = readFileSync(join(dir, "cert.pem"));
  ({ server, url, port } = await startTestServer({ tls: { cert, key: readFileSync(join(dir, "key.pem")) } }));
});
afterAll(async () => {
  await server?.close(1000);
  rmSync(dir, { recursive: true, force: true });
});

describe("TLS with ALPN on one port", () => {
  it("reports an https URL", () => {
    expect(url).toBe(`https://127.0.0.1:${port}`);
  });

  it("serves an HTTP/1.1 client (JSON POST)", async () => {
    const body = JSON.stringify({ entityType: "Shot", id: SHOT_ID });
    const res = await new Promise<{ version: string; alpn: string | false | null; status: number; body: string }>((resolve, reject) => {
      const req = https.request(
        {
          host: "127.0.0.1",
          port,
          method: "POST",
          path: "/shotgrid.cache.v1.CacheService/GetEntity",
          ca: cert,
          agent: false,
          headers: { "content-type": "application/json" },
        },
        (r) => {
          let text = "";
          r.setEncoding("utf8");
          r.on("data", (c: string) => (text += c));
          r.on("end", () =>
            resolve({ version: r.httpVersion, alpn: (r.socket as import("node:tls").TLSSocket).alpnProtocol, status: r.statusCode!, body: text }),
          );
        },
      );
      req.on("error", reject);
      req.end(body);
    });
    expect(res.version).toBe("1.1");
    expect(res.alpn).not.toBe("h2");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).entity.fields).toEqual({ code: "SH010" });
  });

  it("serves an HTTP/2 client negotiated by ALPN", async () => {
    const session = http2.connect(url, { ca: cert });
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ":path": "/healthz" });
        let status = 0;
        let text = "";
        stream.on("response", (h) => (status = Number(h[":status"])));
        stream.setEncoding("utf8");
        stream.on("data", (c: string) => (text += c));
        stream.on("end", () => resolve({ status, body: text }));
        stream.on("error", reject);
      });
      expect(session.alpnProtocol).toBe("h2");
      expect(status).toBe(200);
      expect(JSON.parse(body).status).toBe("ok");
    } finally {
      session.close();
    }
  });

  it("serves Connect over HTTP/2 and gRPC", async () => {
    for (const transport of [
      createConnectTransport({ baseUrl: url, httpVersion: "2", nodeOptions: { ca: cert } }),
      createGrpcTransport({ baseUrl: url, nodeOptions: { ca: cert } }),
    ]) {
      const res = await createClient(CacheService, transport).getEntity({ entityType: "Shot", id: SHOT_ID });
      expect(res.entity?.id).toBe(SHOT_ID);
    }
  });

  it("lists services for buf curl over TLS", async () => {
    const { stdout } = await run(BUF, ["curl", "--cacert", join(dir, "cert.pem"), "--list-services", url]);
    expect(stdout).toContain("shotgrid.cache.v1.CacheService");
  });
});
