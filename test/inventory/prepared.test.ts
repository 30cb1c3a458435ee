// PostgreSQL: statements marked PREPARED are sent by name (parsed once per connection), give
// the same results as plain ones, and unmarked statements stay unnamed.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, PREPARED, type Store } from '../../src/db/database.ts';
import { execRaw } from '../../src/db/bulk.ts';
import { createPgSchema, PG_URL } from '../support/backends.ts';

describe.skipIf(!PG_URL)('prepared statements on PostgreSQL', () => {
  let store: Store;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const schema = await createPgSchema('prep');
    drop = schema.drop;
    store = openPostgres(schema.url, 2).store;
    await sql`create table t (id bigint primary key, qty integer not null)`.execute(store.db);
  });
  afterAll(async () => {
    await store?.close();
    await drop?.();
  });

  it('a marked statement is prepared once per connection and runs with new parameters each time', async () => {
    const text = `${PREPARED}insert into t (id, qty) select * from unnest($1::bigint[], $2::int[]) returning id, qty`;
    const names = await store.db.transaction().execute(async (trx) => {
      const a = await execRaw<{ id: number; qty: number }>(trx, text, ['{1,2}', '{10,20}']);
      const b = await execRaw<{ id: number; qty: number }>(trx, text, ['{3}', '{30}']);
      expect(a).toEqual([
        { id: 1, qty: 10 },
        { id: 2, qty: 20 },
      ]);
      expect(b).toEqual([{ id: 3, qty: 30 }]);
      await execRaw(trx, 'select count(*) from t where id > $1', [0]);
      return (await sql<{ name: string; statement: string }>`select name, statement from pg_prepared_statements`.execute(trx)).rows;
    });
    // One name for the marked text (executed twice), none for the plain query.
    expect(names).toEqual([{ name: expect.stringMatching(/^oms_\d+$/), statement: text }]);
  });

  it('the same text keeps its name on every connection of the pool', async () => {
    const text = `${PREPARED}select qty from t where id = $1`;
    const got = await Promise.all(
      [1, 2, 3, 1].map((id) => store.db.transaction().execute(async (trx) => (await execRaw<{ qty: number }>(trx, text, [id]))[0].qty)),
    );
    expect(got).toEqual([10, 20, 30, 10]);
  });
});
