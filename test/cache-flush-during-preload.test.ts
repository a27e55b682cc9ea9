/**
 * A flush (invalidateAll, after a cursor turned out too old) that lands while a type is being
 * preloaded must not leave the type marked loaded with only part of its ids known: GetEntity
 * would then answer "does not exist" for real records.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { MemoryEntityCache } from "../src/cache/index.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";

let sim: SimulatorHandle;
let client: ShotGridClient;

beforeAll(async () => {
  sim = await startSimulator({ shots: 30, assets: 2 });
  client = new ShotGridClient({ siteUrl: sim.url, scriptName: sim.scriptName, scriptKey: DEFAULT_SCRIPT_KEY, maxRetries: 0 });
});

afterAll(async () => {
  await client?.close();
  await sim?.close();
});

it("a flush during preload leaves the type not ready, and existing records are still found", async () => {
  const cache = new MemoryEntityCache({ backend: client, preloadTypes: ["Shot"], preloadPageSize: 5 });
  sim.knobs.set({ latencyMs: 30 });
  const preload = cache.preload();
  // Let a page or two arrive, then flush.
  await new Promise((r) => setTimeout(r, 80));
  await cache.invalidateAll();
  await preload;
  sim.knobs.set({ latencyMs: 0 });
  expect(cache.preloadState.ready).toBe(false);
  const last = Math.max(...[...sim.store.records("Shot")].filter((r) => !r.retired).map((r) => r.id));
  const answer = await cache.getEntity("Shot", last, ["code"]);
  expect(answer.value?.id).toBe(last);

  // A full preload afterwards makes the type ready again and answers from cache.
  await cache.preload();
  expect(cache.preloadState.ready).toBe(true);
  const again = await cache.getEntity("Shot", last, ["code"]);
  expect(again.value?.id).toBe(last);
  expect(again.freshness.source).toBe("cache");
});
