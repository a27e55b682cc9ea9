/**
 * Who an api3 call comes from. Every call but `info` carries the caller's own ShotGrid
 * credentials in `params[0]`; the service answers nothing — not even what the cache holds — to a
 * caller ShotGrid has not accepted. A credential is checked with ShotGrid's auth endpoint (a token
 * grant of the matching kind, Backend.verifyCaller) and then remembered, by the SHA-256 of the
 * credential only, for `ttlMs`: the calls that follow pay no round trip. A refused credential is
 * never remembered, so it costs a round trip each time and is refused each time (fault 102).
 * While ShotGrid cannot be reached, a credential it accepted within the last hour is still
 * accepted (so cached answers keep coming, as for Connect callers). Nothing here logs or echoes a
 * secret.
 */
import { createHash } from "node:crypto";
import type { Caller } from "../auth/caller.ts";
import { abortable } from "../cache/single-flight.ts";
import { BackendError } from "../shotgrid/errors.ts";
import type { Backend, CallerCredentials } from "../shotgrid/types.ts";
import { API3_CODES, Api3Error } from "./faults.ts";

/** A caller's credentials as the Backend takes them, and the login its calls act as. */
export interface Api3Caller {
  credentials: CallerCredentials;
  /** `sudo_as_login`: act as this HumanUser. */
  asLogin?: string;
  /** `params[0]` as the caller sent it, for calls relayed to the site. */
  auth: Record<string, unknown>;
  /**
   * The auth file's client, when the call also carried its bearer token (`--auth-file`): its
   * scopes and read limits apply on top of ShotGrid's acceptance. Undefined: no limits.
   */
  client?: Caller;
}

const FORMS = "script_name + script_key, user_login + user_password, or session_token";

function str(v: unknown): v is string {
  return typeof v === "string" && v !== "";
}

/** The credentials in `params[0]`; an Api3Error (102) naming what is missing, never a secret's value. */
export function parseCaller(auth: unknown): Api3Caller {
  const deny = (why: string) => new Api3Error(why, API3_CODES.authentication);
  if (typeof auth !== "object" || auth === null || Array.isArray(auth)) throw deny(`params[0] must hold the credentials: ${FORMS}`);
  const a = auth as Record<string, unknown>;
  let credentials: CallerCredentials;
  if (a.script_name !== undefined) {
    if (!str(a.script_name) || !str(a.script_key)) throw deny("script_name and script_key must both be non-empty strings");
    credentials = { scriptName: a.script_name, scriptKey: a.script_key };
  } else if (a.user_login !== undefined) {
    if (!str(a.user_login) || !str(a.user_password)) throw deny("user_login and user_password must both be non-empty strings");
    credentials = { login: a.user_login, password: a.user_password };
  } else if (a.session_token !== undefined) {
    if (!str(a.session_token)) throw deny("session_token must be a non-empty string");
    credentials = { sessionToken: a.session_token };
  } else {
    throw deny(`no credentials: params[0] needs ${FORMS}`);
  }
  const sudo = a.sudo_as_login;
  if (sudo !== undefined && sudo !== null && !str(sudo)) throw deny("sudo_as_login must be a login (a non-empty string)");
  return { credentials, asLogin: str(sudo) ? sudo : undefined, auth: a };
}

/** SHA-256 of everything that decides the answer of a verification: the kind, the name, the secret, the sudo login. */
function fingerprint(c: Api3Caller): string {
  const cr = c.credentials;
  const parts = "scriptName" in cr ? ["script", cr.scriptName, cr.scriptKey] : "login" in cr ? ["user", cr.login, cr.password] : ["session", cr.sessionToken];
  return createHash("sha256")
    .update([...parts, c.asLogin ?? ""].join("\u0000"))
    .digest("base64url");
}

export interface CallerVerifierOptions {
  backend: Backend;
  /** How long a verified credential is remembered (ms); 0: every call is verified with ShotGrid. */
  ttlMs: number;
  /** Most credentials remembered at once (the oldest go first). Default 10 000. */
  maxEntries?: number;
  /** See DEFAULT_OUTAGE_GRACE_MS; 0: a credential is never accepted without ShotGrid saying so now. */
  outageGraceMs?: number;
  now?: () => number;
}

/** A credential ShotGrid accepted: trusted until `until`, accepted at `at`. */
interface Verified {
  until: number;
  at: number;
}

/**
 * How long after its last successful check a credential is still accepted while ShotGrid cannot
 * be reached (the check fails for an outage, not a refusal), so cached answers keep coming to
 * the callers who had them. Default one hour.
 */
export const DEFAULT_OUTAGE_GRACE_MS = 3_600_000;

function isOutage(err: unknown): boolean {
  return err instanceof BackendError && (err.code === "SG_UNAVAILABLE" || err.code === "SG_TIMEOUT");
}

export class CallerVerifier {
  /** fingerprint → its last acceptance. Insertion order is verification order. */
  readonly #verified = new Map<string, Verified>();
  /** One verification in flight per fingerprint: a burst of calls with a new credential makes one round trip. */
  readonly #inflight = new Map<string, Promise<void>>();
  readonly #now: () => number;
  readonly #max: number;
  readonly #graceMs: number;
  /** Round trips to ShotGrid's auth endpoint so far (tests, metrics). */
  verifications = 0;

  constructor(private readonly o: CallerVerifierOptions) {
    this.#now = o.now ?? Date.now;
    this.#max = o.maxEntries ?? 10_000;
    this.#graceMs = o.outageGraceMs ?? DEFAULT_OUTAGE_GRACE_MS;
  }

  /**
   * Resolves when the caller's credentials are good; rejects with the Backend's CallerAuthError
   * when ShotGrid refuses them, or with its outage error when ShotGrid cannot be asked (unless the
   * credential was accepted within the outage grace).
   */
  async verify(caller: Api3Caller, signal?: AbortSignal): Promise<void> {
    const key = fingerprint(caller);
    const known = this.#verified.get(key);
    if (known && this.#now() < known.until) return;
    let flight = this.#inflight.get(key);
    if (!flight) {
      const verifyCaller = this.o.backend.verifyCaller?.bind(this.o.backend);
      if (!verifyCaller) throw new Api3Error(`${this.o.backend.description} cannot check caller credentials`, API3_CODES.internal);
      this.verifications++;
      flight = verifyCaller(caller.credentials, { asLogin: caller.asLogin }).then(
        () => this.#remember(key),
        (err: unknown) => {
          const last = this.#verified.get(key);
          if (isOutage(err) && last && this.#now() - last.at <= this.#graceMs) return;
          // Refused (or unknown for too long): forgotten, so nothing stale is accepted later.
          if (!isOutage(err)) this.#verified.delete(key);
          throw err;
        },
      );
      const done = () => this.#inflight.delete(key);
      flight.then(done, done);
      this.#inflight.set(key, flight);
    }
    await abortable(flight, signal);
  }

  /** Forget every verified credential (tests; a key rotated on the site is refused once its memory ends). */
  clear(): void {
    this.#verified.clear();
  }

  #remember(key: string): void {
    if (this.o.ttlMs <= 0) return;
    this.#verified.delete(key);
    while (this.#verified.size >= this.#max) this.#verified.delete(this.#verified.keys().next().value as string);
    const now = this.#now();
    this.#verified.set(key, { until: now + this.o.ttlMs, at: now });
  }
}
