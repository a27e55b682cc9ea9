/**
 * The read-scoping rule: which entities and changes a limited client may receive, and the Query
 * constraint that expresses the same rule as a filter. The constraint is run against the
 * simulated site over real HTTP and must return exactly the records the rule allows.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ANONYMOUS,
  entityProjectId,
  mayReadEntity,
  mayReceiveChange,
  needsProjectField,
  readConstraint,
  requireReadEntity,
  scopeQueryFilters,
  type Caller,
  type Scope,
} from "../src/auth/index.ts";
import type { Change } from "../src/events/change.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";
import type { Entity } from "../src/shotgrid/types.ts";
import { startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";

function caller(name: string, projects: number[] | null, types: string[] | null, scopes: Scope[] = ["read", "watch"]): Caller {
  return {
    name,
    anonymous: false,
    scopes: new Set(scopes),
    projectIds: projects && new Set(projects),
    entityTypes: types && new Set(types),
    sudoAsLogin: null,
  };
}

const P12 = caller("p12", [12], null);
const P12_WITH_USERS = caller("p12-users", [12], ["Shot", "HumanUser", "Project"]);
const SHOTS_ONLY = caller("shots", null, ["Shot"]);

function denial(fn: () => void): ConnectError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.PermissionDenied);
    return err as ConnectError;
  }
  throw new Error("expected permission_denied");
}

describe("mayReadEntity", () => {
  it("no limits: everything", () => {
    for (const c of [ANONYMOUS, caller("all", null, null)]) {
      expect(mayReadEntity(c, "Shot", 13)).toBe(true);
      expect(mayReadEntity(c, "HumanUser", undefined)).toBe(true);
      expect(mayReadEntity(c, "Project", 99)).toBe(true);
    }
  });

  it("project limit: entities of listed projects only", () => {
    expect(mayReadEntity(P12, "Shot", 12)).toBe(true);
    expect(mayReadEntity(P12, "Shot", 13)).toBe(false);
    expect(denial(() => requireReadEntity(P12, "Shot", 13)).rawMessage).toBe(`client "p12" may not read entities of project 13 (its projects: 12)`);
  });

  it("project limit: a Project only by its own id", () => {
    expect(mayReadEntity(P12, "Project", 12)).toBe(true);
    expect(mayReadEntity(P12, "Project", 13)).toBe(false);
    expect(denial(() => requireReadEntity(P12, "Project", 13)).rawMessage).toBe(`client "p12" may not read Project 13 (its projects: 12)`);
  });

  it("project limit: entities in no project are denied unless their type is listed", () => {
    expect(mayReadEntity(P12, "HumanUser", undefined)).toBe(false);
    expect(mayReadEntity(P12, "Shot", 0)).toBe(false);
    expect(denial(() => requireReadEntity(P12, "HumanUser", undefined)).rawMessage).toBe(
      `client "p12" is limited to projects 12 and may not read HumanUser entities outside any project (list HumanUser in its entity_types to allow them)`,
    );
    expect(mayReadEntity(P12_WITH_USERS, "HumanUser", undefined)).toBe(true);
    expect(mayReadEntity(P12_WITH_USERS, "Shot", 0)).toBe(true);
    // Listing a type never opens other projects.
    expect(mayReadEntity(P12_WITH_USERS, "Shot", 13)).toBe(false);
    expect(mayReadEntity(P12_WITH_USERS, "Project", 13)).toBe(false);
  });

  it("type limit: listed types only, and it applies to Project too", () => {
    expect(mayReadEntity(SHOTS_ONLY, "Shot", 13)).toBe(true);
    expect(mayReadEntity(SHOTS_ONLY, "Asset", 13)).toBe(false);
    expect(mayReadEntity(caller("p", [12], ["Shot"]), "Project", 12)).toBe(false);
    expect(denial(() => requireReadEntity(SHOTS_ONLY, "Asset", 12)).rawMessage).toBe(`client "shots" may not read Asset entities (its entity types: Shot)`);
  });

  it("entityProjectId: a Project's own id, else its project link; none without one", () => {
    expect(entityProjectId({ type: "Project", id: 12, fields: {} })).toBe(12);
    expect(entityProjectId({ type: "Shot", id: 1, fields: { project: { type: "Project", id: 13, name: "x" } } })).toBe(13);
    expect(entityProjectId({ type: "Shot", id: 1, fields: { project: null } })).toBeUndefined();
    expect(entityProjectId({ type: "Shot", id: 1, fields: { code: "SH010" } })).toBeUndefined();
    expect(entityProjectId({ type: "HumanUser", id: 1, fields: { projects: [{ type: "Project", id: 12 }] } })).toBeUndefined();
    expect(needsProjectField(P12, "Shot")).toBe(true);
    expect(needsProjectField(P12, "Project")).toBe(false);
    expect(needsProjectField(SHOTS_ONLY, "Shot")).toBe(false);
  });
});

describe("mayReceiveChange", () => {
  const change = (entityType: string, entityId: number, projectId: number): Change => ({
    eventId: 1,
    eventType: `Shotgun_${entityType}_Change`,
    kind: "change",
    entityType,
    entityId,
    projectId,
    attributeName: "code",
    createdAt: "2024-01-01T00:00:00Z",
    user: null,
  });

  it("follows the read rule: project, Project by id, project-less by listed type, type list", () => {
    expect(mayReceiveChange(P12, change("Shot", 5, 12))).toBe(true);
    expect(mayReceiveChange(P12, change("Shot", 5, 13))).toBe(false);
    // A Project's change is logged in that project, but its id decides.
    expect(mayReceiveChange(P12, change("Project", 12, 12))).toBe(true);
    expect(mayReceiveChange(P12, change("Project", 13, 12))).toBe(false);
    expect(mayReceiveChange(P12, change("HumanUser", 7, 0))).toBe(false);
    expect(mayReceiveChange(P12_WITH_USERS, change("HumanUser", 7, 0))).toBe(true);
    expect(mayReceiveChange(SHOTS_ONLY, change("Asset", 7, 12))).toBe(false);
    expect(mayReceiveChange(ANONYMOUS, change("Asset", 7, 12))).toBe(true);
  });
});

describe("readConstraint and scopeQueryFilters", () => {
  it("adds nothing for callers without a project limit, refuses unlisted types", () => {
    expect(readConstraint(ANONYMOUS, "Shot", true)).toBeNull();
    expect(readConstraint(SHOTS_ONLY, "Shot", true)).toBeNull();
    expect(denial(() => readConstraint(SHOTS_ONLY, "Asset", true)).rawMessage).toMatch(/may not read Asset entities/);
    const filters = [["code", "is", "SH010"]] as Parameters<typeof scopeQueryFilters>[2];
    expect(scopeQueryFilters(ANONYMOUS, "Shot", filters, true)).toBe(filters);
  });

  it("project-limited: project in [..]; Project by id; project-less types refused unless listed", () => {
    expect(readConstraint(P12, "Shot", true)).toEqual(["project", "in", [{ type: "Project", id: 12 }]]);
    expect(readConstraint(P12, "Project", false)).toEqual(["id", "in", [12]]);
    expect(denial(() => readConstraint(P12, "HumanUser", false)).rawMessage).toMatch(/outside any project/);
    expect(readConstraint(P12_WITH_USERS, "HumanUser", false)).toBeNull();
    expect(readConstraint(P12_WITH_USERS, "Shot", true)).toEqual({
      logical_operator: "or",
      conditions: [
        ["project", "in", [{ type: "Project", id: 12 }]],
        ["project", "is", null],
      ],
    });
  });

  it("ANDs the constraint into either filter form", () => {
    const inP12 = ["project", "in", [{ type: "Project", id: 12 }]];
    expect(scopeQueryFilters(P12, "Shot", [["code", "is", "A"]], true)).toEqual([["code", "is", "A"], inP12]);
    const group = {
      logical_operator: "or" as const,
      conditions: [["code", "is", "A"] as [string, string, string], ["code", "is", "B"] as [string, string, string]],
    };
    expect(scopeQueryFilters(P12, "Shot", group, true)).toEqual({ logical_operator: "and", conditions: [group, inP12] });
    const withNull = readConstraint(P12_WITH_USERS, "Shot", true);
    expect(scopeQueryFilters(P12_WITH_USERS, "Shot", [["code", "is", "A"]], true)).toEqual({
      logical_operator: "and",
      conditions: [["code", "is", "A"], withNull],
    });
  });
});

describe("the Query constraint and the entity rule agree, on a real site", () => {
  let site: SimulatorHandle;
  let client: ShotGridClient;
  let projectIds: number[];
  beforeAll(async () => {
    site = await startSimulator({ scriptName: "auth-scope", scriptKey: "auth-scope-key-0123456789" });
    client = new ShotGridClient({ siteUrl: site.url, scriptName: "auth-scope", scriptKey: "auth-scope-key-0123456789" });
    projectIds = (await client.search("Project", { fields: ["name"] })).map((p) => p.id).sort((a, b) => a - b);
    // A shot in no project: the case the rule treats like project-less types.
    await client.create("Shot", { code: "auth_scope_orphan" });
  });
  afterAll(async () => {
    await client?.close();
    await site?.close();
  });

  /** Ids the constrained query returns vs ids of all records the entity rule allows. */
  async function both(c: Caller, type: string, hasProject: boolean): Promise<{ queried: number[]; allowed: number[] }> {
    const fields = hasProject ? ["project"] : ["name"];
    const all: Entity[] = await client.search(type, { fields });
    const allowed = all
      .filter((e) => mayReadEntity(c, type, entityProjectId(e)))
      .map((e) => e.id)
      .sort((a, b) => a - b);
    const queried = (await client.search(type, { fields, filters: scopeQueryFilters(c, type, [], hasProject) })).map((e) => e.id).sort((a, b) => a - b);
    return { queried, allowed };
  }

  it("Shots, Projects and HumanUsers for project-limited callers, with and without listed types", async () => {
    expect(projectIds.length).toBeGreaterThanOrEqual(2);
    const [first] = projectIds;
    const limited = caller("first", [first!], null);
    const listed = caller("first-listed", [first!], ["Shot", "Project", "HumanUser"]);
    const shots = await both(limited, "Shot", true);
    expect(shots.allowed.length).toBeGreaterThan(0);
    expect(shots.allowed.length).toBeLessThan(site.store.count("Shot"));
    expect(shots.queried).toEqual(shots.allowed);
    const listedShots = await both(listed, "Shot", true);
    expect(listedShots.allowed.length).toBe(shots.allowed.length + 1); // the orphan
    expect(listedShots.queried).toEqual(listedShots.allowed);
    for (const c of [limited, listed]) {
      const projects = await both(c, "Project", false);
      expect(projects.queried).toEqual([first]);
      expect(projects.allowed).toEqual([first]);
    }
    const users = await both(listed, "HumanUser", false);
    expect(users.queried.length).toBeGreaterThan(0);
    expect(users.queried).toEqual(users.allowed);
    expect(() => readConstraint(limited, "HumanUser", false)).toThrow(/outside any project/);
  });
});
