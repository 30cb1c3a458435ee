// PostgreSQL's capture group (src/db/pg-capture-group.ts): captures that arrive while a capture
// statement runs are written together in the next one. Each capture must end exactly as it
// would alone: its own rows back, its reservations, capacity and events stored once, and a
// capture that fails (no stock, a duplicate key) fails alone while the others commit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { combinedParts, type PendingInsert, WriteBatch } from '../../src/db/bulk.ts';
import { LOST_RACE_SQLSTATE } from '../../src/db/database.ts';
import { PgCaptureGroup } from '../../src/db/pg-capture-group.ts';
import { applySnapshotChunk } from '../../src/inventory/snapshot.ts';
import { getPosition, reserveInBatch } from '../../src/inventory/stock.ts';
import { countShipmentsTo } from '../../src/sourcing/capacity.ts';
import { createTestEnv, PG_URL, type TestEnv } from '../support/backends.ts';
import { smallNetwork } from '../support/fixtures.ts';

describe('combinedParts', () => {
  const part = (p: Partial<PendingInsert> & Pick<PendingInsert, 'table' | 'rows'>): PendingInsert => ({ columns: [['a', 'text']], tail: '', same: [], ...p });
  it.each([
    {
      name: 'rows of one shape join one insert, in batch order',
      batches: [[part({ table: 't', rows: [['x']] })], [part({ table: 't', rows: [['y'], ['z']] })]],
      want: [{ table: 't', columns: ['a'], rows: [['x'], ['y'], ['z']] }],
    },
    {
      name: "each batch's constants become columns of its own rows",
      batches: [[part({ table: 't', rows: [['x']], same: [['at', 'bigint', 1]] })], [part({ table: 't', rows: [['y']], same: [['at', 'bigint', 2]] })]],
      want: [{ table: 't', columns: ['a', 'at'], rows: [['x', 1], ['y', 2]] }],
    },
    {
      name: 'another table, tail or constant name is another insert, first-seen order kept',
      batches: [
        [part({ table: 't', rows: [['x']] }), part({ table: 'u', rows: [['x']] })],
        [part({ table: 'u', rows: [['y']], tail: 'on conflict do nothing' }), part({ table: 't', rows: [['y']] })],
      ],
      want: [
        { table: 't', columns: ['a'], rows: [['x'], ['y']] },
        { table: 'u', columns: ['a'], rows: [['x']] },
        { table: 'u', columns: ['a'], rows: [['y']] },
      ],
    },
    {
      name: 'an accumulating upsert: one row per key, summed, sorted by key',
      batches: [
        [part({ table: 'c', columns: [['loc', 'bigint'], ['day', 'text'], ['n', 'integer']], rows: [[7, 'd', 1], [9, 'd', 1]], accumulate: { key: [0, 1], add: 2 } })],
        [part({ table: 'c', columns: [['loc', 'bigint'], ['day', 'text'], ['n', 'integer']], rows: [[3, 'd', 1], [9, 'd', 1]], accumulate: { key: [0, 1], add: 2 } })],
      ],
      want: [{ table: 'c', columns: ['loc', 'day', 'n'], rows: [[3, 'd', 1], [7, 'd', 1], [9, 'd', 2]] }],
    },
  ])('$name', ({ batches, want }) => {
    const got = combinedParts(batches).map((p) => ({ table: p.table, columns: p.columns.map((c) => c[0]), rows: p.rows }));
    expect(got).toEqual(want);
    // The batches' own rows are not changed by it.
    expect(batches[0][0].rows[0]).toHaveLength(batches[0][0].columns.length);
  });
});

describe.skipIf(!PG_URL)('PostgreSQL capture group', () => {
  let env: TestEnv;
  const loc = (code: string) => env.ctx.projection.location(code)?.id as number;
  const sku = (code: string) => env.ctx.projection.sku(code)?.id as number;
  const day = '2026-06-01';

  beforeAll(async () => {
    env = await createTestEnv('postgres');
    await smallNetwork(env.ctx);
    for (const [location, units] of [
      ['WH1', 10],
      ['ST-PARIS', 10],
    ] as const) {
      await applySnapshotChunk(env.ctx, loc(location), env.clock.now() - 1000, ['A1', 'B1', 'C1'].map((s) => ({ skuId: sku(s), onHand: units })), 'test', 'partial');
    }
  });
  afterAll(async () => env?.close());

  /** One capture's unit: reservations at (location, sku, quantity), a shipment counted per location, an event. */
  function unit(reference: string, wants: Array<[string, string, number]>, eventId?: string) {
    const batch = new WriteBatch();
    const { lead } = reserveInBatch(
      env.ctx,
      wants.map(([l, s, q]) => ({ locationId: loc(l), skuId: sku(s), quantity: q })),
      { buffer: 0, channelId: null, reference },
      batch,
    );
    countShipmentsTo(batch, [...new Set(wants.map(([l]) => loc(l)))], day);
    if (eventId) batch.insert('outbox', [['event_id', 'text'], ['type', 'text'], ['aggregate_type', 'text'], ['aggregate_id', 'text'], ['aggregate_seq', 'integer'], ['payload', 'text'], ['occurred_at', 'bigint']], [[eventId, 'test.unit', 'test', reference, 1, '{}', env.clock.now()]], '', [['origin', 'text', 'test']]);
    return { batch, lead };
  }
  const reserved = async (l: string, s: string) => (await getPosition(env.ctx.store.db, loc(l), sku(s)))?.reserved ?? 0;
  const used = async (l: string) => (await env.ctx.store.db.selectFrom('location_capacity_usage').select('used').where('location_id', '=', loc(l)).where('day', '=', day).executeTakeFirst())?.used ?? 0;
  const active = async (reference: string) => Number((await env.ctx.store.db.selectFrom('reservations').select((e) => e.fn.countAll().as('n')).where('reference', '=', reference).executeTakeFirstOrThrow()).n);
  const snapshot = async () => ({ a1: await reserved('WH1', 'A1'), b1: await reserved('WH1', 'B1'), p1: await reserved('ST-PARIS', 'A1'), wh: await used('WH1'), paris: await used('ST-PARIS') });

  it('captures queued behind a running statement go as one, each with its own rows, stored once', async () => {
    const group = new PgCaptureGroup(env.ctx.store.db, { inFlight: 1 });
    const before = await snapshot();
    const units = [
      unit('g1-0', [['WH1', 'A1', 1]]),
      unit('g1-1', [['WH1', 'A1', 2], ['WH1', 'B1', 1]]),
      unit('g1-2', [['WH1', 'A1', 1], ['ST-PARIS', 'A1', 1]]),
      unit('g1-3', [['ST-PARIS', 'A1', 2]]),
    ];
    // The first goes at once; the three others wait for it and share the next statement.
    const answers = await Promise.all(units.map((u) => u.batch.flushGrouped<{ location_id: number; sku_id: number; reserved: number }>(group, u.lead)));
    expect({ statements: group.statements, units: group.units, reruns: group.reruns }).toEqual({ statements: 2, units: 4, reruns: 0 });
    // Each gets the rows of its own positions, as they stand after the statement that wrote them.
    expect(answers.map((rows) => rows.map((r) => [r.location_id, r.sku_id]).sort())).toEqual([
      [[loc('WH1'), sku('A1')]],
      [
        [loc('WH1'), sku('A1')],
        [loc('WH1'), sku('B1')],
      ].sort(),
      [
        [loc('WH1'), sku('A1')],
        [loc('ST-PARIS'), sku('A1')],
      ].sort(),
      [[loc('ST-PARIS'), sku('A1')]],
    ]);
    expect(answers[1].find((r) => r.sku_id === sku('A1'))?.reserved).toBe(before.a1 + 4);
    // Positions, reservations and capacity: each capture counted once (WH1 ships for three, Paris for two).
    expect(await snapshot()).toEqual({ a1: before.a1 + 4, b1: before.b1 + 1, p1: before.p1 + 3, wh: before.wh + 3, paris: before.paris + 2 });
    for (const [ref, n] of [
      ['g1-0', 1],
      ['g1-1', 2],
      ['g1-2', 2],
      ['g1-3', 1],
    ] as const)
      expect(await active(ref)).toBe(n);
  });

  it('a capture lacking stock fails alone: the others of its statement commit', async () => {
    const group = new PgCaptureGroup(env.ctx.store.db, { inFlight: 1 });
    const before = await snapshot();
    const units = [unit('g2-0', [['WH1', 'B1', 1]]), unit('g2-1', [['WH1', 'B1', 1]]), unit('g2-2', [['WH1', 'C1', 11]]), unit('g2-3', [['ST-PARIS', 'A1', 1]])];
    const settled = await Promise.allSettled(units.map((u) => u.batch.flushGrouped(group, u.lead)));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(((settled[2] as PromiseRejectedResult).reason as { code: string }).code).toBe(LOST_RACE_SQLSTATE);
    expect(group.reruns).toBe(3);
    expect([...group.failures]).toEqual([[LOST_RACE_SQLSTATE, 1]]);
    expect(await snapshot()).toEqual({ ...before, b1: before.b1 + 2, p1: before.p1 + 1, wh: before.wh + 2, paris: before.paris + 1 });
    expect(await reserved('WH1', 'C1')).toBe(0);
    expect(await active('g2-2')).toBe(0);
  });

  it('two captures asking together for more than a position holds: each alone gets what it can', async () => {
    const group = new PgCaptureGroup(env.ctx.store.db, { inFlight: 1 });
    const free = 10 - (await reserved('ST-PARIS', 'C1'));
    const units = [unit('g3-0', [['WH1', 'C1', 1]]), unit('g3-1', [['ST-PARIS', 'C1', free]]), unit('g3-2', [['ST-PARIS', 'C1', 1]])];
    const settled = await Promise.allSettled(units.map((u) => u.batch.flushGrouped(group, u.lead)));
    // Together they ask free + 1: the combined statement fails; alone, exactly one of the two fits.
    expect(settled[0].status).toBe('fulfilled');
    expect(settled.slice(1).filter((s) => s.status === 'fulfilled')).toHaveLength(1);
    expect(await reserved('ST-PARIS', 'C1')).toBe(settled[1].status === 'fulfilled' ? free : 1);
  });

  it('a duplicate key fails one capture, not the statement it shared', async () => {
    const group = new PgCaptureGroup(env.ctx.store.db, { inFlight: 1 });
    const before = await snapshot();
    const units = [unit('g4-0', [['WH1', 'A1', 1]]), unit('g4-1', [['WH1', 'A1', 1]], 'evt_dup_g4'), unit('g4-2', [['WH1', 'A1', 1]], 'evt_dup_g4')];
    const settled = await Promise.allSettled(units.map((u) => u.batch.flushGrouped(group, u.lead)));
    expect(settled[0].status).toBe('fulfilled');
    const failed = settled.slice(1).filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    expect(failed.map((f) => (f.reason as { code: string }).code)).toEqual(['23505']);
    expect((await snapshot()).a1).toBe(before.a1 + 2);
    expect(await env.ctx.store.db.selectFrom('outbox').select('id').where('event_id', '=', 'evt_dup_g4').execute()).toHaveLength(1);
  });

  it('captures queued behind a statement stuck on a row lock go in one more statement after burstAfterMs', async () => {
    const group = new PgCaptureGroup(env.ctx.store.db, { inFlight: 1, maxInFlight: 2, burstAfterMs: 20 });
    const before = await snapshot();
    // Another connection holds WH1/A1 (a stock import's chunk, another process's capture).
    const peer = await env.openPeer();
    let release = () => {};
    let locked = () => {};
    const isLocked = new Promise<void>((r) => {
      locked = r;
    });
    const holder = peer.store.db.transaction().execute(async (trx) => {
      await trx.selectFrom('stock_positions').select('version').where('location_id', '=', loc('WH1')).where('sku_id', '=', sku('A1')).forUpdate().execute();
      locked();
      await new Promise<void>((r) => {
        release = r;
      });
    });
    await isLocked;
    const a = unit('g6-0', [['WH1', 'A1', 1]]);
    const b = unit('g6-1', [['ST-PARIS', 'B1', 1]]);
    let aDone = false;
    const first = a.batch.flushGrouped(group, a.lead).then((rows) => {
      aDone = true;
      return rows;
    });
    // B touches nothing locked: it must not wait for A's lock to go (2 s: it never comes).
    const second = b.batch.flushGrouped(group, b.lead);
    let bInTime: boolean;
    try {
      bInTime = await Promise.race([second.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2000))]);
    } finally {
      release();
      await holder;
    }
    expect(bInTime).toBe(true);
    expect(group.bursts).toBe(1);
    expect(aDone).toBe(false);
    await Promise.all([first, second]);
    expect(await snapshot()).toEqual({ ...before, a1: before.a1 + 1, wh: before.wh + 1, paris: before.paris + 1 });
  });

  it('a failure that is not a statement’s (the connection is gone) goes to every capture of it, none run again', async () => {
    const peer = await env.openPeer();
    const group = new PgCaptureGroup(peer.store.db, { inFlight: 1 });
    const before = await snapshot();
    await peer.store.db.destroy();
    const units = [unit('g5-0', [['WH1', 'A1', 1]]), unit('g5-1', [['WH1', 'A1', 1]]), unit('g5-2', [['WH1', 'A1', 1]])];
    const settled = await Promise.allSettled(units.map((u) => u.batch.flushGrouped(group, u.lead)));
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(group.reruns).toBe(0);
    expect(await snapshot()).toEqual(before);
  });
});
