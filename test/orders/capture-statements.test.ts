// What a capture sends to the database. On PostgreSQL the whole capture (the conditional
// reservation UPDATE and every insert) is one statement in autocommit, guarded: when another
// order took the stock first, the statement raises and undoes itself, and the capture
// re-sources on fresh stock. On SQLite it is one unit (a savepoint) of the writer thread's
// group commit, the event loop sending no statement; without the writer thread, one
// transaction inside the main connection's group commit.
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, KeyVerifier } from '../../src/auth/keys.ts';
import { buildApp } from '../../src/http/app.ts';
import { expectBooksBalance, positions, seedStock } from '../api/helpers.ts';
import { type ApiEnv, BACKENDS, createApiEnv } from '../support/backends.ts';
import { homeOrderBody, smallNetwork } from '../support/fixtures.ts';

type Fn = (...args: unknown[]) => unknown;

/** Writer-thread statements (SQLite) are recorded with this prefix. */
const W = 'writer: ';

/** Records the text of every statement the drivers run while `fn` runs (the SQLite writer thread's too). */
async function statementsOf(fn: () => Promise<unknown>, env?: ApiEnv): Promise<string[]> {
  const seen: string[] = [];
  const writer = env?.ctx.store.writer;
  if (writer) writer.onStatements = (texts) => seen.push(...texts.map((t) => W + t));
  const client = pg.Client.prototype as unknown as Record<string, Fn>;
  const query = client.query;
  client.query = function (this: unknown, ...args: unknown[]) {
    const a = args[0];
    seen.push(typeof a === 'string' ? a : String((a as { text?: string }).text));
    return query.apply(this, args);
  };
  const probe = new SQLite(':memory:');
  const statement = Object.getPrototypeOf(probe.prepare('select 1')) as Record<string, Fn>;
  probe.close();
  const originals = ['run', 'get', 'all', 'iterate'].map((m) => [m, statement[m]] as const);
  for (const [m, f] of originals) {
    statement[m] = function (this: { source: string }, ...args: unknown[]) {
      seen.push(this.source);
      return f.apply(this, args);
    };
  }
  try {
    await fn();
  } finally {
    client.query = query;
    for (const [m, f] of originals) statement[m] = f;
    if (writer) writer.onStatements = null;
  }
  return seen.map((t) => t.replace(/\/\*[^*]*\*\//g, '').replace(/\s+/g, ' ').trim());
}

const guarded = (t: string) => t.startsWith('with r as (update stock_positions');

describe.each(BACKENDS)('order capture statements on %s', (backend) => {
  let env: ApiEnv;
  let web: string;
  beforeAll(async () => {
    env = await createApiEnv(backend);
    await smallNetwork(env.ctx);
    web = (await createApiKey(env.ctx, { name: 'web', role: 'channel', channel: 'web' })).secret;
    await seedStock(env, 'WH1', '2026-06-01T09:00:00Z', [{ sku: 'A1', on_hand: 1 }, { sku: 'B1', on_hand: 10 }]);
    await seedStock(env, 'ST-PARIS', '2026-06-01T09:00:00Z', [{ sku: 'A1', on_hand: 1 }]);
  });
  afterAll(async () => env?.close());

  const capture = (ref: string, lines: Array<[string, number, number]>) => env.app.inject({ method: 'POST', url: '/orders', headers: env.auth(web), payload: homeOrderBody(ref, lines) });

  it(backend === 'postgres' ? 'a capture is one statement' : 'a capture is one unit of the writer thread, the event loop sending nothing', async () => {
    expect((await capture('S-0', [['B1', 1, 1000]])).statusCode).toBe(201);
    let status = 0;
    const sent = await statementsOf(async () => {
      status = (await capture('S-1', [['B1', 2, 1000]])).statusCode;
    }, env);
    expect(status).toBe(201);
    if (backend === 'postgres') {
      expect(sent).toHaveLength(1);
      expect(guarded(sent[0])).toBe(true);
      for (const table of ['reservations', 'outbox', 'orders', 'order_lines', 'delivery_groups', 'fulfillment_orders', 'fulfillment_lines', 'order_sourcing', 'location_capacity_usage', 'availability_dirty']) {
        expect(sent[0]).toContain(`insert into ${table} `);
      }
    } else {
      expect(sent.filter((t) => !t.startsWith(W))).toEqual([]);
      const unit = sent.map((t) => t.slice(W.length));
      // Alone in its group: the group's BEGIN and COMMIT are listed with it.
      expect(unit.slice(0, 2)).toEqual(['begin immediate', 'savepoint unit']);
      expect(unit[2]).toMatch(/^update stock_positions set reserved/);
      expect(unit.slice(-2)).toEqual(['release unit', 'commit']);
      expect(unit.filter((t) => t.startsWith('select'))).toEqual([]);
      for (const table of ['reservations', 'outbox', 'orders', 'order_lines', 'fulfillment_orders', 'fulfillment_lines', 'order_sourcing', 'location_capacity_usage', 'availability_dirty']) {
        expect(unit.some((t) => t.startsWith(`insert into ${table} `))).toBe(true);
      }
      expect(unit.length).toBeLessThanOrEqual(16);
    }
    expect((await positions(env, 'WH1')).B1.reserved).toBe(3);
  });

  it('a capture planned on stale stock loses the race, re-sources on fresh stock and takes the next location', async () => {
    // Another OMS process takes WH1's only A1; this one's projection still shows it.
    const peer = await env.openPeer();
    const peerApp = await buildApp({ ctx: peer, keys: new KeyVerifier(peer), bodyLimit: 1024 * 1024 });
    await peerApp.ready();
    const first = await peerApp.inject({ method: 'POST', url: '/orders', headers: env.auth(web), payload: homeOrderBody('P-1', [['A1', 1, 1000]]) });
    await peerApp.close();
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json().fulfillment_orders.map((f: { location: string }) => f.location)).toEqual(['WH1']);

    let second = { statusCode: 0, body: '', json: () => ({}) as { fulfillment_orders: Array<{ location: string }> } };
    const sent = await statementsOf(async () => {
      second = await capture('S-2', [['A1', 1, 1000]]);
    }, env);
    expect(second.statusCode, second.body).toBe(201);
    expect(second.json().fulfillment_orders.map((f) => f.location)).toEqual(['ST-PARIS']);
    if (backend === 'postgres') {
      // The first guarded statement raised (WH1 had nothing left); the positions were read
      // again; the second one stored the order.
      const at = sent.flatMap((t, i) => (guarded(t) ? [i] : []));
      expect(at).toHaveLength(2);
      expect(sent.slice(at[0] + 1, at[1]).some((t) => t.startsWith('select "location_id", "sku_id", "on_hand"'))).toBe(true);
    } else {
      // The writer's first unit found WH1 empty and rolled itself back; the positions were read
      // again on the main connection; the second unit stored the order.
      const leads = sent.flatMap((t, i) => (t.startsWith(`${W}update stock_positions`) ? [i] : []));
      expect(leads).toHaveLength(2);
      expect(sent[leads[0] + 1]).toBe(`${W}rollback to unit`);
      expect(sent.slice(leads[0] + 1, leads[1]).some((t) => t.startsWith('select "location_id", "sku_id", "on_hand"'))).toBe(true);
    }
    expect((await positions(env, 'WH1')).A1.reserved).toBe(1);
    expect((await positions(env, 'ST-PARIS')).A1.reserved).toBe(1);
    await expectBooksBalance(env.ctx.store.db);
  });
});

/** A SQLite API env with 10 B1 at WH1, and a capture of 2 B1 for home delivery by the web channel. */
async function sqliteB1Env(writerThread: boolean) {
  const env = await createApiEnv('sqlite', { sqliteWriterThread: writerThread });
  await smallNetwork(env.ctx);
  const web = (await createApiKey(env.ctx, { name: 'web', role: 'channel', channel: 'web' })).secret;
  await seedStock(env, 'WH1', '2026-06-01T09:00:00Z', [{ sku: 'B1', on_hand: 10 }]);
  const capture = (ref: string) => env.app.inject({ method: 'POST', url: '/orders', headers: env.auth(web), payload: homeOrderBody(ref, [['B1', 2, 1000]]) });
  return { env, capture };
}

describe('order capture statements on sqlite without the writer thread', () => {
  let env: ApiEnv;
  let capture: Awaited<ReturnType<typeof sqliteB1Env>>['capture'];
  beforeAll(async () => {
    ({ env, capture } = await sqliteB1Env(false));
  });
  afterAll(async () => env?.close());

  it('a capture is one transaction of inserts in the group commit, without reads', async () => {
    expect(env.ctx.store.writer).toBeUndefined();
    expect((await capture('N-0')).statusCode).toBe(201);
    let status = 0;
    const sent = await statementsOf(async () => {
      status = (await capture('N-1')).statusCode;
    });
    expect(status).toBe(201);
    expect(sent[0]).toBe('begin immediate');
    expect(sent.at(-1)).toBe('commit');
    expect(sent.filter((t) => t.startsWith('select'))).toEqual([]);
    expect(sent.length).toBeLessThanOrEqual(16);
    expect((await positions(env, 'WH1')).B1.reserved).toBe(4);
    await expectBooksBalance(env.ctx.store.db);
  });
});

describe('order capture on sqlite when the writer thread stops mid-capture', () => {
  let env: ApiEnv;
  let capture: Awaited<ReturnType<typeof sqliteB1Env>>['capture'];
  beforeAll(async () => {
    ({ env, capture } = await sqliteB1Env(true));
  });
  afterAll(async () => env?.close());

  it('the capture is retried on the main connection: one order, its stock reserved once', async () => {
    expect((await capture('K-0')).statusCode).toBe(201);
    const writer = env.ctx.store.writer as NonNullable<typeof env.ctx.store.writer>;
    const inside = writer as unknown as { pending: Map<number, unknown>; worker: { terminate(): Promise<number> } };
    // The main connection takes the write lock, so the thread's unit waits in its BEGIN; the
    // thread dies with the unit posted (in general it may or may not have committed it).
    await sql`begin immediate`.execute(env.ctx.store.db);
    const pending = capture('K-1');
    while (inside.pending.size === 0) await new Promise((r) => setImmediate(r));
    const terminated = inside.worker.terminate();
    await sql`rollback`.execute(env.ctx.store.db);
    await terminated;
    const res = await pending;
    expect([200, 201]).toContain(res.statusCode);
    expect(writer.alive).toBe(false);
    // Later captures write on the main connection.
    expect((await capture('K-2')).statusCode).toBe(201);
    const stored = await env.ctx.store.db.selectFrom('orders').select(['external_reference']).execute();
    expect(stored.map((o) => o.external_reference).sort()).toEqual(['K-0', 'K-1', 'K-2']);
    expect((await positions(env, 'WH1')).B1.reserved).toBe(6);
    await expectBooksBalance(env.ctx.store.db);
  });
});
