// Business-day arithmetic with a cut-off in a time zone: when a parcel leaves and when it arrives.
// Dates are local calendar days ('YYYY-MM-DD') in the service's time zone; offsets come from
// Intl.DateTimeFormat, which knows the IANA database and daylight saving (Node ships full ICU),
// so no date library is needed. Pure: the instant is passed in, nothing reads the clock.

const DAY_MS = 86_400_000;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const CUTOFF_RE = /^([01]\d|2[0-3]):([0-5]\d)$/;

// One formatter per time zone: building them is the slow part, and they are immutable.
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export function isValidTimeZone(timeZone: string): boolean {
  if (typeof timeZone !== 'string' || timeZone === '') return false;
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** A real calendar date written 'YYYY-MM-DD' (rejects 2026-02-30). */
export function isIsoDate(s: string): boolean {
  const m = DATE_RE.exec(s);
  if (!m) return false;
  return toIsoDate(Date.UTC(+m[1], +m[2] - 1, +m[3])) === s;
}

/** Minutes after local midnight for 'HH:MM', or null if it is not a 24-hour time. */
export function parseCutoff(cutoff: string): number | null {
  const m = CUTOFF_RE.exec(cutoff);
  return m ? +m[1] * 60 + +m[2] : null;
}

// Day arithmetic runs for every carrier service priced, several per shipment of every plan,
// and each conversion formats or parses a date: both directions are remembered (a plan asks
// about a handful of days; a long-running server, a few hundred).
const isoOfDay = new Map<number, string>();
const dayOfIso = new Map<string, number>();
const toIsoDate = (utcMs: number): string => {
  const day = Math.floor(utcMs / DAY_MS);
  let iso = isoOfDay.get(day);
  if (iso === undefined) {
    iso = new Date(day * DAY_MS).toISOString().slice(0, 10);
    if (isoOfDay.size > 10_000) isoOfDay.clear();
    isoOfDay.set(day, iso);
  }
  return iso;
};
const dayNumber = (date: string): number => {
  let day = dayOfIso.get(date);
  if (day === undefined) {
    day = Date.parse(`${date}T00:00:00Z`) / DAY_MS;
    if (dayOfIso.size > 10_000) dayOfIso.clear();
    dayOfIso.set(date, day);
  }
  return day;
};
const addDays = (date: string, n: number): string => toIsoDate((dayNumber(date) + n) * DAY_MS);

/** Local date and minutes after midnight of an instant in a time zone. */
export function localDateTime(epochMs: number, timeZone: string): { date: string; minutes: number } {
  const local = epochMs + offsetAt(epochMs, timeZone);
  const minuteOfDay = Math.floor((((local % DAY_MS) + DAY_MS) % DAY_MS) / 60_000);
  return { date: toIsoDate(local), minutes: minuteOfDay };
}

// Offsets change only at whole quarter hours (every zone's transitions since the 1980s are on
// the hour or half hour), so one lookup per zone and quarter hour is exact, and a plan that
// prices five services for three shipments asks Intl once instead of thirty times.
const QUARTER_MS = 900_000;
const offsets = new Map<string, number>();

/** Offset of the zone from UTC at an instant, in ms (Paris in winter: +3_600_000). */
function offsetAt(epochMs: number, timeZone: string): number {
  const bucket = Math.floor(epochMs / QUARTER_MS) * QUARTER_MS;
  const key = `${timeZone}|${bucket}`;
  const known = offsets.get(key);
  if (known !== undefined) return known;
  const p: Record<string, string> = {};
  for (const part of formatter(timeZone).formatToParts(bucket)) p[part.type] = part.value;
  const offset = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - bucket;
  if (offsets.size > 50_000) offsets.clear();
  offsets.set(key, offset);
  return offset;
}

/** The first instant of a local day in a time zone (daylight-saving aware). */
export function startOfLocalDay(date: string, timeZone: string): number {
  const wall = dayNumber(date) * DAY_MS;
  const first = offsetAt(wall, timeZone);
  const guess = wall - first;
  const second = offsetAt(guess, timeZone);
  return second === first ? guess : wall - second;
}

/** The last millisecond of a local day: "delivered by the end of that day". */
export const endOfLocalDay = (date: string, timeZone: string): number => startOfLocalDay(addDays(date, 1), timeZone) - 1;

/** Monday to Friday, and not a holiday. */
export function isBusinessDay(date: string, holidays: ReadonlySet<string>): boolean {
  const weekday = (dayNumber(date) + 4) % 7; // 1970-01-01 was a Thursday; 0 = Sunday
  return weekday !== 0 && weekday !== 6 && !holidays.has(date);
}

export function nextBusinessDay(date: string, holidays: ReadonlySet<string>): string {
  let d = addDays(date, 1);
  while (!isBusinessDay(d, holidays)) d = addDays(d, 1);
  return d;
}

/** `n` business days after `date` (n = 0 returns `date` itself). */
export function addBusinessDays(date: string, n: number, holidays: ReadonlySet<string>): string {
  let d = date;
  for (let i = 0; i < n; i++) d = nextBusinessDay(d, holidays);
  return d;
}

/**
 * The day a parcel ready at `readyAt` leaves: that same day if it is a business day and the
 * parcel is ready strictly before the cut-off, otherwise the next business day.
 */
export function dispatchDate(readyAt: number, cutoff: string, timeZone: string, holidays: ReadonlySet<string>): string {
  const cutoffMinutes = parseCutoff(cutoff);
  if (cutoffMinutes === null) throw new RangeError(`cut-off '${cutoff}' is not HH:MM`);
  const local = localDateTime(readyAt, timeZone);
  if (isBusinessDay(local.date, holidays) && local.minutes < cutoffMinutes) return local.date;
  return nextBusinessDay(local.date, holidays);
}

export interface DeliveryEstimate {
  dispatchDate: string;
  estimatedDelivery: string;
  /** End of the delivery day in the service's time zone. */
  estimatedDeliveryAt: number;
}

export interface EstimateInput {
  readyAt: number;
  cutoff: string;
  timeZone: string;
  leadTimeDays: number;
  holidays: ReadonlySet<string>;
}

/** Dispatch day, then `leadTimeDays` business days later the delivery day. */
export function estimateDelivery(input: EstimateInput): DeliveryEstimate {
  const dispatch = dispatchDate(input.readyAt, input.cutoff, input.timeZone, input.holidays);
  const delivery = addBusinessDays(dispatch, input.leadTimeDays, input.holidays);
  return { dispatchDate: dispatch, estimatedDelivery: delivery, estimatedDeliveryAt: endOfLocalDay(delivery, input.timeZone) };
}
