/**
 * `/metrics` counts Queries answered locally from the mirror and those that went upstream, by
 * reason, through the whole service (validation, cache, site).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2E, metricSum, postJson, QUERY, startE2E } from "./e2e-helpers.ts";

let e2e: E2E;

beforeAll(async () => {
  e2e = await startE2E();
}, 60_000);

afterAll(async () => {
  await e2e?.close();
});

const METRIC = "shotgrid_cache_query_answers_total";

describe("query answers in /metrics", () => {
  it("counts local answers and, by reason, those that went upstream", async () => {
    const local = await metricSum(e2e.port, METRIC, { where: "local", reason: "none" });
    const notMirrored = await metricSum(e2e.port, METRIC, { where: "upstream", reason: "type_not_mirrored" });
    const shots = await postJson(e2e.port, QUERY, { entityType: "Shot", filters: [["sg_status_list", "is", "ip"]], fields: ["code"], limit: 5 });
    expect(shots.status).toBe(200);
    expect(shots.json.freshness.source).toBe("cache");
    const tasks = await postJson(e2e.port, QUERY, { entityType: "Task", fields: ["content"], limit: 5 });
    expect(tasks.status).toBe(200);
    expect(tasks.json.freshness.source).toBe("shotgrid");
    expect(await metricSum(e2e.port, METRIC, { where: "local", reason: "none" })).toBe(local + 1);
    expect(await metricSum(e2e.port, METRIC, { where: "upstream", reason: "type_not_mirrored" })).toBe(notMirrored + 1);
  });
});
