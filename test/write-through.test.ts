/**
 * WriteThrough over the simulated site and the real REST client: each write is visible to the
 * next read with no event applied (the hints it applies invalidate by the event rules), the
 * event applied afterwards changes nothing, a refused batch changes nothing, and a read that
 * fetched before a write never puts the old value back in the cache.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MemoryEntityCache } from "../src/cache/index.ts";
import type { EntityQuery } from "../src/cache/types.ts";
import { WriteThrough } from "../src/service/write-through.ts";
import { RequestRejectedError, ShotGridClient, WriteOutcomeUnknownError } from "../src/shotgrid/index.ts";
import type { Entity, EntityLink } from "../src/shotgrid/types.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { catchUp, ObservedBackend } from "./cache-helpers.ts";

let sim: SimulatorHandle;
let client: ShotGridClient;

beforeAll(async () => {
  sim = await startSimulator({ shots: 12, assets: 4 });
  client = new ShotGridClient({ siteUrl: sim.url, scriptName: sim.scriptName, scriptKey: DEFAULT_SCRIPT_KEY, maxRetries: 0 });
});

afterAll(async () => {
  await client?.close();
  await sim?.close();
});

const link = (type: string, id: number) => ({ type, id });
const shotsOf = (projectId: number, fields = ["code", "sg_status_list"]): EntityQuery => ({
  entityType: "Shot",
  filters: [["project", "is", link("Project", projectId)]],
  fields,
  order: [{ field: "id", direction: "asc" }],
  includeArchivedProjects: true,
  retired: false,
});

describe("WriteThrough", () => {
  let backend: ObservedBackend;
  let cache: MemoryEntityCache;
  let writes: WriteThrough;
  let shot: Entity;
  let project: number;

  beforeEach(async () => {
    backend = new ObservedBackend(client);
    cache = new MemoryEntityCache({ backend, maxAgeMs: Number.POSITIVE_INFINITY, lastAppliedEventId: await client.latestEventId() });
    await cache.preload();
    writes = new WriteThrough({ backend: client, cache });
    const rec = [...sim.store.records("Shot")].find((r) => !r.retired && r.fields["project"] && r.fields["sg_sequence"])!;
    shot = { type: "Shot", id: rec.id, fields: rec.fields as Entity["fields"] };
    project = (rec.fields["project"] as EntityLink).id;
  });

  it("create, update, delete and revive are each visible to the next read, with no event applied", async () => {
    const applied = cache.lastAppliedEventId;
    const before = (await cache.query(shotsOf(project))).value;
    await cache.getEntity("Shot", shot.id, ["code"]);

    const created = await writes.create("Shot", { code: "WT_NEW", project: link("Project", project) });
    expect((await cache.query(shotsOf(project))).value.map((e) => e.id)).toEqual([...before.map((e) => e.id), created.id]);
    // Shot is preloaded: the cache knows the new id exists instead of answering "not found".
    expect((await cache.getEntity("Shot", created.id, ["code"])).value?.fields["code"]).toBe("WT_NEW");

    await writes.update("Shot", shot.id, { code: "WT_RENAMED", sg_status_list: "ip" });
    expect((await cache.getEntity("Shot", shot.id, ["code"])).value?.fields["code"]).toBe("WT_RENAMED");
    expect((await cache.query(shotsOf(project))).value.find((e) => e.id === shot.id)?.fields["sg_status_list"]).toBe("ip");

    // A renamed Sequence: the Shots showing its name do not keep the old one.
    const seq = shot.fields["sg_sequence"] as EntityLink;
    await cache.getEntity("Shot", shot.id, ["sg_sequence"]);
    await writes.update("Sequence", seq.id, { code: "WT_SEQ" });
    const renamed = (await cache.getEntity("Shot", shot.id, ["sg_sequence"])).value!;
    expect((renamed.fields["sg_sequence"] as EntityLink).name).toBe("WT_SEQ");

    await writes.delete("Shot", created.id);
    expect((await cache.getEntity("Shot", created.id, ["code"])).value).toBeNull();
    expect((await cache.query(shotsOf(project))).value.map((e) => e.id)).not.toContain(created.id);
    expect(await writes.revive("Shot", created.id)).toBe(true);
    expect((await cache.getEntity("Shot", created.id, ["code"])).value?.fields["code"]).toBe("WT_NEW");
    expect((await cache.query(shotsOf(project))).value.map((e) => e.id)).toContain(created.id);

    // Hints never count as applied events; the real events, applied later, change nothing.
    expect(cache.lastAppliedEventId).toBe(applied);
    await catchUp(cache, client);
    await cache.whenIdle();
    expect(cache.lastAppliedEventId).toBeGreaterThan(applied);
    expect((await cache.getEntity("Shot", shot.id, ["code"])).value?.fields["code"]).toBe("WT_RENAMED");
    expect((await cache.getEntity("Shot", created.id, ["code"])).value?.fields["code"]).toBe("WT_NEW");
  });

  it("multi-entity updates (add, remove, set) show at once", async () => {
    const assets = [...sim.store.records("Asset")]
      .filter((r) => !r.retired)
      .slice(0, 3)
      .map((r) => link("Asset", r.id));
    const ids = async () => ((await cache.getEntity("Shot", shot.id, ["assets"])).value!.fields["assets"] as EntityLink[]).map((l) => l.id).sort();
    await writes.update("Shot", shot.id, { assets: [assets[0]!] }, { multiEntityUpdateModes: { assets: "set" } });
    expect(await ids()).toEqual([assets[0]!.id]);
    await writes.update("Shot", shot.id, { assets: [assets[1]!, assets[2]!] }, { multiEntityUpdateModes: { assets: "add" } });
    expect(await ids()).toEqual(assets.map((a) => a.id).sort());
    await writes.update("Shot", shot.id, { assets: [assets[0]!] }, { multiEntityUpdateModes: { assets: "remove" } });
    expect(await ids()).toEqual([assets[1]!.id, assets[2]!.id].sort());
  });

  it("a batch is all or nothing, and what it wrote shows at once", async () => {
    const codes = async () => (await cache.query(shotsOf(project, ["code"]))).value.map((e) => e.fields["code"]);
    const before = await codes();
    const bad = writes.batch([
      { requestType: "update", entityType: "Shot", id: shot.id, data: { code: "WT_BATCH_A" } },
      { requestType: "update", entityType: "Shot", id: shot.id, data: { no_such_field: 1 } },
    ]);
    await expect(bad).rejects.toBeInstanceOf(RequestRejectedError);
    const readsBefore = backend.upstreamReads;
    expect(await codes()).toEqual(before);
    // Nothing was written, so nothing was invalidated: still a hit.
    expect(backend.upstreamReads).toBe(readsBefore);

    const results = await writes.batch([
      { requestType: "update", entityType: "Shot", id: shot.id, data: { code: "WT_BATCH_B" } },
      { requestType: "create", entityType: "Shot", data: { code: "WT_BATCH_NEW", project: link("Project", project) } },
    ]);
    expect(results).toHaveLength(2);
    const after = await codes();
    expect(after).toContain("WT_BATCH_B");
    expect(after).toContain("WT_BATCH_NEW");
  });

  it("no stale write-back: a read that fetched before the write does not put the old value back", async () => {
    const q = shotsOf(project, ["code", "description"]);
    const gate = backend.holdNext("search");
    const slow = cache.query(q);
    await gate.reached; // its answer (the old description) is fetched and held
    await writes.update("Shot", shot.id, { description: "WT_AFTER" });
    gate.open();
    await slow;
    const next = await cache.query(q);
    expect(next.value.find((e) => e.id === shot.id)?.fields["description"]).toBe("WT_AFTER");

    // The same for a record fetch (Task is not preloaded, so its read goes upstream).
    const task = [...sim.store.records("Task")].find((r) => !r.retired)!;
    const held = backend.holdNext("getEntity");
    const slowRead = cache.getEntity("Task", task.id, ["content"]);
    await held.reached;
    await writes.update("Task", task.id, { content: "WT_TASK" });
    held.open();
    await slowRead;
    expect((await cache.getEntity("Task", task.id, ["content"])).value?.fields["content"]).toBe("WT_TASK");
  });

  it("a write whose answer is lost is sent once, fails saying it may have happened, and is invalidated as if made", async () => {
    // Between the client and the site: writes (PUT, POST to an entity) reach the site, then the
    // connection drops before the answer.
    let puts = 0;
    const proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const upstream = http.request(`${sim.url}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
          const body: Buffer[] = [];
          answer.on("data", (c: Buffer) => body.push(c));
          answer.on("end", () => {
            if (req.method === "PUT" || (req.method === "POST" && req.url?.startsWith("/api/v1.1/entity/"))) {
              puts++;
              req.socket.destroy();
              return;
            }
            res.writeHead(answer.statusCode!, answer.headers);
            res.end(Buffer.concat(body));
          });
        });
        upstream.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const lossy = new ShotGridClient({
      siteUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
      scriptName: sim.scriptName,
      scriptKey: DEFAULT_SCRIPT_KEY,
    });
    try {
      const viaLossy = new WriteThrough({ backend: lossy, cache });
      expect((await cache.getEntity("Shot", shot.id, ["description"])).freshness.source).toBe("cache");
      await expect(viaLossy.update("Shot", shot.id, { description: "WT_LOST_ANSWER" })).rejects.toBeInstanceOf(WriteOutcomeUnknownError);
      await expect(viaLossy.update("Shot", shot.id, { description: "WT_LOST_ANSWER" })).rejects.toThrow(/the write may have happened/);
      expect(puts).toBe(2); // one per call: never repeated
      // The site did make it, and the cache does not hide that.
      expect(sim.store.get("Shot", shot.id)!.fields["description"]).toBe("WT_LOST_ANSWER");
      expect((await cache.getEntity("Shot", shot.id, ["description"])).value?.fields["description"]).toBe("WT_LOST_ANSWER");

      // A create whose answer is lost: its id is unknown, so the type's answers go (and the
      // preloaded type is loaded again, staying ready), and the new record shows.
      const q = shotsOf(project, ["code"]);
      await cache.query(q);
      await expect(viaLossy.create("Shot", { code: "WT_LOST_CREATE", project: link("Project", project) })).rejects.toBeInstanceOf(WriteOutcomeUnknownError);
      expect(puts).toBe(3);
      expect(cache.ready).toBe(true);
      const made = (await cache.query(q)).value.find((e) => e.fields["code"] === "WT_LOST_CREATE");
      expect(made).toBeDefined();
      await cache.whenIdle();
      expect(cache.ready).toBe(true);
      expect((await cache.getEntity("Shot", made!.id, ["code"])).value?.fields["code"]).toBe("WT_LOST_CREATE");
    } finally {
      await lossy.close();
      const closed = new Promise<void>((resolve) => proxy.close(() => resolve()));
      proxy.closeAllConnections();
      await closed;
    }
  });
});
