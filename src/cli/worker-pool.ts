/**
 * `serve --workers N`: N processes on one machine serving one port, to use every core (node:cluster).
 *
 * The primary process serves nothing itself: it forks the workers (each runs the whole service,
 * `startService`, on the shared port; the primary hands out connections), restarts a worker that
 * exits with a backoff (reset once a worker has lived a while), and on SIGTERM/SIGINT forwards
 * SIGTERM to every worker, waits for their graceful shutdown and exits 0 if all exited cleanly.
 * A second signal kills the workers (SIGKILL) and exits 1.
 *
 * Workers share nothing in memory, so more than one needs `--redis` (one cache, one event follower
 * for the cluster) and a site (`--site`): see config.ts. Each worker's `/metrics` answers for the
 * whole pool: the primary gathers every worker's registry over IPC (pool-metrics.ts).
 */
import cluster, { type Worker } from "node:cluster";
import type { Logger } from "../logging/index.ts";
import { servePoolMetrics } from "./pool-metrics.ts";

export interface WorkerPoolOptions {
  /** How many worker processes (>= 1). */
  workers: number;
  logger: Logger;
  /** First restart delay after a worker exits unasked; doubled per quick exit. Default 1000 ms. */
  minRestartDelayMs?: number;
  /** Longest restart delay. Default 30000 ms. */
  maxRestartDelayMs?: number;
  /** A worker that ran at least this long before exiting is restarted after the minimum delay. Default 30000 ms. */
  stableAfterMs?: number;
}

/** True in a process forked by `runWorkerPool`. */
export function isWorkerProcess(): boolean {
  return cluster.isWorker;
}

/**
 * In a worker: call `stop` when the primary goes away (it was killed): a worker must not outlive
 * its pool and keep the port.
 */
export function stopWhenPrimaryGone(stop: (reason: string) => void): void {
  if (cluster.isWorker) process.once("disconnect", () => stop("primary process gone"));
}

/**
 * Run the pool in the primary process; resolves with the process exit code once every worker has
 * exited after a shutdown signal (0 if all exited cleanly), or 1 if the first workers cannot start.
 */
export function runWorkerPool(options: WorkerPoolOptions): Promise<number> {
  const { workers, logger: log } = options;
  if (!(Number.isInteger(workers) && workers >= 1)) throw new RangeError(`workers must be a whole number >= 1, got ${workers}`);
  const minDelay = options.minRestartDelayMs ?? 1000;
  const maxDelay = options.maxRestartDelayMs ?? 30_000;
  const stableAfter = options.stableAfterMs ?? 30_000;

  return new Promise<number>((resolve) => {
    const live = new Map<Worker, { slot: number; startedAt: number }>();
    const quickExits = new Map<number, number>();
    const timers = new Set<NodeJS.Timeout>();
    let stopping = false;
    let anyListening = false;
    let exitCode = 0;
    const stopMetrics = servePoolMetrics(() => [...live].map(([worker, { slot }]): [Worker, number] => [worker, slot]));

    const finishIfDone = (): void => {
      if (!stopping || live.size > 0) return;
      process.off("SIGTERM", onSigterm);
      process.off("SIGINT", onSigint);
      stopMetrics();
      log.info({ exitCode }, exitCode === 0 ? "all workers stopped" : "workers stopped, not all cleanly");
      resolve(exitCode);
    };

    const fork = (slot: number): void => {
      const worker = cluster.fork({ SHOTGRID_CACHE_WORKER: String(slot) });
      const pid = worker.process.pid;
      live.set(worker, { slot, startedAt: Date.now() });
      worker.on("listening", (address) => {
        anyListening = true;
        log.info({ worker: slot, pid, port: address.port }, "worker listening");
      });
      worker.on("exit", (code, signal) => {
        const startedAt = live.get(worker)?.startedAt ?? Date.now();
        live.delete(worker);
        const clean = code === 0 && signal === null;
        if (stopping) {
          if (!clean) exitCode = 1;
          log.info({ worker: slot, pid, code, signal }, "worker stopped");
          return finishIfDone();
        }
        if (!anyListening) {
          // The first workers cannot even start (bad configuration, port taken): restarting
          // them would loop for ever. Their own errors are on stderr.
          log.error({ worker: slot, pid, code, signal }, "a worker exited before any worker was listening; stopping");
          exitCode = 1;
          return shutDown();
        }
        const quick = Date.now() - startedAt < stableAfter ? (quickExits.get(slot) ?? 0) : 0;
        quickExits.set(slot, quick + 1);
        const delay = Math.min(maxDelay, minDelay * 2 ** Math.min(quick, 20));
        log.warn({ worker: slot, pid, code, signal, restartInMs: delay }, "worker exited; restarting it");
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (!stopping) fork(slot);
        }, delay);
        timers.add(timer);
      });
    };

    const shutDown = (): void => {
      stopping = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      // SIGTERM, not the IPC disconnect: each worker runs the same graceful stop as a lone `serve`.
      for (const worker of live.keys()) worker.process.kill("SIGTERM");
      finishIfDone();
    };

    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn({ signal }, "second signal: killing the workers");
        exitCode = 1;
        for (const worker of live.keys()) worker.process.kill("SIGKILL");
        return;
      }
      log.info({ signal, workers: live.size }, "shutting down: stopping the workers");
      shutDown();
    };
    const onSigterm = (): void => onSignal("SIGTERM");
    const onSigint = (): void => onSignal("SIGINT");
    process.on("SIGTERM", onSigterm);
    process.on("SIGINT", onSigint);

    log.info({ workers, pid: process.pid }, "starting workers");
    for (let slot = 1; slot <= workers; slot++) fork(slot);
  });
}
