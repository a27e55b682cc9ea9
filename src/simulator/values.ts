/**
 * Field values inside the simulator, and their wire forms. Records keep links as `{type, id}`
 * (names are looked up when answering, so a rename shows everywhere at once, as on a real site),
 * date_time values as epoch milliseconds, and everything else as the JSON the client sent.
 */
import type { FieldInfo } from "./schema.ts";
import { badRequest } from "./sim-error.ts";

/** A link as stored: no name, the name is resolved at read time. */
export interface Link {
  type: string;
  id: number;
}

export function isLink(v: unknown): v is Link {
  return typeof v === "object" && v !== null && typeof (v as Link).type === "string" && typeof (v as Link).id === "number";
}

/** Read answers: `2021-06-16T08:55:13Z`. */
export function formatReadDateTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A create's 201 answer: `2021-06-16 08:55:17 UTC`. */
export function formatCreateDateTime(ms: number): string {
  return formatReadDateTime(ms).replace("T", " ").replace("Z", " UTC");
}

/** Parse the date-time spellings clients send; NaN when it is not one. */
export function parseDateTime(v: unknown): number {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v !== "string") return NaN;
  const s = v
    .trim()
    .replace(/ UTC$/, "Z")
    .replace(/^(\d{4}-\d{2}-\d{2}) /, "$1T");
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(s)) return NaN;
  // A date-time without zone is UTC here: the site's clients send UTC.
  const withZone = /T/.test(s) && !/(Z|[+-]\d{2}:?\d{2})$/.test(s) ? `${s}Z` : s;
  return Date.parse(withZone);
}

const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

export function isDateString(v: unknown): v is string {
  return typeof v === "string" && DATE_RE.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`));
}

/** Parse a link the client sent (`{"type":"Shot","id":12}`; extra keys such as name are ignored). */
export function parseLink(v: unknown, where: string): Link {
  if (typeof v === "object" && v !== null) {
    const type = (v as Record<string, unknown>)["type"];
    const rawId = (v as Record<string, unknown>)["id"];
    const id = typeof rawId === "string" && /^\d+$/.test(rawId) ? Number(rawId) : rawId;
    if (typeof type === "string" && typeof id === "number" && Number.isInteger(id)) return { type, id };
  }
  throw badRequest(`${where} expects an entity link like {"type": "Shot", "id": 1}, got ${short(v)}.`, { [where]: ["is not a valid entity link"] });
}

/** A short, safe rendering of a client value for error messages. */
export function short(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * Check and convert one value a write sets (create, update, batch). `linkExists` lets entity
 * fields refuse links to records that do not exist. Multi-entity update modes are handled by the
 * store; here a multi_entity value is a plain list.
 */
export function normalizeWriteValue(entityType: string, field: FieldInfo, value: unknown, linkExists: (link: Link) => boolean): unknown {
  const where = `${entityType}.${field.name}`;
  const fail = (reason: string) => badRequest(`API write ${where} ${reason}`, { [field.name]: [reason] });
  if (value === null) {
    if (field.dataType === "multi_entity" || field.dataType === "tag_list") return [];
    if (field.dataType === "checkbox") return false;
    return null;
  }
  switch (field.dataType) {
    case "text":
    case "color":
    case "uuid":
    case "image":
    case "entity_type":
      if (typeof value !== "string") throw fail(`expects a string, got ${short(value)}`);
      return value;
    case "number":
    case "duration":
      if (typeof value !== "number" || !Number.isInteger(value)) throw fail(`expects a whole number, got ${short(value)}`);
      return value;
    case "float":
    case "percent":
    case "currency":
    case "timecode":
      if (typeof value !== "number" || !Number.isFinite(value)) throw fail(`expects a number, got ${short(value)}`);
      return value;
    case "checkbox":
      if (typeof value !== "boolean") throw fail(`expects true or false, got ${short(value)}`);
      return value;
    case "date":
      if (!isDateString(value)) throw fail(`expects a date YYYY-MM-DD, got ${short(value)}`);
      return value;
    case "date_time": {
      const ms = parseDateTime(value);
      if (Number.isNaN(ms)) throw fail(`expects a date-time like 2021-06-16T08:55:13Z, got ${short(value)}`);
      return ms;
    }
    case "list":
    case "status_list":
      if (typeof value !== "string") throw fail(`expects a string, got ${short(value)}`);
      if (field.validValues && !field.validValues.includes(value)) {
        throw fail(`value ${short(value)} is not one of the valid values: ${field.validValues.join(", ")}`);
      }
      return value;
    case "tag_list":
      if (!Array.isArray(value) || value.some((t) => typeof t !== "string")) throw fail(`expects a list of tag names`);
      return [...value];
    case "entity": {
      const link = parseLink(value, where);
      checkLink(where, field, link, linkExists);
      return link;
    }
    case "multi_entity": {
      if (!Array.isArray(value)) throw fail(`expects a list of entity links, got ${short(value)}`);
      const links = value.map((v) => parseLink(v, where));
      for (const l of links) checkLink(where, field, l, linkExists);
      return dedupeLinks(links);
    }
    case "url":
    case "serializable":
      return value;
    default:
      if (field.dataType === "password" && typeof value === "string") return value;
      throw fail(`cannot be written (data type ${field.dataType})`);
  }
}

function checkLink(where: string, field: FieldInfo, link: Link, linkExists: (link: Link) => boolean): void {
  if (field.validTypes.length > 0 && !field.validTypes.includes(link.type)) {
    throw badRequest(`API write ${where} does not accept links to ${link.type} (valid types: ${field.validTypes.join(", ")})`, {
      [field.name]: ["invalid entity type"],
    });
  }
  if (!linkExists(link)) {
    throw badRequest(`API write ${where}: linked ${link.type} ${link.id} does not exist`, { [field.name]: ["linked entity not found"] });
  }
}

export function dedupeLinks(links: Link[]): Link[] {
  const seen = new Set<string>();
  const out: Link[] = [];
  for (const l of links) {
    const k = `${l.type}:${l.id}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push({ type: l.type, id: l.id });
    }
  }
  return out;
}

export function sameLink(a: Link | null | undefined, b: Link | null | undefined): boolean {
  return !!a && !!b && a.type === b.type && a.id === b.id;
}
