/** The ShotGrid side: the Backend contract, its REST implementation, and the error hierarchy. */
export { ShotGridClient } from "./shotgrid-client.ts";
export type { ShotGridClientOptions } from "./client-options.ts";
export * from "./errors.ts";
export type * from "./types.ts";
export { FILTER_OPERATORS } from "./types.ts";
export {
  ARRAY_FILTERS_CONTENT_TYPE,
  HASH_FILTERS_CONTENT_TYPE,
  decodeRecord,
  decodeRecordList,
  decodeSchemaFields,
  normaliseDateTime,
} from "./wire-codec.ts";
export { mapErrorResponse, parseErrorEnvelope } from "./error-mapping.ts";
