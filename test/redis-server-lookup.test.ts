/**
 * The test suite's redis-server is found on PATH (or REDIS_SERVER_BIN), not at a fixed path, and
 * a missing one fails with a message that says how to install it.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { redisServerBin, TestRedisServer } from "./support/redis-server.ts";

const saved = { PATH: process.env.PATH, REDIS_SERVER_BIN: process.env.REDIS_SERVER_BIN };
const dirs: string[] = [];

afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "redis-lookup-"));
  dirs.push(dir);
  return dir;
}

describe("redis-server lookup", () => {
  it("uses the first redis-server on PATH", { timeout: 15_000 }, async () => {
    const real = redisServerBin();
    const dir = tempDir();
    const marker = join(dir, "called");
    // A wrapper that records it ran, then is the real server.
    writeFileSync(join(dir, "redis-server"), `#!/bin/sh\ntouch '${marker}'\nexec '${real}' "$@"\n`);
    chmodSync(join(dir, "redis-server"), 0o755);
    delete process.env.REDIS_SERVER_BIN;
    process.env.PATH = `${dir}${delimiter}${saved.PATH ?? ""}`;
    const server = await TestRedisServer.start();
    try {
      expect(existsSync(marker)).toBe(true);
    } finally {
      await server.stop();
    }
  });

  it("fails with the install command when redis-server is not on PATH", async () => {
    delete process.env.REDIS_SERVER_BIN;
    process.env.PATH = tempDir();
    await expect(TestRedisServer.start()).rejects.toThrow(/redis-server was not found on PATH: install it \(apt-get install redis-server\)/);
  });

  it("fails with the install command when REDIS_SERVER_BIN names nothing", async () => {
    process.env.REDIS_SERVER_BIN = join(tempDir(), "no-such-redis-server");
    await expect(TestRedisServer.start()).rejects.toThrow(
      /REDIS_SERVER_BIN=.*no-such-redis-server is not an executable file: install it \(apt-get install redis-server\)/,
    );
  });
});
