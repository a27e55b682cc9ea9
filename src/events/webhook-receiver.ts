/**
 * `POST /webhooks/shotgrid`: ShotGrid webhook deliveries, used as hints.
 *
 * A delivery announces an event log row. The receiver checks the signature, answers 200 at once
 * (ShotGrid wants an answer within 6 s and marks a webhook Failed after repeated timeouts), and
 * only then — on a later turn of the event loop — invalidates what the row changes and asks the
 * event follower to poll now. It never advances the follower's cursor and never publishes to
 * WatchChanges: the follower does both when the row arrives through the event log, which stays
 * the source of truth. So a duplicate, a late or an out-of-order delivery costs at most one extra
 * invalidation (invalidation is idempotent), and a lost delivery costs nothing but the speed-up.
 *
 * Rejections: no or wrong `x-sg-signature` → 401 (nothing is applied), body over the bound → 413,
 * not JSON → 400, JSON that is not a delivery → 400. A delivery id seen recently (bounded memory)
 * is a replay: answered 200 and ignored. The secret never appears in logs or answers.
 */
import type http from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { EventLogEntry } from "../shotgrid/types.ts";
import { RecentIds } from "./recent-ids.ts";
import { WebhookBodyError, parseWebhookBody, verifyWebhookSignature } from "./webhook-delivery.ts";
import { errorMessage, type Logger, SILENT_LOGGER } from "../logging/index.ts";

/** The route the receiver serves. */
export const WEBHOOK_PATH = "/webhooks/shotgrid";

type Req = http.IncomingMessage | Http2ServerRequest;
type Res = http.ServerResponse | Http2ServerResponse;

/** Where verified deliveries go, after the answer was sent. */
export interface WebhookHintSink {
  /**
   * Invalidate what these rows change. Must be idempotent and must neither advance an event
   * cursor nor publish changes (the event log does both when the rows arrive there).
   */
  applyHints(events: EventLogEntry[]): Promise<void>;
}

/** Why a POST was refused. */
export type WebhookRejection = "signature" | "too_large" | "malformed" | "method";

/** What a delivery came to. */
export type WebhookOutcome = "applied" | "duplicate" | "stale" | "failed";

export interface WebhookMetrics {
  /** One delivery (a batched POST counts each of its deliveries). */
  webhookDelivery(outcome: WebhookOutcome): void;
  /** One POST refused. */
  webhookRejected(reason: WebhookRejection): void;
}

export interface WebhookReceiverOptions {
  /** The webhook's secret token, as entered on the site. Required, never logged. */
  secret: string;
  /** Applies the hints (the cache's invalidation). */
  sink: WebhookHintSink;
  /** Asks the event follower to poll now, so the authoritative row follows quickly. */
  pollNow?: () => void;
  /** Largest body accepted, in bytes; more answers 413. Default 1 MiB (50 deliveries fit easily). */
  maxBodyBytes?: number;
  /** Delivery ids remembered for replay protection, at most. Default 10 000. */
  replayMaxIds?: number;
  /**
   * How long a delivery id is remembered, in ms; a body whose `timestamp` is older than this is
   * ignored too (its id may have been forgotten). Default 3 600 000 (one hour).
   */
  replayWindowMs?: number;
  metrics?: Partial<WebhookMetrics>;
  logger?: Logger;
  /** Epoch ms. Default `Date.now`. */
  now?: () => number;
}

export class WebhookReceiver {
  readonly #secret: string;
  readonly #sink: WebhookHintSink;
  readonly #pollNow: (() => void) | undefined;
  readonly #maxBodyBytes: number;
  readonly #replayWindowMs: number;
  readonly #recent: RecentIds;
  readonly #metrics: Partial<WebhookMetrics>;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #processing = new Set<Promise<void>>();

  constructor(options: WebhookReceiverOptions) {
    if (typeof options.secret !== "string" || options.secret === "") throw new TypeError("webhook secret must be a non-empty string");
    this.#secret = options.secret;
    this.#sink = options.sink;
    this.#pollNow = options.pollNow;
    this.#maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
    if (!Number.isSafeInteger(this.#maxBodyBytes) || this.#maxBodyBytes < 1) {
      throw new RangeError(`maxBodyBytes must be a whole number >= 1, got ${options.maxBodyBytes}`);
    }
    this.#replayWindowMs = options.replayWindowMs ?? 3_600_000;
    this.#now = options.now ?? Date.now;
    this.#recent = new RecentIds(options.replayMaxIds ?? 10_000, this.#replayWindowMs, this.#now);
    this.#metrics = options.metrics ?? {};
    this.#log = options.logger ?? SILENT_LOGGER;
  }

  /** Serves `POST /webhooks/shotgrid`; returns false for any other path (to chain routes). */
  route = (req: Req, res: Res, path: string): boolean => {
    if (path !== WEBHOOK_PATH) return false;
    if (req.method !== "POST") {
      this.#metrics.webhookRejected?.("method");
      send(res, 405, { code: "method_not_allowed", message: `${WEBHOOK_PATH} accepts POST only` }, { allow: "POST" });
      return true;
    }
    this.#receive(req, res);
    return true;
  };

  /** Resolves when every accepted delivery has been applied (tests, shutdown). */
  async whenIdle(): Promise<void> {
    while (this.#processing.size > 0) await Promise.allSettled([...this.#processing]);
  }

  #receive(req: Req, res: Res): void {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > this.#maxBodyBytes) {
      this.#tooLarge(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on("data", (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > this.#maxBodyBytes) {
        refused = true;
        chunks.length = 0;
        this.#tooLarge(req, res);
        return;
      }
      chunks.push(chunk);
    });
    req.on("error", () => undefined);
    req.on("end", () => {
      if (!refused) this.#handleBody(req, res, Buffer.concat(chunks, size));
    });
  }

  #tooLarge(req: Req, res: Res): void {
    this.#metrics.webhookRejected?.("too_large");
    // HTTP/1.1: close after answering rather than read the rest of an oversized body.
    const extra: Record<string, string> = "httpVersionMajor" in req && req.httpVersionMajor === 1 ? { connection: "close" } : {};
    send(res, 413, { code: "payload_too_large", message: `webhook body exceeds ${this.#maxBodyBytes} bytes` }, extra);
    req.resume();
  }

  #handleBody(req: Req, res: Res, body: Buffer): void {
    const signature = header(req, "x-sg-signature");
    if (!verifyWebhookSignature(body, signature, this.#secret)) {
      this.#metrics.webhookRejected?.("signature");
      this.#log.warn({ reason: signature ? "signature mismatch" : "no x-sg-signature header", bytes: body.length }, "webhook delivery rejected");
      send(res, 401, { code: "unauthenticated", message: signature ? "x-sg-signature does not match the body" : "x-sg-signature header missing" });
      return;
    }
    let parsed: ReturnType<typeof parseWebhookBody>;
    try {
      parsed = parseWebhookBody(body, header(req, "x-sg-delivery-id"));
    } catch (err) {
      this.#metrics.webhookRejected?.("malformed");
      const message = err instanceof WebhookBodyError ? err.message : `body is not valid JSON: ${(err as Error).message}`;
      send(res, 400, { code: "invalid_argument", message });
      return;
    }
    const fresh: EventLogEntry[] = [];
    let ignored = 0;
    const stale = parsed.sentAtMs !== undefined && this.#now() - parsed.sentAtMs > this.#replayWindowMs;
    for (const d of parsed.deliveries) {
      if (stale) {
        ignored++;
        this.#metrics.webhookDelivery?.("stale");
      } else if (this.#recent.checkAndAdd(d.replayKey)) {
        ignored++;
        this.#metrics.webhookDelivery?.("duplicate");
      } else {
        fresh.push(d.event);
      }
    }
    // Answer first: the work below runs after this turn of the event loop.
    send(res, 200, { status: "accepted", deliveries: parsed.deliveries.length, ignored });
    if (fresh.length > 0) this.#track(fresh);
  }

  #track(events: EventLogEntry[]): void {
    const work = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#sink.applyHints(events.sort((a, b) => a.id - b.id)))
      .then(
        () => {
          for (let i = 0; i < events.length; i++) this.#metrics.webhookDelivery?.("applied");
          this.#log.debug({ eventIds: events.map((e) => e.id).slice(0, 20) }, "webhook hints applied");
          this.#pollNow?.();
        },
        (err: unknown) => {
          for (let i = 0; i < events.length; i++) this.#metrics.webhookDelivery?.("failed");
          // The event log will bring the same rows; nothing is lost but the speed-up.
          this.#log.warn({ err: errorMessage(err), count: events.length }, "webhook hints could not be applied");
        },
      );
    this.#processing.add(work);
    void work.finally(() => this.#processing.delete(work));
  }
}

function header(req: Req, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function send(res: Res, status: number, body: unknown, extra: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const bytes = Buffer.from(JSON.stringify(body));
  // Both response types support writeHead/end; their TypeScript overloads differ.
  (res as http.ServerResponse).writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": bytes.length,
    "cache-control": "no-store",
    ...extra,
  });
  (res as http.ServerResponse).end(bytes);
}
