// Fulfilment orders at work (DOMAIN §3): the location (its store app or WMS) accepts, rejects,
// picks (short picks included), packs and ships; the admin releases and cancels. Transitions
// follow FULFILLMENT_TRANSITIONS; each is one conditional update, so two callers racing on one
// fulfilment order cannot both win. A rejection, a short pick or a missed acceptance deadline
// re-sources the units elsewhere (that location excluded) in the same transaction that takes
// them off the location: the stock is never promised twice nor lost in between.
import { type PositionRow, reloadSupply } from '../availability/projection.ts';
import type { Ctx } from '../context.ts';
import type { Trx } from '../db/database.ts';
import { appendEvents, type DomainEvent } from '../events/outbox.ts';
import { endReservationsWithin, reserveAll } from '../inventory/stock.ts';
import { convertSupplyAllocations, releaseSupplyAllocations } from '../inventory/supply.ts';
import { AppError, notFound } from '../shared/errors.ts';
import { sourceAndReserveGroups } from '../sourcing/service.ts';
import { type ActorRef, actorPayload, fulfillmentCreated, fulfillmentsFor, recordDecisions } from './capture.ts';
import { inOrderTransaction, releasedEvent, releaseFulfillments } from './changes.ts';
import { type FulfillmentAction, type FulfillmentStatus, transition } from './model.ts';
import { type FulfillmentAggregate, insertFulfillments, loadOrder, type OrderAggregate } from './repository.ts';
import { storedGroupRequest } from './replay.ts';
import { lockOrder, touchOrder } from './status.ts';

export interface FulfillmentActor extends ActorRef {
  kind: 'location' | 'admin';
  /** The locations a location actor (store or integration key) may act for. */
  locationIds: readonly number[];
}

export const SYSTEM_ACTOR: FulfillmentActor = { keyId: 'system', name: 'OMS scheduler', role: 'system', kind: 'admin', locationIds: [] };

export interface ActionInput {
  reason?: string | null;
  /** pick: the quantity picked per line; lines left out were picked in full. */
  lines?: Array<{ lineId: string; picked: number }>;
  tracking?: string | null;
}

export interface ActionResult {
  fulfillmentId: string;
  status: FulfillmentStatus;
  orderId: string;
  /** Fulfilment orders created by re-sourcing (rejection, short pick). */
  created: string[];
  /** Units that could be sourced nowhere else and were cancelled. */
  cancelled: Array<{ lineId: string; quantity: number }>;
}

/** Loads a fulfilment order the actor may see; another location's is not found (never forbidden: no leak). */
export async function visibleFulfillment(ctx: Ctx, id: string, actor: Pick<FulfillmentActor, 'kind' | 'locationIds'>): Promise<{ order: OrderAggregate; fo: FulfillmentAggregate }> {
  const row = await ctx.store.db.selectFrom('fulfillment_orders').select(['order_id', 'location_id']).where('id', '=', id).executeTakeFirst();
  if (!row || (actor.kind === 'location' && !actor.locationIds.includes(row.location_id))) throw notFound(`Fulfilment order '${id}'`);
  const order = (await loadOrder(ctx.store.db, row.order_id)) as OrderAggregate;
  return { order, fo: order.fulfillments.find((f) => f.id === id) as FulfillmentAggregate };
}

/**
 * PostgreSQL aborts one of two transactions that wait on each other's row locks. Re-sourcing
 * releases stock at one location and reserves it at another, so two re-sourcings going
 * opposite ways (or one racing a change that locked the order first) can meet that way; the
 * aborted one rolled back entirely and is simply run again, on fresh state.
 */
async function retryConflicts<T>(run: () => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (e) {
      const retryable = e instanceof ExclusionsChanged || e instanceof ReadMidChange || (e as { code?: unknown }).code === '40P01';
      if (attempt >= attempts || !retryable) throw e;
    }
  }
}

/** A re-sourcing planned on exclusions that changed before it committed: it rolls back and runs again (409 if it keeps happening). */
class ExclusionsChanged extends AppError {
  constructor() {
    super('conflict', "The order's excluded locations changed while it was re-sourced; retry");
  }
}

/**
 * The fulfilment order and its lines are read by separate statements: a change committed in
 * between (an order cancellation zeroes the lines and cancels the order) gives a mix of before
 * and after. Found when the request does not fit what was read: it runs again on a fresh read.
 */
class ReadMidChange extends AppError {
  constructor() {
    super('conflict', 'The fulfilment order changed while it was read; retry');
  }
}

/** True when the fulfilment order is no longer what was read (status or version moved since). */
async function movedSince(ctx: Ctx, fo: FulfillmentAggregate): Promise<boolean> {
  const now = await ctx.store.db.selectFrom('fulfillment_orders').select(['status', 'version']).where('id', '=', fo.id).executeTakeFirst();
  return !now || now.status !== fo.status || now.version !== fo.version;
}

export async function actOnFulfillment(ctx: Ctx, id: string, action: FulfillmentAction, actor: FulfillmentActor, input: ActionInput = {}): Promise<ActionResult> {
  return retryConflicts(() => actOnce(ctx, id, action, actor, input));
}

async function actOnce(ctx: Ctx, id: string, action: FulfillmentAction, actor: FulfillmentActor, input: ActionInput): Promise<ActionResult> {
  const { order, fo } = await visibleFulfillment(ctx, id, actor);
  const t = transition(fo.status as FulfillmentStatus, action, actor.kind, fo.mode);
  if (!t.ok) throw new AppError(t.reason.startsWith('Only') ? 'forbidden' : 'invalid_state', t.reason);
  const base = { fulfillmentId: id, orderId: order.order.id, created: [] as string[], cancelled: [] as Array<{ lineId: string; quantity: number }> };
  switch (action) {
    case 'accept':
    case 'pack':
      await simple(ctx, order, fo, t.to, t.event, actor, {});
      return { ...base, status: t.to };
    case 'ship':
      await ship(ctx, order, fo, t.to, actor, input.tracking ?? null);
      return { ...base, status: t.to };
    case 'cancel':
      await cancelFulfillment(ctx, order, fo, actor, input.reason ?? null);
      return { ...base, status: 'cancelled' };
    case 'release':
      await releaseBackorder(ctx, order, fo, actor);
      return { ...base, status: 'released' };
    case 'reject': {
      if (!input.reason) throw new AppError('validation_failed', 'A rejection needs a reason');
      const moved = fo.lines.filter((l) => l.quantity > 0).map((l) => ({ lineId: l.line_id, quantity: l.quantity }));
      const r = await moveElsewhere(ctx, order, fo, moved, 'rejected', input.reason, actor, async (trx, rows) => {
        const version = await conditional(trx, fo, ['released', 'accepted'], 'rejected', ctx.clock.now(), input.reason ?? null);
        rows.push(...(await endReservationsWithin(ctx, trx, reservationsOf(fo), 'released')));
        return [{ type: 'fulfillment.rejected', aggregateType: 'fulfillment_order', aggregateId: fo.id, aggregateSeq: version, payload: { fulfillment_id: fo.id, order_id: fo.order_id, reason: input.reason, lines: moved.map((m) => ({ line_id: m.lineId, quantity: m.quantity })), actor: actorPayload(actor) } }];
      });
      return { ...base, status: 'rejected', ...r };
    }
    case 'pick':
      return { ...base, ...(await pick(ctx, order, fo, actor, input.lines ?? [])) };
  }
}

const reservationsOf = (fo: FulfillmentAggregate) => fo.lines.filter((l) => l.reservation_id && l.quantity > 0).map((l) => ({ id: l.reservation_id as string, quantity: l.quantity }));

/** The conditional status change every transition starts with: it fails if someone moved first. */
async function conditional(trx: Trx, fo: FulfillmentAggregate, from: FulfillmentStatus[], to: FulfillmentStatus, now: number, reason: string | null, extra: { tracking?: string | null } = {}): Promise<number> {
  const r = await trx
    .updateTable('fulfillment_orders')
    .set((eb) => ({ status: to, version: eb('version', '+', 1), updated_at: now, ...(reason !== null ? { reason } : {}), ...(extra.tracking !== undefined ? { tracking: extra.tracking } : {}) }))
    .where('id', '=', fo.id)
    .where('status', 'in', from)
    .where('version', '=', fo.version)
    .returning('version')
    .executeTakeFirst();
  if (!r) throw new AppError('invalid_state', `Fulfilment order '${fo.id}' changed meanwhile (it is no longer ${fo.status}); reload it and retry`);
  return r.version;
}


async function simple(ctx: Ctx, order: OrderAggregate, fo: FulfillmentAggregate, to: FulfillmentStatus, event: string, actor: ActorRef, payload: object): Promise<void> {
  const now = ctx.clock.now();
  await inOrderTransaction(ctx, async (trx) => {
    await lockOrder(trx, order.order.id);
    const version = await conditional(trx, fo, [fo.status as FulfillmentStatus], to, now, null);
    await touchOrder(trx, order.order.id, now);
    await appendEvents(trx, ctx.store.dialect, now, [{ type: event, aggregateType: 'fulfillment_order', aggregateId: fo.id, aggregateSeq: version, payload: { fulfillment_id: fo.id, order_id: fo.order_id, status: to, ...payload, actor: actorPayload(actor) } }]);
  });
}

/** The goods leave: reservations are consumed (on_hand drops through a shipment movement). */
async function ship(ctx: Ctx, order: OrderAggregate, fo: FulfillmentAggregate, to: FulfillmentStatus, actor: ActorRef, tracking: string | null): Promise<void> {
  const now = ctx.clock.now();
  await inOrderTransaction(ctx, async (trx, rows) => {
    await lockOrder(trx, order.order.id);
    const version = await conditional(trx, fo, ['packed'], to, now, null, { tracking });
    rows.push(...(await endReservationsWithin(ctx, trx, reservationsOf(fo), 'consumed', { source: `fulfillment:${fo.id}`, reference: order.order.id })));
    for (const l of fo.lines.filter((x) => x.quantity > 0)) {
      await trx.updateTable('fulfillment_lines').set({ shipped: l.quantity }).where('fulfillment_id', '=', fo.id).where('line_id', '=', l.line_id).execute();
      await trx.updateTable('order_lines').set((eb) => ({ shipped: eb('shipped', '+', l.quantity) })).where('order_id', '=', fo.order_id).where('line_id', '=', l.line_id).execute();
    }
    await touchOrder(trx, order.order.id, now);
    await appendEvents(trx, ctx.store.dialect, now, [
      {
        type: 'fulfillment.shipped',
        aggregateType: 'fulfillment_order',
        aggregateId: fo.id,
        aggregateSeq: version,
        payload: { fulfillment_id: fo.id, order_id: fo.order_id, status: to, tracking, lines: fo.lines.filter((x) => x.quantity > 0).map((l) => ({ line_id: l.line_id, quantity: l.quantity })), actor: actorPayload(actor) },
      },
    ]);
  });
}

/** Stops this fulfilment order: its units are cancelled from the order and its stock (or, for a backorder, its incoming supply) released. */
async function cancelFulfillment(ctx: Ctx, order: OrderAggregate, fo: FulfillmentAggregate, actor: ActorRef, reason: string | null): Promise<void> {
  const now = ctx.clock.now();
  await inOrderTransaction(ctx, async (trx, rows, supply) => {
    await lockOrder(trx, order.order.id);
    const version = await conditional(trx, fo, ['created', 'released', 'accepted', 'picking', 'packed'], 'cancelled', now, reason);
    rows.push(...(await endReservationsWithin(ctx, trx, reservationsOf(fo), 'released')));
    if (fo.backorder) supply.push(...(await releaseSupplyAllocations(trx, ctx.store.dialect, [{ fulfillmentId: fo.id }], now)));
    for (const l of fo.lines.filter((x) => x.quantity > 0)) {
      await trx
        .updateTable('order_lines')
        .set((eb) => (fo.backorder ? { backordered: eb('backordered', '-', l.quantity), cancelled: eb('cancelled', '+', l.quantity) } : { allocated: eb('allocated', '-', l.quantity), cancelled: eb('cancelled', '+', l.quantity) }))
        .where('order_id', '=', fo.order_id)
        .where('line_id', '=', l.line_id)
        .execute();
    }
    await touchOrder(trx, order.order.id, now);
    await appendEvents(trx, ctx.store.dialect, now, [
      { type: 'fulfillment.cancelled', aggregateType: 'fulfillment_order', aggregateId: fo.id, aggregateSeq: version, payload: { fulfillment_id: fo.id, order_id: fo.order_id, reason, lines: fo.lines.filter((x) => x.quantity > 0).map((l) => ({ line_id: l.line_id, quantity: l.quantity })), actor: actorPayload(actor) } },
    ]);
  });
}

/**
 * Releases a backorder once its stock is in: the units are reserved at the location now
 * (conditionally: if they are not there yet, nothing changes), what it held of the incoming
 * supply is converted (the reservations hold the units now), and the work goes out with its
 * acceptance deadline. Only for a validated order.
 */
async function releaseBackorder(ctx: Ctx, order: OrderAggregate, fo: FulfillmentAggregate, actor: ActorRef): Promise<void> {
  if (order.order.validated_at === null) throw new AppError('invalid_state', `Order '${order.order.id}' is not validated yet: its fulfilment orders are released on validation`);
  const now = ctx.clock.now();
  const channel = ctx.projection.allChannels().find((c) => c.id === order.order.channel_id);
  await inOrderTransaction(ctx, async (trx, rows, supply) => {
    await lockOrder(trx, order.order.id);
    const lines = fo.lines.filter((l) => l.quantity > 0);
    if (fo.backorder) {
      // Claim the backorder first (conditional, row-locking): a concurrent release waits here
      // and then finds it taken, instead of reserving the units a second time.
      const claimed = await trx.updateTable('fulfillment_orders').set({ backorder: 0 }).where('id', '=', fo.id).where('status', '=', 'created').where('backorder', '=', 1).executeTakeFirst();
      if (Number(claimed.numUpdatedRows) !== 1) throw new AppError('invalid_state', `Fulfilment order '${fo.id}' changed meanwhile; reload it and retry`);
      const reserved = await reserveAll(ctx, trx, lines.map((l) => ({ locationId: fo.location_id, skuId: l.sku_id, quantity: l.quantity })), { buffer: channel?.buffer ?? 0, channelId: channel?.id ?? null, reference: order.order.id });
      if (!reserved) throw new AppError('insufficient_stock', `The backordered units are not all at ${ctx.projection.locationById(fo.location_id)?.code} yet`);
      rows.push(...reserved.rows);
      for (const [i, l] of lines.entries()) {
        await trx.updateTable('fulfillment_lines').set({ reservation_id: reserved.reservations[i].id }).where('fulfillment_id', '=', fo.id).where('line_id', '=', l.line_id).execute();
        await trx.updateTable('order_lines').set((eb) => ({ allocated: eb('allocated', '+', l.quantity), backordered: eb('backordered', '-', l.quantity) })).where('order_id', '=', fo.order_id).where('line_id', '=', l.line_id).execute();
      }
      supply.push(...(await convertSupplyAllocations(trx, ctx.store.dialect, fo.id, now)));
    }
    const released = await releaseFulfillments(ctx, trx, order.order.id, now, [fo.id]);
    if (released.length === 0) throw new AppError('invalid_state', `Fulfilment order '${fo.id}' changed meanwhile; reload it and retry`);
    await touchOrder(trx, order.order.id, now);
    await appendEvents(trx, ctx.store.dialect, now, released.map((f) => releasedEvent(ctx, f, actor)));
  });
}

/**
 * Records the picked quantities. Lines picked short give up the missing units: their
 * reservation shrinks and those units are re-sourced elsewhere. Nothing picked at all is a
 * rejection.
 */
async function pick(ctx: Ctx, order: OrderAggregate, fo: FulfillmentAggregate, actor: FulfillmentActor, reported: Array<{ lineId: string; picked: number }>): Promise<Omit<ActionResult, 'fulfillmentId' | 'orderId'>> {
  const byLine = new Map<string, number>();
  for (const r of reported) {
    const l = fo.lines.find((x) => x.line_id === r.lineId);
    if (!l) throw new AppError('validation_failed', `Line ${r.lineId} is not part of fulfilment order '${fo.id}'`);
    if (!Number.isInteger(r.picked) || r.picked < 0 || r.picked > l.quantity) {
      if (Number.isInteger(r.picked) && r.picked > l.quantity && (await movedSince(ctx, fo))) throw new ReadMidChange();
      throw new AppError('validation_failed', `Line ${r.lineId}: picked must be 0 to ${l.quantity} (got ${r.picked})`);
    }
    byLine.set(r.lineId, r.picked);
  }
  const open = fo.lines.filter((l) => l.quantity > 0);
  const short = open.map((l) => ({ lineId: l.line_id, quantity: l.quantity - (byLine.get(l.line_id) ?? l.quantity), line: l })).filter((s) => s.quantity > 0);
  const nothing = open.every((l) => (byLine.get(l.line_id) ?? l.quantity) === 0);
  const now = ctx.clock.now();
  const apply = async (trx: Trx, rows: PositionRow[]): Promise<DomainEvent[]> => {
    const version = await conditional(trx, fo, ['accepted'], nothing ? 'rejected' : 'picking', now, short.length ? (nothing ? 'nothing picked' : 'short pick') : null);
    for (const l of open) {
      const picked = byLine.get(l.line_id) ?? l.quantity;
      await trx.updateTable('fulfillment_lines').set({ quantity: picked, picked }).where('fulfillment_id', '=', fo.id).where('line_id', '=', l.line_id).execute();
    }
    rows.push(...(await endReservationsWithin(ctx, trx, short.filter((s) => s.line.reservation_id).map((s) => ({ id: s.line.reservation_id as string, quantity: s.quantity })), 'released')));
    return [
      {
        type: nothing ? 'fulfillment.rejected' : 'fulfillment.picked',
        aggregateType: 'fulfillment_order',
        aggregateId: fo.id,
        aggregateSeq: version,
        payload: {
          fulfillment_id: fo.id,
          order_id: fo.order_id,
          lines: open.map((l) => ({ line_id: l.line_id, quantity: l.quantity, picked: byLine.get(l.line_id) ?? l.quantity })),
          short: short.map((s) => ({ line_id: s.lineId, quantity: s.quantity })),
          ...(nothing ? { reason: 'nothing picked' } : {}),
          actor: actorPayload(actor),
        },
      },
    ];
  };
  if (short.length === 0) {
    await inOrderTransaction(ctx, async (trx, rows) => {
      await lockOrder(trx, order.order.id);
      const events = await apply(trx, rows);
      await touchOrder(trx, order.order.id, now);
      await appendEvents(trx, ctx.store.dialect, now, events);
    });
    return { status: 'picking', created: [], cancelled: [] };
  }
  const r = await moveElsewhere(ctx, order, fo, short.map((s) => ({ lineId: s.lineId, quantity: s.quantity })), nothing ? 'rejected' : 'short_pick', nothing ? 'nothing picked' : 'short pick', actor, apply);
  return { status: nothing ? 'rejected' : 'picking', ...r };
}

/**
 * Takes units off a location (`takeOff`: the conditional status change and the release of
 * its reservations) and sources them again without that location, in one transaction. What
 * can be reserved elsewhere gets new fulfilment orders (released at once if the order is
 * validated); what can be backordered is; the rest is cancelled from the order.
 */
async function moveElsewhere(
  ctx: Ctx,
  order: OrderAggregate,
  fo: FulfillmentAggregate,
  units: Array<{ lineId: string; quantity: number }>,
  why: 'rejected' | 'short_pick' | 'deadline_missed',
  reason: string,
  actor: ActorRef,
  takeOff: (trx: Trx, rows: PositionRow[]) => Promise<DomainEvent[]>,
): Promise<{ created: string[]; cancelled: Array<{ lineId: string; quantity: number }> }> {
  const excluded: number[] = [...JSON.parse(order.order.excluded_location_ids), fo.location_id];
  const request = storedGroupRequest(ctx, order, fo.group_id, units, excluded);
  const released: PositionRow[] = [];
  const givenBack: number[] = [];
  const out = await sourceAndReserveGroups(ctx, [request], {
    reference: order.order.id,
    allowPartial: true,
    // The order row before any stock, like every other change of an order: no lock cycle.
    beforeReserve: async (trx) => void (await lockOrder(trx, order.order.id)),
    persist: async (trx, groups) => {
      const now = ctx.clock.now();
      await lockOrder(trx, order.order.id);
      // Another fulfilment order of this order may have been re-sourced since it was loaded:
      // its location is excluded too (kept, not overwritten), and a plan that picked it is redone.
      const stored = await trx.selectFrom('orders').select('excluded_location_ids').where('id', '=', order.order.id).executeTakeFirstOrThrow();
      for (const id of JSON.parse(stored.excluded_location_ids) as number[]) if (!excluded.includes(id)) excluded.push(id);
      const g = groups[0];
      if (g.result.plan.shipments.some((s) => excluded.includes(ctx.projection.location(s.location)?.id ?? -1))) throw new ExclusionsChanged();
      const events = await takeOff(trx, released);
      // Backordered units moved away give back the incoming supply they held.
      if (fo.backorder) givenBack.push(...(await releaseSupplyAllocations(trx, ctx.store.dialect, units.map((u) => ({ fulfillmentId: fo.id, lineId: u.lineId, quantity: u.quantity })), now)));
      const fresh = fulfillmentsFor(ctx, order.order.id, fo.group_id, g.result, g.allocations, g.supply, now);
      await insertFulfillments(trx, ctx.store.dialect, fresh);
      const cancelled: Array<{ lineId: string; quantity: number }> = [];
      for (const l of g.result.plan.lines) {
        const allocated = l.allocations.reduce((s, a) => s + a.quantity, 0);
        const backordered = l.backorders.reduce((s, b) => s + b.quantity, 0);
        if (l.unfilled > 0) cancelled.push({ lineId: l.lineId, quantity: l.unfilled });
        await trx
          .updateTable('order_lines')
          .set((eb) => ({
            allocated: eb(eb('allocated', '-', l.quantity), '+', allocated),
            backordered: eb('backordered', '+', backordered),
            cancelled: eb('cancelled', '+', l.unfilled),
          }))
          .where('order_id', '=', order.order.id)
          .where('line_id', '=', l.lineId)
          .execute();
      }
      await trx.updateTable('orders').set({ excluded_location_ids: JSON.stringify([...new Set(excluded)]) }).where('id', '=', order.order.id).execute();
      await recordDecisions(trx, order.order.id, `${why} at ${ctx.projection.locationById(fo.location_id)?.code}: ${reason}`, groups, now);
      const rel = order.order.validated_at !== null ? await releaseFulfillments(ctx, trx, order.order.id, now, fresh.map((f) => f.id)) : [];
      const t = await touchOrder(trx, order.order.id, now);
      await appendEvents(trx, ctx.store.dialect, now, [
        ...events,
        ...fresh.map((f) => fulfillmentCreated(ctx, f, actor)),
        ...rel.map((f) => releasedEvent(ctx, f, actor)),
        {
          type: 'order.resourced',
          aggregateType: 'order',
          aggregateId: order.order.id,
          aggregateSeq: t.seq,
          payload: { order_id: order.order.id, from: ctx.projection.locationById(fo.location_id)?.code, why, reason, to: fresh.map((f) => ({ fulfillment_id: f.id, location: ctx.projection.locationById(f.location_id)?.code })), cancelled: cancelled.map((c) => ({ line_id: c.lineId, quantity: c.quantity })), status: t.status, actor: actorPayload(actor) },
        },
      ]);
      return { created: fresh.map((f) => f.id), cancelled };
    },
  });
  if (released.length) ctx.projection.applyAll(released);
  if (givenBack.length) await reloadSupply(ctx.store.db, ctx.projection, [...new Set(givenBack)]);
  return out.persisted;
}

// ---- acceptance deadlines -----------------------------------------------------------------------

/** Released fulfilment orders past their acceptance deadline (a bounded batch). */
export async function overdueFulfillments(ctx: Ctx, limit = 100): Promise<string[]> {
  const rows = await ctx.store.db.selectFrom('fulfillment_orders').select('id').where('status', '=', 'released').where('accept_by', '<=', ctx.clock.now()).orderBy('accept_by').limit(limit).execute();
  return rows.map((r) => r.id);
}

/**
 * A location that did not accept in time loses the work: it is re-sourced without it, as a
 * rejection would be. Conditional on the fulfilment order still waiting, so an acceptance
 * that lands first wins, and two OMS processes sweeping at once re-source it once.
 */
export async function missDeadline(ctx: Ctx, id: string): Promise<boolean> {
  return retryConflicts(() => missDeadlineOnce(ctx, id));
}

async function missDeadlineOnce(ctx: Ctx, id: string): Promise<boolean> {
  const { order, fo } = await visibleFulfillment(ctx, id, SYSTEM_ACTOR);
  if (fo.status !== 'released' || fo.accept_by === null || fo.accept_by > ctx.clock.now()) return false;
  const moved = fo.lines.filter((l) => l.quantity > 0).map((l) => ({ lineId: l.line_id, quantity: l.quantity }));
  const reason = `not accepted by ${new Date(fo.accept_by).toISOString()}`;
  try {
    await moveElsewhere(ctx, order, fo, moved, 'deadline_missed', reason, SYSTEM_ACTOR, async (trx, rows) => {
      const version = await conditional(trx, fo, ['released'], 'rejected', ctx.clock.now(), 'deadline missed');
      rows.push(...(await endReservationsWithin(ctx, trx, reservationsOf(fo), 'released')));
      return [{ type: 'fulfillment.rejected', aggregateType: 'fulfillment_order', aggregateId: fo.id, aggregateSeq: version, payload: { fulfillment_id: fo.id, order_id: fo.order_id, reason, deadline_missed: true, lines: moved.map((m) => ({ line_id: m.lineId, quantity: m.quantity })), actor: actorPayload(SYSTEM_ACTOR) } }];
    });
    return true;
  } catch (e) {
    if (e instanceof AppError && e.code === 'invalid_state') return false;
    throw e;
  }
}
