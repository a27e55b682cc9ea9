/**
 * `shotgrid-cache auth new-token`: make a token for a new client and print it once, with the
 * entry to add to the auth file. The entry goes through the same validation as the file, so
 * what this prints always loads.
 */
import { Document, isScalar, visit } from "yaml";
import { formatHelp, parseArgs, UsageError, type OptionSpec } from "../cli/args.ts";
import { AuthFileError, toFileEntry, validateClient, type EntryKey } from "./auth-file.ts";
import { SCOPES } from "./caller.ts";
import { hashToken, newToken } from "./token.ts";

const USAGE = `usage: shotgrid-cache auth new-token --name NAME --scopes read,watch [options]

Prints a new bearer token (once: it is not stored anywhere) and the auth file entry that holds
its SHA-256. Add the entry under "clients:" in the file given to serve --auth-file.`;

const OPTIONS: Record<string, OptionSpec> = {
  name: { kind: "string", help: "the client's name (shown in logs and errors)" },
  scopes: { kind: "string", help: `comma-separated: ${SCOPES.join(", ")}` },
  projects: { kind: "string", help: "comma-separated project ids it may read (default: all)" },
  types: { kind: "string", help: "comma-separated entity types it may read (default: all)" },
  "sudo-as-login": { kind: "string", help: "ShotGrid login its writes are made as (required with write)" },
  format: { kind: "string", help: "yaml (default) or json" },
  help: { kind: "boolean", help: "show this help" },
};

/** The option that sets each entry field, so a validation error names what the user typed. */
const FLAG_OF: Record<EntryKey, string> = {
  name: "--name",
  token_sha256: "--name",
  scopes: "--scopes",
  projects: "--projects",
  entity_types: "--types",
  sudo_as_login: "--sudo-as-login",
};

export async function runAuth(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    out.write(formatHelp(USAGE, OPTIONS));
    return;
  }
  if (sub !== "new-token") throw new UsageError(`unknown auth command "${sub}" (commands: new-token)`);
  const { values, positionals } = parseArgs(rest, OPTIONS);
  if (values["help"] === true) {
    out.write(formatHelp(USAGE, OPTIONS));
    return;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const format = (values["format"] as string | undefined) ?? "yaml";
  if (format !== "yaml" && format !== "json") throw new UsageError(`--format must be yaml or json, got "${format}"`);
  const name = values["name"] as string | undefined;
  if (name === undefined) throw new UsageError("--name is required: the client's name, e.g. --name farm");
  const scopes = values["scopes"] as string | undefined;
  if (scopes === undefined) throw new UsageError(`--scopes is required, e.g. --scopes read,watch (scopes: ${SCOPES.join(", ")})`);

  const token = newToken();
  const raw: Record<string, unknown> = { name, token_sha256: hashToken(token), scopes: splitList(scopes) };
  const projects = values["projects"] as string | undefined;
  if (projects !== undefined) raw["projects"] = splitList(projects).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  const types = values["types"] as string | undefined;
  if (types !== undefined) raw["entity_types"] = splitList(types);
  const login = values["sudo-as-login"] as string | undefined;
  if (login !== undefined) raw["sudo_as_login"] = login;

  let entry: ReturnType<typeof toFileEntry>;
  try {
    entry = toFileEntry(validateClient(raw, "new-token"));
  } catch (err) {
    if (!(err instanceof AuthFileError) || !err.field) throw err;
    // "new-token ("farm"): projects must hold…" → "--projects: projects must hold…"
    throw new UsageError(`${FLAG_OF[err.field]}: ${err.message.replace(/^new-token( \("[^"]*"\))?: /, "")}`);
  }
  const file = { clients: [entry] };
  const text = format === "json" ? `${JSON.stringify(file, null, 2)}\n` : toYaml(file);
  out.write(
    `New token for client "${entry.name}". It will not be shown again: store it now (e.g. in the client's secret store).\n\n` +
      `  ${token}\n\n` +
      `Its auth file entry (add the item under "clients:"; the file holds only the token's SHA-256):\n\n` +
      text,
  );
}

/** YAML with short lists on one line (`scopes: [ read, watch ]`), as people write the file. */
function toYaml(value: unknown): string {
  const doc = new Document(value);
  visit(doc, {
    Seq(_, node) {
      if (node.items.every((item) => isScalar(item))) node.flow = true;
    },
  });
  return doc.toString();
}

/** "read, watch" → ["read", "watch"]; empty items are kept so validation can reject them. */
function splitList(value: string): string[] {
  return value.split(",").map((s) => s.trim());
}
