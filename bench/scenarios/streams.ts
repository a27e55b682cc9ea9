/**
 * Scenario 7: 1,000 WatchChanges subscribers while the site makes 100 changes a second:
 * delivery latency of every change to every subscriber, and the server's CPU time meanwhile.
 */
import { fmt, fmtInt, type BenchContext, type ScenarioResult, type TargetResult } from "../lib/context.ts";
import { encodeRequest } from "../lib/requests.ts";
import type { LatencySummary } from "../lib/stats.ts";

export async function streamsScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const s = ctx.settings;
  const subscribers = s.quick ? 100 : 1000;
  const sessions = s.quick ? 2 : 10;
  const perSecond = 100;
  const seconds = s.quick ? 2 : 5;
  const pollMs = 200;
  const count = perSecond * seconds;
  const { proc: siteProc, info: site } = await ctx.site({ shots: Math.max(s.shots, 2000 + count) });
  const { proc: server, info } = await ctx.server(site.url, ["--poll-interval-ms", String(pollMs)]);
  const load = await ctx.loadGenerator();
  const opened = await load.call<{ opened: number; errors: number }>("watchOpen", {
    origin: info.url,
    subscribers,
    sessions,
    request: encodeRequest("grpc-h2c", "WatchChanges", { entityTypes: ["Shot"] }),
    openTimeoutMs: 15_000,
  });
  await server.call("cpuMark");
  const made = await siteProc.call<{ changes: Array<{ id: number; at: number }>; elapsedMs: number }>(
    "changes",
    { type: "Shot", firstId: 1001, count, perSecond, field: "description", tag: `streams-${Date.now()}` },
    seconds * 1000 + 60_000,
  );
  const got = await load.call<{ delivered: number; expected: number; resyncs: number; heartbeats: number; streamErrors: number; latency: LatencySummary }>(
    "watchCollect",
    { updates: made.changes, subscribers, settleMs: pollMs + 1500, idleMs: 5000, maxWaitMs: 60_000 },
    180_000,
  );
  const cpu = await server.call<{ userMs: number; systemMs: number; wallMs: number; coreShare: number }>("cpuSince");
  await ctx.stopAll();
  const cpuSeconds = (cpu.userMs + cpu.systemMs) / 1000;
  const targets: TargetResult[] = [
    {
      target: `${fmtInt(subscribers)} subscribers x ${perSecond} changes/s: every change delivered to every subscriber`,
      reached: `${fmtInt(got.delivered)} of ${fmtInt(got.expected)} deliveries, ${got.resyncs} resyncs, ${got.streamErrors} stream errors`,
      pass: got.delivered === got.expected && got.resyncs === 0 && got.streamErrors === 0,
    },
    {
      target: `${fmtInt(subscribers)} subscribers x ${perSecond} changes/s, poll ${pollMs} ms: delivery p99 < 1 s`,
      reached: `p50 ${fmt(got.latency.p50Ms, 0)} ms, p99 ${fmt(got.latency.p99Ms, 0)} ms, max ${fmt(got.latency.maxMs, 0)} ms`,
      pass: got.delivered > 0 && got.latency.p99Ms < 1000,
    },
    {
      target: "Server CPU during the run reported",
      reached: `${fmt(cpuSeconds, 2)} CPU s over ${fmt(cpu.wallMs / 1000, 1)} s = ${fmt(cpu.coreShare, 3)} CPU s per s (user ${fmt(cpu.userMs / 1000, 2)} s, system ${fmt(cpu.systemMs / 1000, 2)} s)`,
      pass: Number.isFinite(cpu.coreShare),
    },
  ];
  const notes: string[] = [];
  if (got.delivered < got.expected)
    notes.push(
      `${fmtInt(got.expected - got.delivered)} deliveries had not arrived when collection stopped (no new delivery for 5 s, or 60 s after the last change); latency is over the deliveries that arrived.`,
    );
  if (opened.opened < subscribers) notes.push(`only ${opened.opened} of ${subscribers} streams had answered headers when the changes started`);
  if (got.resyncs) notes.push(`${got.resyncs} resync messages: subscribers the server judged too slow`);
  notes.push(
    "The server sends the response headers of a stream when it opens; the load generator waits for all of them before the site starts changing records.",
  );
  return {
    id: "streams",
    title: "7. Streams",
    conditions: [
      `${fmtInt(subscribers)} WatchChanges subscribers (gRPC h2c, entity type Shot) over ${sessions} HTTP/2 connections from one load-generator process`,
      `${perSecond} changes/s for ${seconds} s (${count} changes, each to a different Shot's description), service poll interval ${pollMs} ms, site latency 0`,
      "server CPU = process.cpuUsage() in the server process (over IPC) from just before the first change until collection stopped; CPU s per s is that time over the window (1.0 = one core busy). The machine is shared: compare CPU s, not latency alone, across runs",
    ],
    columns: ["subscribers", "changes", "deliveries", "expected", "p50 ms", "p99 ms", "max ms", "server CPU s", "CPU window s", "server CPU s per s"],
    rows: [
      [
        fmtInt(subscribers),
        count,
        fmtInt(got.delivered),
        fmtInt(got.expected),
        fmt(got.latency.p50Ms, 1),
        fmt(got.latency.p99Ms, 1),
        fmt(got.latency.maxMs, 1),
        fmt(cpuSeconds, 2),
        fmt(cpu.wallMs / 1000, 1),
        fmt(cpu.coreShare, 3),
      ],
    ],
    targets,
    notes,
    data: { subscribers, sessions, perSecond, seconds, pollMs, opened, changesElapsedMs: made.elapsedMs, delivery: got, cpu, serverReadyMs: info.readyMs },
  };
}
