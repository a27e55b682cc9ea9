/** Errors the cache raises itself (everything else comes from the Backend, see ../shotgrid/errors.ts). */

/** A request the cache cannot serve as given; `field` names the offending part. */
export class InvalidCacheRequestError extends Error {
  override readonly name = "InvalidCacheRequestError";
  readonly code = "CACHE_INVALID_ARGUMENT";
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}
