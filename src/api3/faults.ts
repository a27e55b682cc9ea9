/**
 * api3 failures as ShotGrid reports them: HTTP 200 with `{"exception": true, "message",
 * "error_code"}`, which `shotgun_api3` raises by code (102 AuthenticationFault, anything else
 * Fault). Every other error funnels through the service's one mapping (service/error-mapping.ts),
 * so an api3 caller reads the same reason a Connect caller would; only the code is api3's.
 */
import { Code } from "@connectrpc/connect";
import { InvalidCacheRequestError } from "../cache/errors.ts";
import { toConnectError } from "../service/error-mapping.ts";
import { InvalidInputError } from "../service/invalid-input-error.ts";
import { BackendError } from "../shotgrid/errors.ts";

/** ShotGrid's api3 error codes the service uses, and two of its own for failures ShotGrid reports by HTTP status. */
export const API3_CODES = {
  /** The credentials were refused: shotgun_api3 raises AuthenticationFault. */
  authentication: 102,
  /** A bad parameter (unknown field, wrong operator, malformed argument). */
  badRequest: 103,
  /** The record does not exist. */
  notFound: 104,
  /** ShotGrid could not be reached (or did not answer in time) and the answer is not cached. */
  unavailable: 503,
  /** A failure of the service itself. */
  internal: 500,
} as const;

export interface Api3Fault {
  exception: true;
  message: string;
  error_code: number;
}

/** A fault the api3 front raises itself, with its code. */
export class Api3Error extends Error {
  override readonly name = "Api3Error";
  constructor(
    message: string,
    readonly errorCode: number = API3_CODES.badRequest,
  ) {
    super(message);
  }
}

/** Our validation's field names → the api3 parameter the caller wrote. */
const PARAM_NAMES: Array<[RegExp, string]> = [
  [/^entityType\b/, "type"],
  [/^fields\b/, "return_fields"],
  [/^order\b/, "sorts"],
  [/^limit\b/, "paging.entities_per_page"],
  [/^page\b/, "paging.current_page"],
];

function api3Param(field: string): string {
  for (const [re, name] of PARAM_NAMES) if (re.test(field)) return field.replace(re, name);
  return field;
}

/** The fault for any error met while answering `method`. Never carries a secret (no error here holds one). */
export function toFault(method: string, err: unknown): Api3Fault {
  if (err instanceof Api3Error) return fault(err.message, err.errorCode);
  if (err instanceof InvalidInputError || err instanceof InvalidCacheRequestError) {
    // Both say `${field}: ${reason}`.
    return fault(`API ${method}() ${api3Param(err.field)}: ${err.message.slice(err.field.length + 2)}`, API3_CODES.badRequest);
  }
  if (err instanceof BackendError && err.code === "SG_CALLER_AUTH_FAILED") return fault(err.message, API3_CODES.authentication);
  if (err instanceof BackendError && err.code === "SG_REQUEST_REJECTED") {
    return fault(`API ${method}(): ShotGrid rejected the request: ${err.message}`, err.shotgridCode ?? API3_CODES.badRequest);
  }
  // The Backend's own argument checks (a value of the wrong shape for its field) throw TypeErrors
  // that name the argument and never hold a secret.
  if (err instanceof TypeError) return fault(`API ${method}(): ${err.message}`, API3_CODES.badRequest);
  const ce = toConnectError(err);
  const code =
    ce.code === Code.Unauthenticated
      ? API3_CODES.authentication
      : ce.code === Code.InvalidArgument || ce.code === Code.PermissionDenied
        ? API3_CODES.badRequest
        : ce.code === Code.NotFound
          ? API3_CODES.notFound
          : ce.code === Code.Unavailable || ce.code === Code.DeadlineExceeded || ce.code === Code.Canceled
            ? API3_CODES.unavailable
            : API3_CODES.internal;
  return fault(`API ${method}(): ${ce.rawMessage}`, code);
}

export function fault(message: string, errorCode: number): Api3Fault {
  return { exception: true, message, error_code: errorCode };
}
