import { describe, expect, it } from "vitest";
import { FollowCursor } from "../src/events/follow-cursor.ts";

describe("follow cursor", () => {
  it("records ids skipped between applied ids, and the gap before the first one", () => {
    const cursor = new FollowCursor({ lastAppliedId: 100, skipped: [] });
    const result = cursor.advance([102, 103, 106], 5000);
    expect(result.gaps).toEqual([101, 104, 105]);
    expect(cursor.lastAppliedId).toBe(106);
    expect(cursor.skipped()).toEqual([
      { id: 101, firstSeenMs: 5000 },
      { id: 104, firstSeenMs: 5000 },
      { id: 105, firstSeenMs: 5000 },
    ]);
  });

  it("takes an awaited id off the gap set when it arrives, without moving the cursor back", () => {
    const cursor = new FollowCursor({ lastAppliedId: 10, skipped: [] });
    cursor.advance([12], 0);
    expect(cursor.isNew(11)).toBe(true);
    expect(cursor.isNew(12)).toBe(false);
    const result = cursor.advance([11, 13], 1);
    expect(result).toEqual({ gaps: [], filled: [11], overflow: 0 });
    expect(cursor.lastAppliedId).toBe(13);
    expect(cursor.skippedCount).toBe(0);
  });

  it("gives up ids after the window and keeps younger ones", () => {
    const cursor = new FollowCursor({ lastAppliedId: 0, skipped: [] });
    cursor.advance([2], 1000);
    cursor.advance([4], 3000);
    expect(cursor.expire(4000, 2500)).toEqual([1]);
    expect(cursor.skipped().map((s) => s.id)).toEqual([3]);
  });

  it("bounds the gap set, keeping the ids nearest the cursor", () => {
    const cursor = new FollowCursor({ lastAppliedId: 0, skipped: [] }, 3);
    const result = cursor.advance([1_000_000], 0);
    expect(result.overflow).toBe(999_999 - 3);
    expect(cursor.skipped().map((s) => s.id)).toEqual([999_997, 999_998, 999_999]);
  });

  it("round-trips through plain data", () => {
    const cursor = new FollowCursor({ lastAppliedId: 5, skipped: [] });
    cursor.advance([7, 9], 42);
    const restored = new FollowCursor(JSON.parse(JSON.stringify(cursor)));
    expect(restored.toJSON()).toEqual(cursor.toJSON());
    expect(restored.isAwaited(8)).toBe(true);
  });

  it("rejects a bad saved state with an error naming the field", () => {
    expect(() => new FollowCursor({ lastAppliedId: -1, skipped: [] })).toThrow(/lastAppliedId/);
  });

  it("gives up an id whose neighbour is older than the window on the site's clock, at once", () => {
    const cursor = new FollowCursor({ lastAppliedId: 10, skipped: [] });
    cursor.advance(
      [
        { id: 12, createdAtMs: 1_000_000 },
        { id: 14, createdAtMs: 1_100_000 },
      ],
      5,
    );
    // Site clock: the newest event is 100 s after id 12's; window 60 s (+1 s resolution).
    expect(cursor.expire(6, 60_000, 1_100_000)).toEqual([11]);
    expect(cursor.skipped()).toEqual([{ id: 13, firstSeenMs: 5, neighbourCreatedAtMs: 1_100_000 }]);
  });

  it("forgets every awaited id and moves forward on reset", () => {
    const cursor = new FollowCursor({ lastAppliedId: 0, skipped: [] });
    cursor.advance([3], 0);
    expect(cursor.reset(50)).toEqual([1, 2]);
    expect(cursor.toJSON()).toEqual({ lastAppliedId: 50, skipped: [] });
  });

  it("rejects a saved gap entry that is not an id with a time, naming it", () => {
    expect(() => new FollowCursor({ lastAppliedId: 9, skipped: [{ id: 0, firstSeenMs: 1 }] })).toThrow(/skipped\[0\]/);
    expect(() => new FollowCursor({ lastAppliedId: 9, skipped: "x" as never })).toThrow(/skipped/);
  });
});
