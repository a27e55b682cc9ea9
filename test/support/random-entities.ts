/**
 * Seeded random entities for the answer writers' tests (entity-binary, entity-json): every JSON
 * kind, nesting, empty and long strings, lone surrogates, integer-like keys, -0, ids at varint
 * boundaries. Deterministic for a seed.
 */
import type { Entity, FieldValue } from "../../src/shotgrid/types.ts";

export function generator(seed: number) {
  let x = seed;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff) / 0x7fffffff;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const TEXT = ["", "a", "shot_010", "Ünïcödé", "日本語のショット", "emoji 🎬🎞️", "\ud800 lone", "tail \udfff", 'quote " back \\ nl \n', "\u0000nul"];
  const text = (): string => {
    const r = rnd();
    if (r < 0.01) return "x".repeat(100 + Math.floor(rnd() * 20_000)); // 1 to 3 length bytes
    if (r < 0.1) return pick(TEXT).repeat(1 + Math.floor(rnd() * 40));
    return pick(TEXT) + (rnd() < 0.5 ? String(Math.floor(rnd() * 1000)) : "");
  };
  const NUMBERS = [0, -0, 1, -1, 1001, 24.5, -3.25, 1e300, -1e-300, 2 ** 31, 2 ** 53 - 1, 0.1];
  const value = (depth: number): unknown => {
    const r = rnd();
    if (r < 0.25) return text();
    if (r < 0.45) return rnd() < 0.5 ? pick(NUMBERS) : Math.floor(rnd() * 1e6) - 5e5;
    if (r < 0.52) return rnd() < 0.5;
    if (r < 0.6) return null;
    if (depth >= 4) return text();
    if (r < 0.8) return Array.from({ length: Math.floor(rnd() * (depth < 2 && rnd() < 0.05 ? 200 : 5)) }, () => value(depth + 1));
    return object(depth + 1);
  };
  const KEYS = ["code", "", "sg_status_list", "1", "10", "2", "name", "type", "id", "sg_sequence", "ключ", "a.b"];
  const object = (depth: number): Record<string, unknown> => {
    const o: Record<string, unknown> = {};
    for (let n = Math.floor(rnd() * (depth === 0 && rnd() < 0.1 ? 60 : 6)); n > 0; n--) o[rnd() < 0.7 ? pick(KEYS) : text().slice(0, 30)] = value(depth);
    return o;
  };
  const IDS = [0, 1, 127, 128, 16_383, 16_384, 2 ** 31 - 1];
  const entity = (): Entity => ({
    type: rnd() < 0.05 ? "" : pick(["Shot", "Asset", "Sequence", "CustomEntity01"]),
    id: rnd() < 0.3 ? pick(IDS) : 1 + Math.floor(rnd() * 1e6),
    fields: object(0) as Record<string, FieldValue>,
  });
  return { entity, rnd };
}
