// A small, realistic network for the pure engine's tests: two warehouses, stores in and
// around Paris, Lyon and Lille, two suppliers (FR, IT) and a marketplace without coordinates.
import type { Capability, LocationType } from '../../src/inventory/model.ts';
import { type CandidatePool, type DeliveryMode, type GeoPoint, makePool, type RuleSet, type SourcingLine, type SourcingOrder, type Strategy } from '../../src/sourcing/model.ts';

export const NOW = Date.parse('2026-11-25T09:00:00Z');

interface Loc {
  type: LocationType;
  country: string;
  point: GeoPoint | null;
  priority: number;
  cost: number;
  caps: Capability[];
  capacity?: number | null;
}

const pt = (latitude: number, longitude: number): GeoPoint => ({ latitude, longitude });
const SHIPS: Capability[] = ['ships'];
const STORE: Capability[] = ['ships', 'click_and_collect', 'order_in_store'];

export const LOCATIONS: Record<string, Loc> = {
  WH1: { type: 'warehouse', country: 'FR', point: pt(49.0036, 2.5167), priority: 100, cost: 390, caps: SHIPS },
  WH2: { type: 'warehouse', country: 'FR', point: pt(45.7256, 5.0811), priority: 90, cost: 420, caps: SHIPS },
  'ST-PARIS': { type: 'store', country: 'FR', point: pt(48.8566, 2.3522), priority: 50, cost: 550, caps: STORE },
  'ST-VERSAILLES': { type: 'store', country: 'FR', point: pt(48.8049, 2.1204), priority: 50, cost: 550, caps: STORE },
  'ST-LYON': { type: 'store', country: 'FR', point: pt(45.764, 4.8357), priority: 50, cost: 500, caps: STORE },
  'ST-LILLE': { type: 'store', country: 'FR', point: pt(50.6292, 3.0573), priority: 50, cost: 500, caps: ['click_and_collect'] },
  'SUP-FR': { type: 'supplier', country: 'FR', point: pt(47.2184, -1.5536), priority: 10, cost: 250, caps: SHIPS },
  'SUP-IT': { type: 'supplier', country: 'IT', point: pt(45.4642, 9.19), priority: 10, cost: 300, caps: SHIPS },
  MKP: { type: 'marketplace', country: 'FR', point: null, priority: 5, cost: 450, caps: SHIPS },
};

export const PLACES: Record<string, GeoPoint> = {
  paris: pt(48.8534, 2.3488),
  lyon: pt(45.7485, 4.8467),
  marseille: pt(43.2965, 5.3698),
  milano: pt(45.4642, 9.19),
  berlin: pt(52.52, 13.405),
};

export type Stock = Record<string, Record<string, number>>;
export type Future = Record<string, Record<string, Array<[days: number, qty: number]>>>;

export function candidates(stock: Stock, opts: { future?: Future; capacity?: Record<string, number>; excluded?: string[] } = {}): CandidatePool {
  return makePool(Object.entries(LOCATIONS).map(([code, l]) => ({
    code,
    type: l.type,
    capabilities: l.caps,
    country: l.country,
    point: l.point,
    priority: l.priority,
    shipmentCost: l.cost,
    remainingCapacity: opts.capacity?.[code] ?? null,
    excluded: opts.excluded?.includes(code) ?? false,
    stock: stock[code] ?? {},
    future: new Map(
      Object.entries(opts.future?.[code] ?? {}).map(([sku, list]) => [sku, list.map(([d, q]) => ({ expectedAt: NOW - (NOW % 86_400_000) + d * 86_400_000, quantity: q }))]),
    ),
  })));
}

/** Sku attributes: A1/A2 high demand, B1 medium, C1/C2 slow movers; Z1 is backorderable. */
const SKUS: Record<string, Omit<SourcingLine, 'lineId' | 'sku' | 'quantity'>> = {
  A1: { demandClass: 'A', tags: [], backorderable: false, weightG: 500 },
  A2: { demandClass: 'A', tags: ['fragile'], backorderable: false, weightG: 800 },
  B1: { demandClass: 'B', tags: [], backorderable: false, weightG: 300 },
  C1: { demandClass: 'C', tags: [], backorderable: false, weightG: 1200 },
  C2: { demandClass: 'C', tags: ['bulky'], backorderable: false, weightG: 9000 },
  Z1: { demandClass: 'B', tags: [], backorderable: true, weightG: 400 },
};

export interface OrderSpec {
  lines: Array<[sku: string, qty: number]>;
  mode?: DeliveryMode;
  to?: keyof typeof PLACES | null;
  country?: string;
  pickup?: string;
  channel?: string;
  value?: number;
  exclude?: string[];
}

export function order(o: OrderSpec): SourcingOrder {
  const mode = o.mode ?? 'home';
  const atStore = mode === 'click_and_collect' || mode === 'in_store';
  const point = atStore && o.pickup ? LOCATIONS[o.pickup].point : o.to ? PLACES[o.to] : null;
  return {
    channel: o.channel ?? 'web',
    value: o.value ?? 10_000,
    currency: 'EUR',
    lines: o.lines.map(([sku, quantity], i) => ({ lineId: `L${i + 1}`, sku, quantity, ...SKUS[sku] })),
    destination: {
      mode,
      country: o.country ?? (atStore && o.pickup ? LOCATIONS[o.pickup].country : 'FR'),
      point,
      precision: point ? 'coordinates' : 'not_found',
      geoSource: point ? 'given coordinates' : 'address not found',
      pickupLocation: o.pickup ?? null,
    },
    excludeLocations: o.exclude ?? [],
  };
}

/** A one-strategy rule set (plus its fallback targets) for rows that test one feature. */
export function only(s: Partial<Strategy>, extra: Strategy[] = [], settings: Partial<RuleSet['settings']> = {}): RuleSet {
  return {
    name: 'test',
    settings: { homeCountry: 'FR', handlingDays: { warehouse: 0, store: 0, supplier: 2, marketplace: 1, reseller: 1 }, exactSplitLimit: 16, ...settings },
    strategies: [
      {
        id: 'main',
        when: {},
        filters: {},
        ranking: { mode: 'lexicographic', criteria: [{ criterion: 'priority' }] },
        split: { policy: 'minimise' },
        fallbacks: [],
        ...s,
      },
      ...extra,
    ],
  };
}
