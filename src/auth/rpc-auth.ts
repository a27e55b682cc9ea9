/**
 * The Connect/gRPC side of the access policy: an interceptor that authorizes every call before
 * its handler runs and hands the Caller to the handler (for read limits and write attribution).
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import type { AccessPolicy } from "./access-policy.ts";
import { ANONYMOUS, type Caller, type Scope } from "./caller.ts";

/**
 * Where the interceptor leaves the caller for handlers. The default is the anonymous caller,
 * which holds no more than open mode grants, so a handler reached some other way (a test router
 * without the interceptor) never gets more rights than it should.
 */
export const CALLER_KEY = createContextKey<Caller>(ANONYMOUS, { description: "shotgrid-cache caller" });

/** The caller of the RPC a handler is serving. */
export function callerOf(ctx: Pick<HandlerContext, "values">): Caller {
  return ctx.values.get(CALLER_KEY);
}

/**
 * The scope a method needs, from how the proto declares it: a server stream is a watch, a
 * method marked `NO_SIDE_EFFECTS` a read, anything else a write (the strictest, so a new
 * method is never open by accident). gRPC reflection needs none: it only describes the API,
 * which is public anyway. Null means no check.
 */
export function scopeOfMethod(method: DescMethod): Scope | null {
  if (method.parent.typeName.startsWith("grpc.reflection.")) return null;
  if (method.methodKind === "server_streaming") return "watch";
  if (method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) return "read";
  return "write";
}

/**
 * Authorize every RPC with `policy` (the Authorization header and the method's scope) and pass
 * the caller on in the context values. A refused call never reaches its handler.
 */
export function authorizeRpcs(policy: AccessPolicy, scopeOf: (method: DescMethod) => Scope | null = scopeOfMethod): Interceptor {
  // async: a refusal thrown here becomes a rejected call, like any handler error.
  return (next) => async (req) => {
    const scope = scopeOf(req.method);
    if (scope === null) return next(req);
    req.contextValues.set(CALLER_KEY, policy.authorize(req.header.get("authorization"), scope));
    return next(req);
  };
}
