/**
 * `shotgrid-cache find <Type> [--filter "…"]… [--fields a,b] [--order -code] [--limit N]`:
 * records matching ShotGrid filters, written in the `--filter` mini-language (filter-syntax.ts) or
 * as ShotGrid JSON (`--filters-json`). A table on a terminal, JSON lines otherwise.
 */
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { QueryResponse } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import type { ShotgridFilters } from "../client.ts";
import { parseIntOption, UsageError } from "./args.ts";
import { CallFailed, commaList, describeCallError, listValue, parseCommand, stringValue } from "./client-connection.ts";
import { type Condition, parseFilter } from "./filter-syntax.ts";
import { columnsOf, type FlatRecord, freshnessLine, jsonLine, table } from "./output.ts";

const USAGE = `usage: shotgrid-cache find <EntityType> [--filter "<field> <operator> <value>[,<value>…]"]… [options]

Prints the records matching every --filter, e.g.
  shotgrid-cache find Shot --filter "sg_status_list in ip,rdy" --filter "project.Project.name is Northern Lights" --fields code --order -code --limit 20
Values: null, true, false, numbers and Type:id links unquoted; anything else is text; "double quotes" keep
commas, spaces and number-like text ("010") as text. See README, "The --filter language".`;

const OPTIONS = {
  filter: { kind: "list", help: 'a condition "<field> <operator> <value>[,<value>…]"; repeat for more (all must match)' },
  "filters-json": { kind: "string", help: 'ShotGrid filters as JSON, shotgun_api3 shapes included: {"filter_operator":"any","filters":[…]}' },
  fields: { kind: "string", help: "fields to show, comma-separated (default: the type's default fields)" },
  order: { kind: "string", help: "sort fields, comma-separated; a leading - sorts descending: -code,id" },
  limit: { kind: "string", help: "most records to print (default: the server's page size)" },
  page: { kind: "string", help: "1-based page of --limit records" },
  retired: { kind: "boolean", help: "retired records instead of active ones" },
  archived: { kind: "boolean", help: "include records of archived projects (default true; --archived=false leaves them out)" },
} as const;

export async function runFind(argv: string[]): Promise<void> {
  const parsed = parseCommand(argv, USAGE, OPTIONS);
  if (!parsed) return;
  const { args, connection } = parsed;
  const [entityType, ...extra] = args.positionals;
  if (!entityType) throw new UsageError('give an entity type, e.g. find Shot --filter "sg_status_list is ip"');
  if (extra.length > 0) throw new UsageError(`unexpected "${extra.join(" ")}": quote a --filter that holds spaces`);
  const texts = listValue(args, "filter");
  const conditions = texts.map(parseFilter);
  const filters = combine(jsonFilters(stringValue(args, "filters-json")), conditions);
  const fields = commaList(stringValue(args, "fields"));
  const order = commaList(stringValue(args, "order")).map((f) =>
    f.startsWith("-") ? { field: f.slice(1), direction: "desc" } : { field: f, direction: "asc" },
  );
  if (order.some((o) => o.field === "")) throw new UsageError('--order: a "-" needs a field name after it, e.g. -code');
  const limit = parseIntOption("--limit", stringValue(args, "limit"), 0, 0, 2_147_483_647);
  const page = parseIntOption("--page", stringValue(args, "page"), 0, 0, 2_147_483_647);
  if (page > 0 && limit === 0) throw new UsageError("--page needs --limit (the page size)");
  let answer: QueryResponse;
  try {
    answer = await connection.client.query(
      {
        entityType,
        filters,
        fields,
        order,
        limit,
        page,
        retired: args.values["retired"] === true,
        includeArchivedProjects: args.values["archived"] !== false,
      },
      { headers: connection.headers, timeoutMs: 30_000 },
    );
  } catch (err) {
    throw namedFilterError(err, texts, args.values["filters-json"] !== undefined, connection.url);
  }
  const records: FlatRecord[] = answer.entities.map((e) => ({ type: e.type, id: e.id, ...(e.fields as JsonObject | undefined) }));
  if (connection.output === "json") {
    process.stdout.write(records.map(jsonLine).join(""));
    return;
  }
  const columns = columnsOf(records, fields);
  process.stdout.write(
    table(
      columns,
      records.map((r) => columns.map((c) => r[c])),
    ),
  );
  process.stdout.write(`${records.length} ${entityType} record${records.length === 1 ? "" : "s"} ${freshnessLine(answer.freshness)}`);
}

function jsonFilters(raw: string | undefined): ShotgridFilters | undefined {
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as ShotgridFilters;
  } catch (err) {
    throw new UsageError(`--filters-json is not JSON: ${(err as Error).message}`);
  }
}

/** --filters-json first (its own shape), then every --filter: all must match. */
function combine(json: ShotgridFilters | undefined, conditions: Condition[]): ShotgridFilters | undefined {
  if (json === undefined) return conditions.length > 0 ? conditions : undefined;
  if (conditions.length === 0) return json;
  const head = Array.isArray(json) ? (json as readonly JsonValue[]) : [json as JsonValue];
  return [...head, ...conditions] as unknown as ShotgridFilters;
}

/**
 * The service names a bad condition by its place (`filters[1][2]: text field "code" takes text…`):
 * say which --filter that was, as the user wrote it. With --filters-json the places are its own.
 */
function namedFilterError(err: unknown, texts: string[], withJson: boolean, url: string): Error {
  const ce = ConnectError.from(err);
  const m = /^filters\[(\d+)\]\S*: ([\s\S]*)$/.exec(ce.rawMessage);
  const text = m && !withJson ? texts[Number(m[1])] : undefined;
  if (ce.code !== Code.InvalidArgument || !m || text === undefined) return describeCallError(err, url);
  const hint = /takes text, got number/.test(m[2]!) ? ' (quote a number-like value to make it text: "010")' : "";
  return new CallFailed(`--filter "${text}": ${m[2]}${hint}`);
}
