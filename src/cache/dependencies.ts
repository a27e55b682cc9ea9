/**
 * What a cached answer depends on, as invalidation tags, and which tags an event bumps. Both sides
 * are written here, next to each other, so each rule can be checked against its counterpart.
 *
 * Tags:
 * - `rec:T:id`          the record itself (every event on it)
 * - `ty:T`              every record of T (an event on T that does not say which record)
 * - `qt:T:all`          every query of type T (events with no project, or moving a record between projects)
 * - `qt:T:p:N`          queries of type T scoped to project N (events on T in project N)
 * - `qt:T:any`          queries of type T with no known project scope (events on T in any project)
 * - `dt:T`              answers reading T through a deep path (`sg_sequence.Sequence.code`): any event on T
 * - `dt:T.f`            a Change of field f on T (used for `Project.archived`)
 * - `dt:T:life`         New, Retirement or Revival of a T
 * - `ln:T:id`           answers showing a link to T:id (its display name changed, or it was retired)
 * - `nm:any`            answers filtering with name_* operators, and pages ordered by a link
 *                       field (any display name changed)
 */
import type { EventLogEntry, FilterCondition, FilterGroup } from "../shotgrid/types.ts";
import type { CanonicalQuery } from "./query-key.ts";
import { displayNameChange } from "./entity-fields.ts";
import { linkKey } from "./links.ts";

const NAME_OPERATORS = new Set(["name_contains", "name_not_contains", "name_starts_with", "name_ends_with", "name_is"]);
/** Operators relative to "now": their answers drift with time, with no event to say so. */
const TIME_RELATIVE_OPERATORS = new Set([
  "in_last",
  "not_in_last",
  "in_next",
  "not_in_next",
  "in_calendar_day",
  "in_calendar_week",
  "in_calendar_month",
  "in_calendar_year",
]);

function* conditions(group: FilterGroup): Generator<FilterCondition> {
  for (const c of group.conditions) {
    if (Array.isArray(c)) yield c;
    else yield* conditions(c);
  }
}

function projectIdOf(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isSafeInteger(value)) return value;
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    if (v.type === "Project" && typeof v.id === "number") return v.id;
  }
  return undefined;
}

/** Project ids named by one condition, or undefined when it does not pin the project. */
function scopeOfCondition([path, op, ...values]: FilterCondition): number[] | undefined {
  if (path !== "project" && path !== "project.Project.id") return undefined;
  const list = op === "is" ? values.slice(0, 1) : op === "in" ? (values.length === 1 && Array.isArray(values[0]) ? values[0] : values) : undefined;
  if (!list || list.length === 0) return undefined;
  const ids: number[] = [];
  for (const v of list) {
    const id = projectIdOf(v);
    if (id === undefined) return undefined;
    ids.push(id);
  }
  return ids;
}

/**
 * The projects a query's answer can come from: read from conditions that every returned record
 * must meet (top-level `and`, recursively through nested `and` groups). Undefined: any project.
 */
export function projectScope(filters: FilterGroup): number[] | undefined {
  if (filters.logical_operator !== "and") return undefined;
  for (const c of filters.conditions) {
    const scope = Array.isArray(c) ? scopeOfCondition(c) : projectScope(c);
    if (scope) return scope;
  }
  return undefined;
}

/** Entity types a dotted path reads through: `entity.Shot.sg_sequence.Sequence.code` → Shot, Sequence. */
export function typesOnPath(path: string): string[] {
  const parts = path.split(".");
  const types: string[] = [];
  for (let i = 1; i < parts.length; i += 2) types.push(parts[i]!);
  return types;
}

export interface QueryDependencies {
  /** Tags known before the fetch (links found in the answer are added after it). */
  tags: string[];
  /** Answers drift with the clock (time-relative operators): never a hit, kept only to serve stale. */
  volatile: boolean;
}

export function queryDependencies(q: CanonicalQuery): QueryDependencies {
  const T = q.entityType;
  const tags = new Set<string>([`qt:${T}:all`]);
  const scope = projectScope(q.filters);
  if (scope) for (const id of scope) tags.add(`qt:${T}:p:${id}`);
  else tags.add(`qt:${T}:any`);
  let volatile = false;
  const paths: string[] = [...q.fields, ...q.order.map((s) => s.field)];
  for (const c of conditions(q.filters)) {
    paths.push(c[0]);
    if (NAME_OPERATORS.has(c[1])) tags.add("nm:any");
    if (TIME_RELATIVE_OPERATORS.has(c[1])) volatile = true;
  }
  for (const path of paths) for (const type of typesOnPath(path)) tags.add(`dt:${type}`);
  if (!q.includeArchivedProjects) {
    // Archiving a project changes which records such a query may return.
    tags.add("dt:Project.archived");
    tags.add("dt:Project:life");
  }
  return { tags: [...tags], volatile };
}

/** Tags of a GetEntity projection entry (deep fields): the record and every type read through. */
export function projectionDependencies(entityType: string, id: number, fields: readonly string[]): string[] {
  const tags = new Set<string>([`rec:${entityType}:${id}`, `ty:${entityType}`]);
  for (const f of fields) for (const type of typesOnPath(f)) tags.add(`dt:${type}`);
  return [...tags];
}

export type EventKind = "New" | "Change" | "Retirement" | "Revival";

/** What one event log row means for the cache. */
export interface EventEffects {
  entityType: string;
  /** Undefined when the row does not say which record changed: then everything of the type goes. */
  entityId: number | undefined;
  kind: EventKind;
  attribute: string | null;
  tags: string[];
  /** The entity's display name changed: patch it in stored records (undefined name: drop them). */
  rename?: { link: string; name: string | null | undefined };
  /** Records that showed a link to the entity must go (it was retired). */
  dropLinking?: string;
  /** Other entities whose records may have changed too (the other side of a link that was set or cleared). */
  related: Array<{ type: string; id: number }>;
}

const EVENT_TYPE = /^Shotgun_([A-Za-z][A-Za-z0-9_]*?)_(New|Change|Retirement|Revival)$/;

function linksIn(value: unknown, into: Array<{ type: string; id: number }>): void {
  if (Array.isArray(value)) for (const v of value) linksIn(v, into);
  else if (value !== null && typeof value === "object") {
    const v = value as Record<string, unknown>;
    if (typeof v.type === "string" && typeof v.id === "number") into.push({ type: v.type, id: v.id });
  }
}

function queryScopeTags(type: string, projectId: number | null, movesProject: boolean): string[] {
  return projectId === null || movesProject ? [`qt:${type}:all`] : [`qt:${type}:p:${projectId}`, `qt:${type}:any`];
}

/**
 * A thumbnail upload logs two image Changes: the first (`meta.is_transient: true`) points at a
 * placeholder while the site processes the file, the final one follows with the real image. Only
 * the final one invalidates, so the record is refetched once, not twice; until it arrives the
 * cache shows the previous thumbnail (if processing fails, the max-age net refreshes it).
 */
export function isTransientThumbnail(kind: string, event: EventLogEntry): boolean {
  const meta = event.meta ?? {};
  if (kind !== "Change" || meta.is_transient !== true) return false;
  const attribute = event.attribute_name ?? meta.attribute_name;
  return attribute === "image" || attribute === "filmstrip_image" || meta.field_data_type === "image";
}

/** The effects of one event, or undefined for rows that are not entity changes (logins, …). */
export function eventEffects(event: EventLogEntry): EventEffects | undefined {
  const match = EVENT_TYPE.exec(event.event_type);
  if (!match) return undefined;
  const meta = event.meta ?? {};
  if (isTransientThumbnail(match[2]!, event)) return undefined;
  const entityType = typeof meta.entity_type === "string" ? meta.entity_type : match[1]!;
  const entityId = event.entity?.id ?? (typeof meta.entity_id === "number" ? meta.entity_id : undefined);
  const kind = match[2] as EventKind;
  if (entityId === undefined) {
    const tags = [`ty:${entityType}`, `qt:${entityType}:all`, `dt:${entityType}`, `dt:${entityType}:life`, "nm:any"];
    return { entityType, entityId, kind, attribute: event.attribute_name, tags, related: [] };
  }
  const attribute = event.attribute_name ?? (typeof meta.attribute_name === "string" ? meta.attribute_name : null);
  const projectId = event.project?.id ?? null;
  const movesProject = attribute === "project";
  const tags = new Set<string>([`rec:${entityType}:${entityId}`, `dt:${entityType}`]);
  for (const t of queryScopeTags(entityType, projectId, movesProject)) tags.add(t);
  if (kind === "Change") {
    if (attribute) tags.add(`dt:${entityType}.${attribute}`);
    else tags.add(`dt:${entityType}:life`);
  } else {
    tags.add(`dt:${entityType}:life`);
  }
  const effects: EventEffects = { entityType, entityId, kind, attribute, tags: [], related: [] };
  const link = linkKey(entityType, entityId);
  if (kind === "Change" && attribute) {
    const rename = displayNameChange(entityType, attribute, meta);
    if (rename) {
      effects.rename = { link, name: rename.name };
      tags.add(`ln:${link}`);
      tags.add("nm:any");
    }
    // Setting or clearing a link changes the other side's reverse field (Sequence.shots, …).
    const related: Array<{ type: string; id: number }> = [];
    for (const k of ["old_value", "new_value", "added", "removed"]) linksIn(meta[k], related);
    for (const r of related) {
      tags.add(`rec:${r.type}:${r.id}`);
      for (const t of queryScopeTags(r.type, projectId, false)) tags.add(t);
    }
    effects.related = related;
  }
  if (kind === "Retirement") {
    tags.add(`ln:${link}`);
    effects.dropLinking = link;
  }
  effects.tags = [...tags];
  return effects;
}

function showsLink(v: unknown): boolean {
  return (Array.isArray(v) ? v : [v]).some((x) => typeof x === "object" && x !== null && "type" in x && "id" in x);
}

/**
 * Whether a page of a Query (`limit` set) may gain or lose records when any linked record is
 * renamed, one not shown on the page included: it is ordered by a link field (ShotGrid sorts
 * links by name). Such an answer must drop on every rename (`nm:any`); without a limit the answer
 * holds every match and the links it shows name the renames that reorder it. `entities` must
 * carry the order's plain fields; a path's last field may be a link whether or not it is shown,
 * unless every entity shows it as a plain value. An empty page stays empty.
 */
export function pageDependsOnAnyName(q: Pick<CanonicalQuery, "order" | "limit">, entities: ReadonlyArray<{ fields: Record<string, unknown> }>): boolean {
  if (q.limit === 0) return false;
  return q.order.some((s) => s.field !== "id" && !entities.every((e) => Object.hasOwn(e.fields, s.field) && !showsLink(e.fields[s.field])));
}
