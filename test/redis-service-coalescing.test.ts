/**
 * Coalescing across instances: two read-through caches (each with its own RedisStore and
 * connections, as two processes would have) over the real simulated site. Identical cold misses
 * on both make one upstream call; a lock holder that never fills holds the others only until the
 * lock's TTL, then they fetch themselves.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { canonicalQuery, queryKey, ReadThroughCache, type EntityQuery } from "../src/cache/index.ts";
import { RedisCoalescer, RedisStore } from "../src/cluster/index.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { ObservedBackend } from "./cache-helpers.ts";
import { TestRedisServer, deletePrefix, randomPrefix } from "./support/redis-server.ts";

const LOCK_TTL_MS = 1500;

interface Instance {
  store: RedisStore;
  backend: ObservedBackend;
  cache: ReadThroughCache;
  coalescer: RedisCoalescer;
  coalesced: number;
}

describe("coalescing across instances", () => {
  let server: TestRedisServer;
  let sim: SimulatorHandle;
  let client: ShotGridClient;
  let prefix: string;
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    server = await TestRedisServer.start();
    // Latency keeps the holder's fetch in flight while the other instance misses.
    sim = await startSimulator({ shots: 24, assets: 6, knobs: { latencyMs: 80 } });
    client = new ShotGridClient({ siteUrl: sim.url, scriptName: sim.scriptName, scriptKey: DEFAULT_SCRIPT_KEY, maxRetries: 0 });
    await client.latestEventId(); // take the token once, outside the counted calls
  });
  afterAll(async () => {
    await client?.close();
    await sim?.close();
    await server?.stop();
  });

  const instance = async (name: string): Promise<Instance> => {
    const store = new RedisStore({ redis: { url: server.url, clientName: name }, site: sim.url, prefix });
    await store.ready();
    const coalescer = new RedisCoalescer({ connection: store.connection, keyBase: store.keyBase, lockTtlMs: LOCK_TTL_MS });
    const backend = new ObservedBackend(client);
    const self: Instance = { store, backend, coalescer, coalesced: 0, cache: undefined! };
    self.cache = new ReadThroughCache({
      backend,
      store,
      coalescer,
      preloadTypes: ["Project"],
      metrics: { cacheHit() {}, cacheMiss() {}, upstreamCall() {}, setCacheSize() {}, coalescedWait: () => void self.coalesced++ },
    });
    return self;
  };

  beforeEach(async () => {
    prefix = randomPrefix();
    a = await instance("instance-a");
    b = await instance("instance-b");
  });
  afterEach(async () => {
    await deletePrefix(a.store.connection.command, prefix);
    await Promise.all([a.store.close(), b.store.close()]);
  });

  const shotsOfFirstProject = (): EntityQuery => {
    const project = [...sim.store.records("Project")][0]!;
    return {
      entityType: "Shot",
      filters: [["project", "is", { type: "Project", id: project.id }]],
      fields: ["code", "sg_status_list"],
      order: [{ field: "id", direction: "asc" }],
      includeArchivedProjects: true,
      retired: false,
    };
  };

  it("N concurrent identical cold queries across two instances make one upstream call", async () => {
    const query = shotsOfFirstProject();
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).cache.query(query)));
    expect(a.backend.calls.search + b.backend.calls.search).toBe(1);
    const expected = JSON.stringify(answers[0]!.value);
    expect(answers[0]!.value.length).toBeGreaterThan(0);
    for (const answer of answers) expect(JSON.stringify(answer.value)).toBe(expected);
    // The instance that did not fetch read the other's fill from Redis: its answers say "cache".
    const waiter = a.backend.calls.search === 1 ? b : a;
    expect(waiter.coalesced).toBeGreaterThan(0);
    const waiterAnswer = await waiter.cache.query(query);
    expect(waiterAnswer.freshness.source).toBe("cache");
    expect(await a.store.connection.command.exists(a.coalescer.lockKey(queryKey(canonicalQuery(query))))).toBe(0);
  });

  it("GetEntity misses of a type that is not preloaded are coalesced too; preloaded types are not", async () => {
    const task = [...sim.store.records("Task")][0]!;
    const answers = await Promise.all([a, b, a, b].map((i) => i.cache.getEntity("Task", task.id, ["content"])));
    expect(a.backend.calls.getEntity + b.backend.calls.getEntity).toBe(1);
    for (const answer of answers) expect(answer.value?.fields.content).toBe(task.fields.content);

    const project = [...sim.store.records("Project")][0]!;
    await Promise.all([a.cache.getEntity("Project", project.id, ["name"]), b.cache.getEntity("Project", project.id, ["name"])]);
    expect(a.backend.calls.getEntity + b.backend.calls.getEntity).toBe(3);
  });

  it("a holder that never fills holds the others only until the lock expires, then each fetches itself", async () => {
    const query = shotsOfFirstProject();
    // A "dead holder": the lock is taken and nothing will ever fill the entry.
    const lockKey = a.coalescer.lockKey(queryKey(canonicalQuery(query)));
    expect(await a.store.connection.command.set(lockKey, "dead-holder", "PX", LOCK_TTL_MS, "NX")).toBe("OK");
    const pending = Promise.all([a.cache.query(query), b.cache.query(query), a.cache.query(query)]);
    await new Promise((r) => setTimeout(r, 200));
    // Waiting, not fetching, while the lock stands.
    expect(a.backend.calls.search + b.backend.calls.search).toBe(0);
    const answers = await pending;
    for (const answer of answers) expect(answer.value.length).toBeGreaterThan(0);
    // Whoever takes the expired lock first fetches; the other may read its fill or, having timed
    // out at the same moment, fetch too: never more than one call per instance.
    const calls = a.backend.calls.search + b.backend.calls.search;
    expect(calls).toBeGreaterThanOrEqual(1);
    expect(calls).toBeLessThanOrEqual(2);
    expect(a.backend.calls.search).toBeLessThanOrEqual(1);
    expect(b.backend.calls.search).toBeLessThanOrEqual(1);
  });
});
