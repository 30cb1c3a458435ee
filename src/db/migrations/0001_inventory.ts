// Foundation schema: locations, skus, stock positions and their ledger, reservations,
// incoming supply, channels, API keys, the outbox and feed import runs. Portable subset only.
import { type Kysely, type CreateTableBuilder, sql } from 'kysely';
import type { Dialect } from '../database.ts';

type Any = Kysely<unknown>;

export function autoId<T extends string>(t: CreateTableBuilder<T, never>, dialect: Dialect) {
  return dialect === 'postgres'
    ? t.addColumn('id', 'bigserial', (c) => c.primaryKey())
    : t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
}

export async function up(db: Any, dialect: Dialect): Promise<void> {
  await autoId(db.schema.createTable('locations'), dialect)
    .addColumn('code', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('fulfilment_channel', 'text', (c) => c.notNull())
    .addColumn('country', 'text', (c) => c.notNull())
    .addColumn('city', 'text')
    .addColumn('postal_code', 'text')
    .addColumn('address_line', 'text')
    .addColumn('latitude', 'double precision')
    .addColumn('longitude', 'double precision')
    .addColumn('tags', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('cap_ships', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cap_click_and_collect', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cap_order_in_store', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cap_accepts_returns', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('daily_capacity', 'integer')
    .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('shipment_cost', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('currency', 'text', (c) => c.notNull().defaultTo('EUR'))
    .addColumn('default_safety_stock', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('snapshot_as_of', 'bigint')
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addCheckConstraint('locations_safety_nonneg', sql`default_safety_stock >= 0`)
    .execute();

  await autoId(db.schema.createTable('skus'), dialect)
    .addColumn('code', 'text', (c) => c.notNull().unique())
    .addColumn('gtin', 'text', (c) => c.unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('weight_g', 'integer')
    .addColumn('length_mm', 'integer')
    .addColumn('width_mm', 'integer')
    .addColumn('height_mm', 'integer')
    .addColumn('demand_class', 'text')
    .addColumn('tags', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('backorderable', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('stock_positions')
    .addColumn('location_id', 'bigint', (c) => c.notNull().references('locations.id'))
    .addColumn('sku_id', 'bigint', (c) => c.notNull().references('skus.id'))
    .addColumn('on_hand', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('reserved', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('quarantine', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('safety_stock', 'integer')
    .addColumn('baseline_as_of', 'bigint')
    .addColumn('last_seq', 'bigint')
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('stock_positions_pk', ['location_id', 'sku_id'])
    .addCheckConstraint('stock_positions_reserved_nonneg', sql`reserved >= 0`)
    .addCheckConstraint('stock_positions_quarantine_nonneg', sql`quarantine >= 0`)
    .addCheckConstraint('stock_positions_safety_nonneg', sql`safety_stock is null or safety_stock >= 0`)
    // SQLite: the table is its primary key's B-tree, one write per row instead of two.
    .$call((t) => (dialect === 'sqlite' ? t.modifyEnd(sql`without rowid`) : t))
    .execute();

  // No foreign keys on the ledger: every movement belongs to a position, which has them, and
  // the integrity check reports a movement without a position. On PostgreSQL the two
  // per-row key checks made million-row feeds 3.5 times slower.
  await autoId(db.schema.createTable('stock_movements'), dialect)
    .addColumn('location_id', 'bigint', (c) => c.notNull())
    .addColumn('sku_id', 'bigint', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('quantity', 'integer', (c) => c.notNull())
    .addColumn('on_hand_change', 'integer', (c) => c.notNull())
    .addColumn('quarantine_change', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('occurred_at', 'bigint', (c) => c.notNull())
    .addColumn('recorded_at', 'bigint', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('idempotency_key', 'text')
    .addColumn('seq', 'bigint')
    .addColumn('reference', 'text')
    .execute();
  // Partial: only deltas carry a key, so counts (a million rows a feed) skip this index.
  await db.schema
    .createIndex('stock_movements_idem')
    .unique()
    .on('stock_movements')
    .columns(['location_id', 'sku_id', 'idempotency_key'])
    .where(sql.ref('idempotency_key'), 'is not', null)
    .execute();
  // Partial: a snapshot re-applies the non-snapshot movements after its as_of; its own
  // rows (a million per feed) never need this index, so they skip it.
  await db.schema
    .createIndex('stock_movements_loc_time')
    .on('stock_movements')
    .columns(['location_id', 'occurred_at'])
    .where(sql.ref('kind'), '<>', 'snapshot')
    .execute();

  await db.schema
    .createTable('reservations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('location_id', 'bigint', (c) => c.notNull().references('locations.id'))
    .addColumn('sku_id', 'bigint', (c) => c.notNull().references('skus.id'))
    .addColumn('quantity', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('channel_id', 'bigint')
    .addColumn('reference', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addCheckConstraint('reservations_qty_pos', sql`quantity > 0`)
    .execute();
  await db.schema
    .createIndex('reservations_position')
    .on('reservations')
    .columns(['location_id', 'sku_id', 'status'])
    .execute();

  await db.schema
    .createTable('incoming_supply')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('reference', 'text', (c) => c.notNull())
    .addColumn('location_id', 'bigint', (c) => c.notNull().references('locations.id'))
    .addColumn('sku_id', 'bigint', (c) => c.notNull().references('skus.id'))
    .addColumn('quantity', 'integer', (c) => c.notNull())
    .addColumn('received_quantity', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expected_at', 'bigint', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('incoming_supply_line', ['kind', 'reference', 'location_id', 'sku_id'])
    .addCheckConstraint('incoming_supply_qty', sql`quantity > 0 and received_quantity >= 0`)
    .execute();
  await db.schema.createIndex('incoming_supply_sku').on('incoming_supply').columns(['sku_id', 'status']).execute();

  await autoId(db.schema.createTable('channels'), dialect)
    .addColumn('code', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('location_types', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('location_tags', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('location_codes', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('exclude_location_codes', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('buffer', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cap_percent', 'integer')
    .addColumn('future_stock', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('future_horizon_days', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('channel_id', 'bigint')
    .addColumn('location_ids', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .execute();

  await autoId(db.schema.createTable('outbox'), dialect)
    .addColumn('event_id', 'text', (c) => c.notNull().unique())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('aggregate_type', 'text', (c) => c.notNull())
    .addColumn('aggregate_id', 'text', (c) => c.notNull())
    .addColumn('aggregate_seq', 'bigint', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('origin', 'text', (c) => c.notNull())
    .addColumn('occurred_at', 'bigint', (c) => c.notNull())
    .addColumn('published_at', 'bigint')
    .execute();
  await db.schema.createIndex('outbox_type').on('outbox').columns(['type', 'id']).execute();

  // Append-only marks: a mark inserted by a transaction that commits after the debouncer
  // read is simply left for its next pass, so no change is ever missed.
  await autoId(db.schema.createTable('availability_dirty'), dialect)
    .addColumn('sku_id', 'bigint', (c) => c.notNull())
    .addColumn('marked_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('availability_dirty_sku').on('availability_dirty').columns(['sku_id', 'id']).execute();

  await db.schema
    .createTable('availability_published')
    .addColumn('sku_id', 'bigint', (c) => c.notNull())
    .addColumn('channel_id', 'bigint', (c) => c.notNull())
    .addColumn('available', 'integer', (c) => c.notNull())
    .addColumn('published_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('availability_published_pk', ['sku_id', 'channel_id'])
    .execute();

  await db.schema
    .createTable('feed_imports')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('as_of', 'bigint')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('rows_applied', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('rows_ignored', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('rows_rejected', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('problems', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .execute();
}
