/**
 * The simulated site's webhook sender (signed, single or batched, real headers, never inside the
 * write) against a plain receiving server, and the receiver answering before it processes.
 */
import { createHmac } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebhookReceiver } from "../src/events/webhook-receiver.ts";
import type { EventLogEntry } from "../src/shotgrid/types.ts";
import { startSimulator } from "../src/simulator/index.ts";
import { changeDelivery, postWebhook } from "./webhook-test-kit.ts";

interface Received {
  headers: http.IncomingHttpHeaders;
  raw: string;
  body: any;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(handler: http.RequestListener): Promise<number> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

async function collector(): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const port = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      received.push({ headers: req.headers, raw, body: JSON.parse(raw) });
      res.writeHead(200).end();
    });
  });
  return { url: `http://127.0.0.1:${port}/hook`, received };
}

async function site() {
  const s = await startSimulator({ shots: 6, assets: 3 });
  cleanups.push(() => s.close());
  return s;
}

describe("simulated site webhooks", () => {
  it("sends one signed delivery per POST with the real headers, after the write has returned", async () => {
    const sim = await site();
    const { url, received } = await collector();
    sim.webhooks.add({ url, secret: "k1" });
    sim.store.update("Shot", 1, { code: "W1", description: "two fields" }, { user: sim.scriptUser });
    // The write is done and nothing was sent inside it: delivery happens on a later turn.
    expect(sim.webhooks.stats.posts).toBe(0);
    await sim.webhooks.whenIdle();

    expect(received).toHaveLength(2);
    const batchIds = new Set(received.map((r) => r.headers["x-sg-event-batch-id"]));
    expect(batchIds.size).toBe(1);
    received.forEach((r, i) => {
      const expected = `sha1=${createHmac("sha1", "k1").update(r.raw).digest("hex")}`;
      expect(r.headers["x-sg-signature"]).toBe(expected);
      expect(r.headers["content-type"]).toBe("application/json");
      expect(r.headers["x-sg-webhook-id"]).toMatch(/^[0-9a-f-]{36}$/);
      expect(r.headers["x-sg-delivery-id"]).toBe(r.body.data.delivery_id);
      expect(r.headers["x-sg-event-batch-size"]).toBe("2");
      expect(r.headers["x-sg-event-batch-index"]).toBe(String(i));
      expect(r.headers["x-sg-webhook-site-url"]).toBe(sim.url);
      expect(r.body.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect(r.body.data).toMatchObject({
        event_type: "Shotgun_Shot_Change",
        operation: "update",
        entity: { type: "Shot", id: 1 },
        project: { type: "Project" },
        user: { type: "ApiUser", id: sim.scriptUser.id },
      });
      expect(r.body.data.created_at).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/);
    });
    expect(received.map((r) => r.body.data.attribute_name).sort()).toEqual(["code", "description"]);
    const ids = received.map((r) => r.body.data.event_log_entry_id);
    expect(Math.max(...ids)).toBe(sim.store.latestEventId);
  });

  it("batches up to batchSize deliveries per POST", async () => {
    const sim = await site();
    const { url, received } = await collector();
    sim.webhooks.add({ url, secret: "k2", batched: true, batchSize: 2 });
    for (const id of [1, 2, 3, 4, 1]) sim.store.update("Shot", id, { description: `batch ${id}-${Math.random()}` }, { user: sim.scriptUser });
    await sim.webhooks.whenIdle();

    expect(received.map((r) => r.body.data.deliveries.length)).toEqual([2, 2, 1]);
    for (const r of received) {
      expect(r.headers["x-sg-signature"]).toBe(`sha1=${createHmac("sha1", "k2").update(r.raw).digest("hex")}`);
      expect(r.headers["x-sg-event-batch-size"]).toBe(String(r.body.data.deliveries.length));
    }
    const ids = received.flatMap((r) => r.body.data.deliveries.map((d: { event_log_entry_id: number }) => d.event_log_entry_id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(received.flatMap((r) => r.body.data.deliveries.map((d: { delivery_id: string }) => d.delivery_id))).size).toBe(5);
    expect(sim.webhooks.stats).toMatchObject({ posts: 3, deliveries: 5, failures: 0 });
  });

  it("rejects a bad target at registration", async () => {
    const sim = await site();
    expect(() => sim.webhooks.add({ url: "ftp://x", secret: "k" })).toThrow(/http or https/);
    expect(() => sim.webhooks.add({ url: "http://127.0.0.1:1/x", secret: "" })).toThrow(/secret/);
    expect(() => sim.webhooks.add({ url: "http://127.0.0.1:1/x", secret: "k", batched: true, batchSize: 51 })).toThrow(/1 to 50/);
  });
});

describe("webhook receiver timing", () => {
  it("answers before processing finishes, even when processing is slow", async () => {
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const applied: EventLogEntry[] = [];
    const receiver = new WebhookReceiver({
      secret: "slow",
      sink: {
        async applyHints(events) {
          order.push("processing started");
          await gate;
          applied.push(...events);
          order.push("processing finished");
        },
      },
      pollNow: () => order.push("poll asked"),
    });
    const port = await listen((req, res) => {
      if (!receiver.route(req, res, (req.url ?? "/").split("?")[0]!)) res.writeHead(404).end();
    });

    const answer = await postWebhook(port, changeDelivery(77, "Shot", 1, "code", "slow", "d-slow"), { secret: "slow" });
    order.push(`answered ${answer.status}`);
    expect(answer.status).toBe(200);
    expect(applied).toHaveLength(0);

    release();
    await receiver.whenIdle();
    expect(applied.map((e) => e.id)).toEqual([77]);
    expect(order.indexOf("answered 200")).toBeLessThan(order.indexOf("processing finished"));
    expect(order.at(-1)).toBe("poll asked");
  });
});
