/**
 * One request to the site, done properly: a shared keep-alive pool, the access token of the
 * identity the request acts as (the service's script, a sudo login, or a caller's credentials;
 * each fetched once, refreshed before expiry and once on 401), the cap on concurrent requests, a
 * per-attempt timeout combined with the caller's signal, retries with backoff per retry.ts (a
 * write only when it provably was not processed), and every failure mapped to a BackendError.
 * Nothing here knows what the request means.
 */
import { Pool } from "undici";
import {
  AbortedError,
  abortedBy,
  AuthError,
  BackendError,
  CallerAuthError,
  MalformedResponseError,
  TimeoutError,
  UnavailableError,
  WRITE_MAY_HAVE_HAPPENED,
  WriteOutcomeUnknownError,
} from "./errors.ts";
import { actingIdentity, type ActingIdentity } from "./acting-identity.ts";
import { IdentityTokens } from "./identity-tokens.ts";
import { ConcurrencyLimit } from "./concurrency-limit.ts";
import { mapErrorResponse } from "./error-mapping.ts";
import { SecretRedactor } from "./redaction.ts";
import { backoffDelay, classifyFailure, isClosedBySite, isConnectionError, isRetryable, sleep, writeOutcomeUnknown } from "./retry.ts";
import { TokenManager, type FetchedToken } from "./token-manager.ts";
import type { ResolvedClientOptions } from "./client-options.ts";

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

export interface SiteRequest {
  method: HttpMethod;
  /** Path after `/api/{version}`, with its query string, e.g. `/entity/Shot/5?fields=code`. */
  path: string;
  /** A JSON body (serialised here). */
  json?: unknown;
  /** Content type of a JSON body; default `application/json`. */
  contentType?: string;
  /** Safe to repeat (reads, `_search`): retried on every transient failure. Writes are not; see retry.ts. */
  idempotent: boolean;
  /** Who the request acts as (acting-identity.ts); default the service's own script. */
  as?: ActingIdentity;
  signal?: AbortSignal;
}

export interface SiteAnswer {
  status: number;
  /** The parsed JSON body; undefined for an empty body (204). */
  body: unknown;
}

/** What one HTTP exchange gave: an answer, or a thrown error. */
type Attempt = { status: number; text: string } | { error: unknown };

export class SiteTransport {
  readonly #pool: Pool;
  readonly #limit: ConcurrencyLimit;
  readonly #tokens: TokenManager;
  readonly #acting: IdentityTokens;
  readonly #own: ActingIdentity;
  readonly #secrets: SecretRedactor;
  readonly #apiPrefix: string;
  #closed = false;

  constructor(private readonly o: ResolvedClientOptions) {
    // Room for every live identity's access and refresh token and caller secret, plus the main ones.
    this.#secrets = new SecretRedactor(16 + 3 * o.maxActingTokens);
    this.#secrets.add(o.scriptKey);
    this.#own = actingIdentity(o, undefined);
    this.#pool = new Pool(o.origin, {
      connections: o.connections,
      keepAliveTimeout: o.keepAliveTimeoutMs,
      // A connect that fails on its own timer is "not sent" (retry.ts), so a write may be retried;
      // kept well inside the request timeout so that timer, not the request's, ends a dead connect.
      connectTimeout: Math.max(1, Math.min(10_000, Math.floor(o.requestTimeoutMs / 2))),
      // The per-attempt AbortSignal is the one deadline; undici's own timers would only race it.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    this.#limit = new ConcurrencyLimit(o.maxConcurrent);
    this.#apiPrefix = `${o.basePath}/api/${o.apiVersion}`;
    const tokenOptions = { refreshMarginMs: o.tokenRefreshMarginMs, now: o.now };
    this.#tokens = new TokenManager(() => this.#fetchToken(this.#own), tokenOptions);
    this.#acting = new IdentityTokens((identity) => this.#fetchToken(identity), { ...tokenOptions, max: o.maxActingTokens });
  }

  /** The identity of `options` (asLogin, credentials); throws a TypeError naming a bad option. */
  identity(options: { asLogin?: unknown; credentials?: unknown } | undefined): ActingIdentity {
    return actingIdentity(this.o, options);
  }

  /** Removes the script key and every token seen from a string. */
  get redact(): (text: string) => string {
    return this.#secrets.redact;
  }

  /** Token fetches of the service's own script so far (tests and metrics). */
  get tokenFetches(): number {
    return this.#tokens.fetchCount;
  }

  /** Token fetches for sudo logins and callers' credentials so far, and identities holding one now. */
  get actingTokens(): { fetches: number; held: number } {
    return { fetches: this.#acting.fetchCount, held: this.#acting.size };
  }

  /** Upstream requests in flight and queued now. */
  get load(): { active: number; waiting: number } {
    return { active: this.#limit.active, waiting: this.#limit.waiting };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#tokens.clear();
    this.#acting.clear();
    await this.#pool.close();
  }

  /**
   * Ask the site for a token of `identity` (a real round trip: no token held for it is used), so
   * its credentials are known good now. A refusal is the caller's: CallerAuthError.
   */
  async verify(identity: ActingIdentity): Promise<void> {
    try {
      await this.#fetchToken(identity);
    } catch (err) {
      throw this.#asCallerError(identity, err);
    }
  }

  /**
   * POST an api3 body to the site's `/api3/json` (no Bearer token: api3 carries the caller's
   * credentials in its body, whose `secrets` are added to the redactor first). Resolves with any
   * HTTP 200 answer, api3 faults included; other statuses throw a BackendError. `idempotent`: as
   * in SiteRequest (false for a method that may write).
   */
  async relayApi3(body: unknown, secrets: readonly string[], idempotent: boolean, signal?: AbortSignal): Promise<SiteAnswer> {
    for (const s of secrets) this.#secrets.add(s);
    const label = `POST ${this.o.basePath}/api3/json`;
    const req: SiteRequest = { method: "POST", path: "/api3/json", json: body, contentType: "application/json; charset=utf-8", idempotent, signal };
    return this.#withRetries(label, idempotent, signal, () => this.#exchange(req, label, {}, undefined, true));
  }

  /** Send an authenticated request; resolves with a 2xx answer or throws a BackendError. */
  async send(req: SiteRequest): Promise<SiteAnswer> {
    const label = `${req.method} ${this.#apiPrefix}${req.path.split("?")[0]}`;
    const identity = req.as ?? this.#own;
    let refreshedAfter401 = false;
    try {
      return await this.#withRetries(label, req.idempotent, req.signal, async () => {
        const tokens = identity.own ? this.#tokens : this.#acting.for(identity);
        const token = await this.#token(tokens, req.signal);
        const attempt = await this.#exchange(req, label, { authorization: `Bearer ${token}` });
        if ("status" in attempt && attempt.status === 401 && !refreshedAfter401) {
          // The token expired early or was revoked: drop it, fetch another once, try again once.
          // Safe for a write too: a 401 is answered before the request is handled.
          refreshedAfter401 = true;
          tokens.invalidate(token);
          this.o.logger?.info({ request: label, as: identity.label || undefined }, "shotgrid: access token refused (401), fetching a new one");
          const fresh = await this.#token(tokens, req.signal);
          return this.#exchange(req, label, { authorization: `Bearer ${fresh}` });
        }
        return attempt;
      });
    } catch (err) {
      throw this.#asCallerError(identity, err);
    }
  }

  /** A token; a caller's abort while waiting for it becomes AbortedError. */
  async #token(tokens: TokenManager, signal: AbortSignal | undefined): Promise<string> {
    try {
      return await tokens.get(signal);
    } catch (err) {
      throw this.#callerAbort(signal) ?? err;
    }
  }

  /**
   * An authentication failure while acting for a caller is the caller's (an unknown sudo login,
   * the caller's wrong password), not the service's configuration: CallerAuthError.
   */
  #asCallerError(identity: ActingIdentity, err: unknown): unknown {
    if (identity.own || !(err instanceof AuthError) || err.code !== "SG_AUTH_FAILED") return err;
    return new CallerAuthError(`ShotGrid will not act ${identity.label}: ${err.message}`, err.status, err.details);
  }

  /** The token grant of `identity`; secrets go only in the form body, never in a URL or a log. */
  async #fetchToken(identity: ActingIdentity): Promise<FetchedToken> {
    const label = `POST ${this.#apiPrefix}/auth/access_token${identity.label ? ` (${identity.label})` : ""}`;
    for (const secret of identity.secrets) this.#secrets.add(secret);
    const form = new URLSearchParams(identity.grant).toString();
    this.o.logger?.debug({ request: label }, "shotgrid: fetching an access token");
    const answer = await this.#withRetries(
      label,
      true,
      undefined,
      () => this.#exchange({ method: "POST", path: "/auth/access_token", idempotent: true }, label, {}, form),
      true,
    );
    const body = answer.body as { access_token?: unknown; expires_in?: unknown } | undefined;
    if (typeof body !== "object" || body === null || typeof body.access_token !== "string" || body.access_token === "") {
      throw new MalformedResponseError(`${label}: the token answer has no access_token`, answer.status);
    }
    this.#secrets.add(body.access_token);
    const refresh = (body as { refresh_token?: unknown }).refresh_token;
    if (typeof refresh === "string") this.#secrets.add(refresh);
    // A missing or odd expires_in: assume the recorded default (600 s) rather than failing.
    const expiresInS = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : 600;
    return { accessToken: body.access_token, expiresInS };
  }

  /**
   * Run attempts until one succeeds, a failure is not retryable, or the retry budget (count and
   * total time) is spent. Maps the final failure to a BackendError.
   */
  async #withRetries(
    label: string,
    idempotent: boolean,
    signal: AbortSignal | undefined,
    attemptOnce: () => Promise<Attempt>,
    isAuth = false,
  ): Promise<SiteAnswer> {
    const started = Date.now();
    let reconnected = false;
    for (let retry = 0; ; retry++) {
      if (this.#closed) throw new UnavailableError(`${label}: the ShotGrid client is closed`);
      const attempt = await attemptOnce();
      const failure = "error" in attempt ? { error: attempt.error } : attempt.status >= 300 ? { status: attempt.status } : undefined;
      if (!failure) return this.#parse(label, attempt as { status: number; text: string });

      // The exchange's own AbortedError says whether a write may have gone out; keep it.
      if (failure.error instanceof AbortedError) throw failure.error;
      const aborted = this.#callerAbort(signal);
      if (aborted) throw aborted;
      // A timeout is classified (retry.ts) like any other failure; other errors of ours are final.
      if (failure.error instanceof BackendError && !(failure.error instanceof TimeoutError)) throw failure.error;

      if (idempotent && !reconnected && retry < this.o.maxRetries && isClosedBySite(failure.error)) {
        // Most often a pooled keep-alive socket the site closed as we wrote to it: nothing is
        // wrong with the site, so the read is sent again at once on a new connection, without
        // backoff and whatever the retry time budget (time queued behind the concurrency cap or
        // a busy event loop may have used it up). Once per request; it counts as a retry.
        reconnected = true;
        this.o.logger?.debug({ request: label, error: this.#errorCode(failure.error) }, "shotgrid: connection closed by the site, sending again");
        continue;
      }

      const delay = backoffDelay(retry, { baseDelayMs: this.o.retryBaseDelayMs, maxDelayMs: this.o.retryMaxDelayMs });
      const inBudget = retry < this.o.maxRetries && Date.now() - started + delay <= this.o.maxRetryTimeMs;
      if (isRetryable(failure, idempotent) && inBudget) {
        this.o.logger?.warn(
          { request: label, status: failure.status, error: failure.error ? this.#errorCode(failure.error) : undefined, retry: retry + 1, delayMs: delay },
          "shotgrid: transient failure, retrying",
        );
        try {
          await sleep(delay, signal);
        } catch {
          throw signal ? abortedBy(signal) : new AbortedError();
        }
        continue;
      }
      if (!idempotent && writeOutcomeUnknown(failure)) throw this.#outcomeUnknown(label, attempt);
      if (failure.error instanceof TimeoutError) throw failure.error;
      throw this.#finalError(label, attempt, retry, isAuth, !idempotent);
    }
  }

  /** A write that may have reached the site and got no answer saying what became of it. */
  #outcomeUnknown(label: string, attempt: Attempt): WriteOutcomeUnknownError {
    if (!("error" in attempt)) {
      return new WriteOutcomeUnknownError(label, `a gateway answered ${attempt.status} instead of ShotGrid`, attempt.status);
    }
    const error = attempt.error;
    const code = this.#errorCode(error);
    const reason =
      error instanceof TimeoutError
        ? `no complete answer within ${this.o.requestTimeoutMs} ms`
        : classifyFailure({ error }) === "broken"
          ? `the connection broke after the request was sent (${code})`
          : `the request failed (${code})`;
    return new WriteOutcomeUnknownError(label, reason, undefined, { cause: error });
  }

  /** `write`: a write that was provably not processed, which the message says. */
  #finalError(label: string, attempt: Attempt, retries: number, isAuth: boolean, write = false): BackendError {
    const tries = retries > 0 ? ` after ${retries + 1} attempts` : "";
    const notMade = write ? "; the write was not made" : "";
    if ("error" in attempt) {
      const code = this.#errorCode(attempt.error);
      if (isConnectionError(attempt.error)) {
        return new UnavailableError(`${label}: cannot reach ShotGrid (${code})${tries}${notMade}`, undefined, { cause: attempt.error });
      }
      return new UnavailableError(`${label}: request failed (${code})${tries}`, undefined, { cause: attempt.error });
    }
    const err = mapErrorResponse(attempt.status, attempt.text, { request: label, redact: this.redact, auth: isAuth });
    if (attempt.status === 401 && !isAuth) {
      return new AuthError(`${label}: ShotGrid refused a freshly fetched access token (401)`, 401, err.details);
    }
    if (err instanceof UnavailableError && (tries || (write && attempt.status === 503))) {
      return new UnavailableError(`${err.message}${tries}${attempt.status === 503 ? notMade : ""}`, err.status);
    }
    return err;
  }

  #parse(label: string, attempt: { status: number; text: string }): SiteAnswer {
    if (attempt.text.trim() === "") return { status: attempt.status, body: undefined };
    try {
      return { status: attempt.status, body: JSON.parse(attempt.text) };
    } catch {
      throw new MalformedResponseError(`${label}: ShotGrid answered ${attempt.status} with a body that is not JSON`, attempt.status);
    }
  }

  /** One HTTP exchange under the concurrency cap and the per-attempt timeout. Never throws, except on caller abort or timeout. */
  async #exchange(req: SiteRequest, label: string, headers: Record<string, string>, form?: string, outsideApi = false): Promise<Attempt> {
    let release: () => void;
    try {
      release = await this.#limit.acquire(req.signal);
    } catch {
      return { error: req.signal ? abortedBy(req.signal) : new AbortedError() };
    }
    // The timeout starts once a slot is held: time queued behind our own cap is not the site's fault.
    // One controller for the caller's abort and the timeout, its listener and timer removed when
    // the exchange ends. (AbortSignal.any on a long-lived caller signal, such as the follower's,
    // would leave one entry on it per request; AbortSignal.timeout one live timer per request.)
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.o.requestTimeoutMs);
    const onCallerAbort = () => controller.abort();
    req.signal?.addEventListener("abort", onCallerAbort, { once: true });
    const signal = controller.signal;
    const t0 = Date.now();
    try {
      const body = form ?? (req.json === undefined ? undefined : JSON.stringify(req.json));
      const contentType =
        form !== undefined ? "application/x-www-form-urlencoded" : req.json !== undefined ? (req.contentType ?? "application/json") : undefined;
      const res = await this.#pool.request({
        method: req.method,
        // api3 lives beside the REST API, not under /api/{version}.
        path: (outsideApi ? this.o.basePath : this.#apiPrefix) + req.path,
        headers: { accept: "application/json", ...(contentType ? { "content-type": contentType } : {}), ...headers },
        body,
        signal,
      });
      const text = await res.body.text();
      this.o.logger?.debug({ request: label, status: res.statusCode, ms: Date.now() - t0 }, "shotgrid: request");
      return { status: res.statusCode, text };
    } catch (error) {
      if (req.signal?.aborted) {
        // Handed to the connection: a write may have gone out before the abort.
        return {
          error: new AbortedError(
            req.idempotent ? undefined : `${label}: aborted by the caller while the write was in flight; ${WRITE_MAY_HAVE_HAPPENED}`,
            req.signal.reason,
          ),
        };
      }
      if (timedOut) return { error: new TimeoutError(`${label}: no complete answer from ShotGrid within ${this.o.requestTimeoutMs} ms`) };
      return { error };
    } finally {
      clearTimeout(timer);
      req.signal?.removeEventListener("abort", onCallerAbort);
      release();
    }
  }

  #callerAbort(signal: AbortSignal | undefined): AbortedError | undefined {
    return signal?.aborted ? abortedBy(signal) : undefined;
  }

  /** A short, secret-free name for a network error (its code, or its class). */
  #errorCode(err: unknown): string {
    let e: unknown = err;
    for (let i = 0; e && typeof e === "object" && i < 5; i++) {
      const code = (e as { code?: unknown }).code;
      if (typeof code === "string") return code;
      e = (e as { cause?: unknown }).cause;
    }
    return err instanceof Error ? this.redact(err.name) : "unknown error";
  }
}
