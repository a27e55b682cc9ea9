/**
 * Coalescing of misses across instances. Single-flight (single-flight.ts) makes one fetch per
 * process; with a shared store several processes can still miss the same key at once and all go
 * upstream. A `MissCoalescer` lets one of them fetch and fill while the others read the fill.
 */

/** What `coalesce` produced and how. */
export interface CoalescedResult<T> {
  value: T;
  /** True: another instance fetched it and this one read its fill from the shared store. */
  waited: boolean;
}

export interface MissCoalescer {
  /**
   * One fetch for `key` across instances: either this instance runs `fetch` (which fetches upstream
   * and fills the shared store), or it waits for another instance's fill and returns `filled()`.
   * A wait is bounded (a holder that died cannot block): after it, this instance fetches itself.
   * If the coordination itself fails (the store is unreachable), it fetches at once.
   * @param filled reads a valid, fresh stored answer for `key`; undefined while there is none.
   *   A rejection means the store cannot be used now: the caller fetches itself.
   */
  coalesce<T>(key: string, fetch: () => Promise<T>, filled: () => Promise<T | undefined>): Promise<CoalescedResult<T>>;
}
