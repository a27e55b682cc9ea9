/**
 * Graceful shutdown: close() stops accepting, ends open streams cleanly, lets in-flight unary
 * calls finish, closes idle keep-alive connections and HTTP/2 sessions, and forces the rest
 * after the grace period.
 */
import { EventEmitter } from "node:events";
import http from "node:http";
import net from "node:net";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { CacheService } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { closeOnSignals } from "../src/server/index.ts";
import { SHOT_ID, SLOW_ID, startTestServer } from "./server-test-service.ts";

/** Read a stream to its end; resolves with the message count, or rejects with the stream's error. */
async function drain(stream: AsyncIterable<unknown>, onFirst: () => void): Promise<number> {
  let n = 0;
  for await (const _ of stream) if (++n === 1) onFirst();
  return n;
}

function connectRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

describe("graceful close", () => {
  it("ends open streams cleanly and waits for an in-flight unary call", async () => {
    const { server, url, port, controls } = await startTestServer();
    const grpcClient: Client<typeof CacheService> = createClient(CacheService, createGrpcTransport({ baseUrl: url }));
    const h1Client: Client<typeof CacheService> = createClient(CacheService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));

    let opened = 0;
    let bothOpen!: () => void;
    const streamsOpen = new Promise<void>((r) => (bothOpen = r));
    const onFirst = () => ++opened === 2 && bothOpen();
    const h2Stream = drain(grpcClient.watchChanges({}), onFirst);
    const h1Stream = drain(h1Client.watchChanges({}), onFirst);
    await streamsOpen;

    const slow = h1Client.getEntity({ entityType: "Shot", id: SLOW_ID });
    await controls.slowStarted;

    let closed = false;
    const closing = server.close(20_000).then(() => (closed = true));

    // Streams end with status OK (no error thrown) while the unary call is still held.
    await expect(h2Stream).resolves.toBe(1);
    await expect(h1Stream).resolves.toBe(1);
    await controls.streamFinished;
    expect(closed).toBe(false);
    expect(await connectRefused(port)).toBe(true);

    controls.release();
    const answer = await slow;
    expect(answer.entity?.id).toBe(SLOW_ID);
    await closing;
    expect(closed).toBe(true);
  });

  it("closes idle keep-alive connections and HTTP/2 sessions without waiting for the grace period", async () => {
    const { server, url, port } = await startTestServer();
    const agent = new http.Agent({ keepAlive: true });
    try {
      await new Promise<void>((resolve, reject) => {
        http
          .get({ host: "127.0.0.1", port, path: "/healthz", agent }, (res) => {
            res.resume();
            res.on("end", resolve);
          })
          .on("error", reject);
      });
      const client = createClient(CacheService, createGrpcTransport({ baseUrl: url }));
      await client.getEntity({ entityType: "Shot", id: SHOT_ID });
      // Both connections stay open on the client side; a grace period longer than the test
      // timeout means this only resolves if the server closes them itself.
      await server.close(120_000);
    } finally {
      agent.destroy();
    }
  });

  it("cancels calls still running when the grace period ends, with unavailable", async () => {
    const { server, url, controls } = await startTestServer();
    const client = createClient(CacheService, createConnectTransport({ baseUrl: url, httpVersion: "2" }));
    const slow = client.getEntity({ entityType: "Shot", id: SLOW_ID }).catch((e: unknown) => ConnectError.from(e));
    await controls.slowStarted;
    await server.close(100);
    const err = await slow;
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.Unavailable);
    expect((err as ConnectError).rawMessage).toBe("the server is shutting down");
    controls.release();
  });
});

describe("closeOnSignals", () => {
  it("closes gracefully on SIGTERM, then exits 0; a second signal exits at once with 130", async () => {
    const { server, url, controls } = await startTestServer();
    const signals = new EventEmitter();
    const exits: number[] = [];
    let exited!: () => void;
    const exitedOnce = new Promise<void>((r) => (exited = r));
    let cleanedUp = false;
    const remove = closeOnSignals(server, {
      signals,
      graceMs: 20_000,
      beforeExit: () => void (cleanedUp = true),
      exit: (code) => {
        exits.push(code);
        exited();
      },
    });
    const client = createClient(CacheService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
    const slow = client.getEntity({ entityType: "Shot", id: SLOW_ID });
    await controls.slowStarted;

    signals.emit("SIGTERM", "SIGTERM");
    expect(server.drainSignal.aborted).toBe(true);
    signals.emit("SIGINT", "SIGINT");
    expect(exits).toEqual([130]);

    controls.release();
    expect((await slow).entity?.id).toBe(SLOW_ID);
    await expect.poll(() => exits.length).toBe(2);
    await exitedOnce;
    expect(exits).toEqual([130, 0]);
    expect(cleanedUp).toBe(true);
    remove();
    expect(signals.listenerCount("SIGTERM")).toBe(0);
  });
});
