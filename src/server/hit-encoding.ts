/**
 * The answer message of a hit (service/hit-path.ts) as bytes, JSON or binary, whatever the
 * protocol that frames it. The part made from the stored text (the entity, or a Query's
 * entities) is encoded once per (request key, stored text, encoding) by the serializer the
 * normal handler uses (connect's, with the service's JSON options); the freshness, whose `ageMs`
 * changes every millisecond, is encoded by the generated encoders of the Freshness message
 * (`toFreshness`, as the handler builds it) once per distinct freshness value (every property of
 * `Freshness` is in the key, checked at compile time) and spliced after it: a field added to
 * Freshness is encoded here as it is there.
 *
 * A head is written by entity-binary.ts or entity-json.ts (the serializer's bytes, several times
 * faster for `Struct` fields), or by the serializer where they decline.
 *
 * The splice relies on `freshness` being the last field of both response messages (binary:
 * fields are written in field order, and a message is the concatenation of its fields; JSON:
 * members are written in field order). test/fast-path-*-equivalence.test.ts check the result
 * byte for byte against the normal handler's.
 */
import { create, toBinary, toJsonString, type DescMessage, type JsonReadOptions, type JsonWriteOptions, type MessageInitShape } from "@bufbuild/protobuf";
import { createMethodSerializationLookup, getJsonOptions } from "@connectrpc/connect/protocol";
import { CacheService, FreshnessSchema, GetEntityResponseSchema, QueryResponseSchema } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import type { Freshness } from "../cache/types.ts";
import { toEntityMessage, toFreshness } from "../service/cache-service.ts";
import type { EntityHit, Hit, HitPath } from "../service/hit-path.ts";
import { entityResponseBinary, queryResponseBinary } from "./entity-binary.ts";
import { entityResponseJsonHead, queryResponseJsonHead } from "./entity-json.ts";

/**
 * The memo key of an encoded freshness: every property of `Freshness` (`toFreshness` reads
 * nothing else, so equal keys encode to equal bytes). A property added to `Freshness` and not
 * named here makes the parameter type `never`: the call no longer compiles.
 */
type Keyed = "source" | "ageMs" | "asOfEventId" | "stale";
type EveryPropertyKeyed = [Exclude<keyof Freshness, Keyed>] extends [never] ? Freshness : never;
const freshnessKey = (f: EveryPropertyKeyed): string => `${f.ageMs}|${f.asOfEventId}|${f.stale ? 1 : 0}|${f.source}`;
/** Encoded freshness values kept; the set is dropped when full (ages grow: old ones do not come back). */
const FRESHNESS_MEMO_ENTRIES = 4096;

export interface HitEncoderOptions {
  hits: HitPath;
  /** The JSON options the service is registered with. */
  jsonOptions?: Partial<JsonReadOptions & JsonWriteOptions>;
  /** As given to the Connect adapter: a larger answer is left to the normal path (which answers the error). */
  writeMaxBytes: number;
  /** Bound on the bytes of kept encodings (least recently made go first). Default 8 MiB. */
  maxEncodedBytes?: number;
}

export interface HitEncoder {
  /**
   * The GetEntityResponse of `hit`, or undefined when it is not answered from the hit after all
   * (the record lacks a field, too large). After `reserve` bytes (default 0) left for the
   * framing to fill (a gRPC envelope's prefix): one buffer, one write.
   */
  entity(hit: EntityHit, binary: boolean, reserve?: number): Buffer | undefined;
  /** The QueryResponse of `hit`, or undefined when too large; `reserve` as for `entity`. */
  query(hit: Hit, binary: boolean, reserve?: number): Buffer | undefined;
}

export function createHitEncoder(options: HitEncoderOptions): HitEncoder {
  const { hits, writeMaxBytes } = options;
  const writeJson = getJsonOptions(options.jsonOptions);
  const limits = { readMaxBytes: Infinity, writeMaxBytes };
  const entityOut = createMethodSerializationLookup(CacheService.method.getEntity, undefined, options.jsonOptions, limits);
  const queryOut = createMethodSerializationLookup(CacheService.method.query, undefined, options.jsonOptions, limits);
  const encodings = new EncodingCache(options.maxEncodedBytes ?? 8 * 1024 * 1024);
  // Answers served within the same millisecond from entries fetched together carry the same freshness.
  const entityTails = { json: new Map<string, Buffer>(), proto: new Map<string, Buffer>() };
  const queryTails = { json: new Map<string, Buffer>(), proto: new Map<string, Buffer>() };

  /** The answer without its freshness, encoded as the handler encodes answers; JSON without its closing brace. */
  const headOf = (serialize: (m: never) => Uint8Array, message: object, binary: boolean): Buffer => {
    const bytes = serialize(message as never);
    if (binary) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // `{…}` becomes `{…,` (or `{` when it has no members), ready for `"freshness":{…}}`.
    return bytes.length === 2 ? Buffer.from("{") : Buffer.concat([bytes.subarray(0, -1), Buffer.from(",")]);
  };
  /** The freshness field of `schema` (its last), encoded by the generated encoders; JSON with the closing brace. */
  const tailOf = <T extends DescMessage>(schema: T, memo: Map<string, Buffer>, f: Freshness, binary: boolean): Buffer => {
    const key = freshnessKey(f);
    let tail = memo.get(key);
    if (tail) return tail;
    const freshness = toFreshness(f);
    tail = binary
      ? Buffer.from(toBinary(schema, create(schema, { freshness } as unknown as MessageInitShape<T>)))
      : Buffer.from(`${JSON.stringify(schema.field.freshness!.jsonName)}:${toJsonString(FreshnessSchema, freshness, writeJson)}}`);
    if (memo.size >= FRESHNESS_MEMO_ENTRIES) memo.clear();
    memo.set(key, tail);
    return tail;
  };
  /** `reserve` bytes (unset), `head`, then the freshness field. */
  const withFreshness = <T extends DescMessage>(
    schema: T,
    tails: typeof entityTails,
    head: Buffer,
    f: Freshness,
    binary: boolean,
    reserve: number,
  ): Buffer | undefined => {
    const tail = tailOf(schema, binary ? tails.proto : tails.json, f, binary);
    const length = head.length + tail.length;
    if (length > writeMaxBytes) return undefined;
    const body = Buffer.allocUnsafe(reserve + length);
    head.copy(body, reserve);
    tail.copy(body, reserve + head.length);
    return body;
  };
  /** The head kept for `hit` in this encoding, made by `make` the first time (undefined: none can be made). */
  const keptHead = <H extends Hit>(hit: H, binary: boolean, make: (hit: H, binary: boolean) => Buffer | undefined): Buffer | undefined => {
    const enc = encodings.get(hit);
    const known = binary ? enc.proto : enc.json;
    if (known) return known;
    let head: Buffer | undefined;
    try {
      head = make(hit, binary);
    } catch {
      return undefined; // over writeMaxBytes: the normal path answers the error
    }
    if (!head) return undefined;
    if (binary) enc.proto = head;
    else enc.json = head;
    encodings.grow(enc, head.length);
    return head;
  };
  /**
   * A head of entity-binary.ts or entity-json.ts, held to the limit the serializer holds its
   * answers to (over it: the normal path answers). A JSON head is the message's bytes with `,`
   * for its closing brace: the same length.
   */
  const bounded = (bytes: Buffer | undefined): Buffer | undefined => {
    if (bytes && bytes.length > writeMaxBytes) throw new RangeError("answer over writeMaxBytes");
    return bytes;
  };
  const emitImplicit = writeJson.alwaysEmitImplicit === true;
  const entityHead = (hit: EntityHit, binary: boolean): Buffer | undefined => {
    const entity = hits.entityOf(hit);
    if (!entity) return undefined;
    return (
      bounded(binary ? entityResponseBinary(entity) : entityResponseJsonHead(entity, emitImplicit)) ??
      headOf(entityOut.getO(binary).serialize, create(GetEntityResponseSchema, { entity: toEntityMessage(entity) }), binary)
    );
  };
  const queryHead = (hit: Hit, binary: boolean): Buffer => {
    const entities = hits.entitiesOf(hit);
    return (
      bounded(binary ? queryResponseBinary(entities) : queryResponseJsonHead(entities, emitImplicit)) ??
      headOf(queryOut.getO(binary).serialize, create(QueryResponseSchema, { entities: entities.map(toEntityMessage) }), binary)
    );
  };

  return {
    entity(hit, binary, reserve = 0) {
      const head = keptHead(hit, binary, entityHead);
      return head && withFreshness(GetEntityResponseSchema, entityTails, head, hit.freshness, binary, reserve);
    },
    query(hit, binary, reserve = 0) {
      const head = keptHead(hit, binary, queryHead);
      return head && withFreshness(QueryResponseSchema, queryTails, head, hit.freshness, binary, reserve);
    },
  };
}

/** The heads of one (request key, stored text). */
interface Encoded {
  /** The stored text they were made from. */
  source: string;
  json?: Buffer;
  proto?: Buffer;
  bytes: number;
}

/**
 * Encodings by request key, each valid only for the stored text it was made from (a changed
 * entry is a new text: its old encoding is replaced on the next hit). Bounded by bytes; the
 * least recently made go first.
 */
class EncodingCache {
  readonly #entries = new Map<string, Encoded>();
  #bytes = 0;

  constructor(readonly maxBytes: number) {}

  get(hit: { readonly key: string; readonly source: string }): Encoded {
    const known = this.#entries.get(hit.key);
    // Usually the very same string; equal text (a record refetched unchanged) is as good.
    if (known && known.source === hit.source) return known;
    if (known) this.#drop(hit.key, known);
    // The text is shared with the store while it holds it; counted here as if it were not.
    const fresh: Encoded = { source: hit.source, bytes: hit.key.length + hit.source.length + 64 };
    this.#entries.set(hit.key, fresh);
    this.#bytes += fresh.bytes;
    return fresh;
  }

  /** `enc` now holds `bytes` more; the oldest encodings go if that passes the bound (never `enc` itself). */
  grow(enc: Encoded, bytes: number): void {
    enc.bytes += bytes;
    this.#bytes += bytes;
    for (const [key, old] of this.#entries) {
      if (this.#bytes <= this.maxBytes || old === enc) break;
      this.#drop(key, old);
    }
  }

  #drop(key: string, enc: Encoded): void {
    this.#entries.delete(key);
    this.#bytes -= enc.bytes;
  }
}
