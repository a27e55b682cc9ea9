/**
 * The retry policy: which failures are worth another attempt, and how long to wait before it.
 *
 * The rule for writes (create, update, delete, revive, batch): a write is retried only when the
 * site certainly did not process it —
 *  - the connection could not be opened (ECONNREFUSED, connect timeout, DNS failure): nothing
 *    was sent;
 *  - HTTP 503: ShotGrid (and the load balancer in front of it) answer 503 when the site is down
 *    or over its concurrency limit, before the request is handled.
 * A write is never retried after a 502 or 504 (the gateway may have handed the request to the
 * site, which may have committed it), after a reset or closed socket once the request may have
 * been written, or after a timeout: retrying those could create a record twice.
 * Reads (GET, `_search`, schema, token fetch) are safe to repeat and are retried on every
 * transient failure: 502, 503, 504 and connection errors. 4xx answers are never retried.
 */

/** HTTP statuses that mean "try again later". */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

/** Error codes (Node's and undici's) raised before any byte of the request left. */
const CONNECT_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/** Error codes of a connection that broke while the request or answer was in flight. */
const BROKEN_CONNECTION_CODES = new Set([
  "ECONNRESET",
  "EPIPE",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
]);

/** The `code` of an error or of any error in its `cause` chain. */
function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e && typeof e === "object" && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
    e = (e as { cause?: unknown }).cause;
  }
  return codes;
}

/** True when the request never reached the site (safe to retry even a write). */
export function isConnectError(err: unknown): boolean {
  return errorCodes(err).some((c) => CONNECT_ERROR_CODES.has(c));
}

/** True for a connection-level failure of any kind (connect, reset, closed socket). */
export function isConnectionError(err: unknown): boolean {
  return errorCodes(err).some((c) => CONNECT_ERROR_CODES.has(c) || BROKEN_CONNECTION_CODES.has(c));
}

/**
 * Error codes of a connection the site closed or reset under the request: typically a pooled
 * keep-alive socket the site's idle timeout closed just as the request was written ("other
 * side closed"). Not UND_ERR_CLOSED: that is our own pool closing.
 */
const CLOSED_BY_SITE_CODES = new Set(["UND_ERR_SOCKET", "ECONNRESET", "EPIPE"]);

/** True when the site closed or reset the connection before answering. */
export function isClosedBySite(err: unknown): boolean {
  return errorCodes(err).some((c) => CLOSED_BY_SITE_CODES.has(c));
}

/** May a failed attempt be repeated? `idempotent` is false for writes. */
export function isRetryable(failure: { status?: number; error?: unknown }, idempotent: boolean): boolean {
  if (failure.status !== undefined) {
    if (!RETRYABLE_STATUSES.has(failure.status)) return false;
    return idempotent || failure.status === 503;
  }
  if (failure.error === undefined) return false;
  return idempotent ? isConnectionError(failure.error) : isConnectError(failure.error);
}

export interface BackoffPolicy {
  /** Base delay of the first retry (ms); doubles each attempt. */
  baseDelayMs: number;
  /** No single wait is longer than this (ms). */
  maxDelayMs: number;
}

/**
 * Exponential backoff with full jitter (AWS's "Exponential Backoff And Jitter"): a uniform wait in
 * [0, min(max, base·2^attempt)], so many clients retrying at once spread out instead of hammering
 * the site in lockstep. `attempt` is 0 for the first retry. `random` is injectable for tests.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** Sleep `ms`, or reject with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
