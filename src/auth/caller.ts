/**
 * Who is calling and what they may do. A Caller is the one answer every entry point (Connect
 * interceptor, fast path, api3) gets from the AccessPolicy, so the rules that follow it
 * (scopes, read limits) are checked the same way everywhere.
 */

/**
 * What a client may do: `read` GetEntity/Query (and the fast path, api3 reads), `watch`
 * WatchChanges, `write` create/update/delete (attributed to the client's `sudo_as_login`),
 * `status` the future status page.
 */
export const SCOPES = ["read", "write", "watch", "status"] as const;
export type Scope = (typeof SCOPES)[number];

export interface Caller {
  /** The client's name from the auth file, or "anonymous" in open mode. Safe to log. */
  readonly name: string;
  /** True only in open mode (no --auth-file): nobody is identified. */
  readonly anonymous: boolean;
  readonly scopes: ReadonlySet<Scope>;
  /** Projects (ids) the client may read; null means every project. */
  readonly projectIds: ReadonlySet<number> | null;
  /** Entity types the client may read; null means every type. */
  readonly entityTypes: ReadonlySet<string> | null;
  /** The ShotGrid login the client's writes are made as; null when it may not write. */
  readonly sudoAsLogin: string | null;
}

/**
 * The caller in open mode: reads and watches, no limits, no writes. Writes need someone to make
 * them as (ShotGrid attributes every change to a user), and an anonymous caller is no one.
 */
export const ANONYMOUS: Caller = Object.freeze({
  name: "anonymous",
  anonymous: true,
  scopes: new Set<Scope>(["read", "watch"]),
  projectIds: null,
  entityTypes: null,
  sudoAsLogin: null,
});

/** "12, 13" — for messages. */
export function listOf(values: Iterable<string | number>): string {
  return [...values].join(", ");
}
