/**
 * Webhooks from the simulated site: every committed event row is delivered to each registered
 * target, signed (`x-sg-signature: sha1=<hex HMAC-SHA1 of the raw body>`), one delivery per POST
 * or batched (1–50 per POST), with the headers a real site sends. Deliveries go out after the
 * write has answered (queued, sent on a later turn of the event loop), in commit order per
 * target; a failed POST is counted and not retried. Signing is written here on its own (not
 * shared with the receiver in src/events), so each checks the other.
 */
import { createHmac, randomUUID } from "node:crypto";
import type { SimRecord, SimStore } from "./store.ts";
import { formatReadDateTime, isLink, type Link } from "./values.ts";

export interface WebhookTarget {
  /** Where deliveries are POSTed, e.g. `http://127.0.0.1:8080/webhooks/shotgrid`. */
  url: string;
  /** The secret token deliveries are signed with (never sent, never logged). */
  secret: string;
  /** Send up to `batchSize` deliveries per POST (`{data:{deliveries:[…]}}`). Default false. */
  batched?: boolean;
  /** Deliveries per POST in batched mode, 1–50. Default 50. */
  batchSize?: number;
  /** Only events on these entity types (`Shot`, `DisplayColumn`…). Default: every event. */
  entityTypes?: string[];
}

export interface WebhookSenderStats {
  /** POSTs sent (answered or not). */
  posts: number;
  /** Deliveries carried by those POSTs. */
  deliveries: number;
  /** POSTs that failed (network error or an answer of 400 and up). */
  failures: number;
  /** Status of the last answer (0 for a network error). */
  lastStatus: number | undefined;
}

interface Registered extends Required<Omit<WebhookTarget, "entityTypes">> {
  entityTypes: Set<string> | undefined;
  webhookId: string;
  queue: Array<Record<string, unknown>>;
  sending: Promise<void>;
}

/** Sends the store's events to the registered webhook targets. */
export class WebhookSender {
  readonly stats: WebhookSenderStats = { posts: 0, deliveries: 0, failures: 0, lastStatus: undefined };
  readonly #store: SimStore;
  readonly #siteUrl: () => string;
  readonly #targets = new Set<Registered>();
  readonly #abort = new AbortController();
  readonly #unsubscribe: () => void;
  #flushScheduled = false;
  #sequence = 0;

  constructor(store: SimStore, siteUrl: () => string) {
    this.#store = store;
    this.#siteUrl = siteUrl;
    this.#unsubscribe = store.onEventCommitted((row) => this.#enqueue(row));
  }

  /** Register a target; returns a function that removes it. */
  add(target: WebhookTarget): () => void {
    let url: URL;
    try {
      url = new URL(target.url);
    } catch {
      throw new Error(`webhook url is not a URL: "${target.url}"`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`webhook url must be http or https, got "${url.protocol}"`);
    if (typeof target.secret !== "string" || target.secret === "") throw new Error("webhook secret must be a non-empty string");
    const batchSize = target.batchSize ?? 50;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 50) throw new Error(`webhook batchSize must be 1 to 50, got ${target.batchSize}`);
    const registered: Registered = {
      url: url.href,
      secret: target.secret,
      batched: target.batched ?? false,
      batchSize,
      entityTypes: target.entityTypes ? new Set(target.entityTypes) : undefined,
      webhookId: randomUUID(),
      queue: [],
      sending: Promise.resolve(),
    };
    this.#targets.add(registered);
    return () => this.#targets.delete(registered);
  }

  get targetCount(): number {
    return this.#targets.size;
  }

  /** Resolves when every queued delivery has been sent (tests). */
  async whenIdle(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    await Promise.all([...this.#targets].map((t) => t.sending));
  }

  /** Stop: forget targets and queued deliveries, abort POSTs in flight. */
  close(): void {
    this.#unsubscribe();
    this.#targets.clear();
    this.#abort.abort();
  }

  #enqueue(row: SimRecord): void {
    if (this.#targets.size === 0) return;
    const delivery = this.#delivery(row);
    const entityType = (row.fields["entity"] as Link | undefined)?.type;
    for (const t of this.#targets) {
      if (t.entityTypes && !(entityType && t.entityTypes.has(entityType))) continue;
      t.queue.push({ ...delivery, id: `${++this.#sequence}.${row.id}.0`, delivery_id: randomUUID() });
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // Never inside the write: the REST answer goes out first.
      setImmediate(() => {
        this.#flushScheduled = false;
        for (const t of this.#targets) this.#flush(t);
      });
    }
  }

  #flush(t: Registered): void {
    const group = t.queue.splice(0);
    if (group.length === 0) return;
    const batchId = randomUUID();
    const posts: Array<{ body: unknown; deliveryId: string; size: number; index: number; count: number }> = [];
    if (t.batched) {
      for (let i = 0; i < group.length; i += t.batchSize) {
        const chunk = group.slice(i, i + t.batchSize);
        posts.push({ body: { data: { deliveries: chunk } }, deliveryId: randomUUID(), size: chunk.length, index: 0, count: chunk.length });
      }
    } else {
      group.forEach((d, index) => posts.push({ body: { data: d }, deliveryId: String(d["delivery_id"]), size: group.length, index, count: 1 }));
    }
    for (const p of posts) {
      t.sending = t.sending.then(() =>
        this.#post(
          t,
          { ...(p.body as object), timestamp: new Date().toISOString().replace(/\.\d{3}Z$/, "Z") },
          {
            "x-sg-delivery-id": p.deliveryId,
            "x-sg-event-batch-id": batchId,
            "x-sg-event-batch-size": String(p.size),
            "x-sg-event-batch-index": String(p.index),
          },
          p.count,
        ),
      );
    }
  }

  async #post(t: Registered, body: unknown, headers: Record<string, string>, count: number): Promise<void> {
    if (this.#abort.signal.aborted) return;
    const raw = JSON.stringify(body);
    this.stats.posts++;
    this.stats.deliveries += count;
    // ShotGrid gives a receiver 6 s to answer. (A timer of our own: on Node 20 an
    // AbortSignal.timeout inside AbortSignal.any can be garbage-collected and never fire.)
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new DOMException("receiver took over 6 s", "TimeoutError")), 6000);
    const onClose = () => deadline.abort(this.#abort.signal.reason);
    this.#abort.signal.addEventListener("abort", onClose, { once: true });
    try {
      const res = await fetch(t.url, {
        method: "POST",
        body: raw,
        headers: {
          "content-type": "application/json",
          "x-sg-signature": `sha1=${createHmac("sha1", t.secret).update(raw).digest("hex")}`,
          "x-sg-webhook-id": t.webhookId,
          "x-sg-webhook-site-url": this.#siteUrl(),
          ...headers,
        },
        signal: deadline.signal,
      });
      await res.arrayBuffer().catch(() => undefined);
      this.stats.lastStatus = res.status;
      if (res.status >= 400) this.stats.failures++;
    } catch {
      this.stats.lastStatus = 0;
      this.stats.failures++;
    } finally {
      clearTimeout(timer);
      this.#abort.signal.removeEventListener("abort", onClose);
    }
  }

  /** The delivery body of one event row (without the per-target `id` and `delivery_id`). */
  #delivery(row: SimRecord): Record<string, unknown> {
    const f = row.fields;
    const eventType = String(f["event_type"] ?? "");
    const kind = eventType.slice(eventType.lastIndexOf("_") + 1);
    const created = typeof f["created_at"] === "number" ? f["created_at"] : Date.now();
    return {
      event_log_entry_id: row.id,
      event_type: eventType,
      operation: OPERATIONS[kind] ?? "other",
      user: this.#link(f["user"]),
      entity: this.#link(f["entity"]),
      project: this.#link(f["project"]),
      meta: f["meta"] ?? null,
      // Webhooks spell times `2021-02-22 17:40:23.202136` (UTC, microseconds, no zone).
      created_at: `${formatReadDateTime(created).replace("T", " ").replace("Z", "")}.${String(created % 1000).padStart(3, "0")}000`,
      attribute_name: f["attribute_name"] ?? null,
      session_uuid: f["session_uuid"] ?? null,
    };
  }

  #link(v: unknown): { type: string; id: number; name?: string | null } | null {
    if (!isLink(v)) return null;
    return { type: v.type, id: v.id, name: this.#store.displayName(v) };
  }
}

const OPERATIONS: Record<string, string> = { New: "create", Change: "update", Retirement: "delete", Revival: "revive" };
