/**
 * Schema changes on the site (fields created, renamed, deleted) reach the schema the service
 * validates against, through the event log (`Shotgun_DisplayColumn_*`), and drop what depended
 * on a deleted field. Real simulated site and the whole service over real sockets.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applySchemaChanges, schemaChangeOf } from "../src/events/schema-change.ts";
import { SchemaRegistry } from "../src/service/schema-registry.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import { addField, DEFAULT_SCRIPT_KEY, deleteField, renameField } from "../src/simulator/index.ts";
import { call, startStack, type Stack } from "./webhook-test-kit.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ config: { webhookSecret: undefined, reconcileIntervalS: 0 } });
});
afterAll(async () => {
  await stack?.close();
});

const queryShots = (fields: string[]) => call(stack.port, "Query", { entityType: "Shot", fields, limit: 3 });

async function follow(): Promise<void> {
  await stack.service.follower!.pollNow();
  await stack.service.cache.whenIdle();
}

describe("schema events", () => {
  it("a field added on the site becomes queryable after its event", async () => {
    const before = await queryShots(["code", "sg_mood"]);
    expect(before.status).toBe(400);
    expect(before.json.message).toMatch(/sg_mood/);

    const eventId = addField(stack.site.store, "Shot", "sg_mood", { dataType: "text", displayName: "Mood" }, { user: stack.site.scriptUser });
    stack.site.store.update("Shot", 1, { sg_mood: "calm" }, { user: stack.site.scriptUser });
    await follow();
    expect(stack.service.follower!.lastAppliedEventId).toBeGreaterThan(eventId);

    const after = await queryShots(["code", "sg_mood"]);
    expect(after.status).toBe(200);
    const one = await call(stack.port, "GetEntity", { entityType: "Shot", id: 1, fields: ["sg_mood"] });
    expect(one.json.entity.fields.sg_mood).toBe("calm");
  });

  it("a deleted field is rejected afterwards, and cached records no longer show it", async () => {
    expect((await queryShots(["code", "description"])).status).toBe(200);
    const withDefaults = await call(stack.port, "GetEntity", { entityType: "Shot", id: 2, fields: [] });
    expect(withDefaults.json.entity.fields).toHaveProperty("description");

    deleteField(stack.site.store, "Shot", "description", { user: stack.site.scriptUser });
    await follow();

    const after = await queryShots(["code", "description"]);
    expect(after.status).toBe(400);
    expect(after.json.code).toBe("invalid_argument");
    expect(after.json.message).toMatch(/description/);
    const again = await call(stack.port, "GetEntity", { entityType: "Shot", id: 2, fields: [] });
    expect(again.status).toBe(200);
    expect(again.json.entity.fields).not.toHaveProperty("description");
    // Other types keep their field of the same name.
    expect((await call(stack.port, "Query", { entityType: "Sequence", fields: ["description"], limit: 1 })).status).toBe(200);
  });

  it("the rows name the field but not its owner; a rename refreshes only the types holding the field", async () => {
    const backend = new ShotGridClient({ siteUrl: stack.site.url, scriptName: stack.site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY });
    try {
      const registry = new SchemaRegistry(backend);
      expect((await registry.fieldsOf("Shot"))["sg_cut_in"]?.displayName).not.toBe("Cut In (frames)");
      await registry.fieldsOf("Project");
      const from = stack.site.store.latestEventId;
      renameField(stack.site.store, "Shot", "sg_cut_in", "Cut In (frames)", { user: stack.site.scriptUser });
      const events = await backend.readEvents({ afterId: from });
      expect(events).toHaveLength(1);
      expect(schemaChangeOf(events[0]!)).toEqual({ kind: "Change", field: "sg_cut_in", entityType: undefined, attribute: "human_name" });

      const dropped: string[] = [];
      const invalidated: Array<string | undefined> = [];
      const schema = {
        cachedTypes: () => registry.cachedTypes(),
        fieldsOf: (t: string) => registry.fieldsOf(t),
        invalidate: (t?: string) => {
          invalidated.push(t);
          registry.invalidate(t);
        },
      };
      expect(await applySchemaChanges(events, { schema, cache: { invalidateType: async (t) => void dropped.push(t) } })).toBe(1);
      expect(invalidated).toEqual(["Shot"]); // Project has no sg_cut_in: its fields stay
      expect(dropped).toEqual([]); // a rename changes no stored value
      expect((await registry.fieldsOf("Shot"))["sg_cut_in"]?.displayName).toBe("Cut In (frames)");
    } finally {
      await backend.close();
    }
  });
});
