/**
 * Shorthands for the local query engine's unit tests: a Shot query with the engine's defaults,
 * and what the engine made of it (the ids answered, or the code of its decline).
 */
import type { LocalQuery, LocalQueryEngine } from "../../src/local-query/index.ts";
import type { FilterGroup } from "../../src/shotgrid/types.ts";

/** A query over Shot, its conditions ANDed, asking `code`; `extra` overrides any part. */
export function query(conditions: FilterGroup["conditions"], extra: Partial<LocalQuery> = {}): LocalQuery {
  return {
    entityType: "Shot",
    filters: { logical_operator: "and", conditions },
    fields: ["code"],
    order: [],
    limit: 0,
    page: 1,
    includeArchivedProjects: true,
    retired: false,
    ...extra,
  };
}

/** The ids answered, or the code of the decline. */
export function ids(e: LocalQueryEngine, q: LocalQuery): number[] | string {
  const a = e.answer(q);
  return a.ok ? a.entities.map((x) => x.id) : a.code;
}
