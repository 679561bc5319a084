import { isFinalSession, newYorkDateOf } from './trading-calendar.js';

/**
 * The NYSE trading calendar for daily bars: which dates are full or early-close sessions. Dates are
 * session dates in America/New_York, carried as 00:00 UTC of that date (as bars are stamped).
 *
 * Hand-rolled on purpose (docs/decisions/data-quality.md): the one npm package for it, `nyse-holidays`
 * 1.2.0, has a single release, compares dates in the machine's local time zone and knows none of the
 * unscheduled closures below, each of which would read as a missing session.
 *
 * Regular holidays follow NYSE Rule 7.2 and the exchange's published "Holidays and Trading Hours":
 * New Year's Day, Martin Luther King Jr. Day (from 1998), Washington's Birthday, Good Friday, Memorial
 * Day, Juneteenth (from 2022), Independence Day, Labor Day, Thanksgiving and Christmas. A holiday on a
 * Sunday is observed on the Monday; one on a Saturday on the Friday before, except when that Friday
 * ends a month or year (New Year's Day on a Saturday closes nothing: 2022-01-01, 2011-01-01).
 * Early closes (13:00) are sessions and so not listed.
 *
 * Unscheduled closures ({@link SPECIAL_CLOSURES}) are listed from the NYSE's history of market closings.
 * The calendar is known from {@link CALENDAR_START}; before it nothing is called a session or a gap.
 */

/** First date the rules above describe (MLK Day joined the list in 1998). */
export const CALENDAR_START = '1998-01-01';

/** Whole-day closures outside the holiday rules: date → why. */
export const SPECIAL_CLOSURES: ReadonlyMap<string, string> = new Map([
  ['2001-09-11', 'September 11 attacks'],
  ['2001-09-12', 'September 11 attacks'],
  ['2001-09-13', 'September 11 attacks'],
  ['2001-09-14', 'September 11 attacks'],
  ['2004-06-11', 'National day of mourning, President Reagan'],
  ['2007-01-02', 'National day of mourning, President Ford'],
  ['2012-10-29', 'Hurricane Sandy'],
  ['2012-10-30', 'Hurricane Sandy'],
  ['2018-12-05', 'National day of mourning, President George H. W. Bush'],
  ['2025-01-09', 'National day of mourning, President Carter'],
]);

const DAY_MS = 86_400_000;

/** `YYYY-MM-DD` of a UTC-midnight-stamped date. */
export function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

const holidaysByYear = new Map<number, ReadonlyMap<string, string>>();

/** The NYSE's regular holidays of `year` as observed (date → name), from {@link CALENDAR_START}'s rules. */
export function nyseHolidays(year: number): ReadonlyMap<string, string> {
  const cached = holidaysByYear.get(year);
  if (cached) return cached;
  const holidays = new Map<string, string>();
  const add = (date: Date, name: string) => holidays.set(isoDay(date), name);
  const fixed = (month: number, day: number, name: string, { closesEndOfYearFriday = true } = {}) => {
    const date = utc(year, month, day);
    const weekday = date.getUTCDay();
    if (weekday === 0) add(addDays(date, 1), name);
    else if (weekday === 6) {
      const friday = addDays(date, -1);
      // NYSE Rule 7.2: no Friday closing when the Friday ends a monthly or yearly accounting period.
      if (closesEndOfYearFriday || friday.getUTCMonth() === date.getUTCMonth()) add(friday, name);
    } else add(date, name);
  };
  fixed(1, 1, "New Year's Day", { closesEndOfYearFriday: false });
  if (year >= 1998) add(nthWeekday(year, 1, 1, 3), 'Martin Luther King Jr. Day');
  add(nthWeekday(year, 2, 1, 3), "Washington's Birthday");
  add(addDays(easterSunday(year), -2), 'Good Friday');
  add(lastWeekday(year, 5, 1), 'Memorial Day');
  if (year >= 2022) fixed(6, 19, 'Juneteenth');
  fixed(7, 4, 'Independence Day');
  add(nthWeekday(year, 9, 1, 1), 'Labor Day');
  add(nthWeekday(year, 11, 4, 4), 'Thanksgiving Day');
  fixed(12, 25, 'Christmas Day');
  holidaysByYear.set(year, holidays);
  return holidays;
}

/** Why `date` is not a session (weekend, a holiday's name, a closure), or undefined when it is one or is before the calendar. */
export function closedReason(date: Date): string | undefined {
  const day = isoDay(date);
  if (day < CALENDAR_START) return undefined;
  const weekday = date.getUTCDay();
  if (weekday === 0 || weekday === 6) return 'weekend';
  return SPECIAL_CLOSURES.get(day) ?? nyseHolidays(date.getUTCFullYear()).get(day);
}

/** Whether `date` (00:00 UTC of a session date) is an NYSE session; dates before the calendar count as sessions. */
export function isSession(date: Date): boolean {
  return closedReason(date) === undefined;
}

/**
 * The newest NYSE session whose regular session has closed at `now` (16:00 New York time, early closes
 * treated as 16:00: late, never early), as 00:00 UTC of its date: the last session whose daily bar is
 * final. Before 16:00 on a session day that is the previous session; on a weekend or holiday, the last
 * session before it. What scheduled retraining trains up to.
 */
export function lastCompleteSession(now: Date): Date {
  let date = new Date(`${newYorkDateOf(now)}T00:00:00Z`);
  for (;;) {
    if (isSession(date) && isFinalSession(date, now)) return date;
    date = addDays(date, -1);
  }
}

/**
 * The sessions strictly between two bar dates, oldest first, up to `limit` of them (a gap of years is
 * still one flag; its length is then "at least `limit`"). Only dates the calendar covers are counted.
 */
export function sessionsBetween(from: Date, to: Date, limit = 1_000): Date[] {
  const found: Date[] = [];
  const start = Math.max(startOfDay(from) + DAY_MS, Date.parse(`${CALENDAR_START}T00:00:00Z`));
  for (let t = start; t < startOfDay(to) && found.length < limit; t += DAY_MS) {
    const date = new Date(t);
    if (isSession(date)) found.push(date);
  }
  return found;
}

function startOfDay(date: Date): number {
  return Math.floor(date.getTime() / DAY_MS) * DAY_MS;
}

function utc(year: number, month: number, day: number): Date {
  return new Date(Date.UTC(year, month - 1, day));
}

function addDays(date: Date, days: number): Date {
  return new Date(date.getTime() + days * DAY_MS);
}

/** The `n`th `weekday` (0 Sunday … 6 Saturday) of a month. */
function nthWeekday(year: number, month: number, weekday: number, n: number): Date {
  const first = utc(year, month, 1);
  return addDays(first, ((weekday - first.getUTCDay() + 7) % 7) + (n - 1) * 7);
}

function lastWeekday(year: number, month: number, weekday: number): Date {
  const last = utc(year, month + 1, 0);
  return addDays(last, -((last.getUTCDay() - weekday + 7) % 7));
}

/** Gregorian Easter Sunday (the anonymous Gregorian algorithm, "Meeus/Jones/Butcher"). */
function easterSunday(year: number): Date {
  const a = year % 19;
  const b = Math.floor(year / 100);
  const c = year % 100;
  const d = Math.floor(b / 4);
  const e = b % 4;
  const f = Math.floor((b + 8) / 25);
  const g = Math.floor((b - f + 1) / 3);
  const h = (19 * a + b - d - g + 15) % 30;
  const i = Math.floor(c / 4);
  const k = c % 4;
  const l = (32 + 2 * e + 2 * i - h - k) % 7;
  const m = Math.floor((a + 11 * h + 22 * l) / 451);
  const month = Math.floor((h + l - 7 * m + 114) / 31);
  const day = ((h + l - 7 * m + 114) % 31) + 1;
  return utc(year, month, day);
}
