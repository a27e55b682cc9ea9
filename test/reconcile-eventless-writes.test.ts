/**
 * Reconcile against the simulated site: writes made without events (a script with events turned
 * off) are invisible to the event follower; a reconcile run finds them by `updated_at`, invalidates
 * what differs, counts them, and leaves evented changes alone.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, metric, request, startStack, type Stack } from "./webhook-test-kit.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ config: { webhookSecret: undefined, preloadTypes: ["Project", "Shot"] } });
});
afterAll(async () => {
  await stack?.close();
});

async function field(entityType: string, id: number, name: string): Promise<unknown> {
  const answer = await call(stack.port, "GetEntity", { entityType, id, fields: [name] });
  if (answer.status === 404) return null;
  expect(answer.status).toBe(200);
  return answer.json.entity.fields[name];
}

async function shotCodesOfProject1(): Promise<string[]> {
  const answer = await call(stack.port, "Query", {
    entityType: "Shot",
    filters: [["project", "is", { type: "Project", id: 1 }]],
    fields: ["code"],
  });
  expect(answer.status).toBe(200);
  return answer.json.entities.map((e: { fields: { code: string } }) => e.fields.code);
}

describe("reconcile", () => {
  it("finds event-less writes to preloaded and on-demand records, and invalidates them", async () => {
    const reconciler = stack.service.reconciler!;
    const shotBefore = await field("Shot", 1, "code");
    const assetBefore = await field("Asset", 1, "code"); // now held by the cache (not preloaded)
    const codesBefore = await shotCodesOfProject1();
    expect(codesBefore).toContain(shotBefore);

    stack.site.store.writeWithoutEvents("Shot", 1, { code: "SILENT_SHOT" });
    stack.site.store.writeWithoutEvents("Asset", 1, { code: "SILENT_ASSET" });
    // The event log says nothing: the cache still answers what it had.
    await stack.service.follower!.pollNow();
    expect(await field("Shot", 1, "code")).toBe(shotBefore);
    expect(await field("Asset", 1, "code")).toBe(assetBefore);
    const findingsBefore = await metric(stack.port, "shotgrid_cache_reconcile_findings_total");

    const report = await reconciler.runNow();
    expect(report.error).toBeUndefined();
    expect(report.findings).toBe(2);
    expect(report.examples).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ entityType: "Shot", id: 1, fields: expect.arrayContaining(["code", "updated_at"]) }),
        expect.objectContaining({ entityType: "Asset", id: 1, fields: expect.arrayContaining(["code"]) }),
      ]),
    );
    await stack.service.cache.whenIdle();
    expect(await field("Shot", 1, "code")).toBe("SILENT_SHOT");
    expect(await field("Asset", 1, "code")).toBe("SILENT_ASSET");
    expect(await shotCodesOfProject1()).toContain("SILENT_SHOT");
    expect(await metric(stack.port, "shotgrid_cache_reconcile_findings_total")).toBe(findingsBefore + 2);

    const readyz = await request(stack.port, "GET", "/readyz");
    expect(readyz.json.details.reconcile).toMatchObject({ findings: 2, startedAt: report.startedAt });
  });

  it("does not count changes that came with events", async () => {
    stack.site.store.update("Shot", 2, { code: "EVENTED_2" }, { user: stack.site.scriptUser });
    const report = await stack.service.reconciler!.runNow();
    expect(report.error).toBeUndefined();
    expect(report.checked).toBeGreaterThanOrEqual(1);
    expect(report.findings).toBe(0);
    expect(await field("Shot", 2, "code")).toBe("EVENTED_2");
  });

  it("finds a record created without an event in a preloaded type", async () => {
    const created = stack.site.store.insert("Shot", { code: "SILENT_NEW", project: { type: "Project", id: 1 } });
    // The preloaded type holds every record it knows of: the new id reads as missing.
    expect(await field("Shot", created.id, "code")).toBeNull();
    const report = await stack.service.reconciler!.runNow();
    expect(report.findings).toBe(1);
    expect(report.examples[0]).toMatchObject({ entityType: "Shot", id: created.id });
    await stack.service.cache.whenIdle();
    expect(await field("Shot", created.id, "code")).toBe("SILENT_NEW");
  });
});
