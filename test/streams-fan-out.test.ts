/**
 * WatchChanges under fan-out load (issue 6): a stream keeps nothing of the messages it has sent,
 * sends the same bytes whether a change is encoded once for all streams or per stream, and many
 * open streams and calls add no abort listener per call to the server's shared signals.
 */
import { getEventListeners } from "node:events";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { create } from "@bufbuild/protobuf";
import { createClient, type ConnectRouter } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { CacheService, GetEntityResponseSchema, type WatchChangesResponse } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { createServer, type Server } from "../src/server/index.ts";
import type { ChangeFeed, FeedChange, FeedMessage, FeedSubscription } from "../src/service/change-feed.ts";
import type { SchemaRegistry } from "../src/service/schema-registry.ts";
import { createWatchChanges } from "../src/service/watch-changes.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function change(id: number): FeedChange {
  return {
    eventId: id,
    eventType: "Shotgun_Shot_Change",
    kind: "change",
    entityType: "Shot",
    entityId: id,
    projectId: 1,
    attributeName: "description",
    createdAt: "2026-01-02T03:04:05Z",
    user: { type: "HumanUser", id: 7, name: "Ann" },
  };
}

/** A feed whose subscribers each receive `changes()` at once (all queued), then nothing. */
function burstFeed(changes: () => FeedChange[]): ChangeFeed & { subscribed: number } {
  return {
    lastEventId: 0,
    positioned: true,
    whenPositioned: () => Promise.resolve(true),
    whenReached: () => Promise.resolve(true),
    subscribed: 0,
    subscribe(options: FeedSubscription): AsyncIterable<FeedMessage> {
      this.subscribed++;
      const queue = changes().map((c): FeedMessage => ({ kind: "change", change: c }));
      return {
        [Symbol.asyncIterator]: () => ({
          next: () =>
            queue.length > 0
              ? Promise.resolve({ done: false as const, value: queue.shift()! })
              : new Promise<IteratorResult<FeedMessage>>((resolve) =>
                  options.signal.addEventListener("abort", () => resolve({ done: true, value: undefined }), { once: true }),
                ),
          return: () => Promise.resolve({ done: true as const, value: undefined }),
        }),
      };
    },
  };
}

const noSchema = {} as SchemaRegistry;
let server: Server | undefined;
afterEach(async () => {
  await server?.close(1000);
  server = undefined;
});

async function start(feed: ChangeFeed, heartbeatS = 60): Promise<string> {
  server = createServer({
    version: "0.0.0-test",
    mode: "demo",
    routes: (router: ConnectRouter, ctx) =>
      router.service(CacheService, {
        watchChanges: createWatchChanges({ feed, schema: noSchema, heartbeatS, shutdownSignal: ctx.drainSignal }),
        async getEntity(req) {
          await new Promise((r) => setTimeout(r, 50));
          return create(GetEntityResponseSchema, { entity: { type: req.entityType, id: req.id } });
        },
      }),
  });
  return (await server.listen(0, "127.0.0.1")).url;
}

/** Read `n` changes from `stream` (after its opening heartbeat), leaving the stream open. */
async function take(it: AsyncIterator<WatchChangesResponse>, n: number): Promise<WatchChangesResponse[]> {
  const got: WatchChangesResponse[] = [];
  while (got.length < n) {
    const r = await it.next();
    if (r.done) throw new Error(`stream ended after ${got.length} changes`);
    if (r.value.message.case === "change") got.push(r.value);
  }
  return got;
}

describe("WatchChanges fan-out", () => {
  it("keeps no reference to the changes a stream has already sent", async () => {
    const sent: Array<WeakRef<FeedChange>> = [];
    const url = await start(
      burstFeed(() =>
        Array.from({ length: 2000 }, (_, i) => {
          const c = change(i + 1);
          sent.push(new WeakRef(c));
          return c;
        }),
      ),
    );
    const client = createClient(CacheService, createGrpcTransport({ baseUrl: url }));
    const controller = new AbortController();
    const it = client.watchChanges({}, { signal: controller.signal })[Symbol.asyncIterator]();
    try {
      await take(it, 2000);
      // The stream is still open: whatever it holds on to now, it holds for its whole life.
      await new Promise((r) => setImmediate(r));
      gc();
      await new Promise((r) => setImmediate(r));
      gc();
      const alive = sent.filter((w) => w.deref() !== undefined).length;
      expect(alive).toBeLessThan(100);
    } finally {
      controller.abort();
    }
  });

  it("sends every change, in order, to many streams over binary and JSON codecs alike", async () => {
    const changes = Array.from({ length: 200 }, (_, i) => change(i + 1));
    const url = await start(burstFeed(() => changes));
    const grpc = createClient(CacheService, createGrpcTransport({ baseUrl: url }));
    const json = createClient(CacheService, createConnectTransport({ baseUrl: url, httpVersion: "2" }));
    const controllers = Array.from({ length: 40 }, () => new AbortController());
    try {
      const streams = controllers.map((c, i) => take((i % 2 ? json : grpc).watchChanges({}, { signal: c.signal })[Symbol.asyncIterator](), changes.length));
      const results = await Promise.all(streams);
      for (const got of results) {
        expect(got.map((m) => (m.message.case === "change" ? m.message.value.entityId : 0))).toEqual(changes.map((c) => c.entityId));
        const first = got[0]!.message;
        expect(first.case === "change" && first.value.user?.name).toBe("Ann");
        expect(first.case === "change" && first.value.attributeName).toBe("description");
      }
    } finally {
      for (const c of controllers) c.abort();
    }
  });

  it("adds no abort listener per stream or call to the server's shared signals, and ends streams on close", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on("warning", onWarning);
    try {
      const url = await start(burstFeed(() => [change(1)]));
      const drainListeners = getEventListeners(server!.drainSignal, "abort").length;
      const client = createClient(CacheService, createGrpcTransport({ baseUrl: url }));
      const streams = Array.from({ length: 30 }, () => client.watchChanges({})[Symbol.asyncIterator]());
      await Promise.all(streams.map((s) => take(s, 1)));
      // 30 open streams and 30 unary calls in flight at once.
      const calls = Array.from({ length: 30 }, (_, i) => client.getEntity({ entityType: "Shot", id: i + 1 }));
      expect(getEventListeners(server!.drainSignal, "abort").length).toBe(drainListeners);
      await Promise.all(calls);
      await server!.close(5000);
      server = undefined;
      for (const s of streams) expect((await s.next()).done).toBe(true);
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w.includes("MaxListenersExceeded"))).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });
});
