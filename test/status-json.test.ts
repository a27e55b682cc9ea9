/**
 * `/status.json` and what stands behind it: the access policy's own check with the `status`
 * scope (open when the server has none), 404 when the server keeps no status, a sample ring that
 * stays bounded, and a list of changes that keeps the last 20 from the change bus.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessPolicy, hashToken, newToken, statusAccess } from "../src/auth/index.ts";
import { ChangeBus, type Change } from "../src/events/index.ts";
import { createServer, Metrics, type Server } from "../src/server/index.ts";
import { RECENT_CHANGES, type StatusContext, StatusSampler } from "../src/status/index.ts";
import { rawRequest } from "./e2e-helpers.ts";

const context = (): StatusContext => ({ version: "9.9.9", mode: "site", store: "memory", role: "single", ready: true, reasons: [], shotgridReachable: true });

function change(eventId: number): Change {
  return {
    eventId,
    eventType: "Shotgun_Shot_Change",
    kind: "change",
    entityType: "Shot",
    entityId: eventId,
    projectId: 1,
    attributeName: "code",
    createdAt: new Date(0).toISOString(),
    user: null,
  };
}

describe("/status.json with the access policy's status scope", () => {
  const statusToken = newToken();
  const readToken = newToken();
  const limitedToken = newToken();
  const policy = AccessPolicy.fromFile({
    clients: [
      { name: "ops", tokenSha256: hashToken(statusToken), scopes: ["status"], projects: null, entityTypes: null, sudoAsLogin: null },
      { name: "tool", tokenSha256: hashToken(readToken), scopes: ["read"], projects: null, entityTypes: null, sudoAsLogin: null },
      { name: "ops-one-project", tokenSha256: hashToken(limitedToken), scopes: ["status"], projects: [12], entityTypes: null, sudoAsLogin: null },
    ],
  });
  const metrics = new Metrics({ processMetrics: false });
  const sampler = new StatusSampler({ totals: () => metrics.totals(), context });
  let guarded: Server;
  let open: Server;
  let none: Server;
  const ports: number[] = [];

  beforeAll(async () => {
    sampler.sample();
    const base = { version: "9.9.9", mode: "site", routes: () => undefined, metrics };
    guarded = createServer({ ...base, status: { report: () => sampler.report(), authorize: statusAccess(policy) } });
    open = createServer({ ...base, status: { report: () => sampler.report() } });
    none = createServer(base);
    for (const s of [guarded, open, none]) ports.push((await s.listen(0, "127.0.0.1")).port);
  });
  afterAll(async () => {
    await Promise.all([guarded, open, none].map((s) => s?.close(100)));
  });

  it("asks for a token, refuses one without the scope, answers one with it; never echoes the header", async () => {
    const missing = await rawRequest(ports[0]!, "GET", "/status.json");
    expect(missing.status).toBe(401);
    expect(missing.json).toMatchObject({ code: "unauthenticated" });
    expect(missing.json.message).toContain("Authorization: Bearer");
    const wrong = await rawRequest(ports[0]!, "GET", "/status.json", undefined, { authorization: `Bearer ${readToken}` });
    expect(wrong.status).toBe(403);
    expect(wrong.json).toMatchObject({ code: "permission_denied" });
    expect(wrong.json.message).toContain('lacks the "status" scope');
    expect(wrong.body).not.toContain(readToken);
    // The page lists every project's changes: a client limited to some projects may not see it.
    const limited = await rawRequest(ports[0]!, "GET", "/status.json", undefined, { authorization: `Bearer ${limitedToken}` });
    expect(limited.status).toBe(403);
    expect(limited.json.message).toContain("read limits");
    const bogus = await rawRequest(ports[0]!, "GET", "/status.json", undefined, { authorization: "Bearer sgc_not-a-real-token" });
    expect(bogus.status).toBe(401);
    expect(bogus.body).not.toContain("not-a-real-token");
    const ok = await rawRequest(ports[0]!, "GET", "/status.json", undefined, { authorization: `Bearer ${statusToken}` });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ version: "9.9.9", mode: "site", role: "single", shotgrid: { reachable: true } });
    // The page itself holds no figures: served to anyone, it asks for the token when it must.
    const page = await rawRequest(ports[0]!, "GET", "/status");
    expect(page.status).toBe(200);
    expect(page.body).toContain('id="login"');
  });

  it("is open without a policy check, and absent (404) on a server that keeps no status", async () => {
    expect((await rawRequest(ports[1]!, "GET", "/status.json")).status).toBe(200);
    expect((await rawRequest(ports[2]!, "GET", "/status.json")).status).toBe(404);
    expect((await rawRequest(ports[2]!, "GET", "/status")).status).toBe(404);
    // Without status, a browser on / gets the plain endpoint page, not a page polling a 404.
    const home = await rawRequest(ports[2]!, "GET", "/", undefined, { accept: "text/html" });
    expect(home.body).not.toContain("status.json");
  });
});

describe("StatusSampler", () => {
  it("keeps a bounded ring of samples and turns it into per-step rates", () => {
    const metrics = new Metrics({ processMetrics: false });
    const sampler = new StatusSampler({ totals: () => metrics.totals(), context, sampleMs: 10, windowMs: 50 });
    for (let i = 0; i < 100; i++) {
      metrics.cacheHit("entity");
      if (i % 2) metrics.cacheMiss("entity");
      metrics.rpcReceived("shotgrid.cache.v1.CacheService/GetEntity", "grpc");
      sampler.sample();
    }
    expect(sampler.samples().length).toBe(6);
    const report = sampler.report();
    expect(report.series.requestRate.length).toBe(5);
    expect(report.series.hitRate.every((r) => r === 1 || r === 0.5)).toBe(true);
    expect(report.cache).toMatchObject({ hits: 100, misses: 50, hitRate: 0.6667, upstreamCallsSaved: 100 });
    expect(report.requests.byMethod).toEqual([expect.objectContaining({ method: "shotgrid.cache.v1.CacheService/GetEntity", protocol: "grpc", total: 100 })]);
    expect(() => new StatusSampler({ totals: () => metrics.totals(), context, sampleMs: 0 })).toThrow(/sampleMs must be >= 10/);
  });

  it("lists the last 20 changes published on the bus, newest first, and stops listening when stopped", async () => {
    const bus = new ChangeBus();
    const metrics = new Metrics({ processMetrics: false });
    const sampler = new StatusSampler({ totals: () => metrics.totals(), context, bus });
    sampler.start();
    bus.publish(Array.from({ length: 25 }, (_, i) => change(i + 1)));
    await new Promise((r) => setTimeout(r, 20));
    const listed = sampler.report().changes.map((c) => c.eventId);
    expect(listed.length).toBe(RECENT_CHANGES);
    expect(listed[0]).toBe(25);
    expect(listed.at(-1)).toBe(6);
    sampler.stop();
    await new Promise((r) => setTimeout(r, 20));
    expect(bus.subscriberCount).toBe(0);
  });
});
