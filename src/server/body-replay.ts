import type { Readable } from "node:stream";

/**
 * A request whose body a fast path read before handing it to the normal handler: connect-node
 * reads a request body by iterating the request, so the request is given an iterator over the
 * bytes already read (then, when the body did not end there, over the rest of `more`).
 */
export function replayBody(req: object, body: Buffer, more?: AsyncIterable<Buffer>): void {
  Object.defineProperty(req, Symbol.asyncIterator, {
    configurable: true,
    value: async function* () {
      if (body.length > 0) yield body;
      if (more) yield* more;
    },
  });
}

/**
 * A body read in part (`chunks`, past a limit or found not to be what a fast path serves) handed
 * on mid-stream: the request is paused, and the normal handler reads `chunks`, then the rest from
 * the request itself.
 */
export function replayReadSoFar(req: Readable, chunks: readonly Buffer[]): void {
  req.pause();
  // The request's own iterator, taken before `replayBody` replaces it.
  const rest: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: req[Symbol.asyncIterator].bind(req) };
  replayBody(req, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), rest);
}
