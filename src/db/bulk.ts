// Set-based statements with many rows. The SQL text for a given shape is built once and
// reused, so a 1M-row feed costs one parse per chunk size instead of a query build per row.
import { CompiledQuery } from 'kysely';
import type { Dialect, DbOrTrx } from './database.ts';

const cache = new Map<string, string>();

/**
 * "(?,?,?),(?,?,?)" on SQLite, "($1,$2,$3),($4,$5,$6)" on PostgreSQL. With `pgCast`, each
 * PostgreSQL placeholder is typed (needed where no target column gives the type, as in
 * `(a, b) in (values …)`).
 */
export function valuesList(dialect: Dialect, rows: number, cols: number, pgCast?: 'bigint'): string {
  const key = `${dialect}:${rows}:${cols}:${pgCast ?? ''}`;
  let text = cache.get(key);
  if (text) return text;
  const parts: string[] = [];
  let n = 0;
  for (let r = 0; r < rows; r++) {
    const ph: string[] = [];
    for (let c = 0; c < cols; c++) ph.push(dialect === 'postgres' ? (pgCast ? `$${++n}::${pgCast}` : `$${++n}`) : '?');
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

/** Runs `build(rowsInBatch)` for batches of `batch` rows, each with its flattened parameters. */
export async function inBatches<T, R = unknown>(
  db: DbOrTrx,
  items: T[],
  batch: number,
  build: (n: number) => string,
  params: (item: T, out: unknown[]) => void,
): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += batch) {
    const slice = items.slice(i, i + batch);
    const p: unknown[] = [];
    for (const it of slice) params(it, p);
    const rows = await execRaw<R>(db, build(slice.length), p);
    for (const r of rows) out.push(r);
  }
  return out;
}
