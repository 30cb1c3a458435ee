// Sourcing: versioned rule sets (immutable once saved), their publication history (the
// current rule set is the latest publication; a rollback is a new publication), and the
// shipments each location has taken per day (its remaining daily capacity).
import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { autoId } from './0001_inventory.ts';

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await autoId(db.schema.createTable('sourcing_rule_sets'), dialect)
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('note', 'text')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await autoId(db.schema.createTable('sourcing_publications'), dialect)
    .addColumn('rule_set_id', 'bigint', (c) => c.notNull().references('sourcing_rule_sets.id'))
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('published_by', 'text', (c) => c.notNull())
    .addColumn('published_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('location_capacity_usage')
    .addColumn('location_id', 'bigint', (c) => c.notNull())
    .addColumn('day', 'text', (c) => c.notNull())
    .addColumn('used', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('location_capacity_usage_pk', ['location_id', 'day'])
    .execute();
}
