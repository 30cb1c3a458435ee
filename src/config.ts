// Configuration from environment variables (documented in the README).
import path from 'node:path';
import { DEFAULT_PG_CAPTURE_GROUPS } from './db/database.ts';
import { DEFAULT_ORDER_SETTINGS, type OrderSettings, parseDeadlines } from './orders/settings.ts';
import { loadPaymentSettings, type PaymentSettings } from './payments/settings.ts';

export interface Config {
  port: number;
  host: string;
  databaseUrl?: string;
  dataDir: string;
  logLevel: string;
  bodyLimit: number;
  csvLimit: number;
  debounceMs: number;
  followMs: number;
  reconcileMs: number;
  /** How often the order scheduler sweeps (expiry, acceptance deadlines, idempotency keys). */
  orderSweepMs: number;
  poolSize: number;
  /** PostgreSQL: the hot writes as prepared statements (off behind a pooler that cannot keep them). */
  pgPrepared: boolean;
  /** PostgreSQL: capture statements in flight at once, each carrying the captures that arrived meanwhile (0: each capture alone). */
  pgCaptureGroups: number;
  /** SQLite: WAL checkpoints on a thread of their own instead of inside a COMMIT. */
  sqliteCheckpointThread: boolean;
  /** SQLite: order captures written by a thread with its own connection (src/db/sqlite-writer.ts). */
  sqliteWriterThread?: boolean;
  /** JSON file of carrier services (see docs/carriers.md); null = the built-in demo services. */
  carriersFile: string | null;
  /** Order policies: payment window, idempotency, acceptance deadlines (see src/orders/settings.ts). */
  orders: OrderSettings;
  /** Payment policies and operators (see src/payments/settings.ts). */
  payments: PaymentSettings;
  /** The URL customers and operators reach this OMS at (3-D Secure returns, sandbox pages). */
  publicUrl: string | null;
}

function int(name: string, def: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer (got '${v}')`);
  return n;
}

export function loadConfig(env = process.env): Config {
  return {
    port: int('PORT', 3000),
    host: env.HOST || '127.0.0.1',
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: path.resolve(env.OMS_DATA_DIR || './data'),
    logLevel: env.LOG_LEVEL || 'info',
    bodyLimit: int('OMS_BODY_LIMIT', 2 * 1024 * 1024),
    csvLimit: int('OMS_CSV_LIMIT', 1024 * 1024 * 1024),
    debounceMs: int('OMS_AVAILABILITY_DEBOUNCE_MS', 1000),
    followMs: int('OMS_FOLLOW_MS', 250),
    reconcileMs: int('OMS_RECONCILE_MS', 10_000),
    orderSweepMs: int('OMS_ORDER_SWEEP_MS', 5_000),
    poolSize: int('OMS_PG_POOL', 10),
    pgPrepared: int('OMS_PG_PREPARED', 1) === 1,
    pgCaptureGroups: int('OMS_PG_CAPTURE_GROUPS', DEFAULT_PG_CAPTURE_GROUPS),
    sqliteCheckpointThread: int('OMS_SQLITE_CHECKPOINT_THREAD', 1) === 1,
    sqliteWriterThread: int('OMS_SQLITE_WRITER_THREAD', 1) === 1,
    carriersFile: env.OMS_CARRIERS_FILE ? path.resolve(env.OMS_CARRIERS_FILE) : null,
    orders: {
      paymentTtlMs: int('OMS_ORDER_TTL_MS', DEFAULT_ORDER_SETTINGS.paymentTtlMs),
      manualPaymentTtlMs: int('OMS_MANUAL_ORDER_TTL_MS', DEFAULT_ORDER_SETTINGS.manualPaymentTtlMs),
      idempotencyTtlMs: int('OMS_IDEMPOTENCY_TTL_MS', DEFAULT_ORDER_SETTINGS.idempotencyTtlMs),
      idempotencyLeaseMs: int('OMS_IDEMPOTENCY_LEASE_MS', DEFAULT_ORDER_SETTINGS.idempotencyLeaseMs),
      acceptDeadlineMs: parseDeadlines(env.OMS_ACCEPT_DEADLINES),
    },
    payments: loadPaymentSettings(env, int),
    publicUrl: env.OMS_PUBLIC_URL || null,
  };
}
