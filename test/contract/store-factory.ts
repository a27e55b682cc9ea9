/**
 * Which store the contract suites run against: `CACHE_BACKEND=memory` (default) or `redis` (set by
 * the vitest project). With redis, the file gets its own redis-server (started before, stopped
 * after) and every store a random key prefix, cleaned up after each test.
 */
import { afterAll, afterEach, beforeAll } from "vitest";
import { MemoryStore, type CacheStore } from "../../src/cache/index.ts";
import { RedisStore } from "../../src/cluster/index.ts";
import { TestRedisServer, deletePrefix, randomPrefix } from "../support/redis-server.ts";

export type Backend = "memory" | "redis";

export interface StoreFactory {
  readonly kind: Backend;
  /** A fresh, empty store. `maxBytes` applies to memory, `ttlSeconds` to redis. */
  create(options?: { maxBytes?: number; ttlSeconds?: number }): Promise<CacheStore>;
}

export function useStoreFactory(): StoreFactory {
  const kind: Backend = process.env.CACHE_BACKEND === "redis" ? "redis" : "memory";
  let server: TestRedisServer | undefined;
  const created: { store: RedisStore; prefix: string }[] = [];
  if (kind === "redis") {
    beforeAll(async () => {
      server = await TestRedisServer.start();
    });
    afterAll(async () => {
      await server?.stop();
    });
  }
  afterEach(async () => {
    for (const { store, prefix } of created.splice(0)) {
      if (store.healthy) await deletePrefix(store.connection.command, prefix);
      await store.close();
    }
  });
  return {
    kind,
    async create(options = {}) {
      if (kind === "memory") return new MemoryStore({ maxBytes: options.maxBytes ?? 64 * 1024 * 1024 });
      const prefix = randomPrefix();
      const store = new RedisStore({ redis: { url: server!.url }, site: "contract-site", prefix, ttlSeconds: options.ttlSeconds });
      created.push({ store, prefix });
      await store.ready();
      return store;
    },
  };
}
