// Available-to-promise as a pure function of stock rows and a channel's exposure rules.
// The HTTP layer, the debouncer and the benchmarks all go through these functions.
import type { Capability, LocationType } from '../inventory/model.ts';

export interface ChannelRules {
  id: number;
  code: string;
  /** web, store, marketplace, call_centre (absent in hand-built rules). */
  type?: string;
  locationTypes: LocationType[];
  locationTags: string[];
  locationCodes: string[];
  excludeLocationCodes: string[];
  /** Units held back per location for this channel. */
  buffer: number;
  /** Share of each location's sellable stock the channel may see (0..100); null = all. */
  capPercent: number | null;
  futureStock: boolean;
  futureHorizonDays: number;
  active: boolean;
}

export interface LocationFacts {
  id: number;
  code: string;
  type: LocationType;
  tags: string[];
  country: string;
  latitude: number | null;
  longitude: number | null;
  capabilities: Capability[];
  defaultSafetyStock: number;
  active: boolean;
  /** Sourcing facts: higher priority is preferred; cost per shipment in minor units. */
  priority: number;
  shipmentCost: number;
  dailyCapacity: number | null;
}

/**
 * A channel sees an active location when it matches any include rule (type, tag or code)
 * and no exclude rule. A channel with no include rule at all sees every active location.
 */
export function exposes(rules: ChannelRules, loc: LocationFacts): boolean {
  if (!loc.active) return false;
  if (rules.excludeLocationCodes.includes(loc.code)) return false;
  const noInclude = rules.locationTypes.length === 0 && rules.locationTags.length === 0 && rules.locationCodes.length === 0;
  if (noInclude) return true;
  return (
    rules.locationTypes.includes(loc.type) ||
    rules.locationCodes.includes(loc.code) ||
    loc.tags.some((t) => rules.locationTags.includes(t))
  );
}

/** What one location offers one channel: sellable minus the buffer, capped at a share. */
export function channelAvailable(sellableUnits: number, rules: Pick<ChannelRules, 'buffer' | 'capPercent'>): number {
  if (sellableUnits <= 0) return 0;
  let v = sellableUnits - rules.buffer;
  if (rules.capPercent !== null) v = Math.min(v, Math.floor((sellableUnits * rules.capPercent) / 100));
  return v > 0 ? v : 0;
}

export interface SupplyLine {
  locationId: number;
  quantity: number;
  expectedAt: number;
}

export interface FutureBucket {
  expectedAt: number;
  quantity: number;
}

/**
 * Future stock a channel may promise: open supply at exposed locations expected within
 * the horizon, grouped by day, only for channels and skus that allow backorder/pre-order.
 */
export function futureAvailable(
  rules: ChannelRules,
  backorderable: boolean,
  supply: SupplyLine[],
  isExposed: (locationId: number) => boolean,
  now: number,
): FutureBucket[] {
  if (!rules.futureStock || !backorderable) return [];
  const horizon = now + rules.futureHorizonDays * 86_400_000;
  const byDay = new Map<number, number>();
  for (const s of supply) {
    if (s.quantity <= 0 || s.expectedAt > horizon || !isExposed(s.locationId)) continue;
    const day = Math.max(startOfUtcDay(s.expectedAt), startOfUtcDay(now));
    byDay.set(day, (byDay.get(day) ?? 0) + s.quantity);
  }
  return [...byDay.entries()].sort((a, b) => a[0] - b[0]).map(([expectedAt, quantity]) => ({ expectedAt, quantity }));
}

/** The first day by which `quantity` units can be promised, or null if never within the horizon. */
export function promiseDate(quantity: number, availableNow: number, future: FutureBucket[], now: number): number | null {
  if (quantity <= availableNow) return startOfUtcDay(now);
  let covered = availableNow;
  for (const b of future) {
    covered += b.quantity;
    if (covered >= quantity) return b.expectedAt;
  }
  return null;
}

export const startOfUtcDay = (t: number): number => t - (((t % 86_400_000) + 86_400_000) % 86_400_000);
