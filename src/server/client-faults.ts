/**
 * Client mistakes that connect-es answers as if they were the server's: every RPC handler is
 * wrapped (see `explainClientFaults`) so that
 * - a request message that is not valid protobuf ("parse binary: …", which connect-es reports as
 *   `internal`) answers `invalid_argument`, as malformed JSON already does, in every protocol;
 * - invalid base64 in a Connect GET (`&base64=1&message=…`, an untyped throw inside connect-es,
 *   answered "internal error") answers `invalid_argument` saying so;
 * - a missing or wrong content type (415), method (405) or HTTP version (505), answered with an
 *   empty body, gets a JSON body saying what to send instead.
 * The request is parsed before any response message, so a parse error is always the first (and
 * only) thing in a response: only that is inspected, later messages pass straight through.
 */
import { base64Decode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, codeToString, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";

/** How connect-es prefixes a request message that fails to decode as protobuf. */
const PARSE_BINARY = "parse binary: ";
const GRPC_INTERNAL = String(Code.Internal);
const GRPC_INVALID_ARGUMENT = String(Code.InvalidArgument);
/** Envelope flags: the Connect end-of-stream message, and gRPC-web trailers. */
const CONNECT_END_STREAM = 0x02;
const GRPC_WEB_TRAILER = 0x80;

/**
 * The code an RPC error really has: a request that is not valid protobuf is the caller's fault
 * (`invalid_argument`), not the server's. Used for answers and for logs and metrics alike.
 */
export function clientFaultCode(code: Code, rawMessage: string): Code {
  return code === Code.Internal && rawMessage.startsWith(PARSE_BINARY) ? Code.InvalidArgument : code;
}

/** Called for each answer this module rewrites or makes, for the log. */
export type OnClientFault = (rpc: string, code: string, message: string) => void;

/** `handler`, answering the client mistakes listed above as the caller's, with a clear message. */
export function explainClientFaults(handler: UniversalHandler, onFault?: OnClientFault): UniversalHandler {
  const rpc = `${handler.service.typeName}/${handler.method.name}`;
  const report = (error: ConnectError) => onFault?.(rpc, codeToString(error.code), error.rawMessage);
  // Streams parse their request inside the interceptors, which log it (see `clientFaultCode`); unary calls before them.
  const reportParse = handler.method.methodKind === "unary" ? report : () => undefined;
  const gettable = handler.allowedMethods.includes("GET");
  const wrapped = async (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
    if (gettable && req.method === "GET") {
      const bad = badGetQuery(req.url);
      if (bad) {
        report(bad);
        return connectUnaryError(bad);
      }
    }
    const res = await handler(req);
    if (res.body === undefined && (res.status === 415 || res.status === 405 || res.status === 505)) {
      const error = new ConnectError(explainRefusal(res.status, handler, req), res.status === 505 ? Code.Unimplemented : Code.InvalidArgument);
      report(error);
      // Keep the refusal's own headers (a 505 says "Connection: close").
      return { ...withHeaders(connectUnaryError(error), res.header), status: res.status };
    }
    if (res.status === 500) return rewriteUnary(res, reportParse);
    if (res.trailer) rewriteGrpcStatus(res.trailer, reportParse);
    else if (res.body) return { ...res, body: firstChunkRewritten(res.body, reportParse) };
    return res;
  };
  return Object.assign(wrapped, {
    service: handler.service,
    method: handler.method,
    requestPath: handler.requestPath,
    protocolNames: handler.protocolNames,
    allowedMethods: handler.allowedMethods,
    supportedContentType: handler.supportedContentType,
  });
}

/** The error a Connect GET query deserves before connect-es reads it, or undefined. */
function badGetQuery(url: string): ConnectError | undefined {
  const q = url.indexOf("?");
  if (q === -1 || !url.includes("base64=1", q)) return undefined;
  const params = new URLSearchParams(url.slice(q + 1));
  if (params.get("base64") !== "1") return undefined;
  try {
    // The decoder connect-es itself uses, so the same strings pass (padding optional, either alphabet).
    base64Decode(params.get("message") ?? "");
    return undefined;
  } catch {
    return new ConnectError(
      'query parameter "message" is not valid base64 (with base64=1 it must be base64url or standard base64 of the request message)',
      Code.InvalidArgument,
    );
  }
}

function connectUnaryError(error: ConnectError): UniversalServerResponse {
  const body = errorToJsonBytes(error, {});
  return {
    status: codeToHttpStatus(error.code),
    header: new Headers({ "content-type": "application/json", "content-length": String(body.byteLength) }),
    body: once(body),
  };
}

function explainRefusal(status: number, handler: UniversalHandler, req: UniversalServerRequest): string {
  const path = handler.requestPath;
  if (status === 505) return `${path} is a bidirectional stream: it needs HTTP/2 (gRPC or Connect over h2c or TLS)`;
  if (status === 405) return `${path} does not accept ${req.method}: use ${handler.allowedMethods.join(" or ")}`;
  const sent = req.header.get("content-type");
  const unary = handler.method.methodKind === "unary";
  const connect = unary ? "application/json or application/proto (Connect)" : "application/connect+json or application/connect+proto (Connect streaming)";
  return `${sent ? `unsupported content-type "${sent}"` : "missing content-type"} for ${path}: send ${connect}, application/grpc or application/grpc+json (gRPC), application/grpc-web+proto or application/grpc-web+json (gRPC-web)`;
}

/** A Connect unary error answer (status 500, JSON body): a protobuf parse error becomes invalid_argument. */
async function rewriteUnary(res: UniversalServerResponse, report: (e: ConnectError) => void): Promise<UniversalServerResponse> {
  const type = res.header?.get("content-type") ?? "";
  if (!type.startsWith("application/json") || res.header?.has("content-encoding") || !res.body) return res;
  const chunks: Uint8Array[] = [];
  for await (const chunk of res.body) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  const unchanged = { ...res, body: once(bytes) };
  const json = parseJson(bytes) as { code?: unknown; message?: unknown } | undefined;
  if (json?.code !== "internal" || typeof json.message !== "string" || !json.message.startsWith(PARSE_BINARY)) return unchanged;
  const error = new ConnectError(json.message, Code.InvalidArgument);
  report(error);
  return withHeaders(connectUnaryError(error), res.header);
}

/** `answer` with the headers of `from` it does not set itself. */
function withHeaders(answer: UniversalServerResponse, from: HeadersInit | undefined): UniversalServerResponse {
  new Headers(from).forEach((value, key) => {
    if (!answer.header!.has(key)) answer.header!.set(key, value);
  });
  return answer;
}

/** gRPC: the status sits in trailers, already set when the request failed to parse. */
function rewriteGrpcStatus(trailer: Headers, report: (e: ConnectError) => void): void {
  if (trailer.get("grpc-status") !== GRPC_INTERNAL) return;
  const message = decodeURIComponentSafe(trailer.get("grpc-message") ?? "");
  if (!message.startsWith(PARSE_BINARY)) return;
  trailer.set("grpc-status", GRPC_INVALID_ARGUMENT);
  report(new ConnectError(message, Code.InvalidArgument));
}

/** gRPC-web trailers and the Connect end-of-stream message travel in the body, as its last envelope. */
function firstChunkRewritten(body: AsyncIterable<Uint8Array>, report: (e: ConnectError) => void): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]() {
      const it = body[Symbol.asyncIterator]();
      let first = true;
      return {
        next: () => {
          if (!first) return it.next();
          first = false;
          return it.next().then((result) => (result.done ? result : { done: false, value: rewriteEnvelope(result.value, report) }));
        },
        return: (value?: unknown) => it.return?.(value) ?? Promise.resolve({ done: true, value: undefined }),
        throw: (err?: unknown) => it.throw?.(err) ?? Promise.reject(err),
      };
    },
  };
}

function rewriteEnvelope(chunk: Uint8Array, report: (e: ConnectError) => void): Uint8Array {
  if (chunk.length < 5) return chunk;
  const flags = chunk[0]!;
  if (flags !== CONNECT_END_STREAM && flags !== GRPC_WEB_TRAILER) return chunk;
  const length = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).readUInt32BE(1);
  if (length !== chunk.length - 5) return chunk;
  const text = Buffer.from(chunk.buffer, chunk.byteOffset + 5, length).toString("utf8");
  let rewritten: string | undefined;
  if (flags === CONNECT_END_STREAM) {
    const json = parseJson(text) as { error?: { code?: unknown; message?: unknown } } | undefined;
    const message = json?.error?.message;
    if (json?.error?.code === "internal" && typeof message === "string" && message.startsWith(PARSE_BINARY)) {
      json.error.code = "invalid_argument";
      rewritten = JSON.stringify(json);
      report(new ConnectError(message, Code.InvalidArgument));
    }
  } else {
    // "name: value" lines, as connect-es writes them (name lower-case, one space).
    const lines = text.split("\r\n");
    const headerValue = (line: string, name: string) => (line.toLowerCase().startsWith(`${name}:`) ? line.slice(name.length + 1).trim() : undefined);
    const status = lines.findIndex((l) => headerValue(l, "grpc-status") === GRPC_INTERNAL);
    const message = decodeURIComponentSafe(lines.map((l) => headerValue(l, "grpc-message")).find((v) => v !== undefined) ?? "");
    if (status !== -1 && message.startsWith(PARSE_BINARY)) {
      lines[status] = `grpc-status: ${GRPC_INVALID_ARGUMENT}`;
      rewritten = lines.join("\r\n");
      report(new ConnectError(message, Code.InvalidArgument));
    }
  }
  if (rewritten === undefined) return chunk;
  const data = Buffer.from(rewritten, "utf8");
  const out = Buffer.alloc(5 + data.length);
  out[0] = flags;
  out.writeUInt32BE(data.length, 1);
  data.copy(out, 5);
  return out;
}

function parseJson(bytes: Uint8Array | string): unknown {
  try {
    return JSON.parse(typeof bytes === "string" ? bytes : Buffer.from(bytes).toString("utf8"));
  } catch {
    return undefined;
  }
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}
