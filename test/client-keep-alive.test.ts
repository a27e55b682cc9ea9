/** The client keeps its connections: many requests, few TCP connections, at most `connections`. */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, expect, it } from "vitest";
import { ShotGridClient } from "../src/shotgrid/index.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function countingSite(): Promise<{ url: string; connections: () => number; inFlightPeak: () => number }> {
  let connections = 0;
  let inFlight = 0;
  let peak = 0;
  const server = createServer((req, res) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    req.resume();
    req.on("end", () => {
      const body = req.url?.endsWith("/auth/access_token")
        ? { token_type: "Bearer", access_token: "tok-keepalive-0123456789", expires_in: 600 }
        : { data: { type: "Shot", id: 1, attributes: { code: "A" }, relationships: {}, links: {} }, links: {} };
      setTimeout(() => {
        inFlight--;
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify(body));
      }, 5);
    });
  });
  server.on("connection", () => connections++);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(
    () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections, inFlightPeak: () => peak };
}

it("reuses one keep-alive connection for sequential requests", async () => {
  const s = await countingSite();
  const c = new ShotGridClient({ siteUrl: s.url, scriptName: "ka", scriptKey: "ka-key-0123456789" });
  cleanups.unshift(() => c.close());
  for (let i = 0; i < 15; i++) expect((await c.getEntity("Shot", 1))?.id).toBe(1);
  // The token fetch and the first read may overlap on two sockets; after that, nothing new.
  expect(s.connections()).toBeLessThanOrEqual(2);
});

it("opens no more connections than the pool allows, and sends no more at once than the cap", async () => {
  const s = await countingSite();
  const c = new ShotGridClient({ siteUrl: s.url, scriptName: "ka", scriptKey: "ka-key-0123456789", connections: 3, maxConcurrent: 2 });
  cleanups.unshift(() => c.close());
  await Promise.all(Array.from({ length: 30 }, () => c.getEntity("Shot", 1)));
  expect(s.connections()).toBeLessThanOrEqual(3);
  expect(s.inFlightPeak()).toBe(2);
});
