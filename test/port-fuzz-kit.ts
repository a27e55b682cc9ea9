/**
 * Parts of the port fuzz test (test/port-fuzz.test.ts): the service in a child process (a crash
 * is its exit, not a test-runner crash), raw HTTP/1.1 and HTTP/2 exchanges that tolerate any
 * answer or none, a seeded random source and envelope helpers.
 */
import { spawn, type ChildProcess } from "node:child_process";
import http2 from "node:http2";
import net from "node:net";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../bin/shotgrid-cache.mjs", import.meta.url));
/** The child serves the webhook route with this secret, so the fuzz can sign some bodies. */
export const WEBHOOK_SECRET = "fuzz-secret";

export interface Child {
  port: number;
  /** Set once the process exited: how it ended. */
  exited(): string | undefined;
  /** Everything the process wrote on stderr and stdout so far. */
  output(): string;
  stop(): Promise<void>;
}

/** `serve` in demo mode on free ports; resolves once `/readyz` answers 200. */
export async function startServiceChild(timeoutMs = 20_000): Promise<Child> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      BIN,
      "serve",
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--demo-site-port",
      "0",
      "--log-level",
      "error",
      "--heartbeat-s",
      "1",
      "--webhook-secret",
      WEBHOOK_SECRET,
    ],
    {
      env: { PATH: process.env["PATH"] ?? "" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  let exit: string | undefined;
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exit = `exit code ${code} signal ${signal}`;
      resolve();
    }),
  );
  const deadline = Date.now() + timeoutMs;
  let port = 0;
  while (Date.now() < deadline && exit === undefined) {
    const m = /cache service:\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
    if (m) port = Number(m[1]);
    if (port && (await rawExchange(port, Buffer.from("GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 1000)).status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!port || exit !== undefined || Date.now() >= deadline) {
    child.kill("SIGKILL");
    throw new Error(`the service child did not get ready (${exit ?? "timeout"}): ${out}`);
  }
  return {
    port,
    exited: () => exit,
    output: () => out,
    async stop() {
      if (exit === undefined) child.kill("SIGKILL");
      await exited;
    },
  };
}

export interface RawAnswer {
  /** 0 when no status line came back (closed, reset, or the wait ran out). */
  status: number;
  /** Header and body text, as received (latin1). */
  text: string;
  /** How the exchange ended. */
  end: "closed" | "timeout" | "error";
}

/**
 * Write `bytes` on a fresh connection (in `pieces` writes, optionally half-closing or destroying
 * after), collect whatever comes back until the server closes or `waitMs` passes.
 */
export function rawExchange(
  port: number,
  bytes: Buffer,
  waitMs: number,
  opts: { pieces?: number; after?: "keep" | "half-close" | "destroy" } = {},
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (end: RawAnswer["end"]) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text, end });
    };
    const timer = setTimeout(() => finish("timeout"), waitMs);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("close", () => finish("closed"));
    socket.on("error", () => finish("error"));
    socket.on("connect", () => {
      const pieces = Math.max(1, opts.pieces ?? 1);
      const size = Math.ceil(bytes.length / pieces) || 1;
      for (let i = 0; i < bytes.length; i += size) socket.write(bytes.subarray(i, i + size));
      if (opts.after === "half-close") socket.end();
      else if (opts.after === "destroy") finish("closed");
    });
  });
}

export interface H2Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  trailers: Record<string, string | string[] | undefined>;
  body: Buffer;
  end: "ended" | "timeout" | "error";
}

/** One HTTP/2 request on its own session; whatever happens, resolves within `waitMs`. */
export function h2Exchange(
  port: number,
  headers: Record<string, string>,
  body: Buffer | undefined,
  waitMs: number,
  opts: { cancelAfterMs?: number } = {},
): Promise<H2Answer> {
  return new Promise((resolve) => {
    const answer: H2Answer = { status: 0, headers: {}, trailers: {}, body: Buffer.alloc(0), end: "timeout" };
    const chunks: Buffer[] = [];
    let done = false;
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const finish = (end: H2Answer["end"]) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      answer.end = end;
      answer.body = Buffer.concat(chunks);
      session.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish("timeout"), waitMs);
    session.on("error", () => finish("error"));
    const stream = session.request({ ":method": "POST", ...headers }, { endStream: body === undefined });
    stream.on("response", (h) => {
      answer.status = Number(h[":status"]);
      answer.headers = h;
    });
    stream.on("trailers", (t) => (answer.trailers = t));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => finish("ended"));
    stream.on("close", () => finish(answer.status ? "ended" : "error"));
    stream.on("error", () => finish("error"));
    if (body !== undefined) stream.end(body);
    if (opts.cancelAfterMs !== undefined) setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), opts.cancelAfterMs);
  });
}

/** A small, fast, seeded PRNG (mulberry32): the same seed gives the same inputs every run. */
export function seededRandom(seed: number): { int(n: number): number; pick<T>(items: readonly T[]): T; chance(p: number): boolean; bytes(n: number): Buffer } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    int,
    pick: (items) => items[int(items.length)]!,
    chance: (p) => next() < p,
    bytes: (n) => Buffer.from(Array.from({ length: n }, () => int(256))),
  };
}

/** A Connect/gRPC envelope: flags, a 4-byte big-endian length (or a wrong one), the data. */
export function envelope(data: Buffer, flags = 0, length = data.length): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(length >>> 0, 1);
  return Buffer.concat([head, data]);
}

/**
 * An HTTP/1.1 request's bytes, with a content-length or chunked body. `line` changes the request
 * line's version or the Host header (null: none), for requests connect-node cannot make a URL of.
 */
export function h1Request(
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  framing: "length" | "chunked" | "none" = "length",
  line: { version?: "1.0" | "1.1"; host?: string | null } = {},
): Buffer {
  const host = line.host === undefined ? "fuzz" : line.host;
  const lines = [`${method} ${path} HTTP/${line.version ?? "1.1"}`, ...(host === null ? [] : [`Host: ${host}`])];
  lines.push(...Object.entries(headers).map(([k, v]) => `${k}: ${v}`));
  if (body && framing === "length") lines.push(`Content-Length: ${body.length}`);
  if (body && framing === "chunked") lines.push("Transfer-Encoding: chunked");
  const head = Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
  if (!body || framing === "none") return body ? Buffer.concat([head, body]) : head;
  if (framing === "length") return Buffer.concat([head, body]);
  const parts: Buffer[] = [head];
  const size = 64 * 1024;
  for (let i = 0; i < body.length; i += size) {
    const piece = body.subarray(i, i + size);
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n"));
  }
  parts.push(Buffer.from("0\r\n\r\n"));
  return Buffer.concat(parts);
}
