// The SQLite writer thread (src/db/sqlite-writer.ts): guarded units on a connection of their
// own, group-committed, answered after COMMIT; a short lead or a failing statement undoes its
// unit alone; the main connection's own transactions keep working alongside.
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LOST_RACE_SQLSTATE, openSqlite, type Store } from '../../src/db/database.ts';
import type SQLite from 'better-sqlite3';

const run = promisify(execFile);

describe('SQLite writer thread', () => {
  let file: string;
  let raw: SQLite.Database;
  let store: Store;

  beforeEach(() => {
    file = `/tmp/oms-writer-${process.pid}-${randomBytes(4).toString('hex')}.sqlite`;
    ({ raw, store } = openSqlite(file));
    raw.exec(`create table stock (id integer primary key, free integer not null);
      create table claims (id text primary key, stock_id integer not null references stock (id), quantity integer not null);
      insert into stock (id, free) values (1, 50), (2, 5);`);
  });
  afterEach(async () => {
    await store.close();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  });

  const take = (stock: number, quantity: number) => ({ text: 'update stock set free = free - ? where id = ? and free >= ? returning id, free', params: [quantity, stock, quantity], expected: 1 });
  const claim = (id: string, stock: number, quantity: number) => ({ text: 'insert into claims (id, stock_id, quantity) values (?, ?, ?)', params: [id, stock, quantity] });
  const row = (text: string) => raw.prepare(text).get() as Record<string, number>;
  const writer = () => store.writer as NonNullable<Store['writer']>;

  it('runs a unit and answers after COMMIT with the lead rows; the main connection sees it', async () => {
    const rows = await writer().run({ lead: take(1, 3), statements: [claim('c1', 1, 3)] });
    expect(rows).toEqual([{ id: 1, free: 47 }]);
    expect(row('select free from stock where id = 1').free).toBe(47);
    expect(row("select quantity from claims where id = 'c1'").quantity).toBe(3);
  });

  it('a short lead is a lost race: nothing of the unit stays', async () => {
    const err = await writer()
      .run({ lead: take(2, 6), statements: [claim('c2', 2, 6)] })
      .catch((e: { code?: string }) => e);
    expect((err as { code?: string }).code).toBe(LOST_RACE_SQLSTATE);
    expect(row('select free from stock where id = 2').free).toBe(5);
    expect(row("select count(*) as n from claims where id = 'c2'").n).toBe(0);
  });

  it('a failing statement rolls its unit back alone, with SQLite error code; the others of the group commit', async () => {
    const units = [
      writer().run({ lead: take(1, 1), statements: [claim('dup', 1, 1)] }),
      writer().run({ lead: take(1, 1), statements: [claim('dup', 1, 1)] }),
      writer().run({ lead: take(1, 1), statements: [claim('ok', 1, 1)] }),
    ];
    const settled = await Promise.allSettled(units);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(((settled[1] as PromiseRejectedResult).reason as { code: string }).code).toBe('SQLITE_CONSTRAINT_PRIMARYKEY');
    // Two units took one unit each; the failed one's UPDATE was undone with its insert.
    expect(row('select free from stock where id = 1').free).toBe(48);
    expect(row('select count(*) as n from claims').n).toBe(2);
  });

  it('200 units racing for 50 units: exactly 50 win, the rest lose, while the main connection writes too', async () => {
    await store.db.schema.createTable('notes').addColumn('id', 'integer', (c) => c.primaryKey()).execute();
    const units = Array.from({ length: 200 }, (_, i) => writer().run({ lead: take(1, 1), statements: [claim(`r${i}`, 1, 1)] }));
    // Main-connection transactions (group commit on the event loop) interleave with the thread's groups.
    const main = Array.from({ length: 20 }, (_, i) => store.transact((trx) => sql`insert into notes (id) values (${i})`.execute(trx)));
    const settled = await Promise.allSettled([...units, ...main]);
    const won = settled.slice(0, 200).filter((s) => s.status === 'fulfilled').length;
    const lost = settled.slice(0, 200).filter((s) => s.status === 'rejected' && (s.reason as { code?: string }).code === LOST_RACE_SQLSTATE).length;
    expect([won, lost]).toEqual([50, 150]);
    expect(settled.slice(200).every((s) => s.status === 'fulfilled')).toBe(true);
    expect(row('select free from stock where id = 1').free).toBe(0);
    expect(row('select count(*) as n from claims').n).toBe(50);
    expect(row('select count(*) as n from notes').n).toBe(20);
  });

  it('once closed, a unit is refused with a clear code and nothing is written', async () => {
    await writer().run({ lead: take(1, 1), statements: [] });
    await store.close();
    const err = await writer()
      .run({ lead: take(1, 1), statements: [] })
      .catch((e: { code?: string }) => e);
    expect((err as { code?: string }).code).toBe('OMS_WRITER_STOPPED');
    // Reopen to check what is stored (afterEach closes again: harmless).
    ({ raw, store } = openSqlite(file));
    expect(row('select free from stock where id = 1').free).toBe(49);
  });

  // Idle threads are unref'd. Vitest keeps its own event loop busy, so this runs in a process
  // with nothing else to do: there, awaiting an unref'd thread's exit ended the process before
  // the close finished (exit code 0, the store never closed).
  it.each([
    ['the writer thread', 'await store.writer.run({ lead: take, statements: [] });'],
    ['the checkpoint thread', 'const stop = store.backgroundCheckpoints({ intervalMs: 5 }); await new Promise((r) => setTimeout(r, 20)); await stop();'],
  ])('closing %s completes in a process with nothing else to do', async (_, work) => {
    const script = `import { openSqlite } from ${JSON.stringify(path.resolve('src/db/database.ts'))};
      const { store } = openSqlite(${JSON.stringify(file)});
      const take = { text: 'update stock set free = free - 1 where id = 1 and free >= 1 returning id', params: [], expected: 1 };
      ${work}
      await store.close();
      console.log('closed');`;
    // A file, not -e: the threads inherit node's flags, and --input-type fails in a worker.
    fs.writeFileSync(`${file}.mjs`, script);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', `${file}.mjs`]).finally(() => fs.rmSync(`${file}.mjs`, { force: true }));
    expect(stdout.trim()).toBe('closed');
  });

  it('an in-memory store has no writer thread (a second connection could not see it)', async () => {
    const mem = openSqlite(':memory:');
    expect(mem.store.writer).toBeUndefined();
    await mem.store.close();
  });
});
