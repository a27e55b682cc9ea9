/**
 * The binary (protobuf) encoding of a GetEntityResponse or QueryResponse holding only its
 * entities, written straight from the records, for the hit fast path's first encoding of an
 * answer (hit-encoding.ts keeps it for the next ones).
 *
 * Why: protobuf-es encodes `Entity.fields`, a `google.protobuf.Struct`, by turning the JSON
 * object into Value messages and walking them by reflection, and its writer makes a typed array
 * for every string, number and nested message. Profiled, that was 70–130 µs for one 7-field shot
 * (10 µs as JSON), so a first binary hit cost about twice a kept one, and a 50-shot Query about
 * 5 ms. The bytes here are exactly protobuf-es's (test/entity-binary.test.ts compares them on
 * random values and on the demo records):
 *
 * - Entity: `type` (1) and `id` (2, int32) only when not empty or zero (proto3), `fields` (3)
 *   always, as the answer sets it.
 * - Struct: one map entry (1) per property in `Object.entries` order, each with its key (1,
 *   even when empty) and its Value (2).
 * - Value: a oneof, so always written: null (1, varint 0), number (2, double), string (3), bool
 *   (4), object (5, a Struct), array (6, a ListValue: one Value (1) per element).
 *
 * What it does not reproduce (an id outside int32, a value JSON cannot hold, a `__proto__` key,
 * which protobuf-es loses) makes it return undefined: the caller then encodes with protobuf-es.
 */
import type { Entity } from "../shotgrid/types.ts";

const LEN = 2;
const VARINT = 0;
const I64 = 1;
const tag = (field: number, wire: number): number => (field << 3) | wire;

/** Thrown inside the writer for what it does not reproduce; caught at its edge. */
class NotReproduced extends Error {}

/** One growing buffer; a nested message reserves one byte for its length and moves over when it needs more. */
class Writer {
  buf = Buffer.allocUnsafe(4096);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  varint(v: number): void {
    this.ensure(5);
    while (v > 0x7f) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }

  string(s: string): void {
    const n = Buffer.byteLength(s, "utf8");
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, n, "utf8");
  }

  double(v: number): void {
    this.ensure(8);
    this.pos = this.buf.writeDoubleLE(v, this.pos);
  }

  /** Start a length-delimited part: returns where its length goes. */
  open(): number {
    this.byte(0);
    return this.pos - 1;
  }

  /** End the part opened at `at`: write its length there, moving the part when the length needs more than one byte. */
  close(at: number): void {
    const length = this.pos - at - 1;
    if (length < 0x80) {
      this.buf[at] = length;
      return;
    }
    let extra = 0;
    for (let v = length >>> 7; v > 0; v >>>= 7) extra++;
    this.ensure(extra);
    this.buf.copyWithin(at + 1 + extra, at + 1, this.pos);
    this.pos += extra;
    let v = length;
    let p = at;
    while (v > 0x7f) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p] = v;
  }
}

function writeStruct(w: Writer, object: object): void {
  for (const [key, value] of Object.entries(object)) {
    // protobuf-es assigns each key to a plain object, where `__proto__` sets the prototype: the entry is lost there.
    if (key === "__proto__") throw new NotReproduced();
    w.byte(tag(1, LEN));
    const entry = w.open();
    w.byte(tag(1, LEN));
    w.string(key);
    w.byte(tag(2, LEN));
    const at = w.open();
    writeValue(w, value);
    w.close(at);
    w.close(entry);
  }
}

function writeValue(w: Writer, value: unknown): void {
  switch (typeof value) {
    case "string":
      w.byte(tag(3, LEN));
      w.string(value);
      return;
    case "number":
      w.byte(tag(2, I64));
      w.double(value);
      return;
    case "boolean":
      w.byte(tag(4, VARINT));
      w.byte(value ? 1 : 0);
      return;
    case "object": {
      if (value === null) {
        w.byte(tag(1, VARINT));
        w.byte(0);
        return;
      }
      if (Array.isArray(value)) {
        w.byte(tag(6, LEN));
        const list = w.open();
        for (const element of value) {
          w.byte(tag(1, LEN));
          const at = w.open();
          writeValue(w, element);
          w.close(at);
        }
        w.close(list);
        return;
      }
      w.byte(tag(5, LEN));
      const at = w.open();
      writeStruct(w, value);
      w.close(at);
      return;
    }
    default:
      throw new NotReproduced();
  }
}

/**
 * Whether an entity's `type` and `id` are ones the answer writers (this file, entity-json.ts)
 * reproduce: text, and an int32 id that is not negative (protobuf-es writes a negative one as a
 * 10-byte varint; the writers leave such answers to it).
 */
export const reproducibleIdentity = (e: Entity): boolean => typeof e.type === "string" && Number.isInteger(e.id) && e.id >= 0 && e.id <= 0x7fffffff;

function writeEntity(w: Writer, entity: Entity): void {
  if (!reproducibleIdentity(entity)) throw new NotReproduced();
  const { type, id } = entity;
  if (type !== "") {
    w.byte(tag(1, LEN));
    w.string(type);
  }
  if (id !== 0) {
    w.byte(tag(2, VARINT));
    w.varint(id);
  }
  w.byte(tag(3, LEN));
  const at = w.open();
  writeStruct(w, entity.fields);
  w.close(at);
}

const SCRATCH_KEPT_BYTES = 1024 * 1024;

/** Written into, then copied out: one scratch buffer for every answer (encoding is synchronous). */
const scratch = new Writer();

/** Field 1 (in both responses) once per entity, each an Entity message; a buffer of its own, of the exact size (it is kept). */
function responseOf(entities: readonly Entity[]): Buffer | undefined {
  const w = scratch;
  w.pos = 0;
  try {
    for (const entity of entities) {
      w.byte(tag(1, LEN));
      const at = w.open();
      writeEntity(w, entity);
      w.close(at);
    }
    const out = Buffer.allocUnsafeSlow(w.pos);
    w.buf.copy(out, 0, 0, w.pos);
    return out;
  } catch (err) {
    if (err instanceof NotReproduced) return undefined;
    throw err;
  } finally {
    // A very large answer, written or not, does not keep its scratch space.
    if (w.buf.length > SCRATCH_KEPT_BYTES) w.buf = Buffer.allocUnsafe(4096);
  }
}

/** The binary GetEntityResponse `{ entity }`, or undefined when protobuf-es must encode it. */
export function entityResponseBinary(entity: Entity): Buffer | undefined {
  return responseOf([entity]);
}

/** The binary QueryResponse `{ entities }`, or undefined when protobuf-es must encode it. */
export function queryResponseBinary(entities: readonly Entity[]): Buffer | undefined {
  return responseOf(entities);
}
