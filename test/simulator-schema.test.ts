import { afterEach, describe, expect, it } from "vitest";
import { demoSchema } from "../src/simulator/index.ts";
import { openSite, type TestSite } from "./simulator-test-client.ts";

const REAL_SCHEMA = new URL("./fixtures/schema/schema_read.json", import.meta.url).pathname;
let site: TestSite | undefined;
afterEach(async () => {
  await site?.close();
  site = undefined;
});

describe("simulator schema", () => {
  it("ships a demo schema with the common entity types and link valid_types", () => {
    const s = demoSchema();
    for (const t of [
      "Project",
      "Sequence",
      "Shot",
      "Asset",
      "Task",
      "Step",
      "Version",
      "PublishedFile",
      "PublishedFileType",
      "HumanUser",
      "ApiUser",
      "Note",
      "Playlist",
      "EventLogEntry",
    ]) {
      expect(s[t], t).toBeDefined();
    }
    expect(s["Shot"]!["sg_sequence"]!.properties!["valid_types"]!.value).toEqual(["Sequence"]);
    expect(s["Version"]!["entity"]!.data_type.value).toBe("entity");
    // Every link field names types that exist in the schema.
    for (const [type, fields] of Object.entries(s)) {
      for (const [name, f] of Object.entries(fields)) {
        for (const vt of (f.properties?.["valid_types"]?.value as string[] | undefined) ?? []) expect(s[vt], `${type}.${name} → ${vt}`).toBeDefined();
      }
    }
  });

  it("answers /schema, /schema/{type}, /schema/{type}/fields and /fields/{field} in the REST shape", async () => {
    site = await openSite({ dataset: "empty" });
    const list = await site.get("/schema");
    expect(Object.keys(list.body.data)).toContain("Shot");
    const one = await site.get("/schema/Shot");
    expect(one.body).toEqual({
      data: { name: { value: "Shot", editable: false }, visible: { value: true, editable: false } },
      links: { self: "/api/v1.1/schema/Shot" },
    });
    const fields = await site.get("/schema/Shot/fields");
    expect(fields.body.links).toEqual({ self: "/api/v1.1/schema/Shot/fields" });
    expect(Object.keys(fields.body.data.code)).toEqual([
      "name",
      "description",
      "custom_metadata",
      "entity_type",
      "data_type",
      "editable",
      "mandatory",
      "unique",
      "properties",
      "visible",
      "ui_value_displayable",
    ]);
    expect(fields.body.data.sg_sequence.properties.valid_types).toEqual({ value: ["Sequence"], editable: true });
    const field = await site.get("/schema/shots/fields/sg_status_list");
    expect(field.body.data.data_type).toEqual({ value: "status_list", editable: false });
    expect((await site.get("/schema/Shot/fields/nope")).status).toBe(400);
    expect((await site.get("/schema/Nope/fields")).status).toBe(400);
  });

  it("loads a real site's schema_read JSON (77 types) and serves, seeds, searches and writes with it", async () => {
    site = await openSite({ schema: REAL_SCHEMA, dataset: "demo", shots: 30, assets: 10 });
    const list = await site.get("/schema");
    expect(Object.keys(list.body.data)).toHaveLength(77);
    expect((await site.get("/schema/CustomEntity01/fields")).status).toBe(200);
    expect((await site.get("/schema/custom_entity_01s")).body.data.name.value).toBe("CustomEntity01");
    const shots = await site.search("Shot", {
      filters: [["sg_sequence.Sequence.code", "is_not", null]],
      fields: "code,sg_sequence,project.Project.name",
      page: { size: 5 },
    });
    expect(shots.status).toBe(200);
    expect(shots.body.data).toHaveLength(5);
    expect(shots.body.data[0].relationships.sg_sequence.data.type).toBe("Sequence");
    const created = await site.request("POST", "/entity/custom_entity_01s", { code: "thing" });
    expect(created.status).toBe(201);
    const ev = await site.search("EventLogEntry", { filters: [["event_type", "is", "Shotgun_CustomEntity01_New"]], fields: "meta" });
    expect(ev.body.data[0].attributes.meta).toMatchObject({ type: "new_entity", entity_type: "CustomEntity01", entity_id: created.body.data.id });
  });

  it("accepts a schema object and rejects a file that is not a schema", async () => {
    site = await openSite({
      dataset: "empty",
      schema: { Thing: { code: { data_type: { value: "text", editable: false } } }, ApiUser: { firstname: { data_type: { value: "text", editable: false } } } },
    });
    expect((await site.request("POST", "/entity/Thing", { code: "x" })).status).toBe(201);
    await expect(openSite({ schema: new URL("../package.json", import.meta.url).pathname })).rejects.toThrow(/schema/);
  });
});
