/**
 * Errors are told apart by their stable code (src/cache/errors.ts), never by their wording: the
 * service's readiness counts a follower failing on the cache store as a store outage, not as an
 * unreadable event log, by `CACHE_STORE_UNAVAILABLE`.
 */
import { describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../src/cache/cache-store.ts";
import { CacheErrorCode, errorCode, InvalidCacheRequestError } from "../src/cache/errors.ts";
import { UnavailableError } from "../src/shotgrid/errors.ts";

describe("cache error codes", () => {
  it("reads the code of the cache's and the Backend's errors, through a wrapping cause, and never from the message", () => {
    const store = new StoreUnavailableError("bump", "redis is reconnecting");
    expect(errorCode(store)).toBe(CacheErrorCode.storeUnavailable);
    expect(errorCode(new Error("applying events failed", { cause: store }))).toBe(CacheErrorCode.storeUnavailable);
    expect(errorCode(new InvalidCacheRequestError("fields[0]", "unknown field"))).toBe(CacheErrorCode.invalidArgument);
    expect(errorCode(new UnavailableError("the site is down"))).toBe("SG_UNAVAILABLE");
    // Same words, no code: not a store outage.
    expect(errorCode(new Error(store.message))).toBeUndefined();
    expect(errorCode("cache store unavailable during get: x")).toBeUndefined();
  });
});
