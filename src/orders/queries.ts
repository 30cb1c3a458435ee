// Reads: order search with cursor pagination, always within the caller's scope (a channel
// sees its own orders; a store or WMS sees the orders it fulfils or captured), the order
// timeline (its events and its fulfilment orders', in commit order), the sourcing decisions
// kept for it, and fulfilment-order work lists per location.
import { type ExpressionBuilder, sql } from 'kysely';
import type { Ctx } from '../context.ts';
import type { DbOrTrx } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import { AppError } from '../shared/errors.ts';
import type { FulfillmentStatus, OrderStatus } from './model.ts';
import { hashTrackingToken } from './numbering.ts';

/** What a caller may see: everything (admin), one channel, or some locations. */
export type OrderScope = { kind: 'all' } | { kind: 'channel'; channelId: number } | { kind: 'locations'; locationIds: readonly number[] };

export interface OrderFilters {
  status?: OrderStatus[];
  channel?: string;
  location?: string;
  from?: number;
  to?: number;
  email?: string;
  externalReference?: string;
  sku?: string;
  limit: number;
  after?: string;
}

export const MAX_ORDER_PAGE = 200;
const CURSOR = /^ord_[0-9A-HJKMNP-TV-Z]{26}$/;

function scoped(eb: ExpressionBuilder<Database, 'orders'>, scope: OrderScope) {
  // A literal, not a bound parameter: SQLite cannot bind a boolean.
  if (scope.kind === 'all') return sql<boolean>`1 = 1`;
  if (scope.kind === 'channel') return eb('orders.channel_id', '=', scope.channelId);
  const ids = scope.locationIds.length ? [...scope.locationIds] : [-1];
  return eb.or([
    eb('orders.store_location_id', 'in', ids),
    eb.exists(eb.selectFrom('fulfillment_orders as fs').select('fs.id').whereRef('fs.order_id', '=', 'orders.id').where('fs.location_id', 'in', ids)),
  ]);
}

/** Orders newest first. Unknown channel, location or sku codes simply match nothing. */
export async function searchOrders(ctx: Ctx, scope: OrderScope, f: OrderFilters): Promise<{ ids: string[]; next: string | null }> {
  if (f.limit > MAX_ORDER_PAGE) throw new AppError('page_too_large', `At most ${MAX_ORDER_PAGE} orders per page`);
  if (f.after !== undefined && !CURSOR.test(f.after)) throw new AppError('invalid_cursor', `'${f.after}' is not a cursor this API issued`);
  const p = ctx.projection;
  let q = ctx.store.db.selectFrom('orders').select('orders.id').where((eb) => scoped(eb, scope));
  if (f.status?.length) q = q.where('orders.status', 'in', f.status);
  if (f.channel !== undefined) q = q.where('orders.channel_id', '=', p.channel(f.channel)?.id ?? -1);
  if (f.location !== undefined) {
    const id = p.location(f.location)?.id ?? -1;
    q = q.where((eb) => eb.or([eb('orders.store_location_id', '=', id), eb.exists(eb.selectFrom('fulfillment_orders as fl').select('fl.id').whereRef('fl.order_id', '=', 'orders.id').where('fl.location_id', '=', id))]));
  }
  if (f.sku !== undefined) {
    const id = p.sku(f.sku)?.id ?? -1;
    q = q.where((eb) => eb.exists(eb.selectFrom('order_lines as ol').select('ol.line_id').whereRef('ol.order_id', '=', 'orders.id').where('ol.sku_id', '=', id)));
  }
  if (f.from !== undefined) q = q.where('orders.created_at', '>=', f.from);
  if (f.to !== undefined) q = q.where('orders.created_at', '<', f.to);
  if (f.email !== undefined) q = q.where('orders.customer_email', '=', f.email.trim().toLowerCase());
  if (f.externalReference !== undefined) q = q.where('orders.external_reference', '=', f.externalReference);
  if (f.after !== undefined) q = q.where('orders.id', '<', f.after);
  const rows = await q.orderBy('orders.id', 'desc').limit(f.limit + 1).execute();
  const ids = rows.slice(0, f.limit).map((r) => r.id);
  return { ids, next: rows.length > f.limit ? ids[ids.length - 1] : null };
}

/** Whether the caller may see this order: the same test as searchOrders, for one id. */
export async function canSeeOrder(ctx: Ctx, scope: OrderScope, orderId: string): Promise<boolean> {
  const row = await ctx.store.db.selectFrom('orders').select('orders.id').where('orders.id', '=', orderId).where((eb) => scoped(eb, scope)).executeTakeFirst();
  return !!row;
}

export interface TimelineEntry {
  seq: number;
  at: number;
  type: string;
  aggregate: 'order' | 'fulfillment_order' | 'payment';
  aggregateId: string;
  actor: { key_id: string; name: string; role: string } | null;
  data: Record<string, unknown>;
}

/**
 * The aggregates of a timeline, as literals: the predicate of the partial index `outbox_timeline`
 * (migration 0010), which a query uses only when it carries the same predicate.
 */
const TIMELINE_TYPES = sql<boolean>`aggregate_type in ('order', 'fulfillment_order', 'payment')`;

/** The events of these aggregates (an order, its fulfilment orders and payments), in commit order. */
export const timelineEvents = (db: DbOrTrx, ids: string[]) =>
  db.selectFrom('outbox').select(['id', 'type', 'aggregate_type', 'aggregate_id', 'payload', 'occurred_at']).where('aggregate_id', 'in', ids).where(TIMELINE_TYPES).orderBy('id');

/** The order's events and its fulfilment orders' and payments' events, in commit order: the timeline. */
export async function orderTimeline(ctx: Ctx, orderId: string): Promise<TimelineEntry[]> {
  const db = ctx.store.db;
  const [fos, pays] = await Promise.all([
    db.selectFrom('fulfillment_orders').select('id').where('order_id', '=', orderId).execute(),
    db.selectFrom('payments').select('id').where('order_id', '=', orderId).execute(),
  ]);
  const ids = [orderId, ...fos.map((f) => f.id), ...pays.map((p) => p.id)];
  const rows = await timelineEvents(db, ids).execute();
  return rows.map((r) => {
    const { actor, ...data } = JSON.parse(r.payload) as { actor?: TimelineEntry['actor'] } & Record<string, unknown>;
    return { seq: r.id, at: r.occurred_at, type: r.type, aggregate: r.aggregate_type as TimelineEntry['aggregate'], aggregateId: r.aggregate_id, actor: actor ?? null, data };
  });
}

export async function sourcingDecisions(ctx: Ctx, orderId: string) {
  const rows = await ctx.store.db.selectFrom('order_sourcing').select(['reason', 'rule_set_version', 'decision', 'created_at']).where('order_id', '=', orderId).orderBy('id').execute();
  return rows.map((r) => ({ reason: r.reason, ruleSetVersion: r.rule_set_version, at: r.created_at, decision: JSON.parse(r.decision) as Record<string, unknown> }));
}

export interface FulfillmentFilters {
  location?: string;
  status?: FulfillmentStatus[];
  limit: number;
  after?: string;
}

const FO_CURSOR = /^ful_[0-9A-HJKMNP-TV-Z]{26}$/;

/** Fulfilment orders, oldest first (a work queue), within the caller's locations. */
export async function searchFulfillments(ctx: Ctx, locationIds: readonly number[] | null, f: FulfillmentFilters): Promise<{ ids: string[]; next: string | null }> {
  if (f.limit > MAX_ORDER_PAGE) throw new AppError('page_too_large', `At most ${MAX_ORDER_PAGE} fulfilment orders per page`);
  if (f.after !== undefined && !FO_CURSOR.test(f.after)) throw new AppError('invalid_cursor', `'${f.after}' is not a cursor this API issued`);
  let q = ctx.store.db.selectFrom('fulfillment_orders').select('id');
  if (locationIds) q = q.where('location_id', 'in', locationIds.length ? [...locationIds] : [-1]);
  if (f.location !== undefined) q = q.where('location_id', '=', ctx.projection.location(f.location)?.id ?? -1);
  if (f.status?.length) q = q.where('status', 'in', f.status);
  if (f.after !== undefined) q = q.where('id', '>', f.after);
  const rows = await q.orderBy('id').limit(f.limit + 1).execute();
  const ids = rows.slice(0, f.limit).map((r) => r.id);
  return { ids, next: rows.length > f.limit ? ids[ids.length - 1] : null };
}

/** The order a customer's tracking token names, while the token works; undefined otherwise. */
export async function orderByTrackingToken(ctx: Ctx, token: string): Promise<{ id: string; number: string | null; status: string; createdAt: number } | undefined> {
  const o = await ctx.store.db
    .selectFrom('orders')
    .select(['id', 'number', 'status', 'created_at', 'tracking_expires_at'])
    .where('tracking_token_hash', '=', hashTrackingToken(token))
    .executeTakeFirst();
  if (!o || (o.tracking_expires_at ?? 0) <= ctx.clock.now()) return undefined;
  return { id: o.id, number: o.number, status: o.status, createdAt: o.created_at };
}
