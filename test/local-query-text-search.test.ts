/**
 * The substring search behind `contains`, `starts_with` and `ends_with` on text fields
 * (src/local-query/text-search.ts) gives candidates the filter then checks: it must never miss a
 * record that matches, before or after records change, and never name one twice. Checked against
 * a plain scan over seeded random values, and through the engine while records change.
 */
import { describe, expect, it } from "vitest";
import { LocalQueryEngine, type LocalQuery } from "../src/local-query/index.ts";
import { TextSearch, type TextSearchOp } from "../src/local-query/text-search.ts";
import type { Entity, EntitySchema } from "../src/shotgrid/types.ts";

function seeded(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

const ALPHABET = ["a", "B", "c", "0", "1", "_", " ", "É", "é", "ß", "K"];
const OPS: TextSearchOp[] = ["contains", "starts_with", "ends_with"];

function randomText(rnd: () => number): string | null {
  if (rnd() < 0.1) return null;
  let s = "";
  const n = Math.floor(rnd() * 8);
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(rnd() * ALPHABET.length)];
  return s;
}

function matches(v: unknown, needle: string, op: TextSearchOp): boolean {
  if (typeof v !== "string") return false;
  const lower = v.toLowerCase();
  return op === "contains" ? lower.includes(needle) : op === "starts_with" ? lower.startsWith(needle) : lower.endsWith(needle);
}

function shot(id: number, code: string | null): Entity {
  return { type: "Shot", id, fields: { code } };
}

describe("text search candidates", () => {
  it("hold every matching record, once, as made and after records change, are added and go", () => {
    const rnd = seeded(13);
    const records = new Map<number, Entity>();
    for (let id = 1; id <= 400; id++) records.set(id, shot(id, randomText(rnd)));
    const search = new TextSearch("code", records.values());
    let checked = 0;
    for (let round = 0; round < 6; round++) {
      for (let k = 0; k < 60; k++) {
        const needle = (randomText(rnd) ?? "a").toLowerCase().slice(0, 1 + Math.floor(rnd() * 3));
        if (needle === "") continue;
        for (const op of OPS) {
          const got = search.candidates(needle, op)!;
          expect(new Set(got).size, `${op} ${JSON.stringify(needle)}: no id twice`).toBe(got.length);
          const held = new Set(got);
          for (const r of records.values()) {
            if (matches(r.fields["code"], needle, op))
              expect(held.has(r.id), `${op} ${JSON.stringify(needle)} misses ${JSON.stringify(r.fields["code"])}`).toBe(true);
          }
          checked++;
        }
      }
      // Some records change, a few are new, a few go (a gone id among the candidates is skipped by the engine).
      for (let k = 0; k < 40; k++) {
        const id = 1 + Math.floor(rnd() * 450);
        const old = records.get(id);
        if (old && rnd() < 0.2) {
          records.delete(id);
          continue;
        }
        const next = shot(id, randomText(rnd));
        records.set(id, next);
        expect(search.replaced(old, next)).toBe(true);
      }
    }
    expect(checked).toBeGreaterThan(900);
  });

  it("a needle it cannot search (empty, or holding the separator) is left to a scan", () => {
    const search = new TextSearch("code", [shot(1, "a\u0000b")]);
    expect(search.candidates("", "contains")).toBeUndefined();
    expect(search.candidates("a\u0000", "contains")).toBeUndefined();
    expect(search.candidates("b", "ends_with")).toEqual([1]);
  });

  it("says when it has seen too many changes to be kept", () => {
    const search = new TextSearch("code", [shot(1, "x")]);
    let kept = true;
    let changes = 0;
    while (kept && changes < 10_000) kept = search.replaced(undefined, shot(1000 + changes++, "y"));
    expect(kept).toBe(false);
    expect(changes).toBe(257);
    // A change that leaves the field alone is not one.
    expect(new TextSearch("code", [shot(1, "x")]).replaced(shot(1, "x"), shot(1, "x"))).toBe(true);
  });
});

describe("contains through the engine", () => {
  const SCHEMA: EntitySchema = { code: { name: "code", displayName: "Code", dataType: "text", editable: true } };

  it("answers as a scan would while records change, past the point where the search is made again", () => {
    const rnd = seeded(7);
    const e = new LocalQueryEngine({ types: ["Shot"], timeZone: "UTC", defaultFields: ["code"] });
    const pass = e.mirror.beginLoad("Shot", SCHEMA);
    const codes = new Map<number, string>();
    const code = () => `sh${Math.floor(rnd() * 1000)}x${Math.floor(rnd() * 10)}`;
    for (let id = 1; id <= 2000; id++) {
      codes.set(id, code());
      e.mirror.put({ type: "Shot", id, fields: { code: codes.get(id)! } }, 0);
    }
    e.mirror.finishLoad("Shot", pass);
    const query = (op: string, text: string): LocalQuery => ({
      entityType: "Shot",
      filters: { logical_operator: "and", conditions: [["code", op, text]] },
      fields: ["code"],
      order: [{ field: "code", direction: "asc" }],
      limit: 0,
      page: 1,
      includeArchivedProjects: true,
      retired: false,
    });
    let searched = 0;
    for (let round = 0; round < 12; round++) {
      for (const [op, text] of [
        ["contains", `${Math.floor(rnd() * 100)}`],
        ["starts_with", `sh${Math.floor(rnd() * 10)}`],
        ["ends_with", `x${Math.floor(rnd() * 10)}`],
      ] as const) {
        const a = e.answer(query(op, text));
        if (!a.ok) throw new Error(`declined: ${a.reason}`);
        const expected = [...codes].filter(([, c]) => matches(c, text, op)).sort(([ia, a], [ib, b]) => (a < b ? -1 : a > b ? 1 : ia - ib));
        expect(a.entities.map((x) => x.id)).toEqual(expected.map(([id]) => id));
        expect(e.mirror.typeMirror("Shot")!.searches.has("code")).toBe(true);
        searched++;
      }
      // 100 changes a round: the search is dropped and made again along the way.
      for (let k = 0; k < 100; k++) {
        const id = 1 + Math.floor(rnd() * 2100);
        codes.set(id, code());
        e.mirror.put({ type: "Shot", id, fields: { code: codes.get(id)! } }, e.mirror.generation());
      }
    }
    expect(searched).toBe(36);
  });
});
