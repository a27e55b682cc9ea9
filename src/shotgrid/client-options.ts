import type { Logger } from "../logging/index.ts";
/**
 * Options of ShotGridClient, and their validation: every bad value is reported with the option's
 * name and the reason (never the script key's value).
 */

export interface ShotGridClientOptions {
  /** The site, e.g. `https://studio.shotgrid.autodesk.com` (or the simulator's URL). A path prefix is kept. */
  siteUrl: string;
  /** The script's name (client_credentials `client_id`). */
  scriptName: string;
  /** The script's key (client_credentials `client_secret`). Never logged, never in an error message. */
  scriptKey: string;
  /** REST API version in URLs. Default `"v1.1"`. */
  apiVersion?: string;
  /** Keep-alive connections to the site at most (undici Pool size). Default 16. */
  connections?: number;
  /** How long an idle keep-alive connection stays open (ms), unless the site hints a shorter time. Default 4 000 (short: a write on a socket the site just closed is not retried). */
  keepAliveTimeoutMs?: number;
  /** Time limit of one HTTP exchange, answer body included (ms). Default 30 000. */
  requestTimeoutMs?: number;
  /** Retries of one request after a transient failure (502/503/504, connection errors). Default 4. */
  maxRetries?: number;
  /** First retry waits up to this (ms); the ceiling doubles per retry, the wait is random below it (full jitter). Default 200. */
  retryBaseDelayMs?: number;
  /** No single retry wait is longer than this (ms). Default 5 000. */
  retryMaxDelayMs?: number;
  /** No retry starts after this much time since the first attempt (ms): bounds a call during an outage. Default 15 000. */
  maxRetryTimeMs?: number;
  /** Requests in flight to the site at most; more wait in a FIFO queue. Default 8. */
  maxConcurrent?: number;
  /** Records per page when searching (ShotGrid's default and the common maximum is 500). Default 500. */
  pageSize?: number;
  /** Replace the access token this long before it expires (ms); capped at half the token's lifetime. Default 60 000. */
  tokenRefreshMarginMs?: number;
  /**
   * Writes made as callers (sudo logins, callers' own credentials) each use a token of their own;
   * this many are kept, the least recently used dropped beyond it. Default 256.
   */
  maxActingTokens?: number;
  /** Where to log requests, retries and token refreshes. Default: nowhere. */
  logger?: Logger;
  /** Clock (epoch ms) that token lifetimes are measured with; tests pin it. Default `Date.now`. */
  now?: () => number;
}

export type ResolvedClientOptions = Required<Omit<ShotGridClientOptions, "logger" | "siteUrl">> & {
  logger?: Logger;
  /** `scheme://host:port` of the site. */
  origin: string;
  /** Path prefix before `/api/...` ("" for most sites). */
  basePath: string;
};

function int(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`ShotGridClient option ${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** Fill in defaults and check every option. */
export function resolveClientOptions(o: ShotGridClientOptions): ResolvedClientOptions {
  if (typeof o !== "object" || o === null) throw new TypeError("ShotGridClient options must be an object");
  let url: URL;
  try {
    url = new URL(o.siteUrl);
  } catch {
    throw new TypeError(`ShotGridClient option siteUrl is not a URL: ${JSON.stringify(String(o.siteUrl))}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new TypeError(`ShotGridClient option siteUrl must be http or https, got "${url.protocol}"`);
  }
  if (url.username || url.password) throw new TypeError("ShotGridClient option siteUrl must not carry credentials; use scriptName and scriptKey");
  if (typeof o.scriptName !== "string" || o.scriptName.trim() === "") throw new TypeError("ShotGridClient option scriptName must be a non-empty string");
  if (typeof o.scriptKey !== "string" || o.scriptKey === "") throw new TypeError("ShotGridClient option scriptKey must be a non-empty string");
  const apiVersion = o.apiVersion ?? "v1.1";
  if (!/^v\d+(\.\d+)?$/.test(apiVersion)) throw new TypeError(`ShotGridClient option apiVersion must look like "v1.1", got ${JSON.stringify(apiVersion)}`);
  return {
    origin: url.origin,
    basePath: url.pathname.replace(/\/+$/, ""),
    scriptName: o.scriptName,
    scriptKey: o.scriptKey,
    apiVersion,
    connections: int("connections", o.connections, 16, 1, 1024),
    keepAliveTimeoutMs: int("keepAliveTimeoutMs", o.keepAliveTimeoutMs, 4_000, 1, 3_600_000),
    requestTimeoutMs: int("requestTimeoutMs", o.requestTimeoutMs, 30_000, 1, 3_600_000),
    maxRetries: int("maxRetries", o.maxRetries, 4, 0, 100),
    retryBaseDelayMs: int("retryBaseDelayMs", o.retryBaseDelayMs, 200, 0, 600_000),
    retryMaxDelayMs: int("retryMaxDelayMs", o.retryMaxDelayMs, 5_000, 0, 600_000),
    maxRetryTimeMs: int("maxRetryTimeMs", o.maxRetryTimeMs, 15_000, 0, 3_600_000),
    maxConcurrent: int("maxConcurrent", o.maxConcurrent, 8, 1, 10_000),
    pageSize: int("pageSize", o.pageSize, 500, 1, 100_000),
    tokenRefreshMarginMs: int("tokenRefreshMarginMs", o.tokenRefreshMarginMs, 60_000, 0, 86_400_000),
    maxActingTokens: int("maxActingTokens", o.maxActingTokens, 256, 1, 100_000),
    logger: o.logger,
    now: typeof o.now === "function" ? o.now : Date.now,
  };
}
