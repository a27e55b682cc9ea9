/**
 * The streaming path's fan-out when one stream's side throws (a bug in a sink, a response that
 * breaks mid-write): only that stream fails. The other groups of the same batch get it, every
 * group keeps getting later batches, and the bus's publish completes (its position moves on).
 * Real bus and real frame encoder; only the sinks are the test's, one of them made to throw.
 */
import { create, fromBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { WatchChangesRequestSchema, WatchChangesResponseSchema } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { ChangeBus, type Change } from "../src/events/index.ts";
import { watchFrameEncoder } from "../src/server/watch-stream-path.ts";
import { createWatchFanOut, type WatchSink } from "../src/service/watch-fan-out.ts";

let nextId = 500;
function change(entityType: string): Change {
  const eventId = ++nextId;
  return {
    eventId,
    eventType: `Shotgun_${entityType}_Change`,
    kind: "change",
    entityType,
    entityId: eventId,
    projectId: 1,
    attributeName: "description",
    createdAt: "2026-03-04T05:06:07Z",
    user: null,
  };
}

/** A sink that records the change ids it was sent; `throwing` makes its writes throw. */
class Sink implements WatchSink {
  readonly variant = "proto";
  readonly ids: number[] = [];
  failed: unknown;
  throwing = false;
  write(bytes: Uint8Array, flushed?: () => void): void {
    if (this.throwing) throw new Error("the response broke");
    const buf = Buffer.from(bytes);
    for (let i = 0; i + 5 <= buf.length; i += 5 + buf.readUInt32BE(i + 1)) {
      const m = fromBinary(WatchChangesResponseSchema, buf.subarray(i + 5, i + 5 + buf.readUInt32BE(i + 1)));
      if (m.message.case === "change") this.ids.push(Number(m.message.value.eventId));
    }
    flushed?.();
  }
  end(): void {}
  fail(error: unknown): void {
    this.failed = error;
  }
}

describe("watch fan-out: a throwing sink fails only its own stream", () => {
  it("the other groups of the batch get it, later batches reach every group, the publish completes", async () => {
    const bus = new ChangeBus({ replayEvents: 10 });
    bus.advance(nextId);
    const fan = createWatchFanOut({ feed: bus, heartbeatS: 60, encode: watchFrameEncoder(1 << 20, 1 << 20) });
    const stop = new AbortController().signal;
    const req = (entityTypes: string[]) => create(WatchChangesRequestSchema, { entityTypes });
    // Three groups (Shot, Asset, everything); the Shot group's one stream will throw. The Shot
    // group is first in the batch's order, so a throw there used to stop the batch before the others.
    const shot = new Sink();
    const asset = new Sink();
    const all = new Sink();
    const streams = [
      await fan.open(req(["Shot"]), 0, undefined, shot, stop),
      await fan.open(req(["Asset"]), 0, undefined, asset, stop),
      await fan.open(req([]), 0, undefined, all, stop),
    ];
    expect(fan.groupCount).toBe(3);
    shot.throwing = true;
    const first = [change("Shot"), change("Asset")];
    expect(() => bus.publish(first, first.at(-1)!.eventId + 5)).not.toThrow();
    // The publish went through to its end: the bus moved to the batch's position.
    expect(bus.lastEventId).toBe(first.at(-1)!.eventId + 5);
    expect(shot.failed).toBeInstanceOf(Error);
    expect(asset.ids).toEqual([first[1]!.eventId]);
    expect(all.ids).toEqual(first.map((c) => c.eventId));
    // The failed stream left its group; the others still get every batch.
    expect(fan.streamCount).toBe(2);
    expect(fan.groupCount).toBe(2);
    nextId += 5;
    const second = [change("Asset"), change("Shot")];
    bus.publish(second);
    expect(asset.ids).toEqual([first[1]!.eventId, second[0]!.eventId]);
    expect(all.ids).toEqual([...first, ...second].map((c) => c.eventId));
    for (const s of streams) s?.close();
    expect(fan.streamCount).toBe(0);
    expect(fan.groupCount).toBe(0);
    fan.close();
  });

  it("a throw in a group's second stream: its first stream and the group's later batches are unharmed", async () => {
    const bus = new ChangeBus({ replayEvents: 10 });
    bus.advance(nextId);
    const fan = createWatchFanOut({ feed: bus, heartbeatS: 60, encode: watchFrameEncoder(1 << 20, 1 << 20) });
    const stop = new AbortController().signal;
    const good = new Sink();
    const bad = new Sink();
    await fan.open(create(WatchChangesRequestSchema, {}), 0, undefined, good, stop);
    await fan.open(create(WatchChangesRequestSchema, {}), 0, undefined, bad, stop);
    expect(fan.groupCount).toBe(1);
    bad.throwing = true;
    const a = change("Shot");
    bus.publish([a]);
    const b = change("Shot");
    bus.publish([b]);
    expect(good.ids).toEqual([a.eventId, b.eventId]);
    expect(bad.failed).toBeInstanceOf(Error);
    expect(fan.streamCount).toBe(1);
    fan.close();
  });
});
