/**
 * A simulated ShotGrid site over real HTTP, speaking the REST API subset shotgrid-cache uses and
 * the Python api3 protocol (`POST /api3/json`, see api3.ts).
 *
 * ```ts
 * const site = await startSimulator({ scriptName: "s", scriptKey: "k" });
 * // site.url is http://127.0.0.1:PORT; the REST API lives under /api/v1.1
 * site.knobs.set({ latencyMs: 20 });
 * site.store.update("Shot", 1, { sg_status_list: "fin" }, { user: site.scriptUser }); // makes events
 * await site.close();
 * ```
 */
import { TokenIssuer } from "./auth.ts";
import { seedDataset, seededRandom } from "./dataset.ts";
import { demoSchema } from "./demo-schema.ts";
import { SimHttpServer, type SimulatorStats } from "./http-server.ts";
import { Knobs, type KnobSettings } from "./knobs.ts";
import { SchemaIndex, type Api3Schema } from "./schema.ts";
import { SimStore } from "./store.ts";
import type { Link } from "./values.ts";
import { WebhookSender, type WebhookTarget } from "./webhooks.ts";

export { SchemaIndex, pluralSnakeCase, snakeCase } from "./schema.ts";
export type { Api3Field, Api3Schema, FieldInfo } from "./schema.ts";
export { SimStore } from "./store.ts";
export type { EventInput, SimRecord, WriteContext } from "./store.ts";
export { Knobs } from "./knobs.ts";
export type { KnobSettings, MalformedKind, OutageMode, OutageWindow } from "./knobs.ts";
export type { SimulatorStats } from "./http-server.ts";
export type { Link } from "./values.ts";
export { demoSchema } from "./demo-schema.ts";
export { WebhookSender, type WebhookSenderStats, type WebhookTarget } from "./webhooks.ts";
export { addField, deleteField, renameField, type NewFieldSpec } from "./schema-changes.ts";

/** The script credentials a simulator accepts when none are given. */
export const DEFAULT_SCRIPT_NAME = "shotgrid-cache-demo";
export const DEFAULT_SCRIPT_KEY = "demo-key";

export interface SimulatorUser {
  /** Login for the password grant. */
  login: string;
  password: string;
  /** Display name of the HumanUser record (default: the login). */
  name?: string;
}

export interface SimulatorOptions {
  /** Interface to bind. Default 127.0.0.1 (never all interfaces unless asked). */
  host?: string;
  /** Port; 0 (default) picks a free one. */
  port?: number;
  /** Script name accepted by the client_credentials grant. Default `shotgrid-cache-demo`. */
  scriptName?: string;
  /** Script key accepted by the client_credentials grant. Default `demo-key`. */
  scriptKey?: string;
  /** People who may use the password grant (HumanUser records are created for them). */
  users?: SimulatorUser[];
  /** Access token lifetime in seconds. Default 600, as recorded on real sites. */
  tokenLifetimeS?: number;
  /** A path to an api3 schema_read JSON file, or the schema itself. Default: the demo schema. */
  schema?: string | Api3Schema;
  /** `demo` (default): a small studio; `empty`: only the script's ApiUser (and `users`). */
  dataset?: "demo" | "empty";
  /** Shots the demo dataset generates (default 60); large numbers are fine for benchmarks. */
  shots?: number;
  /** Assets the demo dataset generates (default 40). */
  assets?: number;
  /** Seed of the generated data and of the knobs' randomness. Default 1. */
  seed?: number;
  /** Initial realism settings (all default to off). */
  knobs?: Partial<KnobSettings>;
  /** Clock (epoch ms) for records, events and token expiry; tests may pin it. */
  now?: () => number;
  /** Send signed webhook deliveries for every event to these targets (more can be added later). */
  webhooks?: WebhookTarget[];
}

export interface SimulatorHandle {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly url: string;
  readonly port: number;
  readonly scriptName: string;
  /** The ApiUser record REST writes are attributed to. */
  readonly scriptUser: Link;
  /** Realism settings, changeable while the site runs (`knobs.set({...})`, `setOutage`, `injectMalformed`). */
  readonly knobs: Knobs;
  /** Direct access to the data: writes through it make events like REST writes do. */
  readonly store: SimStore;
  readonly schema: SchemaIndex;
  /** Request counters. */
  readonly stats: SimulatorStats;
  /** Webhook deliveries: `webhooks.add({url, secret, batched})` registers a target; `webhooks.stats`. */
  readonly webhooks: WebhookSender;
  /** Access tokens issued so far. */
  tokensIssued(): number;
  /** Expire every access token issued so far (the next request with one gets 401). */
  expireTokens(): void;
  /** Stop listening, drop open connections and pending late events. */
  close(): Promise<void>;
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<SimulatorHandle> {
  const now = options.now ?? Date.now;
  const scriptName = options.scriptName ?? DEFAULT_SCRIPT_NAME;
  const scriptKey = options.scriptKey ?? DEFAULT_SCRIPT_KEY;
  if (!scriptName || !scriptKey) throw new Error("simulator: scriptName and scriptKey must not be empty");
  const tokenLifetimeS = options.tokenLifetimeS ?? 600;
  if (!(tokenLifetimeS > 0)) throw new Error(`simulator: tokenLifetimeS must be > 0, got ${tokenLifetimeS}`);
  const seed = options.seed ?? 1;
  for (const [name, v] of [
    ["shots", options.shots],
    ["assets", options.assets],
  ] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new Error(`simulator: ${name} must be a whole number >= 0, got ${v}`);
  }

  const schema =
    options.schema === undefined
      ? new SchemaIndex(demoSchema())
      : typeof options.schema === "string"
        ? SchemaIndex.fromFile(options.schema)
        : new SchemaIndex(options.schema);
  const random = seededRandom(seed ^ 0x5eed);
  const knobs = new Knobs(options.knobs ?? {}, now);
  const store = new SimStore(schema, {
    now,
    eventCommitDelayMs: () => (knobs.eventCommitDelayMs > 0 && random() < knobs.eventCommitDelayRate ? knobs.eventCommitDelayMs : 0),
  });
  const users = options.users ?? [];
  const seeded = seedDataset(store, {
    dataset: options.dataset ?? "demo",
    shots: options.shots,
    assets: options.assets,
    seed,
    scriptName,
    users: users.map((u) => ({ login: u.login, name: u.name })),
  });
  const credentials = {
    scriptName,
    scriptKey,
    scriptUser: { type: "ApiUser" as const, id: seeded.scriptUser.id },
    users: new Map(users.map((u) => [u.login, { password: u.password, user: { type: "HumanUser" as const, id: seeded.users.get(u.login)?.id ?? 0 } }])),
  };
  const tokens = new TokenIssuer(() => tokenLifetimeS, now);
  const http = new SimHttpServer({ store, tokens, credentials, knobs, random, now });
  const host = options.host ?? "127.0.0.1";
  const port = await http.listen(options.port ?? 0, host);
  const urlHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
  let closed = false;
  const siteUrl = `http://${urlHost}:${port}`;
  const webhooks = new WebhookSender(store, () => siteUrl);
  try {
    for (const target of options.webhooks ?? []) webhooks.add(target);
  } catch (err) {
    webhooks.close();
    store.close();
    await http.close();
    throw err;
  }
  return {
    url: `http://${urlHost}:${port}`,
    port,
    scriptName,
    scriptUser: seeded.scriptUser,
    knobs,
    store,
    schema,
    stats: http.stats,
    webhooks,
    tokensIssued: () => tokens.issuedCount,
    expireTokens: () => tokens.expireAll(),
    async close() {
      if (closed) return;
      closed = true;
      webhooks.close();
      store.close();
      await http.close();
    },
  };
}
