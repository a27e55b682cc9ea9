/**
 * api3's schema methods (`schema_read`, `schema_entity_read`, `schema_field_read`) answered from
 * memory: the first call is relayed to the site's own api3 (with the caller's credentials) and its
 * answer kept, under the method and its arguments, until a schema-change event (or
 * `maxAgeMs`) drops it. The site's answer is kept as it came, so the cached answer is exactly
 * ShotGrid's. A fault is never kept. An answer whose relay began before a drop is not kept
 * either (it may describe the schema before the change).
 */
import { canonicalJson } from "../cache/query-key.ts";

interface Held {
  answer: unknown;
  at: number;
}

export interface SchemaAnswersOptions {
  /** Drop answers older than this (ms), events or not. */
  maxAgeMs: number;
  /** Most answers kept (different methods, types, projects). Default 2000. */
  maxEntries?: number;
  now?: () => number;
}

export class SchemaAnswers {
  readonly #held = new Map<string, Held>();
  readonly #now: () => number;
  readonly #max: number;
  /** Bumped by every drop: a relay that began under an older generation keeps nothing. */
  #generation = 0;

  constructor(private readonly o: SchemaAnswersOptions) {
    this.#now = o.now ?? Date.now;
    this.#max = o.maxEntries ?? 2000;
  }

  /** The held answer of `method(args)`, or the one `relay` gives (kept when it is not a fault). */
  async answer(method: string, args: unknown, relay: () => Promise<unknown>): Promise<unknown> {
    const key = `${method}:${canonicalJson(args ?? null)}`;
    const held = this.#held.get(key);
    if (held && this.#now() - held.at <= this.o.maxAgeMs) return held.answer;
    const generation = this.#generation;
    const answer = await relay();
    const isFault = typeof answer === "object" && answer !== null && (answer as { exception?: unknown }).exception === true;
    if (!isFault && generation === this.#generation) {
      this.#held.delete(key);
      while (this.#held.size >= this.#max) this.#held.delete(this.#held.keys().next().value as string);
      this.#held.set(key, { answer, at: this.#now() });
    }
    return answer;
  }

  /** Forget every answer (a field was created, changed, deleted or restored). */
  drop(): void {
    this.#generation++;
    this.#held.clear();
  }

  get size(): number {
    return this.#held.size;
  }
}
