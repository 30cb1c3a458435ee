// Stock positions and their ledger: deltas, snapshots, reservations, safety stock.
// Every write runs in one transaction that appends the movement(s), updates the counters
// with conditional updates (never read-modify-write without a lock), marks availability
// dirty and appends the outbox event. On PostgreSQL a snapshot chunk row-locks the positions
// it counts before reading the movements after as_of, so it never loses a concurrent delta;
// deltas and reservations take no lock beyond the row they update.
import { sql } from 'kysely';
import { markDirty } from '../availability/dirty.ts';
import type { PositionRow } from '../availability/projection.ts';
import type { Ctx } from '../context.ts';
import type { DbOrTrx, Trx } from '../db/database.ts';
import { inBatches, valuesList } from '../db/bulk.ts';
import { appendEvents } from '../events/outbox.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import type { MovementKind } from './model.ts';

const POSITION_COLS = ['location_id', 'sku_id', 'on_hand', 'reserved', 'quarantine', 'safety_stock', 'version'] as const;


async function ensurePosition(trx: Trx, locationId: number, skuId: number, now: number): Promise<void> {
  await trx
    .insertInto('stock_positions')
    .values({ location_id: locationId, sku_id: skuId, on_hand: 0, reserved: 0, quarantine: 0, version: 0, updated_at: now })
    .onConflict((oc) => oc.columns(['location_id', 'sku_id']).doNothing())
    .execute();
}

export function resolveIds(ctx: Ctx, locationCode: string, skuCode: string): { locationId: number; skuId: number } {
  const loc = ctx.projection.location(locationCode);
  if (!loc) throw new AppError('unknown_location', `Location '${locationCode}' does not exist`);
  const sku = ctx.projection.sku(skuCode);
  if (!sku) throw new AppError('unknown_sku', `SKU '${skuCode}' does not exist`);
  return { locationId: loc.id, skuId: sku.id };
}

// ---- deltas ---------------------------------------------------------------------------

export interface DeltaInput {
  location: string;
  sku: string;
  /** Signed change to on_hand (or to quarantine for kind quarantine/release_quarantine). */
  quantity: number;
  kind?: MovementKind;
  occurredAt?: number;
  seq?: number;
  idempotencyKey?: string;
  reference?: string;
}

export type DeltaOutcome =
  | { status: 'applied'; position: PositionRow; onHandChange: number }
  | { status: 'ignored'; reason: 'duplicate' | 'stale_sequence' };

export async function applyDelta(ctx: Ctx, d: DeltaInput, source: string): Promise<DeltaOutcome> {
  if (d.seq == null && !d.idempotencyKey) {
    throw new AppError('delta_key_required', 'A delta needs a seq (per location and sku) or an idempotency_key, so that a replay changes nothing');
  }
  const kind = d.kind ?? 'adjustment';
  if (kind === 'snapshot') throw new AppError('validation_failed', "kind 'snapshot' is not a delta; send a snapshot instead");
  const { locationId, skuId } = resolveIds(ctx, d.location, d.sku);
  const now = ctx.clock.now();
  const occurredAt = d.occurredAt ?? now;
  const toQuarantine = kind === 'quarantine' || kind === 'release_quarantine';
  const q = d.quantity;
  try {
    const outcome = await ctx.store.db.transaction().execute(async (trx): Promise<DeltaOutcome> => {
      // One upsert: create the position, or apply the change unless the sequence is stale.
      // A delta that happened before the current baseline is recorded but already counted.
      const seq = d.seq ?? null;
      const inBaseline = sql<boolean>`(stock_positions.baseline_as_of is not null and stock_positions.baseline_as_of >= ${occurredAt})`;
      const row = await trx
        .insertInto('stock_positions')
        .values({
          location_id: locationId,
          sku_id: skuId,
          on_hand: toQuarantine ? 0 : q,
          reserved: 0,
          quarantine: toQuarantine ? q : 0,
          last_seq: seq,
          version: 1,
          updated_at: now,
        })
        .onConflict((oc) => {
          let upd = oc.columns(['location_id', 'sku_id']).doUpdateSet((eb) => ({
            on_hand: toQuarantine ? eb.ref('stock_positions.on_hand') : sql<number>`stock_positions.on_hand + case when ${inBaseline} then 0 else ${q} end`,
            quarantine: toQuarantine ? sql<number>`stock_positions.quarantine + ${q}` : eb.ref('stock_positions.quarantine'),
            last_seq: seq === null ? eb.ref('stock_positions.last_seq') : sql<number>`${seq}`,
            version: sql<number>`stock_positions.version + 1`,
            updated_at: now,
          }));
          if (seq !== null) upd = upd.where((eb) => eb.or([eb('stock_positions.last_seq', 'is', null), eb('stock_positions.last_seq', '<', seq)]));
          if (toQuarantine) upd = upd.where(sql<boolean>`stock_positions.quarantine + ${q} >= 0`);
          return upd;
        })
        .returning([...POSITION_COLS, 'baseline_as_of'])
        .executeTakeFirst()
        .catch((e: { code?: string }) => {
          if (toQuarantine && /CHECK|23514/.test(`${e.code} ${String(e)}`)) throw new AppError('invalid_state', `Quarantine cannot become negative at ${d.location}/${d.sku}`);
          throw e;
        });
      if (!row) {
        if (toQuarantine && seq === null) {
          throw new AppError('invalid_state', `Quarantine cannot become negative at ${d.location}/${d.sku}`);
        }
        return { status: 'ignored', reason: 'stale_sequence' };
      }
      const counted = row.baseline_as_of !== null && row.baseline_as_of >= occurredAt;
      const onHandChange = toQuarantine || counted ? 0 : q;
      await trx
        .insertInto('stock_movements')
        .values({
          location_id: locationId,
          sku_id: skuId,
          kind,
          quantity: q,
          on_hand_change: onHandChange,
          quarantine_change: toQuarantine ? q : 0,
          occurred_at: occurredAt,
          recorded_at: now,
          source,
          idempotency_key: d.idempotencyKey ?? null,
          seq,
          reference: d.reference ?? null,
        })
        .execute();
      await markDirty(trx, ctx.store.dialect, [skuId], now);
      await appendEvents(trx, now, [
        {
          type: 'stock.adjusted',
          aggregateType: 'stock_position',
          aggregateId: `${d.location}:${d.sku}`,
          aggregateSeq: row.version,
          payload: { location: d.location, sku: d.sku, location_id: locationId, sku_id: skuId, kind, quantity: q, on_hand: row.on_hand, reserved: row.reserved, quarantine: row.quarantine },
        },
      ]);
      const { baseline_as_of: _b, ...position } = row;
      return { status: 'applied', position, onHandChange };
    });
    if (outcome.status === 'applied') ctx.projection.apply(outcome.position);
    return outcome;
  } catch (e) {
    // A replayed idempotency key hits the unique index on the movement: the whole
    // transaction, position update included, rolls back.
    if (isUniqueViolation(e)) return { status: 'ignored', reason: 'duplicate' };
    throw e;
  }
}

export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string };
  return err?.code === '23505' || err?.code === 'SQLITE_CONSTRAINT_UNIQUE' || err?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

// ---- snapshots ------------------------------------------------------------------------

export interface SnapshotRow {
  skuId: number;
  onHand: number;
  quarantine?: number;
}

export interface ChunkResult {
  applied: number;
  ignored: number;
  /** Set when the whole location snapshot is older than the current baseline. */
  stale: boolean;
}

/**
 * Applies one chunk (≤ 10,000 rows) of a snapshot of one location taken at `asOf`.
 * New on_hand = counted + every non-snapshot movement that occurred after `asOf`.
 * Reservations are untouched, so they survive. Rows whose position already has a newer
 * baseline are ignored.
 */
export async function applySnapshotChunk(
  ctx: Ctx,
  locationId: number,
  asOf: number,
  rows: SnapshotRow[],
  source: string,
  mode: 'full' | 'partial' = 'full',
): Promise<ChunkResult> {
  if (rows.length > 10_000) throw new Error('snapshot chunks are at most 10,000 rows');
  const now = ctx.clock.now();
  const dialect = ctx.store.dialect;
  const sorted = [...rows].sort((a, b) => a.skuId - b.skuId);
  const result = await ctx.store.db.transaction().execute(async (trx) => {
    const pg = dialect === 'postgres';
    // SQLite: BEGIN IMMEDIATE already serialises writers. PostgreSQL: lock the location row
    // (one snapshot at a time per location) and every position of the chunk, creating the
    // missing ones first, so no delta can commit between our read of the ledger and our write.
    const loc = await trx
      .selectFrom('locations')
      .select(['code', 'snapshot_as_of'])
      .where('id', '=', locationId)
      // NO KEY UPDATE: it serialises snapshots of this location, yet lets deltas' foreign-key
      // checks (KEY SHARE) through; a plain FOR UPDATE here deadlocks against them.
      .$if(pg, (q) => q.forNoKeyUpdate())
      .executeTakeFirstOrThrow();
    // A full count older than the location's last full count is stale as a whole. A partial
    // count (cycle count) is judged per position, by each position's own baseline.
    if (mode === 'full' && loc.snapshot_as_of !== null && asOf < loc.snapshot_as_of) return { applied: 0, ignored: rows.length, stale: true, written: [] as PositionRow[] };
    const lo = sorted[0]?.skuId ?? 0;
    const hi = sorted[sorted.length - 1]?.skuId ?? 0;
    if (pg) {
      await inBatches(
        trx,
        sorted,
        1000,
        (n) => `insert into stock_positions (location_id, sku_id, on_hand, reserved, quarantine, version, updated_at) values ${valuesList(dialect, n, 7)} on conflict (location_id, sku_id) do nothing`,
        (r, p) => p.push(locationId, r.skuId, 0, 0, 0, 0, now),
      );
    }
    const existing = await trx
      .selectFrom('stock_positions')
      .select(['sku_id', 'on_hand', 'quarantine', 'baseline_as_of'])
      .where('location_id', '=', locationId)
      .where('sku_id', '>=', lo)
      .where('sku_id', '<=', hi)
      .$if(pg, (q) => q.orderBy('sku_id').forUpdate())
      .execute();
    const after = await movementsAfter(trx, locationId, asOf);
    const old = new Map(existing.map((r) => [r.sku_id, r]));
    type Out = { skuId: number; onHand: number; quarantine: number; dOnHand: number; dQuarantine: number; counted: number };
    const writes: Out[] = [];
    let ignored = 0;
    let lastSku = -1;
    for (const r of sorted) {
      const prev = old.get(r.skuId);
      if (r.skuId === lastSku || (prev && prev.baseline_as_of !== null && prev.baseline_as_of >= asOf)) {
        ignored++;
        continue;
      }
      lastSku = r.skuId;
      const a = after.get(r.skuId);
      const onHand = r.onHand + (a?.onHand ?? 0);
      const quarantine = r.quarantine === undefined ? (prev?.quarantine ?? 0) : Math.max(0, r.quarantine + (a?.quarantine ?? 0));
      writes.push({ skuId: r.skuId, onHand, quarantine, dOnHand: onHand - (prev?.on_hand ?? 0), dQuarantine: quarantine - (prev?.quarantine ?? 0), counted: r.onHand });
    }
    const written = await writePositions(trx, dialect, locationId, asOf, now, writes);
    const moved = writes.filter((w) => w.dOnHand !== 0 || w.dQuarantine !== 0);
    await inBatches(
      trx,
      moved,
      1000,
      (n) =>
        `insert into stock_movements (location_id, sku_id, kind, quantity, on_hand_change, quarantine_change, occurred_at, recorded_at, source) values ${valuesList(dialect, n, 9)}`,
      (w, p) => p.push(locationId, w.skuId, 'snapshot', w.counted, w.dOnHand, w.dQuarantine, asOf, now, source),
    );
    if (mode === 'full') {
      await trx
        .updateTable('locations')
        .set({ snapshot_as_of: asOf })
        .where('id', '=', locationId)
        .where((eb) => eb.or([eb('snapshot_as_of', 'is', null), eb('snapshot_as_of', '<', asOf)]))
        .execute();
    }
    await markDirty(trx, dialect, moved.map((w) => w.skuId), now);
    await appendEvents(trx, now, [
      {
        type: 'stock.snapshot_applied',
        aggregateType: 'location',
        aggregateId: loc.code,
        aggregateSeq: asOf,
        payload: { location: loc.code, location_id: locationId, as_of: new Date(asOf).toISOString(), rows_applied: writes.length, sku_ids: writes.map((w) => w.skuId) },
      },
    ]);
    return { applied: writes.length, ignored, stale: false, written };
  });
  ctx.projection.applyAll(result.written);
  return { applied: result.applied, ignored: result.ignored, stale: result.stale };
}

/**
 * Ends a full snapshot: positions of the location that the snapshot did not list are
 * counted as zero (plus movements after `asOf`), in chunks.
 */
export async function finishFullSnapshot(ctx: Ctx, locationId: number, asOf: number, source: string): Promise<number> {
  let zeroed = 0;
  for (;;) {
    const ids = await ctx.store.db
      .selectFrom('stock_positions')
      .select('sku_id')
      .where('location_id', '=', locationId)
      .where((eb) => eb.or([eb('baseline_as_of', 'is', null), eb('baseline_as_of', '<', asOf)]))
      .orderBy('sku_id')
      .limit(10_000)
      .execute();
    if (ids.length === 0) return zeroed;
    const r = await applySnapshotChunk(ctx, locationId, asOf, ids.map((i) => ({ skuId: i.sku_id, onHand: 0 })), source);
    zeroed += r.applied;
    if (r.stale || r.applied === 0) return zeroed;
  }
}

async function movementsAfter(trx: Trx, locationId: number, asOf: number): Promise<Map<number, { onHand: number; quarantine: number }>> {
  const rows = await trx
    .selectFrom('stock_movements')
    .select((eb) => ['sku_id', eb.fn.sum<number>('on_hand_change').as('on_hand'), eb.fn.sum<number>('quarantine_change').as('quarantine')])
    .where('location_id', '=', locationId)
    .where('occurred_at', '>', asOf)
    .where('kind', '<>', 'snapshot')
    .groupBy('sku_id')
    .execute();
  return new Map(rows.map((r) => [r.sku_id, { onHand: Number(r.on_hand), quarantine: Number(r.quarantine) }]));
}

async function writePositions(
  trx: Trx,
  dialect: Ctx['store']['dialect'],
  locationId: number,
  asOf: number,
  now: number,
  writes: { skuId: number; onHand: number; quarantine: number }[],
): Promise<PositionRow[]> {
  return inBatches<(typeof writes)[number], PositionRow>(
    trx,
    writes,
    1000,
    (n) =>
      `insert into stock_positions (location_id, sku_id, on_hand, reserved, quarantine, baseline_as_of, version, updated_at) values ${valuesList(dialect, n, 8)}
       on conflict (location_id, sku_id) do update set on_hand = excluded.on_hand, quarantine = excluded.quarantine,
       baseline_as_of = excluded.baseline_as_of, version = stock_positions.version + 1, updated_at = excluded.updated_at
       returning location_id, sku_id, on_hand, reserved, quarantine, safety_stock, version`,
    (w, p) => p.push(locationId, w.skuId, w.onHand, 0, w.quarantine, asOf, 1, now),
  );
}

// ---- safety stock ---------------------------------------------------------------------

export async function setSafetyStock(ctx: Ctx, location: string, sku: string, safetyStock: number | null): Promise<PositionRow> {
  const { locationId, skuId } = resolveIds(ctx, location, sku);
  const now = ctx.clock.now();
  const row = await ctx.store.db.transaction().execute(async (trx) => {
    await ensurePosition(trx, locationId, skuId, now);
    const row = await trx
      .updateTable('stock_positions')
      .set({ safety_stock: safetyStock, version: sql<number>`version + 1`, updated_at: now })
      .where('location_id', '=', locationId)
      .where('sku_id', '=', skuId)
      .returning([...POSITION_COLS])
      .executeTakeFirstOrThrow();
    await markDirty(trx, ctx.store.dialect, [skuId], now);
    await appendEvents(trx, now, [
      { type: 'stock.safety_stock_set', aggregateType: 'stock_position', aggregateId: `${location}:${sku}`, aggregateSeq: row.version, payload: { location, sku, location_id: locationId, sku_id: skuId, safety_stock: safetyStock } },
    ]);
    return row;
  });
  ctx.projection.apply(row);
  return row;
}

// ---- reservations ---------------------------------------------------------------------

export interface ReservationInput {
  location: string;
  sku: string;
  quantity: number;
  /** Units the channel must leave untouched at this location (its buffer). */
  buffer?: number;
  channelId?: number | null;
  reference?: string | null;
}

export interface Reservation {
  id: string;
  locationId: number;
  skuId: number;
  quantity: number;
  status: 'active' | 'released' | 'consumed';
  reference: string | null;
}

/**
 * Reserves only if, at this instant in the database, available ≥ quantity (invariant 1).
 * A single conditional UPDATE does the check and the increment, so concurrent callers on
 * any number of processes can never oversell.
 */
export async function reserve(ctx: Ctx, input: ReservationInput, trxIn?: Trx): Promise<Reservation> {
  if (!Number.isInteger(input.quantity) || input.quantity <= 0) throw new AppError('validation_failed', 'quantity must be a positive integer');
  const { locationId, skuId } = resolveIds(ctx, input.location, input.sku);
  const now = ctx.clock.now();
  const run = async (trx: Trx) => {
    const q = input.quantity;
    const buffer = input.buffer ?? 0;
    const row = await trx
      .updateTable('stock_positions')
      .set({ reserved: sql<number>`reserved + ${q}`, version: sql<number>`version + 1`, updated_at: now })
      .where('location_id', '=', locationId)
      .where('sku_id', '=', skuId)
      .where(
        sql<boolean>`on_hand - reserved - quarantine - coalesce(safety_stock, (select default_safety_stock from locations where id = ${locationId})) - ${buffer} >= ${q}`,
      )
      .returning([...POSITION_COLS])
      .executeTakeFirst();
    if (!row) throw new AppError('insufficient_stock', `Not enough available stock of '${input.sku}' at '${input.location}' for ${q} unit(s)`, { location: input.location, sku: input.sku, requested: q });
    const id = newId('res');
    await trx
      .insertInto('reservations')
      .values({ id, location_id: locationId, sku_id: skuId, quantity: q, status: 'active', channel_id: input.channelId ?? null, reference: input.reference ?? null, created_at: now, updated_at: now })
      .execute();
    await markDirty(trx, ctx.store.dialect, [skuId], now);
    await appendEvents(trx, now, [
      { type: 'stock.reserved', aggregateType: 'reservation', aggregateId: id, aggregateSeq: 1, payload: { reservation_id: id, location: input.location, sku: input.sku, location_id: locationId, sku_id: skuId, quantity: q, reference: input.reference ?? null } },
    ]);
    return { row, reservation: { id, locationId, skuId, quantity: q, status: 'active' as const, reference: input.reference ?? null } };
  };
  const { row, reservation } = trxIn ? await run(trxIn) : await ctx.store.db.transaction().execute(run);
  if (!trxIn) ctx.projection.apply(row);
  return reservation;
}

/** Releases (or consumes) an active reservation exactly once; a second call is a no-op. */
export async function endReservation(ctx: Ctx, id: string, to: 'released' | 'consumed'): Promise<{ changed: boolean }> {
  const now = ctx.clock.now();
  const result = await ctx.store.db.transaction().execute(async (trx) => {
    const res = await trx
      .updateTable('reservations')
      .set({ status: to, updated_at: now })
      .where('id', '=', id)
      .where('status', '=', 'active')
      .returning(['location_id', 'sku_id', 'quantity'])
      .executeTakeFirst();
    if (!res) {
      const exists = await trx.selectFrom('reservations').select('id').where('id', '=', id).executeTakeFirst();
      if (!exists) throw new AppError('not_found', `Reservation '${id}' not found`);
      return null;
    }
    const row = await trx
      .updateTable('stock_positions')
      .set({ reserved: sql<number>`reserved - ${res.quantity}`, version: sql<number>`version + 1`, updated_at: now })
      .where('location_id', '=', res.location_id)
      .where('sku_id', '=', res.sku_id)
      .returning([...POSITION_COLS])
      .executeTakeFirstOrThrow();
    await markDirty(trx, ctx.store.dialect, [res.sku_id], now);
    await appendEvents(trx, now, [
      { type: to === 'released' ? 'stock.reservation_released' : 'stock.reservation_consumed', aggregateType: 'reservation', aggregateId: id, aggregateSeq: 2, payload: { reservation_id: id, location_id: res.location_id, sku_id: res.sku_id, quantity: res.quantity } },
    ]);
    return row;
  });
  if (result) ctx.projection.apply(result);
  return { changed: result !== null };
}

export async function getPosition(db: DbOrTrx, locationId: number, skuId: number) {
  return db.selectFrom('stock_positions').selectAll().where('location_id', '=', locationId).where('sku_id', '=', skuId).executeTakeFirst();
}

export async function listMovements(db: DbOrTrx, f: { locationId: number; skuId?: number; afterId?: number; limit: number }) {
  let q = db.selectFrom('stock_movements').selectAll().where('location_id', '=', f.locationId);
  if (f.skuId) q = q.where('sku_id', '=', f.skuId);
  if (f.afterId) q = q.where('id', '>', f.afterId);
  return q.orderBy('id').limit(f.limit).execute();
}

