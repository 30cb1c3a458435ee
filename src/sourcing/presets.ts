// The default rule set: four presets from the retailer's world (issue #3), in the order a
// retailer would read them, plus a catch-all. It is what the demo publishes and what a new
// store starts with; every strategy is covered by a row in test/sourcing/engine.test.ts.
import type { RuleSet } from './model.ts';

export const CLICK_AND_COLLECT_RADIUS_KM = 30;

export const DEFAULT_RULE_SET: RuleSet = {
  name: 'default',
  settings: {
    homeCountry: 'FR',
    handlingDays: { warehouse: 0, store: 0, supplier: 2, marketplace: 1, reseller: 1 },
    exactSplitLimit: 16,
  },
  strategies: [
    {
      id: 'cc-pickup-store',
      description: 'Click & collect at store S: S itself when it holds the whole order.',
      when: { modes: ['click_and_collect'] },
      filters: { atPickupLocation: true, capabilities: 'auto', fullOrderOnly: true },
      ranking: { mode: 'lexicographic', criteria: [{ criterion: 'distance' }] },
      split: { policy: 'none' },
      fallbacks: [{ type: 'strategy', strategy: 'cc-nearby-store' }],
    },
    {
      id: 'cc-nearby-store',
      description: `Else the nearest store within ${CLICK_AND_COLLECT_RADIUS_KM} km of S that holds the whole order, with a store-to-store transfer to S.`,
      when: { modes: ['click_and_collect'] },
      filters: { locationTypes: ['store'], capabilities: 'auto', maxDistanceKm: CLICK_AND_COLLECT_RADIUS_KM, fullOrderOnly: true, underCapacity: true },
      ranking: { mode: 'lexicographic', criteria: [{ criterion: 'distance' }, { criterion: 'stock_depth' }] },
      split: { policy: 'none' },
      transferToPickup: true,
      fallbacks: [{ type: 'strategy', strategy: 'cc-warehouse' }],
    },
    {
      id: 'cc-warehouse',
      description: 'Else the warehouse, shipping to S.',
      when: { modes: ['click_and_collect'] },
      filters: { locationTypes: ['warehouse'], capabilities: 'auto' },
      ranking: { mode: 'lexicographic', criteria: [{ criterion: 'shipments' }, { criterion: 'priority' }, { criterion: 'distance' }] },
      split: { policy: 'minimise' },
      transferToPickup: true,
      fallbacks: [{ type: 'backorder', horizonDays: 30 }, { type: 'unfilled' }],
    },
    {
      id: 'in-store',
      description: 'Take now: only the store the customer stands in.',
      when: { modes: ['in_store'] },
      filters: { atPickupLocation: true, capabilities: 'auto' },
      ranking: { mode: 'lexicographic', criteria: [{ criterion: 'distance' }] },
      split: { policy: 'max', maxShipments: 1 },
      fallbacks: [{ type: 'unfilled' }],
    },
    {
      id: 'abroad-supplier',
      description: 'Orders shipped abroad: supplier stock first (drop-ship), then the warehouse.',
      when: { destination: 'abroad', modes: ['home', 'pickup_point'] },
      filters: { locationTypes: ['supplier'], capabilities: 'auto' },
      ranking: { mode: 'lexicographic', criteria: [{ criterion: 'shipments' }, { criterion: 'lead_time' }, { criterion: 'shipment_cost' }] },
      split: { policy: 'minimise' },
      fallbacks: [{ type: 'strategy', strategy: 'home-standard' }],
    },
    {
      id: 'warehouse-first-a',
      description: 'High-demand (class A) skus on home delivery: the warehouse first.',
      when: { modes: ['home', 'pickup_point'], demandClasses: ['A'] },
      filters: { locationTypes: ['warehouse'], capabilities: 'auto', underCapacity: true },
      ranking: { mode: 'lexicographic', criteria: [{ criterion: 'shipments' }, { criterion: 'priority' }, { criterion: 'distance' }] },
      split: { policy: 'minimise' },
      fallbacks: [{ type: 'strategy', strategy: 'home-standard' }],
    },
    {
      id: 'slow-movers-store',
      description: 'Slow movers (class C) near the customer: ship from a store within 150 km.',
      when: { modes: ['home', 'pickup_point'], demandClasses: ['C'], destination: 'domestic' },
      filters: { locationTypes: ['store'], capabilities: 'auto', maxDistanceKm: 150, underCapacity: true },
      ranking: {
        mode: 'weighted',
        criteria: [
          { criterion: 'distance', weight: 3 },
          { criterion: 'stock_depth', weight: 1 },
          { criterion: 'shipment_cost', weight: 1 },
        ],
      },
      split: { policy: 'max', maxShipments: 2 },
      fallbacks: [{ type: 'strategy', strategy: 'home-standard' }],
    },
    {
      id: 'home-standard',
      description: 'Everything else: warehouses and stores that ship, fewest shipments, then priority and distance.',
      when: {},
      filters: { locationTypes: ['warehouse', 'store'], capabilities: 'auto', underCapacity: true },
      ranking: { mode: 'lexicographic', criteria: [{ criterion: 'shipments' }, { criterion: 'priority' }, { criterion: 'distance', tolerance: 10 }] },
      split: { policy: 'minimise' },
      fallbacks: [{ type: 'dropship' }, { type: 'backorder', horizonDays: 30 }, { type: 'unfilled' }],
    },
  ],
};
