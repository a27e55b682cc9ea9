/**
 * Access tokens of the identities requests act as (acting-identity.ts), other than the service's
 * own script: one TokenManager each (so each is fetched once, shared by concurrent callers,
 * refreshed before expiry and after a 401, like the main token), kept for the most recently used
 * `max` identities. A dropped identity only costs a token fetch the next time it is used.
 */
import type { ActingIdentity } from "./acting-identity.ts";
import { TokenManager, type FetchedToken, type TokenManagerOptions } from "./token-manager.ts";

export class IdentityTokens {
  /** Insertion order is use order: the first entry is the least recently used. */
  readonly #byKey = new Map<string, TokenManager>();
  #droppedFetches = 0;

  constructor(
    private readonly fetchFor: (identity: ActingIdentity) => Promise<FetchedToken>,
    private readonly options: TokenManagerOptions & { max: number },
  ) {}

  /** The token manager of `identity`, made on first use. */
  for(identity: ActingIdentity): TokenManager {
    let m = this.#byKey.get(identity.key);
    if (m) {
      this.#byKey.delete(identity.key);
    } else {
      m = new TokenManager(() => this.fetchFor(identity), this.options);
      while (this.#byKey.size >= this.options.max) {
        const [oldest, dropped] = this.#byKey.entries().next().value as [string, TokenManager];
        this.#droppedFetches += dropped.fetchCount;
        this.#byKey.delete(oldest);
      }
    }
    this.#byKey.set(identity.key, m);
    return m;
  }

  /** Identities holding a token manager now. */
  get size(): number {
    return this.#byKey.size;
  }

  /** Token fetches so far for every identity, dropped ones included. */
  get fetchCount(): number {
    let n = this.#droppedFetches;
    for (const m of this.#byKey.values()) n += m.fetchCount;
    return n;
  }

  clear(): void {
    for (const m of this.#byKey.values()) m.clear();
    this.#byKey.clear();
  }
}
