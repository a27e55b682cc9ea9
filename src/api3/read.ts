/**
 * api3 `read` answered from the cache: the arguments become the service's Query request, go
 * through the same validation against the site's schema and the same `cache.query` as a Connect
 * Query (one source for both), and the entities come back flat, as ShotGrid sends them:
 * `{type, id, <each asked field>}`. Paging is ShotGrid's: `paging.entities_per_page` records of
 * page `paging.current_page`, with the paging info the client asked for —
 * `return_paging_info_without_counts` (clients of sites >= 7.4, what `info` tells them) gets
 * `{has_next_page}`, `return_paging_info` gets `{entity_count, …}` (the count is a cached
 * summary). `additional_filter_presets` cannot be answered from the cache: such a read is relayed.
 */
import { create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { QueryRequestSchema } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import type { EntityQuery } from "../cache/types.ts";
import { validateQuery } from "../service/request-validation.ts";
import type { Entity, Filters } from "../shotgrid/types.ts";
import type { Caller } from "../auth/caller.ts";
import { queryPaths, requireNoLinkedPaths, scopeQueryFilters } from "../auth/read-scope.ts";
import { api3Filters, argsObject, describe, invalid, optionalBool, stringList, typeName, wholeNumber } from "./args.ts";
import type { Api3Context } from "./context.ts";

/** One api3 entity: type, id and the asked fields (null when the record has no value). */
export function flatEntity(e: Entity, fields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { type: e.type, id: e.id };
  for (const f of fields) if (f !== "id" && f !== "type") out[f] = Object.hasOwn(e.fields, f) ? e.fields[f] : null;
  return out;
}

function sorts(method: string, v: unknown): Array<{ field: string; direction: string }> {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalid(method, "sorts", `must be a list of {field_name, direction}, got ${describe(v)}`);
  return v.map((s, i) => {
    const o = (typeof s === "object" && s !== null ? s : {}) as Record<string, unknown>;
    // `column` is the older spelling the client still accepts.
    const field = o.field_name ?? o.column;
    if (typeof field !== "string") throw invalid(method, `sorts[${i}].field_name`, `must be a field name, got ${describe(field)}`);
    const direction = o.direction ?? "asc";
    if (typeof direction !== "string") throw invalid(method, `sorts[${i}].direction`, `must be asc or desc, got ${describe(direction)}`);
    return { field, direction };
  });
}

/**
 * `filters` limited to what the auth file lets `client` read (auth/read-scope.ts, the rule every
 * read path applies); unchanged without a client or limits.
 */
export async function scopedFilters(ctx: Api3Context, client: Caller | undefined, type: string, filters: Filters): Promise<Filters> {
  if (!client || (client.projectIds === null && client.entityTypes === null)) return filters;
  requireNoLinkedPaths(client, queryPaths({ filters, fields: [], order: [] }));
  const fields = await ctx.schema.fieldsOf(type);
  return scopeQueryFilters(client, type, filters, Object.hasOwn(fields, "project"));
}

export async function read(ctx: Api3Context, rawArgs: unknown, signal: AbortSignal, client?: Caller): Promise<unknown> {
  const m = "read";
  const args = argsObject(m, rawArgs);
  const type = typeName(m, args.type);
  const returnOnly = args.return_only ?? "active";
  if (returnOnly !== "active" && returnOnly !== "retired") throw invalid(m, "return_only", `must be active or retired, got ${describe(returnOnly)}`);
  const paging = args.paging ?? {};
  if (typeof paging !== "object" || paging === null || Array.isArray(paging)) {
    throw invalid(m, "paging", `must be {entities_per_page, current_page}, got ${describe(paging)}`);
  }
  const p = paging as Record<string, unknown>;
  const perPage = wholeNumber(m, "paging.entities_per_page", p.entities_per_page, ctx.maxEntitiesPerPage, ctx.maxEntitiesPerPage);
  // The page must stay within the Query request's numbers (int32) once turned into a record offset.
  const page = wholeNumber(m, "paging.current_page", p.current_page, 1, Math.floor(2_000_000_000 / perPage));
  const withoutCounts = optionalBool(m, "return_paging_info_without_counts", args.return_paging_info_without_counts, false);
  const counts = optionalBool(m, "return_paging_info", args.return_paging_info, false);
  const returnFields = stringList(m, args.return_fields, "return_fields");
  const filters = api3Filters(m, args.filters) as JsonValue;
  const request = create(QueryRequestSchema, {
    entityType: type,
    fields: returnFields,
    filters: fromJson(ValueSchema, filters),
    order: sorts(m, args.sorts),
    limit: perPage,
    page,
    // Absent means true on ShotGrid: the client sends it only when false.
    includeArchivedProjects: optionalBool(m, "include_archived_projects", args.include_archived_projects, true),
    retired: returnOnly === "retired",
  });
  const query = await validateQuery(request, ctx.schema, ctx.limits, signal);
  // No field but id and type asked: ask for id alone, not the type's every field.
  if (query.fields.length === 0) query.fields = ["id"];
  if (client) requireNoLinkedPaths(client, queryPaths(query));
  query.filters = await scopedFilters(ctx, client, type, query.filters);
  const answer = await ctx.cache.query(query, signal);
  const entities = answer.value.map((e) => flatEntity(e, query.fields));
  const out: Record<string, unknown> = { entities };
  if (withoutCounts) out.paging_info = { has_next_page: entities.length === perPage && (await hasMore(ctx, query, perPage * page, signal)) };
  else if (counts) {
    const entityCount = await count(ctx, query, signal);
    out.paging_info = { entity_count: entityCount, current_page: page, entities_per_page: perPage, page_count: Math.ceil(entityCount / perPage) };
  }
  return out;
}

/** Whether a record follows the first `seen`: the one record at that offset, itself a cached query. */
async function hasMore(ctx: Api3Context, query: EntityQuery, seen: number, signal: AbortSignal): Promise<boolean> {
  const next = await ctx.cache.query({ ...query, limit: 1, page: seen + 1 }, signal);
  return next.value.length > 0;
}

/**
 * How many records the query matches in all: a cached record_count summary of the same filters;
 * summaries count active records only, so retired ones are counted from cached pages of ids.
 */
async function count(ctx: Api3Context, query: EntityQuery, signal: AbortSignal): Promise<number> {
  if (query.retired) {
    const size = ctx.limits.maxPageSize;
    let n = 0;
    for (let page = 1; ; page++) {
      const got = (await ctx.cache.query({ ...query, fields: ["id"], order: [], limit: size, page }, signal)).value.length;
      n += got;
      if (got < size) return n;
    }
  }
  const answer = await ctx.cache.summarize(
    query.entityType,
    { filters: query.filters, summaryFields: [{ field: "id", type: "record_count" }], includeArchivedProjects: query.includeArchivedProjects },
    signal,
  );
  const n = answer.value.summaries.id;
  return typeof n === "number" ? n : 0;
}
