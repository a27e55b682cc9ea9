/**
 * Where the site's text collation may disagree with the engine's text order (letters compared
 * after lower-casing, one code unit at a time).
 *
 * ShotGrid sorts text without regard to letter case (recorded answers show it) but does not say
 * with which collation: ICU's puts `_` and spaces before digits, the C library's locales pass
 * over them, plain code order puts `_` between digits and letters. All of them agree with the
 * engine when two texts first differ at a digit or an ASCII letter, and that is all the engine
 * relies on: a pair that first differs anywhere else is not `safe` (its order is the site's
 * call). In a sorted list, a pair that is not safe always has a neighbouring pair between them
 * that is not safe either (the first differing position runs through the list in order): so a
 * list whose neighbours are all safe is in the same order in every such collation.
 */

const PLAIN = /[0-9a-z]/;

/**
 * Letters whose lower case in JavaScript is not the per-letter lower case a database may use:
 * "İ" becomes two code units, and "Σ" becomes "ς" or "σ" depending on its neighbours. Text
 * holding one is compared, searched and sorted here in a way the site may not: the engine is
 * never sure of it.
 */
const ODD_CASE = /[\u0130\u03a3]/;

/** Whether `text` holds a letter whose lower case the engine cannot be sure the site makes alike (ODD_CASE). */
export function lowersOddly(text: string): boolean {
  return ODD_CASE.test(text);
}

/**
 * `text` lower-cased so that both readings of ODD_CASE letters meet: "İ" as "i" (the dot
 * dropped), every sigma as "σ". Where JavaScript's lower case and this one decide a comparison
 * alike, the site's does too; where they do not, the engine is not sure.
 */
export function foldOddCase(text: string): string {
  return text
    .toLowerCase()
    .replace(/\u0307/g, "")
    .replace(/\u03c2/g, "\u03c3");
}

/** Where two lower-cased texts first differ, when that place is the site's collation's call; else undefined. */
export function collationDependent(x: string, y: string): number | undefined {
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const a = x[i]!;
    const b = y[i]!;
    if (a === b) continue;
    return PLAIN.test(a) && PLAIN.test(b) ? undefined : i;
  }
  // One is the other's beginning: the shorter first in every collation, unless what the longer
  // adds is all signs and spaces, which a collation that passes over them sees as nothing.
  const rest = (x.length > y.length ? x : y).slice(n);
  return rest === "" || PLAIN.test(rest) ? undefined : n;
}

/**
 * Whether a record after `last` in `sorted` (ascending by `keyOf`, the lower-cased first order
 * key, empty values last) that `accept` takes may come before it in the site's collation: only
 * those whose key first differs from `last`'s at a character that is not a digit or an ASCII
 * letter can, and they lie in a few ranges of the list found by binary search, so the check
 * reads a handful of records, not all that follow.
 */
export function mayComeBefore(
  sorted: readonly { readonly id: number }[],
  lastKey: string,
  keyOf: (r: never) => string | null,
  accept: (r: never) => boolean,
  /** Whether a record's first key, before lower-casing, is not the last's (a tie but for letter case). */
  differsFromLast: (r: never) => boolean,
): boolean {
  const key = keyOf as (r: unknown) => string | null;
  const take = accept as (r: unknown) => boolean;
  const differs = differsFromLast as (r: unknown) => boolean;
  /** The first index whose key is >= `text` (empty keys are greatest). */
  const lowerBound = (text: string): number => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const k = key(sorted[mid]);
      if (k !== null && k < text) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  /** Whether a record taken by `accept` has a key in [from, to), optionally passing `also` (and `alsoRecord`). */
  const anyIn = (from: string, to: string | undefined, also?: (k: string) => boolean, alsoRecord?: (r: unknown) => boolean): boolean => {
    const end = to === undefined ? endOfText() : lowerBound(to);
    for (let i = lowerBound(from); i < end; i++) {
      const k = key(sorted[i]);
      if (k !== null && (!also || also(k)) && (!alsoRecord || alsoRecord(sorted[i])) && take(sorted[i])) return true;
    }
    return false;
  };
  const endOfText = (): number => {
    // Empty keys sort last: the first of them ends the text.
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (key(sorted[mid]) !== null) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  // Equal once lower-cased but not before: which one the site puts first is its collation's call.
  if (anyIn(lastKey, `${lastKey}\u0000`, (k) => k === lastKey, differs)) return true;
  for (let i = 0; i <= lastKey.length; i++) {
    const prefix = lastKey.slice(0, i);
    const after = successor(prefix);
    if (i === lastKey.length) {
      // Longer texts that begin with `last`'s: only a tail of signs and spaces is the collation's call.
      if (anyIn(`${prefix}\u0000`, after, (k) => k.length > i && collationDependent(lastKey, k) !== undefined)) return true;
      continue;
    }
    const c = lastKey[i]!;
    // Nothing is above U+FFFF in one code unit: no later text differs from it here.
    if (c === "\uffff") continue;
    const next = String.fromCharCode(c.charCodeAt(0) + 1);
    if (!PLAIN.test(c)) {
      // `last` has a sign here: every later text that differs from it here is the collation's call.
      if (anyIn(prefix + next, after)) return true;
      continue;
    }
    // A digit or letter here: a later text with a sign or other character here is the collation's call.
    if (c <= "9" && anyIn(`${prefix}:`, `${prefix}a`)) return true;
    if (anyIn(`${prefix}{`, after)) return true;
  }
  return false;
}

/** The least text greater than every text that begins with `prefix` (undefined: none, for ""). */
function successor(prefix: string): string | undefined {
  if (prefix === "") return undefined;
  const last = prefix.charCodeAt(prefix.length - 1);
  // U+FFFF has no next code unit: the successor is the shorter prefix's.
  if (last === 0xffff) return successor(prefix.slice(0, -1));
  return prefix.slice(0, -1) + String.fromCharCode(last + 1);
}
