/**
 * `shotgrid-cache get <Type> <id> [--fields a,b]`: one record from the cache service, shown as
 * name/value lines on a terminal or one JSON line (`{"type","id", ...fields}`) otherwise.
 */
import type { JsonObject } from "@bufbuild/protobuf";
import type { GetEntityResponse } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import { UsageError } from "./args.ts";
import { CallFailed, commaList, describeCallError, parseCommand, stringValue } from "./client-connection.ts";
import { type FlatRecord, freshnessLine, jsonLine, keyValues } from "./output.ts";

const USAGE = `usage: shotgrid-cache get <EntityType> <id> [--fields code,sg_status_list] [options]

Prints one record. Without --fields: the type's default fields (code, name, project, status, dates…).`;

const OPTIONS = {
  fields: { kind: "string", help: "fields to show, comma-separated (deep fields too: sg_sequence.Sequence.code)" },
} as const;

export async function runGet(argv: string[]): Promise<void> {
  const parsed = parseCommand(argv, USAGE, OPTIONS);
  if (!parsed) return;
  const { args, connection } = parsed;
  const [entityType, idText, ...extra] = args.positionals;
  if (!entityType || !idText) throw new UsageError("give an entity type and an id, e.g. get Shot 12");
  if (extra.length > 0) throw new UsageError(`unexpected "${extra.join(" ")}" after the id`);
  const id = Number(idText);
  if (!/^\d+$/.test(idText) || !Number.isSafeInteger(id) || id <= 0 || id > 2_147_483_647) {
    throw new UsageError(`the id must be a positive whole number, got "${idText}"`);
  }
  const fields = commaList(stringValue(args, "fields"));
  let answer: GetEntityResponse;
  try {
    answer = await connection.client.getEntity({ entityType, id, fields }, { headers: connection.headers, timeoutMs: 30_000 });
  } catch (err) {
    throw describeCallError(err, connection.url);
  }
  if (!answer.entity) throw new CallFailed(`${entityType} ${id} does not exist`);
  const record: FlatRecord = { type: answer.entity.type, id: answer.entity.id, ...(answer.entity.fields as JsonObject | undefined) };
  if (connection.output === "json") {
    process.stdout.write(jsonLine(record));
    return;
  }
  const names = fields.length > 0 ? fields : Object.keys(record).filter((k) => k !== "type" && k !== "id");
  process.stdout.write(keyValues([["type", record.type], ["id", record.id], ...names.map((n): [string, FlatRecord[string]] => [n, record[n]])]));
  process.stdout.write(freshnessLine(answer.freshness));
}
