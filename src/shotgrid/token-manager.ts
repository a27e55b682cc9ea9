/**
 * The access token shared by every caller of one client. At most one token request is in flight
 * (single-flight): concurrent callers that find no valid token all wait for the same fetch. A
 * token is replaced `refreshMarginMs` before it expires, and on a 401 the token that failed is
 * dropped so the next `get` fetches a new one — but only if nobody replaced it already, so a burst
 * of 401s costs one fetch, not one per request.
 */

/** What a token fetch returns. */
export interface FetchedToken {
  accessToken: string;
  /** Lifetime in seconds, as the site said (`expires_in`). */
  expiresInS: number;
}

export interface TokenManagerOptions {
  /** Replace a token this long before it expires (ms); capped at half its lifetime. */
  refreshMarginMs: number;
  /** Clock, injectable for tests. */
  now?: () => number;
}

export class TokenManager {
  #token: { value: string; refreshAt: number } | undefined;
  #inflight: Promise<string> | undefined;
  #fetches = 0;
  readonly #now: () => number;

  constructor(
    private readonly fetchToken: () => Promise<FetchedToken>,
    private readonly options: TokenManagerOptions,
  ) {
    this.#now = options.now ?? Date.now;
  }

  /** Token fetches started so far (for tests and metrics). */
  get fetchCount(): number {
    return this.#fetches;
  }

  /**
   * A valid token, fetching one if needed. The caller's signal stops the caller's wait, not the
   * shared fetch other callers may be waiting on.
   */
  get(signal?: AbortSignal): Promise<string> {
    if (this.#token && this.#now() < this.#token.refreshAt) return Promise.resolve(this.#token.value);
    const shared = this.#inflight ?? this.#startFetch();
    if (!signal) return shared;
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      shared.then(
        (t) => {
          signal.removeEventListener("abort", onAbort);
          resolve(t);
        },
        (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      );
    });
  }

  /** Drop `token` after the site refused it (401), unless it was already replaced. */
  invalidate(token: string): void {
    if (this.#token?.value === token) this.#token = undefined;
  }

  /** Forget everything (on close). */
  clear(): void {
    this.#token = undefined;
  }

  #startFetch(): Promise<string> {
    this.#fetches++;
    const started = this.#now();
    const p = this.fetchToken().then(
      ({ accessToken, expiresInS }) => {
        const lifetimeMs = Math.max(0, expiresInS * 1000);
        const margin = Math.min(this.options.refreshMarginMs, lifetimeMs / 2);
        // Count the lifetime from when the request started: the site's clock began before ours.
        this.#token = { value: accessToken, refreshAt: started + lifetimeMs - margin };
        this.#inflight = undefined;
        return accessToken;
      },
      (err: unknown) => {
        this.#inflight = undefined;
        throw err;
      },
    );
    this.#inflight = p;
    // A fetch nobody waits on any more (all callers aborted) must not be an unhandled rejection.
    p.catch(() => {});
    return p;
  }
}
