// The outbox: every change writes its event in the same transaction, and the debouncer emits
// availability.changed per sku and channel, once per window, only when the figure changed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, hashKey, revokeApiKey } from '../../src/auth/keys.ts';
import { AvailabilityReconciler, publishAvailabilityChanges } from '../../src/availability/debounce.ts';
import { readEvents } from '../../src/events/outbox.ts';
import { applyDelta, reserve } from '../../src/inventory/stock.ts';
import { AppError } from '../../src/shared/errors.ts';
import { BACKENDS, createTestEnv, type TestEnv } from '../support/backends.ts';
import { smallNetwork } from '../support/fixtures.ts';

describe.each(BACKENDS)('events on %s', (backend) => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv(backend);
    await smallNetwork(env.ctx, [
      { code: 'web', name: 'Web', type: 'web', locationTypes: ['warehouse', 'store'] },
      { code: 'mkp', name: 'Marketplace', type: 'marketplace', locationTypes: ['marketplace'] },
    ]);
    await publishAvailabilityChanges(env.ctx);
  });
  afterAll(async () => env?.close());

  const lastId = async () => (await readEvents(env.ctx.store.db, { afterId: 0, limit: 100_000 })).at(-1)?.id ?? 0;

  it('a delta writes stock.adjusted with the new counters', async () => {
    const after = await lastId();
    await applyDelta(env.ctx, { location: 'WH1', sku: 'A1', quantity: 5, idempotencyKey: 'e1' }, 'test');
    const events = await readEvents(env.ctx.store.db, { afterId: after });
    expect(events.map((e) => e.type)).toEqual(['stock.adjusted']);
    expect(events[0].payload).toMatchObject({ location: 'WH1', sku: 'A1', quantity: 5, on_hand: 5, reserved: 0 });
  });

  it('API keys are audited without their secret', async () => {
    const after = await lastId();
    const key = await createApiKey(env.ctx, { name: 'wms', role: 'integration', locations: ['WH1'] });
    await revokeApiKey(env.ctx, key.principal.keyId);
    const events = await readEvents(env.ctx.store.db, { afterId: after });
    expect(events.map((e) => e.type)).toEqual(['api_key.created', 'api_key.revoked']);
    const text = JSON.stringify(events);
    expect(text).not.toContain(key.secret);
    expect(text).not.toContain(hashKey(key.secret));
  });

  it('a failed change writes no event', async () => {
    const after = await lastId();
    await expect(reserve(env.ctx, { location: 'WH1', sku: 'A1', quantity: 99 })).rejects.toBeInstanceOf(AppError);
    expect(await readEvents(env.ctx.store.db, { afterId: after })).toEqual([]);
  });

  it('availability.changed is debounced per sku and channel and only sent on change', async () => {
    await publishAvailabilityChanges(env.ctx);
    const after = await lastId();
    for (let i = 0; i < 5; i++) await applyDelta(env.ctx, { location: 'WH1', sku: 'B1', quantity: 2, idempotencyKey: `b${i}` }, 'test');
    await applyDelta(env.ctx, { location: 'MKP', sku: 'C1', quantity: 0, idempotencyKey: 'c0' }, 'test');
    const pass = await publishAvailabilityChanges(env.ctx);
    const changed = (await readEvents(env.ctx.store.db, { afterId: after, type: 'availability.changed' })).map((e) => e.payload);
    // Five deltas, one event for B1 on web (the marketplace channel does not see WH1); C1 did not change.
    expect(changed).toEqual([{ sku: 'B1', channel: 'web', available: 10, previous: 0 }]);
    expect(pass.skus).toBe(2);
    expect((await publishAvailabilityChanges(env.ctx)).events).toBe(0);
  });
});

describe.each(BACKENDS)('availability reconciliation on %s', (backend) => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv(backend);
    await smallNetwork(env.ctx);
    await applyDelta(env.ctx, { location: 'WH1', sku: 'A1', quantity: 6, idempotencyKey: 'r1' }, 'test');
    await publishAvailabilityChanges(env.ctx);
  });
  afterAll(async () => env?.close());

  it('finds a published figure that drifted and republishes the right one', async () => {
    const { ctx } = env;
    const reconciler = new AvailabilityReconciler(ctx);
    expect((await reconciler.tick()).marked).toBe(0);
    const sku = ctx.projection.sku('A1')?.id as number;
    // A lost publication: the published figure says 2, the stock says 6.
    await ctx.store.db.updateTable('availability_published').set({ available: 2 }).where('sku_id', '=', sku).execute();
    const after = (await readEvents(ctx.store.db, { afterId: 0, limit: 100_000 })).at(-1)?.id ?? 0;
    expect(await reconciler.tick()).toEqual({ checked: 0, marked: 0 }); // end of the catalogue: wraps
    expect(await reconciler.tick()).toEqual({ checked: 3, marked: 1 });
    await publishAvailabilityChanges(ctx);
    const events = (await readEvents(ctx.store.db, { afterId: after, type: 'availability.changed' })).map((e) => e.payload);
    expect(events).toEqual([{ sku: 'A1', channel: 'web', available: 6, previous: 2 }]);
  });
});
