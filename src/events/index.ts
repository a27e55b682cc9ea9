/** Event sources, the follower and the change bus. */
export { changeFromEvent, parseEventType, type Change, type ChangeKind, type ChangeUser } from "./change.ts";
export {
  ChangeBus,
  ChangeSubscription,
  DEFAULT_REPLAY_EVENTS,
  DEFAULT_SUBSCRIBER_QUEUE,
  type BusMessage,
  type ChangeBusOptions,
  type SubscribeOptions,
} from "./change-bus.ts";
export {
  FollowCursor,
  CREATED_AT_RESOLUTION_MS,
  DEFAULT_MAX_SKIPPED,
  type AppliedId,
  type CursorAdvance,
  type CursorState,
  type SkippedEventId,
} from "./follow-cursor.ts";
export {
  EventFollower,
  type Clock,
  type EventFollowerOptions,
  type ChangePublisher,
  type EventSink,
  type FollowerMetrics,
  type FollowerStatus,
  type PollOutcome,
} from "./event-follower.ts";
export { ReplayBuffer } from "./replay-buffer.ts";
export { CursorStateError, loadSavedCursor, type CursorStore, type LoadedCursor } from "./cursor-store.ts";
export { FileCursorStore, type FileCursorStoreOptions } from "./file-cursor-store.ts";
