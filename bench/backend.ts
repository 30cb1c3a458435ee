// Where a bench run keeps its data, and the raw driver used for the ceilings.
// SQLite: a fresh file in a temporary directory. PostgreSQL: a fresh schema on the bench
// database, selected through search_path (as test/support/backends.ts does), dropped at the end.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { openPostgres, openSqlite, type Store } from '../src/db/database.ts';
import { type BackendName, summarise } from './report.ts';

export const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

export interface SnapshotWrite {
  locationId: number;
  skuId: number;
  onHand: number;
}

/** The same reads and writes the OMS does, straight on the driver: the ceilings. */
export interface RawDriver {
  /** The single-sku availability statement in use (see skuLeadingIndex). */
  atpSql: string;
  /** Network availability of one sku (every position, safety stock subtracted, floored at 0). */
  available(skuId: number): number | Promise<number>;
  /** The same sum for many skus in one query. */
  availableMany(skuIds: number[]): Promise<Map<number, number>>;
  /** Current (location, sku, on_hand) of every position at these locations, sorted. */
  positionsAt(locationIds: number[]): Promise<SnapshotWrite[]>;
  /** Sorted multi-row upsert of snapshot rows (1,000 rows per statement, 10,000 per transaction). */
  upsertPositions(rows: SnapshotWrite[], asOf: number, now: number): Promise<void>;
  /** Single-row UPDATEs, each its own transaction, for `seconds`; returns the count and latencies. */
  singleRowUpdates(seconds: number, concurrency: number, pick: () => [number, number]): Promise<{ count: number; seconds: number; p50: number; p99: number }>;
  close(): Promise<void>;
}

export type Exec = (sqlText: string, params?: unknown[]) => Promise<void>;

export interface Backend {
  name: BackendName;
  /** DATABASE_URL for the OMS runtime (sqlite:<file> or postgres://…?options=-c search_path=…). */
  databaseUrl: string;
  describe: string;
  poolSize: number;
  /** A new OMS store on this backend (used by the generator). */
  openStore(): Store;
  /**
   * Runs `fn` with a bulk-load connection on which foreign-key checks are off and the
   * secondary indexes of `tables` are dropped; the indexes are then rebuilt from their own
   * saved definitions and the statistics refreshed. For the generator only.
   */
  bulkLoad<T>(tables: string[], fn: (exec: Exec) => Promise<T>): Promise<T>;
  openRaw(): RawDriver;
  drop(): Promise<void>;
}

export async function createBackend(name: BackendName, opts: { pgUrl?: string; poolSize: number }): Promise<Backend> {
  return name === 'sqlite' ? sqliteBackend(opts.poolSize) : postgresBackend(opts.pgUrl ?? DEFAULT_PG_URL, opts.poolSize);
}

// ---- SQLite ---------------------------------------------------------------------------

function sqliteBackend(poolSize: number): Backend {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oms-bench-'));
  const file = path.join(dir, 'oms.sqlite');
  return {
    name: 'sqlite',
    databaseUrl: `sqlite:${file}`,
    describe: `sqlite:${file}`,
    poolSize,
    openStore: () => openSqlite(file).store,
    async bulkLoad(tables, fn) {
      const db = new SQLite(file);
      try {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        db.pragma('busy_timeout = 10000');
        db.pragma('cache_size = -524288');
        db.pragma('temp_store = MEMORY');
        db.pragma('foreign_keys = OFF');
        const saved: { name: string; sql: string }[] = [];
        for (const t of tables) {
          saved.push(...(db.prepare("select name, sql from sqlite_master where type = 'index' and tbl_name = ? and sql is not null").all(t) as { name: string; sql: string }[]));
        }
        for (const i of saved) db.exec(`drop index "${i.name}"`);
        const result = await fn(async (sqlText, params = []) => {
          if (params.length === 0) db.exec(sqlText);
          else db.prepare(sqlText).run(...params);
        });
        for (const i of saved) db.exec(i.sql);
        db.pragma('wal_checkpoint(TRUNCATE)');
        return result;
      } finally {
        db.close();
      }
    },
    openRaw: () => sqliteRaw(file),
    async drop() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const SQLITE_SUM = 'select coalesce(sum(max(on_hand - reserved - quarantine - coalesce(safety_stock, 0), 0)), 0) as a from stock_positions';
/**
 * One sku's positions: by an index that leads with sku_id when the schema has one;
 * otherwise one primary-key seek per location (same rows, every position's location exists),
 * rather than a scan of the whole table.
 */
const SQLITE_ATP_BY_INDEX = `${SQLITE_SUM} where sku_id = ?`;
const SQLITE_ATP_BY_PK = `${SQLITE_SUM} where location_id in (select id from locations) and sku_id = ?`;

function sqliteRaw(file: string): RawDriver {
  const db = new SQLite(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 10000');
  db.pragma('cache_size = -262144');
  db.pragma('temp_store = MEMORY');
  const indexes = db.prepare("select name from pragma_index_list('stock_positions')").pluck().all() as string[];
  const skuLeading = indexes.some((name) => (db.prepare('select name from pragma_index_info(?) where seqno = 0').pluck().get(name) as string | undefined) === 'sku_id');
  const atpSql = skuLeading ? SQLITE_ATP_BY_INDEX : SQLITE_ATP_BY_PK;
  const atp = db.prepare(atpSql).pluck();
  const upserts = new Map<number, SQLite.Statement>();
  const upsert = (n: number) => {
    let s = upserts.get(n);
    if (!s) {
      const values = Array.from({ length: n }, () => '(?,?,?,0,0,?,1,?)').join(',');
      s = db.prepare(
        `insert into stock_positions (location_id, sku_id, on_hand, reserved, quarantine, baseline_as_of, version, updated_at) values ${values}
         on conflict (location_id, sku_id) do update set on_hand = excluded.on_hand, quarantine = excluded.quarantine,
         baseline_as_of = excluded.baseline_as_of, version = stock_positions.version + 1, updated_at = excluded.updated_at`,
      );
      upserts.set(n, s);
    }
    return s;
  };
  const touch = db.prepare('update stock_positions set updated_at = ? where location_id = ? and sku_id = ?');
  return {
    atpSql,
    available: (skuId) => atp.get(skuId) as number,
    async availableMany(skuIds) {
      const rows = db
        .prepare(`select sku_id, coalesce(sum(max(on_hand - reserved - quarantine - coalesce(safety_stock, 0), 0)), 0) as a from stock_positions where sku_id in (${skuIds.map(() => '?').join(',')}) group by sku_id`)
        .all(...skuIds) as { sku_id: number; a: number }[];
      return new Map(rows.map((r) => [r.sku_id, r.a]));
    },
    async positionsAt(locationIds) {
      return db
        .prepare(`select location_id as locationId, sku_id as skuId, on_hand as onHand from stock_positions where location_id in (${locationIds.map(() => '?').join(',')}) order by location_id, sku_id`)
        .all(...locationIds) as SnapshotWrite[];
    },
    async upsertPositions(rows, asOf, now) {
      const chunk = db.transaction((part: SnapshotWrite[]) => {
        for (let i = 0; i < part.length; i += 1000) {
          const slice = part.slice(i, i + 1000);
          const p: number[] = [];
          for (const r of slice) p.push(r.locationId, r.skuId, r.onHand, asOf, now);
          upsert(slice.length).run(...p);
        }
      });
      for (let i = 0; i < rows.length; i += 10_000) {
        chunk.immediate(rows.slice(i, i + 10_000));
        // Yield between transactions, as an importer interleaving other work would.
        await new Promise<void>((r) => setImmediate(r));
      }
    },
    async singleRowUpdates(seconds, _concurrency, pick) {
      // better-sqlite3 is synchronous: one connection, one statement after the other.
      const lat: number[] = [];
      const end = performance.now() + seconds * 1000;
      const t0 = performance.now();
      let now = t0;
      while (now < end) {
        const [l, s] = pick();
        touch.run(Date.now(), l, s);
        const t = performance.now();
        lat.push(t - now);
        now = t;
      }
      const st = summarise(lat);
      return { count: lat.length, seconds: (now - t0) / 1000, p50: st.p50, p99: st.p99 };
    },
    async close() {
      db.close();
    },
  };
}

// ---- PostgreSQL -----------------------------------------------------------------------

async function postgresBackend(baseUrl: string, poolSize: number): Promise<Backend> {
  const schema = `bench_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const url = new URL(baseUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  const databaseUrl = url.toString();
  return {
    name: 'postgres',
    databaseUrl,
    describe: `postgres://${url.hostname}:${url.port || 5432}${url.pathname} schema ${schema}`,
    poolSize,
    openStore: () => openPostgres(databaseUrl, poolSize).store,
    async bulkLoad(tables, fn) {
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      try {
        await c.query("set synchronous_commit = off; set maintenance_work_mem = '512MB'");
        // Foreign-key triggers cost more than the inserts themselves; the generated rows are
        // valid by construction. Needs a superuser; without one the checks simply run.
        await c.query('set session_replication_role = replica').catch(() => {});
        const saved: { name: string; def: string }[] = [];
        for (const t of tables) {
          const r = await c.query<{ name: string; def: string }>(
            `select i.relname as name, pg_get_indexdef(i.oid) as def
               from pg_index x join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid
              where t.relname = $1 and t.relnamespace = current_schema()::regnamespace
                and not exists (select 1 from pg_constraint k where k.conindid = x.indexrelid)`,
            [t],
          );
          saved.push(...r.rows);
        }
        for (const i of saved) await c.query(`drop index "${i.name}"`);
        const result = await fn(async (sqlText, params = []) => {
          await c.query(sqlText, params);
        });
        for (const i of saved) await c.query(i.def);
        await c.query('set session_replication_role = origin').catch(() => {});
        await c.query(`analyze ${tables.join(', ')}`);
        return result;
      } finally {
        await c.end();
      }
    },
    openRaw: () => postgresRaw(databaseUrl, poolSize),
    async drop() {
      const c = new pg.Client({ connectionString: baseUrl });
      await c.connect();
      await c.query(`drop schema if exists ${schema} cascade`);
      await c.end();
    },
  };
}

const PG_SUM = 'select coalesce(sum(greatest(on_hand - reserved - quarantine - coalesce(safety_stock, 0), 0)), 0)::int as a from stock_positions';
const PG_ATP_BY_INDEX = `${PG_SUM} where sku_id = $1`;
const PG_ATP_BY_PK = `${PG_SUM} where location_id = any(array(select id from locations)) and sku_id = $1`;

function postgresRaw(url: string, poolSize: number): RawDriver {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  pool.on('error', () => {});
  // Same choice as on SQLite: an index leading with sku_id if there is one, else PK seeks.
  const atpSql = pool
    .query(
      `select exists (select 1 from pg_index x join pg_class t on t.oid = x.indrelid
         join pg_attribute a on a.attrelid = t.oid and a.attnum = x.indkey[0]
        where t.relname = 'stock_positions' and t.relnamespace = current_schema()::regnamespace and a.attname = 'sku_id') as ok`,
    )
    .then((r) => (r.rows[0]?.ok ? PG_ATP_BY_INDEX : PG_ATP_BY_PK))
    .catch(() => PG_ATP_BY_PK);
  let atpText = PG_ATP_BY_PK;
  return {
    get atpSql() {
      return atpText;
    },
    async available(skuId) {
      atpText = await atpSql;
      const r = await pool.query<{ a: number }>({ name: 'bench_atp', text: atpText, values: [skuId] });
      return r.rows[0].a;
    },
    async availableMany(skuIds) {
      const r = await pool.query<{ sku_id: number; a: number }>({
        name: 'bench_atp_many',
        text: 'select sku_id, coalesce(sum(greatest(on_hand - reserved - quarantine - coalesce(safety_stock, 0), 0)), 0)::int as a from stock_positions where sku_id = any($1::bigint[]) group by sku_id',
        values: [skuIds],
      });
      return new Map(r.rows.map((x) => [Number(x.sku_id), x.a]));
    },
    async positionsAt(locationIds) {
      const r = await pool.query<{ l: string; s: string; o: number }>(
        'select location_id as l, sku_id as s, on_hand as o from stock_positions where location_id = any($1::bigint[]) order by location_id, sku_id',
        [locationIds],
      );
      return r.rows.map((x) => ({ locationId: Number(x.l), skuId: Number(x.s), onHand: x.o }));
    },
    async upsertPositions(rows, asOf, now) {
      const client = await pool.connect();
      try {
        for (let i = 0; i < rows.length; i += 10_000) {
          const part = rows.slice(i, i + 10_000);
          await client.query('begin');
          for (let j = 0; j < part.length; j += 1000) {
            const slice = part.slice(j, j + 1000);
            const p: number[] = [];
            for (const r of slice) p.push(r.locationId, r.skuId, r.onHand, asOf, now);
            let n = 0;
            const values = slice.map(() => `($${++n},$${++n},$${++n},0,0,$${++n},1,$${++n})`).join(',');
            await client.query({
              name: `bench_upsert_${slice.length}`,
              text: `insert into stock_positions (location_id, sku_id, on_hand, reserved, quarantine, baseline_as_of, version, updated_at) values ${values}
                on conflict (location_id, sku_id) do update set on_hand = excluded.on_hand, quarantine = excluded.quarantine,
                baseline_as_of = excluded.baseline_as_of, version = stock_positions.version + 1, updated_at = excluded.updated_at`,
              values: p,
            });
          }
          await client.query('commit');
        }
      } catch (e) {
        await client.query('rollback').catch(() => {});
        throw e;
      } finally {
        client.release();
      }
    },
    async singleRowUpdates(seconds, concurrency, pick) {
      const lat: number[] = [];
      const t0 = performance.now();
      const end = t0 + seconds * 1000;
      const worker = async () => {
        while (performance.now() < end) {
          const [l, s] = pick();
          const t = performance.now();
          await pool.query({ name: 'bench_touch', text: 'update stock_positions set updated_at = $1 where location_id = $2 and sku_id = $3', values: [Date.now(), l, s] });
          lat.push(performance.now() - t);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      const st = summarise(lat);
      return { count: lat.length, seconds: (performance.now() - t0) / 1000, p50: st.p50, p99: st.p99 };
    },
    async close() {
      await pool.end();
    },
  };
}
