/**
 * The service's api3 front (`POST /api3/json`, what `shotgun_api3` speaks) end to end against the
 * simulated site over real HTTP: reads equal the site's REST answers for the same question and a
 * second identical read makes no upstream request; paging in both client modes; summaries and
 * schema from the cache; writes through the write path, visible to the next read; a change made
 * on the site reaches api3 readers through the event log; wrong credentials get 102 even for
 * cached answers; a method only the site serves is relayed; no credential reaches the logs.
 */
import { execFile } from "node:child_process";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readsOnly } from "../src/api3/pass-through.ts";
import { startService } from "../src/app/create-app.ts";
import { addField, DEFAULT_SCRIPT_KEY, startSimulator } from "../src/simulator/index.ts";
import type { Entity } from "../src/shotgrid/types.ts";
import { metricSum, pollUntil, siteUpdate, startE2E, testConfig, type E2E } from "./e2e-helpers.ts";

// Test code reads arbitrary JSON shapes.
type Json = any;

const USER = { login: "ana", password: "ana-secret-pw", name: "Ana Lima" };
let e2e: E2E;
let SCRIPT: { script_name: string; script_key: string };

beforeAll(async () => {
  // The follower polls only when told (pollNow): the site's request count then moves only with what api3 asks.
  e2e = await startE2E({ site: { users: [USER] }, config: { pollIntervalMs: 3_600_000 } });
  SCRIPT = { script_name: e2e.site.scriptName, script_key: DEFAULT_SCRIPT_KEY };
}, 30_000);
afterAll(() => e2e.close());

async function post(url: string, method: string, params: unknown[]): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${url}/api3/json`, {
    method: "POST",
    headers: { "content-type": "application/json; charset=utf-8" },
    body: JSON.stringify({ method_name: method, params }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.json() };
}

/** A successful call's `results` (or the whole answer when it has none, as the client takes it). */
async function call(method: string, args?: unknown, auth: unknown = SCRIPT, url = e2e.url): Promise<Json> {
  const a = await post(url, method, args === undefined ? [auth] : [auth, args]);
  expect(a.status).toBe(200);
  if (a.body?.exception) throw new Error(`${method}: ${a.body.error_code} ${a.body.message}`);
  return a.body && typeof a.body === "object" && "results" in a.body ? a.body.results : a.body;
}

async function fault(method: string, args?: unknown, auth: unknown = SCRIPT): Promise<{ message: string; error_code: number }> {
  const a = await post(e2e.url, method, args === undefined ? [auth] : [auth, args]);
  expect(a.status).toBe(200);
  expect(a.body.exception).toBe(true);
  return a.body;
}

/** What the Python client sends for a list of filters (its `_translate_filters`). */
function api3Filters(filters: unknown[], op: "and" | "or" = "and"): Json {
  return {
    logical_operator: op,
    conditions: filters.map((f) => {
      if (!Array.isArray(f)) return f;
      const [path, relation, ...values] = f as unknown[];
      return { path, relation, values: values.length === 1 && Array.isArray(values[0]) ? values[0] : values };
    }),
  };
}

function flat(e: Entity, fields: string[]): Record<string, unknown> {
  return { type: e.type, id: e.id, ...Object.fromEntries(fields.map((f) => [f, e.fields[f] ?? null])) };
}

/** Requests the simulated site has received so far (auth included). */
const upstream = () => e2e.site.stats.requests;

describe("info", () => {
  it("answers without credentials, with a version that makes the client page with has_next_page", async () => {
    const a = await post(e2e.url, "info", []);
    expect(a.status).toBe(200);
    expect(a.body.version.slice(0, 3) >= [7, 4, 0]).toBe(true);
    expect(a.body.version.length).toBeGreaterThanOrEqual(3);
    expect(a.body.api_max_entities_per_page).toBe(500);
  });
});

describe("read", () => {
  const fields = ["code", "sg_status_list", "sg_sequence", "created_at", "sg_sequence.Sequence.code"];
  const filters = [
    ["project", "is", { type: "Project", id: 1 }],
    {
      logical_operator: "or",
      conditions: [
        { path: "sg_status_list", relation: "is", values: ["ip"] },
        { path: "sg_sequence.Sequence.code", relation: "starts_with", values: ["SQ"] },
      ],
    },
  ];
  const args = () => ({
    type: "Shot",
    return_fields: fields,
    filters: api3Filters(filters),
    return_only: "active",
    paging: { entities_per_page: 500, current_page: 1 },
    sorts: [{ field_name: "code", direction: "desc" }],
    api_return_image_urls: true,
    return_paging_info_without_counts: true,
  });

  it("equals what the site's REST API answers for the same question, and a second identical read makes no upstream request", async () => {
    const got = await call("read", args());
    const rest = await e2e.service.backend.search("Shot", {
      fields,
      filters: {
        logical_operator: "and",
        conditions: [
          ["project", "is", { type: "Project", id: 1 }],
          {
            logical_operator: "or",
            conditions: [
              ["sg_status_list", "is", "ip"],
              ["sg_sequence.Sequence.code", "starts_with", "SQ"],
            ],
          },
        ],
      },
      sort: [{ field: "code", direction: "desc" }],
    });
    expect(rest.length).toBeGreaterThan(2);
    expect(got.entities).toEqual(rest.map((e) => flat(e, fields)));
    expect(got.paging_info).toEqual({ has_next_page: false });
    for (const s of got.entities) {
      expect(s.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      if (s.sg_sequence) expect(Object.keys(s.sg_sequence).sort()).toEqual(["id", "name", "type"]);
    }
    const before = upstream();
    expect(await call("read", args())).toEqual(got);
    expect(upstream()).toBe(before);
  });

  it.each([
    ["in (a list)", [["id", "in", [1, 2, 3]]]],
    ["in (flattened)", [["id", "in", 1, 2, 3]]],
    ["between", [["sg_cut_in", "between", 1000, 1100]]],
    ["is null", [["sg_sequence", "is", null]]],
    ["is_not on a link", [["sg_sequence", "is_not", { type: "Sequence", id: 1 }]]],
    ["name_contains", [["sg_sequence", "name_contains", "1"]]],
    ["type_is", [["sg_sequence", "type_is", "Sequence"]]],
    ["multi-entity is", [["assets", "is", { type: "Asset", id: 1 }]]],
    ["in_last (relative time)", [["created_at", "in_last", 3650, "DAY"]]],
    ["deep path", [["sg_sequence.Sequence.sg_status_list", "in", ["ip", "wtg"]]]],
    [
      "nested groups",
      [
        {
          filter_operator: "any",
          filters: [
            ["code", "ends_with", "0"],
            {
              filter_operator: "all",
              filters: [
                ["sg_cut_in", "greater_than", 1000],
                ["sg_status_list", "is_not", "omt"],
              ],
            },
          ],
        },
      ],
    ],
  ])("the %s filter reads what the site's REST API answers", async (_name, filters) => {
    const toApi3 = (items: unknown[], op = "all"): Json => ({
      logical_operator: op === "any" ? "or" : "and",
      conditions: items.map((f: Json) => (Array.isArray(f) ? api3Filters([f]).conditions[0] : toApi3(f.filters, f.filter_operator))),
    });
    const toRest = (items: unknown[], op = "all"): Json => ({
      logical_operator: op === "any" ? "or" : "and",
      conditions: items.map((f: Json) => (Array.isArray(f) ? f : toRest(f.filters, f.filter_operator))),
    });
    const got = await call("read", {
      type: "Shot",
      return_fields: ["code"],
      filters: toApi3(filters as unknown[]),
      sorts: [{ field_name: "id", direction: "asc" }],
    });
    const rest = await e2e.service.backend.search("Shot", {
      fields: ["code"],
      filters: toRest(filters as unknown[]),
      sort: [{ field: "id", direction: "asc" }],
    });
    expect(got.entities).toEqual(rest.map((e) => flat(e, ["code"])));
  });

  it("pages like ShotGrid in both client modes: has_next_page, and entity_count", async () => {
    const all = (await call("read", { ...args(), paging: { entities_per_page: 500, current_page: 1 } })).entities;
    const pages: Json[] = [];
    for (let page = 1; page < 50; page++) {
      const a = await call("read", { ...args(), paging: { entities_per_page: 2, current_page: page } });
      pages.push(...a.entities);
      expect(a.entities.length).toBeLessThanOrEqual(2);
      if (!a.paging_info.has_next_page) break;
    }
    expect(pages).toEqual(all);
    const { return_paging_info_without_counts: _, ...old } = args();
    const counted = await call("read", { ...old, return_paging_info: true, paging: { entities_per_page: 2, current_page: 2 } });
    expect(counted.entities).toEqual(all.slice(2, 4));
    expect(counted.paging_info).toEqual({ entity_count: all.length, current_page: 2, entities_per_page: 2, page_count: Math.ceil(all.length / 2) });
  });

  it("return_only retired and include_archived_projects reach the query; only id asked gives type and id", async () => {
    const ids = await call("read", {
      type: "Shot",
      return_fields: ["id"],
      filters: api3Filters([["id", "in", [1, 2, 3]]]),
      paging: { entities_per_page: 10, current_page: 1 },
    });
    expect(ids.entities).toEqual([1, 2, 3].map((id) => ({ type: "Shot", id })));
    // On the site: a shot retired and a project archived (made there, seen by both sides fresh: no api3 read cached them).
    e2e.site.store.retire("Shot", 3);
    e2e.site.store.update("Project", 2, { archived: true });
    const retiredIds = [...e2e.site.store.records("Shot")].filter((r) => r.retired).map((r) => r.id);
    expect(retiredIds).toContain(3);
    const retired = await call("read", { type: "Shot", return_fields: ["code"], return_only: "retired", return_paging_info: true });
    expect(retired.entities.map((e: Json) => e.id).sort()).toEqual(retiredIds.sort());
    expect(retired.paging_info.entity_count).toBe(retiredIds.length);
    const unarchived = await call("read", { type: "Shot", return_fields: ["code"], include_archived_projects: false, paging: { entities_per_page: 500 } });
    const rest = await e2e.service.backend.search("Shot", { fields: ["code"], includeArchivedProjects: false });
    expect(unarchived.entities.map((e: Json) => e.id).sort()).toEqual(rest.map((e) => e.id).sort());
    const all = await e2e.service.backend.search("Shot", { fields: ["code"] });
    expect(rest.length).toBeLessThan(all.length);
    e2e.site.store.update("Project", 2, { archived: false });
    e2e.site.store.revive("Shot", 3);
    await e2e.service.follower?.pollNow();
  });

  it("bad input is a fault naming the api3 parameter and the reason, as the service's own validation says it", async () => {
    const unknownField = await fault("read", { ...args(), return_fields: ["code", "nope"] });
    expect(unknownField.error_code).toBe(103);
    expect(unknownField.message).toContain("return_fields[1]");
    expect(unknownField.message).toContain('Shot has no field "nope"');
    const badOp = await fault("read", { ...args(), filters: api3Filters([["code", "greater_than_ever", "x"]]) });
    expect(badOp.message).toContain("filters.conditions[0][1]");
    expect((await fault("read", { ...args(), paging: { entities_per_page: 501, current_page: 1 } })).message).toContain("paging.entities_per_page");
    expect((await fault("read", { ...args(), type: "NoSuchType" })).message).toMatch(/type: unknown entity type "NoSuchType"/);
  });
});

describe("credentials", () => {
  it("a wrong key, password or session token gets 102 even for an answer the cache holds, and never echoes the secret", async () => {
    const args = { type: "Project", return_fields: ["name"], paging: { entities_per_page: 50, current_page: 1 } };
    await call("read", args);
    const wrongKey = await fault("read", args, { ...SCRIPT, script_key: "wrong-key-12345" });
    expect(wrongKey.error_code).toBe(102);
    expect(wrongKey.message).not.toContain("wrong-key-12345");
    expect((await fault("read", args, { user_login: USER.login, user_password: "bad-password-1" })).error_code).toBe(102);
    expect((await fault("read", args, { session_token: "not-a-session-token" })).error_code).toBe(102);
    expect((await fault("read", args, {})).error_code).toBe(102);
    // A second wrong call is refused again: refusals are not remembered as good.
    expect((await fault("read", args, { ...SCRIPT, script_key: "wrong-key-12345" })).error_code).toBe(102);
  });

  it("a verified credential is remembered: cached reads pay no round trip; a user login and a session token work too", async () => {
    const args = { type: "Project", return_fields: ["name", "code"], paging: { entities_per_page: 50, current_page: 1 } };
    const user = { user_login: USER.login, user_password: USER.password };
    const first = await call("read", args, user);
    const verifications = e2e.service.api3.verifier.verifications;
    const before = upstream();
    expect(await call("read", args, user)).toEqual(first);
    expect(upstream()).toBe(before);
    expect(e2e.service.api3.verifier.verifications).toBe(verifications);
    const session = (await call("get_session_token", undefined, user)).session_id;
    expect(typeof session).toBe("string");
    expect(await call("read", args, { session_token: session, reject_if_expired: true })).toEqual(first);
    expect(await call("read", args, { ...SCRIPT, sudo_as_login: USER.login })).toEqual(first);
    expect((await fault("read", args, { ...SCRIPT, sudo_as_login: "nobody-here" })).error_code).toBe(102);
  });
});

describe("summarize and schema", () => {
  it("summarize with grouping equals the site's REST _summarize, and is cached", async () => {
    const args = {
      type: "Shot",
      summaries: [{ field: "id", type: "count" }],
      filters: api3Filters([["project", "is", { type: "Project", id: 1 }]]),
      grouping: [{ field: "sg_status_list", type: "exact", direction: "asc" }],
    };
    const got = await call("summarize", args);
    const rest = await e2e.service.backend.summarize!("Shot", {
      summaryFields: [{ field: "id", type: "count" }],
      filters: [["project", "is", { type: "Project", id: 1 }]],
      grouping: [{ field: "sg_status_list", type: "exact", direction: "asc" }],
    });
    expect(got).toEqual(rest);
    expect(got.groups.length).toBeGreaterThan(1);
    const before = upstream();
    expect(await call("summarize", args)).toEqual(got);
    expect(upstream()).toBe(before);
    expect((await fault("summarize", { ...args, summaries: [{ field: "nope", type: "count" }] })).message).toContain("summaries[0].field");
  });

  it("schema_field_read and schema_entity_read equal the site's own api3 answers and are cached", async () => {
    const field = await call("schema_field_read", { type: "Shot", field_name: "code" });
    expect(field).toEqual(await call("schema_field_read", { type: "Shot", field_name: "code" }, SCRIPT, e2e.site.url));
    const before = upstream();
    expect(await call("schema_field_read", { type: "Shot", field_name: "code" })).toEqual(field);
    expect(upstream()).toBe(before);
    const types = await call("schema_entity_read");
    expect(types).toEqual(await call("schema_entity_read", undefined, SCRIPT, e2e.site.url));
  });

  it("a schema change on the site (a field created) drops the cached schema answers once the follower applies its event", async () => {
    const before = await call("schema_field_read", { type: "Asset" });
    expect(before).not.toHaveProperty("sg_api3_mood");
    addField(e2e.site.store, "Asset", "sg_api3_mood", { dataType: "text", displayName: "Mood" });
    // Still the held answer until the event is applied: no call reaches the site.
    expect(await call("schema_field_read", { type: "Asset" })).toEqual(before);
    await e2e.service.follower?.pollNow();
    const after = await call("schema_field_read", { type: "Asset" });
    expect(after.sg_api3_mood.data_type.value).toBe("text");
    // The new field can be read at once: the validation schema was refreshed too.
    const read = await call("read", { type: "Asset", return_fields: ["sg_api3_mood"], paging: { entities_per_page: 1, current_page: 1 } });
    expect(read.entities[0]).toHaveProperty("sg_api3_mood", null);
  });

  it("a write drops the cached summaries of its type", async () => {
    const args = { type: "Shot", summaries: [{ field: "id", type: "record_count" }], filters: api3Filters([["project", "is", { type: "Project", id: 2 }]]) };
    const before = (await call("summarize", args)).summaries.id;
    await call("create", {
      type: "Shot",
      fields: [
        { field_name: "code", value: "summary-by-api3" },
        { field_name: "project", value: { type: "Project", id: 2 } },
      ],
    });
    expect((await call("summarize", args)).summaries.id).toBe(before + 1);
  });
});

describe("writes and freshness", () => {
  it("create, update, delete, revive and batch answer as ShotGrid does, and the next read shows each write at once", async () => {
    const project = { type: "Project", id: 1 };
    const readBack = async (id: number, returnOnly = "active") =>
      (
        await call("read", {
          type: "Shot",
          return_fields: ["code", "sg_status_list"],
          filters: api3Filters([["id", "is", id]]),
          return_only: returnOnly,
          paging: { entities_per_page: 1, current_page: 1 },
        })
      ).entities;
    // Cache the empty answer first: the write must invalidate it.
    const list = { type: "Shot", return_fields: ["code"], filters: api3Filters([["code", "starts_with", "api3-"]]) };
    expect((await call("read", list)).entities).toEqual([]);
    const created = await call("create", {
      type: "Shot",
      fields: [
        { field_name: "code", value: "api3-été" },
        { field_name: "project", value: project },
      ],
      return_fields: ["sg_status_list"],
    });
    expect(created).toMatchObject({ type: "Shot", code: "api3-été", project: { type: "Project", id: 1 } });
    expect(created).toHaveProperty("sg_status_list");
    expect((await call("read", list)).entities).toEqual([{ type: "Shot", id: created.id, code: "api3-été" }]);
    const updated = await call("update", { type: "Shot", id: created.id, fields: [{ field_name: "code", value: "api3-renamed" }] });
    expect(updated).toEqual({ type: "Shot", id: created.id, code: "api3-renamed" });
    expect((await readBack(created.id))[0].code).toBe("api3-renamed");
    expect(await call("delete", { type: "Shot", id: created.id })).toBe(true);
    expect(await readBack(created.id)).toEqual([]);
    // Already retired: false, as ShotGrid's api3 says; a record that never existed is a fault.
    expect(await call("delete", { type: "Shot", id: created.id })).toBe(false);
    expect((await fault("delete", { type: "Shot", id: 987_654 })).error_code).toBe(104);
    expect(await readBack(created.id, "retired")).toHaveLength(1);
    expect(await call("revive", { type: "Shot", id: created.id })).toBe(true);
    expect(await readBack(created.id)).toHaveLength(1);
    const results = await call("batch", [
      {
        request_type: "create",
        type: "Shot",
        fields: [
          { field_name: "code", value: "api3-batch" },
          { field_name: "project", value: project },
        ],
        return_fields: ["id"],
      },
      { request_type: "update", type: "Shot", id: created.id, fields: [{ field_name: "sg_status_list", value: "fin" }] },
      { request_type: "delete", type: "Shot", id: created.id },
    ]);
    expect(results).toHaveLength(3);
    expect(results[0]).toMatchObject({ type: "Shot", code: "api3-batch" });
    expect(results[1]).toEqual({ type: "Shot", id: created.id, sg_status_list: "fin" });
    expect(results[2]).toBe(true);
    expect((await call("read", list)).entities).toEqual([{ type: "Shot", id: results[0].id, code: "api3-batch" }]);
    expect((await fault("update", { type: "Shot", id: 999_999, fields: [{ field_name: "code", value: "x" }] })).error_code).toBe(104);
  });

  it("a write is made as the caller: ShotGrid's event log names the user whose password was sent, or the sudo login", async () => {
    const ana = [...e2e.site.store.records("HumanUser")].find((r) => r.fields.login === USER.login)!;
    const author = (id: number) =>
      [...e2e.site.store.records("EventLogEntry")].find(
        (e) => e.fields.event_type === "Shotgun_Shot_New" && (e.fields.entity as { id: number } | null)?.id === id,
      )?.fields.user;
    const mine = await call(
      "create",
      { type: "Shot", fields: [{ field_name: "code", value: "api3-by-ana" }] },
      { user_login: USER.login, user_password: USER.password },
    );
    expect(author(mine.id)).toMatchObject({ type: "HumanUser", id: ana.id });
    const sudo = await call("create", { type: "Shot", fields: [{ field_name: "code", value: "api3-sudo-ana" }] }, { ...SCRIPT, sudo_as_login: USER.login });
    expect(author(sudo.id)).toMatchObject({ type: "HumanUser", id: ana.id });
  });

  it("multi_entity_update_modes add and remove links", async () => {
    const asset = (await call("read", { type: "Asset", return_fields: ["shots"], paging: { entities_per_page: 1, current_page: 1 } })).entities[0];
    const shot = { type: "Shot", id: 2 };
    const mode = (m: string) => call("update", { type: "Asset", id: asset.id, fields: [{ field_name: "shots", value: [shot], multi_entity_update_mode: m }] });
    await mode("add");
    const has = async () =>
      (await call("read", { type: "Asset", return_fields: ["shots"], filters: api3Filters([["id", "is", asset.id]]) })).entities[0].shots.map(
        (s: Json) => s.id,
      );
    expect(await has()).toContain(2);
    await mode("remove");
    expect(await has()).not.toContain(2);
  });

  it("a change made directly on the site reaches api3 readers through the event log", async () => {
    const args = { type: "Sequence", return_fields: ["description"], filters: api3Filters([["id", "is", 1]]) };
    const before = (await call("read", args)).entities[0].description;
    await siteUpdate(e2e.site, "sequences", 1, { description: `${before} (changed on the site)` });
    const after = await pollUntil(
      async () => {
        await e2e.service.follower?.pollNow();
        return call("read", args);
      },
      (a) => a.entities[0].description !== before,
      5000,
    );
    expect(after.entities[0].description).toBe(`${before} (changed on the site)`);
  });
});

describe("pass-through", () => {
  it("a method only the site serves is relayed with the caller's credentials and its answer comes back unchanged", async () => {
    const mine = await post(e2e.url, "preferences_read", [SCRIPT, { prefs: ["hours_per_day"] }]);
    const site = await post(e2e.site.url, "preferences_read", [SCRIPT, { prefs: ["hours_per_day"] }]);
    expect(mine.body).toEqual(site.body);
    expect(mine.body).toEqual({ results: { hours_per_day: 8 } });
    // A method the service does not know may write anything, but one the site refused wrote
    // nothing: the cache is kept (a cached read still makes no upstream request).
    const cached = { type: "Project", return_fields: ["name"] };
    await call("read", cached);
    const unknown = await post(e2e.url, "no_such_method", [SCRIPT, {}]);
    expect(unknown.body.exception).toBe(true);
    expect(unknown.body.message).toContain("no_such_method");
    const before = upstream();
    await call("read", cached);
    expect(upstream()).toBe(before);
  });

  it("a read with additional_filter_presets is the site's to answer: relayed, its answer unchanged", async () => {
    const args = { type: "Shot", return_fields: ["code"], additional_filter_presets: [{ preset_name: "LATEST", latest_by: "ENTITIES_CREATED_AT" }] };
    const mine = await post(e2e.url, "read", [SCRIPT, args]);
    const site = await post(e2e.site.url, "read", [SCRIPT, args]);
    expect(mine.body).toEqual(site.body);
  });

  it("one classification of what only reads: relays retried, nothing invalidated, the read scope", () => {
    for (const m of ["info", "read", "summarize", "schema_read", "schema_field_read", "text_search", "preferences_read", "get_session_token"])
      expect(readsOnly(m)).toBe(true);
    for (const m of ["create", "update", "batch", "schema_field_create", "follow", "work_schedule_update", "custom_entity_enable"])
      expect(readsOnly(m)).toBe(false);
  });

  it("counts calls by method and outcome", async () => {
    expect(await metricSum(e2e.port, "shotgrid_cache_api3_calls_total", { method: "read", outcome: "ok" })).toBeGreaterThan(0);
    expect(await metricSum(e2e.port, "shotgrid_cache_api3_calls_total", { method: "read", outcome: "auth_fault" })).toBeGreaterThan(0);
  });
});

describe("a Python standard-library client against the service", () => {
  it("speaks the wire protocol as shotgun_api3 does: info, paged read, create, read back, summarize, wrong key", async () => {
    const script = fileURLToPath(new URL("./python/api3_smoke.py", import.meta.url));
    const out = await new Promise<string>((resolve, reject) => {
      execFile("python3", [script, e2e.url, SCRIPT.script_name, SCRIPT.script_key], { timeout: 20_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`api3_smoke.py failed: ${stderr || err.message}`));
        else resolve(stdout);
      });
    });
    const seen = JSON.parse(out);
    const shots = [...e2e.site.store.records("Shot")].filter((r) => !r.retired && (r.fields.project as { id: number } | undefined)?.id === 1);
    expect(seen.summary_total).toBe(shots.length);
    expect(e2e.site.store.get("Shot", seen.created_id)?.fields.code).toBe("py-smoke-été");
  }, 30_000);
});

describe("shotgun_api3's own flows, from a Python standard-library client", () => {
  it("find's has_next_page loop, find_one, create, update modes, delete/revive booleans, batch all or nothing, summarize, schema, a relayed method, 102", async () => {
    const script = fileURLToPath(new URL("./python/api3_client_flows.py", import.meta.url));
    const out = await new Promise<string>((resolve, reject) => {
      execFile("python3", [script, e2e.url, SCRIPT.script_name, SCRIPT.script_key], { timeout: 30_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`api3_client_flows.py failed: ${stderr || err.message}`));
        else resolve(stdout);
      });
    });
    const seen = JSON.parse(out);
    expect(seen.version.length).toBe(3);
    expect(e2e.site.store.get("Shot", seen.created_id)?.retired).toBe(true);
    expect(e2e.site.store.get("Shot", seen.batch_created_id)?.fields.code).toBe("flows-batch");
  }, 40_000);
});

describe("logs", () => {
  it("no credential appears in the service's logs, at any level", async () => {
    const site = await startSimulator({ users: [USER] });
    let log = "";
    const sink = new Writable({
      write(chunk, _enc, done) {
        log += String(chunk);
        done();
      },
    });
    const service = await startService(
      testConfig({ site: { url: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY }, logLevel: "trace" }),
      pino({ level: "trace" }, sink),
    );
    try {
      await service.ready;
      const args = { type: "Project", return_fields: ["name"] };
      const auths = [
        { script_name: site.scriptName, script_key: "wrong-script-key-777" },
        { user_login: USER.login, user_password: USER.password },
        { user_login: USER.login, user_password: "wrong-password-888" },
        { session_token: "made-up-session-999" },
      ];
      const answers = [];
      for (const auth of auths) answers.push((await post(service.url, "read", [auth, args])).body);
      // The calls were made (so the test would see a leak): the right password read, the others were refused.
      expect(answers.map((a) => a.error_code ?? "ok")).toEqual([102, "ok", 102, 102]);
      await post(service.url, "preferences_read", [{ user_login: USER.login, user_password: USER.password }, { prefs: [] }]);
      await post(service.url, "create", [
        { script_name: site.scriptName, script_key: "wrong-script-key-777" },
        { type: "Shot", fields: [] },
      ]);
      expect(log.length).toBeGreaterThan(0);
      for (const secret of ["wrong-script-key-777", USER.password, "wrong-password-888", "made-up-session-999", DEFAULT_SCRIPT_KEY]) {
        expect(log).not.toContain(secret);
      }
    } finally {
      await service.close(1000);
      await site.close();
    }
  }, 30_000);
});

describe("while ShotGrid is down", () => {
  it("a cached read is still answered; an uncached one is a fault saying ShotGrid is unavailable", async () => {
    const cached = { type: "Project", return_fields: ["name", "code"], paging: { entities_per_page: 50, current_page: 1 } };
    const answer = await call("read", cached);
    e2e.site.knobs.setOutage(Number.POSITIVE_INFINITY, "reset");
    try {
      // The credential was verified before the outage and is remembered: no round trip needed.
      expect(await call("read", cached)).toEqual(answer);
      const uncached = await fault("read", {
        type: "Shot",
        return_fields: ["code", "sg_cut_out"],
        filters: api3Filters([["sg_cut_out", "greater_than", 123_456]]),
      });
      expect(uncached.error_code).toBe(503);
      expect(uncached.message).toContain("ShotGrid is unavailable and this answer is not cached");
    } finally {
      e2e.site.knobs.endOutage();
    }
  }, 30_000);
});

describe("the protocol's edges", () => {
  it("answers malformed calls with a fault saying what to send, and refuses other verbs and huge bodies", async () => {
    const send = (body: string, method = "POST") =>
      fetch(`${e2e.url}/api3/json`, {
        method,
        headers: { "content-type": "application/json" },
        body: method === "GET" ? undefined : body,
        signal: AbortSignal.timeout(10_000),
      });
    const notJson = await (await send("{nope")).json();
    expect(notJson).toMatchObject({ exception: true, error_code: 103 });
    expect(notJson.message).toContain("not valid JSON");
    expect((await (await send(JSON.stringify({ params: [] }))).json()).message).toContain("method_name");
    expect((await (await send(JSON.stringify({ method_name: "read", params: {} }))).json()).message).toContain("params must be a list");
    expect((await send("", "GET")).status).toBe(405);
    expect((await send(JSON.stringify({ method_name: "read", params: ["x".repeat(2 * 1024 * 1024)] }))).status).toBe(413);
    // A prefixed base URL (`http://host/prefix/`) posts to /prefix/api3/json.
    const prefixed = await fetch(`${e2e.url}/studio/api3/json`, { method: "POST", body: JSON.stringify({ method_name: "info", params: [] }) });
    expect((await prefixed.json()).api_max_entities_per_page).toBe(500);
    // A value of the wrong shape for its field is the caller's fault, named.
    const badModes = await fault("update", { type: "Shot", id: 1, fields: [{ field_name: "code", value: "x" }], multi_entity_update_modes: { assets: "add" } });
    expect(badModes.message).toContain("multi_entity_update_modes");
  });
});
