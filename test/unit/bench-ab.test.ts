// bench/ab.ts: alternating runs of one figure on two builds, compared field by field.
import { describe, expect, it } from 'vitest';
import { compare, field } from '../../bench/ab.ts';
import type { Figure } from '../../bench/report.ts';

const fig = (extra: Record<string, unknown>): Figure => ({ name: 'order.capture.cpu', backend: 'sqlite', value: 0, unit: 'ms', ...extra });

describe('bench A/B comparison', () => {
  it.each([
    ['a top-level number', { value: 1.5 }, 'value', 1.5],
    ['a dotted path', { cpu_ms_per_order: { process: 2.1 } }, 'cpu_ms_per_order.process', 2.1],
    ['null', { ratio: null }, 'ratio', null],
    ['missing', {}, 'writer_thread.busy_ms_per_order', null],
    ['a string', { unit: 'ms' }, 'unit', null],
    ['not finite', { value: Number.NaN }, 'value', null],
  ])('field: %s', (_, extra, path, expected) => {
    expect(field(fig(extra), path)).toBe(expected);
  });

  it('means, ranges and new ÷ base per field; a field missing on one side is left out', () => {
    const base = [fig({ value: 1.2, p99_ms: 10 }), fig({ value: 1.4, p99_ms: 30 })];
    const next = [fig({ value: 1.0, p99_ms: null }), fig({ value: 1.1 })];
    expect(compare(base, next, ['value', 'p99_ms', 'ratio'])).toEqual([
      { field: 'value', base: { runs: [1.2, 1.4], mean: 1.3, min: 1.2, max: 1.4 }, next: { runs: [1.0, 1.1], mean: 1.05, min: 1.0, max: 1.1 }, ratio: 0.808 },
    ]);
  });

  it('a base mean of zero gives no ratio', () => {
    expect(compare([fig({ value: 0 })], [fig({ value: 1 })], ['value'])[0].ratio).toBeNull();
  });
});
