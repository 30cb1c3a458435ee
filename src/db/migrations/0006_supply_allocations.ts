// Backorders hold their incoming supply: each backordered fulfilment line takes units of the
// supply rows it was promised on (supply_allocations), and each supply row counts what is
// held of it (incoming_supply.allocated), so two orders are never promised the same incoming
// units. `allocated` changes only through conditional updates, like stock_positions.reserved.
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database.ts';

export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .alterTable('incoming_supply')
    .addColumn('allocated', 'integer', (c) => c.notNull().defaultTo(0).check(sql`allocated >= 0`))
    .execute();

  await db.schema
    .createTable('supply_allocations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('supply_id', 'text', (c) => c.notNull())
    .addColumn('order_id', 'text', (c) => c.notNull())
    .addColumn('fulfillment_id', 'text', (c) => c.notNull())
    .addColumn('line_id', 'text', (c) => c.notNull())
    .addColumn('quantity', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addCheckConstraint('supply_allocations_qty', sql`quantity > 0`)
    .execute();
  await db.schema.createIndex('supply_allocations_fulfillment').on('supply_allocations').columns(['fulfillment_id', 'line_id']).execute();
  await db.schema.createIndex('supply_allocations_supply').on('supply_allocations').columns(['supply_id', 'status']).execute();
}
