// Future stock: incoming supply (purchase orders, transfers, production) with expected dates.
import { reloadSupply } from '../availability/projection.ts';
import { markDirty } from '../availability/dirty.ts';
import type { Ctx } from '../context.ts';
import type { DbOrTrx } from '../db/database.ts';
import { appendEvents } from '../events/outbox.ts';
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
