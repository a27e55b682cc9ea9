/**
 * What the status page shows, kept in memory: a ring of one sample per `sampleMs` over the last
 * `windowMs` (the charts' 15 minutes), the last 20 changes applied (read from the change bus like
 * any WatchChanges subscriber), and the report `/status.json` answers. Bounded: the ring and the
 * change list have fixed sizes, and the bus subscription is drained as fast as it fills.
 */
import type { Change, ChangeBus } from "../events/index.ts";
import type { MetricsTotals } from "../server/metrics.ts";
import { type StatusContext, type StatusReport, buildReport } from "./status-report.ts";

/** The last changes shown on the page. */
export const RECENT_CHANGES = 20;

/** One point of the charts: running totals at time `t`, and the follow lag then. */
export interface Sample {
  /** `Date.now()` when taken. */
  t: number;
  hits: number;
  misses: number;
  requests: number;
  /** Null while nothing follows the event log here (a standby, or before the first poll). */
  lagSeconds: number | null;
  /** Per "method protocol" totals; kept only for the last few samples (current rates). */
  byRequest?: MetricsTotals["requests"];
}

export interface StatusSamplerOptions {
  /** The running totals (`Metrics.totals`). */
  totals: () => MetricsTotals;
  /** What the totals do not know: role, reachability, readiness, the follower's own status. */
  context: () => StatusContext;
  /** Where applied changes are published (the last 20 are listed); none: the list stays empty. */
  bus?: ChangeBus;
  /** Time between samples. Default 1000 ms. */
  sampleMs?: number;
  /** How far back the charts go. Default 15 minutes. */
  windowMs?: number;
}

/** How many samples back the "now" rates are measured (5 s at the default interval). */
const RATE_SPAN = 5;

export class StatusSampler {
  readonly #options: StatusSamplerOptions;
  readonly #sampleMs: number;
  readonly #ring: (Sample | undefined)[];
  #next = 0;
  #count = 0;
  readonly #changes: Change[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #stop = new AbortController();

  constructor(options: StatusSamplerOptions) {
    this.#options = options;
    this.#sampleMs = options.sampleMs ?? 1000;
    const windowMs = options.windowMs ?? 15 * 60_000;
    if (!(this.#sampleMs >= 10) || !(windowMs >= this.#sampleMs)) {
      throw new RangeError(`sampleMs must be >= 10 and windowMs >= sampleMs, got ${this.#sampleMs} and ${windowMs}`);
    }
    this.#ring = new Array(Math.ceil(windowMs / this.#sampleMs) + 1).fill(undefined);
  }

  /** Take the first sample, then one every `sampleMs`, and start listing changes. */
  start(): void {
    if (this.#timer || this.#stop.signal.aborted) return;
    this.sample();
    this.#timer = setInterval(() => this.sample(), this.#sampleMs);
    // The sampler must never keep a process alive on its own.
    this.#timer.unref();
    if (this.#options.bus) void this.#listen(this.#options.bus);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#stop.abort();
  }

  /** Take one sample now (the timer calls this; tests may too). */
  sample(): void {
    const totals = this.#options.totals();
    const context = this.#options.context();
    const requests = Object.values(totals.requests).reduce((n, r) => n + r.count, 0);
    const lag = context.follow?.lagSeconds ?? totals.follow.lagSeconds;
    this.#ring[this.#next] = {
      t: Date.now(),
      hits: totals.hits,
      misses: totals.misses,
      requests,
      lagSeconds: context.role === "standby" || lag === undefined ? null : lag,
      byRequest: totals.requests,
    };
    // Per-method totals are only needed for the "now" rates: drop them from older samples.
    const old = this.#ring[(this.#next - RATE_SPAN - 1 + this.#ring.length) % this.#ring.length];
    if (old) old.byRequest = undefined;
    this.#next = (this.#next + 1) % this.#ring.length;
    this.#count = Math.min(this.#count + 1, this.#ring.length);
  }

  /** The samples, oldest first. */
  samples(): Sample[] {
    const out: Sample[] = [];
    for (let i = this.#count; i > 0; i--) out.push(this.#ring[(this.#next - i + this.#ring.length) % this.#ring.length]!);
    return out;
  }

  /** The last changes applied, newest first. */
  recentChanges(): Change[] {
    return [...this.#changes].reverse();
  }

  /** The whole report `/status.json` answers. */
  report(): StatusReport {
    return buildReport({
      totals: this.#options.totals(),
      context: this.#options.context(),
      samples: this.samples(),
      rateSpan: RATE_SPAN,
      sampleMs: this.#sampleMs,
      changes: this.recentChanges(),
    });
  }

  async #listen(bus: ChangeBus): Promise<void> {
    // "Too slow" closes a subscription: subscribe again. Any other end (stopped, bus closed) ends
    // the list. The list is a view of what was applied, not a replay log: a gap there is harmless.
    for (let again = true; again && !this.#stop.signal.aborted; ) {
      again = false;
      for await (const message of bus.subscribe({ signal: this.#stop.signal })) {
        if (message.kind === "resync") again = message.closes;
        else {
          this.#changes.push(message.change);
          if (this.#changes.length > RECENT_CHANGES) this.#changes.shift();
        }
      }
    }
  }
}
