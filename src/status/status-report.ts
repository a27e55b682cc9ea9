/**
 * The JSON `/status.json` answers and the page draws: figures a person running the service looks
 * at, computed from the running totals and the sample ring. It holds no secret: no URL with
 * credentials, no token, no request content; error texts are the ones `/readyz` already shows.
 */
import type { Change } from "../events/index.ts";
import type { MetricsTotals, RpcProtocol } from "../server/metrics.ts";
import type { Sample } from "./status-sampler.ts";

/** What the composition root knows and the metrics do not. */
export interface StatusContext {
  version: string;
  mode: "demo" | "site";
  store: "memory" | "redis";
  /** "single" without Redis; with it, whether this instance follows the event log. */
  role: "single" | "leader" | "standby";
  /** "open" (no auth file) or "tokens"; undefined when the server has no access policy. */
  auth?: "open" | "tokens";
  ready: boolean;
  reasons: string[];
  /** Whether ShotGrid answered the last event log poll; null when this instance does not poll (standby). */
  shotgridReachable: boolean | null;
  /** Why it did not, as `/readyz` says it. */
  shotgridError?: string;
  /** The event follower's own view, when one runs here. */
  follow?: { lastEventId: number; headEventId: number; eventsBehind: number; lagSeconds: number; gapsAwaited: number };
}

export interface StatusReport {
  version: string;
  mode: "demo" | "site";
  store: "memory" | "redis";
  role: "single" | "leader" | "standby";
  auth?: "open" | "tokens";
  pid: number;
  uptimeSeconds: number;
  ready: boolean;
  reasons: string[];
  shotgrid: { reachable: boolean | null; error?: string };
  follow: { lastEventId: number | null; headEventId: number | null; lagSeconds: number | null; eventsBehind: number | null; gapsAwaited: number | null };
  cache: {
    entries: number | null;
    bytes: number | null;
    hits: number;
    misses: number;
    /** Hits / (hits + misses) since start; null before the first lookup. */
    hitRate: number | null;
    /** Lookups answered without a ShotGrid call: hits, and misses that joined a fetch in flight. */
    upstreamCallsSaved: number;
    upstreamCalls: number;
    storeHealthy: boolean;
  };
  requests: {
    /** All RPC requests per second over the last few seconds. */
    perSecond: number;
    byMethod: { method: string; protocol: RpcProtocol; perSecond: number; total: number }[];
  };
  openStreams: number;
  /** Newest first. */
  changes: { eventId: number; kind: string; entityType: string; entityId: number; attribute: string | null; at: string; user: string | null }[];
  /** The charts: one value per step, oldest first, ending at `end` (ms since the epoch). */
  series: { stepSeconds: number; end: number; hitRate: (number | null)[]; requestRate: number[]; lagSeconds: (number | null)[] };
}

const round = (n: number, digits = 3): number => Math.round(n * 10 ** digits) / 10 ** digits;

export function buildReport(input: {
  totals: MetricsTotals;
  context: StatusContext;
  samples: Sample[];
  rateSpan: number;
  sampleMs: number;
  changes: Change[];
}): StatusReport {
  const { totals, context: c, samples } = input;
  const lookups = totals.hits + totals.misses;
  const follow = c.follow;
  const last = samples.at(-1);
  const base = samples.at(-1 - Math.min(input.rateSpan, samples.length - 1));
  const seconds = last && base && last.t > base.t ? (last.t - base.t) / 1000 : 0;
  const byMethod = Object.values(totals.requests)
    .map((r) => {
      const before = base?.byRequest?.[`${r.method} ${r.protocol}`]?.count ?? 0;
      const atLast = last?.byRequest?.[`${r.method} ${r.protocol}`]?.count ?? before;
      return { method: r.method, protocol: r.protocol, perSecond: seconds > 0 ? round((atLast - before) / seconds, 2) : 0, total: r.count };
    })
    .sort((a, b) => b.total - a.total);
  const series: StatusReport["series"] = { stepSeconds: input.sampleMs / 1000, end: last?.t ?? Date.now(), hitRate: [], requestRate: [], lagSeconds: [] };
  for (let i = 1; i < samples.length; i++) {
    const [a, b] = [samples[i - 1]!, samples[i]!];
    const dt = Math.max(0.001, (b.t - a.t) / 1000);
    const looked = b.hits - a.hits + (b.misses - a.misses);
    series.hitRate.push(looked > 0 ? round((b.hits - a.hits) / looked) : null);
    series.requestRate.push(round((b.requests - a.requests) / dt, 2));
    series.lagSeconds.push(b.lagSeconds === null ? null : round(b.lagSeconds, 2));
  }
  return {
    version: c.version,
    mode: c.mode,
    store: c.store,
    role: c.role,
    ...(c.auth ? { auth: c.auth } : {}),
    pid: process.pid,
    uptimeSeconds: Math.round(process.uptime()),
    ready: c.ready,
    reasons: c.reasons,
    shotgrid: { reachable: c.shotgridReachable, ...(c.shotgridError ? { error: c.shotgridError } : {}) },
    follow: {
      lastEventId: follow?.lastEventId ?? totals.follow.lastEventId ?? null,
      headEventId: follow?.headEventId ?? null,
      lagSeconds: follow ? round(follow.lagSeconds) : (totals.follow.lagSeconds ?? null),
      eventsBehind: follow?.eventsBehind ?? totals.follow.eventsBehind ?? null,
      gapsAwaited: follow?.gapsAwaited ?? totals.follow.gapsAwaited ?? null,
    },
    cache: {
      entries: totals.cache?.entries ?? null,
      bytes: totals.cache?.bytes ?? null,
      hits: totals.hits,
      misses: totals.misses,
      hitRate: lookups > 0 ? round(totals.hits / lookups, 4) : null,
      upstreamCallsSaved: totals.hits + totals.coalescedWaits,
      upstreamCalls: totals.upstreamCalls,
      storeHealthy: totals.storeHealthy,
    },
    requests: {
      perSecond: round(
        byMethod.reduce((n, r) => n + r.perSecond, 0),
        2,
      ),
      byMethod,
    },
    openStreams: totals.openStreams,
    changes: input.changes.map((ch) => ({
      eventId: ch.eventId,
      kind: ch.kind,
      entityType: ch.entityType,
      entityId: ch.entityId,
      attribute: ch.attributeName,
      at: ch.createdAt,
      user: ch.user?.name ?? null,
    })),
    series,
  };
}
