// Order capture under real races, on every backend: hundreds of POST /orders fired at once
// (Promise.all through app.inject) for a sku with 37 units across three locations, from one
// OMS app and from two apps on the same database (each its own projection; its own pool on
// PostgreSQL). Nothing is oversold, every loser gets a clean 409 out_of_stock, no 5xx, the
// stored orders hold exactly the reserved units, and the integrity check passes after each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, KeyVerifier } from '../../src/auth/keys.ts';
import type { Ctx } from '../../src/context.ts';
import { type App, buildApp } from '../../src/http/app.ts';
import { checkIntegrity } from '../../src/inventory/integrity.ts';
import { upsertLocation } from '../../src/inventory/locations.ts';
import { upsertSkus } from '../../src/inventory/skus.ts';
import { planSourcing } from '../../src/sourcing/service.ts';
import { type Json, positions, STACK_RE, seedStock } from '../api/helpers.ts';
import { type ApiEnv, BACKENDS, createApiEnv } from '../support/backends.ts';
import { smallNetwork } from '../support/fixtures.ts';

const ADDRESS = { line1: '1 rue de Rivoli', postal_code: '75001', city: 'Paris', country: 'FR', latitude: 48.8534, longitude: 2.3488 };
/** 37 units over three locations the web channel sees and home delivery sources from. */
const SPLIT = [
  { location: 'WH1', on_hand: 20 },
  { location: 'ST-PARIS', on_hand: 10 },
  { location: 'ST-LYON', on_hand: 7 },
] as const;
const TOTAL = 37;

/** A POST /orders body: home delivery in Paris, one line per [sku, quantity]. */
function orderBody(ref: string, lines: Array<[string, number]>, unitPrice = 1000) {
  const subtotal = lines.reduce((s, [, q]) => s + q * unitPrice, 0);
  return {
    external_reference: ref,
    customer: { name: 'Ada', email: 'ada@example.com' },
    currency: 'EUR',
    lines: lines.map(([sku, quantity]) => ({ sku, quantity, unit_price: unitPrice })),
    delivery_groups: [{ mode: 'home', address: ADDRESS, shipping_price: 500 }],
    totals: { subtotal, discount: 0, tax: 0, shipping: 500, total: subtotal + 500 },
    tenders: [{ method: 'card', amount: subtotal + 500 }],
  };
}

interface Answer {
  ref: string;
  status: number;
  code: string | null;
  orderId: string | null;
  body: string;
  json: Json;
}

/** Fires every capture at once, spread round-robin over the apps. */
async function storm(apps: App[], key: string, bodies: ReturnType<typeof orderBody>[]): Promise<Answer[]> {
  return Promise.all(
    bodies.map(async (b, i) => {
      const r = await apps[i % apps.length].inject({ method: 'POST', url: '/orders', headers: { authorization: `Bearer ${key}` }, payload: b });
      let json: Json = null;
      try {
        json = r.json();
      } catch {
        // a non-JSON body is reported through `body`
      }
      return { ref: b.external_reference, status: r.statusCode, code: json?.error?.code ?? null, orderId: r.statusCode < 300 ? (json?.id ?? null) : null, body: r.body, json };
    }),
  );
}

/** What the database holds for these skus and the orders whose reference starts with prefix. */
async function stored(ctx: Ctx, skus: string[], prefix: string) {
  const db = ctx.store.db;
  const skuIds = skus.map((s) => ctx.projection.sku(s)?.id as number);
  const orders = await db.selectFrom('orders').select(['id', 'external_reference', 'channel_id']).where('external_reference', 'like', `${prefix}%`).execute();
  const ids = orders.map((o) => o.id);
  const lines = ids.length ? await db.selectFrom('order_lines').select(['order_id', 'sku_id', 'quantity', 'allocated', 'backordered', 'cancelled']).where('order_id', 'in', ids).execute() : [];
  const pos = await db.selectFrom('stock_positions').select(['location_id', 'sku_id', 'on_hand', 'reserved']).where('sku_id', 'in', skuIds).execute();
  const res = await db.selectFrom('reservations').select(['id', 'location_id', 'sku_id', 'quantity', 'reference']).where('sku_id', 'in', skuIds).where('status', '=', 'active').execute();
  const fLines = ids.length
    ? await db
        .selectFrom('fulfillment_lines as fl')
        .innerJoin('fulfillment_orders as fo', 'fo.id', 'fl.fulfillment_id')
        .select(['fo.order_id', 'fo.location_id', 'fl.sku_id', 'fl.quantity', 'fl.reservation_id'])
        .where('fo.order_id', 'in', ids)
        .execute()
    : [];
  const sum = (xs: Array<{ quantity?: number; reserved?: number }>, k: 'quantity' | 'reserved') => xs.reduce((s, x) => s + Number(x[k] ?? 0), 0);
  return {
    orders,
    lines,
    fLines,
    reservations: res,
    orderedUnits: sum(lines, 'quantity'),
    allocatedUnits: lines.reduce((s, l) => s + Number(l.allocated), 0),
    reservedCounter: sum(pos, 'reserved'),
    activeReservations: sum(res, 'quantity'),
  };
}

/** Every stored order is fully allocated, each unit held by an active reservation of that order, and nothing else is reserved. */
function expectOrdersHoldTheirStock(s: Awaited<ReturnType<typeof stored>>) {
  for (const l of s.lines) {
    expect(Number(l.allocated), `order ${l.order_id} line`).toBe(Number(l.quantity));
    expect(Number(l.backordered) + Number(l.cancelled)).toBe(0);
  }
  const byId = new Map(s.reservations.map((r) => [r.id, r]));
  const orderIds = new Set(s.orders.map((o) => o.id));
  for (const fl of s.fLines) {
    const r = byId.get(fl.reservation_id as string);
    expect(r, `fulfilment line of ${fl.order_id} points at an active reservation`).toBeDefined();
    expect(r?.reference).toBe(fl.order_id);
    expect(Number(r?.quantity)).toBe(Number(fl.quantity));
    expect(Number(r?.location_id)).toBe(Number(fl.location_id));
    expect(Number(r?.sku_id)).toBe(Number(fl.sku_id));
  }
  // No reservation survives a refused or rolled-back capture.
  for (const r of s.reservations) expect(orderIds.has(r.reference as string), `reservation ${r.id} (${r.reference}) belongs to a stored order`).toBe(true);
  expect(s.fLines.length).toBe(s.reservations.length);
  expect(s.activeReservations).toBe(s.reservedCounter);
  expect(s.allocatedUnits).toBe(s.reservedCounter);
}

/** The one error model: { error: { code, message, details: { lines } } }, naming what could not be filled, and no stack trace. */
function expectCleanOutOfStock(a: Answer) {
  expect(Object.keys(a.json ?? {}), a.body).toEqual(['error']);
  expect(a.json.error.code).toBe('out_of_stock');
  expect(a.json.error.message.length).toBeGreaterThan(0);
  expect(a.body).not.toMatch(STACK_RE);
  const lines = a.json.error.details?.lines as Array<{ sku: string; unfilled: number }>;
  expect(lines?.length, a.body).toBeGreaterThan(0);
  for (const l of lines) expect(l.unfilled).toBeGreaterThan(0);
}

/** 10 connections per app (vitest runs files in parallel against one server) still run 10 captures at once. */
const POOL = 10;
const createRaceEnv = (backend: 'sqlite' | 'postgres') => createApiEnv(backend, { poolSize: POOL });

const summary = (answers: Answer[]) => {
  const by = new Map<string, number>();
  for (const a of answers) by.set(`${a.status} ${a.code ?? ''}`.trim(), (by.get(`${a.status} ${a.code ?? ''}`.trim()) ?? 0) + 1);
  return Object.fromEntries(by);
};

describe.each(BACKENDS)('order capture races on %s', (backend) => {
  let env: ApiEnv;
  let web = '';
  let seq = 0;
  const integrityHolds = async () => expect((await checkIntegrity(env.ctx.store.db)).issues).toEqual([]);

  beforeAll(async () => {
    env = await createRaceEnv(backend);
    await smallNetwork(env.ctx);
    // ST-LYON can ship parcels here, so home delivery may source from all three locations.
    await upsertLocation(env.ctx, { code: 'ST-LYON', name: 'Store Lyon', type: 'store', country: 'FR', latitude: 45.75, longitude: 4.85, capabilities: ['ships', 'click_and_collect'], tags: ['city'] });
    web = (await createApiKey(env.ctx, { name: 'web', role: 'channel', channel: 'web' })).secret;
  });
  afterAll(async () => env?.close());

  /** A fresh class-B sku (home-standard strategy, no backorder) with 37 units over WH1, ST-PARIS, ST-LYON. */
  async function freshSku(code: string): Promise<void> {
    await upsertSkus(env.ctx, [{ code, name: `Race ${code}`, demandClass: 'B' }]);
    for (const s of SPLIT) {
      // Each snapshot is newer than the last one at that location.
      const asOf = new Date(Date.parse('2026-06-01T09:00:00Z') + ++seq * 1000).toISOString();
      await seedStock(env, s.location, asOf, [{ sku: code, on_hand: s.on_hand }]);
    }
    // Preconditions: the web channel sees every unit (buffer 0), and the default rule set
    // sources home delivery from all three locations (37 units need all of them).
    expect(env.ctx.projection.channel('web')?.buffer).toBe(0);
    const av = await env.app.inject({ method: 'GET', url: `/availability/${code}?channel=web&view=locations`, headers: env.auth(web) });
    expect(av.statusCode, av.body).toBe(200);
    const seen = Object.fromEntries((av.json().locations as Array<{ location: string; available: number }>).filter((l) => l.available > 0).map((l) => [l.location, l.available]));
    expect(seen).toEqual({ WH1: 20, 'ST-PARIS': 10, 'ST-LYON': 7 });
    const plan = await planSourcing(env.ctx, {
      channel: 'web',
      lines: [{ sku: code, quantity: TOTAL, unitPrice: 1000 }],
      delivery: { mode: 'home', country: 'FR', postalCode: ADDRESS.postal_code, city: ADDRESS.city, latitude: ADDRESS.latitude, longitude: ADDRESS.longitude },
    });
    expect(plan.result.plan.complete).toBe(true);
    expect(plan.result.plan.shipments.map((s) => s.location).sort()).toEqual(['ST-LYON', 'ST-PARIS', 'WH1']);
  }

  async function reservedAt(code: string): Promise<number> {
    let total = 0;
    for (const s of SPLIT) total += (await positions(env, s.location))[code]?.reserved ?? 0;
    return total;
  }

  /** Every answer is 201 or a clean 409 out_of_stock: never a 5xx, never anything else. */
  function expectCleanAnswers(answers: Answer[]) {
    const bad = answers.filter((a) => a.status !== 201 && !(a.status === 409 && a.code === 'out_of_stock'));
    expect(bad, JSON.stringify(summary(answers))).toEqual([]);
    expect(answers.filter((a) => a.status >= 500)).toEqual([]);
    const won = answers.filter((a) => a.status === 201);
    expect(new Set(won.map((a) => a.orderId)).size).toBe(won.length);
    for (const a of answers.filter((x) => x.status === 409)) expectCleanOutOfStock(a);
  }

  it('200 concurrent 1-unit captures for 37 units: exactly 37 orders, 163 out_of_stock', async () => {
    await freshSku('OV1');
    const bodies = Array.from({ length: 200 }, (_, i) => orderBody(`ov1-${i}`, [['OV1', 1]]));
    const t0 = performance.now();
    const answers = await storm([env.app], web, bodies);
    const ms = performance.now() - t0;
    expectCleanAnswers(answers);
    expect(summary(answers), `in ${Math.round(ms)} ms`).toEqual({ '201': TOTAL, '409 out_of_stock': 200 - TOTAL });
    const s = await stored(env.ctx, ['OV1'], 'ov1-');
    expect(s.orders).toHaveLength(TOTAL);
    expect(new Set(s.orders.map((o) => o.external_reference))).toEqual(new Set(answers.filter((a) => a.status === 201).map((a) => a.ref)));
    expect(s.reservedCounter).toBe(TOTAL);
    expect(s.activeReservations).toBe(TOTAL);
    expect(await reservedAt('OV1')).toBe(TOTAL);
    expectOrdersHoldTheirStock(s);
    await integrityHolds();
  });

  it('200 concurrent 2-unit captures for 37 units: 18 orders, 36 units reserved, 1 left', async () => {
    await freshSku('OV2');
    const bodies = Array.from({ length: 200 }, (_, i) => orderBody(`ov2-${i}`, [['OV2', 2]]));
    const answers = await storm([env.app], web, bodies);
    expectCleanAnswers(answers);
    const s = await stored(env.ctx, ['OV2'], 'ov2-');
    expect(s.reservedCounter).toBeLessThanOrEqual(TOTAL);
    expect(s.reservedCounter).toBe(s.orderedUnits);
    // A 2-unit order is refused only when fewer than 2 units are left anywhere: 18 orders.
    expect(summary(answers)).toEqual({ '201': 18, '409 out_of_stock': 182 });
    expect(s.orders).toHaveLength(18);
    expect(s.reservedCounter).toBe(36);
    expectOrdersHoldTheirStock(s);
    await integrityHolds();
  });

  it('200 concurrent captures of 1, 2 or 3 units: Σ reserved ≤ 37 and equals Σ of stored orders', async () => {
    await freshSku('OV3');
    const qty = (i: number) => 1 + ((i * 7) % 3);
    const bodies = Array.from({ length: 200 }, (_, i) => orderBody(`ov3-${i}`, [['OV3', qty(i)]]));
    const answers = await storm([env.app], web, bodies);
    expectCleanAnswers(answers);
    const s = await stored(env.ctx, ['OV3'], 'ov3-');
    const won = answers.filter((a) => a.status === 201);
    expect(s.orders).toHaveLength(won.length);
    expect(s.reservedCounter).toBeLessThanOrEqual(TOTAL);
    expect(s.reservedCounter).toBe(s.orderedUnits);
    expect(s.orderedUnits).toBe(won.reduce((sum, a) => sum + qty(Number(a.ref.slice(4))), 0));
    // Availability only falls: a refused 1-unit order means nothing was left at that moment.
    if (answers.some((a, i) => a.status === 409 && qty(i) === 1)) expect(s.reservedCounter).toBe(TOTAL);
    expectOrdersHoldTheirStock(s);
    await integrityHolds();
  });

  it('200 concurrent two-line orders over two skus, lines in both orders: no deadlock, no oversell', async () => {
    await freshSku('OV4');
    await freshSku('OV5');
    const bodies = Array.from({ length: 200 }, (_, i) =>
      orderBody(
        `ov45-${i}`,
        i % 2
          ? [
              ['OV4', 1 + (i % 3)],
              ['OV5', 1],
            ]
          : [
              ['OV5', 1 + (i % 2)],
              ['OV4', 1],
            ],
      ),
    );
    const answers = await storm([env.app], web, bodies);
    expectCleanAnswers(answers);
    const s = await stored(env.ctx, ['OV4', 'OV5'], 'ov45-');
    expect(s.orders).toHaveLength(answers.filter((a) => a.status === 201).length);
    for (const code of ['OV4', 'OV5']) {
      const id = env.ctx.projection.sku(code)?.id as number;
      const reserved = await reservedAt(code);
      expect(reserved).toBeLessThanOrEqual(TOTAL);
      expect(reserved).toBe(s.lines.filter((l) => Number(l.sku_id) === id).reduce((sum, l) => sum + Number(l.quantity), 0));
    }
    expectOrdersHoldTheirStock(s);
    await integrityHolds();
  });

  it('two OMS apps on one database (own projections) split 200 captures: exactly 37 orders', async () => {
    await freshSku('PR1');
    // The peer loads its projection now, with the stock seeded; it then learns of the other
    // app's reservations only by losing races (no outbox follower runs here).
    const peer = await env.openPeer();
    const app2 = await buildApp({ ctx: peer, keys: new KeyVerifier(peer), bodyLimit: 2 * 1024 * 1024 });
    try {
      await app2.ready();
      // The peer sees the 37 units (and its key cache is warm, as app 1's is).
      const av = await app2.inject({ method: 'GET', url: '/availability/PR1?channel=web&view=locations', headers: env.auth(web) });
      expect((av.json().locations as Array<{ available: number }>).reduce((s, l) => s + l.available, 0)).toBe(TOTAL);
      const bodies = Array.from({ length: 200 }, (_, i) => orderBody(`pr1-${i}`, [['PR1', 1]]));
      const answers = await storm([env.app, app2], web, bodies);
      expectCleanAnswers(answers);
      const perApp = [0, 1].map((k) => answers.filter((a, i) => i % 2 === k && a.status === 201).length);
      expect(summary(answers), `orders per app: ${perApp.join(' + ')}`).toEqual({ '201': TOTAL, '409 out_of_stock': 200 - TOTAL });
      console.info(`${backend}: orders per app ${perApp.join(' + ')}`);
      const s = await stored(env.ctx, ['PR1'], 'pr1-');
      expect(s.orders).toHaveLength(TOTAL);
      expect(s.reservedCounter).toBe(TOTAL);
      expect(s.activeReservations).toBe(TOTAL);
      expectOrdersHoldTheirStock(s);
      await integrityHolds();
    } finally {
      await app2.close();
      // Its own pool on PostgreSQL: give the connections back now, not at the end of the file.
      await peer.store.close();
    }
  });

  it('two OMS apps, 1 to 3 units per order: Σ reserved ≤ 37 and equals Σ of stored orders', async () => {
    await freshSku('PR2');
    const peer = await env.openPeer();
    const app2 = await buildApp({ ctx: peer, keys: new KeyVerifier(peer), bodyLimit: 2 * 1024 * 1024 });
    try {
      await app2.ready();
      await app2.inject({ method: 'GET', url: '/availability/PR2?channel=web', headers: env.auth(web) });
      const qty = (i: number) => 1 + ((i * 5) % 3);
      const bodies = Array.from({ length: 200 }, (_, i) => orderBody(`pr2-${i}`, [['PR2', qty(i)]]));
      const answers = await storm([app2, env.app], web, bodies);
      expectCleanAnswers(answers);
      const s = await stored(env.ctx, ['PR2'], 'pr2-');
      expect(s.orders).toHaveLength(answers.filter((a) => a.status === 201).length);
      expect(s.reservedCounter).toBeLessThanOrEqual(TOTAL);
      expect(s.reservedCounter).toBe(s.orderedUnits);
      if (answers.some((a, i) => a.status === 409 && qty(i) === 1)) expect(s.reservedCounter).toBe(TOTAL);
      expectOrdersHoldTheirStock(s);
      await integrityHolds();
    } finally {
      await app2.close();
      // Its own pool on PostgreSQL: give the connections back now, not at the end of the file.
      await peer.store.close();
    }
  });

  it('one external reference captured 30 times at once, over two apps: one order, one reservation', async () => {
    await freshSku('DUP1');
    const peer = await env.openPeer();
    const app2 = await buildApp({ ctx: peer, keys: new KeyVerifier(peer), bodyLimit: 2 * 1024 * 1024 });
    try {
      await app2.ready();
      await app2.inject({ method: 'GET', url: '/availability/DUP1?channel=web', headers: env.auth(web) });
      const answers = await storm([env.app, app2], web, Array.from({ length: 30 }, () => orderBody('dup1-same', [['DUP1', 2]])));
      expect(answers.filter((a) => a.status !== 200 && a.status !== 201), JSON.stringify(summary(answers))).toEqual([]);
      expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
      expect(new Set(answers.map((a) => a.orderId)).size).toBe(1);
      const s = await stored(env.ctx, ['DUP1'], 'dup1-');
      expect(s.orders).toHaveLength(1);
      expect(s.reservedCounter).toBe(2);
      expectOrdersHoldTheirStock(s);
      await integrityHolds();
    } finally {
      await app2.close();
      // Its own pool on PostgreSQL: give the connections back now, not at the end of the file.
      await peer.store.close();
    }
  });

  it('one Idempotency-Key sent 30 times at once: one order; the others replay it or are told it is in flight', async () => {
    await freshSku('IK1');
    const body = orderBody('ik1-same', [['IK1', 1]]);
    const answers = await Promise.all(
      Array.from({ length: 30 }, () => env.app.inject({ method: 'POST', url: '/orders', headers: { ...env.auth(web), 'idempotency-key': 'ik1-key' }, payload: body })),
    );
    const codes = answers.map((r) => `${r.statusCode} ${r.statusCode >= 400 ? r.json().error.code : ''}`.trim());
    expect(codes.filter((c) => c !== '201' && c !== '409 idempotency_in_flight'), codes.join(', ')).toEqual([]);
    const first = answers.find((r) => r.statusCode === 201 && r.headers['idempotent-replayed'] === undefined);
    expect(first).toBeDefined();
    for (const r of answers.filter((x) => x.statusCode === 201)) expect(r.body).toBe(first?.body);
    const again = await env.app.inject({ method: 'POST', url: '/orders', headers: { ...env.auth(web), 'idempotency-key': 'ik1-key' }, payload: body });
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toBe(first?.body);
    const s = await stored(env.ctx, ['IK1'], 'ik1-');
    expect(s.orders).toHaveLength(1);
    expect(s.reservedCounter).toBe(1);
    await integrityHolds();
  });
});
