import { describe, expect, it } from 'vitest';
import { channelAvailable, exposes, futureAvailable, promiseDate, type ChannelRules, type LocationFacts } from '../../src/availability/atp.ts';
import { isValidGtin } from '../../src/inventory/model.ts';
import { demoGtin } from '../../src/demo/network.ts';

describe('GTIN check digit', () => {
  it.each([
    ['4006381333931', true],
    ['4006381333932', false],
    ['96385074', true],
    ['96385075', false],
    ['036000291452', true],
    ['10614141000018', false],
    ['10614141000415', true],
    ['400638133393', false],
    ['40063813339a1', false],
    ['', false],
  ])('%s → %s', (gtin, ok) => expect(isValidGtin(gtin)).toBe(ok));
  it('demo GTINs are valid', () => {
    for (let i = 1; i < 3000; i += 7) expect(isValidGtin(demoGtin(i))).toBe(true);
  });
});

const rules = (over: Partial<ChannelRules> = {}): ChannelRules => ({
  id: 1,
  code: 'web',
  locationTypes: [],
  locationTags: [],
  locationCodes: [],
  excludeLocationCodes: [],
  buffer: 0,
  capPercent: null,
  futureStock: false,
  futureHorizonDays: 0,
  active: true,
  ...over,
});
const loc = (over: Partial<LocationFacts> = {}): LocationFacts => ({
  id: 1,
  code: 'ST1',
  type: 'store',
  tags: ['city'],
  country: 'FR',
  latitude: null,
  longitude: null,
  capabilities: [],
  defaultSafetyStock: 0,
  active: true,
  priority: 0,
  shipmentCost: 0,
  dailyCapacity: null,
  ...over,
});

describe('channel exposure', () => {
  it.each([
    ['no include rule: every active location', rules(), loc(), true],
    ['inactive location never', rules(), loc({ active: false }), false],
    ['by type: match', rules({ locationTypes: ['store'] }), loc(), true],
    ['by type: no match', rules({ locationTypes: ['warehouse'] }), loc(), false],
    ['by tag', rules({ locationTags: ['city'] }), loc(), true],
    ['by tag: no match', rules({ locationTags: ['outlet'] }), loc(), false],
    ['by list', rules({ locationCodes: ['ST1'] }), loc(), true],
    ['type OR list', rules({ locationTypes: ['warehouse'], locationCodes: ['ST1'] }), loc(), true],
    ['excluded wins', rules({ locationTypes: ['store'], excludeLocationCodes: ['ST1'] }), loc(), false],
  ])('%s', (_n, r, l, expected) => expect(exposes(r, l)).toBe(expected));
});

describe('channel availability per location (buffer, cap)', () => {
  it.each([
    [10, 0, null, 10],
    [10, 3, null, 7],
    [2, 3, null, 0],
    [0, 0, null, 0],
    [-5, 0, null, 0],
    [10, 0, 50, 5],
    [11, 0, 50, 5],
    [10, 2, 50, 5],
    [10, 6, 50, 4],
    [10, 0, 0, 0],
    [10, 0, 100, 10],
  ])('sellable %i, buffer %i, cap %s%% → %i', (sellable, buffer, cap, expected) => expect(channelAvailable(sellable, { buffer, capPercent: cap })).toBe(expected));
});

describe('future stock', () => {
  const now = Date.parse('2026-06-01T10:00:00Z');
  const day = 86_400_000;
  const supply = [
    { locationId: 1, quantity: 10, expectedAt: now + 2 * day },
    { locationId: 1, quantity: 5, expectedAt: now + 2 * day + 3600_000 },
    { locationId: 1, quantity: 7, expectedAt: now + 20 * day },
    { locationId: 2, quantity: 100, expectedAt: now + 1 * day },
  ];
  const exposed = (id: number) => id === 1;
  it.each([
    ['channel without future stock', rules(), true, []],
    ['sku not backorderable', rules({ futureStock: true, futureHorizonDays: 30 }), false, []],
    ['within horizon, grouped by day, only exposed locations', rules({ futureStock: true, futureHorizonDays: 30 }), true, [{ expectedAt: Date.parse('2026-06-03T00:00:00Z'), quantity: 15 }, { expectedAt: Date.parse('2026-06-21T00:00:00Z'), quantity: 7 }]],
    ['horizon cuts later supply', rules({ futureStock: true, futureHorizonDays: 10 }), true, [{ expectedAt: Date.parse('2026-06-03T00:00:00Z'), quantity: 15 }]],
  ])('%s', (_n, r, backorderable, expected) => expect(futureAvailable(r, backorderable, supply, exposed, now)).toEqual(expected));

  it.each([
    [3, 5, '2026-06-01'],
    [5, 5, '2026-06-01'],
    [6, 5, '2026-06-03'],
    [20, 5, '2026-06-03'],
    [21, 5, '2026-06-21'],
    [28, 5, null],
  ])('promise date for %i units with %i now → %s', (q, nowAvail, expected) => {
    const future = [
      { expectedAt: Date.parse('2026-06-03T00:00:00Z'), quantity: 15 },
      { expectedAt: Date.parse('2026-06-21T00:00:00Z'), quantity: 7 },
    ];
    const d = promiseDate(q, nowAvail, future, now);
    expect(d === null ? null : new Date(d).toISOString().slice(0, 10)).toBe(expected);
  });
});
