/**
 * api3 methods the service does not answer itself are relayed to the site's own `/api3/json`
 * with the caller's credentials, and the site's answer (a fault included) goes back unchanged.
 * A relayed method that may change data invalidates what it may have changed, conservatively:
 * the types it names, or the whole cache when it is not known what it touches.
 */
import type { Api3Caller } from "./caller-auth.ts";
import type { Api3Context } from "./context.ts";

/** Methods that only read: safe to send again after a failure, and nothing to invalidate. */
export const READ_ONLY_RELAYED = new Set([
  "text_search",
  "activity_stream",
  "note_thread_contents",
  "followers",
  "following",
  "preferences_read",
  "work_schedule_read",
  "user_subscriptions_read",
  "nav_expand",
  "nav_search",
  "export_page",
  "get_session_token",
  "custom_entity_read",
  "entity_types",
]);

/**
 * Methods that write something no cached answer holds (follow lists, subscriptions): relayed
 * without invalidating anything.
 */
const WRITES_NOTHING_CACHED = new Set(["follow", "unfollow", "user_subscriptions_create"]);

/** Methods that write the schema: schema answers and the named type's cached answers are dropped. */
export const SCHEMA_WRITES = new Set(["schema_field_create", "schema_field_update", "schema_field_delete"]);

/** Writing methods whose effect is one known entity type. */
const WRITES_TYPE: Record<string, string> = { work_schedule_update: "WorkDayRule" };

/**
 * Whether `method` only reads: the one classification for retrying a relay, invalidating after
 * it, and the auth file scope it needs (`read`, else `write`).
 */
export function readsOnly(method: string): boolean {
  return (
    READ_ONLY_RELAYED.has(method) ||
    method === "info" ||
    method === "read" ||
    method === "summarize" ||
    (method.startsWith("schema_") && !SCHEMA_WRITES.has(method))
  );
}

/** Send `method` to the site as the caller; the site's JSON answer, unchanged. */
export async function relay(ctx: Api3Context, caller: Api3Caller | undefined, method: string, args: unknown, signal: AbortSignal): Promise<unknown> {
  const relayApi3 = ctx.backend.relayApi3?.bind(ctx.backend);
  if (!relayApi3) throw new Error(`${ctx.backend.description} cannot relay api3 calls`);
  const readOnly = readsOnly(method);
  let answer: unknown;
  try {
    answer = await relayApi3(method, args, { auth: caller?.auth, readOnly, signal });
  } catch (err) {
    // No answer: the method may have been carried out all the same.
    if (!readOnly) await invalidateAfter(ctx, method, args);
    throw err;
  }
  // A fault answer: ShotGrid refused the call and changed nothing (each call is one transaction).
  const refused = typeof answer === "object" && answer !== null && (answer as { exception?: unknown }).exception === true;
  if (!readOnly && !refused) await invalidateAfter(ctx, method, args);
  return answer;
}

async function invalidateAfter(ctx: Api3Context, method: string, args: unknown): Promise<void> {
  if (WRITES_NOTHING_CACHED.has(method)) return;
  if (SCHEMA_WRITES.has(method)) {
    ctx.schemaAnswers.drop();
    const type = typeof args === "object" && args !== null ? (args as Record<string, unknown>).type : undefined;
    if (typeof type === "string") {
      ctx.schema.invalidate(type);
      await ctx.cache.invalidateType(type);
    } else ctx.schema.invalidate();
    return;
  }
  const type = WRITES_TYPE[method];
  if (type) return ctx.cache.invalidateType(type);
  ctx.logger.info({ method }, "api3: relayed a method that may write anything; the whole cache and schema are dropped");
  // It may have changed the schema too (custom entities enabled, fields configured).
  await ctx.flushAll();
}
