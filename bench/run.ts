/**
 * `npm run bench`: runs every scenario on this machine in one go and writes
 * bench/results/latest.json, latest.md and latest.svg.
 *
 *   npm run bench                       full run (under 10 minutes on 2 cores)
 *   npm run bench -- --quick            smoke run: tiny durations and sizes
 *   npm run bench -- --only hits,burst  some scenarios only
 *   --out DIR                           where to write (default bench/results for a full run,
 *                                       $TMPDIR/shotgrid-cache-bench for --quick and --only)
 *   npm run bench -- --only memory --million   adds the 1M-shot memory point (long)
 *   BENCH_DURATION_S=5 BENCH_WARMUP_S=1 BENCH_SHOTS=20000 npm run bench
 *
 * Every load phase is bounded by a duration or a count; targets are marked pass/fail in the
 * report, never asserted.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { BenchContext, type BenchSettings, type Scenario, type ScenarioResult } from "./lib/context.ts";
import { writeReport } from "./report.ts";
import { burstScenario } from "./scenarios/burst.ts";
import { directScenario } from "./scenarios/direct.ts";
import { hitsScenario } from "./scenarios/hits.ts";
import { localQueryScenario } from "./scenarios/local-query.ts";
import { memoryScenario } from "./scenarios/memory.ts";
import { propagationScenario } from "./scenarios/propagation.ts";
import { redisScenario } from "./scenarios/redis.ts";
import { streamsScenario } from "./scenarios/streams.ts";

const SCENARIOS: Array<[string, Scenario]> = [
  ["hits", hitsScenario],
  ["direct", directScenario],
  ["burst", burstScenario],
  ["propagation", propagationScenario],
  ["memory", memoryScenario],
  ["streams", streamsScenario],
  ["redis", redisScenario],
  ["local-query", localQueryScenario],
];

function numberFrom(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name} must be a number within ${min}..${max}, got "${raw}"`);
  return n;
}

export function settingsFrom(argv: string[], env: NodeJS.ProcessEnv): BenchSettings {
  const { values } = parseArgs({
    args: argv,
    options: { quick: { type: "boolean" }, only: { type: "string" }, million: { type: "boolean" }, out: { type: "string" } },
    strict: true,
  });
  const quick = values.quick === true || env.BENCH_QUICK === "1";
  const only = values.only
    ?.split(",")
    .map((x) => x.trim())
    .filter(Boolean);
  const known = SCENARIOS.map(([id]) => id);
  for (const id of only ?? []) if (!known.includes(id)) throw new Error(`--only: unknown scenario "${id}" (known: ${known.join(", ")})`);
  return {
    quick,
    durationMs: numberFrom("BENCH_DURATION_S", env.BENCH_DURATION_S, quick ? 0.5 : 3, 0.1, 120) * 1000,
    warmupMs: numberFrom("BENCH_WARMUP_S", env.BENCH_WARMUP_S, quick ? 0.2 : 1, 0, 60) * 1000,
    connections: quick ? [1, 32] : [1, 32, 256],
    shots: numberFrom("BENCH_SHOTS", env.BENCH_SHOTS, quick ? 2000 : 10_000, 100, 2_000_000),
    siteLatencyMs: numberFrom("BENCH_SITE_LATENCY_MS", env.BENCH_SITE_LATENCY_MS, 150, 0, 10_000),
    siteJitterMs: numberFrom("BENCH_SITE_JITTER_MS", env.BENCH_SITE_JITTER_MS, 30, 0, 10_000),
    // Off by default: preloading 1M shots from the simulator takes far longer than the run's
    // 10-minute budget (the simulator filters and sorts every record for every page of 500).
    million: !quick && (values.million === true || env.BENCH_MILLION === "1"),
    only,
    // Only a full run replaces bench/results/latest.*; smoke and partial runs go elsewhere.
    outDir: values.out ?? (quick || only ? join(tmpdir(), "shotgrid-cache-bench") : fileURLToPath(new URL("./results/", import.meta.url))),
  };
}

async function main(): Promise<void> {
  let settings: BenchSettings;
  try {
    settings = settingsFrom(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
    return;
  }
  const began = performance.now();
  const results: ScenarioResult[] = [];
  const failures: Array<{ id: string; error: string }> = [];
  for (const [id, scenario] of SCENARIOS) {
    if (settings.only && !settings.only.includes(id)) continue;
    const ctx = new BenchContext(settings);
    const t0 = performance.now();
    process.stderr.write(`bench: ${id} ...\n`);
    try {
      const r = await scenario(ctx);
      results.push(r);
      process.stderr.write(`bench: ${id} done in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      failures.push({ id, error: msg });
      process.stderr.write(`bench: ${id} FAILED: ${msg}\n`);
    } finally {
      await ctx.stopAll();
    }
  }
  const totalS = (performance.now() - began) / 1000;
  const files = await writeReport({ settings, results, failures, totalS });
  process.stderr.write(`bench: finished in ${totalS.toFixed(0)} s; wrote ${files.join(", ")}\n`);
  if (failures.length) process.exitCode = 1;
}

await main();
