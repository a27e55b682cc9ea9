import { describe, expect, it } from "vitest";
import { MalformedResponseError } from "../src/shotgrid/errors.ts";
import {
  ARRAY_FILTERS_CONTENT_TYPE,
  HASH_FILTERS_CONTENT_TYPE,
  decodeBatchResults,
  decodeEntityTypes,
  decodeRecord,
  decodeRecordList,
  encodeBatch,
  encodeFields,
  encodeFilters,
  encodeSort,
  encodeWriteData,
  normaliseDateTime,
  toEventLogEntry,
} from "../src/shotgrid/wire-codec.ts";
import type { Filters } from "../src/shotgrid/types.ts";

describe("decoding REST records", () => {
  const raw = {
    type: "Shot",
    id: 12,
    attributes: { code: "SH010", created_at: "2021-06-16 08:55:17 UTC", updated_at: "2021-06-16T08:55:13Z", "sg_sequence.Sequence.code": "SQ1" },
    relationships: {
      sg_sequence: { data: { id: 3, name: "SQ1", type: "Sequence" }, links: { self: "/x", related: "/y" } },
      assets: {
        data: [
          { id: 1, name: "Tree", type: "Asset" },
          { id: 2, type: "Asset" },
        ],
        links: { self: "/z" },
      },
      parent: { data: null, links: { self: "/p" } },
    },
    links: { self: "/api/v1.1/entity/shots/12" },
  };

  it("flattens attributes and relationships into fields", () => {
    expect(decodeRecord(raw)).toEqual({
      type: "Shot",
      id: 12,
      fields: {
        code: "SH010",
        created_at: "2021-06-16T08:55:17Z",
        updated_at: "2021-06-16T08:55:13Z",
        "sg_sequence.Sequence.code": "SQ1",
        sg_sequence: { type: "Sequence", id: 3, name: "SQ1" },
        assets: [
          { type: "Asset", id: 1, name: "Tree" },
          { type: "Asset", id: 2, name: null },
        ],
        parent: null,
      },
    });
  });

  it("accepts the spec's bare relationship values", () => {
    const e = decodeRecord({ type: "Project", id: 82, attributes: {}, relationships: { created_by: { id: 24, name: "Sup", type: "HumanUser" }, users: [] } });
    expect(e.fields).toEqual({ created_by: { type: "HumanUser", id: 24, name: "Sup" }, users: [] });
  });

  it("never keeps type or id among the fields", () => {
    const e = decodeRecord({ type: "Shot", id: 1, attributes: { id: 1, type: "Shot", code: "A" } });
    expect(e.fields).toEqual({ code: "A" });
  });

  it.each([
    ["not an object", "oops"],
    ["no id", { type: "Shot", attributes: {} }],
    ["string id", { type: "Shot", id: "1" }],
    ["no type", { id: 1 }],
    ["attributes not an object", { type: "Shot", id: 1, attributes: [] }],
    ["link without id", { type: "Shot", id: 1, relationships: { project: { data: { type: "Project" } } } }],
  ])("rejects a record with %s as malformed", (_why, bad) => {
    expect(() => decodeRecord(bad)).toThrow(MalformedResponseError);
  });

  it("rejects a list answer without data", () => {
    expect(() => decodeRecordList({ links: {} })).toThrow(MalformedResponseError);
    expect(() => decodeRecordList(null)).toThrow(MalformedResponseError);
  });

  it("normalises only the create-answer datetime form", () => {
    expect(normaliseDateTime("2021-06-16 08:55:17 UTC")).toBe("2021-06-16T08:55:17Z");
    expect(normaliseDateTime("2021-06-16")).toBe("2021-06-16");
    expect(normaliseDateTime("see 2021-06-16 08:55:17 UTC")).toBe("see 2021-06-16 08:55:17 UTC");
    expect(normaliseDateTime(5)).toBe(5);
  });

  it("reads entity type names from both schema answer forms", () => {
    expect(decodeEntityTypes({ data: { Shot: {}, Asset: {} } })).toEqual(["Asset", "Shot"]);
    expect(decodeEntityTypes({ data: [{ Shot: {}, Asset: {} }] })).toEqual(["Asset", "Shot"]);
    expect(() => decodeEntityTypes({ data: "x" })).toThrow(MalformedResponseError);
  });

  it("turns an EventLogEntry record into an event", () => {
    const e = decodeRecord({
      type: "EventLogEntry",
      id: 77,
      attributes: {
        event_type: "Shotgun_Shot_Change",
        attribute_name: "code",
        meta: { type: "attribute_change" },
        session_uuid: null,
        created_at: "2021-06-16T08:55:13Z",
        description: "x",
      },
      relationships: { entity: { data: { type: "Shot", id: 1, name: "SH1" } }, project: { data: null }, user: { data: { type: "ApiUser", id: 5, name: "s" } } },
    });
    expect(toEventLogEntry(e)).toEqual({
      id: 77,
      event_type: "Shotgun_Shot_Change",
      attribute_name: "code",
      meta: { type: "attribute_change" },
      entity: { type: "Shot", id: 1, name: "SH1" },
      project: null,
      user: { type: "ApiUser", id: 5, name: "s" },
      session_uuid: null,
      created_at: "2021-06-16T08:55:13Z",
      description: "x",
    });
    expect(() => toEventLogEntry({ type: "EventLogEntry", id: 1, fields: {} })).toThrow(MalformedResponseError);
  });

  it("maps batch results to entities, and deletes to true", () => {
    const out = decodeBatchResults({ data: [{ type: "Shot", id: 9, attributes: { code: "A" } }, null] }, [
      { requestType: "create", entityType: "Shot", data: { code: "A" } },
      { requestType: "delete", entityType: "Shot", id: 3 },
    ]);
    expect(out).toEqual([{ type: "Shot", id: 9, fields: { code: "A" } }, true]);
    expect(() => decodeBatchResults({ data: [] }, [{ requestType: "delete", entityType: "Shot", id: 3 }])).toThrow(MalformedResponseError);
  });
});

describe("encoding requests", () => {
  it("picks the array content type for a list of conditions", () => {
    const f: Filters = [
      ["code", "is", "SH010"],
      ["created_at", "between", "2021-01-01", "2021-02-01"],
      ["id", "in", [1, 2]],
    ];
    expect(encodeFilters(f)).toEqual({ contentType: ARRAY_FILTERS_CONTENT_TYPE, filters: f });
    expect(encodeFilters(undefined)).toEqual({ contentType: ARRAY_FILTERS_CONTENT_TYPE, filters: [] });
  });

  it("picks the hash content type for a logical group, nested groups included", () => {
    const f: Filters = {
      logical_operator: "or",
      conditions: [["code", "starts_with", "SH"], { logical_operator: "and", conditions: [["sg_sequence.Sequence.code", "is", "SQ1"]] }],
    };
    expect(encodeFilters(f)).toEqual({ contentType: HASH_FILTERS_CONTENT_TYPE, filters: f });
  });

  it.each([
    [[["code"]], "filters[0]"],
    [[[5, "is", 1]], "filters[0][0]"],
    [[["code", "IS NOT", 1]], "filters[0][1]"],
    [{ logical_operator: "xor", conditions: [] }, "filters.logical_operator"],
    [{ logical_operator: "and", conditions: [{ logical_operator: "or" }] }, "filters.conditions[0].conditions"],
  ])("rejects bad filters naming the place (%j)", (bad, where) => {
    expect(() => encodeFilters(bad as Filters)).toThrow(where);
  });

  it("encodes fields, deep paths included, and defaults to every field", () => {
    expect(encodeFields(["code", "sg_sequence.Sequence.code", "entity.Shot.sg_sequence.Sequence.code"])).toBe(
      "code,sg_sequence.Sequence.code,entity.Shot.sg_sequence.Sequence.code",
    );
    expect(encodeFields(undefined)).toBe("*");
    expect(encodeFields([])).toBe("*");
    expect(() => encodeFields(["code", "a,b"])).toThrow("fields[1]");
    expect(() => encodeFields(["sg_sequence.Sequence"])).toThrow("fields[0]");
  });

  it("encodes sort as ShotGrid's comma string", () => {
    expect(
      encodeSort([
        { field: "code", direction: "asc" },
        { field: "created_at", direction: "desc" },
      ]),
    ).toBe("code,-created_at");
    expect(encodeSort([])).toBeUndefined();
    expect(() => encodeSort([{ field: "code", direction: "up" as "asc" }])).toThrow("sort[0].direction");
  });

  it("checks write data and multi-entity update modes", () => {
    const data = { code: "A", assets: { multi_entity_update_mode: "add" as const, value: [{ type: "Asset", id: 1 }] } };
    expect(encodeWriteData(data)).toBe(data);
    expect(() => encodeWriteData({ assets: { multi_entity_update_mode: "merge", value: [] } })).toThrow("data.assets.multi_entity_update_mode");
    expect(() => encodeWriteData("x")).toThrow("data must be an object");
  });

  it("encodes batch requests in the REST form", () => {
    expect(
      encodeBatch([
        { requestType: "create", entityType: "Shot", data: { code: "A" } },
        { requestType: "update", entityType: "Shot", id: 4, data: { code: "B" } },
        { requestType: "delete", entityType: "Shot", id: 5 },
      ]),
    ).toEqual({
      requests: [
        { request_type: "create", entity: "Shot", data: { code: "A" } },
        { request_type: "update", entity: "Shot", record_id: 4, data: { code: "B" } },
        { request_type: "delete", entity: "Shot", record_id: 5 },
      ],
    });
    expect(() => encodeBatch([])).toThrow("non-empty");
    expect(() => encodeBatch([{ requestType: "delete", entityType: "Shot", id: -1 }])).toThrow("requests[0].id");
  });
});
