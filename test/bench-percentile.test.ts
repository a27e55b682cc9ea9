// The benchmark harness's own arithmetic, on known input: no timing is measured or asserted here.
import { describe, expect, it } from "vitest";
import { LatencyRecorder, percentile, summarize } from "../bench/lib/stats.ts";

describe("bench percentile (nearest rank)", () => {
  it("picks the nearest-rank sample of 1..100", () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 99)).toBe(99);
    expect(percentile(sorted, 100)).toBe(100);
    expect(percentile(sorted, 0)).toBe(1);
  });

  it("is NaN for no samples and rejects a p outside 0..100", () => {
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(/0\.\.100/);
  });

  it("summarizes unsorted samples recorded past the recorder's first capacity", () => {
    const rec = new LatencyRecorder(16);
    for (let i = 1000; i >= 1; i--) rec.record(i);
    const s = summarize(rec);
    expect(s).toMatchObject({ count: 1000, p50Ms: 500, p90Ms: 900, p99Ms: 990, maxMs: 1000, meanMs: 500.5 });
  });
});
