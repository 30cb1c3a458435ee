// Sourcing simulations over stored orders: the orders captured in a date range replay against
// the published rules and a draft, as they were asked at capture, and nothing changes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/keys.ts';
import { DEFAULT_RULE_SET } from '../../src/sourcing/presets.ts';
import { expectError, positions, seedStock } from '../api/helpers.ts';
import { type ApiEnv, BACKENDS, createApiEnv } from '../support/backends.ts';
import { smallNetwork } from '../support/fixtures.ts';

const ADDRESS = { line1: '1 rue de Rivoli', postal_code: '75001', city: 'Paris', country: 'FR', latitude: 48.8534, longitude: 2.3488 };
const order = (ref: string, sku: string, quantity: number) => ({
  external_reference: ref,
  customer: { name: 'Ada' },
  currency: 'EUR',
  lines: [{ sku, quantity, unit_price: 1000 }],
  delivery_groups: [{ mode: 'home', address: ADDRESS }],
  totals: { subtotal: quantity * 1000, discount: 0, tax: 0, shipping: 0, total: quantity * 1000 },
});

describe.each(BACKENDS)('simulations over stored orders on %s', (backend) => {
  let env: ApiEnv;
  let web: string;
  const warehouseOnly = { ...DEFAULT_RULE_SET, name: 'warehouse only', strategies: DEFAULT_RULE_SET.strategies.map((s) => ({ ...s, filters: { ...s.filters, locationTypes: ['warehouse'] } })) };

  beforeAll(async () => {
    env = await createApiEnv(backend);
    await smallNetwork(env.ctx);
    web = (await createApiKey(env.ctx, { name: 'web', role: 'channel', channel: 'web' })).secret;
    await seedStock(env, 'WH1', '2026-06-01T09:00:00Z', [{ sku: 'B1', on_hand: 2 }]);
    await seedStock(env, 'ST-PARIS', '2026-06-01T09:00:00Z', [{ sku: 'B1', on_hand: 10 }]);
    for (const [i, q] of [1, 2, 3].entries()) {
      env.clock.advance(60_000);
      const r = await env.app.inject({ method: 'POST', url: '/orders', headers: env.auth(web), payload: order(`S-${i + 1}`, 'B1', q) });
      expect(r.statusCode, r.body).toBe(201);
    }
  });
  afterAll(async () => env?.close());

  const simulate = (payload: object) => env.app.inject({ method: 'POST', url: '/sourcing/simulations', headers: env.auth(), payload });

  it('replays the orders of the range, full quantities, and changes nothing', async () => {
    const before = { wh: await positions(env, 'WH1'), st: await positions(env, 'ST-PARIS') };
    const r = await simulate({ stored_orders: { from: '2026-06-01T00:00:00Z', to: '2026-06-02T00:00:00Z' }, candidate: { rule_set: warehouseOnly }, per_order: true });
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json();
    expect(body.per_order.map((o: { reference: string }) => o.reference)).toEqual(['S-1', 'S-2', 'S-3']);
    const [baseline, candidate] = body.rule_sets;
    expect(baseline.metrics.units_ordered).toBe(6);
    // Today WH1 holds 2 B1 (3 reserved by the stored orders): a warehouse-only draft cannot
    // fill them all, the published presets (stores allowed) can.
    expect(candidate.metrics.units_unfilled).toBeGreaterThan(0);
    expect(baseline.metrics.units_unfilled).toBeLessThan(candidate.metrics.units_unfilled);
    expect({ wh: await positions(env, 'WH1'), st: await positions(env, 'ST-PARIS') }).toEqual(before);
  });

  it('narrows by date range and channel', async () => {
    const r = await simulate({ stored_orders: { from: '2026-06-01T10:01:30Z', to: '2026-06-02T00:00:00Z', channel: 'web' }, candidate: { rule_set: warehouseOnly }, per_order: true });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().per_order.map((o: { reference: string }) => o.reference)).toEqual(['S-2', 'S-3']);
    expectError(await simulate({ stored_orders: { from: '2026-06-01T00:00:00Z', to: '2026-06-02T00:00:00Z', channel: 'nope' }, candidate: { rule_set: warehouseOnly } }), 404, 'unknown_channel');
  });

  it('takes orders or stored_orders, not both or neither, and a range that is one', async () => {
    expectError(await simulate({ candidate: { rule_set: warehouseOnly } }), 400, 'validation_failed');
    expectError(await simulate({ orders: [{ channel: 'web', lines: [{ sku: 'B1', quantity: 1 }], delivery: { mode: 'home', country: 'FR' } }], stored_orders: { from: '2026-06-01T00:00:00Z', to: '2026-06-02T00:00:00Z' }, candidate: { rule_set: warehouseOnly } }), 400, 'validation_failed');
    expectError(await simulate({ stored_orders: { from: '2026-06-02T00:00:00Z', to: '2026-06-01T00:00:00Z' }, candidate: { rule_set: warehouseOnly } }), 400, 'validation_failed');
  });
});
