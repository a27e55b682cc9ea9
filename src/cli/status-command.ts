/**
 * `shotgrid-cache status`: how the service stands, from its plain routes: `/healthz` (version,
 * mode), `/readyz` (ready or why not; event follow lag) and `/metrics` (cache size, hit rate).
 */
import { errorMessage } from "../logging/index.ts";
import { UsageError } from "./args.ts";
import { CallFailed, type Connection, connectionProblem, parseCommand } from "./client-connection.ts";
import { jsonLine, keyValues } from "./output.ts";

const USAGE = `usage: shotgrid-cache status [options]

Prints the service's version and mode, whether it is ready (and why not), how far its event follow
lags behind the site, its cache size and its hit rate since start. Exits 0 whenever it could ask.`;

export interface ServiceStatus {
  url: string;
  version?: string;
  mode?: string;
  ready: boolean;
  reasons: string[];
  eventFollow?: { lastEventId?: number; eventsBehind?: number; lagSeconds?: number };
  cache: { entries?: number; bytes?: number; hits: number; misses: number; hitRate: number | null };
  /** With --snapshot-dir: when the last snapshot was written (seconds since the epoch) and how long it took. */
  snapshot?: { lastWrittenAt: number; durationSeconds?: number };
}

export async function runStatus(argv: string[]): Promise<void> {
  const parsed = parseCommand(argv, USAGE, {});
  if (!parsed) return;
  const { args, connection } = parsed;
  if (args.positionals.length > 0) throw new UsageError(`status takes no arguments, got "${args.positionals.join(" ")}"`);
  const status = await readStatus(connection);
  if (connection.output === "json") {
    process.stdout.write(jsonLine(status));
    return;
  }
  const f = status.eventFollow;
  const c = status.cache;
  const rows: [string, string][] = [
    ["service", `${status.url} (version ${status.version ?? "?"}, ${status.mode ?? "?"} mode)`],
    ["ready", status.ready ? "yes" : `NO: ${status.reasons.join("; ")}`],
    ["event follow", f ? `at event ${f.lastEventId ?? "?"}, ${f.eventsBehind ?? "?"} behind, lag ${f.lagSeconds ?? "?"} s` : "not following here"],
    ["cache", `${c.entries ?? "?"} entries, ${c.bytes === undefined ? "?" : mib(c.bytes)}`],
    ["hit rate", c.hitRate === null ? `no lookups yet` : `${(c.hitRate * 100).toFixed(1)}% (${c.hits} hits, ${c.misses} misses)`],
  ];
  if (status.snapshot) {
    const ago = Math.max(0, Math.round(Date.now() / 1000 - status.snapshot.lastWrittenAt));
    rows.push(["snapshot", `written ${ago} s ago in ${status.snapshot.durationSeconds?.toFixed(3) ?? "?"} s`]);
  }
  process.stdout.write(keyValues(rows, false));
}

function mib(bytes: number): string {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

async function readStatus(connection: Connection): Promise<ServiceStatus> {
  const [health, ready, metrics] = await Promise.all([
    fetchText(connection, "/healthz"),
    fetchText(connection, "/readyz", [503]),
    fetchText(connection, "/metrics", [404]),
  ]);
  const h = parseJson(health.text, "/healthz") as { version?: string; mode?: string };
  const r = parseJson(ready.text, "/readyz") as { status?: string; reasons?: string[]; details?: { eventFollow?: ServiceStatus["eventFollow"] } };
  const m = metrics.status === 200 ? parseMetrics(metrics.text) : new Map<string, number>();
  const hits = sum(m, "shotgrid_cache_hits_total");
  const misses = sum(m, "shotgrid_cache_misses_total");
  const follow = r.details?.eventFollow;
  const lastWrittenAt = m.get("shotgrid_cache_snapshot_last_written_timestamp_seconds");
  return {
    url: connection.url,
    version: h.version,
    mode: h.mode,
    ready: r.status === "ready",
    reasons: r.reasons ?? [],
    eventFollow: follow ? { lastEventId: follow.lastEventId, eventsBehind: follow.eventsBehind, lagSeconds: follow.lagSeconds } : undefined,
    cache: {
      entries: m.get("shotgrid_cache_cache_entries"),
      bytes: m.get("shotgrid_cache_cache_bytes"),
      hits,
      misses,
      hitRate: hits + misses > 0 ? hits / (hits + misses) : null,
    },
    snapshot: lastWrittenAt ? { lastWrittenAt, durationSeconds: m.get("shotgrid_cache_snapshot_duration_seconds") } : undefined,
  };
}

async function fetchText(connection: Connection, path: string, alsoOk: number[] = []): Promise<{ status: number; text: string }> {
  let res: Response;
  try {
    res = await fetch(connection.url + path, { headers: connection.headers, signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    throw connectionProblem(err, connection.url) ?? new CallFailed(`cannot reach the service at ${connection.url}: ${errorMessage(err)}`);
  }
  const text = await res.text();
  if (res.status !== 200 && !alsoOk.includes(res.status)) {
    const message = (parseJsonOrUndefined(text) as { message?: string } | undefined)?.message;
    throw new CallFailed(
      `${connection.url}${path} answered HTTP ${res.status}${message ? `: ${message}` : ""}${res.status === 404 ? " (is --url the cache service?)" : ""}`,
    );
  }
  return { status: res.status, text };
}

function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function parseJson(text: string, path: string): unknown {
  const v = parseJsonOrUndefined(text);
  if (v === undefined || v === null || typeof v !== "object") throw new CallFailed(`${path} did not answer JSON: is --url the cache service?`);
  return v;
}

/** Prometheus text: each sample line `name{labels} value`, kept by `name{labels}` and summed by name. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    out.set(m[1]! + (m[2] ?? ""), value);
    if (m[2]) out.set(`${m[1]}{*}`, (out.get(`${m[1]}{*}`) ?? 0) + value);
  }
  return out;
}

function sum(m: Map<string, number>, name: string): number {
  return m.get(`${name}{*}`) ?? m.get(name) ?? 0;
}
