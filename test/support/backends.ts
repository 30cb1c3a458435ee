// The backend loop: every storage and API suite runs on SQLite, and on PostgreSQL too when
// OMS_TEST_DATABASE_URL is set. Each PostgreSQL test context gets its own schema.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { KeyVerifier, createApiKey } from '../../src/auth/keys.ts';
import type { Ctx } from '../../src/context.ts';
import { openPostgres, openSqlite, type Store } from '../../src/db/database.ts';
import { buildApp, type App } from '../../src/http/app.ts';
import { openContext } from '../../src/runtime.ts';
import { ManualClock } from '../../src/shared/clock.ts';

export const PG_URL = process.env.OMS_TEST_DATABASE_URL;
export const BACKENDS: Array<'sqlite' | 'postgres'> = PG_URL ? ['sqlite', 'postgres'] : ['sqlite'];

/** A fresh PostgreSQL schema: the URL that points at it, and how to drop it. */
export async function createPgSchema(prefix: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const schema = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const run = async (text: string) => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(text);
    await c.end();
  };
  await run(`create schema ${schema}`);
  const url = new URL(PG_URL as string);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return { url: url.toString(), drop: () => run(`drop schema if exists ${schema} cascade`) };
}

export interface TestEnv {
  backend: 'sqlite' | 'postgres';
  ctx: Ctx;
  clock: ManualClock;
  /** Another OMS process on the same database: its own projection (and pool, on PostgreSQL). */
  openPeer(): Promise<Ctx>;
  close(): Promise<void>;
}

export async function createTestEnv(backend: 'sqlite' | 'postgres', opts: { poolSize?: number; sqliteWriterThread?: boolean } = {}): Promise<TestEnv> {
  const clock = new ManualClock(Date.parse('2026-06-01T10:00:00Z'));
  const stores: Store[] = [];
  let open: () => Store;
  let drop = async () => {};
  if (backend === 'sqlite') {
    const file = `/tmp/oms-test-${process.pid}-${randomBytes(4).toString('hex')}.sqlite`;
    open = () => openSqlite(file, { writerThread: opts.sqliteWriterThread }).store;
    drop = async () => {
      const fs = await import('node:fs');
      for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
    };
  } else {
    const pgSchema = await createPgSchema('t');
    open = () => openPostgres(pgSchema.url, opts.poolSize ?? 8).store;
    drop = pgSchema.drop;
  }
  const first = open();
  stores.push(first);
  const ctx = await openContext({ dataDir: '/tmp', poolSize: 1 }, clock, first);
  return {
    backend,
    ctx,
    clock,
    async openPeer() {
      // better-sqlite3 is synchronous: two connections to one file inside one process would
      // block each other's event loop on the write lock. A SQLite peer therefore shares the
      // connection (one OMS process per file); PostgreSQL peers get their own pool.
      const s = backend === 'sqlite' ? { ...first, close: async () => {} } : open();
      stores.push(s);
      return openContext({ dataDir: '/tmp', poolSize: 1 }, clock, s);
    },
    async close() {
      for (const s of stores) await s.close();
      await drop();
    },
  };
}

export interface ApiEnv extends TestEnv {
  app: App;
  adminKey: string;
  keys: KeyVerifier;
  auth(key?: string): { authorization: string };
}

export async function createApiEnv(backend: 'sqlite' | 'postgres', opts: { poolSize?: number; sqliteWriterThread?: boolean } = {}): Promise<ApiEnv> {
  const env = await createTestEnv(backend, opts);
  const keys = new KeyVerifier(env.ctx);
  const app = await buildApp({ ctx: env.ctx, keys, bodyLimit: 2 * 1024 * 1024 });
  await app.ready();
  const admin = await createApiKey(env.ctx, { name: 'test admin', role: 'admin' });
  return {
    ...env,
    app,
    keys,
    adminKey: admin.secret,
    auth: (key = admin.secret) => ({ authorization: `Bearer ${key}` }),
    async close() {
      await app.close();
      await env.close();
    },
  };
}
