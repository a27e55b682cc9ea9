/**
 * `createCacheClient(...).query` takes ShotGrid filters as plain JSON, in shotgun_api3's shapes
 * and the REST API's, against the whole service over real HTTP; bad shapes are invalid_argument
 * errors naming the place.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCacheClient, shotgridFilters, type CacheClient, type ShotgridFilters } from "../src/client.ts";
import { startE2E, type E2E } from "./e2e-helpers.ts";

let e2e: E2E;
let cache: CacheClient;
beforeAll(async () => {
  e2e = await startE2E();
  cache = createCacheClient(e2e.url);
}, 30_000);
afterAll(() => e2e?.close());

const codes = async (filters: ShotgridFilters, client = cache) => {
  const { entities } = await client.query({ entityType: "Shot", filters, fields: ["code"], order: [{ field: "code" }] }, { timeoutMs: 10_000 });
  return entities.map((e) => e.fields?.code);
};

async function rejection(filters: unknown): Promise<ConnectError> {
  const err: unknown = await cache.query({ entityType: "Shot", filters: filters as ShotgridFilters }, { timeoutMs: 10_000 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

describe("Query with plain ShotGrid filters", () => {
  it("takes a plain list of conditions", { timeout: 15_000 }, async () => {
    expect(await codes([["code", "is", "NLT_010_0010"]])).toEqual(["NLT_010_0010"]);
    expect(await codes([["code", "in", ["NLT_010_0010", "NLT_010_0040"]]])).toEqual(["NLT_010_0010", "NLT_010_0040"]);
  });

  it("takes shotgun_api3's {filter_operator, filters} group, alone or inside a list", { timeout: 15_000 }, async () => {
    const anyOf = {
      filter_operator: "any",
      filters: [
        ["code", "is", "NLT_010_0010"],
        ["code", "is", "NLT_010_0040"],
      ],
    };
    expect(await codes(anyOf)).toEqual(["NLT_010_0010", "NLT_010_0040"]);
    expect(await codes([["code", "starts_with", "NLT_010_004"], anyOf])).toEqual(["NLT_010_0040"]);
    expect(await codes({ filter_operator: "all", filters: [["code", "is", "NLT_010_0010"], { filter_operator: "or", filters: [["id", "is", 1]] }] })).toEqual([
      "NLT_010_0010",
    ]);
  });

  it("takes the REST API's {logical_operator, conditions} group", { timeout: 15_000 }, async () => {
    expect(
      await codes({
        logical_operator: "or",
        conditions: [
          ["code", "is", "NLT_010_0010"],
          ["code", "is", "NLT_010_0040"],
        ],
      }),
    ).toEqual(["NLT_010_0010", "NLT_010_0040"]);
  });

  it("sends Dates in ShotGrid's ISO form, and a Value built by shotgridFilters as is", { timeout: 15_000 }, async () => {
    expect(
      (
        await codes([
          ["created_at", "greater_than", new Date("2000-01-01T00:00:00Z")],
          ["id", "is", 1],
        ])
      ).length,
    ).toBe(1);
    const { entities } = await cache.query({ entityType: "Shot", filters: shotgridFilters([["id", "is", 4]]), fields: ["code"] });
    expect(entities.map((e) => e.fields?.code)).toEqual(["NLT_010_0040"]);
  });

  it("works the same over gRPC", { timeout: 15_000 }, async () => {
    const grpc = createCacheClient(e2e.url, { protocol: "grpc" });
    expect(await codes({ filter_operator: "any", filters: [["id", "is", 1]] }, grpc)).toEqual(["NLT_010_0010"]);
  });

  it("rejects bad shapes with invalid_argument naming the place", async () => {
    const cases: Array<[unknown, RegExp]> = [
      ["code is SH010", /^\[invalid_argument\] filters: must be a list of conditions/],
      [[42], /^\[invalid_argument\] filters\[0\]: must be a condition like \["code", "is", "SH010"\] or a group .*got number 42/],
      [{ filter_operator: "some", filters: [] }, /filters\.filter_operator: must be "all" or "any" \(or "and" \/ "or"\), got string "some"/],
      [
        { filter_operator: "any", filters: [["code", "is", "a"]], conditions: [] },
        /filters: a group has "filters" \(shotgun_api3\) or "conditions" \(REST API\), not both/,
      ],
      [{ filter_operator: "any" }, /filters: a group needs "filters"/],
      [[{ filter_operator: "any", filters: "x" }], /filters\[0\]\.filters: must be a list of conditions and groups, got string "x"/],
      [{ filter_operator: "any", filters: [], extra: 1 }, /filters\.extra: unknown key/],
      [[["code", "is", undefined]], /filters\[0\]\[2\]: must be JSON .*got nothing/],
      [[["id", "greater_than", Number.NaN]], /filters\[0\]\[2\]: must be a finite number/],
    ];
    for (const [filters, message] of cases) {
      const err = await rejection(filters);
      expect(err.code, String(filters)).toBe(Code.InvalidArgument);
      expect(err.message).toMatch(message);
    }
  });

  it("leaves what a condition says to the service's schema check", async () => {
    const err = await rejection([["no_such_field", "is", 1]]);
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/filters\[0\]\[0\]/);
  });
});
