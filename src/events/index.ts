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
export { FollowCursor, DEFAULT_MAX_SKIPPED, type CursorAdvance, type CursorState, type SkippedEventId } from "./follow-cursor.ts";
export {
  EventFollower,
  type Clock,
  type EventFollowerOptions,
  type EventSink,
  type FollowerLogger,
  type FollowerMetrics,
  type PollOutcome,
} from "./event-follower.ts";
export { ReplayBuffer } from "./replay-buffer.ts";
