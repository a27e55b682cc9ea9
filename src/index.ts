/**
 * The library's public face: a typed client, the generated API types, and the Backend contract
 * for studios that want to put another data source behind the cache.
 */
export {
  createCacheClient,
  shotgridFilters,
  type CacheClient,
  type CacheClientOptions,
  type CacheQueryRequest,
  type ShotgridCondition,
  type ShotgridFilterGroup,
  type ShotgridFilters,
} from "./client.ts";
export * from "../gen/shotgrid/cache/v1/cache_pb.ts";
export type {
  Backend,
  BatchRequest,
  BatchResult,
  Entity as BackendEntity,
  EntityLink,
  EntitySchema as BackendEntitySchema,
  EventLogEntry,
  EventReadOptions,
  FieldSchema,
  FieldValue,
  FilterCondition,
  FilterGroup,
  Filters,
  ReadOptions,
  SearchOptions,
  SortSpec,
  WriteFields,
} from "./shotgrid/types.ts";
export * from "./shotgrid/errors.ts";
