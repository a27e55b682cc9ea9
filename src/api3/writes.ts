/**
 * api3 writes (`create`, `update`, `delete`, `revive`, `batch`) made through the service's one
 * write path (service/write-through.ts: the Backend, then the cache invalidated by the event
 * rules before the answer), as the caller: with the caller's own credentials (and
 * `sudo_as_login`), so ShotGrid's permission rules apply and its event log names them. Each
 * answers what ShotGrid answers: the record with the written fields and `return_fields`, the
 * updated fields, `true`/`false`, a list for a batch.
 */
import { InvalidInputError } from "../service/invalid-input-error.ts";
import { validateEntityType, validateFields } from "../service/request-validation.ts";
import type { WriteThrough } from "../service/write-through.ts";
import { NotFoundError } from "../shotgrid/errors.ts";
import type { BatchRequest, Entity, FieldValue, MultiEntityUpdateMode, WriteFields } from "../shotgrid/types.ts";
import { argsObject, describe, invalid, recordId, stringList, typeName, type Args } from "./args.ts";
import type { Api3Caller } from "./caller-auth.ts";
import type { Api3Context } from "./context.ts";
import { API3_CODES, Api3Error } from "./faults.ts";
import { flatEntity } from "./read.ts";

const MODES = ["set", "add", "remove"];

interface WriteData {
  data: WriteFields;
  modes: Record<string, MultiEntityUpdateMode> | undefined;
}

/** `fields: [{field_name, value, multi_entity_update_mode?}]` (+ a `multi_entity_update_modes` map) → data and modes. */
function fieldValues(method: string, fields: unknown, modeMap: unknown, param = "fields"): WriteData {
  if (!Array.isArray(fields)) throw invalid(method, param, `must be a list of {field_name, value}, got ${describe(fields)}`);
  if (modeMap !== undefined && modeMap !== null && (typeof modeMap !== "object" || Array.isArray(modeMap))) {
    throw invalid(method, "multi_entity_update_modes", `must be an object of field name to set, add or remove, got ${describe(modeMap)}`);
  }
  const map = (modeMap ?? {}) as Record<string, unknown>;
  const data: WriteFields = {};
  const modes: Record<string, MultiEntityUpdateMode> = {};
  fields.forEach((f, i) => {
    const o = (typeof f === "object" && f !== null && !Array.isArray(f) ? f : null) as Args | null;
    if (!o || typeof o.field_name !== "string" || !("value" in o)) throw invalid(method, `${param}[${i}]`, `must be {field_name, value}, got ${describe(f)}`);
    const name = o.field_name;
    if (Object.hasOwn(data, name)) throw invalid(method, `${param}[${i}].field_name`, `${describe(name)} is given twice`);
    data[name] = o.value as FieldValue;
    const mode = o.multi_entity_update_mode ?? map[name];
    if (mode === undefined || mode === null) return;
    if (typeof mode !== "string" || !MODES.includes(mode)) {
      throw invalid(method, `${param}[${i}].multi_entity_update_mode`, `must be set, add or remove, got ${describe(mode)}`);
    }
    modes[name] = mode as MultiEntityUpdateMode;
  });
  for (const name of Object.keys(map)) {
    if (!Object.hasOwn(data, name)) throw invalid(method, "multi_entity_update_modes", `names ${describe(name)}, which is not among the fields written`);
  }
  return { data, modes: Object.keys(modes).length > 0 ? modes : undefined };
}

function writer(ctx: Api3Context): WriteThrough {
  if (!ctx.writes) throw new Api3Error("this service does not write to ShotGrid", API3_CODES.internal);
  return ctx.writes;
}

/** The type and field names of a write, checked against the site's schema like a read's. */
async function checkWrite(ctx: Api3Context, method: string, type: string, names: string[], signal: AbortSignal, param = "fields"): Promise<void> {
  await validateEntityType(type, ctx.schema, "type", signal);
  try {
    await validateFields(names, type, ctx.schema, { ...ctx.limits, maxFields: Math.max(ctx.limits.maxFields, names.length) }, signal);
  } catch (err) {
    // The list checked is the written fields' names: `fields[2]` is the third field written.
    if (err instanceof InvalidInputError) throw invalid(method, err.field.replace(/^fields/, param), err.reason);
    throw err;
  }
}

function acting(caller: Api3Caller, signal: AbortSignal) {
  return { credentials: caller.credentials, asLogin: caller.asLogin, signal };
}

/** A created or updated record as api3 shows it: type, id and the fields asked. */
function answerOf(e: Entity, fields: string[]): Record<string, unknown> {
  return flatEntity(e, [...new Set(fields)]);
}

export async function create(ctx: Api3Context, caller: Api3Caller, rawArgs: unknown, signal: AbortSignal, m = "create"): Promise<unknown> {
  const args = argsObject(m, rawArgs);
  const type = typeName(m, args.type);
  const { data } = fieldValues(m, args.fields ?? [], undefined);
  const wanted = stringList(m, args.return_fields, "return_fields");
  await checkWrite(ctx, m, type, Object.keys(data), signal);
  const fields = [...Object.keys(data), ...wanted.filter((f) => f !== "id" && f !== "type")];
  const record = await writer(ctx).create(type, data, { ...acting(caller, signal), fields: fields.length > 0 ? fields : ["id"] });
  return answerOf(record, fields);
}

export async function update(ctx: Api3Context, caller: Api3Caller, rawArgs: unknown, signal: AbortSignal, m = "update"): Promise<unknown> {
  const args = argsObject(m, rawArgs);
  const type = typeName(m, args.type);
  const id = recordId(m, args.id);
  const { data, modes } = fieldValues(m, args.fields, args.multi_entity_update_modes);
  await checkWrite(ctx, m, type, Object.keys(data), signal);
  const fields = Object.keys(data);
  const record = await writer(ctx).update(type, id, data, { ...acting(caller, signal), fields, multiEntityUpdateModes: modes });
  return answerOf(record, fields);
}

export async function retire(ctx: Api3Context, caller: Api3Caller, rawArgs: unknown, signal: AbortSignal, m = "delete"): Promise<boolean> {
  const args = argsObject(m, rawArgs);
  const type = typeName(m, args.type);
  const id = recordId(m, args.id);
  await validateEntityType(type, ctx.schema, "type", signal);
  try {
    await writer(ctx).delete(type, id, acting(caller, signal));
    return true;
  } catch (err) {
    // ShotGrid's api3 answers false for a record already retired (REST says 404 for both): a
    // fault only when the record never existed.
    if (err instanceof NotFoundError && (await isRetired(ctx, type, id, signal))) return false;
    throw err;
  }
}

async function isRetired(ctx: Api3Context, type: string, id: number, signal: AbortSignal): Promise<boolean> {
  const found = await ctx.backend.search(type, { filters: [["id", "is", id]], fields: ["id"], returnOnly: "retired", limit: 1, signal });
  return found.length > 0;
}

export async function revive(ctx: Api3Context, caller: Api3Caller, rawArgs: unknown, signal: AbortSignal): Promise<boolean> {
  const m = "revive";
  const args = argsObject(m, rawArgs);
  const type = typeName(m, args.type);
  const id = recordId(m, args.id);
  await validateEntityType(type, ctx.schema, "type", signal);
  return writer(ctx).revive(type, id, acting(caller, signal));
}

/** Every request in one ShotGrid transaction: all made, or none. */
export async function batch(ctx: Api3Context, caller: Api3Caller, rawArgs: unknown, signal: AbortSignal): Promise<unknown> {
  const m = "batch";
  if (!Array.isArray(rawArgs) || rawArgs.length === 0) throw invalid(m, "params[1]", `must be a non-empty list of requests, got ${describe(rawArgs)}`);
  const requests: BatchRequest[] = [];
  const answerFields: string[][] = [];
  for (const [i, raw] of rawArgs.entries()) {
    const at = `requests[${i}]`;
    const r = argsObject(`${m}`, raw);
    const type = typeName(m, r.type, `${at}.type`);
    const kind = r.request_type;
    if (kind === "create") {
      const { data } = fieldValues(m, r.fields ?? [], undefined, `${at}.fields`);
      await checkWrite(ctx, m, type, Object.keys(data), signal, `${at}.fields`);
      const fields = [...Object.keys(data), ...stringList(m, r.return_fields, `${at}.return_fields`).filter((f) => f !== "id" && f !== "type")];
      requests.push({ requestType: "create", entityType: type, data, fields: fields.length > 0 ? fields : ["id"] });
      answerFields.push(fields);
    } else if (kind === "update") {
      const id = recordId(m, r.id, `${at}.id`);
      const { data, modes } = fieldValues(m, r.fields, r.multi_entity_update_modes, `${at}.fields`);
      await checkWrite(ctx, m, type, Object.keys(data), signal, `${at}.fields`);
      requests.push({ requestType: "update", entityType: type, id, data, fields: Object.keys(data), multiEntityUpdateModes: modes });
      answerFields.push(Object.keys(data));
    } else if (kind === "delete") {
      await validateEntityType(type, ctx.schema, `${at}.type`, signal);
      requests.push({ requestType: "delete", entityType: type, id: recordId(m, r.id, `${at}.id`) });
      answerFields.push([]);
    } else {
      throw invalid(m, `${at}.request_type`, `must be create, update or delete, got ${describe(kind)}`);
    }
  }
  const results = await writer(ctx).batch(requests, acting(caller, signal));
  return results.map((r, i) => (typeof r === "object" ? answerOf(r, answerFields[i]!) : r));
}
