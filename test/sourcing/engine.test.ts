// Table-driven scenarios for the pure engine: one row = stock per location, an order, rules
// → the expected plan, written as "L1 WH1×2 | L2 ST-PARIS×1 bo WH1×2@2026-11-30 −1".
// Adding a case is one row; a sourcing bug is a missing row.
import { describe, expect, it } from 'vitest';
import { DEMO_CARRIER_CONFIG } from '../../src/carriers/config.ts';
import { source } from '../../src/sourcing/engine.ts';
import { makePool, type RuleSet, type SourcingResult, type Strategy } from '../../src/sourcing/model.ts';
import { DEFAULT_RULE_SET } from '../../src/sourcing/presets.ts';
import { candidates, type Future, NOW, only, order, type OrderSpec, type Stock } from './network.ts';

function summary(r: SourcingResult): string {
  return r.plan.lines
    .map((l) => {
      const parts = [l.lineId, ...l.allocations.map((a) => `${a.location}×${a.quantity}`)];
      for (const b of l.backorders) parts.push(`bo ${b.location}×${b.quantity}@${b.promiseDate}`);
      if (l.unfilled) parts.push(`−${l.unfilled}`);
      return parts.join(' ');
    })
    .join(' | ');
}

const wh: Strategy = {
  id: 'wh',
  when: {},
  filters: { locationTypes: ['warehouse'] },
  ranking: { mode: 'lexicographic', criteria: [{ criterion: 'priority' }] },
  split: { policy: 'minimise' },
  fallbacks: [],
};
const byDistance = { mode: 'lexicographic' as const, criteria: [{ criterion: 'distance' as const }] };

interface Row {
  name: string;
  stock: Stock;
  order: OrderSpec;
  rules: RuleSet;
  expect: string;
  future?: Future;
  capacity?: Record<string, number>;
  excluded?: string[];
  /** Extra checks on the explanation. */
  check?: (r: SourcingResult) => void;
}

const verdict = (r: SourcingResult, loc: string, attempt = 0) => r.explanation.attempts[attempt].candidates.find((c) => c.location === loc);

const rows: Row[] = [
  // ---- filters ----
  {
    name: 'filter: location types',
    stock: { WH1: { A1: 5 }, 'ST-LYON': { A1: 2 }, 'ST-PARIS': { A1: 1 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    rules: only({ filters: { locationTypes: ['store'] }, ranking: byDistance }),
    expect: 'L1 ST-PARIS×1',
    check: (r) => expect(verdict(r, 'WH1')?.reason).toMatch(/location type: warehouse not in store/),
  },
  {
    name: 'filter: capabilities auto (home needs ships)',
    stock: { 'ST-LILLE': { A1: 3 }, WH2: { A1: 3 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    rules: only({ filters: { capabilities: 'auto' }, ranking: byDistance }),
    expect: 'L1 WH2×1',
    check: (r) => expect(verdict(r, 'ST-LILLE')?.reason).toMatch(/lacks ships/),
  },
  {
    name: 'filter: explicit capabilities',
    stock: { WH1: { A1: 5 }, 'ST-LILLE': { A1: 2 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    rules: only({ filters: { capabilities: ['click_and_collect'] } }),
    expect: 'L1 ST-LILLE×1',
  },
  {
    name: 'filter: same country',
    stock: { 'SUP-FR': { A1: 5 }, 'SUP-IT': { A1: 5 } },
    order: { lines: [['A1', 1]], to: 'milano', country: 'IT' },
    rules: only({ filters: { sameCountry: true } }),
    expect: 'L1 SUP-IT×1',
    check: (r) => expect(verdict(r, 'SUP-FR')?.reason).toMatch(/same country: FR ≠ IT/),
  },
  {
    name: 'filter: maximum distance',
    stock: { 'ST-LYON': { A1: 5 }, 'ST-VERSAILLES': { A1: 1 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    rules: only({ filters: { maxDistanceKm: 50 } }),
    expect: 'L1 ST-VERSAILLES×1',
    check: (r) => expect(verdict(r, 'ST-LYON')?.reason).toMatch(/maximum distance: 39\d\.\d km > 50 km/),
  },
  {
    name: 'filter: maximum distance is not applied when the destination is unknown, and says so',
    stock: { 'ST-LYON': { A1: 5 }, 'ST-VERSAILLES': { A1: 1 } },
    order: { lines: [['A1', 1]], to: null },
    rules: only({ filters: { maxDistanceKm: 50 } }),
    expect: 'L1 ST-LYON×1',
    check: (r) => {
      expect(r.explanation.destination.distance).toBe('ignored');
      expect(r.explanation.attempts[0].notes.join()).toMatch(/50 km limit is not applied/);
    },
  },
  {
    name: 'filter: maximum distance rejects a location without coordinates',
    stock: { MKP: { A1: 5 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    rules: only({ filters: { maxDistanceKm: 5000 } }),
    expect: 'L1 −1',
    check: (r) => expect(verdict(r, 'MKP')?.reason).toMatch(/no coordinates/),
  },
  {
    name: 'filter: full order only',
    stock: { WH1: { A1: 2 }, WH2: { A1: 2, B1: 1 } },
    order: { lines: [['A1', 2], ['B1', 1]], to: 'paris' },
    rules: only({ filters: { fullOrderOnly: true } }),
    expect: 'L1 WH2×2 | L2 WH2×1',
    check: (r) => expect(verdict(r, 'WH1')?.reason).toMatch(/full order only: has 0 of 1 B1/),
  },
  {
    name: 'filter: under capacity',
    stock: { WH1: { A1: 2 }, WH2: { A1: 2 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    capacity: { WH1: 0 },
    rules: only({ filters: { underCapacity: true } }),
    expect: 'L1 WH2×1',
    check: (r) => expect(verdict(r, 'WH1')?.outcome).toBe('over_capacity'),
  },
  {
    name: 'filter: capacity is ignored without underCapacity',
    stock: { WH1: { A1: 2 }, WH2: { A1: 2 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    capacity: { WH1: 0 },
    rules: only({}),
    expect: 'L1 WH1×1',
  },
  {
    name: 'filter: strategy exclude list',
    stock: { WH1: { A1: 2 }, WH2: { A1: 2 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    rules: only({ filters: { excludeLocations: ['WH1'] } }),
    expect: 'L1 WH2×1',
  },
  {
    name: 'filter: the order excludes a location (Order in Store at ST-PARIS)',
    stock: { 'ST-PARIS': { A1: 2 }, 'ST-VERSAILLES': { A1: 2 } },
    order: { lines: [['A1', 1]], to: 'paris', exclude: ['ST-PARIS'] },
    rules: only({ ranking: byDistance }),
    expect: 'L1 ST-VERSAILLES×1',
    check: (r) => expect(verdict(r, 'ST-PARIS')?.outcome).toBe('excluded'),
  },
  {
    name: 'filter: a location excluded by the network',
    stock: { WH1: { A1: 2 }, WH2: { A1: 2 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    excluded: ['WH1'],
    rules: only({}),
    expect: 'L1 WH2×1',
  },
  {
    name: 'filter: only the pickup store',
    stock: { 'ST-PARIS': { A1: 2 }, WH1: { A1: 9 } },
    order: { lines: [['A1', 1]], mode: 'click_and_collect', pickup: 'ST-PARIS' },
    rules: only({ filters: { atPickupLocation: true, capabilities: 'auto' } }),
    expect: 'L1 ST-PARIS×1',
    check: (r) => expect(r.plan.shipments[0]).toMatchObject({ mode: 'click_and_collect', shipmentCost: 0 }),
  },
  {
    // Capabilities 'auto': click & collect needs click_and_collect at the pickup location and
    // ships everywhere else. WH1 ships but is no pickup point: as the pickup location it fails.
    name: 'filter: capabilities auto at the pickup location (no click & collect there)',
    stock: { WH1: { A1: 5 }, 'ST-PARIS': { A1: 1 } },
    order: { lines: [['A1', 1]], mode: 'click_and_collect', pickup: 'WH1' },
    rules: only({ filters: { capabilities: 'auto' }, ranking: byDistance }),
    expect: 'L1 ST-PARIS×1',
    check: (r) => expect(verdict(r, 'WH1')?.reason).toMatch(/lacks click_and_collect/),
  },
  {
    // ST-LILLE does not ship, but as the pickup location it only needs click_and_collect.
    name: 'filter: capabilities auto at the pickup location (no shipping needed there)',
    stock: { 'ST-LILLE': { A1: 1 }, WH1: { A1: 5 } },
    order: { lines: [['A1', 1]], mode: 'click_and_collect', pickup: 'ST-LILLE' },
    rules: only({ filters: { capabilities: 'auto' }, ranking: byDistance }),
    expect: 'L1 ST-LILLE×1',
  },
  // ---- criteria ----
  {
    name: 'criterion: distance',
    stock: { 'ST-PARIS': { A1: 1 }, 'ST-LYON': { A1: 1 } },
    order: { lines: [['A1', 1]], to: 'lyon' },
    rules: only({ ranking: byDistance }),
    expect: 'L1 ST-LYON×1',
    check: (r) => expect(verdict(r, 'ST-PARIS')?.reason).toMatch(/lost on distance: 39\d\.\d km vs 1\.\d km \(ST-LYON\)/),
  },
  {
    name: 'criterion: priority (higher first)',
    stock: { WH1: { A1: 1 }, WH2: { A1: 1 } },
    order: { lines: [['A1', 1]], to: 'lyon' },
    rules: only({}),
    expect: 'L1 WH1×1',
    check: (r) => expect(verdict(r, 'WH2')?.reason).toMatch(/lost on priority: priority 90 vs priority 100/),
  },
  {
    name: 'criterion: stock depth after allocation',
    stock: { WH1: { A1: 3 }, WH2: { A1: 10 } },
    order: { lines: [['A1', 2]], to: 'paris' },
    rules: only({ ranking: { mode: 'lexicographic', criteria: [{ criterion: 'stock_depth' }] } }),
    expect: 'L1 WH2×2',
    check: (r) => expect(verdict(r, 'WH1')?.criteria).toEqual({ stock_depth: 1 }),
  },
  {
    name: 'criterion: shipment cost',
    stock: { 'SUP-FR': { A1: 1 }, 'SUP-IT': { A1: 1 } },
    order: { lines: [['A1', 1]], to: 'milano' },
    rules: only({ ranking: { mode: 'lexicographic', criteria: [{ criterion: 'shipment_cost' }] } }),
    expect: 'L1 SUP-FR×1',
  },
  {
    name: 'criterion: lead time beats a cheaper supplier',
    stock: { WH2: { A1: 1 }, 'SUP-FR': { A1: 1 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    rules: only({ ranking: { mode: 'lexicographic', criteria: [{ criterion: 'lead_time' }, { criterion: 'shipment_cost' }] } }),
    expect: 'L1 WH2×1',
    check: (r) => expect(verdict(r, 'SUP-FR')?.reason).toMatch(/lost on lead_time: 2 day\(s\) vs 0 day\(s\)/),
  },
  {
    name: 'criterion: number of shipments (a location holding both lines wins)',
    stock: { WH1: { A1: 1 }, WH2: { A1: 1, B1: 1 } },
    order: { lines: [['A1', 1], ['B1', 1]], to: 'paris' },
    rules: only({ ranking: { mode: 'lexicographic', criteria: [{ criterion: 'shipments' }, { criterion: 'priority' }] }, split: { policy: 'max', maxShipments: 5 } }),
    expect: 'L1 WH2×1 | L2 WH2×1',
  },
  {
    name: 'criterion: without the shipments criterion, rank order splits',
    stock: { WH1: { A1: 1 }, WH2: { A1: 1, B1: 1 } },
    order: { lines: [['A1', 1], ['B1', 1]], to: 'paris' },
    rules: only({ split: { policy: 'max', maxShipments: 5 } }),
    expect: 'L1 WH1×1 | L2 WH2×1',
  },
  {
    name: 'criterion: tolerance makes close distances equal, then priority decides',
    stock: { 'ST-PARIS': { A1: 1 }, WH1: { A1: 1 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    rules: only({ ranking: { mode: 'lexicographic', criteria: [{ criterion: 'distance', tolerance: 30 }, { criterion: 'priority' }] } }),
    expect: 'L1 WH1×1',
  },
  {
    name: 'criterion: weighted, cost heavy',
    stock: { 'ST-PARIS': { A1: 1 }, WH1: { A1: 1 }, 'SUP-FR': { A1: 1 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    rules: only({ ranking: { mode: 'weighted', criteria: [{ criterion: 'distance', weight: 1 }, { criterion: 'shipment_cost', weight: 3 }] } }),
    expect: 'L1 SUP-FR×1',
    check: (r) => expect(verdict(r, 'ST-PARIS')?.reason).toMatch(/lost on weighted score: 0\.750 vs 0\.250 \(SUP-FR\)/),
  },
  {
    name: 'criterion: weighted, distance heavy',
    stock: { 'ST-PARIS': { A1: 1 }, WH1: { A1: 1 }, 'SUP-FR': { A1: 1 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    rules: only({ ranking: { mode: 'weighted', criteria: [{ criterion: 'distance', weight: 3 }, { criterion: 'shipment_cost', weight: 1 }] } }),
    expect: 'L1 WH1×1',
  },
  // ---- split policies ----
  {
    name: 'split none: the one location holding everything',
    stock: { WH1: { A1: 1 }, WH2: { B1: 1 }, 'ST-LYON': { A1: 1, B1: 1 } },
    order: { lines: [['A1', 1], ['B1', 1]], to: 'paris' },
    rules: only({ split: { policy: 'none' } }),
    expect: 'L1 ST-LYON×1 | L2 ST-LYON×1',
    check: (r) => expect(verdict(r, 'WH1')?.reason).toMatch(/cannot hold the whole group/),
  },
  {
    name: 'split none: nobody holds everything → nothing allocated',
    stock: { WH1: { A1: 1 }, WH2: { B1: 1 } },
    order: { lines: [['A1', 1], ['B1', 1]], to: 'paris' },
    rules: only({ split: { policy: 'none' } }),
    expect: 'L1 −1 | L2 −1',
  },
  {
    name: 'split minimise: 2 shipments where rank order needs 3',
    stock: { WH1: { A1: 1 }, WH2: { B1: 1 }, 'ST-PARIS': { C1: 1 }, 'ST-LYON': { B1: 1, C1: 1 } },
    order: { lines: [['A1', 1], ['B1', 1], ['C1', 1]], to: 'paris' },
    rules: only({}),
    expect: 'L1 WH1×1 | L2 ST-LYON×1 | L3 ST-LYON×1',
    check: (r) => expect(r.explanation.attempts[0].split).toMatchObject({ shipments: 2, method: 'exact' }),
  },
  {
    name: 'split minimise: one line split over two locations by rank',
    stock: { WH1: { A1: 3 }, WH2: { A1: 4 } },
    order: { lines: [['A1', 5]], to: 'paris' },
    rules: only({}),
    expect: 'L1 WH1×3 WH2×2',
  },
  {
    name: 'split max 2: rank order fits',
    stock: { WH1: { A1: 1 }, WH2: { B1: 1 }, 'ST-LYON': { A1: 1, B1: 1 } },
    order: { lines: [['A1', 1], ['B1', 1]], to: 'paris' },
    rules: only({ split: { policy: 'max', maxShipments: 2 } }),
    expect: 'L1 WH1×1 | L2 WH2×1',
  },
  {
    name: 'split max 2: rank order needs 3, the cover of 2 is used',
    stock: { WH1: { A1: 1 }, WH2: { B1: 1 }, 'ST-PARIS': { C1: 1 }, 'ST-LYON': { B1: 1, C1: 1 } },
    order: { lines: [['A1', 1], ['B1', 1], ['C1', 1]], to: 'paris' },
    rules: only({ split: { policy: 'max', maxShipments: 2 } }),
    expect: 'L1 WH1×1 | L2 ST-LYON×1 | L3 ST-LYON×1',
  },
  {
    name: 'split max 1: the rest is left to fallbacks',
    stock: { WH1: { A1: 1 }, WH2: { B1: 1 } },
    order: { lines: [['A1', 1], ['B1', 1]], to: 'paris' },
    rules: only({ split: { policy: 'max', maxShipments: 1 } }),
    expect: 'L1 WH1×1 | L2 −1',
  },
  // ---- fallbacks ----
  {
    name: 'fallback: another strategy',
    stock: { WH1: { A1: 1 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    rules: only({ filters: { locationTypes: ['store'] }, fallbacks: [{ type: 'strategy', strategy: 'wh' }] }, [wh]),
    expect: 'L1 WH1×1',
    check: (r) => {
      expect(r.explanation.attempts.map((a) => a.strategy)).toEqual(['main', 'wh']);
      expect(r.explanation.lines[0].fallbacks).toEqual(["strategy 'wh'"]);
    },
  },
  {
    name: 'fallback: supplier drop-ship (fastest, then cheapest)',
    stock: { 'SUP-FR': { A1: 5 }, 'SUP-IT': { A1: 5 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    rules: only({ filters: { locationTypes: ['warehouse'] }, fallbacks: [{ type: 'dropship' }] }),
    expect: 'L1 SUP-FR×1',
  },
  {
    name: 'fallback: the remainder of a partly filled line',
    stock: { WH1: { A1: 3 }, 'SUP-FR': { A1: 5 } },
    order: { lines: [['A1', 5]], to: 'paris' },
    rules: only({ filters: { locationTypes: ['warehouse'] }, fallbacks: [{ type: 'dropship' }] }),
    expect: 'L1 WH1×3 SUP-FR×2',
  },
  {
    name: 'fallback: backorder on future stock within the horizon',
    stock: {},
    future: { WH1: { Z1: [[5, 10]] }, WH2: { Z1: [[2, 1]] } },
    order: { lines: [['Z1', 2]], to: 'paris' },
    rules: only({ fallbacks: [{ type: 'backorder', horizonDays: 30 }] }),
    expect: 'L1 bo WH2×1@2026-11-27 bo WH1×1@2026-11-30',
    check: (r) => expect(r.plan.shipments.filter((s) => s.backorder).map((s) => [s.location, s.readyDate])).toEqual([['WH2', '2026-11-27'], ['WH1', '2026-11-30']]),
  },
  {
    name: 'fallback: backorder ignores supply beyond the horizon',
    stock: {},
    future: { WH1: { Z1: [[45, 10]] } },
    order: { lines: [['Z1', 2]], to: 'paris' },
    rules: only({ fallbacks: [{ type: 'backorder', horizonDays: 30 }] }),
    expect: 'L1 −2',
  },
  {
    name: 'fallback: backorder only for backorderable skus',
    stock: {},
    future: { WH1: { A1: [[5, 10]] } },
    order: { lines: [['A1', 2]], to: 'paris' },
    rules: only({ fallbacks: [{ type: 'backorder', horizonDays: 30 }] }),
    expect: 'L1 −2',
    check: (r) => expect(r.explanation.attempts[1].notes).toEqual(['A1: not backorderable']),
  },
  {
    name: 'fallback: unfilled stops the chain',
    stock: { 'SUP-FR': { A1: 5 } },
    order: { lines: [['A1', 1]], to: 'paris' },
    rules: only({ filters: { locationTypes: ['warehouse'] }, fallbacks: [{ type: 'unfilled' }] }),
    expect: 'L1 −1',
    check: (r) => expect(r.explanation.lines[0].fallbacks).toEqual(['left unfilled']),
  },
  {
    name: 'conditions: no matching strategy leaves the line unfilled, explained',
    stock: { WH1: { A1: 5 } },
    order: { lines: [['A1', 1]], to: 'paris', channel: 'pos' },
    rules: only({ when: { channels: ['web'] } }),
    expect: 'L1 −1',
    check: (r) => expect(r.explanation.lines[0].why).toMatch(/no strategy/),
  },
  {
    name: 'conditions: order value selects the strategy',
    stock: { WH1: { A1: 5 }, 'ST-PARIS': { A1: 5 } },
    order: { lines: [['A1', 1]], to: 'paris', value: 50_000 },
    rules: only({ when: { maxValue: 20_000 }, filters: { locationTypes: ['store'] } }, [{ ...wh, id: 'big' }]),
    expect: 'L1 WH1×1',
  },
  {
    name: 'conditions: sku tag selects the strategy per line',
    stock: { WH1: { A2: 5, A1: 5 }, 'ST-PARIS': { A1: 5, A2: 5 } },
    order: { lines: [['A1', 1], ['A2', 1]], to: 'paris' },
    rules: only({ when: { skuTags: ['fragile'] }, filters: { locationTypes: ['store'] } }, [{ ...wh, id: 'rest' }]),
    expect: 'L1 WH1×1 | L2 ST-PARIS×1',
  },
  // ---- presets (the demo's default rule set) ----
  {
    name: 'preset 1: warehouse first for class A on home delivery',
    stock: { WH1: { A1: 10 }, 'ST-PARIS': { A1: 10 } },
    order: { lines: [['A1', 2]], to: 'paris' },
    rules: DEFAULT_RULE_SET,
    expect: 'L1 WH1×2',
    check: (r) => expect(r.explanation.strategies[0].strategy).toBe('warehouse-first-a'),
  },
  {
    name: 'preset 1: class A with empty warehouses falls back to the nearest store',
    stock: { 'ST-PARIS': { A1: 10 }, 'ST-VERSAILLES': { A1: 10 } },
    order: { lines: [['A1', 2]], to: 'paris' },
    rules: DEFAULT_RULE_SET,
    expect: 'L1 ST-PARIS×2',
  },
  {
    name: 'preset 2: click & collect at S when S holds the whole order',
    stock: { 'ST-PARIS': { A1: 1, B1: 1 }, 'ST-VERSAILLES': { A1: 5, B1: 5 }, WH1: { A1: 9, B1: 9 } },
    order: { lines: [['A1', 1], ['B1', 1]], mode: 'click_and_collect', pickup: 'ST-PARIS' },
    rules: DEFAULT_RULE_SET,
    expect: 'L1 ST-PARIS×1 | L2 ST-PARIS×1',
    check: (r) => expect(r.plan.shipments.map((s) => s.mode)).toEqual(['click_and_collect']),
  },
  {
    name: 'preset 2: else the nearest store within 30 km, transferred to S',
    stock: { 'ST-PARIS': { A1: 1 }, 'ST-VERSAILLES': { A1: 5, B1: 5 }, WH1: { A1: 9, B1: 9 } },
    order: { lines: [['A1', 1], ['B1', 1]], mode: 'click_and_collect', pickup: 'ST-PARIS' },
    rules: DEFAULT_RULE_SET,
    expect: 'L1 ST-VERSAILLES×1 | L2 ST-VERSAILLES×1',
    check: (r) => {
      expect(r.plan.shipments.map((s) => s.mode)).toEqual(['store_transfer']);
      expect(r.explanation.attempts.map((a) => a.strategy)).toEqual(['cc-pickup-store', 'cc-nearby-store']);
    },
  },
  {
    name: 'preset 2: else the warehouse, shipping to S (nearby store holds only part)',
    stock: { 'ST-VERSAILLES': { A1: 5 }, WH1: { A1: 9, B1: 9 } },
    order: { lines: [['A1', 1], ['B1', 1]], mode: 'click_and_collect', pickup: 'ST-PARIS' },
    rules: DEFAULT_RULE_SET,
    expect: 'L1 WH1×1 | L2 WH1×1',
    check: (r) => expect(r.plan.shipments[0]).toMatchObject({ location: 'WH1', mode: 'store_transfer' }),
  },
  {
    name: 'preset 2: no store within 30 km of Lyon holds it → warehouse',
    stock: { 'ST-PARIS': { B1: 5 }, WH2: { B1: 1 } },
    order: { lines: [['B1', 1]], mode: 'click_and_collect', pickup: 'ST-LYON' },
    rules: DEFAULT_RULE_SET,
    expect: 'L1 WH2×1',
  },
  {
    name: 'preset 3: supplier stock for orders shipped abroad',
    stock: { WH1: { A1: 10 }, 'SUP-IT': { A1: 5 } },
    order: { lines: [['A1', 1]], to: 'berlin', country: 'DE' },
    rules: DEFAULT_RULE_SET,
    expect: 'L1 SUP-IT×1',
    check: (r) => expect(r.explanation.strategies[0].why).toMatch(/destination DE is abroad/),
  },
  {
    name: 'preset 3: abroad without supplier stock → the warehouse',
    stock: { WH1: { A1: 10 } },
    order: { lines: [['A1', 1]], to: 'berlin', country: 'DE' },
    rules: DEFAULT_RULE_SET,
    expect: 'L1 WH1×1',
  },
  {
    name: 'preset 4: ship-from-store for slow movers near the customer',
    stock: { 'ST-PARIS': { C1: 2 }, WH1: { C1: 50 } },
    order: { lines: [['C1', 1]], to: 'paris' },
    rules: DEFAULT_RULE_SET,
    expect: 'L1 ST-PARIS×1',
  },
  {
    name: 'preset 4: no store near Marseille → the warehouse',
    stock: { 'ST-PARIS': { C1: 2 }, WH1: { C1: 50 } },
    order: { lines: [['C1', 1]], to: 'marseille' },
    rules: DEFAULT_RULE_SET,
    expect: 'L1 WH1×1',
  },
  {
    name: 'presets: a mixed order sources each line by its own strategy',
    stock: { 'ST-PARIS': { C1: 2, A1: 3 }, WH1: { C1: 50, A1: 10 } },
    order: { lines: [['A1', 1], ['C1', 1]], to: 'paris' },
    rules: DEFAULT_RULE_SET,
    expect: 'L1 WH1×1 | L2 ST-PARIS×1',
    check: (r) => expect(r.explanation.strategies.map((s) => s.strategy)).toEqual(['warehouse-first-a', 'slow-movers-store']),
  },
  {
    name: 'presets: in store takes only the store the customer is in',
    stock: { 'ST-LYON': { B1: 1 }, WH2: { B1: 5 } },
    order: { lines: [['B1', 2]], mode: 'in_store', pickup: 'ST-LYON' },
    rules: DEFAULT_RULE_SET,
    expect: 'L1 ST-LYON×1 −1',
  },
];

describe('sourcing engine: scenarios', () => {
  it.each(rows.map((r) => [r.name, r] as const))('%s', (_, row) => {
    const cands = candidates(row.stock, { future: row.future, capacity: row.capacity, excluded: row.excluded });
    const r = source(order(row.order), cands, row.rules, NOW);
    expect(summary(r)).toBe(row.expect);
    // Every attempt names every candidate.
    for (const a of r.explanation.attempts) expect(a.candidates.map((c) => c.location).sort()).toEqual(cands.locations.map((c) => c.code).sort());
    row.check?.(r);
  });

  it('has at least 30 rows', () => expect(rows.length).toBeGreaterThanOrEqual(30));
});

// Carrier selection on the plan's shipments (the demo services; NOW is Wednesday 2026-11-25 09:00 UTC).
describe('sourcing engine: carriers on shipments', () => {
  const carrierRows: Array<{ name: string; stock: Stock; order: OrderSpec & { promisedBy?: string; level?: 'express' }; expect: Array<[string, string | null, string | null]> }> = [
    { name: 'home, no promise: the cheapest (home standard, 2 business days)', stock: { WH1: { A1: 5 } }, order: { lines: [['A1', 1]], to: 'paris' }, expect: [['WH1', 'home_standard', '2026-11-27']] },
    { name: 'home, promised tomorrow: express keeps it', stock: { WH1: { A1: 5 } }, order: { lines: [['A1', 1]], to: 'paris', promisedBy: '2026-11-26T22:59:59Z' }, expect: [['WH1', 'home_express', '2026-11-26']] },
    { name: 'home, express requested', stock: { WH1: { A1: 5 } }, order: { lines: [['A1', 1]], to: 'paris', level: 'express' }, expect: [['WH1', 'home_express', '2026-11-26']] },
    { name: 'relay point', stock: { WH1: { A1: 5 } }, order: { lines: [['A1', 1]], to: 'paris', mode: 'pickup_point' }, expect: [['WH1', 'relay_point', '2026-12-01']] },
    { name: 'abroad from the Italian supplier: international, ready after 2 handling days', stock: { 'SUP-IT': { A1: 5 } }, order: { lines: [['A1', 1]], to: 'berlin', country: 'DE' }, expect: [['SUP-IT', 'international', '2026-12-03']] },
    { name: 'click & collect from another store: the store shuttle', stock: { 'ST-VERSAILLES': { A1: 5 } }, order: { lines: [['A1', 1]], mode: 'click_and_collect', pickup: 'ST-PARIS' }, expect: [['ST-VERSAILLES', 'store_transfer', '2026-11-27']] },
    { name: 'click & collect at the store itself: no carrier', stock: { 'ST-PARIS': { A1: 5 } }, order: { lines: [['A1', 1]], mode: 'click_and_collect', pickup: 'ST-PARIS' }, expect: [['ST-PARIS', null, '2026-11-25']] },
  ];
  it.each(carrierRows.map((r) => [r.name, r] as const))('%s', (_, row) => {
    const o = order(row.order);
    o.promisedBy = row.order.promisedBy ? Date.parse(row.order.promisedBy) : null;
    o.serviceLevel = row.order.level ?? null;
    const r = source(o, candidates(row.stock), DEFAULT_RULE_SET, NOW, DEMO_CARRIER_CONFIG);
    expect(r.plan.shipments.map((s) => [s.location, s.carrier?.service ?? null, s.carrier?.estimatedDelivery ?? null])).toEqual(row.expect);
    expect(r.explanation.carriers).toHaveLength(r.plan.shipments.length);
  });
});

describe('sourcing engine: explanations built on demand', () => {
  it('an explanation read after other plans ran is the one read at once', () => {
    const stock = { WH1: { A1: 3 }, 'ST-PARIS': { A1: 2 }, 'ST-LYON': { A1: 1 }, 'SUP-FR': { A1: 9 } };
    const first = () => source(order({ lines: [['A1', 1]], to: 'paris', exclude: ['ST-PARIS'] }), candidates(stock, { excluded: ['MKP'] }), DEFAULT_RULE_SET, NOW);
    const early = JSON.stringify(first());
    const late = first();
    // Other plans, on other networks and exclusions, reuse the engine's scratch buffers.
    for (const to of ['lyon', 'marseille', 'berlin'] as const) source(order({ lines: [['A1', 2], ['B1', 1]], to, exclude: ['WH1'] }), candidates({ WH2: { A1: 5 } }), DEFAULT_RULE_SET, NOW);
    expect(JSON.stringify(late)).toBe(early);
  });
});

describe('sourcing engine: split max N fills in rank order', () => {
  // `ahead` locations rank before the one holding B1 and hold only A1: once the best has given
  // A1, they give nothing. Few of them: the fill picks by scanning; many: by a full sort.
  const plan = (ahead: number) => {
    const pool = makePool(
      Array.from({ length: ahead + 2 }, (_, i) => ({
        code: `L${String(i).padStart(2, '0')}`,
        type: 'warehouse' as const,
        capabilities: ['ships' as const],
        country: 'FR',
        point: { latitude: 48 + i / 10, longitude: 2 },
        priority: 100 - i,
        shipmentCost: 400,
        remainingCapacity: null,
        excluded: false,
        future: new Map(),
        stock: (i <= ahead ? { A1: 2 } : { B1: 1 }) as Record<string, number>,
      })),
    );
    return source(order({ lines: [['A1', 1], ['B1', 1]], to: 'paris' }), pool, only({ split: { policy: 'max', maxShipments: 2 } }), NOW);
  };
  it.each([1, 3, 7, 8, 12])('%i locations that give nothing rank between the two that fill', (ahead) => {
    const r = plan(ahead);
    expect(summary(r)).toBe(`L1 L00×1 | L2 L${String(ahead + 1).padStart(2, '0')}×1`);
    expect(r.explanation.attempts[0].split).toMatchObject({ policy: 'max 2', method: 'ranked', shipments: 2 });
    expect(r.explanation.attempts[0].outcomes).toEqual({ chosen: 2, lost: ahead });
  });
});
