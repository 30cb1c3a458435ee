// Owns the connection to the store: embedded SQLite (default) or PostgreSQL,
// behind one Kysely instance so every repository has a single code path.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  Kysely,
  PostgresDialect,
  SqliteDialect,
  SqliteDriver,
  type Driver,
  type Transaction,
} from 'kysely';
import pg from 'pg';
import { type CheckpointerOptions, FOREGROUND_CHECKPOINT_PAGES, startCheckpointer } from './checkpointer.ts';
import { GroupCommitter } from './group-commit.ts';
import { PgCaptureGroup } from './pg-capture-group.ts';
import type { Database } from './schema.ts';
import { SqliteWriter } from './sqlite-writer.ts';

export type Dialect = 'sqlite' | 'postgres';
export type Db = Kysely<Database>;
export type Trx = Transaction<Database>;
export type DbOrTrx = Db | Trx;

export interface Store {
  db: Db;
  dialect: Dialect;
  /** Human description without credentials, safe to log. */
  describe: string;
  /**
   * A write transaction for a hot path (order capture): on SQLite it may share its COMMIT with
   * others running at the same time (group commit, each in its own savepoint); on PostgreSQL
   * it is a transaction of its own. Inside, use only `trx`.
   */
  transact<T>(fn: (trx: Trx) => Promise<T>): Promise<T>;
  /**
   * SQLite file stores: moves WAL checkpoints to a thread of their own (src/db/checkpointer.ts)
   * and returns what stops it. A running server calls it; tools and tests do not need it.
   */
  backgroundCheckpoints?(opts?: CheckpointerOptions): () => Promise<void>;
  /**
   * SQLite file stores: the thread that writes order captures off the event loop
   * (src/db/sqlite-writer.ts). Use it only while `alive`.
   */
  writer?: SqliteWriter;
  /**
   * PostgreSQL: concurrent order captures written as one statement (src/db/pg-capture-group.ts);
   * absent when OMS_PG_CAPTURE_GROUPS is 0 (each capture its own statement).
   */
  captureGroup?: PgCaptureGroup;
  close(): Promise<void>;
}

// int8 (COUNT, SUM, bigint ids) comes back as a JS number: every counter we keep fits in 2^53.
pg.types.setTypeParser(20, (v) => Number.parseInt(v, 10));
pg.types.setTypeParser(1700, (v) => Number.parseFloat(v));

/**
 * SQLite write transactions start with BEGIN IMMEDIATE so that two processes on the same
 * file (server + CLI import) serialise on the write lock up front instead of failing when
 * a read transaction tries to upgrade.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: ConstructorParameters<typeof SqliteDialect>[0];
  constructor(config: ConstructorParameters<typeof SqliteDialect>[0]) {
    super(config);
    this.#config = config;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

/**
 * A query whose text starts with this comment returns rows as arrays on SQLite (better-sqlite3
 * raw mode); PostgreSQL ignores the comment and returns objects. Callers handle both.
 */
export const ARRAY_ROWS = '/*array-rows*/';

/**
 * better-sqlite3 re-prepares on every Kysely call; keep a bounded cache. Bulk statements are
 * long but repeat exactly (same shape per batch size), so they are cached too.
 */
function withStatementCache(raw: SQLite.Database): SQLite.Database {
  const cache = new Map<string, SQLite.Statement>();
  const prepare = raw.prepare.bind(raw);
  return new Proxy(raw, {
    get(target, prop, receiver) {
      if (prop === 'prepare') {
        return (source: string) => {
          if (source.length > 200_000) return prepare(source);
          let stmt = cache.get(source);
          if (!stmt) {
            if (cache.size >= 500) cache.clear();
            stmt = prepare(source);
            // Hot bulk reads ask for rows as arrays (no per-row object): see ARRAY_ROWS.
            if (source.startsWith(ARRAY_ROWS) && stmt.reader) stmt.raw(true);
            cache.set(source, stmt);
          }
          return stmt;
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** What every connection of the OMS to a SQLite file runs first (the writer thread's too). */
export const CONNECTION_PRAGMAS = ['journal_mode = WAL', 'synchronous = NORMAL', 'foreign_keys = ON', 'busy_timeout = 10000', 'temp_store = MEMORY'];

export function openSqlite(file: string, opts: { writerThread?: boolean } = {}): { raw: SQLite.Database; store: Store } {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const raw = new SQLite(file);
  for (const p of CONNECTION_PRAGMAS) raw.pragma(p);
  raw.pragma('cache_size = -262144');
  // Checkpoint every ~40 MB of WAL instead of 4 MB: a million-row feed pays a tenth of the
  // checkpoint syncs; the WAL is truncated back to 64 MB after each.
  raw.pragma(`wal_autocheckpoint = ${FOREGROUND_CHECKPOINT_PAGES}`);
  raw.pragma('journal_size_limit = 67108864');
  const cached = withStatementCache(raw);
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: cached }) });
  const group = new GroupCommitter(db, cached);
  // A second connection cannot see an in-memory database: the writer thread needs a file.
  const writer = file !== ':memory:' && opts.writerThread !== false ? new SqliteWriter(file) : undefined;
  return {
    raw,
    store: {
      db,
      transact: (fn) => group.run(fn),
      dialect: 'sqlite',
      describe: `sqlite:${file}`,
      backgroundCheckpoints: file === ':memory:' ? undefined : (opts) => startCheckpointer(raw, file, opts),
      writer,
      close: async () => {
        await writer?.close();
        await db.destroy();
      },
    },
  };
}

/**
 * A statement whose text starts with this comment is a prepared statement on PostgreSQL: each
 * connection parses (and, once PostgreSQL settles on a generic plan, plans) it once, and later
 * executions send only its name and parameters. For the hot writes whose text is long and
 * repeats exactly (order capture's reservation UPDATE and its one-statement batch of inserts).
 * SQLite ignores the comment (its statements are prepared and cached anyway).
 */
export const PREPARED = '/*prepared*/';

/** The SQLSTATE of oms_lost_race() (migration 0009): a guarded capture lost the stock to another order. */
export const LOST_RACE_SQLSTATE = 'OMS01';
const MAX_PREPARED = 200;

/** Turns a marked text query into a named one on this client (pg parses a name once per connection). */
function preparePgStatements(client: pg.PoolClient, names: Map<string, string>): void {
  // The prototype's query, looked up at each call (whatever wraps it later still sees every call).
  const proto = Object.getPrototypeOf(client) as { query: (...args: unknown[]) => unknown };
  const query = (...args: unknown[]) => proto.query.apply(client, args);
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (text: unknown, ...rest: unknown[]) => {
    if (typeof text === 'string' && text.startsWith(PREPARED) && Array.isArray(rest[0])) {
      let name = names.get(text);
      if (name === undefined && names.size < MAX_PREPARED) {
        name = `oms_${names.size + 1}`;
        names.set(text, name);
      }
      if (name !== undefined) return query({ name, text, values: rest[0] }, ...rest.slice(1));
    }
    return query(text, ...rest);
  };
}

/** Capture statements in flight at once per process (OMS_PG_CAPTURE_GROUPS); 0: each capture alone. */
export const DEFAULT_PG_CAPTURE_GROUPS = 2;

export function openPostgres(url: string, poolSize = 10, prepared = true, captureGroups = DEFAULT_PG_CAPTURE_GROUPS): { pool: pg.Pool; store: Store } {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  // An idle client that errors (server restart) must not crash the process.
  pool.on('error', () => {});
  // One name per text for the whole pool; each connection prepares it on first use.
  const names = new Map<string, string>();
  if (prepared) pool.on('connect', (client) => preparePgStatements(client, names));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const u = new URL(url);
  return {
    pool,
    store: {
      db,
      transact: (fn) => db.transaction().execute(fn),
      dialect: 'postgres',
      describe: `postgres://${u.hostname}:${u.port || 5432}${u.pathname}`,
      // Fewer statements in flight than connections: the rest serve reads and other writes.
      // A queue kept waiting 25 ms (statements stuck on row locks) may use up to half the pool.
      ...(captureGroups > 0 ? { captureGroup: new PgCaptureGroup(db, { inFlight: Math.min(captureGroups, poolSize), maxInFlight: Math.floor(poolSize / 2) }) } : {}),
      close: () => db.destroy(),
    },
  };
}

export function openStore(opts: { databaseUrl?: string; dataDir: string; poolSize?: number; pgPrepared?: boolean; pgCaptureGroups?: number; sqliteWriterThread?: boolean }): Store {
  const url = opts.databaseUrl;
  const sqlite = { writerThread: opts.sqliteWriterThread };
  if (url && /^postgres(ql)?:\/\//.test(url)) return openPostgres(url, opts.poolSize, opts.pgPrepared ?? true, opts.pgCaptureGroups).store;
  if (url?.startsWith('sqlite:')) return openSqlite(url.slice('sqlite:'.length), sqlite).store;
  if (url) throw new Error(`DATABASE_URL must start with postgres:// or sqlite: (got scheme ${url.split(':')[0]})`);
  return openSqlite(path.join(opts.dataDir, 'oms.sqlite'), sqlite).store;
}
