// SKUs: repository and use cases. Bulk upsert serves the catalogue feed and the demo.
import type { Selectable } from 'kysely';
import { toSkuMeta } from '../availability/projection.ts';
import type { Ctx } from '../context.ts';
import type { DbOrTrx } from '../db/database.ts';
import type { SkuTable } from '../db/schema.ts';
import { appendEvents } from '../events/outbox.ts';
import { AppError } from '../shared/errors.ts';
import type { Sku } from './model.ts';
import { assertGtin } from './validate.ts';

export function toSku(r: Selectable<SkuTable>): Sku {
  return {
    id: r.id,
    code: r.code,
    gtin: r.gtin,
    name: r.name,
    weightG: r.weight_g,
    lengthMm: r.length_mm,
    widthMm: r.width_mm,
    heightMm: r.height_mm,
    demandClass: r.demand_class,
    tags: JSON.parse(r.tags) as string[],
    backorderable: r.backorderable === 1,
    active: r.active === 1,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export interface SkuInput {
  code: string;
  gtin?: string | null;
  name: string;
  weightG?: number | null;
  lengthMm?: number | null;
  widthMm?: number | null;
  heightMm?: number | null;
  demandClass?: string | null;
  tags?: string[];
  backorderable?: boolean;
  active?: boolean;
}

/** Creates or replaces skus by code, in chunks, in one transaction. */
export async function upsertSkus(ctx: Ctx, inputs: SkuInput[]): Promise<Sku[]> {
  const seen = new Set<string>();
  for (const s of inputs) {
    if (s.gtin) assertGtin(s.gtin);
    if (seen.has(s.code)) throw new AppError('validation_failed', `sku '${s.code}' appears twice in the request`);
    seen.add(s.code);
  }
  const now = ctx.clock.now();
  const rows = await ctx.store.db.transaction().execute(async (trx) => {
    const out: Selectable<SkuTable>[] = [];
    for (let i = 0; i < inputs.length; i += 500) {
      const chunk = inputs.slice(i, i + 500);
      const values = chunk.map((s) => ({
        code: s.code,
        gtin: s.gtin || null,
        name: s.name,
        weight_g: s.weightG ?? null,
        length_mm: s.lengthMm ?? null,
        width_mm: s.widthMm ?? null,
        height_mm: s.heightMm ?? null,
        demand_class: s.demandClass ?? null,
        tags: JSON.stringify(s.tags ?? []),
        backorderable: s.backorderable ? 1 : 0,
        active: s.active === false ? 0 : 1,
        version: 1,
        created_at: now,
        updated_at: now,
      }));
      const gtins = chunk.map((s) => s.gtin).filter((g): g is string => !!g);
      if (gtins.length) {
        const clash = await trx
          .selectFrom('skus')
          .select(['code', 'gtin'])
          .where('gtin', 'in', gtins)
          .execute();
        const mine = new Map(chunk.map((s) => [s.gtin, s.code]));
        const bad = clash.find((c) => mine.get(c.gtin) !== c.code);
        if (bad) throw new AppError('conflict', `GTIN ${bad.gtin} already belongs to sku '${bad.code}'`);
      }
      const written = await trx
        .insertInto('skus')
        .values(values)
        .onConflict((oc) =>
          oc.column('code').doUpdateSet((eb) => ({
            gtin: eb.ref('excluded.gtin'),
            name: eb.ref('excluded.name'),
            weight_g: eb.ref('excluded.weight_g'),
            length_mm: eb.ref('excluded.length_mm'),
            width_mm: eb.ref('excluded.width_mm'),
            height_mm: eb.ref('excluded.height_mm'),
            demand_class: eb.ref('excluded.demand_class'),
            tags: eb.ref('excluded.tags'),
            backorderable: eb.ref('excluded.backorderable'),
            active: eb.ref('excluded.active'),
            updated_at: eb.ref('excluded.updated_at'),
            version: eb(eb.ref('skus.version'), '+', 1),
          })),
        )
        .returningAll()
        .execute();
      out.push(...written);
    }
    await appendEvents(
      trx,
      ctx.store.dialect,
      now,
      out.map((r) => ({
        type: r.version === 1 ? 'sku.created' : 'sku.updated',
        aggregateType: 'sku',
        aggregateId: r.code,
        aggregateSeq: r.version,
        payload: { sku: r.code },
      })),
    );
    return out;
  });
  for (const r of rows) ctx.projection.setSku(toSkuMeta(r));
  return rows.map(toSku);
}

export async function findSku(db: DbOrTrx, code: string): Promise<Sku | undefined> {
  const r = await db.selectFrom('skus').selectAll().where('code', '=', code).executeTakeFirst();
  return r ? toSku(r) : undefined;
}

export async function getSku(db: DbOrTrx, code: string): Promise<Sku> {
  const s = await findSku(db, code);
  if (!s) throw new AppError('unknown_sku', `SKU '${code}' does not exist`);
  return s;
}

export async function listSkus(db: DbOrTrx, f: { after?: string; limit: number; demandClass?: string }): Promise<Sku[]> {
  let q = db.selectFrom('skus').selectAll();
  if (f.after) q = q.where('code', '>', f.after);
  if (f.demandClass) q = q.where('demand_class', '=', f.demandClass);
  return (await q.orderBy('code').limit(f.limit).execute()).map(toSku);
}
