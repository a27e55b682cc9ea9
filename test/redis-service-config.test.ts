/**
 * `--redis` / `REDIS_URL` and `--redis-prefix` / `REDIS_PREFIX`: validated at start with errors
 * naming the flag (and never repeating a password), and wired so the service really uses Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStore } from "../src/cluster/index.ts";
import { loadServeConfig } from "../src/config.ts";
import { GET_ENTITY, postJson, rawRequest, startE2E } from "./e2e-helpers.ts";
import { TestRedisServer, deletePrefix, randomPrefix } from "./support/redis-server.ts";

const load = (argv: string[], env: NodeJS.ProcessEnv = {}) => loadServeConfig(argv, env);

describe("--redis configuration", () => {
  it("is off by default: the memory store", () => {
    expect(load([]).redis).toBeUndefined();
  });

  it("takes the flag or REDIS_URL (flag wins), with the default prefix sgc", () => {
    expect(load(["--redis", "redis://127.0.0.1:7000/2"]).redis).toEqual({ url: "redis://127.0.0.1:7000/2", prefix: "sgc" });
    expect(load([], { REDIS_URL: "rediss://cache.example:6380", REDIS_PREFIX: "studio" }).redis).toEqual({
      url: "rediss://cache.example:6380",
      prefix: "studio",
    });
    expect(load(["--redis", "redis://a:1", "--redis-prefix", "p1"], { REDIS_URL: "redis://b:2" }).redis).toEqual({ url: "redis://a:1", prefix: "p1" });
  });

  it("rejects what is not a redis URL, naming the flag and never echoing a password", () => {
    expect(() => load(["--redis", "http://:hunter2@host:6379"])).toThrow(/--redis \(REDIS_URL\) must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(() => load(["--redis", "http://:hunter2@host:6379"])).not.toThrow(/hunter2/);
    expect(() => load(["--redis", "localhost:6379"])).toThrow(/--redis \(REDIS_URL\)/);
    expect(() => load(["--redis", "not a url :hunter2"])).toThrow(/--redis \(REDIS_URL\) is not a URL/);
    expect(() => load(["--redis", "not a url :hunter2"])).not.toThrow(/hunter2/);
    expect(() => load(["--redis", "redis://host:6379/cache"])).toThrow(/--redis \(REDIS_URL\): the path must be a database number/);
  });

  it("rejects a bad prefix, or a prefix without a Redis URL", () => {
    expect(() => load(["--redis", "redis://h:1", "--redis-prefix", "a b"])).toThrow(/--redis-prefix \(REDIS_PREFIX\) must be 1-64 letters/);
    expect(() => load(["--redis-prefix", "p"])).toThrow(/--redis-prefix \(REDIS_PREFIX\) is set but --redis \(REDIS_URL\) is not/);
  });
});

describe("the service with --redis", () => {
  let redis: TestRedisServer;
  beforeAll(async () => {
    redis = await TestRedisServer.start();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it("keeps its entries in Redis under <prefix>:{<site>}: and says so in /readyz", async () => {
    const prefix = randomPrefix();
    const e2e = await startE2E({ config: { redis: { url: redis.url, prefix } } });
    const admin = redis.client();
    try {
      expect(e2e.service.cache.store).toBeInstanceOf(RedisStore);
      const store = e2e.service.cache.store as RedisStore;
      expect(store.keyBase.startsWith(`${prefix}:{`)).toBe(true);
      const answer = await postJson(e2e.port, GET_ENTITY, { entityType: "Shot", id: 11, fields: ["code"] });
      expect(answer.json.freshness.source).toBe("cache");
      // Preloaded by this instance, into Redis: the record is there for any other instance.
      expect(await admin.exists(`${store.keyBase}e:rec:Shot:11`)).toBe(1);
      const ready = await rawRequest(e2e.port, "GET", "/readyz");
      expect(ready.status).toBe(200);
      expect(ready.json.details.store).toEqual({ backend: "redis", state: "available" });
    } finally {
      await e2e.close();
      await deletePrefix(admin, prefix);
      admin.disconnect();
    }
  });
});
