// Shared helpers for the HTTP API suites: the error-body contract, a fingerprint of all
// stored state (to prove a refused request changed nothing), and small request shortcuts.
import { expect } from 'vitest';
import type { DbOrTrx } from '../../src/db/database.ts';
import { checkIntegrity } from '../../src/inventory/integrity.ts';
import { checkOrderIntegrity } from '../../src/orders/integrity.ts';
import { checkPaymentIntegrity } from '../../src/payments/integrity.ts';
import type { ApiEnv } from '../support/backends.ts';

/** A JSON body under test: its shape is what the assertions check, at run time. */
// biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted, not trusted
export type Json = any;

export interface InjectResult {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
  json(): Json;
}

/** Stack frames ("    at fn (file:1:2)"), node internals or source paths never reach a client. */
export const STACK_RE = /(\bat\s+\S+\s+\(|\bat\s+\S+:\d+:\d+|\bat\s+async\b|node:internal|\/src\/|\.ts:\d+)/;

/**
 * Asserts the one error model: exactly `{ error: { code, message, details? } }`, the
 * expected status and code, a non-empty message, and no stack trace anywhere in the body.
 */
export function expectError(res: InjectResult, status: number, code: string, opts: { details?: boolean } = {}): Json {
  const ctx = `${res.statusCode} ${res.body.slice(0, 400)}`;
  expect(res.statusCode, ctx).toBe(status);
  expect(String(res.headers['content-type'] ?? ''), ctx).toMatch(/^application\/json/);
  const body = res.json();
  expect(Object.keys(body), ctx).toEqual(['error']);
  const allowed = opts.details === false ? ['code', 'message'] : ['code', 'message', 'details'];
  for (const k of Object.keys(body.error)) expect(allowed, `unexpected key '${k}' in ${ctx}`).toContain(k);
  expect(body.error.code, ctx).toBe(code);
  expect(typeof body.error.message, ctx).toBe('string');
  expect(body.error.message.length, ctx).toBeGreaterThan(0);
  expect(res.body, ctx).not.toMatch(STACK_RE);
  return body;
}

const TABLES = [
  'locations',
  'skus',
  'channels',
  'stock_positions',
  'stock_movements',
  'reservations',
  'incoming_supply',
  'api_keys',
  'outbox',
  'feed_imports',
  'orders',
  'order_lines',
  'delivery_groups',
  'fulfillment_orders',
  'fulfillment_lines',
  'order_sourcing',
  'idempotency_keys',
  'location_capacity_usage',
] as const;

/**
 * Every row of every domain table (ordered, JSON-normalised), plus the availability the
 * in-memory projection serves for each sku and channel: two equal fingerprints mean nothing
 * was written, neither in the database nor in memory.
 */
export async function fingerprint(env: ApiEnv): Promise<Record<string, unknown>> {
  const db = env.ctx.store.db;
  const out: Record<string, unknown> = {};
  for (const t of TABLES) {
    const rows = await (db as Json).selectFrom(t).selectAll().execute();
    const norm = rows.map((r: Record<string, unknown>) => JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
    norm.sort();
    out[t] = norm;
  }
  const channels = env.ctx.projection.allChannels().map((c) => c.code).sort();
  const skus = ((await db.selectFrom('skus').select('code').orderBy('code').execute()) as { code: string }[]).map((s) => s.code);
  const avail: Record<string, unknown> = {};
  for (const ch of channels) {
    for (const sku of skus) {
      const r = await env.app.inject({ method: 'GET', url: `/availability/${sku}?channel=${ch}&view=locations`, headers: env.auth() });
      avail[`${ch}/${sku}`] = r.statusCode === 200 ? r.json() : r.statusCode;
    }
  }
  out.availability = avail;
  return out;
}

/** Stock positions of one location as the API shows them to an admin: sku → counters. */
export async function positions(env: ApiEnv, location: string): Promise<Record<string, { on_hand: number; reserved: number; quarantine: number }>> {
  const r = await env.app.inject({ method: 'GET', url: `/locations/${location}/stock?limit=1000`, headers: env.auth() });
  expect(r.statusCode, r.body).toBe(200);
  const out: Record<string, { on_hand: number; reserved: number; quarantine: number }> = {};
  for (const p of r.json().items) out[p.sku] = { on_hand: p.on_hand, reserved: p.reserved, quarantine: p.quarantine };
  return out;
}

/** Puts a location's stock to exact values through the API (partial snapshot as admin). */
export async function seedStock(env: ApiEnv, location: string, asOf: string, items: Array<{ sku: string; on_hand: number }>): Promise<void> {
  const r = await env.app.inject({ method: 'POST', url: '/stock/snapshots', headers: env.auth(), payload: { location, as_of: asOf, mode: 'partial', items } });
  expect(r.statusCode, r.body).toBe(200);
}

export const TWO_CHANNELS = [
  { code: 'web', name: 'Web', type: 'web' as const },
  { code: 'pos', name: 'Point of sale', type: 'store' as const, locationTypes: ['store' as const] },
];

/** `oms check` in a test: stock counters = ledgers, orders = fulfilment orders, tenders = operations. */
export async function expectBooksBalance(db: DbOrTrx): Promise<void> {
  expect((await checkIntegrity(db)).issues).toEqual([]);
  expect((await checkOrderIntegrity(db)).issues).toEqual([]);
  expect((await checkPaymentIntegrity(db)).issues).toEqual([]);
}

/** The afterEach of a suite that changes money or stock: the books balance, then the env closes. */
export async function closeBalanced(env: ApiEnv | undefined): Promise<void> {
  if (!env) return;
  try {
    await expectBooksBalance(env.ctx.store.db);
  } finally {
    await env.close();
  }
}
