/**
 * Real records for the answer writers' tests: every record answered in the recorded ShotGrid
 * traffic (test/fixtures/shotgrid-recorded), as the client decodes it (src/shotgrid/wire-codec.ts)
 * for the cache, and the simulated demo site's records of its main types.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { Entity } from "../../src/shotgrid/types.ts";
import type { SimulatorHandle } from "../../src/simulator/index.ts";
import { decodeRecordList, decodeSingleRecord } from "../../src/shotgrid/wire-codec.ts";

/** The demo site's types whose records the writers' tests answer. */
const DEMO_TYPES = ["Project", "Sequence", "Shot", "Asset", "Step", "Task", "Version", "HumanUser"];

/** `sim`'s records of each demo type, as the cache holds them (plain JSON values), by type. */
export function demoSiteEntities(sim: SimulatorHandle): Entity[][] {
  return DEMO_TYPES.map((type) => [...sim.store.records(type)].map((r): Entity => ({ type, id: r.id, fields: JSON.parse(JSON.stringify(r.fields)) })));
}

export function recordedEntities(): Entity[] {
  const root = new URL("../fixtures/shotgrid-recorded", import.meta.url).pathname;
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? files(join(dir, d.name)) : d.name.endsWith(".yml") ? [join(dir, d.name)] : []));
  const out: Entity[] = [];
  for (const file of files(root)) {
    for (const i of (parse(readFileSync(file, "utf8")) as { http_interactions: Array<{ response: { body: { string: string } } }> }).http_interactions) {
      try {
        const body = JSON.parse(i.response.body.string) as { data?: unknown };
        out.push(...(Array.isArray(body.data) ? decodeRecordList(body) : [decodeSingleRecord(body)]));
      } catch {
        // Not records: an error, a schema, a summary, an empty body.
      }
    }
  }
  return out;
}
