/**
 * Scenario 3: the same request mix sent straight to the simulated site (cloud-like latency,
 * token fetched on the first call) and through the cache, in one run: speedup at p50 and p99.
 */
import { fmt, metricSum, SCRIPT_KEY, SCRIPT_NAME, type BenchContext, type ScenarioResult } from "../lib/context.ts";
import type { RequestShape } from "../lib/load-types.ts";
import { encodeRequest, getEntityJson, queryJson, SHOT_FIELDS } from "../lib/requests.ts";
import type { LatencySummary } from "../lib/stats.ts";

interface SequenceResult {
  requests: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  latency: LatencySummary;
  /** The measured span on the wall clock (epoch ms). */
  window: { fromMs: number; toMs: number };
}

/** The server's garbage collections in a span (bench/server-process.ts `gcPauses`). */
interface GcPauses {
  count: number;
  totalMs: number;
  longestMs: number;
  kinds: string[];
}

/** A deterministic mix: 80% GetEntity of random shots, 20% a typical Query over a few sequences. */
function mix(count: number, shots: number): Array<{ kind: "get"; id: number } | { kind: "query"; seq: number }> {
  let x = 12345;
  const rnd = () => (x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  return Array.from({ length: count }, () =>
    rnd() < 0.8 ? { kind: "get" as const, id: 1 + Math.floor(rnd() * shots) } : { kind: "query" as const, seq: 1 + Math.floor(rnd() * 6) },
  );
}

/** Requests that warm the service before it is measured (none of them in the measured plan). */
const WARMUP_REQUESTS = 3000;

export async function directScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const s = ctx.settings;
  const count = s.quick ? 40 : 240;
  const concurrency = 8;
  const { proc: siteProc, info: site } = await ctx.site({ shots: s.shots, knobs: { latencyMs: s.siteLatencyMs, jitterMs: s.siteJitterMs } });
  const { proc: serverProc, info: server } = await ctx.server(site.url);
  const load = await ctx.loadGenerator();
  const plan = mix(count, s.shots);

  const directRequests = plan.map(
    (r): RequestShape =>
      r.kind === "get"
        ? { method: "GET", path: `/api/v1.1/entity/shots/${r.id}?fields=${SHOT_FIELDS.join(",")}`, headers: {} }
        : {
            method: "POST",
            path: "/api/v1.1/entity/shots/_search",
            headers: { "content-type": "application/vnd+shotgun.api3_array+json" },
            body: Buffer.from(
              JSON.stringify({
                filters: [["sg_sequence", "is", { type: "Sequence", id: r.seq }]],
                fields: "code,sg_status_list,sg_cut_in,sg_cut_out",
                sort: "code",
                page: { size: 50, number: 1 },
              }),
            ).toString("base64"),
          },
  );
  const cacheRequests = plan.map((r) =>
    r.kind === "get" ? encodeRequest("connect-json-post", "GetEntity", getEntityJson(r.id)) : encodeRequest("connect-json-post", "Query", queryJson(r.seq)),
  );
  const token = {
    path: "/api/v1.1/auth/access_token",
    form: new URLSearchParams({ grant_type: "client_credentials", client_id: SCRIPT_NAME, client_secret: SCRIPT_KEY }).toString(),
  };

  const before = await siteProc.call<{ requests: number }>("stats");
  const direct = await load.call<SequenceResult>("sequence", { origin: site.url, check: "http-200", concurrency, requests: directRequests, token }, 300_000);
  type SiteStats = { requests: number; authRequests: number; eventLogReads: number };
  const mid = await siteProc.call<SiteStats>("stats");
  // What the service asked the site for while measured: the site's own count less event-log
  // reads (the follower's polls) and token fetches, and the service's upstream metric (every
  // search, read and schema call of the cache and of validation; polls are not in it).
  const upstream = () => metricSum(server.url, "shotgrid_cache_upstream_requests_total");
  // A running service is warm: its code compiled by the JIT and its indexes built. The same
  // kinds of request, none in the measured sequence (other sequences' shots, other shots), first.
  // Enough of them for the JIT to have compiled the paths (48 left first-time hits ~5× slower, 1,000 still ~2×).
  const planned = new Set(plan.map((r) => (r.kind === "get" ? r.id : 0)));
  const others = Array.from({ length: s.shots }, (_, i) => i + 1).filter((id) => !planned.has(id));
  const warmup = Array.from({ length: WARMUP_REQUESTS }, (_, i) =>
    i % 5 === 0
      ? encodeRequest("connect-json-post", "Query", queryJson(7 + (i % 200)))
      : encodeRequest("connect-json-post", "GetEntity", getEntityJson(others[(i * 7919) % others.length]!)),
  );
  await load.call<SequenceResult>("sequence", { origin: server.url, check: "http-200", concurrency, requests: warmup }, 60_000);
  const upstream0 = await upstream();
  // The same warm-up once more on the measured connections (cheap now: every answer is a hit), so
  // that no measured request pays for opening a connection.
  const cached = await load.call<SequenceResult>("sequence", { origin: server.url, check: "http-200", concurrency, requests: cacheRequests, warmup }, 300_000);
  const after = await siteProc.call<SiteStats>("stats");
  // A pause of the server's event loop delays every request in flight: the collections that
  // fell in the measured span say how much of the tail is the runtime's rather than the cache's.
  const gc = await serverProc.call<GcPauses>("gcPauses", cached.window);
  const upstreamDuring = (await upstream()) - upstream0;
  // The machine's own part of the cache's figures: the same requests, warm-up and connections,
  // answered by a bare node:http server with fixed bytes (bench/floor-server.ts), the site and
  // the service still running (idle) beside it as they were.
  const floorProc = await ctx.child("floor", "floor-server.ts");
  const { url: floorUrl } = await floorProc.call<{ url: string }>("start", { body: "x".repeat(340) });
  const floor = await load.call<SequenceResult>("sequence", { origin: floorUrl, check: "http-200", concurrency, requests: cacheRequests, warmup }, 300_000);
  const pollsDuring = after.eventLogReads - mid.eventLogReads;
  const siteOther = after.requests - mid.requests - pollsDuring - (after.authRequests - mid.authRequests);
  await ctx.stopAll();

  const sp50 = direct.latency.p50Ms / cached.latency.p50Ms;
  const sp99 = direct.latency.p99Ms / cached.latency.p99Ms;
  const row = (name: string, r: SequenceResult, siteCalls: number) => [
    name,
    r.requests,
    r.errors,
    fmt(r.latency.p50Ms, 2),
    fmt(r.latency.p99Ms, 2),
    fmt(r.latency.maxMs, 1),
    fmt(r.elapsedMs / 1000, 2),
    siteCalls,
  ];
  const distinctQueries = new Set(plan.filter((r) => r.kind === "query").map((r) => (r.kind === "query" ? r.seq : 0))).size;
  const notes = [
    `Through the cache, every request is answered in memory: GetEntity from the preloaded records, the ${distinctQueries} distinct Queries from the mirror of the preloaded types (then kept, so repeats are plain hits), validated against the schema loaded during the preload.`,
    `Site requests through the cache during the run: ${siteOther} besides ${pollsDuring} event-log reads (the site's count), ${upstreamDuring} upstream calls (the service's metric, which does not count polls).`,
    `The floor is what this machine and load generator allow for the same sequence: through the cache p50 is ${fmt(cached.latency.p50Ms / floor.latency.p50Ms, 1)}× the floor's, p99 ${fmt(cached.latency.p99Ms / floor.latency.p99Ms, 1)}×. With ${concurrency} requests in flight, one pause of the server's process (the OS giving its core to another, a young-generation GC) delays ${concurrency} of the ${count} at once${concurrency / count > 0.01 ? ", more than the 1% that p99 leaves out: p99 is the longest such pause in the run" : ""}.`,
  ];
  notes.push(
    gc.count === 0
      ? `The server made no garbage collection during the ${count} measured requests through the cache (${fmt(cached.elapsedMs, 0)} ms).`
      : `The server's garbage collections during the ${count} measured requests through the cache (${fmt(cached.elapsedMs, 0)} ms): ${gc.count} (${gc.kinds.join(", ")}), ${fmt(gc.totalMs, 1)} ms in all, the longest ${fmt(gc.longestMs, 1)} ms; each delays the requests in flight by as much.`,
  );
  if (direct.errors || cached.errors || floor.errors)
    notes.push(
      `errors: direct ${direct.errors} (${direct.firstError ?? ""}), cache ${cached.errors} (${cached.firstError ?? ""}), floor ${floor.errors} (${floor.firstError ?? ""})`,
    );
  return {
    id: "direct",
    title: "3. Versus direct",
    conditions: [
      `site latency ${s.siteLatencyMs} ms plus 0–${s.siteJitterMs} ms jitter per request; ${site.shots} shots; service preloads Project, Sequence, Shot, Asset, Step before measuring`,
      `${count} requests, ${concurrency} at a time, the same sequence both ways: 80% GetEntity of random shots (7 fields), 20% the shots of one of 6 sequences (4 fields, limit 50)`,
      "direct: REST GET /entity/shots/{id} and POST /entity/shots/_search with a token fetched on the first call (its time counts in the first calls); through the cache: Connect JSON POST over HTTP/1.1",
      `through the cache, ${WARMUP_REQUESTS} warm-up requests first (GetEntity of other shots, Queries over sequences 7–206, none in the measured sequence; 1,000 left first-time hits slower than later ones), as a running service is warm, then the same again on the connections the measured requests use, as a running tool's are open; the site requests they make would count below`,
    ],
    columns: ["path", "requests", "errors", "p50 ms", "p99 ms", "max ms", "wall s", "site requests during"],
    rows: [
      row("direct to the site", direct, mid.requests - before.requests),
      row("through the cache", cached, after.requests - mid.requests),
      ["speedup", "", "", `${fmt(sp50, 0)}×`, `${fmt(sp99, 0)}×`, "", "", ""],
      [...row("floor: bare node:http, fixed bytes", floor, 0).slice(0, -1), "—"],
      [
        "floor's speedup",
        "",
        "",
        `${fmt(direct.latency.p50Ms / floor.latency.p50Ms, 0)}×`,
        `${fmt(direct.latency.p99Ms / floor.latency.p99Ms, 0)}×`,
        "",
        "",
        "",
      ],
    ],
    targets: [
      {
        target: "Once preloaded, the mix makes no site request (event polls excluded)",
        reached: `${siteOther} (site's count), ${upstreamDuring} (service metric)`,
        pass: siteOther === 0 && upstreamDuring === 0 && cached.errors === 0,
      },
      {
        target: "p99 through the cache at least 100× faster than direct",
        reached: `${fmt(sp99, 0)}×${gc.count > 0 ? ` (the server's longest GC pause during it: ${fmt(gc.longestMs, 1)} ms)` : ""}`,
        pass: sp99 >= 100 && cached.errors === 0,
      },
    ],
    notes,
    data: {
      site,
      serverReadyMs: server.readyMs,
      count,
      concurrency,
      direct,
      cached,
      floor,
      speedupP50: sp50,
      speedupP99: sp99,
      siteRequestsBesidesPolls: siteOther,
      upstreamBesidesPolls: upstreamDuring,
      eventPolls: pollsDuring,
      serverGcDuringCached: gc,
    },
  };
}
