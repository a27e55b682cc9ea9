/**
 * With --redis, a write on instance A is visible to the next read on instance B, with no wait:
 * A's invalidation reaches B through the shared store (and B's near cache through the
 * invalidation channel), before A answers the write. Two services in this process, one private
 * redis-server, one simulated site.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../src/app/create-app.ts";
import { hashToken, newToken } from "../src/auth/token.ts";
import { createCacheClient } from "../src/client.ts";
import type { EntityLink } from "../src/shotgrid/types.ts";
import { startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { postJson } from "./e2e-helpers.ts";
import { startRedisPair, type RedisPair } from "./redis-pair.ts";

const WRITER = newToken();
let site: SimulatorHandle;
let dir: string;
let pair: RedisPair | undefined;
const instances: RunningService[] = [];

beforeAll(async () => {
  site = await startSimulator({ shots: 6, assets: 2, users: [{ login: "bea", password: "unused-password" }] });
  dir = await mkdtemp(join(tmpdir(), "sgc-redis-writes-"));
  const authFile = join(dir, "auth.json");
  await writeFile(
    authFile,
    JSON.stringify({ clients: [{ name: "writer", token_sha256: hashToken(WRITER), scopes: ["read", "write"], sudo_as_login: "bea" }] }),
  );
  pair = await startRedisPair(site, { authFile });
  instances.push(...pair.instances);
}, 60_000);

afterAll(async () => {
  await pair?.close();
  await site?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("writes with --redis", () => {
  it("a write on instance A is shown by the next read on instance B", async () => {
    const [a, b] = instances as [RunningService, RunningService];
    const shot = [...site.store.records("Shot")].find((r) => !r.retired && r.fields["project"])!;
    const project = (shot.fields["project"] as EntityLink).id;
    const rpc = (s: RunningService, method: string, message: unknown) =>
      postJson(s.port, `/shotgrid.cache.v1.CacheService/${method}`, message, { authorization: `Bearer ${WRITER}` });
    const q = { entityType: "Shot", filters: [["project", "is", { type: "Project", id: project }]], fields: ["code"] };
    // B holds both answers (its near cache too: read twice).
    for (let i = 0; i < 2; i++) {
      expect((await rpc(b, "GetEntity", { entityType: "Shot", id: shot.id, fields: ["code"] })).json.freshness.source).toBe("cache");
      await rpc(b, "Query", q);
    }
    const before = (await rpc(b, "Query", q)).json.entities.length as number;

    expect((await rpc(a, "Update", { entityType: "Shot", id: shot.id, data: { code: "REDIS_WRITE" } })).status).toBe(200);
    expect((await rpc(b, "GetEntity", { entityType: "Shot", id: shot.id, fields: ["code"] })).json.entity.fields.code).toBe("REDIS_WRITE");

    const client = createCacheClient(a.url, { protocol: "grpc", token: WRITER });
    // A slow site: A's own background refresh of the new record cannot win the race to the store.
    site.knobs.set({ latencyMs: 150 });
    const { entity } = await client.create({ entityType: "Shot", data: { code: "REDIS_NEW", project: { type: "Project", id: project } } });
    // B has never heard of the new id (Shot is preloaded: B answers unknown ids from its own id
    // set), yet it shows the record: A filled the shared store with it before answering.
    const created = await rpc(b, "GetEntity", { entityType: "Shot", id: entity!.id, fields: ["code"] });
    expect(created.json.entity?.fields.code).toBe("REDIS_NEW");
    site.knobs.set({ latencyMs: 0 });
    const after = (await rpc(b, "Query", q)).json.entities as Array<{ id: number; fields: { code: string } }>;
    expect(after).toHaveLength(before + 1);
    expect(after.find((e) => e.id === entity!.id)?.fields.code).toBe("REDIS_NEW");

    // Retired on A: gone on B; revived on A: back on B.
    await client.delete({ entityType: "Shot", id: shot.id });
    expect((await rpc(b, "GetEntity", { entityType: "Shot", id: shot.id, fields: ["code"] })).json.code).toBe("not_found");
    await client.revive({ entityType: "Shot", id: shot.id });
    expect((await rpc(b, "GetEntity", { entityType: "Shot", id: shot.id, fields: ["code"] })).json.entity?.fields.code).toBe("REDIS_WRITE");
  });
});
