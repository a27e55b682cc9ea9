/**
 * POST /webhooks/shotgrid on the real service in front of a simulated site, over real sockets.
 * The site's writes here are made WITHOUT events (`writeWithoutEvents`) and the follower's poll
 * interval is long: the event log says nothing, so a fresh answer can only come from the
 * webhook hint itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, changeDelivery, metric, postWebhook, request, SECRET, sign, startStack, WEBHOOK, type Stack } from "./webhook-test-kit.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

async function shotCode(id: number): Promise<{ code: unknown; source: unknown }> {
  const answer = await call(stack.port, "GetEntity", { entityType: "Shot", id, fields: ["code"] });
  expect(answer.status).toBe(200);
  return { code: answer.json.entity.fields.code, source: answer.json.freshness.source };
}

let nextEventId = 900_000;
let nextDelivery = 0;

describe("webhook receiver", () => {
  it("a verified delivery makes the cache fresh before the next poll, without moving the event cursor", async () => {
    const before = await shotCode(1);
    expect(before.source).toBe("cache");
    stack.site.store.writeWithoutEvents("Shot", 1, { code: "HINTED_1" });
    expect((await shotCode(1)).code).toBe(before.code); // nothing told the cache yet
    const cursor = stack.service.cache.lastAppliedEventId;

    const answer = await postWebhook(stack.port, changeDelivery(++nextEventId, "Shot", 1, "code", "HINTED_1", `d-${++nextDelivery}`));
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ status: "accepted", deliveries: 1, ignored: 0 });
    await stack.service.webhooks!.whenIdle();

    expect((await shotCode(1)).code).toBe("HINTED_1");
    // A hint is not an applied event: freshness and the follower's cursor stay with the log.
    expect(stack.service.cache.lastAppliedEventId).toBe(cursor);
    expect(stack.service.follower!.lastAppliedEventId).toBeLessThan(nextEventId);
    expect(await metric(stack.port, "shotgrid_cache_webhook_deliveries_total", { outcome: "applied" })).toBeGreaterThanOrEqual(1);
  });

  it("a forged, missing or truncated signature is refused with 401 and invalidates nothing", async () => {
    const before = await shotCode(2);
    stack.site.store.writeWithoutEvents("Shot", 2, { code: "FORGED_2" });
    const body = changeDelivery(++nextEventId, "Shot", 2, "code", "FORGED_2", `d-${++nextDelivery}`);
    const raw = JSON.stringify(body);
    const rejectedBefore = await metric(stack.port, "shotgrid_cache_webhook_rejected_total", { reason: "signature" });

    const wrongKey = await postWebhook(stack.port, raw, { secret: "not-the-secret" });
    const missing = await postWebhook(stack.port, raw, { signature: null });
    const truncated = await postWebhook(stack.port, raw, { signature: sign(raw).slice(0, 20) });
    const otherBody = await postWebhook(stack.port, raw, { signature: sign(`${raw} `) });
    for (const a of [wrongKey, missing, truncated, otherBody]) {
      expect(a.status).toBe(401);
      expect(a.body).not.toContain(SECRET);
    }
    expect(missing.json.message).toMatch(/x-sg-signature header missing/);
    await stack.service.webhooks!.whenIdle();
    expect((await shotCode(2)).code).toBe(before.code);
    expect(await metric(stack.port, "shotgrid_cache_webhook_rejected_total", { reason: "signature" })).toBe(rejectedBefore + 4);

    // The same body, signed properly, is accepted: the rejections were about the signature only.
    expect((await postWebhook(stack.port, raw)).status).toBe(200);
    await stack.service.webhooks!.whenIdle();
    expect((await shotCode(2)).code).toBe("FORGED_2");
  });

  it("a replayed delivery is answered 200 and ignored", async () => {
    stack.site.store.writeWithoutEvents("Shot", 3, { code: "FIRST_3" });
    const body = changeDelivery(++nextEventId, "Shot", 3, "code", "FIRST_3", `d-${++nextDelivery}`);
    expect((await postWebhook(stack.port, body)).json).toMatchObject({ ignored: 0 });
    await stack.service.webhooks!.whenIdle();
    expect((await shotCode(3)).code).toBe("FIRST_3");

    // The site changes again (silently); a replay of the old delivery must not be what refreshes it.
    stack.site.store.writeWithoutEvents("Shot", 3, { code: "SECOND_3" });
    const duplicatesBefore = await metric(stack.port, "shotgrid_cache_webhook_deliveries_total", { outcome: "duplicate" });
    const replay = await postWebhook(stack.port, body);
    expect(replay.status).toBe(200);
    expect(replay.json).toMatchObject({ deliveries: 1, ignored: 1 });
    await stack.service.webhooks!.whenIdle();
    expect((await shotCode(3)).code).toBe("FIRST_3");
    expect(await metric(stack.port, "shotgrid_cache_webhook_deliveries_total", { outcome: "duplicate" })).toBe(duplicatesBefore + 1);
  });

  it("accepts a batched body and applies every delivery in it", async () => {
    stack.site.store.writeWithoutEvents("Shot", 4, { code: "BATCH_4" });
    stack.site.store.writeWithoutEvents("Shot", 5, { code: "BATCH_5" });
    const one = changeDelivery(++nextEventId, "Shot", 4, "code", "BATCH_4", `d-${++nextDelivery}`) as { data: unknown; timestamp: string };
    const two = changeDelivery(++nextEventId, "Shot", 5, "code", "BATCH_5", `d-${++nextDelivery}`) as { data: unknown };
    // Out of order on purpose: deliveries carry no ordering promise.
    const answer = await postWebhook(stack.port, { data: { deliveries: [two.data, one.data] }, timestamp: one.timestamp });
    expect(answer.json).toMatchObject({ status: "accepted", deliveries: 2, ignored: 0 });
    await stack.service.webhooks!.whenIdle();
    expect((await shotCode(4)).code).toBe("BATCH_4");
    expect((await shotCode(5)).code).toBe("BATCH_5");
  });

  it("refuses bodies that are too large (413), not JSON or not deliveries (400), and other methods (405)", async () => {
    const big = Buffer.alloc(2 * 1024 * 1024, "x");
    const tooLarge = await request(stack.port, "POST", WEBHOOK, big, { "content-type": "application/json", "x-sg-signature": sign(big) });
    expect(tooLarge.status).toBe(413);

    const notJson = "{not json";
    const a = await postWebhook(stack.port, notJson);
    expect(a.status).toBe(400);
    expect(a.json.message).toMatch(/not valid JSON/);

    const notDelivery = await postWebhook(stack.port, { data: { event_type: "Shotgun_Shot_Change" } });
    expect(notDelivery.status).toBe(400);
    expect(notDelivery.json.message).toMatch(/data\.event_log_entry_id must be a positive integer/);

    const tooMany = await postWebhook(stack.port, { data: { deliveries: [] } });
    expect(tooMany.status).toBe(400);
    expect(tooMany.json.message).toMatch(/1 to 50 deliveries/);

    const get = await request(stack.port, "GET", WEBHOOK);
    expect(get.status).toBe(405);
    // The service is still serving normally.
    expect((await request(stack.port, "GET", "/healthz")).status).toBe(200);
  });

  it("the simulated site's own webhooks keep the cache fresh with a long poll interval", async () => {
    const remove = stack.site.webhooks.add({ url: `http://127.0.0.1:${stack.port}${WEBHOOK}`, secret: SECRET });
    try {
      await shotCode(6);
      stack.site.store.update("Shot", 6, { code: "PUSHED_6" }, { user: stack.site.scriptUser });
      await stack.site.webhooks.whenIdle();
      await stack.service.webhooks!.whenIdle();
      expect((await shotCode(6)).code).toBe("PUSHED_6");
      expect(stack.site.webhooks.stats.failures).toBe(0);
    } finally {
      remove();
    }
  });
});

describe("without a webhook secret", () => {
  it("there is no webhook route (404)", async () => {
    const plain = await startStack({ config: { webhookSecret: undefined, preloadTypes: [], reconcileIntervalS: 0 } });
    try {
      const body = JSON.stringify(changeDelivery(1, "Shot", 1, "code", "x", "d-404"));
      const answer = await request(plain.port, "POST", WEBHOOK, body, { "content-type": "application/json", "x-sg-signature": sign(body) });
      expect(answer.status).toBe(404);
      expect(plain.service.webhooks).toBeUndefined();
      expect(plain.service.reconciler).toBeUndefined();
    } finally {
      await plain.close();
    }
  });
});
