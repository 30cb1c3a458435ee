import { describe, expect, it } from 'vitest';
import { addBusinessDays, dispatchDate, endOfLocalDay, isIsoDate, localDateTime, startOfLocalDay } from '../../src/carriers/calendar.ts';
import { DEMO_CARRIER_CONFIG, DEMO_CARRIER_SERVICES, validateCarrierConfig } from '../../src/carriers/config.ts';
import type { CarrierService } from '../../src/carriers/model.ts';
import { type CarrierChoice, type ShipmentRequest, selectCarrier } from '../../src/carriers/selector.ts';

const FR = new Set(DEMO_CARRIER_CONFIG.holidays.FR);
const NONE = new Set<string>();
const OPTIONS = { holidays: DEMO_CARRIER_CONFIG.holidays };
// Paris instants; December is UTC+1, July UTC+2.
const at = (iso: string): number => Date.parse(iso);
const endOf = (date: string): number => endOfLocalDay(date, 'Europe/Paris');
const TUE_9H = at('2026-12-01T09:00:00+01:00');

const ship = (over: Partial<ShipmentRequest> = {}): ShipmentRequest => ({
  mode: 'home',
  originCountry: 'FR',
  destinationCountry: 'FR',
  weightG: 1_200,
  readyAt: TUE_9H,
  ...over,
});
const service = (code: string, over: Partial<CarrierService> = {}): CarrierService => ({
  ...DEMO_CARRIER_SERVICES.find((s) => s.code === code)!,
  ...over,
});
const rejection = (c: CarrierChoice, code: string): string | undefined => c.explanation.rejected.find((r) => r.service === code)?.reason;

describe('calendar: dispatch day with cut-off in a time zone', () => {
  it.each([
    ['before cut-off: same day', '2026-12-01T15:59:00+01:00', '16:00', FR, '2026-12-01'],
    ['at cut-off: next business day', '2026-12-01T16:00:00+01:00', '16:00', FR, '2026-12-02'],
    ['after cut-off: next business day', '2026-12-01T17:30:00+01:00', '16:00', FR, '2026-12-02'],
    ['Friday after cut-off → Monday', '2026-12-04T16:30:00+01:00', '16:00', FR, '2026-12-07'],
    ['Saturday morning → Monday', '2026-12-05T08:00:00+01:00', '16:00', FR, '2026-12-07'],
    ['day before a holiday, after cut-off → day after it', '2026-11-10T17:00:00+01:00', '16:00', FR, '2026-11-12'],
    ['the holiday itself → next day', '2026-11-11T09:00:00+01:00', '16:00', FR, '2026-11-12'],
    ['the same holiday unknown to the calendar', '2026-11-11T09:00:00+01:00', '16:00', NONE, '2026-11-11'],
    ['summer time: 15:59 Paris is 13:59 UTC', '2026-07-01T13:59:00Z', '16:00', FR, '2026-07-01'],
    ['summer time: 16:00 Paris is 14:00 UTC', '2026-07-01T14:00:00Z', '16:00', FR, '2026-07-02'],
    ['late UTC evening is already tomorrow in Paris', '2026-12-01T23:30:00Z', '16:00', FR, '2026-12-02'],
  ])('%s', (_n, readyAt, cutoff, holidays, expected) => expect(dispatchDate(at(readyAt), cutoff, 'Europe/Paris', holidays)).toBe(expected));

  it.each([
    ['2026-12-01', 2, FR, '2026-12-03'],
    ['2026-12-03', 2, FR, '2026-12-07'],
    ['2026-05-07', 2, FR, '2026-05-12'], // Victoire 1945 on Friday 8 May
    ['2026-05-07', 2, NONE, '2026-05-11'],
    ['2026-12-24', 1, FR, '2026-12-28'], // Noël on Friday
    ['2026-12-01', 0, FR, '2026-12-01'],
  ])('%s + %i business days → %s', (date, n, holidays, expected) => expect(addBusinessDays(date, n, holidays)).toBe(expected));

  it.each([
    ['2026-12-01', 'Europe/Paris', '2026-11-30T23:00:00.000Z'],
    ['2026-03-29', 'Europe/Paris', '2026-03-28T23:00:00.000Z'], // clocks go forward at 02:00
    ['2026-03-30', 'Europe/Paris', '2026-03-29T22:00:00.000Z'],
    ['2026-10-25', 'Europe/Paris', '2026-10-24T22:00:00.000Z'], // clocks go back at 03:00
    ['2026-12-01', 'America/New_York', '2026-12-01T05:00:00.000Z'],
  ])('start of %s in %s is %s', (date, tz, expected) => expect(new Date(startOfLocalDay(date, tz)).toISOString()).toBe(expected));

  it('the end of a local day is one millisecond before the next starts', () => {
    expect(new Date(endOf('2026-03-29')).toISOString()).toBe('2026-03-29T21:59:59.999Z');
  });

  it.each([
    ['2026-02-28', true],
    ['2026-02-29', false],
    ['2028-02-29', true],
    ['2026-13-01', false],
    ['2026-1-01', false],
  ])('%s is a date: %s', (s, ok) => expect(isIsoDate(s)).toBe(ok));
});

interface Row {
  name: string;
  shipment: Partial<ShipmentRequest>;
  services?: CarrierService[];
  chosen: string | null;
  cost?: number;
  dispatch?: string;
  delivery?: string;
  meetsPromise?: boolean;
  reason?: string;
  rejected?: [code: string, reason: string][];
}

const ROWS: Row[] = [
  // Filters
  { name: 'no promise: cheapest home service', shipment: {}, chosen: 'home_standard', cost: 850, dispatch: '2026-12-01', delivery: '2026-12-03', meetsPromise: true, rejected: [['home_express', 'costs €7.40 more than home_standard'], ['relay_point', 'mode home not offered (pickup_point)']] },
  { name: 'mode: pickup_point goes to the relay network', shipment: { mode: 'pickup_point' }, chosen: 'relay_point', cost: 499, delivery: '2026-12-07', rejected: [['home_standard', 'mode pickup_point not offered (home)']] },
  { name: 'mode: in_store needs no carrier', shipment: { mode: 'in_store' }, chosen: null, reason: 'no eligible service: all 5 rejected' },
  { name: 'origin not served', shipment: { originCountry: 'DE', destinationCountry: 'DE' }, chosen: null, rejected: [['home_standard', 'origin DE not served (FR)']] },
  { name: 'destination outside every zone', shipment: { mode: 'pickup_point', destinationCountry: 'US' }, chosen: null, rejected: [['relay_point', 'destination US not in zones (domestic, eu)']] },
  { name: 'domestic never priced by a cross-border zone', shipment: {}, chosen: 'home_standard', rejected: [['international', 'domestic destination FR not in zones (eu, europe_other, world)']] },
  { name: 'weight over every maximum', shipment: { weightG: 32_000 }, chosen: null, rejected: [['home_standard', 'weight 32,000 g over max 30,000 g'], ['home_express', 'weight 32,000 g over max 30,000 g']] },
  { name: 'longest side over standard, within express', shipment: { lengthMm: 1_100, widthMm: 200, heightMm: 100 }, chosen: 'home_express', rejected: [['home_standard', 'longest side 1,100 mm over max 1,000 mm']] },
  { name: 'sum of sides over standard', shipment: { lengthMm: 900, widthMm: 400, heightMm: 300 }, chosen: 'home_express', rejected: [['home_standard', 'length + width + height 1,600 mm over max 1,500 mm']] },
  { name: 'only the length known: only the longest-side rule applies', shipment: { lengthMm: 999 }, chosen: 'home_standard' },
  { name: 'service level express requested', shipment: { serviceLevel: 'express' }, chosen: 'home_express', cost: 1_590, delivery: '2026-12-02', rejected: [['home_standard', 'service level standard, express requested']] },
  { name: 'inactive service', shipment: {}, services: [service('home_standard', { active: false }), service('home_express')], chosen: 'home_express', rejected: [['home_standard', 'inactive']] },
  // Weight bands and zones
  { name: 'band upper bound is inclusive (1,000 g)', shipment: { weightG: 1_000 }, chosen: 'home_standard', cost: 735 },
  { name: 'one gram more is the next band', shipment: { weightG: 1_001 }, chosen: 'home_standard', cost: 850 },
  { name: 'lightest band', shipment: { weightG: 120 }, chosen: 'home_standard', cost: 495 },
  { name: 'heaviest band', shipment: { weightG: 30_000 }, chosen: 'home_standard', cost: 2_795 },
  { name: 'zone eu: Germany, 4 days', shipment: { destinationCountry: 'DE', weightG: 800 }, chosen: 'international', cost: 1_390, delivery: '2026-12-07' },
  { name: 'zone europe_other: Switzerland, 6 days', shipment: { destinationCountry: 'CH', weightG: 800 }, chosen: 'international', cost: 1_890, delivery: '2026-12-09' },
  { name: 'zone world: United States, 8 days', shipment: { destinationCountry: 'us', weightG: 800 }, chosen: 'international', cost: 2_990, delivery: '2026-12-11' },
  { name: 'relay point abroad: Belgium, 6 days', shipment: { mode: 'pickup_point', destinationCountry: 'BE', weightG: 800 }, chosen: 'relay_point', cost: 699, delivery: '2026-12-09' },
  // Cut-off, weekends and holidays through the selector
  { name: 'after standard cut-off: leaves tomorrow', shipment: { readyAt: at('2026-12-01T16:05:00+01:00') }, chosen: 'home_standard', dispatch: '2026-12-02', delivery: '2026-12-04' },
  { name: 'Friday after cut-off: Monday dispatch', shipment: { readyAt: at('2026-12-04T16:30:00+01:00') }, chosen: 'home_standard', dispatch: '2026-12-07', delivery: '2026-12-09' },
  { name: 'holiday in transit (8 May)', shipment: { readyAt: at('2026-05-07T10:00:00+02:00') }, chosen: 'home_standard', dispatch: '2026-05-07', delivery: '2026-05-12' },
  { name: 'stock arriving on Christmas Eve evening', shipment: { readyAt: at('2026-12-24T18:00:00+01:00') }, chosen: 'home_standard', dispatch: '2026-12-28', delivery: '2026-12-30' },
  // Promises
  { name: 'promise met by the cheaper service', shipment: { promisedBy: endOf('2026-12-04') }, chosen: 'home_standard', meetsPromise: true, rejected: [['home_express', 'costs €7.40 more than home_standard']] },
  { name: 'promise met only by express', shipment: { promisedBy: endOf('2026-12-02') }, chosen: 'home_express', cost: 1_590, meetsPromise: true, rejected: [['home_standard', 'delivers 2026-12-03, after promise 2026-12-02']] },
  { name: 'express misses its cut-off: same day as standard, cheaper wins', shipment: { readyAt: at('2026-12-01T13:30:00+01:00'), promisedBy: endOf('2026-12-02') }, chosen: 'home_standard', delivery: '2026-12-03', meetsPromise: false, rejected: [['home_express', 'delivers 2026-12-03 like home_standard, after promise 2026-12-02, and costs €7.40 more than home_standard']] },
  { name: 'no one meets the promise: earliest delivery wins', shipment: { promisedBy: endOf('2026-12-01') }, chosen: 'home_express', delivery: '2026-12-02', meetsPromise: false, reason: 'no eligible service delivers by the promise', rejected: [['home_standard', 'delivers 2026-12-03, after promise 2026-12-01 and after home_express (2026-12-02)']] },
  { name: 'a deadline within the day is compared as an instant', shipment: { promisedBy: at('2026-12-03T12:00:00+01:00') }, chosen: 'home_express', meetsPromise: true, rejected: [['home_standard', 'delivers 2026-12-03, after promise 2026-12-03 12:00']] },
  // Pins
  { name: 'pinned and eligible: wins over cheaper', shipment: { pinnedService: 'home_express' }, chosen: 'home_express', cost: 1_590, reason: 'pinned by the retailer', rejected: [['home_standard', 'not pinned: the retailer pinned home_express']] },
  { name: 'pinned, eligible, misses the promise: still pinned', shipment: { pinnedService: 'home_standard', promisedBy: endOf('2026-12-02') }, chosen: 'home_standard', meetsPromise: false, reason: 'after promise 2026-12-02' },
  { name: 'pinned but ineligible: explained, then normal choice', shipment: { pinnedService: 'relay_point' }, chosen: 'home_standard', reason: 'pinned service relay_point is not eligible (mode home not offered (pickup_point)); chosen by the normal rules instead, cheapest' },
  { name: 'pinned service unknown', shipment: { pinnedService: 'drone' }, chosen: 'home_standard', reason: "pinned service 'drone' does not exist" },
  { name: 'pinned ineligible and nothing else fits', shipment: { pinnedService: 'home_express', weightG: 40_000 }, chosen: null, reason: 'no other service is eligible either' },
  // Our own shuttle
  { name: 'store transfer: warehouse → store', shipment: { mode: 'store_transfer', weightG: 12_000, readyAt: at('2026-12-01T17:30:00+01:00') }, chosen: 'store_transfer', cost: 250, dispatch: '2026-12-01', delivery: '2026-12-03' },
  { name: 'click & collect from a warehouse rides the shuttle', shipment: { mode: 'click_and_collect', weightG: 45_000 }, chosen: 'store_transfer', cost: 400 },
  { name: 'store transfer abroad: none', shipment: { mode: 'store_transfer', destinationCountry: 'BE' }, chosen: null, rejected: [['store_transfer', 'destination BE not in zones (domestic)']] },
  // Ties and currency
  {
    name: 'same cost and date: code decides',
    shipment: {},
    services: [service('home_standard', { code: 'zz_standard' }), service('home_standard', { code: 'aa_standard' })],
    chosen: 'aa_standard',
    rejected: [['zz_standard', 'same cost and delivery date as aa_standard; aa_standard comes first by code']],
  },
  {
    name: 'same cost: earlier delivery wins',
    shipment: {},
    services: [service('home_standard', { code: 'slow', leadTimeDays: 3 }), service('home_standard', { code: 'fast' })],
    chosen: 'fast',
    rejected: [['slow', 'same cost as fast but delivers 2026-12-04, after fast (2026-12-03)']],
  },
  {
    name: 'another currency does not compete',
    shipment: {},
    services: [service('home_standard'), service('home_express', { code: 'gbp_express', currency: 'GBP' })],
    chosen: 'home_standard',
    rejected: [['gbp_express', 'priced in GBP, not EUR']],
  },
];

describe('selectCarrier', () => {
  it.each(ROWS)('$name', (row) => {
    const c = selectCarrier(ship(row.shipment), row.services ?? DEMO_CARRIER_SERVICES, OPTIONS);
    expect(c.explanation.chosen).toBe(row.chosen);
    expect(c.service?.code ?? null).toBe(row.chosen);
    if (row.cost !== undefined) expect(c.cost).toBe(row.cost);
    if (row.dispatch !== undefined) expect(c.dispatchDate).toBe(row.dispatch);
    if (row.delivery !== undefined) expect(c.estimatedDelivery).toBe(row.delivery);
    if (row.meetsPromise !== undefined) expect(c.meetsPromise).toBe(row.meetsPromise);
    if (row.reason !== undefined) expect(c.explanation.reason).toContain(row.reason);
    for (const [code, reason] of row.rejected ?? []) expect(rejection(c, code)).toContain(reason);
    // Every service not chosen is accounted for, exactly once.
    const services = row.services ?? DEMO_CARRIER_SERVICES;
    expect(c.explanation.rejected.map((r) => r.service).sort()).toEqual(services.map((s) => s.code).filter((code) => code !== row.chosen).sort());
    if (c.service) {
      expect(c.currency).toBe('EUR');
      expect(c.estimatedDeliveryAt).toBe(endOf(c.estimatedDelivery!));
    } else {
      expect([c.cost, c.currency, c.dispatchDate, c.estimatedDelivery, c.estimatedDeliveryAt, c.meetsPromise]).toEqual([null, null, null, null, null, false]);
    }
  });

  it('is deterministic and does not depend on the order of services', () => {
    const request = ship({ promisedBy: endOf('2026-12-04'), weightG: 2_500 });
    const first = selectCarrier(request, DEMO_CARRIER_SERVICES, OPTIONS);
    const again = selectCarrier(request, DEMO_CARRIER_SERVICES, OPTIONS);
    const reversed = selectCarrier(request, [...DEMO_CARRIER_SERVICES].reverse(), OPTIONS);
    expect(again).toEqual(first);
    expect(reversed.explanation.chosen).toBe(first.explanation.chosen);
    expect(reversed.explanation.reason).toBe(first.explanation.reason);
    expect(new Map(reversed.explanation.rejected.map((r) => [r.service, r.reason]))).toEqual(new Map(first.explanation.rejected.map((r) => [r.service, r.reason])));
  });

  it('without the holiday calendar, the holiday counts as a business day', () => {
    const c = selectCarrier(ship({ readyAt: at('2026-05-07T10:00:00+02:00') }), DEMO_CARRIER_SERVICES, {});
    expect(c.estimatedDelivery).toBe('2026-05-11');
  });

  it('never throws on nonsense input', () => {
    expect(selectCarrier(ship({ readyAt: Number.NaN }), DEMO_CARRIER_SERVICES).explanation.reason).toBe('readyAt is not a valid instant');
    expect(selectCarrier(ship({ weightG: -1 }), DEMO_CARRIER_SERVICES).service).toBeNull();
    expect(selectCarrier(ship(), []).explanation.reason).toBe('no carrier services are configured');
    const broken = selectCarrier(ship(), [service('home_standard', { cutoff: '25:00', timeZone: 'Mars/Olympus' })]);
    expect(broken.explanation.rejected[0].reason).toBe("configuration: cut-off '25:00' is not HH:MM; configuration: unknown time zone 'Mars/Olympus'");
  });
});

type Config = { holidays: Record<string, unknown>; services: Record<string, unknown>[] };
const demo = (): Config => JSON.parse(JSON.stringify(DEMO_CARRIER_CONFIG));
const broken = (change: (c: Config) => void): unknown => {
  const c = demo();
  change(c);
  return c;
};
const table = (c: Config, i: number) => c.services[i].costTable as Record<string, { upToG: number; cost: number }[]>;

describe('validateCarrierConfig', () => {
  it('accepts the demo configuration as JSON', () => {
    expect(validateCarrierConfig(demo())).toEqual({ ok: true, config: demo() });
  });

  it.each([
    ['negative cost', (c: Config) => (table(c, 0).domestic[0].cost = -1), 'services[0].costTable.domestic[0].cost', 'whole number of minor units ≥ 0'],
    ['cost in euros, not cents', (c: Config) => (table(c, 0).domestic[0].cost = 4.95), 'services[0].costTable.domestic[0].cost', 'got 4.95'],
    ['unsorted bands', (c: Config) => (table(c, 0).domestic[1].upToG = 200), 'services[0].costTable.domestic[1].upToG', 'ascending weight: 200 g comes after 250 g'],
    ['last band short of the maximum weight', (c: Config) => table(c, 1).domestic.pop(), 'services[1].costTable.domestic', 'heavier parcels would have no price'],
    ['zone without prices', (c: Config) => delete table(c, 2).eu, 'services[2].costTable.eu', "zone 'eu' has no prices"],
    ['prices for an unknown zone', (c: Config) => (table(c, 0).moon = [{ upToG: 30_000, cost: 1 }]), 'services[0].costTable.moon', "no zone named 'moon'"],
    ['unknown mode', (c: Config) => (c.services[0].modes = ['drone']), 'services[0].modes[0]', "unknown mode \"drone\"; expected one of home, pickup_point"],
    ['bad cut-off 25:00', (c: Config) => (c.services[0].cutoff = '25:00'), 'services[0].cutoff', '24-hour time HH:MM'],
    ['bad time zone', (c: Config) => (c.services[0].timeZone = 'Europe/Pariss'), 'services[0].timeZone', 'not an IANA time zone'],
    ['duplicate code', (c: Config) => (c.services[1].code = 'home_standard'), 'services[1].code', "duplicate code 'home_standard' (also services[0])"],
    ['code not snake case', (c: Config) => (c.services[0].code = 'Home Standard'), 'services[0].code', 'lower snake case'],
    ['unknown currency', (c: Config) => (c.services[0].currency = 'EURO'), 'services[0].currency', 'ISO 4217'],
    ['lower-case country', (c: Config) => (c.services[0].originCountries = ['fr']), 'services[0].originCountries[0]', 'ISO 3166-1 alpha-2'],
    ['unknown country in a zone', (c: Config) => (c.services[3].zones = [{ name: 'eu', countries: ['XX'] }]), 'services[3].zones[0].countries[0]', '"XX" is not'],
    ['negative lead time', (c: Config) => (c.services[0].leadTimeDays = -1), 'services[0].leadTimeDays', 'business days ≥ 0'],
    ['lead time for an unknown zone', (c: Config) => (c.services[3].zoneLeadTimeDays = { mars: 40 }), 'services[3].zoneLeadTimeDays.mars', "no zone named 'mars'"],
    ['zero maximum weight', (c: Config) => (c.services[0].maxWeightG = 0), 'services[0].maxWeightG', 'positive whole number'],
    ['pickup point flag without the mode', (c: Config) => (c.services[0].pickupPoint = true), 'services[0].pickupPoint', "modes lack 'pickup_point'"],
    ['typo in a field name', (c: Config) => (c.services[0].leadtimeDays = 2), 'services[0].leadtimeDays', "unknown field 'leadtimeDays'"],
    ['impossible holiday date', (c: Config) => (c.holidays.FR = ['2026-02-30']), 'holidays.FR[0]', 'is not a date YYYY-MM-DD'],
    ['holiday listed twice', (c: Config) => (c.holidays.FR = ['2026-12-25', '2026-12-25']), 'holidays.FR[1]', 'listed twice'],
    ['no services', (c: Config) => (c.services = []), 'services', 'at least one'],
  ])('%s', (_n, change, path, message) => {
    const result = validateCarrierConfig(broken(change));
    expect(result.ok).toBe(false);
    const problems = result.ok ? [] : result.problems;
    expect(problems.find((p) => p.path === path)?.message ?? `no problem at ${path}: ${JSON.stringify(problems)}`).toContain(message);
  });

  it('reports every problem at once, not only the first', () => {
    const result = validateCarrierConfig(
      broken((c) => {
        c.services[0].cutoff = '25:00';
        c.services[1].timeZone = 'Nowhere/City';
        table(c, 2).domestic[0].cost = -5;
      }),
    );
    expect(result.ok ? [] : result.problems.map((p) => p.path)).toEqual(['services[0].cutoff', 'services[1].timeZone', 'services[2].costTable.domestic[0].cost']);
  });

  it.each([null, [], 'carriers', 42])('refuses %j as a configuration without throwing', (input) => {
    const result = validateCarrierConfig(input);
    expect(result).toEqual({ ok: false, problems: [{ path: '', message: 'the configuration must be an object { holidays, services }' }] });
  });
});

describe('calendar: offsets cached per quarter hour stay exact across daylight-saving changes', () => {
  it.each([
    ['2026-03-29T00:59:59Z', '2026-03-29', 1 * 60 + 59],
    ['2026-03-29T01:00:00Z', '2026-03-29', 3 * 60],
    ['2026-10-25T00:59:59Z', '2026-10-25', 2 * 60 + 59],
    ['2026-10-25T01:00:00Z', '2026-10-25', 2 * 60],
    ['2026-12-31T23:30:00Z', '2027-01-01', 30],
  ])('%s in Paris → %s, minute %i', (instant, date, minutes) => {
    expect(localDateTime(Date.parse(instant), 'Europe/Paris')).toEqual({ date, minutes });
    // Asked again (now from the cache), the answer is the same.
    expect(localDateTime(Date.parse(instant), 'Europe/Paris')).toEqual({ date, minutes });
  });
});
