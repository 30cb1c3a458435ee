import { describe, expect, it } from 'vitest';
import { RecentMarks } from '../../src/availability/dirty.ts';

describe('RecentMarks', () => {
  it.each([
    ['never marked', [], 1000, false],
    ['marked just now', [1000], 1000, true],
    ['marked within half the window', [1000], 1499, true],
    ['half the window has passed', [1000], 1500, false],
    ['another sku was marked', [], 1200, false],
  ])('%s → covered: %s', (_name, marks, now, expected) => {
    const r = new RecentMarks(1000);
    r.committed(
      marks.map(() => 7),
      marks[0] ?? 0,
    );
    expect(r.covers(7, now)).toBe(expected);
  });
});
