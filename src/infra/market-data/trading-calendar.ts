/**
 * The US equity trading calendar as market-data vendors need it: sessions are New York dates, stamped
 * as the bars store stamps daily bars (00:00 UTC of the date); the regular session closes at 16:00
 * New York time; weekends have no session. Holidays are not listed: a holiday costs one catch-up
 * that finds nothing (never an outage), and half days are treated as closing at 16:00 (late, never wrong).
 */
const DAY_MS = 86_400_000;
const newYorkDate = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/New_York', year: 'numeric', month: '2-digit', day: '2-digit' });
const newYorkHour = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', hour: 'numeric', hourCycle: 'h23' });

/**
 * The trading session a bar belongs to, stamped as the bars store stamps daily bars (00:00 UTC of the
 * date). Alpaca stamps a daily bar at midnight New York time (04:00 or 05:00 UTC), so the date is read
 * in America/New_York, never in UTC.
 */
export function sessionDate(time: string | Date): Date {
  const instant = typeof time === 'string' ? new Date(time) : time;
  // A bar stamped at exactly 00:00 UTC (proxies and caches that re-stamp daily bars) names its date in
  // UTC: read in New York it would be the evening before, a day early. No session starts at 19:00 there.
  if (instant.getTime() % DAY_MS === 0) return new Date(instant.getTime());
  return new Date(`${newYorkDate.format(instant)}T00:00:00Z`);
}

/**
 * When the regular session of `date` (00:00 UTC of the date) ends: 16:00 New York time. A daily bar
 * is final only after it; before, the stream's daily bar is the day so far. Half days close at 13:00,
 * so their bar is treated as partial three hours longer than it is: late, never wrong.
 */
export function sessionClose(date: Date): Date {
  const winter = new Date(date.getTime() + 21 * 3_600_000); // 16:00 EST = 21:00 UTC
  return Number(newYorkHour.format(winter)) === 17 ? new Date(winter.getTime() - 3_600_000) : winter;
}

/** True when `date`'s session has closed at `now`. */
export function isFinalSession(date: Date, now: Date): boolean {
  return now.getTime() >= sessionClose(date).getTime();
}

/** Weekdays strictly between two session dates: 0 when `later` is the next weekday after `earlier`. */
export function weekdaysBetween(earlier: Date, later: Date): number {
  let count = 0;
  for (let t = earlier.getTime() + DAY_MS; t < later.getTime(); t += DAY_MS) {
    const day = new Date(t).getUTCDay();
    if (day !== 0 && day !== 6) count++;
  }
  return count;
}

/** The New York date (YYYY-MM-DD) of an instant: what "today" means to a vendor's session-dated API. */
export function newYorkDateOf(instant: Date): string {
  return newYorkDate.format(instant);
}
