/**
 * Calendar arithmetic in the site's time zone (an IANA name such as "America/Los_Angeles"):
 * ShotGrid evaluates relative date operators (`in_last`, `in_calendar_day`…) against the site's
 * own calendar, so "today" starts at the site's midnight, not at UTC's.
 */

/** A day on the calendar, as a count of days since 1970-01-01 (no time zone of its own). */
export type DayNumber = number;

const DAY_MS = 86_400_000;
const formatters = new Map<string, Intl.DateTimeFormat>();

/** Throws RangeError for a name the runtime does not know; the config checks with this. */
export function checkTimeZone(zone: string): string {
  formatter(zone);
  return zone;
}

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(zone, f);
  }
  return f;
}

/** The wall-clock fields of instant `ms` in `zone`. */
function wallClock(ms: number, zone: string): { y: number; m: number; d: number; h: number; mi: number; s: number } {
  if (zone === "UTC") {
    const t = new Date(ms);
    return { y: t.getUTCFullYear(), m: t.getUTCMonth() + 1, d: t.getUTCDate(), h: t.getUTCHours(), mi: t.getUTCMinutes(), s: t.getUTCSeconds() };
  }
  const parts: Record<string, number> = {};
  for (const p of formatter(zone).formatToParts(new Date(ms))) if (p.type !== "literal") parts[p.type] = Number(p.value);
  return { y: parts.year!, m: parts.month!, d: parts.day!, h: parts.hour!, mi: parts.minute!, s: parts.second! };
}

/** Milliseconds `zone` is ahead of UTC at instant `ms`. */
export function offsetAt(ms: number, zone: string): number {
  const w = wallClock(ms, zone);
  return Date.UTC(w.y, w.m - 1, w.d, w.h, w.mi, w.s) - Math.floor(ms / 1000) * 1000;
}

/** The site's calendar day holding instant `ms`. */
export function dayOf(ms: number, zone: string): DayNumber {
  const w = wallClock(ms, zone);
  return Math.round(Date.UTC(w.y, w.m - 1, w.d) / DAY_MS);
}

/** The instant the site's day `day` begins (its local midnight; DST moves are followed). */
export function startOfDay(day: DayNumber, zone: string): number {
  const guess = day * DAY_MS;
  // Two rounds settle the offset even across a DST change on that day.
  let t = guess - offsetAt(guess, zone);
  t = guess - offsetAt(t, zone);
  return t;
}

/** `YYYY-MM-DD` as a day number, or undefined when it is not a real date. */
export function parseDay(text: string): DayNumber | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  const t = new Date(ms);
  if (t.getUTCFullYear() !== Number(m[1]) || t.getUTCMonth() !== Number(m[2]) - 1 || t.getUTCDate() !== Number(m[3])) return undefined;
  return ms / DAY_MS;
}

/** Year, month (1-12) and day of month of a day number. */
export function civil(day: DayNumber): { y: number; m: number; d: number } {
  const t = new Date(day * DAY_MS);
  return { y: t.getUTCFullYear(), m: t.getUTCMonth() + 1, d: t.getUTCDate() };
}

/** The day number of a civil date; months may run over (month 13 is next January). */
export function dayFromCivil(y: number, m: number, d: number): DayNumber {
  return Math.round(Date.UTC(y, m - 1, d) / DAY_MS);
}
