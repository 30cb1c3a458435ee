// Set-based statements with many rows. The SQL text for a given shape is built once and
// reused, so a 1M-row feed costs one parse per chunk size instead of a query build per row.
import { CompiledQuery } from 'kysely';
import { type Dialect, type DbOrTrx, PREPARED } from './database.ts';
import { groupConnection } from './group-commit.ts';
import type { SqliteWriter } from './sqlite-writer.ts';

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
  const connection = groupConnection(db);
  if (connection) {
    // In a group commit: on its connection, as Kysely's SQLite driver would run it.
    const stmt = connection.prepare(text);
    if (stmt.reader) return stmt.all(params) as R[];
    stmt.run(params);
    return [];
  }
  const res = await db.executeQuery<R>(CompiledQuery.raw(text, params));
  return res.rows as R[];
}

export type ColumnType = 'bigint' | 'integer' | 'text';

/** Characters JSON.stringify does not write as an array literal's quoting would (see pgArray). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const NOT_JSON_QUOTABLE = /[\u0000-\u001f\ud800-\udfff]/;

/**
 * One column of values as a PostgreSQL array literal ("{1,2,NULL}", '{"a","b\\"c"}'), built
 * in one pass: a quarter of the node CPU of the driver's own array serialisation (10,000
 * integers: ~0.6 ms against 2–3 ms; a million-row feed sends ten such columns a row). A value
 * of any other kind (a float, a Date, a boolean…) returns the array untouched, for the driver
 * to serialise as before.
 */
export function pgArray(values: readonly unknown[], type: ColumnType): string | readonly unknown[] {
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) parts[i] = 'NULL';
    else if (typeof v === 'number' && type !== 'text' && Number.isSafeInteger(v)) parts[i] = String(v);
    // JSON.stringify writes a string's quotes and backslashes escaped as the array literal
    // needs them, natively (2–3× faster than the replace on the kilobytes of JSON an order
    // sends: its sourcing decision, its events); it writes control characters and lone
    // surrogates otherwise, so those strings take the replace.
    else if (typeof v === 'string') parts[i] = NOT_JSON_QUOTABLE.test(v) ? `"${v.replace(/[\\"]/g, '\\$&')}"` : JSON.stringify(v);
    else return values;
  }
  return `{${parts.join(',')}}`;
}

/**
 * Inserts many rows with one statement shape per dialect: on PostgreSQL one
 * `insert … select * from unnest($1::bigint[], …)` per 10,000 rows (one parse, one plan, one
 * round trip), on SQLite multi-row VALUES of up to 500 rows. `same` are columns whose value
 * is the same for every row: bound once per statement, not once per row. `tail` is appended
 * as is (an ON CONFLICT clause). Rows are arrays in `columns` order.
 */
export async function bulkInsert(
  db: DbOrTrx,
  dialect: Dialect,
  table: string,
  columns: Array<[name: string, type: ColumnType]>,
  rows: unknown[][],
  tail = '',
  same: Array<[name: string, type: ColumnType, value: unknown]> = [],
): Promise<void> {
  if (rows.length === 0) return;
  if (dialect === 'postgres') {
    const names = [...columns.map((c) => c[0]), ...same.map((c) => c[0])].join(', ');
    const width = columns.length;
    const constants = same.map((c, i) => `, $${width + i + 1}::${c[1]}`).join('');
    // "where true": an INSERT … SELECT followed by ON CONFLICT needs it to parse unambiguously.
    const text = `insert into ${table} (${names}) select *${constants} from unnest(${columns.map((c, i) => `$${i + 1}::${c[1]}[]`).join(', ')}) where true ${tail}`;
    for (let i = 0; i < rows.length; i += 10_000) {
      const slice = rows.slice(i, i + 10_000);
      await execRaw(db, text, [...columns.map(([, type], c) => pgArray(slice.map((r) => r[c]), type)), ...same.map((c) => c[2])]);
    }
    return;
  }
  for (const st of sqliteInserts(table, columns, rows, tail, same)) await execRaw(db, st.text, st.params);
}

/** bulkInsert's SQLite statements: multi-row VALUES of up to 500 rows each. */
function sqliteInserts(
  table: string,
  columns: Array<[name: string, type: ColumnType]>,
  rows: unknown[][],
  tail: string,
  same: Array<[name: string, type: ColumnType, value: unknown]>,
): Array<{ text: string; params: unknown[] }> {
  const width = columns.length;
  // 500 rows a statement measured fastest here (against 100 and 2,000).
  const per = Math.max(1, Math.min(500, Math.floor(30_000 / width)));
  const head = same.map((c) => c[2]);
  const out: Array<{ text: string; params: unknown[] }> = [];
  for (let i = 0; i < rows.length; i += per) {
    const n = Math.min(per, rows.length - i);
    const params = new Array(head.length + n * width);
    for (let k = 0; k < head.length; k++) params[k] = head[k];
    for (let r = 0; r < n; r++) {
      const row = rows[i + r];
      for (let c = 0; c < width; c++) params[head.length + r * width + c] = row[c];
    }
    out.push({ text: sqliteInsertText(table, columns, n, tail, same), params });
  }
  return out;
}

/** What an insert's SQL text depends on: its table, tail, and column and constant names and types (values are parameters). */
type InsertShape = Pick<PendingInsert, 'table' | 'columns' | 'same' | 'tail'>;

const sameColumns = (a: ReadonlyArray<readonly unknown[]>, b: ReadonlyArray<readonly unknown[]>): boolean =>
  a.length === b.length && a.every((x, i) => x[0] === b[i][0] && x[1] === b[i][1]);
const sameTextShape = (a: InsertShape, b: InsertShape): boolean => a.table === b.table && a.tail === b.tail && sameColumns(a.columns, b.columns) && sameColumns(a.same, b.same);
/** A copy of an insert's shape to keep (without its rows or constant values). */
const shapeOf = (p: InsertShape): InsertShape => ({ table: p.table, tail: p.tail, columns: p.columns.map((c) => [c[0], c[1]]), same: p.same.map((c) => [c[0], c[1], null]) });

/** SQLite insert texts by table: a capture writes a dozen small inserts of a few shapes. */
const insertTexts = new Map<string, Array<{ shape: InsertShape; rows: number; text: string }>>();

/**
 * The text of a SQLite multi-row insert. The same string object for the same shape: building
 * it (and hashing a fresh copy of it, as the writer thread's text numbering does) costs more
 * than the lookup.
 */
function sqliteInsertText(table: string, columns: PendingInsert['columns'], rows: number, tail: string, same: PendingInsert['same']): string {
  const shape = { table, columns, same, tail };
  let known = insertTexts.get(table);
  const hit = known?.find((k) => k.rows === rows && sameTextShape(k.shape, shape));
  if (hit) return hit.text;
  const names = [...columns.map((c) => c[0]), ...same.map((c) => c[0])].join(', ');
  const values = valuesList('sqlite', rows, columns.length);
  const text =
    same.length === 0
      ? `insert into ${table} (${names}) values ${values} ${tail}`
      : `insert into ${table} (${names}) select *${', ?'.repeat(same.length)} from (values ${values}) where true ${tail}`;
  // Small inserts only (a bulk load's 500-row texts are not worth keeping), 32 shapes a table.
  if (rows <= 16) {
    if (!known) insertTexts.set(table, (known = []));
    if (known.length >= 32) known.length = 0;
    known.push({ shape: shapeOf(shape), rows, text });
  }
  return text;
}

/** Tables without foreign keys: their rows may be written before any other of the batch. */
const UNREFERENCING = new Set(['outbox', 'availability_dirty']);

/** Same names and types (and, for constants, values), in the same order. */
const sameShape = (a: ReadonlyArray<readonly unknown[]>, b: ReadonlyArray<readonly unknown[]>): boolean =>
  a.length === b.length && a.every((x, i) => x.length === b[i].length && x.every((v, k) => v === b[i][k]));

export interface PendingInsert {
  table: string;
  columns: Array<[name: string, type: ColumnType]>;
  rows: unknown[][];
  tail: string;
  same: Array<[name: string, type: ColumnType, value: unknown]>;
  /**
   * An upsert whose tail adds a column of the incoming row to the stored one (`… do update set
   * n = t.n + excluded.n`): rows of several batches written as one statement (a PostgreSQL
   * capture group) that share the `key` columns are summed on column `add` first, since one
   * statement cannot upsert a row twice.
   */
  accumulate?: { key: number[]; add: number };
}

/**
 * The UPDATE … RETURNING that leads a guarded batch (WriteBatch.flushGuarded): its parameters
 * are $1…$n, and it must return `expected` rows or nothing of the batch stays.
 */
export interface GuardedLead {
  text: string;
  params: unknown[];
  expected: number;
  /** How several such leads run as one (src/db/pg-capture-group.ts); without it, a lead runs alone. */
  combiner?: LeadCombiner;
}

export interface LeadCombiner {
  /** One lead doing what every one of `leads` does (its rows: theirs, each row once). */
  combine(leads: GuardedLead[]): GuardedLead;
  /** The rows of the combined lead that `lead` would have returned alone. */
  share<R>(lead: GuardedLead, rows: R[]): R[];
}

/**
 * Inserts gathered during a use case and written together at its end: on PostgreSQL as one
 * statement (each insert a data-modifying CTE over `unnest` arrays: one round trip for an
 * order's dozen inserts), on SQLite one bulkInsert each (no round trips to save there).
 * Rows within an insert keep their order, so an upsert's row locks stay sorted.
 */
export class WriteBatch {
  private parts: PendingInsert[] = [];

  /**
   * Rows for a table. For a table that references no other (the outbox, dirty marks), rows of
   * the same shape as an earlier insert (same columns, tail and constants: two lots of events
   * of one transaction) join it, written earlier than asked: one statement fewer. Other tables'
   * rows keep their place, after the rows they may reference.
   */
  insert(table: string, columns: PendingInsert['columns'], rows: unknown[][], tail = '', same: PendingInsert['same'] = [], accumulate?: PendingInsert['accumulate']): void {
    if (!rows.length) return;
    const twin = UNREFERENCING.has(table) ? this.parts.find((p) => p.table === table && p.tail === tail && sameShape(p.columns, columns) && sameShape(p.same, same)) : undefined;
    if (twin) twin.rows = twin.rows.concat(rows);
    else this.parts.push(accumulate ? { table, columns, rows, tail, same, accumulate } : { table, columns, rows, tail, same });
  }

  get size(): number {
    return this.parts.length;
  }

  async flush(db: DbOrTrx, dialect: Dialect): Promise<void> {
    const parts = this.parts;
    this.parts = [];
    if (parts.length === 0) return;
    if (dialect === 'sqlite' || parts.length === 1 || parts.some((p) => p.rows.length > 10_000)) {
      for (const p of parts) await bulkInsert(db, dialect, p.table, p.columns, p.rows, p.tail, p.same);
      return;
    }
    const params: unknown[] = [];
    await execRaw(db, batchText(null, parts, params), params);
  }

  /**
   * SQLite with a writer thread (src/db/sqlite-writer.ts): `lead` and every insert of the batch
   * as one unit of the thread's group commit, with flushGuarded's contract: the inserts stay
   * only if `lead` changed exactly `expected` rows, else nothing does and the returned promise
   * rejects with LOST_RACE_SQLSTATE. Returns the rows `lead` returned, once committed.
   */
  async flushToWriter<R>(writer: SqliteWriter, lead: GuardedLead): Promise<R[]> {
    const parts = this.parts;
    this.parts = [];
    const statements = parts.flatMap((p) => sqliteInserts(p.table, p.columns, p.rows, p.tail, p.same));
    return writer.run<R>({ lead, statements });
  }

  /**
   * PostgreSQL: `lead` (a conditional UPDATE … RETURNING whose parameters are $1…$n) and every
   * insert of the batch as one statement, for a caller outside any transaction: it commits or
   * fails as a whole. The inserts happen only if `lead` changed exactly `expected` rows; else
   * the statement raises LOST_RACE_SQLSTATE (migration 0009) and nothing of it stays. Returns
   * the rows `lead` returned. One round trip where BEGIN, UPDATE, inserts, COMMIT take four.
   */
  async flushGuarded<R>(db: DbOrTrx, lead: GuardedLead): Promise<R[]> {
    const parts = this.parts;
    this.parts = [];
    const st = guardedStatement(lead, parts);
    return execRaw<R>(db, st.text, st.params);
  }

  /**
   * PostgreSQL with a capture group (src/db/pg-capture-group.ts): what flushGuarded writes,
   * with the same contract, possibly in one statement with other captures' batches.
   */
  flushGrouped<R>(group: { run<T>(lead: GuardedLead, parts: PendingInsert[]): Promise<T[]> }, lead: GuardedLead): Promise<R[]> {
    const parts = this.parts;
    this.parts = [];
    return group.run<R>(lead, parts);
  }
}

/** flushGuarded's statement: `lead`, the guard and every insert of `parts`. */
export function guardedStatement(lead: GuardedLead, parts: PendingInsert[]): { text: string; params: unknown[] } {
  const params = [...lead.params, lead.expected];
  return { text: batchText(lead.text, parts, params), params };
}

/**
 * The inserts of several batches as one batch: rows of the same table and shape join one
 * insert, in the order their batches come, with each batch's constants (`same`) turned into
 * columns (two captures' constants differ: their order, their instant). Upserts declaring
 * `accumulate` get one row per key, summed.
 */
export function combinedParts(batches: PendingInsert[][]): PendingInsert[] {
  const out: PendingInsert[] = [];
  /** Each combined insert with the shape of the batches' inserts it takes. */
  const shapes: Array<{ shape: InsertShape; into: PendingInsert }> = [];
  for (const parts of batches) {
    for (const p of parts) {
      let into = shapes.find((x) => sameTextShape(x.shape, p))?.into;
      if (!into) {
        into = { table: p.table, tail: p.tail, columns: [...p.columns, ...p.same.map(([n, t]): [string, ColumnType] => [n, t])], rows: [], same: [] };
        if (p.accumulate) into.accumulate = p.accumulate;
        shapes.push({ shape: p, into });
        out.push(into);
      }
      if (p.same.length === 0) for (const r of p.rows) into.rows.push(r);
      else {
        const constants = p.same.map((c) => c[2]);
        for (const r of p.rows) into.rows.push([...r, ...constants]);
      }
    }
  }
  for (const p of out) if (p.accumulate) p.rows = summedOn(p.rows, p.accumulate);
  return out;
}

/**
 * Rows with equal `key` columns as one, column `add` summed, sorted by key: an upsert locks its
 * rows in the order it inserts them, and two statements locking the same rows in opposite
 * orders would deadlock (each batch's rows come sorted; their union must be too).
 */
function summedOn(rows: unknown[][], { key, add }: { key: number[]; add: number }): unknown[][] {
  const seen = new Map<string, unknown[]>();
  for (const r of rows) {
    const k = key.map((c) => String(r[c])).join('\u0000');
    const twin = seen.get(k);
    if (twin) twin[add] = Number(twin[add]) + Number(r[add]);
    else seen.set(k, [...r]);
  }
  return [...seen.values()].sort((a, b) => {
    for (const c of key) {
      const x = a[c] as number | string;
      const y = b[c] as number | string;
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  });
}

/**
 * The PostgreSQL text of a batch (flush with no lead; flushGuarded with one), its parameters
 * appended to `params` (after the lead's and the guard's count). The text depends only on the
 * shape of the batch, and the same shapes repeat (every capture of a 3-line home order): it is
 * kept, so each capture neither rebuilds a few kilobytes of SQL nor hashes a fresh copy of it
 * to find its prepared statement.
 */
function batchText(lead: string | null, parts: PendingInsert[], params: unknown[]): string {
  const first = params.length;
  for (const p of parts) {
    for (let c = 0; c < p.columns.length; c++) params.push(pgArray(p.rows.map((r) => r[c]), p.columns[c][1]));
    for (const x of p.same) params.push(x[2]);
  }
  const known = batchTexts.get(lead ?? '') ?? [];
  const hit = known.find((k) => k.parts.length === parts.length && k.parts.every((x, i) => sameTextShape(x, parts[i])));
  if (hit) return hit.text;
  const text = buildBatchText(lead, parts, first);
  if (known.length === 0) {
    if (batchTexts.size >= 64) batchTexts.clear();
    batchTexts.set(lead ?? '', known);
  }
  if (known.length >= 32) known.length = 0;
  known.push({ parts: parts.map(shapeOf), text });
  return text;
}

/** PostgreSQL batch texts by lead statement ('' for none), then shape. */
const batchTexts = new Map<string, Array<{ parts: InsertShape[]; text: string }>>();

/** Builds batchText's statement; the parts' parameters are numbered from `first` + 1. */
function buildBatchText(lead: string | null, parts: PendingInsert[], first: number): string {
  let n = first;
  const condition = lead === null ? 'true' : '(select ok from g)';
  const inserts = parts.map((p, i) => {
    const arrays = p.columns.map(([, type]) => `$${++n}::${type}[]`);
    const constants = p.same.map(([, type]) => `, $${++n}::${type}`);
    const names = [...p.columns.map((c) => c[0]), ...p.same.map((c) => c[0])].join(', ');
    return `w${i} as (insert into ${p.table} (${names}) select *${constants.join('')} from unnest(${arrays.join(', ')}) where ${condition} ${p.tail})`;
  });
  if (lead === null) return `${PREPARED}with ${inserts.join(', ')} select 1`;
  // Every insert reads the guard, so it runs (and raises) before any of them writes.
  const k = first;
  const ctes = [`r as (${lead})`, `g as (select case when count(*) = $${k} then true else oms_lost_race(count(*), $${k}) end as ok from r)`, ...inserts];
  return `${PREPARED}with ${ctes.join(', ')} select r.* from r where (select ok from g)`;
}
