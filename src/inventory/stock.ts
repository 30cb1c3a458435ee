// Stock positions and their ledger: deltas, reservations, safety stock (snapshots: snapshot.ts).
// Every write runs in one transaction that appends the movement(s), updates the counters
// with conditional updates (never read-modify-write without a lock), marks availability
// dirty and appends the outbox event. On PostgreSQL a snapshot chunk row-locks the positions
// it counts before reading the movements after as_of, so it never loses a concurrent delta;
// deltas and reservations take no lock beyond the row they update.
import { sql } from 'kysely';
import { markDirty, markDirtyTo } from '../availability/dirty.ts';
import type { PositionRow } from '../availability/projection.ts';
import type { Ctx } from '../context.ts';
import { type DbOrTrx, type Dialect, PREPARED, type Trx } from '../db/database.ts';
import { execRaw, type GuardedLead, type LeadCombiner, pgArray, valuesList, WriteBatch } from '../db/bulk.ts';
import { appendEvents, appendEventsTo, type DomainEvent } from '../events/outbox.ts';
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
      await appendEvents(trx, ctx.store.dialect, now, [
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
    await appendEvents(trx, ctx.store.dialect, now, [
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
  const run = (trx: Trx) => reserveWithin(ctx, trx, input);
  const { row, reservation } = trxIn ? await run(trxIn) : await ctx.store.db.transaction().execute(run);
  if (!trxIn) ctx.projection.apply(row);
  return reservation;
}

/**
 * The reservation inside a caller's transaction. Returns the position row as committed, for
 * the caller to apply to the projection after its commit.
 */
export async function reserveWithin(ctx: Ctx, trx: Trx, input: ReservationInput): Promise<{ row: PositionRow; reservation: Reservation }> {
  if (!Number.isInteger(input.quantity) || input.quantity <= 0) throw new AppError('validation_failed', 'quantity must be a positive integer');
  const { locationId, skuId } = resolveIds(ctx, input.location, input.sku);
  const q = input.quantity;
  const done = await reserveAll(ctx, trx, [{ locationId, skuId, quantity: q }], { buffer: input.buffer ?? 0, channelId: input.channelId ?? null, reference: input.reference ?? null });
  if (!done) throw new AppError('insufficient_stock', `Not enough available stock of '${input.sku}' at '${input.location}' for ${q} unit(s)`, { location: input.location, sku: input.sku, requested: q });
  return { row: done.rows[0], reservation: done.reservations[0] };
}

export interface ReservationRequest {
  locationId: number;
  skuId: number;
  quantity: number;
}

const reserveSqlCache = new Map<string, string>();

/**
 * The conditional reservation of many positions in one UPDATE. Rows come sorted by (location,
 * sku): PostgreSQL then locks them in that order (a nested loop over the sorted input), so
 * concurrent orders do not deadlock; if it ever happens, the caller retries like a lost race.
 */
function reserveSql(dialect: Dialect, n: number): string {
  const key = `${dialect}:${n}`;
  let text = reserveSqlCache.get(key);
  if (text) return text;
  const returning = 'returning stock_positions.location_id, stock_positions.sku_id, stock_positions.on_hand, stock_positions.reserved, stock_positions.quarantine, stock_positions.safety_stock, stock_positions.version';
  text =
    dialect === 'postgres'
      ? `${PREPARED}update stock_positions set reserved = stock_positions.reserved + v.q, version = stock_positions.version + 1, updated_at = $4
         from (select * from unnest($1::bigint[], $2::bigint[], $3::int[]) as t(l, s, q) order by l, s) v
         where stock_positions.location_id = v.l and stock_positions.sku_id = v.s
           and stock_positions.on_hand - stock_positions.reserved - stock_positions.quarantine
               - coalesce(stock_positions.safety_stock, (select default_safety_stock from locations where id = v.l)) - $5 >= v.q
         ${returning}`
      : `update stock_positions set reserved = stock_positions.reserved + v.column3, version = stock_positions.version + 1, updated_at = ?
         from (values ${valuesList('sqlite', n, 3)}) as v
         where stock_positions.location_id = v.column1 and stock_positions.sku_id = v.column2
           and stock_positions.on_hand - stock_positions.reserved - stock_positions.quarantine
               - coalesce(stock_positions.safety_stock, (select default_safety_stock from locations where id = v.column1)) - ? >= v.column3
         ${returning}`;
  if (reserveSqlCache.size > 100) reserveSqlCache.clear();
  reserveSqlCache.set(key, text);
  return text;
}

function reserveParams(dialect: Dialect, rows: readonly ReservationRequest[], buffer: number, now: number): unknown[] {
  if (dialect === 'postgres') {
    return [pgArray(rows.map((r) => r.locationId), 'bigint'), pgArray(rows.map((r) => r.skuId), 'bigint'), pgArray(rows.map((r) => r.quantity), 'integer'), now, buffer];
  }
  const params: unknown[] = [now];
  for (const r of rows) params.push(r.locationId, r.skuId, r.quantity);
  params.push(buffer);
  return params;
}

const positionKey = (locationId: unknown, skuId: unknown) => `${locationId}:${skuId}`;

/** Requests merged per position and sorted by (location, sku): the order rows are locked in. */
function orderedPositions(requests: readonly ReservationRequest[]): ReservationRequest[] {
  const need = new Map<string, ReservationRequest>();
  for (const r of requests) {
    if (!Number.isInteger(r.quantity) || r.quantity <= 0) throw new AppError('validation_failed', 'quantity must be a positive integer');
    const k = positionKey(r.locationId, r.skuId);
    const cur = need.get(k);
    // Only the position and quantity: callers pass allocations with more fields, not worth copying.
    if (cur) cur.quantity += r.quantity;
    else need.set(k, { locationId: r.locationId, skuId: r.skuId, quantity: r.quantity });
  }
  return [...need.values()].sort((a, b) => a.locationId - b.locationId || a.skuId - b.skuId);
}

type ReserveOptions = { buffer: number; channelId: number | null; reference: string | null };

/** What reserving writes besides the positions: the reservation rows, dirty marks and events, into `batch`. */
function recordReservations(requests: readonly ReservationRequest[], ordered: readonly ReservationRequest[], opts: ReserveOptions, now: number, batch: WriteBatch): Reservation[] {
  const reservations: Reservation[] = requests.map((r) => ({ id: newId('res'), locationId: r.locationId, skuId: r.skuId, quantity: r.quantity, status: 'active' as const, reference: opts.reference }));
  batch.insert(
    'reservations',
    [
      ['id', 'text'],
      ['location_id', 'bigint'],
      ['sku_id', 'bigint'],
      ['quantity', 'integer'],
    ],
    reservations.map((r) => [r.id, r.locationId, r.skuId, r.quantity]),
    '',
    [
      ['status', 'text', 'active'],
      ['channel_id', 'bigint', opts.channelId],
      ['reference', 'text', opts.reference],
      ['created_at', 'bigint', now],
      ['updated_at', 'bigint', now],
    ],
  );
  markDirtyTo(
    batch,
    ordered.map((r) => r.skuId),
    now,
  );
  appendEventsTo(
    batch,
    now,
    reservations.map((r) => ({
      type: 'stock.reserved',
      aggregateType: 'reservation',
      aggregateId: r.id,
      aggregateSeq: 1,
      payload: { reservation_id: r.id, location_id: r.locationId, sku_id: r.skuId, quantity: r.quantity, reference: r.reference },
    })),
  );
  return reservations;
}

/**
 * Many reservations in the caller's transaction (order capture): one conditional UPDATE per
 * (location, sku), in that order so concurrent orders never deadlock, then the reservation
 * rows, the dirty marks and the events in one statement each. Returns null, having changed
 * nothing the caller may keep, as soon as one position lacks the stock: the caller rolls back.
 * Reservations come back in request order.
 */
export async function reserveAll(
  ctx: Ctx,
  trx: Trx,
  requests: readonly ReservationRequest[],
  opts: ReserveOptions,
  /** Gather the inserts here (the caller flushes them) instead of writing them now. */
  batch?: WriteBatch,
): Promise<{ rows: PositionRow[]; reservations: Reservation[] } | null> {
  const now = ctx.clock.now();
  const ordered = orderedPositions(requests);
  // One statement for every position: each row is updated only if it has the stock. Fewer
  // rows back than asked means one lacked it; the caller rolls the transaction back.
  const rows = await execRaw<PositionRow>(trx, reserveSql(ctx.store.dialect, ordered.length), reserveParams(ctx.store.dialect, ordered, opts.buffer, now));
  if (rows.length !== ordered.length) return null;
  const out = batch ?? new WriteBatch();
  const reservations = recordReservations(requests, ordered, opts, now, out);
  if (!batch) await out.flush(trx, ctx.store.dialect);
  return { rows, reservations };
}

/**
 * Outside any transaction: the reservations' rows, dirty marks and events go into `batch` now,
 * and the conditional UPDATE comes back to lead the batch, which writes nothing unless every
 * position had the stock: PostgreSQL's one statement (WriteBatch.flushGuarded), or one unit of
 * SQLite's writer thread (WriteBatch.flushToWriter).
 */
export function reserveInBatch(
  ctx: Ctx,
  requests: readonly ReservationRequest[],
  opts: ReserveOptions,
  batch: WriteBatch,
): { lead: GuardedLead; reservations: Reservation[] } {
  const dialect = ctx.store.dialect;
  const now = ctx.clock.now();
  const ordered = orderedPositions(requests);
  const reservations = recordReservations(requests, ordered, opts, now, batch);
  if (dialect !== 'postgres') return { lead: { text: reserveSql(dialect, ordered.length), params: reserveParams(dialect, ordered, opts.buffer, now), expected: ordered.length }, reservations };
  const lead: ReserveLead = { text: PG_RESERVE_LEAD, params: reserveParams(dialect, ordered, opts.buffer, now), expected: ordered.length, combiner: RESERVE_COMBINER, positions: ordered, buffer: opts.buffer, now };
  return { lead, reservations };
}

/** PostgreSQL's reservation UPDATE as a guarded batch's lead (its text does not depend on the count). */
const PG_RESERVE_LEAD = reserveSql('postgres', 1).slice(PREPARED.length);

interface ReserveLead extends GuardedLead {
  positions: readonly ReservationRequest[];
  buffer: number;
  now: number;
}

/**
 * Several captures' reservation UPDATEs as one (a PostgreSQL capture group): each position
 * once, with the units every capture asks of it summed, checked against the largest of their
 * channel buffers. Stricter than each alone, never looser: if the combined statement fails, the
 * group runs each capture alone (src/db/pg-capture-group.ts).
 */
const RESERVE_COMBINER: LeadCombiner = {
  combine(leads) {
    const all = leads as ReserveLead[];
    const merged = orderedPositions(all.flatMap((l) => l.positions));
    const buffer = Math.max(...all.map((l) => l.buffer));
    const now = Math.max(...all.map((l) => l.now));
    const lead: ReserveLead = { text: PG_RESERVE_LEAD, params: reserveParams('postgres', merged, buffer, now), expected: merged.length, combiner: RESERVE_COMBINER, positions: merged, buffer, now };
    return lead;
  },
  share<R>(lead: GuardedLead, rows: R[]): R[] {
    const mine = new Set((lead as ReserveLead).positions.map((p) => positionKey(p.locationId, p.skuId)));
    return rows.filter((r) => mine.has(positionKey((r as PositionRow).location_id, (r as PositionRow).sku_id)));
  },
};

/**
 * Ends reservations in the caller's transaction: `released` gives the units back,
 * `consumed` means they left the building (a shipment: on_hand drops too, through a ledger
 * movement). `quantity` below the reservation's ends only that part (a short pick); the rest
 * stays active. Conditional on the reservation still being active with at least that much,
 * so a replay changes nothing. Returns the positions changed, for the projection.
 */
export async function endReservationsWithin(
  ctx: Ctx,
  trx: Trx,
  items: ReadonlyArray<{ id: string; quantity?: number }>,
  to: 'released' | 'consumed',
  opts: { source: string; reference?: string | null } = { source: 'oms' },
): Promise<PositionRow[]> {
  const now = ctx.clock.now();
  const rows: PositionRow[] = [];
  const events: DomainEvent[] = [];
  const skus: number[] = [];
  const sorted = [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const it of sorted) {
    const res = await trx.selectFrom('reservations').select(['location_id', 'sku_id', 'quantity', 'status']).where('id', '=', it.id).executeTakeFirst();
    if (res?.status !== 'active') continue;
    const q = it.quantity ?? res.quantity;
    if (q <= 0) continue;
    if (q > res.quantity) throw new AppError('invalid_state', `Reservation '${it.id}' holds ${res.quantity} unit(s), not ${q}`);
    const whole = q === res.quantity;
    const ended = await trx
      .updateTable('reservations')
      .set(whole ? { status: to, updated_at: now } : { quantity: sql<number>`quantity - ${q}`, updated_at: now })
      .where('id', '=', it.id)
      .where('status', '=', 'active')
      .where('quantity', '=', res.quantity)
      .executeTakeFirst();
    if (Number(ended.numUpdatedRows) !== 1) continue;
    const consumed = to === 'consumed';
    const row = await trx
      .updateTable('stock_positions')
      .set({
        reserved: sql<number>`reserved - ${q}`,
        ...(consumed ? { on_hand: sql<number>`on_hand - ${q}` } : {}),
        version: sql<number>`version + 1`,
        updated_at: now,
      })
      .where('location_id', '=', res.location_id)
      .where('sku_id', '=', res.sku_id)
      .returning([...POSITION_COLS])
      .executeTakeFirstOrThrow();
    if (consumed) {
      await trx
        .insertInto('stock_movements')
        .values({ location_id: res.location_id, sku_id: res.sku_id, kind: 'shipment', quantity: -q, on_hand_change: -q, quarantine_change: 0, occurred_at: now, recorded_at: now, source: opts.source, idempotency_key: null, seq: null, reference: opts.reference ?? null })
        .execute();
    }
    rows.push(row);
    skus.push(res.sku_id);
    events.push({
      type: consumed ? 'stock.reservation_consumed' : 'stock.reservation_released',
      aggregateType: 'reservation',
      aggregateId: it.id,
      aggregateSeq: 2,
      payload: { reservation_id: it.id, location_id: res.location_id, sku_id: res.sku_id, quantity: q, remaining: res.quantity - q },
    });
  }
  await markDirty(trx, ctx.store.dialect, skus, now);
  await appendEvents(trx, ctx.store.dialect, now, events);
  return rows;
}

/**
 * Releases an active reservation exactly once (the admin API); a second call is a no-op.
 * Shipping consumes reservations through endReservationsWithin, with the order's ledger movement.
 */
export async function endReservation(ctx: Ctx, id: string, _to: 'released' = 'released'): Promise<{ changed: boolean }> {
  const rows = await ctx.store.db.transaction().execute(async (trx) => {
    const exists = await trx.selectFrom('reservations').select('id').where('id', '=', id).executeTakeFirst();
    if (!exists) throw new AppError('not_found', `Reservation '${id}' not found`);
    return endReservationsWithin(ctx, trx, [{ id }], 'released');
  });
  ctx.projection.applyAll(rows);
  return { changed: rows.length > 0 };
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

