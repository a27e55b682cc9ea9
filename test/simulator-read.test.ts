import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARRAY_CT, HASH_CT, openSite, type TestSite } from "./simulator-test-client.ts";

let site: TestSite;
beforeAll(async () => {
  site = await openSite({ dataset: "empty" });
  const s = site.sim.store;
  s.insert("Project", { id: 1, name: "Alpha" });
  s.insert("Project", { id: 2, name: "Old Show", archived: true });
  s.insert("Sequence", { id: 10, code: "SQ010", project: { type: "Project", id: 1 } });
  s.insert("Sequence", { id: 11, code: "SQ020", project: { type: "Project", id: 1 } });
  const shots = [
    [1, "SH010", 10, "ip", 1001],
    [2, "sh020", 10, "fin", 1010],
    [3, "SH030", 11, "ip", 1020],
    [4, "SH040", 11, "wtg", 1030],
    [5, "SH050", null, "wtg", 1040],
  ] as const;
  for (const [id, code, seq, status, cutIn] of shots) {
    s.insert("Shot", {
      id,
      code,
      project: { type: "Project", id: 1 },
      sg_sequence: seq ? { type: "Sequence", id: seq } : null,
      sg_status_list: status,
      sg_cut_in: cutIn,
      created_at: `2024-01-0${id}T10:00:00Z`,
    });
  }
  s.insert("Shot", { id: 6, code: "SH_RETIRED", project: { type: "Project", id: 1 } }, { retired: true });
  s.insert("Shot", { id: 7, code: "SH_ARCHIVED", project: { type: "Project", id: 2 } });
});
afterAll(() => site.close());

const ids = (a: { body: { data: Array<{ id: number }> } }) => a.body.data.map((d) => d.id);

describe("simulator reads", () => {
  it("reads one record with the recorded placement of attributes, relationships and links", async () => {
    const a = await site.get("/entity/Shot/1?fields=*");
    expect(a.status).toBe(200);
    expect(a.contentType).toMatch(/application\/json/);
    expect(Object.keys(a.body)).toEqual(["data", "links"]);
    expect(Object.keys(a.body.data)).toEqual(["type", "attributes", "relationships", "id", "links"]);
    const d = a.body.data;
    expect(d).toMatchObject({ type: "Shot", id: 1, links: { self: "/api/v1.1/entity/shots/1" } });
    expect(d.attributes.code).toBe("SH010");
    expect(d.attributes.created_at).toBe("2024-01-01T10:00:00Z");
    expect(d.attributes).not.toHaveProperty("id");
    expect(d.attributes).not.toHaveProperty("sg_sequence");
    expect(d.relationships.sg_sequence).toEqual({
      data: { id: 10, name: "SQ010", type: "Sequence" },
      links: { self: "/api/v1.1/entity/shots/1/relationships/sg_sequence", related: "/api/v1.1/entity/sequences/10" },
    });
    expect(d.relationships.assets).toEqual({ data: [], links: { self: "/api/v1.1/entity/shots/1/relationships/assets" } });
    expect(a.body.links.self).toBe("/api/v1.1/entity/Shot/1?fields=%2A");
  });

  it("accepts plural snake case types in URLs and gives an empty link as data null", async () => {
    const a = await site.get("/entity/shots/5?fields=code,sg_sequence");
    expect(a.status).toBe(200);
    expect(a.body.data.relationships.sg_sequence).toEqual({ data: null, links: { self: "/api/v1.1/entity/shots/5/relationships/sg_sequence" } });
    expect(Object.keys(a.body.data.attributes)).toEqual(["code"]);
  });

  it("answers 404 code 104 for a missing record, and for a retired one unless return_only=retired", async () => {
    const missing = await site.get("/entity/Shot/400000");
    expect(missing.status).toBe(404);
    expect(missing.body.errors[0]).toMatchObject({ status: 404, code: 104, title: "Not Found", detail: "Shot: 400000 not found" });
    expect((await site.get("/entity/Shot/6")).status).toBe(404);
    const retired = await site.get("/entity/Shot/6?options[return_only]=retired&fields=code");
    expect(retired.status).toBe(200);
    expect(retired.body.data.attributes.code).toBe("SH_RETIRED");
  });

  it("answers 400 for an unknown entity type and a bad id", async () => {
    expect((await site.get("/entity/Spaceship/1")).body.errors[0].code).toBe(103);
    expect((await site.get("/entity/Shot/abc")).status).toBe(400);
  });

  it("follows single-entity links in fields (deep paths)", async () => {
    const a = await site.get("/entity/Shot/3?fields=sg_sequence.Sequence.code,project.Project.name,sg_sequence.Sequence.project");
    expect(a.body.data.attributes).toEqual({ "sg_sequence.Sequence.code": "SQ020", "project.Project.name": "Alpha" });
    expect(a.body.data.relationships["sg_sequence.Sequence.project"].data).toEqual({ id: 1, name: "Alpha", type: "Project" });
    const none = await site.get("/entity/Shot/5?fields=sg_sequence.Sequence.code");
    expect(none.body.data.attributes["sg_sequence.Sequence.code"]).toBeNull();
  });

  it("lists with filter[field]=value, keeps retired and archived rules", async () => {
    expect(ids(await site.get("/entity/Shot?fields=code&filter[sg_status_list]=ip"))).toEqual([1, 3]);
    expect(ids(await site.get("/entity/Shot?fields=code&filter[sg_status_list]=ip,fin"))).toEqual([1, 2, 3]);
    expect(ids(await site.get("/entity/Shot?fields=code"))).toEqual([1, 2, 3, 4, 5, 7]);
    expect(ids(await site.get("/entity/Shot?fields=code&options[include_archived_projects]=false"))).toEqual([1, 2, 3, 4, 5]);
    expect(ids(await site.get("/entity/Shot?fields=code&options[return_only]=retired"))).toEqual([6]);
    const bad = await site.get("/entity/Shot?filter[not_existing_field]=NOPE");
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].code).toBe(103);
    expect(bad.body.errors[0].title).toBe("API read() Shot.not_existing_field doesn't exist.");
    expect(Object.keys(bad.body.errors[0].source)).toEqual(["Shot.not_existing_field"]);
  });

  it("sorts by several fields, case-insensitively, ascending and descending", async () => {
    expect(ids(await site.get("/entity/Shot?fields=code&sort=sg_status_list,-code&options[include_archived_projects]=false"))).toEqual([2, 3, 1, 5, 4]);
    const bySeq = await site.search("Shot", { filters: [["sg_sequence", "is_not", null]], sort: "-sg_sequence.Sequence.code,code", fields: "code" });
    expect(ids(bySeq)).toEqual([3, 4, 1, 2]);
    expect((await site.get("/entity/Shot?sort=nope")).status).toBe(400);
  });

  it("pages with links.next on every page (even the last, empty one) and prev after page 1", async () => {
    const p1 = await site.get("/entity/Shot?fields=code&page[size]=2&page[number]=1");
    expect(ids(p1)).toEqual([1, 2]);
    expect(p1.body.links).toEqual({
      self: "/api/v1.1/entity/Shot?fields=code&page%5Bnumber%5D=1&page%5Bsize%5D=2",
      next: "/api/v1.1/entity/Shot?fields=code&page%5Bnumber%5D=2&page%5Bsize%5D=2",
    });
    const p4 = await site.get("/entity/Shot?fields=code&page[size]=2&page[number]=4");
    expect(p4.body.data).toEqual([]);
    expect(p4.body.links.next).toContain("page%5Bnumber%5D=5");
    expect(p4.body.links.prev).toContain("page%5Bnumber%5D=3");
    // A client following the stop rule (stop on a short page) sees every record once.
    const seen: number[] = [];
    for (let n = 1; ; n++) {
      const page = await site.search("Shot", { fields: "code", page: { size: 4, number: n } });
      seen.push(...ids(page));
      expect(page.body.links.next).toBe(`/api/v1.1/entity/Shot/_search?page%5Bnumber%5D=${n + 1}&page%5Bsize%5D=4`);
      if (page.body.data.length < 4) break;
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 7]);
    expect((await site.get("/entity/Shot?page[size]=0")).status).toBe(400);
  });

  it("_search takes fields/sort/page/options from the body or the query string and both content types", async () => {
    const viaQuery = await site.request("POST", "/entity/Shot/_search?fields=code&sort=-code&page[size]=2", { filters: [] }, ARRAY_CT);
    expect(ids(viaQuery)).toEqual([7, 5]);
    const hash = await site.search("Shot", { filters: { logical_operator: "and", conditions: [["code", "starts_with", "sh0"]] }, fields: ["code"] }, HASH_CT);
    expect(ids(hash)).toEqual([1, 2, 3, 4, 5]);
    const wrongForm = await site.search("Shot", { filters: [["code", "is", "x"]] }, HASH_CT);
    expect(wrongForm.status).toBe(400);
    const retired = await site.search("Shot", { filters: [], options: { return_only: "retired" }, fields: "code" });
    expect(ids(retired)).toEqual([6]);
    const notJson = await site.request("POST", "/entity/Shot/_search", "{nope", ARRAY_CT);
    expect(notJson.status).toBe(400);
    expect(notJson.body.errors[0].code).toBe(103);
  });

  it("serves relationships, preferences and a summary count", async () => {
    const rel = await site.get("/entity/Shot/1/relationships/sg_sequence");
    expect(rel.body.data).toEqual({ id: 10, name: "SQ010", type: "Sequence" });
    expect((await site.get("/preferences")).body.data).toHaveProperty("format_date_fields");
    const sum = await site.request(
      "POST",
      "/entity/Shot/_summarize",
      { filters: [["sg_status_list", "is", "ip"]], summary_fields: [{ type: "record_count", field: "id" }] },
      ARRAY_CT,
    );
    expect(sum.body).toEqual({ data: { summaries: { id: 2 }, groups: [] } });
  });
});
