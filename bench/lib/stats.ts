/**
 * Latency bookkeeping for the load generator: samples go into a growable Float64Array (no
 * per-sample objects, so recording does not disturb what it measures), sorted once at the end.
 */

/** A growable list of latency samples in milliseconds. */
export class LatencyRecorder {
  #data: Float64Array;
  #length = 0;

  constructor(initialCapacity = 1 << 16) {
    this.#data = new Float64Array(Math.max(16, initialCapacity));
  }

  get count(): number {
    return this.#length;
  }

  record(ms: number): void {
    if (this.#length === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.#length++] = ms;
  }

  /** The samples, sorted ascending (a copy). */
  sorted(): Float64Array {
    return this.#data.slice(0, this.#length).sort();
  }
}

/**
 * The `p`th percentile (0–100) of ascending `sorted` samples, nearest-rank method: the smallest
 * sample with at least p% of the samples at or below it. NaN when there are no samples.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be within 0..100, got ${p}`);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sorted[Math.min(n, rank) - 1]!;
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/** Percentiles and mean of a set of samples (ms), rounded to microseconds. */
export function summarize(samples: ArrayLike<number> | LatencyRecorder): LatencySummary {
  const sorted = samples instanceof LatencyRecorder ? samples.sorted() : Float64Array.from(samples as ArrayLike<number>).sort();
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i]!;
  const r = (x: number) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : Number.NaN);
  return {
    count: sorted.length,
    p50Ms: r(percentile(sorted, 50)),
    p90Ms: r(percentile(sorted, 90)),
    p99Ms: r(percentile(sorted, 99)),
    maxMs: r(sorted.length ? sorted[sorted.length - 1]! : Number.NaN),
    meanMs: r(sorted.length ? sum / sorted.length : Number.NaN),
  };
}

/** Wall-clock time in ms with sub-ms precision, comparable across processes on one machine. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}
