/**
 * What every scenario shares: the run's settings, how to start the processes under test, and
 * the shape of a scenario's result (a table with its conditions, targets with pass/fail marks).
 */
import { request } from "undici";
import { SERVE_OPTIONS } from "../../src/config.ts";
import { BenchChild } from "./ipc.ts";

export interface BenchSettings {
  /** Smoke run: tiny durations and sizes; numbers mean little. */
  quick: boolean;
  /** Measured seconds per load point. */
  durationMs: number;
  /** Warm-up before each load point. */
  warmupMs: number;
  /** Connection counts of the load points. */
  connections: number[];
  /** Shots of the site used by the hit, versus-direct, burst, propagation and stream scenarios. */
  shots: number;
  /** Simulated cloud latency and jitter of the site (ms). */
  siteLatencyMs: number;
  siteJitterMs: number;
  /** Include the 1M-shot memory point. */
  million: boolean;
  /** Only these scenarios (ids), or all. */
  only: string[] | undefined;
  /** Where latest.json, latest.md and latest.svg are written. */
  outDir: string;
}

export interface TargetResult {
  /** What the issue asks, in words. */
  target: string;
  /** What this run reached, in words. */
  reached: string;
  /** null: not measured in this run. */
  pass: boolean | null;
}

export interface ScenarioResult {
  id: string;
  title: string;
  /** The conditions every figure of the table was measured under. */
  conditions: string[];
  columns: string[];
  rows: Array<Array<string | number>>;
  targets: TargetResult[];
  notes: string[];
  /** Raw figures for latest.json. */
  data: unknown;
}

export type Scenario = (ctx: BenchContext) => Promise<ScenarioResult>;

export interface SiteInfo {
  url: string;
  scriptName: string;
  shots: number;
  latestEventId: number;
  startMs: number;
}
export interface ServerInfo {
  url: string;
  port: number;
  readyMs: number;
}

export const SCRIPT_KEY = "bench-key";
export const SCRIPT_NAME = "bench";

/** Starts processes and remembers them, so a failed scenario still stops everything it started. */
export class BenchContext {
  readonly settings: BenchSettings;
  readonly #children: BenchChild[] = [];

  constructor(settings: BenchSettings) {
    this.settings = settings;
  }

  async child(name: string, script: string, nodeFlags: string[] = []): Promise<BenchChild> {
    const c = await BenchChild.start(name, script, { nodeFlags });
    this.#children.push(c);
    return c;
  }

  /** A simulated site in its own process. */
  async site(options: Record<string, unknown>, nodeFlags: string[] = [], timeoutMs = 120_000): Promise<{ proc: BenchChild; info: SiteInfo }> {
    const proc = await this.child("site", "site-process.ts", nodeFlags);
    const info = await proc.call<SiteInfo>("start", { scriptName: SCRIPT_NAME, scriptKey: SCRIPT_KEY, ...options }, timeoutMs);
    return { proc, info };
  }

  /**
   * The service, following `siteUrl`, in its own process, started with `serve` flags. Node flags
   * in BENCH_SERVER_NODE_FLAGS are added (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to see where
   * the server's time goes during a scenario).
   */
  async server(siteUrl: string, flags: string[] = [], nodeFlags: string[] = [], timeoutMs = 120_000): Promise<{ proc: BenchChild; info: ServerInfo }> {
    const extra = (process.env.BENCH_SERVER_NODE_FLAGS ?? "").split(/\s+/).filter(Boolean);
    const proc = await this.child("server", "server-process.ts", [...nodeFlags, ...extra]);
    const argv = [
      "--site",
      siteUrl,
      "--script-name",
      SCRIPT_NAME,
      "--script-key",
      SCRIPT_KEY,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--log-level",
      "warn",
      ...flags,
    ];
    // Every run starts from the site's newest event: a cursor saved by an earlier run (of another
    // simulated site) must not be read, and the benchmark leaves no state files behind.
    if ("state-dir" in SERVE_OPTIONS) argv.push("--state-dir", "");
    const info = await proc.call<ServerInfo>("start", { argv }, timeoutMs);
    return { proc, info };
  }

  async loadGenerator(): Promise<BenchChild> {
    return this.child("load", "load-generator.ts");
  }

  /** Stop every child still running, newest first. */
  async stopAll(): Promise<void> {
    while (this.#children.length) await this.#children.pop()!.stop();
  }

  async stop(child: BenchChild): Promise<void> {
    const i = this.#children.indexOf(child);
    if (i >= 0) this.#children.splice(i, 1);
    await child.stop();
  }
}

/** The sum of a Prometheus counter's samples whose labels contain every `labels` pair. */
export async function metricSum(serviceUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await request(`${serviceUrl}/metrics`);
  const text = await res.body.text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const l = m[2] ?? "";
    if (Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

export const fmt = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : "n/a");
export const fmtInt = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "n/a");
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
