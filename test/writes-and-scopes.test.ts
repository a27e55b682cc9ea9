/**
 * Writes and access control end to end: the whole service (`startService`, `--auth-file`) in
 * front of the simulated site, called over Connect with JSON on HTTP/1.1 (raw HTTP, as curl
 * would) and over gRPC (the typed client). Each write is visible to the writer's next read with
 * no wait; the site's event log names the token's sudo login; a lost answer is `unavailable`
 * saying the write may have happened; scopes and project limits hold on GetEntity, Query (also
 * when the cache holds an answer made for another caller), WatchChanges and the fast path; and
 * no secret shows in logs, /metrics or /readyz.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WatchChangesResponse } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { startService, type RunningService } from "../src/app/create-app.ts";
import { hashToken, newToken } from "../src/auth/token.ts";
import { createCacheClient } from "../src/client.ts";
import type { EntityLink } from "../src/shotgrid/types.ts";
import { startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { changeOf, GET_ENTITY, getJson, postJson, QUERY, rawRequest, testConfig } from "./e2e-helpers.ts";

const SCRIPT_KEY = `sk-${newToken()}`;
const ALICE_PASSWORD = `pw-${newToken()}`;
const WRITER = newToken();
const READER = newToken();
const LIMITED = newToken();
const UNKNOWN = newToken();
const GHOST = newToken();
const RPC = "/shotgrid.cache.v1.CacheService/";

let site: SimulatorHandle;
let service: RunningService;
let port: number;
let dir: string;
const logLines: string[] = [];
// The follower polls once a minute in this file: what a read shows right after a write is the
// write's own invalidation, never its event applied meanwhile.
let projectA: number;
let projectB: number;
let shotA: number;
let shotB: number;

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const call = (method: string, message: unknown, token?: string) => postJson(port, `${RPC}${method}`, message, token ? bearer(token) : {});

beforeAll(async () => {
  site = await startSimulator({ scriptKey: SCRIPT_KEY, shots: 12, assets: 4, users: [{ login: "alice", password: ALICE_PASSWORD }] });
  const shots = [...site.store.records("Shot")].filter((r) => !r.retired && r.fields["project"]);
  projectA = (shots[0]!.fields["project"] as EntityLink).id;
  shotA = shots[0]!.id;
  const other = shots.find((r) => (r.fields["project"] as EntityLink).id !== projectA)!;
  projectB = (other.fields["project"] as EntityLink).id;
  shotB = other.id;
  dir = await mkdtemp(join(tmpdir(), "sgc-writes-"));
  const authFile = join(dir, "auth.yaml");
  await writeFile(
    authFile,
    [
      "clients:",
      `  - { name: writer, token_sha256: ${hashToken(WRITER)}, scopes: [read, write, watch], sudo_as_login: alice }`,
      `  - { name: reader, token_sha256: ${hashToken(READER)}, scopes: [read, watch] }`,
      `  - { name: limited, token_sha256: ${hashToken(LIMITED)}, scopes: [read, watch], projects: [${projectA}] }`,
      `  - { name: ghost, token_sha256: ${hashToken(GHOST)}, scopes: [read, write], sudo_as_login: nobody.here }`,
      "",
    ].join("\n"),
  );
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString("utf8"));
      done();
    },
  });
  service = await startService(
    testConfig({
      site: { url: site.url, scriptName: site.scriptName, scriptKey: SCRIPT_KEY },
      authFile,
      upstreamRetryMs: 0,
      logLevel: "debug",
      pollIntervalMs: 60_000,
    }),
    pino({ level: "debug" }, sink),
  );
  await service.ready;
  port = service.port;
}, 30_000);

afterAll(async () => {
  await service?.close(1000);
  await site?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The newest event log rows the site wrote about `type` `id`. */
function eventsOf(type: string, id: number) {
  return [...site.store.records("EventLogEntry")].filter((e) => {
    const entity = e.fields["entity"] as EntityLink | undefined;
    return entity?.type === type && entity.id === id;
  });
}

const aliceId = () => [...site.store.records("HumanUser")].find((u) => u.fields["login"] === "alice")!.id;

describe("read limits on a type no call has read yet", () => {
  it("decides a Project by its own id, whose fields the check itself loads", async () => {
    // First in the file: Project's fields are not loaded yet (an empty field list loads none).
    const other = await call("GetEntity", { entityType: "Project", id: projectB }, LIMITED);
    expect([other.status, other.json.code]).toEqual([403, "permission_denied"]);
    const own = await call("GetEntity", { entityType: "Project", id: projectA }, LIMITED);
    expect([own.status, own.json.entity?.id]).toEqual([200, projectA]);
  });
});

describe("writes over Connect (JSON, HTTP/1.1)", () => {
  it("create, update (set/add/remove), delete and revive: each visible to the next read, made as the sudo login", async () => {
    // Cached first, so visibility is the invalidation's doing, not a miss.
    const q = { entityType: "Shot", filters: [["project", "is", { type: "Project", id: projectA }]], fields: ["code", "assets"] };
    const before = (await call("Query", q, WRITER)).json.entities.length;
    const created = await call(
      "Create",
      { entityType: "Shot", data: { code: "E2E_NEW", project: { type: "Project", id: projectA } }, returnFields: ["code"] },
      WRITER,
    );
    expect(created.status).toBe(200);
    const id = created.json.entity.id as number;
    expect(created.json.entity.fields.code).toBe("E2E_NEW");
    expect((await call("Query", q, WRITER)).json.entities).toHaveLength(before + 1);
    expect((await getJson(port, GET_ENTITY, { entityType: "Shot", id, fields: ["code"] })).status).toBe(401); // no token: refused
    expect((await call("GetEntity", { entityType: "Shot", id, fields: ["code"] }, WRITER)).json.entity.fields.code).toBe("E2E_NEW");

    const assets = [...site.store.records("Asset")].filter((r) => !r.retired).map((r) => ({ type: "Asset", id: r.id }));
    const assetIds = async () =>
      ((await call("GetEntity", { entityType: "Shot", id, fields: ["assets"] }, WRITER)).json.entity.fields.assets as EntityLink[]).map((l) => l.id).sort();
    const update = (data: unknown, modes?: Record<string, string>) => call("Update", { entityType: "Shot", id, data, multiEntityUpdateModes: modes }, WRITER);
    expect((await update({ assets: [assets[0]] }, { assets: "set" })).status).toBe(200);
    expect(await assetIds()).toEqual([assets[0]!.id]);
    await update({ assets: [assets[1], assets[2]] }, { assets: "add" });
    expect(await assetIds()).toEqual([assets[0]!.id, assets[1]!.id, assets[2]!.id].sort());
    await update({ assets: [assets[0]] }, { assets: "remove" });
    expect(await assetIds()).toEqual([assets[1]!.id, assets[2]!.id].sort());
    await update({ code: "E2E_RENAMED" });
    expect((await call("GetEntity", { entityType: "Shot", id, fields: ["code"] }, WRITER)).json.entity.fields.code).toBe("E2E_RENAMED");

    expect((await call("Delete", { entityType: "Shot", id }, WRITER)).status).toBe(200);
    expect((await call("GetEntity", { entityType: "Shot", id, fields: ["code"] }, WRITER)).json.code).toBe("not_found");
    expect((await call("Query", q, WRITER)).json.entities).toHaveLength(before);
    expect((await call("Revive", { entityType: "Shot", id }, WRITER)).json.revived).toBe(true);
    expect((await call("GetEntity", { entityType: "Shot", id, fields: ["code"] }, WRITER)).json.entity.fields.code).toBe("E2E_RENAMED");

    // The site's event log names alice (the writer's sudo_as_login), not the service's script.
    const users = eventsOf("Shot", id).map((e) => (e.fields["user"] as EntityLink | undefined)?.id);
    expect(users.length).toBeGreaterThan(4);
    expect(new Set(users)).toEqual(new Set([aliceId()]));
  });

  it("a batch is all or nothing; a good one is visible at once", async () => {
    const code = async () => (await call("GetEntity", { entityType: "Shot", id: shotA, fields: ["code"] }, WRITER)).json.entity.fields.code;
    const was = await code();
    const bad = await call(
      "Batch",
      {
        operations: [
          { update: { entityType: "Shot", id: shotA, data: { code: "E2E_BATCH_NO" } } },
          { create: { entityType: "Shot", data: { code: "E2E_BATCH_NO2", sg_cut_in: "not a number" } } },
        ],
      },
      WRITER,
    );
    expect(bad.json.code).toBe("invalid_argument");
    expect(await code()).toBe(was);
    expect(site.store.get("Shot", shotA)!.fields["code"]).toBe(was);
    const good = await call(
      "Batch",
      {
        operations: [
          { update: { entityType: "Shot", id: shotA, data: { code: "E2E_BATCH_YES" }, returnFields: ["code"] } },
          { create: { entityType: "Shot", data: { code: "E2E_BATCH_NEW", project: { type: "Project", id: projectA } } } },
        ],
      },
      WRITER,
    );
    expect(good.status).toBe(200);
    expect(good.json.results).toHaveLength(2);
    expect(await code()).toBe("E2E_BATCH_YES");
    const newId = good.json.results[1].entity.id as number;
    expect((await call("GetEntity", { entityType: "Shot", id: newId, fields: ["code"] }, WRITER)).json.entity.fields.code).toBe("E2E_BATCH_NEW");
  });

  it("bad write input is refused naming the field", async () => {
    const r = await call("Update", { entityType: "Shot", id: shotA, data: { no_such: 1 } }, WRITER);
    expect(r.json.code).toBe("invalid_argument");
    expect(r.json.message).toMatch(/data\["no_such"\]: Shot has no field "no_such"/);
    const m = await call("Update", { entityType: "Shot", id: shotA, data: { code: "x" }, multiEntityUpdateModes: { code: "add" } }, WRITER);
    expect(m.json.message).toMatch(/multiEntityUpdateModes\["code"\]: "code" is a text field/);
  });
});

describe("writes over gRPC", () => {
  it("create, update, delete, revive and batch through the typed client, each visible to its next read", async () => {
    const client = createCacheClient(service.url, { protocol: "grpc", token: WRITER });
    const { entity } = await client.create({
      entityType: "Asset",
      data: { code: "GRPC_NEW", project: { type: "Project", id: projectA } },
      returnFields: ["code"],
    });
    const id = entity!.id;
    const read = async () => (await client.getEntity({ entityType: "Asset", id, fields: ["code"] })).entity?.fields?.["code"];
    expect(await read()).toBe("GRPC_NEW");
    await client.update({ entityType: "Asset", id, data: { code: "GRPC_RENAMED" } });
    expect(await read()).toBe("GRPC_RENAMED");
    await client.delete({ entityType: "Asset", id });
    await expect(read()).rejects.toThrow(/not found/);
    expect((await client.revive({ entityType: "Asset", id })).revived).toBe(true);
    expect(await read()).toBe("GRPC_RENAMED");
    const { results } = await client.batch({
      operations: [{ operation: { case: "update", value: { entityType: "Asset", id, data: { code: "GRPC_BATCH" } } } }],
    });
    expect(results).toHaveLength(1);
    expect(await read()).toBe("GRPC_BATCH");
    const reader = createCacheClient(service.url, { protocol: "grpc", token: READER });
    await expect(reader.update({ entityType: "Asset", id, data: { code: "NO" } })).rejects.toThrow(/client "reader" lacks the "write" scope/);
  });
});

describe("who may call", () => {
  it("unauthenticated without a token or with a wrong one, never echoing it", async () => {
    const none = await call("GetEntity", { entityType: "Shot", id: shotA });
    expect([none.status, none.json.code]).toEqual([401, "unauthenticated"]);
    const wrong = await call("GetEntity", { entityType: "Shot", id: shotA }, UNKNOWN);
    expect([wrong.status, wrong.json.code]).toEqual([401, "unauthenticated"]);
    expect(wrong.body).not.toContain(UNKNOWN);
    const grpc = createCacheClient(service.url, { protocol: "grpc", token: UNKNOWN });
    await expect(grpc.getEntity({ entityType: "Shot", id: shotA })).rejects.toThrow(/invalid credentials/);
  });

  it("permission_denied for a missing scope and for another project, on the normal and the fast path", async () => {
    const write = await call("Create", { entityType: "Shot", data: { code: "NO" } }, READER);
    expect([write.status, write.json.code]).toEqual([403, "permission_denied"]);
    expect(write.json.message).toMatch(/lacks the "write" scope/);
    // Cached for the reader first: the limited client's hit must still be refused.
    const msg = { entityType: "Shot", id: shotB, fields: ["code"] };
    expect((await call("GetEntity", msg, READER)).status).toBe(200);
    expect((await call("GetEntity", msg, READER)).status).toBe(200);
    for (const answer of [await call("GetEntity", msg, LIMITED), await rawGet(GET_ENTITY, msg, LIMITED)]) {
      expect([answer.status, answer.json.code]).toEqual([403, "permission_denied"]);
      expect(answer.json.message).toMatch(new RegExp(`may not read entities of project ${projectB}`));
    }
    // Its own project: allowed on both paths, and the added `project` field is not in the answer.
    for (const answer of [
      await call("GetEntity", { entityType: "Shot", id: shotA, fields: ["code"] }, LIMITED),
      await rawGet(GET_ENTITY, { entityType: "Shot", id: shotA, fields: ["code"] }, LIMITED),
    ]) {
      expect(answer.status).toBe(200);
      expect(Object.keys(answer.json.entity.fields)).toEqual(["code"]);
    }
    // Over gRPC too.
    const grpc = createCacheClient(service.url, { protocol: "grpc", token: LIMITED });
    await expect(grpc.getEntity(msg)).rejects.toThrow(new RegExp(`may not read entities of project ${projectB}`));
    const { entities } = await grpc.query({ entityType: "Shot", fields: ["project"] });
    expect(new Set(entities.map((e) => (e.fields!["project"] as unknown as EntityLink).id))).toEqual(new Set([projectA]));
    // A hit on the fast path with no token is refused as on the normal path.
    expect((await rawGet(GET_ENTITY, msg)).json.code).toBe("unauthenticated");
  });

  it("a project-limited Query returns only its project, even when the cache holds the unscoped answer", async () => {
    const q = { entityType: "Shot", fields: ["project"] };
    const all = (await call("Query", q, READER)).json.entities as Array<{ fields: { project: EntityLink } }>;
    expect(new Set(all.map((e) => e.fields.project.id)).size).toBeGreaterThan(1);
    await call("Query", q, READER); // now a hit for the reader, on the fast path too
    // Asked again and again (POST and GET): the first fills the cache, the later ones are fast-path
    // hits once the hit path has validated and scoped the request (in the background).
    const answers = [];
    for (let i = 0; i < 3; i++) {
      answers.push(await call("Query", q, LIMITED), await rawGet(QUERY, q, LIMITED));
      await new Promise((r) => setTimeout(r, 30));
    }
    for (const answer of answers) {
      const projects = new Set((answer.json.entities as Array<{ fields: { project: EntityLink } }>).map((e) => e.fields.project.id));
      expect([...projects]).toEqual([projectA]);
    }
  });

  it("a client with read limits may not read through a link (fields, filters, order), on any read", async () => {
    // A dotted path reads the linked record, which no limit was checked against (another type, maybe another project).
    const shot = [...site.store.records("Shot")].find((r) => !r.retired && (r.fields["project"] as EntityLink | null)?.id === projectA)!;
    const refusals = [
      await call("Query", { entityType: "Shot", fields: ["code", "sg_sequence.Sequence.description"] }, LIMITED),
      await call("Query", { entityType: "Shot", fields: ["code"], filters: [["sg_sequence.Sequence.code", "contains", "a"]] }, LIMITED),
      await call("Query", { entityType: "Shot", fields: ["code"], order: [{ field: "sg_sequence.Sequence.code", direction: "asc" }] }, LIMITED),
      await call("GetEntity", { entityType: "Shot", id: shot.id, fields: ["sg_sequence.Sequence.description"] }, LIMITED),
      await rawGet(QUERY, { entityType: "Shot", fields: ["sg_sequence.Sequence.code"] }, LIMITED),
    ];
    for (const r of refusals) {
      expect(r.json.code).toBe("permission_denied");
      expect(r.json.message).toContain("may not use dotted paths");
    }
    // A client without limits still may.
    const open = await call("Query", { entityType: "Shot", fields: ["sg_sequence.Sequence.code"], limit: 1 }, READER);
    expect(open.json.entities).toHaveLength(1);
  });

  it("WatchChanges sends a project-limited client only its project's changes", async () => {
    const client = createCacheClient(service.url, { token: LIMITED });
    const controller = new AbortController();
    const got: WatchChangesResponse[] = [];
    const reading = (async () => {
      for await (const m of client.watchChanges({ entityTypes: ["Shot"] }, { signal: controller.signal })) got.push(m);
    })().catch(() => undefined);
    try {
      await until(() => got.length > 0);
      site.store.update("Shot", shotB, { description: "other project" });
      site.store.update("Shot", shotA, { description: "own project" });
      // The follower polls rarely here (so no event masks a missing write invalidation): now.
      await service.follower?.pollNow();
      await until(() => got.some((m) => changeOf(m)?.entityId === shotA));
      // shotB's change was applied first (same poll, event order), and never sent.
      const changes = got.map(changeOf).filter((c) => c !== undefined);
      expect(new Set(changes.map((c) => c.projectId))).toEqual(new Set([projectA]));
      expect(changes.some((c) => c.entityId === shotB)).toBe(false);
    } finally {
      controller.abort();
      await reading;
    }
  });

  it("a write ShotGrid will not make as the client's login is permission_denied, and changes nothing", async () => {
    const before = site.store.get("Shot", shotA)!.fields["description"];
    const r = await call("Update", { entityType: "Shot", id: shotA, data: { description: "ghost" } }, GHOST);
    expect([r.status, r.json.code]).toEqual([403, "permission_denied"]);
    expect(r.json.message).toMatch(/ShotGrid would not act as the caller: .*nobody\.here/);
    expect(site.store.get("Shot", shotA)!.fields["description"]).toBe(before);
  });

  it("a write whose answer is lost is unavailable, saying it may have happened", async () => {
    site.knobs.set({ errorRate: 1, errorStatuses: [502] });
    try {
      const r = await call("Update", { entityType: "Shot", id: shotA, data: { description: "lost" } }, WRITER);
      expect([r.status, r.json.code]).toEqual([503, "unavailable"]);
      expect(r.json.message).toMatch(/the write may have happened/);
    } finally {
      site.knobs.set({ errorRate: 0 });
    }
  });

  it("/status.json needs the status scope with an auth file (the policy's own check)", async () => {
    expect((await rawRequest(port, "GET", "/status.json")).status).toBe(401);
    expect((await rawRequest(port, "GET", "/status.json", undefined, bearer(READER))).status).toBe(403);
  });

  it("no secret in logs, /metrics or /readyz", async () => {
    const metrics = (await rawRequest(port, "GET", "/metrics")).body;
    const readyz = (await rawRequest(port, "GET", "/readyz")).body;
    const text = [logLines.join(""), metrics, readyz].join("\n");
    expect(logLines.length).toBeGreaterThan(10);
    for (const secret of [WRITER, READER, LIMITED, UNKNOWN, GHOST, hashToken(WRITER), hashToken(READER), SCRIPT_KEY, ALICE_PASSWORD]) {
      expect(text).not.toContain(secret);
    }
  });
});

describe("open mode (no --auth-file)", () => {
  it("reads are open, writes refused naming --auth-file", async () => {
    const open = await startService(testConfig({ site: { url: site.url, scriptName: site.scriptName, scriptKey: SCRIPT_KEY } }), pino({ level: "silent" }));
    try {
      await open.ready;
      expect(open.policy.mode).toBe("open");
      const read = await postJson(open.port, GET_ENTITY, { entityType: "Shot", id: shotA, fields: ["code"] });
      expect(read.status).toBe(200);
      const w = await postJson(open.port, `${RPC}Update`, { entityType: "Shot", id: shotA, data: { code: "NO" } }, bearer(WRITER));
      expect([w.status, w.json.code]).toEqual([403, "permission_denied"]);
      expect(w.json.message).toMatch(/--auth-file/);
    } finally {
      await open.close(1000);
    }
  });
});

/** A Connect GET (the fast path's favourite) with an optional token. */
function rawGet(path: string, message: unknown, token?: string) {
  const q = `connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify(message))}`;
  return rawRequest(port, "GET", `${path}?${q}`, undefined, token ? bearer(token) : {});
}

async function until(done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}
