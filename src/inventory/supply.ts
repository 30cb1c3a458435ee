// Future stock: incoming supply (purchase orders, transfers, production) with expected dates,
// and what backorders hold of it. A backorder is promised on incoming units, so it takes them
// like a reservation takes stock: `allocated` grows by a conditional update only if the row
// still has the units free, and two orders are never promised the same incoming units. What
// is free to promise is quantity − received_quantity − allocated (the projection's supply).
import { sql } from 'kysely';
import { reloadSupply } from '../availability/projection.ts';
import { markDirty, markDirtyTo } from '../availability/dirty.ts';
import type { Ctx } from '../context.ts';
import { WriteBatch } from '../db/bulk.ts';
import type { DbOrTrx, Dialect, Trx } from '../db/database.ts';
import { appendEvents, appendEventsTo, type DomainEvent } from '../events/outbox.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import type { SupplyKind } from './model.ts';
import { resolveIds } from './stock.ts';

export interface SupplyInput {
  kind: SupplyKind;
  reference: string;
  location: string;
  sku: string;
  quantity: number;
  expectedAt: number;
}

export interface Supply {
  id: string;
  kind: SupplyKind;
  reference: string;
  location: string;
  sku: string;
  quantity: number;
  receivedQuantity: number;
  expectedAt: number;
  status: 'open' | 'received' | 'cancelled';
}

/** Creates or updates a supply line, keyed by (kind, reference, location, sku). */
export async function upsertSupply(ctx: Ctx, input: SupplyInput): Promise<Supply> {
  const { locationId, skuId } = resolveIds(ctx, input.location, input.sku);
  if (!Number.isInteger(input.quantity) || input.quantity <= 0) throw new AppError('validation_failed', 'quantity must be a positive integer');
  const now = ctx.clock.now();
  const row = await ctx.store.db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('incoming_supply')
      .values({ id: newId('sup'), kind: input.kind, reference: input.reference, location_id: locationId, sku_id: skuId, quantity: input.quantity, received_quantity: 0, expected_at: input.expectedAt, status: 'open', created_at: now, updated_at: now })
      .onConflict((oc) =>
        oc.columns(['kind', 'reference', 'location_id', 'sku_id']).doUpdateSet((eb) => ({
          quantity: eb.ref('excluded.quantity'),
          expected_at: eb.ref('excluded.expected_at'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .returningAll()
      .executeTakeFirstOrThrow();
    await markDirty(trx, ctx.store.dialect, [skuId], now);
    await appendEvents(trx, ctx.store.dialect, now, [
      { type: 'supply.upserted', aggregateType: 'supply', aggregateId: row.id, aggregateSeq: now, payload: { id: row.id, kind: row.kind, reference: row.reference, location: input.location, sku: input.sku, sku_id: skuId, quantity: row.quantity, expected_at: new Date(row.expected_at).toISOString() } },
    ]);
    return row;
  });
  await reloadSupply(ctx.store.db, ctx.projection, [skuId]);
  return { id: row.id, kind: row.kind as SupplyKind, reference: row.reference, location: input.location, sku: input.sku, quantity: row.quantity, receivedQuantity: row.received_quantity, expectedAt: row.expected_at, status: row.status as Supply['status'] };
}

export async function listSupply(db: DbOrTrx, f: { skuId?: number; locationId?: number; afterId?: string; limit: number }) {
  let q = db
    .selectFrom('incoming_supply as s')
    .innerJoin('locations as l', 'l.id', 's.location_id')
    .innerJoin('skus as k', 'k.id', 's.sku_id')
    .select(['s.id', 's.kind', 's.reference', 'l.code as location', 'k.code as sku', 's.quantity', 's.received_quantity', 's.expected_at', 's.status']);
  if (f.skuId) q = q.where('s.sku_id', '=', f.skuId);
  if (f.locationId) q = q.where('s.location_id', '=', f.locationId);
  if (f.afterId) q = q.where('s.id', '>', f.afterId);
  return q.orderBy('s.id').limit(f.limit).execute();
}

// ---- supply held by backorders ---------------------------------------------------------

const DAY = 86_400_000;

/** One backorder of a plan: units of a line promised at a location by a day. */
export interface SupplyRequest {
  lineId: string;
  locationId: number;
  skuId: number;
  quantity: number;
  /** The promise date: start of its UTC day (epoch ms). Supply expected later does not count. */
  promiseDay: number;
}

/** Units of one supply row taken for one backordered line (its allocation row is written with the fulfilment order). */
export interface SupplyHold {
  supplyId: string;
  lineId: string;
  locationId: number;
  skuId: number;
  quantity: number;
}

/**
 * Takes the incoming units of each backorder in the caller's transaction: the open supply rows
 * of its (location, sku) expected by the promise date, earliest first, each with a conditional
 * update. Requests are taken in (location, sku, promise) order, so concurrent orders lock
 * supply rows in one order. Returns, per request (in request order), the holds that cover it;
 * null as soon as a row no longer has the units it showed (another order took them) or the
 * rows do not cover a request: the caller rolls back and re-plans, as for a lost stock race.
 */
export async function allocateSupply(
  trx: Trx,
  dialect: Dialect,
  requests: readonly SupplyRequest[],
  opts: { reference: string; now: number },
  /** Gather the events and dirty marks here (the caller flushes them) instead of writing them now. */
  batch?: WriteBatch,
): Promise<SupplyHold[][] | null> {
  const { now } = opts;
  const perRequest: SupplyHold[][] = requests.map(() => []);
  const order = requests.map((_, i) => i).sort((x, y) => {
    const a = requests[x];
    const b = requests[y];
    return a.locationId - b.locationId || a.skuId - b.skuId || a.promiseDay - b.promiseDay;
  });
  for (const i of order) {
    const r = requests[i];
    let left = r.quantity;
    const rows = await trx
      .selectFrom('incoming_supply')
      .select(['id', 'quantity', 'received_quantity', 'allocated'])
      .where('location_id', '=', r.locationId)
      .where('sku_id', '=', r.skuId)
      .where('status', '=', 'open')
      .where('expected_at', '<', r.promiseDay + DAY)
      .orderBy('expected_at')
      .orderBy('id')
      .execute();
    for (const row of rows) {
      if (left === 0) break;
      const free = row.quantity - row.received_quantity - row.allocated;
      if (free <= 0) continue;
      const q = Math.min(free, left);
      const won = await trx
        .updateTable('incoming_supply')
        .set({ allocated: sql<number>`allocated + ${q}`, updated_at: now })
        .where('id', '=', row.id)
        .where(sql<boolean>`quantity - received_quantity - allocated >= ${q}`)
        .executeTakeFirst();
      if (Number(won.numUpdatedRows) !== 1) return null;
      left -= q;
      perRequest[i].push({ supplyId: row.id, lineId: r.lineId, locationId: r.locationId, skuId: r.skuId, quantity: q });
    }
    if (left > 0) return null;
  }
  const holds = perRequest.flat();
  if (holds.length === 0) return perRequest;
  const out = batch ?? new WriteBatch();
  markDirtyTo(out, holds.map((h) => h.skuId), now);
  appendEventsTo(
    out,
    now,
    holds.map((h) => ({
      type: 'supply.allocated',
      aggregateType: 'supply',
      aggregateId: h.supplyId,
      aggregateSeq: now,
      payload: { supply_id: h.supplyId, location_id: h.locationId, sku_id: h.skuId, quantity: h.quantity, order_id: opts.reference, line_id: h.lineId },
    })),
  );
  if (!batch) await out.flush(trx, dialect);
  return perRequest;
}

/**
 * Gives back what backordered lines hold of their incoming supply, in the caller's
 * transaction. Each item is a fulfilment order (everything it holds) or one of its lines
 * (`quantity`: only that many units, taken from the latest-expected supply first, so the
 * units left keep the earliest promise). Returns the skus whose supply changed, for the
 * projection after commit.
 */
export async function releaseSupplyAllocations(
  trx: Trx,
  dialect: Dialect,
  items: ReadonlyArray<{ fulfillmentId: string; lineId?: string; quantity?: number }>,
  now: number,
): Promise<number[]> {
  return endSupplyAllocations(trx, dialect, items, 'released', now);
}

/**
 * A backorder released once its stock is in: what it held of the incoming supply is now held
 * by reservations, so its allocations end as `converted`. Returns the skus whose supply changed.
 */
export async function convertSupplyAllocations(trx: Trx, dialect: Dialect, fulfillmentId: string, now: number): Promise<number[]> {
  return endSupplyAllocations(trx, dialect, [{ fulfillmentId }], 'converted', now);
}

async function endSupplyAllocations(
  trx: Trx,
  dialect: Dialect,
  items: ReadonlyArray<{ fulfillmentId: string; lineId?: string; quantity?: number }>,
  to: 'released' | 'converted',
  now: number,
): Promise<number[]> {
  const ends: Array<{ id: string; held: number; quantity: number; supplyId: string; orderId: string; fulfillmentId: string; lineId: string; locationId: number; skuId: number; expectedAt: number }> = [];
  for (const it of items) {
    let q = trx
      .selectFrom('supply_allocations as a')
      .innerJoin('incoming_supply as s', 's.id', 'a.supply_id')
      .select(['a.id', 'a.quantity', 'a.supply_id', 'a.order_id', 'a.line_id', 's.location_id', 's.sku_id', 's.expected_at'])
      .where('a.fulfillment_id', '=', it.fulfillmentId)
      .where('a.status', '=', 'active');
    if (it.lineId !== undefined) q = q.where('a.line_id', '=', it.lineId);
    let left = it.quantity ?? Number.POSITIVE_INFINITY;
    for (const a of await q.orderBy('s.expected_at', 'desc').orderBy('a.id', 'desc').execute()) {
      if (left <= 0) break;
      const n = Math.min(left, a.quantity);
      left -= n;
      ends.push({ id: a.id, held: a.quantity, quantity: n, supplyId: a.supply_id, orderId: a.order_id, fulfillmentId: it.fulfillmentId, lineId: a.line_id, locationId: a.location_id, skuId: a.sku_id, expectedAt: a.expected_at });
    }
  }
  // Supply rows in the order allocateSupply locks them: a release never waits on a capture the other way round.
  ends.sort((x, y) => x.locationId - y.locationId || x.skuId - y.skuId || x.expectedAt - y.expectedAt || (x.supplyId < y.supplyId ? -1 : x.supplyId > y.supplyId ? 1 : 0));
  const events: DomainEvent[] = [];
  const skus = new Set<number>();
  for (const e of ends) {
    const whole = e.quantity === e.held;
    const ended = await trx
      .updateTable('supply_allocations')
      .set(whole ? { status: to, updated_at: now } : { quantity: sql<number>`quantity - ${e.quantity}`, updated_at: now })
      .where('id', '=', e.id)
      .where('status', '=', 'active')
      .where('quantity', '=', e.held)
      .executeTakeFirst();
    if (Number(ended.numUpdatedRows) !== 1) continue;
    // Converted units have arrived (they are reserved in stock now): they count as received,
    // so the supply row no longer offers them as future stock.
    await trx
      .updateTable('incoming_supply')
      .set(to === 'converted' ? { allocated: sql<number>`allocated - ${e.quantity}`, received_quantity: sql<number>`received_quantity + ${e.quantity}`, updated_at: now } : { allocated: sql<number>`allocated - ${e.quantity}`, updated_at: now })
      .where('id', '=', e.supplyId)
      .execute();
    skus.add(e.skuId);
    events.push({
      type: to === 'released' ? 'supply.released' : 'supply.converted',
      aggregateType: 'supply',
      aggregateId: e.supplyId,
      aggregateSeq: now,
      payload: { supply_id: e.supplyId, allocation_id: e.id, order_id: e.orderId, fulfillment_id: e.fulfillmentId, line_id: e.lineId, location_id: e.locationId, sku_id: e.skuId, quantity: e.quantity, remaining: e.held - e.quantity },
    });
  }
  await markDirty(trx, dialect, skus, now);
  await appendEvents(trx, dialect, now, events);
  return [...skus];
}
