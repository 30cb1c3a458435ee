// Changes to a captured order: validation (and release of its fulfilment orders), expiry of
// an unpaid order, cancellation of the whole order or of some lines, a new delivery address
// before release, and notes. Each is one transaction that re-derives the order status and
// appends its events; each is safe to race (conditional updates, the order row locked first).
import { selectCarrier } from '../carriers/selector.ts';
import type { Ctx } from '../context.ts';
import type { Trx } from '../db/database.ts';
import { appendEvents, type DomainEvent } from '../events/outbox.ts';
import { type PositionRow, reloadSupply } from '../availability/projection.ts';
import { endReservationsWithin } from '../inventory/stock.ts';
import { releaseSupplyAllocations } from '../inventory/supply.ts';
import { assertCountry } from '../inventory/validate.ts';
import { AppError, notFound } from '../shared/errors.ts';
import { type ActorRef, type Address, actorPayload } from './capture.ts';
import { type FulfillmentStatus, HANDED_OVER } from './model.ts';
import { loadOrder, type OrderAggregate } from './repository.ts';
import { lockOrder, touchedOrders, touchOrder } from './status.ts';
import { newTrackingToken, nextOrderNumber } from './numbering.ts';

/**
 * Runs a change in one transaction and applies the released stock to the projection after
 * commit, and the incoming supply of the skus in `supply` (backorders gave it back or
 * converted it). Changes lock the order row before stock, so they should not deadlock; if
 * PostgreSQL still aborts one as a deadlock victim (40P01), it rolled back entirely and runs again.
 */
export async function inOrderTransaction<T>(ctx: Ctx, fn: (trx: Trx, rows: PositionRow[], supply: number[]) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const rows: PositionRow[] = [];
    const supply: number[] = [];
    let operations: string[] = [];
    try {
      const out = await ctx.store.db.transaction().execute(async (trx) => {
        const r = await fn(trx, rows, supply);
        // The orders this change touched: their money follows in the same transaction (a
        // capture due on shipment, a void or refund on cancellation), recorded as intents.
        operations = await ctx.payments.planWithin(trx, touchedOrders(trx));
        return r;
      });
      if (rows.length) ctx.projection.applyAll(rows);
      if (supply.length) await reloadSupply(ctx.store.db, ctx.projection, [...new Set(supply)]);
      // Then the operators are called, outside any transaction.
      if (operations.length) await ctx.payments.run(operations);
      return out;
    } catch (e) {
      if (attempt >= 4 || (e as { code?: unknown }).code !== '40P01') throw e;
    }
  }
}

export async function requireOrder(ctx: Ctx, id: string): Promise<OrderAggregate> {
  const a = await loadOrder(ctx.store.db, id);
  if (!a) throw notFound(`Order '${id}'`);
  return a;
}

// ---- validation ------------------------------------------------------------------------------

/**
 * Validates a pending order (payment accepted, or an admin standing in for a manual tender)
 * and releases its fulfilment orders, each with its acceptance deadline. Backorders stay
 * `created` until their stock is in. Validating twice changes nothing.
 */
export async function validateOrder(ctx: Ctx, orderId: string, actor: ActorRef, via: 'manual' | 'payment' = 'manual', note: string | null = null): Promise<Validated> {
  return inOrderTransaction(ctx, (trx) => validateWithin(ctx, trx, orderId, actor, via, note));
}

export interface Validated {
  changed: boolean;
  /** The public order number (also when it was validated before). */
  number: string | null;
  /** The customer's tracking token, in clear: only when this call validated the order. */
  trackingToken?: string;
}

/** The same, in the caller's transaction (payments validate the order they cover). */
export async function validateWithin(ctx: Ctx, trx: Trx, orderId: string, actor: ActorRef, via: 'manual' | 'payment', note: string | null = null): Promise<Validated> {
  const now = ctx.clock.now();
  const won = await trx
    .updateTable('orders')
    .set({ validated_at: now, validated_by: actor.keyId, expires_at: null })
    .where('id', '=', orderId)
    .where('validated_at', 'is', null)
    .where('close_reason', 'is', null)
    .returning(['id', 'channel_id'])
    .executeTakeFirst();
  if (!won) {
    const o = await trx.selectFrom('orders').select(['validated_at', 'close_reason', 'status', 'number']).where('id', '=', orderId).executeTakeFirst();
    if (!o) throw notFound(`Order '${orderId}'`);
    if (o.validated_at !== null && o.close_reason === null) return { changed: false, number: o.number };
    throw new AppError('invalid_state', `Order '${orderId}' is ${o.status}: it can no longer be validated`);
  }
  const channel = ctx.projection.allChannels().find((c) => c.id === won.channel_id);
  const number = await nextOrderNumber(trx, won.channel_id, channel?.code ?? 'ORD');
  const tracking = issueTrackingToken(ctx, now);
  await trx.updateTable('orders').set({ number, tracking_token_hash: tracking.hash, tracking_expires_at: tracking.expiresAt }).where('id', '=', orderId).execute();
  const released = await releaseFulfillments(ctx, trx, orderId, now);
  const t = await touchOrder(trx, orderId, now);
  await appendEvents(trx, ctx.store.dialect, now, [
    { type: 'order.validated', aggregateType: 'order', aggregateId: orderId, aggregateSeq: t.seq, payload: { order_id: orderId, number, via, status: t.status, ...(note ? { note } : {}), actor: actorPayload(actor) } },
    ...released.map((f) => releasedEvent(ctx, f, actor)),
  ]);
  return { changed: true, number, trackingToken: tracking.token };
}

/** A new tracking token (shown once), what is stored of it, and when it stops working. */
function issueTrackingToken(ctx: Ctx, now: number): { token: string; hash: string; expiresAt: number } {
  return { ...newTrackingToken(), expiresAt: now + ctx.payments.settings.trackingTokenTtlMs };
}

/** A new tracking token for a validated order; the previous one stops working. */
export async function reissueTrackingToken(ctx: Ctx, orderId: string): Promise<{ orderId: string; number: string | null; token: string; expiresAt: number }> {
  const t = issueTrackingToken(ctx, ctx.clock.now());
  const o = await ctx.store.db
    .updateTable('orders')
    .set({ tracking_token_hash: t.hash, tracking_expires_at: t.expiresAt })
    .where('id', '=', orderId)
    .where('validated_at', 'is not', null)
    .returning(['id', 'number'])
    .executeTakeFirst();
  if (!o) throw new AppError('invalid_state', `Order '${orderId}' is not validated: it has no tracking token yet`);
  return { orderId: o.id, number: o.number, token: t.token, expiresAt: t.expiresAt };
}

interface Released {
  id: string;
  orderId: string;
  locationId: number;
  acceptBy: number;
  version: number;
}

export function releasedEvent(ctx: Ctx, f: Released, actor: ActorRef): DomainEvent {
  return {
    type: 'fulfillment.released',
    aggregateType: 'fulfillment_order',
    aggregateId: f.id,
    aggregateSeq: f.version,
    payload: { fulfillment_id: f.id, order_id: f.orderId, location: ctx.projection.locationById(f.locationId)?.code, accept_by: new Date(f.acceptBy).toISOString(), actor: actorPayload(actor) },
  };
}

/** Releases the order's `created` stock fulfilment orders (ids: only these), each with its deadline. */
export async function releaseFulfillments(ctx: Ctx, trx: Trx, orderId: string, now: number, ids?: string[]): Promise<Released[]> {
  let q = trx.selectFrom('fulfillment_orders').select(['id', 'location_id']).where('order_id', '=', orderId).where('status', '=', 'created').where('backorder', '=', 0);
  if (ids) q = q.where('id', 'in', ids.length ? ids : ['-']);
  const fos = await q.execute();
  const out: Released[] = [];
  for (const f of fos) {
    const type = ctx.projection.locationById(f.location_id)?.type ?? 'warehouse';
    const acceptBy = now + ctx.orders.acceptDeadlineMs[type];
    const r = await trx
      .updateTable('fulfillment_orders')
      .set((eb) => ({ status: 'released', accept_by: acceptBy, version: eb('version', '+', 1), updated_at: now }))
      .where('id', '=', f.id)
      .where('status', '=', 'created')
      .returning('version')
      .executeTakeFirst();
    if (r) out.push({ id: f.id, orderId, locationId: f.location_id, acceptBy, version: r.version });
  }
  return out;
}

// ---- expiry ----------------------------------------------------------------------------------

/**
 * Expires an order still unpaid past its deadline: its stock goes back, its fulfilment orders
 * are cancelled. Conditional on it still being unpaid and due, so when several OMS processes
 * sweep at once exactly one expires it.
 */
export async function expireOrder(ctx: Ctx, orderId: string, actor: ActorRef): Promise<boolean> {
  const now = ctx.clock.now();
  return inOrderTransaction(ctx, async (trx, rows, supply) => {
    const won = await trx
      .updateTable('orders')
      .set({ close_reason: 'expired', closed_at: now, expires_at: null })
      .where('id', '=', orderId)
      .where('validated_at', 'is', null)
      .where('close_reason', 'is', null)
      .where('expires_at', '<=', now)
      .returning('id')
      .executeTakeFirst();
    if (!won) return false;
    const cancelled = await stopFulfillments(ctx, trx, orderId, null, now, rows, supply);
    await trx.updateTable('order_lines').set((eb) => ({ cancelled: eb.ref('quantity'), allocated: 0, backordered: 0 })).where('order_id', '=', orderId).execute();
    const t = await touchOrder(trx, orderId, now);
    await appendEvents(trx, ctx.store.dialect, now, [
      { type: 'order.expired', aggregateType: 'order', aggregateId: orderId, aggregateSeq: t.seq, payload: { order_id: orderId, status: t.status, actor: actorPayload(actor) } },
      ...cancelled.map((f) => ({ type: 'fulfillment.cancelled', aggregateType: 'fulfillment_order', aggregateId: f.id, aggregateSeq: f.version, payload: { fulfillment_id: f.id, order_id: orderId, reason: 'order expired', actor: actorPayload(actor) } })),
    ]);
    return true;
  });
}

/** Unpaid orders past their deadline, oldest first (a bounded batch). */
export async function dueForExpiry(ctx: Ctx, limit = 100): Promise<string[]> {
  const rows = await ctx.store.db.selectFrom('orders').select('id').where('status', '=', 'pending_payment').where('expires_at', '<=', ctx.clock.now()).orderBy('expires_at').limit(limit).execute();
  return rows.map((r) => r.id);
}

/**
 * Cancels fulfilment orders that have not handed their goods over (all of the order's, or
 * these ids) and releases their reservations, and what backorders among them hold of incoming
 * supply (skus into `supply`). Returns what it cancelled.
 */
async function stopFulfillments(ctx: Ctx, trx: Trx, orderId: string, ids: string[] | null, now: number, rows: PositionRow[], supply: number[]): Promise<Array<{ id: string; version: number }>> {
  const stoppable: FulfillmentStatus[] = ['created', 'released', 'accepted', 'picking', 'packed'];
  let q = trx.updateTable('fulfillment_orders').set((eb) => ({ status: 'cancelled', version: eb('version', '+', 1), updated_at: now })).where('order_id', '=', orderId).where('status', 'in', stoppable);
  if (ids) q = q.where('id', 'in', ids.length ? ids : ['-']);
  const stopped = await q.returning(['id', 'version', 'backorder']).execute();
  if (stopped.length) {
    const res = await trx.selectFrom('fulfillment_lines').select('reservation_id').where('fulfillment_id', 'in', stopped.map((s) => s.id)).where('reservation_id', 'is not', null).execute();
    rows.push(...(await endReservationsWithin(ctx, trx, res.map((r) => ({ id: r.reservation_id as string })), 'released')));
    const backorders = stopped.filter((s) => s.backorder === 1).map((s) => ({ fulfillmentId: s.id }));
    if (backorders.length) supply.push(...(await releaseSupplyAllocations(trx, ctx.store.dialect, backorders, now)));
  }
  return stopped.map((s) => ({ id: s.id, version: s.version }));
}

// ---- cancellation ----------------------------------------------------------------------------

export interface CancelRequest {
  /** Lines and quantities to cancel; absent: everything not yet shipped. */
  lines?: Array<{ lineId: string; quantity: number }>;
  reason?: string | null;
}

/**
 * Cancels lines (or the whole order) before they ship: backordered units first, then units
 * at fulfilment orders that have not handed over (latest first), releasing their
 * reservations; a fulfilment order left empty is cancelled. Asking for more than can still
 * be cancelled is refused, and changes nothing.
 */
export async function cancelOrder(ctx: Ctx, orderId: string, req: CancelRequest, actor: ActorRef): Promise<{ status: string; cancelled: Array<{ lineId: string; quantity: number }> }> {
  const now = ctx.clock.now();
  return inOrderTransaction(ctx, async (trx, rows, supply) => {
    // Lock the order first (version bump): concurrent changes to it wait here.
    const locked = await lockOrder(trx, orderId);
    if (!locked) throw notFound(`Order '${orderId}'`);
    if (locked.close_reason) throw new AppError('invalid_state', `Order '${orderId}' is ${locked.status}: nothing left to cancel`);
    const a = (await loadOrder(trx, orderId)) as OrderAggregate;
    const live = a.fulfillments.filter((f) => !['rejected', 'cancelled'].includes(f.status));
    // Units not yet handed over, at live fulfilment orders (backorders included).
    const cancellableOf = (lineId: string) =>
      live.filter((f) => !HANDED_OVER.includes(f.status as FulfillmentStatus)).reduce((s, f) => s + f.lines.filter((l) => l.line_id === lineId).reduce((x, l) => x + l.quantity, 0), 0);
    // A line listed twice asks for the sum (checked as one, so the sum cannot exceed what is left).
    const asked = new Map<string, number>();
    for (const l of req.lines ?? []) asked.set(l.lineId, (asked.get(l.lineId) ?? 0) + l.quantity);
    const wanted = req.lines
      ? [...asked].map(([lineId, quantity]) => ({ lineId, quantity }))
      : a.lines.map((l) => ({ lineId: l.line_id, quantity: cancellableOf(l.line_id) })).filter((l) => l.quantity > 0);
    const problems: string[] = [];
    for (const w of wanted) {
      if (!a.lines.some((l) => l.line_id === w.lineId)) problems.push(`line ${w.lineId} does not exist`);
      else if (w.quantity > cancellableOf(w.lineId)) problems.push(`line ${w.lineId}: ${w.quantity} requested, ${cancellableOf(w.lineId)} can still be cancelled`);
    }
    if (problems.length) throw new AppError('invalid_state', `Cannot cancel: ${problems.join('; ')}`, { problems });
    if (wanted.length === 0) throw new AppError('invalid_state', `Order '${orderId}' has nothing left that can be cancelled (everything shipped)`);

    const ends: Array<{ id: string; quantity: number }> = [];
    // Backordered units give back the incoming supply they hold, unit for unit.
    const supplyEnds: Array<{ fulfillmentId: string; lineId: string; quantity: number }> = [];
    const emptied = new Set<string>();
    for (const w of wanted) {
      let left = w.quantity;
      // Backorders first (they hold no stock), then the latest fulfilment orders.
      const candidates = [...live].filter((f) => !HANDED_OVER.includes(f.status as FulfillmentStatus)).sort((x, y) => y.backorder - x.backorder || (x.id < y.id ? 1 : -1));
      let fromAllocated = 0;
      let fromBackorder = 0;
      for (const f of candidates) {
        if (left === 0) break;
        const fl = f.lines.find((l) => l.line_id === w.lineId && l.quantity > 0);
        if (!fl) continue;
        const take = Math.min(left, fl.quantity);
        left -= take;
        fl.quantity -= take;
        if (f.backorder) fromBackorder += take;
        else fromAllocated += take;
        await trx.updateTable('fulfillment_lines').set({ quantity: fl.quantity, picked: fl.picked === null ? null : Math.min(fl.picked, fl.quantity) }).where('fulfillment_id', '=', f.id).where('line_id', '=', w.lineId).execute();
        if (fl.reservation_id) ends.push({ id: fl.reservation_id, quantity: take });
        if (f.backorder) supplyEnds.push({ fulfillmentId: f.id, lineId: w.lineId, quantity: take });
        if (f.lines.every((l) => l.quantity === 0)) emptied.add(f.id);
      }
      await trx
        .updateTable('order_lines')
        .set((eb) => ({ cancelled: eb('cancelled', '+', w.quantity), allocated: eb('allocated', '-', fromAllocated), backordered: eb('backordered', '-', fromBackorder) }))
        .where('order_id', '=', orderId)
        .where('line_id', '=', w.lineId)
        .execute();
    }
    rows.push(...(await endReservationsWithin(ctx, trx, ends, 'released')));
    if (supplyEnds.length) supply.push(...(await releaseSupplyAllocations(trx, ctx.store.dialect, supplyEnds, now)));
    const stopped = await stopFulfillments(ctx, trx, orderId, [...emptied], now, rows, supply);
    const whole = req.lines === undefined && a.lines.every((l) => l.shipped === 0);
    const t = await touchOrder(trx, orderId, now, whole ? { closeReason: 'cancelled' } : {});
    await appendEvents(trx, ctx.store.dialect, now, [
      {
        type: whole ? 'order.cancelled' : 'order.lines_cancelled',
        aggregateType: 'order',
        aggregateId: orderId,
        aggregateSeq: t.seq,
        payload: { order_id: orderId, status: t.status, reason: req.reason ?? null, lines: wanted.map((w) => ({ line_id: w.lineId, quantity: w.quantity })), actor: actorPayload(actor) },
      },
      ...stopped.map((f) => ({ type: 'fulfillment.cancelled', aggregateType: 'fulfillment_order', aggregateId: f.id, aggregateSeq: f.version, payload: { fulfillment_id: f.id, order_id: orderId, reason: 'lines cancelled', actor: actorPayload(actor) } })),
    ]);
    return { status: t.status, cancelled: wanted };
  });
}

// ---- delivery address ------------------------------------------------------------------------

/**
 * A new address for a home or pickup-point delivery group, before any of its fulfilment
 * orders is released. Every shipment of the group is checked again against the carrier
 * services for the new destination; if one has no eligible service, nothing changes.
 */
export async function changeDeliveryAddress(ctx: Ctx, orderId: string, groupId: string, change: { address?: Address; relayPoint?: { id: string; name?: string | null; address: Address } }, actor: ActorRef): Promise<{ carriers: Array<{ fulfillment_id: string; service: string | null }> }> {
  const now = ctx.clock.now();
  return inOrderTransaction(ctx, async (trx) => {
    const locked = await lockOrder(trx, orderId);
    if (!locked) throw notFound(`Order '${orderId}'`);
    if (locked.close_reason) throw new AppError('invalid_state', `Order '${orderId}' is ${locked.status}`);
    const a = (await loadOrder(trx, orderId)) as OrderAggregate;
    const g = a.groups.find((x) => x.group_id === groupId);
    if (!g) throw notFound(`Delivery group '${groupId}' of order '${orderId}'`);
    if (g.mode === 'home' && !change.address) throw new AppError('validation_failed', 'A home delivery group needs address');
    if (g.mode === 'pickup_point' && !change.relayPoint) throw new AppError('validation_failed', 'A pickup_point delivery group needs relay_point');
    if (g.mode !== 'home' && g.mode !== 'pickup_point') throw new AppError('invalid_state', `Delivery group '${groupId}' is ${g.mode}: it has no delivery address to change`);
    const fos = a.fulfillments.filter((f) => f.group_id === groupId && !['rejected', 'cancelled'].includes(f.status));
    const released = fos.filter((f) => f.status !== 'created');
    if (released.length) throw new AppError('invalid_state', `Delivery group '${groupId}' was already released to ${released.length} location(s): its address can no longer change`);
    const addr = (change.address ?? change.relayPoint?.address) as Address;
    assertCountry(addr.country);
    const country = addr.country.toUpperCase();
    const choices = fos.map((f) => {
      const loc = ctx.projection.locationById(f.location_id);
      const weightG = f.lines.reduce((s, l) => s + (ctx.projection.skuById(l.sku_id)?.weightG ?? 0) * l.quantity, 0);
      const choice = selectCarrier(
        { mode: g.mode as 'home' | 'pickup_point', originCountry: loc?.country ?? country, destinationCountry: country, weightG, readyAt: Math.max(now, Date.parse(`${f.ready_date}T00:00:00Z`)), pinnedService: g.carrier_service, serviceLevel: (g.service_level as 'standard' | 'express' | null) ?? null },
        ctx.sourcing.carriers.services,
        { holidays: ctx.sourcing.carriers.holidays },
      );
      return { f, choice, location: loc?.code ?? String(f.location_id) };
    });
    const none = choices.filter((c) => !c.choice.service);
    if (none.length) {
      throw new AppError('invalid_state', `No carrier service can deliver to ${country} from ${none.map((c) => c.location).join(', ')}: ${none[0].choice.explanation.reason}`, {
        problems: none.map((c) => ({ location: c.location, reason: c.choice.explanation.reason })),
      });
    }
    await trx
      .updateTable('delivery_groups')
      .set({ address: change.address ? JSON.stringify(change.address) : g.address, relay_point: change.relayPoint ? JSON.stringify(change.relayPoint) : g.relay_point })
      .where('order_id', '=', orderId)
      .where('group_id', '=', groupId)
      .execute();
    for (const c of choices) {
      await trx.updateTable('fulfillment_orders').set({ carrier_service: c.choice.service?.code ?? null, estimated_delivery: c.choice.estimatedDelivery, updated_at: now }).where('id', '=', c.f.id).execute();
    }
    const t = await touchOrder(trx, orderId, now);
    const carriers = choices.map((c) => ({ fulfillment_id: c.f.id, service: c.choice.service?.code ?? null }));
    await appendEvents(trx, ctx.store.dialect, now, [
      { type: 'order.address_changed', aggregateType: 'order', aggregateId: orderId, aggregateSeq: t.seq, payload: { order_id: orderId, group_id: groupId, country, city: addr.city, postal_code: addr.postalCode, carriers, actor: actorPayload(actor) } },
    ]);
    return { carriers };
  });
}

// ---- notes -----------------------------------------------------------------------------------

export async function addNote(ctx: Ctx, orderId: string, text: string, actor: ActorRef): Promise<void> {
  const now = ctx.clock.now();
  await inOrderTransaction(ctx, async (trx) => {
    const exists = await trx.selectFrom('orders').select('id').where('id', '=', orderId).executeTakeFirst();
    if (!exists) throw notFound(`Order '${orderId}'`);
    const t = await touchOrder(trx, orderId, now);
    await appendEvents(trx, ctx.store.dialect, now, [{ type: 'order.note_added', aggregateType: 'order', aggregateId: orderId, aggregateSeq: t.seq, payload: { order_id: orderId, text, actor: actorPayload(actor) } }]);
  });
}
