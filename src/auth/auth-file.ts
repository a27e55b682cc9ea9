/**
 * The auth file (`--auth-file`, YAML or JSON): one entry per client with the SHA-256 of its
 * token, its scopes, optional read limits and the login its writes are made as. Validated
 * strictly and all at once at startup: a typo ("project:", "wrte") must stop the server with
 * the entry and field named, never quietly widen or narrow what a client may do.
 *
 * No message here ever contains a token hash (or, if one was pasted by mistake, a token): entries
 * are named by their `name` or their position instead.
 */
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { parseDocument } from "yaml";
import { SCOPES, type Scope } from "./caller.ts";
import { TOKEN_PREFIX } from "./token.ts";

/** One client, validated and normalised (hash in lowercase hex). */
export interface AuthClient {
  name: string;
  /** SHA-256 of the client's token, 64 lowercase hex digits. */
  tokenSha256: string;
  scopes: Scope[];
  /** Project ids it may read; null: every project. */
  projects: number[] | null;
  /** Entity types it may read; null: every type. */
  entityTypes: string[] | null;
  /** ShotGrid login its writes are made as; required with the `write` scope. */
  sudoAsLogin: string | null;
}

export interface AuthFile {
  clients: AuthClient[];
}

/** The keys of one entry as the file spells them. */
export const ENTRY_KEYS = ["name", "token_sha256", "scopes", "projects", "entity_types", "sudo_as_login"] as const;
export type EntryKey = (typeof ENTRY_KEYS)[number];

/** An entry as written in the file (and printed by `auth new-token`). */
export interface AuthFileEntry {
  name: string;
  token_sha256: string;
  scopes: Scope[];
  projects?: number[];
  entity_types?: string[];
  sudo_as_login?: string;
}

/** A bad auth file. `field` is the entry key at fault, when one is. */
export class AuthFileError extends Error {
  override readonly name = "AuthFileError";
  constructor(
    message: string,
    readonly field?: EntryKey,
  ) {
    super(message);
  }
}

/** Read, parse and validate an auth file. The format follows the extension, else the content. */
export async function loadAuthFile(path: string): Promise<AuthFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
    throw new AuthFileError(`auth file ${path}: cannot read it (${code})`);
  }
  const ext = extname(path).toLowerCase();
  const format = ext === ".json" ? "json" : ext === ".yaml" || ext === ".yml" ? "yaml" : "auto";
  return parseAuthFile(text, format, `auth file ${path}`);
}

/** Parse and validate an auth file's text. `source` starts every error message. */
export function parseAuthFile(text: string, format: "yaml" | "json" | "auto" = "auto", source = "auth file"): AuthFile {
  const json = format === "json" || (format === "auto" && /^\s*[{[]/.test(text));
  return validateAuthFile(json ? parseJson(text, source) : parseYaml(text, source), source);
}

// Parser messages can quote the text around the fault, and that text may be a hash: report the
// position and the parser's reason only.
function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const at = /position (\d+)/.exec(err instanceof Error ? err.message : "");
    throw new AuthFileError(`${source}: not valid JSON${at ? ` (${lineAndColumn(text, Number(at[1]))})` : ""}`);
  }
}

function parseYaml(text: string, source: string): unknown {
  // prettyErrors off: its messages quote the offending line.
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) throw new AuthFileError(`${source}: not valid YAML (${lineAndColumn(text, err.pos[0])}): ${err.message}`);
  return doc.toJS({ maxAliasCount: 100 });
}

function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split("\n");
  return `line ${before.length}, column ${before[before.length - 1]!.length + 1}`;
}

/** Validate a decoded auth file. */
export function validateAuthFile(raw: unknown, source = "auth file"): AuthFile {
  if (!isRecord(raw))
    throw new AuthFileError(`${source}: must be a mapping with a "clients" list, e.g. clients: [{name: farm, token_sha256: …, scopes: [read]}]`);
  for (const key of Object.keys(raw)) {
    if (key !== "clients") throw new AuthFileError(`${source}: unknown top-level key ${describe(key)} (the file holds only "clients")`);
  }
  const list = raw["clients"];
  if (!Array.isArray(list)) throw new AuthFileError(`${source}: "clients" must be a list of client entries`);
  if (list.length === 0)
    throw new AuthFileError(
      `${source}: "clients" is empty, so no one could call; add a client (shotgrid-cache auth new-token) or drop --auth-file for open mode`,
    );
  const clients = list.map((entry, i) => validateClient(entry, `${source}: clients[${i}]`));
  const byName = new Map<string, number>();
  const byHash = new Map<string, number>();
  clients.forEach((c, i) => {
    const sameName = byName.get(c.name);
    if (sameName !== undefined)
      throw new AuthFileError(`${source}: clients[${i}] and clients[${sameName}] are both named "${c.name}"; names must be unique`, "name");
    const sameHash = byHash.get(c.tokenSha256);
    if (sameHash !== undefined) {
      throw new AuthFileError(
        `${source}: clients[${i}] ("${c.name}") has the same token_sha256 as clients[${sameHash}] ("${clients[sameHash]!.name}"); give each client its own token`,
        "token_sha256",
      );
    }
    byName.set(c.name, i);
    byHash.set(c.tokenSha256, i);
  });
  return { clients };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const HASH = /^[0-9a-fA-F]{64}$/;
const ENTITY_TYPE = /^[A-Za-z][A-Za-z0-9_]*$/;
// A ShotGrid login: any printable text without spaces (logins are often e-mail addresses).
const LOGIN = /^[^\s\p{Cc}]{1,255}$/u;
const MAX_PROJECT_ID = 2 ** 31 - 1; // project ids travel as int32 in the API

/**
 * Validate one entry. `where` prefixes messages (e.g. `auth file a.yaml: clients[2]`); once the
 * name is known it is added, so every later error says which client.
 */
export function validateClient(raw: unknown, where: string): AuthClient {
  if (!isRecord(raw)) throw new AuthFileError(`${where}: must be a mapping with name, token_sha256 and scopes`);
  for (const key of Object.keys(raw)) {
    if (!(ENTRY_KEYS as readonly string[]).includes(key))
      throw new AuthFileError(`${where}: unknown field ${describe(key)} (fields: ${ENTRY_KEYS.join(", ")})`);
  }
  const name = raw["name"];
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new AuthFileError(
      `${where}: name must be 1 to 64 letters, digits or . _ @ - (starting with a letter or digit), got ${describe(raw["name"])}`,
      "name",
    );
  }
  const at = `${where} ("${name}")`;
  const fail = (field: EntryKey, reason: string): never => {
    throw new AuthFileError(`${at}: ${field} ${reason}`, field);
  };

  const hash = raw["token_sha256"];
  if (typeof hash !== "string")
    fail("token_sha256", `is required: the SHA-256 of the client's token, 64 hex digits (the token itself never goes in this file)`);
  const h = hash as string;
  if (h.startsWith(TOKEN_PREFIX))
    fail("token_sha256", `holds a token, not its hash: store only the token's SHA-256, and treat that token as leaked (make a new one)`);
  if (!HASH.test(h))
    fail("token_sha256", `must be 64 hex digits (a SHA-256), got ${h.length} characters${/^[0-9a-fA-F]*$/.test(h) ? "" : " including non-hex ones"}`);

  const scopes = list(raw["scopes"], "scopes", fail);
  if (scopes === undefined) fail("scopes", `is required: a list of ${SCOPES.join(", ")}`);
  for (const s of scopes!)
    if (typeof s !== "string" || !(SCOPES as readonly string[]).includes(s)) fail("scopes", `has unknown scope ${describe(s)} (scopes: ${SCOPES.join(", ")})`);
  noDuplicates(scopes!, "scopes", fail);

  const projects = list(raw["projects"], "projects", fail);
  for (const p of projects ?? []) {
    if (typeof p !== "number" || !Number.isInteger(p) || p < 1 || p > MAX_PROJECT_ID)
      fail("projects", `must hold project ids (whole numbers from 1), got ${describe(p)}`);
  }
  noDuplicates(projects ?? [], "projects", fail);

  const types = list(raw["entity_types"], "entity_types", fail);
  for (const t of types ?? [])
    if (typeof t !== "string" || !ENTITY_TYPE.test(t)) fail("entity_types", `must hold entity type names like Shot or CustomEntity01, got ${describe(t)}`);
  noDuplicates(types ?? [], "entity_types", fail);

  const login = raw["sudo_as_login"];
  if (login !== undefined && (typeof login !== "string" || !LOGIN.test(login)))
    fail("sudo_as_login", `must be a ShotGrid login (text without spaces), got ${describe(login)}`);
  // ShotGrid attributes every change to someone; without a login the writes would be the
  // cache's own script user's, and no one could tell which client made them.
  if (scopes!.includes("write") && login === undefined)
    fail("sudo_as_login", `is required with the "write" scope: the ShotGrid login this client's writes are made as`);

  return {
    name,
    tokenSha256: h.toLowerCase(),
    scopes: scopes as Scope[],
    projects: (projects as number[] | undefined) ?? null,
    entityTypes: (types as string[] | undefined) ?? null,
    sudoAsLogin: (login as string | undefined) ?? null,
  };
}

/** The entry as the file spells it (for `auth new-token` to print). */
export function toFileEntry(client: AuthClient): AuthFileEntry {
  return {
    name: client.name,
    token_sha256: client.tokenSha256,
    scopes: client.scopes,
    ...(client.projects ? { projects: client.projects } : {}),
    ...(client.entityTypes ? { entity_types: client.entityTypes } : {}),
    ...(client.sudoAsLogin !== null ? { sudo_as_login: client.sudoAsLogin } : {}),
  };
}

/** An optional list field: undefined when absent; an empty or null list is an error (ambiguous). */
function list(value: unknown, field: EntryKey, fail: (field: EntryKey, reason: string) => never): unknown[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) return fail(field, `must be a list, got ${describe(value)}`);
  if (value.length === 0) return fail(field, `is an empty list; ${field === "scopes" ? "give at least one scope" : "leave the field out to allow all"}`);
  return value;
}

function noDuplicates(values: unknown[], field: EntryKey, fail: (field: EntryKey, reason: string) => never): void {
  const seen = new Set<unknown>();
  for (const v of values) {
    if (seen.has(v)) fail(field, `lists ${describe(v)} twice`);
    seen.add(v);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * A short rendering of a value for messages. A value that looks like a token or a hash (pasted
 * into the wrong field or used as a key) is described, not shown.
 */
function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string" && (v.startsWith(TOKEN_PREFIX) || /^[0-9a-fA-F]{16,}$/.test(v)))
    return `a ${v.length}-character ${v.startsWith(TOKEN_PREFIX) ? "token" : "hex string"} (not shown)`;
  const s = typeof v === "string" ? JSON.stringify(v) : String(v);
  return s.length > 40 ? `${s.slice(0, 37)}…` : s;
}
