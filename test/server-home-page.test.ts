/**
 * `GET /` says what the service is (version, mode, where the cache lives) and lists its
 * endpoints: HTML for a browser, plain text for curl and other clients. Other paths stay 404.
 */
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VERSION } from "../src/version.ts";
import { startE2E, rawRequest, type E2E } from "./e2e-helpers.ts";
import { randomPrefix, TestRedisServer } from "./support/redis-server.ts";

const ENDPOINTS = [
  "/shotgrid.cache.v1.CacheService/GetEntity",
  "/shotgrid.cache.v1.CacheService/Query",
  "/shotgrid.cache.v1.CacheService/WatchChanges",
  "/healthz",
  "/readyz",
  "/metrics",
  "reflection",
];

let e2e: E2E;
beforeAll(async () => {
  e2e = await startE2E();
}, 30_000);
afterAll(() => e2e?.close());

describe("GET /", () => {
  it("answers curl with plain text naming the service, version, mode, store and endpoints", async () => {
    const page = await rawRequest(e2e.port, "GET", "/", undefined, { accept: "*/*", "user-agent": "curl/8.5.0" });
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(page.body).toContain(`shotgrid-cache ${VERSION}`);
    expect(page.body).toMatch(/^mode: site/m);
    expect(page.body).toMatch(/^cache: memory/m);
    for (const e of ENDPOINTS) expect(page.body).toContain(e);
    // The example names the address the client used.
    expect(page.body).toContain(`curl -s http://127.0.0.1:${e2e.port}/shotgrid.cache.v1.CacheService/GetEntity`);
  });

  it("answers a browser with an HTML page, escaped", async () => {
    const page = await rawRequest(e2e.port, "GET", "/", undefined, { accept: "text/html,application/xhtml+xml,*/*;q=0.8" });
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.body).toMatch(/^<!doctype html>/);
    expect(page.body).toContain(`<title>shotgrid-cache ${VERSION}</title>`);
    for (const e of ENDPOINTS) expect(page.body).toContain(e);
    expect(page.body).toContain("&quot;entityType&quot;");
  });

  it("answers HEAD with headers only, and over HTTP/2 too; other paths stay 404", async () => {
    const head = await rawRequest(e2e.port, "HEAD", "/");
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    expect((await rawRequest(e2e.port, "GET", "/index.html")).status).toBe(404);
    const session = http2.connect(e2e.url);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ":path": "/", accept: "*/*" });
        let text = "";
        req.on("data", (c: Buffer) => (text += c.toString("utf8")));
        req.on("end", () => resolve(text));
        req.on("error", reject);
      });
      expect(body).toContain(`curl -s http://127.0.0.1:${e2e.port}/`);
    } finally {
      session.close();
    }
  });

  it("says the cache is in Redis when it is", { timeout: 30_000 }, async () => {
    const redis = await TestRedisServer.start();
    let withRedis: E2E | undefined;
    try {
      withRedis = await startE2E({ config: { redis: { url: redis.url, prefix: randomPrefix() } } });
      const page = await rawRequest(withRedis.port, "GET", "/");
      expect(page.body).toMatch(/^cache: Redis/m);
    } finally {
      await withRedis?.close();
      await redis.stop();
    }
  });
});
