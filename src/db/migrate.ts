// Runs the ordered migrations on either backend. Kysely's Migrator needs no dialect
// knowledge; our migrations receive the dialect so they can pick an auto-increment type.
import { type Migration, type MigrationProvider, Migrator, type Kysely, sql } from 'kysely';
import type { Store } from './database.ts';
import * as m0001 from './migrations/0001_inventory.ts';
import * as m0003 from './migrations/0003_sourcing.ts';
import * as m0004 from './migrations/0004_positions_fillfactor.ts';
import * as m0005 from './migrations/0005_orders.ts';
import * as m0006 from './migrations/0006_supply_allocations.ts';
import * as m0007 from './migrations/0007_payments.ts';
import * as m0008 from './migrations/0008_partial_order_indexes.ts';
import * as m0009 from './migrations/0009_capture_guard.ts';
import * as m0010 from './migrations/0010_capture_indexes.ts';
import * as m0011 from './migrations/0011_dirty_marks_unindexed.ts';

type DialectMigration = { up(db: Kysely<unknown>, dialect: Store['dialect']): Promise<void> };
const ordered: Array<[string, DialectMigration]> = [
  ['0001_inventory', m0001],
  ['0003_sourcing', m0003],
  ['0004_positions_fillfactor', m0004],
  ['0005_orders', m0005],
  ['0006_supply_allocations', m0006],
  ['0007_payments', m0007],
  ['0008_partial_order_indexes', m0008],
  ['0009_capture_guard', m0009],
  ['0010_capture_indexes', m0010],
  ['0011_dirty_marks_unindexed', m0011],
];

export async function migrate(store: Store): Promise<{ applied: string[] }> {
  const provider: MigrationProvider = {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const [name, mod] of ordered) out[name] = { up: (db) => mod.up(db, store.dialect) };
      return out;
    },
  };
  // On PostgreSQL, pin the migration tables to the current schema: otherwise Kysely finds
  // them in any schema of the database (another tenant's, another test's) and skips creating them.
  const schema = store.dialect === 'postgres' ? (await sql<{ s: string }>`select current_schema() as s`.execute(store.db)).rows[0]?.s : undefined;
  const migrator = new Migrator({
    db: store.db,
    provider,
    migrationTableName: 'oms_migrations',
    migrationLockTableName: 'oms_migrations_lock',
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
  if (schema && (await upToDate(store, schema))) return { applied: [] };
  // Kysely's Migrator lists the tables of every schema of the database; one dropped by another
  // session during that scan (3F000, 42P01) fails the scan, not our migration: scan again.
  for (let attempt = 1; ; attempt++) {
    const { error, results } = await migrator.migrateToLatest();
    const code = (error as { code?: unknown } | undefined)?.code;
    if (error && attempt < 5 && (code === '3F000' || code === '42P01')) continue;
    if (error) throw error instanceof Error ? error : new Error(String(error));
    return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
  }
}

/** Whether this schema already has every migration (then the Migrator need not scan at all). */
async function upToDate(store: Store, schema: string): Promise<boolean> {
  const exists = await sql<{ t: string | null }>`select to_regclass(${`${schema}.oms_migrations`}) as t`.execute(store.db);
  if (!exists.rows[0]?.t) return false;
  const done = await sql<{ name: string }>`select name from ${sql.table(`${schema}.oms_migrations`)}`.execute(store.db);
  const names = new Set(done.rows.map((r) => r.name));
  return ordered.every(([name]) => names.has(name));
}
