/**
 * ShotGrid's error answers → the typed errors of errors.ts, keeping ShotGrid's own entries
 * (code, title, detail). One function decides, so every call maps the same way:
 *   404, or code 104                 → NotFoundError
 *   400 with code 102, 401, 403 auth → AuthError (bad credentials; 401 only after a refresh)
 *   other 4xx                        → RequestRejectedError
 *   5xx                              → UnavailableError (after retries)
 *   an error body that is not the envelope → MalformedResponseError
 * Messages pass through `redact` so no secret can leak through an echoed value.
 */
import {
  AuthError,
  type BackendError,
  MalformedResponseError,
  NotFoundError,
  RequestRejectedError,
  UnavailableError,
  type ShotGridErrorDetail,
} from "./errors.ts";

/** Removes secrets (script key, tokens) from a string. */
export type Redact = (text: string) => string;

const noRedaction: Redact = (t) => t;

function asNumber(v: unknown): number | null | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && /^\d+$/.test(v)) return Number(v);
  return v === null ? null : undefined;
}

function asString(v: unknown, redact: Redact): string | null | undefined {
  if (typeof v === "string") return redact(v);
  return v === null ? null : undefined;
}

/**
 * Parse `{"errors":[{id,status,code,title,detail,source,meta}]}`. Returns undefined when the body
 * is not that envelope (not JSON, or JSON of another shape).
 */
export function parseErrorEnvelope(body: string, redact: Redact = noRedaction): ShotGridErrorDetail[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const errors = (parsed as { errors?: unknown }).errors;
  if (!Array.isArray(errors) || errors.length === 0) return undefined;
  return errors.map((e): ShotGridErrorDetail => {
    const o = typeof e === "object" && e !== null ? (e as Record<string, unknown>) : {};
    const detail: ShotGridErrorDetail = {};
    if ("id" in o) detail.id = asString(o.id, redact) ?? null;
    if ("status" in o) detail.status = asNumber(o.status) ?? null;
    if ("code" in o) detail.code = asNumber(o.code) ?? null;
    if ("title" in o) detail.title = asString(o.title, redact) ?? null;
    if ("detail" in o) detail.detail = asString(o.detail, redact) ?? null;
    if ("source" in o) detail.source = o.source;
    if ("meta" in o) detail.meta = o.meta;
    return detail;
  });
}

/** "Not Found: Asset: 400000 not found" from the first entry's title and detail. */
function summary(details: ShotGridErrorDetail[]): string {
  const d = details[0]!;
  const parts = [d.title, d.detail].filter((s): s is string => typeof s === "string" && s.trim() !== "");
  const text = parts.length > 0 ? parts.join(": ") : "no description";
  const code = typeof d.code === "number" ? ` (code ${d.code})` : "";
  const more = details.length > 1 ? ` (+${details.length - 1} more)` : "";
  return `${text}${code}${more}`;
}

export interface ErrorContext {
  /** What was asked, e.g. `GET /api/v1.1/entity/Shot/5`: no query string values that could be secret. */
  request: string;
  redact?: Redact;
  /** The answer came from the token endpoint: every 4xx there is an authentication failure. */
  auth?: boolean;
}

/**
 * An HTTP error answer → a BackendError. `status` is the HTTP status (>= 400), `body` the raw
 * answer text.
 */
export function mapErrorResponse(status: number, body: string, ctx: ErrorContext): BackendError {
  const redact = ctx.redact ?? noRedaction;
  const details = parseErrorEnvelope(body, redact);
  if (status >= 500) {
    const what = details ? `: ${summary(details)}` : "";
    return new UnavailableError(`${ctx.request}: ShotGrid answered ${status}${what}`, status);
  }
  if (!details) {
    return new MalformedResponseError(`${ctx.request}: ShotGrid answered ${status} with a body that is not its error envelope`, status);
  }
  const message = `${ctx.request}: ShotGrid answered ${status}: ${summary(details)}`;
  const code = details[0]!.code;
  if (ctx.auth || status === 401 || code === 102) return new AuthError(message, status, details);
  if (status === 404 || code === 104) return new NotFoundError(message, status, details);
  return new RequestRejectedError(message, status, details);
}
