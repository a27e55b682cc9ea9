/**
 * Writes are never retried blindly. Against a small raw HTTP server that counts requests: a write
 * the server received and then reset, half answered, stalled past the timeout or answered with a
 * gateway's 502 is sent once and fails with WriteOutcomeUnknownError ("the write may have
 * happened"), while a read meeting the same keeps its retries; a write to a refused port (nothing
 * sent) is retried and goes through once the port answers, or fails saying it was not made.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Logger } from "../src/logging/index.ts";
import { classifyFailure, isRetryable, writeOutcomeUnknown } from "../src/shotgrid/retry.ts";
import { ShotGridClient, TimeoutError, UnavailableError, WriteOutcomeUnknownError, type ShotGridClientOptions } from "../src/shotgrid/index.ts";

type Mode = "ok" | "reset" | "half" | "stall" | "502";

interface RawSite {
  url: string;
  port: number;
  mode: Mode;
  /** Requests received per `METHOD /path` (query left out), token requests included. */
  counts: Map<string, number>;
  /** Every token request as received: its URL and form body. */
  grants: Array<{ url: string; form: URLSearchParams }>;
  listen(): Promise<void>;
  /** Stop listening and drop every open connection: the port now refuses. */
  shut(): Promise<void>;
  /** shut(), then give the client's pool time to see its kept-alive connection close. */
  refuse(): Promise<void>;
}

const RECORD = { type: "Shot", id: 7, attributes: { code: "RAW" }, relationships: {}, links: {} };

async function rawSite(): Promise<RawSite> {
  const sockets = new Set<Socket>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const key = `${req.method} ${(req.url ?? "").split("?")[0]}`;
      site.counts.set(key, (site.counts.get(key) ?? 0) + 1);
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (key.endsWith("/auth/access_token")) site.grants.push({ url: req.url ?? "", form: new URLSearchParams(Buffer.concat(chunks).toString("utf8")) });
      if (key.endsWith("/auth/access_token")) return json(200, { token_type: "Bearer", access_token: "raw-token-0123456789", expires_in: 600 });
      switch (site.mode) {
        case "ok":
          return req.method === "DELETE"
            ? (res.writeHead(204), res.end())
            : json(key.endsWith("_batch") ? 200 : 201, key.endsWith("_batch") ? { data: [RECORD] } : { data: RECORD });
        case "reset":
          return req.socket.destroy();
        case "half":
          // Headers and part of the body, then the connection drops: a reset mid-answer.
          res.writeHead(200, { "content-type": "application/json", "content-length": "200" });
          res.write('{"data":{"type":"Sh');
          setTimeout(() => req.socket.destroy(), 10);
          return;
        case "stall":
          return; // never answers; the client's timeout ends it
        case "502":
          res.writeHead(502, { "content-type": "text/html" });
          return res.end("<html><body>502 Bad Gateway</body></html>");
      }
    });
  };
  let server: Server = createServer(handle);
  const track = (s: Server) => s.on("connection", (c: Socket) => (sockets.add(c), c.on("close", () => sockets.delete(c))));
  track(server);
  const site: RawSite = {
    url: "",
    port: 0,
    mode: "ok",
    counts: new Map(),
    grants: [],
    listen: () =>
      new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(site.port, "127.0.0.1", () => {
          site.port = (server.address() as AddressInfo).port;
          site.url = `http://127.0.0.1:${site.port}`;
          resolve();
        });
      }),
    refuse: async () => {
      await site.shut();
      await new Promise((r) => setTimeout(r, 50));
    },
    shut: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          server = createServer(handle);
          track(server);
          resolve();
        });
      }),
  };
  await site.listen();
  return site;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

let site: RawSite;
beforeEach(async () => {
  site = await rawSite();
  cleanups.push(() => site.shut());
});

/** A client with its token already fetched, fast retries, and its log lines kept. */
async function client(extra: Partial<ShotGridClientOptions> = {}): Promise<{ c: ShotGridClient; log: string[] }> {
  const log: string[] = [];
  const logger: Logger = {
    debug: () => undefined,
    info: (o, m) => log.push(`${m} ${JSON.stringify(o)}`),
    warn: (o, m) => log.push(`${m} ${JSON.stringify(o)}`),
    error: (o, m) => log.push(`${m} ${JSON.stringify(o)}`),
  };
  const c = new ShotGridClient({
    siteUrl: site.url,
    scriptName: "raw",
    scriptKey: "raw-key-0123456789",
    maxRetries: 3,
    retryBaseDelayMs: 1,
    retryMaxDelayMs: 5,
    logger,
    ...extra,
  });
  cleanups.push(() => c.close());
  await c.getEntity("Shot", 7);
  site.counts.clear();
  return { c, log };
}

const count = (key: string) => site.counts.get(key) ?? 0;

async function outcomeUnknown(p: Promise<unknown>): Promise<WriteOutcomeUnknownError> {
  const err = await p.then(
    () => new Error("expected a failure"),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WriteOutcomeUnknownError);
  expect(err).toBeInstanceOf(UnavailableError);
  const e = err as WriteOutcomeUnknownError;
  expect(e.code).toBe("SG_WRITE_OUTCOME_UNKNOWN");
  expect(e.message).toMatch(/the write may have happened; check before retrying$/);
  expect(e.message).not.toContain("raw-key-0123456789");
  expect(e.message).not.toContain("raw-token-0123456789");
  return e;
}

describe("a write whose outcome is unknown is sent once", () => {
  it("when the connection is reset after the site received it; a read is retried", async () => {
    const { c } = await client();
    site.mode = "reset";
    const e = await outcomeUnknown(c.create("Shot", { code: "X" }));
    expect(e.message).toMatch(/^POST \/api\/v1\.1\/entity\/Shot: the connection broke after the request was sent \(\w+\)/);
    expect(count("POST /api/v1.1/entity/Shot")).toBe(1);
    await expect(c.getEntity("Shot", 7)).rejects.toBeInstanceOf(UnavailableError);
    expect(count("GET /api/v1.1/entity/Shot/7")).toBe(4);
  });

  it("when the answer breaks off half way", async () => {
    const { c } = await client();
    site.mode = "half";
    await outcomeUnknown(c.update("Shot", 7, { code: "Y" }));
    expect(count("PUT /api/v1.1/entity/Shot/7")).toBe(1);
  });

  it("when the site stalls past the request timeout", async () => {
    const { c } = await client({ requestTimeoutMs: 300 });
    site.mode = "stall";
    const e = await outcomeUnknown(c.delete("Shot", 7));
    expect(e.message).toContain("no complete answer within 300 ms");
    expect(count("DELETE /api/v1.1/entity/Shot/7")).toBe(1);
  });

  it("when a gateway answers 502 to a batch", async () => {
    const { c } = await client();
    site.mode = "502";
    const e = await outcomeUnknown(c.batch([{ requestType: "create", entityType: "Shot", data: { code: "Z" } }]));
    expect(e.status).toBe(502);
    expect(count("POST /api/v1.1/entity/_batch")).toBe(1);
  });

  it("when the caller aborts it in flight, the abort says so", async () => {
    const { c } = await client();
    site.mode = "stall";
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const err = (await c.revive("Shot", 7, { signal: ac.signal }).catch((e: unknown) => e)) as Error;
    expect((err as { code?: string }).code).toBe("SG_ABORTED");
    expect((err as Error).message).toContain("the write may have happened");
    expect(count("POST /api/v1.1/entity/Shot/7")).toBe(1);
  });
});

describe("a write that was not sent", () => {
  it("is retried until the refused port answers, and made once", async () => {
    const { c, log } = await client({ maxRetries: 50, retryBaseDelayMs: 20, retryMaxDelayMs: 20, maxRetryTimeMs: 10_000 });
    await site.refuse();
    let reopened: Promise<void> | undefined;
    const retried = () => log.filter((l) => l.startsWith("shotgrid: transient failure, retrying") && l.includes("POST /api/v1.1/entity/Shot")).length;
    const watch = setInterval(() => {
      if (!reopened && retried() >= 2) reopened = site.listen();
    }, 5);
    try {
      const made = await c.create("Shot", { code: "AFTER_REFUSED" });
      expect(made.id).toBe(7);
    } finally {
      clearInterval(watch);
    }
    expect(retried()).toBeGreaterThanOrEqual(2);
    expect(log.filter((l) => l.includes("ECONNREFUSED")).length).toBe(retried());
    expect(count("POST /api/v1.1/entity/Shot")).toBe(1);
  });

  it("fails, after its retries, saying the write was not made", async () => {
    const { c, log } = await client({ maxRetries: 2 });
    await site.refuse();
    const err = (await c.update("Shot", 7, { code: "never" }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(UnavailableError);
    expect(err).not.toBeInstanceOf(WriteOutcomeUnknownError);
    expect((err as UnavailableError).code).toBe("SG_UNAVAILABLE");
    expect(err.message).toBe("PUT /api/v1.1/entity/Shot/7: cannot reach ShotGrid (ECONNREFUSED) after 3 attempts; the write was not made");
    expect(log.filter((l) => l.startsWith("shotgrid: transient failure, retrying")).length).toBe(2);
  });
});

describe("one classification for reads and writes", () => {
  const err = (code: string) => Object.assign(new Error(code), { code });
  it("tells not-sent from in-doubt failures, and each side repeats only what it may", () => {
    const cases: Array<[{ status?: number; error?: unknown }, string, boolean, boolean, boolean]> = [
      // failure, class, read retried, write retried, write outcome unknown
      [{ error: err("ECONNREFUSED") }, "not-sent", true, true, false],
      [{ error: Object.assign(new Error("wrapped"), { cause: err("UND_ERR_CONNECT_TIMEOUT") }) }, "not-sent", true, true, false],
      [{ error: err("ENOTFOUND") }, "not-sent", true, true, false],
      [{ status: 503 }, "refused", true, true, false],
      [{ error: err("ECONNRESET") }, "broken", true, false, true],
      [{ error: err("UND_ERR_SOCKET") }, "broken", true, false, true],
      [{ status: 502 }, "broken", true, false, true],
      [{ status: 504 }, "broken", true, false, true],
      [{ error: new TimeoutError("slow") }, "timed-out", false, false, true],
      [{ error: new Error("odd") }, "unknown", false, false, true],
      [{ status: 400 }, "answered", false, false, false],
      [{ status: 500 }, "answered", false, false, false],
    ];
    for (const [failure, cls, read, write, unknown] of cases) {
      expect([classifyFailure(failure), isRetryable(failure, true), isRetryable(failure, false), writeOutcomeUnknown(failure)]).toEqual([
        cls,
        read,
        write,
        unknown,
      ]);
    }
  });
});

describe("the token request of each identity", () => {
  it("carries the grant and the sudo scope in the form body only", async () => {
    const { c } = await client();
    site.grants.length = 0;
    await c.delete("Shot", 7, { asLogin: "jane.doe" });
    await c.delete("Shot", 7, { credentials: { scriptName: "tool", scriptKey: "tool-key-0123456789" } });
    await c.delete("Shot", 7, { credentials: { login: "sam", password: "sam-password-0123" }, asLogin: "jane.doe" });
    await c.delete("Shot", 7, { credentials: { sessionToken: "session-0123456789" } });
    const forms = site.grants.map((g) => Object.fromEntries(g.form));
    expect(forms).toEqual([
      { grant_type: "client_credentials", client_id: "raw", client_secret: "raw-key-0123456789", scope: "sudo_as_login:jane.doe" },
      { grant_type: "client_credentials", client_id: "tool", client_secret: "tool-key-0123456789" },
      { grant_type: "password", username: "sam", password: "sam-password-0123", scope: "sudo_as_login:jane.doe" },
      { grant_type: "session_token", session_token: "session-0123456789" },
    ]);
    expect(site.grants.every((g) => g.url === "/api/v1.1/auth/access_token")).toBe(true);
    // Each identity's token is reused: a second round fetches none.
    await c.delete("Shot", 7, { asLogin: "jane.doe" });
    await c.delete("Shot", 7, { credentials: { sessionToken: "session-0123456789" } });
    expect(site.grants).toHaveLength(4);
  });
});
