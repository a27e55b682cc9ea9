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
  /** The site is down, overloaded (5xx, 503 at its concurrency limit) or unreachable, after retries. */
  | "SG_UNAVAILABLE"
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
  override readonly name = "AuthError";
  constructor(message: string, status?: number, details: ShotGridErrorDetail[] = []) {
    super("SG_AUTH_FAILED", message, status, details);
  }
}

export class UnavailableError extends BackendError {
  override readonly name = "UnavailableError";
  constructor(message: string, status?: number, options?: { cause?: unknown }) {
    super("SG_UNAVAILABLE", message, status, [], options);
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
