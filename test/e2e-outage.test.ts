/**
 * ShotGrid down, end to end (design invariant 5): cached answers keep coming, marked stale;
 * uncached ones fail with unavailable and a clear message; once the site is back, answers are
 * fresh again and the changes made meanwhile are seen.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GET_ENTITY, pollUntil, postJson, QUERY, startE2E, type E2E } from "./e2e-helpers.ts";

let e2e: E2E;
beforeAll(async () => {
  // A short retry window so an uncached read fails over in well under a second.
  e2e = await startE2E({ config: { pollIntervalMs: 100, upstreamRetryMs: 200 } });
});
afterAll(() => e2e?.close());

const getShot = () => postJson(e2e.port, GET_ENTITY, { entityType: "Shot", id: 1, fields: ["code", "sg_status_list"] });
const queryShots = () =>
  postJson(e2e.port, QUERY, { entityType: "Shot", filters: [["sg_sequence", "is", { type: "Sequence", id: 2 }]], fields: ["code"], order: [{ field: "id" }] });

describe.each(["503", "reset"] as const)("during an outage (%s)", (mode) => {
  it("serves cached answers marked stale, fails uncached ones with unavailable, and recovers", async () => {
    const before = await getShot();
    expect(before.json.freshness).toMatchObject({ source: "cache", stale: false });
    const queried = await queryShots();
    expect(queried.status).toBe(200);

    e2e.site.knobs.setOutage(Number.POSITIVE_INFINITY, mode);
    try {
      // The follower's next poll fails; from then on cached answers say they may be behind.
      const stale = await pollUntil(getShot, (r) => r.json?.freshness?.stale === true);
      expect(stale.status).toBe(200);
      expect(stale.json).toEqual({ entity: before.json.entity, freshness: expect.objectContaining({ source: "cache", stale: true }) });
      const staleQuery = await queryShots();
      expect(staleQuery.status).toBe(200);
      expect(staleQuery.json.entities).toEqual(queried.json.entities);
      expect(staleQuery.json.freshness).toMatchObject({ source: "cache", stale: true });

      // Not preloaded and never asked for: nothing to serve.
      const uncached = await postJson(e2e.port, GET_ENTITY, { entityType: "Task", id: mode === "503" ? 1 : 2, fields: ["content"] });
      expect(uncached.status).toBe(503);
      expect(uncached.json.code).toBe("unavailable");
      expect(uncached.json.message).toMatch(/ShotGrid is unavailable and this answer is not cached/);
      expect(uncached.json.message).not.toMatch(/demo-key|Bearer|eyJ/);

      // A change made on the site during the outage (no one can read it yet).
      e2e.site.store.update("Shot", 1, { sg_status_list: mode === "503" ? "hld" : "ip" }, { user: e2e.site.scriptUser });
      expect((await getShot()).json.freshness.stale).toBe(true);
    } finally {
      e2e.site.knobs.endOutage();
    }

    const fresh = await pollUntil(getShot, (r) => r.json?.freshness?.stale === false, 5000);
    expect(fresh.json.freshness.stale).toBe(false);
    expect(fresh.json.entity.fields.sg_status_list).toBe(mode === "503" ? "hld" : "ip");
    const task = await postJson(e2e.port, GET_ENTITY, { entityType: "Task", id: mode === "503" ? 1 : 2, fields: ["content"] });
    expect(task.status).toBe(200);
    expect(task.json.freshness).toMatchObject({ source: "shotgrid", stale: false });
    expect((await queryShots()).json.freshness.stale).toBe(false);
  });
});
