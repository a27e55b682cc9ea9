/**
 * One round trip shared by every caller waiting for one, instead of one each: the near cache's
 * barrier (see near-cache.ts and docs/redis.md).
 *
 * `wait()` resolves true once a round trip *sent after the call* has completed: a trip already
 * in flight when a caller arrives was sent before it, so it cannot vouch for anything that
 * happened between its sending and the caller's arrival, and the caller waits for the next one.
 * At most one trip is in flight; every caller arriving meanwhile shares the next, sent as soon as
 * the current one is answered (or, when none is in flight, at the end of this turn of the event
 * loop, so that all requests read from the sockets in one turn share it). Under load a trip
 * covers every request that arrived during the previous one; a caller waits at most two trips.
 */
export class SharedRoundTrip {
  readonly #trip: () => Promise<unknown>;
  /** Callers not yet covered by a sent trip. */
  #waiting: Array<(ok: boolean) => void> = [];
  #inFlight = false;
  #scheduled = false;
  /** Trips sent, for tests and metrics. */
  sent = 0;

  /** `trip` must complete only after the server has processed a command sent when it was called. */
  constructor(trip: () => Promise<unknown>) {
    this.#trip = trip;
  }

  /** True once a trip sent after this call has completed; false if that trip failed. */
  wait(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.#waiting.push(resolve);
      if (this.#inFlight || this.#scheduled) return;
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.#send();
      });
    });
  }

  #send(): void {
    if (this.#inFlight || this.#waiting.length === 0) return;
    const group = this.#waiting;
    this.#waiting = [];
    this.#inFlight = true;
    this.sent++;
    let trip: Promise<unknown>;
    try {
      trip = this.#trip();
    } catch (err) {
      trip = Promise.reject(err);
    }
    trip.then(
      () => this.#done(group, true),
      () => this.#done(group, false),
    );
  }

  #done(group: Array<(ok: boolean) => void>, ok: boolean): void {
    this.#inFlight = false;
    for (const resolve of group) resolve(ok);
    // Callers that arrived while it was in flight: their trip goes now.
    this.#send();
  }
}
