/**
 * Single-flight: concurrent identical misses share one upstream fetch (design invariant 3).
 * A flight can be detached when an invalidation touches what it reads: callers already waiting
 * keep it, new callers start a fresh fetch (so nobody arriving after an event gets data from before it).
 * A caller's abort only stops that caller's wait; the shared fetch goes on for the others.
 */
import { abortedBy } from "../shotgrid/errors.ts";

interface Flight<T> {
  promise: Promise<T>;
  tags: ReadonlySet<string>;
}

export class SingleFlight<T> {
  readonly #flights = new Map<string, Flight<T>>();

  /**
   * Join the flight for `key`, or start one with `fetch`.
   * @param tags what the fetch reads; `detach` with one of them cuts the flight off from new callers.
   */
  run(key: string, tags: readonly string[], fetch: () => Promise<T>): { promise: Promise<T>; joined: boolean } {
    const existing = this.#flights.get(key);
    if (existing) return { promise: existing.promise, joined: true };
    const flight: Flight<T> = { promise: Promise.resolve().then(fetch), tags: new Set(tags) };
    this.#flights.set(key, flight);
    const done = () => {
      if (this.#flights.get(key) === flight) this.#flights.delete(key);
    };
    flight.promise.then(done, done);
    return { promise: flight.promise, joined: false };
  }

  /** New callers no longer join flights reading any of `tags`; `all` detaches every flight. */
  detach(tags: readonly string[], all = false): void {
    for (const [key, flight] of this.#flights) {
      if (all || tags.some((t) => flight.tags.has(t))) this.#flights.delete(key);
    }
  }

  get size(): number {
    return this.#flights.size;
  }
}

/** `promise`, or an AbortedError (carrying the signal's reason: a deadline or a cancel) as soon as `signal` aborts (the promise itself keeps running). */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortedBy(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortedBy(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
