/**
 * `/metrics` with `serve --workers N`: any worker answers for the whole process group. The worker
 * a scrape reaches asks the primary over IPC; the primary asks every live worker for its
 * registry (as JSON), merges them and sends the text back. Counters and histograms are summed
 * (requests served by every worker add up); gauges are point-in-time figures of one process
 * (memory, open streams, cache size, the leader flag), so each keeps its own series with a
 * `worker` label (the pool's slot number, stable across restarts). Prometheus's `sum()` or
 * `max()` then gives the group's figure.
 *
 * prom-client's cluster support does the same gathering; this is our own small protocol so that
 * gauges get the label and a worker that cannot answer (just restarting) is left out with a
 * visible count instead of failing the scrape.
 */
import cluster, { type Worker } from "node:cluster";
import { AggregatorRegistry, Gauge, type MetricObjectWithValues, type MetricValue, Registry } from "prom-client";
import type { Metrics } from "../server/metrics.ts";

const ASK = "shotgrid-cache:metrics-ask";
const COLLECT = "shotgrid-cache:metrics-collect";
const PART = "shotgrid-cache:metrics-part";
const TEXT = "shotgrid-cache:metrics-text";

/** How long the primary waits for the workers' parts, and a worker for the merged text. */
const GATHER_MS = 3000;

type Part = MetricObjectWithValues<MetricValue<string>>[];
interface Message {
  type?: unknown;
  id?: unknown;
  metrics?: Part;
  text?: unknown;
  error?: unknown;
}

/**
 * In a worker: answer the primary's requests for this worker's registry, and make `metrics.text()`
 * (what `/metrics` serves) the group's merged text.
 */
export function joinPoolMetrics(metrics: Metrics): void {
  if (!cluster.isWorker) return;
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 0;
  process.on("message", (m: Message) => {
    if (m?.type === COLLECT) {
      void metrics.registry.getMetricsAsJSON().then(
        (part) => process.send?.({ type: PART, id: m.id, metrics: part }),
        (err: unknown) => process.send?.({ type: PART, id: m.id, error: String(err) }),
      );
    } else if (m?.type === TEXT && typeof m.id === "number") {
      const w = waiting.get(m.id);
      if (!w) return;
      waiting.delete(m.id);
      clearTimeout(w.timer);
      if (typeof m.text === "string") w.resolve(m.text);
      else w.reject(new Error(`the primary could not merge the workers' metrics: ${String(m.error)}`));
    }
  });
  metrics.useTextSource(
    () =>
      new Promise<string>((resolve, reject) => {
        const id = nextId++;
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`no answer from the primary process within ${GATHER_MS * 2} ms`));
        }, GATHER_MS * 2);
        waiting.set(id, { resolve, reject, timer });
        process.send?.({ type: ASK, id });
      }),
  );
}

/**
 * In the primary: serve the workers' ASKs. `workers` lists the live ones with their slots (the
 * `worker` label). Returns a function that removes the listener.
 */
export function servePoolMetrics(workers: () => Iterable<[Worker, number]>): () => void {
  let nextGather = 0;
  const gathers = new Map<number, { parts: Map<Worker, Part>; done: () => void }>();
  const onMessage = (from: Worker, m: Message): void => {
    if (m?.type === PART && typeof m.id === "number") {
      const g = gathers.get(m.id);
      if (!g) return;
      if (m.metrics) g.parts.set(from, m.metrics);
      else g.parts.set(from, []);
      g.done();
    } else if (m?.type === ASK) {
      const live = [...workers()];
      // A worker not (or no longer) connected cannot answer: ask only the others, count all.
      const asked = live.filter(([w]) => w.isConnected());
      const id = nextGather++;
      const parts = new Map<Worker, Part>();
      const finish = (): void => {
        clearTimeout(timer);
        gathers.delete(id);
        merge(live.length, asked, parts).then(
          (text) => from.isConnected() && from.send({ type: TEXT, id: m.id, text }),
          (err: unknown) => from.isConnected() && from.send({ type: TEXT, id: m.id, error: String(err) }),
        );
      };
      const timer = setTimeout(finish, GATHER_MS);
      gathers.set(id, { parts, done: () => parts.size >= asked.length && finish() });
      for (const [w] of asked) w.send({ type: COLLECT, id });
      if (asked.length === 0) finish();
    }
  };
  cluster.on("message", onMessage);
  return () => cluster.off("message", onMessage);
}

/** Sum counters and histograms; label gauges by worker slot; say how many workers answered. */
async function merge(workers: number, asked: [Worker, number][], parts: Map<Worker, Part>): Promise<string> {
  const labelled: Part[] = [];
  for (const [worker, slot] of asked) {
    const part = parts.get(worker);
    if (!part || part.length === 0) continue; // no answer, or its registry could not be read
    labelled.push(
      part.map((metric) =>
        (metric.type as unknown) === "gauge"
          ? { ...metric, aggregator: "sum", values: metric.values.map((v) => ({ ...v, labels: { ...v.labels, worker: String(slot) } })) }
          : metric,
      ),
    );
  }
  const pool = new Registry();
  new Gauge({ name: "shotgrid_cache_pool_workers", help: "Worker processes in the pool (serve --workers).", registers: [pool] }).set(workers);
  new Gauge({
    name: "shotgrid_cache_pool_workers_reporting",
    help: "Workers whose metrics are in this scrape (one just restarting may be missing).",
    registers: [pool],
  }).set(labelled.length);
  labelled.push(await pool.getMetricsAsJSON());
  return AggregatorRegistry.aggregate(labelled).metrics();
}
