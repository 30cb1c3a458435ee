// Turns dirty marks into availability.changed events, at most one per sku and channel per
// pass (the debounce window). Values are recomputed from the database, not the projection,
// so every process emits the same truth. One pass runs at a time across processes
// (SQLite's write lock; a transaction-scoped advisory lock on PostgreSQL).
import { sql } from 'kysely';
import type { Ctx } from '../context.ts';
import { appendEvents } from '../events/outbox.ts';
import { channelAvailable } from './atp.ts';

const ADVISORY_KEY = 7_300_001;

export async function publishAvailabilityChanges(ctx: Ctx, maxSkus = 1000): Promise<{ skus: number; events: number }> {
  const { db, dialect } = ctx.store;
  const channels = ctx.projection.allChannels().filter((c) => c.active);
  return db.transaction().execute(async (trx) => {
    if (dialect === 'postgres') {
      const got = await sql<{ ok: boolean }>`select pg_try_advisory_xact_lock(${ADVISORY_KEY}) as ok`.execute(trx);
      if (!got.rows[0]?.ok) return { skus: 0, events: 0 };
    }
    const marks = await trx.selectFrom('availability_dirty').select(['id', 'sku_id']).orderBy('id').limit(maxSkus * 4).execute();
    if (marks.length === 0) return { skus: 0, events: 0 };
    const skuIds = [...new Set(marks.map((m) => m.sku_id))];
    const rows = await trx
      .selectFrom('stock_positions')
      .select(['location_id', 'sku_id', 'on_hand', 'reserved', 'quarantine', 'safety_stock'])
      .where('sku_id', 'in', skuIds)
      .execute();
    const totals = new Map<string, number>();
    for (const r of rows) {
      const loc = ctx.projection.locationById(r.location_id);
      if (!loc) continue;
      const sell = r.on_hand - r.reserved - r.quarantine - (r.safety_stock ?? loc.defaultSafetyStock);
      for (const ch of channels) {
        if (!ctx.projection.isExposed(ch.code, r.location_id)) continue;
        const key = `${r.sku_id}:${ch.id}`;
        totals.set(key, (totals.get(key) ?? 0) + (sell > 0 ? channelAvailable(sell, ch) : 0));
      }
    }
    const published = await trx.selectFrom('availability_published').selectAll().where('sku_id', 'in', skuIds).execute();
    const before = new Map(published.map((p) => [`${p.sku_id}:${p.channel_id}`, p.available]));
    const now = ctx.clock.now();
    const events = [];
    for (const skuId of skuIds) {
      const sku = ctx.projection.skuById(skuId);
      for (const ch of channels) {
        const key = `${skuId}:${ch.id}`;
        const available = totals.get(key) ?? 0;
        const previous = before.get(key);
        // Never published counts as 0: a sku a channel never saw appears when it gets stock.
        if ((previous ?? 0) === available) continue;
        if (previous === undefined) {
          await trx.insertInto('availability_published').values({ sku_id: skuId, channel_id: ch.id, available, published_at: now }).execute();
        } else {
          await trx.updateTable('availability_published').set({ available, published_at: now }).where('sku_id', '=', skuId).where('channel_id', '=', ch.id).execute();
        }
        events.push({
          type: 'availability.changed',
          aggregateType: 'availability',
          aggregateId: `${sku?.code ?? skuId}:${ch.code}`,
          aggregateSeq: now,
          payload: { sku: sku?.code ?? null, channel: ch.code, available, previous: previous ?? 0 },
        });
      }
    }
    await appendEvents(trx, now, events);
    // Delete exactly the marks read: on PostgreSQL a lower id may commit after our read.
    const ids = marks.map((m) => m.id);
    for (let i = 0; i < ids.length; i += 1000) await trx.deleteFrom('availability_dirty').where('id', 'in', ids.slice(i, i + 1000)).execute();
    return { skus: skuIds.length, events: events.length };
  });
}
