// API keys: high-entropy random secrets, stored only as SHA-256 hashes. A key carries a
// role and a scope (one channel, and/or a set of locations). Verified keys are cached
// briefly in memory so the availability hot path does not hit the database; a revoked
// key stops working within KEY_CACHE_MS.
import crypto, { randomBytes } from 'node:crypto';
import type { Ctx } from '../context.ts';
import type { DbOrTrx } from '../db/database.ts';
import { appendEvents } from '../events/outbox.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';

export const ROLES = ['admin', 'channel', 'store', 'integration'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  keyId: string;
  name: string;
  role: Role;
  /** Channel code the key acts for (channel keys; optional for store keys). */
  channel: string | null;
  channelId: number | null;
  /** Location ids the key may act on (store and integration keys). */
  locationIds: number[];
}

/** SHA-256 of a key's secret, hex. Every request hashes its key: the one-shot crypto.hash (Node ≥ 20.12) where there is one. */
export const hashKey: (secret: string) => string =
  typeof crypto.hash === 'function' ? (secret) => crypto.hash('sha256', secret, 'hex') : (secret) => crypto.createHash('sha256').update(secret).digest('hex');

export interface KeyInput {
  name: string;
  role: Role;
  channel?: string | null;
  locations?: string[];
}

export async function createApiKey(ctx: Ctx, input: KeyInput): Promise<{ secret: string; principal: Principal; prefix: string }> {
  const db = ctx.store.db;
  let channelId: number | null = null;
  if (input.channel) {
    const ch = await db.selectFrom('channels').select('id').where('code', '=', input.channel).executeTakeFirst();
    if (!ch) throw new AppError('unknown_channel', `Channel '${input.channel}' does not exist`);
    channelId = ch.id;
  }
  if (input.role === 'channel' && !channelId) throw new AppError('validation_failed', 'A channel key needs a channel');
  if ((input.role === 'store' || input.role === 'integration') && !(input.locations?.length)) {
    throw new AppError('validation_failed', `A ${input.role} key needs at least one location`);
  }
  const locationIds: number[] = [];
  for (const code of input.locations ?? []) {
    const loc = await db.selectFrom('locations').select('id').where('code', '=', code).executeTakeFirst();
    if (!loc) throw new AppError('unknown_location', `Location '${code}' does not exist`);
    locationIds.push(loc.id);
  }
  const secret = `oms_${input.role.slice(0, 3)}_${randomBytes(24).toString('base64url')}`;
  const id = newId('key');
  const prefix = secret.slice(0, 12);
  const now = ctx.clock.now();
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('api_keys')
      .values({ id, name: input.name, prefix, key_hash: hashKey(secret), role: input.role, channel_id: channelId, location_ids: JSON.stringify(locationIds), created_at: now, revoked_at: null })
      .execute();
    // The audit trail names the key, never its secret or hash.
    await appendEvents(trx, ctx.store.dialect, now, [
      { type: 'api_key.created', aggregateType: 'api_key', aggregateId: id, aggregateSeq: 1, payload: { id, name: input.name, prefix, role: input.role, channel: input.channel ?? null, locations: input.locations ?? [] } },
    ]);
  });
  return { secret, prefix, principal: { keyId: id, name: input.name, role: input.role, channel: input.channel ?? null, channelId, locationIds } };
}

export const KEY_CACHE_MS = 5_000;

export class KeyVerifier {
  private cache = new Map<string, { principal: Principal | null; until: number }>();
  private inFlight = new Map<string, Promise<Principal | null>>();
  constructor(private ctx: Ctx) {}

  async verify(secret: string): Promise<Principal | null> {
    const hash = hashKey(secret);
    const now = Date.now();
    const hit = this.cache.get(hash);
    if (hit && hit.until > now) return hit.principal;
    // One look-up per key at a time: when a cached key expires, the requests that carry it
    // wait on the same query instead of each queueing its own behind the writers.
    let pending = this.inFlight.get(hash);
    if (!pending) {
      pending = lookup(this.ctx.store.db, hash).finally(() => this.inFlight.delete(hash));
      this.inFlight.set(hash, pending);
    }
    const principal = await pending;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { principal, until: now + KEY_CACHE_MS });
    return principal;
  }

  forget(): void {
    this.cache.clear();
  }
}

async function lookup(db: DbOrTrx, hash: string): Promise<Principal | null> {
  const row = await db
    .selectFrom('api_keys as k')
    .leftJoin('channels as c', 'c.id', 'k.channel_id')
    .select(['k.id', 'k.name', 'k.role', 'k.channel_id', 'k.location_ids', 'k.revoked_at', 'c.code as channel'])
    .where('k.key_hash', '=', hash)
    .executeTakeFirst();
  if (!row || row.revoked_at !== null) return null;
  return { keyId: row.id, name: row.name, role: row.role as Role, channel: row.channel ?? null, channelId: row.channel_id, locationIds: JSON.parse(row.location_ids) as number[] };
}

export async function listApiKeys(db: DbOrTrx) {
  return db.selectFrom('api_keys').select(['id', 'name', 'prefix', 'role', 'channel_id', 'location_ids', 'created_at', 'revoked_at']).orderBy('id').execute();
}

export async function revokeApiKey(ctx: Ctx, id: string): Promise<void> {
  const now = ctx.clock.now();
  await ctx.store.db.transaction().execute(async (trx) => {
    const r = await trx.updateTable('api_keys').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) {
      const exists = await trx.selectFrom('api_keys').select('id').where('id', '=', id).executeTakeFirst();
      if (!exists) throw new AppError('not_found', `API key '${id}' not found`);
      return;
    }
    await appendEvents(trx, ctx.store.dialect, now, [{ type: 'api_key.revoked', aggregateType: 'api_key', aggregateId: id, aggregateSeq: 2, payload: { id } }]);
  });
}

// ---- scope checks (pure) -------------------------------------------------------------

export function canActOnLocation(p: Principal, locationId: number): boolean {
  if (p.role === 'admin') return true;
  if (p.role === 'store' || p.role === 'integration') return p.locationIds.includes(locationId);
  return false;
}

export function canReadChannel(p: Principal, channel: string): boolean {
  return p.role === 'admin' || p.channel === channel;
}
