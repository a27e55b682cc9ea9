/**
 * Shared parts of the webhook, reconcile and event-kind tests: a simulated site and the whole
 * service in front of it over real sockets, signed webhook POSTs, Connect JSON calls, metrics.
 */
import { createHmac } from "node:crypto";
import { rawRequest, type RawAnswer } from "./e2e-helpers.ts";
import { pino } from "pino";
import { startService, type RunningService } from "../src/app/create-app.ts";
import { loadServeConfig, type ServeConfig } from "../src/config.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle, type SimulatorOptions } from "../src/simulator/index.ts";

export const SECRET = "test-webhook-secret";
export const WEBHOOK = "/webhooks/shotgrid";

export interface Stack {
  site: SimulatorHandle;
  service: RunningService;
  port: number;
  close(): Promise<void>;
}

/**
 * A site and the service following it, ready. Defaults: a long poll interval (only `pollNow`
 * makes the follower poll after start), a webhook secret, reconcile on a long interval (tests
 * call `runNow`), Project and Shot preloaded.
 */
export async function startStack(options: { site?: SimulatorOptions; config?: Partial<ServeConfig> } = {}): Promise<Stack> {
  const site = await startSimulator({ shots: 6, assets: 3, ...options.site });
  const { help: _help, ...defaults } = loadServeConfig([], {});
  const config: ServeConfig = {
    ...defaults,
    port: 0,
    host: "127.0.0.1",
    site: { url: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY },
    stateDir: undefined,
    preloadTypes: ["Project", "Shot"],
    pollIntervalMs: 600_000,
    heartbeatS: 1,
    logLevel: "silent",
    webhookSecret: SECRET,
    reconcileIntervalS: 3600,
    ...options.config,
  };
  let service: RunningService;
  try {
    service = await startService(config, pino({ level: "silent" }));
    await service.ready;
  } catch (err) {
    await site.close();
    throw err;
  }
  return {
    site,
    service,
    port: service.port,
    async close() {
      await service.close(1000);
      await site.close();
    },
  };
}

export type Answer = RawAnswer;

/** One HTTP/1.1 request on a fresh connection (the e2e tests' raw client). */
export const request = rawRequest;

export function sign(body: string | Buffer, secret = SECRET): string {
  return `sha1=${createHmac("sha1", secret).update(body).digest("hex")}`;
}

/** POST a webhook body signed with `secret` (or with the given signature header). */
export function postWebhook(port: number, body: unknown, options: { secret?: string; signature?: string | null; deliveryId?: string } = {}): Promise<Answer> {
  const raw = typeof body === "string" ? body : JSON.stringify(body);
  const headers: Record<string, string> = { "content-type": "application/json" };
  const signature = options.signature === undefined ? sign(raw, options.secret) : options.signature;
  if (signature !== null) headers["x-sg-signature"] = signature;
  if (options.deliveryId) headers["x-sg-delivery-id"] = options.deliveryId;
  return request(port, "POST", WEBHOOK, raw, headers);
}

/** A single-delivery body announcing a Change of `field` on `type` `id`, as ShotGrid sends it. */
export function changeDelivery(eventId: number, type: string, id: number, field: string, newValue: unknown, deliveryId: string, projectId = 1): unknown {
  return {
    data: {
      id: `1.${eventId}.0`,
      event_log_entry_id: eventId,
      event_type: `Shotgun_${type}_Change`,
      operation: "update",
      user: { type: "ApiUser", id: 1 },
      entity: { type, id },
      project: { type: "Project", id: projectId },
      meta: {
        type: "attribute_change",
        attribute_name: field,
        entity_type: type,
        entity_id: id,
        field_data_type: "text",
        old_value: null,
        new_value: newValue,
      },
      created_at: new Date().toISOString().replace("T", " ").replace("Z", "000"),
      attribute_name: field,
      session_uuid: null,
      delivery_id: deliveryId,
    },
    timestamp: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
  };
}

/** A Connect JSON unary call. */
export function call(port: number, method: "GetEntity" | "Query", message: unknown): Promise<Answer> {
  return request(port, "POST", `/shotgrid.cache.v1.CacheService/${method}`, JSON.stringify(message), { "content-type": "application/json" });
}

/** The sum of every series of one metric (0 when absent). */
export async function metric(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = (await request(port, "GET", "/metrics")).body;
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (!Object.entries(labels).every(([k, v]) => (m[2] ?? "").includes(`${k}="${v}"`))) continue;
    sum += Number(m[3]);
  }
  return sum;
}

/** Poll `probe` until `done`, or fail after `timeoutMs`. */
export async function until<T>(probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 3000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
