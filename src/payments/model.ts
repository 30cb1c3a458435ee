// The payment vocabulary (DOMAIN §4) and the pure money rules: a payment's status from its
// counters, an order's value (what is owed, what has shipped), and what the OMS must do with
// an order's money to match it (capture, refund, release). No I/O.

export const PAYMENT_STATUSES = [
  'pending',
  'requires_action',
  'authorized',
  'partially_captured',
  'captured',
  'partially_refunded',
  'refunded',
  'voided',
  'failed',
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const OPERATION_KINDS = ['authorize', 'capture', 'void', 'refund'] as const;
export type OperationKind = (typeof OPERATION_KINDS)[number];

export interface Counters {
  authorized: number;
  captured: number;
  refunded: number;
  voided: number;
}

/**
 * The status shown for a payment. Before any money is authorized it is the authorization's
 * phase (pending, requires_action, failed); afterwards it follows the counters.
 */
export function derivePaymentStatus(phase: 'pending' | 'requires_action' | 'failed' | 'authorized', c: Counters): PaymentStatus {
  if (c.authorized === 0) return c.voided > 0 ? 'voided' : phase;
  if (c.captured === 0) return c.voided >= c.authorized ? 'voided' : 'authorized';
  if (c.refunded > 0) return c.refunded >= c.captured ? 'refunded' : 'partially_refunded';
  return c.captured + c.voided >= c.authorized ? 'captured' : 'partially_captured';
}

/** Σ amount of a payment's operations, per kind and status. */
export type OperationSums = (kind: OperationKind, status: 'pending' | 'succeeded') => number;

/**
 * A tender's counters: each is the larger of what its succeeded operations add up to and the
 * operator's latest absolute figure (both are lower bounds of the operator's truth, so the
 * larger is the better one, and replays or reordering cannot inflate it); in-flight amounts
 * are its pending operations. captured ≤ authorized and refunded ≤ captured by construction.
 */
export function tenderCounters(sum: OperationSums, psp: { authorized: number; captured: number; refunded: number }): Counters & { capturePending: number; refundPending: number } {
  const refunded = Math.max(sum('refund', 'succeeded'), psp.refunded);
  const captured = Math.max(sum('capture', 'succeeded'), psp.captured, refunded);
  const authorized = Math.max(sum('authorize', 'succeeded'), psp.authorized, captured);
  const voided = Math.min(sum('void', 'succeeded'), authorized - captured);
  return { authorized, captured, refunded, voided, capturePending: sum('capture', 'pending'), refundPending: sum('refund', 'pending') };
}

// ---- order value ------------------------------------------------------------------------------

export interface ValueLine {
  groupId: string;
  quantity: number;
  cancelled: number;
  shipped: number;
  unitPrice: number;
  discount: number;
  tax: number;
}

export interface ValueOrder {
  subtotal: number;
  discountTotal: number;
  taxTotal: number;
  shippingTotal: number;
  total: number;
  lines: readonly ValueLine[];
  groups: ReadonlyArray<{ groupId: string; shippingPrice: number }>;
}

/**
 * What the order is worth now (`active`: its lines not cancelled, with the delivery of every
 * group that still has something to deliver) and what of it has shipped (`shipped`: shipped
 * units, with the delivery of every group that shipped something). A line's value is shared
 * by its units, rounded down, so that the shipped value reaches the active value exactly when
 * every unit not cancelled has shipped. With nothing cancelled, active = the order total.
 */
export function orderValue(o: ValueOrder): { active: number; shipped: number } {
  // Prices include tax (European retail) unless the order total adds it.
  const taxAdded = o.taxTotal !== 0 && o.total - o.shippingTotal - (o.subtotal - o.discountTotal) === o.taxTotal;
  let active = 0;
  let shipped = 0;
  const liveGroups = new Set<string>();
  const shippedGroups = new Set<string>();
  for (const l of o.lines) {
    const value = l.quantity * l.unitPrice - l.discount + (taxAdded ? l.tax : 0);
    const kept = l.quantity - l.cancelled;
    active += l.quantity === 0 ? 0 : Math.floor((value * kept) / l.quantity);
    shipped += l.quantity === 0 ? 0 : Math.floor((value * l.shipped) / l.quantity);
    if (kept > 0) liveGroups.add(l.groupId);
    if (l.shipped > 0) shippedGroups.add(l.groupId);
  }
  for (const g of o.groups) {
    if (liveGroups.has(g.groupId)) active += g.shippingPrice;
    if (shippedGroups.has(g.groupId)) shipped += g.shippingPrice;
  }
  return { active, shipped };
}

/** The value of `quantity` units of a line (refunds by line), rounded down like orderValue. */
export function lineUnitsValue(o: Pick<ValueOrder, 'subtotal' | 'discountTotal' | 'taxTotal' | 'shippingTotal' | 'total'>, l: ValueLine, quantity: number): number {
  const taxAdded = o.taxTotal !== 0 && o.total - o.shippingTotal - (o.subtotal - o.discountTotal) === o.taxTotal;
  const value = l.quantity * l.unitPrice - l.discount + (taxAdded ? l.tax : 0);
  return l.quantity === 0 ? 0 : Math.floor((value * quantity) / l.quantity);
}

// ---- what to do with the money ---------------------------------------------------------------------

export type CapturePolicy = 'on_validation' | 'on_shipment';

export interface MoneyInput {
  policy: CapturePolicy;
  /** Validated (and not closed): money may be captured. */
  validated: boolean;
  /** The order's active and shipped value (orderValue). */
  active: number;
  shipped: number;
  /** Refunds asked through the refund API (goodwill, returns) or made at the operator: they lower what is owed. */
  refundedOnRequest: number;
  /** Σ over tenders of captured + capture in flight − refunded − refund in flight. */
  held: number;
  /** Σ over tenders of authorization still free to capture. */
  free: number;
}

export interface MoneyPlan {
  /** Capture this much now (0: nothing). */
  capture: number;
  /** Whether this capture is the last one the order needs (the operator may release the rest). */
  final: boolean;
  /** Refund this much because the order is now worth less than was captured (cancellation). */
  refund: number;
  /** Release every tender's remaining authorization: nothing more will ever be captured. */
  release: boolean;
}

/**
 * The one rule for an order's money (DOMAIN §4): the customer owes the active value less what
 * was refunded on request; the OMS captures what is due now (all of it at validation, or the
 * shipped value under capture-on-shipment), refunds what it holds beyond what is owed (a
 * cancellation after capture), and releases authorizations once nothing is left to capture.
 */
export function planMoney(m: MoneyInput): MoneyPlan {
  const owed = Math.max(0, m.active - m.refundedOnRequest);
  const dueNow = !m.validated ? 0 : m.policy === 'on_validation' ? owed : Math.min(owed, Math.max(0, m.shipped - m.refundedOnRequest));
  const capture = Math.max(0, Math.min(dueNow - m.held, m.free));
  const refund = Math.max(0, m.held - owed);
  // Still to capture later (under capture-on-shipment, the goods not shipped yet).
  const later = m.validated ? owed - dueNow : owed;
  const closed = !m.validated && owed === 0;
  const release = (m.validated && later === 0) || closed;
  return { capture, final: capture > 0 && later === 0, refund, release: release && m.free - capture > 0 };
}
