/**
 * Failure handling against the simulated site: injected 5xx, outages, the site's concurrency
 * limit, malformed answers, timeouts and aborts. Counts requests on the site side; no timing
 * asserts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { AbortedError, MalformedResponseError, ShotGridClient, TimeoutError, UnavailableError, type ShotGridClientOptions } from "../src/shotgrid/index.ts";

let site: SimulatorHandle;
let projectId: number;
const clients: ShotGridClient[] = [];

beforeAll(async () => {
  site = await startSimulator({ scriptName: "res", scriptKey: "resilience-key-0123456789", seed: 7 });
  projectId = site.store.records("Project").next().value!.id;
});
afterEach(async () => {
  site.knobs.set({ latencyMs: 0, jitterMs: 0, errorRate: 0, errorStatuses: [500, 502, 503, 504], slowRate: 0, slowMs: 0, maxConcurrent: 0 });
  site.knobs.endOutage();
  site.knobs.clearMalformed();
  await Promise.all(clients.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await site?.close();
});

/** A client with its token already fetched, so counts below are of the call under test only. */
async function client(extra: Partial<ShotGridClientOptions> = {}): Promise<ShotGridClient> {
  const c = new ShotGridClient({
    siteUrl: site.url,
    scriptName: "res",
    scriptKey: "resilience-key-0123456789",
    retryBaseDelayMs: 5,
    retryMaxDelayMs: 20,
    ...extra,
  });
  clients.push(c);
  await c.getEntity("Shot", 1);
  return c;
}

async function attempts<T>(fn: () => Promise<T>): Promise<{ outcome: T | unknown; requests: number }> {
  const before = site.stats.requests;
  const outcome = await fn().catch((e: unknown) => e);
  return { outcome, requests: site.stats.requests - before };
}

describe("transient failures", () => {
  it("retries injected 502/503/504 until the read succeeds", async () => {
    const c = await client({ maxRetries: 10 });
    site.knobs.set({ errorRate: 0.3, errorStatuses: [502, 503, 504] });
    const { outcome, requests } = await attempts(() => Promise.all(Array.from({ length: 20 }, (_, i) => c.getEntity("Shot", (i % 10) + 1))));
    expect((outcome as unknown[]).map((e) => (e as { id: number }).id)).toEqual(Array.from({ length: 20 }, (_, i) => (i % 10) + 1));
    expect(requests).toBeGreaterThan(20);
  });

  it("does not retry a 500", async () => {
    const c = await client({ maxRetries: 5 });
    site.knobs.set({ errorRate: 1, errorStatuses: [500] });
    const { outcome, requests } = await attempts(() => c.getEntity("Shot", 1));
    expect(outcome).toBeInstanceOf(UnavailableError);
    expect((outcome as UnavailableError).status).toBe(500);
    expect(requests).toBe(1);
  });

  it("does not retry a 4xx", async () => {
    const c = await client({ maxRetries: 5 });
    const { requests } = await attempts(() => c.search("Shot", { filters: [["nope", "is", 1]] }));
    expect(requests).toBe(1);
  });
});

describe("outage", () => {
  it("gives UnavailableError after the bounded number of retries", async () => {
    const c = await client({ maxRetries: 3 });
    site.knobs.setOutage(60_000, "503");
    const { outcome, requests } = await attempts(() => c.search("Shot"));
    expect(outcome).toBeInstanceOf(UnavailableError);
    expect((outcome as UnavailableError).status).toBe(503);
    expect((outcome as Error).message).toContain("after 4 attempts");
    expect(requests).toBe(4);
  });

  it("stops retrying when the total retry time is spent, whatever the count allows", async () => {
    const c = await client({ maxRetries: 100, retryBaseDelayMs: 20, retryMaxDelayMs: 20, maxRetryTimeMs: 100 });
    site.knobs.setOutage(60_000, "502");
    const { outcome, requests } = await attempts(() => c.getEntity("Shot", 1));
    expect(outcome).toBeInstanceOf(UnavailableError);
    expect(requests).toBeLessThan(50);
    expect(requests).toBeGreaterThan(1);
  });

  it("retries reads over reset connections, then reports the site unreachable", async () => {
    const c = await client({ maxRetries: 2 });
    site.knobs.setOutage(60_000, "reset");
    const { outcome, requests } = await attempts(() => c.getEntity("Shot", 1));
    expect(outcome).toBeInstanceOf(UnavailableError);
    expect((outcome as Error).message).toMatch(/cannot reach ShotGrid/);
    expect(requests).toBe(3);
  });

  it("retries a write on 503 (not processed) but not after a reset or a 502 (maybe processed)", async () => {
    const c = await client({ maxRetries: 2 });
    const data = { code: "OUTAGE_WRITE", project: { type: "Project", id: projectId } };
    site.knobs.setOutage(60_000, "503");
    expect((await attempts(() => c.create("Shot", data))).requests).toBe(3);
    site.knobs.setOutage(60_000, "reset");
    const reset = await attempts(() => c.create("Shot", data));
    expect(reset.outcome).toBeInstanceOf(UnavailableError);
    expect(reset.requests).toBe(1);
    site.knobs.setOutage(60_000, "502");
    expect((await attempts(() => c.update("Shot", 1, { description: "x" }))).requests).toBe(1);
  });

  it("never creates a record twice when the answer is lost after the site processed it", async () => {
    const c = await client({ maxRetries: 3 });
    const before = site.store.count("Shot");
    site.knobs.injectMalformed("html-502");
    const { outcome, requests } = await attempts(() => c.create("Shot", { code: "ONCE", project: { type: "Project", id: projectId } }));
    expect(outcome).toBeInstanceOf(UnavailableError);
    expect(requests).toBe(1);
    expect(site.store.count("Shot")).toBe(before + 1);
  });
});

describe("concurrency limit", () => {
  it("keeps within the site's limit when the client's cap matches it", async () => {
    const c = await client({ maxConcurrent: 2 });
    site.knobs.set({ maxConcurrent: 2, latencyMs: 15 });
    const rejectedBefore = site.stats.rejectedOverLimit;
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => c.getEntity("Shot", i + 1)));
    expect(results.every((r) => r !== null)).toBe(true);
    expect(site.stats.rejectedOverLimit).toBe(rejectedBefore);
  });

  it("surfaces the site's 503 at its limit as UnavailableError when retries are off", async () => {
    const c = await client({ maxConcurrent: 12, maxRetries: 0 });
    site.knobs.set({ maxConcurrent: 2, latencyMs: 30 });
    const outcomes = await Promise.all(Array.from({ length: 12 }, (_, i) => c.getEntity("Shot", i + 1).catch((e: unknown) => e)));
    const refused = outcomes.filter((o) => o instanceof UnavailableError) as UnavailableError[];
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((e) => e.status === 503 && e.message.includes("Too many concurrent requests"))).toBe(true);
  });

  it("rides out the site's 503 at its limit with retries", async () => {
    const c = await client({ maxConcurrent: 12, maxRetries: 12, retryBaseDelayMs: 20, retryMaxDelayMs: 100 });
    site.knobs.set({ maxConcurrent: 3, latencyMs: 10 });
    const rejectedBefore = site.stats.rejectedOverLimit;
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => c.getEntity("Shot", i + 1)));
    expect(results.map((r) => r?.id)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(site.stats.rejectedOverLimit).toBeGreaterThan(rejectedBefore);
  });
});

describe("malformed answers", () => {
  it.each(["truncated-json", "wrong-shape", "empty-200"] as const)("reports %s as MalformedResponseError, not retried", async (kind) => {
    const c = await client({ maxRetries: 3 });
    site.knobs.injectMalformed(kind);
    const { outcome, requests } = await attempts(() => c.search("Shot", { limit: 5 }));
    expect(outcome).toBeInstanceOf(MalformedResponseError);
    expect(requests).toBe(1);
  });

  it("treats a proxy's HTML 502 on a read as transient", async () => {
    const c = await client({ maxRetries: 3 });
    site.knobs.injectMalformed("html-502");
    const { outcome, requests } = await attempts(() => c.getEntity("Shot", 2));
    expect((outcome as { id: number }).id).toBe(2);
    expect(requests).toBe(2);
  });
});

describe("timeouts and aborts", () => {
  it("gives TimeoutError when the site is slower than the request timeout", async () => {
    const c = await client({ requestTimeoutMs: 100 });
    site.knobs.set({ slowRate: 1, slowMs: 1000 });
    const { outcome, requests } = await attempts(() => c.getEntity("Shot", 1));
    expect(outcome).toBeInstanceOf(TimeoutError);
    expect(requests).toBe(1);
  });

  it("gives AbortedError when the caller aborts, in flight or queued", async () => {
    const c = await client({ maxConcurrent: 1 });
    site.knobs.set({ latencyMs: 300 });
    const ac = new AbortController();
    const inFlight = c.getEntity("Shot", 1, { signal: ac.signal });
    const queued = c.getEntity("Shot", 2, { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 30));
    expect(c.upstreamLoad).toEqual({ active: 1, waiting: 1 });
    ac.abort();
    await expect(inFlight).rejects.toBeInstanceOf(AbortedError);
    await expect(queued).rejects.toBeInstanceOf(AbortedError);
    expect(c.upstreamLoad).toEqual({ active: 0, waiting: 0 });
  });
});
