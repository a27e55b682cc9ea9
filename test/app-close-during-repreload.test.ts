/**
 * close() while the reload after a cache flush is backing off (the site failing) leaves nothing
 * that keeps the process alive: a service in a child process exits by itself right after close().
 */
import { spawn } from "node:child_process";
import { expect, it } from "vitest";

it("a service whose reload after a flush is backing off exits promptly once closed", async () => {
  const child = spawn(process.execPath, ["--import", "tsx", "test/app-close-child.ts"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let closedAt: number | undefined;
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    if (closedAt === undefined && out.includes("closed\n")) closedAt = Date.now();
  });
  child.stderr.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const guard = setTimeout(() => child.kill("SIGKILL"), 25_000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearTimeout(guard);
  const exitedAt = Date.now();
  expect(out, `stderr: ${err}`).toContain("backing off 1\n");
  expect(closedAt, `stdout: ${out}\nstderr: ${err}`).toBeDefined();
  expect(code).toBe(0);
  // The back-off after the second failure is 2 s: a timer left behind would hold the process that long.
  expect(exitedAt - closedAt!).toBeLessThan(1000);
}, 30_000);
