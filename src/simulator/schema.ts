/**
 * The simulated site's schema: an api3 `schema_read()` document (entity type → field name →
 * `{data_type: {value}, properties: {valid_types, valid_values, default_value}, …}`), indexed for
 * the lookups every request makes, plus the entity-type spellings the REST API accepts in URLs.
 */
import { readFileSync } from "node:fs";

/** One `{value, editable}` pair of the api3 schema form. */
export interface SchemaValue<T = unknown> {
  value: T;
  editable: boolean;
}

/** One field in api3 `schema_read()` form. Unknown extra keys are kept and served as they are. */
export interface Api3Field {
  data_type: SchemaValue<string>;
  name?: SchemaValue<string>;
  editable?: SchemaValue<boolean>;
  mandatory?: SchemaValue<boolean>;
  properties?: Record<string, SchemaValue>;
  [key: string]: unknown;
}

/** A whole api3 `schema_read()` document: entity type → field name → field. */
export type Api3Schema = Record<string, Record<string, Api3Field>>;

/** What the simulator needs to know about one field, precomputed. */
export interface FieldInfo {
  name: string;
  dataType: string;
  editable: boolean;
  validTypes: string[];
  validValues: string[] | null;
  defaultValue: unknown;
}

/** Field data types that hold links and are therefore served under `relationships`. */
export const LINK_TYPES = new Set(["entity", "multi_entity"]);

/** Field data types the REST API refuses to filter on. */
export const UNFILTERABLE_TYPES = new Set(["password", "serializable", "url"]);

/** `CustomEntity01` → `custom_entity_01`. */
export function snakeCase(type: string): string {
  return type
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([a-zA-Z])(\d)/g, "$1_$2")
    .toLowerCase();
}

/** `CustomEntity01` → `custom_entity_01s`, `Reply` → `replies`, `Status` → `statuses`. */
export function pluralSnakeCase(type: string): string {
  const s = snakeCase(type);
  if (/[^aeiou]y$/.test(s)) return `${s.slice(0, -1)}ies`;
  if (/(s|x|ch|sh)$/.test(s)) return `${s}es`;
  return `${s}s`;
}

export class SchemaIndex {
  readonly raw: Api3Schema;
  private readonly fieldsByType = new Map<string, Map<string, FieldInfo>>();
  private readonly typeByUrlName = new Map<string, string>();
  private readonly displayFieldByType = new Map<string, string | null>();

  constructor(raw: Api3Schema) {
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
      throw new Error("schema: expected an object of entity types (api3 schema_read form)");
    }
    this.raw = raw;
    for (const [type, fields] of Object.entries(raw)) {
      if (!fields || typeof fields !== "object") throw new Error(`schema: entity type ${type} has no fields object`);
      const map = new Map<string, FieldInfo>();
      for (const [name, f] of Object.entries(fields)) map.set(name, fieldInfo(type, name, f));
      // Every entity has an id even when a hand-written schema forgets to list it.
      if (!map.has("id")) {
        map.set("id", { name: "id", dataType: "number", editable: false, validTypes: [], validValues: null, defaultValue: null });
      }
      this.fieldsByType.set(type, map);
      this.typeByUrlName.set(type, type);
      this.typeByUrlName.set(pluralSnakeCase(type), type);
      this.typeByUrlName.set(snakeCase(type), type);
      this.displayFieldByType.set(type, pickDisplayField(type, map));
    }
  }

  /** Load a schema_read JSON file (the product's `--schema FILE`). */
  static fromFile(path: string): SchemaIndex {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new Error(`schema: cannot read ${path}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(`schema: ${path} is not valid JSON: ${(err as Error).message}`);
    }
    return new SchemaIndex(parsed as Api3Schema);
  }

  types(): string[] {
    return [...this.fieldsByType.keys()];
  }

  hasType(type: string): boolean {
    return this.fieldsByType.has(type);
  }

  /** The entity type a URL segment names (`Shot`, `shots`, `custom_entity_01s`), if any. */
  resolveUrlType(segment: string): string | undefined {
    return this.typeByUrlName.get(segment) ?? this.typeByUrlName.get(segment.toLowerCase());
  }

  /** The plural snake-case spelling the site uses in the links it generates. */
  urlName(type: string): string {
    return pluralSnakeCase(type);
  }

  field(type: string, name: string): FieldInfo | undefined {
    return this.fieldsByType.get(type)?.get(name);
  }

  /** The fields of a type in schema order. */
  fields(type: string): FieldInfo[] {
    return [...(this.fieldsByType.get(type)?.values() ?? [])];
  }

  /** The field whose value names a record in links (`code`, `name`, `content`…), or null. */
  displayField(type: string): string | null {
    return this.displayFieldByType.get(type) ?? null;
  }

  /** The raw api3 fields of a type, served by the schema endpoints as they were loaded. */
  entityFields(type: string): Record<string, Api3Field> | undefined {
    return this.raw[type];
  }

  // ---- schema changes (the store's addField/renameField/deleteField log their events) ---------

  /** Add a field to a type (a site admin creating it). */
  addField(type: string, name: string, field: Api3Field): FieldInfo {
    const map = this.fieldsByType.get(type);
    if (!map) throw new Error(`schema: unknown entity type ${type}`);
    if (map.has(name)) throw new Error(`schema: ${type}.${name} already exists`);
    const info = fieldInfo(type, name, field);
    this.raw[type]![name] = field;
    map.set(name, info);
    this.displayFieldByType.set(type, pickDisplayField(type, map));
    return info;
  }

  /** Change a field's display name (ShotGrid never changes the API name). Returns the old one. */
  setDisplayName(type: string, name: string, displayName: string): string | null {
    const field = this.raw[type]?.[name];
    if (!field) throw new Error(`schema: ${type}.${name} does not exist`);
    const old = field.name?.value ?? null;
    field.name = { value: displayName, editable: true };
    return old;
  }

  /** Remove a field (deleted to the trash: gone from reads, filters and the schema). */
  removeField(type: string, name: string): FieldInfo {
    const map = this.fieldsByType.get(type);
    const info = map?.get(name);
    if (!map || !info) throw new Error(`schema: ${type}.${name} does not exist`);
    if (name === "id") throw new Error("schema: the id field cannot be removed");
    map.delete(name);
    delete this.raw[type]![name];
    this.displayFieldByType.set(type, pickDisplayField(type, map));
    return info;
  }
}

function fieldInfo(type: string, name: string, f: Api3Field): FieldInfo {
  const dataType = f?.data_type?.value;
  if (typeof dataType !== "string") throw new Error(`schema: ${type}.${name} has no data_type.value`);
  const props = f.properties ?? {};
  const validTypes = props["valid_types"]?.value;
  const validValues = props["valid_values"]?.value;
  return {
    name,
    dataType,
    editable: f.editable?.value !== false,
    validTypes: Array.isArray(validTypes) ? (validTypes as string[]) : [],
    validValues: Array.isArray(validValues) && validValues.length > 0 ? (validValues as string[]) : null,
    defaultValue: props["default_value"]?.value ?? null,
  };
}

/** Entity types whose links are named by a field other than `code`. */
const DISPLAY_FIELDS: Record<string, string> = {
  Project: "name",
  HumanUser: "name",
  ApiUser: "firstname",
  Task: "content",
  Note: "subject",
  Reply: "content",
  EventLogEntry: "description",
  Group: "code",
  Attachment: "this_file",
  Department: "name",
  PublishedFile: "code",
  TimeLog: "description",
};

function pickDisplayField(type: string, fields: Map<string, FieldInfo>): string | null {
  const preferred = DISPLAY_FIELDS[type];
  if (preferred && fields.has(preferred)) return preferred;
  for (const candidate of ["code", "name", "content", "title", "subject", "description"]) {
    const f = fields.get(candidate);
    if (f && f.dataType === "text") return candidate;
  }
  return null;
}
