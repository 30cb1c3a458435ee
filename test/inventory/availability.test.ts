// ATP rules through the real store and the projection, table-driven, on every backend:
// exposure (type, tag, list, exclude, inactive), buffer, cap, reservations, safety stock,
// quarantine, and future stock with its horizon and promise date. Each case also checks that
// the database path (used by the debouncer) computes the same total as the projection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishAvailabilityChanges } from '../../src/availability/debounce.ts';
import { queryAvailability } from '../../src/availability/service.ts';
import { type ChannelInput, upsertChannel } from '../../src/channels/channels.ts';
import { readEvents } from '../../src/events/outbox.ts';
import { upsertLocation } from '../../src/inventory/locations.ts';
import { upsertSkus } from '../../src/inventory/skus.ts';
import { applyDelta, reserve, setSafetyStock } from '../../src/inventory/stock.ts';
import { applySnapshotChunk } from '../../src/inventory/snapshot.ts';
import { upsertSupply } from '../../src/inventory/supply.ts';
import { BACKENDS, createTestEnv, type TestEnv } from '../support/backends.ts';
import { smallNetwork } from '../support/fixtures.ts';

type Loc = 'WH1' | 'ST-PARIS' | 'ST-LYON' | 'SUP1' | 'MKP' | 'OFF';
interface Case {
  name: string;
  stock: Partial<Record<Loc, number>>;
  reserved?: Partial<Record<Loc, number>>;
  safety?: Partial<Record<Loc, number>>;
  quarantine?: Partial<Record<Loc, number>>;
  channel?: Partial<ChannelInput>;
  backorderable?: boolean;
  supply?: Array<{ at: Loc; quantity: number; inDays: number }>;
  quantity?: number;
  expect: { available: number; future?: Array<[string, number]>; promise?: string | null };
}

const cases: Case[] = [
  { name: 'no include rule: every active location', stock: { WH1: 10, 'ST-PARIS': 3, SUP1: 2 }, expect: { available: 15 } },
  { name: 'by type', stock: { WH1: 10, 'ST-PARIS': 3 }, channel: { locationTypes: ['store'] }, expect: { available: 3 } },
  { name: 'by tag', stock: { WH1: 10, 'ST-PARIS': 3 }, channel: { locationTags: ['central'] }, expect: { available: 10 } },
  { name: 'by list', stock: { WH1: 10, 'ST-LYON': 5 }, channel: { locationCodes: ['ST-LYON'] }, expect: { available: 5 } },
  { name: 'exclude wins over include', stock: { WH1: 10, 'ST-PARIS': 3 }, channel: { locationTypes: ['warehouse', 'store'], excludeLocationCodes: ['WH1'] }, expect: { available: 3 } },
  { name: 'inactive location is never exposed', stock: { WH1: 10, OFF: 50 }, expect: { available: 10 } },
  { name: 'buffer per location', stock: { WH1: 10, 'ST-PARIS': 1 }, channel: { buffer: 2 }, expect: { available: 8 } },
  { name: 'cap as a share of stock', stock: { WH1: 11, 'ST-PARIS': 4 }, channel: { capPercent: 50 }, expect: { available: 7 } },
  { name: 'buffer and cap together', stock: { WH1: 10 }, channel: { buffer: 6, capPercent: 50 }, expect: { available: 4 } },
  { name: 'reservations, safety stock and quarantine are not sellable', stock: { WH1: 10 }, reserved: { WH1: 3 }, safety: { WH1: 2 }, quarantine: { WH1: 1 }, expect: { available: 4 } },
  { name: 'a location never goes below zero for the total', stock: { WH1: 10, 'ST-PARIS': 2 }, safety: { 'ST-PARIS': 5 }, expect: { available: 10 } },
  {
    name: 'future stock within the horizon, with a promise date',
    stock: { WH1: 2 },
    channel: { futureStock: true, futureHorizonDays: 10 },
    backorderable: true,
    supply: [
      { at: 'WH1', quantity: 7, inDays: 3 },
      { at: 'WH1', quantity: 5, inDays: 20 },
    ],
    quantity: 6,
    expect: { available: 2, future: [['2026-06-04', 7]], promise: '2026-06-04' },
  },
  { name: 'future stock ignored for a sku that is not backorderable', stock: { WH1: 2 }, channel: { futureStock: true, futureHorizonDays: 10 }, supply: [{ at: 'WH1', quantity: 7, inDays: 3 }], quantity: 6, expect: { available: 2, future: [], promise: null } },
  { name: 'future stock ignored for a channel without it', stock: { WH1: 2 }, backorderable: true, supply: [{ at: 'WH1', quantity: 7, inDays: 3 }], quantity: 2, expect: { available: 2, future: [], promise: '2026-06-01' } },
  { name: 'future stock at a location the channel does not see', stock: { WH1: 2 }, channel: { futureStock: true, futureHorizonDays: 10, locationTypes: ['store'] }, backorderable: true, supply: [{ at: 'WH1', quantity: 7, inDays: 3 }], expect: { available: 0, future: [] } },
];

describe.each(BACKENDS)('availability rules on %s', (backend) => {
  let env: TestEnv;
  let n = 0;
  beforeAll(async () => {
    env = await createTestEnv(backend);
    await smallNetwork(env.ctx);
    await upsertLocation(env.ctx, { code: 'OFF', name: 'Closed store', type: 'store', country: 'FR', active: false });
  });
  afterAll(async () => env?.close());

  it.each(cases)('$name', async (c) => {
    const { ctx, clock } = env;
    const sku = `ATP-${++n}`;
    const channel = `ch-${n}`;
    await upsertSkus(ctx, [{ code: sku, name: sku, backorderable: c.backorderable ?? false }]);
    await upsertChannel(ctx, { code: channel, name: channel, type: 'web', ...c.channel });
    const skuId = ctx.projection.sku(sku)?.id as number;
    for (const [loc, q] of Object.entries(c.stock)) {
      await applySnapshotChunk(ctx, ctx.projection.location(loc)?.id as number, clock.now() - 60_000, [{ skuId, onHand: q }], 'test', 'partial');
    }
    for (const [loc, q] of Object.entries(c.reserved ?? {})) await reserve(ctx, { location: loc, sku, quantity: q });
    for (const [loc, q] of Object.entries(c.safety ?? {})) await setSafetyStock(ctx, loc, sku, q);
    for (const [loc, q] of Object.entries(c.quarantine ?? {})) await applyDelta(ctx, { location: loc, sku, quantity: q, kind: 'quarantine', idempotencyKey: `q-${n}` }, 'test');
    for (const s of c.supply ?? []) await upsertSupply(ctx, { kind: 'purchase_order', reference: `PO-${n}-${s.inDays}`, location: s.at, sku, quantity: s.quantity, expectedAt: clock.now() + s.inDays * 86_400_000 });

    const [a] = queryAvailability(ctx, { channel, skus: [sku], view: 'total', quantity: c.quantity });
    expect(a.available).toBe(c.expect.available);
    if (c.expect.future) expect(a.future.map((f) => [new Date(f.expectedAt).toISOString().slice(0, 10), f.quantity])).toEqual(c.expect.future);
    if (c.expect.promise !== undefined) expect(a.promiseDate === null ? null : new Date(a.promiseDate).toISOString().slice(0, 10)).toBe(c.expect.promise);
    const [perLoc] = queryAvailability(ctx, { channel, skus: [sku], view: 'locations' });
    expect(perLoc.available).toBe(c.expect.available);

    // The database path agrees with the projection.
    await publishAvailabilityChanges(ctx);
    const events = await readEvents(ctx.store.db, { type: 'availability.changed', limit: 100_000 });
    const last = events.filter((e) => (e.payload as { sku: string; channel: string }).sku === sku && (e.payload as { channel: string }).channel === channel).at(-1);
    expect((last?.payload as { available: number } | undefined)?.available ?? 0).toBe(c.expect.available);
  });
});

describe.each(BACKENDS)('availability near a point on %s', (backend) => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv(backend);
    await smallNetwork(env.ctx);
    const { ctx, clock } = env;
    const skuId = ctx.projection.sku('B1')?.id as number;
    for (const [loc, q] of [['WH1', 5], ['ST-PARIS', 3], ['ST-LYON', 7], ['MKP', 9]] as const) {
      await applySnapshotChunk(ctx, ctx.projection.location(loc)?.id as number, clock.now() - 60_000, [{ skuId, onHand: q }], 'test', 'partial');
    }
  });
  afterAll(async () => env?.close());

  it.each([
    // Paris Louvre: ST-PARIS (~0.6 km) before WH1 (~1.2 km); Lyon is 390 km away; MKP has no coordinates.
    ['within 20 km of Paris, nearest first', 48.8606, 2.3376, 20, ['ST-PARIS', 'WH1'], 8],
    ['within 500 km of Paris reaches Lyon', 48.8606, 2.3376, 500, ['ST-PARIS', 'WH1', 'ST-LYON'], 15],
    ['nothing within 1 km of Marseille', 43.2965, 5.3698, 1, [], 0],
  ])('%s', (_n, lat, lng, radiusKm, expected, total) => {
    const [a] = queryAvailability(env.ctx, { channel: 'web', skus: ['B1'], view: 'near', near: { latitude: lat, longitude: lng, radiusKm } });
    expect(a.locations?.map((l) => l.location)).toEqual(expected);
    expect(a.available).toBe(total);
    const d = a.locations?.map((l) => l.distanceKm as number) ?? [];
    expect([...d].sort((x, y) => x - y)).toEqual(d);
  });
});
