/**
 * Who a request is made as. Reads are made as the service's own script. A write on behalf of a
 * caller is made as the caller, so ShotGrid applies the caller's permission rules and its event
 * log names the right person: either the script impersonating a login (`sudo_as_login`, which
 * the REST API takes as the token grant's `scope=sudo_as_login:<login>`), or the caller's own
 * credentials (script name and key, login and password, or a session token), optionally
 * impersonating too. Each identity gets its own access token (identity-tokens.ts).
 */
import { createHmac, randomBytes } from "node:crypto";
import { describe } from "./wire-codec.ts";

export interface ActingIdentity {
  /** True for the service's own script, impersonating nobody. */
  readonly own: boolean;
  /** The identity's key in the token cache; holds no secret in clear. */
  readonly key: string;
  /** For logs and messages, e.g. `as "jane.doe"`; "" for the service's own script. Never a secret. */
  readonly label: string;
  /** The token grant's form fields, secrets included: only ever sent as the token request's body. */
  readonly grant: Readonly<Record<string, string>>;
  /** The secrets in `grant`, to be kept out of every message. */
  readonly secrets: readonly string[];
}

export interface ActAs {
  asLogin?: unknown;
  credentials?: unknown;
}

/**
 * A login as ShotGrid's scope can carry it: one token of the space-separated scope list, so no
 * whitespace and no control characters.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what this rejects.
const LOGIN = /^[^\s\x00-\x1f\x7f]{1,255}$/;

function checkLogin(v: unknown, where: string): string {
  if (typeof v !== "string" || !LOGIN.test(v)) {
    throw new TypeError(`${where} must be a ShotGrid login (1 to 255 characters, no spaces), got ${describe(v)}`);
  }
  return v;
}

/** A secret is checked for presence only: its value never appears in a message. */
function checkSecret(v: unknown, where: string): string {
  if (typeof v !== "string" || v === "") throw new TypeError(`${where} must be a non-empty string`);
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Cache keys of caller credentials are keyed hashes, so no secret sits in a Map key. */
const KEY_SECRET = randomBytes(32);
function keyOf(parts: string[]): string {
  return createHmac("sha256", KEY_SECRET).update(parts.join("\u0000")).digest("base64url");
}

const CREDENTIAL_FORMS = "{scriptName, scriptKey}, {login, password} or {sessionToken}";

/** The caller's own credentials → the grant, a label and a key. */
function callerGrant(c: unknown, where: string): { grant: Record<string, string>; label: string; key: string; secret: string } {
  if (!isObject(c)) throw new TypeError(`${where} must be one of ${CREDENTIAL_FORMS}, got ${describe(c)}`);
  const forms = ["scriptName" in c, "login" in c, "sessionToken" in c].filter(Boolean).length;
  if (forms !== 1) throw new TypeError(`${where} must hold exactly one of ${CREDENTIAL_FORMS}`);
  if ("scriptName" in c) {
    const name = checkLogin(c.scriptName, `${where}.scriptName`);
    const key = checkSecret(c.scriptKey, `${where}.scriptKey`);
    return {
      grant: { grant_type: "client_credentials", client_id: name, client_secret: key },
      label: `with the caller's script "${name}"`,
      key: keyOf(["script", name, key]),
      secret: key,
    };
  }
  if ("login" in c) {
    const login = checkLogin(c.login, `${where}.login`);
    const password = checkSecret(c.password, `${where}.password`);
    return {
      grant: { grant_type: "password", username: login, password },
      label: `as the caller "${login}"`,
      key: keyOf(["password", login, password]),
      secret: password,
    };
  }
  const token = checkSecret(c.sessionToken, `${where}.sessionToken`);
  return {
    grant: { grant_type: "session_token", session_token: token },
    label: "with the caller's session token",
    key: keyOf(["session", token]),
    secret: token,
  };
}

/**
 * The identity a request acts as. `own` is the service's script. Throws a TypeError naming the
 * bad option (never echoing a secret) before anything is sent.
 */
export function actingIdentity(own: { scriptName: string; scriptKey: string }, options: ActAs | undefined, where = "options"): ActingIdentity {
  const asLogin = options?.asLogin === undefined ? undefined : checkLogin(options.asLogin, `${where}.asLogin`);
  const scope: Record<string, string> = asLogin === undefined ? {} : { scope: `sudo_as_login:${asLogin}` };
  const sudo = asLogin === undefined ? "" : `as "${asLogin}"`;
  if (options?.credentials === undefined) {
    return {
      own: asLogin === undefined,
      key: asLogin === undefined ? "" : `sudo:${asLogin}`,
      label: sudo,
      grant: { grant_type: "client_credentials", client_id: own.scriptName, client_secret: own.scriptKey, ...scope },
      secrets: [own.scriptKey],
    };
  }
  const caller = callerGrant(options.credentials, `${where}.credentials`);
  return {
    own: false,
    key: `caller:${caller.key}${asLogin === undefined ? "" : `:sudo:${asLogin}`}`,
    label: asLogin === undefined ? caller.label : `${caller.label} ${sudo}`,
    grant: { ...caller.grant, ...scope },
    secrets: [caller.secret],
  };
}
