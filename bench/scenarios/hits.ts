/**
 * Scenarios 1 and 2: the floor (a bare node:http server answering a body the size of a
 * GetEntity answer) and cache hits over every protocol, at fixed connection counts, in one run
 * so the ratios hold on a noisy machine.
 */
import { request } from "undici";
import { fmt, fmtInt, type BenchContext, type ScenarioResult } from "../lib/context.ts";
import type { LoadResult, LoadSpec } from "../lib/load-types.ts";
import { checkOf, encodeRequest, getEntityJson, PROTOCOL_LABEL, PROTOCOLS, queryJson, transportOf, type Method, type Protocol } from "../lib/requests.ts";

export interface HitPoint {
  target: "floor" | "service";
  method: Method | "floor";
  protocol: Protocol | "http-get";
  connections: number;
  result: LoadResult;
}

export async function hitsScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const s = ctx.settings;
  const { info: site } = await ctx.site({ shots: s.shots });
  const { info: server } = await ctx.server(site.url);
  // A real answer, to size the floor's body and to prove the requests are valid before loading.
  const ids = Array.from({ length: 100 }, (_, i) => 1 + Math.floor((i * 7919) % s.shots));
  const sample = await request(`${server.url}/shotgrid.cache.v1.CacheService/GetEntity`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(getEntityJson(ids[0]!)),
  });
  const sampleBody = await sample.body.text();
  if (sample.statusCode !== 200) throw new Error(`GetEntity sample answered ${sample.statusCode}: ${sampleBody.slice(0, 300)}`);
  const q = await request(`${server.url}/shotgrid.cache.v1.CacheService/Query`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(queryJson(1)),
  });
  const qBody = await q.body.text();
  if (q.statusCode !== 200) throw new Error(`Query sample answered ${q.statusCode}: ${qBody.slice(0, 300)}`);
  const queryEntities = (JSON.parse(qBody) as { entities: unknown[] }).entities.length;

  const floor = await ctx.child("floor", "floor-server.ts");
  const { url: floorUrl } = await floor.call<{ url: string }>("start", { body: sampleBody });
  const load = await ctx.loadGenerator();
  const run = (spec: Omit<LoadSpec, "warmupMs" | "durationMs">) =>
    load.call<LoadResult>("load", { ...spec, warmupMs: s.warmupMs, durationMs: s.durationMs }, s.warmupMs + s.durationMs + 60_000);

  const points: HitPoint[] = [];
  const sequences = [1, 2, 3];
  for (const c of s.connections) {
    const floorResult = await run({
      origin: floorUrl,
      transport: "h1",
      check: "http-200",
      connections: c,
      requests: [{ method: "GET", path: "/", headers: {} }],
    });
    points.push({ target: "floor", method: "floor", protocol: "http-get", connections: c, result: floorResult });
    for (const protocol of PROTOCOLS) {
      const requests = ids.map((id) => encodeRequest(protocol, "GetEntity", getEntityJson(id)));
      const r = await run({ origin: server.url, transport: transportOf(protocol), check: checkOf(protocol), connections: c, requests });
      points.push({ target: "service", method: "GetEntity", protocol, connections: c, result: r });
    }
    // Query over every protocol at the middle level; the JSON POST form at every level.
    for (const protocol of PROTOCOLS) {
      if (c !== 32 && protocol !== "connect-json-post") continue;
      const requests = sequences.map((seq) => encodeRequest(protocol, "Query", queryJson(seq)));
      const r = await run({ origin: server.url, transport: transportOf(protocol), check: checkOf(protocol), connections: c, requests });
      points.push({ target: "service", method: "Query", protocol, connections: c, result: r });
    }
  }
  await ctx.stopAll();

  const rows = points.map((p) => [
    p.target === "floor" ? "floor: bare node:http" : p.method,
    p.target === "floor" ? "HTTP/1.1 GET" : PROTOCOL_LABEL[p.protocol as Protocol],
    p.connections,
    fmtInt(p.result.rps),
    fmt(p.result.latency.p50Ms, 2),
    fmt(p.result.latency.p99Ms, 2),
    p.result.answerBytes,
    p.result.errors,
  ]);
  const at = (c: number, method: string, protocol: string) => points.find((p) => p.connections === c && p.method === method && p.protocol === protocol)?.result;
  const floor32 = at(32, "floor", "http-get");
  const hit32 = at(32, "GetEntity", "connect-json-post");
  const targets = [];
  if (floor32 && hit32) {
    const ratio = hit32.rps / floor32.rps;
    targets.push({
      target: "GetEntity hits, Connect JSON POST, HTTP/1.1, 32 connections: throughput >= 50% of the bare node:http floor",
      reached: `${fmtInt(hit32.rps)} req/s vs floor ${fmtInt(floor32.rps)} req/s = ${fmt(ratio * 100, 0)}%`,
      pass: ratio >= 0.5,
    });
    targets.push({ target: "GetEntity hits at 32 connections: p99 < 5 ms", reached: `p99 ${fmt(hit32.latency.p99Ms, 2)} ms`, pass: hit32.latency.p99Ms < 5 });
  }
  const notes = [
    "Every request is answered 200 (gRPC status 0) and checked; errors are counted, not timed.",
    "Load generator, server and floor each run in their own process on the same 2 cores: at high connection counts the load generator competes with the server for CPU, for the floor and the service alike.",
    "gRPC (h2c) opens one HTTP/2 session per connection, one stream in flight on each.",
    `GetEntity asks ${ids.length} different preloaded shots round-robin; the Query asks the shots of sequence 1, 2 or 3 (${queryEntities} entities in the sample answer, fields code, status, cut in/out, limit 50), cached after the first call.`,
  ];
  for (const p of points)
    if (p.result.errors > 0) notes.push(`${p.method} ${p.protocol} @${p.connections}: ${p.result.errors} errors, first: ${p.result.firstError}`);
  return {
    id: "hits",
    title: "1–2. Floor and cache hits",
    conditions: [
      `site: simulated, ${site.shots} shots, latency 0 (hits never reach it); service preloads Project, Sequence, Shot, Asset, Step`,
      `each point: ${s.warmupMs / 1000} s warm-up, then ${s.durationMs / 1000} s measured; connections ${s.connections.join(", ")}, one request in flight per connection`,
      `GetEntity answer ${Buffer.byteLength(sampleBody)} bytes (Connect JSON); the floor answers a JSON body of the same bytes`,
    ],
    columns: ["call", "protocol", "connections", "req/s", "p50 ms", "p99 ms", "answer bytes", "errors"],
    rows,
    targets,
    notes,
    data: { site, readyMs: server.readyMs, getEntityAnswerBytes: Buffer.byteLength(sampleBody), points },
  };
}
