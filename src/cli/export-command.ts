/**
 * `shotgrid-cache export --out DIR --site URL --script-name N --script-key K [--types …]`: write
 * the snapshot files once, straight from a ShotGrid site. It needs no running service (so it
 * works when the service is down, and from a cron job), writes the same files as
 * `serve --snapshot-dir` (the same writer), and reads every field of every active record.
 */
import { pino } from "pino";
import { DEFAULT_PRELOAD_TYPES } from "../cache/read-through-cache.ts";
import { entityTypesOption, siteOption } from "../config.ts";
import { ShotGridClient } from "../shotgrid/index.ts";
import { siteSnapshotSource, SnapshotWriter } from "../snapshots/index.ts";
import { formatHelp, type OptionSpec, parseArgs, UsageError } from "./args.ts";

const USAGE = `usage: shotgrid-cache export --out DIR --site URL --script-name NAME --script-key KEY [--types Project,Shot,…]

Writes DIR/<EntityType>.json for each type, read from the ShotGrid site (no service needed), in the
format serve --snapshot-dir writes (docs/snapshots.md). The site and script may come from
SHOTGRID_URL, SHOTGRID_SCRIPT_NAME and SHOTGRID_SCRIPT_KEY, as for serve.`;

const OPTIONS: Record<string, OptionSpec> = {
  out: { kind: "string", help: "the folder of the files (created if missing)" },
  types: { kind: "string", help: `entity types to write, comma-separated (default ${DEFAULT_PRELOAD_TYPES.join(",")})` },
  site: { kind: "string", help: "ShotGrid site URL (env SHOTGRID_URL)" },
  "script-name": { kind: "string", help: "ShotGrid script name (env SHOTGRID_SCRIPT_NAME)" },
  "script-key": { kind: "string", help: "ShotGrid script key (env SHOTGRID_SCRIPT_KEY); never printed" },
  help: { kind: "boolean", help: "show this help" },
};

export async function runExport(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const { values, positionals } = parseArgs(argv, OPTIONS);
  if (values["help"] === true) {
    process.stdout.write(formatHelp(USAGE, OPTIONS));
    return;
  }
  if (positionals.length > 0) throw new UsageError(`export takes no positional arguments, got "${positionals.join(" ")}"`);
  const str = (k: string, envName?: string) => (typeof values[k] === "string" ? (values[k] as string) : envName ? env[envName] : undefined);
  const out = str("out")?.trim();
  if (!out) throw new UsageError("--out DIR is required: the folder the files are written to");
  const types = entityTypesOption("--types", str("types") ?? DEFAULT_PRELOAD_TYPES.join(","));
  if (types.length === 0) throw new UsageError("--types: give at least one entity type");
  const site = siteOption(str("site", "SHOTGRID_URL"), str("script-name", "SHOTGRID_SCRIPT_NAME"), str("script-key", "SHOTGRID_SCRIPT_KEY"));
  if (!site) throw new UsageError("export reads a ShotGrid site: give --site, --script-name and --script-key (or SHOTGRID_URL, …)");

  const logger = pino({ level: "silent" });
  // A short retry: an export answers its caller, it does not wait out a long outage.
  const backend = new ShotGridClient({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: site.scriptKey, maxRetryTimeMs: 5000, logger });
  try {
    const writer = new SnapshotWriter({ dir: out, types, source: siteSnapshotSource(backend, site.url), logger });
    const outcomes = await writer.writeNow();
    const failed: string[] = [];
    for (const o of outcomes) {
      if (o.written) process.stdout.write(`wrote ${o.path}: ${o.records} records, current to event ${o.eventId}\n`);
      else failed.push(`${o.type}: ${o.reason}`);
    }
    if (failed.length > 0) throw new Error(`not written (the old files stay): ${failed.join("; ")}`);
  } finally {
    await backend.close();
  }
}
