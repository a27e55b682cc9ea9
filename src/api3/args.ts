/**
 * The shapes of api3 arguments (`params[1]`) checked at the edge, each failure naming the api3
 * parameter (`read.paging.entities_per_page`, `summaries[1].type`). Meaning (fields, operators,
 * values against the site's schema) is checked by the service's own validation afterwards.
 */
import { quote } from "../service/invalid-input-error.ts";
import { Api3Error } from "./faults.ts";

export type Args = Record<string, unknown>;

export function describe(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "string") return quote(v);
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

export function invalid(method: string, param: string, reason: string): Api3Error {
  return new Api3Error(`API ${method}() ${param}: ${reason}`);
}

/** `params[1]`, the method's argument object. */
export function argsObject(method: string, v: unknown): Args {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalid(method, "params[1]", `must be an object of arguments, got ${describe(v)}`);
  return v as Args;
}

export function typeName(method: string, v: unknown, param = "type"): string {
  if (typeof v !== "string" || v === "") throw invalid(method, param, `must be an entity type name such as "Shot", got ${describe(v)}`);
  return v;
}

export function recordId(method: string, v: unknown, param = "id"): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) throw invalid(method, param, `must be a record id (a whole number >= 1), got ${describe(v)}`);
  return v;
}

export function stringList(method: string, v: unknown, param: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((f) => typeof f !== "string")) throw invalid(method, param, `must be a list of field names, got ${describe(v)}`);
  return v as string[];
}

export function optionalBool(method: string, param: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") throw invalid(method, param, `must be true or false, got ${describe(v)}`);
  return v;
}

export function wholeNumber(method: string, param: string, v: unknown, fallback: number, max: number): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1 || v > max)
    throw invalid(method, param, `must be a whole number from 1 to ${max}, got ${describe(v)}`);
  return v;
}

/**
 * api3 filters → the filter form the service validates: `{logical_operator, conditions:
 * [{path, relation, values}, …nested groups]}` becomes `{logical_operator, conditions:
 * [[path, relation, ...values], …]}`. The array form (`[["code","is","x"]]`), which some
 * non-Python clients send, is taken as it is. A missing filter means every record.
 */
export function api3Filters(method: string, v: unknown, param = "filters", depth = 0): unknown {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v;
  if (typeof v !== "object") throw invalid(method, param, `must be {logical_operator, conditions}, got ${describe(v)}`);
  if (depth > 32) throw invalid(method, param, "groups are nested too deeply");
  const g = v as Args;
  const conditions = g.conditions;
  if (!Array.isArray(conditions)) throw invalid(method, `${param}.conditions`, `must be a list, got ${describe(conditions)}`);
  return {
    logical_operator: g.logical_operator ?? g.filter_operator ?? "and",
    conditions: conditions.map((c, i) => {
      const at = `${param}.conditions[${i}]`;
      if (Array.isArray(c)) return c;
      if (typeof c !== "object" || c === null) throw invalid(method, at, `must be {path, relation, values} or a nested group, got ${describe(c)}`);
      const o = c as Args;
      if (o.conditions !== undefined) return api3Filters(method, o, at, depth + 1);
      if (typeof o.path !== "string" || typeof o.relation !== "string") throw invalid(method, at, `must be {path, relation, values}, got ${describe(c)}`);
      const values = o.values === undefined ? [] : Array.isArray(o.values) ? o.values : [o.values];
      return [o.path, o.relation, ...values];
    }),
  };
}
