/**
 * The "done when", end to end: a change made through the simulated site's REST API is
 * seen by the next GetEntity and Query and by open WatchChanges streams within about one poll
 * interval, including query membership and renamed linked entities.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChangeKind } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { changeOf, GET_ENTITY, pollUntil, postJson, QUERY, siteUpdate, startE2E, watch, type E2E, type Watch } from "./e2e-helpers.ts";

let e2e: E2E;
const streams: Watch[] = [];
beforeAll(async () => {
  e2e = await startE2E({ config: { pollIntervalMs: 100, heartbeatS: 1 } });
});
afterAll(async () => {
  for (const s of streams) s.close();
  await e2e?.close();
});

function open(request: Parameters<typeof watch>[1], protocol?: Parameters<typeof watch>[2]): Watch {
  const w = watch(e2e.url, request, protocol);
  streams.push(w);
  return w;
}

const getShot = (id: number, fields: string[]) => postJson(e2e.port, GET_ENTITY, { entityType: "Shot", id, fields });

describe("a change on the site", () => {
  it("is seen by the next GetEntity and by an open WatchChanges stream", async () => {
    const before = await getShot(11, ["code", "sg_status_list"]);
    expect(before.json.freshness.source).toBe("cache");
    expect(before.json.entity.fields.code).toBe("NLT_020_0010");

    const stream = open({ entityTypes: ["Shot"] });
    // The first message arrives at once: a heartbeat, so the client knows the stream is open.
    const first = await stream.waitFor(() => true);
    expect(first.message.case).toBe("heartbeat");

    await siteUpdate(e2e.site, "shots", 11, { code: "NLT_020_0010_v2" });
    const after = await pollUntil(
      () => getShot(11, ["code", "sg_status_list"]),
      (r) => r.json.entity.fields.code === "NLT_020_0010_v2",
    );
    expect(after.json.entity.fields).toEqual({ code: "NLT_020_0010_v2", sg_status_list: before.json.entity.fields.sg_status_list });
    expect(Number(after.json.freshness.asOfEventId)).toBeGreaterThan(Number(before.json.freshness.asOfEventId));
    expect(after.json.freshness.stale).toBe(false);

    const msg = await stream.waitFor((m) => changeOf(m)?.entityId === 11);
    const change = changeOf(msg)!;
    expect(change).toMatchObject({
      kind: ChangeKind.CHANGE,
      entityType: "Shot",
      entityId: 11,
      projectId: 1,
      attributeName: "code",
      eventType: "Shotgun_Shot_Change",
    });
    expect(change.eventId).toBeGreaterThan(0n);
    expect(change.user).toMatchObject({ type: "ApiUser", id: e2e.site.scriptUser.id });
    expect(change.createdAt).toBeDefined();
    // Once cached again, the new value is a hit.
    const hit = await getShot(11, ["code"]);
    expect(hit.json).toMatchObject({ entity: { fields: { code: "NLT_020_0010_v2" } }, freshness: { source: "cache" } });
  });

  it("reaches only the streams whose entityTypes and projectIds match", async () => {
    const shotsOfProject2 = open({ entityTypes: ["Shot"], projectIds: [2] }, "grpc");
    const assetsOnly = open({ entityTypes: ["Asset"] }, "grpc-web");
    const everything = open({});
    await Promise.all([shotsOfProject2, assetsOnly, everything].map((s) => s.waitFor(() => true)));

    await siteUpdate(e2e.site, "shots", 12, { description: "project 1 change" }); // project 1
    await siteUpdate(e2e.site, "shots", 41, { description: "project 2 change" }); // project 2
    await siteUpdate(e2e.site, "assets", 2, { description: "asset change" });

    const shot41 = await shotsOfProject2.waitFor((m) => changeOf(m) !== undefined);
    expect(changeOf(shot41)).toMatchObject({ entityType: "Shot", entityId: 41, projectId: 2, attributeName: "description" });
    const asset = await assetsOnly.waitFor((m) => changeOf(m) !== undefined);
    expect(changeOf(asset)).toMatchObject({ entityType: "Asset", entityId: 2 });
    await everything.waitFor((m) => changeOf(m)?.entityType === "Asset");
    const seen = everything.messages
      .map(changeOf)
      .filter((c) => c !== undefined)
      .map((c) => `${c.entityType}:${c.entityId}`);
    expect(seen).toEqual(["Shot:12", "Shot:41", "Asset:2"]);
    // Everything the filtered streams got matched their filters.
    expect(
      shotsOfProject2.messages
        .map(changeOf)
        .filter(Boolean)
        .map((c) => c!.entityId),
    ).toEqual([41]);
    expect(
      assetsOnly.messages
        .map(changeOf)
        .filter(Boolean)
        .map((c) => c!.entityType),
    ).toEqual(["Asset"]);
  });

  it("sends heartbeats on an idle stream", async () => {
    const idle = open({ entityTypes: ["Playlist"] });
    await idle.waitFor(() => true);
    const second = await idle.waitFor((m) => m.message.case === "heartbeat", 4000, 1);
    expect(second.message.case).toBe("heartbeat");
    if (second.message.case === "heartbeat") expect(second.message.value.lastEventId).toBe(BigInt(e2e.service.bus.lastEventId));
  });

  it("replays from a recent sinceEventId, and asks a too-old one to resync", async () => {
    const recent = Number(e2e.service.bus.oldestResumableEventId);
    const resumed = open({ entityTypes: ["Shot"], sinceEventId: BigInt(recent) });
    const replayed = await resumed.waitFor((m) => changeOf(m)?.entityId === 11);
    expect(changeOf(replayed)?.attributeName).toBe("code");

    const tooOld = open({ sinceEventId: 1n });
    const resync = await tooOld.waitFor((m) => m.message.case === "resync");
    if (resync.message.case !== "resync") throw new Error("expected resync");
    expect(resync.message.value.reason).toContain("cannot replay from event 1");
    expect(resync.message.value.resumeEventId).toBe(BigInt(e2e.service.bus.lastEventId));
  });
});

describe("cached queries and links follow the site", () => {
  it("updates a cached Query's membership when a shot changes status", async () => {
    const ask = () =>
      postJson(e2e.port, QUERY, {
        entityType: "Shot",
        filters: [
          ["sg_status_list", "is", "omt"],
          ["project", "is", { type: "Project", id: 1 }],
        ],
        fields: ["code"],
      });
    const before = await ask();
    expect(before.json.entities).toEqual([]);
    expect((await ask()).json.freshness.source).toBe("cache");

    await siteUpdate(e2e.site, "shots", 15, { sg_status_list: "omt" });
    const after = await pollUntil(ask, (r) => r.json.entities.length > 0);
    expect(after.json.entities).toEqual([{ type: "Shot", id: 15, fields: { code: "NLT_020_0050" } }]);

    await siteUpdate(e2e.site, "shots", 15, { sg_status_list: "ip" });
    const left = await pollUntil(ask, (r) => r.json.entities.length === 0);
    expect(left.json.entities).toEqual([]);
  });

  it("shows a renamed Sequence's new name inside Shots' links, via GetEntity and Query", async () => {
    const ask = () => postJson(e2e.port, QUERY, { entityType: "Shot", filters: [["id", "in", [21, 22]]], fields: ["sg_sequence"], order: [{ field: "id" }] });
    expect((await getShot(21, ["sg_sequence"])).json.entity.fields.sg_sequence).toEqual({ type: "Sequence", id: 3, name: "NLT_030" });
    expect((await ask()).json.entities[0].fields.sg_sequence.name).toBe("NLT_030");
    expect((await ask()).json.freshness.source).toBe("cache");

    await siteUpdate(e2e.site, "sequences", 3, { code: "NLT_030_renamed" });
    const got = await pollUntil(
      () => getShot(21, ["sg_sequence"]),
      (r) => r.json.entity.fields.sg_sequence.name === "NLT_030_renamed",
    );
    expect(got.json.entity.fields.sg_sequence).toEqual({ type: "Sequence", id: 3, name: "NLT_030_renamed" });
    const queried = await pollUntil(ask, (r) =>
      r.json.entities.every((e: { fields: { sg_sequence: { name: string } } }) => e.fields.sg_sequence.name === "NLT_030_renamed"),
    );
    expect(queried.json.entities.map((e: { fields: { sg_sequence: unknown } }) => e.fields.sg_sequence)).toEqual([
      { type: "Sequence", id: 3, name: "NLT_030_renamed" },
      { type: "Sequence", id: 3, name: "NLT_030_renamed" },
    ]);
  });
});
