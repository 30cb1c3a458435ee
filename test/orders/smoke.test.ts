import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/keys.ts';
import { checkIntegrity } from '../../src/inventory/integrity.ts';
import { checkOrderIntegrity } from '../../src/orders/integrity.ts';
import { type ApiEnv, BACKENDS, createApiEnv } from '../support/backends.ts';
import { homeOrderBody, smallNetwork } from '../support/fixtures.ts';
import { positions, seedStock } from '../api/helpers.ts';

const body = homeOrderBody;

describe.each(BACKENDS)('orders smoke on %s', (backend) => {
  let env: ApiEnv;
  let web: string;
  beforeAll(async () => {
    env = await createApiEnv(backend);
    await smallNetwork(env.ctx);
    web = (await createApiKey(env.ctx, { name: 'web', role: 'channel', channel: 'web' })).secret;
    await seedStock(env, 'WH1', '2026-06-01T09:00:00Z', [{ sku: 'A1', on_hand: 10 }, { sku: 'B1', on_hand: 5 }]);
  });
  afterAll(async () => env?.close());

  it('captures, validates, picks, packs, ships', async () => {
    const r = await env.app.inject({ method: 'POST', url: '/orders', headers: env.auth(web), payload: body('W-1', [['A1', 2, 1000], ['B1', 1, 2000]]) });
    expect(r.statusCode, r.body).toBe(201);
    const o = r.json();
    expect(o.status).toBe('pending_payment');
    expect(o.fulfillment_orders).toHaveLength(1);
    expect((await positions(env, 'WH1')).A1.reserved).toBe(2);
    const again = await env.app.inject({ method: 'POST', url: '/orders', headers: env.auth(web), payload: body('W-1', [['A1', 2, 1000], ['B1', 1, 2000]]) });
    expect(again.statusCode).toBe(200);
    expect(again.json().id).toBe(o.id);
    const v = await env.app.inject({ method: 'POST', url: `/orders/${o.id}/validate`, headers: env.auth(), payload: {} });
    expect(v.statusCode, v.body).toBe(200);
    expect(v.json().order.status).toBe('validated');
    const fo = v.json().order.fulfillment_orders[0];
    expect(fo.status).toBe('released');
    const wms = (await createApiKey(env.ctx, { name: 'wms', role: 'integration', locations: ['WH1'] })).secret;
    for (const [action, payload] of [['accept', {}], ['pick', { lines: [{ line_id: 'L1', picked: 2 }] }], ['pack', {}], ['ship', { tracking: 'TRK1' }]] as const) {
      const t = await env.app.inject({ method: 'POST', url: `/fulfillment-orders/${fo.id}/${action}`, headers: env.auth(wms), payload });
      expect(t.statusCode, t.body).toBe(200);
    }
    const got = await env.app.inject({ method: 'GET', url: `/orders/${o.id}`, headers: env.auth(web) });
    expect(got.json().status).toBe('shipped');
    const pos = await positions(env, 'WH1');
    expect(pos.A1).toEqual({ on_hand: 8, reserved: 0, quarantine: 0 });
    const tl = await env.app.inject({ method: 'GET', url: `/orders/${o.id}/timeline`, headers: env.auth(web) });
    expect(tl.json().entries.map((e: { type: string }) => e.type)).toEqual(['order.created', 'fulfillment.created', 'order.validated', 'fulfillment.released', 'fulfillment.accepted', 'fulfillment.picked', 'fulfillment.packed', 'fulfillment.shipped']);
    expect((await checkIntegrity(env.ctx.store.db)).issues).toEqual([]);
    expect((await checkOrderIntegrity(env.ctx.store.db)).issues).toEqual([]);
  });
});
