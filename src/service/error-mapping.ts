/**
 * Every error a handler can meet funnels through `toConnectError` (connect-es's style): one place
 * decides the Connect code and the message a client sees. Messages never carry secrets.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { BackendError, WRITE_MAY_HAVE_HAPPENED } from "../shotgrid/errors.ts";
import { InvalidCacheRequestError } from "../cache/errors.ts";
import { InvalidInputError } from "./invalid-input-error.ts";

/**
 * `write`: the error ended a write (Create, Update, Delete, Revive, Batch), so the messages say
 * what became of it instead of speaking of cached answers.
 */
export function toConnectError(err: unknown, call: "read" | "write" = "read"): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof InvalidInputError || err instanceof InvalidCacheRequestError) return new ConnectError(err.message, Code.InvalidArgument);
  if (err instanceof BackendError) {
    const sg = err.shotgridCode !== undefined ? ` (ShotGrid code ${err.shotgridCode})` : "";
    switch (err.code) {
      case "SG_NOT_FOUND":
        return new ConnectError(`${err.message}${sg}`, Code.NotFound);
      case "SG_REQUEST_REJECTED":
        return new ConnectError(`ShotGrid rejected the request: ${err.message}${sg}`, Code.InvalidArgument);
      case "SG_CALLER_AUTH_FAILED":
        // ShotGrid would not act as the caller (its sudo login is unknown, retired or may not be
        // impersonated): the caller's entry must change, not the service. The Backend's message
        // names the login, never a credential.
        return new ConnectError(`ShotGrid would not act as the caller: ${err.message}`, Code.PermissionDenied);
      case "SG_WRITE_OUTCOME_UNKNOWN":
        // The message already says "the write may have happened; check before retrying".
        return new ConnectError(err.message, Code.Unavailable);
      case "SG_AUTH_FAILED":
        return new ConnectError(`the cache cannot authenticate to ShotGrid (check its script name and key): ${err.message}`, Code.Unavailable);
      case "SG_UNAVAILABLE":
        // A write the Backend could not deliver provably did not reach the site (else it says SG_WRITE_OUTCOME_UNKNOWN).
        return call === "write"
          ? new ConnectError(`ShotGrid is unavailable; the write was not made: ${err.message}`, Code.Unavailable)
          : new ConnectError(`ShotGrid is unavailable and this answer is not cached: ${err.message}`, Code.Unavailable);
      case "SG_TIMEOUT":
        return call === "write"
          ? new ConnectError(`ShotGrid did not answer in time: ${err.message}; ${WRITE_MAY_HAVE_HAPPENED}`, Code.Unavailable)
          : new ConnectError(`ShotGrid did not answer in time and this answer is not cached: ${err.message}`, Code.Unavailable);
      case "SG_MALFORMED_RESPONSE":
        return new ConnectError(
          `ShotGrid sent an answer the cache cannot read: ${err.message}${call === "write" ? `; ${WRITE_MAY_HAVE_HAPPENED}` : ""}`,
          Code.Unavailable,
        );
      case "SG_ABORTED":
        // The call's signal aborts both when the client goes away and when its deadline passes.
        return abortedByDeadline(err.cause)
          ? new ConnectError("the call ran past its deadline", Code.DeadlineExceeded)
          : new ConnectError("the call was cancelled", Code.Canceled);
    }
  }
  if (err instanceof Error && err.name === "AbortError") return new ConnectError("the call was cancelled or ran past its deadline", Code.DeadlineExceeded);
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

/**
 * True when an abort reason is a deadline: connect-node aborts a call's signal with a
 * deadline_exceeded ConnectError when `connect-timeout-ms` passes (the server's default deadline
 * does the same), `AbortSignal.timeout` with a "TimeoutError".
 */
function abortedByDeadline(reason: unknown): boolean {
  if (reason instanceof ConnectError) return reason.code === Code.DeadlineExceeded;
  return reason instanceof Error && reason.name === "TimeoutError";
}
