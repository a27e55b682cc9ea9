/**
 * The engine against real recorded traffic (test/fixtures/shotgrid-recorded): loaded with the
 * active Asset records the recorded answers show (and their project), it must give each recorded
 * search's recorded answer, in order, wherever it answers at all (it declines, for instance,
 * retired records and ids sent as text, which the service's validation refuses anyway).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { LocalQueryEngine, type LocalQuery } from "../src/local-query/index.ts";
import type { Entity, EntityLink, EntitySchema, FieldValue, FilterGroup, SortSpec } from "../src/shotgrid/types.ts";

const ROOT = new URL("./fixtures/shotgrid-recorded", import.meta.url).pathname;

interface Interaction {
  request: { method: string; uri: string; body: { string: string } };
  response: { status: { code: number }; body: { string: string } };
}
type Rec = { type: string; id: number; attributes?: Record<string, FieldValue>; relationships?: Record<string, { data: EntityLink | EntityLink[] | null }> };

function cassettes(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? cassettes(join(dir, e.name)) : e.name.endsWith(".yml") ? [join(dir, e.name)] : [],
  );
}

function interactions(file: string): Interaction[] {
  return (parse(readFileSync(file, "utf8")) as { http_interactions: Interaction[] }).http_interactions;
}

/** A REST record in the flat form the cache holds (links under their field, `id` outside). */
function flat(r: Rec): Entity {
  const fields: Record<string, FieldValue> = { ...(r.attributes ?? {}) };
  for (const [k, v] of Object.entries(r.relationships ?? {})) fields[k] = v.data;
  return { type: r.type, id: r.id, fields };
}

/** The Asset schema as the site answered it. */
function assetSchema(): EntitySchema {
  const file = join(ROOT, "ShotgridApiRuby_Entities_Schema/1_1/fields_read/reads_the_schema.yml");
  const answer = interactions(file).find((i) => i.request.uri.includes("/schema/Asset/fields"))!;
  const raw = JSON.parse(answer.response.body.string).data as Record<
    string,
    { data_type: { value: string }; properties?: { valid_types?: { value: string[] } } }
  >;
  const schema: EntitySchema = {};
  for (const [name, f] of Object.entries(raw)) {
    schema[name] = { name, displayName: name, dataType: f.data_type.value, editable: true, validTypes: f.properties?.valid_types?.value };
  }
  return schema;
}

interface RecordedSearch {
  file: string;
  body: Record<string, unknown>;
  ids: number[];
  entities: Entity[];
}

function recordedSearches(): RecordedSearch[] {
  const out: RecordedSearch[] = [];
  for (const file of cassettes(join(ROOT, "ShotgridApiRuby_Entities/1_1")).sort()) {
    for (const it of interactions(file)) {
      if (it.request.method !== "post" || !it.request.uri.endsWith("/entity/Asset/_search") || it.response.status.code !== 200) continue;
      const data = JSON.parse(it.response.body.string).data as Rec[];
      out.push({ file, body: JSON.parse(it.request.body.string), ids: data.map((r) => r.id), entities: data.map(flat) });
    }
  }
  return out;
}

function engineOf(searches: RecordedSearch[]): LocalQueryEngine {
  const engine = new LocalQueryEngine({ types: ["Asset", "Project"], defaultFields: ["code"] });
  const assets = new Map<number, Entity>();
  const projects = new Map<number, Entity>();
  for (const s of searches) {
    const options = s.body.options as { return_only?: string } | undefined;
    // Only full records ("*") of active assets: the mirror holds whole active records.
    if (options?.return_only === "retired" || s.body.fields !== "*") continue;
    for (const e of s.entities) {
      assets.set(e.id, e);
      const p = e.fields.project as EntityLink | null;
      // Its assets are answered without include_archived_projects: the project is not archived.
      if (p) projects.set(p.id, { type: "Project", id: p.id, fields: { name: p.name ?? null, archived: false } });
    }
  }
  const assetPass = engine.mirror.beginLoad("Asset", assetSchema());
  for (const e of assets.values()) engine.mirror.put(e, 0);
  engine.mirror.finishLoad("Asset", assetPass);
  const projectPass = engine.mirror.beginLoad("Project", {
    name: { name: "name", displayName: "Project Name", dataType: "text", editable: true },
    archived: { name: "archived", displayName: "Archived", dataType: "checkbox", editable: false },
  });
  for (const p of projects.values()) engine.mirror.put(p, 0);
  engine.mirror.finishLoad("Project", projectPass);
  return engine;
}

function queryOf(body: Record<string, unknown>): LocalQuery {
  const sort: SortSpec[] =
    typeof body.sort === "string"
      ? body.sort.split(",").map((f) => (f.startsWith("-") ? { field: f.slice(1), direction: "desc" } : { field: f, direction: "asc" }))
      : [];
  const page = body.page as { size: number; number: number } | undefined;
  const options = (body.options ?? {}) as { return_only?: string; include_archived_projects?: boolean };
  const fields = body.fields === "*" ? [] : String(body.fields).split(",");
  return {
    entityType: "Asset",
    filters: body.filters as FilterGroup,
    fields: fields.filter((f) => f !== "id"),
    order: sort,
    limit: page ? page.size : 0,
    page: page ? page.number : 1,
    includeArchivedProjects: options.include_archived_projects === true,
    retired: options.return_only === "retired",
  };
}

describe("local query engine against the recorded cassettes", () => {
  const searches = recordedSearches();
  const engine = engineOf(searches);

  it("gives every recorded answer it answers at all, entity for entity and in order", () => {
    let answered = 0;
    for (const s of searches) {
      const q = queryOf(s.body);
      const answer = engine.answer(q);
      if (!answer.ok) continue;
      answered++;
      expect(
        answer.entities.map((e) => e.id),
        `${s.file}: ${JSON.stringify(s.body)}`,
      ).toEqual(s.ids);
      for (const [i, e] of answer.entities.entries()) {
        for (const f of q.fields) expect(e.fields[f], `${s.file}: ${f}`).toEqual(s.entities[i]!.fields[f]);
      }
    }
    // Most recorded searches are plain project scopes, sorts and pages: the engine must take them.
    expect(answered).toBeGreaterThanOrEqual(8);
  });

  it("declines the recorded searches it cannot answer exactly, saying why", () => {
    const reasons = searches.map((s) => engine.answer(queryOf(s.body))).flatMap((a) => (a.ok ? [] : [a.code]));
    expect(new Set(reasons)).toEqual(new Set(["retired_records", "operator"]));
  });
});
