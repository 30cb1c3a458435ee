// The order vocabulary (DOMAIN §2, §3): order and fulfilment-order states, the fulfilment
// state machine as data, the one function that derives an order's status, and the money
// check of a captured order. Pure: no I/O, no clock.

export const ORDER_STATUSES = [
  'pending_payment',
  'validated',
  'in_fulfilment',
  'partially_shipped',
  'shipped',
  'ready_for_pickup',
  'completed',
  'cancelled',
  'expired',
  'partially_returned',
  'returned',
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const ORDER_DELIVERY_MODES = ['home', 'pickup_point', 'click_and_collect', 'in_store'] as const;
export type OrderDeliveryMode = (typeof ORDER_DELIVERY_MODES)[number];

export const TENDER_METHODS = ['card', 'card_present', 'gift_card', 'bank_transfer', 'cash_on_delivery', 'purchase_order', 'wallet'] as const;
export type TenderMethod = (typeof TENDER_METHODS)[number];
/** Tenders with no payment operator behind them: an admin validates the order by hand. */
export const MANUAL_TENDERS: readonly TenderMethod[] = ['bank_transfer', 'cash_on_delivery', 'purchase_order'];

// ---- fulfilment orders -------------------------------------------------------------------

export const FULFILLMENT_STATUSES = [
  'created',
  'released',
  'accepted',
  'picking',
  'packed',
  'shipped',
  'delivered',
  'in_transit_to_store',
  'ready_for_pickup',
  'collected',
  'rejected',
  'cancelled',
] as const;
export type FulfillmentStatus = (typeof FULFILLMENT_STATUSES)[number];

export const FULFILLMENT_ACTIONS = ['release', 'accept', 'reject', 'pick', 'pack', 'ship', 'cancel'] as const;
export type FulfillmentAction = (typeof FULFILLMENT_ACTIONS)[number];

/** Who may ask for a transition: the fulfilling location (its store or WMS key), or the OMS/admin. */
export type Actor = 'location' | 'admin';

export interface TransitionRule {
  from: readonly FulfillmentStatus[];
  to: FulfillmentStatus;
  actors: readonly Actor[];
  event: string;
  /** Shown in the docs and the store app next to the button. */
  summary: string;
}

/**
 * The fulfilment state machine (DOMAIN §3). One table drives validation, the OpenAPI enum,
 * the docs and the tests. `ship` takes a store-to-store transfer to `in_transit_to_store`;
 * delivery, arrival at the pickup store and collection come with the shipping issue.
 */
export const FULFILLMENT_TRANSITIONS: Record<FulfillmentAction, TransitionRule> = {
  release: { from: ['created'], to: 'released', actors: ['admin'], event: 'fulfillment.released', summary: 'Send the work to the location (done on validation; by hand for backorders once stock is in).' },
  accept: { from: ['released'], to: 'accepted', actors: ['location', 'admin'], event: 'fulfillment.accepted', summary: 'The location takes the work on, before its deadline.' },
  reject: { from: ['released', 'accepted'], to: 'rejected', actors: ['location', 'admin'], event: 'fulfillment.rejected', summary: 'The location cannot do it (with a reason): the lines are re-sourced elsewhere.' },
  pick: { from: ['accepted'], to: 'picking', actors: ['location', 'admin'], event: 'fulfillment.picked', summary: 'Report the picked quantities; a short pick re-sources the missing units.' },
  pack: { from: ['picking'], to: 'packed', actors: ['location', 'admin'], event: 'fulfillment.packed', summary: 'The parcel is packed.' },
  ship: { from: ['packed'], to: 'shipped', actors: ['location', 'admin'], event: 'fulfillment.shipped', summary: 'Handed to the carrier (or to the customer): the stock leaves the location.' },
  cancel: { from: ['created', 'released', 'accepted', 'picking', 'packed'], to: 'cancelled', actors: ['admin'], event: 'fulfillment.cancelled', summary: 'Stop the work and release its stock (order or line cancellation).' },
};

export const TERMINAL_FULFILLMENT: readonly FulfillmentStatus[] = ['delivered', 'collected', 'rejected', 'cancelled'];
/** Statuses where the goods have left the location: its lines can no longer be cancelled. */
export const HANDED_OVER: readonly FulfillmentStatus[] = ['shipped', 'delivered', 'in_transit_to_store', 'ready_for_pickup', 'collected'];
/** Statuses that no longer count toward the order (the work went elsewhere or was stopped). */
export const DEAD: readonly FulfillmentStatus[] = ['rejected', 'cancelled'];

export type TransitionResult = { ok: true; to: FulfillmentStatus; event: string } | { ok: false; reason: string };

export function transition(status: FulfillmentStatus, action: FulfillmentAction, actor: Actor, mode?: string): TransitionResult {
  const rule = FULFILLMENT_TRANSITIONS[action];
  if (!rule.actors.includes(actor)) return { ok: false, reason: `Only ${rule.actors.join(' or ')} can ${action} a fulfilment order` };
  if (!rule.from.includes(status)) return { ok: false, reason: `Cannot ${action} a fulfilment order that is ${status} (allowed from: ${rule.from.join(', ')})` };
  const to = action === 'ship' && mode === 'store_transfer' ? 'in_transit_to_store' : rule.to;
  return { ok: true, to, event: rule.event };
}

// ---- order status --------------------------------------------------------------------------

export interface StatusInput {
  validated: boolean;
  /** Set when the whole order was closed without shipping: expired unpaid, or cancelled. */
  closeReason: 'expired' | 'cancelled' | null;
  lines: ReadonlyArray<{ quantity: number; cancelled: number; shipped: number; returned?: number }>;
  fulfillments: ReadonlyArray<{ status: FulfillmentStatus }>;
}

const PROGRESS: readonly FulfillmentStatus[] = ['accepted', 'picking', 'packed', 'in_transit_to_store'];

/**
 * The order's status, derived from its lines, fulfilment orders (and, later, payments and
 * returns), never set by hand (DOMAIN §2). First matching rule wins; see the table test.
 */
export function deriveOrderStatus(o: StatusInput): OrderStatus {
  if (o.closeReason === 'expired') return 'expired';
  const ordered = o.lines.reduce((s, l) => s + l.quantity, 0);
  const cancelled = o.lines.reduce((s, l) => s + l.cancelled, 0);
  if (o.closeReason === 'cancelled' || (ordered > 0 && cancelled >= ordered)) return 'cancelled';
  if (!o.validated) return 'pending_payment';
  const shipped = o.lines.reduce((s, l) => s + l.shipped, 0);
  const returned = o.lines.reduce((s, l) => s + (l.returned ?? 0), 0);
  if (returned > 0) return returned >= shipped ? 'returned' : 'partially_returned';
  const live = o.fulfillments.filter((f) => !DEAD.includes(f.status));
  if (live.length === 0) return 'validated';
  const done = live.filter((f) => f.status === 'delivered' || f.status === 'collected').length;
  if (done === live.length) return 'completed';
  const handed = live.filter((f) => HANDED_OVER.includes(f.status) && f.status !== 'in_transit_to_store').length;
  if (handed === live.length) return live.some((f) => f.status === 'ready_for_pickup') ? 'ready_for_pickup' : 'shipped';
  if (handed > 0) return 'partially_shipped';
  if (live.some((f) => PROGRESS.includes(f.status))) return 'in_fulfilment';
  return 'validated';
}

// ---- money ---------------------------------------------------------------------------------

export interface MoneyLine {
  lineId: string;
  quantity: number;
  unitPrice: number;
  /** Line discount, minor units (total for the line, not per unit). */
  discount: number;
  /** Line tax, minor units. */
  tax: number;
}

export interface Totals {
  subtotal: number;
  discount: number;
  tax: number;
  shipping: number;
  total: number;
}

/**
 * Recomputes the totals from the lines and shipping prices and lists every figure that does
 * not add up. With `taxIncluded` (European retail prices), tax is informational: the total is
 * subtotal − discount + shipping; otherwise tax is added.
 */
export function checkTotals(lines: readonly MoneyLine[], shipping: readonly number[], claimed: Totals, taxIncluded: boolean): { totals: Totals; problems: string[] } {
  const problems: string[] = [];
  for (const l of lines) {
    if (l.discount > l.quantity * l.unitPrice) problems.push(`line ${l.lineId}: discount ${l.discount} exceeds its value ${l.quantity * l.unitPrice}`);
  }
  const subtotal = lines.reduce((s, l) => s + l.quantity * l.unitPrice, 0);
  const discount = lines.reduce((s, l) => s + l.discount, 0);
  const tax = lines.reduce((s, l) => s + l.tax, 0);
  const ship = shipping.reduce((s, x) => s + x, 0);
  const total = subtotal - discount + ship + (taxIncluded ? 0 : tax);
  const totals = { subtotal, discount, tax, shipping: ship, total };
  for (const k of ['subtotal', 'discount', 'tax', 'shipping', 'total'] as const) {
    if (claimed[k] !== totals[k]) problems.push(`totals.${k} is ${claimed[k]} but the lines add up to ${totals[k]}`);
  }
  return { totals, problems };
}
