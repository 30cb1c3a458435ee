// Order storage: the order aggregate (order, lines, delivery groups, fulfilment orders and
// their lines) as rows, written in a few set-based statements and read back in four.
// Functions take `db | trx` first so a use case composes them in its transaction.
import type { Selectable } from 'kysely';
import { type ColumnType, WriteBatch } from '../db/bulk.ts';
import type { DbOrTrx, Dialect } from '../db/database.ts';
import type { DeliveryGroupTable, FulfillmentLineTable, FulfillmentOrderTable, OrderLineTable, OrderTable, SupplyAllocationTable } from '../db/schema.ts';

export type OrderRow = Selectable<OrderTable>;
export type OrderLineRow = Selectable<OrderLineTable>;
export type DeliveryGroupRow = Selectable<DeliveryGroupTable>;
export type FulfillmentRow = Selectable<FulfillmentOrderTable>;
export type FulfillmentLineRow = Selectable<FulfillmentLineTable>;
export type SupplyAllocationRow = Selectable<SupplyAllocationTable>;

export interface FulfillmentAggregate extends FulfillmentRow {
  lines: FulfillmentLineRow[];
  /** A new backorder's hold on incoming supply, written with it (loadOrder does not read it back). */
  supplyAllocations?: SupplyAllocationRow[];
}

export interface OrderAggregate {
  order: OrderRow;
  lines: OrderLineRow[];
  groups: DeliveryGroupRow[];
  fulfillments: FulfillmentAggregate[];
}

const ORDER_COLUMNS: Array<[keyof OrderRow, ColumnType]> = [
  ['id', 'text'],
  ['channel_id', 'bigint'],
  ['external_reference', 'text'],
  ['status', 'text'],
  ['currency', 'text'],
  ['customer_email', 'text'],
  ['customer', 'text'],
  ['billing_address', 'text'],
  ['subtotal', 'bigint'],
  ['discount_total', 'bigint'],
  ['tax_total', 'bigint'],
  ['shipping_total', 'bigint'],
  ['total', 'bigint'],
  ['tenders', 'text'],
  ['captured_by', 'text'],
  ['store_location_id', 'bigint'],
  ['associate', 'text'],
  ['excluded_location_ids', 'text'],
  ['validated_at', 'bigint'],
  ['validated_by', 'text'],
  ['expires_at', 'bigint'],
  ['closed_at', 'bigint'],
  ['close_reason', 'text'],
  ['version', 'integer'],
  ['created_at', 'bigint'],
  ['updated_at', 'bigint'],
];

/** A new order's rows (all of them), added to a batch: the caller flushes it. */
export function addOrderTo(out: WriteBatch, a: OrderAggregate): void {
  out.insert('orders', ORDER_COLUMNS, [ORDER_COLUMNS.map(([c]) => a.order[c])]);
  out.insert(
    'order_lines',
    [
      ['line_id', 'text'],
      ['group_id', 'text'],
      ['sku_id', 'bigint'],
      ['quantity', 'integer'],
      ['unit_price', 'bigint'],
      ['discount', 'bigint'],
      ['tax', 'bigint'],
      ['allocated', 'integer'],
      ['backordered', 'integer'],
      ['cancelled', 'integer'],
      ['shipped', 'integer'],
    ],
    a.lines.map((l) => [l.line_id, l.group_id, l.sku_id, l.quantity, l.unit_price, l.discount, l.tax, l.allocated, l.backordered, l.cancelled, l.shipped]),
    '',
    [['order_id', 'text', a.order.id]],
  );
  out.insert(
    'delivery_groups',
    [
      ['group_id', 'text'],
      ['mode', 'text'],
      ['address', 'text'],
      ['pickup_location_id', 'bigint'],
      ['relay_point', 'text'],
      ['service_level', 'text'],
      ['carrier_service', 'text'],
      ['shipping_price', 'bigint'],
    ],
    a.groups.map((g) => [g.group_id, g.mode, g.address, g.pickup_location_id, g.relay_point, g.service_level, g.carrier_service, g.shipping_price]),
    '',
    [['order_id', 'text', a.order.id]],
  );
  addFulfillmentsTo(out, a.fulfillments);
}

export async function insertFulfillments(trx: DbOrTrx, dialect: Dialect, fos: FulfillmentAggregate[], batch?: WriteBatch): Promise<void> {
  if (fos.length === 0) return;
  const out = batch ?? new WriteBatch();
  addFulfillmentsTo(out, fos);
  if (!batch) await out.flush(trx, dialect);
}

/** Fulfilment orders and their lines, added to a batch (nothing runs). */
export function addFulfillmentsTo(out: WriteBatch, fos: FulfillmentAggregate[]): void {
  if (fos.length === 0) return;
  out.insert(
    'fulfillment_orders',
    [
      ['id', 'text'],
      ['order_id', 'text'],
      ['group_id', 'text'],
      ['location_id', 'bigint'],
      ['status', 'text'],
      ['mode', 'text'],
      ['backorder', 'integer'],
      ['ready_date', 'text'],
      ['carrier_service', 'text'],
      ['estimated_delivery', 'text'],
      ['accept_by', 'bigint'],
      ['reason', 'text'],
      ['tracking', 'text'],
      ['version', 'integer'],
      ['created_at', 'bigint'],
      ['updated_at', 'bigint'],
    ],
    fos.map((f) => [f.id, f.order_id, f.group_id, f.location_id, f.status, f.mode, f.backorder, f.ready_date, f.carrier_service, f.estimated_delivery, f.accept_by, f.reason, f.tracking, f.version, f.created_at, f.updated_at]),
  );
  out.insert(
    'fulfillment_lines',
    [
      ['fulfillment_id', 'text'],
      ['line_id', 'text'],
      ['sku_id', 'bigint'],
      ['quantity', 'integer'],
      ['picked', 'integer'],
      ['shipped', 'integer'],
      ['reservation_id', 'text'],
    ],
    fos.flatMap((f) => f.lines.map((l) => [l.fulfillment_id, l.line_id, l.sku_id, l.quantity, l.picked, l.shipped, l.reservation_id])),
  );
  out.insert(
    'supply_allocations',
    [
      ['id', 'text'],
      ['supply_id', 'text'],
      ['order_id', 'text'],
      ['fulfillment_id', 'text'],
      ['line_id', 'text'],
      ['quantity', 'integer'],
      ['status', 'text'],
      ['created_at', 'bigint'],
      ['updated_at', 'bigint'],
    ],
    fos.flatMap((f) => (f.supplyAllocations ?? []).map((a) => [a.id, a.supply_id, a.order_id, a.fulfillment_id, a.line_id, a.quantity, a.status, a.created_at, a.updated_at])),
  );
}

export async function loadOrder(db: DbOrTrx, id: string): Promise<OrderAggregate | null> {
  const order = await db.selectFrom('orders').selectAll().where('id', '=', id).executeTakeFirst();
  if (!order) return null;
  const [lines, groups, fos, foLines] = await Promise.all([
    db.selectFrom('order_lines').selectAll().where('order_id', '=', id).orderBy('line_id').execute(),
    db.selectFrom('delivery_groups').selectAll().where('order_id', '=', id).orderBy('group_id').execute(),
    db.selectFrom('fulfillment_orders').selectAll().where('order_id', '=', id).orderBy('id').execute(),
    db
      .selectFrom('fulfillment_lines')
      .innerJoin('fulfillment_orders', 'fulfillment_orders.id', 'fulfillment_lines.fulfillment_id')
      .selectAll('fulfillment_lines')
      .where('fulfillment_orders.order_id', '=', id)
      .orderBy('fulfillment_lines.line_id')
      .execute(),
  ]);
  const byFo = new Map<string, FulfillmentLineRow[]>();
  for (const l of foLines) {
    const list = byFo.get(l.fulfillment_id) ?? [];
    list.push(l);
    byFo.set(l.fulfillment_id, list);
  }
  return { order, lines, groups, fulfillments: fos.map((f) => ({ ...f, lines: byFo.get(f.id) ?? [] })) };
}

export async function findOrderByReference(db: DbOrTrx, channelId: number, externalReference: string): Promise<string | null> {
  const row = await db.selectFrom('orders').select('id').where('channel_id', '=', channelId).where('external_reference', '=', externalReference).executeTakeFirst();
  return row?.id ?? null;
}
