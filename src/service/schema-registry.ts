/**
 * The site's schema as the service validates requests against it: entity types and their fields,
 * fetched from the Backend on first use and kept until told a type changed.
 */
import type { Backend, EntitySchema, FieldSchema } from "../shotgrid/types.ts";

/** A field reached through a dotted path such as `sg_sequence.Sequence.code`. */
export interface ResolvedField {
  /** The entity type the last hop's field belongs to. */
  entityType: string;
  field: FieldSchema;
  /** Entity types crossed by the path's links (empty for a plain field). */
  via: string[];
}

export type FieldResolution = { ok: true; resolved: ResolvedField } | { ok: false; reason: string };

export class SchemaRegistry {
  private types: Promise<Set<string>> | undefined;
  private readonly fields = new Map<string, Promise<EntitySchema>>();
  /** The settled values of `types` and `fields`, for synchronous validation on the hit path. */
  private typesNow: Set<string> | undefined;
  private readonly fieldsNow = new Map<string, EntitySchema>();
  /**
   * Bumped whenever what is known changes (invalidate, a fetch settling): memoised validation
   * results taken at another generation are discarded.
   */
  private gen = 0;

  constructor(private readonly backend: Backend) {}

  /** True when the site knows the type. A miss refreshes the list once (the type may be new). */
  async hasType(entityType: string): Promise<boolean> {
    if ((await this.typeSet()).has(entityType)) return true;
    this.types = undefined;
    return (await this.typeSet()).has(entityType);
  }

  /** The fields of a known entity type. */
  fieldsOf(entityType: string): Promise<EntitySchema> {
    let p = this.fields.get(entityType);
    if (!p) {
      const fetching = (p = this.backend.schemaFields(entityType));
      // A failed fetch must not stick: the next call asks again.
      p.then(
        (schema) => {
          // Only the fetch still current may publish: an invalidate meanwhile dropped it.
          if (this.fields.get(entityType) !== fetching) return;
          this.fieldsNow.set(entityType, schema);
          this.gen++;
        },
        () => {
          if (this.fields.get(entityType) === fetching) this.fields.delete(entityType);
        },
      );
      this.fields.set(entityType, p);
    }
    return p;
  }

  /** Counts changes to what is known; see `resolveFieldNow`. */
  get generation(): number {
    return this.gen;
  }

  /**
   * `hasType` without waiting: true when the loaded type list holds the type,
   * undefined when it would need a fetch (the list is not loaded, or the type is not in it and
   * `hasType` would refresh the list once).
   */
  hasTypeNow(entityType: string): true | undefined {
    return this.typesNow?.has(entityType) ? true : undefined;
  }

  /**
   * `resolveField` without waiting: the same answer when every schema the path crosses is
   * loaded, undefined when one would have to be fetched first.
   */
  resolveFieldNow(entityType: string, path: string): FieldResolution | undefined {
    const parts = path.split(".");
    if (parts.length % 2 === 0 || parts.some((p) => p === "")) {
      return { ok: false, reason: `"${path}" is not a field name nor a dotted path of the form link.Type.field` };
    }
    let type = entityType;
    const via: string[] = [];
    for (let i = 0; i < parts.length; i += 2) {
      const name = parts[i]!;
      const schema = this.fieldsNow.get(type);
      if (!schema) return undefined;
      const field = Object.hasOwn(schema, name) ? schema[name] : undefined;
      if (!field) return { ok: false, reason: `${type} has no field "${name}"` };
      if (i === parts.length - 1) return { ok: true, resolved: { entityType: type, field, via } };
      const nextType = parts[i + 1]!;
      if (field.dataType !== "entity") {
        return { ok: false, reason: `"${name}" of ${type} is a ${field.dataType} field; a dotted path can only follow a single-entity link` };
      }
      if (field.validTypes && field.validTypes.length > 0 && !field.validTypes.includes(nextType)) {
        return { ok: false, reason: `"${name}" of ${type} cannot link to ${nextType} (it links to ${field.validTypes.join(", ")})` };
      }
      if (this.hasTypeNow(nextType) !== true) return undefined;
      via.push(nextType);
      type = nextType;
    }
    return { ok: false, reason: `"${path}" is incomplete` };
  }

  /** Entity types whose fields are held (fetched, or being fetched); schema events look through them. */
  cachedTypes(): string[] {
    return [...this.fields.keys()];
  }

  /** Forget what is known of one type (or all), after a schema change event. */
  invalidate(entityType?: string): void {
    if (entityType) {
      this.fields.delete(entityType);
      this.fieldsNow.delete(entityType);
    } else {
      this.fields.clear();
      this.fieldsNow.clear();
    }
    this.types = undefined;
    this.typesNow = undefined;
    this.gen++;
  }

  /**
   * Resolve a field name or a deep dotted path (`entity.Shot.sg_sequence.Sequence.code`): each hop
   * is a single-entity link whose valid types include the named type.
   */
  async resolveField(entityType: string, path: string): Promise<FieldResolution> {
    const parts = path.split(".");
    if (parts.length % 2 === 0 || parts.some((p) => p === "")) {
      return { ok: false, reason: `"${path}" is not a field name nor a dotted path of the form link.Type.field` };
    }
    let type = entityType;
    const via: string[] = [];
    for (let i = 0; i < parts.length; i += 2) {
      const name = parts[i]!;
      const schema = await this.fieldsOf(type);
      const field = Object.hasOwn(schema, name) ? schema[name] : undefined;
      if (!field) return { ok: false, reason: `${type} has no field "${name}"` };
      if (i === parts.length - 1) return { ok: true, resolved: { entityType: type, field, via } };
      const nextType = parts[i + 1]!;
      if (field.dataType !== "entity") {
        return { ok: false, reason: `"${name}" of ${type} is a ${field.dataType} field; a dotted path can only follow a single-entity link` };
      }
      if (field.validTypes && field.validTypes.length > 0 && !field.validTypes.includes(nextType)) {
        return { ok: false, reason: `"${name}" of ${type} cannot link to ${nextType} (it links to ${field.validTypes.join(", ")})` };
      }
      if (!(await this.hasType(nextType))) return { ok: false, reason: `unknown entity type "${nextType}" in "${path}"` };
      via.push(nextType);
      type = nextType;
    }
    return { ok: false, reason: `"${path}" is incomplete` };
  }

  private typeSet(): Promise<Set<string>> {
    if (!this.types) {
      const p = this.backend.schemaEntityTypes().then((list) => new Set(list));
      p.then(
        (set) => {
          if (this.types !== p) return;
          this.typesNow = set;
          this.gen++;
        },
        () => {
          if (this.types === p) this.types = undefined;
        },
      );
      this.types = p;
    }
    return this.types;
  }
}
