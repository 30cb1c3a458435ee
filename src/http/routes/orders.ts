// Orders over HTTP: capture (idempotent two ways), reads within the caller's scope, the
// timeline and sourcing decisions, and the changes (validate, cancel, address, notes).
// Thin: the use cases live in src/orders.
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import type { Principal } from '../../auth/keys.ts';
import type { Ctx } from '../../context.ts';
import { type ActorRef, type Address, type CaptureInput, captureOrder } from '../../orders/capture.ts';
import { addNote, cancelOrder, changeDeliveryAddress, requireOrder, validateOrder } from '../../orders/changes.ts';
import { abandonIdempotent, beginIdempotent, completeIdempotent, requestHash } from '../../orders/idempotency.ts';
import { FULFILLMENT_STATUSES, ORDER_DELIVERY_MODES, ORDER_STATUSES, TENDER_METHODS } from '../../orders/model.ts';
import { canSeeOrder, MAX_ORDER_PAGE, type OrderScope, orderTimeline, searchOrders, sourcingDecisions } from '../../orders/queries.ts';
import type { OrderAggregate } from '../../orders/repository.ts';
import { iso } from '../../shared/clock.ts';
import { AppError, notFound } from '../../shared/errors.ts';
import type { App } from '../app.ts';
import { requireRole } from '../app.ts';
import { batchCap, Code, Enum, NonNegInt, security, withErrors, Nullable } from '../schemas.ts';

const MAX_LINES = 200;
const MAX_GROUPS = 20;
const Money = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Minor units (cents).' });
const Text = (max: number) => Type.String({ minLength: 1, maxLength: max });

// ---- request ---------------------------------------------------------------------------------

export const AddressIn = Type.Object(
  {
    name: Type.Optional(Text(200)),
    line1: Text(200),
    line2: Type.Optional(Type.String({ maxLength: 200 })),
    postal_code: Text(20),
    city: Text(200),
    country: Type.String({ pattern: '^[A-Za-z]{2}$', description: 'ISO 3166-1 alpha-2.' }),
    latitude: Type.Optional(Type.Number({ minimum: -90, maximum: 90 })),
    longitude: Type.Optional(Type.Number({ minimum: -180, maximum: 180 })),
    phone: Type.Optional(Type.String({ maxLength: 40 })),
  },
  { additionalProperties: false },
);
const RelayPointIn = Type.Object({ id: Text(100), name: Type.Optional(Text(200)), address: AddressIn }, { additionalProperties: false });

const CaptureBody = Type.Object(
  {
    external_reference: Type.String({ minLength: 1, maxLength: 200, description: "The channel's own order reference: unique per channel. Capturing it again returns the stored order (200)." }),
    channel: Type.Optional(Type.String({ ...Code, description: "Defaults to the key's channel (store keys: their POS channel)." })),
    store: Type.Optional(Type.String({ ...Code, description: 'Order in Store: the capturing store (store keys: one of theirs; default when they have one). The store is excluded from sourcing.' })),
    associate: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Order in Store: who captured it (an associate id or name).' })),
    customer: Type.Object({ name: Type.Optional(Text(200)), email: Type.Optional(Type.String({ format: 'email', maxLength: 254 })), phone: Type.Optional(Type.String({ maxLength: 40 })) }, { additionalProperties: false }),
    billing_address: Type.Optional(AddressIn),
    currency: Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217.' }),
    tax_included: Type.Optional(Type.Boolean({ default: true, description: 'Unit prices include tax (default, European retail): the total does not add tax again.' })),
    lines: Type.Array(
      Type.Object(
        {
          line_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'L1, L2… by default.' })),
          sku: Code,
          quantity: Type.Integer({ minimum: 1, maximum: 100_000 }),
          unit_price: Money,
          discount: Type.Optional(Money),
          tax: Type.Optional(Money),
          delivery_group: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'The group_id; optional with one delivery group.' })),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: MAX_LINES, description: `1 to ${MAX_LINES} lines (more: page_too_large).` },
    ),
    delivery_groups: Type.Array(
      Type.Object(
        {
          group_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'G1, G2… by default.' })),
          mode: Enum(ORDER_DELIVERY_MODES),
          address: Type.Optional(AddressIn),
          relay_point: Type.Optional(RelayPointIn),
          pickup_location: Type.Optional(Type.String({ ...Code, description: 'click_and_collect, in_store: the store (location code).' })),
          service_level: Type.Optional(Enum(['standard', 'express'] as const)),
          carrier_service: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Pin a carrier service code.' })),
          shipping_price: Type.Optional(Money),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: MAX_GROUPS },
    ),
    totals: Type.Object({ subtotal: Money, discount: Money, tax: Money, shipping: Money, total: Money }, { additionalProperties: false, description: 'Checked against the lines: a mismatch is 422 totals_mismatch.' }),
    tenders: Type.Optional(
      Type.Array(Type.Object({ method: Enum(TENDER_METHODS), amount: Money }, { additionalProperties: false }), { maxItems: 10, description: 'Intended tenders; their sum must be the total. Payment itself: the payments API.' }),
    ),
    promised_by: Type.Optional(Type.String({ format: 'date-time', description: 'Delivery promised to the customer by then: carriers must keep it.' })),
  },
  { additionalProperties: false },
);
type CaptureIn = Static<typeof CaptureBody>;

const toAddress = (a: Static<typeof AddressIn>): Address => ({
  name: a.name ?? null,
  line1: a.line1,
  line2: a.line2 ?? null,
  postalCode: a.postal_code,
  city: a.city,
  country: a.country.toUpperCase(),
  latitude: a.latitude ?? null,
  longitude: a.longitude ?? null,
  phone: a.phone ?? null,
});
const fromAddress = (a: Address | null) =>
  a && { name: a.name ?? null, line1: a.line1, line2: a.line2 ?? null, postal_code: a.postalCode, city: a.city, country: a.country, latitude: a.latitude ?? null, longitude: a.longitude ?? null, phone: a.phone ?? null };

function toCapture(b: CaptureIn, channel: string, store: string | null): CaptureInput {
  return {
    channel,
    externalReference: b.external_reference,
    customer: { name: b.customer.name ?? null, email: b.customer.email ?? null, phone: b.customer.phone ?? null },
    billingAddress: b.billing_address ? toAddress(b.billing_address) : null,
    currency: b.currency,
    taxIncluded: b.tax_included ?? true,
    lines: b.lines.map((l) => ({ lineId: l.line_id, sku: l.sku, quantity: l.quantity, unitPrice: l.unit_price, discount: l.discount, tax: l.tax, group: l.delivery_group })),
    deliveryGroups: b.delivery_groups.map((g) => ({
      groupId: g.group_id,
      mode: g.mode,
      address: g.address ? toAddress(g.address) : null,
      relayPoint: g.relay_point ? { id: g.relay_point.id, name: g.relay_point.name ?? null, address: toAddress(g.relay_point.address) } : null,
      pickupLocation: g.pickup_location ?? null,
      serviceLevel: g.service_level ?? null,
      carrierService: g.carrier_service ?? null,
      shippingPrice: g.shipping_price ?? 0,
    })),
    totals: b.totals,
    tenders: b.tenders ?? [],
    promisedBy: b.promised_by === undefined ? null : Date.parse(b.promised_by),
    store,
    associate: b.associate ?? null,
  };
}

// ---- response --------------------------------------------------------------------------------

const AddressOut = Type.Object({
  name: Nullable(Type.String()),
  line1: Type.String(),
  line2: Nullable(Type.String()),
  postal_code: Type.String(),
  city: Type.String(),
  country: Type.String(),
  latitude: Nullable(Type.Number()),
  longitude: Nullable(Type.Number()),
  phone: Nullable(Type.String()),
});
export const FulfillmentOut = Type.Object({
  id: Type.String(),
  order_id: Type.String(),
  delivery_group: Type.String(),
  location: Type.String(),
  status: Enum(FULFILLMENT_STATUSES),
  mode: Type.String({ description: 'The delivery mode, or store_transfer when goods travel to the pickup store first.' }),
  backorder: Type.Boolean({ description: 'Waiting for incoming stock: released by hand once it is in.' }),
  ready_date: Type.String({ description: 'YYYY-MM-DD the goods can leave.' }),
  carrier_service: Nullable(Type.String()),
  estimated_delivery: Nullable(Type.String()),
  accept_by: Nullable(Type.String({ description: 'Released: the location must accept by then, or the work is re-sourced.' })),
  reason: Nullable(Type.String()),
  tracking: Nullable(Type.String()),
  version: Type.Integer(),
  created_at: Type.String(),
  updated_at: Type.String(),
  lines: Type.Array(Type.Object({ line_id: Type.String(), sku: Type.String(), quantity: Type.Integer(), picked: Nullable(Type.Integer()), shipped: Type.Integer() })),
});
export const OrderOut = Type.Object({
  id: Type.String(),
  number: Nullable(Type.String({ description: 'The public order number (per-channel series), given on validation.' })),
  channel: Type.String(),
  external_reference: Type.String(),
  status: Enum(ORDER_STATUSES),
  currency: Type.String(),
  customer: Type.Object({ name: Nullable(Type.String()), email: Nullable(Type.String()), phone: Nullable(Type.String()) }),
  billing_address: Nullable(AddressOut),
  totals: Type.Object({ subtotal: Type.Integer(), discount: Type.Integer(), tax: Type.Integer(), shipping: Type.Integer(), total: Type.Integer() }),
  tenders: Type.Array(Type.Object({ method: Type.String(), amount: Type.Integer() })),
  store: Nullable(Type.String({ description: 'Order in Store: the capturing store.' })),
  associate: Nullable(Type.String()),
  expires_at: Nullable(Type.String({ description: 'Unpaid: when it expires and its stock is released.' })),
  validated_at: Nullable(Type.String()),
  version: Type.Integer(),
  created_at: Type.String(),
  updated_at: Type.String(),
  lines: Type.Array(
    Type.Object({
      line_id: Type.String(),
      sku: Type.String(),
      quantity: Type.Integer(),
      unit_price: Type.Integer(),
      discount: Type.Integer(),
      tax: Type.Integer(),
      delivery_group: Type.String(),
      allocated: Type.Integer({ description: 'Units reserved at fulfilment orders (quantity = allocated + backordered + cancelled).' }),
      backordered: Type.Integer(),
      cancelled: Type.Integer(),
      shipped: Type.Integer(),
    }),
  ),
  delivery_groups: Type.Array(
    Type.Object({
      group_id: Type.String(),
      mode: Type.String(),
      address: Nullable(AddressOut),
      relay_point: Nullable(Type.Object({ id: Type.String(), name: Nullable(Type.String()), address: AddressOut })),
      pickup_location: Nullable(Type.String()),
      service_level: Nullable(Type.String()),
      carrier_service: Nullable(Type.String()),
      shipping_price: Type.Integer(),
    }),
  ),
  fulfillment_orders: Type.Array(FulfillmentOut, { description: 'Store and integration keys see only their own locations’ fulfilment orders.' }),
});

export function fulfillmentOut(ctx: Ctx, f: OrderAggregate['fulfillments'][number]) {
  const p = ctx.projection;
  return {
    id: f.id,
    order_id: f.order_id,
    delivery_group: f.group_id,
    location: p.locationById(f.location_id)?.code ?? String(f.location_id),
    status: f.status as (typeof FULFILLMENT_STATUSES)[number],
    mode: f.mode,
    backorder: f.backorder === 1,
    ready_date: f.ready_date,
    carrier_service: f.carrier_service,
    estimated_delivery: f.estimated_delivery,
    accept_by: iso(f.accept_by),
    reason: f.reason,
    tracking: f.tracking,
    version: f.version,
    created_at: iso(f.created_at) as string,
    updated_at: iso(f.updated_at) as string,
    lines: f.lines.map((l) => ({ line_id: l.line_id, sku: p.skuById(l.sku_id)?.code ?? String(l.sku_id), quantity: l.quantity, picked: l.picked, shipped: l.shipped })),
  };
}

export function orderOut(ctx: Ctx, a: OrderAggregate, visibleLocations: readonly number[] | null = null) {
  const p = ctx.projection;
  const o = a.order;
  const customer = JSON.parse(o.customer) as { name: string | null; email: string | null; phone: string | null };
  const captured = visibleLocations && o.store_location_id !== null && visibleLocations.includes(o.store_location_id);
  return {
    id: o.id,
    number: o.number,
    channel: p.allChannels().find((c) => c.id === o.channel_id)?.code ?? String(o.channel_id),
    external_reference: o.external_reference,
    status: o.status as (typeof ORDER_STATUSES)[number],
    currency: o.currency,
    customer,
    billing_address: fromAddress(o.billing_address ? JSON.parse(o.billing_address) : null),
    totals: { subtotal: o.subtotal, discount: o.discount_total, tax: o.tax_total, shipping: o.shipping_total, total: o.total },
    tenders: JSON.parse(o.tenders),
    store: o.store_location_id === null ? null : (p.locationById(o.store_location_id)?.code ?? null),
    associate: o.associate,
    expires_at: iso(o.expires_at),
    validated_at: iso(o.validated_at),
    version: o.version,
    created_at: iso(o.created_at) as string,
    updated_at: iso(o.updated_at) as string,
    lines: a.lines.map((l) => ({
      line_id: l.line_id,
      sku: p.skuById(l.sku_id)?.code ?? String(l.sku_id),
      quantity: l.quantity,
      unit_price: l.unit_price,
      discount: l.discount,
      tax: l.tax,
      delivery_group: l.group_id,
      allocated: l.allocated,
      backordered: l.backordered,
      cancelled: l.cancelled,
      shipped: l.shipped,
    })),
    delivery_groups: a.groups.map((g) => {
      const rp = g.relay_point ? (JSON.parse(g.relay_point) as { id: string; name?: string | null; address: Address }) : null;
      return {
        group_id: g.group_id,
        mode: g.mode,
        address: fromAddress(g.address ? JSON.parse(g.address) : null),
        relay_point: rp && { id: rp.id, name: rp.name ?? null, address: fromAddress(rp.address) as NonNullable<ReturnType<typeof fromAddress>> },
        pickup_location: g.pickup_location_id === null ? null : (p.locationById(g.pickup_location_id)?.code ?? null),
        service_level: g.service_level,
        carrier_service: g.carrier_service,
        shipping_price: g.shipping_price,
      };
    }),
    fulfillment_orders: a.fulfillments.filter((f) => !visibleLocations || captured || visibleLocations.includes(f.location_id)).map((f) => fulfillmentOut(ctx, f)),
  };
}

// ---- scope -----------------------------------------------------------------------------------

export const actorOf = (p: Principal): ActorRef => ({ keyId: p.keyId, name: p.name, role: p.role });

export function scopeOf(p: Principal): OrderScope {
  if (p.role === 'admin') return { kind: 'all' };
  if (p.role === 'channel') return { kind: 'channel', channelId: p.channelId ?? -1 };
  return { kind: 'locations', locationIds: p.locationIds };
}

/** The order, if the caller may see it; otherwise not found (another channel's order does not exist for it). */
export async function visibleOrder(ctx: Ctx, p: Principal, id: string): Promise<OrderAggregate> {
  if (!(await canSeeOrder(ctx, scopeOf(p), id))) throw notFound(`Order '${id}'`);
  return requireOrder(ctx, id);
}

/** Changes (cancel, address) are for the admin, the order's channel, and the store that captured it. */
export async function changeableOrder(ctx: Ctx, p: Principal, id: string): Promise<OrderAggregate> {
  const a = await visibleOrder(ctx, p, id);
  if (p.role === 'integration') throw new AppError('forbidden', 'An integration key cannot change orders');
  if (p.role === 'store' && (a.order.store_location_id === null || !p.locationIds.includes(a.order.store_location_id))) {
    throw new AppError('forbidden', 'A store can change only the orders it captured');
  }
  return a;
}

const visibleTo = (p: Principal) => (p.role === 'store' || p.role === 'integration' ? p.locationIds : null);

/** Channel and store of a capture, from the key and the body. */
function captureScope(ctx: Ctx, p: Principal, b: CaptureIn): { channel: string; store: string | null } {
  if (p.role === 'channel') {
    if (b.channel && b.channel !== p.channel) throw new AppError('unknown_channel', `Channel '${b.channel}' does not exist`);
    if (b.store) throw new AppError('forbidden', 'Only a store key (or an admin) captures an Order in Store');
    return { channel: p.channel as string, store: null };
  }
  if (p.role === 'store') {
    const own = p.locationIds.map((id) => ctx.projection.locationById(id)?.code).filter((c): c is string => !!c);
    const store = b.store ?? (own.length === 1 ? own[0] : undefined);
    if (!store) throw new AppError('validation_failed', 'This key acts for several stores: name the capturing one in body.store');
    if (!own.includes(store)) throw new AppError('unknown_location', `Location '${store}' does not exist`);
    // A store captures into its own channel, or (a key without one) a store-type (POS) channel.
    const pos = ctx.projection.allChannels().filter((c) => c.type === 'store').map((c) => c.code);
    if (b.channel && (p.channel ? b.channel !== p.channel : !pos.includes(b.channel))) throw new AppError('unknown_channel', `Channel '${b.channel}' does not exist`);
    const channel = b.channel ?? p.channel ?? pos[0];
    if (!channel) throw new AppError('validation_failed', 'No store (POS) channel exists: name the channel in body.channel');
    return { channel, store };
  }
  if (!b.channel) throw new AppError('validation_failed', 'Name the channel: body.channel');
  return { channel: b.channel, store: b.store ?? null };
}

export async function replayable(
  ctx: Ctx,
  req: { principal: Principal | null; headers: Record<string, unknown>; method: string; url: string; body: unknown },
  reply: FastifyReply,
  run: () => Promise<{ status: number; payload: unknown }>,
): Promise<string> {
  const key = req.headers['idempotency-key'];
  const p = req.principal as Principal;
  // The body is sent pre-serialised (a string): say it is JSON, or Fastify labels it text/plain.
  reply.header('content-type', 'application/json; charset=utf-8');
  if (typeof key !== 'string') {
    const r = await run();
    reply.status(r.status);
    return reply.serializeInput(r.payload as Record<string, unknown>, String(r.status)) as string;
  }
  const hash = requestHash(req.method, req.url.split('?')[0], req.body);
  const begun = await beginIdempotent(ctx, p.keyId, key, hash);
  if (begun.kind === 'replay') {
    reply.status(begun.status).header('idempotent-replayed', 'true');
    return begun.body;
  }
  try {
    const r = await run();
    const body = reply.serializeInput(r.payload as Record<string, unknown>, String(r.status)) as string;
    await completeIdempotent(ctx, p.keyId, key, r.status, body);
    reply.status(r.status);
    return body;
  } catch (e) {
    await abandonIdempotent(ctx, p.keyId, key, begun.lease).catch(() => {});
    throw e;
  }
}

// ---- routes ----------------------------------------------------------------------------------

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });

export function registerOrderRoutes(app: App, ctx: Ctx): void {
  const tags = ['orders'];

  app.post(
    '/orders',
    {
      schema: {
        tags,
        summary: 'Capture an order: checked, sourced and reserved atomically, stored pending payment',
        description: [
          'Channel keys capture for their channel; store keys capture Order in Store (the store is excluded from sourcing; delivery home or back to the store); admin keys name the channel.',
          'Idempotent two ways: (channel, external_reference) is unique (the same order again returns it, 200), and an `Idempotency-Key` header replays the first successful response byte for byte (same key, other body: 422 idempotency_key_reused; still running: 409 idempotency_in_flight). Keys belong to the API key and are kept 24 h.',
          'If any line cannot be sourced, nothing is stored: 409 out_of_stock with details.lines.',
        ].join('\n\n'),
        security,
        headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'Printable ASCII, at most 255 characters.' })) }),
        body: CaptureBody,
        response: withErrors({ 200: OrderOut, 201: OrderOut }),
      },
      preValidation: batchCap('lines', MAX_LINES),
    },
    async (req, reply) => {
      const p = requireRole(req, 'channel', 'store');
      return replayable(ctx, req, reply, async () => {
        const { channel, store } = captureScope(ctx, p, req.body);
        const { order, created } = await captureOrder(ctx, toCapture(req.body, channel, store), actorOf(p));
        // The reference is taken by an order this key may not see (another store on the same POS channel): say so, show nothing.
        if (!created && !(await canSeeOrder(ctx, scopeOf(p), order.order.id))) {
          throw new AppError('conflict', `External reference '${req.body.external_reference}' is already used in channel '${channel}'`);
        }
        return { status: created ? 201 : 200, payload: orderOut(ctx, order, visibleTo(p)) };
      });
    },
  );

  app.get(
    '/orders',
    {
      schema: {
        tags,
        summary: 'Search orders, newest first, within your scope',
        description: `Channel keys see their channel's orders; store and integration keys the orders their locations fulfil or captured. At most ${MAX_ORDER_PAGE} per page.`,
        security,
        querystring: Type.Object(
          {
            status: Type.Optional(Type.Array(Enum(ORDER_STATUSES), { maxItems: ORDER_STATUSES.length, description: 'One or more (repeat the parameter).' })),
            channel: Type.Optional(Code),
            location: Type.Optional(Type.String({ ...Code, description: 'Orders a location fulfils (or captured, Order in Store).' })),
            from: Type.Optional(Type.String({ format: 'date-time', description: 'Created at or after.' })),
            to: Type.Optional(Type.String({ format: 'date-time', description: 'Created before.' })),
            email: Type.Optional(Type.String({ maxLength: 254 })),
            external_reference: Type.Optional(Type.String({ maxLength: 200 })),
            sku: Type.Optional(Code),
            limit: Type.Optional(Type.Integer({ minimum: 1, default: 50, description: `Page size; at most ${MAX_ORDER_PAGE} (more: page_too_large).` })),
            after: Type.Optional(Type.String({ maxLength: 64, description: 'Cursor: the next_cursor of the previous page.' })),
          },
          { additionalProperties: false },
        ),
        response: withErrors({ 200: Type.Object({ items: Type.Array(OrderOut), next_cursor: Nullable(Type.String()) }) }),
      },
    },
    async (req) => {
      const p = requireRole(req, 'channel', 'store', 'integration');
      const q = req.query;
      const { ids, next } = await searchOrders(ctx, scopeOf(p), {
        status: q.status,
        channel: q.channel,
        location: q.location,
        from: q.from === undefined ? undefined : Date.parse(q.from),
        to: q.to === undefined ? undefined : Date.parse(q.to),
        email: q.email,
        externalReference: q.external_reference,
        sku: q.sku,
        limit: q.limit ?? 50,
        after: q.after,
      });
      const items = [];
      for (const id of ids) items.push(orderOut(ctx, await requireOrder(ctx, id), visibleTo(p)));
      return { items, next_cursor: next };
    },
  );

  app.get(
    '/orders/:id',
    { schema: { tags, summary: 'One order with its lines, delivery groups and fulfilment orders', security, params: IdParams, response: withErrors({ 200: OrderOut }) } },
    async (req) => {
      const p = requireRole(req, 'channel', 'store', 'integration');
      return orderOut(ctx, await visibleOrder(ctx, p, req.params.id), visibleTo(p));
    },
  );

  app.get(
    '/orders/:id/timeline',
    {
      schema: {
        tags,
        summary: 'The order timeline: who did what, when (its events and its fulfilment orders’, in order)',
        security,
        params: IdParams,
        response: withErrors({
          200: Type.Object({
            order_id: Type.String(),
            entries: Type.Array(
              Type.Object({
                seq: Type.Integer(),
                at: Type.String(),
                type: Type.String(),
                aggregate: Type.String(),
                aggregate_id: Type.String(),
                actor: Nullable(Type.Object({ key_id: Type.String(), name: Type.String(), role: Type.String() })),
                data: Type.Record(Type.String(), Type.Unknown()),
              }),
            ),
          }),
        }),
      },
    },
    async (req) => {
      const p = requireRole(req, 'channel', 'store', 'integration');
      const a = await visibleOrder(ctx, p, req.params.id);
      // Like the order body: a store or WMS sees only its own fulfilment orders' events (all, for the store that captured it).
      const shown = new Set(orderOut(ctx, a, visibleTo(p)).fulfillment_orders.map((f) => f.id));
      const entries = (await orderTimeline(ctx, a.order.id)).filter((e) => e.aggregate !== 'fulfillment_order' || shown.has(e.aggregateId));
      return { order_id: a.order.id, entries: entries.map((e) => ({ seq: e.seq, at: iso(e.at) as string, type: e.type, aggregate: e.aggregate, aggregate_id: e.aggregateId, actor: e.actor, data: e.data })) };
    },
  );

  app.get(
    '/orders/:id/sourcing',
    {
      schema: {
        tags,
        summary: 'Every sourcing decision taken for the order (capture, re-sourcing), with its explanation',
        security,
        params: IdParams,
        response: withErrors({
          200: Type.Object({
            order_id: Type.String(),
            decisions: Type.Array(Type.Object({ reason: Type.String(), rule_set_version: Nullable(Type.Integer()), at: Type.String(), decision: Type.Record(Type.String(), Type.Unknown()) })),
          }),
        }),
      },
    },
    async (req) => {
      const p = requireRole(req, 'channel', 'store');
      const a = await visibleOrder(ctx, p, req.params.id);
      // The decisions name every location of the order: a store sees them for orders it captured.
      if (p.role === 'store' && (a.order.store_location_id === null || !p.locationIds.includes(a.order.store_location_id))) {
        throw new AppError('forbidden', 'A store sees the sourcing decisions of the orders it captured only');
      }
      const decisions = await sourcingDecisions(ctx, a.order.id);
      return { order_id: a.order.id, decisions: decisions.map((d) => ({ reason: d.reason, rule_set_version: d.ruleSetVersion, at: iso(d.at) as string, decision: d.decision })) };
    },
  );

  app.post(
    '/orders/:id/validate',
    {
      schema: {
        tags,
        summary: 'Admin: validate the order by hand (manual tenders: bank transfer, cash on delivery, purchase order) and release its fulfilment orders',
        description: 'Recorded on the timeline with who did it. Validating a validated order changes nothing (200, changed: false).',
        security,
        params: IdParams,
        body: Type.Optional(Type.Object({ note: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false })),
        response: withErrors({ 200: Type.Object({ changed: Type.Boolean(), order: OrderOut }) }),
      },
    },
    async (req) => {
      const p = requireRole(req);
      const r = await validateOrder(ctx, req.params.id, actorOf(p), 'manual', req.body?.note || null);
      return { changed: r.changed, order: orderOut(ctx, await requireOrder(ctx, req.params.id)) };
    },
  );

  app.post(
    '/orders/:id/cancel',
    {
      schema: {
        tags,
        summary: 'Cancel the whole order, or some lines, before they ship: their stock is released',
        description: 'Without `lines`, everything not yet shipped is cancelled. Asking for more than can still be cancelled is 409 invalid_state and changes nothing.',
        security,
        params: IdParams,
        body: Type.Object(
          {
            lines: Type.Optional(Type.Array(Type.Object({ line_id: Type.String({ minLength: 1, maxLength: 64 }), quantity: Type.Integer({ minimum: 1, maximum: 100_000 }) }, { additionalProperties: false }), { minItems: 1, maxItems: MAX_LINES })),
            reason: Type.Optional(Type.String({ maxLength: 500 })),
          },
          { additionalProperties: false },
        ),
        response: withErrors({ 200: OrderOut }),
      },
    },
    async (req) => {
      const p = requireRole(req, 'channel', 'store');
      await changeableOrder(ctx, p, req.params.id);
      await cancelOrder(ctx, req.params.id, { lines: req.body.lines?.map((l) => ({ lineId: l.line_id, quantity: l.quantity })), reason: req.body.reason ?? null }, actorOf(p));
      return orderOut(ctx, await requireOrder(ctx, req.params.id), visibleTo(p));
    },
  );

  app.put(
    '/orders/:id/delivery-groups/:group/address',
    {
      schema: {
        tags,
        summary: 'Change the delivery address (or relay point) of a group before it is released; carriers are checked again',
        security,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }), group: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }),
        body: Type.Object({ address: Type.Optional(AddressIn), relay_point: Type.Optional(RelayPointIn) }, { additionalProperties: false }),
        response: withErrors({ 200: OrderOut }),
      },
    },
    async (req) => {
      const p = requireRole(req, 'channel', 'store');
      await changeableOrder(ctx, p, req.params.id);
      const b = req.body;
      await changeDeliveryAddress(
        ctx,
        req.params.id,
        req.params.group,
        { address: b.address ? toAddress(b.address) : undefined, relayPoint: b.relay_point ? { id: b.relay_point.id, name: b.relay_point.name ?? null, address: toAddress(b.relay_point.address) } : undefined },
        actorOf(p),
      );
      return orderOut(ctx, await requireOrder(ctx, req.params.id), visibleTo(p));
    },
  );

  app.post(
    '/orders/:id/notes',
    {
      schema: {
        tags,
        summary: 'Add a note to the order timeline',
        security,
        params: IdParams,
        body: Type.Object({ text: Type.String({ minLength: 1, maxLength: 2000 }) }, { additionalProperties: false }),
        response: withErrors({ 201: Type.Object({ order_id: Type.String(), version: NonNegInt }) }),
      },
    },
    async (req, reply) => {
      const p = requireRole(req, 'channel', 'store', 'integration');
      await visibleOrder(ctx, p, req.params.id);
      await addNote(ctx, req.params.id, req.body.text, actorOf(p));
      const a = await requireOrder(ctx, req.params.id);
      reply.status(201);
      return { order_id: a.order.id, version: a.order.version };
    },
  );
}
