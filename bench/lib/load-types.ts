/** The shapes the orchestrator and the load generator exchange (plain data, sent over IPC). */

/** One request, ready to send: the load generator does no encoding of its own. */
export interface RequestShape {
  method: "GET" | "POST";
  /** Path and query string. */
  path: string;
  headers: Record<string, string>;
  /** Body bytes, base64 (IPC carries JSON). */
  body?: string;
}

/** How an answer is judged a success. */
export type AnswerCheck = "http-200" | "grpc" | "grpc-web";

export interface LoadSpec {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** `h1`: HTTP/1.1 (undici Pool); `h2`: HTTP/2 prior knowledge (node:http2), one session per connection. */
  transport: "h1" | "h2";
  check: AnswerCheck;
  /** Sent round-robin by each connection. */
  requests: RequestShape[];
  /** Connections, each with one request in flight at a time. */
  connections: number;
  warmupMs: number;
  durationMs: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  rps: number;
  latency: import("./stats.ts").LatencySummary;
  /** Bytes of the first answer body (to check the sizes compared are alike). */
  answerBytes: number;
}
