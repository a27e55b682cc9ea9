import { describe, expect, it } from "vitest";
import { ChangeBus, type BusMessage, type ChangeSubscription } from "../src/events/change-bus.ts";
import type { Change } from "../src/events/change.ts";
import type { ChangeFeed } from "../src/service/change-feed.ts";

function change(eventId: number, entityType = "Shot", projectId = 1): Change {
  return {
    eventId,
    eventType: `Shotgun_${entityType}_Change`,
    kind: "change",
    entityType,
    entityId: 1000 + eventId,
    projectId,
    attributeName: "code",
    createdAt: "2024-01-01T00:00:00Z",
    user: null,
  };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Read exactly `n` messages, failing instead of hanging if the stream ends early. */
async function take(sub: ChangeSubscription, n: number): Promise<BusMessage[]> {
  const out: BusMessage[] = [];
  while (out.length < n) {
    const r = await sub.next();
    if (r.done) throw new Error(`subscription ended after ${out.length} of ${n} messages`);
    out.push(r.value);
  }
  return out;
}

function ids(messages: BusMessage[]): number[] {
  return messages.map((m) => (m.kind === "change" ? m.change.eventId : -1));
}

/** True when the subscription has nothing ready to read right now. */
async function isIdle(sub: ChangeSubscription): Promise<boolean> {
  const marker = Symbol("idle");
  const winner = await Promise.race([sub.next(), new Promise((r) => setTimeout(() => r(marker), 20))]);
  return winner === marker;
}

describe("change bus", () => {
  it("delivers only changes matching the entity type and project filters, in order", async () => {
    const bus = new ChangeBus();
    const shotsInOne = bus.subscribe({ entityTypes: ["Shot"], projectIds: [1] });
    const assets = bus.subscribe({ entityTypes: ["Asset"] });
    const all = bus.subscribe({});
    bus.publish([change(1, "Shot", 1), change(2, "Asset", 1), change(3, "Shot", 2), change(4, "Shot", 1), change(5, "Asset", 0)]);
    expect(ids(await take(shotsInOne, 2))).toEqual([1, 4]);
    expect(ids(await take(assets, 2))).toEqual([2, 5]);
    expect(ids(await take(all, 5))).toEqual([1, 2, 3, 4, 5]);
    expect(await isIdle(shotsInOne)).toBe(true);
  });

  it("tells a subscriber that cannot keep up to resync and closes it, without slowing the others", async () => {
    const bus = new ChangeBus({ subscriberQueue: 3 });
    const slow = bus.subscribe({});
    const fast = bus.subscribe({});
    const fastIds: number[] = [];
    for (const id of range(1, 10)) {
      bus.publish([change(id)]);
      fastIds.push(...ids(await take(fast, 1)));
    }
    expect(fastIds).toEqual(range(1, 10));
    expect(bus.subscriberCount).toBe(1);
    const first = await slow.next();
    expect(first.value).toMatchObject({ kind: "resync", reason: "subscriber too slow", closes: true });
    expect((await slow.next()).done).toBe(true);
  });

  it("keeps a subscriber whose queue never exceeds the limit", async () => {
    const bus = new ChangeBus({ subscriberQueue: 3 });
    const sub = bus.subscribe({});
    bus.publish([change(1), change(2), change(3)]);
    expect(ids(await take(sub, 3))).toEqual([1, 2, 3]);
    expect(bus.subscriberCount).toBe(1);
  });

  it("replays from sinceEventId then goes live with no gap or duplicate while publishing concurrently", async () => {
    const bus = new ChangeBus();
    bus.advance(0);
    const last = 400;
    const publisher = (async () => {
      for (const id of range(1, last)) {
        bus.publish([change(id)]);
        if (id % 7 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    const readers: Array<Promise<{ since: number; got: number[] }>> = [];
    // Subscribe at many points while the publisher runs, each resuming from what it "last saw".
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setImmediate(r));
      const since = Math.max(0, bus.lastEventId - (i % 5) * 3);
      if (since === 0) continue;
      const sub = bus.subscribe({ sinceEventId: since });
      readers.push(take(sub, last - since).then((m) => ({ since, got: ids(m) })));
    }
    await publisher;
    const results = await Promise.all(readers);
    expect(results.length).toBeGreaterThan(5);
    for (const { since, got } of results) expect(got).toEqual(range(since + 1, last));
  });

  it("sends a resync first when sinceEventId is older than the replay buffer, then live changes only", async () => {
    const bus = new ChangeBus({ replayEvents: 5 });
    bus.advance(0);
    bus.publish(range(1, 20).map((id) => change(id)));
    expect(bus.oldestResumableEventId).toBe(15);
    const tooOld = bus.subscribe({ sinceEventId: 3 });
    const inRange = bus.subscribe({ sinceEventId: 16 });
    bus.publish([change(21)]);
    const [resync, live] = await take(tooOld, 2);
    expect(resync).toMatchObject({ kind: "resync", resumeEventId: 20, closes: false });
    expect(resync?.kind === "resync" && resync.reason).toContain("3");
    expect(ids([live!])).toEqual([21]);
    expect(ids(await take(inRange, 5))).toEqual([17, 18, 19, 20, 21]);
  });

  it("sends a resync when asked to replay before it has any history", async () => {
    const bus = new ChangeBus();
    const sub = bus.subscribe({ sinceEventId: 42 });
    expect((await sub.next()).value).toMatchObject({ kind: "resync" });
  });

  it("replays nothing and goes live when sinceEventId is 0", async () => {
    const bus = new ChangeBus();
    bus.publish([change(1), change(2)]);
    const sub = bus.subscribe({ sinceEventId: 0 });
    expect(await isIdle(sub)).toBe(true);
  });

  it("tells a subscriber ahead of the bus to resync from the bus's position, then sends every change live", async () => {
    const bus = new ChangeBus();
    bus.advance(10);
    const sub = bus.subscribe({ sinceEventId: 12 });
    bus.publish([change(11), change(12), change(13)]);
    const [first, ...rest] = await take(sub, 4);
    expect(first).toMatchObject({ kind: "resync", resumeEventId: 10, closes: false });
    expect(first!.kind === "resync" && first!.reason).toContain("beyond the newest event id applied here (10)");
    expect(ids(rest)).toEqual([11, 12, 13]);
  });

  it("is not positioned (and waits) until its first advance or publish", async () => {
    const bus = new ChangeBus();
    expect(bus.positioned).toBe(false);
    const aborted = new AbortController();
    const gaveUp = bus.whenPositioned(aborted.signal);
    aborted.abort();
    expect(await gaveUp).toBe(false);
    const waiting = bus.whenPositioned(new AbortController().signal);
    bus.advance(7);
    expect(await waiting).toBe(true);
    expect(bus.positioned).toBe(true);
    const published = new ChangeBus();
    const w = published.whenPositioned(new AbortController().signal);
    published.publish([change(3)]);
    expect(await w).toBe(true);
    // Reaching an id: resolved by the publish or advance that gets there, not before.
    let reached = false;
    const nine = published.whenReached(9, new AbortController().signal).then((r) => (reached = r));
    published.publish([change(5)], 8);
    await Promise.resolve();
    expect(reached).toBe(false);
    published.advance(9);
    expect(await nine).toBe(true);
  });

  it("applies filters to the replay too", async () => {
    const bus = new ChangeBus();
    bus.advance(0);
    bus.publish([change(1, "Shot"), change(2, "Asset"), change(3, "Shot", 9)]);
    const sub = bus.subscribe({ sinceEventId: 1, entityTypes: ["Shot"], projectIds: [9] });
    expect(ids(await take(sub, 1))).toEqual([3]);
  });

  it("ends the iterator and unsubscribes when the signal aborts, even while a read is waiting", async () => {
    const bus = new ChangeBus();
    const controller = new AbortController();
    const sub = bus.subscribe({ signal: controller.signal });
    const pending = sub.next();
    expect(bus.subscriberCount).toBe(1);
    controller.abort();
    expect((await pending).done).toBe(true);
    expect(bus.subscriberCount).toBe(0);
    bus.publish([change(1)]);
    expect((await sub.next()).done).toBe(true);
  });

  it("unsubscribes when a for-await loop breaks", async () => {
    const bus = new ChangeBus();
    const sub = bus.subscribe({});
    bus.publish([change(1), change(2)]);
    for await (const message of sub) {
      expect(message.kind).toBe("change");
      break;
    }
    expect(bus.subscriberCount).toBe(0);
  });

  it("returns an ended subscription for an already aborted signal", async () => {
    const bus = new ChangeBus();
    const sub = bus.subscribe({ signal: AbortSignal.abort() });
    expect((await sub.next()).done).toBe(true);
    expect(bus.subscriberCount).toBe(0);
  });

  it("tracks the newest event id for heartbeats, including batches without changes", () => {
    const bus = new ChangeBus();
    expect(bus.lastEventId).toBe(0);
    bus.advance(100);
    bus.publish([change(101)], 105);
    expect(bus.lastEventId).toBe(105);
    bus.publish([], 110);
    expect(bus.lastEventId).toBe(110);
  });

  it("tells open subscribers to resync on reset and keeps them open", async () => {
    const bus = new ChangeBus();
    bus.advance(0);
    const sub = bus.subscribe({});
    bus.publish([change(1), change(2)]);
    bus.reset("cache flushed");
    bus.publish([change(3)]);
    const messages = await take(sub, 2);
    expect(messages[0]).toMatchObject({ kind: "resync", reason: "cache flushed", resumeEventId: 2 });
    expect(ids([messages[1]!])).toEqual([3]);
    // History before the reset cannot be resumed from.
    expect((await bus.subscribe({ sinceEventId: 1 }).next()).value).toMatchObject({ kind: "resync" });
  });

  it("ends every subscription on close", async () => {
    const bus = new ChangeBus();
    const a = bus.subscribe({});
    const b = bus.subscribe({ entityTypes: ["Asset"] });
    bus.close();
    expect((await a.next()).done).toBe(true);
    expect((await b.next()).done).toBe(true);
    expect(bus.subscriberCount).toBe(0);
  });

  it("serves as the service's change feed", async () => {
    // Type-checked by tsc: the service reads WatchChanges streams through this contract.
    const feed: ChangeFeed = new ChangeBus();
    const controller = new AbortController();
    const iterator = feed.subscribe({ entityTypes: [], projectIds: [], sinceEventId: 0, signal: controller.signal })[Symbol.asyncIterator]();
    controller.abort();
    expect((await iterator.next()).done).toBe(true);
  });

  it("rejects bad subscribe options with an error naming the field", () => {
    const bus = new ChangeBus();
    expect(() => bus.subscribe({ sinceEventId: -1 })).toThrow(/sinceEventId/);
    expect(() => bus.subscribe({ sinceEventId: 1.5 })).toThrow(/sinceEventId/);
    expect(() => bus.subscribe({ projectIds: [-2] })).toThrow(/projectIds\[0\]/);
    expect(() => bus.subscribe({ entityTypes: [""] })).toThrow(/entityTypes\[0\]/);
    expect(() => new ChangeBus({ subscriberQueue: 0 })).toThrow(/subscriberQueue/);
    expect(() => new ChangeBus({ replayEvents: -1 })).toThrow(/replayEvents/);
    expect(bus.subscriberCount).toBe(0);
  });
});

describe("change bus: batch listeners", () => {
  it("a listener that throws keeps no other from hearing, and the publish completes (position, subscribers)", async () => {
    const errors: unknown[] = [];
    const bus = new ChangeBus({ onListenerError: (err) => errors.push(err) });
    const heard: number[][] = [];
    const resets: string[] = [];
    bus.listen({
      batch: () => {
        throw new Error("a listener's bug");
      },
      reset: () => {
        throw new Error("a listener's bug on reset");
      },
    });
    bus.listen({ batch: (changes) => heard.push(changes.map((c) => c.eventId)), reset: (reason) => resets.push(reason) });
    const sub = bus.subscribe({});
    expect(() => bus.publish([change(1, "Shot", 1), change(2, "Shot", 1)], 9)).not.toThrow();
    expect(heard).toEqual([[1, 2]]);
    expect(bus.lastEventId).toBe(9);
    expect(ids(await take(sub, 2))).toEqual([1, 2]);
    expect(() => bus.reset("flushed")).not.toThrow();
    expect(resets).toEqual(["flushed"]);
    expect(errors.map((e) => (e as Error).message)).toEqual(["a listener's bug", "a listener's bug on reset"]);
    // Without a report function the throw is still contained.
    const quiet = new ChangeBus();
    quiet.listen({
      batch: () => {
        throw new Error("x");
      },
      reset: () => undefined,
    });
    expect(() => quiet.publish([change(3, "Shot", 1)], 4)).not.toThrow();
    expect(quiet.lastEventId).toBe(4);
  });
});

describe("change bus: late ids", () => {
  const change = (eventId: number): import("../src/events/change.ts").Change => ({
    eventId,
    eventType: "Shotgun_Shot_Change",
    kind: "change",
    entityType: "Shot",
    entityId: 1,
    projectId: 0,
    attributeName: "code",
    createdAt: "2024-01-01T00:00:00Z",
    user: null,
  });
  const drain = async (sub: import("../src/events/change-bus.ts").ChangeSubscription, n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const r = await sub.next();
      if (r.done || r.value.kind !== "change") throw new Error(`unexpected ${JSON.stringify(r)}`);
      out.push(r.value.change.eventId);
    }
    return out;
  };

  it("replays a late id published after the resume point, and not one published before it", async () => {
    const bus = new ChangeBus();
    bus.advance(10);
    bus.publish([change(12), change(13)], 13); // 11 skipped
    bus.publish([change(11)], 13); // 11 arrives late
    bus.publish([change(14)], 14);
    const fromThirteen = bus.subscribe({ sinceEventId: 13 });
    expect(await drain(fromThirteen, 2)).toEqual([11, 14]);
    const fromFourteen = bus.subscribe({ sinceEventId: 14 });
    bus.publish([change(15)], 15);
    expect(await drain(fromFourteen, 1)).toEqual([15]);
  });

  it("raises the resumable floor past a late id's publication point when it is evicted", () => {
    const bus = new ChangeBus({ replayEvents: 2 });
    bus.advance(10);
    bus.publish([change(12), change(13)], 13);
    bus.publish([change(11)], 13); // evicts 12
    bus.publish([change(14)], 14); // evicts 13
    expect(bus.oldestResumableEventId).toBe(13);
    bus.publish([change(15)], 15); // evicts the late 11, published at position 13: from 13 it would be missing
    expect(bus.oldestResumableEventId).toBe(14);
  });
});
