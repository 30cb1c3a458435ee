// Locations (stock points): repository and use cases.
import type { Selectable } from 'kysely';
import type { LocationFacts } from '../availability/atp.ts';
import { markAllDirty } from '../availability/dirty.ts';
import type { Ctx } from '../context.ts';
import type { DbOrTrx } from '../db/database.ts';
import type { LocationTable } from '../db/schema.ts';
import { appendEvents } from '../events/outbox.ts';
import { AppError } from '../shared/errors.ts';
import { CAPABILITIES, type Capability, defaultFulfilmentChannel, type FulfilmentChannel, type Location, type LocationType } from './model.ts';
import { assertCountry } from './validate.ts';

export type LocationRow = Selectable<LocationTable>;

export function toLocation(r: LocationRow): Location {
  const capabilities = CAPABILITIES.filter((c) => r[`cap_${c}`] === 1);
  return {
    id: r.id,
    code: r.code,
    name: r.name,
    type: r.type as LocationType,
    fulfilmentChannel: r.fulfilment_channel as FulfilmentChannel,
    country: r.country,
    city: r.city,
    postalCode: r.postal_code,
    addressLine: r.address_line,
    latitude: r.latitude,
    longitude: r.longitude,
    tags: JSON.parse(r.tags) as string[],
    capabilities,
    dailyCapacity: r.daily_capacity,
    priority: r.priority,
    shipmentCost: r.shipment_cost,
    currency: r.currency,
    defaultSafetyStock: r.default_safety_stock,
    active: r.active === 1,
    snapshotAsOf: r.snapshot_as_of,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function toLocationFacts(r: LocationRow): LocationFacts {
  const l = toLocation(r);
  return {
    id: l.id,
    code: l.code,
    type: l.type,
    tags: l.tags,
    country: l.country,
    latitude: l.latitude,
    longitude: l.longitude,
    capabilities: l.capabilities,
    defaultSafetyStock: l.defaultSafetyStock,
    active: l.active,
    priority: l.priority,
    shipmentCost: l.shipmentCost,
    dailyCapacity: l.dailyCapacity,
  };
}

export interface LocationInput {
  code: string;
  name: string;
  type: LocationType;
  fulfilmentChannel?: FulfilmentChannel;
  country: string;
  city?: string | null;
  postalCode?: string | null;
  addressLine?: string | null;
  latitude?: number | null;
  longitude?: number | null;
  tags?: string[];
  capabilities?: Capability[];
  dailyCapacity?: number | null;
  priority?: number;
  shipmentCost?: number;
  currency?: string;
  defaultSafetyStock?: number;
  active?: boolean;
}

function toRow(input: LocationInput, now: number) {
  assertCountry(input.country);
  if ((input.latitude == null) !== (input.longitude == null)) {
    throw new AppError('validation_failed', 'latitude and longitude must be given together');
  }
  const caps = new Set(input.capabilities ?? []);
  return {
    code: input.code,
    name: input.name,
    type: input.type,
    fulfilment_channel: input.fulfilmentChannel ?? defaultFulfilmentChannel(input.type),
    country: input.country.toUpperCase(),
    city: input.city ?? null,
    postal_code: input.postalCode ?? null,
    address_line: input.addressLine ?? null,
    latitude: input.latitude ?? null,
    longitude: input.longitude ?? null,
    tags: JSON.stringify(input.tags ?? []),
    cap_ships: caps.has('ships') ? 1 : 0,
    cap_click_and_collect: caps.has('click_and_collect') ? 1 : 0,
    cap_order_in_store: caps.has('order_in_store') ? 1 : 0,
    cap_accepts_returns: caps.has('accepts_returns') ? 1 : 0,
    daily_capacity: input.dailyCapacity ?? null,
    priority: input.priority ?? 0,
    shipment_cost: input.shipmentCost ?? 0,
    currency: (input.currency ?? 'EUR').toUpperCase(),
    default_safety_stock: input.defaultSafetyStock ?? 0,
    active: input.active === false ? 0 : 1,
    updated_at: now,
  };
}

export async function findLocation(db: DbOrTrx, code: string): Promise<Location | undefined> {
  const r = await db.selectFrom('locations').selectAll().where('code', '=', code).executeTakeFirst();
  return r ? toLocation(r) : undefined;
}

export async function getLocation(db: DbOrTrx, code: string): Promise<Location> {
  const l = await findLocation(db, code);
  if (!l) throw new AppError('unknown_location', `Location '${code}' does not exist`);
  return l;
}

/** Creates or replaces a location by code (PUT semantics: the body is the whole location). */
export async function upsertLocation(ctx: Ctx, input: LocationInput): Promise<{ location: Location; created: boolean }> {
  const now = ctx.clock.now();
  const values = toRow(input, now);
  const result = await ctx.store.db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom('locations').select(['id', 'version']).where('code', '=', input.code).executeTakeFirst();
    let row: LocationRow;
    if (existing) {
      row = await trx
        .updateTable('locations')
        .set({ ...values, version: existing.version + 1 })
        .where('id', '=', existing.id)
        .returningAll()
        .executeTakeFirstOrThrow();
    } else {
      row = await trx
        .insertInto('locations')
        .values({ ...values, version: 1, created_at: now, snapshot_as_of: null })
        .onConflict((oc) => oc.column('code').doNothing())
        .returningAll()
        .executeTakeFirst()
        .then((r) => {
          // DO NOTHING returned no row: another request created this code in the meantime.
          if (!r) throw new AppError('conflict', `Location '${input.code}' was created concurrently; retry`);
          return r;
        });
    }
    // Active flag, type, tags or default safety stock may change what channels see.
    if (existing) await markAllDirty(trx, now);
    await appendEvents(trx, ctx.store.dialect, now, [
      {
        type: existing ? 'location.updated' : 'location.created',
        aggregateType: 'location',
        aggregateId: row.code,
        aggregateSeq: row.version,
        payload: { location: input.code },
      },
    ]);
    return { row, created: !existing };
  });
  ctx.projection.setLocation(toLocationFacts(result.row));
  return { location: toLocation(result.row), created: result.created };
}

export interface LocationFilter {
  type?: LocationType;
  codes?: string[];
  ids?: number[];
  after?: string;
  limit: number;
}

export async function listLocations(db: DbOrTrx, f: LocationFilter): Promise<Location[]> {
  let q = db.selectFrom('locations').selectAll();
  if (f.type) q = q.where('type', '=', f.type);
  if (f.codes) q = q.where('code', 'in', f.codes.length ? f.codes : ['']);
  if (f.ids) q = q.where('id', 'in', f.ids.length ? f.ids : [-1]);
  if (f.after) q = q.where('code', '>', f.after);
  const rows = await q.orderBy('code').limit(f.limit).execute();
  return rows.map(toLocation);
}
