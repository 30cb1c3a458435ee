// Daily fulfilment capacity: how many shipments each location has taken today. Sourcing and
// reservation count one per shipment in the same transaction; plans read a per-process copy
// refreshed at most once a second (capacity is a soft limit, so a second's lag is fine).
import type { Ctx } from '../context.ts';
import { WriteBatch } from '../db/bulk.ts';
import type { DbOrTrx, Dialect, Trx } from '../db/database.ts';
import { isoDay } from '../shared/clock.ts';

/**
 * Shipments taken today per location id, as one process knows them: a copy read from the
 * database, plus what this process counted since (`counted`, in order, so a reader that
 * derived figures from this copy can bring them up to date by reading only what is new).
 */
export class ShipmentsToday {
  readonly counted: number[] = [];

  constructor(private readonly byLocation: Map<number, number> = new Map()) {}

  get(locationId: number): number {
    return this.byLocation.get(locationId) ?? 0;
  }

  add(locationId: number): void {
    this.byLocation.set(locationId, this.get(locationId) + 1);
    this.counted.push(locationId);
  }
}

export class CapacityUsage {
  private day = '';
  private used = new ShipmentsToday();
  private loadedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly ttlMs = 1_000) {}

  private pending: Promise<void> | null = null;

  /**
   * Shipments taken today per location. A stale copy is served while one refresh runs in
   * the background (stale-while-revalidate): under load, a read queued behind the writers must
   * not hold every order up. A new day waits for its first read. A refresh is a new object.
   */
  async today(ctx: Ctx): Promise<ShipmentsToday> {
    const day = isoDay(ctx.clock.now());
    if (day === this.day && Date.now() - this.loadedAt < this.ttlMs) return this.used;
    this.pending ??= this.refresh(ctx, day).finally(() => {
      this.pending = null;
    });
    if (day !== this.day) await this.pending;
    return this.used;
  }

  private async refresh(ctx: Ctx, day: string): Promise<void> {
    const startedAt = Date.now();
    const used = await readUsage(ctx.store.db, day);
    this.used = new ShipmentsToday(used);
    this.day = day;
    this.loadedAt = startedAt;
  }

  invalidate(): void {
    this.loadedAt = Number.NEGATIVE_INFINITY;
  }

  /**
   * Counts shipments this process just committed, without a read: other processes' shipments
   * arrive with the next reload (at most ttlMs later).
   */
  record(locationIds: readonly number[], at: number): void {
    if (isoDay(at) !== this.day) return;
    for (const id of new Set(locationIds)) this.used.add(id);
  }
}

export async function readUsage(db: DbOrTrx, day: string): Promise<Map<number, number>> {
  const rows = await db.selectFrom('location_capacity_usage').select(['location_id', 'used']).where('day', '=', day).execute();
  return new Map(rows.map((r) => [r.location_id, r.used]));
}

/**
 * Counts one shipment for each location: one upsert, rows sorted so concurrent callers lock in
 * one order. With a batch, the upsert joins the batch's other inserts.
 */
export async function countShipments(trx: Trx, locationIds: number[], day: string, dialect: Dialect, batch?: WriteBatch): Promise<void> {
  const out = batch ?? new WriteBatch();
  countShipmentsTo(out, locationIds, day);
  if (!batch && out.size) await out.flush(trx, dialect);
}

/** countShipments, written with a batch's other inserts. */
export function countShipmentsTo(batch: WriteBatch, locationIds: number[], day: string): void {
  const ids = [...new Set(locationIds)].sort((a, b) => a - b);
  if (ids.length === 0) return;
  batch.insert(
    'location_capacity_usage',
    [
      ['location_id', 'bigint'],
      ['day', 'text'],
      ['used', 'integer'],
    ],
    ids.map((id) => [id, day, 1]),
    'on conflict (location_id, day) do update set used = location_capacity_usage.used + excluded.used',
    [],
    // Captures written as one statement (a PostgreSQL capture group) count a location once, summed.
    { key: [0, 1], add: 2 },
  );
}
