/**
 * Connections to Redis that fail fast. A cache in front of ShotGrid must never make a request wait
 * on a Redis that is gone: commands are not queued while disconnected, not retried after a
 * connection drop, and time out quickly; the caller gets a `StoreUnavailableError` and answers
 * from ShotGrid instead. Reconnection happens in the background with capped exponential backoff.
 *
 * One `RedisConnection` owns a command client and, on demand, a subscriber client (pub/sub needs
 * a connection of its own). The store uses both; leader election and the shared replay stream
 * can reuse the same object.
 */
import { createHash } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import { StoreUnavailableError } from "../cache/cache-store.ts";
import { errorMessage, type Logger, SILENT_LOGGER } from "../logging/index.ts";

export interface RedisConnectionOptions {
  /** `redis://[:password@]host:port[/db]` or `rediss://…`. Never logged (it may hold a password). */
  url: string;
  /** Longest wait for one command before it fails with `StoreUnavailableError`. Default 1000 ms. */
  commandTimeoutMs?: number;
  /** Longest wait for a TCP connection (and its handshake). Default 2000 ms. */
  connectTimeoutMs?: number;
  /** Reconnect backoff: 50 ms doubled per attempt, capped at this. Default 2000 ms. */
  maxReconnectDelayMs?: number;
  /** Shown by `CLIENT LIST` (suffixed `:cmd` / `:sub`), to tell instances apart. Default "shotgrid-cache". */
  clientName?: string;
  /** Connection events (lost, back) are logged here. Default: silent. */
  logger?: Logger;
}

/** What a connection event listener is told. */
export type RedisConnectionEvent = "ready" | "lost";

/** Validate options early, naming the bad field (bad input never becomes a hang or a crash later). */
function checkOptions(o: RedisConnectionOptions): void {
  if (typeof o.url !== "string" || !/^rediss?:\/\//.test(o.url)) {
    throw new RangeError("redis url: must start with redis:// or rediss://");
  }
  for (const field of ["commandTimeoutMs", "connectTimeoutMs", "maxReconnectDelayMs"] as const) {
    const v = o[field];
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new RangeError(`redis ${field}: must be a positive number, got ${v}`);
  }
}

export class RedisConnection {
  readonly command: Redis;
  readonly #options: RedisConnectionOptions;
  readonly #log: Logger;
  readonly #listeners = new Set<(client: "command" | "subscriber", event: RedisConnectionEvent) => void>();
  #subscriber: Redis | undefined;
  #closed = false;
  /** Set by a failed command; cleared by the next success. Status alone misses a frozen server. */
  #failing = false;
  #probe: NodeJS.Timeout | undefined;

  constructor(options: RedisConnectionOptions) {
    checkOptions(options);
    this.#options = options;
    this.#log = options.logger ?? SILENT_LOGGER;
    this.command = this.#client("cmd", {});
  }

  /** The subscriber client, created on first use. Resubscription is the caller's job (see `onEvent`). */
  get subscriber(): Redis {
    this.#subscriber ??= this.#client("sub", { autoResubscribe: false });
    return this.#subscriber;
  }

  /** True while the command client is connected and its last command did not fail. */
  get healthy(): boolean {
    return !this.#closed && this.command.status === "ready" && !this.#failing;
  }

  /** Resolves once the command client is ready; rejects after `timeoutMs`. */
  async ready(timeoutMs = 5000): Promise<void> {
    if (this.command.status === "ready") return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.command.off("ready", onReady);
        reject(new StoreUnavailableError("connect", `redis not ready after ${timeoutMs} ms`));
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      this.command.once("ready", onReady);
    });
  }

  /** Be told when a client becomes ready or loses its connection. Returns an unsubscribe function. */
  onEvent(listener: (client: "command" | "subscriber", event: RedisConnectionEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Run a command; any failure (disconnected, timeout, connection dropped, server error) becomes a
   * `StoreUnavailableError` naming `operation`, and marks the connection unhealthy until a command
   * succeeds again (a background PING probes it meanwhile).
   */
  async run<T>(operation: string, call: (client: Redis) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreUnavailableError(operation, "the redis connection is closed");
    if (this.command.status !== "ready") throw new StoreUnavailableError(operation, `redis is ${this.command.status}`);
    try {
      const result = await call(this.command);
      this.#failing = false;
      return result;
    } catch (err) {
      this.#markFailing();
      throw new StoreUnavailableError(operation, errorMessage(err), { cause: err });
    }
  }

  /**
   * Run a Lua script by SHA, loading it on NOSCRIPT (after a server restart the script cache is
   * empty). All keys are derived inside the script from a prefix argument, so `numkeys` is 0.
   */
  script(operation: string, script: LuaScript, args: readonly (string | number)[]): Promise<unknown> {
    return this.run(operation, async (client) => {
      try {
        return await client.evalsha(script.sha, 0, ...args);
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
        return client.eval(script.lua, 0, ...args);
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#probe);
    const clients = [this.command, ...(this.#subscriber ? [this.#subscriber] : [])];
    // quit() waits for the server; a dead server would make it hang, so fall back to disconnect().
    await Promise.all(
      clients.map(async (c) => {
        if (c.status !== "ready") return c.disconnect();
        const timer = setTimeout(() => c.disconnect(), 500);
        try {
          await c.quit();
        } catch {
          c.disconnect();
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  }

  #markFailing(): void {
    this.#failing = true;
    if (this.#probe || this.#closed) return;
    const probe = () => {
      this.#probe = undefined;
      if (this.#closed || !this.#failing) return;
      if (this.command.status !== "ready") {
        this.#probe = setTimeout(probe, 250).unref();
        return;
      }
      this.command.ping().then(
        () => (this.#failing = false),
        () => (this.#probe = setTimeout(probe, 250).unref()),
      );
    };
    this.#probe = setTimeout(probe, 250).unref();
  }

  #client(role: "cmd" | "sub", extra: RedisOptions): Redis {
    const o = this.#options;
    const maxDelay = o.maxReconnectDelayMs ?? 2000;
    const client = new Redis(o.url, {
      connectionName: `${o.clientName ?? "shotgrid-cache"}:${role}`,
      // Fail fast: nothing waits for a connection that is not there.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: o.commandTimeoutMs ?? 1000,
      connectTimeout: o.connectTimeoutMs ?? 2000,
      enableReadyCheck: true,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 16), maxDelay),
      ...extra,
    });
    const which = role === "cmd" ? "command" : "subscriber";
    let lost = false;
    client.on("ready", () => {
      if (role === "cmd") this.#failing = false;
      if (lost) this.#log.info({ client: which }, "redis connection is back");
      lost = false;
      for (const l of this.#listeners) l(which, "ready");
    });
    client.on("close", () => {
      if (!lost && !this.#closed) this.#log.warn({ client: which }, "redis connection lost; reconnecting with backoff");
      lost = true;
      for (const l of this.#listeners) l(which, "lost");
    });
    // Without a listener ioredis prints every connection error; "close" already reports the loss.
    client.on("error", (err: Error) => this.#log.debug({ client: which, err: err.message }, "redis connection error"));
    return client;
  }
}

/** A Lua script and its SHA1 (what EVALSHA wants). */
export interface LuaScript {
  lua: string;
  sha: string;
}

export function luaScript(lua: string): LuaScript {
  return { lua, sha: createHash("sha1").update(lua).digest("hex") };
}
