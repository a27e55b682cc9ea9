/**
 * A site that closes a kept-alive connection just as the next request arrives on it (its idle
 * timeout firing as we write: undici's "other side closed", UND_ERR_SOCKET). Reads are sent
 * again at once on a new connection, even when the retry time budget is zero
 * (`--upstream-retry-ms 0`): the site never saw the request, so no time is spent waiting for a
 * failing site. And a long-lived caller signal collects nothing per request.
 */
import { getEventListeners } from "node:events";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, expect, it } from "vitest";
import { ShotGridClient } from "../src/shotgrid/index.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/**
 * Answers requests with keep-alive, but closes a connection without answering when a request
 * arrives after it was idle for `idleMs`: a deterministic stand-in for an idle timeout that
 * fires exactly when the request is sent.
 */
async function closingSite(idleMs: number): Promise<{ url: string; answered: () => number; closedOnRequest: () => number }> {
  let answered = 0;
  let closedOnRequest = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    let buf = "";
    let idleSince = performance.now();
    socket.on("data", (chunk: Buffer) => {
      buf += chunk.toString("latin1");
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.slice(0, end);
        const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        buf = buf.slice(end + 4 + length);
        if (performance.now() - idleSince >= idleMs) {
          closedOnRequest++;
          socket.destroy();
          return;
        }
        const body = head.includes("/auth/access_token")
          ? { token_type: "Bearer", access_token: "tok-closing-0123456789", expires_in: 600 }
          : { data: { type: "Shot", id: 1, attributes: { code: "A" }, relationships: {}, links: {} }, links: {} };
        const text = JSON.stringify(body);
        answered++;
        socket.write(
          `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: keep-alive\r\nkeep-alive: timeout=60\r\n\r\n${text}`,
        );
        idleSince = performance.now();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(
    () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, answered: () => answered, closedOnRequest: () => closedOnRequest };
}

it("sends a read again on a new connection when the site closes the kept-alive one, even with no retry time budget", async () => {
  const site = await closingSite(30);
  const client = new ShotGridClient({ siteUrl: site.url, scriptName: "ka", scriptKey: "ka-key-0123456789", maxRetryTimeMs: 0 });
  cleanups.unshift(() => client.close());
  for (let i = 0; i < 4; i++) {
    expect((await client.getEntity("Shot", 1))?.id).toBe(1);
    // Idle long enough for the site to close the connection as the next request arrives.
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(site.closedOnRequest()).toBeGreaterThanOrEqual(3);
  expect(site.answered()).toBe(5); // the token and four reads
});

it("adds nothing per request to a long-lived caller signal", async () => {
  const site = await closingSite(60_000);
  const client = new ShotGridClient({ siteUrl: site.url, scriptName: "ka", scriptKey: "ka-key-0123456789" });
  cleanups.unshift(() => client.close());
  const longLived = new AbortController().signal;
  for (let i = 0; i < 20; i++) expect((await client.getEntity("Shot", 1, { signal: longLived }))?.id).toBe(1);
  // Node keeps, on a signal passed to AbortSignal.any, a set of the signals derived from it,
  // which only grows; no listener is left behind either.
  const dependants = Object.getOwnPropertySymbols(longLived).find((s) => s.description === "kDependantSignals");
  const derived = dependants ? ((longLived as unknown as Record<symbol, Set<unknown> | undefined>)[dependants]?.size ?? 0) : 0;
  expect(derived).toBe(0);
  expect(getEventListeners(longLived, "abort")).toHaveLength(0);
});
