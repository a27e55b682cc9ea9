/**
 * Write options against the simulated site over real HTTP: multi-entity update modes given as
 * `multiEntityUpdateModes` (update and batch), answer fields, the older fields-list form, batch
 * all or nothing, and bad options refused before anything is sent.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { ShotGridClient, type Entity, type EntityLink } from "../src/shotgrid/index.ts";

let site: SimulatorHandle;
let client: ShotGridClient;
let project: EntityLink;
let a: EntityLink, b: EntityLink, c: EntityLink;

beforeAll(async () => {
  site = await startSimulator({ scriptName: "wopts", scriptKey: "wopts-key-0123456789" });
  client = new ShotGridClient({ siteUrl: site.url, scriptName: "wopts", scriptKey: "wopts-key-0123456789" });
  const p = (await client.search("Project", { limit: 1 }))[0]!;
  project = { type: "Project", id: p.id };
  [a, b, c] = (await client.search("Asset", { limit: 3 })).map((x) => ({ type: "Asset", id: x.id })) as [EntityLink, EntityLink, EntityLink];
});
afterAll(async () => {
  await client?.close();
  await site?.close();
});

/** The asset ids of a Shot as the site holds them now. */
function storedAssets(id: number): number[] {
  const v = site.store.getActive("Shot", id)?.fields.assets;
  return ((v ?? []) as EntityLink[]).map((l) => l.id).sort((x, y) => x - y);
}
const ids = (...links: EntityLink[]) => links.map((l) => l.id).sort((x, y) => x - y);

describe("multiEntityUpdateModes", () => {
  it("sets, adds and removes links of a multi-entity field", async () => {
    const shot = await client.create("Shot", { code: "WO_MODES", project, assets: [a] }, { fields: ["code"] });
    expect(shot.fields.code).toBe("WO_MODES");
    const set = await client.update("Shot", shot.id, { assets: [a, b] }, { multiEntityUpdateModes: { assets: "set" }, fields: ["assets"] });
    expect((set.fields.assets as EntityLink[]).map((l) => l.id).sort((x, y) => x - y)).toEqual(ids(a, b));
    await client.update("Shot", shot.id, { assets: [c] }, { multiEntityUpdateModes: { assets: "add" } });
    expect(storedAssets(shot.id)).toEqual(ids(a, b, c));
    await client.update("Shot", shot.id, { assets: [a], description: "fewer" }, { multiEntityUpdateModes: { assets: "remove" } });
    expect(storedAssets(shot.id)).toEqual(ids(b, c));
    expect(site.store.getActive("Shot", shot.id)?.fields.description).toBe("fewer");
  });

  it("still takes a bare list of answer fields (the older form)", async () => {
    const shot = await client.create("Shot", { code: "WO_LEGACY", project }, ["code"]);
    expect(Object.keys(shot.fields)).toEqual(["code"]);
    const updated = await client.update("Shot", shot.id, { description: "d" }, ["description"]);
    expect(Object.keys(updated.fields)).toEqual(["description"]);
  });

  it("carries modes and answer fields per batch request", async () => {
    const target = await client.create("Shot", { code: "WO_BATCH", project, assets: [a, b] });
    const results = await client.batch([
      { requestType: "update", entityType: "Shot", id: target.id, data: { assets: [c] }, multiEntityUpdateModes: { assets: "add" }, fields: ["assets"] },
      { requestType: "update", entityType: "Shot", id: target.id, data: { assets: [a] }, multiEntityUpdateModes: { assets: "remove" } },
      { requestType: "create", entityType: "Shot", data: { code: "WO_BATCH_NEW", project }, fields: ["code"] },
    ]);
    expect(((results[0] as Entity).fields.assets as EntityLink[]).map((l) => l.id).sort((x, y) => x - y)).toEqual(ids(a, b, c));
    expect(storedAssets(target.id)).toEqual(ids(b, c));
    expect(Object.keys((results[2] as Entity).fields)).toEqual(["code"]);
  });

  it("is all or nothing: a failing request undoes the mode updates before it", async () => {
    const target = await client.create("Shot", { code: "WO_ATOMIC", project, assets: [a] });
    const shots = site.store.count("Shot");
    const err = await client
      .batch([
        { requestType: "update", entityType: "Shot", id: target.id, data: { assets: [b, c] }, multiEntityUpdateModes: { assets: "add" } },
        { requestType: "create", entityType: "Shot", data: { code: "WO_ATOMIC_LOST", project } },
        { requestType: "delete", entityType: "Shot", id: 987_654 },
      ])
      .catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe("SG_NOT_FOUND");
    expect(storedAssets(target.id)).toEqual(ids(a));
    expect(site.store.count("Shot")).toBe(shots);
  });
});

describe("bad write options", () => {
  it("are refused with the option named, before anything is sent", async () => {
    const before = site.stats.requests;
    const cases: Array<[() => Promise<unknown>, RegExp]> = [
      [
        () => client.update("Shot", 1, { code: "x" }, { multiEntityUpdateModes: { assets: "add" } }),
        /multiEntityUpdateModes\.assets: data does not set the field "assets"/,
      ],
      [
        () => client.update("Shot", 1, { assets: [a] }, { multiEntityUpdateModes: { assets: "merge" as never } }),
        /multiEntityUpdateModes\.assets must be "set", "add" or "remove", got "merge"/,
      ],
      [() => client.update("Shot", 1, { assets: a }, { multiEntityUpdateModes: { assets: "add" } }), /data\.assets must be a list of links/],
      [
        () => client.update("Shot", 1, { assets: [{ id: 3 } as never] }, { multiEntityUpdateModes: { assets: "add" } }),
        /data\.assets\[0\] must be an entity link/,
      ],
      [
        () => client.update("Shot", 1, { assets: { multi_entity_update_mode: "set", value: [a] } }, { multiEntityUpdateModes: { assets: "add" } }),
        /is "add" but data\.assets\.multi_entity_update_mode is "set"/,
      ],
      [() => client.create("Shot", { assets: [a] }, { multiEntityUpdateModes: { assets: "add" } }), /multiEntityUpdateModes applies to update only/],
      [
        () => client.batch([{ requestType: "update", entityType: "Shot", id: 1, data: {}, multiEntityUpdateModes: { assets: "set" } }]),
        /requests\[0\]\.multiEntityUpdateModes\.assets: requests\[0\]\.data does not set/,
      ],
      [
        () => client.batch([{ requestType: "create", entityType: "Shot", data: {}, fields: "code" as never }]),
        /requests\[0\]\.fields must be a list of field names/,
      ],
      [() => client.update("Shot", 1, { code: "x" }, { fields: ["bad field"] }), /options\.fields\[0\] must be a field name/],
      [() => client.delete("Shot", 1, null as never), /options must be an object, got null/],
      [() => client.create("Shot", { code: "x" }, "code" as never), /options must be an object, got "code"/],
    ];
    for (const [call, message] of cases) await expect(call()).rejects.toThrow(message);
    expect(site.stats.requests).toBe(before);
  });
});
