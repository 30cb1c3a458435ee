// The scheduler keeps up with volume: expired idempotency keys are forgotten in set-based
// batches (thousands in one sweep, the live ones kept), and one sweep expires every due order,
// batch after batch, not only the first batch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applySnapshotChunk } from '../../src/inventory/snapshot.ts';
import { captureOrder } from '../../src/orders/capture.ts';
import { purgeIdempotencyKeys } from '../../src/orders/idempotency.ts';
import { sweepOrders } from '../../src/orders/scheduler.ts';
import { smallNetwork } from '../support/fixtures.ts';
import { BACKENDS, createTestEnv, type TestEnv } from '../support/backends.ts';

describe.each(BACKENDS)('idempotency key purge on %s', (backend) => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv(backend);
  });
  afterAll(async () => env?.close());

  it('purges every expired key in batches and keeps the live ones', async () => {
    const now = env.clock.now();
    const row = (i: number, expiresAt: number) => ({ scope: 'key_a', key: `k${i}`, request_hash: 'h', state: 'done', status_code: 201, response: '{}', locked_until: 0, created_at: now - 1, expires_at: expiresAt });
    const expired = Array.from({ length: 4500 }, (_, i) => row(i, now - 1 - (i % 300)));
    const live = Array.from({ length: 7 }, (_, i) => row(10_000 + i, now + 1000));
    for (let i = 0; i < expired.length; i += 500) await env.ctx.store.db.insertInto('idempotency_keys').values(expired.slice(i, i + 500)).execute();
    await env.ctx.store.db.insertInto('idempotency_keys').values(live).execute();
    expect(await purgeIdempotencyKeys(env.ctx, 1000, 3)).toBeGreaterThanOrEqual(3000);
    expect(await purgeIdempotencyKeys(env.ctx, 1000, 3)).toBeGreaterThan(0);
    const left = await env.ctx.store.db.selectFrom('idempotency_keys').select('key').orderBy('key').execute();
    expect(left.map((r) => r.key)).toEqual(live.map((r) => r.key).sort());
    expect(await purgeIdempotencyKeys(env.ctx)).toBe(0);
  });

  it('expires every due order in one sweep, batch after batch', async () => {
    await smallNetwork(env.ctx);
    const loc = env.ctx.projection.location('WH1')?.id as number;
    const sku = env.ctx.projection.sku('B1')?.id as number;
    await applySnapshotChunk(env.ctx, loc, env.clock.now() - 1000, [{ skuId: sku, onHand: 1000 }], 'test', 'partial');
    const actor = { keyId: 'test', name: 'test', role: 'admin' };
    for (let i = 0; i < 230; i++) {
      await captureOrder(
        env.ctx,
        {
          channel: 'web',
          externalReference: `EXP-${i}`,
          customer: {},
          currency: 'EUR',
          taxIncluded: true,
          lines: [{ sku: 'B1', quantity: 1, unitPrice: 100 }],
          deliveryGroups: [{ mode: 'home', address: { line1: '1 rue de Rivoli', postalCode: '75001', city: 'Paris', country: 'FR', latitude: 48.85, longitude: 2.35 } }],
          totals: { subtotal: 100, discount: 0, tax: 0, shipping: 0, total: 100 },
          tenders: [],
        },
        actor,
      );
    }
    env.clock.advance(env.ctx.orders.paymentTtlMs);
    const r = await sweepOrders(env.ctx, 100, 60_000);
    expect(r.expired).toBe(230);
    const reserved = await env.ctx.store.db.selectFrom('stock_positions').select('reserved').where('location_id', '=', loc).where('sku_id', '=', sku).executeTakeFirstOrThrow();
    expect(reserved.reserved).toBe(0);
  });
});
