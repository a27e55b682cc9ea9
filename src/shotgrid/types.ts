/**
 * Data-source-neutral types shared by the Backend interface, the simulator, the cache and the
 * service. Nothing here knows ShotGrid's REST wire format: records are flat, the way ShotGrid's
 * own api3 clients show them (`{type, id, fields}` with links as `{type, id, name}`).
 */

/** A link to another entity, as api3 clients show it inside a record's fields. */
export interface EntityLink {
  type: string;
  id: number;
  /** The linked entity's display name (its `code`, `name`, `content`…); null when it has none. */
  name?: string | null;
}

/** Any value a field can hold once decoded from the wire. */
export type FieldValue = null | string | number | boolean | EntityLink | EntityLink[] | string[] | number[] | { [key: string]: unknown };

/** One entity record. `fields` never holds `type` or `id`. */
export interface Entity {
  type: string;
  id: number;
  fields: Record<string, FieldValue>;
}

/** ShotGrid filter operators (the REST API's and api3's names). */
export const FILTER_OPERATORS = [
  "is",
  "is_not",
  "less_than",
  "greater_than",
  "contains",
  "not_contains",
  "starts_with",
  "ends_with",
  "between",
  "not_between",
  "in_last",
  "not_in_last",
  "in_next",
  "not_in_next",
  "in",
  "not_in",
  "type_is",
  "type_is_not",
  "in_calendar_day",
  "in_calendar_week",
  "in_calendar_month",
  "in_calendar_year",
  "name_contains",
  "name_not_contains",
  "name_starts_with",
  "name_ends_with",
  "name_is",
  "name_id",
] as const;
export type FilterOperator = (typeof FILTER_OPERATORS)[number];

/**
 * One condition in ShotGrid's array form: `["code", "is", "SH010"]`,
 * `["created_at", "between", lo, hi]`, `["id", "in", [1, 2]]`, `["updated_at", "in_last", 1, "DAY"]`.
 */
export type FilterCondition = [path: string, operator: FilterOperator | string, ...values: unknown[]];

/** A nested group in ShotGrid's logical (hash) form. */
export interface FilterGroup {
  logical_operator: "and" | "or";
  conditions: Array<FilterCondition | FilterGroup>;
}

/** Either form: a list of conditions (all ANDed) or one logical group. */
export type Filters = FilterCondition[] | FilterGroup;

export interface SortSpec {
  field: string;
  direction: "asc" | "desc";
}

/** Which records to return with respect to retirement (ShotGrid's `return_only`). */
export type ReturnOnly = "active" | "retired";

export interface ReadOptions {
  /** Fields to return; empty or undefined means the site's default (`*`: every field). */
  fields?: string[];
  returnOnly?: ReturnOnly;
  includeArchivedProjects?: boolean;
  signal?: AbortSignal;
}

export interface SearchOptions extends ReadOptions {
  filters?: Filters;
  sort?: SortSpec[];
  /** Stop after this many records in total (across pages). Undefined: every matching record. */
  limit?: number;
  /** Records per upstream page (ShotGrid's default is 500). */
  pageSize?: number;
  /** Start at this 1-based page of `pageSize` records (for callers that page themselves). */
  page?: number;
}

/** One row of ShotGrid's event log (EventLogEntry), decoded. */
export interface EventLogEntry {
  id: number;
  event_type: string;
  attribute_name: string | null;
  meta: Record<string, unknown> | null;
  entity: EntityLink | null;
  project: EntityLink | null;
  user: EntityLink | null;
  session_uuid: string | null;
  /** ISO 8601 UTC, e.g. `2021-06-16T08:55:13Z`. */
  created_at: string;
  description?: string | null;
}

export interface EventReadOptions {
  /** Return events with id strictly greater than this. */
  afterId?: number;
  /** Return only these ids (for re-asking about skipped ids cheaply). */
  ids?: number[];
  /** At most this many events (one page). Default 500. */
  limit?: number;
  /** Only events created at or after this ISO time (used by reconcile and gap give-up). */
  createdAfter?: string;
  signal?: AbortSignal;
}

/** One field of an entity type's schema, flattened from ShotGrid's `{value, editable}` pairs. */
export interface FieldSchema {
  name: string;
  /** The field's display name ("Shot Code"). */
  displayName: string;
  /** ShotGrid data type: text, number, float, entity, multi_entity, date, date_time, checkbox… */
  dataType: string;
  editable: boolean;
  /** For entity and multi_entity fields: the types the link may point to. */
  validTypes?: string[];
  /** For status_list and list fields: the allowed values. */
  validValues?: string[];
}

/** An entity type's fields by field name. */
export type EntitySchema = Record<string, FieldSchema>;

/** How a multi-entity field is changed by an update. */
export type MultiEntityUpdateMode = "set" | "add" | "remove";

export interface MultiEntityUpdate {
  multi_entity_update_mode: MultiEntityUpdateMode;
  value: EntityLink[];
}

/** Field values for create and update; multi-entity fields may carry an update mode. */
export type WriteFields = Record<string, FieldValue | MultiEntityUpdate>;

/**
 * Credentials a caller brings to act as itself (api3 callers do): exactly one form. Secrets go
 * only into the token request's form body, never into a message or a log line.
 */
export type CallerCredentials = { scriptName: string; scriptKey: string } | { login: string; password: string } | { sessionToken: string };

/** How a write is made, and as whom. */
export interface WriteOptions {
  /**
   * Make the write as this HumanUser login (ShotGrid's `sudo_as_login`): the service's script
   * authenticates, ShotGrid applies the login's permission rules and its event log names that
   * user. ShotGrid refuses unknown, retired, inactive or non-impersonable logins (CallerAuthError).
   */
  asLogin?: string;
  /** Authenticate with the caller's own credentials instead of the service's script (may add `asLogin`). */
  credentials?: CallerCredentials;
  /** Fields the answer holds (create, update); default: ShotGrid's choice. */
  fields?: string[];
  /**
   * Update only: how each listed multi-entity field changes — `set` replaces the list, `add`
   * appends links, `remove` takes links out. The field's value in `data` is the list of links.
   */
  multiEntityUpdateModes?: Record<string, MultiEntityUpdateMode>;
  signal?: AbortSignal;
}

export type BatchRequest =
  | { requestType: "create"; entityType: string; data: WriteFields; fields?: string[] }
  | {
      requestType: "update";
      entityType: string;
      id: number;
      data: WriteFields;
      fields?: string[];
      /** As WriteOptions.multiEntityUpdateModes, for this request. */
      multiEntityUpdateModes?: Record<string, MultiEntityUpdateMode>;
    }
  | { requestType: "delete"; entityType: string; id: number };

/** Options of a delete, revive or batch: who makes it, and the caller's abort. */
export type ActingOptions = Pick<WriteOptions, "asLogin" | "credentials" | "signal">;

/** A batch result: the created or updated entity, or `true` for a delete. */
export type BatchResult = Entity | boolean;

/** One summary asked of `summarize`: ShotGrid's `{field, type}` (`record_count`, `count`, `sum`, `latest`…). */
export interface SummaryField {
  field: string;
  type: string;
}

/** One level of grouping: ShotGrid's `{field, type, direction}` (`exact`, `tens`, `month`, `firstletter`…). */
export interface SummaryGrouping {
  field: string;
  type: string;
  direction?: "asc" | "desc";
}

export interface SummarizeOptions {
  filters?: Filters;
  summaryFields: SummaryField[];
  /** Nested groups, one level per entry; absent or empty: totals only. */
  grouping?: SummaryGrouping[];
  /** Default true, as on ShotGrid. */
  includeArchivedProjects?: boolean;
  signal?: AbortSignal;
}

/** One group of a summary answer, as ShotGrid sends it. */
export interface SummaryGroup {
  group_name: string;
  group_value: unknown;
  summaries: Record<string, unknown>;
  groups?: SummaryGroup[];
}

/** ShotGrid's summary answer: the totals and, with grouping, the groups. */
export interface SummaryAnswer {
  summaries: Record<string, unknown>;
  groups: SummaryGroup[];
}

/** A call relayed to the site's own api3 endpoint (`POST /api3/json`) on a caller's behalf. */
export interface Api3RelayOptions {
  /**
   * The caller's own `params[0]` (their credentials), sent as they gave it; its secrets are never
   * logged. Undefined only for `info`, which takes no credentials.
   */
  auth: Record<string, unknown> | undefined;
  /**
   * True for methods that only read: safe to send again after a failure. False (the default): sent
   * again only when it provably did not reach the site, as for every write.
   */
  readOnly?: boolean;
  signal?: AbortSignal;
}

/**
 * The data source behind the cache. The ShotGrid REST client implements it; another source can
 * replace ShotGrid by implementing it too. Errors are `BackendError` subclasses (see errors.ts).
 */
export interface Backend {
  /** A human-readable name of the source (a site URL), for logs and health. Never a secret. */
  readonly description: string;
  /** One record by id, or null when it does not exist (or is not visible with these options). */
  getEntity(entityType: string, id: number, options?: ReadOptions): Promise<Entity | null>;
  /** Every matching record, paged upstream to completion or to `limit`. */
  search(entityType: string, options?: SearchOptions): Promise<Entity[]>;
  /** The same, a page at a time (for preload with progress). */
  searchPages(entityType: string, options?: SearchOptions): AsyncIterable<Entity[]>;
  /** The fields of one entity type. */
  schemaFields(entityType: string, signal?: AbortSignal): Promise<EntitySchema>;
  /** Every entity type the source knows, by name. */
  schemaEntityTypes(signal?: AbortSignal): Promise<string[]>;
  /** Event log rows sorted by id ascending. */
  readEvents(options: EventReadOptions): Promise<EventLogEntry[]>;
  /** The newest event id in the log (0 when empty). */
  latestEventId(signal?: AbortSignal): Promise<number>;
  /*
   * Writes. None is repeated unless the site provably did not process it; when the outcome is
   * unknown they throw WriteOutcomeUnknownError. A list in place of the options is the older
   * form of `{ fields }`.
   */
  create(entityType: string, data: WriteFields, options?: WriteOptions | string[]): Promise<Entity>;
  update(entityType: string, id: number, data: WriteFields, options?: WriteOptions | string[]): Promise<Entity>;
  /** Retire a record. */
  delete(entityType: string, id: number, options?: ActingOptions): Promise<void>;
  /** Bring a retired record back; true when it was revived. */
  revive(entityType: string, id: number, options?: ActingOptions): Promise<boolean>;
  /** All-or-nothing batch of writes: one failing request leaves nothing written. */
  batch(requests: BatchRequest[], options?: ActingOptions): Promise<BatchResult[]>;
  /*
   * Optional: what the api3 protocol front (src/api3) needs beyond reads and writes. A source
   * without them answers those api3 methods with a fault saying so.
   */
  /** ShotGrid's summaries (REST `_summarize`): totals over the matching records, optionally grouped. */
  summarize?(entityType: string, options: SummarizeOptions): Promise<SummaryAnswer>;
  /**
   * Check a caller's own credentials with the site (a token grant of the matching kind, always a
   * round trip): resolves when the site accepts them (acting as `asLogin` when given), throws
   * CallerAuthError when it refuses them.
   */
  verifyCaller?(credentials: CallerCredentials, options?: { asLogin?: string; signal?: AbortSignal }): Promise<void>;
  /**
   * Send one api3 call (`{"method_name", "params": [auth, args]}`) to the site's own api3 endpoint
   * and resolve with its JSON answer as it came, a fault body included. `args` undefined: none sent.
   */
  relayApi3?(method: string, args: unknown, options: Api3RelayOptions): Promise<unknown>;
  /** Release connections. */
  close(): Promise<void>;
}
