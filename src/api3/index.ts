/** ShotGrid's api3 protocol (`POST /api3/json`) served from the cache: see docs/api3.md. */
export { createApi3Route, type Api3Metrics, type Api3Outcome, type Api3Route, type Api3RouteOptions } from "./api3-route.ts";
export { CallerVerifier, parseCaller, type Api3Caller } from "./caller-auth.ts";
export type { Api3Cache, Api3Context } from "./context.ts";
export { API3_CODES, type Api3Fault } from "./faults.ts";
export { SchemaAnswers } from "./schema-answers.ts";
