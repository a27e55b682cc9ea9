/**
 * One validated configuration for `serve`, from command-line flags and environment variables
 * (flags win). Every problem is reported with the flag's name and the reason.
 */
import { availableParallelism } from "node:os";
import { parseArgs, parseIntOption, UsageError, type OptionSpec } from "./cli/args.ts";
import { checkTimeZone } from "./local-query/time-zone.ts";

export interface ServeConfig {
  /** Port for Connect, gRPC and gRPC-web (`--port`, `PORT`). */
  port: number;
  /** Interface to bind (`--host`, `HOST`). */
  host: string;
  /** The ShotGrid site; undefined means demo mode with the built-in simulated site. */
  site?: { url: string; scriptName: string; scriptKey: string };
  /** Port of the in-process simulated site in demo mode. */
  demoSitePort: number;
  /** Entity types preloaded whole at start. */
  preloadTypes: string[];
  /** Memory bound of the cache, in bytes. */
  cacheMaxBytes: number;
  /** Safety net: cached entries older than this are refetched (ms). */
  maxAgeMs: number;
  /** Event log poll interval (ms). */
  pollIntervalMs: number;
  /** Seconds between heartbeats on an idle WatchChanges stream. */
  heartbeatS: number;
  /** Changes kept for WatchChanges resume. */
  replayEvents: number;
  /**
   * Directory where the event cursor (last applied id and awaited skipped ids) is saved after
   * every applied batch (`--state-dir`, `STATE_DIR`). Default `./.state` with a site; none in
   * demo mode (its simulated site starts afresh each run). Undefined: nothing is saved.
   */
  stateDir?: string;
  /** How long a skipped event id is awaited before it is given up (ms; `--gap-window-s`). */
  gapWindowMs: number;
  /** Largest request body accepted (bytes). */
  maxRequestBytes: number;
  /** Most fields one request may ask for. */
  maxFields: number;
  /** Largest Query page (and the limit used when a Query sets none). */
  maxPageSize: number;
  /** Deadline for one unary call, unless the client sets a shorter one (ms). */
  deadlineMs: number;
  /** Concurrent requests to the site at most. */
  upstreamConcurrency: number;
  /** How long a failed read to the site is retried before the call answers Unavailable (ms). */
  upstreamRetryMs: number;
  tls?: { certFile: string; keyFile: string };
  logLevel: string;
  /**
   * The ShotGrid webhook's secret token (`--webhook-secret`, `SHOTGRID_WEBHOOK_SECRET`): serve
   * `POST /webhooks/shotgrid`. Undefined: no webhook route (404). Never logged.
   */
  webhookSecret?: string;
  /**
   * The auth file (`--auth-file`, `AUTH_FILE`): clients' token hashes, scopes, read limits and
   * the logins their writes are made as (docs/access-control.md). Undefined: open mode (reads
   * and watches for anyone, writes refused).
   */
  authFile?: string;
  /** Seconds between reconcile runs (`--reconcile-interval-s`); 0 turns reconcile off. */
  reconcileIntervalS: number;
  /**
   * The shared Redis store (`--redis`, `REDIS_URL`; `--redis-prefix`, `REDIS_PREFIX`). Undefined:
   * the in-process memory store. Keys are namespaced `<prefix>:{<site>}:`. The URL may hold a
   * password: it is never logged nor put in an error message.
   */
  redis?: { url: string; prefix: string };
  /**
   * Processes serving the port on this machine (`--workers`; `0` or `auto`: one per core). Above 1
   * it needs `redis` and a site (see cli/worker-pool.ts). Default 1 (this process serves).
   */
  workers: number;
  /**
   * With `redis`: lifetime of the leader lease (ms; `--leader-lease-ms`). One instance of the
   * cluster follows the event log; if it dies another takes over within about 4/3 of this.
   */
  leaderLeaseMs: number;
  /**
   * How long a caller's api3 credentials, once ShotGrid accepted them, are trusted without asking
   * again (ms; `--api3-credential-ttl-s`, default 300 s; 0: every api3 call is verified).
   */
  api3CredentialTtlMs: number;
  /**
   * Snapshot files for when the service is down (`--snapshot-dir`, `SNAPSHOT_DIR`): every
   * `intervalS` seconds (`--snapshot-interval-s`, default 300) the event follower's instance (the
   * leader with `redis`) writes `<dir>/<Type>.json` for each of `types` (`--snapshot-types`,
   * default the preloaded types; each must be preloaded). Format: docs/snapshots.md. Undefined: none.
   */
  snapshot?: { dir: string; types: string[]; intervalS: number };
  /**
   * The site's time zone, an IANA name (`--site-time-zone`, `SHOTGRID_TIME_ZONE`): the calendar
   * in which Queries answered locally count relative dates (`in_last 2 DAY`, `in_calendar_month`…),
   * the site's own (Site Preferences). Undefined (the default): not known, so those Queries go to
   * ShotGrid (all but `in_last`/`in_next` in hours on date-times, which need no calendar); demo
   * mode uses UTC, the simulated site's calendar.
   */
  siteTimeZone?: string;
}

export const SERVE_OPTIONS: Record<string, OptionSpec> = {
  port: { kind: "string", help: "port for Connect, gRPC and gRPC-web (env PORT; default 8080)" },
  host: { kind: "string", help: "interface to bind (env HOST; default 0.0.0.0)" },
  site: { kind: "string", help: "ShotGrid site URL, e.g. https://studio.shotgrid.autodesk.com (env SHOTGRID_URL); none: demo mode" },
  "script-name": { kind: "string", help: "ShotGrid script name (env SHOTGRID_SCRIPT_NAME)" },
  "script-key": { kind: "string", help: "ShotGrid script key (env SHOTGRID_SCRIPT_KEY); never logged" },
  "demo-site-port": { kind: "string", help: "port of the simulated site in demo mode (default 8090)" },
  preload: { kind: "string", help: "entity types preloaded whole (default Project,Sequence,Shot,Asset,Step; '' for none)" },
  "cache-max-mb": { kind: "string", help: "memory bound of the cache in MiB (default 512)" },
  "max-age-s": { kind: "string", help: "refetch cached entries older than this (default 3600)" },
  "poll-interval-ms": { kind: "string", help: "event log poll interval (default 1000)" },
  "heartbeat-s": { kind: "string", help: "heartbeat interval on idle WatchChanges streams (default 15)" },
  "replay-events": { kind: "string", help: "changes kept for WatchChanges resume (default 100000)" },
  "state-dir": { kind: "string", help: "where the event cursor is saved (env STATE_DIR; default ./.state with a site, none in demo mode; '' for none)" },
  "gap-window-s": { kind: "string", help: "how long a skipped event id is awaited before it is given up (default 300)" },
  "max-request-bytes": { kind: "string", help: "largest request body (default 1048576)" },
  "max-fields": { kind: "string", help: "most fields per request (default 200)" },
  "max-page-size": { kind: "string", help: "largest Query page, and the default limit (default 5000)" },
  "deadline-ms": { kind: "string", help: "deadline of one unary call (default 30000)" },
  "upstream-concurrency": { kind: "string", help: "concurrent requests to the site at most (default 8)" },
  "upstream-retry-ms": {
    kind: "string",
    help: "the most time spent retrying a failed read to the site before answering unavailable: a ceiling; the attempt count (5) usually stops first (default 15000)",
  },
  "tls-cert": { kind: "string", help: "PEM certificate: serve TLS (HTTP/1.1 and HTTP/2 by ALPN)" },
  "tls-key": { kind: "string", help: "PEM private key for --tls-cert" },
  "webhook-secret": { kind: "string", help: "secret token of a ShotGrid webhook: serve POST /webhooks/shotgrid (env SHOTGRID_WEBHOOK_SECRET); never logged" },
  "auth-file": {
    kind: "string",
    help: "YAML or JSON file of client tokens (SHA-256), scopes and read limits (env AUTH_FILE); none: reads and watches open, writes refused",
  },
  "reconcile-interval-s": { kind: "string", help: "seconds between checks for changes made without events (default 300; 0: off)" },
  redis: { kind: "string", help: "share the cache through Redis: redis://[:password@]host:port[/db] or rediss://… (env REDIS_URL); none: memory cache" },
  "redis-prefix": { kind: "string", help: "first part of every Redis key (env REDIS_PREFIX; default sgc)" },
  workers: {
    kind: "string",
    help: "processes serving the port on this machine, N >= 1, or 0/auto for one per core (default 1; above 1 needs --redis and --site)",
  },
  "leader-lease-ms": {
    kind: "string",
    help: "with --redis: lifetime of the event follower's leader lease; a dead leader is replaced within about 4/3 of it (default 5000)",
  },
  "api3-credential-ttl-s": {
    kind: "string",
    help: "how long api3 callers' ShotGrid credentials, once accepted, are trusted without asking ShotGrid again (default 300; 0: every call)",
  },
  "snapshot-dir": { kind: "string", help: "write snapshot files of the preloaded types here, for readers when the service is down (env SNAPSHOT_DIR)" },
  "snapshot-types": { kind: "string", help: "with --snapshot-dir: the types written, each a preloaded one (default: every --preload type)" },
  "snapshot-interval-s": { kind: "string", help: "with --snapshot-dir: seconds between snapshots (default 300)" },
  "site-time-zone": {
    kind: "string",
    help: "the site's time zone, an IANA name like Europe/London, for relative dates in Queries answered locally (env SHOTGRID_TIME_ZONE; default: none with a site, so relative dates that count days go to ShotGrid; UTC in demo mode)",
  },
  "log-level": { kind: "string", help: "trace, debug, info, warn, error (env LOG_LEVEL; default info)" },
  help: { kind: "boolean", help: "show this help" },
};

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/** Build the configuration; throws UsageError naming the offending flag. */
export function loadServeConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeConfig & { help: boolean } {
  const { values, positionals } = parseArgs(argv, SERVE_OPTIONS);
  if (positionals.length > 0) throw new UsageError(`serve takes no positional arguments, got "${positionals.join(" ")}"`);
  const str = (flag: string, envName?: string): string | undefined => {
    const v = values[flag];
    if (typeof v === "string") return v;
    return envName ? env[envName] : undefined;
  };

  const site = siteOption(str("site", "SHOTGRID_URL"), str("script-name", "SHOTGRID_SCRIPT_NAME"), str("script-key", "SHOTGRID_SCRIPT_KEY"));

  const preloadRaw = str("preload");
  const preloadTypes = entityTypesOption("--preload", preloadRaw ?? "Project,Sequence,Shot,Asset,Step");

  const tlsCert = str("tls-cert");
  const tlsKey = str("tls-key");
  if (Boolean(tlsCert) !== Boolean(tlsKey)) throw new UsageError("--tls-cert and --tls-key go together");

  const redis = redisOption(str("redis", "REDIS_URL"), str("redis-prefix", "REDIS_PREFIX"));
  const workers = workersOption(str("workers"), redis !== undefined, site !== undefined);

  const logLevel = (str("log-level", "LOG_LEVEL") ?? "info").toLowerCase();
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got "${logLevel}"`);

  return {
    help: values.help === true,
    port: parseIntOption("--port (PORT)", str("port", "PORT"), 8080, 0, 65535),
    host: str("host", "HOST") ?? "0.0.0.0",
    site,
    demoSitePort: parseIntOption("--demo-site-port", str("demo-site-port"), 8090, 0, 65535),
    preloadTypes,
    cacheMaxBytes: parseIntOption("--cache-max-mb", str("cache-max-mb"), 512, 1, 1024 * 1024) * 1024 * 1024,
    maxAgeMs: parseIntOption("--max-age-s", str("max-age-s"), 3600, 1, 365 * 86400) * 1000,
    pollIntervalMs: parseIntOption("--poll-interval-ms", str("poll-interval-ms"), 1000, 10, 3_600_000),
    heartbeatS: parseIntOption("--heartbeat-s", str("heartbeat-s"), 15, 1, 3600),
    replayEvents: parseIntOption("--replay-events", str("replay-events"), 100_000, 0, 10_000_000),
    stateDir: stateDirOption(str("state-dir", "STATE_DIR"), site !== undefined),
    gapWindowMs: parseIntOption("--gap-window-s", str("gap-window-s"), 300, 1, 86_400) * 1000,
    maxRequestBytes: parseIntOption("--max-request-bytes", str("max-request-bytes"), 1024 * 1024, 1024, 256 * 1024 * 1024),
    maxFields: parseIntOption("--max-fields", str("max-fields"), 200, 1, 10_000),
    maxPageSize: parseIntOption("--max-page-size", str("max-page-size"), 5000, 1, 100_000),
    deadlineMs: parseIntOption("--deadline-ms", str("deadline-ms"), 30_000, 100, 3_600_000),
    upstreamConcurrency: parseIntOption("--upstream-concurrency", str("upstream-concurrency"), 8, 1, 1000),
    upstreamRetryMs: parseIntOption("--upstream-retry-ms", str("upstream-retry-ms"), 15_000, 0, 600_000),
    tls: tlsCert && tlsKey ? { certFile: tlsCert, keyFile: tlsKey } : undefined,
    logLevel,
    webhookSecret: webhookSecretOption(str("webhook-secret", "SHOTGRID_WEBHOOK_SECRET")),
    authFile: str("auth-file", "AUTH_FILE") || undefined,
    reconcileIntervalS: parseIntOption("--reconcile-interval-s", str("reconcile-interval-s"), 300, 0, 7 * 86_400),
    redis,
    workers,
    leaderLeaseMs: parseIntOption("--leader-lease-ms", str("leader-lease-ms"), 5000, 300, 600_000),
    api3CredentialTtlMs: parseIntOption("--api3-credential-ttl-s", str("api3-credential-ttl-s"), 300, 0, 86_400) * 1000,
    snapshot: snapshotOption(str("snapshot-dir", "SNAPSHOT_DIR"), str("snapshot-types"), str("snapshot-interval-s"), preloadTypes),
    siteTimeZone: timeZoneOption(str("site-time-zone", "SHOTGRID_TIME_ZONE")),
  };
}

/**
 * The ShotGrid site and its script credentials (`--site`, `--script-name`, `--script-key`, or
 * `SHOTGRID_URL`, `SHOTGRID_SCRIPT_NAME`, `SHOTGRID_SCRIPT_KEY`): undefined when no site is given.
 * Shared by `serve` and `export`. The key is never put in a message.
 */
export function siteOption(rawUrl: string | undefined, rawName: string | undefined, rawKey: string | undefined): ServeConfig["site"] {
  const siteUrl = rawUrl?.trim() || undefined;
  const scriptName = rawName?.trim() || undefined;
  const scriptKey = rawKey || undefined;
  if (!siteUrl) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(siteUrl);
  } catch {
    throw new UsageError(`--site (SHOTGRID_URL) is not a URL: "${siteUrl}"`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw new UsageError(`--site (SHOTGRID_URL) must be an http or https URL, got "${parsed.protocol}"`);
  }
  const missing = [!scriptName && "--script-name (SHOTGRID_SCRIPT_NAME)", !scriptKey && "--script-key (SHOTGRID_SCRIPT_KEY)"].filter(Boolean);
  if (missing.length > 0) {
    throw new UsageError(
      `a site is set (${parsed.origin}) but ${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} missing: the service cannot authenticate to ShotGrid`,
    );
  }
  return { url: parsed.origin + parsed.pathname.replace(/\/+$/, ""), scriptName: scriptName!, scriptKey: scriptKey! };
}

/** A comma-separated list of entity type names; `flag` names the option in errors. */
export function entityTypesOption(flag: string, raw: string): string[] {
  const types = [
    ...new Set(
      raw
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ];
  for (const t of types) {
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(t)) throw new UsageError(`${flag}: "${t}" is not an entity type name`);
  }
  return types;
}

/**
 * `--snapshot-dir` and its companions. Only preloaded types can be written: the cache holds them
 * whole and current, so a snapshot costs no call to the site. The companions without a directory
 * are a mistake worth saying.
 */
function snapshotOption(
  rawDir: string | undefined,
  rawTypes: string | undefined,
  rawInterval: string | undefined,
  preloadTypes: string[],
): ServeConfig["snapshot"] {
  const dir = rawDir?.trim();
  if (!dir) {
    if (rawTypes !== undefined || rawInterval !== undefined)
      throw new UsageError("--snapshot-types and --snapshot-interval-s need --snapshot-dir (SNAPSHOT_DIR)");
    return undefined;
  }
  if (dir.includes("\0")) throw new UsageError("--snapshot-dir (SNAPSHOT_DIR) must not contain a NUL character");
  const types = rawTypes === undefined ? preloadTypes : entityTypesOption("--snapshot-types", rawTypes);
  if (types.length === 0) throw new UsageError("--snapshot-types: give at least one entity type (or leave it out for every preloaded type)");
  const notPreloaded = types.filter((t) => !preloadTypes.includes(t));
  if (notPreloaded.length > 0) {
    throw new UsageError(
      `--snapshot-types: ${notPreloaded.join(", ")} ${notPreloaded.length > 1 ? "are" : "is"} not preloaded (--preload ${preloadTypes.join(",") || "''"}); only preloaded types are held whole to be written`,
    );
  }
  const intervalS = parseIntOption("--snapshot-interval-s", rawInterval, 300, 1, 7 * 86_400);
  return { dir, types, intervalS };
}

/**
 * `--redis` / `--redis-prefix`: absent or empty → memory store. The URL is checked here, so a typo
 * is a usage error at start, not a cache that silently never connects. Errors never repeat the
 * URL (it may hold a password).
 */
function redisOption(rawUrl: string | undefined, rawPrefix: string | undefined): ServeConfig["redis"] {
  const url = rawUrl?.trim();
  if (!url) {
    if (rawPrefix) throw new UsageError("--redis-prefix (REDIS_PREFIX) is set but --redis (REDIS_URL) is not: the prefix only applies to a Redis store");
    return undefined;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError("--redis (REDIS_URL) is not a URL; expected redis://[:password@]host:port[/db] or rediss://…");
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new UsageError(`--redis (REDIS_URL) must be a redis:// or rediss:// URL, got "${parsed.protocol}//…"`);
  }
  if (!parsed.hostname) throw new UsageError("--redis (REDIS_URL) has no host; expected redis://host:port");
  const db = parsed.pathname.replace(/^\/+/, "");
  if (db !== "" && !/^\d{1,5}$/.test(db)) throw new UsageError(`--redis (REDIS_URL): the path must be a database number (/0, /1, …), got "/${db}"`);
  const prefix = (rawPrefix ?? "sgc").trim();
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(prefix)) {
    throw new UsageError(`--redis-prefix (REDIS_PREFIX) must be 1-64 letters, digits, "_", "." or "-", got "${prefix}"`);
  }
  return { url, prefix };
}

/**
 * `--workers`: N >= 1, or 0/auto for one per core. Above 1 each worker is its own process: with
 * memory caches they would each follow the event log and disagree, and in demo mode each would
 * start its own simulated site. So more than one worker needs `--redis` and `--site`.
 */
function workersOption(raw: string | undefined, hasRedis: boolean, hasSite: boolean): number {
  const text = raw?.trim().toLowerCase();
  const asked = text === "auto" ? 0 : parseIntOption("--workers", text, 1, 0, 1024);
  const n = asked === 0 ? availableParallelism() : asked;
  if (n > 1 && !hasRedis) {
    throw new UsageError(
      `--workers ${raw} (${n} processes) needs --redis (REDIS_URL): with separate memory caches each worker would follow the event log on its own and their answers would disagree`,
    );
  }
  if (n > 1 && !hasSite) {
    throw new UsageError(
      `--workers ${raw} (${n} processes) needs a ShotGrid site (--site): demo mode runs its simulated site inside the process. For a demo, run "shotgrid-cache simulator" and pass its URL with --site`,
    );
  }
  return n;
}

/** `--webhook-secret`: absent or empty → no webhook route; whitespace around it is a paste mistake. */
function webhookSecretOption(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (raw.trim() !== raw)
    throw new UsageError("--webhook-secret (SHOTGRID_WEBHOOK_SECRET) has spaces around it; give the token exactly as entered on the site");
  return raw;
}

/** `--state-dir`: absent → `./.state` with a site, none in demo mode; empty → none. */
function stateDirOption(raw: string | undefined, hasSite: boolean): string | undefined {
  if (raw === undefined) return hasSite ? "./.state" : undefined;
  const dir = raw.trim();
  if (dir.includes("\0")) throw new UsageError("--state-dir (STATE_DIR) must not contain a NUL character");
  return dir === "" ? undefined : dir;
}

function timeZoneOption(raw: string | undefined): string | undefined {
  const zone = raw?.trim();
  if (!zone) return undefined;
  try {
    return checkTimeZone(zone);
  } catch {
    throw new UsageError(`--site-time-zone (SHOTGRID_TIME_ZONE) is not a time zone this runtime knows: "${zone}" (use an IANA name like Europe/London)`);
  }
}
