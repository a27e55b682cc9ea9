/**
 * ShotGrid webhook deliveries: the signature check and the body shapes (single and batched),
 * turned into `EventLogEntry` rows so the same invalidation path as the event log applies them.
 *
 * Body, single: `{"data":{"id","event_log_entry_id","event_type","operation","user","entity",
 * "project","meta","created_at","attribute_name","session_uuid","delivery_id"},"timestamp"}`.
 * Batched: `{"data":{"deliveries":[…1–50 of those…]},"timestamp"}`.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { EntityLink, EventLogEntry } from "../shotgrid/types.ts";

/** Most deliveries ShotGrid puts in one batched POST. */
export const MAX_BATCH_DELIVERIES = 50;

/** One delivery, checked and converted. */
export interface WebhookDelivery {
  /** The id replay protection remembers: the delivery id, else ShotGrid's `data.id`, else the event id. */
  replayKey: string;
  /** The event log row this delivery announces. */
  event: EventLogEntry;
}

export interface ParsedWebhookBody {
  deliveries: WebhookDelivery[];
  /** The body's `timestamp` in epoch ms, when it has a readable one. */
  sentAtMs: number | undefined;
}

/** A body that is JSON but not a delivery; the message names the field and the reason. */
export class WebhookBodyError extends Error {
  override readonly name = "WebhookBodyError";
}

/**
 * True when `header` is `sha1=<hex HMAC-SHA1 of body keyed by secret>`. The comparison takes the
 * same time wherever the first wrong byte is; a header of the wrong length is compared against a
 * digest of its own length, so its length is not learned from timing either.
 */
export function verifyWebhookSignature(body: Buffer, header: string | undefined, secret: string): boolean {
  if (typeof header !== "string") return false;
  const expected = Buffer.from(`sha1=${createHmac("sha1", secret).update(body).digest("hex")}`, "utf8");
  const given = Buffer.from(header.trim().toLowerCase(), "utf8");
  if (given.length !== expected.length) {
    timingSafeEqual(given, Buffer.alloc(given.length));
    return false;
  }
  return timingSafeEqual(given, expected);
}

/** Parse a verified body. Throws `WebhookBodyError` (answer 400) or `SyntaxError` (not JSON). */
export function parseWebhookBody(raw: Buffer, headerDeliveryId: string | undefined): ParsedWebhookBody {
  const body: unknown = JSON.parse(raw.toString("utf8"));
  if (!isObject(body)) throw new WebhookBodyError("body must be a JSON object with a `data` field");
  const data = body["data"];
  if (!isObject(data)) throw new WebhookBodyError("`data` must be an object (one delivery, or `{deliveries:[…]}`)");
  const sentAtMs = typeof body["timestamp"] === "string" ? parseShotGridTime(body["timestamp"]) : undefined;
  if ("deliveries" in data) {
    const list = data["deliveries"];
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_BATCH_DELIVERIES) {
      throw new WebhookBodyError(`data.deliveries must be a list of 1 to ${MAX_BATCH_DELIVERIES} deliveries`);
    }
    return { deliveries: list.map((d, i) => toDelivery(d, `data.deliveries[${i}]`, undefined)), sentAtMs };
  }
  return { deliveries: [toDelivery(data, "data", headerDeliveryId)], sentAtMs };
}

function toDelivery(d: unknown, where: string, headerDeliveryId: string | undefined): WebhookDelivery {
  if (!isObject(d)) throw new WebhookBodyError(`${where} must be an object`);
  const id = d["event_log_entry_id"];
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id <= 0) {
    throw new WebhookBodyError(`${where}.event_log_entry_id must be a positive integer, got ${short(id)}`);
  }
  const eventType = d["event_type"];
  if (typeof eventType !== "string" || eventType === "") throw new WebhookBodyError(`${where}.event_type must be a non-empty string`);
  const createdAtMs = typeof d["created_at"] === "string" ? parseShotGridTime(d["created_at"]) : undefined;
  const event: EventLogEntry = {
    id,
    event_type: eventType,
    attribute_name: typeof d["attribute_name"] === "string" ? d["attribute_name"] : null,
    meta: isObject(d["meta"]) ? d["meta"] : null,
    entity: link(d["entity"], `${where}.entity`),
    project: link(d["project"], `${where}.project`),
    user: link(d["user"], `${where}.user`),
    session_uuid: typeof d["session_uuid"] === "string" ? d["session_uuid"] : null,
    created_at: new Date(createdAtMs ?? Date.now()).toISOString().replace(/\.\d{3}Z$/, "Z"),
  };
  const deliveryId = nonEmpty(d["delivery_id"]) ?? nonEmpty(headerDeliveryId) ?? nonEmpty(d["id"]);
  return { replayKey: deliveryId ? `d:${deliveryId}` : `e:${id}`, event };
}

/**
 * ShotGrid writes webhook times as `2021-02-22 17:40:23.202136` (UTC, no zone) and the body's
 * timestamp as `2021-02-22T17:40:27Z`; accept both and any ISO 8601 form.
 */
export function parseShotGridTime(text: string): number | undefined {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2}| UTC)?$/.exec(text.trim());
  if (!m) return undefined;
  const fraction = m[3] ? m[3].slice(0, 4) : "";
  const zone = !m[4] || m[4] === " UTC" ? "Z" : m[4];
  const ms = Date.parse(`${m[1]}T${m[2]}${fraction}${zone}`);
  return Number.isFinite(ms) ? ms : undefined;
}

function link(v: unknown, where: string): EntityLink | null {
  if (v === undefined || v === null) return null;
  if (!isObject(v) || typeof v["type"] !== "string" || typeof v["id"] !== "number") {
    throw new WebhookBodyError(`${where} must be a link {type, id} or null, got ${short(v)}`);
  }
  const out: EntityLink = { type: v["type"], id: v["id"] };
  if (typeof v["name"] === "string" || v["name"] === null) out.name = v["name"] as string | null;
  return out;
}

function nonEmpty(v: unknown): string | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return typeof v === "string" && v.trim() !== "" ? v.trim().slice(0, 200) : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function short(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
