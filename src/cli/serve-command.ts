/**
 * The `serve` command: parse the configuration, start the service, say plainly where it listens
 * (and, in demo mode, where the simulated site is and how to log in to it), stop on a signal.
 */
import { EventEmitter } from "node:events";
import { pino } from "pino";
import { formatHelp } from "./args.ts";
import { startService } from "../app/create-app.ts";
import { loadServeConfig, SERVE_OPTIONS } from "../config.ts";
import { firstCommand } from "../server/home-page.ts";
import { closeOnSignals } from "../server/shutdown-signals.ts";
import { VERSION } from "../version.ts";
import { AUTH_FILE_FLAG } from "../auth/access-policy.ts";
import { joinPoolMetrics } from "./pool-metrics.ts";
import { isWorkerProcess, runWorkerPool, stopWhenPrimaryGone } from "./worker-pool.ts";

export async function runServe(argv: string[]): Promise<void> {
  const config = loadServeConfig(argv);
  if (config.help) {
    process.stdout.write(formatHelp("usage: shotgrid-cache serve [options]", SERVE_OPTIONS));
    return;
  }
  const logger = pino({ level: config.logLevel, base: { service: "shotgrid-cache" } });
  // --workers N: this process only runs the pool; each worker re-runs this command and serves.
  if (config.workers > 1 && !isWorkerProcess()) {
    const code = await runWorkerPool({ workers: config.workers, logger: logger.child({ component: "workers" }) });
    logger.flush?.();
    process.exit(code);
  }
  const service = await startService(config, logger);
  // In a pool's worker, /metrics answers for every worker (pool-metrics.ts).
  joinPoolMetrics(service.server.metrics);
  logger.info({ version: VERSION, url: service.url, mode: service.mode, preload: config.preloadTypes }, "shotgrid-cache listening");
  if (service.mode === "site" && config.siteTimeZone === undefined && config.preloadTypes.length > 0) {
    logger.info(
      "no --site-time-zone: Queries with relative dates that count days (in_last 2 DAY, in_calendar_day) go to ShotGrid; set it to the site's own to answer them from the preloaded records",
    );
  }
  // Who may call, said at start: an open server must not be mistaken for a guarded one.
  if (service.policy.mode === "open") {
    logger.warn(
      { access: "open" },
      `no ${AUTH_FILE_FLAG}: Connect/gRPC reads and watches are open to anyone, writes are refused; start with ${AUTH_FILE_FLAG} to identify clients`,
    );
  } else {
    logger.info({ access: "tokens", clients: service.policy.clientCount }, "every call needs a bearer token from the auth file");
  }
  if (service.demoSite) {
    const site = service.demoSite;
    // Said plainly on stderr as well as in the log: a user must not mistake the demo for their site.
    process.stderr.write(
      `${[
        "",
        "  shotgrid-cache is running in DEMO mode: no ShotGrid site is configured (--site / SHOTGRID_URL),",
        "  so it serves a built-in simulated ShotGrid site with a small demo studio.",
        `  cache service:       ${service.url}`,
        `  simulated site:      ${site.url}  (REST API under /api/v1.1)`,
        `  site script login:   script name "${site.scriptName}", script key "${site.scriptKey}" (demo only)`,
        "  Change data on the simulated site and watch the cache follow.",
        service.policy.mode === "open"
          ? `  access:              open (no ${AUTH_FILE_FLAG}): reads and watches for anyone, writes refused`
          : `  access:              bearer tokens of ${service.policy.clientCount} client(s) from ${AUTH_FILE_FLAG}: add -H 'authorization: Bearer <token>' below`,
        "",
        "  Try it:",
        `    ${firstCommand(service.url)}`,
        `  What else it answers: curl -s ${service.url}/`,
        "",
      ].join("\n")}\n`,
    );
  } else {
    logger.info({ site: config.site!.url, scriptName: config.site!.scriptName, try: `curl -s ${service.url}/` }, "following ShotGrid site");
  }
  service.ready.then(
    () => logger.info({ lastEventId: service.follower?.lastAppliedEventId }, "ready: preload done and event follower running"),
    () => undefined,
  );

  // Signals, and in a pool's worker the primary going away, all end in one graceful shutdown.
  const signals = new EventEmitter();
  process.on("SIGTERM", () => signals.emit("SIGTERM", "SIGTERM"));
  process.on("SIGINT", () => signals.emit("SIGINT", "SIGINT"));
  stopWhenPrimaryGone((reason) => signals.emit("SIGTERM", reason));
  // A worker gets a terminal's Ctrl-C and the primary's SIGTERM for one shutdown: the primary,
  // not a repeated signal, decides when to force (it sends SIGKILL).
  closeOnSignals(service, { signals, graceMs: 10_000, logger, forceOnRepeat: !isWorkerProcess() });
}
