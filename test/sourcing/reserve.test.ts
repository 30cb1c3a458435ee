// Source-and-reserve under real concurrency, on every backend: many orders from several OMS
// "processes" (separate pools on PostgreSQL, each with its own projection) reach for scarce
// stock at once. Nothing is oversold, a multi-line order is all or nothing, a process with a
// stale projection re-sources instead of failing, and the integrity check passes after each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ctx } from '../../src/context.ts';
import { checkIntegrity } from '../../src/inventory/integrity.ts';
import { upsertLocation } from '../../src/inventory/locations.ts';
import { upsertSkus } from '../../src/inventory/skus.ts';
import { applySnapshotChunk } from '../../src/inventory/snapshot.ts';
import { getPosition } from '../../src/inventory/stock.ts';
import type { AppError } from '../../src/shared/errors.ts';
import { type SourcingRequest, planSourcing, sourceAndReserve, sourceAndReserveGroups } from '../../src/sourcing/service.ts';
import { BACKENDS, createTestEnv, type TestEnv } from '../support/backends.ts';
import { smallNetwork } from '../support/fixtures.ts';

const PARIS = { mode: 'home' as const, country: 'FR', latitude: 48.8534, longitude: 2.3488 };
const req = (lines: Array<[string, number]>): SourcingRequest => ({ channel: 'web', lines: lines.map(([sku, quantity]) => ({ sku, quantity })), delivery: PARIS });

describe.each(BACKENDS)('source and reserve on %s', (backend) => {
  let env: TestEnv;
  let peers: Ctx[];
  const id = (ctx: Ctx, kind: 'location' | 'sku', code: string) => (kind === 'location' ? ctx.projection.location(code)?.id : ctx.projection.sku(code)?.id) as number;
  const count = async (location: string, rows: Array<[string, number]>) => {
    await applySnapshotChunk(env.ctx, id(env.ctx, 'location', location), env.clock.now() - 1000, rows.map(([sku, onHand]) => ({ skuId: id(env.ctx, 'sku', sku), onHand })), 'test', 'partial');
    const all = await env.ctx.store.db.selectFrom("stock_positions").selectAll().execute();
    for (const p of peers) p.projection.applyAll(all);
  };
  const reservedAt = async (location: string, sku: string) => (await getPosition(env.ctx.store.db, id(env.ctx, 'location', location), id(env.ctx, 'sku', sku)))?.reserved ?? 0;
  const activeSum = async (reference: string) =>
    (await env.ctx.store.db.selectFrom('reservations').select(['quantity']).where('reference', 'like', `${reference}%`).where('status', '=', 'active').execute()).reduce((a, r) => a + r.quantity, 0);
  const integrityHolds = async () => expect((await checkIntegrity(env.ctx.store.db)).issues).toEqual([]);

  beforeAll(async () => {
    env = await createTestEnv(backend);
    await smallNetwork(env.ctx);
    await upsertSkus(env.ctx, [
      { code: 'D1', name: 'Scarf', demandClass: 'B' },
      { code: 'E1', name: 'Socks', demandClass: 'B' },
      { code: 'F1', name: 'Belt', demandClass: 'B' },
      { code: 'G1', name: 'Gloves', demandClass: 'B' },
      { code: 'G2', name: 'Hat', demandClass: 'B' },
    ]);
    peers = [env.ctx, await env.openPeer(), await env.openPeer()];
  });
  afterAll(async () => env?.close());

  it('a dry run reserves nothing', async () => {
    await count('WH1', [['A1', 3]]);
    const before = await reservedAt('WH1', 'A1');
    const { result } = await planSourcing(env.ctx, req([['A1', 2]]));
    expect(result.plan.lines[0].allocations).toEqual([{ location: 'WH1', quantity: 2 }]);
    expect(await reservedAt('WH1', 'A1')).toBe(before);
  });

  it('reserves the plan and counts the shipment against capacity', async () => {
    await count('WH1', [['B1', 5]]);
    const r = await sourceAndReserve(env.ctx, req([['B1', 2]]), { reference: 'one' });
    expect(r.reservations.map((x) => [x.quantity, x.reference])).toEqual([[2, 'one']]);
    expect(r.attempts).toBe(1);
    expect(await reservedAt('WH1', 'B1')).toBe(2);
    const used = await env.ctx.store.db.selectFrom('location_capacity_usage').selectAll().execute();
    expect(used.map((u) => [u.location_id, u.used])).toEqual([[id(env.ctx, 'location', 'WH1'), 1]]);
    await integrityHolds();
  });

  it('120 orders racing from 3 processes for 15 units never oversell', async () => {
    // WH1 10 and ST-PARIS 5 units of C1; orders of 1 or 2 units, home to Paris.
    await count('WH1', [['C1', 10]]);
    await count('ST-PARIS', [['C1', 5]]);
    const results = await Promise.allSettled(
      Array.from({ length: 120 }, (_, i) => sourceAndReserve(peers[i % 3], req([['C1', 1 + (i % 2)]]), { reference: `race-${i}` })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    for (const l of results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[]) expect((l.reason as AppError).code).toBe('out_of_stock');
    const reserved = (await reservedAt('WH1', 'C1')) + (await reservedAt('ST-PARIS', 'C1'));
    expect(reserved).toBeLessThanOrEqual(15);
    expect(reserved).toBeGreaterThanOrEqual(14);
    expect(reserved).toBe(await activeSum('race-'));
    expect(won.length).toBeGreaterThan(5);
    // Every capture gave back what it held in flight, won or lost.
    for (const p of peers) for (const loc of ['WH1', 'ST-PARIS']) expect(p.projection.heldAt(id(p, 'location', loc), id(p, 'sku', 'C1'))).toBe(0);
    await integrityHolds();
  });

  it('captures in flight in one process plan around each other: no lost race', async () => {
    // ST-PARIS wins the tie (see below) with its one unit. Two captures start together in the
    // same process: the second plans while the first is still writing, sees the unit held,
    // and goes to WH1 at its first attempt instead of losing the race and re-sourcing.
    await count('ST-PARIS', [['G1', 1]]);
    await count('WH1', [['G1', 3]]);
    const [a, b] = await Promise.all([0, 1].map((i) => sourceAndReserve(env.ctx, req([['G1', 1]]), { reference: `inflight-${i}` })));
    expect([a, b].map((r) => r.result.plan.lines[0].allocations[0].location)).toEqual(['ST-PARIS', 'WH1']);
    expect([a.attempts, b.attempts]).toEqual([1, 1]);
    for (const loc of ['WH1', 'ST-PARIS']) expect(env.ctx.projection.heldAt(id(env.ctx, 'location', loc), id(env.ctx, 'sku', 'G1'))).toBe(0);
    // Committed stock, what the availability API shows: 4 units, 2 reserved.
    expect(env.ctx.projection.total(id(env.ctx, 'sku', 'G1'), 'web')).toBe(2);
    await integrityHolds();
  });

  it('units held by a capture in flight never make another one out of stock: the holder may fail', async () => {
    // One G2 in the network. Capture A plans it, holds it, then fails before writing; B plans
    // while A holds the unit. B must not answer out_of_stock on a hold: it plans on committed
    // stock, and the database decides.
    await count('ST-PARIS', [['G2', 1]]);
    const a = sourceAndReserveGroups(env.ctx, [req([['G2', 1]])], {
      reference: 'holder',
      collect: async () => {
        await new Promise((r) => setTimeout(r, 20));
        throw new Error('the holder failed');
      },
    });
    const b = sourceAndReserve(env.ctx, req([['G2', 1]]), { reference: 'second' });
    const [ra, rb] = await Promise.allSettled([a, b]);
    expect((ra as PromiseRejectedResult).reason.message).toBe('the holder failed');
    expect(rb.status).toBe('fulfilled');
    expect(await reservedAt('ST-PARIS', 'G2')).toBe(1);
    expect(await activeSum('second')).toBe(1);
    expect(env.ctx.projection.heldUnits).toBe(0);
    await integrityHolds();
  });

  it('a multi-line order is all or nothing', async () => {
    // Plenty of E1 and one F1 at ST-PARIS; 6 orders for E1 + F1 from 3 processes whose
    // projections do not see each other's reservations: the losers reserve E1, fail on F1,
    // and must roll E1 back.
    await count('ST-PARIS', [['E1', 50], ['F1', 1]]);
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => sourceAndReserve(peers[i % 3], req([['E1', 1], ['F1', 1]]), { reference: `pair-${i}` })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const l of results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[]) expect((l.reason as AppError).code).toBe('out_of_stock');
    expect(await reservedAt('ST-PARIS', 'E1')).toBe(1);
    expect(await reservedAt('ST-PARIS', 'F1')).toBe(1);
    expect(await activeSum('pair-')).toBe(2);
    await integrityHolds();
  });

  it('a process with a stale picture re-sources with fresh stock', async () => {
    // ST-PARIS and WH1 tie on the default rules (same priority, within 10 km): ST-PARIS wins
    // by code. One process takes its last unit; another, still seeing it, must re-source.
    await count('ST-PARIS', [['D1', 1]]);
    await count('WH1', [['D1', 3]]);
    const first = await sourceAndReserve(peers[2], req([['D1', 1]]), { reference: 'first' });
    expect(first.result.plan.lines[0].allocations).toEqual([{ location: 'ST-PARIS', quantity: 1 }]);
    const r = await sourceAndReserve(peers[1], req([['D1', 1]]), { reference: 'stale' });
    expect(r.result.plan.lines[0].allocations).toEqual([{ location: 'WH1', quantity: 1 }]);
    expect(r.attempts).toBe(2);
    await integrityHolds();
  });

  it('nothing sourceable: a clear out-of-stock per line, nothing stored', async () => {
    const before = await env.ctx.store.db.selectFrom('reservations').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const err = await sourceAndReserve(env.ctx, req([['B1', 500]]), { reference: 'nope' }).catch((e: AppError) => e);
    expect((err as AppError).code).toBe('out_of_stock');
    // B1: 5 counted at WH1, 2 reserved by the order above → 3 fillable.
    expect(((err as AppError).details as { lines: unknown[] }).lines).toEqual([{ line_id: 'L1', sku: 'B1', requested: 500, unfilled: 497, fillable: 3 }]);
    const after = await env.ctx.store.db.selectFrom('reservations').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(Number(before.n));
  });

  it('a location at its daily capacity loses the next order, counted by this process between reloads', async () => {
    // H1 (class B: home-standard, under capacity) at WH1 and ST-PARIS: both within the distance
    // tolerance of Paris, so ST-PARIS wins by code while it has room.
    await upsertSkus(env.ctx, [{ code: 'H1', name: 'Umbrella', demandClass: 'B' }]);
    await count('WH1', [['H1', 20]]);
    await count('ST-PARIS', [['H1', 20]]);
    const store = { code: 'ST-PARIS', name: 'Store Paris', type: 'store' as const, country: 'FR', latitude: 48.86, longitude: 2.34, capabilities: ['ships' as const, 'click_and_collect' as const], tags: ['city'] };
    const usage = await env.ctx.store.db.selectFrom('location_capacity_usage').select('used').where('location_id', '=', id(env.ctx, 'location', 'ST-PARIS')).execute();
    await upsertLocation(env.ctx, { ...store, dailyCapacity: usage.reduce((a, r) => a + r.used, 0) + 2 });
    try {
      env.ctx.sourcing.capacity.invalidate();
      const from = async (ref: string) => (await sourceAndReserve(env.ctx, req([['H1', 1]]), { reference: ref })).result.plan.shipments.map((s) => s.location);
      // The counts are read once, then this process adds its own shipments to that copy.
      expect(await from('cap-1')).toEqual(['ST-PARIS']);
      expect(await from('cap-2')).toEqual(['ST-PARIS']);
      expect(await from('cap-3')).toEqual(['WH1']);
      expect(await from('cap-4')).toEqual(['WH1']);
      // A fresh copy of the counts says the same.
      env.ctx.sourcing.capacity.invalidate();
      expect(await from('cap-5')).toEqual(['WH1']);
    } finally {
      await upsertLocation(env.ctx, { ...store, dailyCapacity: null });
    }
    await integrityHolds();
  });
});
