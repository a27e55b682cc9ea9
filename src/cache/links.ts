/**
 * Entity links inside cached values: finding them (for the reverse index "linked entity → entries
 * that show its name") and rewriting a renamed entity's `name` in place of refetching.
 */
import type { EntityLink } from "../shotgrid/types.ts";

/** `Type:id`: how a link is named in tags and indexes. */
export function linkKey(type: string, id: number): string {
  return `${type}:${id}`;
}

function isLink(value: unknown): value is EntityLink {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  return typeof v.type === "string" && typeof v.id === "number" && "name" in v;
}

/**
 * Every link (an object with `type`, numeric `id` and a `name`) found in field values. A record's
 * own `{type, id}` at the top has no `name` key and its fields sit under `fields`, so it is not
 * mistaken for a link to itself.
 */
export function collectLinks(value: unknown, into: Set<string> = new Set()): Set<string> {
  if (value === null || typeof value !== "object") return into;
  if (Array.isArray(value)) {
    for (const item of value) collectLinks(item, into);
    return into;
  }
  if (isLink(value)) into.add(linkKey(value.type, value.id));
  for (const child of Object.values(value)) collectLinks(child, into);
  return into;
}

/** A copy of `value` with the name of every link to `type:id` replaced; unchanged parts are shared. */
export function renameLink(value: unknown, type: string, id: number, name: string | null): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((item) => {
      const next = renameLink(item, type, id, name);
      if (next !== item) changed = true;
      return next;
    });
    return changed ? out : value;
  }
  const obj = value as Record<string, unknown>;
  if (isLink(obj) && obj.type === type && obj.id === id && obj.name !== name) {
    return { ...obj, name };
  }
  let copy: Record<string, unknown> | undefined;
  for (const [k, child] of Object.entries(obj)) {
    const next = renameLink(child, type, id, name);
    if (next !== child) {
      copy ??= { ...obj };
      copy[k] = next;
    }
  }
  return copy ?? value;
}

/** Freeze a JSON-like value all the way down: cached values are shared by every caller. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as object)) deepFreeze(child);
  }
  return value;
}
