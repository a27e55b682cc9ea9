/** What every api3 method may use: the cache, the schema, the Backend, the limits. */
import type { ReadThroughCache } from "../cache/read-through-cache.ts";
import type { Logger } from "../logging/index.ts";
import type { RequestLimits } from "../service/request-validation.ts";
import type { SchemaRegistry } from "../service/schema-registry.ts";
import type { WriteThrough } from "../service/write-through.ts";
import type { Backend } from "../shotgrid/types.ts";
import type { Api3Caller } from "./caller-auth.ts";
import type { SchemaAnswers } from "./schema-answers.ts";

/** The part of the read-through cache api3 uses. */
export type Api3Cache = Pick<ReadThroughCache, "query" | "summarize" | "invalidateType">;

export interface Api3Context {
  cache: Api3Cache;
  schema: SchemaRegistry;
  backend: Backend;
  limits: RequestLimits;
  /** The largest `paging.entities_per_page` (what `info` announces as `api_max_entities_per_page`). */
  maxEntitiesPerPage: number;
  schemaAnswers: SchemaAnswers;
  /**
   * Drop every cached answer and the schema, and load the preloaded types again (the service's
   * own flush, as after a lost event cursor): after a relayed method that may have written anything.
   */
  flushAll: () => Promise<void>;
  /** The service's write path; undefined: writes answer a fault. */
  writes?: WriteThrough;
  logger: Logger;
}

/** One api3 method: the caller (verified), its `params[1]` (undefined when not sent), the call's signal. */
export type Api3Method = (ctx: Api3Context, caller: Api3Caller, args: unknown, signal: AbortSignal) => Promise<unknown>;
