// Backorders hold their incoming supply, on every backend: two orders are never promised the
// same incoming units (not even when one process plans on a stale projection, nor when 50
// captures race for the last ten), availability and sourcing of future stock drop at once in
// this process and, through the outbox, in another one, and cancelling, expiry and release
// give the units back or convert them. Both integrity checks run after every test.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiKey, KeyVerifier } from '../../src/auth/keys.ts';
import { OutboxFollower } from '../../src/availability/follower.ts';
import { queryAvailability } from '../../src/availability/service.ts';
import type { Ctx } from '../../src/context.ts';
import { buildApp } from '../../src/http/app.ts';
import { checkIntegrity } from '../../src/inventory/integrity.ts';
import { upsertSupply } from '../../src/inventory/supply.ts';
import { checkOrderIntegrity } from '../../src/orders/integrity.ts';
import { sweepOrders } from '../../src/orders/scheduler.ts';
import { planSourcing } from '../../src/sourcing/service.ts';
import { expectError, type InjectResult, type Json, positions, seedStock } from '../api/helpers.ts';
import { type ApiEnv, BACKENDS, createApiEnv } from '../support/backends.ts';
import { smallNetwork } from '../support/fixtures.ts';

const ADDRESS = { line1: '1 rue de Rivoli', postal_code: '75001', city: 'Paris', country: 'FR', latitude: 48.8534, longitude: 2.3488 };
const DAY = 86_400_000;

const orderBody = (ref: string, quantity: number, sku = 'A1') => ({
  external_reference: ref,
  customer: { name: 'Ada', email: 'ada@example.com' },
  currency: 'EUR',
  lines: [{ sku, quantity, unit_price: 1000 }],
  delivery_groups: [{ mode: 'home', address: ADDRESS, shipping_price: 500 }],
  totals: { subtotal: quantity * 1000, discount: 0, tax: 0, shipping: 500, total: quantity * 1000 + 500 },
  tenders: [{ method: 'card', amount: quantity * 1000 + 500 }],
});

describe.each(BACKENDS)('backorders hold incoming supply on %s', (backend) => {
  let env: ApiEnv;
  let pre: string;

  beforeEach(async () => {
    env = await createApiEnv(backend);
    await smallNetwork(env.ctx, [{ code: 'pre', name: 'Web with pre-orders', type: 'web', futureStock: true, futureHorizonDays: 30 }]);
    pre = (await createApiKey(env.ctx, { name: 'pre', role: 'channel', channel: 'pre' })).secret;
  });

  afterEach(async () => {
    if (!env) return;
    try {
      expect((await checkIntegrity(env.ctx.store.db)).issues).toEqual([]);
      expect((await checkOrderIntegrity(env.ctx.store.db)).issues).toEqual([]);
    } finally {
      await env.close();
    }
  });

  // ---- helpers ----------------------------------------------------------------------------

  const supply = (reference: string, quantity: number, inDays: number, location = 'WH1') =>
    upsertSupply(env.ctx, { kind: 'purchase_order', reference, location, sku: 'A1', quantity, expectedAt: env.clock.now() + inDays * DAY });
  const post = (ref: string, quantity: number, app = env.app) => app.inject({ method: 'POST', url: '/orders', headers: env.auth(pre), payload: orderBody(ref, quantity) });
  async function capture(ref: string, quantity: number): Promise<Json> {
    const r = await post(ref, quantity);
    expect(r.statusCode, r.body).toBe(201);
    return r.json();
  }
  async function getOrder(id: string): Promise<Json> {
    const r = await env.app.inject({ method: 'GET', url: `/orders/${id}`, headers: env.auth(pre) });
    expect(r.statusCode, r.body).toBe(200);
    return r.json();
  }
  const ok = (r: InjectResult) => {
    expect(r.statusCode, r.body).toBe(200);
    return r.json();
  };
  /** Each supply row's `allocated`, by reference. */
  async function allocated(): Promise<Record<string, number>> {
    const rows = await env.ctx.store.db.selectFrom('incoming_supply').select(['reference', 'allocated']).orderBy('reference').execute();
    return Object.fromEntries(rows.map((r) => [r.reference, Number(r.allocated)]));
  }
  /** An order's supply allocations: [supply reference, quantity, status], by reference then status. */
  async function holds(orderId: string): Promise<Array<[string, number, string]>> {
    const rows = await env.ctx.store.db
      .selectFrom('supply_allocations as a')
      .innerJoin('incoming_supply as s', 's.id', 'a.supply_id')
      .select(['s.reference', 'a.quantity', 'a.status'])
      .where('a.order_id', '=', orderId)
      .orderBy('s.reference')
      .orderBy('a.status')
      .execute();
    return rows.map((r) => [r.reference, Number(r.quantity), r.status]);
  }
  /** What a process's projection lets the channel promise of incoming A1: [day, units]. */
  const future = (ctx: Ctx) => queryAvailability(ctx, { channel: 'pre', skus: ['A1'], view: 'total' })[0].future.map((f) => [new Date(f.expectedAt).toISOString().slice(0, 10), f.quantity]);
  const day = (inDays: number) => new Date(env.clock.now() + inDays * DAY).toISOString().slice(0, 10);
  const backorderOf = (o: Json) => o.fulfillment_orders.find((f: Json) => f.backorder);

  // ---- promising ------------------------------------------------------------------------------

  it('two orders cannot be promised the same last incoming units: the second gets the next supply, a third is out of stock', async () => {
    await supply('PO-1', 3, 5);
    await supply('PO-2', 4, 12);
    const first = await capture('BO-1', 3);
    expect(backorderOf(first)).toMatchObject({ location: 'WH1', backorder: true, status: 'created' });
    expect(await holds(first.id)).toEqual([['PO-1', 3, 'active']]);
    expect(await allocated()).toEqual({ 'PO-1': 3, 'PO-2': 0 });
    expect(future(env.ctx)).toEqual([[day(12), 4]]);

    const second = await capture('BO-2', 2);
    expect(await holds(second.id)).toEqual([['PO-2', 2, 'active']]);
    expect(backorderOf(second).ready_date > backorderOf(first).ready_date).toBe(true);
    expect(await allocated()).toEqual({ 'PO-1': 3, 'PO-2': 2 });

    const before = await allocated();
    const third = expectError(await post('BO-3', 3), 409, 'out_of_stock');
    expect(third.error.details.lines).toEqual([{ line_id: 'L1', sku: 'A1', requested: 3, unfilled: 1, fillable: 2 }]);
    expect(await allocated()).toEqual(before);
    expect(future(env.ctx)).toEqual([[day(12), 2]]);
  });

  it('a process planning on a stale projection loses the race for incoming units and is re-planned on the next supply', async () => {
    await supply('PO-1', 3, 5);
    await supply('PO-2', 4, 12);
    // The peer loads its projection now and follows nothing: it still sees PO-1 free after the first order.
    const peer = await env.openPeer();
    const app2 = await buildApp({ ctx: peer, keys: new KeyVerifier(peer), bodyLimit: 2 * 1024 * 1024 });
    try {
      await app2.ready();
      const first = await capture('ST-1', 3);
      expect(await holds(first.id)).toEqual([['PO-1', 3, 'active']]);
      expect(future(peer)).toEqual([
        [day(5), 3],
        [day(12), 4],
      ]);
      const r = await post('ST-2', 2, app2);
      expect(r.statusCode, r.body).toBe(201);
      expect(await holds(r.json().id)).toEqual([['PO-2', 2, 'active']]);
      expect(await allocated()).toEqual({ 'PO-1': 3, 'PO-2': 2 });
      // Losing the race refreshed the peer's picture of that supply.
      expect(future(peer)).toEqual([[day(12), 2]]);
    } finally {
      await app2.close();
      await peer.store.close();
    }
  });

  it('50 concurrent captures racing for 10 incoming units on one supply row, over two processes: exactly 10 are promised', async () => {
    await supply('PO-RACE', 10, 7);
    const peer = await env.openPeer();
    const app2 = await buildApp({ ctx: peer, keys: new KeyVerifier(peer), bodyLimit: 2 * 1024 * 1024 });
    try {
      await app2.ready();
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => post(`RACE-${i}`, 1, i % 2 ? app2 : env.app)));
      const won = answers.filter((r) => r.statusCode === 201);
      for (const r of answers.filter((x) => x.statusCode !== 201)) expectError(r, 409, 'out_of_stock');
      expect(won).toHaveLength(10);
      expect(await allocated()).toEqual({ 'PO-RACE': 10 });
      const active = await env.ctx.store.db.selectFrom('supply_allocations').select(['order_id', 'quantity']).where('status', '=', 'active').execute();
      expect(active.reduce((s, a) => s + Number(a.quantity), 0)).toBe(10);
      expect(new Set(active.map((a) => a.order_id))).toEqual(new Set(won.map((r) => r.json().id)));
      const lines = await env.ctx.store.db.selectFrom('order_lines').select(['backordered']).execute();
      expect(lines.map((l) => Number(l.backordered))).toEqual(Array(10).fill(1));
      expect(future(env.ctx)).toEqual([]);
    } finally {
      await app2.close();
      await peer.store.close();
    }
  });

  it("availability and sourcing of future stock drop with an allocation, in this process at once and in another through the outbox", async () => {
    await supply('PO-1', 10, 5);
    const peer = await env.openPeer();
    // The peer lives in this test process, so the events carry its origin: follow them all.
    const follower = new OutboxFollower(peer, null);
    await follower.init();
    expect(future(peer)).toEqual([[day(5), 10]]);

    const o = await capture('AV-1', 4);
    expect(future(env.ctx)).toEqual([[day(5), 6]]);
    const plan = await planSourcing(env.ctx, { channel: 'pre', lines: [{ sku: 'A1', quantity: 7 }], delivery: { mode: 'home', country: 'FR', postalCode: '75001', city: 'Paris' } });
    expect(plan.result.plan.lines[0]).toMatchObject({ unfilled: 1, backorders: [{ location: 'WH1', quantity: 6 }] });

    expect(future(peer)).toEqual([[day(5), 10]]);
    expect(await follower.poll()).toBeGreaterThan(0);
    expect(future(peer)).toEqual([[day(5), 6]]);
    const peerPlan = await planSourcing(peer, { channel: 'pre', lines: [{ sku: 'A1', quantity: 7 }], delivery: { mode: 'home', country: 'FR', postalCode: '75001', city: 'Paris' } });
    expect(peerPlan.result.plan.lines[0].unfilled).toBe(1);

    // Cancelling gives the units back, here and there.
    ok(await env.app.inject({ method: 'POST', url: `/orders/${o.id}/cancel`, headers: env.auth(pre), payload: {} }));
    expect(future(env.ctx)).toEqual([[day(5), 10]]);
    await follower.poll();
    expect(future(peer)).toEqual([[day(5), 10]]);
    await peer.store.close();
  });

  // ---- giving back and converting ----------------------------------------------------------------

  it('cancelling some backordered units gives back the latest-expected supply first; cancelling the rest gives back everything', async () => {
    await supply('PO-A', 4, 3);
    await supply('PO-B', 5, 8);
    const o = await capture('CX-1', 6);
    expect(await holds(o.id)).toEqual([
      ['PO-A', 4, 'active'],
      ['PO-B', 2, 'active'],
    ]);
    ok(await env.app.inject({ method: 'POST', url: `/orders/${o.id}/cancel`, headers: env.auth(pre), payload: { lines: [{ line_id: 'L1', quantity: 3 }] } }));
    expect(await allocated()).toEqual({ 'PO-A': 3, 'PO-B': 0 });
    expect(await holds(o.id)).toEqual([
      ['PO-A', 3, 'active'],
      ['PO-B', 2, 'released'],
    ]);
    expect(future(env.ctx)).toEqual([
      [day(3), 1],
      [day(8), 5],
    ]);
    expect((await getOrder(o.id)).lines[0]).toMatchObject({ quantity: 6, backordered: 3, cancelled: 3 });

    const done = ok(await env.app.inject({ method: 'POST', url: `/orders/${o.id}/cancel`, headers: env.auth(pre), payload: {} }));
    expect(done.status).toBe('cancelled');
    expect(await allocated()).toEqual({ 'PO-A': 0, 'PO-B': 0 });
    expect(await holds(o.id)).toEqual([
      ['PO-A', 3, 'released'],
      ['PO-B', 2, 'released'],
    ]);
    expect(future(env.ctx)).toEqual([
      [day(3), 4],
      [day(8), 5],
    ]);
  });

  it('an admin cancel of a backorder fulfilment order gives its supply back', async () => {
    await supply('PO-1', 5, 4);
    const o = await capture('CF-1', 2);
    const r = ok(await env.app.inject({ method: 'POST', url: `/fulfillment-orders/${backorderOf(o).id}/cancel`, headers: env.auth(), payload: { reason: 'supplier late' } }));
    expect(r.order_status).toBe('cancelled');
    expect(await allocated()).toEqual({ 'PO-1': 0 });
    expect(await holds(o.id)).toEqual([['PO-1', 2, 'released']]);
    expect(future(env.ctx)).toEqual([[day(4), 5]]);
  });

  it('an unpaid backorder that expires gives its supply back', async () => {
    await supply('PO-1', 5, 4);
    const o = await capture('EX-1', 3);
    expect(await allocated()).toEqual({ 'PO-1': 3 });
    env.clock.advance(env.ctx.orders.paymentTtlMs + 60_000);
    expect((await sweepOrders(env.ctx)).expired).toBe(1);
    expect((await getOrder(o.id)).status).toBe('expired');
    expect(await allocated()).toEqual({ 'PO-1': 0 });
    expect(await holds(o.id)).toEqual([['PO-1', 3, 'released']]);
    expect(future(env.ctx).map(([, q]) => q)).toEqual([5]);
  });

  it('releasing a backorder once its stock is in converts its allocations into reservations', async () => {
    await supply('PO-1', 5, 4);
    const o = await capture('RL-1', 3);
    ok(await env.app.inject({ method: 'POST', url: `/orders/${o.id}/validate`, headers: env.auth(), payload: {} }));
    const fo = backorderOf(o);
    // Not in yet: the release is refused and the supply stays held.
    expectError(await env.app.inject({ method: 'POST', url: `/fulfillment-orders/${fo.id}/release`, headers: env.auth(), payload: {} }), 409, 'insufficient_stock');
    expect(await holds(o.id)).toEqual([['PO-1', 3, 'active']]);
    env.clock.advance(1000);
    await seedStock(env, 'WH1', new Date(env.clock.now() - 500).toISOString(), [{ sku: 'A1', on_hand: 3 }]);
    const r = ok(await env.app.inject({ method: 'POST', url: `/fulfillment-orders/${fo.id}/release`, headers: env.auth(), payload: {} }));
    expect(r.fulfillment).toMatchObject({ status: 'released', backorder: false });
    expect(await holds(o.id)).toEqual([['PO-1', 3, 'converted']]);
    expect(await allocated()).toEqual({ 'PO-1': 0 });
    // The converted units arrived: received, so PO-1 offers only its 2 others as future stock.
    const row = await env.ctx.store.db.selectFrom('incoming_supply').select(['received_quantity']).where('reference', '=', 'PO-1').executeTakeFirstOrThrow();
    expect(Number(row.received_quantity)).toBe(3);
    expect(future(env.ctx)).toEqual([[day(4), 2]]);
    expect(await positions(env, 'WH1')).toMatchObject({ A1: { on_hand: 3, reserved: 3 } });
    expect((await getOrder(o.id)).lines[0]).toMatchObject({ allocated: 3, backordered: 0 });
  });

  it('a rejection re-sourced to a backorder holds the incoming supply it is promised on', async () => {
    env.clock.advance(1000);
    await seedStock(env, 'WH1', new Date(env.clock.now() - 500).toISOString(), [{ sku: 'A1', on_hand: 2 }]);
    await supply('TR-1', 5, 3, 'ST-PARIS');
    const o = await capture('RJ-1', 2);
    expect(o.fulfillment_orders).toMatchObject([{ location: 'WH1', backorder: false }]);
    expect(await allocated()).toEqual({ 'TR-1': 0 });
    const v = ok(await env.app.inject({ method: 'POST', url: `/orders/${o.id}/validate`, headers: env.auth(), payload: {} }));
    const r = ok(await env.app.inject({ method: 'POST', url: `/fulfillment-orders/${v.order.fulfillment_orders[0].id}/reject`, headers: env.auth(), payload: { reason: 'damaged' } }));
    expect(r.created).toHaveLength(1);
    expect(await allocated()).toEqual({ 'TR-1': 2 });
    expect(await holds(o.id)).toEqual([['TR-1', 2, 'active']]);
    expect(future(env.ctx)).toEqual([[day(3), 3]]);
  });

  it('the integrity check catches a supply counter or an allocation that disagrees', async () => {
    await supply('PO-1', 5, 4);
    const o = await capture('IC-1', 2);
    const db = env.ctx.store.db;
    await db.updateTable('incoming_supply').set({ allocated: 3 }).where('reference', '=', 'PO-1').execute();
    expect((await checkOrderIntegrity(db)).issues.map((i) => i.kind)).toEqual(['supply_allocated_vs_allocations']);
    await db.updateTable('incoming_supply').set({ allocated: 6 }).where('reference', '=', 'PO-1').execute();
    expect((await checkOrderIntegrity(db)).issues.map((i) => i.kind).sort()).toEqual(['supply_allocated_vs_allocations', 'supply_over_allocated']);
    await db.updateTable('incoming_supply').set({ allocated: 2 }).where('reference', '=', 'PO-1').execute();
    await db.updateTable('supply_allocations').set({ quantity: 1 }).where('order_id', '=', o.id).execute();
    expect((await checkOrderIntegrity(db)).issues.map((i) => i.kind).sort()).toEqual(['supply_allocated_vs_allocations', 'supply_allocation_mismatch']);
    await db.updateTable('supply_allocations').set({ quantity: 2 }).where('order_id', '=', o.id).execute();
    expect((await checkOrderIntegrity(db)).issues).toEqual([]);
  });
});
