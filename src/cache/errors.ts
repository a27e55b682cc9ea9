/** Errors the cache raises itself (everything else comes from the Backend, see ../shotgrid/errors.ts). */

/**
 * The stable codes of the cache's own errors (each error's `code`). Callers decide by code,
 * never by message text: messages are for people and may be reworded.
 */
export const CacheErrorCode = {
  invalidArgument: "CACHE_INVALID_ARGUMENT",
  /** The shared store (Redis) could not be reached or did not answer in time (`StoreUnavailableError`). */
  storeUnavailable: "CACHE_STORE_UNAVAILABLE",
} as const;

/** A request the cache cannot serve as given; `field` names the offending part. */
export class InvalidCacheRequestError extends Error {
  override readonly name = "InvalidCacheRequestError";
  readonly code = CacheErrorCode.invalidArgument;
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

/**
 * The stable code of an error (the cache's, or the Backend's `SG_…`), looking through `cause`
 * for an error that wraps another; undefined when none has one.
 */
export function errorCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}
