// The WriteBatch joins a second lot of rows to an earlier insert of the same shape only for
// tables that reference no other (events, dirty marks); every other insert keeps its place.
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { WriteBatch } from '../../src/db/bulk.ts';
import type { DbOrTrx } from '../../src/db/database.ts';

let raw: SQLite.Database | null = null;
afterEach(() => {
  raw?.close();
  raw = null;
});

function db() {
  raw = new SQLite(':memory:');
  raw.pragma('foreign_keys = ON');
  raw.exec(`
    create table outbox (id integer primary key autoincrement, type text not null, origin text not null, occurred_at integer not null);
    create table parent (id integer primary key);
    create table other (id integer primary key);
    create table child (id integer primary key, parent_id integer references parent (id), other_id integer references other (id));
  `);
  const statements: string[] = [];
  const k = new Kysely({ dialect: new SqliteDialect({ database: raw }), log: (e) => void statements.push(e.query.sql) }) as unknown as DbOrTrx;
  return { k, statements };
}

const EVENT = [['type', 'text']] as Array<[string, 'text']>;
const at = (now: number) => [
  ['origin', 'text', 'p1'],
  ['occurred_at', 'bigint', now],
] as Array<[string, 'text' | 'bigint', unknown]>;

describe('WriteBatch', () => {
  it('events of one transaction go out in one statement, in the order they were added', async () => {
    const { k, statements } = db();
    const batch = new WriteBatch();
    batch.insert('outbox', EVENT, [['stock.reserved'], ['stock.reserved']], '', at(1));
    batch.insert('parent', [['id', 'integer']], [[1]]);
    batch.insert('outbox', EVENT, [['order.created'], ['fulfillment.created']], '', at(1));
    await batch.flush(k, 'sqlite');
    expect(statements.filter((s) => s.startsWith('insert into outbox'))).toHaveLength(1);
    expect(raw?.prepare('select type from outbox order by id').all()).toEqual([{ type: 'stock.reserved' }, { type: 'stock.reserved' }, { type: 'order.created' }, { type: 'fulfillment.created' }]);
  });

  it('events with other constants stay apart', async () => {
    const { k, statements } = db();
    const batch = new WriteBatch();
    batch.insert('outbox', EVENT, [['a']], '', at(1));
    batch.insert('outbox', EVENT, [['b']], '', at(2));
    await batch.flush(k, 'sqlite');
    expect(statements.filter((s) => s.startsWith('insert into outbox'))).toHaveLength(2);
    expect(raw?.prepare('select type, occurred_at from outbox order by id').all()).toEqual([
      { type: 'a', occurred_at: 1 },
      { type: 'b', occurred_at: 2 },
    ]);
  });

  it('rows of a table with references keep their place after what they reference', async () => {
    const { k, statements } = db();
    const batch = new WriteBatch();
    const cols = [['id', 'integer'], ['parent_id', 'integer'], ['other_id', 'integer']] as Array<[string, 'integer']>;
    batch.insert('parent', [['id', 'integer']], [[1]]);
    batch.insert('child', cols, [[10, 1, null]]);
    // A table written once, after the first children: a second lot of children that references
    // it must not move up to the first lot.
    batch.insert('other', [['id', 'integer']], [[5]]);
    batch.insert('child', cols, [[20, null, 5]]);
    await batch.flush(k, 'sqlite');
    expect(statements).toHaveLength(4);
    expect(raw?.prepare('select id, parent_id, other_id from child order by id').all()).toEqual([
      { id: 10, parent_id: 1, other_id: null },
      { id: 20, parent_id: null, other_id: 5 },
    ]);
  });
});
