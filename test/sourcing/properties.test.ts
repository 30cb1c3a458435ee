// Properties of the pure engine on random networks, orders and rules (fast-check):
// a plan never allocates more than a location has, nor more than is ordered; every line
// adds up (allocated + backordered + unfilled = ordered); filters and split limits hold;
// the same input gives the same plan; the explanation names every candidate.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { haversineKm, isoDay, source, verdictSample } from '../../src/sourcing/engine.ts';
import type { Candidate, CandidatePool, Criterion, RuleSet, SourcingOrder, Strategy } from '../../src/sourcing/model.ts';
import { CRITERIA, makePool } from '../../src/sourcing/model.ts';
import { DEFAULT_RULE_SET } from '../../src/sourcing/presets.ts';
import { minimiseCover } from '../../src/sourcing/split.ts';

const NOW = Date.parse('2026-11-25T09:00:00Z');
const DAY = 86_400_000;
const SKUS = ['S1', 'S2', 'S3', 'S4'];
const TYPES = ['warehouse', 'store', 'supplier', 'marketplace', 'reseller'] as const;

const point = fc.record({ latitude: fc.double({ min: 42, max: 51, noNaN: true }), longitude: fc.double({ min: -4, max: 8, noNaN: true }) });

const candidate = (i: number) =>
  fc.record({
    type: fc.constantFrom(...TYPES),
    capabilities: fc.subarray(['ships', 'click_and_collect', 'order_in_store', 'accepts_returns'] as const),
    country: fc.constantFrom('FR', 'FR', 'FR', 'IT', 'DE'),
    point: fc.option(point, { freq: 5 }),
    priority: fc.integer({ min: 0, max: 3 }),
    shipmentCost: fc.integer({ min: 100, max: 900 }),
    remainingCapacity: fc.option(fc.integer({ min: 0, max: 3 }), { freq: 2 }),
    excluded: fc.boolean().map((b) => b && i % 5 === 0),
    stock: fc.array(fc.integer({ min: 0, max: 6 }), { minLength: SKUS.length, maxLength: SKUS.length }),
    future: fc.array(fc.tuple(fc.constantFrom(...SKUS), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 5 })), { maxLength: 3 }),
  }).map(
    (c): Candidate & { stock: Map<string, number> } => ({
      code: `L${String(i).padStart(2, '0')}`,
      type: c.type,
      capabilities: [...c.capabilities],
      country: c.country,
      point: c.point,
      priority: c.priority,
      shipmentCost: c.shipmentCost,
      remainingCapacity: c.remainingCapacity,
      excluded: c.excluded,
      stock: new Map(SKUS.map((s, k) => [s, c.stock[k]] as [string, number]).filter(([, q]) => q > 0)),
      future: new Map(
        SKUS.map((s) => [s, c.future.filter(([fs]) => fs === s).map(([, d, q]) => ({ expectedAt: NOW - (NOW % DAY) + d * DAY, quantity: q })).sort((a, b) => a.expectedAt - b.expectedAt)] as const).filter(([, l]) => l.length),
      ),
    }),
  );

const network = fc.integer({ min: 1, max: 14 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => candidate(i))).map((list) => makePool(list, SKUS)));

const orderFor = (pool: CandidatePool) =>
  fc
    .record({
      skus: fc.oneof(fc.shuffledSubarray(SKUS, { minLength: 1, maxLength: 4 }), fc.array(fc.constantFrom(...SKUS), { minLength: 2, maxLength: 4 })),
      qty: fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 4, maxLength: 4 }),
      classes: fc.array(fc.constantFrom('A', 'B', 'C', null), { minLength: 4, maxLength: 4 }),
      backorderable: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
      mode: fc.constantFrom('home', 'pickup_point', 'click_and_collect', 'in_store') as fc.Arbitrary<SourcingOrder['destination']['mode']>,
      pickup: fc.integer({ min: 0, max: pool.locations.length - 1 }),
      dest: fc.option(point, { freq: 4 }),
      country: fc.constantFrom('FR', 'FR', 'DE'),
      exclude: fc.subarray(pool.locations.map((c) => c.code), { maxLength: Math.min(2, pool.locations.length) }),
      value: fc.integer({ min: 0, max: 100_000 }),
    })
    .map((o): SourcingOrder => {
      const atStore = o.mode === 'click_and_collect' || o.mode === 'in_store';
      const pickup = pool.locations[o.pickup];
      const p = atStore ? pickup.point : o.dest;
      return {
        channel: 'web',
        value: o.value,
        currency: 'EUR',
        lines: o.skus.map((sku, k) => ({ lineId: `l${k}`, sku, quantity: o.qty[k], demandClass: o.classes[k], tags: [], backorderable: o.backorderable[k], weightG: 500 })),
        destination: { mode: o.mode, country: atStore ? pickup.country : o.country, point: p, precision: p ? 'coordinates' : 'not_found', geoSource: 'test', pickupLocation: atStore ? pickup.code : null },
        excludeLocations: o.exclude,
      };
    });

const strategy: fc.Arbitrary<Strategy> = fc
  .record({
    types: fc.option(fc.subarray([...TYPES], { minLength: 1 })),
    caps: fc.constantFrom<Strategy['filters']['capabilities']>('auto', [], ['ships'], undefined),
    sameCountry: fc.boolean(),
    maxDistanceKm: fc.option(fc.integer({ min: 1, max: 800 })),
    atPickupLocation: fc.boolean(),
    fullOrderOnly: fc.boolean(),
    underCapacity: fc.boolean(),
    exclude: fc.subarray(['L00', 'L01', 'L02']),
    criteria: fc.shuffledSubarray([...CRITERIA], { minLength: 1 }),
    tolerance: fc.option(fc.integer({ min: 0, max: 50 })),
    weighted: fc.boolean(),
    split: fc.oneof(fc.constant({ policy: 'none' as const }), fc.constant({ policy: 'minimise' as const }), fc.integer({ min: 1, max: 3 }).map((n) => ({ policy: 'max' as const, maxShipments: n }))),
    fallbacks: fc.subarray([{ type: 'dropship' as const }, { type: 'backorder' as const, horizonDays: 20 }]),
  })
  .map((r) => ({
    id: 'main',
    when: {},
    filters: {
      ...(r.types ? { locationTypes: r.types } : {}),
      ...(r.caps !== undefined ? { capabilities: r.caps } : {}),
      sameCountry: r.sameCountry,
      ...(r.maxDistanceKm ? { maxDistanceKm: r.maxDistanceKm } : {}),
      atPickupLocation: r.atPickupLocation,
      fullOrderOnly: r.fullOrderOnly,
      underCapacity: r.underCapacity,
      excludeLocations: r.exclude,
    },
    ranking: {
      mode: r.weighted ? ('weighted' as const) : ('lexicographic' as const),
      criteria: r.criteria.map((c: Criterion, i) => ({ criterion: c, ...(r.weighted ? { weight: i + 1 } : {}), ...(r.tolerance && c === 'distance' ? { tolerance: r.tolerance } : {}) })),
    },
    split: r.split,
    fallbacks: r.fallbacks,
  }));

const ruleSet = (s: Strategy): RuleSet => ({ name: 'random', settings: { homeCountry: 'FR', handlingDays: { supplier: 2 }, exactSplitLimit: 8 }, strategies: [s] });

const scenario = network.chain((cands) => fc.tuple(fc.constant(cands), orderFor(cands), strategy));

/** The invariants every plan must keep, whatever the rules. */
/** What the pool says a location may promise of a sku now. */
const stockOf = (pool: CandidatePool, code: string, sku: string) => {
  const row = pool.locations.findIndex((c) => c.code === code);
  const col = pool.columns.get(sku);
  return row < 0 || col === undefined ? 0 : pool.available[row * pool.columns.size + col];
};

function checkPlan(order: SourcingOrder, pool: CandidatePool, rules: RuleSet): void {
  const r = source(order, pool, rules, NOW);
  const cands = pool.locations;
  const byCode = new Map(cands.map((c) => [c.code, c]));
  const taken = new Map<string, number>();
  const futureTaken = new Map<string, number>();
  for (const line of r.plan.lines) {
    const ordered = order.lines.find((l) => l.lineId === line.lineId)?.quantity;
    const alloc = line.allocations.reduce((a, x) => a + x.quantity, 0);
    const bo = line.backorders.reduce((a, x) => a + x.quantity, 0);
    expect(alloc + bo + line.unfilled).toBe(ordered);
    expect(line.unfilled).toBeGreaterThanOrEqual(0);
    for (const a of line.allocations) {
      expect(a.quantity).toBeGreaterThan(0);
      const k = `${a.location}|${line.sku}`;
      taken.set(k, (taken.get(k) ?? 0) + a.quantity);
    }
    for (const b of line.backorders) {
      expect(b.quantity).toBeGreaterThan(0);
      const k = `${b.location}|${line.sku}|${b.promiseDate}`;
      futureTaken.set(k, (futureTaken.get(k) ?? 0) + b.quantity);
    }
  }
  for (const [k, q] of taken) {
    const [loc, sku] = k.split('|');
    expect(q, k).toBeLessThanOrEqual(stockOf(pool, loc, sku));
  }
  for (const [k, q] of futureTaken) {
    const [loc, sku, day] = k.split('|');
    const supply = (byCode.get(loc)?.future.get(sku) ?? []).filter((f) => isoDay(Math.max(f.expectedAt, NOW)) === day).reduce((a, f) => a + f.quantity, 0);
    expect(q, k).toBeLessThanOrEqual(supply);
  }
  // The explanation names every candidate, once, in every attempt; the short form (built
  // without the full ranking) agrees with it, and so do the counts.
  for (const a of r.explanation.attempts) {
    const sample = verdictSample(a, 3);
    const full = a.candidates;
    expect(full.map((c) => c.location).sort()).toEqual(cands.map((c) => c.code).sort());
    for (const v of sample) expect(full.find((c) => c.location === v.location)).toEqual(v);
    const counts: Record<string, number> = {};
    for (const v of full) counts[v.outcome] = (counts[v.outcome] ?? 0) + 1;
    expect(a.outcomes).toEqual(counts);
  }
  // Nothing ships from an excluded location.
  const shipped = new Set(r.plan.shipments.map((s) => s.location));
  for (const c of cands) if (c.excluded || order.excludeLocations.includes(c.code)) expect(shipped.has(c.code), c.code).toBe(false);
  // Determinism.
  expect(JSON.stringify(source(order, pool, rules, NOW))).toBe(JSON.stringify(r));
}

/** An independent re-statement of the location filters, for allocations of the main strategy. */
function passes(s: Strategy, c: Candidate, o: SourcingOrder): boolean {
  const f = s.filters;
  const d = o.destination;
  if (c.excluded || o.excludeLocations.includes(c.code) || f.excludeLocations?.includes(c.code)) return false;
  if (f.atPickupLocation && c.code !== d.pickupLocation) return false;
  if (f.locationTypes && !f.locationTypes.includes(c.type)) return false;
  if (f.sameCountry && c.country !== d.country) return false;
  if (f.maxDistanceKm !== undefined && d.point) {
    if (!c.point) return false;
    if (haversineKm(d.point.latitude, d.point.longitude, c.point.latitude, c.point.longitude) > f.maxDistanceKm) return false;
  }
  const caps = f.capabilities ?? 'auto';
  const need = caps !== 'auto' ? caps : (d.mode === 'click_and_collect' || d.mode === 'in_store') && c.code === d.pickupLocation ? (d.mode === 'click_and_collect' ? ['click_and_collect'] : []) : ['ships'];
  return need.every((n) => c.capabilities.includes(n as Candidate['capabilities'][number]));
}

describe('sourcing engine: properties', () => {
  it('random rules: lines add up, stock and supply are never exceeded, filters and split limits hold, deterministic', () => {
    fc.assert(
      fc.property(scenario, ([pool, order, s]) => {
        const rules = ruleSet(s);
        checkPlan(order, pool, rules);
        const r = source(order, pool, rules, NOW);
        const main = r.explanation.attempts[0];
        const chosen = main.candidates.filter((v) => v.outcome === 'chosen').map((v) => v.location);
        const byCode = new Map(pool.locations.map((c) => [c.code, c]));
        for (const code of chosen) expect(passes(s, byCode.get(code) as Candidate, order), `${code} passed the filters`).toBe(true);
        if (s.split.policy === 'none') expect(chosen.length).toBeLessThanOrEqual(1);
        if (s.split.policy === 'max') expect(chosen.length).toBeLessThanOrEqual(s.split.maxShipments);
        if (s.filters.fullOrderOnly) {
          for (const code of chosen) for (const l of order.lines) expect(stockOf(pool, code, l.sku)).toBeGreaterThanOrEqual(l.quantity);
        }
      }),
      { numRuns: 400, seed: 20261125 },
    );
  });

  it('the default rule set keeps the same invariants', () => {
    fc.assert(
      fc.property(network.chain((cands) => fc.tuple(fc.constant(cands), orderFor(cands))), ([cands, order]) => checkPlan(order, cands, DEFAULT_RULE_SET)),
      { numRuns: 300, seed: 7 },
    );
  });

  it('split minimisation: exact covers are minimal and never larger than greedy', () => {
    const instance = fc.record({
      lines: fc.integer({ min: 1, max: 5 }),
      cands: fc.integer({ min: 1, max: 9 }),
      seed: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 45, maxLength: 45 }),
      need: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 5, maxLength: 5 }),
    });
    fc.assert(
      fc.property(instance, ({ lines, cands, seed, need }) => {
        const avail = Int32Array.from({ length: cands * lines }, (_, x) => seed[Math.floor(x / lines) * 5 + (x % lines)]);
        const at = (c: number, l: number) => avail[c * lines + l];
        const target = Int32Array.from({ length: lines }, (_, l) => Math.min(need[l], [...Array(cands).keys()].reduce((a, c) => a + at(c, l), 0)));
        const exact = minimiseCover({ avail, rows: cands, width: lines, need: target, exactLimit: 30 });
        const greedy = minimiseCover({ avail, rows: cands, width: lines, need: target, exactLimit: 0 });
        const covers = (set: number[]) => target.every((q, l) => set.reduce((a, c) => a + at(c, l), 0) >= q);
        expect(covers(exact.chosen)).toBe(true);
        expect(covers(greedy.chosen)).toBe(true);
        expect(exact.chosen.length).toBeLessThanOrEqual(greedy.chosen.length);
        expect(greedy.lowerBound).toBeLessThanOrEqual(exact.chosen.length);
        // Brute force: no smaller subset covers.
        for (let mask = 0; mask < 1 << cands; mask++) {
          const set = [...Array(cands).keys()].filter((c) => mask & (1 << c));
          if (set.length < exact.chosen.length) expect(covers(set), `subset ${set}`).toBe(false);
        }
      }),
      { numRuns: 300, seed: 42 },
    );
  });
});
