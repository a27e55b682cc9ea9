/**
 * The Redis side of `serve --redis`: the shared store (entries, invalidation clock, near cache),
 * the cross-instance miss coalescer over the same connection, and how their state is reported in
 * `/readyz`. Kept out of create-app.ts so the composition root only decides *whether* to use Redis.
 */
import type { Logger } from "../logging/index.ts";
import type { ReadThroughCache } from "../cache/index.ts";
import { RedisCoalescer } from "./redis-coalescer.ts";
import { RedisStore } from "./redis-store.ts";
import { errorMessage } from "../logging/index.ts";

export interface SharedStoreConfig {
  /** `redis://…` or `rediss://…`; may hold a password, so it is never logged. */
  url: string;
  /** First part of every key. */
  prefix: string;
}

/** What `/readyz` shows under `details.store` when Redis is configured. */
export interface SharedStoreStatus {
  backend: "redis";
  /** "available": answers are cached and shared; "unavailable": answered straight from ShotGrid. */
  state: "available" | "unavailable";
  /** Why it is unavailable (never the URL). */
  reason?: string;
}

export interface SharedStore {
  readonly store: RedisStore;
  readonly coalescer: RedisCoalescer;
  /** For `/readyz`: the store's state as the cache sees it. */
  status(cache: ReadThroughCache): SharedStoreStatus;
  /** Called each time the Redis command connection becomes ready again (after an outage). */
  onReconnect(listener: () => void): void;
  close(): Promise<void>;
}

/**
 * Connect to Redis for the site `siteUrl`. Waits up to `readyTimeoutMs` for Redis; if it does not
 * answer, the service starts anyway (answering from ShotGrid) and the store connects in the
 * background with backoff: a Redis outage must not keep the cache service down.
 */
export async function openSharedStore(config: SharedStoreConfig, siteUrl: string, logger: Logger, readyTimeoutMs = 5000): Promise<SharedStore> {
  const where = redisLocation(config.url);
  const store = new RedisStore({ redis: { url: config.url, logger }, site: siteUrl, prefix: config.prefix, logger });
  const coalescer = new RedisCoalescer({ connection: store.connection, keyBase: store.keyBase, logger });
  try {
    await store.ready(readyTimeoutMs);
    logger.info({ redis: where, keyBase: store.keyBase }, "cache store: redis");
  } catch (err) {
    logger.warn({ redis: where, err: errorMessage(err) }, "cache store: redis does not answer yet; answering from ShotGrid until it does");
  }
  let wasReady = store.connection.command.status === "ready";
  return {
    store,
    coalescer,
    status(cache) {
      const reason = cache.storeBypassReason;
      if (reason === undefined) return { backend: "redis", state: "available" };
      const connection = store.connection.command.status;
      return { backend: "redis", state: "unavailable", reason: connection === "ready" ? reason : `${reason} (redis connection ${connection})` };
    },
    onReconnect(listener) {
      store.connection.onEvent((client, event) => {
        if (client !== "command") return;
        if (event === "lost") wasReady = false;
        else if (!wasReady) {
          wasReady = true;
          listener();
        }
      });
    },
    close: () => store.close(),
  };
}

/** `host:port/db` of a Redis URL, without user or password, for logs. */
export function redisLocation(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.length > 1 ? u.pathname : ""}`;
  } catch {
    return "(unparsable url)";
  }
}
