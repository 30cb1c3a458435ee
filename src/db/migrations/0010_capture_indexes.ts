// Two indexes that cost every capture pages it writes, for lookups nothing makes (counted by
// reading the WAL's frames during order.capture.http: each frame names the page, `dbstat` the
// index; bench/README.md, eighth session):
// - reservations (location_id, sku_id, status): reservations are found by id (a fulfilment line
//   names its reservation) or read whole (the integrity check groups a scan). ~3 random pages
//   an order (one per reservation);
// - outbox (aggregate_id, id) over every event: only an order's timeline looks events up by
//   aggregate, and only those of its order, fulfilment orders and payments. The availability
//   events (one per sku and channel, keyed by sku) and the reservation and stock events
//   went into it too, at random places: ~1.5 pages an order. It becomes a partial index over
//   the timeline's aggregates (src/orders/queries.ts names the same types, so both backends
//   use it).
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database.ts';

/** The aggregate types of an order's timeline, as src/orders/queries.ts names them (a test checks its query uses this index). */
const TIMELINE_AGGREGATES = ['order', 'fulfillment_order', 'payment'];

export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.dropIndex('reservations_position').ifExists().execute();
  await db.schema.dropIndex('outbox_aggregate').ifExists().execute();
  await db.schema
    .createIndex('outbox_timeline')
    .on('outbox')
    .columns(['aggregate_id', 'id'])
    .where(sql.ref('aggregate_type'), 'in', sql`(${sql.join(TIMELINE_AGGREGATES.map((t) => sql.lit(t)))})`)
    .execute();
}
