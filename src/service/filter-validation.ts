/**
 * Checks ShotGrid filters at the edge (design invariant 7): structure, operators, whether an
 * operator fits the field's data type, and the shape of its values. Returns the filters in the
 * one canonical form the cache and Backend take; throws InvalidInputError naming what is wrong.
 */
import { FILTER_OPERATORS, type FilterCondition, type FilterGroup, type Filters } from "../shotgrid/types.ts";
import type { SchemaRegistry } from "./schema-registry.ts";
import { InvalidInputError, quote } from "./invalid-input-error.ts";

const OPERATORS = new Set<string>(FILTER_OPERATORS);

const EQUALITY = ["is", "is_not", "in", "not_in"];
const ORDERED = ["less_than", "greater_than", "between", "not_between"];
const TEXTUAL = ["contains", "not_contains", "starts_with", "ends_with"];
const RELATIVE_TIME = ["in_last", "not_in_last", "in_next", "not_in_next"];
const CALENDAR = ["in_calendar_day", "in_calendar_week", "in_calendar_month", "in_calendar_year"];
const LINK_NAME = ["name_contains", "name_not_contains", "name_starts_with", "name_ends_with", "name_is"];
const LINK_TYPE = ["type_is", "type_is_not"];

/** Operators each data type accepts. A data type not listed here is passed through unchecked. */
const OPERATORS_BY_TYPE: Record<string, readonly string[]> = {
  text: [...EQUALITY, ...TEXTUAL],
  uuid: [...EQUALITY],
  entity_type: [...EQUALITY],
  color: [...EQUALITY],
  number: [...EQUALITY, ...ORDERED],
  float: [...EQUALITY, ...ORDERED],
  percent: [...EQUALITY, ...ORDERED],
  currency: [...EQUALITY, ...ORDERED],
  duration: [...EQUALITY, ...ORDERED],
  timecode: [...EQUALITY, ...ORDERED],
  footage: [...EQUALITY, ...ORDERED],
  date: [...EQUALITY, ...ORDERED, ...RELATIVE_TIME, ...CALENDAR],
  date_time: [...EQUALITY, ...ORDERED, ...RELATIVE_TIME, ...CALENDAR],
  checkbox: ["is", "is_not"],
  status_list: [...EQUALITY],
  list: [...EQUALITY],
  entity: [...EQUALITY, ...LINK_TYPE, ...LINK_NAME],
  multi_entity: [...EQUALITY, ...LINK_TYPE, ...LINK_NAME],
  tag_list: ["is", "is_not", "name_contains", "name_not_contains", "name_id"],
  image: ["is", "is_not"],
  url: [],
  password: [],
  serializable: [],
};

const TIME_UNITS = new Set(["HOUR", "DAY", "WEEK", "MONTH", "YEAR"]);
/** Levels of groups one filter may have: the outermost group is level 1. */
export const MAX_FILTER_DEPTH = 16;

export interface FilterLimits {
  /** Conditions allowed in one request, counting nested ones. */
  maxConditions: number;
}

/**
 * Validate filters given as decoded JSON (`undefined`/null/empty list means no filter), loading
 * the schema they need first (no longer than `signal` allows). `field` names where the filters
 * came from in error messages, e.g. "filters".
 */
export function validateFilters(
  raw: unknown,
  entityType: string,
  schema: SchemaRegistry,
  limits: FilterLimits,
  field = "filters",
  signal?: AbortSignal,
): Promise<Filters> {
  return schema.settle(() => checkFilters(raw, entityType, schema, limits, field), signal);
}

/** The rule behind `validateFilters`, against the loaded schema (throws SchemaNotLoaded when it needs more). */
export function checkFilters(raw: unknown, entityType: string, schema: SchemaRegistry, limits: FilterLimits, field = "filters"): Filters {
  if (raw === undefined || raw === null) return [];
  const counter = { n: 0 };
  if (Array.isArray(raw)) {
    const out: FilterCondition[] = [];
    for (let i = 0; i < raw.length; i++) {
      const item = raw[i];
      if (!Array.isArray(item)) {
        throw new InvalidInputError(
          `${field}[${i}]`,
          'in the array form every item is a condition like ["code", "is", "SH010"]; use the logical form {"logical_operator", "conditions"} to nest groups',
        );
      }
      out.push(checkCondition(item, `${field}[${i}]`, entityType, schema, limits, counter));
    }
    return out;
  }
  if (typeof raw === "object") {
    return checkGroup(raw as Record<string, unknown>, field, entityType, schema, limits, counter, 1);
  }
  throw new InvalidInputError(field, `must be a list of conditions or a {"logical_operator", "conditions"} object, got ${describe(raw)}`);
}

/** `depth`: the group's level, 1 for the outermost. */
function checkGroup(
  raw: Record<string, unknown>,
  where: string,
  entityType: string,
  schema: SchemaRegistry,
  limits: FilterLimits,
  counter: { n: number },
  depth: number,
): FilterGroup {
  if (depth > MAX_FILTER_DEPTH) throw new InvalidInputError(where, `groups are nested more than ${MAX_FILTER_DEPTH} levels deep (at most ${MAX_FILTER_DEPTH})`);
  for (const key of Object.keys(raw)) {
    if (key !== "logical_operator" && key !== "conditions" && key !== "filter_operator") {
      throw new InvalidInputError(where, `unknown key ${quote(key)}; a group has "logical_operator" and "conditions"`);
    }
  }
  const op = raw.logical_operator ?? raw.filter_operator ?? "and";
  if (op !== "and" && op !== "or" && op !== "all" && op !== "any") {
    throw new InvalidInputError(`${where}.logical_operator`, `must be "and" or "or", got ${describe(op)}`);
  }
  const conditions = raw.conditions;
  if (!Array.isArray(conditions)) throw new InvalidInputError(`${where}.conditions`, `must be a list, got ${describe(conditions)}`);
  const out: FilterGroup = { logical_operator: op === "or" || op === "any" ? "or" : "and", conditions: [] };
  for (let i = 0; i < conditions.length; i++) {
    const item: unknown = conditions[i];
    const at = `${where}.conditions[${i}]`;
    if (Array.isArray(item)) out.conditions.push(checkCondition(item, at, entityType, schema, limits, counter));
    else if (item && typeof item === "object") {
      out.conditions.push(checkGroup(item as Record<string, unknown>, at, entityType, schema, limits, counter, depth + 1));
    } else throw new InvalidInputError(at, `must be a condition list or a nested group, got ${describe(item)}`);
  }
  return out;
}

function checkCondition(
  item: unknown[],
  where: string,
  entityType: string,
  schema: SchemaRegistry,
  limits: FilterLimits,
  counter: { n: number },
): FilterCondition {
  if (++counter.n > limits.maxConditions) {
    throw new InvalidInputError(where, `too many conditions (at most ${limits.maxConditions} per request)`);
  }
  const [path, operator, ...values] = item;
  if (typeof path !== "string" || path === "") throw new InvalidInputError(`${where}[0]`, `must be a field name, got ${describe(path)}`);
  if (typeof operator !== "string") throw new InvalidInputError(`${where}[1]`, `must be an operator name, got ${describe(operator)}`);
  if (!OPERATORS.has(operator)) throw new InvalidInputError(`${where}[1]`, `unknown operator ${quote(operator)}`);
  const resolution = schema.resolve(entityType, path);
  if (!resolution.ok) throw new InvalidInputError(`${where}[0]`, resolution.reason);
  const { field } = resolution.resolved;
  const allowed = OPERATORS_BY_TYPE[field.dataType];
  if (allowed && !allowed.includes(operator)) {
    const why =
      allowed.length === 0
        ? `${field.dataType} fields cannot be filtered`
        : `operator "${operator}" does not apply to ${field.dataType} field ${quote(path)} (it takes ${allowed.join(", ")})`;
    throw new InvalidInputError(`${where}[1]`, why);
  }
  const normalised = checkValues(operator, values, field.dataType, `${where}`, path);
  return [path, operator, ...normalised];
}

/** A check for operators that take exactly one value of a fixed kind, whatever the field's type. */
interface SingleValueRule {
  /** What the count error says is expected, e.g. "one id". */
  count: string;
  /** What the value error says the operator takes, e.g. "a whole-number id". */
  kind: string;
  accepts(v: unknown): boolean;
}

const wholeNumber = (v: unknown) => Number.isInteger(v);
const text = (v: unknown) => typeof v === "string";
const CALENDAR_OFFSET: SingleValueRule = {
  count: "one whole-number offset (0 this period, -1 the last, 1 the next)",
  kind: "a whole-number offset",
  accepts: wholeNumber,
};
const TYPE_NAME: SingleValueRule = { count: "one entity type name", kind: "an entity type name", accepts: (v) => typeof v === "string" || v === null };
const TEXT: SingleValueRule = { count: "one text value", kind: "text", accepts: text };
const SINGLE_VALUE: Readonly<Record<string, SingleValueRule>> = {
  in_calendar_day: CALENDAR_OFFSET,
  in_calendar_week: CALENDAR_OFFSET,
  in_calendar_month: CALENDAR_OFFSET,
  in_calendar_year: CALENDAR_OFFSET,
  type_is: TYPE_NAME,
  type_is_not: TYPE_NAME,
  name_id: { count: "one id", kind: "a whole-number id", accepts: wholeNumber },
  contains: TEXT,
  not_contains: TEXT,
  starts_with: TEXT,
  ends_with: TEXT,
  name_contains: TEXT,
  name_not_contains: TEXT,
  name_starts_with: TEXT,
  name_ends_with: TEXT,
  name_is: TEXT,
};

/** Check the value count and types an operator takes; returns the values as sent upstream. */
function checkValues(operator: string, values: unknown[], dataType: string, where: string, path: string): unknown[] {
  const needCount = (n: number, what: string) => {
    if (values.length !== n) throw new InvalidInputError(where, `"${operator}" on ${quote(path)} takes ${what}, got ${values.length} value(s)`);
  };
  const single = SINGLE_VALUE[operator];
  if (single) {
    needCount(1, single.count);
    if (!single.accepts(values[0])) throw new InvalidInputError(`${where}[2]`, `"${operator}" takes ${single.kind}, got ${describe(values[0])}`);
    return values;
  }
  switch (operator) {
    case "in":
    case "not_in": {
      // ShotGrid accepts both ["id","in",[1,2]] and the flattened ["id","in",1,2].
      const list = values.length === 1 && Array.isArray(values[0]) ? (values[0] as unknown[]) : values;
      list.forEach((v, i) => checkScalar(v, dataType, `${where}[2][${i}]`, path));
      return [list];
    }
    case "between":
    case "not_between": {
      const pair = values.length === 1 && Array.isArray(values[0]) ? (values[0] as unknown[]) : values;
      if (pair.length !== 2) throw new InvalidInputError(where, `"${operator}" on ${quote(path)} takes two values (low, high), got ${pair.length}`);
      pair.forEach((v, i) => checkScalar(v, dataType, `${where}[${2 + i}]`, path));
      return pair;
    }
    case "in_last":
    case "not_in_last":
    case "in_next":
    case "not_in_next": {
      const pair = values.length === 1 && Array.isArray(values[0]) ? (values[0] as unknown[]) : values;
      const [count, unit] = pair;
      if (pair.length !== 2 || !Number.isInteger(count) || typeof unit !== "string" || !TIME_UNITS.has(unit.toUpperCase())) {
        throw new InvalidInputError(where, `"${operator}" on ${quote(path)} takes a whole number and a unit (HOUR, DAY, WEEK, MONTH, YEAR), e.g. 1, "DAY"`);
      }
      return [count, unit.toUpperCase()];
    }
    default: {
      // is, is_not, less_than, greater_than
      needCount(1, "one value");
      if (dataType === "image" && values[0] !== null) throw new InvalidInputError(`${where}[2]`, `image field ${quote(path)} can only be compared with null`);
      checkScalar(values[0], dataType, `${where}[2]`, path);
      return values;
    }
  }
}

function checkScalar(v: unknown, dataType: string, where: string, path: string): void {
  if (v === null) return;
  const fail = (expected: string) => {
    throw new InvalidInputError(where, `${dataType} field ${quote(path)} takes ${expected}, got ${describe(v)}`);
  };
  switch (dataType) {
    case "number":
    case "duration":
    case "timecode":
    case "footage":
      if (!Number.isInteger(v)) fail("a whole number");
      return;
    case "float":
    case "percent":
    case "currency":
      if (typeof v !== "number" || !Number.isFinite(v)) fail("a number");
      return;
    case "checkbox":
      if (typeof v !== "boolean") fail("true or false");
      return;
    case "text":
    case "status_list":
    case "list":
    case "uuid":
    case "entity_type":
    case "color":
      if (typeof v !== "string") fail("text");
      return;
    case "date":
      if (typeof v !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(v)) fail('a date "YYYY-MM-DD"');
      return;
    case "date_time":
      if (typeof v !== "string" || Number.isNaN(Date.parse(v))) fail('an ISO 8601 time such as "2024-05-01T10:00:00Z"');
      return;
    case "entity":
    case "multi_entity": {
      const o = v as Record<string, unknown>;
      if (typeof v !== "object" || Array.isArray(v) || typeof o.type !== "string" || !Number.isInteger(o.id)) {
        fail('an entity {"type": "…", "id": n}');
      }
      return;
    }
    default:
      return;
  }
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "string") return quote(v);
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}
