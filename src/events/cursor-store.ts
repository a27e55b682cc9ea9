/**
 * Where the follower keeps its cursor between runs. The follower saves after every applied
 * batch and loads once at start; the file store is the default, a Redis store can satisfy the
 * same contract later (the cursor then lives next to the cache it describes).
 */
import type { CursorState } from "./follow-cursor.ts";
import { errorMessage } from "../logging/index.ts";

export interface CursorStore {
  /**
   * The saved cursor, or undefined when none was ever saved. Throws `CursorStateError` when
   * something is saved but cannot be trusted (torn, corrupt, another site's): the caller must
   * then treat the state as lost and flush what depends on it.
   */
  load(): Promise<CursorState | undefined>;
  /** Save atomically: after a crash at any instant, `load` returns this state or the previous one. */
  save(state: CursorState): Promise<void>;
  /** A short human description for logs, e.g. the file path. */
  readonly description: string;
}

/** The saved cursor exists but cannot be used; `reason` says why (never contains secrets). */
export class CursorStateError extends Error {
  override readonly name = "CursorStateError";
}

/** What a start finds: the saved cursor, or why there is none to trust. */
export interface LoadedCursor {
  state?: CursorState;
  /** Set when a state existed but could not be used: whatever depended on it must be flushed. */
  lostReason?: string;
}

/**
 * Load the saved cursor for a start. Never throws: an unreadable or foreign state is reported
 * in `lostReason` (and logged), so the caller flushes instead of trusting it.
 */
export async function loadSavedCursor(
  store: CursorStore | undefined,
  log: { info(obj: Record<string, unknown>, msg: string): void; warn(obj: Record<string, unknown>, msg: string): void },
): Promise<LoadedCursor> {
  if (!store) return {};
  try {
    const state = await store.load();
    if (state)
      log.info({ store: store.description, lastEventId: state.lastAppliedId, gapsAwaited: state.skipped.length }, "resuming from the saved event cursor");
    else log.info({ store: store.description }, "no saved event cursor: starting after the newest event");
    return state ? { state } : {};
  } catch (err) {
    const reason = errorMessage(err);
    log.warn({ store: store.description, err: reason }, "saved event cursor unusable: flushing the cache and starting after the newest event");
    return { lostReason: reason };
  }
}
