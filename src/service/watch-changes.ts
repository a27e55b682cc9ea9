/**
 * The WatchChanges stream: a heartbeat at once, then every change the feed delivers, a heartbeat
 * whenever the stream has been idle for the heartbeat interval, until the client goes away, the
 * server drains, or the feed ends the subscription (a "too slow" resync).
 *
 * Per-message work is O(1) and allocation-light, because one change fans out to every
 * subscriber (1,000 streams at 100 changes/s is 100,000 messages/s): no timer, no promise race
 * and no abort listener per message. Racing each read against a long-lived promise (a stop
 * signal, a heartbeat) leaves one reaction on that promise per message; those reactions hold
 * every message sent until the stream ends, and the growing heap made the server spend its time
 * in garbage collection instead of writing. Here the stream reads one message ahead, waits only
 * when nothing is ready, and reuses one heartbeat timer (`refresh()`) armed only while waiting.
 * Shutdown is one listener on the server's signal for all streams, not one per stream.
 *
 * Every id a stream announces (heartbeat lastEventId, resync resumeEventId) is one a client may
 * resume from, so it must be true: a stream opened before the feed knows its position waits for
 * it before sending anything, and the first heartbeat of a resume says the resume point itself
 * (the replay comes after it), not the newest id.
 */
import { create, toBinary, type UnknownField } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { mayReceiveChange } from "../auth/read-scope.ts";
import { callerOf } from "../auth/rpc-auth.ts";
import {
  ChangeKind,
  ChangeSchema,
  WatchChangesResponseSchema,
  type WatchChangesRequest,
  type WatchChangesResponse,
} from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import type { ChangeFeed, FeedChange, FeedMessage } from "./change-feed.ts";
import { toConnectError } from "./error-mapping.ts";
import { validateEntityType } from "./request-validation.ts";
import type { SchemaRegistry } from "./schema-registry.ts";

export interface WatchChangesOptions {
  feed: ChangeFeed;
  schema: SchemaRegistry;
  /** Seconds without a message after which a stream gets a heartbeat. */
  heartbeatS: number;
  /** Aborted when the server shuts down: open streams end cleanly (status OK). */
  shutdownSignal?: AbortSignal;
}

const KIND: Record<FeedChange["kind"], ChangeKind> = {
  new: ChangeKind.NEW,
  change: ChangeKind.CHANGE,
  retirement: ChangeKind.RETIREMENT,
  revival: ChangeKind.REVIVAL,
};

/** The WatchChanges handler. Call once per service: it keeps the set of open streams for shutdown. */
export function createWatchChanges(opts: WatchChangesOptions) {
  const open = new Set<FeedReader>();
  // One listener for every stream: a listener per stream on this shared, long-lived signal
  // would be thousands of listeners (and a MaxListenersExceededWarning past ten).
  opts.shutdownSignal?.addEventListener(
    "abort",
    () => {
      for (const reader of open) reader.stop();
    },
    { once: true },
  );

  return async function* watchChanges(req: WatchChangesRequest, ctx: HandlerContext): AsyncGenerator<WatchChangesResponse> {
    const caller = callerOf(ctx);
    const since = await checkWatchRequest(req, opts.schema);
    if (!(await readyToStart(opts.feed, since, stopSignal(ctx.signal, opts.shutdownSignal)))) return;
    const messages = opts.feed.subscribe({
      entityTypes: req.entityTypes,
      projectIds: req.projectIds,
      sinceEventId: since,
      signal: ctx.signal,
    });
    // Read now, in the same step as subscribe: changes published later are queued behind it.
    const position = opts.feed.lastEventId;
    const reader = new FeedReader(messages[Symbol.asyncIterator](), opts.heartbeatS * 1000);
    const binary = isBinary(ctx);
    const stop = () => reader.stop();
    try {
      if (opts.shutdownSignal?.aborted || ctx.signal.aborted) reader.stop();
      else {
        open.add(reader);
        ctx.signal.addEventListener("abort", stop, { once: true });
      }
      // The first message goes out at once, so the client knows the stream is open.
      yield heartbeat(firstHeartbeatId(since, position));
      for (;;) {
        const msg = await reader.next();
        if (msg === undefined) return;
        if (msg === TICK) {
          yield heartbeat(opts.feed.lastEventId);
          continue;
        }
        if (msg.kind === "resync") {
          yield resyncMessage(msg.reason, msg.resumeEventId);
          if (msg.closes) return;
          continue;
        }
        // A client limited to some projects or types never hears of the others' changes.
        if (!mayReceiveChange(caller, msg.change)) continue;
        const turn = pace();
        if (turn) await turn;
        yield changeMessage(msg.change, binary);
      }
    } finally {
      open.delete(reader);
      ctx.signal.removeEventListener("abort", stop);
      await reader.close();
    }
  };
}

const TICK = Symbol("heartbeat due");

/**
 * Check a WatchChanges request as every path serving it must (the handler and the server's
 * streaming path, src/service/watch-fan-out.ts): the ConnectError the client gets, or the event
 * id to resume from (0: live only).
 */
export async function checkWatchRequest(req: WatchChangesRequest, schema: SchemaRegistry): Promise<number> {
  for (let i = 0; i < req.projectIds.length; i++) {
    if (req.projectIds[i]! <= 0) throw new ConnectError(`projectIds[${i}]: must be a positive project id`, Code.InvalidArgument);
  }
  // A misspelled type would otherwise give a stream that silently never delivers anything.
  try {
    for (let i = 0; i < req.entityTypes.length; i++) await validateEntityType(req.entityTypes[i]!, schema, `entityTypes[${i}]`);
  } catch (err) {
    throw toConnectError(err);
  }
  if (req.sinceEventId < 0n) throw new ConnectError("sinceEventId: must not be negative", Code.InvalidArgument);
  if (req.sinceEventId > MAX_EVENT_ID)
    throw new ConnectError(`sinceEventId: ${req.sinceEventId} is not an event id (event ids are at most ${MAX_EVENT_ID})`, Code.InvalidArgument);
  return Number(req.sinceEventId);
}

/**
 * Wait until a stream resuming from `since` may start: false when `stop` aborted first (the
 * stream then ends without a message).
 */
export async function readyToStart(feed: ChangeFeed, since: number, stop: AbortSignal): Promise<boolean> {
  // Announcing the position before the feed knows it would announce 0 ("live only"), and a
  // client resuming from that would silently miss what happened meanwhile.
  if (!feed.positioned && !(await feed.whenPositioned(stop))) return false;
  // A resume from ahead of this instance (a client coming from a cluster instance a moment
  // ahead) waits briefly for this one to get there, so it replays instead of resyncing; past
  // the wait the feed answers a resync (change-bus.ts).
  if (since > feed.lastEventId) {
    await waitAtMost(RESUME_AHEAD_WAIT_MS, stop, (signal) => feed.whenReached(since, signal));
    if (stop.aborted) return false;
  }
  return true;
}

/**
 * The id the first heartbeat announces, `position` being the feed's newest id when the stream
 * subscribed. Replaying from `since`: the replay follows this heartbeat, so it says `since`
 * (resuming from it again replays the same); resuming from the newest id here would skip the replay.
 */
export function firstHeartbeatId(since: number, position: number): number {
  return since > 0 && since <= position ? since : position;
}

/**
 * Run `wait` with a signal that aborts after `ms` or when `stop` does. Not
 * `AbortSignal.any([stop, AbortSignal.timeout(ms)])`: on Node 20 the timeout signal inside `any`
 * is held only weakly, and once garbage-collected the combined signal never aborts (the wait
 * would then last until the feed moves, which on a quiet site is never).
 */
async function waitAtMost<T>(ms: number, stop: AbortSignal, wait: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const done = new AbortController();
  const timer = setTimeout(() => done.abort(), ms);
  const onStop = () => done.abort();
  stop.addEventListener("abort", onStop, { once: true });
  try {
    return await wait(done.signal);
  } finally {
    clearTimeout(timer);
    stop.removeEventListener("abort", onStop);
  }
}

/** How long a resume from beyond the newest id waits for the feed to get there before it is told to resync. */
const RESUME_AHEAD_WAIT_MS = 2000;

/** Event ids are whole numbers the server handles exactly (JavaScript numbers). */
const MAX_EVENT_ID = BigInt(Number.MAX_SAFE_INTEGER);

/** Aborts when the client goes away or the server drains (used only while a stream waits to start). */
function stopSignal(client: AbortSignal, shutdown: AbortSignal | undefined): AbortSignal {
  return shutdown ? AbortSignal.any([client, shutdown]) : client;
}

/**
 * How many changes all streams together send before letting the event loop turn. One change
 * fans out to every stream at once, and a stream whose next message is ready sends it without
 * leaving the microtask queue: without a limit a batch for 1,000 streams keeps the loop busy for
 * seconds, during which nothing reaches the sockets, the follower cannot poll (so the next batch
 * is bigger still) and the pending writes pile up in memory.
 */
const TURN_BUDGET = 500;
let sentSinceTurn = 0;
let nextTurn: Promise<void> | undefined;

/** Undefined while the budget lasts; else a promise, shared by every stream, for the next turn. */
function pace(): Promise<void> | undefined {
  if (++sentSinceTurn < TURN_BUDGET) return undefined;
  return (nextTurn ??= new Promise<void>((resolve) =>
    setImmediate(() => {
      sentSinceTurn = 0;
      nextTurn = undefined;
      resolve();
    }),
  ));
}

/**
 * Reads a feed one message ahead, so that under load the next message is already there when
 * the stream asks for it and nothing waits; when nothing is there, waits for a message, the
 * heartbeat interval, or `stop()`, whichever comes first.
 */
class FeedReader {
  readonly #it: AsyncIterator<FeedMessage>;
  readonly #timer: NodeJS.Timeout;
  #result: IteratorResult<FeedMessage> | undefined;
  #failed = false;
  #error: unknown;
  #stopped = false;
  /** Set only while `next()` waits. */
  #wake: (() => void) | undefined;
  #tick = false;
  readonly #onResult = (result: IteratorResult<FeedMessage>): void => {
    this.#result = result;
    this.#fire();
  };
  readonly #onError = (err: unknown): void => {
    this.#failed = true;
    this.#error = err;
    this.#fire();
  };

  constructor(it: AsyncIterator<FeedMessage>, heartbeatMs: number) {
    this.#it = it;
    // One timer for the stream's life, re-armed with refresh() each time the stream waits.
    this.#timer = setTimeout(() => {
      if (!this.#wake) return;
      this.#tick = true;
      this.#fire();
    }, heartbeatMs);
    this.#read();
  }

  /** The next message; TICK when none came for the heartbeat interval; undefined once ended or stopped. */
  async next(): Promise<FeedMessage | typeof TICK | undefined> {
    if (this.#result === undefined && !this.#failed && !this.#stopped) {
      this.#tick = false;
      this.#timer.refresh();
      await new Promise<void>((resolve) => (this.#wake = resolve));
      if (this.#tick && !this.#stopped) return TICK;
    }
    if (this.#stopped) return undefined;
    if (this.#failed) throw this.#error;
    const result = this.#result!;
    this.#result = undefined;
    if (result.done) return undefined;
    this.#read();
    return result.value;
  }

  stop(): void {
    this.#stopped = true;
    this.#fire();
  }

  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#stopped = true;
    this.#fire();
    // Ends the subscription; a read still pending then finishes (done) and is ignored.
    await this.#it.return?.();
  }

  #read(): void {
    this.#it.next().then(this.#onResult, this.#onError);
  }

  #fire(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

export function heartbeat(lastEventId: number): WatchChangesResponse {
  return create(WatchChangesResponseSchema, {
    message: { case: "heartbeat", value: { lastEventId: BigInt(lastEventId), time: timestampFromDate(new Date()) } },
  });
}

export function resyncMessage(reason: string, resumeEventId: number): WatchChangesResponse {
  return create(WatchChangesResponseSchema, { message: { case: "resync", value: { reason, resumeEventId: BigInt(resumeEventId) } } });
}

/**
 * One change goes to every matching stream as the same object, so its message is built once and
 * shared (messages are only read when serialised), and forgotten with the change. For binary
 * streams it is also encoded once: the shared message carries its bytes as an unknown field,
 * which the binary codec copies as they are instead of encoding the change again per stream.
 * (JSON streams cannot take that shortcut: JSON drops unknown fields.)
 */
const built = new WeakMap<FeedChange, { message: WatchChangesResponse; binary?: WatchChangesResponse }>();
function changeMessage(c: FeedChange, binary: boolean): WatchChangesResponse {
  let entry = built.get(c);
  if (entry === undefined) built.set(c, (entry = { message: toChangeMessage(c) }));
  if (!binary) return entry.message;
  return (entry.binary ??= preEncoded(entry.message));
}

/** A message that encodes to exactly the bytes of `message`, without encoding anything again. */
function preEncoded(message: WatchChangesResponse): WatchChangesResponse {
  const reader = new BinaryReader(toBinary(WatchChangesResponseSchema, message));
  const copy = create(WatchChangesResponseSchema);
  const unknown: UnknownField[] = [];
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    unknown.push({ no, wireType, data: reader.skip(wireType, no) });
  }
  copy.$unknown = unknown;
  return copy;
}

/** Binary protobuf unless the request's content type says JSON (Connect and gRPC JSON codecs). */
function isBinary(ctx: HandlerContext): boolean {
  return !(ctx.requestHeader.get("content-type") ?? "").includes("json");
}

/** The message of one change, as every path sends it. */
export function toChangeMessage(c: FeedChange): WatchChangesResponse {
  return create(WatchChangesResponseSchema, {
    message: {
      case: "change",
      value: create(ChangeSchema, {
        eventId: BigInt(c.eventId),
        eventType: c.eventType,
        kind: KIND[c.kind],
        entityType: c.entityType,
        entityId: c.entityId,
        projectId: c.projectId,
        attributeName: c.attributeName ?? "",
        createdAt: timestampFromDate(new Date(c.createdAt)),
        user: c.user ? { type: c.user.type, id: c.user.id, name: c.user.name ?? "" } : undefined,
      }),
    },
  });
}
