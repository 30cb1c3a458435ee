// The order half of the integrity check (invariants 1 and 2): every order line's counters equal
// its fulfilment orders, every unshipped allocated unit is held by an active reservation of
// exactly its size, and no active reservation of an order is left without its work. Backorders
// the same way on incoming supply: each backordered line is held by active supply allocations
// of exactly its size, each supply row's `allocated` is the sum of its active allocations, and
// no row is promised beyond what is still to come. Read-only; `oms check` and the order
// concurrency tests run it after the stock check.
import type { DbOrTrx } from '../db/database.ts';
import { DEAD, type FulfillmentStatus, HANDED_OVER } from './model.ts';

export interface OrderIntegrityIssue {
  kind: 'line_vs_fulfillments' | 'reservation_missing' | 'reservation_mismatch' | 'orphan_reservation' | 'supply_allocation_mismatch' | 'supply_allocated_vs_allocations' | 'supply_over_allocated';
  /** The order ('' for an issue of a supply row: supply_id says which). */
  order_id: string;
  line_id?: string;
  reservation_id?: string;
  supply_id?: string;
  detail: string;
}

export async function checkOrderIntegrity(db: DbOrTrx): Promise<{ orders: number; issues: OrderIntegrityIssue[] }> {
  const issues: OrderIntegrityIssue[] = [];
  const [lines, fos, foLines, reservations, allocations, supply] = await Promise.all([
    db.selectFrom('order_lines').select(['order_id', 'line_id', 'allocated', 'backordered', 'shipped']).execute(),
    db.selectFrom('fulfillment_orders').select(['id', 'order_id', 'status', 'backorder']).execute(),
    db.selectFrom('fulfillment_lines').select(['fulfillment_id', 'line_id', 'quantity', 'shipped', 'reservation_id']).execute(),
    db.selectFrom('reservations').select(['id', 'quantity', 'status', 'reference']).where('reference', 'like', 'ord_%').execute(),
    db.selectFrom('supply_allocations').select(['order_id', 'fulfillment_id', 'line_id', 'supply_id', 'quantity']).where('status', '=', 'active').execute(),
    db.selectFrom('incoming_supply').select(['id', 'quantity', 'received_quantity', 'allocated']).execute(),
  ]);
  const foById = new Map(fos.map((f) => [f.id, f]));
  const resById = new Map(reservations.map((r) => [r.id, r]));
  const sums = new Map<string, { allocated: number; backordered: number; shipped: number }>();
  const held = new Set<string>();
  for (const l of foLines) {
    const fo = foById.get(l.fulfillment_id);
    if (!fo) continue;
    const key = `${fo.order_id}\u0000${l.line_id}`;
    const s = sums.get(key) ?? { allocated: 0, backordered: 0, shipped: 0 };
    s.shipped += l.shipped;
    const status = fo.status as FulfillmentStatus;
    if (!DEAD.includes(status)) {
      if (fo.backorder) s.backordered += l.quantity;
      else s.allocated += l.quantity;
    }
    sums.set(key, s);
    // Stock still in the building must be held by its reservation, unit for unit.
    if (!DEAD.includes(status) && !HANDED_OVER.includes(status) && !fo.backorder && l.quantity > 0) {
      const r = l.reservation_id ? resById.get(l.reservation_id) : undefined;
      if (r?.status !== 'active') {
        issues.push({ kind: 'reservation_missing', order_id: fo.order_id, line_id: l.line_id, reservation_id: l.reservation_id ?? undefined, detail: `fulfilment ${fo.id} holds ${l.quantity} unit(s) with no active reservation` });
      } else {
        held.add(r.id);
        if (r.quantity !== l.quantity) issues.push({ kind: 'reservation_mismatch', order_id: fo.order_id, line_id: l.line_id, reservation_id: r.id, detail: `fulfilment ${fo.id} line ${l.quantity} ≠ reservation ${r.quantity}` });
      }
    }
  }
  for (const l of lines) {
    const s = sums.get(`${l.order_id}\u0000${l.line_id}`) ?? { allocated: 0, backordered: 0, shipped: 0 };
    if (s.allocated !== l.allocated || s.backordered !== l.backordered || s.shipped !== l.shipped) {
      issues.push({
        kind: 'line_vs_fulfillments',
        order_id: l.order_id,
        line_id: l.line_id,
        detail: `line allocated/backordered/shipped ${l.allocated}/${l.backordered}/${l.shipped} ≠ fulfilment orders ${s.allocated}/${s.backordered}/${s.shipped}`,
      });
    }
  }
  for (const r of reservations) {
    if (r.status === 'active' && !held.has(r.id)) issues.push({ kind: 'orphan_reservation', order_id: r.reference ?? '', reservation_id: r.id, detail: `active reservation of ${r.quantity} unit(s) held by no open fulfilment line` });
  }
  checkSupplyAllocations(foById, foLines, allocations, supply, issues);
  const orders = new Set(lines.map((l) => l.order_id)).size;
  return { orders, issues };
}

/** Backordered units against the incoming supply they hold, and each supply row against its allocations. */
function checkSupplyAllocations(
  foById: Map<string, { id: string; order_id: string; status: string; backorder: number }>,
  foLines: ReadonlyArray<{ fulfillment_id: string; line_id: string; quantity: number }>,
  allocations: ReadonlyArray<{ order_id: string; fulfillment_id: string; line_id: string; supply_id: string; quantity: number }>,
  supply: ReadonlyArray<{ id: string; quantity: number; received_quantity: number; allocated: number }>,
  issues: OrderIntegrityIssue[],
): void {
  const byLine = new Map<string, { orderId: string; fulfillmentId: string; lineId: string; held: number }>();
  const bySupply = new Map<string, number>();
  for (const a of allocations) {
    const key = `${a.fulfillment_id}\u0000${a.line_id}`;
    const s = byLine.get(key) ?? { orderId: a.order_id, fulfillmentId: a.fulfillment_id, lineId: a.line_id, held: 0 };
    s.held += a.quantity;
    byLine.set(key, s);
    bySupply.set(a.supply_id, (bySupply.get(a.supply_id) ?? 0) + a.quantity);
  }
  // Every live backordered line is held unit for unit; everything else holds nothing.
  for (const l of foLines) {
    const fo = foById.get(l.fulfillment_id);
    if (!fo) continue;
    const key = `${l.fulfillment_id}\u0000${l.line_id}`;
    const held = byLine.get(key)?.held ?? 0;
    byLine.delete(key);
    const owed = fo.backorder && !DEAD.includes(fo.status as FulfillmentStatus) ? l.quantity : 0;
    if (held !== owed) issues.push({ kind: 'supply_allocation_mismatch', order_id: fo.order_id, line_id: l.line_id, detail: `fulfilment ${fo.id} ${owed ? `backorders ${owed}` : 'holds no backorder'} but active supply allocations hold ${held}` });
  }
  for (const s of byLine.values()) {
    issues.push({ kind: 'supply_allocation_mismatch', order_id: s.orderId, line_id: s.lineId, detail: `active supply allocations of ${s.held} unit(s) for fulfilment ${s.fulfillmentId}, which has no such line` });
  }
  for (const s of supply) {
    const held = bySupply.get(s.id) ?? 0;
    if (s.allocated !== held) issues.push({ kind: 'supply_allocated_vs_allocations', order_id: '', supply_id: s.id, detail: `supply ${s.id} allocated ${s.allocated} ≠ Σ active allocations ${held}` });
    if (s.allocated > s.quantity - s.received_quantity) issues.push({ kind: 'supply_over_allocated', order_id: '', supply_id: s.id, detail: `supply ${s.id} allocated ${s.allocated} > ${s.quantity} expected − ${s.received_quantity} received` });
  }
}
