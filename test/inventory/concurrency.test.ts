// Races that really race, on every backend: deltas through the API, reservations for the
// last units from several OMS "processes" (separate connection pools), and snapshots
// landing while deltas stream in. The integrity check runs after each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/keys.ts';
import { checkIntegrity } from '../../src/inventory/integrity.ts';
import { applyDelta, getPosition, reserve } from '../../src/inventory/stock.ts';
import { applySnapshotChunk } from '../../src/inventory/snapshot.ts';
import { OutboxFollower } from '../../src/availability/follower.ts';
import type { AppError } from '../../src/shared/errors.ts';
import { BACKENDS, createApiEnv, type ApiEnv } from '../support/backends.ts';
import { smallNetwork } from '../support/fixtures.ts';

describe.each(BACKENDS)('concurrency on %s', (backend) => {
  let env: ApiEnv;
  beforeAll(async () => {
    env = await createApiEnv(backend);
    await smallNetwork(env.ctx);
  });
  afterAll(async () => env?.close());

  const integrityHolds = async () => expect((await checkIntegrity(env.ctx.store.db)).issues).toEqual([]);

  it('1,000 concurrent ±1 deltas on one position end at their algebraic sum', async () => {
    const key = await createApiKey(env.ctx, { name: 'wms', role: 'integration', locations: ['WH1'] });
    const signs = Array.from({ length: 1000 }, (_, i) => (i % 3 === 0 ? -1 : 1));
    const expected = signs.reduce((a, b) => a + b, 0);
    const responses = await Promise.all(
      signs.map((q, i) =>
        env.app.inject({ method: 'POST', url: '/stock/deltas', headers: env.auth(key.secret), payload: { items: [{ location: 'WH1', sku: 'B1', quantity: q, idempotency_key: `d-${i}` }] } }),
      ),
    );
    expect(responses.filter((r) => r.statusCode !== 200).map((r) => r.body)).toEqual([]);
    // Replaying all of them changes nothing.
    const replays = await Promise.all(
      signs.map((q, i) => env.app.inject({ method: 'POST', url: '/stock/deltas', headers: env.auth(key.secret), payload: { items: [{ location: 'WH1', sku: 'B1', quantity: q, idempotency_key: `d-${i}` }] } })),
    );
    expect(replays.every((r) => r.json().items[0].reason === 'duplicate')).toBe(true);
    const loc = env.ctx.projection.location('WH1');
    const sku = env.ctx.projection.sku('B1');
    const p = await getPosition(env.ctx.store.db, loc?.id as number, sku?.id as number);
    expect(p?.on_hand).toBe(expected);
    expect(env.ctx.projection.perLocation(sku?.id as number, 'web').find((l) => l.location.code === 'WH1')?.onHand).toBe(expected);
    await integrityHolds();
  });

  it('reservations racing for the last units across processes never oversell', async () => {
    const peers = [env.ctx, await env.openPeer(), await env.openPeer()];
    const loc = env.ctx.projection.location('ST-PARIS');
    const sku = env.ctx.projection.sku('C1');
    await applySnapshotChunk(env.ctx, loc?.id as number, env.clock.now() - 1000, [{ skuId: sku?.id as number, onHand: 25 }], 'test', 'partial');
    const attempts = Array.from({ length: 120 }, (_, i) => peers[i % peers.length]);
    const results = await Promise.allSettled(attempts.map((ctx, i) => reserve(ctx, { location: 'ST-PARIS', sku: 'C1', quantity: 1 + (i % 2), reference: `r${i}` })));
    const won = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<{ quantity: number }>).value.quantity);
    const lost = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    for (const l of lost) expect((l.reason as AppError).code).toBe('insufficient_stock');
    const reserved = won.reduce((a, b) => a + b, 0);
    expect(reserved).toBeLessThanOrEqual(25);
    expect(reserved).toBeGreaterThanOrEqual(24); // a 2-unit request can lose to the last single unit
    const p = await getPosition(env.ctx.store.db, loc?.id as number, sku?.id as number);
    expect(p?.reserved).toBe(reserved);
    await integrityHolds();
  });

  it('snapshots applied while deltas stream in keep every delta after as_of', async () => {
    const peer = await env.openPeer();
    const loc = env.ctx.projection.location('ST-LYON')?.id as number;
    const skus = ['A1', 'B1', 'C1'];
    const expected = new Map<string, number>();
    for (let round = 0; round < 3; round++) {
      const asOf = env.clock.now();
      env.clock.advance(60_000);
      // Deltas after as_of from two processes, some on positions the snapshot creates.
      const deltas = Array.from({ length: 150 }, (_, i) =>
        applyDelta(i % 2 ? env.ctx : peer, { location: 'ST-LYON', sku: skus[i % 3], quantity: 1, idempotencyKey: `s-${round}-${i}` }, 'test'),
      );
      const counted = skus.map((sku, k) => ({ skuId: env.ctx.projection.sku(sku)?.id as number, onHand: 100 * (round + 1) + k }));
      const snap = applySnapshotChunk(peer, loc, asOf, counted, 'test');
      await Promise.all([...deltas, snap]);
      for (const [k, sku] of skus.entries()) expected.set(sku, 100 * (round + 1) + k + 50);
      for (const sku of skus) {
        const p = await getPosition(env.ctx.store.db, loc, env.ctx.projection.sku(sku)?.id as number);
        expect(p?.on_hand, `${sku} round ${round}`).toBe(expected.get(sku));
      }
    }
    await integrityHolds();
  });

  it("another process's changes reach this process's projection through the outbox", async () => {
    // The peer lives in this test process, so its events carry our origin: follow them all.
    const follower = new OutboxFollower(env.ctx, null);
    await follower.init();
    const peer = await env.openPeer();
    await applyDelta(peer, { location: 'SUP1', sku: 'B1', quantity: 42, idempotencyKey: 'peer-1' }, 'test');
    const sku = env.ctx.projection.sku('B1')?.id as number;
    const before = env.ctx.projection.perLocation(sku, 'web').find((l) => l.location.code === 'SUP1')?.onHand ?? 0;
    expect(before).toBe(0);
    expect(await follower.poll()).toBeGreaterThan(0);
    expect(env.ctx.projection.perLocation(sku, 'web').find((l) => l.location.code === 'SUP1')?.onHand).toBe(42);
  });

  it("this process's own events are passed over, another origin's are applied, however they interleave", async () => {
    const follower = new OutboxFollower(env.ctx);
    await follower.init();
    const peer = await env.openPeer();
    const db = env.ctx.store.db;
    const lastId = async () => Number((await db.selectFrom('outbox').select((eb) => eb.fn.max('id').as('m')).executeTakeFirstOrThrow()).m);
    /** A change written by "another process": the peer's change, its events re-stamped with another origin. */
    const foreign = async (location: string, quantity: number, key: string) => {
      const from = await lastId();
      await applyDelta(peer, { location, sku: 'C1', quantity, idempotencyKey: key }, 'test');
      const r = await db.updateTable('outbox').set({ origin: 'proc_elsewhere' }).where('id', '>', from).executeTakeFirst();
      return Number(r.numUpdatedRows);
    };
    const own = (location: string, key: string) => applyDelta(env.ctx, { location, sku: 'A1', quantity: 1, idempotencyKey: key }, 'test');
    const onHand = (location: string) => env.ctx.projection.perLocation(env.ctx.projection.sku('C1')?.id as number, 'web').find((l) => l.location.code === location)?.onHand ?? 0;
    const before = [onHand('WH1'), onHand('ST-PARIS')];

    await own('WH1', 'own-1');
    const first = await foreign('WH1', 7, 'far-1');
    await own('ST-PARIS', 'own-2');
    const second = await foreign('ST-PARIS', 5, 'far-2');
    await own('WH1', 'own-3');
    expect(first).toBeGreaterThan(0);
    expect(await follower.poll()).toBe(first + second);
    expect([onHand('WH1'), onHand('ST-PARIS')]).toEqual([before[0] + 7, before[1] + 5]);
    // Read past: nothing comes back twice, and what comes after the own rows still arrives.
    expect(await follower.poll()).toBe(0);
    await own('ST-PARIS', 'own-4');
    const third = await foreign('WH1', 3, 'far-3');
    expect(await follower.poll()).toBe(third);
    expect(onHand('WH1')).toBe(before[0] + 10);
  });

  it('many foreign changes over many positions in one poll: every position ends as stored, each read once per poll', async () => {
    const follower = new OutboxFollower(env.ctx);
    await follower.init();
    const peer = await env.openPeer();
    const db = env.ctx.store.db;
    const from = Number((await db.selectFrom('outbox').select((eb) => eb.fn.max('id').as('m')).executeTakeFirstOrThrow()).m);
    const locations = ['WH1', 'ST-PARIS', 'ST-LYON', 'SUP1'];
    const skus = ['A1', 'B1', 'C1'];
    // Two rounds: the second change of a position supersedes the first within the same poll.
    for (const round of [1, 2])
      for (const location of locations)
        for (const sku of skus) await applyDelta(peer, { location, sku, quantity: round * 3, idempotencyKey: `many-${round}-${location}-${sku}` }, 'test');
    const stamped = Number((await db.updateTable('outbox').set({ origin: 'proc_elsewhere' }).where('id', '>', from).executeTakeFirst()).numUpdatedRows);
    const reads: string[] = [];
    const spied = db.withPlugin({
      transformQuery: (args) => {
        if (args.node.kind === 'SelectQueryNode') reads.push(JSON.stringify(args.node.from));
        return args.node;
      },
      transformResult: async (args) => args.result,
    });
    const store = env.ctx.store as { db: typeof db };
    store.db = spied;
    try {
      expect(await follower.poll()).toBe(stamped);
    } finally {
      store.db = db;
    }
    expect(reads.filter((r) => r.includes('stock_positions'))).toHaveLength(1);
    for (const location of locations)
      for (const sku of skus) {
        const skuId = env.ctx.projection.sku(sku)?.id as number;
        const stored = await getPosition(db, env.ctx.projection.location(location)?.id as number, skuId);
        const projected = env.ctx.projection.perLocation(skuId, 'web').find((l) => l.location.code === location);
        expect(projected?.onHand, `${location} ${sku}`).toBe(stored?.on_hand);
      }
  });
});
