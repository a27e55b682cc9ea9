/**
 * How the client commands print: JSON lines for programs (one record per line, the way
 * shotgun_api3 shows it: `{"type","id", ...fields}`), and for people a plain text table whose
 * cells are short (links as `Type:id name`, long text cut with "…").
 */
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";

/** A record as ShotGrid's own clients show it. */
export type FlatRecord = { type: string; id: number } & JsonObject;

const MAX_CELL = 40;

export function jsonLine(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

/** One cell: links as `Project:1 Northern Lights`, lists joined, null empty, long text cut. */
export function cell(value: JsonValue | undefined): string {
  const text = cellText(value).replace(/\s+/g, " ");
  return text.length > MAX_CELL ? `${text.slice(0, MAX_CELL - 1)}…` : text;
}

function cellText(value: JsonValue | undefined): string {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map(cellText).join(", ");
  if (typeof value === "object") {
    const { type, id, name } = value;
    if (typeof type === "string" && typeof id === "number") return typeof name === "string" && name !== "" ? `${type}:${id} ${name}` : `${type}:${id}`;
    return JSON.stringify(value);
  }
  return String(value);
}

/** A table with a header line and a rule; columns as wide as their widest cell. */
export function table(columns: string[], rows: (JsonValue | undefined)[][]): string {
  const cells = rows.map((r) => r.map(cell));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (parts: string[]) =>
    parts
      .map((p, i) => (i === parts.length - 1 ? p : p.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(columns), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].map((l) => `${l}\n`).join("");
}

/** Two columns, name and value: one record shown whole. `cut` false keeps long values whole. */
export function keyValues(pairs: [string, JsonValue | undefined][], cut = true): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k.padEnd(width)}  ${cut ? cell(v) : cellText(v)}`.trimEnd()}\n`).join("");
}

/** The freshness line under a table: where the answer came from and how old it is. */
export function freshnessLine(f: { source: string; ageMs: bigint; asOfEventId: bigint; stale: boolean } | undefined): string {
  if (!f) return "";
  const age = Number(f.ageMs);
  const ageText = age < 1000 ? `${age} ms` : age < 120_000 ? `${(age / 1000).toFixed(1)} s` : `${Math.round(age / 60_000)} min`;
  return `(from ${f.source}, ${ageText} old, as of event ${f.asOfEventId}${f.stale ? "; STALE: ShotGrid cannot be reached" : ""})\n`;
}

/** Columns for records: id, then the asked fields, or every field seen in order of appearance. */
export function columnsOf(records: FlatRecord[], fields: string[]): string[] {
  if (fields.length > 0) return ["id", ...fields.filter((f) => f !== "id")];
  const seen = new Set<string>(["id"]);
  for (const r of records) for (const k of Object.keys(r)) if (k !== "type") seen.add(k);
  return [...seen];
}
