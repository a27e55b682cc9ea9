/**
 * Graceful shutdown on SIGTERM and SIGINT: the first signal closes the server (streams end,
 * calls in flight finish) and then exits 0; a second signal exits at once with 130, for an
 * operator who does not want to wait.
 *
 * The same signal again within `echoWindowMs` is not a second request: under `npm start`, a
 * terminal's Ctrl-C reaches both npm and this process (one process group), and npm forwards it
 * too, so one keypress arrives twice.
 */
import type { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { Server } from "./create-server.ts";
import { errorMessage } from "../logging/index.ts";

export interface ShutdownSignalOptions {
  /** How long calls in flight get to finish. Default 10 000 ms. */
  graceMs?: number;
  logger?: Logger;
  /** Runs after the server closed, before exiting: stop the follower, close Redis... */
  beforeExit?: () => Promise<void> | void;
  /** Where signals come from. Default `process`. */
  signals?: Pick<EventEmitter, "on" | "off">;
  /** How to exit. Default `process.exit`. */
  exit?: (code: number) => void;
  /** A repeat of the first signal within this many ms is its echo and is ignored. Default 1000. */
  echoWindowMs?: number;
  /** Whether a second signal exits at once. Default true; false where another process decides (a pool's worker). */
  forceOnRepeat?: boolean;
}

/** Install the handlers; returns a function that removes them. */
export function closeOnSignals(server: Pick<Server, "close">, options: ShutdownSignalOptions = {}): () => void {
  const source = options.signals ?? process;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const echoWindowMs = options.echoWindowMs ?? 1000;
  let first: { signal: string; at: number } | undefined;
  const onSignal = (signal: string) => {
    if (first) {
      if (signal === first.signal && performance.now() - first.at < echoWindowMs) return;
      if (options.forceOnRepeat === false) return;
      options.logger?.warn({ signal }, "second signal: exiting now");
      options.logger?.flush?.();
      return exit(130);
    }
    first = { signal, at: performance.now() };
    options.logger?.info({ signal, graceMs: options.graceMs ?? 10_000 }, "shutting down: finishing calls in flight, ending streams");
    void (async () => {
      let code = 0;
      try {
        await server.close(options.graceMs ?? 10_000);
        await options.beforeExit?.();
        options.logger?.info("stopped");
      } catch (err) {
        code = 1;
        options.logger?.error({ err: errorMessage(err) }, "shutdown failed");
      }
      options.logger?.flush?.();
      exit(code);
    })();
  };
  source.on("SIGTERM", onSignal);
  source.on("SIGINT", onSignal);
  return () => {
    source.off("SIGTERM", onSignal);
    source.off("SIGINT", onSignal);
  };
}
