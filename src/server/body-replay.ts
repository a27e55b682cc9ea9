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
