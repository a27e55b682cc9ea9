import type { AccessPolicy } from "./access-policy.ts";
import { requireNoReadLimits } from "./read-scope.ts";

/**
 * Who may read the status page's figures (`/status.json`): undefined (anyone) when the service
 * runs without an auth file; else a token with the `status` scope and no read limits, since the
 * page lists the last changes of every project and type. Throws the refusal, as `authorize` does.
 */
export function statusAccess(policy: AccessPolicy): ((authorization: string | undefined) => void) | undefined {
  if (policy.mode === "open") return undefined;
  return (authorization) => requireNoReadLimits(policy.authorize(authorization, "status"), "the status page");
}
