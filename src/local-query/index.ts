/** Answering Queries over the mirrored (preloaded) entity types locally, exactly as ShotGrid would. */
export { CANNOT_ANSWER_CODES, type CannotAnswerCode } from "./cannot-answer.ts";
export { LocalQueryEngine, type LocalAnswer, type LocalQuery, type LocalQueryEngineOptions } from "./engine.ts";
export { Mirror, type ChangeEvent, type TypeMirror } from "./mirror.ts";
export { valueFromChange, WRITE_STAMP_FIELDS } from "./event-values.ts";
export { checkTimeZone } from "./time-zone.ts";
