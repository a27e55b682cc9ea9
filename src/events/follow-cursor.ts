/**
 * Where the follower is in the event log: the last applied event id and the ids it skipped.
 *
 * ShotGrid hands out event ids before commit, so a poll can see N+2 before N+1 exists; N+1 is
 * then "skipped" and may still arrive. The cursor records each skipped id with the time it was
 * first noticed, so a caller can wait for it, re-ask for it, or give it up after a window. The
 * state is plain data (`toJSON` / constructor) so it can be saved and reloaded across restarts.
 */

export interface SkippedEventId {
  id: number;
  /** Epoch milliseconds when the gap was first noticed. */
  firstSeenMs: number;
}

/** The cursor as plain data, for saving. */
export interface CursorState {
  lastAppliedId: number;
  skipped: SkippedEventId[];
}

export interface CursorAdvance {
  /** Ids newly found missing below an applied id, ascending. */
  gaps: number[];
  /** Skipped ids that arrived in this batch and are no longer awaited. */
  filled: number[];
  /** Missing ids not recorded because the gap set was full (taken as given up at once). */
  overflow: number;
}

/** Default bound on the gap set, so a wild jump in ids cannot take unbounded memory. */
export const DEFAULT_MAX_SKIPPED = 10_000;

export class FollowCursor {
  #lastAppliedId: number;
  /** id → first-seen epoch ms. */
  readonly #skipped = new Map<number, number>();
  readonly #maxSkipped: number;

  constructor(state: CursorState = { lastAppliedId: 0, skipped: [] }, maxSkipped = DEFAULT_MAX_SKIPPED) {
    if (!Number.isSafeInteger(state.lastAppliedId) || state.lastAppliedId < 0) {
      throw new RangeError(`cursor lastAppliedId must be a whole number >= 0, got ${state.lastAppliedId}`);
    }
    this.#lastAppliedId = state.lastAppliedId;
    this.#maxSkipped = maxSkipped;
    for (const { id, firstSeenMs } of state.skipped) {
      if (Number.isSafeInteger(id) && id > 0 && id < state.lastAppliedId) this.#skipped.set(id, firstSeenMs);
    }
  }

  get lastAppliedId(): number {
    return this.#lastAppliedId;
  }

  get skippedCount(): number {
    return this.#skipped.size;
  }

  isAwaited(id: number): boolean {
    return this.#skipped.has(id);
  }

  /** True when an event with this id has not been applied yet (beyond the cursor, or awaited). */
  isNew(id: number): boolean {
    return id > this.#lastAppliedId || this.#skipped.has(id);
  }

  /** Skipped ids still awaited, oldest id first. */
  skipped(): SkippedEventId[] {
    return [...this.#skipped].map(([id, firstSeenMs]) => ({ id, firstSeenMs })).sort((a, b) => a.id - b.id);
  }

  /**
   * Record that the events with these ids (ascending, each `isNew`) have been applied: awaited
   * ids leave the gap set, ids beyond the cursor move it, and any id jumped over is recorded.
   */
  advance(appliedIds: readonly number[], nowMs: number): CursorAdvance {
    const gaps: number[] = [];
    const filled: number[] = [];
    let overflow = 0;
    for (const id of appliedIds) {
      if (this.#skipped.delete(id)) {
        filled.push(id);
        continue;
      }
      if (id <= this.#lastAppliedId) continue;
      const missing = id - this.#lastAppliedId - 1;
      // Keep the ids nearest the new cursor when the set cannot hold them all: those are the
      // ones most likely to be commits still in flight.
      const room = Math.max(0, this.#maxSkipped - this.#skipped.size);
      const kept = Math.min(missing, room);
      overflow += missing - kept;
      for (let g = id - kept; g < id; g++) {
        this.#skipped.set(g, nowMs);
        gaps.push(g);
      }
      this.#lastAppliedId = id;
    }
    return { gaps, filled, overflow };
  }

  /** Stop awaiting ids first noticed more than `windowMs` ago; returns them (given up). */
  expire(nowMs: number, windowMs: number): number[] {
    const givenUp: number[] = [];
    for (const [id, firstSeenMs] of this.#skipped) {
      if (nowMs - firstSeenMs >= windowMs) {
        this.#skipped.delete(id);
        givenUp.push(id);
      }
    }
    return givenUp.sort((a, b) => a - b);
  }

  toJSON(): CursorState {
    return { lastAppliedId: this.#lastAppliedId, skipped: this.skipped() };
  }
}
