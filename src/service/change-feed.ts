/**
 * What a WatchChanges stream reads from: the change bus as the service sees it. The events
 * folder's ChangeBus satisfies it; the service knows nothing of how changes are gathered.
 */
import type { EntityLink } from "../shotgrid/types.ts";

/** One applied change to one entity. */
export interface FeedChange {
  eventId: number;
  eventType: string;
  kind: "new" | "change" | "retirement" | "revival";
  entityType: string;
  entityId: number;
  /** 0 when the entity belongs to no project. */
  projectId: number;
  attributeName: string | null;
  /** ISO 8601 time of the event. */
  createdAt: string;
  user: EntityLink | null;
}

export type FeedMessage =
  | { kind: "change"; change: FeedChange }
  /** The subscriber must drop its local copies; `closes` when the stream ends after it. */
  | { kind: "resync"; reason: string; resumeEventId: number; closes: boolean };

export interface FeedSubscription {
  entityTypes: string[];
  projectIds: number[];
  /** Replay changes after this id first; 0: live only. */
  sinceEventId: number;
  signal: AbortSignal;
}

/** Hears whole batches (see `BatchFeed`). */
export interface FeedListener {
  /** The changes of one published batch, in order; the feed's position is already past them. */
  batch(changes: readonly FeedChange[]): void;
  /** The feed's history was dropped: every stream must resync (they stay open). */
  reset(reason: string): void;
}

/** A resume's replay: the changes to send first, or why it cannot replay (the stream gets a resync). */
export type FeedHistory = { refused: string; changes?: undefined } | { refused?: undefined; changes: FeedChange[] };

/**
 * A feed that also hands out whole batches to one listener and its history on request (the
 * change bus does): the server's streaming path serves many WatchChanges streams from it at the
 * cost of one (src/service/watch-fan-out.ts). The same rules as `subscribe`: `history` then
 * `listen` in one synchronous step is gapless; a listener's stream counts as too slow past
 * `subscriberQueue` messages waiting.
 */
export interface BatchFeed extends ChangeFeed {
  listen(listener: FeedListener): () => void;
  history(sinceEventId: number, matches: (change: FeedChange) => boolean): FeedHistory;
  readonly subscriberQueue: number;
}

export function isBatchFeed(feed: ChangeFeed): feed is BatchFeed {
  const f = feed as Partial<BatchFeed>;
  return typeof f.listen === "function" && typeof f.history === "function" && typeof f.subscriberQueue === "number";
}

export interface ChangeFeed {
  subscribe(options: FeedSubscription): AsyncIterable<FeedMessage>;
  /** The newest event id applied; true only once `positioned`. */
  readonly lastEventId: number;
  /** The feed knows where it stands: `lastEventId` may be announced to clients. */
  readonly positioned: boolean;
  /** Resolves true once positioned; false if `signal` aborts first. */
  whenPositioned(signal: AbortSignal): Promise<boolean>;
  /** Resolves true once positioned at `eventId` or beyond; false if `signal` aborts first. */
  whenReached(eventId: number, signal: AbortSignal): Promise<boolean>;
}
