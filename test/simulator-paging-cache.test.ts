/**
 * Paging a search on the simulated site: later pages of the same search reuse the sorted list
 * the first page computed (no full filter-and-sort per page), and still answer exactly what a
 * fresh search would, also after a write between pages and for time-relative filters.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SimRecord } from "../src/simulator/index.ts";
import { openSite, type TestSite } from "./simulator-test-client.ts";

let site: TestSite;
beforeAll(async () => {
  site = await openSite({ shots: 300 });
});
afterAll(async () => {
  await site.close();
});

/** Counts the full scans of a type's records (each uncached search scans once). */
function countScans(type: string): { scans: () => number; restore: () => void } {
  const store = site.sim.store;
  const original = store.records.bind(store);
  let scans = 0;
  store.records = (t: string): IterableIterator<SimRecord> => {
    if (t === type) scans++;
    return original(t);
  };
  return { scans: () => scans, restore: () => ((store as { records: unknown }).records = original) };
}

async function pagedCodes(body: Record<string, unknown>, size: number): Promise<string[]> {
  const codes: string[] = [];
  for (let n = 1; ; n++) {
    const res = await site.search("Shot", { ...body, fields: ["code"], page: { size, number: n } });
    expect(res.status).toBe(200);
    const data = res.body.data as Array<{ id: number; attributes: { code: string } }>;
    codes.push(...data.map((r) => `${r.id}:${r.attributes.code}`));
    if (data.length < size) return codes;
  }
}

describe("simulator paging", () => {
  it("scans the records once for all the pages of one search", async () => {
    const count = countScans("Shot");
    try {
      const codes = await pagedCodes({ filters: [["code", "is_not", null]], sort: "-code" }, 25);
      expect(codes.length).toBeGreaterThan(250);
      // The first page computes the sorted list; the other pages slice it.
      expect(count.scans()).toBe(1);
    } finally {
      count.restore();
    }
  });

  it("answers every page exactly as a fresh unpaged search would", async () => {
    for (const body of [{}, { sort: "code" }, { sort: "-sg_sequence.Sequence.code,code" }, { filters: [["id", "greater_than", 100]], sort: "id" }]) {
      const all = await site.search("Shot", { ...body, fields: ["code"], page: { size: 500, number: 1 } });
      const fresh = (all.body.data as Array<{ id: number; attributes: { code: string } }>).map((r) => `${r.id}:${r.attributes.code}`);
      expect(await pagedCodes(body, 7)).toEqual(fresh);
    }
  });

  it("reflects a write made between two pages", async () => {
    const body = { sort: "code", fields: ["code"] };
    const first = await site.search("Shot", { ...body, page: { size: 10, number: 1 } });
    const firstIds = (first.body.data as Array<{ id: number }>).map((r) => r.id);
    // Move the first record of page 1 to the very end of the order.
    site.sim.store.update("Shot", firstIds[0]!, { code: "zzz-last" }, { user: site.sim.scriptUser });
    const second = await site.search("Shot", { ...body, page: { size: 10, number: 2 } });
    const fresh = await site.search("Shot", { ...body, page: { size: 500, number: 1 } });
    const expected = (fresh.body.data as Array<{ id: number }>).slice(10, 20).map((r) => r.id);
    expect((second.body.data as Array<{ id: number }>).map((r) => r.id)).toEqual(expected);
  });

  it("does not keep results of filters relative to the current time", async () => {
    const count = countScans("Shot");
    try {
      await pagedCodes({ filters: [["created_at", "in_last", [3650, "DAY"]]] }, 100);
      expect(count.scans()).toBeGreaterThan(1);
    } finally {
      count.restore();
    }
  });
});
