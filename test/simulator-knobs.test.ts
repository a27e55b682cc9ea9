import { afterEach, describe, expect, it } from "vitest";
import { openSite, toAnswer, type TestSite } from "./simulator-test-client.ts";

let site: TestSite | undefined;
afterEach(async () => {
  await site?.close();
  site = undefined;
});

describe("simulator realism knobs", () => {
  it("errorRate 1 answers every request with an injected 5xx; 0 answers none", async () => {
    site = await openSite({ dataset: "empty" });
    site.sim.knobs.set({ errorRate: 1, errorStatuses: [503, 504] });
    for (let i = 0; i < 5; i++) {
      const a = await site.get("/entity/ApiUser/1");
      expect([503, 504]).toContain(a.status);
      expect(a.body.errors[0].status).toBe(a.status);
    }
    site.sim.knobs.set({ errorRate: 0 });
    expect((await site.get("/entity/ApiUser/1")).status).toBe(200);
    expect(() => site!.sim.knobs.set({ errorRate: 2 })).toThrow(/errorRate/);
  });

  it("an outage fails every request (503, an HTML 502, or a connection reset) until it ends", async () => {
    site = await openSite({ dataset: "empty" });
    site.sim.knobs.setOutage(60_000);
    const a = await site.get("/entity/ApiUser/1");
    expect(a.status).toBe(503);
    site.sim.knobs.setOutage(60_000, "502");
    const b = await site.get("/entity/ApiUser/1");
    expect(b.status).toBe(502);
    expect(b.contentType).toMatch(/text\/html/);
    site.sim.knobs.setOutage(60_000, "reset");
    await expect(fetch(`${site.sim.url}/api/v1.1/entity/ApiUser/1`)).rejects.toThrow();
    site.sim.knobs.endOutage();
    expect((await site.get("/entity/ApiUser/1")).status).toBe(200);
    // A window in the past is over.
    site.sim.knobs.outage = { start: Date.now() - 2000, end: Date.now() - 1000, mode: "503" };
    expect((await site.get("/entity/ApiUser/1")).status).toBe(200);
  });

  it("answers 503 beyond maxConcurrent requests in flight", async () => {
    site = await openSite({ dataset: "empty" });
    site.sim.knobs.set({ maxConcurrent: 2, latencyMs: 200 });
    const answers = await Promise.all(Array.from({ length: 6 }, () => site!.get("/entity/ApiUser/1")));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(2);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThanOrEqual(4);
    expect(site.sim.stats.rejectedOverLimit).toBeGreaterThanOrEqual(4);
    site.sim.knobs.set({ maxConcurrent: 0, latencyMs: 0 });
    expect((await site.get("/entity/ApiUser/1")).status).toBe(200);
  });

  it("slowRate 1 with slowMs holds requests open (seen by the concurrency limit)", async () => {
    site = await openSite({ dataset: "empty" });
    site.sim.knobs.set({ slowRate: 1, slowMs: 300, maxConcurrent: 1 });
    const [a, b] = await Promise.all([site.get("/entity/ApiUser/1"), site.get("/entity/ApiUser/1")]);
    expect([a.status, b.status].sort()).toEqual([200, 503]);
  });

  it("injects malformed answers for the next N requests, then answers normally", async () => {
    site = await openSite({ dataset: "empty" });
    const k = site.sim.knobs;
    k.injectMalformed("truncated-json");
    const t = await site.get("/entity/ApiUser/1");
    expect(t.status).toBe(200);
    expect(() => JSON.parse(t.text)).toThrow();
    k.injectMalformed("html-502");
    const h = await site.get("/entity/ApiUser/1");
    expect(h.status).toBe(502);
    expect(h.text).toMatch(/<html>/);
    k.injectMalformed("wrong-shape", 2);
    for (let i = 0; i < 2; i++) {
      const w = await site.get("/entity/ApiUser/1");
      expect(w.status).toBe(200);
      expect(w.body).not.toHaveProperty("data");
    }
    k.injectMalformed("empty-200");
    expect((await site.get("/entity/ApiUser/1")).text).toBe("");
    expect((await site.get("/entity/ApiUser/1")).body.data.id).toBe(1);
  });

  it("commits write events late when eventCommitDelayMs is set, so ids appear out of order", async () => {
    site = await openSite({ dataset: "empty" });
    const s = site.sim.store;
    s.insert("Project", { id: 1, name: "P" });
    site.sim.knobs.set({ eventCommitDelayMs: 150 });
    const first = await site.request("PUT", "/entity/Project/1", { name: "P1" });
    expect(first.status).toBe(200);
    site.sim.knobs.set({ eventCommitDelayMs: 0 });
    await site.request("PUT", "/entity/Project/1", { name: "P2" });
    const ids = async () =>
      (await site!.search("EventLogEntry", { filters: [["id", "greater_than", 0]], sort: "id", fields: "id" })).body.data.map((d: { id: number }) => d.id);
    const early = await ids();
    expect(early).toHaveLength(1);
    expect(s.reservedEventIds()).toHaveLength(1);
    expect(early[0]).toBeGreaterThan(s.reservedEventIds()[0]!);
    await new Promise((r) => setTimeout(r, 300));
    const later = await ids();
    expect(later).toHaveLength(2);
    expect(later[0]).toBeLessThan(later[1]);
  });

  it("counts requests and token fetches", async () => {
    site = await openSite({ dataset: "empty" });
    await site.get("/entity/ApiUser/1");
    await site.get("/entity/ApiUser/1");
    expect(site.sim.stats.authRequests).toBe(1);
    expect(site.sim.stats.requests).toBe(3);
    expect(site.sim.tokensIssued()).toBe(1);
    const res = await toAnswer(await fetch(`${site.sim.url}/nowhere`));
    expect(res.status).toBe(404);
  });
});
