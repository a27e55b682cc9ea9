/**
 * The `serve` command as a user runs it: demo mode says so plainly and prints where the
 * simulated site is and how to log in to it, answers over HTTP, and stops cleanly on SIGTERM;
 * a site without credentials is refused with the reason.
 */
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, GET_ENTITY, pollUntil, postJson, rawRequest, watch } from "./e2e-helpers.ts";

const BIN = fileURLToPath(new URL("../bin/shotgrid-cache.mjs", import.meta.url));
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

/** The environment without any site settings, so the test never follows a real site by accident. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ["SHOTGRID_URL", "SHOTGRID_SCRIPT_NAME", "SHOTGRID_SCRIPT_KEY", "PORT", "HOST", "LOG_LEVEL"]) delete env[k];
  return env;
}

interface Run {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(args: string[]): Run {
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let text = "";
  child.stdout!.on("data", (c: Buffer) => (text += c.toString("utf8")));
  child.stderr!.on("data", (c: Buffer) => (text += c.toString("utf8")));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => text, exited };
}

/** Resolve with the exit, or with "timeout" if the process is still running after `ms`. */
function exitWithin(run: Run, ms: number) {
  return Promise.race([run.exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), ms).unref())]);
}

describe("serve in demo mode", () => {
  it("says DEMO, prints the site and its login, answers, and exits 0 on SIGTERM", async () => {
    const [port, sitePort] = [await freePort(), await freePort()];
    const run = start(["serve", "--port", String(port), "--host", "127.0.0.1", "--demo-site-port", String(sitePort), "--poll-interval-ms", "100"]);
    const ready = await pollUntil(
      async () => (await rawRequest(port, "GET", "/readyz").catch(() => undefined))?.status,
      (s) => s === 200 || run.child.exitCode !== null,
      20_000,
      100,
    );
    expect(ready, run.output()).toBe(200);

    const out = run.output();
    expect(out).toContain("DEMO mode");
    expect(out).toContain(`http://127.0.0.1:${port}`);
    expect(out).toContain(`simulated site:      http://127.0.0.1:${sitePort}`);
    expect(out).toMatch(/script name "shotgrid-cache-demo", script key "demo-key"/);
    // No --auth-file: the banner says reads are open and writes refused.
    expect(out).toMatch(/access: +open \(no --auth-file\): reads and watches for anyone, writes refused/);

    const health = await rawRequest(port, "GET", "/healthz");
    expect(health.json).toMatchObject({ status: "ok", mode: "demo" });
    const shot = await postJson(port, GET_ENTITY, { entityType: "Shot", id: 1, fields: ["code"] });
    expect(shot.json).toMatchObject({ entity: { type: "Shot", id: 1, fields: { code: "NLT_010_0010" } }, freshness: { source: "cache" } });
    // The demo site answers on its own port with the printed credentials.
    const token = await fetch(`http://127.0.0.1:${sitePort}/api/v1.1/auth/access_token`, {
      method: "POST",
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: "shotgrid-cache-demo", client_secret: "demo-key" }),
    });
    expect(token.status).toBe(200);

    // An open stream ends cleanly (no error) when the server shuts down.
    const stream = watch(`http://127.0.0.1:${port}`, {});
    await stream.waitFor(() => true);
    run.child.kill("SIGTERM");
    expect(await exitWithin(run, 5000)).toEqual({ code: 0, signal: null });
    await expect(stream.ended).resolves.toBeUndefined();
    expect(run.output()).toContain("stopped");
  });
});

describe("serve refuses a configuration it cannot use", () => {
  it("exits non-zero naming the missing credentials when a site has none", async () => {
    const run = start(["serve", "--site", "http://x", "--port", "0"]);
    const exit = await exitWithin(run, 15_000);
    expect(exit).not.toBe("timeout");
    expect(exit).not.toEqual({ code: 0, signal: null });
    expect(run.output()).toMatch(/--script-name \(SHOTGRID_SCRIPT_NAME\)/);
    expect(run.output()).toMatch(/--script-key \(SHOTGRID_SCRIPT_KEY\)/);
    expect(run.output()).not.toMatch(/\n\s+at /); // a usage error, not a stack trace
  });

  it("names the flag of a bad value", async () => {
    const run = start(["serve", "--port", "99999"]);
    const exit = await exitWithin(run, 15_000);
    expect(exit).not.toBe("timeout");
    expect(exit).not.toEqual({ code: 0, signal: null });
    expect(run.output()).toMatch(/--port/);
  });

  it("exits non-zero, not hanging, when its port is taken", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    try {
      const taken = (blocker.address() as { port: number }).port;
      const run = start(["serve", "--host", "127.0.0.1", "--port", String(taken), "--demo-site-port", "0"]);
      const exit = await exitWithin(run, 15_000);
      expect(exit, run.output()).toEqual({ code: 1, signal: null });
      expect(run.output()).toContain(`cannot listen on 127.0.0.1:${taken} (--port): the port is already in use`);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
