import { describe, expect, it } from "vitest";
import { canonicalQuery, queryKey } from "../src/cache/query-key.ts";
import { projectScope, queryDependencies } from "../src/cache/dependencies.ts";
import { InvalidCacheRequestError } from "../src/cache/errors.ts";
import type { EntityQuery } from "../src/cache/types.ts";

const base: EntityQuery = {
  entityType: "Shot",
  filters: [
    ["project", "is", { type: "Project", id: 1 }],
    ["sg_status_list", "is", "ip"],
  ],
  fields: ["code", "sg_status_list"],
  order: [{ field: "code", direction: "asc" }],
  includeArchivedProjects: false,
  retired: false,
};
const key = (q: Partial<EntityQuery>) => queryKey(canonicalQuery({ ...base, ...q }));

describe("cache canonical query keys", () => {
  it("equivalent requests share one key", () => {
    const k = key({});
    expect(key({ fields: ["sg_status_list", "code", "code"] })).toBe(k);
    expect(key({ order: [{ field: "code" } as never] })).toBe(k);
    expect(
      key({
        filters: [
          ["project", "is", { id: 1, type: "Project" }],
          ["sg_status_list", "is", "ip"],
        ],
      }),
    ).toBe(k);
    expect(
      key({
        filters: {
          logical_operator: "and",
          conditions: [
            ["project", "is", { type: "Project", id: 1 }],
            ["sg_status_list", "is", "ip"],
          ],
        },
      }),
    ).toBe(k);
    expect(key({ limit: 0, page: 0 })).toBe(key({ limit: undefined, page: 7 }));
  });

  it("different requests get different keys", () => {
    const k = key({});
    expect(
      key({
        filters: [
          ["sg_status_list", "is", "ip"],
          ["project", "is", { type: "Project", id: 1 }],
        ],
      }),
    ).not.toBe(k);
    expect(key({ order: [{ field: "code", direction: "desc" }] })).not.toBe(k);
    expect(key({ fields: ["code"] })).not.toBe(k);
    expect(key({ retired: true })).not.toBe(k);
    expect(key({ includeArchivedProjects: true })).not.toBe(k);
    expect(key({ limit: 10, page: 2 })).not.toBe(key({ limit: 10, page: 1 }));
  });

  it("reads the project scope from top-level and conditions only", () => {
    const scope = (filters: EntityQuery["filters"]) => projectScope(canonicalQuery({ ...base, filters }).filters);
    expect(scope([["project", "is", { type: "Project", id: 4 }]])).toEqual([4]);
    expect(scope([["project.Project.id", "is", 5]])).toEqual([5]);
    expect(
      scope([
        [
          "project",
          "in",
          [
            { type: "Project", id: 1 },
            { type: "Project", id: 2 },
          ],
        ],
      ]),
    ).toEqual([1, 2]);
    expect(scope({ logical_operator: "and", conditions: [{ logical_operator: "and", conditions: [["project.Project.id", "in", [7]]] }] })).toEqual([7]);
    expect(
      scope({
        logical_operator: "or",
        conditions: [
          ["project", "is", { type: "Project", id: 1 }],
          ["code", "is", "x"],
        ],
      }),
    ).toBeUndefined();
    expect(scope([["project", "is_not", { type: "Project", id: 1 }]])).toBeUndefined();
    expect(scope([["code", "is", "x"]])).toBeUndefined();
  });

  it("records deep-path, name-operator and time-relative dependencies", () => {
    const deps = queryDependencies(
      canonicalQuery({
        ...base,
        filters: [
          ["sg_sequence.Sequence.code", "is", "SQ"],
          ["sg_sequence", "name_contains", "S"],
          ["updated_at", "in_last", 1, "DAY"],
        ],
        fields: ["entity.Asset.code"],
      }),
    );
    expect(deps.tags).toEqual(expect.arrayContaining(["dt:Sequence", "dt:Asset", "nm:any", "qt:Shot:any", "qt:Shot:all"]));
    expect(deps.volatile).toBe(true);
  });

  it("rejects malformed requests naming the field", () => {
    const bad = (q: Partial<EntityQuery>, field: string) => {
      expect(() => canonicalQuery({ ...base, ...q })).toThrow(InvalidCacheRequestError);
      expect(() => canonicalQuery({ ...base, ...q })).toThrow(field);
    };
    bad({ entityType: "" }, "entityType");
    bad({ entityType: "Shot; drop" }, "entityType");
    bad({ fields: ["code", ""] }, "fields[1]");
    bad({ order: [{ field: "code", direction: "up" as never }] }, "order[0].direction");
    bad({ filters: { logical_operator: "xor" as never, conditions: [] } }, "filters.logical_operator");
    bad({ filters: [["code"] as never] }, "filters.conditions[0]");
    bad({ limit: -1 }, "limit");
  });
});
