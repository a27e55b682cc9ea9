/**
 * `shotgrid-cache simulator`: run a simulated ShotGrid site until SIGINT/SIGTERM.
 */
import { formatHelp, parseArgs, parseIntOption, parseNumberOption, UsageError, type OptionSpec } from "../cli/args.ts";
import { DEFAULT_SCRIPT_KEY, DEFAULT_SCRIPT_NAME, startSimulator } from "./index.ts";

const SPEC: Record<string, OptionSpec> = {
  port: { kind: "string", help: "port to listen on (default 9090; 0 picks a free one)" },
  host: { kind: "string", help: "interface to bind (default 127.0.0.1)" },
  "script-name": { kind: "string", help: `script name accepted by client_credentials (default ${DEFAULT_SCRIPT_NAME})` },
  "script-key": { kind: "string", help: `script key accepted by client_credentials (default ${DEFAULT_SCRIPT_KEY})` },
  "token-lifetime-s": { kind: "string", help: "access token lifetime in seconds (default 600)" },
  schema: { kind: "string", help: "api3 schema_read JSON file (default: the built-in demo schema)" },
  dataset: { kind: "string", help: "demo (a small studio, default) or empty" },
  shots: { kind: "string", help: "shots to generate (default 60)" },
  assets: { kind: "string", help: "assets to generate (default 40)" },
  seed: { kind: "string", help: "seed of the generated data (default 1)" },
  "latency-ms": { kind: "string", help: "latency added to every answer (default 0)" },
  "jitter-ms": { kind: "string", help: "up to this much more latency, at random (default 0)" },
  "error-rate": { kind: "string", help: "fraction 0-1 of requests answered with a 5xx (default 0)" },
  "max-concurrent": { kind: "string", help: "requests in flight beyond this get 503 (default 0: no limit)" },
  "slow-rate": { kind: "string", help: "fraction 0-1 of requests that take --slow-ms longer (default 0)" },
  "slow-ms": { kind: "string", help: "extra time of a slow answer (default 5000 when --slow-rate is set)" },
  "outage-after-s": { kind: "string", help: "start an outage this many seconds after start (default: no outage)" },
  "outage-s": { kind: "string", help: "length of that outage in seconds (default 60)" },
  "outage-mode": { kind: "string", help: "how the site fails during the outage: 503, 502 (an HTML page) or reset (default 503)" },
  "event-commit-delay-ms": { kind: "string", help: "commit write events this late, so ids appear out of order (default 0)" },
  "webhook-url": { kind: "string", help: "POST a signed webhook delivery for every event to this URL (e.g. http://127.0.0.1:8080/webhooks/shotgrid)" },
  "webhook-secret": { kind: "string", help: "secret token the deliveries are signed with (env SHOTGRID_WEBHOOK_SECRET); never printed" },
  "webhook-batched": { kind: "boolean", help: "send up to 50 deliveries per POST (ShotGrid's batched mode)" },
  help: { kind: "boolean", help: "show this help" },
};

const USAGE = "usage: shotgrid-cache simulator [options]\n\nRun a simulated ShotGrid site (REST API v1/v1.1 subset) for demos, tests and benchmarks.";

export async function runSimulator(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs(argv, SPEC);
  if (values["help"]) {
    process.stdout.write(formatHelp(USAGE, SPEC));
    return;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const str = (k: string) => values[k] as string | undefined;
  const dataset = str("dataset") ?? "demo";
  if (dataset !== "demo" && dataset !== "empty") throw new UsageError(`--dataset must be demo or empty, got "${dataset}"`);
  const scriptName = str("script-name") ?? DEFAULT_SCRIPT_NAME;
  const scriptKey = str("script-key") ?? DEFAULT_SCRIPT_KEY;
  if (!scriptName.trim()) throw new UsageError("--script-name must not be empty");
  if (!scriptKey) throw new UsageError("--script-key must not be empty");
  const webhookUrl = str("webhook-url");
  const webhookSecret = str("webhook-secret") ?? process.env["SHOTGRID_WEBHOOK_SECRET"];
  if (webhookUrl !== undefined && !webhookSecret)
    throw new UsageError("--webhook-url needs --webhook-secret (or SHOTGRID_WEBHOOK_SECRET): deliveries are always signed");
  if (webhookUrl === undefined && values["webhook-batched"]) throw new UsageError("--webhook-batched needs --webhook-url");
  if (webhookUrl !== undefined && !/^https?:\/\/[^/]/.test(webhookUrl)) throw new UsageError(`--webhook-url must be an http or https URL, got "${webhookUrl}"`);
  const outageMode = str("outage-mode") ?? "503";
  if (outageMode !== "503" && outageMode !== "502" && outageMode !== "reset")
    throw new UsageError(`--outage-mode must be 503, 502 or reset, got "${outageMode}"`);
  const outageAfterS = str("outage-after-s") === undefined ? undefined : parseNumberOption("--outage-after-s", str("outage-after-s"), 0, 0, 30 * 86_400);
  const outageS = parseNumberOption("--outage-s", str("outage-s"), 60, 0.001, 30 * 86_400);
  if (outageAfterS === undefined && (str("outage-s") !== undefined || str("outage-mode") !== undefined)) {
    throw new UsageError("--outage-s and --outage-mode need --outage-after-s");
  }
  const slowRate = parseNumberOption("--slow-rate", str("slow-rate"), 0, 0, 1);
  const site = await startSimulator({
    port: parseIntOption("--port", str("port"), 9090, 0, 65535),
    host: str("host") ?? "127.0.0.1",
    scriptName,
    scriptKey,
    tokenLifetimeS: parseIntOption("--token-lifetime-s", str("token-lifetime-s"), 600, 1, 365 * 24 * 3600),
    schema: str("schema"),
    webhooks: webhookUrl !== undefined ? [{ url: webhookUrl, secret: webhookSecret!, batched: values["webhook-batched"] === true }] : [],
    dataset,
    shots: str("shots") === undefined ? undefined : parseIntOption("--shots", str("shots"), 60, 0, 10_000_000),
    assets: str("assets") === undefined ? undefined : parseIntOption("--assets", str("assets"), 40, 0, 10_000_000),
    seed: parseIntOption("--seed", str("seed"), 1, 0, 2 ** 31 - 1),
    knobs: {
      latencyMs: parseNumberOption("--latency-ms", str("latency-ms"), 0, 0, 600_000),
      jitterMs: parseNumberOption("--jitter-ms", str("jitter-ms"), 0, 0, 600_000),
      errorRate: parseNumberOption("--error-rate", str("error-rate"), 0, 0, 1),
      slowRate,
      slowMs: parseNumberOption("--slow-ms", str("slow-ms"), slowRate > 0 ? 5000 : 0, 0, 600_000),
      maxConcurrent: parseIntOption("--max-concurrent", str("max-concurrent"), 0, 0, 1_000_000),
      eventCommitDelayMs: parseNumberOption("--event-commit-delay-ms", str("event-commit-delay-ms"), 0, 0, 3_600_000),
    },
  });
  let outageTimer: NodeJS.Timeout | undefined;
  if (outageAfterS !== undefined) {
    outageTimer = setTimeout(() => {
      process.stdout.write(`outage: failing every request (${outageMode}) for ${outageS} s\n`);
      site.knobs.setOutage(outageS * 1000, outageMode);
    }, outageAfterS * 1000);
  }
  // The key is printed only when it is the documented default: a real key never reaches a log.
  const keyShown = scriptKey === DEFAULT_SCRIPT_KEY ? scriptKey : "(as given with --script-key)";
  process.stdout.write(
    `simulated ShotGrid site listening on ${site.url} (REST API at ${site.url}/api/v1.1)\n` +
      `  script name: ${scriptName}\n  script key:  ${keyShown}\n` +
      (webhookUrl !== undefined ? `  webhooks:    ${webhookUrl}${values["webhook-batched"] ? " (batched)" : ""}\n` : "") +
      `  ${site.store.count("Project")} projects, ${site.store.count("Shot")} shots, ${site.store.count("Asset")} assets; latest event id ${site.store.latestEventId}\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stdout.write(`${signal}: stopping the simulated site\n`);
      clearTimeout(outageTimer);
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      site.close().then(resolve, resolve);
    };
    const onInt = () => stop("SIGINT");
    const onTerm = () => stop("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
}
