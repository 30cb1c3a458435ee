// What a validated order is followed by: its public number, from a per-channel series that is
// readable (WEB-000042) and never reused, and the customer's tracking token (192 random bits,
// stored as its SHA-256 only, expiring).
import { createHash, randomBytes } from 'node:crypto';
import type { Trx } from '../db/database.ts';

/**
 * The channel's next number, in the caller's transaction: one upsert that bumps the series
 * (the row lock serialises concurrent validations of one channel). A rolled-back validation
 * gives its number back to nobody: the order never had it, and numbers only grow.
 */
export async function nextOrderNumber(trx: Trx, channelId: number, channelCode: string): Promise<string> {
  const prefix = channelCode.toUpperCase().replace(/[^A-Z0-9]+/g, '').slice(0, 12) || 'ORD';
  const row = await trx
    .insertInto('order_number_series')
    .values({ channel_id: channelId, prefix, last_value: 1 })
    .onConflict((oc) => oc.column('channel_id').doUpdateSet((eb) => ({ last_value: eb('order_number_series.last_value', '+', 1) })))
    .returning(['prefix', 'last_value'])
    .executeTakeFirstOrThrow();
  return `${row.prefix}-${String(row.last_value).padStart(6, '0')}`;
}

export const hashTrackingToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** A new tracking token (shown once) and what is stored of it. */
export function newTrackingToken(): { token: string; hash: string } {
  const token = `trk_${randomBytes(24).toString('base64url')}`;
  return { token, hash: hashTrackingToken(token) };
}
