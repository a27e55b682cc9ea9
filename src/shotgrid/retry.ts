/**
 * The retry policy: which failures are worth another attempt, and how long to wait before it.
 * One classification (`classifyFailure`) serves reads and writes; they differ only in which
 * classes they repeat.
 *
 * Writes (create, update, delete, revive, batch) are retried only when the site certainly did
 * not process them —
 *  - "not-sent": the connection could not be opened (ECONNREFUSED, connect timeout before a
 *    socket, DNS failure): no byte of the request left;
 *  - "refused": HTTP 503: ShotGrid (and the load balancer in front of it) answer 503 when the
 *    site is down or over its concurrency limit, before the request is handled.
 * A write is never retried after a 502 or 504 (the gateway may have handed the request to the
 * site, which may have committed it), after a reset or closed socket once the request may have
 * been written, or after a timeout: retrying those could create a record twice. Those end in
 * WriteOutcomeUnknownError ("the write may have happened; check before retrying").
 * Reads (GET, `_search`, schema, token fetch) are safe to repeat and are retried on every
 * transient failure: 502, 503, 504 and connection errors; not after a timeout (the attempt already
 * spent the whole time budget of one request). 4xx answers are never retried.
 */

/** HTTP statuses that mean "try again later". */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

/** Error codes (Node's and undici's) raised before any byte of the request left. */
const CONNECT_ERROR_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_CONNECT_TIMEOUT"]);

/** Error codes of a connection that broke while the request or answer was in flight. */
const BROKEN_CONNECTION_CODES = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "UND_ERR_SOCKET", "UND_ERR_CLOSED"]);

/** The code TimeoutError carries (errors.ts): no complete answer within the request timeout. */
const TIMEOUT_CODE = "SG_TIMEOUT";

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

/**
 * What a failed attempt tells about the request:
 *  - "not-sent": it never left (connect refused, DNS failure, connect timeout);
 *  - "refused": the site answered 503, refusing it before handling it;
 *  - "broken": it may have reached the site, and the connection broke or a gateway answered
 *    502/504 instead of the site;
 *  - "timed-out": no complete answer within the request timeout;
 *  - "answered": the site gave an answer that another attempt would not change (4xx, 500…);
 *  - "unknown": an error this policy does not recognise.
 */
export type FailureClass = "not-sent" | "refused" | "broken" | "timed-out" | "answered" | "unknown";

export function classifyFailure(failure: { status?: number; error?: unknown }): FailureClass {
  if (failure.status !== undefined) {
    if (failure.status === 503) return "refused";
    return RETRYABLE_STATUSES.has(failure.status) ? "broken" : "answered";
  }
  const codes = errorCodes(failure.error);
  // A connect error anywhere in the chain wins: undici wraps it, and nothing was sent.
  if (codes.some((c) => CONNECT_ERROR_CODES.has(c))) return "not-sent";
  if (codes.includes(TIMEOUT_CODE)) return "timed-out";
  if (codes.some((c) => BROKEN_CONNECTION_CODES.has(c))) return "broken";
  return "unknown";
}

/** True when the request never reached the site (safe to retry even a write). */
export function isConnectError(err: unknown): boolean {
  return classifyFailure({ error: err }) === "not-sent";
}

/** True for a connection-level failure of any kind (connect, reset, closed socket). */
export function isConnectionError(err: unknown): boolean {
  const c = classifyFailure({ error: err });
  return c === "not-sent" || c === "broken";
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
  const c = classifyFailure(failure);
  if (c === "not-sent" || c === "refused") return true;
  return idempotent && c === "broken";
}

/**
 * After a write failed this way (and was not retried), is its outcome unknown? True unless the
 * request provably was not processed ("not-sent", "refused") or the site answered ("answered").
 */
export function writeOutcomeUnknown(failure: { status?: number; error?: unknown }): boolean {
  const c = classifyFailure(failure);
  return c === "broken" || c === "timed-out" || c === "unknown";
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
