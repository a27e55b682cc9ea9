/**
 * `serve --workers 2 --redis …` as a user runs it (a child process of the real command) against
 * the simulated site: both workers serve the one port, a crashed worker is replaced, and SIGTERM
 * stops everything with exit code 0.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { GET_ENTITY, postJson, rawRequest } from "./e2e-helpers.ts";
import { TestRedisServer, randomPrefix } from "./support/redis-server.ts";

const BIN = new URL("../bin/shotgrid-cache.mjs", import.meta.url).pathname;

/** Is process `pid` still there? */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until<T>(probe: () => T | Promise<T>, done: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("serve --workers", () => {
  let redis: TestRedisServer;
  let site: SimulatorHandle;
  let child: ChildProcess | undefined;
  const logs: Record<string, unknown>[] = [];
  let stderr = "";

  beforeAll(async () => {
    redis = await TestRedisServer.start();
    site = await startSimulator({ shots: 12, assets: 4 });
  });
  afterAll(async () => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    for (const line of logs) {
      const pid = line["pid"];
      if (typeof pid === "number" && line["msg"] === "worker listening" && alive(pid)) process.kill(pid, "SIGKILL");
    }
    await site?.close();
    await redis?.stop();
  });

  it("two workers serve one port, a crashed one is replaced, SIGTERM stops all with exit 0", async () => {
    child = spawn(
      process.execPath,
      [
        BIN,
        "serve",
        "--workers",
        "2",
        "--redis",
        redis.url,
        "--redis-prefix",
        randomPrefix(),
        "--site",
        site.url,
        "--script-name",
        site.scriptName,
        "--script-key",
        DEFAULT_SCRIPT_KEY,
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--preload",
        "Project",
        "--state-dir",
        "",
        "--poll-interval-ms",
        "200",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child!.once("exit", (code, signal) => resolve({ code, signal })),
    );
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    });
    const listening = () => logs.filter((l) => l["msg"] === "worker listening");
    await until(
      () => listening().length,
      (n) => n >= 2,
      20_000,
      `two workers listening (stderr: ${stderr})`,
    );
    const ports = new Set(listening().map((l) => l["port"]));
    expect(ports.size).toBe(1);
    const port = Number([...ports][0]);
    const workerPids = new Set(listening().map((l) => Number(l["pid"])));
    expect(workerPids.size).toBe(2);
    expect(workerPids.has(child.pid!)).toBe(false);

    // Each new connection may go to either worker: both answer.
    const seen = new Set<number>();
    await until(
      async () => {
        const res = await rawRequest(port, "GET", "/healthz");
        seen.add(res.json.pid as number);
        return seen.size;
      },
      (n) => n >= 2,
      10_000,
      "answers from both workers",
    );
    expect(seen).toEqual(workerPids);
    const shot = [...site.store.records("Shot")][0]!;
    const answer = await until(
      () => postJson(port, GET_ENTITY, { entityType: "Shot", id: shot.id, fields: ["code"] }),
      (r) => r.status === 200,
      10_000,
      "a GetEntity answer",
    );
    expect(answer.json.entity.fields.code).toBe(shot.fields.code);

    // A worker crashes: the pool starts another in its place.
    const [victim, survivor] = [...workerPids];
    process.kill(victim!, "SIGKILL");
    const replacement = await until(
      () =>
        listening()
          .map((l) => Number(l["pid"]))
          .find((pid) => !workerPids.has(pid)),
      (pid) => pid !== undefined,
      20_000,
      "a replacement worker",
    );
    expect(alive(replacement!)).toBe(true);

    // SIGTERM to the primary: every worker stops gracefully, the primary exits 0.
    child.kill("SIGTERM");
    const { code, signal } = await exited;
    // What the workers and the primary said of their stop, should one not have stopped cleanly.
    const said = logs.filter((l) => (l["level"] as number) >= 40 || /stop|shut|exit/i.test(String(l["msg"])));
    expect({ code, signal }, `logs: ${JSON.stringify(said)}\nstderr: ${stderr.slice(-2000)}`).toEqual({ code: 0, signal: null });
    for (const pid of [survivor!, replacement!])
      await until(
        () => alive(pid),
        (a) => !a,
        5000,
        `worker ${pid} to exit`,
      );
    expect(logs.filter((l) => l["msg"] === "worker stopped").map((l) => l["code"])).toEqual([0, 0]);
    // Three processes start under tsx here; on a loaded 2-core machine that alone can take most of
    // the default 30 s, so this test gets room for its own bounded waits (20 + 10 + 10 + 20 + 5 s).
  }, 90_000);
});
