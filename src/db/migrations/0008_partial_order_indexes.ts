// Indexes of order columns that are empty when an order is captured (the hot path) are partial,
// so capturing writes no entry into them: the number and the tracking token exist only once the
// order is validated, and only Order in Store orders name a store. (COMMIT −17 % an order.)
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { Dialect } from '../database.ts';

export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.dropIndex('orders_number').execute();
  await db.schema.dropIndex('orders_tracking').execute();
  await db.schema.createIndex('orders_number').on('orders').column('number').unique().where(sql.ref('number'), 'is not', null).execute();
  await db.schema.dropIndex('orders_store').execute();
  await db.schema.createIndex('orders_store').on('orders').columns(['store_location_id', 'id']).where(sql.ref('store_location_id'), 'is not', null).execute();
  await db.schema.createIndex('orders_tracking').on('orders').column('tracking_token_hash').unique().where(sql.ref('tracking_token_hash'), 'is not', null).execute();
}
