/**
 * A field's new value read from a Change event's meta, exactly as the site would serve it, or
 * undefined when the meta does not say it for sure (the record is then refetched instead).
 *
 * ShotGrid logs a plain field change as `{type: "attribute_change", attribute_name, entity_type,
 * entity_id, field_data_type, old_value, new_value}`. The data types below carry the whole new
 * value in `new_value`, in the form a read returns it. Not applied, because the meta does not
 * carry the read value or its exact form: multi-entity changes (`added`/`removed` lists, and the
 * order a read returns is not known), images (an attachment id), and every other type. Empty text
 * is not applied either: whether the site reads it back as "" or null is not known.
 */
import type { FieldSchema, FieldValue } from "../shotgrid/types.ts";

/**
 * Fields every write moves that no event reports (ShotGrid sets them in the same transaction): a
 * record updated from an event does not know them until it is fetched again.
 */
export const WRITE_STAMP_FIELDS: ReadonlySet<string> = new Set(["updated_at", "updated_by"]);

const DATE = /^\d{4}-\d{2}-\d{2}$/;
/** The one form reads give date-times in (src/shotgrid normalises every other to it). */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The value `meta` sets `field` to, or undefined when it cannot be told exactly. */
export function valueFromChange(field: FieldSchema, meta: Readonly<Record<string, unknown>>): { value: FieldValue } | undefined {
  if (meta["type"] !== "attribute_change" || meta["field_data_type"] !== field.dataType || !Object.hasOwn(meta, "new_value")) return undefined;
  const v = meta["new_value"];
  switch (field.dataType) {
    case "text":
      return v === null || (typeof v === "string" && v !== "") ? { value: v } : undefined;
    case "number":
      return v === null || Number.isSafeInteger(v) ? { value: v as number | null } : undefined;
    case "float":
      return v === null || (typeof v === "number" && Number.isFinite(v)) ? { value: v } : undefined;
    case "checkbox":
      return typeof v === "boolean" ? { value: v } : undefined;
    case "date":
      return v === null || (typeof v === "string" && DATE.test(v)) ? { value: v } : undefined;
    case "date_time":
      return v === null || (typeof v === "string" && DATE_TIME.test(v)) ? { value: v } : undefined;
    case "list":
    case "status_list":
      if (v === null) return { value: null };
      if (typeof v !== "string" || v === "") return undefined;
      // A value the schema does not list is a sign the schema is older than the event.
      return !field.validValues || field.validValues.includes(v) ? { value: v } : undefined;
    case "entity": {
      if (v === null) return { value: null };
      if (!isObject(v) || typeof v["type"] !== "string" || !Number.isSafeInteger(v["id"]) || (v["id"] as number) <= 0) return undefined;
      // The name a read shows with the link: without it in the meta, it is not known.
      const name = v["name"];
      if (typeof name !== "string" && name !== null) return undefined;
      if (field.validTypes && field.validTypes.length > 0 && !field.validTypes.includes(v["type"])) return undefined;
      return { value: { type: v["type"], id: v["id"] as number, name } };
    }
    default:
      return undefined;
  }
}
