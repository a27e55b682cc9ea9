/**
 * Bearer tokens: how they are made and how they are recognised. The server only ever keeps a
 * token's SHA-256; the token itself exists in the client's secret store and, once, on the
 * terminal of whoever ran `auth new-token`.
 */
import { createHash, randomBytes } from "node:crypto";

/** Marks our tokens, so a leaked one is recognisable (secret scanners, log greps). */
export const TOKEN_PREFIX = "sgc_";

/**
 * A new token: the prefix and 32 random bytes in base64url (256 bits). That much entropy is
 * what makes a plain, unsalted SHA-256 a safe thing to store: nobody can guess or brute-force
 * a preimage of it.
 */
export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

/** The token's SHA-256 as raw bytes. */
export function tokenDigest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** The token's SHA-256 in lowercase hex, as the auth file stores it. */
export function hashToken(token: string): string {
  return tokenDigest(token).toString("hex");
}
