/**
 * Validation against the site's schema, end to end over real HTTP to the simulated site: unknown
 * types do not make one site call each (and the calls made are counted), a call's deadline
 * bounds its wait for the schema and for the site, echoed input is bounded, and the filter
 * nesting limit is the documented one.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Metrics } from "../src/server/metrics.ts";
import { SchemaRegistry } from "../src/service/schema-registry.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { GET_ENTITY, QUERY, metricSum, postJson, startE2E, type E2E } from "./e2e-helpers.ts";

/** Site calls other than token fetches so far. */
const siteCalls = (e2e: E2E) => e2e.site.stats.requests - e2e.site.stats.authRequests;
/** Schema calls the service counted in its upstream metric. */
const schemaMetric = (e2e: E2E) => metricSum(e2e.port, "shotgrid_cache_upstream_requests_total", { operation: "schema" });
/** `p`, or "still waiting" after `ms`: a call that ignores its deadline fails the test instead of stalling it. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | "still waiting"> =>
  Promise.race([p, new Promise<"still waiting">((r) => setTimeout(() => r("still waiting"), ms).unref())]);

// No poll nor reconcile during a test: every site call counted is one the requests made.
const QUIET = { pollIntervalMs: 60_000, reconcileIntervalS: 0 };

describe("unknown entity types", () => {
  let e2e: E2E;
  beforeAll(async () => {
    e2e = await startE2E({ config: QUIET });
  });
  afterAll(async () => {
    await e2e?.close();
  });

  it("loads the type list and the preloaded types' fields while preloading, once each, and decides unknown types from that list", async () => {
    // Readiness includes the schema: the type list and one field list per preloaded type (the
    // same fetch the mirror reads them from), counted in the upstream metric.
    const preloaded = e2e.service.cache.preloadTypes.length;
    expect(await schemaMetric(e2e)).toBe(1 + preloaded);
    expect(await metricSum(e2e.port, "shotgrid_cache_upstream_requests_total", { operation: "schemaFields" })).toBe(0);
    const calls = siteCalls(e2e);
    for (let i = 0; i < 3; i++) {
      const res = await postJson(e2e.port, GET_ENTITY, { entityType: "NoSuchType", id: 1 });
      expect(res.json?.code).toBe("invalid_argument");
      expect(res.json?.message).toMatch(/entityType: unknown entity type "NoSuchType"/);
    }
    // Within the refresh interval a missing type is not asked again (the next test asks after it).
    expect(siteCalls(e2e) - calls).toBe(0);
    expect(await schemaMetric(e2e)).toBe(1 + preloaded);
  });
});

describe("the type list's refresh interval", () => {
  let site: SimulatorHandle;
  let backend: ShotGridClient;
  beforeAll(async () => {
    site = await startSimulator({ shots: 1, assets: 0 });
    backend = new ShotGridClient({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY });
  });
  afterAll(async () => {
    await backend?.close();
    await site?.close();
  });

  it("asks again once the interval has passed, and at once after a schema change", async () => {
    let clock = 0;
    const metrics = new Metrics({ processMetrics: false });
    const schema = new SchemaRegistry(backend, { metrics, typeRefreshMs: 30_000, now: () => clock });
    const calls = () => site.stats.requests - site.stats.authRequests;
    const before = calls();
    expect(await schema.hasType("Shot")).toBe(true);
    expect(await schema.hasType("Nope")).toBe(false);
    expect(calls() - before).toBe(1);
    clock += 29_999;
    expect(await schema.hasType("Nope")).toBe(false);
    expect(calls() - before).toBe(1);
    clock += 2;
    expect(await schema.hasType("Nope")).toBe(false);
    expect(calls() - before).toBe(2);
    // A schema change event (events/schema-change.ts) invalidates: the next check asks at once.
    schema.invalidate();
    expect(await schema.hasType("Nope")).toBe(false);
    expect(calls() - before).toBe(3);
    expect(await metrics.text()).toContain('shotgrid_cache_upstream_requests_total{operation="schema",outcome="ok"} 3');
  });
});

describe("deadlines", () => {
  let e2e: E2E;
  beforeAll(async () => {
    e2e = await startE2E({ config: QUIET });
  });
  afterEach(() => {
    e2e.site.knobs.endOutage();
    e2e.site.knobs.set({ slowRate: 0, slowMs: 0 });
  });
  afterAll(async () => {
    await e2e?.close();
  });

  it("ends a call with connect-timeout-ms as deadline_exceeded while the site is down", async () => {
    // The schema is loaded; only the answer needs the site.
    const warm = await postJson(e2e.port, QUERY, { entityType: "Version", fields: ["code"], limit: 1 });
    expect(warm.status).toBe(200);
    e2e.site.knobs.setOutage();
    // Short enough that the client's retries (jittered backoff, four retries: about 1.5 s on
    // average) are still going when it passes: then the answer is the deadline, not "unavailable".
    const started = Date.now();
    const res = await within(
      postJson(e2e.port, QUERY, { entityType: "Version", fields: ["code"], filters: [["code", "is", "never-cached"]] }, { "connect-timeout-ms": "200" }),
      6000,
    );
    expect(res).not.toBe("still waiting");
    if (res === "still waiting") return;
    expect(res.json?.code).toBe("deadline_exceeded");
    expect(res.json?.message).toMatch(/deadline/);
    expect(Date.now() - started).toBeLessThan(200 + 1000);
  });

  it("ends it as deadline_exceeded while a type's fields are being fetched, and the fetch goes on for other callers", async () => {
    // A fresh service has the preloaded types' schemas, not Version's: a new one, with the site answering slowly.
    const fresh = await startE2E({ config: QUIET });
    try {
      fresh.site.knobs.set({ slowRate: 1, slowMs: 1500 });
      const calls = siteCalls(fresh);
      const started = Date.now();
      const patient = postJson(fresh.port, GET_ENTITY, { entityType: "Version", id: 1, fields: ["code"] });
      const hurried = await within(postJson(fresh.port, GET_ENTITY, { entityType: "Version", id: 1, fields: ["code"] }, { "connect-timeout-ms": "300" }), 6000);
      expect(hurried).not.toBe("still waiting");
      if (hurried === "still waiting") return;
      expect(hurried.json?.code).toBe("deadline_exceeded");
      expect(Date.now() - started).toBeLessThan(300 + 1000);
      // The caller that gave up did not stop the shared fetch: the other caller gets its answer,
      // from one field-list call and one read of the record.
      const answer = await within(patient, 10_000);
      expect(answer).not.toBe("still waiting");
      if (answer === "still waiting") return;
      expect(answer.status).toBe(200);
      expect(answer.json?.entity?.id).toBe(1);
      expect(siteCalls(fresh) - calls).toBe(2);
    } finally {
      fresh.site.knobs.set({ slowRate: 0, slowMs: 0 });
      await fresh.close();
    }
  }, 20_000);

  // The server's default deadline already answered in time (its interceptor rejects, and
  // connect-node then aborts the handler's signal with that deadline_exceeded error, which the
  // schema wait now honours): this keeps it so.
  it("ends a call as deadline_exceeded at the server's default deadline while a type's fields are being fetched", async () => {
    const fresh = await startE2E({ config: { ...QUIET, deadlineMs: 400 } });
    try {
      fresh.site.knobs.set({ slowRate: 1, slowMs: 3000 });
      const started = Date.now();
      const res = await within(postJson(fresh.port, GET_ENTITY, { entityType: "Version", id: 1, fields: ["code"] }), 6000);
      expect(res).not.toBe("still waiting");
      if (res === "still waiting") return;
      expect(res.json?.code).toBe("deadline_exceeded");
      expect(Date.now() - started).toBeLessThan(400 + 1000);
    } finally {
      fresh.site.knobs.set({ slowRate: 0, slowMs: 0 });
      await fresh.close();
    }
  }, 20_000);
});

describe("echoed input", () => {
  let e2e: E2E;
  beforeAll(async () => {
    e2e = await startE2E({ config: QUIET });
  });
  afterAll(async () => {
    await e2e?.close();
  });

  const huge = "A".repeat(200_000);
  const cases: Array<[string, string, unknown, RegExp]> = [
    ["a 200 KB type name", GET_ENTITY, { entityType: huge, id: 1 }, /^entityType: unknown entity type "A{64}"…\(200000 bytes\)/],
    ["a 200 KB field name", GET_ENTITY, { entityType: "Shot", id: 1, fields: [`x${huge}`] }, /^fields\[0\]: Shot has no field "xA{63}"…\(200001 bytes\)/],
    [
      "a 200 KB filter field",
      QUERY,
      { entityType: "Shot", filters: [[`x${huge}`, "is", 1]] },
      /^filters\[0\]\[0\]: Shot has no field "xA{63}"…\(200001 bytes\)/,
    ],
    ["a 200 KB operator", QUERY, { entityType: "Shot", filters: [["code", huge, 1]] }, /^filters\[0\]\[1\]: unknown operator "A{64}"…\(200000 bytes\)/],
    [
      "a 200 KB group key",
      QUERY,
      { entityType: "Shot", filters: { logical_operator: "and", conditions: [], [huge]: 1 } },
      /^filters: unknown key "A{64}"…\(200000 bytes\)/,
    ],
    [
      "a 200 KB sort direction",
      QUERY,
      { entityType: "Shot", order: [{ field: "code", direction: huge }] },
      /^order\[0\]\.direction: must be "asc" or "desc", got "A{64}"…\(200000 bytes\)/,
    ],
  ];
  it.each(cases)("%s comes back short, naming the field", async (_name, path, message, expected) => {
    const res = await postJson(e2e.port, path, message);
    expect(res.json?.code).toBe("invalid_argument");
    expect(res.json?.message).toMatch(expected);
    expect(res.body.length).toBeLessThan(400);
  });
});

describe("filter nesting", () => {
  let e2e: E2E;
  beforeAll(async () => {
    e2e = await startE2E({ config: QUIET });
  });
  afterAll(async () => {
    await e2e?.close();
  });

  /** `levels` groups, each holding the next; the innermost holds one condition. */
  const nested = (levels: number): unknown => {
    let group: unknown = { logical_operator: "and", conditions: [["id", "greater_than", 0]] };
    for (let i = 1; i < levels; i++) group = { logical_operator: "and", conditions: [group] };
    return group;
  };

  it("accepts 16 levels of groups", async () => {
    const res = await postJson(e2e.port, QUERY, { entityType: "Shot", fields: ["code"], filters: nested(16) });
    expect(res.status).toBe(200);
    expect(res.json?.entities?.length).toBeGreaterThan(0);
  });

  it("rejects 17, naming the limit", async () => {
    const res = await postJson(e2e.port, QUERY, { entityType: "Shot", fields: ["code"], filters: nested(17) });
    expect(res.json?.code).toBe("invalid_argument");
    expect(res.json?.message).toMatch(/^filters(\.conditions\[0\])+: groups are nested more than 16 levels deep \(at most 16\)/);
  });
});
