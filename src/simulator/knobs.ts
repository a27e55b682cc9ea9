/**
 * The realism settings of the simulated site, changeable while it runs: latency with jitter,
 * a rate of 5xx answers, an outage window, slow answers, a concurrency limit, late event commits
 * and malformed answers.
 */

/** How requests fail during an outage. */
export type OutageMode = "503" | "502" | "reset";

/**
 * A bad answer the site can be told to give instead of the real one:
 * `truncated-json` cuts the JSON body in half (status 200), `html-502` is a proxy's HTML error
 * page with status 502, `wrong-shape` is valid JSON without `data` (status 200), `empty-200` is
 * an empty body with status 200 and a JSON content type.
 */
export type MalformedKind = "truncated-json" | "html-502" | "wrong-shape" | "empty-200";

export interface OutageWindow {
  /** Epoch ms. */
  start: number;
  /** Epoch ms. */
  end: number;
  mode: OutageMode;
}

export interface KnobSettings {
  /** Added to every answer, ms. */
  latencyMs: number;
  /** Up to this many ms more, chosen at random per request. */
  jitterMs: number;
  /** Fraction (0–1) of requests answered with a 5xx (from `errorStatuses`). */
  errorRate: number;
  /** The statuses `errorRate` picks from. */
  errorStatuses: number[];
  /** Fraction (0–1) of requests that take `slowMs` longer. */
  slowRate: number;
  slowMs: number;
  /** Requests in flight beyond this get 503 at once; 0: no limit. */
  maxConcurrent: number;
  /** Events of a write become visible this many ms after it (ids are taken at write time). */
  eventCommitDelayMs: number;
  /** Fraction (0–1) of writes whose events are committed late; the rest commit at once. */
  eventCommitDelayRate: number;
}

export const DEFAULT_KNOBS: KnobSettings = {
  latencyMs: 0,
  jitterMs: 0,
  errorRate: 0,
  errorStatuses: [500, 502, 503, 504],
  slowRate: 0,
  slowMs: 0,
  maxConcurrent: 0,
  eventCommitDelayMs: 0,
  eventCommitDelayRate: 1,
};

export class Knobs implements KnobSettings {
  latencyMs = 0;
  jitterMs = 0;
  errorRate = 0;
  errorStatuses = [500, 502, 503, 504];
  slowRate = 0;
  slowMs = 0;
  maxConcurrent = 0;
  eventCommitDelayMs = 0;
  eventCommitDelayRate = 1;
  /** The current or next outage, if any. */
  outage: OutageWindow | null = null;
  private readonly malformed: MalformedKind[] = [];

  constructor(
    initial: Partial<KnobSettings> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.set(initial);
  }

  /** Change several settings at once, checking each. */
  set(settings: Partial<KnobSettings>): void {
    for (const [k, v] of Object.entries(settings)) {
      if (v === undefined) continue;
      if (!(k in DEFAULT_KNOBS)) throw new Error(`unknown simulator knob ${k}`);
      if (k === "errorStatuses") {
        if (!Array.isArray(v) || v.length === 0 || v.some((s) => !Number.isInteger(s) || s < 500 || s > 599)) {
          throw new Error("errorStatuses must be a non-empty list of 5xx statuses");
        }
      } else if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
        throw new Error(`simulator knob ${k} must be a number >= 0, got ${String(v)}`);
      } else if (k.endsWith("Rate") && v > 1) {
        throw new Error(`simulator knob ${k} is a fraction between 0 and 1, got ${v}`);
      }
      (this as unknown as Record<string, unknown>)[k] = v;
    }
  }

  /** Start an outage now, lasting `ms` (default: until `endOutage`). */
  setOutage(ms = Number.POSITIVE_INFINITY, mode: OutageMode = "503"): void {
    const start = this.now();
    this.outage = { start, end: start + ms, mode };
  }

  endOutage(): void {
    this.outage = null;
  }

  /** The outage mode if one is under way now. */
  activeOutage(): OutageMode | null {
    const o = this.outage;
    if (!o) return null;
    const now = this.now();
    return now >= o.start && now < o.end ? o.mode : null;
  }

  /** The next `count` answers (auth excepted) are of this malformed kind. */
  injectMalformed(kind: MalformedKind, count = 1): void {
    for (let i = 0; i < count; i++) this.malformed.push(kind);
  }

  /** Take the next queued malformed kind, if any. */
  takeMalformed(): MalformedKind | undefined {
    return this.malformed.shift();
  }

  /** Forget queued malformed answers. */
  clearMalformed(): void {
    this.malformed.length = 0;
  }

  /** The delay to add to one request, ms. */
  delayFor(random: () => number): number {
    let d = this.latencyMs + (this.jitterMs > 0 ? random() * this.jitterMs : 0);
    if (this.slowRate > 0 && random() < this.slowRate) d += this.slowMs;
    return d;
  }
}
