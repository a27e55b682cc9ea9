/**
 * The text of anything thrown, for a log line or an error that wraps it. `throw` accepts any
 * value, so a caught `err` is `unknown`: an Error gives its message, anything else its string form.
 * Secrets never reach here by design: errors that could carry one are redacted where they are made
 * (see shotgrid/redaction.ts).
 */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
