/**
 * The change log tail replays the leader's batches as batches: the changes of one leader publish
 * reach the local bus in one `publish` (so the WatchChanges streaming path makes one write per
 * stream per batch in a cluster too), and the bus ends up exactly as one publish per entry left
 * it: the same position, the same replay for every resume point. A real redis-server, the log's
 * entries written as the leader's append script writes them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChangeLogTail } from "../src/cluster/change-log-tail.ts";
import { RedisConnection } from "../src/cluster/redis-connection.ts";
import type { LogEntry } from "../src/cluster/redis-change-log.ts";
import { ChangeBus, type Change } from "../src/events/index.ts";
import { randomPrefix, TestRedisServer } from "./support/redis-server.ts";

let redis: TestRedisServer;
beforeAll(async () => {
  redis = await TestRedisServer.start();
});
afterAll(() => redis?.stop());

function change(eventId: number): Change {
  return {
    eventId,
    eventType: "Shotgun_Shot_Change",
    kind: "change",
    entityType: "Shot",
    entityId: eventId,
    projectId: 1,
    attributeName: "description",
    createdAt: "2026-03-04T05:06:07Z",
    user: null,
  };
}

/** The leader's batches as its log writes them: one entry per change, the batch's `t` on the last. */
function entriesOf(batches: Array<{ changes: number[]; through: number }>, start: number): LogEntry[] {
  const entries: LogEntry[] = [];
  let position = start;
  for (const { changes, through } of batches) {
    const batch: LogEntry[] = [];
    for (const id of changes) {
      batch.push({ p: position, c: change(id) });
      position = Math.max(position, id);
    }
    if (batch.length > 0) batch.at(-1)!.t = through;
    else batch.push({ p: position, t: through });
    position = Math.max(position, through);
    entries.push(...batch);
  }
  return entries;
}

describe("change log tail", () => {
  it("publishes each leader batch at once; the bus is the same as with one publish per entry", async () => {
    const keyBase = `${randomPrefix()}:`;
    // A late id (95) after the position passed it, an event batch without changes, a reset.
    const entries = entriesOf(
      [
        { changes: [101, 102, 103], through: 105 },
        { changes: [], through: 110 },
        { changes: [95, 111], through: 115 },
        { changes: [116], through: 116 },
        { changes: [117, 118], through: 120 },
      ],
      100,
    );
    const client = redis.client();
    for (const [i, e] of entries.entries()) {
      const fields = ["e", JSON.stringify(e), "f", "1", ...(i === 0 ? ["s", "1"] : [])];
      await client.xadd(`${keyBase}changes`, "*", ...fields);
    }
    await client.quit();

    const bus = new ChangeBus({ replayEvents: 100 });
    const heard: number[][] = [];
    bus.listen({ batch: (changes) => heard.push(changes.map((c) => c.eventId)), reset: () => undefined });
    const told: number[] = [];
    const connection = new RedisConnection({ url: redis.url, commandTimeoutMs: 3000 });
    const tail = new ChangeLogTail({ connection, keyBase, bus, blockMs: 200, onEntry: (e) => told.push(e.c?.eventId ?? -(e.t ?? 0)) });
    tail.start();
    await tail.whenCaughtUp();
    await tail.stop();
    await connection.close();

    expect(heard).toEqual([[101, 102, 103], [95, 111], [116], [117, 118]]);
    // onEntry still hears every entry, in order, after its change is on the bus.
    expect(told).toEqual([101, 102, 103, -110, 95, 111, 116, 117, 118]);

    // The same entries replayed one publish per entry (as before): the same bus.
    const one = new ChangeBus({ replayEvents: 100 });
    one.advance(entries[0]!.p); // the first entry of a log (nothing trimmed before it)
    for (const e of entries) {
      if (e.c) one.publish([e.c], e.t);
      else if (e.t !== undefined) one.advance(e.t);
    }
    expect(bus.lastEventId).toBe(one.lastEventId);
    for (let since = 100; since <= 121; since++) {
      expect(
        bus.history(since, () => true),
        `since ${since}`,
      ).toEqual(one.history(since, () => true));
    }
  });
});
