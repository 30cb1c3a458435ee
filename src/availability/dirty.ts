// Marks skus whose availability may have changed, in the same transaction as the change.
// The debouncer turns marks into availability.changed events.
import { sql } from 'kysely';
import type { DbOrTrx, Dialect } from '../db/database.ts';
import { bulkInsert, type WriteBatch } from '../db/bulk.ts';

export async function markDirty(trx: DbOrTrx, dialect: Dialect, skuIds: Iterable<number>, now: number, recent?: RecentMarks): Promise<number[]> {
  const ids = [...new Set(skuIds)].filter((id) => !recent?.covers(id, now));
  if (ids.length === 0) return ids;
  await bulkInsert(trx, dialect, 'availability_dirty', [['sku_id', 'bigint']], ids.map((id) => [id]), '', [['marked_at', 'bigint', now]]);
  return ids;
}

/** markDirty, written with a batch's other inserts. */
export function markDirtyTo(batch: WriteBatch, skuIds: Iterable<number>, now: number): void {
  batch.insert('availability_dirty', [['sku_id', 'bigint']], [...new Set(skuIds)].map((id) => [id]), '', [['marked_at', 'bigint', now]]);
}

/**
 * Marks this process committed recently. The debouncer only claims marks older than its
 * settle window, so a mark committed less than half a window ago is certain to still be
 * waiting: a change committing now is covered by it and need not write another. A
 * million-row snapshot thus marks each sku about once per half-window instead of once per
 * 10,000-row batch. Record marks only after their transaction committed.
 */
export class RecentMarks {
  private at = new Map<number, number>();
  constructor(private readonly windowMs: number) {}
  covers(skuId: number, now: number): boolean {
    const t = this.at.get(skuId);
    return t !== undefined && now - t < this.windowMs / 2;
  }
  committed(skuIds: number[], now: number): void {
    if (this.at.size > 1_000_000) this.at.clear();
    for (const id of skuIds) this.at.set(id, now);
  }
}

/** Marks every sku: a channel's exposure or a location's facts changed. One statement. */
export async function markAllDirty(trx: DbOrTrx, now: number): Promise<void> {
  await sql`insert into availability_dirty (sku_id, marked_at) select id, ${now} from skus`.execute(trx);
}
