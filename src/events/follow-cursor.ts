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
  /** Epoch milliseconds (local clock) when the gap was first noticed. */
  firstSeenMs: number;
  /**
   * `created_at` (epoch ms, the site's clock) of the applied event just above the gap, when
   * known. An id skipped by an event created long before the log's newest one is a rolled-back
   * write, not a slow commit, so it is not waited for.
   */
  neighbourCreatedAtMs?: number;
}

/** An applied event as the cursor needs it: its id and, when known, its `created_at` in epoch ms. */
export type AppliedId = number | { id: number; createdAtMs?: number };

/**
 * ShotGrid's `created_at` has whole seconds: two events a few ms apart can read up to a second
 * apart, so comparisons between them allow this much.
 */
export const CREATED_AT_RESOLUTION_MS = 1000;

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
  /** id → when it was noticed, and its neighbour's created_at. */
  readonly #skipped = new Map<number, { firstSeenMs: number; neighbourCreatedAtMs: number | undefined }>();
  readonly #maxSkipped: number;

  constructor(state: CursorState = { lastAppliedId: 0, skipped: [] }, maxSkipped = DEFAULT_MAX_SKIPPED) {
    if (!Number.isSafeInteger(state.lastAppliedId) || state.lastAppliedId < 0) {
      throw new RangeError(`cursor lastAppliedId must be a whole number >= 0, got ${state.lastAppliedId}`);
    }
    this.#lastAppliedId = state.lastAppliedId;
    this.#maxSkipped = maxSkipped;
    if (!Array.isArray(state.skipped)) throw new TypeError("cursor skipped must be a list of {id, firstSeenMs}");
    state.skipped.forEach((s, i) => {
      if (!s || !Number.isSafeInteger(s.id) || s.id <= 0 || !Number.isFinite(s.firstSeenMs)) {
        throw new TypeError(`cursor skipped[${i}] must be {id: whole number > 0, firstSeenMs: number}, got ${JSON.stringify(s)}`);
      }
      const neighbour = Number.isFinite(s.neighbourCreatedAtMs) ? s.neighbourCreatedAtMs : undefined;
      if (s.id < state.lastAppliedId) this.#skipped.set(s.id, { firstSeenMs: s.firstSeenMs, neighbourCreatedAtMs: neighbour });
    });
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
    return [...this.#skipped]
      .map(([id, s]) => (s.neighbourCreatedAtMs === undefined ? { id, firstSeenMs: s.firstSeenMs } : { id, ...s }))
      .sort((a, b) => a.id - b.id);
  }

  /** Awaited ids only, ascending. */
  awaitedIds(): number[] {
    return [...this.#skipped.keys()].sort((a, b) => a - b);
  }

  /**
   * Forget every awaited id and, when `lastAppliedId` is given, move the cursor there (after
   * the cache was flushed: nothing below can make it staler). Returns the ids dropped.
   */
  reset(lastAppliedId?: number): number[] {
    const dropped = this.awaitedIds();
    this.#skipped.clear();
    if (lastAppliedId !== undefined && lastAppliedId > this.#lastAppliedId) this.#lastAppliedId = lastAppliedId;
    return dropped;
  }

  /**
   * Record that the events with these ids (ascending, each `isNew`) have been applied: awaited
   * ids leave the gap set, ids beyond the cursor move it, and any id jumped over is recorded.
   */
  advance(applied: readonly AppliedId[], nowMs: number): CursorAdvance {
    const gaps: number[] = [];
    const filled: number[] = [];
    let overflow = 0;
    for (const entry of applied) {
      const id = typeof entry === "number" ? entry : entry.id;
      const createdAtMs = typeof entry === "number" ? undefined : entry.createdAtMs;
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
        this.#skipped.set(g, { firstSeenMs: nowMs, neighbourCreatedAtMs: Number.isFinite(createdAtMs) ? createdAtMs : undefined });
        gaps.push(g);
      }
      this.#lastAppliedId = id;
    }
    return { gaps, filled, overflow };
  }

  /**
   * Stop awaiting ids first noticed `windowMs` ago or more, and ids whose neighbour was created
   * `windowMs` (plus the whole-second resolution) or more before `siteNowMs` — the newest
   * `created_at` seen, so the site's clock is compared with itself, never with ours. Returns the
   * ids given up.
   */
  expire(nowMs: number, windowMs: number, siteNowMs?: number): number[] {
    const givenUp: number[] = [];
    for (const [id, { firstSeenMs, neighbourCreatedAtMs }] of this.#skipped) {
      const old = siteNowMs !== undefined && neighbourCreatedAtMs !== undefined && siteNowMs - neighbourCreatedAtMs >= windowMs + CREATED_AT_RESOLUTION_MS;
      if (old || nowMs - firstSeenMs >= windowMs) {
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
