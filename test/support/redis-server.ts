/**
 * A private redis-server for tests: on a free port on 127.0.0.1, no persistence, started and
 * stopped by the test itself. Never the shared server on 6379. `kill` and `restart` (same port,
 * empty data: as after a crash without persistence) are for fault tests.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { createServer, connect } from "node:net";
import { delimiter, join } from "node:path";
import { Redis } from "ioredis";

const MISSING = "install it (apt-get install redis-server) or set REDIS_SERVER_BIN to its path";

/**
 * The redis-server binary: `REDIS_SERVER_BIN` if set, else the first `redis-server` on PATH.
 * Missing is a failure that says how to fix it, never a skip: the Redis tests are part of the suite.
 */
export function redisServerBin(env: NodeJS.ProcessEnv = process.env): string {
  const executable = (file: string) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  const given = env.REDIS_SERVER_BIN;
  if (given) {
    if (!executable(given)) throw new Error(`REDIS_SERVER_BIN=${given} is not an executable file: ${MISSING}`);
    return given;
  }
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir && executable(join(dir, "redis-server"))) return join(dir, "redis-server");
  }
  throw new Error(`redis-server was not found on PATH: ${MISSING}`);
}

/** A free TCP port on 127.0.0.1 (asked from the OS, never fixed, never 6379). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once("error", reject);
      srv.listen(0, "127.0.0.1", () => {
        const address = srv.address();
        srv.close(() => resolve(typeof address === "object" && address ? address.port : 0));
      });
    });
    if (port !== 6379 && port > 0) return port;
  }
}

/** A random key prefix for one test (bullmq style): tests sharing a server never see each other. */
export function randomPrefix(): string {
  return `t${randomBytes(6).toString("hex")}`;
}

async function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")));
  });
}

export class TestRedisServer {
  #child: ChildProcess | undefined;
  #stderr = "";

  private constructor(readonly port: number) {}

  /** Start a server on a free port and wait until it answers PING. */
  static async start(): Promise<TestRedisServer> {
    const server = new TestRedisServer(await freePort());
    await server.#spawn();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** A plain client for the test's own checks and faults (CLIENT KILL, KEYS …). Close it after. */
  client(): Redis {
    return new Redis(this.url, { maxRetriesPerRequest: 1, lazyConnect: false });
  }

  /** SIGKILL the server (a crash): connections drop, data is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    child.kill("SIGCONT"); // a paused server must still die
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    await exited;
  }

  /** SIGSTOP: the server hangs with its connections open (the case timeouts are for). */
  pause(): void {
    if (this.running) this.#child!.kill("SIGSTOP");
  }

  /** SIGCONT after `pause`. */
  resume(): void {
    if (this.running) this.#child!.kill("SIGCONT");
  }

  /** Kill it if running, then start a new empty one on the same port. */
  async restart(): Promise<void> {
    await this.kill();
    await this.#spawn();
  }

  /** Stop for good (SIGKILL: there is nothing to save). */
  async stop(): Promise<void> {
    await this.kill();
    this.#child = undefined;
  }

  async #spawn(): Promise<void> {
    this.#stderr = "";
    const child = spawn(
      redisServerBin(),
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxmemory-policy", "volatile-lru", "--loglevel", "warning"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.#child = child;
    let spawnError: Error | undefined;
    child.once("error", (err) => (spawnError = err));
    child.stdout?.on("data", (d: Buffer) => (this.#stderr = (this.#stderr + d.toString()).slice(-2000)));
    child.stderr?.on("data", (d: Buffer) => (this.#stderr = (this.#stderr + d.toString()).slice(-2000)));
    const deadline = Date.now() + 10_000;
    // After a kill the port may take a moment to be reusable: retry until it answers or times out.
    while (!(await answersPing(this.port))) {
      if (spawnError) throw new Error(`redis-server could not be started (${spawnError.message}): ${MISSING}`);
      if (!this.running) throw new Error(`redis-server on port ${this.port} exited: ${this.#stderr.trim()}`);
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`redis-server on port ${this.port} did not answer PING within 10 s: ${this.#stderr.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Delete every key starting with `prefix` (a test's cleanup). */
export async function deletePrefix(client: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
    cursor = next;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== "0");
}
