/**
 * h2load (nghttp2's native load generator), when it is installed: the one generator that loads
 * HTTP/1.1 and HTTP/2 alike at a cost per request far below the server's. The JS generators are
 * not alike: node:http2's client spends ~2.3× the CPU per request of undici's HTTP/1.1 client
 * (58 µs against 25 µs, measured on the 2-core bench machine), so on 2 cores an HTTP/2 point
 * measured with it is bounded by the generator, not the server (a bare node:http2 server
 * answering gRPC-shaped bytes reached only ~0.35× a bare node:http server that way). HTTP/2 is
 * therefore compared with HTTP/1.1 through h2load, in one run.
 *
 * h2load sees HTTP status codes, not gRPC's trailers: each request shape is checked once with a
 * full client (`checkOnce`) before it is loaded.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RequestShape } from "./load-types.ts";

export interface H2loadResult {
  rps: number;
  /** Requests that did not succeed (not 2xx, failed, errored, timed out). */
  errors: number;
  requests: number;
  meanLatencyMs: number;
}

/** The h2load command when it answers `--version`, else undefined. */
export function findH2load(): string | undefined {
  const r = spawnSync("h2load", ["--version"], { encoding: "utf8" });
  return r.status === 0 && /nghttp2/.test(r.stdout) ? "h2load" : undefined;
}

/** Load `origin` with `request` over `connections` connections, one request in flight each. */
export async function runH2load(arg: {
  origin: string;
  request: RequestShape;
  transport: "h1" | "h2";
  connections: number;
  warmupMs: number;
  durationMs: number;
}): Promise<H2loadResult> {
  const dir = mkdtempSync(join(tmpdir(), "bench-h2load-"));
  try {
    const args = ["-c", String(arg.connections), "-m", "1", "-D", `${Math.round(arg.durationMs)}ms`, `--warm-up-time=${Math.round(arg.warmupMs)}ms`];
    if (arg.transport === "h1") args.push("--h1");
    if (arg.request.body !== undefined) {
      const file = join(dir, "body");
      writeFileSync(file, Buffer.from(arg.request.body, "base64"));
      args.push("-d", file);
    }
    for (const [name, value] of Object.entries(arg.request.headers)) args.push("-H", `${name}: ${value}`);
    args.push(arg.origin + arg.request.path);
    const out = await new Promise<string>((resolve, reject) => {
      const proc = spawn("h2load", args, { stdio: ["ignore", "pipe", "pipe"] });
      let text = "";
      proc.stdout.on("data", (c: Buffer) => (text += c.toString("utf8")));
      proc.stderr.on("data", (c: Buffer) => (text += c.toString("utf8")));
      proc.on("error", reject);
      proc.on("close", (code) => (code === 0 ? resolve(text) : reject(new Error(`h2load exited with ${code}: ${text.slice(-500)}`))));
    });
    const rps = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
    const req = /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
    const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
    const latency = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(out);
    if (!rps || !req || !codes) throw new Error(`h2load: unexpected output: ${out.slice(-500)}`);
    const notOk = Number(codes[2]) + Number(codes[3]) + Number(codes[4]);
    const scale = latency?.[2] === "us" ? 1e-3 : latency?.[2] === "s" ? 1e3 : 1;
    return {
      rps: Number(rps[1]),
      requests: Number(req[1]),
      errors: Number(req[3]) + Number(req[4]) + Number(req[5]) + notOk,
      meanLatencyMs: latency ? Number(latency[1]) * scale : Number.NaN,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Send `request` once over HTTP/2; throws unless it is answered 200 (and gRPC status 0 when `grpc`). */
export async function checkOnceH2(origin: string, request: RequestShape, grpc: boolean): Promise<void> {
  const session = http2.connect(origin);
  try {
    await new Promise<void>((resolve, reject) => {
      const stream = session.request({ ":method": request.method, ":path": request.path, ...request.headers }, { endStream: request.body === undefined });
      let status = 0;
      let grpcStatus: unknown;
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        grpcStatus ??= h["grpc-status"];
      });
      stream.on("trailers", (h) => (grpcStatus = h["grpc-status"]));
      stream.on("data", () => undefined);
      stream.on("error", reject);
      stream.on("close", () =>
        status === 200 && (!grpc || grpcStatus === "0") ? resolve() : reject(new Error(`${request.path}: HTTP ${status}, grpc-status ${String(grpcStatus)}`)),
      );
      if (request.body !== undefined) stream.end(Buffer.from(request.body, "base64"));
    });
  } finally {
    session.close();
  }
}
