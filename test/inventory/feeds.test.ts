// Feed semantics (DOMAIN §1), table-driven, on every backend: snapshots with as_of,
// deltas with seq or idempotency key, movements after as_of re-applied, reservations
// surviving a snapshot. The integrity check runs after every case.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ctx } from '../../src/context.ts';
import { checkIntegrity } from '../../src/inventory/integrity.ts';
import { applyDelta, getPosition, reserve, endReservation } from '../../src/inventory/stock.ts';
import { applySnapshotChunk, finishFullSnapshot } from '../../src/inventory/snapshot.ts';
import { BACKENDS, createTestEnv, type TestEnv } from '../support/backends.ts';
import { smallNetwork } from '../support/fixtures.ts';

const T = (s: string) => Date.parse(`2026-06-01T${s}:00Z`);

type Step =
  | { snapshot: number; at: string; sku?: string; quarantine?: number; partial?: boolean }
  | { delta: number; at?: string; seq?: number; key?: string; sku?: string }
  | { reserve: number; sku?: string }
  | { release: true }
  | { fullSnapshotOf: Array<[string, number]>; at: string };

interface Case {
  name: string;
  steps: Step[];
  expect: { onHand: number; reserved?: number; quarantine?: number; sku?: string };
  /** Outcomes of the delta steps, in order. */
  deltaOutcomes?: string[];
}

const cases: Case[] = [
  { name: 'a snapshot sets on_hand', steps: [{ snapshot: 10, at: '09:00' }], expect: { onHand: 10 } },
  { name: 'a newer snapshot replaces the baseline', steps: [{ snapshot: 10, at: '09:00' }, { snapshot: 4, at: '09:30' }], expect: { onHand: 4 } },
  { name: 'a stale snapshot is ignored', steps: [{ snapshot: 10, at: '09:30' }, { snapshot: 4, at: '09:00' }], expect: { onHand: 10 } },
  { name: 'a stale partial count is ignored for its position', steps: [{ snapshot: 10, at: '09:30', partial: true }, { snapshot: 4, at: '09:00', partial: true }], expect: { onHand: 10 } },
  { name: 'a late partial count of another sku still applies', steps: [{ snapshot: 10, at: '09:30', partial: true }, { snapshot: 4, at: '09:00', partial: true, sku: 'B1' }], expect: { onHand: 4, sku: 'B1' } },
  { name: 'a full count after a partial one overrides it', steps: [{ snapshot: 10, at: '09:00', partial: true }, { snapshot: 3, at: '09:30' }], expect: { onHand: 3 } },
  { name: 'a delta adds to the baseline', steps: [{ snapshot: 10, at: '09:00' }, { delta: -3, at: '09:10', key: 'k1' }], expect: { onHand: 7 } },
  { name: 'a replayed delta (same key) changes nothing', steps: [{ snapshot: 10, at: '09:00' }, { delta: -3, at: '09:10', key: 'k1' }, { delta: -3, at: '09:10', key: 'k1' }], expect: { onHand: 7 }, deltaOutcomes: ['applied', 'duplicate'] },
  { name: 'an older sequence changes nothing', steps: [{ delta: 5, seq: 2 }, { delta: 5, seq: 1 }, { delta: 5, seq: 2 }, { delta: 1, seq: 3 }], expect: { onHand: 6 }, deltaOutcomes: ['applied', 'stale_sequence', 'stale_sequence', 'applied'] },
  { name: 'movements after as_of are re-applied on top of the snapshot', steps: [{ snapshot: 10, at: '09:00' }, { delta: -2, at: '09:40', key: 'a' }, { delta: 5, at: '09:50', key: 'b' }, { snapshot: 20, at: '09:45' }], expect: { onHand: 25 } },
  { name: 'movements before as_of are already in the count', steps: [{ snapshot: 10, at: '09:00' }, { delta: -2, at: '09:20', key: 'a' }, { snapshot: 20, at: '09:30' }], expect: { onHand: 20 } },
  { name: 'a late delta that happened before the baseline is recorded, not applied', steps: [{ snapshot: 10, at: '09:30' }, { delta: -4, at: '09:00', key: 'late' }], expect: { onHand: 10 }, deltaOutcomes: ['applied'] },
  { name: 'active reservations survive a snapshot', steps: [{ snapshot: 10, at: '09:00' }, { reserve: 4 }, { snapshot: 6, at: '09:30' }], expect: { onHand: 6, reserved: 4 } },
  { name: 'a released reservation frees stock after a snapshot', steps: [{ snapshot: 10, at: '09:00' }, { reserve: 4 }, { snapshot: 6, at: '09:30' }, { release: true }], expect: { onHand: 6, reserved: 0 } },
  { name: 'a snapshot carries quarantine', steps: [{ snapshot: 10, at: '09:00', quarantine: 2 }], expect: { onHand: 10, quarantine: 2 } },
  { name: 'a full snapshot zeroes skus it does not list', steps: [{ snapshot: 10, at: '09:00', sku: 'B1' }, { fullSnapshotOf: [['A1', 3]], at: '09:30' }], expect: { onHand: 0, sku: 'B1' } },
  { name: 'a full snapshot keeps movements after as_of for unlisted skus', steps: [{ snapshot: 10, at: '09:00', sku: 'B1' }, { delta: 2, at: '09:45', key: 'x', sku: 'B1' }, { fullSnapshotOf: [['A1', 3]], at: '09:30' }], expect: { onHand: 2, sku: 'B1' } },
  { name: 'a delta on an unknown position creates it', steps: [{ delta: 7, key: 'new' }], expect: { onHand: 7 } },
];

describe.each(BACKENDS)('feed semantics on %s', (backend) => {
  let env: TestEnv;
  let ctx: Ctx;
  let n = 0;
  beforeAll(async () => {
    env = await createTestEnv(backend);
    ctx = env.ctx;
    await smallNetwork(ctx);
  });
  afterAll(async () => env?.close());

  it.each(cases)('$name', async (c) => {
    // Each case gets its own location so the cases stay independent.
    const code = `CASE-${++n}`;
    const { upsertLocation } = await import('../../src/inventory/locations.ts');
    await upsertLocation(ctx, { code, name: code, type: 'store', country: 'FR' });
    const loc = ctx.projection.location(code);
    if (!loc) throw new Error('no location');
    const outcomes: string[] = [];
    let lastReservation: string | null = null;
    for (const s of c.steps) {
      if ('snapshot' in s) {
        const skuId = ctx.projection.sku(s.sku ?? 'A1')?.id as number;
        await applySnapshotChunk(ctx, loc.id, T(s.at), [{ skuId, onHand: s.snapshot, quarantine: s.quarantine }], 'test', s.partial ? 'partial' : 'full');
      } else if ('delta' in s) {
        const out = await applyDelta(ctx, { location: code, sku: s.sku ?? 'A1', quantity: s.delta, occurredAt: s.at ? T(s.at) : undefined, seq: s.seq, idempotencyKey: s.key }, 'test');
        outcomes.push(out.status === 'applied' ? 'applied' : out.reason);
      } else if ('reserve' in s) {
        lastReservation = (await reserve(ctx, { location: code, sku: s.sku ?? 'A1', quantity: s.reserve })).id;
      } else if ('release' in s) {
        await endReservation(ctx, lastReservation as string, 'released');
      } else {
        const rows = s.fullSnapshotOf.map(([sku, q]) => ({ skuId: ctx.projection.sku(sku)?.id as number, onHand: q }));
        await applySnapshotChunk(ctx, loc.id, T(s.at), rows, 'test');
        await finishFullSnapshot(ctx, loc.id, T(s.at), 'test');
      }
    }
    const skuId = ctx.projection.sku(c.expect.sku ?? 'A1')?.id as number;
    const p = await getPosition(ctx.store.db, loc.id, skuId);
    expect(p?.on_hand).toBe(c.expect.onHand);
    if (c.expect.reserved !== undefined) expect(p?.reserved).toBe(c.expect.reserved);
    if (c.expect.quarantine !== undefined) expect(p?.quarantine).toBe(c.expect.quarantine);
    if (c.deltaOutcomes) expect(outcomes).toEqual(c.deltaOutcomes);
    // The projection agrees with the database.
    const view = ctx.projection.perLocation(skuId, 'web').find((l) => l.location.code === code);
    expect(view?.onHand ?? 0).toBe(c.expect.onHand);
    expect((await checkIntegrity(ctx.store.db)).issues).toEqual([]);
  });
});
