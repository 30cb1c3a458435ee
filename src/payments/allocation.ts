// How an amount is split across an order's tenders (pure: no I/O). A refund goes back to the
// tenders that paid, by the retailer's rule; a capture on shipment takes from the tenders that
// authorized. Both return parts that sum exactly to the amount and never exceed a tender.
import type { TenderMethod } from '../orders/model.ts';

export interface TenderBalance {
  id: string;
  method: TenderMethod;
  /** What can still be taken from this tender (refund: captured − refunded − in flight). */
  available: number;
  /** Tie-break: the order the tenders were created in. */
  createdAt: number;
}

export interface Part {
  id: string;
  amount: number;
}

export type Allocation = { ok: true; parts: Part[] } | { ok: false; shortBy: number };

/**
 * `sequence`: fill tenders one after another, by method rank (methods listed first refunded
 * first; unlisted methods after the listed ones), then creation order.
 * `proportional`: split in proportion to what each tender can give, remainders to the largest
 * fractions (ties: rank, then creation order).
 */
export interface RefundRule {
  policy: 'sequence' | 'proportional';
  order: readonly TenderMethod[];
}

/** The default: card-like tenders first, store credit (gift card) last. */
export const DEFAULT_REFUND_RULE: RefundRule = {
  policy: 'sequence',
  order: ['card', 'card_present', 'wallet', 'bank_transfer', 'cash_on_delivery', 'purchase_order', 'gift_card'],
};

/** Captures take store credit first: it is the retailer's own money and costs no fee. */
export const CAPTURE_ORDER: readonly TenderMethod[] = ['gift_card', 'card_present', 'card', 'wallet'];

const rankOf = (order: readonly TenderMethod[], m: TenderMethod) => {
  const i = order.indexOf(m);
  return i === -1 ? order.length : i;
};

function ranked(tenders: readonly TenderBalance[], order: readonly TenderMethod[]): TenderBalance[] {
  return [...tenders].sort((a, b) => rankOf(order, a.method) - rankOf(order, b.method) || a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export function allocate(amount: number, tenders: readonly TenderBalance[], rule: RefundRule): Allocation {
  if (!Number.isSafeInteger(amount) || amount < 0) throw new RangeError(`amount must be a non-negative integer (got ${amount})`);
  const usable = ranked(
    tenders.filter((t) => t.available > 0),
    rule.order,
  );
  const total = usable.reduce((s, t) => s + t.available, 0);
  if (total < amount) return { ok: false, shortBy: amount - total };
  if (amount === 0) return { ok: true, parts: [] };
  if (rule.policy === 'sequence') {
    const parts: Part[] = [];
    let left = amount;
    for (const t of usable) {
      if (left === 0) break;
      const take = Math.min(left, t.available);
      parts.push({ id: t.id, amount: take });
      left -= take;
    }
    return { ok: true, parts };
  }
  // Proportional, largest remainder. BigInt keeps amount × available exact at any size.
  const big = BigInt(total);
  const shares = usable.map((t, i) => {
    const num = BigInt(amount) * BigInt(t.available);
    return { t, i, floor: Number(num / big), frac: num % big };
  });
  let left = amount - shares.reduce((s, x) => s + x.floor, 0);
  const byFrac = [...shares].sort((a, b) => (b.frac > a.frac ? 1 : b.frac < a.frac ? -1 : a.i - b.i));
  for (const s of byFrac) {
    if (left === 0) break;
    if (s.floor < s.t.available) {
      s.floor += 1;
      left -= 1;
    }
  }
  return { ok: true, parts: shares.filter((s) => s.floor > 0).map((s) => ({ id: s.t.id, amount: s.floor })) };
}

/** Parses OMS_REFUND_RULE: "sequence:card,gift_card" or "proportional" (order optional). */
export function parseRefundRule(text: string | undefined, methods: readonly TenderMethod[]): RefundRule {
  if (!text) return DEFAULT_REFUND_RULE;
  const [policy, list] = text.split(':');
  if (policy !== 'sequence' && policy !== 'proportional') throw new Error(`OMS_REFUND_RULE: policy '${policy}' is not sequence or proportional`);
  const order = list ? list.split(',').map((m) => m.trim()).filter(Boolean) : [...DEFAULT_REFUND_RULE.order];
  for (const m of order) if (!methods.includes(m as TenderMethod)) throw new Error(`OMS_REFUND_RULE: '${m}' is not a tender method (${methods.join(', ')})`);
  return { policy, order: order as TenderMethod[] };
}
