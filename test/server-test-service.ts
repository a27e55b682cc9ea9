/**
 * A throwaway CacheService for the server tests: fixed data, plus hooks to hold a unary call or a
 * stream open, so tests exercise the server (protocols, limits, shutdown), not the cache.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import { CacheService, GetEntityResponseSchema, QueryResponseSchema, WatchChangesResponseSchema } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { createServer, type Server, type ServerOptions } from "../src/server/index.ts";

export const SHOT_ID = 1234;
/** GetEntity for this id waits until `release()` is called on the returned controls, or its signal aborts. */
export const SLOW_ID = 999;

export interface TestControls {
  /** Resolves when a GetEntity for SLOW_ID has started. */
  slowStarted: Promise<void>;
  /** Lets the held GetEntity for SLOW_ID answer. */
  release(): void;
  /** Set when a WatchChanges generator ran its `finally`. */
  streamFinished: Promise<void>;
}

export function testService(): { impl: Omit<ServiceImpl<typeof CacheService>, "create" | "update" | "delete" | "revive" | "batch">; controls: TestControls } {
  let startedResolve!: () => void;
  let releaseResolve!: () => void;
  let finishedResolve!: () => void;
  const slowStarted = new Promise<void>((r) => (startedResolve = r));
  const released = new Promise<void>((r) => (releaseResolve = r));
  const streamFinished = new Promise<void>((r) => (finishedResolve = r));

  const impl: Omit<ServiceImpl<typeof CacheService>, "create" | "update" | "delete" | "revive" | "batch"> = {
    async getEntity(req, ctx) {
      if (req.id === SLOW_ID) {
        startedResolve();
        await Promise.race([released, new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }))]);
        if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason);
      } else if (req.id !== SHOT_ID) {
        throw new ConnectError(`${req.entityType} ${req.id} not found`, Code.NotFound);
      }
      return create(GetEntityResponseSchema, {
        entity: { type: req.entityType, id: req.id, fields: { code: "SH010" } },
        freshness: { source: "cache", ageMs: 5n, asOfEventId: 42n },
      });
    },
    async query(req) {
      return create(QueryResponseSchema, {
        entities: [
          { type: req.entityType, id: 1 },
          { type: req.entityType, id: 2 },
        ],
        freshness: { source: "shotgrid" },
      });
    },
    async *watchChanges(_req, ctx) {
      try {
        yield create(WatchChangesResponseSchema, { message: { case: "heartbeat", value: { lastEventId: 42n } } });
        // Parks on the request's own signal only: it does not watch the server's drain signal,
        // so a clean end on shutdown proves the server ends streams by itself.
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
      } finally {
        finishedResolve();
      }
    },
  };
  return { impl, controls: { slowStarted, release: () => releaseResolve(), streamFinished } };
}

/** A listening server with the test service; `close()` it in afterAll/afterEach. */
export async function startTestServer(options: Partial<ServerOptions> = {}): Promise<{ server: Server; url: string; port: number; controls: TestControls }> {
  const { impl, controls } = testService();
  const server = createServer({
    version: "0.0.0-test",
    mode: "demo",
    routes: (router: ConnectRouter) => router.service(CacheService, impl),
    ...options,
  });
  const { url, port } = await server.listen(0, "127.0.0.1");
  return { server, url, port, controls };
}
