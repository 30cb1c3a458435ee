// The availability debouncer claims dirty marks oldest first, by id (src/availability/debounce.ts),
// instead of grouping them by sku: the (sku_id, id) index it used took a random page for every
// mark a capture wrote (three an order; ~9 % of the WAL's pages during order.capture.http).
// The marks table stays small (a pass deletes what it publishes), so reading it in id order
// needs no other index.
import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.dropIndex('availability_dirty_sku').ifExists().execute();
}
