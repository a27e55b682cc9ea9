/**
 * Bad input, end to end: each mistake a pipeline TD can make gets the right code and a message
 * naming the problem, never reaches the site, and leaves the service serving from its cache.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GET_ENTITY, metricSum, postJson, QUERY, rawRequest, startE2E, watch, type E2E, type RawAnswer } from "./e2e-helpers.ts";

let e2e: E2E;
beforeAll(async () => {
  e2e = await startE2E({ config: { maxRequestBytes: 4096, maxPageSize: 100, maxFields: 20 } });
});
afterAll(() => e2e?.close());

/** The code and message of a Connect error answer. */
function error(res: RawAnswer): { status: number; code: string; message: string } {
  return { status: res.status, code: res.json?.code, message: res.json?.message };
}

const query = (body: unknown) => postJson(e2e.port, QUERY, body);

const cases: Array<[string, string, unknown, string, RegExp]> = [
  ["an unknown entity type", GET_ENTITY, { entityType: "Spaceship", id: 1 }, "invalid_argument", /entityType: unknown entity type "Spaceship"/],
  ["a missing entity type", GET_ENTITY, { id: 1 }, "invalid_argument", /entityType: is required/],
  ["an unknown field", GET_ENTITY, { entityType: "Shot", id: 1, fields: ["code", "sg_nope"] }, "invalid_argument", /fields\[1\]: Shot has no field "sg_nope"/],
  [
    "a dotted path through a non-link",
    GET_ENTITY,
    { entityType: "Shot", id: 1, fields: ["code.Sequence.code"] },
    "invalid_argument",
    /fields\[0\]: .*"code" of Shot is a text field/,
  ],
  ["a zero id", GET_ENTITY, { entityType: "Shot", id: 0 }, "invalid_argument", /id: must be a positive entity id/],
  ["id as a string", GET_ENTITY, { entityType: "Shot", id: "abc" }, "invalid_argument", /GetEntityRequest\.id .*expected number \(int32\), got "abc"/],
  ["a misspelled key", GET_ENTITY, { entityType: "Shot", id: 1, feilds: ["code"] }, "invalid_argument", /"feilds" is unknown/],
  ["fields not a list", GET_ENTITY, { entityType: "Shot", id: 1, fields: "code" }, "invalid_argument", /GetEntityRequest\.fields .*expected Array/],
  [
    "too many fields",
    GET_ENTITY,
    { entityType: "Shot", id: 1, fields: Array.from({ length: 21 }, (_, i) => `f${i}`) },
    "invalid_argument",
    /fields: too many fields: 21 \(at most 20\)/,
  ],
  ["filters not a list", QUERY, { entityType: "Shot", filters: "code is SH010" }, "invalid_argument", /filters: .*list/],
  [
    "a condition of the wrong shape",
    QUERY,
    { entityType: "Shot", filters: [["code", "is"]] },
    "invalid_argument",
    /filters\[0\]: "is" on "code" takes one value/,
  ],
  ["a condition that is not a list", QUERY, { entityType: "Shot", filters: ["code"] }, "invalid_argument", /filters\[0\]: .*every item is a condition/],
  ["an unknown operator", QUERY, { entityType: "Shot", filters: [["code", "resembles", "SH"]] }, "invalid_argument", /filters\[0\].*"resembles"/],
  ["an unknown filter field", QUERY, { entityType: "Shot", filters: [["sg_nope", "is", 1]] }, "invalid_argument", /filters\[0\].*"sg_nope"/],
  [
    "greater_than on a status list",
    QUERY,
    { entityType: "Shot", filters: [["sg_status_list", "greater_than", 3]] },
    "invalid_argument",
    /filters\[0\].*greater_than.*status_list/,
  ],
  ["contains on a number", QUERY, { entityType: "Shot", filters: [["sg_cut_in", "contains", "10"]] }, "invalid_argument", /filters\[0\].*contains.*number/],
  ["a value of the wrong type", QUERY, { entityType: "Shot", filters: [["sg_cut_in", "is", "ten"]] }, "invalid_argument", /filters\[0\].*sg_cut_in/],
  [
    "a bad logical operator",
    QUERY,
    { entityType: "Shot", filters: { logical_operator: "xor", conditions: [] } },
    "invalid_argument",
    /logical_operator.*"xor"/,
  ],
  [
    "a bad nested condition",
    QUERY,
    {
      entityType: "Shot",
      filters: {
        logical_operator: "or",
        conditions: [
          ["code", "is", "a"],
          ["code", "nope", "b"],
        ],
      },
    },
    "invalid_argument",
    /conditions\[1\]/,
  ],
  ["limit over the largest page", QUERY, { entityType: "Shot", limit: 101 }, "invalid_argument", /limit: 101 is over the largest page \(100\)/],
  ["a negative page", QUERY, { entityType: "Shot", page: -1 }, "invalid_argument", /page: must not be negative/],
  [
    "an unknown order field",
    QUERY,
    { entityType: "Shot", order: [{ field: "sg_nope" }] },
    "invalid_argument",
    /order\[0\]\.field: Shot has no field "sg_nope"/,
  ],
  ["a bad order direction", QUERY, { entityType: "Shot", order: [{ field: "code", direction: "up" }] }, "invalid_argument", /order\[0\]\.direction/],
];

describe("each mistake gets the right code and names the problem", () => {
  for (const [name, path, body, code, message] of cases) {
    it(name, async () => {
      const res = await postJson(e2e.port, path, body);
      const err = error(res);
      expect(err.code, res.body).toBe(code);
      expect(err.message).toMatch(message);
    });
  }

  it("an oversized request: resource_exhausted", async () => {
    const res = await query({ entityType: "Shot", filters: [["code", "in", Array.from({ length: 600 }, (_, i) => `SH${i}`)]] });
    expect(error(res).code).toBe("resource_exhausted");
    expect(error(res).message).toMatch(/4096/);
  });

  it("WatchChanges with an unknown entity type or a bad project id: invalid_argument", async () => {
    const cases: Array<[Parameters<typeof watch>[1], RegExp]> = [
      [{ entityTypes: ["Shot", "Shoot"] }, /entityTypes\[1\]: unknown entity type "Shoot"/],
      [{ projectIds: [-1] }, /projectIds\[0\]: must be a positive project id/],
    ];
    for (const [request, message] of cases) {
      const stream = watch(e2e.url, request);
      await expect(stream.ended).rejects.toThrow(message);
      expect(stream.messages).toEqual([]);
    }
  });

  it("a body that is not JSON: invalid_argument", async () => {
    const res = await rawRequest(e2e.port, "POST", GET_ENTITY, "{entityType:", { "content-type": "application/json" });
    expect(error(res).code).toBe("invalid_argument");
  });
});

describe("after bad input", () => {
  it("keeps serving, keeps its cache, and sent nothing malformed upstream", async () => {
    const hit = () => postJson(e2e.port, GET_ENTITY, { entityType: "Shot", id: 1, fields: ["code"] });
    const before = await hit();
    expect(before.json.freshness.source).toBe("cache");
    const missesBefore = await metricSum(e2e.port, "shotgrid_cache_misses_total");
    for (const [, path, body] of cases) await postJson(e2e.port, path, body);
    // Bad input is rejected at the edge: none of it reached the cache (so none went upstream).
    expect(await metricSum(e2e.port, "shotgrid_cache_misses_total")).toBe(missesBefore);
    const after = await hit();
    expect(after.status).toBe(200);
    expect(after.json).toMatchObject({ entity: { id: 1, fields: { code: "NLT_010_0010" } }, freshness: { source: "cache" } });
  });
});
