/**
 * Metrics of the secondary change sources — webhook deliveries and reconcile runs — registered on
 * a server's `Metrics.registry`. Kept apart from metrics.ts so each source's counters live with
 * their help texts in one small place; it satisfies `WebhookMetrics` and `ReconcileMetrics`.
 */
import { Counter, Gauge, type Registry } from "prom-client";

const PREFIX = "shotgrid_cache_";
const DELIVERY_OUTCOMES = ["applied", "duplicate", "stale", "failed"] as const;
const REJECTIONS = ["signature", "too_large", "malformed", "method"] as const;

export class ChangeSourceMetrics {
  readonly #deliveries: Counter<string>;
  readonly #rejected: Counter<string>;
  readonly #runs: Counter<string>;
  readonly #findings: Counter<string>;
  readonly #lastRun: Gauge<string>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#deliveries = new Counter({
      name: `${PREFIX}webhook_deliveries_total`,
      help: "Verified webhook deliveries received, by outcome (applied as a hint, duplicate or stale replay ignored, failed).",
      labelNames: ["outcome"],
      registers,
    });
    this.#rejected = new Counter({
      name: `${PREFIX}webhook_rejected_total`,
      help: "Webhook POSTs refused, by reason (signature, too_large, malformed, method).",
      labelNames: ["reason"],
      registers,
    });
    this.#runs = new Counter({ name: `${PREFIX}reconcile_runs_total`, help: "Reconcile runs, by outcome.", labelNames: ["outcome"], registers });
    this.#findings = new Counter({
      name: `${PREFIX}reconcile_findings_total`,
      help: "Records reconcile found changed without an event (a sign of scripts writing with events turned off).",
      registers,
    });
    this.#lastRun = new Gauge({ name: `${PREFIX}reconcile_last_run_timestamp_seconds`, help: "When the last successful reconcile run finished.", registers });
    // Zeros from the start, so rates and alerts work before the first delivery.
    for (const o of DELIVERY_OUTCOMES) this.#deliveries.labels(o).inc(0);
    for (const r of REJECTIONS) this.#rejected.labels(r).inc(0);
    this.#findings.inc(0);
  }

  webhookDelivery(outcome: string): void {
    this.#deliveries.labels(outcome).inc();
  }

  webhookRejected(reason: string): void {
    this.#rejected.labels(reason).inc();
  }

  reconcileRun(outcome: "ok" | "error"): void {
    this.#runs.labels(outcome).inc();
    if (outcome === "ok") this.#lastRun.set(Date.now() / 1000);
  }

  reconcileFindings(count: number): void {
    this.#findings.inc(count);
  }
}
