// Time goes through a Clock so tests can move it.
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export class ManualClock implements Clock {
  constructor(private t: number = Date.parse('2026-01-01T00:00:00Z')) {}
  now(): number {
    return this.t;
  }
  set(t: number | string): void {
    this.t = typeof t === 'string' ? Date.parse(t) : t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

let lastIso = { ms: Number.NaN, text: '' };
/**
 * An instant as ISO 8601 (null stays null). The last one is kept: an order written out has
 * several timestamps, and a new order's are all the same instant.
 */
export function iso(ms: number | null | undefined): string | null {
  if (ms == null) return null;
  if (ms === lastIso.ms) return lastIso.text;
  const text = new Date(ms).toISOString();
  lastIso = { ms, text };
  return text;
}

const DAY_MS = 86_400_000;
let lastDay = { from: Number.NaN, text: '' };
/** YYYY-MM-DD (UTC) of an instant. The last day is kept: every capture and plan asks for today's. */
export function isoDay(t: number): string {
  const from = t - (((t % DAY_MS) + DAY_MS) % DAY_MS);
  if (from === lastDay.from) return lastDay.text;
  const text = new Date(from).toISOString().slice(0, 10);
  lastDay = { from, text };
  return text;
}
