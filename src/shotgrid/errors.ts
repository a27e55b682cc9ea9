/**
 * One error hierarchy for everything a Backend can throw, with stable codes (undici's style).
 * Messages never carry secrets: no script key, no token, no Authorization header.
 */

/** One entry of ShotGrid's error envelope `{"errors":[…]}`. */
export interface ShotGridErrorDetail {
  id?: string | null;
  status?: number | null;
  /** ShotGrid's numeric code: 102 bad credentials, 103 unknown field / bad request, 104 not found… */
  code?: number | null;
  title?: string | null;
  detail?: string | null;
  source?: unknown;
  meta?: unknown;
}

export type BackendErrorCode =
  /** The site answered with an error envelope (4xx other than the ones below). */
  | "SG_REQUEST_REJECTED"
  /** 404 / code 104. */
  | "SG_NOT_FOUND"
  /** Authentication failed (bad credentials, or 401 after one token refresh). */
  | "SG_AUTH_FAILED"
  /**
   * ShotGrid would not act as the caller: sudo as an unknown, retired, inactive or
   * non-impersonable login, or the caller's own credentials were refused. The service's own
   * script credentials may be fine.
   */
  | "SG_CALLER_AUTH_FAILED"
  /** The site is down, overloaded (5xx, 503 at its concurrency limit) or unreachable, after retries. */
  | "SG_UNAVAILABLE"
  /**
   * A write may or may not have been made: the request may have reached the site, but no answer
   * came back (a reset or closed connection after sending, a timeout, a 502/504 from a gateway).
   * Never retried blindly; a kind of SG_UNAVAILABLE.
   */
  | "SG_WRITE_OUTCOME_UNKNOWN"
  /** A request took longer than its timeout. */
  | "SG_TIMEOUT"
  /** The site's answer could not be understood (not JSON, wrong shape). */
  | "SG_MALFORMED_RESPONSE"
  /** The caller aborted. */
  | "SG_ABORTED";

export class BackendError extends Error {
  override readonly name: string = "BackendError";
  constructor(
    readonly code: BackendErrorCode,
    message: string,
    /** HTTP status of the site's answer, when there was one. */
    readonly status?: number,
    /** ShotGrid's own error entries, kept as they came (code, title, detail). */
    readonly details: ShotGridErrorDetail[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** ShotGrid's numeric error code of the first entry, if any. */
  get shotgridCode(): number | undefined {
    return this.details[0]?.code ?? undefined;
  }
}

export class NotFoundError extends BackendError {
  override readonly name = "NotFoundError";
  constructor(message: string, status = 404, details: ShotGridErrorDetail[] = []) {
    super("SG_NOT_FOUND", message, status, details);
  }
}

export class RequestRejectedError extends BackendError {
  override readonly name = "RequestRejectedError";
  constructor(message: string, status: number, details: ShotGridErrorDetail[] = []) {
    super("SG_REQUEST_REJECTED", message, status, details);
  }
}

export class AuthError extends BackendError {
  override readonly name: string = "AuthError";
  constructor(message: string, status?: number, details: ShotGridErrorDetail[] = [], code: "SG_AUTH_FAILED" | "SG_CALLER_AUTH_FAILED" = "SG_AUTH_FAILED") {
    super(code, message, status, details);
  }
}

/**
 * ShotGrid refused to act as the caller (see SG_CALLER_AUTH_FAILED): the caller's problem, not the
 * service's configuration, so it is told apart from AuthError's own-credentials failures.
 */
export class CallerAuthError extends AuthError {
  override readonly name = "CallerAuthError";
  constructor(message: string, status?: number, details: ShotGridErrorDetail[] = []) {
    super(message, status, details, "SG_CALLER_AUTH_FAILED");
  }
}

export class UnavailableError extends BackendError {
  override readonly name: string = "UnavailableError";
  constructor(message: string, status?: number, options?: { cause?: unknown; code?: "SG_UNAVAILABLE" | "SG_WRITE_OUTCOME_UNKNOWN" }) {
    super(options?.code ?? "SG_UNAVAILABLE", message, status, [], options);
  }
}

/** What every outcome-unknown message ends with, so a caller (or a person) knows what to do. */
export const WRITE_MAY_HAVE_HAPPENED = "the write may have happened; check before retrying";

/**
 * A write whose outcome is unknown (SG_WRITE_OUTCOME_UNKNOWN): the request may have reached the
 * site and no answer says what became of it. Repeating it could make the change twice (two
 * records from one create), so it is never retried here; the caller must look first.
 */
export class WriteOutcomeUnknownError extends UnavailableError {
  override readonly name = "WriteOutcomeUnknownError";
  /** `reason` says what happened, e.g. `the connection broke after the request was sent (ECONNRESET)`. */
  constructor(request: string, reason: string, status?: number, options?: { cause?: unknown }) {
    super(`${request}: ${reason}; ${WRITE_MAY_HAVE_HAPPENED}`, status, { cause: options?.cause, code: "SG_WRITE_OUTCOME_UNKNOWN" });
  }
}

export class TimeoutError extends BackendError {
  override readonly name = "TimeoutError";
  constructor(message: string) {
    super("SG_TIMEOUT", message);
  }
}

export class MalformedResponseError extends BackendError {
  override readonly name = "MalformedResponseError";
  constructor(message: string, status?: number) {
    super("SG_MALFORMED_RESPONSE", message, status);
  }
}

export class AbortedError extends BackendError {
  override readonly name = "AbortedError";
  /**
   * `reason` is the caller's signal's reason (kept as `cause`): it tells a deadline that passed
   * (deadline_exceeded for the client) from a client that went away (canceled).
   */
  constructor(message = "request aborted by the caller", reason?: unknown) {
    super("SG_ABORTED", message, undefined, [], reason === undefined ? undefined : { cause: reason });
  }
}

/** The error for a wait that `signal` (aborted) ended, carrying its reason. */
export function abortedBy(signal: AbortSignal): AbortedError {
  return new AbortedError(undefined, signal.reason);
}
