/**
 * What every client command (`get`, `find`, `watch`, `status`) shares: where the service is
 * (`--url`, `SHOTGRID_CACHE_URL`), the caller's token (`--token`, `SHOTGRID_CACHE_TOKEN`, sent as
 * `Authorization: Bearer` and never printed), how to print (a table on a terminal, JSON lines
 * otherwise), and one clear line for each way a call can fail.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { createCacheClient, type CacheClient } from "../client.ts";
import { errorMessage } from "../logging/index.ts";
import { formatHelp, type OptionSpec, type ParsedArgs, parseArgs, UsageError } from "./args.ts";

export const DEFAULT_URL = "http://localhost:8080";

export const CONNECTION_OPTIONS: Record<string, OptionSpec> = {
  url: { kind: "string", help: `the shotgrid-cache service (env SHOTGRID_CACHE_URL; default ${DEFAULT_URL})` },
  token: { kind: "string", help: "a client token, sent as Authorization: Bearer (env SHOTGRID_CACHE_TOKEN); never printed" },
  json: { kind: "boolean", help: "print JSON lines (the default when stdout is not a terminal)" },
  table: { kind: "boolean", help: "print a table even when stdout is not a terminal" },
  help: { kind: "boolean", help: "show this help" },
};

export interface Connection {
  url: string;
  /** Headers for every call: the token, when there is one. */
  headers: Record<string, string>;
  /** How to print: a table for people, JSON lines for programs. */
  output: "table" | "json";
  client: CacheClient;
}

/**
 * Parse a client command's arguments (its own options plus the connection's). Returns undefined
 * after printing `--help`.
 */
export function parseCommand(
  argv: string[],
  usage: string,
  spec: Record<string, OptionSpec>,
  env: NodeJS.ProcessEnv = process.env,
): { args: ParsedArgs; connection: Connection } | undefined {
  const all = { ...spec, ...CONNECTION_OPTIONS };
  const args = parseArgs(argv, all);
  if (args.values["help"] === true) {
    process.stdout.write(formatHelp(usage, all));
    return undefined;
  }
  return { args, connection: connect(args, env) };
}

function connect(args: ParsedArgs, env: NodeJS.ProcessEnv): Connection {
  const rawUrl = (stringValue(args, "url") ?? env["SHOTGRID_CACHE_URL"] ?? DEFAULT_URL).trim();
  let parsed: URL;
  try {
    parsed = new URL(rawUrl);
  } catch {
    throw new UsageError(`--url (SHOTGRID_CACHE_URL) is not a URL: "${rawUrl}"; expected e.g. ${DEFAULT_URL}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new UsageError(`--url (SHOTGRID_CACHE_URL) must be an http or https URL, got "${parsed.protocol}"`);
  }
  const url = parsed.origin + parsed.pathname.replace(/\/+$/, "");
  const token = stringValue(args, "token") ?? env["SHOTGRID_CACHE_TOKEN"];
  const headers: Record<string, string> = {};
  if (token !== undefined && token !== "") {
    // Never repeated in the message: it is a secret.
    if (!/^[\x21-\x7e]+$/.test(token)) throw new UsageError("--token (SHOTGRID_CACHE_TOKEN) must be one word of printable characters (no spaces)");
    headers["authorization"] = `Bearer ${token}`;
  }
  if (args.values["json"] === true && args.values["table"] === true) throw new UsageError("--json and --table: give one");
  const output = args.values["json"] === true ? "json" : args.values["table"] === true || process.stdout.isTTY ? "table" : "json";
  return { url, headers, output, client: createCacheClient(url) };
}

export function stringValue(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === "string" ? v : undefined;
}

export function listValue(args: ParsedArgs, name: string): string[] {
  const v = args.values[name];
  return Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
}

/** `a,b, c` → ["a", "b", "c"]; empty items dropped. */
export function commaList(raw: string | undefined): string[] {
  return (raw ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A failed call as one line a person can act on (the command prefixes "shotgrid-cache <command>: "). */
export class CallFailed extends Error {
  override readonly name = "CallFailed";
}

/** Why a call to the service failed, in one line. */
export function describeCallError(err: unknown, url: string): CallFailed {
  const down = connectionProblem(err, url);
  if (down) return down;
  const ce = ConnectError.from(err);
  if (ce.code === Code.DeadlineExceeded) return new CallFailed(`the service at ${url} did not answer in time`);
  if (ce.code === Code.Unimplemented && ce.rawMessage === "") {
    return new CallFailed(`${url} does not answer shotgrid-cache calls: is --url the cache service (not the ShotGrid site)?`);
  }
  const code = Code[ce.code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
  return new CallFailed(`${code}: ${ce.rawMessage || errorMessage(err)}`);
}

/** The service could not be reached or the connection broke (any client: Connect or fetch), or undefined. */
export function connectionProblem(err: unknown, url: string): CallFailed | undefined {
  const cause = causeCode(err);
  if (cause === "ECONNREFUSED") return new CallFailed(`cannot reach the service at ${url}: connection refused (is it running? see --url / SHOTGRID_CACHE_URL)`);
  if (cause === "ENOTFOUND" || cause === "EAI_AGAIN")
    return new CallFailed(`cannot reach the service at ${url}: unknown host (see --url / SHOTGRID_CACHE_URL)`);
  if (cause === "ECONNRESET" || cause === "EPIPE" || cause === "UND_ERR_SOCKET")
    return new CallFailed(`the connection to ${url} was closed while waiting for the answer`);
  if ((err as { name?: unknown } | null)?.name === "TimeoutError") return new CallFailed(`the service at ${url} did not answer in time`);
  return undefined;
}

/** The system error code (`ECONNREFUSED`, …) somewhere in the cause chain, if any. */
function causeCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
