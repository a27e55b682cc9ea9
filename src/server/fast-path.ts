/**
 * The hit fast path for Connect unary calls over HTTP/1.1 (POST `application/json` or
 * `application/proto`, GET `?encoding=json|proto&message=…`) to GetEntity and Query: a plain
 * cache hit (service/hit-path.ts decides, synchronously) is answered here, without connect-node's
 * generic machinery (URL and Headers objects, abort controllers, async iterables, interceptors),
 * from the answer bytes of hit-encoding.ts.
 *
 * Only hits are answered here, and nothing here answers an error: anything else (a miss, an
 * invalid request, a schema not loaded yet, a timeout header, request compression, an answer
 * the normal path would compress or refuse as too large, an unusual content type or query)
 * goes to the normal handler, with its deadline, signals and errors. A POST body already read is
 * handed on intact. HTTP/2 streams have their own framing (fast-path-h2.ts), before node's
 * compat layer; both share fast-path-core.ts (parse, access check, hit, encoding, commit,
 * metrics and logs), and test/fast-path-equivalence.test.ts and
 * test/fast-path-query-equivalence.test.ts prove their answers byte for byte the normal path's.
 *
 * This file is the Connect-unary-over-HTTP/1.1 framing only.
 */
import type http from "node:http";
import type http2 from "node:http2";
import { contentTypeUnaryJson, contentTypeUnaryProto } from "@connectrpc/connect/protocol-connect";
import { replayBody } from "./body-replay.ts";
import type { FastPathCore, HitReply } from "./fast-path-core.ts";

/**
 * Handles the request and returns true (answering it, or passing it to `fallback` itself once
 * its body is read), or returns false having touched nothing: the caller runs the normal handler.
 */
export type FastPath = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
  path: string,
  fallback: () => void,
) => boolean;

/** One HTTP/1.1 answer: a plain Connect unary response. */
class H1Reply implements HitReply {
  constructor(
    readonly res: http.ServerResponse,
    readonly compressible: boolean,
    /** The normal path answers (its body given back first, once read). */
    public orElse: () => void,
  ) {}
  get headersSent(): boolean {
    return this.res.headersSent;
  }
  write(body: Buffer, binary: boolean): void {
    this.res.writeHead(200, { "content-length": String(body.length), "content-type": binary ? contentTypeUnaryProto : contentTypeUnaryJson });
    this.res.end(body);
  }
}

export function createFastPath(core: FastPathCore): FastPath {
  const { readMaxBytes } = core;
  return (anyReq, anyRes, path, fallback) => {
    if (anyReq.httpVersionMajor !== 1) return false;
    const route = core.route(path);
    if (!route) return false;
    const req = anyReq as http.IncomingMessage;
    const h = req.headers;
    if (h["connect-timeout-ms"] !== undefined) return false;
    const caller = core.callerOf(h.authorization);
    if (caller === null) return false;
    const started = performance.now();
    const reply = new H1Reply(anyRes as http.ServerResponse, h["accept-encoding"] !== undefined, fallback);
    if (req.method === "GET") {
      const request = core.parseGet(route, req.url ?? "");
      return request !== undefined && core.answer(route, request, caller, started, reply, 0);
    }
    if (req.method !== "POST") return false;
    const contentType = h["content-type"];
    const binary = contentType === undefined ? undefined : core.connectBinaryOf(contentType);
    if (binary === undefined) return false;
    const encodingHeader = h["content-encoding"];
    if (encodingHeader !== undefined && encodingHeader !== "identity") return false;
    // Without a declared length the body could be any size: the normal path reads it with its limit.
    const declared = Number(h["content-length"]);
    if (!(declared >= 0 && declared <= readMaxBytes)) return false;
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.once("end", () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const request = core.parse(route, body, binary);
      reply.orElse = () => {
        replayBody(req, body);
        fallback();
      };
      if (request === undefined || !core.answer(route, request, caller, started, reply, 0)) reply.orElse();
    });
    // The client went away mid-body: there is nobody to answer.
    req.once("error", () => reply.res.destroy());
    return true;
  };
}
