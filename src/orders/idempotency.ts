// Idempotency-Key, as payment APIs define it (Stripe; IETF draft-ietf-httpapi-idempotency-key):
// - the same key and body replay the first response, byte for byte;
// - the same key with another body is refused (422 idempotency_key_reused);
// - the same key while the first request still runs is refused (409 idempotency_in_flight);
// - keys belong to the API key that sent them, and are forgotten after a TTL (24 h).
// Only successful responses are remembered: a refused request (out of stock, bad input) frees
// its key, so the client may retry it. A request whose process died leaves its key held
// until the lease ends; a retry then takes it over. Captures are also unique per (channel,
// external reference), so a takeover can never store a second order.
import { createHash } from 'node:crypto';
import type { Ctx } from '../context.ts';
import { isUniqueViolation } from '../inventory/stock.ts';
import { AppError } from '../shared/errors.ts';

export type Begin = { kind: 'proceed'; lease: number } | { kind: 'replay'; status: number; body: string };

/**
 * The request's fingerprint: method, path and the body as canonical JSON (object keys sorted),
 * so the same request sent with its fields in another order is the same request. Defaults the
 * schema fills in (tax_included: true) are part of the body seen here, so leaving a default out
 * or sending it is the same request too.
 */
export const requestHash = (method: string, path: string, body: unknown): string => createHash('sha256').update(`${method} ${path}\n${canonical(body ?? null)}`).digest('hex');

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

const MAX_KEY = 255;

export function checkKey(key: string): void {
  if (key.length === 0 || key.length > MAX_KEY || !/^[\x21-\x7e]+$/.test(key)) {
    throw new AppError('validation_failed', `Idempotency-Key must be 1 to ${MAX_KEY} printable ASCII characters`);
  }
}

/** Claims the key for this request, or says what to answer instead. */
export async function beginIdempotent(ctx: Ctx, scope: string, key: string, hash: string): Promise<Begin> {
  checkKey(key);
  const db = ctx.store.db;
  for (let tries = 0; tries < 3; tries++) {
    const now = ctx.clock.now();
    const lease = now + ctx.orders.idempotencyLeaseMs;
    try {
      await db
        .insertInto('idempotency_keys')
        .values({ scope, key, request_hash: hash, state: 'in_flight', status_code: null, response: null, locked_until: lease, created_at: now, expires_at: now + ctx.orders.idempotencyTtlMs })
        .execute();
      return { kind: 'proceed', lease };
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
    }
    const row = await db.selectFrom('idempotency_keys').selectAll().where('scope', '=', scope).where('key', '=', key).executeTakeFirst();
    if (!row) continue; // freed meanwhile: claim it
    if (row.expires_at <= now) {
      await db.deleteFrom('idempotency_keys').where('scope', '=', scope).where('key', '=', key).where('expires_at', '<=', now).execute();
      continue;
    }
    if (row.request_hash !== hash) throw new AppError('idempotency_key_reused', 'This Idempotency-Key was already used with a different request; use a new key for a new request');
    if (row.state === 'done') return { kind: 'replay', status: row.status_code as number, body: row.response as string };
    if (row.locked_until > now) throw new AppError('idempotency_in_flight', 'A request with this Idempotency-Key is still being processed; retry in a moment');
    // Its owner died: take the lease over, unless another retry just did.
    const took = await db
      .updateTable('idempotency_keys')
      .set({ locked_until: lease })
      .where('scope', '=', scope)
      .where('key', '=', key)
      .where('state', '=', 'in_flight')
      .where('locked_until', '=', row.locked_until)
      .executeTakeFirst();
    if (Number(took.numUpdatedRows) === 1) return { kind: 'proceed', lease };
    throw new AppError('idempotency_in_flight', 'A request with this Idempotency-Key is still being processed; retry in a moment');
  }
  throw new AppError('idempotency_in_flight', 'A request with this Idempotency-Key is still being processed; retry in a moment');
}

/** Remembers the response sent for the key. */
export async function completeIdempotent(ctx: Ctx, scope: string, key: string, status: number, body: string): Promise<void> {
  await ctx.store.db.updateTable('idempotency_keys').set({ state: 'done', status_code: status, response: body }).where('scope', '=', scope).where('key', '=', key).where('state', '=', 'in_flight').execute();
}

/** Frees the key after a refused request, so the client can retry it. */
export async function abandonIdempotent(ctx: Ctx, scope: string, key: string, lease: number): Promise<void> {
  await ctx.store.db.deleteFrom('idempotency_keys').where('scope', '=', scope).where('key', '=', key).where('state', '=', 'in_flight').where('locked_until', '=', lease).execute();
}

/**
 * Forgets expired keys (the scheduler calls it): one DELETE per batch of `limit` keys, oldest
 * first, up to `batches` batches a sweep, so a busy store (hundreds of orders a second, each
 * with a key) is purged as fast as it fills without one long statement holding the lock.
 */
export async function purgeIdempotencyKeys(ctx: Ctx, limit = 2000, batches = 10): Promise<number> {
  const now = ctx.clock.now();
  const db = ctx.store.db;
  let purged = 0;
  for (let b = 0; b < batches; b++) {
    // The oldest `limit` expired keys: bounded, and served by the expires_at index.
    const cutoff = await db.selectFrom('idempotency_keys').select('expires_at').where('expires_at', '<=', now).orderBy('expires_at').offset(limit - 1).limit(1).executeTakeFirst();
    const upTo = cutoff?.expires_at ?? now;
    const r = await db.deleteFrom('idempotency_keys').where('expires_at', '<=', Math.min(upTo, now)).executeTakeFirst();
    const n = Number(r.numDeletedRows);
    purged += n;
    if (!cutoff) break;
  }
  return purged;
}
