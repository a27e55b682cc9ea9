/**
 * Why the engine did not answer a query: the query then goes upstream as before. A code (the
 * `/metrics` label, a small fixed set) and a sentence for logs and tests.
 */

export const CANNOT_ANSWER_CODES = [
  /** Local answers are off (a shared store, or by option): not the engine's own verdict. */
  "disabled",
  "type_not_mirrored",
  "type_not_loaded",
  "records_refreshing",
  /** A record was updated from its event's meta, which does not carry `updated_at`/`updated_by`: a query reading them waits for a refetch. */
  "stamps_unknown",
  "retired_records",
  "path_not_mirrored",
  "field_not_held",
  "data_type",
  "operator",
  /** The answer hangs on a rule the engine cannot be sure of for these records: letter case, times within one second. */
  "uncertain",
  "time_value",
  "order",
] as const;
export type CannotAnswerCode = (typeof CANNOT_ANSWER_CODES)[number];

/** Thrown inside the engine, caught at its edge and turned into an answer of `{ cannot }`. */
export class CannotAnswer extends Error {
  override readonly name = "CannotAnswer";
  constructor(
    readonly code: CannotAnswerCode,
    readonly reason: string,
  ) {
    super(`cannot answer: ${reason}`);
  }
}
