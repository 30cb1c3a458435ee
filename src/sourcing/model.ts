// The sourcing vocabulary (DOMAIN §3): what the pure engine receives (an order, candidate
// locations with their stock, a rule set) and what it returns (a plan and its explanation).
// Plain data only: the engine, the service, the API and the simulator all speak these types.
import type { Capability, LocationType } from '../inventory/model.ts';

export const DELIVERY_MODES = ['home', 'pickup_point', 'click_and_collect', 'in_store'] as const;
export type DeliveryMode = (typeof DELIVERY_MODES)[number];

export const CRITERIA = ['distance', 'priority', 'stock_depth', 'shipment_cost', 'lead_time', 'shipments'] as const;
export type Criterion = (typeof CRITERIA)[number];

/** Which way is better for each criterion. */
export const CRITERION_BETTER: Record<Criterion, 'lower' | 'higher'> = {
  distance: 'lower',
  priority: 'higher',
  stock_depth: 'higher',
  shipment_cost: 'lower',
  lead_time: 'lower',
  shipments: 'lower',
};

export const CRITERION_UNIT: Record<Criterion, string> = {
  distance: 'km',
  priority: '',
  stock_depth: 'units left',
  shipment_cost: 'minor units',
  lead_time: 'days',
  shipments: 'lines it cannot hold',
};

export type GeoPrecision = 'coordinates' | 'postal_code' | 'city' | 'region' | 'not_found';

export interface GeoPoint {
  latitude: number;
  longitude: number;
}

// ---- input ---------------------------------------------------------------------------

export interface SourcingLine {
  lineId: string;
  sku: string;
  quantity: number;
  demandClass: string | null;
  tags: string[];
  backorderable: boolean;
  /** Unit weight in grams, for carrier selection; null when unknown. */
  weightG: number | null;
}

export interface SourcingDestination {
  mode: DeliveryMode;
  country: string;
  /** Where the goods go (the customer, the relay point or the pickup store). */
  point: GeoPoint | null;
  precision: GeoPrecision;
  /** Human text on how the point was found ("postal code 69003 → Lyon"). */
  geoSource: string;
  /** The store for click & collect and in-store orders. */
  pickupLocation: string | null;
}

export interface SourcingOrder {
  channel: string;
  /** Order value in minor units (conditions on value). */
  value: number;
  currency: string;
  lines: SourcingLine[];
  destination: SourcingDestination;
  /** Locations that must not fulfil this order (Order in Store at S, re-sourcing after a rejection). */
  excludeLocations: string[];
  /** A carrier service the retailer pinned for this order, if any. */
  pinnedCarrierService?: string | null;
  serviceLevel?: 'standard' | 'express' | null;
  /** The delivery deadline promised to the customer (epoch ms), if any: carriers must keep it. */
  promisedBy?: number | null;
}

export interface FutureStock {
  /** Day (epoch ms, start of UTC day) the units are expected. */
  expectedAt: number;
  quantity: number;
}

export interface Candidate {
  code: string;
  type: LocationType;
  capabilities: Capability[];
  country: string;
  point: GeoPoint | null;
  priority: number;
  /** Cost per shipment in minor units. */
  shipmentCost: number;
  /** Shipments it can still take today; null = unlimited. */
  remainingCapacity: number | null;
  /** Excluded by the network (inactive, blocked); the order's own exclusions are separate. */
  excluded: boolean;
  /** Incoming supply per sku code, sorted by date. */
  future: Map<string, FutureStock[]>;
}

/**
 * The candidates of a plan and what each may promise now: a locations × skus table, so a plan
 * over 1,000 locations reads one typed array instead of 1,000 maps. Build it with makePool.
 */
export interface CandidatePool {
  locations: Candidate[];
  /** Column of each sku in `available`. */
  columns: Map<string, number>;
  /** available[location * columns.size + column]: units the channel may promise now. */
  available: Int32Array;
}

/** A pool from per-location stock maps (tests, simulations, small callers). */
export function makePool(locations: Array<Candidate & { stock?: Map<string, number> | Record<string, number> }>, skus?: string[]): CandidatePool {
  const list = skus ?? [...new Set(locations.flatMap((l) => (l.stock instanceof Map ? [...l.stock.keys()] : Object.keys(l.stock ?? {}))))];
  const columns = new Map(list.map((s, i) => [s, i]));
  const P = columns.size;
  const available = new Int32Array(locations.length * P);
  locations.forEach((l, i) => {
    const entries = l.stock instanceof Map ? [...l.stock] : Object.entries(l.stock ?? {});
    for (const [sku, q] of entries) {
      const col = columns.get(sku);
      if (col !== undefined && q > 0) available[i * P + col] = q;
    }
  });
  return { locations: locations.map(({ stock: _, ...c }) => c), columns, available };
}

// ---- rules ---------------------------------------------------------------------------

export interface StrategyConditions {
  channels?: string[];
  modes?: DeliveryMode[];
  /** 'domestic' = the destination is in the home country of the rule set. */
  destination?: 'domestic' | 'abroad';
  countries?: string[];
  demandClasses?: string[];
  skuTags?: string[];
  minValue?: number;
  maxValue?: number;
}

export interface StrategyFilters {
  locationTypes?: LocationType[];
  /** 'auto' = what the delivery mode needs (ships; click_and_collect at the pickup store). */
  capabilities?: 'auto' | Capability[];
  sameCountry?: boolean;
  maxDistanceKm?: number;
  /** Only the order's pickup store (click & collect at S, in store). */
  atPickupLocation?: boolean;
  /** The location must hold every line of the group in full. */
  fullOrderOnly?: boolean;
  underCapacity?: boolean;
  excludeLocations?: string[];
}

export interface RankingCriterion {
  criterion: Criterion;
  /** Weighted ranking: the criterion's weight (≥ 0). */
  weight?: number;
  /** Lexicographic ranking: values this close count as equal (e.g. 5 km). */
  tolerance?: number;
}

export interface Ranking {
  mode: 'lexicographic' | 'weighted';
  criteria: RankingCriterion[];
}

export type SplitPolicy = { policy: 'none' } | { policy: 'minimise' } | { policy: 'max'; maxShipments: number };

export type Fallback =
  | { type: 'strategy'; strategy: string }
  | { type: 'dropship' }
  | { type: 'backorder'; horizonDays: number }
  | { type: 'unfilled' };

export interface Strategy {
  id: string;
  description?: string;
  when: StrategyConditions;
  filters: StrategyFilters;
  ranking: Ranking;
  split: SplitPolicy;
  fallbacks: Fallback[];
  /** Goods fulfilled elsewhere travel to the pickup store (store-to-store transfer). */
  transferToPickup?: boolean;
}

export interface RuleSetSettings {
  /** The retailer's home country: 'domestic' vs 'abroad'. */
  homeCountry: string;
  /** Days a location type needs before goods can leave (supplier drop-ship is slower). */
  handlingDays: Partial<Record<LocationType, number>>;
  /** Above this many candidates holding stock, split minimisation is greedy (with a bound). */
  exactSplitLimit: number;
}

export interface RuleSet {
  name: string;
  settings: RuleSetSettings;
  strategies: Strategy[];
}

// ---- output --------------------------------------------------------------------------

export interface Allocation {
  location: string;
  quantity: number;
}

export interface Backorder {
  location: string;
  quantity: number;
  /** ISO date (YYYY-MM-DD) the units are expected: the promise. */
  promiseDate: string;
}

export interface PlanLine {
  lineId: string;
  sku: string;
  quantity: number;
  strategy: string | null;
  allocations: Allocation[];
  backorders: Backorder[];
  unfilled: number;
}

export interface ShipmentCarrier {
  service: string | null;
  cost: number | null;
  currency: string | null;
  estimatedDelivery: string | null;
  meetsPromise: boolean;
  reason: string;
}

export interface Shipment {
  location: string;
  locationType: LocationType;
  /** 'store_transfer' when goods travel to the pickup store before collection. */
  mode: DeliveryMode | 'store_transfer';
  destinationCountry: string;
  lines: Array<{ lineId: string; sku: string; quantity: number }>;
  /** ISO date goods can leave the location (handling time, future stock dates). */
  readyDate: string;
  weightG: number | null;
  distanceKm: number | null;
  shipmentCost: number;
  carrier: ShipmentCarrier | null;
  backorder: boolean;
}

export interface SourcingPlan {
  lines: PlanLine[];
  shipments: Shipment[];
  fillRate: number;
  complete: boolean;
}

export type CandidateOutcome = 'chosen' | 'filtered' | 'no_stock' | 'over_capacity' | 'lost' | 'not_needed' | 'excluded';

export interface CandidateVerdict {
  location: string;
  outcome: CandidateOutcome;
  reason: string;
  /** 1 = best-ranked among the candidates that passed the filters and hold stock. */
  rank?: number;
  /** The criteria values the ranking compared (chosen and lost candidates). */
  criteria?: Partial<Record<Criterion, number | null>>;
}

export interface AttemptExplanation {
  strategy: string;
  /** 'selected' for the strategy whose conditions matched; the fallback that led here otherwise. */
  via: string;
  lines: string[];
  split: { policy: string; shipments: number; method: 'single' | 'exact' | 'greedy' | 'ranked' | 'none'; lowerBound: number | null; note: string | null };
  /** How many candidates ended with each outcome. */
  outcomes: Partial<Record<CandidateOutcome, number>>;
  /** Every candidate's verdict, in candidate order (built when first read). */
  candidates: CandidateVerdict[];
  notes: string[];
}

export interface LineExplanation {
  lineId: string;
  strategy: string | null;
  why: string;
  chosen: Array<{ location: string; quantity: number; criteria: Partial<Record<Criterion, number | null>> }>;
  fallbacks: string[];
}

export interface CarrierNote {
  location: string;
  chosen: string | null;
  reason: string;
  rejected: Array<{ service: string; reason: string }>;
}

export interface SourcingExplanation {
  ruleSet: string;
  destination: { precision: GeoPrecision; source: string; distance: 'used' | 'approximate' | 'ignored' };
  strategies: Array<{ lines: string[]; strategy: string | null; why: string }>;
  lines: LineExplanation[];
  attempts: AttemptExplanation[];
  /** One per shipment, in plan order (empty when no carrier configuration was given). */
  carriers: CarrierNote[];
}

export interface SourcingResult {
  plan: SourcingPlan;
  explanation: SourcingExplanation;
}
