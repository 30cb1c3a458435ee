// Keeps the stored order status equal to deriveOrderStatus of its lines and fulfilment
// orders (it is stored only so lists can filter on it). Every use case that changes an order
// calls touchOrder in its transaction: it bumps the order's version (the sequence of its
// events) and re-derives the status.
import type { Trx } from '../db/database.ts';
import { deriveOrderStatus, type FulfillmentStatus, type OrderStatus } from './model.ts';

export interface Touched {
  /** The order's new version: the aggregate sequence of the event the caller appends. */
  seq: number;
  status: OrderStatus;
  previous: OrderStatus;
}

const touched = new WeakMap<Trx, Set<string>>();

/** The orders a transaction changed (touchOrder): their money is squared before it commits. */
export const touchedOrders = (trx: Trx): string[] => [...(touched.get(trx) ?? [])];

export async function touchOrder(trx: Trx, orderId: string, now: number, set: { validatedAt?: number; validatedBy?: string; expiresAt?: number | null; closeReason?: 'expired' | 'cancelled' } = {}): Promise<Touched> {
  let set_ = touched.get(trx);
  if (!set_) touched.set(trx, (set_ = new Set()));
  set_.add(orderId);
  // The version bump first: it row-locks the order (PostgreSQL) so concurrent changes of one
  // order serialise here, and the status below is derived from what this transaction sees.
  const row = await trx
    .updateTable('orders')
    .set((eb) => ({
      version: eb('version', '+', 1),
      updated_at: now,
      ...(set.validatedAt !== undefined ? { validated_at: set.validatedAt, validated_by: set.validatedBy ?? null } : {}),
      ...(set.expiresAt !== undefined ? { expires_at: set.expiresAt } : {}),
      ...(set.closeReason ? { close_reason: set.closeReason, closed_at: now, expires_at: null } : {}),
    }))
    .where('id', '=', orderId)
    .returning(['version', 'status', 'validated_at', 'close_reason'])
    .executeTakeFirstOrThrow();
  const [lines, fos] = await Promise.all([
    trx.selectFrom('order_lines').select(['quantity', 'cancelled', 'shipped']).where('order_id', '=', orderId).execute(),
    trx.selectFrom('fulfillment_orders').select(['status']).where('order_id', '=', orderId).execute(),
  ]);
  const status = deriveOrderStatus({
    validated: row.validated_at !== null,
    closeReason: (row.close_reason as 'expired' | 'cancelled' | null) ?? null,
    lines,
    fulfillments: fos.map((f) => ({ status: f.status as FulfillmentStatus })),
  });
  if (status !== row.status) await trx.updateTable('orders').set({ status }).where('id', '=', orderId).execute();
  return { seq: row.version, status, previous: row.status as OrderStatus };
}

/**
 * Row-locks the order (a no-op update: PostgreSQL takes the row lock, SQLite holds the write
 * lock anyway). Every change of an order takes this lock first, before any stock, so changes of
 * one order queue here instead of deadlocking. Returns what the caller checks, or undefined.
 */
export async function lockOrder(trx: Trx, orderId: string): Promise<{ close_reason: string | null; status: string } | undefined> {
  return trx.updateTable('orders').set((eb) => ({ version: eb('version', '+', 0) })).where('id', '=', orderId).returning(['close_reason', 'status']).executeTakeFirst();
}
