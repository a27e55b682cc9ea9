/**
 * WatchChanges streams served in groups, for the server's streaming path
 * (src/server/watch-stream-path.ts): the same messages as the handler (watch-changes.ts) sends,
 * at the cost of one subscriber however many streams are open.
 *
 * Why: one change goes to every matching stream, and at 1,000 streams and 100 changes/s the
 * handler's per-message path (a bus queue, an async iterator and connect-node's pipeline of
 * promises per message and stream) spent the server's time in promise hops and garbage
 * collection; deliveries fell seconds behind. Here:
 * - one listener on the feed hears each published batch (one per event-log poll) at once;
 * - streams with the same request filter and the same read limits form a group: they are sent
 *   exactly the same changes. Groups are indexed by entity type and project, so a change reaches
 *   only the groups that want it, without testing every stream;
 * - a group's changes of one batch are encoded once per wire variant (format and compression)
 *   and the same bytes are written to each of its streams: one write per stream per batch.
 *
 * The rules are the handler's, from the same functions: request checks (`checkWatchRequest`),
 * the waits before the first message (`readyToStart`), the first heartbeat's id, read limits
 * (`mayReceiveChange`), the feed's replay (`history`, read in the same synchronous step as the
 * stream joins its group: no gap, no duplicate), resync on a feed reset, and "subscriber too
 * slow" past the feed's `subscriberQueue` live messages written but not yet flushed to the
 * connection, or held behind a replay (the replay itself is not counted, as on the bus). A
 * heartbeat goes out when a stream has been idle for the heartbeat interval, with one timer per
 * stream re-armed on each write.
 *
 * A replay is written in slices of `REPLAY_SLICE` messages, the next once the last has left for
 * the connection: a resume from far back (up to the bus's 100,000 changes) encoded at once
 * blocked the event loop for about a second and buffered megabytes per stream. Live batches
 * arriving meanwhile are held behind the replay, in order, and written when it ends.
 *
 * A message that cannot be encoded (over the size limit) ends its stream with that error after
 * the messages before it, as the handler sends them. A stream whose sink throws fails alone: the
 * other streams and groups of the batch are still served.
 */
import { ANONYMOUS, type Caller } from "../auth/caller.ts";
import { mayReceiveChange } from "../auth/read-scope.ts";
import type { WatchChangesRequest, WatchChangesResponse } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import type { BatchFeed, FeedChange } from "./change-feed.ts";
import { firstHeartbeatId, heartbeat, readyToStart, resyncMessage, toChangeMessage } from "./watch-changes.ts";

/** Where one stream's bytes go (the server's side of a stream). */
export interface WatchSink {
  /**
   * The wire variant of this stream's frames (format and compression, e.g. "proto", "json+gzip"):
   * frames of one variant are the same bytes on every stream.
   */
  readonly variant: string;
  /** Send whole frames; `flushed` runs once they have left for the connection. */
  write(bytes: Uint8Array, flushed?: () => void): void;
  /** The feed ended the stream (after a "subscriber too slow" resync): end it with status OK. */
  end(): void;
  /** A message could not be encoded for this stream (e.g. over the size limit): end it with `error`. */
  fail(error: unknown): void;
}

/** The frame of `message` in `variant`; throws the error a stream then ends with. */
export type FrameEncoder = (message: WatchChangesResponse, variant: string) => Uint8Array;

export interface WatchFanOutOptions {
  feed: BatchFeed;
  /** Seconds without a message after which a stream gets a heartbeat. */
  heartbeatS: number;
  encode: FrameEncoder;
}

/** An open stream: `close()` stops it (nothing more is written); the server ends the response. */
export interface WatchStream {
  close(): void;
}

export interface WatchFanOut {
  /**
   * Start a stream for a checked request (`checkWatchRequest` gave `since`) by `caller` (undefined:
   * no access check, the anonymous caller, as the handler's context default): waits as
   * the handler does, then writes the first heartbeat (and the replay) to `sink` and joins the
   * stream's group. Undefined when `stop` aborted while waiting (nothing was written).
   */
  open(req: WatchChangesRequest, since: number, caller: Caller | undefined, sink: WatchSink, stop: AbortSignal): Promise<WatchStream | undefined>;
  /** Stop hearing the feed (the server drains; its open streams were closed). */
  close(): void;
  /** Open streams (for tests and metrics). */
  readonly streamCount: number;
  /** Groups of streams that get the same changes. */
  readonly groupCount: number;
}

/** Messages of a replay encoded and written in one step (a few hundred kilobytes at most for typical changes). */
export const REPLAY_SLICE = 500;

/** Index key for "any entity type" / "any project" (no real type is empty, no project id negative). */
const ANY_TYPE = "";
const ANY_PROJECT = -1;

export function createWatchFanOut(options: WatchFanOutOptions): WatchFanOut {
  return new FanOut(options);
}

class FanOut implements WatchFanOut {
  readonly feed: BatchFeed;
  readonly encode: FrameEncoder;
  readonly heartbeatMs: number;
  readonly #groups = new Map<string, Group>();
  /** Groups by entity type (or ANY_TYPE), then by project (or ANY_PROJECT). */
  readonly #index = new Map<string, Map<number, Set<Group>>>();
  #streams = 0;
  readonly #unlisten: () => void;

  constructor(o: WatchFanOutOptions) {
    this.feed = o.feed;
    this.encode = o.encode;
    this.heartbeatMs = o.heartbeatS * 1000;
    this.#unlisten = this.feed.listen({ batch: (changes) => this.#batch(changes), reset: (reason) => this.#reset(reason) });
  }

  close(): void {
    this.#unlisten();
  }

  get streamCount(): number {
    return this.#streams;
  }

  get groupCount(): number {
    return this.#groups.size;
  }

  async open(req: WatchChangesRequest, since: number, caller: Caller | undefined, sink: WatchSink, stop: AbortSignal): Promise<WatchStream | undefined> {
    if (!(await readyToStart(this.feed, since, stop))) return undefined;
    // From here until the stream has joined its group nothing awaits: no batch can be published
    // between the history read and the joining (the bus's own rule for subscribe).
    const group = this.#groupFor(req, caller ?? ANONYMOUS);
    const history = since > 0 ? this.feed.history(since, (c) => group.wants(c)) : undefined;
    const first = [heartbeat(firstHeartbeatId(since, this.feed.lastEventId))];
    if (history?.refused !== undefined) first.push(resyncMessage(history.refused, this.feed.lastEventId));
    const stream = new FanOutStream(this, group, sink);
    this.#join(group, stream);
    // Joined: batches from now on are held behind the replay, which is written in slices.
    stream.replay(first, history?.changes ?? []);
    return stream;
  }

  /** @internal A stream left (closed, ended or failed). */
  leave(group: Group, stream: FanOutStream): void {
    if (!group.streams.delete(stream)) return;
    this.#streams--;
    if (group.streams.size > 0) return;
    this.#groups.delete(group.key);
    for (const type of group.types ?? [ANY_TYPE]) {
      const byProject = this.#index.get(type);
      if (!byProject) continue;
      for (const project of group.projects ?? [ANY_PROJECT]) {
        const set = byProject.get(project);
        set?.delete(group);
        if (set?.size === 0) byProject.delete(project);
      }
      if (byProject.size === 0) this.#index.delete(type);
    }
  }

  #groupFor(req: WatchChangesRequest, caller: Caller): Group {
    const types = req.entityTypes.length > 0 ? [...new Set(req.entityTypes)].sort() : undefined;
    const projects = req.projectIds.length > 0 ? [...new Set(req.projectIds)].sort((a, b) => a - b) : undefined;
    // Read limits decide what a stream may receive, so they are part of what makes streams alike
    // (two clients with the same limits share a group; the name is not part of the rule).
    const limits = [caller.entityTypes && [...caller.entityTypes].sort(), caller.projectIds && [...caller.projectIds].sort((a, b) => a - b)];
    const key = JSON.stringify([types, projects, limits]);
    return this.#groups.get(key) ?? new Group(key, types, projects, caller);
  }

  #join(group: Group, stream: FanOutStream): void {
    if (group.streams.size === 0) {
      this.#groups.set(group.key, group);
      for (const type of group.types ?? [ANY_TYPE]) {
        let byProject = this.#index.get(type);
        if (!byProject) this.#index.set(type, (byProject = new Map()));
        for (const project of group.projects ?? [ANY_PROJECT]) {
          let set = byProject.get(project);
          if (!set) byProject.set(project, (set = new Set()));
          set.add(group);
        }
      }
    }
    group.streams.add(stream);
    this.#streams++;
  }

  #batch(changes: readonly FeedChange[]): void {
    if (this.#streams === 0) return;
    const touched: Group[] = [];
    try {
      for (const c of changes) {
        this.#collect(this.#index.get(c.entityType), c, touched);
        this.#collect(this.#index.get(ANY_TYPE), c, touched);
      }
      if (touched.length === 0) return;
      // Each change's message is built once, and its frame encoded once per variant, for all groups.
      const built = new Map<FeedChange, WatchChangesResponse>();
      const frames = new Map<string, Map<FeedChange, Uint8Array>>();
      const frameOf = (c: FeedChange, variant: string): Uint8Array => {
        let byChange = frames.get(variant);
        if (!byChange) frames.set(variant, (byChange = new Map()));
        let frame = byChange.get(c);
        if (frame === undefined) {
          let message = built.get(c);
          if (message === undefined) built.set(c, (message = toChangeMessage(c)));
          byChange.set(c, (frame = this.encode(message, variant)));
        }
        return frame;
      };
      for (const group of touched) {
        const list = group.pending!;
        group.pending = undefined;
        const encoded = new Map<string, Encoded>();
        for (const stream of group.streams) {
          const variant = stream.sink.variant;
          let out = encoded.get(variant);
          if (out === undefined) encoded.set(variant, (out = encodeAll(list, (c) => frameOf(c, variant))));
          stream.deliverEncoded(out);
        }
      }
    } finally {
      // Whatever failed above, no group may keep this batch's changes: the next batch would
      // otherwise think the group already listed and never deliver to it again.
      for (const group of touched) group.pending = undefined;
    }
  }

  /** Add `c` to the pending changes of every group under `byProject` that wants it; `touched` lists each group once. */
  #collect(byProject: Map<number, Set<Group>> | undefined, c: FeedChange, touched: Group[]): void {
    if (!byProject) return;
    for (const set of [byProject.get(c.projectId), byProject.get(ANY_PROJECT)]) {
      if (!set) continue;
      for (const group of set) {
        // The index matched the request filter; the read limits remain.
        if (!group.permits(c)) continue;
        if (group.pending === undefined) {
          group.pending = [];
          touched.push(group);
        }
        group.pending.push(c);
      }
    }
  }

  #reset(reason: string): void {
    const message = resyncMessage(reason, this.feed.lastEventId);
    for (const group of this.#groups.values()) for (const stream of group.streams) stream.resync(message);
  }
}

/** A list of messages' frames, up to the first that could not be encoded. */
interface Encoded {
  /** The frames that could be encoded, in one buffer (undefined when none). */
  bytes: Uint8Array | undefined;
  /** How many messages `bytes` holds. */
  count: number;
  /** Set when a message could not be encoded: the stream ends with it after `bytes`. */
  failure?: { error: unknown };
}

function encodeAll<T>(items: readonly T[], frameOf: (item: T) => Uint8Array): Encoded {
  const frames: Uint8Array[] = [];
  let failure: Encoded["failure"];
  try {
    for (const item of items) frames.push(frameOf(item));
  } catch (error) {
    failure = { error };
  }
  return { bytes: frames.length > 0 ? concat(frames) : undefined, count: frames.length, failure };
}

/** Streams that get exactly the same changes: the same request filter and the same read limits. */
class Group {
  readonly streams = new Set<FanOutStream>();
  /** This batch's changes for the group, while a batch is being sorted. */
  pending: FeedChange[] | undefined;

  constructor(
    readonly key: string,
    /** Entity types asked for; undefined: all. */
    readonly types: readonly string[] | undefined,
    /** Projects asked for (0: no project); undefined: all. */
    readonly projects: readonly number[] | undefined,
    /** Any caller with these read limits (only the limits are read). */
    readonly caller: Caller,
  ) {}

  /** The caller's read limits allow `c` (a client limited to some projects or types never hears of the others' changes). */
  permits(c: FeedChange): boolean {
    return mayReceiveChange(this.caller, c);
  }

  /** The request filter (the bus's rule: change-bus.ts `matches`) and the read limits both allow `c`. */
  wants(c: FeedChange): boolean {
    return (!this.types || this.types.includes(c.entityType)) && (!this.projects || this.projects.includes(c.projectId)) && this.permits(c);
  }
}

class FanOutStream implements WatchStream {
  readonly sink: WatchSink;
  readonly #fan: FanOut;
  readonly #group: Group;
  readonly #timer: NodeJS.Timeout;
  /** Live messages written and not yet flushed to the connection. */
  #waiting = 0;
  /** The replay still to write, from `#replayAt`; undefined once it is written (the stream is live). */
  #replay: readonly FeedChange[] | undefined;
  #replayAt = 0;
  /** Live batches that came during the replay, written after it in order; counted as waiting. */
  #held: Uint8Array[] = [];
  #heldCount = 0;
  #closed = false;

  constructor(fan: FanOut, group: Group, sink: WatchSink) {
    this.#fan = fan;
    this.#group = group;
    this.sink = sink;
    // One timer for the stream's life, re-armed by every write: it fires only after an idle interval.
    this.#timer = setTimeout(() => this.#idle(), fan.heartbeatMs);
  }

  /**
   * Write `first` (the first heartbeat, a resync), then the replayed `changes` in slices, then
   * the batches held meanwhile. The replay is not counted against the queue limit (as on the
   * bus: it is bounded already).
   */
  replay(first: readonly WatchChangesResponse[], changes: readonly FeedChange[]): void {
    this.#replay = changes;
    this.#replayAt = 0;
    this.#replaySlice(first);
  }

  #replaySlice(lead: readonly WatchChangesResponse[] = []): void {
    const changes = this.#replay;
    // Closed, or a reset or a "too slow" dropped the replay while a slice was being flushed.
    if (this.#closed || changes === undefined) return;
    const end = Math.min(changes.length, this.#replayAt + Math.max(1, REPLAY_SLICE - lead.length));
    const from = this.#replayAt;
    const messages = [...lead];
    for (let i = from; i < end; i++) messages.push(toChangeMessage(changes[i]!));
    const out = encodeAll(messages, (m) => this.#fan.encode(m, this.sink.variant));
    this.#replayAt = end;
    const more = out.failure === undefined && end < changes.length;
    if (out.bytes) {
      // The next slice once this one has left for the connection (a client that does not read
      // holds its replay, and the live batches pile up to the "too slow" limit as on the bus).
      if (more) this.write(out.bytes, 0, () => setImmediate(() => this.#replaySlice()));
      else this.write(out.bytes, 0);
    }
    if (out.failure) return void this.fail(out.failure.error);
    if (more) return;
    this.#replay = undefined;
    if (this.#heldCount > 0) {
      const held = concat(this.#held);
      const count = this.#heldCount;
      this.#held = [];
      this.#heldCount = 0;
      this.write(held, count);
    }
  }

  /** A batch's frames for this stream (up to a message that could not be encoded, then that error). */
  deliverEncoded(out: Encoded): void {
    try {
      if (out.bytes) this.deliver(out.bytes, out.count);
      if (out.failure) this.fail(out.failure.error);
    } catch (err) {
      this.#broken(err);
    }
  }

  /** A batch's frames for this stream: `count` live messages. */
  deliver(bytes: Uint8Array, count: number): void {
    if (this.#closed) return;
    if (this.#waiting + this.#heldCount + count > this.#fan.feed.subscriberQueue) {
      // As the bus: what was pending (the rest of a replay, held batches) is dropped for the resync.
      this.#dropPending();
      this.send(resyncMessage("subscriber too slow", this.#fan.feed.lastEventId));
      this.close();
      this.sink.end();
      return;
    }
    if (this.#replay !== undefined) {
      this.#held.push(bytes);
      this.#heldCount += count;
      return;
    }
    this.write(bytes, count);
  }

  /** The feed was reset: as on the bus, the replay and held batches are dropped and the resync sent; the stream stays open. */
  resync(message: WatchChangesResponse): void {
    try {
      this.#dropPending();
      this.send(message);
    } catch (err) {
      this.#broken(err);
    }
  }

  /** One message of the stream's own (heartbeat, resync): encoded for its variant, not counted. */
  send(message: WatchChangesResponse): void {
    if (this.#closed) return;
    let bytes: Uint8Array;
    try {
      bytes = this.#fan.encode(message, this.sink.variant);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.write(bytes, 0);
  }

  write(bytes: Uint8Array, count: number, flushed?: () => void): void {
    if (count > 0) {
      this.#waiting += count;
      this.sink.write(bytes, () => {
        this.#waiting -= count;
        flushed?.();
      });
    } else this.sink.write(bytes, flushed);
    this.#timer.refresh();
  }

  fail(error: unknown): void {
    if (this.#closed) return;
    this.close();
    this.sink.fail(error);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dropPending();
    clearTimeout(this.#timer);
    this.#fan.leave(this.#group, this);
  }

  #idle(): void {
    if (this.#closed) return;
    // A heartbeat announces the feed's position: mid-replay a client resuming from it would skip the rest.
    if (this.#replay !== undefined) return void this.#timer.refresh();
    try {
      this.send(heartbeat(this.#fan.feed.lastEventId));
    } catch (err) {
      this.#broken(err);
    }
  }

  #dropPending(): void {
    this.#replay = undefined;
    this.#held = [];
    this.#heldCount = 0;
  }

  /** The sink threw (a bug on the server's side): this stream fails, the others carry on. */
  #broken(error: unknown): void {
    this.close();
    try {
      this.sink.fail(error);
    } catch {
      // The sink cannot even end: it is closed here, and its connection's own close ends the rest.
    }
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
