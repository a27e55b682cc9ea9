/**
 * Graceful shutdown on SIGTERM and SIGINT: the first signal closes the server (streams end,
 * calls in flight finish) and then exits 0; a second signal exits at once with 130, for an
 * operator who does not want to wait.
 */
import type { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { Server } from "./create-server.ts";

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
}

/** Install the handlers; returns a function that removes them. */
export function closeOnSignals(server: Pick<Server, "close">, options: ShutdownSignalOptions = {}): () => void {
  const source = options.signals ?? process;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let shuttingDown = false;
  const onSignal = (signal: string) => {
    if (shuttingDown) {
      options.logger?.warn({ signal }, "second signal: exiting now");
      return exit(130);
    }
    shuttingDown = true;
    options.logger?.info({ signal, graceMs: options.graceMs ?? 10_000 }, "shutting down: finishing calls in flight");
    void (async () => {
      let code = 0;
      try {
        await server.close(options.graceMs ?? 10_000);
        await options.beforeExit?.();
        options.logger?.info("shut down cleanly");
      } catch (err) {
        code = 1;
        options.logger?.error({ err: err instanceof Error ? err.message : String(err) }, "shutdown failed");
      }
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
