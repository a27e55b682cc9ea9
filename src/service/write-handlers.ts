/**
 * The CacheService's write handlers: validate, check the caller may write, write through
 * (write-through.ts: ShotGrid first, then the cache drops what changed) *as the caller* — the
 * login its auth file entry names — so ShotGrid's permission rules apply and its event log names
 * the right user.
 *
 * A write is not cancelled when its caller goes away or its deadline passes: once sent, stopping
 * halfway would only make its outcome unknown. The Backend's own timeouts bound it.
 */
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  BatchResponseSchema,
  BatchResultSchema,
  type CacheService,
  CreateResponseSchema,
  DeleteResponseSchema,
  ReviveResponseSchema,
  UpdateResponseSchema,
} from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import type { AccessPolicy } from "../auth/access-policy.ts";
import { callerOf } from "../auth/rpc-auth.ts";
import type { ActingOptions, BatchRequest } from "../shotgrid/types.ts";
import { toEntityMessage } from "./cache-service.ts";
import { toConnectError } from "./error-mapping.ts";
import { InvalidInputError } from "./invalid-input-error.ts";
import type { RequestLimits } from "./request-validation.ts";
import type { SchemaRegistry } from "./schema-registry.ts";
import { checkCreate, checkTarget, checkUpdate } from "./write-validation.ts";
import type { WriteThrough } from "./write-through.ts";

export interface WriteHandlersOptions {
  writes: WriteThrough;
  schema: SchemaRegistry;
  limits: RequestLimits;
  /** Decides whether the caller may write (one rule with the interceptor: `require(caller, "write")`). */
  policy: AccessPolicy;
}

type WriteMethods = "create" | "update" | "delete" | "revive" | "batch";

export function createWriteHandlers(o: WriteHandlersOptions): Pick<ServiceImpl<typeof CacheService>, WriteMethods> {
  const { writes, schema, limits, policy } = o;
  /** Who the write is made as. The interceptor already checked; a router without it still gets the rule. */
  const actingAs = (ctx: Parameters<typeof callerOf>[0]): ActingOptions => {
    const caller = callerOf(ctx);
    policy.require(caller, "write");
    return { asLogin: caller.sudoAsLogin ?? undefined };
  };
  const run = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      throw toConnectError(err, "write");
    }
  };
  return {
    create: (req, ctx) =>
      run(async () => {
        const as = actingAs(ctx);
        const v = await schema.settle(() => checkCreate(req, schema, limits), ctx.signal);
        const entity = await writes.create(v.entityType, v.data, { ...as, fields: v.fields });
        return create(CreateResponseSchema, { entity: toEntityMessage(entity) });
      }),
    update: (req, ctx) =>
      run(async () => {
        const as = actingAs(ctx);
        const v = await schema.settle(() => checkUpdate(req, schema, limits), ctx.signal);
        const entity = await writes.update(v.entityType, v.id, v.data, { ...as, fields: v.fields, multiEntityUpdateModes: v.modes });
        return create(UpdateResponseSchema, { entity: toEntityMessage(entity) });
      }),
    delete: (req, ctx) =>
      run(async () => {
        const as = actingAs(ctx);
        const v = await schema.settle(() => checkTarget(req, schema), ctx.signal);
        await writes.delete(v.entityType, v.id, as);
        return create(DeleteResponseSchema, {});
      }),
    revive: (req, ctx) =>
      run(async () => {
        const as = actingAs(ctx);
        const v = await schema.settle(() => checkTarget(req, schema), ctx.signal);
        return create(ReviveResponseSchema, { revived: await writes.revive(v.entityType, v.id, as) });
      }),
    batch: (req, ctx) =>
      run(async () => {
        const as = actingAs(ctx);
        if (req.operations.length === 0) throw new InvalidInputError("operations", "is empty: a batch needs at least one create, update or delete");
        if (req.operations.length > limits.maxPageSize) {
          throw new InvalidInputError("operations", `too many operations: ${req.operations.length} (at most ${limits.maxPageSize}); split the batch`);
        }
        const requests = await schema.settle(
          () =>
            req.operations.map((op, i): BatchRequest => {
              const o = op.operation;
              const at = `operations[${i}].${o.case ?? ""}.`;
              switch (o.case) {
                case "create": {
                  const v = checkCreate(o.value, schema, limits, at);
                  return { requestType: "create", entityType: v.entityType, data: v.data, fields: v.fields };
                }
                case "update": {
                  const v = checkUpdate(o.value, schema, limits, at);
                  return { requestType: "update", entityType: v.entityType, id: v.id, data: v.data, fields: v.fields, multiEntityUpdateModes: v.modes };
                }
                case "delete":
                  return { requestType: "delete", ...checkTarget(o.value, schema, at) };
                default:
                  throw new InvalidInputError(`operations[${i}]`, "must hold one of create, update or delete");
              }
            }),
          ctx.signal,
        );
        const results = await writes.batch(requests, as);
        return create(BatchResponseSchema, {
          results: results.map((r) =>
            create(BatchResultSchema, { result: typeof r === "object" ? { case: "entity", value: toEntityMessage(r) } : { case: "deleted", value: r } }),
          ),
        });
      }),
  };
}
