// The timeline's read of the outbox goes through the partial index `outbox_timeline`
// (migration 0010): the query carries the index's predicate, so both planners can use it. Were
// the two to drift apart, every timeline would scan the whole outbox; this fails first.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { timelineEvents } from '../../src/orders/queries.ts';
import { BACKENDS, createTestEnv, type TestEnv } from '../support/backends.ts';

describe.each(BACKENDS)('the timeline query and its index (%s)', (backend) => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv(backend);
  });
  afterAll(async () => env?.close());

  it('is planned on outbox_timeline, and the old full index is gone', async () => {
    const db = env.ctx.store.db;
    const q = timelineEvents(db, ['ord_1', 'ful_1']).compile();
    let plan: string;
    if (backend === 'sqlite') {
      const r = await db.executeQuery<{ detail: string }>({ ...q, sql: `explain query plan ${q.sql}`, query: q.query });
      plan = r.rows.map((x) => x.detail).join('\n');
    } else {
      // An empty table: without this the planner rightly prefers a sequential scan.
      plan = await db.transaction().execute(async (trx) => {
        await sql`set local enable_seqscan = off`.execute(trx);
        const r = await trx.executeQuery<{ 'QUERY PLAN': string }>({ ...q, sql: `explain ${q.sql}`, query: q.query });
        return r.rows.map((x) => x['QUERY PLAN']).join('\n');
      });
    }
    expect(plan).toContain('outbox_timeline');
    const indexes =
      backend === 'sqlite'
        ? (await sql<{ name: string }>`select name from sqlite_master where type = 'index'`.execute(db)).rows.map((r) => r.name)
        : (await sql<{ name: string }>`select indexname as name from pg_indexes where schemaname = current_schema()`.execute(db)).rows.map((r) => r.name);
    expect(indexes).toContain('outbox_timeline');
    expect(indexes).not.toContain('outbox_aggregate');
    expect(indexes).not.toContain('reservations_position');
  });
});
