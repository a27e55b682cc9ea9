/**
 * `npm start` as a user runs it: the banner's first command works against the demo, and signals
 * sent to npm reach the server (npm forwards them to its child; the script must make that child
 * the server, not a shell that dies and leaves the server running). A terminal's Ctrl-C, which
 * reaches npm and the server at once, is one graceful shutdown, not a forced one.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { closeOnSignals } from "../src/server/shutdown-signals.ts";
import { freePort, pollUntil, rawRequest } from "./e2e-helpers.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const pids = new Set<number>();
afterAll(() => {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

function cleanEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("npm_") && k !== "NODE_OPTIONS"));
  for (const k of ["SHOTGRID_URL", "SHOTGRID_SCRIPT_NAME", "SHOTGRID_SCRIPT_KEY", "PORT", "HOST", "LOG_LEVEL"]) delete env[k];
  return env;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });

interface NpmStart {
  npm: ChildProcess;
  port: number;
  /** pid of the process serving the port (from /healthz). */
  serverPid: number;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `npm start` in its own process group (as a terminal runs it), on free ports, until ready (preload done). */
async function npmStart(): Promise<NpmStart> {
  const [port, sitePort] = [await freePort(), await freePort()];
  const npm = spawn("npm", ["start", "--", "--port", String(port), "--host", "127.0.0.1", "--demo-site-port", String(sitePort)], {
    cwd: REPO,
    env: cleanEnv(),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  pids.add(npm.pid!);
  let text = "";
  npm.stdout!.on("data", (c: Buffer) => (text += c.toString("utf8")));
  npm.stderr!.on("data", (c: Buffer) => (text += c.toString("utf8")));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    npm.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const ready = await pollUntil(
    async () => (await rawRequest(port, "GET", "/readyz").catch(() => undefined))?.status,
    (s) => s === 200 || npm.exitCode !== null,
    30_000,
    100,
  );
  expect(ready, text).toBe(200);
  const health = (await rawRequest(port, "GET", "/healthz")).json as { pid?: number } | undefined;
  expect(health?.pid, text).toBeTypeOf("number");
  pids.add(health!.pid!);
  return { npm, port, serverPid: health!.pid!, output: () => text, exited };
}

async function expectStopped(run: NpmStart): Promise<void> {
  const exit = await Promise.race([run.exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 5000).unref())]);
  expect(exit, run.output()).not.toBe("timeout");
  await expect.poll(() => alive(run.serverPid), { timeout: 2000 }).toBe(false);
  expect(await portOpen(run.port)).toBe(false);
}

describe("npm start", () => {
  it("prints a first command that works, and stops (server included) on SIGTERM to npm", { timeout: 60_000 }, async () => {
    const run = await npmStart();
    const command = /^\s*(curl -s http:\/\/127\.0\.0\.1:\d+\/shotgrid\.cache\.v1\.CacheService\/GetEntity .*)$/m.exec(run.output())?.[1];
    expect(command, run.output()).toBeDefined();
    const { stdout } = await promisify(execFile)("sh", ["-c", command!], { timeout: 10_000 });
    expect(JSON.parse(stdout)).toMatchObject({ entity: { type: "Shot", id: 1, fields: { code: "NLT_010_0010" } }, freshness: { source: "cache" } });
    // The home page knows it is the demo, with the memory cache.
    const home = await rawRequest(run.port, "GET", "/", undefined, { accept: "*/*" });
    expect(home.body).toMatch(/mode: demo/);
    expect(home.body).toMatch(/cache: memory/);

    process.kill(run.npm.pid!, "SIGTERM");
    await expectStopped(run);
    expect(run.output()).toContain('"msg":"stopped"');
  });

  it("treats a terminal's Ctrl-C (to npm and the server at once) as one graceful shutdown", { timeout: 60_000 }, async () => {
    const run = await npmStart();
    process.kill(-run.npm.pid!, "SIGINT");
    await expectStopped(run);
    expect(run.output()).toContain('"msg":"stopped"');
    expect(run.output()).not.toContain("second signal");
  });
});

describe("closeOnSignals", () => {
  it("ignores the same signal again within the echo window, but a later or different one forces", async () => {
    const signals = new EventEmitter();
    const exits: number[] = [];
    let release!: () => void;
    const closing = new Promise<void>((r) => (release = r));
    closeOnSignals({ close: () => closing }, { signals, exit: (code) => void exits.push(code), echoWindowMs: 200 });
    signals.emit("SIGINT", "SIGINT");
    signals.emit("SIGINT", "SIGINT");
    expect(exits).toEqual([]);
    signals.emit("SIGTERM", "SIGTERM");
    expect(exits).toEqual([130]);
    await new Promise((r) => setTimeout(r, 250));
    signals.emit("SIGINT", "SIGINT");
    expect(exits).toEqual([130, 130]);
    release();
    await expect.poll(() => exits).toEqual([130, 130, 0]);
  });

  it("never forces when told another process decides (a pool's worker)", async () => {
    const signals = new EventEmitter();
    const exits: number[] = [];
    closeOnSignals({ close: async () => undefined }, { signals, exit: (code) => void exits.push(code), echoWindowMs: 0, forceOnRepeat: false });
    signals.emit("SIGTERM", "SIGTERM");
    signals.emit("SIGINT", "SIGINT");
    await expect.poll(() => exits).toEqual([0]);
  });
});
