// Fulfilment orders through the HTTP API, on every backend: re-sourcing on rejection, short
// picks, missed acceptance deadlines, expiry of unpaid orders, scope of location keys,
// concurrency, and backorders. Each test gets its own database and clock; the integrity
// check (counters = ledgers) runs after every one.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/keys.ts';
import { checkIntegrity } from '../../src/inventory/integrity.ts';
import { upsertSkus } from '../../src/inventory/skus.ts';
import { sweepOrders } from '../../src/orders/scheduler.ts';
import { expectError, type Json, positions, seedStock } from '../api/helpers.ts';
import { type ApiEnv, BACKENDS, createApiEnv } from '../support/backends.ts';
import { homeOrderBody, smallNetwork } from '../support/fixtures.ts';

const MIN = 60_000;
type LineSpec = [sku: string, quantity: number, unitPrice: number];
const orderBody = homeOrderBody;

describe.each(BACKENDS)('fulfilment orders on %s', (backend) => {
  let env: ApiEnv;
  let web: string;
  let pre: string;
  const locKeys = new Map<string, string>();
  /**
   * The channel key each order was captured with. Order reads (GET /orders/:id, timeline,
   * sourcing) go through it: with an admin key they fail on SQLite (src/orders/queries.ts
   * binds a boolean for the admin scope).
   */
  const channelOf = new Map<string, string>();

  beforeEach(async () => {
    env = await createApiEnv(backend);
    await smallNetwork(env.ctx, [
      { code: 'web', name: 'Web', type: 'web' },
      { code: 'pre', name: 'Web with pre-orders', type: 'web', futureStock: true, futureHorizonDays: 30 },
    ]);
    await upsertSkus(env.ctx, [
      { code: 'B2', name: 'Jacket', demandClass: 'B' },
      { code: 'B3', name: 'Belt', demandClass: 'B' },
    ]);
    web = (await createApiKey(env.ctx, { name: 'web', role: 'channel', channel: 'web' })).secret;
    pre = (await createApiKey(env.ctx, { name: 'pre', role: 'channel', channel: 'pre' })).secret;
    locKeys.clear();
    channelOf.clear();
    locKeys.set('WH1', (await createApiKey(env.ctx, { name: 'wms', role: 'integration', locations: ['WH1'] })).secret);
    locKeys.set('ST-PARIS', (await createApiKey(env.ctx, { name: 'store app paris', role: 'store', locations: ['ST-PARIS'] })).secret);
  });

  afterEach(async () => {
    if (!env) return;
    try {
      expect((await checkIntegrity(env.ctx.store.db)).issues).toEqual([]);
    } finally {
      await env.close();
    }
  });

  // ---- helpers ----------------------------------------------------------------------------

  const keyFor = (location: string): string => {
    const k = locKeys.get(location);
    if (!k) throw new Error(`no key for ${location}`);
    return k;
  };
  const other = (location: string) => (location === 'WH1' ? 'ST-PARIS' : 'WH1');
  /** A count at one location, just before now (a second later each time, so it is never older than the last one). */
  const seed = (location: string, items: Array<{ sku: string; on_hand: number }>) => {
    env.clock.advance(1000);
    return seedStock(env, location, new Date(env.clock.now() - 500).toISOString(), items);
  };
  const reserved = async (location: string, sku: string) => (await positions(env, location))[sku]?.reserved ?? 0;

  async function capture(ref: string, lines: LineSpec[], opts: { key?: string; tender?: string } = {}): Promise<Json> {
    const key = opts.key ?? web;
    const r = await env.app.inject({ method: 'POST', url: '/orders', headers: env.auth(key), payload: orderBody(ref, lines, opts) });
    expect(r.statusCode, r.body).toBe(201);
    channelOf.set(r.json().id, key);
    return r.json();
  }
  const reader = (orderId: string) => env.auth(channelOf.get(orderId) ?? web);
  async function validate(orderId: string): Promise<Json> {
    const r = await env.app.inject({ method: 'POST', url: `/orders/${orderId}/validate`, headers: env.auth(), payload: {} });
    expect(r.statusCode, r.body).toBe(200);
    return r.json().order;
  }
  const act = (foId: string, action: string, key: string, payload: object = {}) => env.app.inject({ method: 'POST', url: `/fulfillment-orders/${foId}/${action}`, headers: env.auth(key), payload });
  async function actOk(foId: string, action: string, key: string, payload: object = {}): Promise<Json> {
    const r = await act(foId, action, key, payload);
    expect(r.statusCode, `${action}: ${r.body}`).toBe(200);
    return r.json();
  }
  async function getOrder(orderId: string): Promise<Json> {
    const r = await env.app.inject({ method: 'GET', url: `/orders/${orderId}`, headers: reader(orderId) });
    expect(r.statusCode, r.body).toBe(200);
    return r.json();
  }
  async function timeline(orderId: string): Promise<Json[]> {
    const r = await env.app.inject({ method: 'GET', url: `/orders/${orderId}/timeline`, headers: reader(orderId) });
    expect(r.statusCode, r.body).toBe(200);
    return r.json().entries;
  }
  const types = async (orderId: string) => (await timeline(orderId)).map((e: Json) => e.type as string);
  async function decisions(orderId: string): Promise<Json[]> {
    const r = await env.app.inject({ method: 'GET', url: `/orders/${orderId}/sourcing`, headers: reader(orderId) });
    expect(r.statusCode, r.body).toBe(200);
    return r.json().decisions;
  }
  /** Everything a refused request must leave alone: the order, both stock points, the timeline. */
  const state = async (orderId: string) => ({ order: await getOrder(orderId), wh1: await positions(env, 'WH1'), paris: await positions(env, 'ST-PARIS'), events: await types(orderId) });
  const line = (order: Json, lineId: string) => order.lines.find((l: Json) => l.line_id === lineId);
  const fosAt = (order: Json, location: string) => order.fulfillment_orders.filter((f: Json) => f.location === location);
  const live = (order: Json) => order.fulfillment_orders.filter((f: Json) => !['rejected', 'cancelled'].includes(f.status));

  /**
   * The books of these orders agree with the stock: per line, ordered = allocated +
   * backordered + cancelled and allocated = the units at its live stock fulfilment orders;
   * per location, reserved = the units of live fulfilment orders there not yet shipped.
   */
  async function expectBooksBalance(orderIds: string[], sku: string): Promise<void> {
    const expected = new Map<string, number>([
      ['WH1', 0],
      ['ST-PARIS', 0],
    ]);
    for (const id of orderIds) {
      const o = await getOrder(id);
      for (const l of o.lines) {
        expect(l.allocated + l.backordered + l.cancelled, `${id} ${l.line_id}`).toBe(l.quantity);
        const held = live(o)
          .filter((f: Json) => !f.backorder)
          .reduce((s: number, f: Json) => s + f.lines.filter((x: Json) => x.line_id === l.line_id).reduce((n: number, x: Json) => n + x.quantity, 0), 0);
        expect(held, `${id} ${l.line_id} allocated`).toBe(l.allocated);
      }
      for (const f of live(o)) {
        if (f.backorder || f.status === 'shipped') continue;
        for (const fl of f.lines) if (fl.sku === sku) expected.set(f.location, (expected.get(f.location) ?? 0) + fl.quantity);
      }
    }
    for (const [loc, n] of expected) expect(await reserved(loc, sku), `reserved ${sku} at ${loc}`).toBe(n);
  }

  /** Captures `qty` × sku with stock at both WH1 and ST-PARIS, validates it; returns where it went. */
  async function releasedAtOneOfTwo(ref: string, sku: string, qty: number, stock = 5): Promise<{ orderId: string; fo: Json; from: string; to: string }> {
    await seed('WH1', [{ sku, on_hand: stock }]);
    await seed('ST-PARIS', [{ sku, on_hand: stock }]);
    const o = await capture(ref, [[sku, qty, 1000]]);
    expect(o.fulfillment_orders).toHaveLength(1);
    const from = o.fulfillment_orders[0].location as string;
    expect(['WH1', 'ST-PARIS']).toContain(from);
    const v = await validate(o.id);
    expect(v.fulfillment_orders[0].status).toBe('released');
    return { orderId: o.id, fo: v.fulfillment_orders[0], from, to: other(from) };
  }

  // ---- 1. re-sourcing on rejection ----------------------------------------------------------

  describe('rejection', () => {
    it('needs a reason, then re-sources the work elsewhere and moves the reservation', async () => {
      const { orderId, fo, from, to } = await releasedAtOneOfTwo('R-1', 'B1', 2);
      expect(await reserved(from, 'B1')).toBe(2);
      expect(await reserved(to, 'B1')).toBe(0);

      const before = await state(orderId);
      expectError(await act(fo.id, 'reject', keyFor(from), {}), 400, 'validation_failed');
      expectError(await act(fo.id, 'reject', keyFor(from)), 400, 'validation_failed');
      expect(await state(orderId)).toEqual(before);

      const r = await actOk(fo.id, 'reject', keyFor(from), { reason: 'damaged' });
      expect(r.fulfillment.status).toBe('rejected');
      expect(r.fulfillment.reason).toBe('damaged');
      expect(r.created).toHaveLength(1);
      expect(r.cancelled).toEqual([]);
      expect(r.order_status).toBe('validated');

      const o = await getOrder(orderId);
      expect(o.status).toBe('validated');
      const fresh = o.fulfillment_orders.find((f: Json) => f.id === r.created[0]);
      expect(fresh).toMatchObject({ location: to, status: 'released', backorder: false, lines: [{ line_id: 'L1', sku: 'B1', quantity: 2 }] });
      expect(fresh.accept_by).not.toBeNull();
      expect(line(o, 'L1')).toMatchObject({ quantity: 2, allocated: 2, backordered: 0, cancelled: 0, shipped: 0 });
      expect(await reserved(from, 'B1')).toBe(0);
      expect(await reserved(to, 'B1')).toBe(2);

      const tl = await timeline(orderId);
      expect(tl.map((e: Json) => e.type).slice(-4)).toEqual(['fulfillment.rejected', 'fulfillment.created', 'fulfillment.released', 'order.resourced']);
      const resourced = tl.find((e: Json) => e.type === 'order.resourced');
      expect(resourced.data).toMatchObject({ from, why: 'rejected', reason: 'damaged', to: [{ fulfillment_id: fresh.id, location: to }], cancelled: [] });
      expect(tl.find((e: Json) => e.type === 'fulfillment.rejected').actor.name).toBe(from === 'WH1' ? 'wms' : 'store app paris');

      const d = await decisions(orderId);
      expect(d).toHaveLength(2);
      expect(d[0].reason).toBe('capture');
      expect(d[1].reason).toContain(`rejected at ${from}`);
      expect(d[1].reason).toContain('damaged');
      expect(d[1].decision.shipments.map((s: Json) => s.location)).toEqual([to]);

      // The new location does the work; the old one's key no longer sees the new fulfilment order.
      expectError(await act(fresh.id, 'accept', keyFor(from)), 404, 'not_found');
      for (const [action, payload] of [['accept', {}], ['pick', {}], ['pack', {}], ['ship', { tracking: 'T1' }]] as const) await actOk(fresh.id, action, keyFor(to), payload);
      const done = await getOrder(orderId);
      expect(done.status).toBe('shipped');
      expect(line(done, 'L1')).toMatchObject({ allocated: 2, shipped: 2 });
      expect(await positions(env, to)).toMatchObject({ B1: { on_hand: 3, reserved: 0 } });
      expect(await positions(env, from)).toMatchObject({ B1: { on_hand: 5, reserved: 0 } });
    });

    it('an admin may reject for the location (reason still required)', async () => {
      const { orderId, fo, to } = await releasedAtOneOfTwo('R-ADM', 'B1', 1);
      expectError(await act(fo.id, 'reject', env.adminKey), 400, 'validation_failed');
      const r = await actOk(fo.id, 'reject', env.adminKey, { reason: 'location closed' });
      expect(r.created).toHaveLength(1);
      expect(fosAt(await getOrder(orderId), to)[0].status).toBe('released');
    });

    it('the rejecting location stays excluded: a second rejection with stock nowhere else cancels the units', async () => {
      const { orderId, fo, from, to } = await releasedAtOneOfTwo('R-2', 'B1', 2);
      const first = await actOk(fo.id, 'reject', keyFor(from), { reason: 'no staff' });
      const second = await actOk(first.created[0], 'reject', keyFor(to), { reason: 'no staff either' });
      // `from` still has 5 available, but it rejected this order: it is not asked again.
      expect(second.created).toEqual([]);
      expect(second.cancelled).toEqual([{ line_id: 'L1', quantity: 2 }]);
      expect(second.order_status).toBe('cancelled');
      const o = await getOrder(orderId);
      expect(o.status).toBe('cancelled');
      expect(live(o)).toEqual([]);
      expect(line(o, 'L1')).toMatchObject({ quantity: 2, allocated: 0, backordered: 0, cancelled: 2 });
      expect(await reserved(from, 'B1')).toBe(0);
      expect(await reserved(to, 'B1')).toBe(0);
      expect(await decisions(orderId)).toHaveLength(3);
      const last = (await timeline(orderId)).at(-1) as Json;
      expect(last.type).toBe('order.resourced');
      expect(last.data).toMatchObject({ to: [], cancelled: [{ line_id: 'L1', quantity: 2 }], status: 'cancelled' });
    });

    it('with no other stock, only the unsourceable line is cancelled; the rest moves', async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 2 }, { sku: 'B2', on_hand: 3 }]);
      await seed('ST-PARIS', [{ sku: 'B2', on_hand: 3 }]);
      const o = await capture('R-3', [['B1', 2, 1000], ['B2', 1, 3000]]);
      // Fewest shipments: WH1 holds both lines.
      expect(o.fulfillment_orders.map((f: Json) => f.location)).toEqual(['WH1']);
      const fo = (await validate(o.id)).fulfillment_orders[0];
      const r = await actOk(fo.id, 'reject', keyFor('WH1'), { reason: 'flooded' });
      expect(r.cancelled).toEqual([{ line_id: 'L1', quantity: 2 }]);
      expect(r.created).toHaveLength(1);
      expect(r.order_status).toBe('validated');
      const after = await getOrder(o.id);
      expect(after.status).toBe('validated');
      expect(line(after, 'L1')).toMatchObject({ quantity: 2, allocated: 0, cancelled: 2 });
      expect(line(after, 'L2')).toMatchObject({ quantity: 1, allocated: 1, cancelled: 0 });
      expect(live(after)).toMatchObject([{ location: 'ST-PARIS', status: 'released', lines: [{ line_id: 'L2', quantity: 1 }] }]);
      expect(await positions(env, 'WH1')).toMatchObject({ B1: { reserved: 0 }, B2: { reserved: 0 } });
      expect(await reserved('ST-PARIS', 'B2')).toBe(1);
    });

    it('an unpaid order re-sourced keeps its new fulfilment order unreleased', async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 5 }]);
      await seed('ST-PARIS', [{ sku: 'B1', on_hand: 5 }]);
      const o = await capture('R-4', [['B1', 1, 1000]]);
      const fo = o.fulfillment_orders[0];
      // Not released yet: the location cannot reject what it was never sent.
      const before = await state(o.id);
      expectError(await act(fo.id, 'reject', keyFor(fo.location), { reason: 'too early' }), 409, 'invalid_state');
      expect(await state(o.id)).toEqual(before);
    });
  });

  // ---- 2. short pick ----------------------------------------------------------------------------

  describe('short pick', () => {
    it('keeps the picked units, re-sources the missing ones, and ships exactly what was picked', async () => {
      const { orderId, fo, from, to } = await releasedAtOneOfTwo('P-1', 'B1', 3);
      await actOk(fo.id, 'accept', keyFor(from));
      expectError(await act(fo.id, 'pick', keyFor(from), { lines: [{ line_id: 'L1', picked: 4 }] }), 400, 'validation_failed');
      expectError(await act(fo.id, 'pick', keyFor(from), { lines: [{ line_id: 'L9', picked: 1 }] }), 400, 'validation_failed');

      const r = await actOk(fo.id, 'pick', keyFor(from), { lines: [{ line_id: 'L1', picked: 1 }] });
      expect(r.fulfillment).toMatchObject({ status: 'picking', reason: 'short pick', lines: [{ line_id: 'L1', quantity: 1, picked: 1 }] });
      expect(r.created).toHaveLength(1);
      expect(r.cancelled).toEqual([]);
      expect(await reserved(from, 'B1')).toBe(1);
      expect(await reserved(to, 'B1')).toBe(2);

      let o = await getOrder(orderId);
      expect(o.status).toBe('in_fulfilment');
      expect(line(o, 'L1')).toMatchObject({ quantity: 3, allocated: 3, cancelled: 0, shipped: 0 });
      const fresh = o.fulfillment_orders.find((f: Json) => f.id === r.created[0]);
      expect(fresh).toMatchObject({ location: to, status: 'released', lines: [{ line_id: 'L1', quantity: 2 }] });
      const tl = await timeline(orderId);
      expect(tl.map((e: Json) => e.type).slice(-4)).toEqual(['fulfillment.picked', 'fulfillment.created', 'fulfillment.released', 'order.resourced']);
      expect(tl.find((e: Json) => e.type === 'fulfillment.picked').data.short).toEqual([{ line_id: 'L1', quantity: 2 }]);
      expect(tl.at(-1).data).toMatchObject({ why: 'short_pick', from });
      expect((await decisions(orderId)).at(-1).reason).toContain(`short_pick at ${from}`);

      await actOk(fo.id, 'pack', keyFor(from));
      const shipped = await actOk(fo.id, 'ship', keyFor(from), { tracking: 'TRK-1' });
      expect(shipped.fulfillment).toMatchObject({ status: 'shipped', tracking: 'TRK-1', lines: [{ quantity: 1, picked: 1, shipped: 1 }] });
      expect(shipped.order_status).toBe('partially_shipped');
      expect(await positions(env, from)).toMatchObject({ B1: { on_hand: 4, reserved: 0 } });
      expect(line(await getOrder(orderId), 'L1')).toMatchObject({ shipped: 1 });

      for (const [action, payload] of [['accept', {}], ['pick', {}], ['pack', {}], ['ship', { tracking: 'TRK-2' }]] as const) await actOk(fresh.id, action, keyFor(to), payload);
      expect(await positions(env, to)).toMatchObject({ B1: { on_hand: 3, reserved: 0 } });
      o = await getOrder(orderId);
      expect(o.status).toBe('shipped');
      expect(line(o, 'L1')).toMatchObject({ quantity: 3, allocated: 3, cancelled: 0, shipped: 3 });
      const shippedUnits = o.fulfillment_orders.reduce((s: number, f: Json) => s + f.lines.reduce((x: number, l: Json) => x + l.shipped, 0), 0);
      expect(shippedUnits).toBe(3);
    });

    it('only the short line moves; lines left out were picked in full', async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 5 }, { sku: 'B2', on_hand: 5 }]);
      await seed('ST-PARIS', [{ sku: 'B2', on_hand: 5 }]);
      const o = await capture('P-2', [['B1', 2, 1000], ['B2', 2, 1000]]);
      expect(o.fulfillment_orders.map((f: Json) => f.location)).toEqual(['WH1']);
      const fo = (await validate(o.id)).fulfillment_orders[0];
      await actOk(fo.id, 'accept', keyFor('WH1'));
      const r = await actOk(fo.id, 'pick', keyFor('WH1'), { lines: [{ line_id: 'L2', picked: 0 }] });
      expect(r.fulfillment.status).toBe('picking');
      const byLine = Object.fromEntries(r.fulfillment.lines.map((l: Json) => [l.line_id, l]));
      expect(byLine.L1).toMatchObject({ quantity: 2, picked: 2 });
      expect(byLine.L2).toMatchObject({ quantity: 0, picked: 0 });
      expect(await positions(env, 'WH1')).toMatchObject({ B1: { reserved: 2 }, B2: { reserved: 0 } });
      expect(await reserved('ST-PARIS', 'B2')).toBe(2);
      const after = await getOrder(o.id);
      expect(fosAt(after, 'ST-PARIS')).toMatchObject([{ status: 'released', lines: [{ line_id: 'L2', quantity: 2 }] }]);
      await actOk(fo.id, 'pack', keyFor('WH1'));
      await actOk(fo.id, 'ship', keyFor('WH1'), { tracking: 'T' });
      expect(await positions(env, 'WH1')).toMatchObject({ B1: { on_hand: 3, reserved: 0 }, B2: { on_hand: 5, reserved: 0 } });
      const shipped = await getOrder(o.id);
      expect(line(shipped, 'L1')).toMatchObject({ shipped: 2 });
      expect(line(shipped, 'L2')).toMatchObject({ shipped: 0, allocated: 2 });
      expect(shipped.status).toBe('partially_shipped');
    });

    it('a short pick with nothing left elsewhere cancels the missing units', async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 3 }]);
      const o = await capture('P-3', [['B1', 3, 1000]]);
      const fo = (await validate(o.id)).fulfillment_orders[0];
      await actOk(fo.id, 'accept', keyFor('WH1'));
      const r = await actOk(fo.id, 'pick', keyFor('WH1'), { lines: [{ line_id: 'L1', picked: 2 }] });
      expect(r.created).toEqual([]);
      expect(r.cancelled).toEqual([{ line_id: 'L1', quantity: 1 }]);
      expect(line(await getOrder(o.id), 'L1')).toMatchObject({ quantity: 3, allocated: 2, cancelled: 1 });
      expect(await reserved('WH1', 'B1')).toBe(2);
      await actOk(fo.id, 'pack', keyFor('WH1'));
      const s = await actOk(fo.id, 'ship', keyFor('WH1'), { tracking: 'T' });
      expect(s.order_status).toBe('shipped');
      expect(await positions(env, 'WH1')).toMatchObject({ B1: { on_hand: 1, reserved: 0 } });
    });

    it('nothing picked at all is a rejection, re-sourced elsewhere', async () => {
      const { orderId, fo, from, to } = await releasedAtOneOfTwo('P-4', 'B1', 2);
      await actOk(fo.id, 'accept', keyFor(from));
      const r = await actOk(fo.id, 'pick', keyFor(from), { lines: [{ line_id: 'L1', picked: 0 }] });
      expect(r.fulfillment).toMatchObject({ status: 'rejected', reason: 'nothing picked' });
      expect(r.created).toHaveLength(1);
      expect(await reserved(from, 'B1')).toBe(0);
      expect(await reserved(to, 'B1')).toBe(2);
      const o = await getOrder(orderId);
      expect(o.status).toBe('validated');
      expect(line(o, 'L1')).toMatchObject({ allocated: 2, cancelled: 0 });
      const tl = await timeline(orderId);
      expect(tl.map((e: Json) => e.type).slice(-4)).toEqual(['fulfillment.rejected', 'fulfillment.created', 'fulfillment.released', 'order.resourced']);
      expect(tl.at(-4).data.reason).toBe('nothing picked');
      // A rejected fulfilment order cannot be packed.
      expectError(await act(fo.id, 'pack', keyFor(from)), 409, 'invalid_state');
    });
  });

  // ---- 3. acceptance deadlines -------------------------------------------------------------------

  describe('acceptance deadline', () => {
    const deadlineOf = (location: string) => env.ctx.orders.acceptDeadlineMs[location === 'WH1' ? 'warehouse' : 'store'];

    it('a location that does not accept in time loses the work on the next sweep', async () => {
      const { orderId, fo, from, to } = await releasedAtOneOfTwo('D-1', 'B1', 2);
      expect(Date.parse(fo.accept_by)).toBe(env.clock.now() + deadlineOf(from));

      env.clock.advance(deadlineOf(from) - MIN);
      expect((await sweepOrders(env.ctx)).deadlinesMissed).toBe(0);
      expect((await getOrder(orderId)).fulfillment_orders[0].status).toBe('released');

      env.clock.advance(2 * MIN);
      const s = await sweepOrders(env.ctx);
      expect(s.deadlinesMissed).toBe(1);
      const o = await getOrder(orderId);
      const old = o.fulfillment_orders.find((f: Json) => f.id === fo.id);
      expect(old).toMatchObject({ status: 'rejected', reason: 'deadline missed' });
      expect(live(o)).toMatchObject([{ location: to, status: 'released' }]);
      expect(Date.parse(live(o)[0].accept_by)).toBe(env.clock.now() + deadlineOf(to));
      expect(line(o, 'L1')).toMatchObject({ allocated: 2, cancelled: 0 });
      expect(await reserved(from, 'B1')).toBe(0);
      expect(await reserved(to, 'B1')).toBe(2);
      const tl = await timeline(orderId);
      expect(tl.map((e: Json) => e.type).slice(-4)).toEqual(['fulfillment.rejected', 'fulfillment.created', 'fulfillment.released', 'order.resourced']);
      expect(tl.at(-4).data).toMatchObject({ deadline_missed: true });
      expect(tl.at(-1).data).toMatchObject({ why: 'deadline_missed', from });
      // The late location can no longer accept.
      expectError(await act(fo.id, 'accept', keyFor(from)), 409, 'invalid_state');
      // A second sweep finds nothing more to do.
      expect((await sweepOrders(env.ctx)).deadlinesMissed).toBe(0);
      expect(await decisions(orderId)).toHaveLength(2);
    });

    it('an acceptance that lands before the sweep wins', async () => {
      const { orderId, fo, from, to } = await releasedAtOneOfTwo('D-2', 'B1', 2);
      env.clock.advance(deadlineOf(from) + MIN);
      await actOk(fo.id, 'accept', keyFor(from));
      expect((await sweepOrders(env.ctx)).deadlinesMissed).toBe(0);
      const o = await getOrder(orderId);
      expect(o.fulfillment_orders).toMatchObject([{ id: fo.id, status: 'accepted' }]);
      expect(await reserved(from, 'B1')).toBe(2);
      expect(await reserved(to, 'B1')).toBe(0);
      expect(await decisions(orderId)).toHaveLength(1);
    });

    it('an acceptance racing the sweep: exactly one of them wins', async () => {
      const { orderId, fo, from, to } = await releasedAtOneOfTwo('D-3', 'B1', 2);
      env.clock.advance(deadlineOf(from) + MIN);
      const [acc, sweep] = await Promise.all([act(fo.id, 'accept', keyFor(from)), sweepOrders(env.ctx)]);
      const o = await getOrder(orderId);
      if (acc.statusCode === 200) {
        expect(sweep.deadlinesMissed).toBe(0);
        expect(o.fulfillment_orders).toMatchObject([{ status: 'accepted' }]);
        expect(await reserved(from, 'B1')).toBe(2);
        expect(await reserved(to, 'B1')).toBe(0);
      } else {
        expectError(acc, 409, 'invalid_state');
        expect(sweep.deadlinesMissed).toBe(1);
        expect(live(o)).toMatchObject([{ location: to, status: 'released' }]);
        expect(await reserved(from, 'B1')).toBe(0);
        expect(await reserved(to, 'B1')).toBe(2);
      }
    });

    it('two OMS processes sweeping at once re-source it once', async () => {
      const { orderId, from, to } = await releasedAtOneOfTwo('D-4', 'B1', 2);
      const peer = await env.openPeer();
      env.clock.advance(deadlineOf(from) + MIN);
      const results = await Promise.all([sweepOrders(env.ctx), sweepOrders(peer)]);
      expect(results[0].deadlinesMissed + results[1].deadlinesMissed).toBe(1);
      const o = await getOrder(orderId);
      expect(o.fulfillment_orders).toHaveLength(2);
      expect(live(o)).toMatchObject([{ location: to, status: 'released' }]);
      const t = await types(orderId);
      expect(t.filter((x) => x === 'order.resourced')).toHaveLength(1);
      expect(t.filter((x) => x === 'fulfillment.rejected')).toHaveLength(1);
      expect(await decisions(orderId)).toHaveLength(2);
      expect(await reserved(from, 'B1')).toBe(0);
      expect(await reserved(to, 'B1')).toBe(2);
      expect(line(o, 'L1')).toMatchObject({ allocated: 2, cancelled: 0 });
    });

    it('a missed deadline with stock nowhere else cancels the units', async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 2 }]);
      const o = await capture('D-5', [['B1', 2, 1000]]);
      await validate(o.id);
      env.clock.advance(deadlineOf('WH1') + MIN);
      expect((await sweepOrders(env.ctx)).deadlinesMissed).toBe(1);
      const after = await getOrder(o.id);
      expect(after.status).toBe('cancelled');
      expect(line(after, 'L1')).toMatchObject({ allocated: 0, cancelled: 2 });
      expect(await reserved('WH1', 'B1')).toBe(0);
    });
  });

  // ---- 4. expiry -----------------------------------------------------------------------------------

  describe('expiry of unpaid orders', () => {
    it('an unpaid order past its payment deadline expires on the sweep and releases its stock', async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 5 }]);
      const o = await capture('E-1', [['B1', 2, 1000]]);
      expect(Date.parse(o.expires_at)).toBe(env.clock.now() + env.ctx.orders.paymentTtlMs);
      expect(await reserved('WH1', 'B1')).toBe(2);
      const avail = async () => (await env.app.inject({ method: 'GET', url: '/availability/B1?channel=web', headers: env.auth() })).json().available;
      expect(await avail()).toBe(3);

      env.clock.advance(env.ctx.orders.paymentTtlMs - 1000);
      expect((await sweepOrders(env.ctx)).expired).toBe(0);
      expect((await getOrder(o.id)).status).toBe('pending_payment');

      env.clock.advance(2000);
      expect((await sweepOrders(env.ctx)).expired).toBe(1);
      const after = await getOrder(o.id);
      expect(after.status).toBe('expired');
      expect(after.expires_at).toBeNull();
      expect(after.fulfillment_orders).toMatchObject([{ status: 'cancelled' }]);
      expect(line(after, 'L1')).toMatchObject({ quantity: 2, allocated: 0, backordered: 0, cancelled: 2 });
      expect(await positions(env, 'WH1')).toMatchObject({ B1: { on_hand: 5, reserved: 0 } });
      expect(await avail()).toBe(5);
      const t = await types(o.id);
      expect(t.slice(-2).sort()).toEqual(['fulfillment.cancelled', 'order.expired']);
      // Too late to pay: it cannot be validated any more, and a second sweep does nothing.
      expectError(await env.app.inject({ method: 'POST', url: `/orders/${o.id}/validate`, headers: env.auth(), payload: {} }), 409, 'invalid_state');
      expect((await sweepOrders(env.ctx)).expired).toBe(0);
      expect((await types(o.id)).filter((x) => x === 'order.expired')).toHaveLength(1);
    });

    it('a validated order never expires', async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 5 }]);
      const o = await capture('E-2', [['B1', 2, 1000]]);
      const v = await validate(o.id);
      expect(v.expires_at).toBeNull();
      env.clock.advance(env.ctx.orders.paymentTtlMs * 2);
      expect((await sweepOrders(env.ctx)).expired).toBe(0);
      const after = await getOrder(o.id);
      expect(after.status).toBe('validated');
      expect(after.fulfillment_orders).toMatchObject([{ status: 'released' }]);
      expect(await reserved('WH1', 'B1')).toBe(2);
      expect(await types(o.id)).not.toContain('order.expired');
    });

    it('an order paid by bank transfer gets the longer manual deadline', async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 5 }]);
      const o = await capture('E-3', [['B1', 1, 1000]], { tender: 'bank_transfer' });
      expect(Date.parse(o.expires_at)).toBe(env.clock.now() + env.ctx.orders.manualPaymentTtlMs);
      env.clock.advance(env.ctx.orders.paymentTtlMs + MIN);
      expect((await sweepOrders(env.ctx)).expired).toBe(0);
      env.clock.advance(env.ctx.orders.manualPaymentTtlMs);
      expect((await sweepOrders(env.ctx)).expired).toBe(1);
      expect((await getOrder(o.id)).status).toBe('expired');
    });

    it('two OMS processes sweeping at once expire it once', async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 5 }]);
      const o = await capture('E-4', [['B1', 2, 1000]]);
      const peer = await env.openPeer();
      env.clock.advance(env.ctx.orders.paymentTtlMs + MIN);
      const results = await Promise.all([sweepOrders(env.ctx), sweepOrders(peer)]);
      expect(results[0].expired + results[1].expired).toBe(1);
      const t = await types(o.id);
      expect(t.filter((x) => x === 'order.expired')).toHaveLength(1);
      expect(t.filter((x) => x === 'fulfillment.cancelled')).toHaveLength(1);
      expect((await getOrder(o.id)).status).toBe('expired');
      expect(await positions(env, 'WH1')).toMatchObject({ B1: { on_hand: 5, reserved: 0 } });
    });
  });

  // ---- 5. scope and invalid transitions ---------------------------------------------------------------

  describe('scope', () => {
    it("a location key neither sees nor moves another location's fulfilment order", async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 5 }]);
      await seed('ST-PARIS', [{ sku: 'B2', on_hand: 5 }]);
      const atWh = await capture('S-1', [['B1', 1, 1000]]);
      const atStore = await capture('S-2', [['B2', 1, 1000]]);
      const whFo = (await validate(atWh.id)).fulfillment_orders[0];
      const stFo = (await validate(atStore.id)).fulfillment_orders[0];
      expect(whFo.location).toBe('WH1');
      expect(stFo.location).toBe('ST-PARIS');
      const store = keyFor('ST-PARIS');
      const wms = keyFor('WH1');

      const before = { wh: await state(atWh.id), st: await state(atStore.id) };
      expectError(await env.app.inject({ method: 'GET', url: `/fulfillment-orders/${whFo.id}`, headers: env.auth(store) }), 404, 'not_found');
      for (const [action, payload] of [['accept', {}], ['reject', { reason: 'x' }], ['pick', {}], ['pack', {}], ['ship', {}], ['cancel', {}], ['release', {}]] as const) {
        expectError(await act(whFo.id, action, store, payload), 404, 'not_found');
        expectError(await act(stFo.id, action, wms, payload), 404, 'not_found');
      }
      expectError(await env.app.inject({ method: 'GET', url: `/fulfillment-orders/${stFo.id}`, headers: env.auth(wms) }), 404, 'not_found');
      expect({ wh: await state(atWh.id), st: await state(atStore.id) }).toEqual(before);

      const list = async (key: string, query = '') => {
        const r = await env.app.inject({ method: 'GET', url: `/fulfillment-orders${query}`, headers: env.auth(key) });
        expect(r.statusCode, r.body).toBe(200);
        return r.json().items.map((f: Json) => f.id);
      };
      expect(await list(store)).toEqual([stFo.id]);
      expect(await list(store, '?location=WH1')).toEqual([]);
      expect(await list(wms)).toEqual([whFo.id]);
      expect(await list(wms, '?location=ST-PARIS')).toEqual([]);
      expect((await list(env.adminKey)).sort()).toEqual([whFo.id, stFo.id].sort());
      // The order itself: the store sees only its own fulfilment orders in it, if it sees it at all.
      expectError(await env.app.inject({ method: 'GET', url: `/orders/${atWh.id}`, headers: env.auth(store) }), 404, 'not_found');
      // A channel key has no work list.
      expectError(await env.app.inject({ method: 'GET', url: '/fulfillment-orders', headers: env.auth(web) }), 403, 'forbidden');
    });

    it('a location key cannot cancel or release (403), even its own', async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 5 }]);
      const o = await capture('S-3', [['B1', 1, 1000]]);
      const fo = o.fulfillment_orders[0];
      const before = await state(o.id);
      // created, before validation: release is the admin's
      expectError(await act(fo.id, 'release', keyFor('WH1')), 403, 'forbidden');
      expectError(await act(fo.id, 'cancel', keyFor('WH1'), { reason: 'no' }), 403, 'forbidden');
      expect(await state(o.id)).toEqual(before);
      await validate(o.id);
      const mid = await state(o.id);
      expectError(await act(fo.id, 'cancel', keyFor('WH1')), 403, 'forbidden');
      expectError(await act(fo.id, 'release', keyFor('WH1')), 403, 'forbidden');
      expect(await state(o.id)).toEqual(mid);
    });

    it('invalid transitions are 409 invalid_state and change nothing', async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 5 }]);
      const o = await capture('S-4', [['B1', 2, 1000]]);
      const fo = o.fulfillment_orders[0];
      const wms = keyFor('WH1');
      let before = await state(o.id);
      // Not released yet (unpaid): nothing to accept; a non-backorder cannot be released by hand before validation.
      expectError(await act(fo.id, 'accept', wms), 409, 'invalid_state');
      expectError(await act(fo.id, 'release', env.adminKey), 409, 'invalid_state');
      expect(await state(o.id)).toEqual(before);
      await validate(o.id);
      await actOk(fo.id, 'accept', wms);
      before = await state(o.id);
      expectError(await act(fo.id, 'accept', wms), 409, 'invalid_state');
      expectError(await act(fo.id, 'ship', wms, { tracking: 'T' }), 409, 'invalid_state');
      expectError(await act(fo.id, 'pack', wms), 409, 'invalid_state');
      expectError(await act(fo.id, 'release', env.adminKey), 409, 'invalid_state');
      expect(await state(o.id)).toEqual(before);
      await actOk(fo.id, 'pick', wms);
      before = await state(o.id);
      expectError(await act(fo.id, 'ship', wms, { tracking: 'T' }), 409, 'invalid_state');
      expectError(await act(fo.id, 'reject', wms, { reason: 'too late' }), 409, 'invalid_state');
      expectError(await act(fo.id, 'pick', wms), 409, 'invalid_state');
      expect(await state(o.id)).toEqual(before);
      await actOk(fo.id, 'pack', wms);
      await actOk(fo.id, 'ship', wms, { tracking: 'T' });
      before = await state(o.id);
      expectError(await act(fo.id, 'ship', wms, { tracking: 'T' }), 409, 'invalid_state');
      expectError(await act(fo.id, 'cancel', env.adminKey), 409, 'invalid_state');
      expect(await state(o.id)).toEqual(before);
      expect(before.wh1.B1).toEqual({ on_hand: 3, reserved: 0, quarantine: 0 });
    });

    it('an admin cancel stops the work, releases the stock and cancels the units', async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 5 }]);
      const o = await capture('S-5', [['B1', 2, 1000]]);
      const fo = (await validate(o.id)).fulfillment_orders[0];
      await actOk(fo.id, 'accept', keyFor('WH1'));
      const r = await actOk(fo.id, 'cancel', env.adminKey, { reason: 'customer called' });
      expect(r.fulfillment).toMatchObject({ status: 'cancelled', reason: 'customer called' });
      expect(r.order_status).toBe('cancelled');
      expect(line(await getOrder(o.id), 'L1')).toMatchObject({ allocated: 0, cancelled: 2 });
      expect(await reserved('WH1', 'B1')).toBe(0);
      expect((await types(o.id)).at(-1)).toBe('fulfillment.cancelled');
    });
  });

  // ---- 6. concurrency --------------------------------------------------------------------------------

  describe('concurrency', () => {
    it('two parallel accepts: exactly one wins', async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 5 }]);
      const o = await capture('C-1', [['B1', 2, 1000]]);
      const fo = (await validate(o.id)).fulfillment_orders[0];
      const rs = await Promise.all([act(fo.id, 'accept', keyFor('WH1')), act(fo.id, 'accept', keyFor('WH1'))]);
      expect(rs.map((r) => r.statusCode).sort()).toEqual([200, 409]);
      expectError(rs.find((r) => r.statusCode === 409) as Json, 409, 'invalid_state');
      expect((await types(o.id)).filter((t) => t === 'fulfillment.accepted')).toHaveLength(1);
      expect((await getOrder(o.id)).fulfillment_orders).toMatchObject([{ status: 'accepted', version: fo.version + 1 }]);
    });

    it('parallel reject and accept: one wins and the stock follows it', async () => {
      const { orderId, fo, from, to } = await releasedAtOneOfTwo('C-2', 'B1', 2);
      const [rej, acc] = await Promise.all([act(fo.id, 'reject', keyFor(from), { reason: 'busy' }), act(fo.id, 'accept', keyFor(from))]);
      const o = await getOrder(orderId);
      const mine = o.fulfillment_orders.find((f: Json) => f.id === fo.id);
      // Either the rejection won (the accept found it gone), or the accept won and the
      // rejection failed, or the accept landed first and the rejection came after it.
      if (rej.statusCode === 200) {
        expect(mine.status).toBe('rejected');
        if (acc.statusCode !== 200) expectError(acc, 409, 'invalid_state');
        expect(live(o)).toMatchObject([{ location: to, status: 'released' }]);
        expect(await reserved(from, 'B1')).toBe(0);
        expect(await reserved(to, 'B1')).toBe(2);
        expect((await types(orderId)).filter((t) => t === 'order.resourced')).toHaveLength(1);
      } else {
        expectError(rej, 409, 'invalid_state');
        expect(acc.statusCode).toBe(200);
        expect(mine.status).toBe('accepted');
        expect(o.fulfillment_orders).toHaveLength(1);
        expect(await reserved(from, 'B1')).toBe(2);
        expect(await reserved(to, 'B1')).toBe(0);
        expect(await types(orderId)).not.toContain('order.resourced');
      }
      expect(line(o, 'L1')).toMatchObject({ allocated: 2, cancelled: 0 });
      expect(live(o)).toHaveLength(1);
    });

    it('two parallel rejections re-source once', async () => {
      const { orderId, fo, from, to } = await releasedAtOneOfTwo('C-3', 'B1', 2);
      const rs = await Promise.all([act(fo.id, 'reject', keyFor(from), { reason: 'a' }), act(fo.id, 'reject', keyFor(from), { reason: 'b' })]);
      expect(rs.map((r) => r.statusCode).sort()).toEqual([200, 409]);
      const o = await getOrder(orderId);
      expect(o.fulfillment_orders).toHaveLength(2);
      expect(live(o)).toMatchObject([{ location: to }]);
      expect(await reserved(from, 'B1')).toBe(0);
      expect(await reserved(to, 'B1')).toBe(2);
      expect((await types(orderId)).filter((t) => t === 'order.resourced')).toHaveLength(1);
    });

    it('parallel short picks and rejections across many orders keep every counter right', async () => {
      await seed('WH1', [{ sku: 'B3', on_hand: 12 }]);
      await seed('ST-PARIS', [{ sku: 'B3', on_hand: 12 }]);
      const fos: Array<{ orderId: string; fo: Json }> = [];
      for (let i = 0; i < 6; i++) {
        const o = await capture(`C-M-${i}`, [['B3', 2, 1000]]);
        const fo = (await validate(o.id)).fulfillment_orders[0];
        await actOk(fo.id, 'accept', keyFor(fo.location));
        fos.push({ orderId: o.id, fo });
      }
      const rs = await Promise.all(
        fos.map(({ fo }, i) => (i % 2 ? act(fo.id, 'reject', keyFor(fo.location), { reason: 'x' }) : act(fo.id, 'pick', keyFor(fo.location), { lines: [{ line_id: 'L1', picked: 1 }] }))),
      );
      expect(rs.map((r) => r.statusCode)).toEqual(fos.map(() => 200));
      await expectBooksBalance(
        fos.map((f) => f.orderId),
        'B3',
      );
      for (const { orderId } of fos) expect(line(await getOrder(orderId), 'L1')).toMatchObject({ allocated: 2, cancelled: 0 });
    });

    it('re-sourcings going opposite ways at once (WH1 → ST-PARIS and ST-PARIS → WH1) both succeed', async () => {
      // P at WH1, Q at ST-PARIS; then stock at both, and each location rejects its own at once.
      const pairs: Array<{ p: Json; q: Json }> = [];
      for (let i = 0; i < 3; i++) {
        const sku = ['B1', 'B2', 'B3'][i];
        await seed('WH1', [{ sku, on_hand: 2 }]);
        await seed('ST-PARIS', [{ sku, on_hand: 0 }]);
        const p = await capture(`OPP-P-${i}`, [[sku, 2, 1000]]);
        await seed('WH1', [{ sku, on_hand: 2 }]);
        await seed('ST-PARIS', [{ sku, on_hand: 2 }]);
        const q = await capture(`OPP-Q-${i}`, [[sku, 2, 1000]]);
        expect([p.fulfillment_orders[0].location, q.fulfillment_orders[0].location]).toEqual(['WH1', 'ST-PARIS']);
        env.clock.advance(MIN);
        await seed('WH1', [{ sku, on_hand: 10 }]);
        await seed('ST-PARIS', [{ sku, on_hand: 10 }]);
        pairs.push({ p: (await validate(p.id)).fulfillment_orders[0], q: (await validate(q.id)).fulfillment_orders[0] });
      }
      for (const [i, { p, q }] of pairs.entries()) {
        const [rp, rq] = await Promise.all([act(p.id, 'reject', keyFor('WH1'), { reason: 'busy' }), act(q.id, 'reject', keyFor('ST-PARIS'), { reason: 'busy' })]);
        expect(rp.statusCode, rp.body).toBe(200);
        expect(rq.statusCode, rq.body).toBe(200);
        const sku = ['B1', 'B2', 'B3'][i];
        expect(live(await getOrder(p.order_id))).toMatchObject([{ location: 'ST-PARIS', lines: [{ sku, quantity: 2 }] }]);
        expect(live(await getOrder(q.order_id))).toMatchObject([{ location: 'WH1', lines: [{ sku, quantity: 2 }] }]);
        await expectBooksBalance([p.order_id, q.order_id], sku);
      }
    });

    it('two fulfilment orders of one split order rejected at once: each rejection excludes its location for the other', async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 3 }]);
      await seed('ST-PARIS', [{ sku: 'B1', on_hand: 3 }]);
      const o = await capture('SPLIT', [['B1', 4, 1000]]);
      const split = (await validate(o.id)).fulfillment_orders;
      expect(split).toHaveLength(2);
      expect(split.map((f: Json) => f.location).sort()).toEqual(['ST-PARIS', 'WH1']);
      env.clock.advance(MIN);
      await seed('WH1', [{ sku: 'B1', on_hand: 20 }]);
      await seed('ST-PARIS', [{ sku: 'B1', on_hand: 20 }]);
      const rs = await Promise.all(split.map((f: Json) => act(f.id, 'reject', keyFor(f.location), { reason: 'busy' })));
      expect(rs.map((r) => r.statusCode)).toEqual([200, 200]);
      // As if one came first: its units moved to the other location, whose own rejection,
      // coming second, excludes both, so its units are sourced nowhere and are cancelled.
      const after = await getOrder(o.id);
      const stillLive = live(after);
      expect(stillLive).toHaveLength(1);
      const first = split.find((f: Json) => f.location !== stillLive[0].location);
      const second = split.find((f: Json) => f.location === stillLive[0].location);
      expect(stillLive[0].lines[0].quantity).toBe(first.lines[0].quantity);
      expect(line(after, 'L1')).toMatchObject({ quantity: 4, allocated: first.lines[0].quantity, cancelled: second.lines[0].quantity });
      expect((await types(o.id)).filter((t) => t === 'order.resourced')).toHaveLength(2);
      await expectBooksBalance([o.id], 'B1');
    });

    it('an order cancellation racing a fulfilment transition: one consistent outcome, never a server error', async () => {
      await seed('WH1', [{ sku: 'B1', on_hand: 50 }]);
      await seed('ST-PARIS', [{ sku: 'B1', on_hand: 50 }]);
      const steps: Array<{ prepare: string[]; action: string; payload: object }> = [
        { prepare: [], action: 'accept', payload: {} },
        { prepare: [], action: 'reject', payload: { reason: 'busy' } },
        { prepare: ['accept'], action: 'pick', payload: { lines: [{ line_id: 'L1', picked: 1 }] } },
        { prepare: ['accept', 'pick'], action: 'pack', payload: {} },
        { prepare: ['accept', 'pick', 'pack'], action: 'ship', payload: { tracking: 'T' } },
        { prepare: [], action: 'cancel', payload: {} },
      ];
      const ids: string[] = [];
      for (const [i, step] of steps.entries()) {
        const o = await capture(`X-${i}`, [['B1', 2, 1000]]);
        ids.push(o.id);
        const fo = (await validate(o.id)).fulfillment_orders[0];
        for (const a of step.prepare) await actOk(fo.id, a, keyFor(fo.location));
        const key = step.action === 'cancel' ? env.adminKey : keyFor(fo.location);
        const [c, a] = await Promise.all([
          env.app.inject({ method: 'POST', url: `/orders/${o.id}/cancel`, headers: env.auth(web), payload: { reason: 'changed my mind' } }),
          act(fo.id, step.action, key, step.payload),
        ]);
        for (const r of [c, a]) {
          expect([200, 409], `${step.action}: ${r.body}`).toContain(r.statusCode);
          if (r.statusCode === 409) expectError(r, 409, 'invalid_state');
        }
        expect(c.statusCode === 200 || a.statusCode === 200, step.action).toBe(true);
        const after = await getOrder(o.id);
        if (step.action === 'ship' && a.statusCode === 200 && c.statusCode === 409) expect(after.status).toBe('shipped');
        else if (c.statusCode === 200) expect(live(after).filter((f: Json) => f.status !== 'shipped')).toEqual([]);
      }
      await expectBooksBalance(ids, 'B1');
    });
  });

  // ---- 7. backorders ------------------------------------------------------------------------------

  describe('backorder', () => {
    async function backordered(ref: string, qty: number): Promise<{ orderId: string; fo: Json }> {
      const s = await env.app.inject({ method: 'POST', url: '/supply', headers: env.auth(), payload: { kind: 'purchase_order', reference: 'PO-1', location: 'WH1', sku: 'A1', quantity: 10, expected_at: new Date(env.clock.now() + 5 * 86_400_000).toISOString() } });
      expect(s.statusCode, s.body).toBe(200);
      const o = await capture(ref, [['A1', qty, 1000]], { key: pre });
      expect(o.fulfillment_orders).toHaveLength(1);
      const fo = o.fulfillment_orders[0];
      expect(fo).toMatchObject({ location: 'WH1', backorder: true, status: 'created' });
      expect(line(o, 'L1')).toMatchObject({ quantity: qty, allocated: 0, backordered: qty, cancelled: 0 });
      expect(await reserved('WH1', 'A1')).toBe(0);
      return { orderId: o.id, fo };
    }

    it('a channel without future stock cannot capture it', async () => {
      await env.app.inject({ method: 'POST', url: '/supply', headers: env.auth(), payload: { kind: 'purchase_order', reference: 'PO-1', location: 'WH1', sku: 'A1', quantity: 10, expected_at: new Date(env.clock.now() + 5 * 86_400_000).toISOString() } });
      const r = await env.app.inject({ method: 'POST', url: '/orders', headers: env.auth(web), payload: orderBody('BO-0', [['A1', 2, 1000]]) });
      expectError(r, 409, 'out_of_stock');
    });

    it('stays created on validation; release refused while the stock is missing; released and reserved once it is in', async () => {
      const { orderId, fo } = await backordered('BO-1', 3);
      // Not validated yet: the admin cannot release it either.
      expectError(await act(fo.id, 'release', env.adminKey), 409, 'invalid_state');
      const v = await validate(orderId);
      expect(v.status).toBe('validated');
      expect(v.fulfillment_orders).toMatchObject([{ id: fo.id, status: 'created', backorder: true, accept_by: null }]);
      expect(await types(orderId)).not.toContain('fulfillment.released');

      // Only 2 of the 3 units are in.
      await seed('WH1', [{ sku: 'A1', on_hand: 2 }]);
      let before = await state(orderId);
      expectError(await act(fo.id, 'release', env.adminKey), 409, 'insufficient_stock');
      expect(await state(orderId)).toEqual(before);
      expectError(await act(fo.id, 'release', keyFor('WH1')), 403, 'forbidden');
      expectError(await act(fo.id, 'accept', keyFor('WH1')), 409, 'invalid_state');
      expect(await state(orderId)).toEqual(before);

      env.clock.advance(MIN);
      await seed('WH1', [{ sku: 'A1', on_hand: 4 }]);
      before = await state(orderId);
      const r = await actOk(fo.id, 'release', env.adminKey);
      expect(r.fulfillment).toMatchObject({ status: 'released', backorder: false });
      expect(Date.parse(r.fulfillment.accept_by)).toBe(env.clock.now() + env.ctx.orders.acceptDeadlineMs.warehouse);
      expect(await positions(env, 'WH1')).toMatchObject({ A1: { on_hand: 4, reserved: 3 } });
      const o = await getOrder(orderId);
      expect(line(o, 'L1')).toMatchObject({ quantity: 3, allocated: 3, backordered: 0, cancelled: 0 });
      expect((await types(orderId)).at(-1)).toBe('fulfillment.released');
      // Released once only.
      expectError(await act(fo.id, 'release', env.adminKey), 409, 'invalid_state');
      expect(await reserved('WH1', 'A1')).toBe(3);

      for (const [action, payload] of [['accept', {}], ['pick', {}], ['pack', {}], ['ship', { tracking: 'BO' }]] as const) await actOk(fo.id, action, keyFor('WH1'), payload);
      const done = await getOrder(orderId);
      expect(done.status).toBe('shipped');
      expect(line(done, 'L1')).toMatchObject({ allocated: 3, shipped: 3 });
      expect(await positions(env, 'WH1')).toMatchObject({ A1: { on_hand: 1, reserved: 0 } });
    });

    it('two parallel releases reserve once', async () => {
      const { orderId, fo } = await backordered('BO-2', 2);
      await validate(orderId);
      await seed('WH1', [{ sku: 'A1', on_hand: 5 }]);
      const rs = await Promise.all([act(fo.id, 'release', env.adminKey), act(fo.id, 'release', env.adminKey)]);
      expect(rs.map((r) => r.statusCode).sort()).toEqual([200, 409]);
      expect(await reserved('WH1', 'A1')).toBe(2);
      expect(line(await getOrder(orderId), 'L1')).toMatchObject({ allocated: 2, backordered: 0 });
      expect((await types(orderId)).filter((t) => t === 'fulfillment.released')).toHaveLength(1);
    });

    it('an admin cancel of a backorder cancels its units without touching stock', async () => {
      const { orderId, fo } = await backordered('BO-3', 2);
      await validate(orderId);
      const r = await actOk(fo.id, 'cancel', env.adminKey, { reason: 'supplier late' });
      expect(r.order_status).toBe('cancelled');
      expect(line(await getOrder(orderId), 'L1')).toMatchObject({ allocated: 0, backordered: 0, cancelled: 2 });
      expect(await reserved('WH1', 'A1')).toBe(0);
    });

    it('a rejection with no stock elsewhere but incoming supply re-sources to a backorder', async () => {
      await seed('WH1', [{ sku: 'A1', on_hand: 2 }]);
      const s = await env.app.inject({ method: 'POST', url: '/supply', headers: env.auth(), payload: { kind: 'transfer', reference: 'TR-1', location: 'ST-PARIS', sku: 'A1', quantity: 5, expected_at: new Date(env.clock.now() + 3 * 86_400_000).toISOString() } });
      expect(s.statusCode, s.body).toBe(200);
      const o = await capture('BO-R', [['A1', 2, 1000]], { key: pre });
      expect(o.fulfillment_orders).toMatchObject([{ location: 'WH1', backorder: false }]);
      const fo = (await validate(o.id)).fulfillment_orders[0];
      const r = await actOk(fo.id, 'reject', keyFor('WH1'), { reason: 'damaged' });
      expect(r.created).toHaveLength(1);
      expect(r.cancelled).toEqual([]);
      const after = await getOrder(o.id);
      expect(live(after)).toMatchObject([{ id: r.created[0], location: 'ST-PARIS', backorder: true, status: 'created', accept_by: null }]);
      expect(line(after, 'L1')).toMatchObject({ quantity: 2, allocated: 0, backordered: 2, cancelled: 0 });
      expect(after.status).toBe('validated');
      expect(await reserved('WH1', 'A1')).toBe(0);
      expect((await types(o.id)).slice(-3)).toEqual(['fulfillment.rejected', 'fulfillment.created', 'order.resourced']);
      // The stock arrives at ST-PARIS: the admin releases it there.
      await seed('ST-PARIS', [{ sku: 'A1', on_hand: 5 }]);
      const rel = await actOk(r.created[0], 'release', env.adminKey);
      expect(rel.fulfillment).toMatchObject({ status: 'released', backorder: false, location: 'ST-PARIS' });
      expect(await reserved('ST-PARIS', 'A1')).toBe(2);
      expect(line(await getOrder(o.id), 'L1')).toMatchObject({ allocated: 2, backordered: 0 });
      await expectBooksBalance([o.id], 'A1');
    });

    it('an unpaid backorder expires like any order', async () => {
      const { orderId } = await backordered('BO-4', 2);
      env.clock.advance(env.ctx.orders.paymentTtlMs + MIN);
      expect((await sweepOrders(env.ctx)).expired).toBe(1);
      const o = await getOrder(orderId);
      expect(o.status).toBe('expired');
      expect(line(o, 'L1')).toMatchObject({ allocated: 0, backordered: 0, cancelled: 2 });
    });
  });
});
