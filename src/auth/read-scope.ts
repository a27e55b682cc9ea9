/**
 * What a caller limited to some projects or entity types may read, as pure functions every read
 * path calls (GetEntity, Query, WatchChanges, the fast path, api3): one rule, so a client
 * limited to project 12 never receives an entity or change of another project, cache or not.
 *
 * The rule, for a caller with limits:
 * 1. With an entity type list, only those types.
 * 2. With a project list:
 *    - a Project entity only if its own id is listed;
 *    - an entity in a project only if that project is listed;
 *    - an entity in no project (HumanUser, Department, a Shot whose project is empty…) only if
 *      its type is explicitly in the caller's entity type list. Such records are shared by
 *      every project, and a client limited to projects was not meant to see the studio's
 *      people or other global data by default: the safe default is to deny, and listing the
 *      type is the explicit way to allow it.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { Change } from "../events/change.ts";
import type { Entity, FilterCondition, FilterGroup, Filters } from "../shotgrid/types.ts";
import { listOf, type Caller } from "./caller.ts";

/**
 * Why `caller` may not read an entity of `entityType` in `projectId`, or null when it may.
 * `projectId`: the project the entity belongs to (for a Project, its own id); undefined or 0
 * when it belongs to none. Use `entityProjectId` to get it from a record.
 */
export function readDenial(caller: Caller, entityType: string, projectId: number | undefined): string | null {
  if (caller.entityTypes && !caller.entityTypes.has(entityType)) {
    return `client "${caller.name}" may not read ${entityType} entities (its entity types: ${listOf(caller.entityTypes)})`;
  }
  const projects = caller.projectIds;
  if (!projects) return null;
  if (entityType === "Project") {
    return projectId !== undefined && projects.has(projectId)
      ? null
      : `client "${caller.name}" may not read Project ${projectId ?? "(unknown id)"} (its projects: ${listOf(projects)})`;
  }
  if (projectId === undefined || projectId === 0) {
    return caller.entityTypes?.has(entityType)
      ? null
      : `client "${caller.name}" is limited to projects ${listOf(projects)} and may not read ${entityType} entities outside any project (list ${entityType} in its entity_types to allow them)`;
  }
  return projects.has(projectId) ? null : `client "${caller.name}" may not read entities of project ${projectId} (its projects: ${listOf(projects)})`;
}

/** Whether `caller` may read an entity of `entityType` in `projectId` (see readDenial). */
export function mayReadEntity(caller: Caller, entityType: string, projectId: number | undefined): boolean {
  return readDenial(caller, entityType, projectId) === null;
}

/** Throw `permission_denied`, saying what is missing, unless `caller` may read the entity. */
export function requireReadEntity(caller: Caller, entityType: string, projectId: number | undefined): void {
  const denial = readDenial(caller, entityType, projectId);
  if (denial !== null) throw new ConnectError(denial, Code.PermissionDenied);
}

/**
 * The project an entity record belongs to, as readDenial takes it: a Project's own id, else the
 * id of its `project` link; undefined when it has none. A record read without its `project`
 * field counts as belonging to no project, which a project-limited caller is denied unless the
 * type is listed: so a read path must fetch `project` for such callers (see needsProjectField).
 */
export function entityProjectId(entity: Entity): number | undefined {
  if (entity.type === "Project") return entity.id;
  const link = entity.fields["project"];
  if (typeof link === "object" && link !== null && !Array.isArray(link) && typeof link["id"] === "number") return link["id"];
  return undefined;
}

/** Whether checking `caller`'s reads of `entityType` needs each record's `project` field. */
export function needsProjectField(caller: Caller, entityType: string): boolean {
  return caller.projectIds !== null && entityType !== "Project";
}

/** Whether `caller` may receive `change` on a WatchChanges stream: the same rule as reads. */
export function mayReceiveChange(caller: Caller, change: Pick<Change, "entityType" | "entityId" | "projectId">): boolean {
  return mayReadEntity(caller, change.entityType, change.entityType === "Project" ? change.entityId : change.projectId);
}

/**
 * The filter a Query of `entityType` by `caller` must add so it returns only what the caller may
 * read (readDenial, as a filter): null when nothing needs adding. Throws `permission_denied`
 * when the caller may read nothing of the type. `typeHasProjectField`: whether the type has a
 * `project` field on the site (from the schema); a type without one is project-less.
 */
export function readConstraint(caller: Caller, entityType: string, typeHasProjectField: boolean): FilterCondition | FilterGroup | null {
  if (caller.entityTypes && !caller.entityTypes.has(entityType)) {
    throw new ConnectError(readDenial(caller, entityType, undefined)!, Code.PermissionDenied);
  }
  const projects = caller.projectIds;
  if (!projects) return null;
  const ids = [...projects];
  if (entityType === "Project") return ["id", "in", ids];
  const listed = caller.entityTypes?.has(entityType) === true;
  if (!typeHasProjectField) {
    if (listed) return null;
    throw new ConnectError(readDenial(caller, entityType, undefined)!, Code.PermissionDenied);
  }
  const inProjects: FilterCondition = ["project", "in", ids.map((id) => ({ type: "Project", id }))];
  // Records of a listed type that belong to no project are allowed too (rule 2, last case).
  return listed ? { logical_operator: "or", conditions: [inProjects, ["project", "is", null]] } : inProjects;
}

/** `filters` with `caller`'s read constraint ANDed in (see readConstraint). */
export function scopeQueryFilters(caller: Caller, entityType: string, filters: Filters, typeHasProjectField: boolean): Filters {
  const constraint = readConstraint(caller, entityType, typeHasProjectField);
  if (constraint === null) return filters;
  // The array form holds conditions only; a group constraint needs the logical form.
  if (Array.isArray(filters) && Array.isArray(constraint)) return [...filters, constraint];
  return { logical_operator: "and", conditions: Array.isArray(filters) ? [...filters, constraint] : [filters, constraint] };
}

/**
 * Refuse dotted paths (`sg_sequence.Sequence.code`) to a caller with read limits. The limits are
 * checked on the record asked for; a path through a link reads another record (another type,
 * maybe another project) that no limit was checked against, in the answer's fields, in a filter
 * that can probe its values, or in an order. Fail closed: such clients ask for the linked record
 * itself, where its own limits apply.
 */
export function requireNoLinkedPaths(caller: Caller, paths: Array<{ path: string; where: string }>): void {
  if (caller.projectIds === null && caller.entityTypes === null) return;
  for (const { path, where } of paths) {
    if (path.includes(".")) {
      throw new ConnectError(
        `${where}: "${path.length > 100 ? `${path.slice(0, 100)}…` : path}" reads through a link; a client with read limits (projects or entity types) may not use dotted paths: ask for the linked record itself`,
        Code.PermissionDenied,
      );
    }
  }
}

/** Every path a query reads, with where it stands, for `requireNoLinkedPaths`. */
export function queryPaths(query: {
  filters: Filters;
  fields: readonly string[];
  order: ReadonlyArray<{ field: string }>;
}): Array<{ path: string; where: string }> {
  const out: Array<{ path: string; where: string }> = [];
  query.fields.forEach((path, i) => out.push({ path, where: `fields[${i}]` }));
  query.order.forEach((s, i) => out.push({ path: s.field, where: `order[${i}].field` }));
  const walk = (f: FilterCondition | FilterGroup, where: string): void => {
    if (Array.isArray(f)) out.push({ path: String(f[0]), where: `${where}[0]` });
    else f.conditions.forEach((c, i) => walk(c, `${where}.conditions[${i}]`));
  };
  const { filters } = query;
  if (Array.isArray(filters)) filters.forEach((c, i) => walk(c, `filters[${i}]`));
  else walk(filters, "filters");
  return out;
}

/**
 * Refuse `what` to a caller with read limits: for views that show every project's data at once
 * (the status page lists the last changes of all projects), which a limit cannot filter.
 */
export function requireNoReadLimits(caller: Caller, what: string): void {
  if (caller.projectIds === null && caller.entityTypes === null) return;
  throw new ConnectError(`${what} shows every project's data: a client with read limits (projects or entity types) may not see it`, Code.PermissionDenied);
}
