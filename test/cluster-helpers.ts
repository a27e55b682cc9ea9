/**
 * Shared parts of the cluster-* tests: one simulated site (in the test process), one private
 * redis-server, and N real `shotgrid-cache serve --redis …` processes (so tests can SIGKILL and
 * SIGSTOP them), each on its own ephemeral port.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomPrefix, TestRedisServer } from "./support/redis-server.ts";
import { freePort, metricSum, postJson, GET_ENTITY } from "./e2e-helpers.ts";
import { followKeyBase } from "../src/cluster/cluster-follow.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";

export type Cleanup = () => Promise<void>;

export interface Instance {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  /** Every log line (pino JSON) so far, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  signal(sig: NodeJS.Signals): void;
}

export interface Cluster {
  site: SimulatorHandle;
  redis: TestRedisServer;
  prefix: string;
  /** Where the follow keys live (`…:follow:`). */
  keyBase: string;
  instances: Instance[];
}

export async function startCluster(cleanups: Cleanup[], count: number, leaseMs = 1500): Promise<Cluster> {
  const site = await startSimulator({ shots: 6, assets: 2 });
  cleanups.push(() => site.close());
  const redis = await TestRedisServer.start();
  cleanups.push(() => redis.stop());
  const prefix = randomPrefix();
  const instances = await Promise.all(Array.from({ length: count }, () => startInstance(cleanups, site, redis, prefix, leaseMs)));
  await Promise.all(instances.map((i) => waitReady(i)));
  return { site, redis, prefix, keyBase: followKeyBase(prefix, site.url), instances };
}

export async function startInstance(
  cleanups: Cleanup[],
  site: SimulatorHandle,
  redis: TestRedisServer,
  prefix: string,
  leaseMs: number,
  /** More `serve` flags (e.g. `--snapshot-dir`). */
  extraArgs: string[] = [],
): Promise<Instance> {
  const port = await freePort();
  const args = [
    "bin/shotgrid-cache.mjs",
    "serve",
    "--site",
    site.url,
    "--script-name",
    site.scriptName,
    "--script-key",
    DEFAULT_SCRIPT_KEY,
    "--redis",
    redis.url,
    "--redis-prefix",
    prefix,
    "--port",
    String(port),
    "--host",
    "127.0.0.1",
    "--preload",
    "Shot",
    "--poll-interval-ms",
    "100",
    "--heartbeat-s",
    "1",
    "--leader-lease-ms",
    String(leaseMs),
    "--reconcile-interval-s",
    "0",
    "--log-level",
    "info",
    ...extraArgs,
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  const logs: Array<Record<string, unknown>> = [];
  let partial = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => {
    partial += d.toString();
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGCONT");
      child.kill("SIGKILL");
      await exited;
    }
  });
  const instance: Instance = {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    logs,
    exited,
    signal: (sig) => void child.kill(sig),
  };
  await waitUntil(
    `instance on port ${port} listening (stderr: ${stderr})`,
    () => logs.some((l) => l["msg"] === "shotgrid-cache listening"),
    30_000,
    () => {
      if (child.exitCode !== null) throw new Error(`instance exited with ${child.exitCode}: ${stderr}`);
    },
  );
  return instance;
}

async function waitReady(instance: Instance): Promise<void> {
  await waitUntil(`instance ${instance.port} ready`, () => instance.logs.some((l) => String(l["msg"]).startsWith("ready:")), 30_000);
}

/** Wait for a condition (sync or async), checking every 50 ms; `check` may throw to fail early. */
export async function waitUntil(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000, check?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    check?.();
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Is this instance the leader now (its /metrics gauge)? */
export async function isLeader(instance: Instance): Promise<boolean> {
  return (await metricSum(instance.port, "shotgrid_cache_cluster_leader").catch(() => 0)) === 1;
}

/** The one leader among `instances`, waiting for there to be exactly one. */
export async function waitForLeader(instances: Instance[], timeoutMs = 15_000): Promise<Instance> {
  let leader: Instance | undefined;
  await waitUntil(
    "exactly one leader",
    async () => {
      const flags = await Promise.all(instances.map(isLeader));
      const leaders = instances.filter((_, i) => flags[i]);
      leader = leaders.length === 1 ? leaders[0] : undefined;
      return leader !== undefined;
    },
    timeoutMs,
  );
  return leader!;
}

/** A shot's description as the instance answers GetEntity. */
export async function descriptionOn(instance: Instance, shotId: number): Promise<unknown> {
  const answer = await postJson(instance.port, GET_ENTITY, { entityType: "Shot", id: shotId, fields: ["description"] });
  if (answer.status !== 200) throw new Error(`GetEntity on ${instance.port}: ${answer.status} ${answer.body}`);
  return answer.json?.entity?.fields?.description;
}

export function shotIds(site: SimulatorHandle): number[] {
  return [...site.store.records("Shot")].map((r) => r.id);
}

export function writeShot(site: SimulatorHandle, id: number, description: string): void {
  site.store.update("Shot", id, { description }, { user: site.scriptUser });
}
