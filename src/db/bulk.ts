// Set-based statements with many rows. The SQL text for a given shape is built once and
// reused, so a 1M-row feed costs one parse per chunk size instead of a query build per row.
import { CompiledQuery } from 'kysely';
import type { Dialect, DbOrTrx } from './database.ts';

const cache = new Map<string, string>();

/** "(?,?,?),(?,?,?)" on SQLite, "($1,$2,$3),($4,$5,$6)" on PostgreSQL. */
export function valuesList(dialect: Dialect, rows: number, cols: number): string {
  const key = `${dialect}:${rows}:${cols}`;
  let text = cache.get(key);
  if (text) return text;
  const parts: string[] = [];
  let n = 0;
  for (let r = 0; r < rows; r++) {
    const ph: string[] = [];
    for (let c = 0; c < cols; c++) ph.push(dialect === 'postgres' ? `$${++n}` : '?');
    parts.push(`(${ph.join(',')})`);
  }
  text = parts.join(',');
  if (cache.size > 200) cache.clear();
  cache.set(key, text);
  return text;
}

export async function execRaw<R = unknown>(db: DbOrTrx, text: string, params: unknown[]): Promise<R[]> {
  const res = await db.executeQuery<R>(CompiledQuery.raw(text, params));
  return res.rows as R[];
}

export type ColumnType = 'bigint' | 'integer' | 'text';

/**
 * Inserts many rows with one statement shape per dialect: on PostgreSQL one
 * `insert … select * from unnest($1::bigint[], …)` per 10,000 rows (one parse, one plan, one
 * round trip), on SQLite multi-row VALUES of up to 2,000 rows. `tail` is appended as is
 * (an ON CONFLICT clause). Rows are arrays in column order.
 */
export async function bulkInsert(
  db: DbOrTrx,
  dialect: Dialect,
  table: string,
  columns: Array<[name: string, type: ColumnType]>,
  rows: unknown[][],
  tail = '',
): Promise<void> {
  if (rows.length === 0) return;
  const names = columns.map((c) => c[0]).join(', ');
  if (dialect === 'postgres') {
    const text = `insert into ${table} (${names}) select * from unnest(${columns.map((c, i) => `$${i + 1}::${c[1]}[]`).join(', ')}) ${tail}`;
    for (let i = 0; i < rows.length; i += 10_000) {
      const slice = rows.slice(i, i + 10_000);
      await execRaw(db, text, columns.map((_, c) => slice.map((r) => r[c])));
    }
    return;
  }
  const per = Math.max(1, Math.min(2000, Math.floor(30_000 / columns.length)));
  for (let i = 0; i < rows.length; i += per) {
    const slice = rows.slice(i, i + per);
    await execRaw(db, `insert into ${table} (${names}) values ${valuesList(dialect, slice.length, columns.length)} ${tail}`, slice.flat());
  }
}
