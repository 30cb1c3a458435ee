// Order capture (DOMAIN §2): checks the order, then sources and reserves it and stores it
// with its fulfilment orders in one transaction, so an order exists only with its stock
// reserved, and nothing is stored when it cannot be sourced. One order per (channel,
// external reference): capturing it again returns the stored order.
import type { Ctx } from '../context.ts';
import type { Trx } from '../db/database.ts';
import type { WriteBatch } from '../db/bulk.ts';
import { appendEventsTo, type DomainEvent } from '../events/outbox.ts';
import { assertCountry } from '../inventory/validate.ts';
import { isUniqueViolation } from '../inventory/stock.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import type { SourcingResult } from '../sourcing/model.ts';
import { type GroupsSourced, type SourcingRequest, sourceAndReserveGroups } from '../sourcing/service.ts';
import { checkTotals, MANUAL_TENDERS, type OrderDeliveryMode, type TenderMethod, type Totals } from './model.ts';
import { addOrderTo, type FulfillmentAggregate, findOrderByReference, loadOrder, type OrderAggregate, type OrderLineRow } from './repository.ts';

export interface Address {
  name?: string | null;
  line1: string;
  line2?: string | null;
  postalCode: string;
  city: string;
  country: string;
  latitude?: number | null;
  longitude?: number | null;
  phone?: string | null;
}

export interface CaptureLine {
  lineId?: string;
  sku: string;
  quantity: number;
  unitPrice: number;
  discount?: number;
  tax?: number;
  /** The delivery group (its group_id); optional when the order has one group. */
  group?: string;
}

export interface CaptureGroup {
  groupId?: string;
  mode: OrderDeliveryMode;
  address?: Address | null;
  relayPoint?: { id: string; name?: string | null; address: Address } | null;
  /** The store (location code) for click_and_collect and in_store. */
  pickupLocation?: string | null;
  serviceLevel?: 'standard' | 'express' | null;
  carrierService?: string | null;
  /** What the customer pays for this group's delivery, minor units. */
  shippingPrice?: number;
}

export interface CaptureInput {
  channel: string;
  externalReference: string;
  customer: { name?: string | null; email?: string | null; phone?: string | null };
  billingAddress?: Address | null;
  currency: string;
  /** Prices include tax (European retail): the total does not add the tax again. */
  taxIncluded: boolean;
  lines: CaptureLine[];
  deliveryGroups: CaptureGroup[];
  totals: Totals;
  /** The intended tenders; the payments issue authorizes them. */
  tenders: Array<{ method: TenderMethod; amount: number }>;
  promisedBy?: number | null;
  /** Order in Store: the store (location code) whose associate captures the order. */
  store?: string | null;
  associate?: string | null;
}

/** Who did something: recorded on the timeline (never a secret). */
export interface ActorRef {
  keyId: string;
  name: string;
  role: string;
}

export const actorPayload = (a: ActorRef) => ({ key_id: a.keyId, name: a.name, role: a.role });

const CURRENCIES = new Set(Intl.supportedValuesOf('currency'));

export interface Captured {
  order: OrderAggregate;
  /** false: the (channel, external reference) was already captured; this is that order. */
  created: boolean;
}

export async function captureOrder(ctx: Ctx, given: CaptureInput, actor: ActorRef): Promise<Captured> {
  const p = ctx.projection;
  // Line ids are given or L1, L2…: named once here, so every step below finds a line by its id.
  const input: CaptureInput = { ...given, lines: given.lines.map((l, i) => ({ ...l, lineId: l.lineId ?? `L${i + 1}` })) };
  const channel = p.channel(input.channel);
  if (!channel) throw new AppError('unknown_channel', `Channel '${input.channel}' does not exist`);
  // No look-up first: a reference captured before fails the unique index at commit, the whole
  // transaction rolls back, and the stored order is the answer (below). One statement less
  // for every new order; the rare resend pays for its sourcing.

  const requests = toSourcingRequests(ctx, input);
  const now = ctx.clock.now();
  const orderId = newId('ord');
  const manual = input.tenders.length > 0 && input.tenders.every((t) => MANUAL_TENDERS.includes(t.method));
  const ttl = manual ? ctx.orders.manualPaymentTtlMs : ctx.orders.paymentTtlMs;
  try {
    const sourced = await sourceAndReserveGroups<OrderAggregate>(ctx, requests.map((r) => r.request), {
      reference: orderId,
      // Inserts only: on PostgreSQL the whole capture is then one statement.
      collect: async (groups, batch) => {
        const agg = buildAggregate(ctx, input, orderId, requests, groups, now, now + ttl, actor);
        addOrderTo(batch, agg);
        addDecisionsTo(batch, orderId, 'capture', groups, now);
        appendEventsTo(batch, now, [
          {
            type: 'order.created',
            aggregateType: 'order',
            aggregateId: orderId,
            aggregateSeq: 1,
            payload: {
              order_id: orderId,
              channel: input.channel,
              external_reference: input.externalReference,
              status: agg.order.status,
              currency: agg.order.currency,
              total: agg.order.total,
              lines: agg.lines.map((l) => ({ line_id: l.line_id, sku: p.skuById(l.sku_id)?.code, quantity: l.quantity })),
              store: input.store ?? null,
              actor: actorPayload(actor),
            },
          },
          ...agg.fulfillments.map((f) => fulfillmentCreated(ctx, f, actor)),
        ]);
        return agg;
      },
    });
    return { order: sourced.persisted, created: true };
  } catch (e) {
    // Two captures of one reference raced: the loser's transaction rolled back entirely. The
    // loser may also find the stock already taken by the winner (out of stock): either way,
    // if the reference is now stored, that order is the answer.
    if (isUniqueViolation(e) || (e instanceof AppError && e.code === 'out_of_stock')) {
      const id = await findOrderByReference(ctx.store.db, channel.id, input.externalReference);
      if (id) return { order: (await loadOrder(ctx.store.db, id)) as OrderAggregate, created: false };
    }
    throw e;
  }
}

export function fulfillmentCreated(ctx: Ctx, f: FulfillmentAggregate, actor: ActorRef): DomainEvent {
  return {
    type: 'fulfillment.created',
    aggregateType: 'fulfillment_order',
    aggregateId: f.id,
    aggregateSeq: f.version,
    payload: {
      fulfillment_id: f.id,
      order_id: f.order_id,
      location: ctx.projection.locationById(f.location_id)?.code,
      backorder: f.backorder === 1,
      lines: f.lines.map((l) => ({ line_id: l.line_id, sku: ctx.projection.skuById(l.sku_id)?.code, quantity: l.quantity })),
      actor: actorPayload(actor),
    },
  };
}

interface GroupRequest {
  groupId: string;
  group: CaptureGroup;
  request: SourcingRequest;
}

/** Checks everything that does not need stock, and builds one sourcing request per delivery group. */
function toSourcingRequests(ctx: Ctx, input: CaptureInput): GroupRequest[] {
  const p = ctx.projection;
  if (!CURRENCIES.has(input.currency)) throw new AppError('validation_failed', `Currency '${input.currency}' is not an ISO 4217 code`);
  if (input.billingAddress) assertCountry(input.billingAddress.country);
  const unknown = [...new Set(input.lines.map((l) => l.sku).filter((s) => !p.sku(s)))];
  if (unknown.length) throw new AppError('unknown_sku', `Unknown sku(s): ${unknown.slice(0, 10).join(', ')}`, { skus: unknown });

  let store: { code: string; id: number } | null = null;
  if (input.store) {
    const s = p.location(input.store);
    if (!s) throw new AppError('unknown_location', `Location '${input.store}' does not exist`);
    if (s.type !== 'store') throw new AppError('validation_failed', `Location '${s.code}' is not a store: only a store captures Order in Store`);
    store = { code: s.code, id: s.id };
  }

  const groups = input.deliveryGroups.map((g, i) => ({ ...g, groupId: g.groupId ?? `G${i + 1}` }));
  const gids = groups.map((g) => g.groupId);
  const dupGroup = gids.find((id, i) => gids.indexOf(id) !== i);
  if (dupGroup) throw new AppError('validation_failed', `Delivery group '${dupGroup}' is listed twice`);
  const lines = input.lines as Array<CaptureLine & { lineId: string }>;
  const lids = lines.map((l) => l.lineId);
  const dupLine = lids.find((id, i) => lids.indexOf(id) !== i);
  if (dupLine) throw new AppError('validation_failed', `Line id '${dupLine}' is used twice`);
  for (const l of lines) {
    if (l.group === undefined) {
      if (groups.length > 1) throw new AppError('validation_failed', `Line ${l.lineId} must name its delivery group: the order has ${groups.length}`);
    } else if (!gids.includes(l.group)) throw new AppError('validation_failed', `Line ${l.lineId} names delivery group '${l.group}', which the order does not have`);
  }
  const groupOf = (l: (typeof lines)[number]) => l.group ?? groups[0].groupId;

  const { problems } = checkTotals(
    lines.map((l) => ({ lineId: l.lineId, quantity: l.quantity, unitPrice: l.unitPrice, discount: l.discount ?? 0, tax: l.tax ?? 0 })),
    groups.map((g) => g.shippingPrice ?? 0),
    input.totals,
    input.taxIncluded,
  );
  if (problems.length) throw new AppError('totals_mismatch', `The order does not add up: ${problems.join('; ')}`, { problems });
  const tendered = input.tenders.reduce((s, t) => s + t.amount, 0);
  if (input.tenders.length && tendered !== input.totals.total) {
    throw new AppError('totals_mismatch', `The tenders add up to ${tendered}, not the order total ${input.totals.total}`, { problems: [`tenders ${tendered} ≠ total ${input.totals.total}`] });
  }

  return groups.map((g) => {
    const own = lines.filter((l) => groupOf(l) === g.groupId);
    if (own.length === 0) throw new AppError('validation_failed', `Delivery group '${g.groupId}' has no lines`);
    const exclude = store && g.mode !== 'in_store' ? [store.code] : [];
    let delivery: SourcingRequest['delivery'];
    switch (g.mode) {
      case 'home': {
        if (!g.address) throw new AppError('validation_failed', `Delivery group '${g.groupId}' is home delivery: it needs an address`);
        assertCountry(g.address.country);
        delivery = { mode: 'home', country: g.address.country, postalCode: g.address.postalCode, city: g.address.city, latitude: g.address.latitude ?? null, longitude: g.address.longitude ?? null };
        break;
      }
      case 'pickup_point': {
        if (!g.relayPoint) throw new AppError('validation_failed', `Delivery group '${g.groupId}' is pickup_point delivery: it needs relay_point (id and address)`);
        const a = g.relayPoint.address;
        assertCountry(a.country);
        delivery = { mode: 'pickup_point', country: a.country, postalCode: a.postalCode, city: a.city, latitude: a.latitude ?? null, longitude: a.longitude ?? null };
        break;
      }
      case 'click_and_collect':
      case 'in_store': {
        const pickup = g.pickupLocation ?? (g.mode === 'in_store' ? store?.code : undefined);
        if (!pickup) throw new AppError('validation_failed', `Delivery group '${g.groupId}' is ${g.mode}: it needs pickup_location (a store code)`);
        delivery = { mode: g.mode, pickupLocation: pickup };
        break;
      }
    }
    return {
      groupId: g.groupId,
      group: g,
      request: {
        channel: input.channel,
        currency: input.currency,
        value: input.totals.total,
        lines: own.map((l) => ({ lineId: l.lineId, sku: l.sku, quantity: l.quantity, unitPrice: l.unitPrice })),
        delivery,
        excludeLocations: exclude,
        promisedBy: input.promisedBy ?? null,
        carrierService: g.carrierService ?? null,
        serviceLevel: g.serviceLevel ?? null,
      },
    };
  });
}

function buildAggregate(
  ctx: Ctx,
  input: CaptureInput,
  orderId: string,
  requests: GroupRequest[],
  groups: GroupsSourced<unknown>['groups'],
  now: number,
  expiresAt: number,
  actor: ActorRef,
): OrderAggregate {
  const p = ctx.projection;
  const store = input.store ? p.location(input.store) : undefined;
  const lines: OrderLineRow[] = [];
  const fulfillments: FulfillmentAggregate[] = [];
  requests.forEach((r, gi) => {
    const sourced = groups[gi];
    const plan = sourced.result.plan;
    for (const l of plan.lines) {
      const src = input.lines.find((x) => x.lineId === l.lineId) as CaptureLine;
      const allocated = l.allocations.reduce((s, a) => s + a.quantity, 0);
      const backordered = l.backorders.reduce((s, b) => s + b.quantity, 0);
      lines.push({
        order_id: orderId,
        line_id: l.lineId,
        group_id: r.groupId,
        sku_id: (p.sku(l.sku) as { id: number }).id,
        quantity: l.quantity,
        unit_price: src.unitPrice,
        discount: src.discount ?? 0,
        tax: src.tax ?? 0,
        allocated,
        backordered,
        cancelled: l.quantity - allocated - backordered,
        shipped: 0,
      });
    }
    fulfillments.push(...fulfillmentsFor(ctx, orderId, r.groupId, sourced.result, sourced.allocations, sourced.supply, now));
  });
  const t = input.totals;
  const email = input.customer.email?.trim().toLowerCase() || null;
  return {
    order: {
      id: orderId,
      channel_id: (p.channel(input.channel) as { id: number }).id,
      external_reference: input.externalReference,
      status: 'pending_payment',
      currency: input.currency,
      customer_email: email,
      customer: JSON.stringify({ name: input.customer.name ?? null, email, phone: input.customer.phone ?? null }),
      billing_address: input.billingAddress ? JSON.stringify(input.billingAddress) : null,
      subtotal: t.subtotal,
      discount_total: t.discount,
      tax_total: t.tax,
      shipping_total: t.shipping,
      total: t.total,
      tenders: JSON.stringify(input.tenders),
      captured_by: actor.keyId,
      store_location_id: store?.id ?? null,
      associate: input.associate ?? null,
      excluded_location_ids: JSON.stringify(store ? [store.id] : []),
      validated_at: null,
      validated_by: null,
      expires_at: expiresAt,
      closed_at: null,
      close_reason: null,
      version: 1,
      created_at: now,
      updated_at: now,
      number: null,
      tracking_token_hash: null,
      tracking_expires_at: null,
    },
    lines,
    groups: requests.map((r) => ({
      order_id: orderId,
      group_id: r.groupId,
      mode: r.group.mode,
      address: r.group.address ? JSON.stringify(r.group.address) : null,
      pickup_location_id: r.request.delivery.pickupLocation ? ((p.location(r.request.delivery.pickupLocation) as { id: number }).id ?? null) : null,
      relay_point: r.group.relayPoint ? JSON.stringify(r.group.relayPoint) : null,
      service_level: r.group.serviceLevel ?? null,
      carrier_service: r.group.carrierService ?? null,
      shipping_price: r.group.shippingPrice ?? 0,
    })),
    fulfillments,
  };
}

/**
 * One fulfilment order per shipment of the plan (a location, stock or backorder), each line
 * carrying the reservation that holds its units; a backorder instead holds its incoming
 * supply (`supply`: what sourceAndReserveGroups took for the group), one allocation row per
 * supply row and line, written with the fulfilment order.
 */
export function fulfillmentsFor(
  ctx: Ctx,
  orderId: string,
  groupId: string,
  result: SourcingResult,
  allocations: GroupsSourced<unknown>['groups'][number]['allocations'],
  supply: GroupsSourced<unknown>['groups'][number]['supply'],
  now: number,
): FulfillmentAggregate[] {
  const p = ctx.projection;
  return result.plan.shipments.map((s) => {
    const id = newId('ful');
    const locationId = (p.location(s.location) as { id: number }).id;
    const held = s.backorder ? supply.filter((h) => h.locationId === locationId && s.lines.some((l) => l.lineId === h.lineId)) : [];
    return {
      id,
      order_id: orderId,
      group_id: groupId,
      location_id: locationId,
      status: 'created',
      mode: s.mode,
      backorder: s.backorder ? 1 : 0,
      ready_date: s.readyDate,
      carrier_service: s.carrier?.service ?? null,
      estimated_delivery: s.carrier?.estimatedDelivery ?? null,
      accept_by: null,
      reason: null,
      tracking: null,
      version: 1,
      created_at: now,
      updated_at: now,
      lines: s.lines.map((l) => ({
        fulfillment_id: id,
        line_id: l.lineId,
        sku_id: (p.sku(l.sku) as { id: number }).id,
        quantity: l.quantity,
        picked: null,
        shipped: 0,
        reservation_id: s.backorder ? null : (allocations.find((a) => a.lineId === l.lineId && a.location === s.location)?.reservation.id ?? null),
      })),
      supplyAllocations: held.map((h) => ({ id: newId('sal'), supply_id: h.supplyId, order_id: orderId, fulfillment_id: id, line_id: h.lineId, quantity: h.quantity, status: 'active' as const, created_at: now, updated_at: now })),
    };
  });
}

/** Keeps why the order was sourced as it was: the rule set and, per line, what won and why. */
export async function recordDecisions(
  trx: Trx,
  orderId: string,
  reason: string,
  groups: Array<{ ruleSet: { version: number | null; name: string }; result: SourcingResult }>,
  now: number,
): Promise<void> {
  const rows = groups.map((g) => ({ order_id: orderId, reason, rule_set_version: g.ruleSet.version, decision: JSON.stringify(decisionRecord(g.ruleSet, g.result)), created_at: now }));
  await trx.insertInto('order_sourcing').values(rows).execute();
}

/** recordDecisions, added to a batch (nothing runs). */
export function addDecisionsTo(
  batch: WriteBatch,
  orderId: string,
  reason: string,
  groups: Array<{ ruleSet: { version: number | null; name: string }; result: SourcingResult }>,
  now: number,
): void {
  const rows = groups.map((g) => ({ rule_set_version: g.ruleSet.version, decision: JSON.stringify(decisionRecord(g.ruleSet, g.result)) }));
  batch.insert(
    'order_sourcing',
    [
      ['rule_set_version', 'integer'],
      ['decision', 'text'],
    ],
    rows.map((r) => [r.rule_set_version, r.decision]),
    '',
    [
      ['order_id', 'text', orderId],
      ['reason', 'text', reason],
      ['created_at', 'bigint', now],
    ],
  );
}

export function decisionRecord(ruleSet: { version: number | null; name: string }, r: SourcingResult) {
  const e = r.explanation;
  return {
    rule_set: ruleSet,
    destination: e.destination,
    strategies: e.strategies,
    lines: e.lines.map((l) => ({ line_id: l.lineId, strategy: l.strategy, why: l.why, chosen: l.chosen, fallbacks: l.fallbacks })),
    attempts: e.attempts.map((a) => ({ strategy: a.strategy, via: a.via, lines: a.lines, split: a.split, notes: a.notes, outcomes: a.outcomes })),
    carriers: e.carriers.map((c) => ({ location: c.location, chosen: c.chosen, reason: c.reason })),
    shipments: r.plan.shipments.map((s) => ({ location: s.location, mode: s.mode, backorder: s.backorder, ready_date: s.readyDate, lines: s.lines.map((l) => ({ line_id: l.lineId, quantity: l.quantity })) })),
    fill_rate: r.plan.fillRate,
  };
}
