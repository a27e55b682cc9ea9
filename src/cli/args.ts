/**
 * A small, strict command-line parser: `--name value`, `--name=value` and boolean `--flag`.
 * Unknown options are errors, so a typo never silently falls back to a default.
 */

export interface OptionSpec {
  /**
   * "string" takes a value (the last one given wins); "list" takes a value and may be repeated,
   * collecting every value in order; "boolean" is a flag (`--flag`, `--flag=false`).
   */
  kind: "string" | "list" | "boolean";
  /** Shown by --help. */
  help: string;
}

export type ParsedArgs = { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] };

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export function parseArgs(argv: string[], spec: Record<string, OptionSpec>): ParsedArgs {
  const values: Record<string, string | boolean | string[] | undefined> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const option = spec[name];
    if (!option) throw new UsageError(`unknown option --${name} (see --help)`);
    if (option.kind === "boolean") {
      const raw = eq === -1 ? "true" : arg.slice(eq + 1);
      if (raw !== "true" && raw !== "false") throw new UsageError(`--${name} takes true or false, got "${raw}"`);
      values[name] = raw === "true";
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
    }
    if (option.kind === "list") {
      const list = values[name];
      values[name] = Array.isArray(list) ? [...list, value] : [value];
    } else values[name] = value;
  }
  return { values, positionals };
}

/** Parse a whole number within bounds, naming the option in the error. */
export function parseIntOption(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === "") return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw new UsageError(`${name} must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Parse a number (fractions allowed) within bounds, naming the option in the error. */
export function parseNumberOption(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new UsageError(`${name} must be a number, got "${raw}"`);
  if (n < min || n > max) throw new UsageError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Render an option table for --help. */
export function formatHelp(usage: string, spec: Record<string, OptionSpec>): string {
  const rows = Object.entries(spec).map(([name, o]) => `  --${name}${o.kind === "string" ? " VALUE" : o.kind === "list" ? " VALUE…" : ""}`.padEnd(34) + o.help);
  return `${usage}\n\nOptions:\n${rows.join("\n")}\n`;
}
