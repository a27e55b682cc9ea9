/**
 * Validation of write requests (Create, Update, Delete, Revive, Batch) against the site's schema
 * and the service's limits, before anything is sent (design invariant 7). What only ShotGrid can
 * judge (a value's format, a field it will not let this user edit) is left to it: its refusal
 * comes back as invalid_argument with its reason.
 */
import type { JsonObject } from "@bufbuild/protobuf";
import type { CreateRequest, DeleteRequest, UpdateRequest } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import type { MultiEntityUpdateMode, WriteFields } from "../shotgrid/types.ts";
import { InvalidInputError, quote } from "./invalid-input-error.ts";
import { checkEntityType, checkFields, type RequestLimits } from "./request-validation.ts";
import type { SchemaRegistry } from "./schema-registry.ts";

const FIELD_NAME = /^[A-Za-z0-9_]+$/;
const MODES: readonly string[] = ["set", "add", "remove"];

export interface ValidCreate {
  entityType: string;
  data: WriteFields;
  fields: string[];
}

export interface ValidUpdate extends ValidCreate {
  id: number;
  modes: Record<string, MultiEntityUpdateMode> | undefined;
}

export interface ValidDelete {
  entityType: string;
  id: number;
}

/** `at` prefixes every field name in errors ("operations[2].update."), so a batch names the operation. */
export function checkCreate(req: CreateRequest, schema: SchemaRegistry, limits: RequestLimits, at = ""): ValidCreate {
  checkEntityType(req.entityType, schema, `${at}entityType`);
  return {
    entityType: req.entityType,
    data: checkData(req.data, req.entityType, schema, limits, at),
    fields: checkReturnFields(req.returnFields, req.entityType, schema, limits, at),
  };
}

export function checkUpdate(req: UpdateRequest, schema: SchemaRegistry, limits: RequestLimits, at = ""): ValidUpdate {
  const target = checkTarget(req, schema, at);
  const data = checkData(req.data, req.entityType, schema, limits, at);
  if (Object.keys(data).length === 0) throw new InvalidInputError(`${at}data`, 'is required: the fields to change, e.g. {"sg_status_list": "ip"}');
  const fields = checkReturnFields(req.returnFields, req.entityType, schema, limits, at);
  let modes: Record<string, MultiEntityUpdateMode> | undefined;
  for (const [name, mode] of Object.entries(req.multiEntityUpdateModes)) {
    const where = `${at}multiEntityUpdateModes[${quote(name)}]`;
    if (!Object.hasOwn(data, name)) throw new InvalidInputError(where, `names a field that data does not set`);
    const type = schema.fieldsOfLoaded(req.entityType)[name]!.dataType;
    if (type !== "multi_entity") throw new InvalidInputError(where, `${quote(name)} is a ${type} field; update modes apply to multi_entity fields`);
    if (!MODES.includes(mode)) throw new InvalidInputError(where, `must be "set", "add" or "remove", got ${quote(mode)}`);
    (modes ??= {})[name] = mode as MultiEntityUpdateMode;
  }
  return { ...target, data, fields, modes };
}

/** Delete and Revive: a type and an id. */
export function checkTarget(req: Pick<DeleteRequest, "entityType" | "id">, schema: SchemaRegistry, at = ""): ValidDelete {
  checkEntityType(req.entityType, schema, `${at}entityType`);
  if (!Number.isInteger(req.id) || req.id <= 0) throw new InvalidInputError(`${at}id`, `must be a positive entity id, got ${req.id}`);
  return { entityType: req.entityType, id: req.id };
}

function checkData(data: JsonObject | undefined, entityType: string, schema: SchemaRegistry, limits: RequestLimits, at: string): WriteFields {
  const out: WriteFields = {};
  if (data === undefined) return out;
  const names = Object.keys(data);
  if (names.length > limits.maxFields) throw new InvalidInputError(`${at}data`, `too many fields: ${names.length} (at most ${limits.maxFields})`);
  const fields = schema.fieldsOfLoaded(entityType);
  for (const name of names) {
    const where = `${at}data[${quote(name)}]`;
    if (!FIELD_NAME.test(name)) throw new InvalidInputError(where, "is not a field name");
    if (name === "id" || name === "type") throw new InvalidInputError(where, "cannot be written: ShotGrid sets it");
    if (!Object.hasOwn(fields, name)) throw new InvalidInputError(where, `${entityType} has no field ${quote(name)}`);
    out[name] = data[name] as WriteFields[string];
  }
  return out;
}

function checkReturnFields(list: readonly string[], entityType: string, schema: SchemaRegistry, limits: RequestLimits, at: string): string[] {
  try {
    return checkFields(list, entityType, schema, limits);
  } catch (err) {
    // checkFields names its input "fields"; here it is "returnFields".
    if (err instanceof InvalidInputError && err.field.startsWith("fields"))
      throw new InvalidInputError(`${at}return${err.field.replace(/^f/, "F")}`, err.reason);
    throw err;
  }
}
