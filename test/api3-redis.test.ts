/**
 * api3 with --redis: a write made through api3 on instance A is shown by the next api3 read on
 * instance B, with no wait (A's invalidation reaches B through the shared store before A
 * answers), and summaries cached on B are dropped too. Two services, one private redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../src/app/create-app.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { startRedisPair, type RedisPair } from "./redis-pair.ts";

type Json = any;

let site: SimulatorHandle;
let pair: RedisPair | undefined;
const instances: RunningService[] = [];
let SCRIPT: Record<string, string>;

beforeAll(async () => {
  site = await startSimulator({ shots: 6, assets: 2 });
  SCRIPT = { script_name: site.scriptName, script_key: DEFAULT_SCRIPT_KEY };
  pair = await startRedisPair(site);
  instances.push(...pair.instances);
}, 60_000);

afterAll(async () => {
  await pair?.close();
  await site?.close();
});

async function call(s: RunningService, method: string, args: unknown): Promise<Json> {
  const res = await fetch(`${s.url}/api3/json`, {
    method: "POST",
    headers: { "content-type": "application/json; charset=utf-8" },
    body: JSON.stringify({ method_name: method, params: [SCRIPT, args] }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.json();
  if (body.exception) throw new Error(`${method}: ${body.message}`);
  return body.results;
}

describe("api3 with --redis", () => {
  it("a write through api3 on instance A is shown by the next api3 read and summary on instance B", async () => {
    const [a, b] = instances as [RunningService, RunningService];
    const shot = [...site.store.records("Shot")].find((r) => !r.retired && r.fields.project)!;
    const project = shot.fields.project as { type: string; id: number };
    const read = {
      type: "Shot",
      return_fields: ["code"],
      filters: { logical_operator: "and", conditions: [{ path: "project", relation: "is", values: [project] }] },
    };
    const summary = { type: "Shot", summaries: [{ field: "id", type: "record_count" }], filters: read.filters };
    const before = await call(b, "read", read);
    const count = (await call(b, "summarize", summary)).summaries.id;
    expect(await call(b, "read", read)).toEqual(before);

    await call(a, "update", { type: "Shot", id: shot.id, fields: [{ field_name: "code", value: "API3_REDIS_WRITE" }] });
    const after = await call(b, "read", read);
    expect(after.entities.find((e: Json) => e.id === shot.id).code).toBe("API3_REDIS_WRITE");

    const created = await call(a, "create", {
      type: "Shot",
      fields: [
        { field_name: "code", value: "API3_REDIS_NEW" },
        { field_name: "project", value: project },
      ],
    });
    expect((await call(b, "summarize", summary)).summaries.id).toBe(count + 1);
    expect((await call(b, "read", read)).entities.map((e: Json) => e.id)).toContain(created.id);
  });
});
