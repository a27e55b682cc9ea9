/**
 * Redis faults seen from outside: the whole service (`--redis`) in front of the simulated site,
 * asked through the Connect API while its private redis-server is killed mid-load (and restarted
 * empty) or made to refuse writes (data kept). Every request answers within its deadline, answers
 * during the fault come from ShotGrid, /readyz stays 200 and says the store is unavailable, a
 * change made while Redis is out is never answered stale afterwards, and caching resumes.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GET_ENTITY, QUERY, pollUntil, postJson, rawRequest, siteUpdate, startE2E, type E2E, type RawAnswer } from "./e2e-helpers.ts";
import { TestRedisServer, randomPrefix } from "./support/redis-server.ts";

/** Each request's own deadline (Connect protocol header): a fault must never push it past this. */
const DEADLINE = { "connect-timeout-ms": "3000" };

describe("service on redis: redis faults", () => {
  let redis: TestRedisServer;
  let e2e: E2E;

  beforeEach(async () => {
    redis = await TestRedisServer.start();
    e2e = await startE2E({ config: { redis: { url: redis.url, prefix: randomPrefix() }, pollIntervalMs: 100 } });
  });
  afterEach(async () => {
    await e2e?.close();
    await redis?.stop();
  });

  const getShot = (id: number): Promise<RawAnswer> => postJson(e2e.port, GET_ENTITY, { entityType: "Shot", id, fields: ["code"] }, DEADLINE);
  const shotsOfProject = (project: number): Promise<RawAnswer> =>
    postJson(e2e.port, QUERY, { entityType: "Shot", filters: [["project", "is", { type: "Project", id: project }]], fields: ["code"] }, DEADLINE);
  const readyz = async () => (await rawRequest(e2e.port, "GET", "/readyz")) as RawAnswer;
  const metric = async (name: string): Promise<number> => {
    const text = (await rawRequest(e2e.port, "GET", "/metrics")).body;
    return text
      .split("\n")
      .filter((line) => line.startsWith(name))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
  };

  /** Readers asking GetEntity and Query in a loop; each answer must be a 200 within its deadline. */
  function load(ids: number[]) {
    let stop = false;
    const sources: string[] = [];
    const failures: string[] = [];
    const readers = Array.from({ length: 3 }, async (_, r) => {
      for (let i = 0; !stop; i++) {
        const answer = r === 2 ? await shotsOfProject(1) : await getShot(ids[(i + r) % ids.length]!);
        if (answer.status !== 200) failures.push(`${answer.status} ${answer.body}`);
        else sources.push(answer.json.freshness.source);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    });
    return {
      sources,
      failures,
      async stop() {
        stop = true;
        await Promise.all(readers);
      },
    };
  }

  it("killed mid-load and restarted empty: no request fails, answers say shotgrid, no stale answer after, caching resumes", async () => {
    const id = 11;
    expect((await getShot(id)).json.freshness.source).toBe("cache"); // preloaded into Redis
    expect(await readyz()).toMatchObject({ status: 200, json: { details: { store: { backend: "redis", state: "available" } } } });

    const readers = load([11, 12, 13, 14]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await redis.kill();

    // Down: still ready (answers keep coming), and says why they come from ShotGrid.
    const down = await pollUntil(readyz, (r) => r.json?.details?.store?.state === "unavailable");
    expect(down.status).toBe(200);
    expect(down.json.details.store.reason).toBeTypeOf("string");
    expect(down.json.details.store.reason).not.toContain("redis://");
    const during = await getShot(id);
    expect(during.status).toBe(200);
    expect(during.json.freshness.source).toBe("shotgrid");
    expect(await metric("shotgrid_cache_store_healthy")).toBe(0);

    // A change on the site while Redis is down.
    await siteUpdate(e2e.site, "shots", id, { code: "CHANGED_WHILE_REDIS_DOWN" });
    expect((await getShot(id)).json.entity.fields.code).toBe("CHANGED_WHILE_REDIS_DOWN");

    await redis.restart();
    const back = await pollUntil(readyz, (r) => r.json?.details?.store?.state === "available", 10_000);
    expect(back.json.details.store.state).toBe("available");
    await readers.stop();
    expect(readers.failures.slice(0, 3)).toEqual([]);
    expect(readers.sources.length).toBeGreaterThan(0);
    expect(readers.sources).toContain("shotgrid");
    expect(await metric("shotgrid_cache_store_unavailable_total")).toBeGreaterThan(0);
    expect(await metric("shotgrid_cache_store_healthy")).toBe(1);

    // Current after recovery, and cached again.
    const after = await getShot(id);
    expect(after.json.entity.fields.code).toBe("CHANGED_WHILE_REDIS_DOWN");
    const cached = await pollUntil(getShot.bind(null, id), (r) => r.json.freshness.source === "cache");
    expect(cached.json).toMatchObject({ entity: { fields: { code: "CHANGED_WHILE_REDIS_DOWN" } }, freshness: { source: "cache" } });
    expect((await shotsOfProject(1)).status).toBe(200);
  });

  it("refusing writes while the site changes (data kept): the old entry is never served, caching resumes once writes work", async () => {
    const id = 12;
    const before = await getShot(id);
    expect(before.json.freshness.source).toBe("cache");
    const oldCode = before.json.entity.fields.code as string;
    const admin = redis.client();
    try {
      // Reads still work but every write fails (as with a full Redis under noeviction): the
      // invalidation of the coming event cannot be written, and the old entry stays in Redis.
      await admin.config("SET", "min-replicas-to-write", "1");
      await siteUpdate(e2e.site, "shots", id, { code: `${oldCode}_NEW` });
      const follower = e2e.service.follower!;
      // Told by its code, not its wording: readiness below must not count this as a site failure.
      await pollUntil(
        async () => follower.status,
        (s) => s.lastErrorCode === "CACHE_STORE_UNAVAILABLE",
        5000,
      );
      // Stop this instance's follower retrying (each failed retry also skips the store for a
      // moment): what must keep the old entry from being served is the unwritten invalidation.
      await follower.stop();
      await pollUntil(
        async () => e2e.service.cache.storeBypassReason,
        (r) => r?.includes("invalidation") === true,
        5000,
      );
      for (let i = 0; i < 5; i++) {
        const r = await getShot(id);
        expect(r.status).toBe(200);
        expect(r.json.entity.fields.code).toBe(`${oldCode}_NEW`);
        expect(r.json.freshness.source).toBe("shotgrid");
      }
      const down = await readyz();
      expect(down.status).toBe(200);
      expect(down.json.details.store.state).toBe("unavailable");
    } finally {
      await admin.config("SET", "min-replicas-to-write", "0");
      admin.disconnect();
    }
    e2e.service.follower!.start();
    // The follower's retry writes the invalidation: the store is used again, with the new value only.
    const cached = await pollUntil(getShot.bind(null, id), (r) => r.json.freshness.source === "cache", 8000);
    expect(cached.json).toMatchObject({ entity: { fields: { code: `${oldCode}_NEW` } }, freshness: { source: "cache" } });
    expect((await readyz()).json.details.store.state).toBe("available");
  });
});
