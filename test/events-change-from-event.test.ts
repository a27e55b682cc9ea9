import { describe, expect, it } from "vitest";
import { changeFromEvent, parseEventType } from "../src/events/change.ts";
import type { EventLogEntry } from "../src/shotgrid/types.ts";

function entry(overrides: Partial<EventLogEntry>): EventLogEntry {
  return {
    id: 7001,
    event_type: "Shotgun_Shot_Change",
    attribute_name: "sg_status_list",
    meta: { type: "attribute_change", entity_type: "Shot", entity_id: 1234, old_value: "ip", new_value: "fin" },
    entity: { type: "Shot", id: 1234, name: "SH010" },
    project: { type: "Project", id: 70, name: "Demo" },
    user: { type: "HumanUser", id: 5, name: "Ada" },
    session_uuid: null,
    created_at: "2024-03-01T10:00:00Z",
    ...overrides,
  };
}

describe("change from event", () => {
  it("turns a field change into a change with every attribute", () => {
    expect(changeFromEvent(entry({}))).toEqual({
      eventId: 7001,
      eventType: "Shotgun_Shot_Change",
      kind: "change",
      entityType: "Shot",
      entityId: 1234,
      projectId: 70,
      attributeName: "sg_status_list",
      createdAt: "2024-03-01T10:00:00Z",
      user: { type: "HumanUser", id: 5, name: "Ada" },
    });
  });

  it("parses each kind and custom entity types", () => {
    expect(parseEventType("Shotgun_Asset_New")).toEqual({ entityType: "Asset", kind: "new" });
    expect(parseEventType("Shotgun_CustomEntity01_Retirement")).toEqual({ entityType: "CustomEntity01", kind: "retirement" });
    expect(parseEventType("Shotgun_CustomNonProjectEntity05_Revival")).toEqual({
      entityType: "CustomNonProjectEntity05",
      kind: "revival",
    });
    expect(parseEventType("Shotgun_Some_Odd_Type_Change")).toEqual({ entityType: "Some_Odd_Type", kind: "change" });
  });

  it("returns null for events that change no entity", () => {
    for (const event_type of [
      "Shotgun_User_Login",
      "Shotgun_User_Logout",
      "Shotgun_Attachment_View",
      "Shotgun_Shot",
      "Shotgun__Change",
      "SG_RV_Session_Validate_Success",
      "Toolkit_Desktop_ProjectLaunch",
      "",
    ]) {
      expect(changeFromEvent(entry({ event_type })), event_type).toBeNull();
    }
  });

  it("takes the id from meta when a retirement row has no entity link", () => {
    const change = changeFromEvent(
      entry({
        event_type: "Shotgun_Shot_Retirement",
        attribute_name: null,
        entity: null,
        meta: { type: "entity_retirement", entity_type: "Shot", entity_id: 99 },
      }),
    );
    expect(change).toMatchObject({ kind: "retirement", entityType: "Shot", entityId: 99, attributeName: null });
  });

  it("returns null when no record id can be found", () => {
    expect(changeFromEvent(entry({ entity: null, meta: null }))).toBeNull();
    expect(changeFromEvent(entry({ entity: null, meta: { entity_id: "12" } }))).toBeNull();
  });

  it("uses project 0 and a null user when the row has none", () => {
    const change = changeFromEvent(entry({ project: null, user: null, entity: { type: "Shot", id: 3 } }));
    expect(change).toMatchObject({ projectId: 0, user: null, entityId: 3 });
  });
});
