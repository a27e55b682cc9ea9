/**
 * Every record answered in the recorded ShotGrid traffic (test/fixtures/shotgrid-recorded), in
 * the flat form the cache holds (links under their field), for the answer writers' tests.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { Entity, FieldValue } from "../../src/shotgrid/types.ts";

type Rec = { type?: unknown; id?: unknown; attributes?: Record<string, FieldValue>; relationships?: Record<string, { data: FieldValue }> };

export function recordedEntities(): Entity[] {
  const root = new URL("../fixtures/shotgrid-recorded", import.meta.url).pathname;
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? files(join(dir, d.name)) : d.name.endsWith(".yml") ? [join(dir, d.name)] : []));
  const out: Entity[] = [];
  for (const file of files(root)) {
    for (const i of (parse(readFileSync(file, "utf8")) as { http_interactions: Array<{ response: { body: { string: string } } }> }).http_interactions) {
      let body: unknown;
      try {
        body = JSON.parse(i.response.body.string);
      } catch {
        continue;
      }
      const data = (body as { data?: unknown }).data;
      for (const r of Array.isArray(data) ? data : data ? [data] : []) {
        const rec = r as Rec;
        if (typeof rec.type !== "string" || typeof rec.id !== "number") continue;
        const fields: Record<string, FieldValue> = { ...(rec.attributes ?? {}) };
        for (const [k, v] of Object.entries(rec.relationships ?? {})) fields[k] = v.data;
        out.push({ type: rec.type, id: rec.id, fields });
      }
    }
  }
  return out;
}
