/** Writes against the simulated site over real HTTP: create, update, delete, revive, batch. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { NotFoundError, RequestRejectedError, ShotGridClient, type EntityLink } from "../src/shotgrid/index.ts";

let site: SimulatorHandle;
let client: ShotGridClient;
let project: EntityLink;
let assets: EntityLink[];

beforeAll(async () => {
  site = await startSimulator({ scriptName: "writes", scriptKey: "writes-key-0123456789" });
  client = new ShotGridClient({ siteUrl: site.url, scriptName: "writes", scriptKey: "writes-key-0123456789" });
  const p = (await client.search("Project", { limit: 1 }))[0]!;
  project = { type: "Project", id: p.id };
  assets = (await client.search("Asset", { limit: 3, fields: ["code"] })).map((a) => ({ type: "Asset", id: a.id }));
});
afterAll(async () => {
  await client?.close();
  await site?.close();
});

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

describe("writes", () => {
  it("creates a record and answers it decoded, datetimes normalised", async () => {
    const shot = await client.create("Shot", { code: "W_CREATE", project, description: "new" }, ["code", "project", "created_at"]);
    expect(shot.type).toBe("Shot");
    expect(shot.fields.code).toBe("W_CREATE");
    expect(shot.fields.project).toMatchObject({ type: "Project", id: project.id });
    expect(shot.fields.created_at).toMatch(ISO);
    expect(site.store.getActive("Shot", shot.id)?.fields.code).toBe("W_CREATE");
  });

  it("updates fields and multi-entity fields by mode", async () => {
    const shot = await client.create("Shot", { code: "W_UPDATE", project });
    const [a, b, c] = assets as [EntityLink, EntityLink, EntityLink];
    const ids = (e: { fields: Record<string, unknown> }) => (e.fields.assets as EntityLink[]).map((l) => l.id).sort();
    const set = await client.update("Shot", shot.id, { description: "x", assets: { multi_entity_update_mode: "set", value: [a, b] } }, [
      "description",
      "assets",
    ]);
    expect(set.fields.description).toBe("x");
    expect(ids(set)).toEqual([a.id, b.id].sort());
    const added = await client.update("Shot", shot.id, { assets: { multi_entity_update_mode: "add", value: [c] } }, ["assets"]);
    expect(ids(added)).toEqual([a.id, b.id, c.id].sort());
    const removed = await client.update("Shot", shot.id, { assets: { multi_entity_update_mode: "remove", value: [a] } }, ["assets"]);
    expect(ids(removed)).toEqual([b.id, c.id].sort());
  });

  it("retires and revives", async () => {
    const shot = await client.create("Shot", { code: "W_REVIVE", project });
    await client.delete("Shot", shot.id);
    expect(site.store.get("Shot", shot.id)?.retired).toBe(true);
    expect(await client.revive("Shot", shot.id)).toBe(true);
    expect(site.store.get("Shot", shot.id)?.retired).toBe(false);
  });

  it("maps write errors with ShotGrid's codes", async () => {
    const missing = await client.update("Shot", 987_654, { code: "nope" }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as NotFoundError).shotgridCode).toBe(104);
    await expect(client.delete("Shot", 987_654)).rejects.toBeInstanceOf(NotFoundError);
    const unknown = await client.create("Shot", { not_a_field: 1, project }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(RequestRejectedError);
    expect((unknown as RequestRejectedError).shotgridCode).toBe(103);
  });

  it("rejects bad input before sending it", async () => {
    const before = site.stats.requests;
    await expect(client.update("Shot", 0, { code: "x" })).rejects.toThrow("id must be a positive integer");
    await expect(client.create("Shot", { assets: { multi_entity_update_mode: "merge", value: [] } } as never)).rejects.toThrow("multi_entity_update_mode");
    expect(site.stats.requests).toBe(before);
  });
});

describe("batch", () => {
  it("runs creates, updates and deletes in one request", async () => {
    const victim = await client.create("Shot", { code: "W_BATCH_VICTIM", project });
    const target = await client.create("Shot", { code: "W_BATCH_TARGET", project });
    const before = site.stats.requests;
    const results = await client.batch([
      { requestType: "create", entityType: "Shot", data: { code: "W_BATCH_NEW", project } },
      { requestType: "update", entityType: "Shot", id: target.id, data: { description: "batched" } },
      { requestType: "delete", entityType: "Shot", id: victim.id },
    ]);
    expect(site.stats.requests - before).toBe(1);
    expect(results).toHaveLength(3);
    expect(results[0]).toMatchObject({ type: "Shot", fields: { code: "W_BATCH_NEW" } });
    expect(results[1]).toMatchObject({ type: "Shot", id: target.id, fields: { description: "batched" } });
    expect(results[2]).toBe(true);
    expect(site.store.get("Shot", victim.id)?.retired).toBe(true);
  });

  it("is all or nothing: one bad request leaves nothing written", async () => {
    const count = site.store.count("Shot");
    const err = await client
      .batch([
        { requestType: "create", entityType: "Shot", data: { code: "W_BATCH_LOST", project } },
        { requestType: "update", entityType: "Shot", id: 987_654, data: { code: "nope" } },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { code: string }).code).toMatch(/^SG_(NOT_FOUND|REQUEST_REJECTED)$/);
    expect(site.store.count("Shot")).toBe(count);
  });
});
