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
