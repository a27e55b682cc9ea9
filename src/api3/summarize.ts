/**
 * api3 `summarize` answered from the cache: the type and filters go through the service's own
 * validation, each summary and grouping field must resolve on the site's schema, and the answer
 * (`{summaries, groups}`, as ShotGrid's REST `_summarize` gives it) is cached under a canonical
 * key and dropped by the same events as queries of that type (ReadThroughCache.summarize).
 */
import { validateFilters } from "../service/filter-validation.ts";
import { validateEntityType } from "../service/request-validation.ts";
import type { SummaryField, SummaryGrouping } from "../shotgrid/types.ts";
import { api3Filters, argsObject, describe, invalid, optionalBool, typeName, type Args } from "./args.ts";
import type { Api3Context } from "./context.ts";
import type { Caller } from "../auth/caller.ts";
import { scopedFilters } from "./read.ts";
import { requireNoLinkedPaths } from "../auth/read-scope.ts";

async function checkField(ctx: Api3Context, type: string, v: unknown, param: string, signal: AbortSignal): Promise<string> {
  if (typeof v !== "string" || v === "") throw invalid("summarize", param, `must be a field name, got ${describe(v)}`);
  if (v === "id") return v;
  const r = await ctx.schema.resolveField(type, v, signal);
  if (!r.ok) throw invalid("summarize", param, r.reason);
  return v;
}

function entries(v: unknown, param: string, what: string, required: boolean): Args[] {
  if (v === undefined || v === null) {
    if (required) throw invalid("summarize", param, `must be a non-empty list of ${what}`);
    return [];
  }
  if (!Array.isArray(v) || (required && v.length === 0))
    throw invalid("summarize", param, `must be a ${required ? "non-empty " : ""}list of ${what}, got ${describe(v)}`);
  return v.map((e, i) => {
    if (typeof e !== "object" || e === null || Array.isArray(e))
      throw invalid("summarize", `${param}[${i}]`, `must be ${what.replace(/s$/, "")}, got ${describe(e)}`);
    return e as Args;
  });
}

export async function summarize(ctx: Api3Context, rawArgs: unknown, signal: AbortSignal, client?: Caller): Promise<unknown> {
  const m = "summarize";
  const args = argsObject(m, rawArgs);
  const type = typeName(m, args.type);
  await validateEntityType(type, ctx.schema, "type", signal);
  const valid = await validateFilters(api3Filters(m, args.filters), type, ctx.schema, { maxConditions: ctx.limits.maxConditions }, "filters", signal);
  const filters = await scopedFilters(ctx, client, type, valid);
  const summaryFields: SummaryField[] = [];
  for (const [i, s] of entries(args.summaries, "summaries", "{field, type} objects", true).entries()) {
    const field = await checkField(ctx, type, s.field, `summaries[${i}].field`, signal);
    if (client) requireNoLinkedPaths(client, [{ path: field, where: `summaries[${i}].field` }]);
    if (typeof s.type !== "string" || s.type === "")
      throw invalid(m, `summaries[${i}].type`, `must be a summary type such as "count", got ${describe(s.type)}`);
    summaryFields.push({ field, type: s.type });
  }
  const grouping: SummaryGrouping[] = [];
  for (const [i, g] of entries(args.grouping, "grouping", "{field, type, direction} objects", false).entries()) {
    const field = await checkField(ctx, type, g.field, `grouping[${i}].field`, signal);
    if (client) requireNoLinkedPaths(client, [{ path: field, where: `grouping[${i}].field` }]);
    if (typeof g.type !== "string" || g.type === "")
      throw invalid(m, `grouping[${i}].type`, `must be a grouping type such as "exact", got ${describe(g.type)}`);
    const direction = g.direction ?? "asc";
    if (direction !== "asc" && direction !== "desc") throw invalid(m, `grouping[${i}].direction`, `must be asc or desc, got ${describe(direction)}`);
    grouping.push({ field, type: g.type, direction });
  }
  const includeArchivedProjects = optionalBool(m, "include_archived_projects", args.include_archived_projects, true);
  const answer = await ctx.cache.summarize(type, { filters, summaryFields, grouping, includeArchivedProjects }, signal);
  return answer.value;
}
