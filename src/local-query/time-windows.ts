/**
 * Relative dates (`in_last`, `in_next`, `in_calendar_*`) as windows `[from, to)` in the keys the
 * filters compare: `YYYY-MM-DD` text for date fields, whole seconds since the epoch for
 * date-times. Days, months and years are the site's (its time zone); an hour is an hour anywhere.
 * Undefined: a window the engine cannot place exactly (then the query goes upstream).
 */
import { civil, dayFromCivil, dayOf, offsetAt, startOfDay, type DayNumber } from "./time-zone.ts";

export interface Window {
  from: string | number;
  to: string | number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Epoch ms of a date-time written with a zone and at most whole seconds; undefined otherwise. */
export function dateTimeMs(v: unknown): number | undefined {
  if (typeof v !== "string") return undefined;
  // A time without a zone would be read in this process's zone; the site may mean its own.
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(\.0+)?(Z|[+-]\d{2}:?\d{2})$/.test(v)) return undefined;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : ms;
}

function dayText(day: DayNumber): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** Shift a day by whole months, or undefined when the day of the month would not exist in every month (29-31). */
function shiftMonths(day: DayNumber, months: number): DayNumber | undefined {
  const c = civil(day);
  if (c.d > 28) return undefined;
  return dayFromCivil(c.y, c.m + months, c.d);
}

/**
 * How far from now a window may reach, in days (about 2,700 years): the date functions throw
 * past ±100,000,000 days from 1970, and no studio asks for more. Further goes to ShotGrid.
 */
const MAX_SPAN_DAYS = 1_000_000;
const UNIT_DAYS: Record<string, number> = { HOUR: 1 / 24, DAY: 1, WEEK: 7, MONTH: 31, YEAR: 366 };

/** `in_last` / `in_next` with `count` `unit`s. */
export function relativeWindow(op: string, count: unknown, unit: unknown, isDate: boolean, now: number, zone: string): Window | undefined {
  if (!Number.isInteger(count) || (count as number) < 0 || typeof unit !== "string") return undefined;
  if ((count as number) * (UNIT_DAYS[unit.toUpperCase()] ?? Number.POSITIVE_INFINITY) > MAX_SPAN_DAYS) return undefined;
  const n = count as number;
  const sign = op === "in_last" ? -1 : 1;
  const u = unit.toUpperCase();
  if (isDate) {
    const today = dayOf(now, zone);
    let other: DayNumber | undefined;
    if (u === "DAY") other = today + sign * n;
    else if (u === "WEEK") other = today + sign * 7 * n;
    else if (u === "MONTH") other = shiftMonths(today, sign * n);
    else if (u === "YEAR") other = shiftMonths(today, sign * 12 * n);
    if (other === undefined) return undefined;
    return sign < 0 ? { from: dayText(other), to: dayText(today + 1) } : { from: dayText(today), to: dayText(other + 1) };
  }
  let other: number | undefined;
  if (u === "HOUR") other = now + sign * n * HOUR_MS;
  else if (u === "DAY" || u === "WEEK") {
    other = now + sign * (u === "WEEK" ? 7 : 1) * n * DAY_MS;
    // Across a daylight-saving change, "a day ago" is 24 hours or the same wall-clock time on the
    // day before (23 or 25 hours): which one the site counts is not known.
    if (offsetAt(other, zone) !== offsetAt(now, zone)) return undefined;
  } else if ((u === "MONTH" || u === "YEAR") && zone === "UTC") {
    const t = new Date(now);
    if (t.getUTCDate() > 28) return undefined;
    if (u === "MONTH") t.setUTCMonth(t.getUTCMonth() + sign * n);
    else t.setUTCFullYear(t.getUTCFullYear() + sign * n);
    other = t.getTime();
  }
  if (other === undefined) return undefined;
  const [lo, hi] = sign < 0 ? [other, now] : [now, other];
  // Both ends inclusive, over whole-second values.
  return { from: Math.ceil(lo / 1000), to: Math.floor(hi / 1000) + 1 };
}

/** `in_calendar_day|month|year` with offset `k` (0: the current one). Weeks: the site's first weekday is not known here. */
export function calendarWindow(op: string, k: unknown, isDate: boolean, now: number, zone: string): Window | undefined {
  // A year is at most 366 days: every offset within the span is placeable.
  if (!Number.isInteger(k) || Math.abs((k as number) * 366) > MAX_SPAN_DAYS) return undefined;
  const offset = k as number;
  const today = dayOf(now, zone);
  const c = civil(today);
  let first: DayNumber;
  let next: DayNumber;
  if (op === "in_calendar_day") {
    first = today + offset;
    next = first + 1;
  } else if (op === "in_calendar_month") {
    first = dayFromCivil(c.y, c.m + offset, 1);
    next = dayFromCivil(c.y, c.m + offset + 1, 1);
  } else if (op === "in_calendar_year") {
    first = dayFromCivil(c.y + offset, 1, 1);
    next = dayFromCivil(c.y + offset + 1, 1, 1);
  } else return undefined;
  if (isDate) return { from: dayText(first), to: dayText(next) };
  return { from: startOfDay(first, zone) / 1000, to: startOfDay(next, zone) / 1000 };
}
