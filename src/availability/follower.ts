// Keeps this process's projection current with changes written by other OMS processes
// (or by `oms stock import` on the same embedded file), by following the outbox.
// Outbox ids can commit out of order on PostgreSQL: an id skipped over is remembered as a
// gap and looked up again for GAP_WAIT_MS. Re-applying is harmless: rows carry versions.
import { type ExpressionBuilder, sql } from 'kysely';
import type { Ctx } from '../context.ts';
import type { Database } from '../db/schema.ts';
import { toChannel } from '../channels/channels.ts';
import { PROCESS_ORIGIN } from '../events/outbox.ts';
import { toLocationFacts } from '../inventory/locations.ts';
import { reloadSupply, SKU_META_COLUMNS, toSkuMeta } from './projection.ts';

const GAP_WAIT_MS = 5_000;
const BATCH = 5000;
/** Positions re-read per statement (two parameters each). */
const POSITIONS_PER_READ = 500;
const POSITION_COLUMNS = ['location_id', 'sku_id', 'on_hand', 'reserved', 'quarantine', 'safety_stock', 'version'] as const;

export class OutboxFollower {
  /** Highest outbox id read so far. */
  private cursor = 0;
  /** Ids below the cursor not seen yet (uncommitted when we read past them), with first-miss time. */
  private gaps = new Map<number, number>();
  private running = false;
  /**
   * Positions named by the stock events of this poll, read once at its end: one statement per
   * POSITIONS_PER_READ positions instead of one per event (a capture reserves several positions,
   * and another process's captures arrive by the hundred). Reading later only reads newer rows.
   */
  private positions = new Map<string, [number, number]>();

  /** skipOrigin: events this process wrote itself are already in its projection. */
  constructor(
    private ctx: Ctx,
    private skipOrigin: string | null = PROCESS_ORIGIN,
  ) {}

  /** Starts after everything that is already committed (the projection was just loaded). */
  async init(): Promise<void> {
    const r = await this.ctx.store.db.selectFrom('outbox').select((eb) => eb.fn.max('id').as('m')).executeTakeFirst();
    this.cursor = Number(r?.m ?? 0);
  }

  async poll(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    try {
      const db = this.ctx.store.db;
      const now = Date.now();
      let applied = 0;
      if (this.gaps.size > 0) {
        const late = await db.selectFrom('outbox').select(this.columns()).where('id', 'in', [...this.gaps.keys()]).execute();
        for (const r of late) {
          this.gaps.delete(r.id);
          if (await this.handle(r)) applied++;
        }
        // A gap that stays empty this long was a rolled-back transaction.
        for (const [id, since] of this.gaps) if (now - since > GAP_WAIT_MS) this.gaps.delete(id);
      }
      // SQLite: one writer at a time, and AUTOINCREMENT ids: every id below the highest one
      // visible is committed, and none lower ever comes later. No gaps to watch, so this
      // process's own events (most of the outbox) need not come back: only other origins' rows,
      // and the last row, for the cursor. PostgreSQL assigns ids before commits that can land
      // out of order: every row comes back, and the ids skipped over are gaps.
      const ordered = this.ctx.store.dialect === 'sqlite' && this.skipOrigin !== null;
      const skip = this.skipOrigin ?? '';
      for (;;) {
        let q = db.selectFrom('outbox').select(this.columns()).where('id', '>', this.cursor);
        if (ordered) q = q.where((eb) => eb.or([eb('origin', '<>', skip), eb('id', '=', eb.selectFrom('outbox').select(eb.fn.max('id').as('m')))]));
        const rows = await q.orderBy('id').limit(BATCH).execute();
        for (const r of rows) {
          if (!ordered) for (let missing = this.cursor + 1; missing < r.id; missing++) this.gaps.set(missing, now);
          this.cursor = r.id;
          if (await this.handle(r)) applied++;
        }
        await this.readPositions();
        if (rows.length < BATCH) break;
      }
      await this.readPositions();
      return applied;
    } finally {
      this.running = false;
    }
  }

  /** Our own events' payloads (a snapshot batch's lists thousands of skus) are not fetched. */
  private columns() {
    const skip = this.skipOrigin;
    return (eb: ExpressionBuilder<Database, 'outbox'>) => [
      'id' as const,
      'type' as const,
      'aggregate_id' as const,
      'origin' as const,
      skip === null ? eb.ref('payload').as('payload') : eb.case().when('origin', '=', skip).then(sql<string>`null`).else(eb.ref('payload')).end().as('payload'),
    ];
  }

  /**
   * Reads the positions the stock events named since the last call, and applies them. A
   * position leaves the list once applied: after a failed read, the next poll reads it again.
   */
  private async readPositions(): Promise<void> {
    if (this.positions.size === 0) return;
    const keys = [...this.positions.keys()];
    const { db } = this.ctx.store;
    for (let i = 0; i < keys.length; i += POSITIONS_PER_READ) {
      const chunkKeys = keys.slice(i, i + POSITIONS_PER_READ);
      const chunk = chunkKeys.map((key) => this.positions.get(key) as [number, number]);
      const rows = await db
        .selectFrom('stock_positions')
        .select(POSITION_COLUMNS)
        .where((eb) =>
          eb(
            eb.refTuple('location_id', 'sku_id'),
            'in',
            chunk.map(([l, k]) => eb.tuple(l, k)),
          ),
        )
        .execute();
      this.ctx.projection.applyAll(rows);
      for (const key of chunkKeys) this.positions.delete(key);
    }
  }

  private async handle(r: { type: string; payload: string | null; aggregate_id: string; origin: string }): Promise<boolean> {
    if (r.origin === this.skipOrigin || r.payload === null) return false;
    await this.applyEvent(r.type, r.aggregate_id, JSON.parse(r.payload) as Record<string, unknown>);
    return true;
  }

  private async applyEvent(type: string, aggregateId: string, payload: Record<string, unknown>): Promise<void> {
    const { db } = this.ctx.store;
    const p = this.ctx.projection;
    if (type.startsWith('stock.') && type !== 'stock.snapshot_applied') {
      const locationId = Number(payload.location_id);
      const skuId = Number(payload.sku_id);
      this.positions.set(`${locationId}:${skuId}`, [locationId, skuId]);
    } else if (type === 'stock.snapshot_applied') {
      const ids = (payload.sku_ids as number[]) ?? [];
      for (let i = 0; i < ids.length; i += 5000) {
        const rows = await db
          .selectFrom('stock_positions')
          .select(POSITION_COLUMNS)
          .where('location_id', '=', Number(payload.location_id))
          .where('sku_id', 'in', ids.slice(i, i + 5000))
          .execute();
        p.applyAll(rows);
      }
    } else if (type.startsWith('location.')) {
      const row = await db.selectFrom('locations').selectAll().where('code', '=', aggregateId).executeTakeFirst();
      if (row) p.setLocation(toLocationFacts(row));
    } else if (type.startsWith('sku.')) {
      const row = await db.selectFrom('skus').select(SKU_META_COLUMNS).where('code', '=', aggregateId).executeTakeFirst();
      if (row) p.setSku(toSkuMeta(row));
    } else if (type.startsWith('channel.')) {
      const row = await db.selectFrom('channels').selectAll().where('code', '=', aggregateId).executeTakeFirst();
      if (row) p.setChannel(toChannel(row));
    } else if (type.startsWith('supply.')) {
      // upserted, or allocated / released / converted by a backorder: what is free to promise changed.
      await reloadSupply(db, p, [Number(payload.sku_id)]);
    }
  }
}
