/**
 * Access tokens of the simulated site: client_credentials, password, session_token and refresh_token grants,
 * tokens that expire after the configured lifetime, single-use refresh tokens. Tokens are opaque
 * random strings shaped like JWTs; nothing about a caller can be read from them. A grant may ask
 * to act as a HumanUser (`scope=sudo_as_login:<login>`); the token then speaks for that user.
 */
import { randomBytes } from "node:crypto";
import { SG_CODES, SimError } from "./sim-error.ts";
import type { SimStore } from "./store.ts";
import type { Link } from "./values.ts";

/** Who a token speaks for. */
export interface Principal {
  kind: "script" | "user";
  /** The ApiUser or HumanUser record the event log names. */
  user: Link;
  /** The script name or the user login (never the key or the password). */
  login: string;
  /** When acting as a HumanUser through `sudo_as_login`: who authenticated (`user` is the HumanUser). */
  sudoBy?: Link;
}

/**
 * The principal a grant's `scope` asks for. `scope=sudo_as_login:<login>` makes the token act as
 * that HumanUser, so its writes are attributed to the user in the event log. Refused as a real
 * site refuses it, at the token endpoint with 400 code 102: an unknown or retired login, an
 * inactive account (`sg_status_list` not `act`). (Real sites also refuse accounts whose
 * `can_impersonate_this_user` an administrator turned off; the simulated site has no such flag.)
 * Any grant may ask (the simulated site has no permission rules). Other scopes are ignored.
 */
export function scopedPrincipal(store: SimStore, principal: Principal, scope: string | null): Principal {
  const m = /(?:^|\s)sudo_as_login:(\S+)/.exec(scope ?? "");
  if (!m) return principal;
  const login = m[1]!;
  const refuse = (why: string) => new SimError(400, SG_CODES.badCredentials, `Cannot 'sudo' - ${why}: '${login}'`);
  if (!store.schema.hasType("HumanUser")) throw refuse("unknown or retired user");
  let found: ReturnType<SimStore["getActive"]>;
  for (const r of store.records("HumanUser")) if (!r.retired && r.fields["login"] === login) found = r;
  if (!found) throw refuse("unknown or retired user");
  const status = found.fields["sg_status_list"];
  if (status !== undefined && status !== null && status !== "act") throw refuse("inactive user account");
  return { kind: "user", user: { type: "HumanUser", id: found.id }, login, sudoBy: principal.user };
}

export interface TokenAnswer {
  token_type: "Bearer";
  access_token: string;
  expires_in: number;
  refresh_token: string;
}

interface Issued {
  principal: Principal;
  expiresAt: number;
}

/** Refresh tokens live for a day (sites keep them far longer than access tokens). */
const REFRESH_LIFETIME_MS = 24 * 3600 * 1000;

export class TokenIssuer {
  private readonly access = new Map<string, Issued>();
  private readonly refresh = new Map<string, Issued>();
  /** Access tokens handed out since start (tests check a client does not fetch one per request). */
  issuedCount = 0;

  constructor(
    private readonly lifetimeS: () => number,
    private readonly now: () => number = Date.now,
  ) {}

  issue(principal: Principal): TokenAnswer {
    this.prune();
    const lifetime = this.lifetimeS();
    const access_token = fakeJwt();
    const refresh_token = randomBytes(24).toString("base64url");
    const now = this.now();
    this.access.set(access_token, { principal, expiresAt: now + lifetime * 1000 });
    this.refresh.set(refresh_token, { principal, expiresAt: now + REFRESH_LIFETIME_MS });
    this.issuedCount++;
    return { token_type: "Bearer", access_token, expires_in: lifetime, refresh_token };
  }

  /** The principal of a valid token, or why it is not valid. */
  verify(token: string): Principal | "expired" | "unknown" {
    const t = this.access.get(token);
    if (!t) return "unknown";
    if (t.expiresAt <= this.now()) return "expired";
    return t.principal;
  }

  /** Use a refresh token (once). */
  redeem(refreshToken: string): Principal | undefined {
    const t = this.refresh.get(refreshToken);
    if (!t) return undefined;
    this.refresh.delete(refreshToken);
    return t.expiresAt > this.now() ? t.principal : undefined;
  }

  /** Make every access token issued so far expired (tests of refresh on 401). */
  expireAll(): void {
    const past = this.now() - 1;
    for (const t of this.access.values()) t.expiresAt = past;
  }

  private prune(): void {
    if (this.access.size < 10_000) return;
    const now = this.now();
    for (const [k, t] of this.access) if (t.expiresAt <= now) this.access.delete(k);
    for (const [k, t] of this.refresh) if (t.expiresAt <= now) this.refresh.delete(k);
  }
}

function fakeJwt(): string {
  const header = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");
  return `${header}.${randomBytes(24).toString("base64url")}.${randomBytes(32).toString("base64url")}`;
}
