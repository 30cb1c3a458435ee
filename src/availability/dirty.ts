// Marks skus whose availability may have changed, in the same transaction as the change.
// The debouncer turns marks into availability.changed events.
import { sql } from 'kysely';
import type { DbOrTrx, Dialect } from '../db/database.ts';
import { bulkInsert } from '../db/bulk.ts';

export async function markDirty(trx: DbOrTrx, dialect: Dialect, skuIds: Iterable<number>, now: number): Promise<void> {
  const ids = [...new Set(skuIds)];
  if (ids.length === 0) return;
  await bulkInsert(trx, dialect, 'availability_dirty', [['sku_id', 'bigint'], ['marked_at', 'bigint']], ids.map((id) => [id, now]));
}

/** Marks every sku: a channel's exposure or a location's facts changed. One statement. */
export async function markAllDirty(trx: DbOrTrx, now: number): Promise<void> {
  await sql`insert into availability_dirty (sku_id, marked_at) select id, ${now} from skus`.execute(trx);
}
