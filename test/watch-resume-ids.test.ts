/**
 * Every id a WatchChanges stream announces (heartbeat lastEventId, resync resumeEventId) is one a
 * client may resume from: resuming from it must replay what came after it or say resync, never
 * skip. Checked on the memory single instance and on a --redis leader and standby (each with a
 * real redis-server), and the answers to resume ids that cannot be honoured.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { spawn } from "node:child_process";
import http from "node:http";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { Code, ConnectError } from "@connectrpc/connect";
import type { WatchChangesResponse } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { startService, type RunningService } from "../src/app/create-app.ts";
import { createCacheClient } from "../src/client.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { changeOf, startE2E, testConfig, watch, type Watch } from "./e2e-helpers.ts";
import { randomPrefix, TestRedisServer } from "./support/redis-server.ts";

type Cleanup = () => Promise<void> | void;
const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const WATCH = "/shotgrid.cache.v1.CacheService/WatchChanges";

function open(url: string, sinceEventId = 0n): Watch {
  const w = watch(url, { entityTypes: ["Shot"], sinceEventId });
  cleanups.push(() => w.close());
  return w;
}

function heartbeatId(m: WatchChangesResponse): bigint {
  if (m.message.case !== "heartbeat") throw new Error(`expected a heartbeat, got ${m.message.case}`);
  return m.message.value.lastEventId;
}

function firstShot(site: SimulatorHandle): number {
  return [...site.store.records("Shot")][0]!.id;
}

/** Write a shot on the site; resolves with the event id it made. */
function writeShot(site: SimulatorHandle, description: string): number {
  site.store.update("Shot", firstShot(site), { description }, { user: site.scriptUser });
  return site.store.latestEventId;
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resume from `since` and expect the change `eventId` (replayed) or a resync: never silence. */
async function expectReplayOrResync(url: string, since: bigint, eventId: number): Promise<void> {
  const resumed = open(url, since);
  const got = await resumed.waitFor((m) => changeOf(m)?.eventId === BigInt(eventId) || m.message.case === "resync", 5000);
  expect(changeOf(got)?.eventId).toBe(BigInt(eventId));
  resumed.close();
}

describe("WatchChanges resume ids: --redis", () => {
  it("leader and standby announce the cluster's true position from the first heartbeat, and resuming from it replays a later change", async () => {
    const redis = await TestRedisServer.start();
    cleanups.push(() => redis.stop());
    const site = await startSimulator({ shots: 4, assets: 1 });
    cleanups.push(() => site.close());
    const config = testConfig({
      site: { url: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY },
      redis: { url: redis.url, prefix: randomPrefix() },
      leaderLeaseMs: 1000,
      reconcileIntervalS: 0,
      preloadTypes: ["Shot"],
    });
    const start = async (): Promise<RunningService> => {
      const s = await startService(config, pino({ level: "silent" }));
      cleanups.push(() => s.close(500));
      return s;
    };
    const head = site.store.latestEventId;
    expect(head).toBeGreaterThan(0);

    const leader = await start();
    // Opened before the service is ready: it must not announce a position it does not know.
    const early = open(leader.url);
    await leader.ready;
    const standby = await start();
    await standby.ready;
    await waitFor("one leader", () => leader.follower?.running === true);
    expect(standby.follower).toBeUndefined();

    const onLeader = heartbeatId(await early.waitFor(() => true, 10_000));
    const onStandby = heartbeatId(await open(standby.url).waitFor(() => true));
    expect(onLeader).toBe(BigInt(head));
    expect(onStandby).toBe(BigInt(head));

    // The clients go away, a change happens, they come back with the id they were told.
    const eventId = writeShot(site, "while away");
    await waitFor("both buses have the change", () => leader.bus.lastEventId === eventId && standby.bus.lastEventId === eventId);
    await expectReplayOrResync(standby.url, onLeader, eventId);
    await expectReplayOrResync(leader.url, onStandby, eventId);
  }, 60_000);
});

describe("WatchChanges resume ids: --workers", () => {
  it("every worker's first heartbeat is the cluster's position, and resuming from any of them replays a later change", async () => {
    const redis = await TestRedisServer.start();
    cleanups.push(() => redis.stop());
    const site = await startSimulator({ shots: 4, assets: 1 });
    cleanups.push(() => site.close());
    const child = spawn(
      process.execPath,
      [
        "bin/shotgrid-cache.mjs",
        "serve",
        "--workers",
        "2",
        "--redis",
        redis.url,
        "--redis-prefix",
        randomPrefix(),
        "--site",
        site.url,
        "--script-name",
        site.scriptName,
        "--script-key",
        DEFAULT_SCRIPT_KEY,
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--preload",
        "Shot",
        "--poll-interval-ms",
        "100",
        "--reconcile-interval-s",
        "0",
        "--leader-lease-ms",
        "1000",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    cleanups.push(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(killer);
    });
    const logs: Array<Record<string, unknown>> = [];
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    });
    await waitFor(`two workers ready (stderr: ${stderr})`, () => logs.filter((l) => String(l["msg"]).startsWith("ready:")).length >= 2, 30_000);
    const port = Number(logs.find((l) => l["msg"] === "worker listening")!["port"]);
    const url = `http://127.0.0.1:${port}`;
    const head = BigInt(site.store.latestEventId);

    // Several streams, spread over the workers by the primary's connection hand-out.
    const announced: bigint[] = [];
    for (let i = 0; i < 4; i++) {
      const w = watch(url, { entityTypes: ["Shot"] }, i % 2 === 0 ? "connect" : "grpc");
      cleanups.push(() => w.close());
      announced.push(heartbeatId(await w.waitFor(() => true, 10_000)));
      w.close();
    }
    expect(announced).toEqual(announced.map(() => head));
    const eventId = writeShot(site, "while away");
    for (let i = 0; i < 4; i++) {
      const resumed = watch(url, { entityTypes: ["Shot"], sinceEventId: announced[i]! }, i % 2 === 0 ? "grpc" : "connect");
      cleanups.push(() => resumed.close());
      const got = await resumed.waitFor((m) => changeOf(m)?.eventId === BigInt(eventId) || m.message.case === "resync", 10_000);
      expect(changeOf(got)?.eventId).toBe(BigInt(eventId));
      resumed.close();
    }
  }, 60_000);
});

describe("WatchChanges resume ids: memory", () => {
  it("a stream opened while the service starts announces the site's position, not 0", async () => {
    const e2e = await startE2E({ site: { shots: 4, assets: 1 }, config: { preloadTypes: ["Shot"] }, waitReady: false });
    cleanups.push(() => e2e.close());
    // A slow site: the preload takes a while, and the stream opens during it.
    e2e.site.knobs.set({ latencyMs: 150 });
    const first = await open(e2e.url).waitFor(() => true, 5000);
    expect(heartbeatId(first)).toBe(BigInt(e2e.site.store.latestEventId));
    await e2e.service.ready;
  }, 20_000);

  it("a preload retried after a failure keeps the position streams were told: a change made meanwhile still reaches them", async () => {
    const site = await startSimulator({ shots: 4, assets: 1 });
    cleanups.push(() => site.close());
    // The site, through a proxy that fails the first preload page, a change being made meanwhile.
    let madeDuringFailure: number | undefined;
    const proxy = http.createServer((req, res) => {
      if (madeDuringFailure === undefined && req.url?.includes("/entity/Shot/_search")) {
        madeDuringFailure = writeShot(site, "made while the preload failed");
        res.writeHead(503, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ status: 503, code: 503, title: "Service Unavailable" }] }));
        return;
      }
      const target = new URL(site.url);
      const upstream = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on("error", () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
    proxy.unref();
    const head = site.store.latestEventId;
    const service = await startService(
      testConfig({
        site: { url: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY },
        preloadTypes: ["Shot"],
        upstreamRetryMs: 0,
        reconcileIntervalS: 0,
      }),
      pino({ level: "silent" }),
    );
    cleanups.push(() => service.close(500));
    const early = open(service.url);
    expect(heartbeatId(await early.waitFor(() => true, 5000))).toBe(BigInt(head));
    await service.ready;
    expect(madeDuringFailure).toBe(head + 1);
    const got = await early.waitFor((m) => changeOf(m) !== undefined || m.message.case === "resync", 5000);
    expect(changeOf(got)?.eventId).toBe(BigInt(madeDuringFailure!));
  }, 30_000);

  it("the first heartbeat of a resume says the resume point, so resuming from it again still replays", async () => {
    const e2e = await startE2E({ site: { shots: 4, assets: 1 }, config: { preloadTypes: ["Shot"] } });
    cleanups.push(() => e2e.close());
    const before = heartbeatId(await open(e2e.url).waitFor(() => true));
    const eventId = writeShot(e2e.site, "missed");
    await waitFor("applied", () => e2e.service.bus.lastEventId === eventId);
    const resumed = open(e2e.url, before);
    const first = await resumed.waitFor(() => true);
    expect(heartbeatId(first)).toBe(before);
    await resumed.waitFor((m) => changeOf(m)?.eventId === BigInt(eventId));
  }, 20_000);

  it("a resume from beyond the newest id gets a resync from the newest id, then later changes", async () => {
    const e2e = await startE2E({ site: { shots: 4, assets: 1 }, config: { preloadTypes: ["Shot"] } });
    cleanups.push(() => e2e.close());
    const newest = e2e.service.bus.lastEventId;
    const resumed = open(e2e.url, BigInt(newest + 1000));
    // The server waits 2 s for this instance to get there first; a loaded machine adds to that.
    const resync = await resumed.waitFor((m) => m.message.case === "resync", 15_000);
    if (resync.message.case !== "resync") throw new Error("unreachable");
    expect(resync.message.value.resumeEventId).toBe(BigInt(newest));
    expect(resync.message.value.reason).toContain(`beyond the newest event id applied here (${newest})`);
    const eventId = writeShot(e2e.site, "later");
    await resumed.waitFor((m) => changeOf(m)?.eventId === BigInt(eventId));
  }, 30_000);

  it("the resume-ahead wait ends on time even when garbage collection runs during it", async () => {
    // On Node 20 an AbortSignal.timeout held only by AbortSignal.any can be collected and never
    // fire: the stream then waited for the feed forever instead of answering a resync.
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const e2e = await startE2E({ site: { shots: 2, assets: 1 }, config: { preloadTypes: ["Shot"] } });
    cleanups.push(() => e2e.close());
    const newest = e2e.service.bus.lastEventId;
    const resumed = open(e2e.url, BigInt(newest + 1000));
    const collecting = setInterval(gc, 100);
    try {
      const resync = await resumed.waitFor((m) => m.message.case === "resync", 15_000);
      expect(resync.message.case).toBe("resync");
    } finally {
      clearInterval(collecting);
    }
  }, 30_000);

  it("a resume from just ahead of the instance waits for it to get there and replays, without a resync", async () => {
    const e2e = await startE2E({ site: { shots: 4, assets: 1 }, config: { preloadTypes: ["Shot"] } });
    cleanups.push(() => e2e.close());
    const newest = e2e.service.bus.lastEventId;
    // The client saw newest + 1 elsewhere (an instance a moment ahead); this one gets there soon.
    const resumed = open(e2e.url, BigInt(newest + 1));
    await new Promise((r) => setTimeout(r, 200));
    writeShot(e2e.site, "seen elsewhere");
    const next = writeShot(e2e.site, "not seen yet");
    const got = await resumed.waitFor((m) => m.message.case !== "heartbeat", 5000);
    expect(changeOf(got)?.eventId).toBe(BigInt(next));
    expect(heartbeatId(resumed.messages[0]!)).toBe(BigInt(newest + 1));
  }, 20_000);

  it("sinceEventId that is no event id is invalid_argument naming the field", async () => {
    const e2e = await startE2E({ site: { shots: 2, assets: 1 }, config: { preloadTypes: [] } });
    cleanups.push(() => e2e.close());
    const client = createCacheClient(e2e.url);
    const err = await (async () => {
      for await (const _ of client.watchChanges({ sinceEventId: 9223372036854775807n }, { signal: AbortSignal.timeout(5000) })) {
        // nothing expected
      }
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).rawMessage).toContain("sinceEventId: 9223372036854775807 is not an event id");
  }, 20_000);

  // This request used to end the process (the listener read a detached socket); now it is answered.
  it("a fractional sinceEventId is invalid_argument naming the field", async () => {
    const e2e = await startE2E({ site: { shots: 2, assets: 1 }, config: { preloadTypes: [] } });
    cleanups.push(() => e2e.close());
    // A fraction cannot even be decoded: the codec's answer names the field.
    const body = Buffer.from('{"sinceEventId":1.5}');
    const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]);
    const answer = await fetch(`${e2e.url}${WATCH}`, {
      method: "POST",
      headers: { "content-type": "application/connect+json" },
      body: envelope,
      signal: AbortSignal.timeout(5000),
    });
    const end = JSON.parse(
      Buffer.from(await answer.arrayBuffer())
        .subarray(5)
        .toString(),
    ) as { error?: { code: string; message: string } };
    expect(end.error?.code).toBe("invalid_argument");
    expect(end.error?.message).toMatch(/since_?event_?id/i);
  }, 20_000);
});
