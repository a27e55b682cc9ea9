/**
 * What the gRPC framings of the hit fast paths share (gRPC over HTTP/2 in fast-path-h2.ts,
 * gRPC-web over HTTP/1.1 in fast-path.ts): the 5-byte envelope a message travels in, the one
 * request body they answer (exactly one uncompressed message), the answer compression connect's
 * gRPC and gRPC-web handlers negotiate (both call `compressionNegotiate` on `grpc-encoding` and
 * `grpc-accept-encoding`), and small bounded memos of header values read as connect reads them.
 */
import { compressionNegotiate, type Compression } from "@connectrpc/connect/protocol";

/** The gRPC envelope's prefix: a flags byte and the message length. */
export const ENVELOPE_PREFIX = 5;
/** Distinct header values kept parsed; each set is dropped when full. */
const HEADER_MEMO_ENTRIES = 64;

/** The message of a gRPC body that is exactly one uncompressed envelope; else undefined (the normal path answers). */
export function unenvelope(body: Buffer): Uint8Array | undefined {
  if (body.length < ENVELOPE_PREFIX || body[0] !== 0) return undefined;
  if (body.readUInt32BE(1) !== body.length - ENVELOPE_PREFIX) return undefined;
  return body.subarray(ENVELOPE_PREFIX);
}

/** Fill the `ENVELOPE_PREFIX` bytes left free in front of a message (the core's `reserve`): not compressed, its length. */
export function sealEnvelope(body: Buffer): Buffer {
  body[0] = 0;
  body.writeUInt32BE(body.length - ENVELOPE_PREFIX, 1);
  return body;
}

/** `read(value)`, kept for each distinct value (a bounded number: clients send few). */
export function memoized<T>(read: (value: string) => T): (value: string) => T {
  const known = new Map<string, T>();
  return (value) => {
    if (known.has(value)) return known.get(value) as T;
    const result = read(value);
    if (known.size >= HEADER_MEMO_ENTRIES) known.clear();
    known.set(value, result);
    return result;
  };
}

/**
 * Whether connect-node can make a URL of a request's authority (`Host`, or HTTP/2's `:authority`):
 * it fails a request without one, or with one that is no URL authority, before any handler runs,
 * so a fast path must leave such a request to it. Kept per authority (clients name few).
 */
export function createAuthorityCheck(): (authority: string | string[] | undefined) => boolean {
  const usable = memoized((authority) => URL.canParse(`http://${authority}`));
  return (authority) => typeof authority === "string" && usable(authority);
}

/**
 * The answer compression connect's gRPC and gRPC-web handlers negotiate for a request's
 * `grpc-accept-encoding` (its `grpc-encoding` being absent or identity): its name, announced in
 * the `grpc-encoding` answer header, or null for none.
 */
export function createGrpcEncodingNegotiator(acceptCompression: Compression[]): (accept: string | undefined) => string | null {
  const negotiate = memoized((accept) => compressionNegotiate(acceptCompression, null, accept, "grpc-accept-encoding").response?.name ?? null);
  return (accept) => (accept === undefined ? null : negotiate(accept));
}
