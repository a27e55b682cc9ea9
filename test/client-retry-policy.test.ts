import { describe, expect, it } from "vitest";
import { ConcurrencyLimit } from "../src/shotgrid/concurrency-limit.ts";
import { backoffDelay, isRetryable, sleep } from "../src/shotgrid/retry.ts";
import { TokenManager } from "../src/shotgrid/token-manager.ts";

const err = (code: string) => Object.assign(new Error(code), { code });

describe("retry policy", () => {
  it("retries reads on 502, 503, 504 and connection errors, never on 4xx or 500", () => {
    for (const status of [502, 503, 504]) expect(isRetryable({ status }, true)).toBe(true);
    for (const status of [400, 401, 404, 429, 500]) expect(isRetryable({ status }, true)).toBe(false);
    for (const code of ["ECONNRESET", "ECONNREFUSED", "UND_ERR_SOCKET", "EPIPE"]) expect(isRetryable({ error: err(code) }, true)).toBe(true);
    expect(isRetryable({ error: new Error("boom") }, true)).toBe(false);
  });

  it("retries writes only when the site cannot have processed them", () => {
    expect(isRetryable({ status: 503 }, false)).toBe(true);
    expect(isRetryable({ status: 502 }, false)).toBe(false);
    expect(isRetryable({ status: 504 }, false)).toBe(false);
    expect(isRetryable({ error: err("ECONNREFUSED") }, false)).toBe(true);
    expect(isRetryable({ error: Object.assign(new Error("x"), { cause: err("UND_ERR_CONNECT_TIMEOUT") }) }, false)).toBe(true);
    expect(isRetryable({ error: err("ECONNRESET") }, false)).toBe(false);
    expect(isRetryable({ error: err("UND_ERR_SOCKET") }, false)).toBe(false);
  });

  it("draws full-jitter delays under a doubling, capped ceiling", () => {
    const policy = { baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(0, policy, () => 0.999)).toBe(99);
    expect(backoffDelay(2, policy, () => 0.999)).toBe(399);
    expect(backoffDelay(10, policy, () => 0.999)).toBe(999);
    expect(backoffDelay(3, policy, () => 0)).toBe(0);
  });

  it("stops sleeping when the signal aborts", async () => {
    const ac = new AbortController();
    const p = sleep(60_000, ac.signal);
    ac.abort(new Error("stop"));
    await expect(p).rejects.toThrow("stop");
  });
});

describe("concurrency limit", () => {
  it("serves waiters in arrival order and never exceeds its cap", async () => {
    const limit = new ConcurrencyLimit(2);
    const order: number[] = [];
    let running = 0;
    let peak = 0;
    const gates: Array<() => void> = [];
    const tasks = [0, 1, 2, 3, 4].map((n) =>
      limit.run(async () => {
        order.push(n);
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((r) => gates.push(r));
        running--;
      }),
    );
    while (order.length < 5) {
      await new Promise((r) => setImmediate(r));
      gates.shift()?.();
    }
    gates.forEach((g) => g());
    await Promise.all(tasks);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(peak).toBe(2);
    expect(limit.active).toBe(0);
  });

  it("lets an aborted waiter leave the queue without taking a slot", async () => {
    const limit = new ConcurrencyLimit(1);
    const release = await limit.acquire();
    const ac = new AbortController();
    const waiting = limit.acquire(ac.signal);
    const next = limit.acquire();
    expect(limit.waiting).toBe(2);
    ac.abort(new Error("gone"));
    await expect(waiting).rejects.toThrow("gone");
    expect(limit.waiting).toBe(1);
    release();
    const releaseNext = await next;
    expect(limit.active).toBe(1);
    releaseNext();
    releaseNext(); // a second release is ignored
    expect(limit.active).toBe(0);
  });

  it("rejects a bad cap", () => {
    expect(() => new ConcurrencyLimit(0)).toThrow("maxConcurrent");
  });
});

describe("token manager", () => {
  it("shares one fetch among concurrent callers and refreshes before expiry", async () => {
    let now = 0;
    let n = 0;
    let resolveFetch!: () => void;
    const tm = new TokenManager(() => new Promise((resolve) => (resolveFetch = () => resolve({ accessToken: `t${++n}`, expiresInS: 100 }))), {
      refreshMarginMs: 10_000,
      now: () => now,
    });
    const all = Promise.all([tm.get(), tm.get(), tm.get()]);
    resolveFetch();
    expect(await all).toEqual(["t1", "t1", "t1"]);
    now = 89_000;
    expect(await tm.get()).toBe("t1");
    now = 90_000; // inside the margin
    const p = tm.get();
    resolveFetch();
    expect(await p).toBe("t2");
    expect(tm.fetchCount).toBe(2);
  });

  it("drops a refused token once, however many callers report it", async () => {
    let n = 0;
    const tm = new TokenManager(async () => ({ accessToken: `t${++n}`, expiresInS: 600 }), { refreshMarginMs: 0 });
    const t1 = await tm.get();
    tm.invalidate(t1);
    const t2 = await tm.get();
    tm.invalidate(t1); // a late 401 for the old token must not drop the new one
    expect(await tm.get()).toBe(t2);
    expect(tm.fetchCount).toBe(2);
  });

  it("caps the margin at half a short token's lifetime", async () => {
    let now = 0;
    let n = 0;
    const tm = new TokenManager(async () => ({ accessToken: `t${++n}`, expiresInS: 2 }), { refreshMarginMs: 60_000, now: () => now });
    expect(await tm.get()).toBe("t1");
    now = 900;
    expect(await tm.get()).toBe("t1");
    now = 1000;
    expect(await tm.get()).toBe("t2");
  });

  it("lets a caller stop waiting without failing the shared fetch", async () => {
    let resolveFetch!: () => void;
    const tm = new TokenManager(() => new Promise((r) => (resolveFetch = () => r({ accessToken: "tok", expiresInS: 600 }))), { refreshMarginMs: 0 });
    const ac = new AbortController();
    const a = tm.get(ac.signal);
    const b = tm.get();
    ac.abort(new Error("bye"));
    await expect(a).rejects.toThrow("bye");
    resolveFetch();
    expect(await b).toBe("tok");
  });
});
