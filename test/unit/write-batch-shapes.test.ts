// A WriteBatch's statement text is kept per shape (src/db/bulk.ts): batches of different shapes,
// one after another in any order, must each write exactly their own rows, and constants that
// differ between batches of one shape are parameters, never part of the kept text.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { pgArray, WriteBatch } from '../../src/db/bulk.ts';
import { BACKENDS, createTestEnv, type TestEnv } from '../support/backends.ts';

/** No lone surrogate (encodeURIComponent refuses those). */
function wellFormed(v: string): boolean {
  try {
    encodeURIComponent(v);
    return true;
  } catch {
    return false;
  }
}

describe.each(BACKENDS)('WriteBatch statement shapes on %s', (backend) => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv(backend);
    await sql`create table shape_a (k integer not null, v text, tag text)`.execute(env.ctx.store.db);
    await sql`create table shape_b (k integer not null)`.execute(env.ctx.store.db);
  });
  afterAll(async () => env?.close());

  const rows = async () => ({
    a: (await sql<{ k: number; v: string | null; tag: string | null }>`select k, v, tag from shape_a order by k`.execute(env.ctx.store.db)).rows.map((r) => [Number(r.k), r.v, r.tag]),
    b: (await sql<{ k: number }>`select k from shape_b order by k`.execute(env.ctx.store.db)).rows.map((r) => Number(r.k)),
  });

  it('each batch writes its own rows, whatever shape came before', async () => {
    const batches: Array<(b: WriteBatch) => void> = [
      // columns (k, v), constant tag 'x'; then a second table
      (b) => {
        b.insert('shape_a', [['k', 'integer'], ['v', 'text']], [[1, 'one'], [2, 'two']], '', [['tag', 'text', 'x']]);
        b.insert('shape_b', [['k', 'integer']], [[1]]);
      },
      // the same columns in the other order, no constant
      (b) => {
        b.insert('shape_a', [['v', 'text'], ['k', 'integer']], [['three', 3]]);
        b.insert('shape_b', [['k', 'integer']], [[5]]);
      },
      // the first shape again, another constant value and another row count
      (b) => {
        b.insert('shape_a', [['k', 'integer'], ['v', 'text']], [[4, 'fo"ur\\']], '', [['tag', 'text', 'y']]);
        b.insert('shape_b', [['k', 'integer']], [[2], [3]]);
      },
      // the second table first: another sequence of the same inserts
      (b) => {
        b.insert('shape_b', [['k', 'integer']], [[4]]);
        b.insert('shape_a', [['k', 'integer'], ['v', 'text']], [[5, null]], '', [['tag', 'text', 'z']]);
      },
      // the columns of the second batch in the first order
      (b) => {
        b.insert('shape_a', [['k', 'integer'], ['v', 'text']], [[6, 'six']]);
        b.insert('shape_b', [['k', 'integer']], [[6]]);
      },
    ];
    for (let round = 0; round < 2; round++) {
      for (const fill of batches) {
        const batch = new WriteBatch();
        fill(batch);
        await env.ctx.store.transact((trx) => batch.flush(trx, env.ctx.store.dialect));
      }
      const got = await rows();
      const times = (list: unknown[]) => Array.from({ length: round + 1 }, () => list).flat();
      expect(got.b).toEqual(times([1, 2, 3, 4, 5, 6]).sort((x, y) => (x as number) - (y as number)));
      expect(got.a).toEqual(
        [
          ...times([[1, 'one', 'x']]),
          ...times([[2, 'two', 'x']]),
          ...times([[3, 'three', null]]),
          ...times([[4, 'fo"ur\\', 'y']]),
          ...times([[5, null, 'z']]),
          ...times([[6, 'six', null]]),
        ],
      );
    }
  });

  it.runIf(backend === 'postgres')('text values come back from PostgreSQL exactly as sent in an array literal', async () => {
    const tricky = ['', 'plain', 'a"b', 'back\\slash', '\\"', '{"json":"with \\"quotes\\" and \\\\ backslashes"}', 'line\nbreak\ttab\r', 'NULL', 'null', '{a,b}', 'é ü 漢字', 'emoji 🎉 pair', ' spaced ', ','];
    // PostgreSQL text cannot hold NUL, and UTF-8 has no lone surrogates: every other string.
    const strings = fc.string({ unit: 'binary', maxLength: 40 }).filter((v) => !v.includes('\u0000') && wellFormed(v));
    const samples = [...tricky, ...fc.sample(strings, { numRuns: 300, seed: 7 })];
    const literal = pgArray(samples, 'text');
    expect(typeof literal).toBe('string');
    const back = await sql<{ v: string }>`select unnest(${literal}::text[]) as v`.execute(env.ctx.store.db);
    expect(back.rows.map((r) => r.v)).toEqual(samples);
  });
});
