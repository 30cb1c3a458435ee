// Turns dirty marks into availability.changed events: at most one per sku and channel per
// pass, and only when the figure changed. Marks are taken once they are `settleMs` old, by
// which time this process's projection holds the change (its own writes are applied at
// commit, other processes' through the outbox follower, which polls far more often), so
// the figures come from memory and the database work stays short. Marks are claimed by
// deleting them in the publishing transaction: two processes never publish the same mark.
import type { Ctx } from '../context.ts';
import { bulkInsert } from '../db/bulk.ts';
import { markDirty } from './dirty.ts';
import { appendEvents, type DomainEvent } from '../events/outbox.ts';

/**
 * Marks claimed per pass, oldest first. Each is a row deleted in the pass's transaction; a
 * million-row snapshot leaves up to one mark per sku per half-window (RecentMarks).
 */
const MARKS_PER_PASS = 50_000;

export async function publishAvailabilityChanges(ctx: Ctx, opts: { settleMs?: number; maxMarks?: number } = {}): Promise<{ skus: number; events: number }> {
  const { db } = ctx.store;
  const now = ctx.clock.now();
  const cutoff = now - (opts.settleMs ?? 0);
  // The settled marks, oldest first: read in id order, as they were written (no index on sku:
  // each capture's marks would write a random page of it). Most passes find none.
  const settled = await db
    .selectFrom('availability_dirty')
    .select(['id', 'sku_id'])
    .where('marked_at', '<=', cutoff)
    .orderBy('id')
    .limit(opts.maxMarks ?? MARKS_PER_PASS)
    .execute();
  if (settled.length === 0) return { skus: 0, events: 0 };
  const maxId = Number(settled[settled.length - 1].id);
  const channels = ctx.projection.allChannels().filter((c) => c.active);
  // The figures come from memory, before the transaction: by now this process's projection holds
  // every settled change (its own applied at commit, other processes' through the outbox
  // follower, which polls far more often than the settle window).
  const totals = new Map<string, number>();
  const total = (skuId: number, ch: { id: number; code: string }) => {
    const key = `${skuId}:${ch.id}`;
    let t = totals.get(key);
    if (t === undefined) totals.set(key, (t = ctx.projection.total(skuId, ch.code)));
    return t;
  };
  for (const r of settled) for (const ch of channels) total(Number(r.sku_id), ch);

  return db.transaction().execute(async (trx) => {
    // Claim by deleting: two processes never publish the same mark. Only marks old enough to be
    // settled go; one committed meanwhile below maxId (PostgreSQL assigns ids before commit) is
    // settled or not by its own time, and claimed with the others or by a later pass.
    const claimed = await trx.deleteFrom('availability_dirty').where('id', '<=', maxId).where('marked_at', '<=', cutoff).returning('sku_id').execute();
    if (claimed.length === 0) return { skus: 0, events: 0 };
    const mine = [...new Set(claimed.map((r) => Number(r.sku_id)))].sort((a, b) => a - b);
    const before = new Map<string, number>();
    for (let i = 0; i < mine.length; i += 1000) {
      const rows = await trx.selectFrom('availability_published').selectAll().where('sku_id', 'in', mine.slice(i, i + 1000)).execute();
      for (const p of rows) before.set(`${p.sku_id}:${p.channel_id}`, p.available);
    }
    const events: DomainEvent[] = [];
    const changed: number[][] = [];
    for (const skuId of mine) {
      const sku = ctx.projection.skuById(skuId);
      for (const ch of channels) {
        const key = `${skuId}:${ch.id}`;
        const available = total(skuId, ch);
        const previous = before.get(key);
        // Never published counts as 0: a sku a channel never saw appears when it gets stock.
        if ((previous ?? 0) === available) continue;
        changed.push([skuId, ch.id, available, now]);
        events.push({
          type: 'availability.changed',
          aggregateType: 'availability',
          aggregateId: `${sku?.code ?? skuId}:${ch.code}`,
          aggregateSeq: now,
          payload: { sku: sku?.code ?? null, channel: ch.code, available, previous: previous ?? 0 },
        });
      }
    }
    await bulkInsert(
      trx,
      ctx.store.dialect,
      'availability_published',
      [
        ['sku_id', 'bigint'],
        ['channel_id', 'bigint'],
        ['available', 'integer'],
        ['published_at', 'bigint'],
      ],
      changed,
      'on conflict (sku_id, channel_id) do update set available = excluded.available, published_at = excluded.published_at',
    );
    await appendEvents(trx, ctx.store.dialect, now, events);
    return { skus: mine.length, events: events.length };
  });
}

/**
 * The safety net under the debouncer: walks the catalogue a slice at a time and marks every
 * sku whose published figure differs from what this process computes now (a change whose
 * transaction outlived the settle window, a crash between a commit and its publication).
 * The debouncer then publishes the right figure; a full turn over 5,000 skus takes a few ticks.
 */
export class AvailabilityReconciler {
  private cursor = 0;
  constructor(
    private readonly ctx: Ctx,
    private readonly batch = 2000,
  ) {}

  async tick(): Promise<{ checked: number; marked: number }> {
    const { db, dialect } = this.ctx.store;
    const skus = await db.selectFrom('skus').select('id').where('id', '>', this.cursor).orderBy('id').limit(this.batch).execute();
    if (skus.length === 0) {
      this.cursor = 0;
      return { checked: 0, marked: 0 };
    }
    this.cursor = skus[skus.length - 1].id;
    const ids = skus.map((s) => s.id);
    const published = await db.selectFrom('availability_published').select(['sku_id', 'channel_id', 'available']).where('sku_id', 'in', ids).execute();
    const seen = new Map(published.map((p) => [`${p.sku_id}:${p.channel_id}`, p.available]));
    const channels = this.ctx.projection.allChannels().filter((c) => c.active);
    const wrong = ids.filter((id) => channels.some((ch) => (seen.get(`${id}:${ch.id}`) ?? 0) !== this.ctx.projection.total(id, ch.code)));
    if (wrong.length) await db.transaction().execute((trx) => markDirty(trx, dialect, wrong, this.ctx.clock.now()));
    return { checked: ids.length, marked: wrong.length };
  }
}
