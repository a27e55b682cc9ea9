/**
 * api3 (`POST /api3/json`) parameters turned into the simulator's own query and write inputs,
 * so the api3 methods run the same search, write and summary code as the REST endpoints. Every
 * check names the api3 parameter at fault (`read.paging.entities_per_page`, `fields[2].field_name`).
 */
import type { SchemaIndex } from "./schema.ts";
import { badRequest } from "./sim-error.ts";
import { short } from "./values.ts";

/** The largest page `read` serves; `info` tells the client (its `api_max_entities_per_page`). */
export const API3_MAX_PAGE = 500;

export type PagingInfo = "without_counts" | "counts" | "none";

export interface Api3Read {
  type: string;
  filters: unknown;
  /** `[{field, direction}]`, the form query.ts sorts by. */
  sort: Array<{ field: string; direction: "asc" | "desc" }>;
  returnOnly: "active" | "retired";
  includeArchived: boolean;
  returnFields: string[];
  pageSize: number;
  page: number;
  pagingInfo: PagingInfo;
}

function invalid(method: string, param: string, reason: string) {
  return badRequest(`API ${method}() ${param} ${reason}`, { [param]: [reason] });
}

/** The method's argument object (`params[1]`). */
export function argsObject(method: string, args: unknown): Record<string, unknown> {
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    throw invalid(method, "params[1]", `must be an object of arguments, got ${short(args)}`);
  }
  return args as Record<string, unknown>;
}

export function entityType(schema: SchemaIndex, method: string, v: unknown, param = "type"): string {
  if (typeof v !== "string" || !schema.hasType(v)) throw invalid(method, param, `${short(v)} is not a valid entity type`);
  return v;
}

export function recordId(method: string, v: unknown, param = "id"): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw invalid(method, param, `must be a record id (a whole number >= 1), got ${short(v)}`);
  return v;
}

/** `return_fields`: a list of field names (dotted paths allowed); absent means only type and id. */
export function returnFields(method: string, v: unknown, param = "return_fields"): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((f) => typeof f !== "string")) throw invalid(method, param, `must be a list of field names, got ${short(v)}`);
  return v as string[];
}

const UPDATE_MODES = ["set", "add", "remove"];

/**
 * `fields: [{field_name, value, multi_entity_update_mode?}]` into the store's `{field: value}`,
 * a mode becoming the store's `{multi_entity_update_mode, value}`. `modes` is the
 * `multi_entity_update_modes` map some callers send beside the list.
 */
export function fieldValues(method: string, fields: unknown, modes?: unknown, param = "fields"): Record<string, unknown> {
  if (!Array.isArray(fields)) throw invalid(method, param, `must be a list of {field_name, value}, got ${short(fields)}`);
  if (modes !== undefined && modes !== null && (typeof modes !== "object" || Array.isArray(modes))) {
    throw invalid(method, "multi_entity_update_modes", `must be an object of field name to set, add or remove, got ${short(modes)}`);
  }
  const modeMap = (modes ?? {}) as Record<string, unknown>;
  const data: Record<string, unknown> = {};
  fields.forEach((f, i) => {
    const o = (typeof f === "object" && f !== null && !Array.isArray(f) ? f : null) as Record<string, unknown> | null;
    if (!o || typeof o["field_name"] !== "string" || !("value" in o)) throw invalid(method, `${param}[${i}]`, `must be {field_name, value}, got ${short(f)}`);
    const name = o["field_name"];
    if (name in data) throw invalid(method, `${param}[${i}].field_name`, `${short(name)} is given twice`);
    const mode = o["multi_entity_update_mode"] ?? modeMap[name];
    if (mode === undefined) {
      data[name] = o["value"];
      return;
    }
    if (typeof mode !== "string" || !UPDATE_MODES.includes(mode))
      throw invalid(method, `${param}[${i}].multi_entity_update_mode`, `must be set, add or remove, got ${short(mode)}`);
    data[name] = { multi_entity_update_mode: mode, value: o["value"] };
  });
  for (const name of Object.keys(modeMap)) {
    if (!(name in data)) throw invalid(method, "multi_entity_update_modes", `names ${short(name)}, which is not among the fields written`);
  }
  return data;
}

/** `sorts: [{field_name, direction}]` (`column` is the older spelling of field_name). */
export function sorts(method: string, v: unknown): Array<{ field: string; direction: "asc" | "desc" }> {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalid(method, "sorts", `must be a list of {field_name, direction}, got ${short(v)}`);
  return v.map((s, i) => {
    const o = (typeof s === "object" && s !== null ? s : {}) as Record<string, unknown>;
    const field = o["field_name"] ?? o["column"];
    if (typeof field !== "string" || !field) throw invalid(method, `sorts[${i}].field_name`, `must be a field name, got ${short(field)}`);
    const direction = o["direction"] ?? "asc";
    if (direction !== "asc" && direction !== "desc") throw invalid(method, `sorts[${i}].direction`, `must be asc or desc, got ${short(direction)}`);
    return { field, direction };
  });
}

export function optionalBool(method: string, param: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") throw invalid(method, param, `must be true or false, got ${short(v)}`);
  return v;
}

/** Filters as the client sends them: `{logical_operator, conditions}` (or a plain list of conditions). */
export function filters(method: string, v: unknown): unknown {
  if (v === undefined || v === null) return [];
  if (typeof v !== "object") throw invalid(method, "filters", `must be {logical_operator, conditions}, got ${short(v)}`);
  return v;
}

function pageNumber(method: string, param: string, v: unknown, fallback: number, max = Infinity): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > max) {
    throw invalid(method, param, `must be a whole number from 1${max === Infinity ? "" : ` to ${max}`}, got ${short(v)}`);
  }
  return v;
}

export function readArgs(schema: SchemaIndex, args: Record<string, unknown>): Api3Read {
  const m = "read";
  const type = entityType(schema, m, args["type"]);
  const returnOnly = args["return_only"] ?? "active";
  if (returnOnly !== "active" && returnOnly !== "retired") throw invalid(m, "return_only", `must be active or retired, got ${short(returnOnly)}`);
  const paging = args["paging"] ?? {};
  if (typeof paging !== "object" || paging === null || Array.isArray(paging))
    throw invalid(m, "paging", `must be {entities_per_page, current_page}, got ${short(paging)}`);
  const p = paging as Record<string, unknown>;
  const withoutCounts = optionalBool(m, "return_paging_info_without_counts", args["return_paging_info_without_counts"], false);
  const counts = optionalBool(m, "return_paging_info", args["return_paging_info"], false);
  if (args["additional_filter_presets"] !== undefined && args["additional_filter_presets"] !== null) {
    throw invalid(m, "additional_filter_presets", "are not supported by the simulated site");
  }
  return {
    type,
    filters: filters(m, args["filters"]),
    sort: sorts(m, args["sorts"]),
    returnOnly,
    includeArchived: optionalBool(m, "include_archived_projects", args["include_archived_projects"], true),
    returnFields: returnFields(m, args["return_fields"]),
    pageSize: pageNumber(m, "paging.entities_per_page", p["entities_per_page"], API3_MAX_PAGE, API3_MAX_PAGE),
    page: pageNumber(m, "paging.current_page", p["current_page"], 1),
    pagingInfo: withoutCounts ? "without_counts" : counts ? "counts" : "none",
  };
}
