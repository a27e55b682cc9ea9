/**
 * Who is calling, and may they do this? `authenticate` turns an Authorization header into a
 * Caller; `require` checks a scope. Every entry point (Connect interceptor, fast path, api3)
 * calls these, so there is one rule for who may call.
 *
 * Without an auth file the policy is open: everyone is the anonymous caller, who may read and
 * watch but not write (see ANONYMOUS). With one, every call needs a known bearer token.
 */
import { timingSafeEqual } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { loadAuthFile, type AuthClient, type AuthFile } from "./auth-file.ts";
import { ANONYMOUS, listOf, type Caller, type Scope } from "./caller.ts";
import { tokenDigest } from "./token.ts";

/** The flag that names the auth file; messages point people at it. */
export const AUTH_FILE_FLAG = "--auth-file";

interface KnownClient {
  caller: Caller;
  digest: Buffer;
}

export class AccessPolicy {
  /**
   * Known clients by the hex SHA-256 of their token. A Map lookup is not constant-time, and
   * that is fine here: what an attacker could learn from its timing is how a hash of *their own
   * guess* compares with stored hashes. Tokens carry 256 random bits, so knowing bits of their
   * hashes gives no way to build a token that matches one (that would need a SHA-256 preimage);
   * there is no byte-by-byte oracle on the token itself, which is what a timing attack on a
   * plain string comparison of tokens would give. The final comparison of the digests is
   * constant-time anyway.
   */
  readonly #byHash: Map<string, KnownClient> | null;

  private constructor(clients: readonly AuthClient[] | null) {
    this.#byHash = clients && new Map(clients.map((c) => [c.tokenSha256, { caller: callerOf(c), digest: Buffer.from(c.tokenSha256, "hex") }]));
  }

  /** Open mode: no auth file. Reads and watches for everyone, no writes. */
  static open(): AccessPolicy {
    return new AccessPolicy(null);
  }

  /** Every call needs a token listed in `file`. */
  static fromFile(file: AuthFile): AccessPolicy {
    return new AccessPolicy(file.clients);
  }

  /** The policy for a server's `--auth-file` value: open when there is none. */
  static async load(authFilePath: string | undefined): Promise<AccessPolicy> {
    return authFilePath === undefined || authFilePath === "" ? AccessPolicy.open() : AccessPolicy.fromFile(await loadAuthFile(authFilePath));
  }

  /** "open" without an auth file, "tokens" with one. Safe to show on a status page. */
  get mode(): "open" | "tokens" {
    return this.#byHash === null ? "open" : "tokens";
  }

  /** How many clients the auth file lists (0 in open mode). */
  get clientCount(): number {
    return this.#byHash?.size ?? 0;
  }

  /**
   * The caller an `Authorization` header value identifies (`undefined` when the request has
   * none). Throws `unauthenticated` when the token is missing, malformed or unknown; the message
   * says which, and never contains the header. In open mode the header is ignored.
   */
  authenticate(authorization: string | undefined | null): Caller {
    if (this.#byHash === null) return ANONYMOUS;
    if (authorization === undefined || authorization === null || authorization.trim() === "") {
      throw new ConnectError(`missing credentials: this server needs an "Authorization: Bearer <token>" header`, Code.Unauthenticated);
    }
    const m = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!m)
      throw new ConnectError(`malformed credentials: the Authorization header must be "Bearer <token>" (one token, no other scheme)`, Code.Unauthenticated);
    const digest = tokenDigest(m[1]!);
    const known = this.#byHash.get(digest.toString("hex"));
    if (!known || !timingSafeEqual(known.digest, digest)) {
      throw new ConnectError(
        `invalid credentials: the bearer token is not known to this server (mistyped, revoked, or meant for another server)`,
        Code.Unauthenticated,
      );
    }
    return known.caller;
  }

  /**
   * Throw `permission_denied` unless the caller has `scope`. In open mode a write is refused
   * with the reason: there is no one to make it as, and the flag that fixes that.
   */
  require(caller: Caller, scope: Scope): void {
    if (caller.scopes.has(scope)) return;
    if (caller.anonymous) {
      throw new ConnectError(
        `${scope === "write" ? "writes need" : `the "${scope}" scope needs`} an identified client: this server runs without ${AUTH_FILE_FLAG}, so callers are anonymous (reads and watches only). Start it with ${AUTH_FILE_FLAG} and call with a token that has the "${scope}" scope`,
        Code.PermissionDenied,
      );
    }
    throw new ConnectError(`client "${caller.name}" lacks the "${scope}" scope (it has: ${listOf(caller.scopes)})`, Code.PermissionDenied);
  }

  /** `authenticate` then `require`: the whole check for one call. */
  authorize(authorization: string | undefined | null, scope: Scope): Caller {
    const caller = this.authenticate(authorization);
    this.require(caller, scope);
    return caller;
  }
}

function callerOf(c: AuthClient): Caller {
  return Object.freeze({
    name: c.name,
    anonymous: false,
    scopes: new Set(c.scopes),
    projectIds: c.projects && new Set(c.projects),
    entityTypes: c.entityTypes && new Set(c.entityTypes),
    sudoAsLogin: c.sudoAsLogin,
  });
}
