// Orders: the order, its lines and delivery groups, the fulfilment orders (one per source
// location per delivery group) with their lines, every sourcing decision kept for the order,
// and the idempotency keys of order capture. JSON fields are text (portable subset).
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database.ts';
import { autoId } from './0001_inventory.ts';

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('orders')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('channel_id', 'bigint', (c) => c.notNull())
    .addColumn('external_reference', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('customer_email', 'text')
    .addColumn('customer', 'text', (c) => c.notNull())
    .addColumn('billing_address', 'text')
    .addColumn('subtotal', 'bigint', (c) => c.notNull())
    .addColumn('discount_total', 'bigint', (c) => c.notNull())
    .addColumn('tax_total', 'bigint', (c) => c.notNull())
    .addColumn('shipping_total', 'bigint', (c) => c.notNull())
    .addColumn('total', 'bigint', (c) => c.notNull())
    .addColumn('tenders', 'text', (c) => c.notNull())
    .addColumn('captured_by', 'text', (c) => c.notNull())
    .addColumn('store_location_id', 'bigint')
    .addColumn('associate', 'text')
    .addColumn('excluded_location_ids', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('validated_at', 'bigint')
    .addColumn('validated_by', 'text')
    .addColumn('expires_at', 'bigint')
    .addColumn('closed_at', 'bigint')
    .addColumn('close_reason', 'text')
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('orders_channel_ref').on('orders').columns(['channel_id', 'external_reference']).unique().execute();
  await db.schema.createIndex('orders_channel_id').on('orders').columns(['channel_id', 'id']).execute();
  await db.schema.createIndex('orders_status_expiry').on('orders').columns(['status', 'expires_at']).execute();
  await db.schema.createIndex('orders_email').on('orders').columns(['customer_email', 'id']).execute();
  await db.schema.createIndex('orders_store').on('orders').columns(['store_location_id', 'id']).execute();
  await db.schema.createIndex('orders_created').on('orders').columns(['created_at']).execute();

  await db.schema
    .createTable('order_lines')
    .addColumn('order_id', 'text', (c) => c.notNull())
    .addColumn('line_id', 'text', (c) => c.notNull())
    .addColumn('group_id', 'text', (c) => c.notNull())
    .addColumn('sku_id', 'bigint', (c) => c.notNull())
    .addColumn('quantity', 'integer', (c) => c.notNull())
    .addColumn('unit_price', 'bigint', (c) => c.notNull())
    .addColumn('discount', 'bigint', (c) => c.notNull())
    .addColumn('tax', 'bigint', (c) => c.notNull())
    .addColumn('allocated', 'integer', (c) => c.notNull())
    .addColumn('backordered', 'integer', (c) => c.notNull())
    .addColumn('cancelled', 'integer', (c) => c.notNull())
    .addColumn('shipped', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('order_lines_pk', ['order_id', 'line_id'])
    // Invariant 2, in the database: ordered = allocated + backordered + cancelled, shipped ≤ allocated.
    .addCheckConstraint('order_lines_accounting', sql`quantity = allocated + backordered + cancelled and shipped <= allocated and allocated >= 0 and backordered >= 0 and cancelled >= 0`)
    .execute();
  await db.schema.createIndex('order_lines_sku').on('order_lines').columns(['sku_id', 'order_id']).execute();

  await db.schema
    .createTable('delivery_groups')
    .addColumn('order_id', 'text', (c) => c.notNull())
    .addColumn('group_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('address', 'text')
    .addColumn('pickup_location_id', 'bigint')
    .addColumn('relay_point', 'text')
    .addColumn('service_level', 'text')
    .addColumn('carrier_service', 'text')
    .addColumn('shipping_price', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('delivery_groups_pk', ['order_id', 'group_id'])
    .execute();

  await db.schema
    .createTable('fulfillment_orders')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('order_id', 'text', (c) => c.notNull())
    .addColumn('group_id', 'text', (c) => c.notNull())
    .addColumn('location_id', 'bigint', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('backorder', 'integer', (c) => c.notNull())
    .addColumn('ready_date', 'text', (c) => c.notNull())
    .addColumn('carrier_service', 'text')
    .addColumn('estimated_delivery', 'text')
    .addColumn('accept_by', 'bigint')
    .addColumn('reason', 'text')
    .addColumn('tracking', 'text')
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('fulfillment_orders_order').on('fulfillment_orders').columns(['order_id']).execute();
  await db.schema.createIndex('fulfillment_orders_location').on('fulfillment_orders').columns(['location_id', 'status', 'id']).execute();
  await db.schema.createIndex('fulfillment_orders_deadline').on('fulfillment_orders').columns(['status', 'accept_by']).execute();

  await db.schema
    .createTable('fulfillment_lines')
    .addColumn('fulfillment_id', 'text', (c) => c.notNull())
    .addColumn('line_id', 'text', (c) => c.notNull())
    .addColumn('sku_id', 'bigint', (c) => c.notNull())
    .addColumn('quantity', 'integer', (c) => c.notNull())
    .addColumn('picked', 'integer')
    .addColumn('shipped', 'integer', (c) => c.notNull())
    .addColumn('reservation_id', 'text')
    .addPrimaryKeyConstraint('fulfillment_lines_pk', ['fulfillment_id', 'line_id'])
    .addCheckConstraint('fulfillment_lines_counts', sql`quantity >= 0 and shipped <= quantity and (picked is null or picked <= quantity)`)
    .execute();

  await autoId(db.schema.createTable('order_sourcing'), dialect)
    .addColumn('order_id', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('rule_set_version', 'integer')
    .addColumn('decision', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('order_sourcing_order').on('order_sourcing').columns(['order_id', 'id']).execute();

  await db.schema
    .createTable('idempotency_keys')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('response', 'text')
    .addColumn('locked_until', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['scope', 'key'])
    .execute();
  await db.schema.createIndex('idempotency_keys_expiry').on('idempotency_keys').columns(['expires_at']).execute();

  // The order timeline reads the events of an order and its fulfilment orders.
  await db.schema.createIndex('outbox_aggregate').on('outbox').columns(['aggregate_id', 'id']).execute();
}
