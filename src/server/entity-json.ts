/**
 * The Connect JSON of a GetEntityResponse or QueryResponse holding only its entities, without its
 * closing brace (hit-encoding.ts splices the freshness after it), written with JSON.stringify
 * from the records, for the hit fast path's first encoding of an answer.
 *
 * Why: protobuf-es writes `Entity.fields`, a `google.protobuf.Struct`, by turning the JSON object
 * into Value messages and back by reflection: about 10 µs a shot, 0.4 ms a 50-shot Query, the
 * largest part of a first-time Query answered from the mirror. The protobuf JSON of a Struct is
 * the JSON value itself, so JSON.stringify writes the same bytes (test/entity-json.test.ts
 * compares them with the serializer's on random values and on real records):
 *
 * - Entity: `type`, `id`, `fields`, in field order; with `emitImplicit` (the service's
 *   `alwaysEmitImplicit`) an empty type and a zero id too, else they are left out.
 * - Query: `entities`, an empty list only with `emitImplicit`.
 *
 * The records must be JSON values (as parsed from the store's text: no undefined, no NaN). An
 * id outside int32, a type that is not text or a `__proto__` member makes it return undefined:
 * the serializer then writes the answer as before.
 */
import type { Entity } from "../shotgrid/types.ts";
import { reproducibleIdentity } from "./entity-binary.ts";

function entityJson(e: Entity, emitImplicit: boolean): string {
  const type = emitImplicit || e.type !== "" ? `"type":${JSON.stringify(e.type)},` : "";
  const id = emitImplicit || e.id !== 0 ? `"id":${e.id},` : "";
  return `{${type}${id}"fields":${JSON.stringify(e.fields)}}`;
}

/**
 * Whether `json` may have a member named `__proto__`, which the serializer loses (protobuf-es
 * assigns each key to a plain object, where that one sets the prototype). Such a member is always
 * written `"__proto__":`; the same sequence also ends a key like `x"__proto__` (written
 * `"x\"__proto__":`), which is then declined too: the serializer writes that answer, the same bytes.
 */
const losesProto = (json: string): boolean => json.includes('"__proto__":');

/** `{"entity":{…},`: the GetEntityResponse `{ entity }` up to where its freshness goes, or undefined (see above). */
export function entityResponseJsonHead(entity: Entity, emitImplicit: boolean): Buffer | undefined {
  if (!reproducibleIdentity(entity)) return undefined;
  const json = entityJson(entity, emitImplicit);
  return losesProto(json) ? undefined : Buffer.from(`{"entity":${json},`);
}

/** `{"entities":[…],`: the QueryResponse `{ entities }` up to where its freshness goes, or undefined (see above). */
export function queryResponseJsonHead(entities: readonly Entity[], emitImplicit: boolean): Buffer | undefined {
  if (!entities.every(reproducibleIdentity)) return undefined;
  if (entities.length === 0) return Buffer.from(emitImplicit ? `{"entities":[],` : "{");
  const json = entities.map((e) => entityJson(e, emitImplicit)).join(",");
  return losesProto(json) ? undefined : Buffer.from(`{"entities":[${json}],`);
}
