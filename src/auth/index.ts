/**
 * Who may call (issue 10): bearer tokens checked against an auth file of token hashes, scopes
 * per client, and read limits by project and entity type. Every entry point asks this module,
 * so each rule has one home:
 *
 * - startup: `const policy = await AccessPolicy.load(flags.authFile)` (open when no file);
 * - Connect/gRPC: `interceptors: [authorizeRpcs(policy)]`, then `callerOf(ctx)` in handlers;
 * - fast path / api3: `policy.authorize(req.headers.authorization, "read")`;
 * - reads: `requireReadEntity` / `scopeQueryFilters`; streams: `mayReceiveChange`.
 */
export { ANONYMOUS, SCOPES, type Caller, type Scope } from "./caller.ts";
export { newToken, hashToken, TOKEN_PREFIX } from "./token.ts";
export {
  loadAuthFile,
  parseAuthFile,
  validateAuthFile,
  validateClient,
  toFileEntry,
  AuthFileError,
  ENTRY_KEYS,
  type AuthFile,
  type AuthClient,
  type AuthFileEntry,
  type EntryKey,
} from "./auth-file.ts";
export { statusAccess } from "./status-access.ts";
export { AccessPolicy, AUTH_FILE_FLAG } from "./access-policy.ts";
export {
  readDenial,
  mayReadEntity,
  requireReadEntity,
  entityProjectId,
  needsProjectField,
  mayReceiveChange,
  readConstraint,
  scopeQueryFilters,
} from "./read-scope.ts";
export { authorizeRpcs, callerOf, scopeOfMethod, CALLER_KEY } from "./rpc-auth.ts";
export { runAuth } from "./auth-command.ts";
