/**
 * Every answer recorded from real ShotGrid sites goes through the client's decoder (2xx) or its
 * error mapping (4xx/5xx): nothing throws, types and ids survive, ShotGrid's error codes are kept.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { mapErrorResponse } from "../src/shotgrid/error-mapping.ts";
import { AuthError, NotFoundError, RequestRejectedError } from "../src/shotgrid/errors.ts";
import { decodeRecordList, decodeReviveResult, decodeSchemaFields, decodeSingleRecord } from "../src/shotgrid/wire-codec.ts";
import type { Entity } from "../src/shotgrid/types.ts";

const ROOT = new URL("./fixtures/shotgrid-recorded/", import.meta.url).pathname;

interface Interaction {
  file: string;
  method: string;
  path: string;
  query: URLSearchParams;
  status: number;
  body: string;
}

function cassettes(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? cassettes(join(dir, e.name)) : e.name.endsWith(".yml") ? [join(dir, e.name)] : [],
  );
}

const interactions: Interaction[] = cassettes(ROOT).flatMap((file) => {
  const doc = parse(readFileSync(file, "utf8")) as {
    http_interactions: Array<{ request: { method: string; uri: string }; response: { status: { code: number }; body: { string: string } } }>;
  };
  return doc.http_interactions.map((i) => {
    const url = new URL(i.request.uri);
    return {
      file: file.slice(ROOT.length),
      method: i.request.method.toUpperCase(),
      path: url.pathname.replace(/^\/api\/v1(\.1)?/, ""),
      query: url.searchParams,
      status: i.response.status.code,
      body: i.response.body.string,
    };
  });
});

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

/** The recorded record(s) as raw JSON, for comparing with what the decoder made of them. */
function rawRecords(
  body: string,
): Array<{ type: string; id: number; attributes?: Record<string, unknown>; relationships?: Record<string, { data: unknown }> }> {
  const data = (JSON.parse(body) as { data: unknown }).data;
  return (Array.isArray(data) ? data : [data]) as ReturnType<typeof rawRecords>;
}

function checkAgainstRaw(decoded: Entity[], body: string): void {
  const raw = rawRecords(body);
  expect(decoded.map((e) => [e.type, e.id])).toEqual(raw.map((r) => [r.type, r.id]));
  decoded.forEach((e, i) => {
    const r = raw[i]!;
    expect(e.fields).not.toHaveProperty("id");
    expect(e.fields).not.toHaveProperty("type");
    for (const [name, rel] of Object.entries(r.relationships ?? {})) {
      const want = rel.data;
      const got = e.fields[name];
      if (want === null) expect(got).toBeNull();
      else if (Array.isArray(want)) {
        expect(Array.isArray(got)).toBe(true);
        expect((got as unknown[]).length).toBe(want.length);
      } else {
        const w = want as { type: string; id: number; name?: string };
        expect(got).toEqual({ type: w.type, id: w.id, name: w.name ?? null });
      }
    }
    for (const name of ["created_at", "updated_at"]) {
      if (r.attributes && typeof r.attributes[name] === "string") expect(e.fields[name]).toMatch(ISO);
    }
  });
}

describe("recorded ShotGrid answers", () => {
  it("finds the cassettes", () => {
    expect(interactions.length).toBeGreaterThan(80);
  });

  const cases = interactions.filter((i) => !i.path.startsWith("/auth/"));
  const seen = { records: 0, errors: 0, schema: 0, revive: 0, empty: 0, notOurs: 0 };

  it.each(cases.map((c, n) => [`${n} ${c.method} ${c.path} ${c.status} (${c.file})`, c] as const))("%s", (_name, c) => {
    const segs = c.path.split("/").filter(Boolean);
    if (c.status >= 400) {
      seen.errors++;
      const err = mapErrorResponse(c.status, c.body, { request: `${c.method} ${c.path}` });
      const envelope = JSON.parse(c.body) as { errors: Array<{ code: number; title: string; detail: string | null }> };
      expect(err.shotgridCode).toBe(envelope.errors[0]!.code);
      expect(err.details[0]!.title).toBe(envelope.errors[0]!.title);
      expect(err.details[0]!.detail).toBe(envelope.errors[0]!.detail);
      expect(err.status).toBe(c.status);
      if (c.status === 404) expect(err).toBeInstanceOf(NotFoundError);
      else if (envelope.errors[0]!.code === 102) expect(err).toBeInstanceOf(AuthError);
      else expect(err).toBeInstanceOf(RequestRejectedError);
      return;
    }
    if (c.status === 204) {
      seen.empty++;
      expect(c.body).toBe("");
      return;
    }
    if (segs[0] === "entity" && c.query.get("revive") === "true") {
      seen.revive++;
      expect(decodeReviveResult(JSON.parse(c.body))).toBe(true);
      return;
    }
    if (segs[0] === "entity" && segs[2] !== "_summarize") {
      seen.records++;
      const body = JSON.parse(c.body) as { data: unknown };
      const decoded = Array.isArray(body.data) ? decodeRecordList(body) : [decodeSingleRecord(body)];
      checkAgainstRaw(decoded, c.body);
      return;
    }
    if (segs[0] === "schema" && segs[2] === "fields") {
      seen.schema++;
      const schema = decodeSchemaFields(JSON.parse(c.body));
      const raw = (JSON.parse(c.body) as { data: Record<string, { data_type: { value: string } }> }).data;
      expect(Object.keys(schema)).toEqual(Object.keys(raw));
      for (const [name, f] of Object.entries(schema)) expect(f.dataType).toBe(raw[name]!.data_type.value);
      expect(schema.shots?.validTypes).toEqual(["Shot"]);
      expect(schema.sg_status_list?.validValues?.length).toBeGreaterThan(0);
      return;
    }
    // Server info, preferences, single-type schema, summaries: no Backend method reads them.
    seen.notOurs++;
  });

  it("covered every kind of answer the client reads", () => {
    expect(seen.records).toBeGreaterThan(40);
    expect(seen.errors).toBeGreaterThan(5);
    expect(seen.schema).toBe(1);
    expect(seen.revive).toBe(2);
    expect(seen.empty).toBeGreaterThan(5);
  });

  it("normalises the create answer's datetime form", () => {
    const create = interactions.find((i) => i.method === "POST" && i.status === 201)!;
    expect(create.body).toMatch(/"created_at":"\d{4}-\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2} UTC"/);
    const e = decodeSingleRecord(JSON.parse(create.body));
    expect(e.fields.created_at).toMatch(ISO);
    expect(e.fields.project).toMatchObject({ type: "Project", id: 122, name: "TEST" });
  });
});
