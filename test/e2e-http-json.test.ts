/**
 * The JSON contract as a client without any Connect library sees it: raw HTTP/1.1 POST and GET
 * against the whole service in front of a simulated site. Shapes are checked exactly, because
 * pipeline tools parse them by hand.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GET_ENTITY, getJson, pollUntil, postJson, QUERY, startE2E, type E2E } from "./e2e-helpers.ts";

let e2e: E2E;
beforeAll(async () => {
  e2e = await startE2E();
});
afterAll(() => e2e?.close());

const codes = (answer: { json: { entities: Array<{ fields: { code: string } }> } }) => answer.json.entities.map((e) => e.fields.code);

describe("GetEntity over raw HTTP/1.1", () => {
  it("answers a JSON POST with the exact contract shape, from the preloaded cache", async () => {
    const res = await postJson(e2e.port, GET_ENTITY, { entityType: "Shot", id: 1, fields: ["code", "sg_sequence", "sg_cut_in"] });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("application/json");
    const site = e2e.site.store.get("Shot", 1)!;
    expect(res.json).toEqual({
      entity: {
        type: "Shot",
        id: 1,
        fields: { code: site.fields["code"], sg_cut_in: 1001, sg_sequence: { type: "Sequence", id: 1, name: "NLT_010" } },
      },
      freshness: { source: "cache", ageMs: expect.any(String), asOfEventId: expect.any(String), stale: false },
    });
    // Entity ids are plain JSON numbers, not strings (int64s such as ageMs are strings in proto JSON).
    expect(res.body).toContain('"id":1,');
    expect(Number(res.json.freshness.ageMs)).toBeGreaterThanOrEqual(0);
    expect(Number(res.json.freshness.asOfEventId)).toBe(e2e.service.follower!.lastAppliedEventId);
  });

  it("answers the same over a Connect GET", async () => {
    const res = await getJson(e2e.port, GET_ENTITY, { entityType: "Shot", id: 2, fields: ["code"] });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ entity: { type: "Shot", id: 2, fields: { code: "NLT_010_0020" } }, freshness: { source: "cache" } });
    expect(Object.keys(res.json.entity.fields)).toEqual(["code"]);
  });

  it("returns the type's default fields when none are named, links as {type,id,name}", async () => {
    const res = await postJson(e2e.port, GET_ENTITY, { entityType: "Shot", id: 3 });
    expect(res.status).toBe(200);
    expect(res.json.entity.fields).toMatchObject({ code: "NLT_010_0030", project: { type: "Project", id: 1, name: "Northern Lights" } });
    expect(res.json.entity.fields).not.toHaveProperty("id");
  });

  it("answers not_found for an id the site does not have", async () => {
    const res = await postJson(e2e.port, GET_ENTITY, { entityType: "Shot", id: 999_999 });
    expect(res.status).toBe(404);
    expect(res.json).toEqual({ code: "not_found", message: expect.stringContaining("999999") });
  });

  it("reads a deep dotted path through two links", async () => {
    const res = await postJson(e2e.port, GET_ENTITY, { entityType: "Shot", id: 1, fields: ["sg_sequence.Sequence.project.Project.name"] });
    expect(res.status).toBe(200);
    expect(res.json.entity.fields).toEqual({ "sg_sequence.Sequence.project.Project.name": "Northern Lights" });
  });
});

describe("Query over raw HTTP/1.1", () => {
  it("filters in the array form, orders, and answers {entities, freshness}", async () => {
    const res = await postJson(e2e.port, QUERY, {
      entityType: "Shot",
      filters: [
        ["sg_sequence", "is", { type: "Sequence", id: 1 }],
        ["sg_cut_order", "less_than", 4],
      ],
      fields: ["code", "sg_sequence"],
      order: [{ field: "code", direction: "desc" }],
    });
    expect(res.status).toBe(200);
    expect(Object.keys(res.json)).toEqual(["entities", "freshness"]);
    expect(res.json.entities).toEqual([
      { type: "Shot", id: 3, fields: { code: "NLT_010_0030", sg_sequence: { type: "Sequence", id: 1, name: "NLT_010" } } },
      { type: "Shot", id: 2, fields: { code: "NLT_010_0020", sg_sequence: { type: "Sequence", id: 1, name: "NLT_010" } } },
      { type: "Shot", id: 1, fields: { code: "NLT_010_0010", sg_sequence: { type: "Sequence", id: 1, name: "NLT_010" } } },
    ]);
    // Shots are preloaded: the mirror answers without asking the site (src/local-query).
    expect(res.json.freshness.source).toBe("cache");
    // The same question again, fields in another order, gives the same answer.
    const again = await postJson(e2e.port, QUERY, {
      entityType: "Shot",
      filters: [
        ["sg_sequence", "is", { type: "Sequence", id: 1 }],
        ["sg_cut_order", "less_than", 4],
      ],
      fields: ["sg_sequence", "code"],
      order: [{ field: "code", direction: "desc" }],
    });
    expect(again.json.freshness.source).toBe("cache");
    expect(again.json.entities.map((e: { id: number }) => e.id)).toEqual([3, 2, 1]);
  });

  it("filters in the logical form with a nested group", async () => {
    const res = await postJson(e2e.port, QUERY, {
      entityType: "Shot",
      filters: {
        logical_operator: "or",
        conditions: [
          ["code", "is", "NLT_010_0010"],
          {
            logical_operator: "and",
            conditions: [
              ["code", "starts_with", "NLT_010_00"],
              ["sg_cut_order", "is", 2],
            ],
          },
        ],
      },
      fields: ["code"],
      order: [{ field: "code" }],
    });
    expect(res.status).toBe(200);
    expect(codes(res)).toEqual(["NLT_010_0010", "NLT_010_0020"]);
  });

  it("filters and orders on a deep dotted path", async () => {
    const res = await postJson(e2e.port, QUERY, {
      entityType: "Shot",
      filters: [["sg_sequence.Sequence.code", "in", ["NLT_010", "NLT_020"]]],
      fields: ["code", "sg_sequence.Sequence.code"],
      order: [{ field: "sg_sequence.Sequence.code", direction: "desc" }, { field: "code" }],
      limit: 3,
    });
    expect(res.status).toBe(200);
    expect(res.json.entities.map((e: { fields: Record<string, unknown> }) => e.fields["sg_sequence.Sequence.code"])).toEqual(["NLT_020", "NLT_020", "NLT_020"]);
    expect(codes(res)).toEqual(["NLT_020_0010", "NLT_020_0020", "NLT_020_0030"]);
  });

  it("pages with limit and page", async () => {
    const page = (n: number) =>
      postJson(e2e.port, QUERY, {
        entityType: "Shot",
        filters: [["sg_sequence", "is", { type: "Sequence", id: 1 }]],
        fields: ["code"],
        order: [{ field: "id" }],
        limit: 4,
        page: n,
      });
    const [p1, p2, p3, p4] = await Promise.all([page(1), page(2), page(3), page(4)]);
    expect(p1.json.entities.map((e: { id: number }) => e.id)).toEqual([1, 2, 3, 4]);
    expect(p2.json.entities.map((e: { id: number }) => e.id)).toEqual([5, 6, 7, 8]);
    expect(p3.json.entities.map((e: { id: number }) => e.id)).toEqual([9, 10]);
    expect(p4.json.entities).toEqual([]);
  });

  it("works over a Connect GET", async () => {
    const res = await getJson(e2e.port, QUERY, { entityType: "Sequence", filters: [["code", "is", "NLT_010"]], fields: ["code"] });
    expect(res.status).toBe(200);
    expect(res.json.entities).toEqual([{ type: "Sequence", id: 1, fields: { code: "NLT_010" } }]);
  });

  it("returns retired entities only when asked", async () => {
    e2e.site.store.retire("Asset", 40, { user: e2e.site.scriptUser });
    const ask = (retired: boolean) => postJson(e2e.port, QUERY, { entityType: "Asset", filters: [["id", "greater_than", 38]], fields: ["code"], retired });
    // Answers follow the event log: once the follower has applied the retirement, it shows.
    const active = await pollUntil(
      () => ask(false),
      (res) => !res.json.entities.some((e: { id: number }) => e.id === 40),
    );
    const retired = await ask(true);
    expect(active.json.entities.map((e: { id: number }) => e.id)).toEqual([39]);
    expect(retired.json.entities.map((e: { id: number }) => e.id)).toEqual([40]);
  });

  it("leaves out archived projects' entities unless includeArchivedProjects", async () => {
    e2e.site.store.update("Project", 3, { archived: true }, { user: e2e.site.scriptUser });
    const ask = (includeArchivedProjects: boolean) =>
      postJson(e2e.port, QUERY, { entityType: "Sequence", fields: ["code", "project"], order: [{ field: "id" }], includeArchivedProjects });
    const projectsOf = (res: { json: { entities: Array<{ fields: { project: { id: number } } }> } }) =>
      [...new Set(res.json.entities.map((e) => e.fields.project.id))].sort();
    // Answers follow the event log: once the follower has applied the archiving, it shows.
    const without = await pollUntil(
      () => ask(false),
      (res) => !projectsOf(res).includes(3),
    );
    const withArchived = await ask(true);
    expect(without.status).toBe(200);
    expect(projectsOf(without)).not.toContain(3);
    expect(projectsOf(withArchived)).toContain(3);
  });
});
