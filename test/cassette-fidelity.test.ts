/**
 * Fidelity: replay every recorded ShotGrid interaction (test/fixtures/shotgrid-recorded)
 * against the simulator, seeded with the records each cassette's answers show, and compare
 * status, envelope and shape (keys, JSON types, date spellings, placement of
 * data/attributes/relationships/links, error codes) with the recorded answer.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { startSimulator, type Api3Schema, type SimulatorHandle } from "../src/simulator/index.ts";

const ROOT = new URL("./fixtures/shotgrid-recorded", import.meta.url).pathname;

/**
 * Known, explained differences: "<cassette path> #<interaction index>: <json path>" → reason.
 * The test fails on any mismatch not listed here. (Empty: every recorded interaction matches.)
 */
const DOCUMENTED: Record<string, string> = {};

interface Interaction {
  request: { method: string; uri: string; body: { string: string }; headers: Record<string, string[] | string> };
  response: { status: { code: number }; body: { string: string } };
}

function cassettes(): string[] {
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith(".yml") ? [join(d, e.name)] : []));
  return walk(ROOT).sort();
}

function load(file: string): Interaction[] {
  return (parse(readFileSync(file, "utf8")) as { http_interactions: Interaction[] }).http_interactions;
}

function json(text: string): unknown {
  return text ? JSON.parse(text) : undefined;
}

type Link = { type: string; id: number; name?: string | null };
type Rec = { type: string; id: number; attributes?: Record<string, unknown>; relationships?: Record<string, { data: Link | Link[] | null }> };

/** The Asset schema as the site answered it; REST field form carries the api3 keys we need. */
function recordedSchema(): Api3Schema {
  const file = join(ROOT, "ShotgridApiRuby_Entities_Schema/1_1/fields_read/reads_the_schema.yml");
  const answer = load(file).find((i) => i.request.uri.includes("/schema/Asset/fields"))!;
  const fields = (json(answer.response.body.string) as { data: Api3Schema["x"] }).data;
  const text = (name: string) => ({ data_type: { value: "text", editable: false }, name: { value: name, editable: true } });
  const schema: Api3Schema = { Asset: fields };
  // Link targets seen in the answers get small schemas of their own.
  for (const t of ["Shot", "Sequence", "Task", "Step", "HumanUser", "Project", "ApiUser", "EventLogEntry"]) schema[t] = {};
  schema["Shot"]!["code"] = text("Shot Code");
  schema["Sequence"]!["code"] = text("Sequence Name");
  schema["Task"]!["content"] = text("Task Name");
  schema["Step"]!["code"] = text("Step");
  schema["HumanUser"]!["name"] = text("Name");
  schema["Project"]!["name"] = text("Project Name");
  schema["Project"]!["archived"] = { data_type: { value: "checkbox", editable: false } };
  schema["ApiUser"]!["firstname"] = text("Script Name");
  schema["ApiUser"]!["lastname"] = text("Version");
  for (const f of ["event_type", "attribute_name", "description"]) schema["EventLogEntry"]![f] = text(f);
  schema["EventLogEntry"]!["meta"] = { data_type: { value: "serializable", editable: false } };
  schema["EventLogEntry"]!["created_at"] = { data_type: { value: "date_time", editable: false } };
  for (const f of ["entity", "project", "user"])
    schema["EventLogEntry"]![f] = { data_type: { value: "entity", editable: false }, properties: { valid_types: { value: [], editable: false } } };
  return schema;
}

/** Put every record and link target the cassette's answers show into the site (except records the cassette creates). */
function seed(sim: SimulatorHandle, interactions: Interaction[]): void {
  const store = sim.store;
  const created = new Set<number>();
  const retired = new Map<number, boolean>();
  const records = new Map<string, Rec>();
  const targets = new Map<string, Link>();
  const projects = new Map<number, number>();
  for (const it of interactions) {
    const body = json(it.response.body.string) as { data?: unknown } | undefined;
    if (it.response.status.code === 201) created.add((body!.data as Rec).id);
    if (!body || typeof body.data !== "object" || body.data === null) continue;
    const list = (Array.isArray(body.data) ? body.data : [body.data]) as Rec[];
    const isRetiredRead = it.request.uri.includes("return_only%5D=retired") || it.request.body.string.includes('"return_only":"retired"');
    // Answers with few fields do not show the project a search filtered on: take it from the filter.
    const projectFilter = /\["project\.Project\.id","is",(\d+)\]/.exec(it.request.body.string);
    for (const r of list) {
      if (!r || typeof r !== "object" || !("attributes" in r) || typeof r.id !== "number") continue;
      const key = `${r.type}:${r.id}`;
      const prev = records.get(key);
      // Keep the widest view of a record (fields=* answers over single-field ones).
      if (
        !prev ||
        Object.keys(r.attributes ?? {}).length + Object.keys(r.relationships ?? {}).length >
          Object.keys(prev.attributes ?? {}).length + Object.keys(prev.relationships ?? {}).length
      )
        records.set(key, r);
      if (isRetiredRead) retired.set(r.id, true);
      if (projectFilter) projects.set(r.id, Number(projectFilter[1]));
      for (const rel of Object.values(r.relationships ?? {})) {
        for (const l of Array.isArray(rel.data) ? rel.data : rel.data ? [rel.data] : []) targets.set(`${l.type}:${l.id}`, l);
      }
    }
  }
  for (const id of projects.values()) if (!targets.has(`Project:${id}`)) targets.set(`Project:${id}`, { type: "Project", id, name: null });
  const linkTargets = [...targets.values()].sort((a, b) => Number(a.type === "Asset") - Number(b.type === "Asset"));
  for (const l of linkTargets) {
    if (l.type === "Asset") continue;
    if (store.get(l.type, l.id)) continue;
    const name = l.name ?? null;
    const fields: Record<string, unknown> =
      l.type === "Project" || l.type === "HumanUser"
        ? { name }
        : l.type === "Task"
          ? { content: name }
          : l.type === "ApiUser"
            ? { firstname: (name ?? "").replace(/ 1\.0$/, ""), lastname: "1.0" }
            : { code: name };
    if (!sim.schema.hasType(l.type)) continue;
    store.insert(l.type, { id: l.id, ...fields });
  }
  for (const r of records.values()) {
    if (r.type !== "Asset" || created.has(r.id) || store.get(r.type, r.id)) continue;
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r.attributes ?? {})) if (!k.includes(".")) fields[k] = v;
    for (const [k, v] of Object.entries(r.relationships ?? {}))
      fields[k] = Array.isArray(v.data) ? v.data.map((l) => ({ type: l.type, id: l.id })) : v.data ? { type: v.data.type, id: v.data.id } : null;
    const project = projects.get(r.id);
    if (fields["project"] === undefined && project !== undefined) fields["project"] = { type: "Project", id: project };
    store.insert("Asset", { id: r.id, ...fields }, { retired: retired.get(r.id) ?? false });
  }
  // Assets only seen as link targets (image_source_entity, parents…).
  for (const l of linkTargets) {
    if (l.type === "Asset" && !created.has(l.id) && !store.get("Asset", l.id)) store.insert("Asset", { id: l.id, code: l.name ?? null });
  }
}

/** A type tag per JSON value: dates are told apart by spelling (read vs create answers). */
function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "string") {
    if (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(v)) return "datetime(read)";
    if (/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/.test(v)) return "datetime(create)";
  }
  return typeof v;
}

/** Every difference of shape between a recorded and a simulated answer, as "path: what". */
function compareShape(rec: unknown, sim: unknown, path: string, out: string[]): void {
  const kr = kind(rec);
  const ks = kind(sim);
  if (kr !== ks) {
    out.push(`${path}: ${kr} recorded, ${ks} simulated`);
    return;
  }
  if (kr === "array") {
    const a = rec as unknown[];
    const b = sim as unknown[];
    if (a.length !== b.length) out.push(`${path}: ${a.length} items recorded, ${b.length} simulated`);
    for (let i = 0; i < Math.min(a.length, b.length); i++) compareShape(a[i], b[i], `${path}[${i}]`, out);
    return;
  }
  if (kr === "object") {
    const a = rec as Record<string, unknown>;
    const b = sim as Record<string, unknown>;
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    const missing = ka.filter((k) => !(k in b));
    const extra = kb.filter((k) => !(k in a));
    if (missing.length) out.push(`${path}: missing keys ${missing.join(",")}`);
    if (extra.length) out.push(`${path}: extra keys ${extra.join(",")}`);
    for (const k of ka) if (k in b) compareShape(a[k], b[k], `${path}.${k}`, out);
    // Error codes and statuses must be the same values, not only the same types.
    if (path.match(/\.errors\[\d+\]$/)) {
      for (const k of ["status", "code"]) if (a[k] !== b[k]) out.push(`${path}.${k}: ${String(a[k])} recorded, ${String(b[k])} simulated`);
    }
  }
}

const SCRIPT_NAME = "<SCRIPT_NAME>";
const SCRIPT_KEY = "<SCRIPT_KEY>";
const results: Array<{ file: string; total: number; matched: number; mismatches: string[] }> = [];

describe("cassette fidelity", () => {
  const schema = recordedSchema();
  for (const file of cassettes()) {
    const name = relative(ROOT, file);
    it(`replays ${name}`, async () => {
      const interactions = load(file);
      const siteSchema = structuredClone(schema);
      // Link targets of types outside the recorded schema get a type with a `code` field.
      for (const m of interactions
        .map((i) => i.response.body.string)
        .join("\n")
        .matchAll(/"type":"([A-Z]\w+)"/g)) {
        siteSchema[m[1]!] ??= { code: { data_type: { value: "text", editable: false } } };
      }
      const sim = await startSimulator({
        dataset: "empty",
        schema: siteSchema,
        scriptName: SCRIPT_NAME,
        scriptKey: SCRIPT_KEY,
        users: [{ login: "<USERNAME>", password: "<PASSWORD>" }],
      });
      const mismatches: string[] = [];
      let matched = 0;
      try {
        seed(sim, interactions);
        const idMap = new Map<number, number>();
        let token = "";
        for (const [index, it] of interactions.entries()) {
          let uri = it.request.uri
            .replace(/^https?:\/\/[^/]+/, "")
            .replace(/<SHOTGUN_SCRIPT_NAME>/g, SCRIPT_NAME)
            .replace(/<SHOTGUN_SCRIPT_KEY>/g, SCRIPT_KEY);
          uri = uri.replace(/(\/Asset\/|filter%5Bid%5D=|filter\[id\]=)(\d+)/g, (_m, p: string, id: string) => p + String(idMap.get(Number(id)) ?? id));
          const headers: Record<string, string> = {};
          const ct = it.request.headers["Content-Type"];
          if (ct) headers["content-type"] = Array.isArray(ct) ? ct[0]! : ct;
          if (token && !uri.includes("/auth/")) headers["authorization"] = `Bearer ${token}`;
          const body = it.request.body.string || undefined;
          const res = await fetch(sim.url + uri, { method: it.request.method.toUpperCase(), headers, body });
          const text = await res.text();
          const simBody = json(text) as Record<string, unknown> | undefined;
          if (uri.includes("/auth/access_token") && res.status === 200) token = (simBody as { access_token: string }).access_token;
          const recBody = json(it.response.body.string) as Record<string, unknown> | undefined;
          if (it.response.status.code === 201 && res.status === 201) {
            idMap.set((recBody!["data"] as Rec).id, (simBody!["data"] as Rec).id);
          }
          const diffs: string[] = [];
          if (res.status !== it.response.status.code) diffs.push(`status: ${it.response.status.code} recorded, ${res.status} simulated`);
          compareShape(recBody, simBody, "", diffs);
          const undocumented = diffs.filter((d) => !DOCUMENTED[`${name} #${index}: ${d.split(":")[0]}`] && !DOCUMENTED[`* ${d.split(":")[0]}`]);
          if (undocumented.length === 0) matched++;
          for (const d of undocumented) mismatches.push(`#${index} ${it.request.method.toUpperCase()} ${uri}: ${d}`);
        }
      } finally {
        await sim.close();
      }
      results.push({ file: name, total: interactions.length, matched, mismatches });
      expect(mismatches).toEqual([]);
    });
  }

  afterAll(() => {
    const total = results.reduce((n, r) => n + r.total, 0);
    const matched = results.reduce((n, r) => n + r.matched, 0);
    console.log(`cassette fidelity: ${matched}/${total} recorded interactions match in ${results.length} cassettes`);
  });
});
