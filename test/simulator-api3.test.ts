/**
 * The simulated site's api3 protocol (`POST /api3/json`, what `shotgun_api3` speaks), over real
 * HTTP: every method served, answers equal to the REST side's for the same question, writes in
 * the same event log, batch all-or-nothing, credentials faults (102), summarize with grouping.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARRAY_CT, openSite, type TestSite } from "./simulator-test-client.ts";

let site: TestSite;
const SCRIPT = { script_name: "test-script", script_key: "test-key" };
const DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

beforeAll(async () => {
  site = await openSite({ dataset: "demo", users: [{ login: "ana", password: "ana-pw", name: "Ana Lima" }] });
});
afterAll(() => site.close());

// Test code reads arbitrary JSON shapes.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

async function rpc(method: string, params: unknown[], url = site.sim.url): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${url}/api3/json`, {
    method: "POST",
    headers: { "content-type": "application/json; charset=utf-8" },
    body: JSON.stringify({ method_name: method, params }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.json() };
}

/** A successful call's unwrapped `results`. */
async function call(method: string, args?: unknown, auth: unknown = SCRIPT): Promise<Json> {
  const a = await rpc(method, args === undefined ? [auth] : [auth, args]);
  expect(a.status).toBe(200);
  if (a.body?.exception) throw new Error(`${method}: ${a.body.message}`);
  return a.body.results;
}

/** A call that must fail: the fault body. */
async function fault(method: string, args?: unknown, auth: unknown = SCRIPT): Promise<{ message: string; error_code: number }> {
  const a = await rpc(method, args === undefined ? [auth] : [auth, args]);
  expect(a.status).toBe(200);
  expect(a.body.exception).toBe(true);
  return a.body;
}

/** What the Python client sends for a list of filters (its `_translate_filters`). */
function api3Filters(filters: unknown[], op: "and" | "or" = "and"): Json {
  return {
    logical_operator: op,
    conditions: filters.map((f) => {
      const [path, relation, ...values] = f as unknown[];
      return { path, relation, values: values.length === 1 && Array.isArray(values[0]) ? values[0] : values };
    }),
  };
}

async function eventsAfter(id: number): Promise<Json[]> {
  const a = await site.search("EventLogEntry", { filters: [["id", "greater_than", id]], sort: "id", fields: "*" });
  return a.body.data;
}

/** A REST record in the api3 shape, to compare the two answers field by field. */
function restAsApi3(r: Json): Json {
  const out: Json = { type: r.type, id: r.id, ...r.attributes };
  for (const [k, v] of Object.entries(r.relationships as Record<string, { data: unknown }>)) out[k] = v.data;
  return out;
}

describe("api3 info and credentials", () => {
  it("answers info without credentials, with a version that selects has_next_page paging and the page maximum", async () => {
    const a = await rpc("info", []);
    expect(a.status).toBe(200);
    expect(a.body).not.toHaveProperty("results");
    const v = a.body.version as number[];
    expect(v.length).toBe(3);
    expect(v[0]! * 10_000 + v[1]! * 100 + v[2]!).toBeGreaterThanOrEqual(70_400);
    expect(a.body.api_max_entities_per_page).toBe(500);
  });

  it("refuses wrong or missing credentials with HTTP 200, exception and error_code 102, naming who", async () => {
    const args = { type: "Shot", return_fields: ["code"] };
    expect(await fault("read", args, { script_name: "test-script", script_key: "nope" })).toEqual({
      exception: true,
      message: "Can't authenticate script 'test-script'",
      error_code: 102,
    });
    expect(await fault("read", args, { user_login: "ana", user_password: "bad" })).toMatchObject({ error_code: 102, message: "Can't authenticate user 'ana'" });
    expect(await fault("read", args, { session_token: "not-a-token" })).toMatchObject({ error_code: 102 });
    expect(await fault("read", args, {})).toMatchObject({ error_code: 102 });
    const none = await rpc("read", []);
    expect(none.body).toMatchObject({ exception: true, error_code: 102 });
    // The key is never echoed.
    expect(JSON.stringify(await fault("read", args, { script_name: "x", script_key: "secret-key-123" }))).not.toContain("secret-key-123");
  });

  it("accepts a user login and a session token from get_session_token; writes name that user", async () => {
    const user = { user_login: "ana", user_password: "ana-pw" };
    const { session_id } = await call("get_session_token", undefined, user);
    expect(typeof session_id).toBe("string");
    const before = site.sim.store.latestEventId;
    const rec = await call(
      "create",
      { type: "Asset", fields: [{ field_name: "code", value: "api3-ana-asset" }], return_fields: ["created_by"] },
      { session_token: session_id, reject_if_expired: true, session_uuid: "sess-ana-1" },
    );
    expect(rec.created_by).toMatchObject({ type: "HumanUser", name: "Ana Lima" });
    const evs = await eventsAfter(before);
    expect(evs.length).toBeGreaterThan(0);
    for (const e of evs) {
      expect(e.relationships.user.data).toMatchObject({ type: "HumanUser", name: "Ana Lima" });
      expect(e.attributes.session_uuid).toBe("sess-ana-1");
    }
  });

  it("sudo_as_login writes as that user; an unknown login is refused with 102", async () => {
    const rec = await call(
      "create",
      { type: "Asset", fields: [{ field_name: "code", value: "api3-sudo-asset" }], return_fields: ["created_by"] },
      { ...SCRIPT, sudo_as_login: "ana" },
    );
    expect(rec.created_by).toMatchObject({ type: "HumanUser", name: "Ana Lima" });
    expect(await fault("read", { type: "Shot" }, { ...SCRIPT, sudo_as_login: "nobody" })).toMatchObject({
      error_code: 102,
      message: expect.stringContaining("sudo_as_login"),
    });
  });

  it("the realism knobs apply to api3 calls as to REST ones", async () => {
    site.sim.knobs.injectMalformed("html-502", 1);
    const a = await fetch(`${site.sim.url}/api3/json`, {
      method: "POST",
      body: JSON.stringify({ method_name: "info", params: [] }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(a.status).toBe(502);
    await a.text();
    expect((await rpc("info", [])).status).toBe(200);
  });

  it("refuses an expired session token with 102", async () => {
    // A site of its own: expiring tokens on the shared one would end the REST token too.
    const other = await openSite({ dataset: "empty", users: [{ login: "ana", password: "ana-pw" }] });
    try {
      const got = await rpc("get_session_token", [{ user_login: "ana", user_password: "ana-pw" }], other.sim.url);
      const token = got.body.results.session_id;
      expect((await rpc("read", [{ session_token: token }, { type: "Shot" }], other.sim.url)).body.results.entities).toEqual([]);
      other.sim.expireTokens();
      expect((await rpc("read", [{ session_token: token }, { type: "Shot" }], other.sim.url)).body).toEqual({
        exception: true,
        message: "The session token has expired.",
        error_code: 102,
      });
    } finally {
      await other.close();
    }
  });
});

describe("api3 read", () => {
  const questions: Array<{ name: string; rest: Json; filters: unknown[]; op?: "and" | "or"; sorts?: Json; fields: string[] }> = [
    {
      name: "status in, sorted by code desc",
      rest: { sort: "-code" },
      filters: [["sg_status_list", "in", ["ip", "rev"]]],
      sorts: [{ field_name: "code", direction: "desc" }],
      fields: ["code", "sg_status_list", "sg_sequence", "created_at", "assets"],
    },
    {
      name: "deep path filter and field",
      rest: { sort: "id" },
      filters: [
        ["sg_sequence.Sequence.code", "ends_with", "0"],
        ["sg_cut_in", "between", 1000, 1100],
      ],
      fields: ["code", "sg_sequence.Sequence.code", "project.Project.name", "sg_cut_in"],
    },
    {
      name: "or group",
      rest: {},
      filters: [
        ["code", "contains", "0010"],
        ["sg_status_list", "is", "fin"],
      ],
      op: "or",
      fields: ["code", "updated_by"],
    },
    {
      name: "links: is, type_is, name_contains",
      rest: {},
      filters: [
        ["project", "is", { type: "Project", id: 1 }],
        ["sg_sequence", "type_is", "Sequence"],
        ["sg_sequence", "name_contains", "_0"],
      ],
      fields: ["code", "project"],
    },
  ];

  for (const q of questions) {
    it(`equals the REST read for the same question: ${q.name}`, async () => {
      const restFilters = q.op === "or" ? { logical_operator: "or", conditions: q.filters } : q.filters;
      const rest = await site.request(
        "POST",
        "/entity/Shot/_search",
        { filters: restFilters, fields: q.fields.join(","), ...q.rest, page: { size: 500 } },
        q.op === "or" ? "application/vnd+shotgun.api3_hash+json" : ARRAY_CT,
      );
      expect(rest.status).toBe(200);
      const api3 = await call("read", {
        type: "Shot",
        return_fields: q.fields,
        filters: api3Filters(q.filters, q.op),
        sorts: q.sorts,
        paging: { entities_per_page: 500, current_page: 1 },
        return_only: "active",
        return_paging_info_without_counts: true,
        api_return_image_urls: true,
      });
      expect(api3.entities.length).toBeGreaterThan(0);
      expect(api3.entities).toEqual(rest.body.data.map(restAsApi3));
      expect(api3.paging_info).toEqual({ has_next_page: false });
    });
  }

  it("gives links as {type,id,name}, date-times as YYYY-MM-DDTHH:MM:SSZ, dates as YYYY-MM-DD, and type and id on every entity", async () => {
    const [p] = (await call("read", { type: "Project", return_fields: ["name", "start_date", "created_at", "users"], filters: api3Filters([["id", "is", 1]]) }))
      .entities;
    expect(Object.keys(p).slice(0, 2)).toEqual(["type", "id"]);
    expect(p.created_at).toMatch(DATE_TIME);
    expect(p.start_date).toMatch(/^\d{4}-\d\d-\d\d$/);
    expect(p.users[0]).toEqual({ id: expect.any(Number), name: expect.any(String), type: "HumanUser" });
    const only = (await call("read", { type: "Shot", filters: api3Filters([["id", "is", 1]]) })).entities;
    expect(only).toEqual([{ type: "Shot", id: 1 }]);
  });

  it("pages with has_next_page (client mode >= 7.4) and with entity_count (older clients)", async () => {
    const filters = api3Filters([["project", "is", { type: "Project", id: 1 }]]);
    const total = (await call("read", { type: "Shot", filters, paging: { entities_per_page: 500, current_page: 1 } })).entities.length;
    const size = Math.ceil(total / 3);
    const seen: number[] = [];
    let page = 1;
    for (;;) {
      const r = await call("read", { type: "Shot", filters, paging: { entities_per_page: size, current_page: page }, return_paging_info_without_counts: true });
      seen.push(...r.entities.map((e: Json) => e.id));
      if (!r.paging_info.has_next_page) break;
      page++;
      expect(page).toBeLessThan(10);
    }
    expect(seen.length).toBe(total);
    expect(new Set(seen).size).toBe(total);
    const counted = await call("read", { type: "Shot", filters, paging: { entities_per_page: size, current_page: 2 }, return_paging_info: true });
    expect(counted.paging_info).toMatchObject({ entity_count: total, current_page: 2, entities_per_page: size });
    expect(counted.entities.map((e: Json) => e.id)).toEqual(seen.slice(size, 2 * size));
  });

  it("honours return_only retired and include_archived_projects false", async () => {
    const s = site.sim.store;
    const proj = s.create("Project", { name: "api3-archived" }, { user: site.sim.scriptUser });
    const shot = s.create("Shot", { code: "api3-arch-shot", project: { type: "Project", id: proj.id } }, { user: site.sim.scriptUser });
    s.update("Project", proj.id, { archived: true }, { user: site.sim.scriptUser });
    const gone = s.create("Shot", { code: "api3-retired-shot" }, { user: site.sim.scriptUser });
    s.retire("Shot", gone.id, { user: site.sim.scriptUser });
    const byCode = (code: string) => api3Filters([["code", "is", code]]);
    expect((await call("read", { type: "Shot", filters: byCode("api3-arch-shot") })).entities).toHaveLength(1);
    expect((await call("read", { type: "Shot", filters: byCode("api3-arch-shot"), include_archived_projects: false })).entities).toHaveLength(0);
    expect((await call("read", { type: "Shot", filters: byCode("api3-retired-shot") })).entities).toHaveLength(0);
    expect((await call("read", { type: "Shot", filters: byCode("api3-retired-shot"), return_only: "retired" })).entities).toEqual([
      { type: "Shot", id: gone.id },
    ]);
    expect(shot.id).toBeGreaterThan(0);
  });

  it("names the field and the reason on bad input", async () => {
    expect((await fault("read", { type: "Shot", filters: api3Filters([["nope", "is", 1]]) })).message).toContain("Shot.nope doesn't exist");
    expect((await fault("read", { type: "Shot", filters: api3Filters([["sg_cut_in", "is", "abc"]]) })).message).toContain("Shot.sg_cut_in");
    expect((await fault("read", { type: "Shoot" })).message).toContain("type");
    expect((await fault("read", { type: "Shot", paging: { entities_per_page: 501, current_page: 1 } })).message).toContain("paging.entities_per_page");
    expect((await fault("read", { type: "Shot", sorts: [{ field_name: "code", direction: "up" }] })).message).toContain("sorts[0].direction");
    expect((await fault("read", { type: "Shot", sorts: [{ field_name: "nope" }] })).message).toContain("Shot.nope doesn't exist");
    expect((await fault("read", { type: "Shot", return_only: "all" })).message).toContain("return_only");
    expect((await fault("frobnicate", {})).message).toContain("frobnicate");
    const bad = await fetch(`${site.sim.url}/api3/json`, { method: "POST", body: "{nope", signal: AbortSignal.timeout(10_000) });
    expect(bad.status).toBe(200);
    expect(await bad.json()).toMatchObject({ exception: true, message: expect.stringContaining("not valid JSON") });
  });
});

describe("api3 writes", () => {
  it("create answers the written fields plus return_fields; the record is visible to read and REST, and in the event log", async () => {
    const before = site.sim.store.latestEventId;
    const rec = await call("create", {
      type: "Shot",
      fields: [
        { field_name: "code", value: "api3-create-1" },
        { field_name: "project", value: { type: "Project", id: 1 } },
        { field_name: "sg_cut_in", value: 1001 },
      ],
      return_fields: ["sg_status_list", "created_at"],
    });
    expect(rec).toEqual({
      type: "Shot",
      id: expect.any(Number),
      code: "api3-create-1",
      project: { id: 1, name: expect.any(String), type: "Project" },
      sg_cut_in: 1001,
      sg_status_list: "wtg",
      created_at: expect.stringMatching(DATE_TIME),
    });
    const read = await call("read", { type: "Shot", filters: api3Filters([["id", "is", rec.id]]), return_fields: ["code", "sg_cut_in"] });
    expect(read.entities).toEqual([{ type: "Shot", id: rec.id, code: "api3-create-1", sg_cut_in: 1001 }]);
    expect((await site.get(`/entity/Shot/${rec.id}?fields=code`)).body.data.attributes.code).toBe("api3-create-1");
    const evs = await eventsAfter(before);
    expect(evs[0].attributes).toMatchObject({ event_type: "Shotgun_Shot_New", meta: { type: "new_entity", entity_type: "Shot", entity_id: rec.id } });
    expect(evs[0].relationships.user.data).toMatchObject({ type: "ApiUser" });
    const code = evs.find((e) => e.attributes.attribute_name === "code");
    expect(code.attributes.meta).toMatchObject({ new_value: "api3-create-1", in_create: true });
  });

  it("update sets fields and applies multi_entity_update_mode add / remove / set, with Change events", async () => {
    const a1 = site.sim.store.create("Asset", { code: "api3-a1" }, { user: site.sim.scriptUser });
    const a2 = site.sim.store.create("Asset", { code: "api3-a2" }, { user: site.sim.scriptUser });
    const a3 = site.sim.store.create("Asset", { code: "api3-a3" }, { user: site.sim.scriptUser });
    const shot = site.sim.store.create("Shot", { code: "api3-upd", assets: [{ type: "Asset", id: a1.id }] }, { user: site.sim.scriptUser });
    const link = (r: { id: number }) => ({ type: "Asset", id: r.id });
    const assetsOf = async () =>
      (await call("read", { type: "Shot", filters: api3Filters([["id", "is", shot.id]]), return_fields: ["assets"] })).entities[0].assets.map(
        (l: Json) => l.id,
      );
    const before = site.sim.store.latestEventId;
    const up = await call("update", {
      type: "Shot",
      id: shot.id,
      fields: [
        { field_name: "assets", value: [link(a2)], multi_entity_update_mode: "add" },
        { field_name: "description", value: "changed" },
      ],
    });
    expect(up).toEqual({
      type: "Shot",
      id: shot.id,
      assets: [
        { id: a1.id, name: "api3-a1", type: "Asset" },
        { id: a2.id, name: "api3-a2", type: "Asset" },
      ],
      description: "changed",
    });
    const evs = await eventsAfter(before);
    expect(evs.map((e) => e.attributes.attribute_name)).toEqual(["assets", "description"]);
    expect(evs[0].attributes.meta).toMatchObject({ added: [{ type: "Asset", id: a2.id }], removed: [] });
    await call("update", { type: "Shot", id: shot.id, fields: [{ field_name: "assets", value: [link(a1)] }], multi_entity_update_modes: { assets: "remove" } });
    expect(await assetsOf()).toEqual([a2.id]);
    await call("update", { type: "Shot", id: shot.id, fields: [{ field_name: "assets", value: [link(a3)], multi_entity_update_mode: "set" }] });
    expect(await assetsOf()).toEqual([a3.id]);
    expect(
      (await fault("update", { type: "Shot", id: shot.id, fields: [{ field_name: "assets", value: [], multi_entity_update_mode: "merge" }] })).message,
    ).toContain("fields[0].multi_entity_update_mode");
    expect((await fault("update", { type: "Shot", id: shot.id, fields: [{ field_name: "sg_cut_in", value: "x" }] })).message).toContain("Shot.sg_cut_in");
    expect((await fault("update", { type: "Shot", id: 999_999, fields: [{ field_name: "code", value: "x" }] })).error_code).toBe(104);
  });

  it("delete and revive answer true, then false; a record that never existed is a Fault", async () => {
    const shot = site.sim.store.create("Shot", { code: "api3-del" }, { user: site.sim.scriptUser });
    const before = site.sim.store.latestEventId;
    expect(await call("delete", { type: "Shot", id: shot.id })).toBe(true);
    expect(await call("delete", { type: "Shot", id: shot.id })).toBe(false);
    expect(await call("revive", { type: "Shot", id: shot.id })).toBe(true);
    expect(await call("revive", { type: "Shot", id: shot.id })).toBe(false);
    const evs = await eventsAfter(before);
    expect(evs.map((e) => e.attributes.event_type)).toEqual(["Shotgun_Shot_Retirement", "Shotgun_Shot_Revival"]);
    expect((await fault("delete", { type: "Shot", id: 999_999 })).message).toContain("id=999999 does not exist");
    expect((await fault("revive", { type: "Shot", id: 999_999 })).error_code).toBe(104);
    expect((await fault("delete", { type: "Shot", id: "7" })).message).toContain("id");
  });

  it("batch runs create, update and delete in one transaction and answers a list of results", async () => {
    const target = site.sim.store.create("Shot", { code: "api3-batch-target" }, { user: site.sim.scriptUser });
    const gone = site.sim.store.create("Shot", { code: "api3-batch-gone" }, { user: site.sim.scriptUser });
    const results = await call("batch", [
      { request_type: "create", type: "Shot", fields: [{ field_name: "code", value: "api3-batch-new" }], return_fields: ["sg_status_list"] },
      { request_type: "update", type: "Shot", id: target.id, fields: [{ field_name: "code", value: "api3-batch-renamed" }] },
      { request_type: "delete", type: "Shot", id: gone.id },
    ]);
    expect(results).toEqual([
      { type: "Shot", id: expect.any(Number), code: "api3-batch-new", sg_status_list: "wtg" },
      { type: "Shot", id: target.id, code: "api3-batch-renamed" },
      true,
    ]);
    expect(site.sim.store.getActive("Shot", gone.id)).toBeUndefined();
  });

  it("batch is all or nothing: one failing request leaves no record, change or event, and the fault names it", async () => {
    const target = site.sim.store.create("Shot", { code: "api3-rollback-target" }, { user: site.sim.scriptUser });
    const shots = site.sim.store.count("Shot");
    const nextEvent = site.sim.store.nextEventIdValue;
    const f = await fault("batch", [
      { request_type: "create", type: "Shot", fields: [{ field_name: "code", value: "api3-rollback-new" }] },
      { request_type: "update", type: "Shot", id: target.id, fields: [{ field_name: "code", value: "api3-rollback-renamed" }] },
      { request_type: "update", type: "Shot", id: target.id, fields: [{ field_name: "sg_status_list", value: "not-a-status" }] },
    ]);
    expect(f.message).toContain("request 2");
    expect(f.message).toContain("Shot.sg_status_list");
    expect(site.sim.store.count("Shot")).toBe(shots);
    expect(site.sim.store.get("Shot", target.id)!.fields["code"]).toBe("api3-rollback-target");
    expect(site.sim.store.nextEventIdValue).toBe(nextEvent);
    expect((await call("read", { type: "Shot", filters: api3Filters([["code", "is", "api3-rollback-new"]]) })).entities).toEqual([]);
    // The index is named even when the value at fault spells "batch".
    expect(
      (await fault("batch", [{ request_type: "update", type: "Shot", id: target.id, fields: [{ field_name: "sg_cut_in", value: "batch" }] }])).message,
    ).toMatch(/^API batch\(\) request 0 \(update\): API write Shot.sg_cut_in/);
    expect((await fault("batch", [{ request_type: "upsert", type: "Shot" }])).message).toContain("request_type");
    expect((await fault("batch", [])).message).toContain("non-empty list");
  });
});

describe("api3 summarize", () => {
  let project: { type: "Project"; id: number };
  beforeAll(() => {
    const s = site.sim.store;
    const ctx = { user: site.sim.scriptUser };
    project = { type: "Project", id: s.create("Project", { name: "api3-summaries" }, ctx).id };
    const sq1 = s.create("Sequence", { code: "AAA", project }, ctx);
    const sq2 = s.create("Sequence", { code: "BBB", project }, ctx);
    const rows: Array<[number | null, string, number]> = [
      [sq1.id, "ip", 1001],
      [sq1.id, "ip", 1012],
      [sq1.id, "fin", 1095],
      [sq2.id, "ip", 1150],
      [sq2.id, "wtg", 2001],
      [null, "wtg", 7],
    ];
    rows.forEach(([seq, status, cut], i) =>
      s.create(
        "Shot",
        { code: `api3-sum-${i}`, project, sg_status_list: status, sg_cut_in: cut, ...(seq ? { sg_sequence: { type: "Sequence", id: seq } } : {}) },
        ctx,
      ),
    );
  });

  const summaries = [
    { field: "id", type: "count" },
    { field: "sg_cut_in", type: "sum" },
    { field: "sg_cut_in", type: "maximum" },
  ];

  it("totals and groups by an entity field then a status, nested, in the documented shape", async () => {
    const r = await call("summarize", {
      type: "Shot",
      summaries: [
        { field: "id", type: "count" },
        { field: "sg_cut_in", type: "sum" },
      ],
      filters: api3Filters([["project", "is", project]]),
      grouping: [
        { field: "sg_sequence", type: "exact", direction: "asc" },
        { field: "sg_status_list", type: "exact", direction: "desc" },
      ],
    });
    expect(r.summaries).toEqual({ id: 6, sg_cut_in: 6266 });
    expect(r.groups.map((g: Json) => g.group_name)).toEqual(["AAA", "BBB", ""]);
    const [aaa, bbb, none] = r.groups;
    expect(aaa).toEqual({
      group_name: "AAA",
      group_value: { id: expect.any(Number), name: "AAA", type: "Sequence" },
      summaries: { id: 3, sg_cut_in: 3108 },
      groups: [
        { group_name: "ip", group_value: "ip", summaries: { id: 2, sg_cut_in: 2013 } },
        { group_name: "fin", group_value: "fin", summaries: { id: 1, sg_cut_in: 1095 } },
      ],
    });
    expect(bbb.groups.map((g: Json) => g.group_value)).toEqual(["wtg", "ip"]);
    expect(none).toMatchObject({ group_value: null, summaries: { id: 1, sg_cut_in: 7 } });
  });

  it("buckets numbers (tens, hundreds, thousands) and dates (day … year), desc when asked", async () => {
    const byHundreds = await call("summarize", {
      type: "Shot",
      summaries,
      filters: api3Filters([["project", "is", project]]),
      grouping: [{ field: "sg_cut_in", type: "hundreds", direction: "desc" }],
    });
    expect(byHundreds.groups.map((g: Json) => [g.group_value, g.group_name, g.summaries.id])).toEqual([
      [2000, "2000 - 2099", 1],
      [1100, "1100 - 1199", 1],
      [1000, "1000 - 1099", 3],
      [0, "0 - 99", 1],
    ]);
    const byYear = await call("summarize", {
      type: "Shot",
      summaries,
      filters: api3Filters([["project", "is", project]]),
      grouping: [{ field: "created_at", type: "year" }],
    });
    expect(byYear.groups).toHaveLength(1);
    expect(byYear.groups[0].group_value).toMatch(/^\d{4}-01-01$/);
    expect(byYear.groups[0].summaries.id).toBe(6);
  });

  it("REST _summarize honours grouping too and answers the same groups", async () => {
    const grouping = [
      { field: "sg_sequence", type: "exact", direction: "asc" },
      { field: "sg_cut_in", type: "tens", direction: "asc" },
    ];
    const api3 = await call("summarize", { type: "Shot", summaries, filters: api3Filters([["project", "is", project]]), grouping });
    const rest = await site.request(
      "POST",
      "/entity/Shot/_summarize",
      { filters: [["project", "is", project]], summary_fields: summaries, grouping },
      ARRAY_CT,
    );
    expect(rest.status).toBe(200);
    expect(rest.body.data.groups).toHaveLength(3);
    expect(rest.body.data.groups[0].groups.map((g: Json) => g.group_value)).toEqual([1000, 1010, 1090]);
    expect(rest.body.data).toEqual(api3);
  });

  it("names the parameter at fault", async () => {
    const base = { type: "Shot", summaries, filters: api3Filters([["project", "is", project]]) };
    expect((await fault("summarize", { ...base, grouping: [{ field: "sg_cut_in", type: "fortnights" }] })).message).toContain("grouping[0].type");
    expect((await fault("summarize", { ...base, grouping: [{ field: "code", type: "tens" }] })).message).toContain(
      "grouping[0].type tens does not apply to Shot.code",
    );
    expect((await fault("summarize", { ...base, grouping: [{ field: "nope", type: "exact" }] })).message).toContain("grouping[0].field");
    expect((await fault("summarize", { ...base, grouping: [{ field: "code", direction: "up" }] })).message).toContain("grouping[0].direction");
    expect((await fault("summarize", { ...base, summaries: [{ field: "id", type: "median" }] })).message).toContain("summaries[0].type");
  });
});

describe("api3 schema and preferences", () => {
  it("schema_read, schema_entity_read and schema_field_read serve the site's schema in api3 form", async () => {
    const all = await call("schema_read");
    expect(all.Shot.sg_sequence.data_type.value).toBe("entity");
    expect(all.Shot.sg_sequence.properties.valid_types.value).toEqual(["Sequence"]);
    const entities = await call("schema_entity_read");
    expect(entities.Shot).toEqual({ name: { value: "Shot", editable: false }, visible: { value: true, editable: false } });
    const one = await call("schema_field_read", { type: "Shot", field_name: "sg_status_list" });
    expect(Object.keys(one)).toEqual(["sg_status_list"]);
    expect(one.sg_status_list.properties.valid_values.value).toContain("ip");
    const fields = await call("schema_field_read", { type: "Shot" });
    expect(Object.keys(fields)).toEqual(Object.keys(all.Shot));
    expect((await fault("schema_field_read", { type: "Shot", field_name: "nope" })).message).toContain("Shot.nope doesn't exist");
  });

  it("preferences_read answers every preference, or the ones asked for", async () => {
    const all = await call("preferences_read", { prefs: [] });
    expect(all.date_component_order).toBe("month_day");
    expect(await call("preferences_read", { prefs: ["hours_per_day", "not_a_pref"] })).toEqual({ hours_per_day: 8 });
    expect((await fault("preferences_read", { prefs: "hours_per_day" })).message).toContain("prefs");
  });
});

describe("a non-JS client", () => {
  it("a Python standard-library script speaks the wire protocol: info, paged read, create, summarize, wrong key", async () => {
    const py = await openSite({ dataset: "demo", scriptName: "py-script", scriptKey: "py-key" });
    try {
      const script = fileURLToPath(new URL("./python/api3_smoke.py", import.meta.url));
      const out = await new Promise<string>((resolve, reject) => {
        execFile("python3", [script, py.sim.url, "py-script", "py-key"], { timeout: 20_000 }, (err, stdout, stderr) => {
          if (err) reject(new Error(`api3_smoke.py failed: ${stderr || err.message}`));
          else resolve(stdout);
        });
      });
      const seen = JSON.parse(out);
      const shots = [...py.sim.store.records("Shot")].filter((r) => !r.retired && (r.fields["project"] as { id: number } | undefined)?.id === 1);
      expect(seen.read_count + 1).toBe(shots.length);
      expect(seen.summary_total).toBe(shots.length);
      const created = py.sim.store.get("Shot", seen.created_id)!;
      expect(created.fields["code"]).toBe("py-smoke-été");
      expect(seen.created_code).toBe("py-smoke-été");
      const events = [...py.sim.store.records("EventLogEntry")].filter(
        (e) => (e.fields["entity"] as { id: number; type: string } | undefined)?.id === seen.created_id && e.fields["event_type"] === "Shotgun_Shot_New",
      );
      expect(events).toHaveLength(1);
      const byStatus = new Map<string, number>();
      for (const r of shots) byStatus.set(String(r.fields["sg_status_list"]), (byStatus.get(String(r.fields["sg_status_list"])) ?? 0) + 1);
      expect(seen.groups).toEqual(Object.fromEntries(byStatus));
    } finally {
      await py.close();
    }
  });
});
