// Group commit on SQLite: concurrent units share one COMMIT, each in its own savepoint; a unit
// that fails is rolled back alone and rejected; nothing resolves before its COMMIT.
import fs from 'node:fs';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { execRaw } from '../../src/db/bulk.ts';
import { openSqlite, type Store } from '../../src/db/database.ts';
import { groupConnection } from '../../src/db/group-commit.ts';

describe('group commit (SQLite)', () => {
  let store: Store;
  let file: string;
  afterEach(async () => {
    await store?.close();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  });
  const open = async () => {
    file = `/tmp/oms-group-${process.pid}-${Math.random().toString(36).slice(2)}.sqlite`;
    store = openSqlite(file).store;
    await sql`create table t (k text primary key, v integer not null check (v >= 0))`.execute(store.db);
  };
  const rows = async () => (await sql<{ k: string; v: number }>`select k, v from t order by k`.execute(store.db)).rows;
  const count = async () => (await sql<{ n: number }>`select count(*) as n from t`.execute(store.db)).rows[0].n;
  /** Counts the transactions the store opens from now on. */
  const countTransactions = () => {
    const counter = { n: 0 };
    const original = store.db.transaction.bind(store.db);
    store.db.transaction = () => {
      counter.n++;
      return original();
    };
    return counter;
  };

  it('runs concurrent units, rolls back the failing one alone, and resolves only committed work', async () => {
    await open();
    const transactions = countTransactions();
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        store.transact(async (trx) => {
          await sql`insert into t (k, v) values (${`k${String(i).padStart(2, '0')}`}, ${i})`.execute(trx);
          // Unit 7 breaks a constraint after its insert: its insert must disappear, nobody else's.
          if (i === 7) await sql`update t set v = -1 where k = 'k07'`.execute(trx);
          return i;
        }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<number>).value)).toEqual([...Array(20).keys()].filter((i) => i !== 7));
    expect(results[7].status).toBe('rejected');
    expect((await rows()).map((r) => r.k)).toEqual([...Array(20).keys()].filter((i) => i !== 7).map((i) => `k${String(i).padStart(2, '0')}`));
    expect(await count()).toBe(19);
    // Twenty units submitted together share one transaction and one COMMIT.
    expect(transactions.n).toBe(1);
  });

  it('execRaw statements run on the group\'s connection, in order with Kysely queries, and roll back with their unit', async () => {
    await open();
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) =>
        store.transact(async (trx) => {
          expect(groupConnection(trx)).toBeDefined();
          await execRaw(trx, 'insert into t (k, v) values (?, ?)', [`r${i}`, i]);
          await sql`update t set v = v + 10 where k = ${`r${i}`}`.execute(trx);
          const back = await execRaw<{ v: number }>(trx, 'select v from t where k = ?', [`r${i}`]);
          if (i === 3) await execRaw(trx, "update t set v = -1 where k = 'r3'", []);
          return back[0].v;
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))).toEqual([10, 11, 12, 14, 15]);
    expect(await rows()).toEqual([0, 1, 2, 4, 5].map((i) => ({ k: `r${i}`, v: i + 10 })));
    // Outside a group, execRaw goes through Kysely as before.
    expect(groupConnection(store.db)).toBeUndefined();
    expect(await execRaw<{ n: number }>(store.db, 'select count(*) as n from t', [])).toEqual([{ n: 5 }]);
  });

  it('units see the writes of earlier units of their group, and later units wait for the next group', async () => {
    await open();
    await store.transact(async (trx) => sql`insert into t (k, v) values ('a', 1)`.execute(trx));
    const seen = await Promise.all(
      Array.from({ length: 10 }, () =>
        store.transact(async (trx) => {
          const r = await sql<{ v: number }>`update t set v = v + 1 where k = 'a' returning v`.execute(trx);
          return r.rows[0].v;
        }),
      ),
    );
    expect(seen).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect((await rows())[0].v).toBe(11);
  });

  it('a failed COMMIT rejects every unit of the group and stores none', async () => {
    await open();
    // A deferred foreign key fails only at COMMIT.
    await sql`create table parent (id integer primary key)`.execute(store.db);
    await sql`create table child (id integer primary key, p integer references parent(id) deferrable initially deferred)`.execute(store.db);
    const results = await Promise.allSettled([
      store.transact(async (trx) => sql`insert into t (k, v) values ('x', 1)`.execute(trx)),
      store.transact(async (trx) => sql`insert into child (id, p) values (1, 99)`.execute(trx)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await rows()).toEqual([]);
  });
});
