/**
 * collation.ts: which pairs of texts every collation the site may sort with orders as the
 * engine does, and the binary-search lookup of records past a page that one of them could bring
 * before its last record, checked against a plain scan over seeded random lists.
 */
import { describe, expect, it } from "vitest";
import { collationDependent, mayComeBefore } from "../src/local-query/collation.ts";

function seeded(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

describe("collationDependent", () => {
  it("is undefined where texts first differ at a digit or ASCII letter, or one just extends the other with one", () => {
    expect(collationDependent("nlt_050_0010", "nlt_050_0020")).toBeUndefined();
    expect(collationDependent("nlt_050", "nlt_060_0010")).toBeUndefined();
    expect(collationDependent("ab", "ab_2")).toBeUndefined();
    expect(collationDependent("same", "same")).toBeUndefined();
    expect(collationDependent("sh_010", "sh0100")).toBe(2);
    expect(collationDependent("nlt_100_0010", "nlt_1000_0010")).toBe(7);
    expect(collationDependent("émile", "eva")).toBe(0);
    expect(collationDependent("ab", "ab_")).toBe(2);
    expect(collationDependent("mr banning", "mrs banning")).toBe(2);
  });
});

describe("mayComeBefore", () => {
  // The ranges' edges are among them: ":" and "`" (just past "9" and before "a"), "@", "{" (just past "z").
  const ALPHABET = ["a", "b", "z", "0", "5", "9", "_", " ", "-", "é", "{", ":", "`", "@", "\uffff"];
  type Row = { id: number; key: string | null; taken: boolean };

  it("finds exactly the taken records past the last whose first difference is the collation's call", () => {
    const rnd = seeded(42);
    let found = 0;
    let checked = 0;
    for (let round = 0; round < 400; round++) {
      const n = 1 + Math.floor(rnd() * 60);
      const rows: Row[] = Array.from({ length: n }, (_, i) => {
        let key: string | null = "";
        const len = Math.floor(rnd() * 5);
        for (let j = 0; j < len; j++) key += ALPHABET[Math.floor(rnd() * ALPHABET.length)];
        if (rnd() < 0.05) key = null;
        return { id: i + 1, key, taken: rnd() < 0.6 };
      });
      // As the engine keeps them: ascending by key, empty keys last, ties by id.
      rows.sort((a, b) => (a.key === b.key ? a.id - b.id : a.key === null ? 1 : b.key === null ? -1 : a.key < b.key ? -1 : 1));
      const at = Math.floor(rnd() * n);
      const last = rows[at]!;
      if (last.key === null) continue;
      const expected = rows.slice(at + 1).some((r) => r.taken && r.key !== null && r.key !== last.key && collationDependent(last.key!, r.key) !== undefined);
      const got = mayComeBefore(
        rows,
        last.key,
        (r: Row) => r.key,
        (r: Row) => r.taken,
        () => false,
      );
      expect(got, `${JSON.stringify(rows.map((r) => r.key))} after ${JSON.stringify(last.key)}`).toBe(expected);
      if (expected) found++;
      checked++;
    }
    // Both answers occur often enough for the comparison to mean something.
    expect(found).toBeGreaterThan(50);
    expect(checked - found).toBeGreaterThan(50);
  });

  it("reads only the ranges that can hold such a record, not everything after the last", () => {
    // Sequences 010 to 2009: "nlt_1000_…" to "nlt_1009_…" sort before "nlt_100_…" here ("0" < "_"), after it in ICU.
    const keys = Array.from(
      { length: 20_000 },
      (_, i) => `nlt_${String(10 + Math.floor(i / 10)).padStart(3, "0")}_${String((i % 10) * 10).padStart(4, "0")}`,
    ).sort();
    const rows = keys.map((key, i) => ({ id: i + 1, key }));
    let read = 0;
    const taken = () => {
      read++;
      return true;
    };
    const keyOf = (r: { key: string }) => r.key;
    // A page ending at "nlt_014_0090": every later code first differs from it at a digit.
    expect(mayComeBefore(rows, "nlt_014_0090", keyOf, taken, () => false)).toBe(false);
    expect(read).toBe(0);
    // A page ending at "nlt_1009_0090": the "nlt_100_…" codes right after it differ at "_".
    expect(mayComeBefore(rows, "nlt_1009_0090", keyOf, taken, () => false)).toBe(true);
    expect(read).toBe(1);
    // Not taken by the filters: read, and not counted.
    read = 0;
    expect(
      mayComeBefore(
        rows,
        "nlt_1009_0090",
        keyOf,
        () => (read++, false),
        () => false,
      ),
    ).toBe(false);
    expect(read).toBe(10);
  });

  it("a tie but for letter case with the last one, anywhere past it", () => {
    const rows = [
      { id: 1, key: "ab", raw: "AB" },
      { id: 2, key: "ab", raw: "AB" },
      { id: 3, key: "ab", raw: "ab" },
      { id: 4, key: "ac", raw: "ac" },
    ];
    const keyOf = (r: { key: string }) => r.key;
    expect(
      mayComeBefore(
        rows,
        "ab",
        keyOf,
        () => true,
        (r: { raw: string }) => r.raw !== "AB",
      ),
    ).toBe(true);
    expect(
      mayComeBefore(
        rows,
        "ab",
        keyOf,
        (r: { id: number }) => r.id !== 3,
        (r: { raw: string }) => r.raw !== "AB",
      ),
    ).toBe(false);
  });
});
