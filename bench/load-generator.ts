/**
 * The load generator, in its own process so it never shares an event loop with the server it
 * measures. HTTP/1.1 through undici pools, HTTP/2 (gRPC over h2c) through node:http2 sessions,
 * WatchChanges streams over gRPC. Every loop is bounded by a duration or a count.
 *
 * Commands: `load` (throughput and latency at fixed connections), `sequence` (a fixed list of
 * requests at fixed concurrency, optionally with a ShotGrid token fetched on first use), `burst`
 * (N identical requests at once over N warm connections), `watchOpen`/`watchCollect`.
 */
import http2 from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { Pool } from "undici";
import { WatchChangesResponseSchema } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { serveParent } from "./lib/ipc.ts";
import type { AnswerCheck, LoadResult, LoadSpec, RequestShape } from "./lib/load-types.ts";
import { LatencyRecorder, summarize, wallMs } from "./lib/stats.ts";

interface Prepared {
  method: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
}
const prepare = (r: RequestShape): Prepared => ({
  method: r.method,
  path: r.path,
  headers: r.headers,
  body: r.body === undefined ? undefined : Buffer.from(r.body, "base64"),
});

interface Outcome {
  ok: boolean;
  bytes: number;
  error?: string;
}

/** The gRPC status in the trailer frame (flag 0x80) of a gRPC-web body, if any. */
function grpcWebStatus(body: Buffer): string | undefined {
  let at = 0;
  while (at + 5 <= body.length) {
    const flags = body[at]!;
    const len = body.readUInt32BE(at + 1);
    const frame = body.subarray(at + 5, at + 5 + len);
    if (flags & 0x80) return /grpc-status:\s*(\d+)/i.exec(frame.toString("latin1"))?.[1];
    at += 5 + len;
  }
  return undefined;
}

async function h1Call(pool: Pool, r: Prepared, check: AnswerCheck, extraHeaders?: Record<string, string>): Promise<Outcome> {
  try {
    const res = await pool.request({ method: r.method, path: r.path, headers: extraHeaders ? { ...r.headers, ...extraHeaders } : r.headers, body: r.body });
    const body = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode !== 200) return { ok: false, bytes: body.length, error: `HTTP ${res.statusCode}: ${body.toString("utf8", 0, 200)}` };
    if (check === "grpc-web") {
      const status = grpcWebStatus(body) ?? (res.headers["grpc-status"] as string | undefined);
      if (status !== "0") return { ok: false, bytes: body.length, error: `grpc-status ${status}: ${body.toString("latin1", 0, 200)}` };
    }
    return { ok: true, bytes: body.length };
  } catch (err) {
    return { ok: false, bytes: 0, error: err instanceof Error ? err.message : String(err) };
  }
}

function h2Call(session: http2.ClientHttp2Session, r: Prepared, check: AnswerCheck): Promise<Outcome> {
  return new Promise((resolve) => {
    let status = 0;
    let grpcStatus: string | undefined;
    let grpcMessage: string | undefined;
    let bytes = 0;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({ ":method": r.method, ":path": r.path, ...r.headers });
    } catch (err) {
      return resolve({ ok: false, bytes: 0, error: err instanceof Error ? err.message : String(err) });
    }
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) grpcStatus = String(h["grpc-status"]);
      if (h["grpc-message"] !== undefined) grpcMessage = String(h["grpc-message"]);
    };
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      take(h);
    });
    stream.on("trailers", take);
    stream.on("data", (c: Buffer) => (bytes += c.length));
    stream.on("error", (err) => resolve({ ok: false, bytes, error: err.message }));
    stream.on("close", () =>
      resolve(
        status === 200 && (check !== "grpc" || grpcStatus === "0")
          ? { ok: true, bytes }
          : { ok: false, bytes, error: `HTTP ${status} grpc-status ${grpcStatus} ${grpcMessage ?? ""}` },
      ),
    );
    stream.end(r.body);
  });
}

function connectH2(origin: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    // Large receive windows, as gRPC clients use: with the 64 KiB defaults a session carrying
    // hundreds of busy streams would be throttled by the client rather than by the server.
    const s = http2.connect(origin, { settings: { initialWindowSize: 1 << 20 } });
    s.once("connect", () => {
      s.setLocalWindowSize(32 << 20);
      resolve(s);
    });
    s.once("error", reject);
  });
}

/** Something that can send one request: one HTTP/1.1 pool slot or one HTTP/2 session. */
type Sender = (r: Prepared) => Promise<Outcome>;

async function openSenders(spec: Pick<LoadSpec, "origin" | "transport" | "check" | "connections">): Promise<{ senders: Sender[]; close: () => Promise<void> }> {
  if (spec.transport === "h1") {
    const pool = new Pool(spec.origin, { connections: spec.connections, pipelining: 1, keepAliveTimeout: 60_000 });
    const send: Sender = (r) => h1Call(pool, r, spec.check);
    return { senders: Array.from({ length: spec.connections }, () => send), close: () => pool.close() };
  }
  const sessions = await Promise.all(Array.from({ length: spec.connections }, () => connectH2(spec.origin)));
  return {
    senders: sessions.map((s) => (r: Prepared) => h2Call(s, r, spec.check)),
    close: async () => {
      await Promise.all(sessions.map((s) => new Promise<void>((res) => s.close(() => res()))));
    },
  };
}

/** Every sender loops over the requests until `untilMs` (performance.now()). */
async function runFor(senders: Sender[], requests: Prepared[], untilMs: number, rec: LatencyRecorder | undefined) {
  let errors = 0;
  let firstError: string | undefined;
  let answerBytes = 0;
  await Promise.all(
    senders.map(async (send, i) => {
      let k = i;
      while (performance.now() < untilMs) {
        const r = requests[k++ % requests.length]!;
        const t0 = performance.now();
        const out = await send(r);
        const dt = performance.now() - t0;
        if (!out.ok) {
          errors++;
          firstError ??= out.error;
          continue;
        }
        if (!answerBytes) answerBytes = out.bytes;
        rec?.record(dt);
      }
    }),
  );
  return { errors, firstError, answerBytes };
}

async function load(spec: LoadSpec): Promise<LoadResult> {
  const requests = spec.requests.map(prepare);
  const { senders, close } = await openSenders(spec);
  try {
    await runFor(senders, requests, performance.now() + spec.warmupMs, undefined);
    const rec = new LatencyRecorder();
    const began = performance.now();
    const out = await runFor(senders, requests, began + spec.durationMs, rec);
    const elapsedMs = performance.now() - began;
    return {
      requests: rec.count,
      errors: out.errors,
      firstError: out.firstError,
      elapsedMs,
      rps: (rec.count / elapsedMs) * 1000,
      latency: summarize(rec),
      answerBytes: out.answerBytes,
    };
  } finally {
    await close();
  }
}

/** `requests` each sent once, `concurrency` at a time; with `token`, a ShotGrid token is fetched on first use and sent as a bearer. */
async function sequence(arg: {
  origin: string;
  check: AnswerCheck;
  concurrency: number;
  requests: RequestShape[];
  token?: { path: string; form: string };
  /** Sent first on the same connections, not timed: the measured requests find them open (as a running tool's are). */
  warmup?: RequestShape[];
}) {
  const requests = arg.requests.map(prepare);
  const pool = new Pool(arg.origin, { connections: arg.concurrency, pipelining: 1 });
  if (arg.warmup) {
    const warm = arg.warmup.map(prepare);
    let at = 0;
    await Promise.all(
      Array.from({ length: arg.concurrency }, async () => {
        while (at < warm.length) await h1Call(pool, warm[at++]!, arg.check);
      }),
    );
  }
  let token: Promise<string> | undefined;
  const getToken = (): Promise<string> =>
    (token ??= (async () => {
      const res = await pool.request({
        method: "POST",
        path: arg.token!.path,
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: arg.token!.form,
      });
      const json = (await res.body.json()) as { access_token?: string };
      if (!json.access_token) throw new Error(`token: HTTP ${res.statusCode}`);
      return json.access_token;
    })());
  const rec = new LatencyRecorder(requests.length);
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const began = performance.now();
  await Promise.all(
    Array.from({ length: arg.concurrency }, async () => {
      while (next < requests.length) {
        const r = requests[next++]!;
        const t0 = performance.now();
        const auth = arg.token ? { authorization: `Bearer ${await getToken()}` } : undefined;
        const out = await h1Call(pool, r, arg.check, auth);
        if (!out.ok) {
          errors++;
          firstError ??= out.error;
        } else rec.record(performance.now() - t0);
      }
    }),
  );
  const ended = performance.now();
  await pool.close();
  // The measured span on the wall clock, so that another process's events (the server's GC
  // pauses) can be placed in it: both processes' timeOrigin + now() read the same clock.
  const window = { fromMs: performance.timeOrigin + began, toMs: performance.timeOrigin + ended };
  return { requests: rec.count, errors, firstError, elapsedMs: ended - began, latency: summarize(rec), window };
}

/** `n` copies of one request at the same moment over `n` already-open connections. */
async function burst(arg: { origin: string; n: number; request: RequestShape; warmPath: string; check: AnswerCheck }) {
  const r = prepare(arg.request);
  const pool = new Pool(arg.origin, { connections: arg.n, pipelining: 1, keepAliveTimeout: 60_000, connectTimeout: 30_000 });
  try {
    // Open every connection first: the burst measures the service, not the kernel's accept queue.
    const warm = { method: "GET" as const, path: arg.warmPath, headers: {}, body: undefined };
    const warmed = await Promise.all(Array.from({ length: arg.n }, () => h1Call(pool, warm, "http-200")));
    const warmErrors = warmed.filter((o) => !o.ok).length;
    const rec = new LatencyRecorder(arg.n);
    let errors = 0;
    let firstError: string | undefined;
    const began = performance.now();
    await Promise.all(
      Array.from({ length: arg.n }, async () => {
        const out = await h1Call(pool, r, arg.check);
        if (out.ok) rec.record(performance.now() - began);
        else {
          errors++;
          firstError ??= out.error;
        }
      }),
    );
    const lastMs = performance.now() - began;
    return { n: arg.n, ok: rec.count, errors, firstError, warmErrors, connected: pool.stats.connected, lastMs, latency: summarize(rec) };
  } finally {
    await pool.close();
  }
}

// ---- WatchChanges subscribers -----------------------------------------------------------------

interface Watch {
  sessions: http2.ClientHttp2Session[];
  streams: http2.ClientHttp2Stream[];
  /**
   * Per delivered change: its message bytes and wall-clock receipt time. Decoded only when
   * collected: decoding 100,000 messages a second as they arrive would keep this process busy
   * and stamp later streams' deliveries late, charging the load generator's time to the server.
   */
  changes: Buffer[];
  receivedAt: number[];
  resyncs: number;
  heartbeats: number;
  errors: number;
  opened: number;
}
let watch: Watch | undefined;

/** The first byte of a WatchChangesResponse of each case: `change = 1`, `heartbeat = 2`, `resync = 3`, all messages. */
const CHANGE_TAG = (1 << 3) | 2;
const HEARTBEAT_TAG = (2 << 3) | 2;
const RESYNC_TAG = (3 << 3) | 2;

/** Open `subscribers` gRPC WatchChanges streams over `sessions` HTTP/2 connections. */
async function watchOpen(arg: { origin: string; subscribers: number; sessions: number; request: RequestShape; openTimeoutMs: number }) {
  if (watch) throw new Error("watchOpen: streams already open");
  const r = prepare(arg.request);
  const sessions = await Promise.all(Array.from({ length: arg.sessions }, () => connectH2(arg.origin)));
  const w: Watch = { sessions, streams: [], changes: [], receivedAt: [], resyncs: 0, heartbeats: 0, errors: 0, opened: 0 };
  watch = w;
  let opened!: () => void;
  const allOpen = new Promise<void>((res) => (opened = res));
  for (let i = 0; i < arg.subscribers; i++) {
    const stream = sessions[i % sessions.length]!.request({ ":method": "POST", ":path": r.path, ...r.headers });
    let buf: Buffer = Buffer.alloc(0);
    let counted = false;
    const markOpen = () => {
      if (counted) return;
      counted = true;
      if (++w.opened === arg.subscribers) opened();
    };
    stream.on("response", markOpen);
    stream.on("data", (chunk: Buffer) => {
      const now = wallMs();
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 5) {
        const len = buf.readUInt32BE(1);
        if (buf.length < 5 + len) break;
        const data = buf.subarray(5, 5 + len);
        buf = buf.subarray(5 + len);
        // The oneof case from the first tag byte (field number << 3 | length-delimited).
        if (data[0] === CHANGE_TAG) {
          w.changes.push(data);
          w.receivedAt.push(now);
        } else if (data[0] === RESYNC_TAG) w.resyncs++;
        else if (data[0] === HEARTBEAT_TAG) w.heartbeats++;
      }
    });
    stream.on("error", () => w.errors++);
    stream.end(r.body);
    w.streams.push(stream);
  }
  await Promise.race([allOpen, new Promise((res) => setTimeout(res, arg.openTimeoutMs))]);
  return { opened: w.opened, errors: w.errors };
}

/** Delivery latency of each change to each subscriber, then close the streams. */
async function watchCollect(arg: { updates: Array<{ id: number; at: number }>; subscribers: number; settleMs: number; idleMs?: number; maxWaitMs?: number }) {
  const w = watch;
  if (!w) throw new Error("watchCollect: no streams open");
  const expected = arg.updates.length * arg.subscribers;
  // Wait at least `settleMs`; then until every delivery arrived, or none came for `idleMs`,
  // or `maxWaitMs` passed: a server that falls behind is measured, not cut short or waited on forever.
  const began = performance.now();
  let last = -1;
  let lastChange = began;
  for (;;) {
    await new Promise((res) => setTimeout(res, 100));
    const now = performance.now();
    if (w.changes.length !== last) {
      last = w.changes.length;
      lastChange = now;
    }
    if (now - began < arg.settleMs) continue;
    if (last >= expected || now - lastChange >= (arg.idleMs ?? arg.settleMs) || now - began >= (arg.maxWaitMs ?? arg.settleMs)) break;
  }
  const at = new Map(arg.updates.map((u) => [u.id, u.at]));
  const rec = new LatencyRecorder(w.changes.length);
  for (let i = 0; i < w.changes.length; i++) {
    const msg = fromBinary(WatchChangesResponseSchema, w.changes[i]!);
    const t = msg.message.case === "change" ? at.get(msg.message.value.entityId) : undefined;
    if (t !== undefined) rec.record(w.receivedAt[i]! - t);
  }
  for (const s of w.streams) s.close(http2.constants.NGHTTP2_CANCEL);
  await Promise.all(w.sessions.map((s) => new Promise<void>((res) => s.close(() => res()))));
  watch = undefined;
  return { delivered: rec.count, expected, resyncs: w.resyncs, heartbeats: w.heartbeats, streamErrors: w.errors, latency: summarize(rec) };
}

serveParent({ load, sequence, burst, watchOpen, watchCollect, close: () => undefined });
