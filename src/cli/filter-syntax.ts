/**
 * The `--filter` mini-language of `shotgrid-cache find`: one ShotGrid condition per flag,
 * `<path> <operator> <value>[,<value>…]`, e.g. `sg_status_list in ip,rdy` or
 * `project.Project.name is Northern Lights`. The command line cannot ask the site's schema
 * before sending, so values are typed by how they are written (README "The --filter language"):
 *
 * - `null`, `true`, `false` and numbers (`12`, `-3`, `2.5`; not `010`, which is text) unquoted
 *   are those JSON values;
 * - `Type:id` unquoted (a capitalised type name, a colon, digits) is a link `{type, id}`;
 * - anything else is text, and a double-quoted value is always text: `"010"`, `"a, b"`,
 *   `"  padded "` (inside quotes `\"` is a quote and `\\` a backslash).
 *
 * A value typed wrong for its field (`code is 010` on a text field) is refused by the service
 * naming the field and what it takes; the command adds which `--filter` it was.
 */
import type { JsonValue } from "@bufbuild/protobuf";
import { FILTER_OPERATORS } from "../shotgrid/types.ts";
import { UsageError } from "./args.ts";

/** Operators that take a list of values (one or more). */
const LIST_OPERATORS = new Set(["in", "not_in"]);
/** Operators that take exactly two values (low, high). */
const PAIR_OPERATORS = new Set(["between", "not_between"]);
/** Operators that take a count and a unit: `in_last 7 DAY` (or `7,DAY`). */
const PERIOD_OPERATORS = new Set(["in_last", "not_in_last", "in_next", "not_in_next"]);

/** One `--filter` as a ShotGrid condition, e.g. `["sg_status_list", "in", ["ip", "rdy"]]`. */
export type Condition = [string, string, ...JsonValue[]];

/** Parse one `--filter`; a UsageError names the filter and the reason. */
export function parseFilter(text: string): Condition {
  const fail = (reason: string): never => {
    throw new UsageError(`--filter "${text}": ${reason}`);
  };
  const m = /^\s*(\S+)\s+(\S+)(?:\s+([\s\S]*))?$/.exec(text);
  if (!m) return fail(`expected "<field> <operator> <value>", e.g. "sg_status_list in ip,rdy"`);
  const [, path, operator, rest = ""] = m as unknown as [string, string, string, string | undefined];
  if (!(FILTER_OPERATORS as readonly string[]).includes(operator)) {
    return fail(`unknown operator "${operator}"; one of ${FILTER_OPERATORS.join(", ")}`);
  }
  let values: JsonValue[];
  try {
    values = PERIOD_OPERATORS.has(operator) && !rest.includes(",") && !rest.includes('"') ? splitWords(rest) : splitValues(rest);
  } catch (err) {
    return fail((err as Error).message);
  }
  if (values.length === 0) return fail(`"${operator}" needs a value (write null for an empty field)`);
  if (LIST_OPERATORS.has(operator)) return [path, operator, values];
  if (PAIR_OPERATORS.has(operator)) {
    if (values.length !== 2) return fail(`"${operator}" takes two values separated by a comma (low,high), got ${values.length}`);
    return [path, operator, values[0]!, values[1]!];
  }
  if (PERIOD_OPERATORS.has(operator)) {
    if (values.length !== 2) return fail(`"${operator}" takes a count and a unit, e.g. "${path} ${operator} 7 DAY", got ${values.length} values`);
    return [path, operator, values[0]!, values[1]!];
  }
  if (values.length !== 1) return fail(`"${operator}" takes one value, got ${values.length}; quote a value that holds a comma: "a, b"`);
  return [path, operator, values[0]!];
}

/** `7 DAY` → [7, "DAY"]: words separated by spaces, each typed like any value. */
function splitWords(rest: string): JsonValue[] {
  return rest
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => typed(w));
}

/** Comma-separated values; spaces around each are dropped; double quotes keep text as is. */
function splitValues(rest: string): JsonValue[] {
  const out: JsonValue[] = [];
  if (rest.trim() === "") return out;
  let i = 0;
  for (;;) {
    while (rest[i] === " " || rest[i] === "\t") i++;
    if (rest[i] === '"') {
      let text = "";
      i++;
      for (;;) {
        const c = rest[i];
        if (c === undefined) throw new Error(`a quoted value is not closed (a " is missing)`);
        if (c === '"') break;
        if (c === "\\") {
          const next = rest[i + 1];
          if (next !== '"' && next !== "\\") throw new Error(`inside quotes only \\" and \\\\ are escapes, got \\${next ?? ""}`);
          text += next;
          i += 2;
          continue;
        }
        text += c;
        i++;
      }
      i++;
      while (rest[i] === " " || rest[i] === "\t") i++;
      if (rest[i] !== undefined && rest[i] !== ",") throw new Error(`unexpected text after the quoted value "${text}"; separate values with commas`);
      out.push(text);
    } else {
      const end = rest.indexOf(",", i);
      const raw = (end === -1 ? rest.slice(i) : rest.slice(i, end)).trim();
      if (raw === "") throw new Error('an empty value between commas (quote it to mean empty text: "")');
      if (raw.includes('"')) throw new Error(`a quote inside the value ${raw}; quote the whole value and write \\" for a quote`);
      out.push(typed(raw));
      i = end === -1 ? rest.length : end;
    }
    if (i >= rest.length) return out;
    i++; // the comma
    if (rest.slice(i).trim() === "") throw new Error("a value is missing after the last comma");
  }
}

/** An unquoted value: null, true, false, a number, a `Type:id` link, or text. */
function typed(raw: string): JsonValue {
  if (raw === "null") return null;
  if (raw === "true") return true;
  if (raw === "false") return false;
  // No leading zeros: `010` is a code, not ten.
  if (/^-?(0|[1-9]\d*)(\.\d+)?$/.test(raw)) return Number(raw);
  const link = /^([A-Z][A-Za-z0-9_]*):(\d+)$/.exec(raw);
  if (link) return { type: link[1]!, id: Number(link[2]) };
  return raw;
}
