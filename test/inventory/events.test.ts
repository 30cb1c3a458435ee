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

describe.each(BACKENDS)('two processes publishing availability at once on %s', (backend) => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv(backend);
    await smallNetwork(env.ctx);
    await publishAvailabilityChanges(env.ctx);
  });
  afterAll(async () => env?.close());

  it('every mark is claimed once: each change is published once, and the published figures are the stock', async () => {
    const { ctx } = env;
    const peer = await env.openPeer();
    const after = (await readEvents(ctx.store.db, { afterId: 0, limit: 100_000 })).at(-1)?.id ?? 0;
    // Several marks per sku, written while both processes publish, small passes so they interleave.
    const writes = (async () => {
      for (let i = 0; i < 24; i++) await applyDelta(ctx, { location: 'WH1', sku: ['A1', 'B1', 'C1'][i % 3], quantity: 1, idempotencyKey: `race-${i}` }, 'test');
    })();
    const publisher = (c: typeof ctx) => async () => {
      for (let i = 0; i < 12; i++) await publishAvailabilityChanges(c, { maxMarks: 2 });
    };
    await Promise.all([writes, publisher(ctx)(), publisher(peer)()]);
    // The peer's projection follows ours through the outbox; let both drain what is left.
    while ((await publishAvailabilityChanges(ctx)).skus > 0);
    const left = await ctx.store.db.selectFrom('availability_dirty').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    expect(Number(left.n)).toBe(0);
    const events = (await readEvents(ctx.store.db, { afterId: after, type: 'availability.changed' })).map((e) => e.payload as { sku: string; available: number; previous: number });
    // Each event moves its sku's figure on from the one before it: none repeats a publication.
    for (const sku of ['A1', 'B1', 'C1']) {
      const chain = events.filter((e) => e.sku === sku);
      expect(chain.length).toBeGreaterThan(0);
      for (const e of chain) expect(e.available).not.toBe(e.previous);
      for (let i = 1; i < chain.length; i++) expect(chain[i].previous).toBe(chain[i - 1].available);
      expect(chain.at(-1)?.available).toBe(8);
    }
    const published = await ctx.store.db.selectFrom('availability_published').select(['sku_id', 'available']).execute();
    expect(published.map((p) => p.available).sort()).toEqual([8, 8, 8]);
  });
});
