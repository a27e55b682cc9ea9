/**
 * Authentication: one token shared by all callers, refreshed before expiry and once on 401, bad
 * credentials reported as AuthError, and no secret in any error message or log line.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { AuthError, ShotGridClient, type ShotGridClientOptions } from "../src/shotgrid/index.ts";

const KEY = "auth-test-key-0123456789abcdef";
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function site(options: Parameters<typeof startSimulator>[0] = {}): Promise<SimulatorHandle> {
  const s = await startSimulator({ scriptName: "auth", scriptKey: KEY, ...options });
  cleanups.push(() => s.close());
  return s;
}

function client(s: { url: string }, extra: Partial<ShotGridClientOptions> = {}): ShotGridClient {
  const c = new ShotGridClient({ siteUrl: s.url, scriptName: "auth", scriptKey: KEY, retryBaseDelayMs: 5, ...extra });
  cleanups.unshift(() => c.close()); // clients close before their site
  return c;
}

/** Every string an error carries: message, details, causes. */
function errorText(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; e && i < 5; i++) {
    if (e instanceof Error) parts.push(e.name, e.message, String(e), JSON.stringify(e));
    if (typeof e === "object" && e && "details" in e) parts.push(JSON.stringify((e as { details: unknown }).details));
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join("\n");
}

describe("access token", () => {
  it("is fetched once for many concurrent and later callers", async () => {
    const s = await site({ knobs: { latencyMs: 20 } });
    const c = client(s);
    await Promise.all(Array.from({ length: 20 }, (_, i) => c.getEntity("Shot", (i % 5) + 1, { fields: ["code"] })));
    for (let i = 0; i < 5; i++) await c.search("Project", { fields: ["name"] });
    expect(s.stats.authRequests).toBe(1);
    expect(c.tokenFetches).toBe(1);
  });

  it("is replaced before it expires, so a long run never meets a 401", async () => {
    const s = await site({ tokenLifetimeS: 1 });
    const c = client(s);
    let reads = 0;
    const until = Date.now() + 4000;
    while (s.tokensIssued() < 3 && Date.now() < until) {
      await c.getEntity("Shot", 1, { fields: ["code"] });
      reads++;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(s.tokensIssued()).toBeGreaterThanOrEqual(3);
    // Every request was either a read that succeeded or a token fetch: no request met a 401.
    expect(s.stats.requests).toBe(reads + s.stats.authRequests);
  });

  it("is replaced within the refresh margin, before the site would refuse it", async () => {
    let now = Date.parse("2024-03-01T00:00:00Z");
    const s = await site({ tokenLifetimeS: 600, now: () => now });
    const c = client(s, { tokenRefreshMarginMs: 60_000, now: () => now });
    await c.getEntity("Shot", 1);
    now += 539_000; // 61 s left: still outside the margin
    await c.getEntity("Shot", 1);
    expect(s.tokensIssued()).toBe(1);
    now += 2_000; // 59 s left: inside the margin, the site would still accept the old token
    await c.getEntity("Shot", 1);
    expect(s.tokensIssued()).toBe(2);
    now += 600_000; // the first token is long dead; the second has 1 s left, inside the margin
    await c.getEntity("Shot", 1);
    expect(s.tokensIssued()).toBe(3);
    expect(s.stats.requests).toBe(4 + s.stats.authRequests); // no 401 anywhere
  });

  it("is fetched again once when the site refuses it, however many callers hit the 401", async () => {
    const s = await site();
    const c = client(s);
    await c.getEntity("Shot", 1);
    s.expireTokens();
    const results = await Promise.all(Array.from({ length: 10 }, () => c.getEntity("Shot", 1, { fields: ["code"] })));
    expect(results.every((r) => r?.id === 1)).toBe(true);
    expect(s.stats.authRequests).toBe(2);
  });

  it("reports bad credentials as AuthError with ShotGrid's code, without the key", async () => {
    const s = await site();
    const c = new ShotGridClient({ siteUrl: s.url, scriptName: "auth", scriptKey: "wrong-key-9876543210" });
    cleanups.unshift(() => c.close());
    const err = await c.getEntity("Shot", 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).shotgridCode).toBe(102);
    expect(s.stats.authRequests).toBe(1); // 4xx: not retried
    expect(errorText(err)).not.toContain("wrong-key-9876543210");
  });
});

/** A stub site that issues known tokens and refuses every one with 401, to see what leaks. */
async function refusingSite(): Promise<{ url: string; tokens: string[]; authorizations: string[] }> {
  const tokens: string[] = [];
  const authorizations: string[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      if (req.url?.endsWith("/auth/access_token")) {
        const token = `stub-token-${tokens.length}-${Math.random().toString(36).slice(2)}`;
        tokens.push(token);
        res.end(JSON.stringify({ token_type: "Bearer", access_token: token, expires_in: 600, refresh_token: `refresh-${token}` }));
        return;
      }
      authorizations.push(String(req.headers.authorization));
      res.statusCode = 401;
      // A careless site echoing the token back: the client must not pass it on.
      res.end(JSON.stringify({ errors: [{ status: 401, code: 102, title: "Unauthorized", detail: `token ${String(req.headers.authorization)} refused` }] }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(() => new Promise((r) => server.close(() => r())));
  server.unref();
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tokens, authorizations };
}

describe("secrets", () => {
  it("refreshes once on 401, then gives AuthError", async () => {
    const stub = await refusingSite();
    const c = client(stub);
    const err = await c.getEntity("Shot", 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect(stub.tokens).toHaveLength(2);
    expect(stub.authorizations).toEqual(stub.tokens.map((t) => `Bearer ${t}`));
  });

  it("never puts the script key or a token in an error message or a log line", async () => {
    const lines: string[] = [];
    const logger = {
      debug: (o: object, m?: string) => lines.push(JSON.stringify(o) + (m ?? "")),
      info: (o: object, m?: string) => lines.push(JSON.stringify(o) + (m ?? "")),
      warn: (o: object, m?: string) => lines.push(JSON.stringify(o) + (m ?? "")),
      error: (o: object, m?: string) => lines.push(JSON.stringify(o) + (m ?? "")),
    };
    const texts: string[] = [];
    const provoke = async (p: Promise<unknown>) => texts.push(errorText(await p.then(() => new Error("no error")).catch((e: unknown) => e)));

    const stub = await refusingSite();
    const c1 = client(stub, { logger });
    await provoke(c1.getEntity("Shot", 1));
    await provoke(c1.create("Shot", { code: "x" }));

    const s = await site();
    const c2 = client(s, { logger, maxRetries: 1 });
    await c2.getEntity("Shot", 1);
    await provoke(c2.getEntity("Nope", 1));
    await provoke(c2.search("Shot", { filters: [["nope", "is", 1]] }));
    s.knobs.injectMalformed("truncated-json");
    await provoke(c2.getEntity("Shot", 1));
    s.knobs.setOutage(60_000, "503");
    await provoke(c2.getEntity("Shot", 1));
    s.knobs.setOutage(60_000, "reset");
    await provoke(c2.getEntity("Shot", 1));
    s.knobs.endOutage();
    s.expireTokens();
    await c2.getEntity("Shot", 1);
    const c3 = new ShotGridClient({ siteUrl: s.url, scriptName: "auth", scriptKey: `${KEY}-bad`, logger });
    cleanups.unshift(() => c3.close());
    await provoke(c3.getEntity("Shot", 1));

    expect(texts.length).toBe(8);
    expect(texts.every((t) => !t.includes("no error"))).toBe(true);
    expect(lines.length).toBeGreaterThan(0);
    const all = [...texts, ...lines].join("\n");
    expect(all).not.toContain(KEY);
    for (const t of stub.tokens) expect(all).not.toContain(t);
    expect(all).not.toMatch(/Bearer (?!\[redacted\])/);
    expect(all).toContain("[redacted]"); // the stub echoed a token: it was caught
    // The simulator's tokens are JWT-shaped.
    expect(all).not.toMatch(/eyJ[\w-]+\.[\w-]{20,}\.[\w-]{20,}/);
  });
});
