// Sales channels and their exposure rules (which locations, buffer, cap, future stock).
import type { Selectable } from 'kysely';
import type { ChannelRules } from '../availability/atp.ts';
import { markAllDirty } from '../availability/dirty.ts';
import type { Ctx } from '../context.ts';
import type { DbOrTrx } from '../db/database.ts';
import type { ChannelTable } from '../db/schema.ts';
import { appendEvents } from '../events/outbox.ts';
import type { LocationType } from '../inventory/model.ts';
import { AppError } from '../shared/errors.ts';

export const CHANNEL_TYPES = ['web', 'store', 'marketplace', 'call_centre'] as const;
export type ChannelType = (typeof CHANNEL_TYPES)[number];

export interface Channel extends ChannelRules {
  name: string;
  type: ChannelType;
  version: number;
  createdAt: number;
  updatedAt: number;
}

export function toChannel(r: Selectable<ChannelTable>): Channel {
  return {
    id: r.id,
    code: r.code,
    name: r.name,
    type: r.type as ChannelType,
    locationTypes: JSON.parse(r.location_types) as LocationType[],
    locationTags: JSON.parse(r.location_tags) as string[],
    locationCodes: JSON.parse(r.location_codes) as string[],
    excludeLocationCodes: JSON.parse(r.exclude_location_codes) as string[],
    buffer: r.buffer,
    capPercent: r.cap_percent,
    futureStock: r.future_stock === 1,
    futureHorizonDays: r.future_horizon_days,
    active: r.active === 1,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export interface ChannelInput {
  code: string;
  name: string;
  type: ChannelType;
  locationTypes?: LocationType[];
  locationTags?: string[];
  locationCodes?: string[];
  excludeLocationCodes?: string[];
  buffer?: number;
  capPercent?: number | null;
  futureStock?: boolean;
  futureHorizonDays?: number;
  active?: boolean;
}

export async function upsertChannel(ctx: Ctx, input: ChannelInput): Promise<{ channel: Channel; created: boolean }> {
  const now = ctx.clock.now();
  const listed = [...(input.locationCodes ?? []), ...(input.excludeLocationCodes ?? [])];
  const unknown = listed.filter((c) => !ctx.projection.location(c));
  if (unknown.length) throw new AppError('unknown_location', `Unknown location code(s) in exposure rules: ${unknown.join(', ')}`, { codes: unknown });
  const values = {
    code: input.code,
    name: input.name,
    type: input.type,
    location_types: JSON.stringify(input.locationTypes ?? []),
    location_tags: JSON.stringify(input.locationTags ?? []),
    location_codes: JSON.stringify(input.locationCodes ?? []),
    exclude_location_codes: JSON.stringify(input.excludeLocationCodes ?? []),
    buffer: input.buffer ?? 0,
    cap_percent: input.capPercent ?? null,
    future_stock: input.futureStock ? 1 : 0,
    future_horizon_days: input.futureHorizonDays ?? 0,
    active: input.active === false ? 0 : 1,
    updated_at: now,
  };
  const { row, created } = await ctx.store.db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom('channels').select(['id', 'version']).where('code', '=', input.code).executeTakeFirst();
    const row = existing
      ? await trx.updateTable('channels').set({ ...values, version: existing.version + 1 }).where('id', '=', existing.id).returningAll().executeTakeFirstOrThrow()
      : await trx.insertInto('channels').values({ ...values, version: 1, created_at: now }).returningAll().executeTakeFirstOrThrow();
    await appendEvents(trx, ctx.store.dialect, now, [
      { type: existing ? 'channel.updated' : 'channel.created', aggregateType: 'channel', aggregateId: row.code, aggregateSeq: row.version, payload: { channel: row.code } },
    ]);
    // Exposure changed: every sku's availability for this channel may have moved.
    await markAllDirty(trx, now);
    return { row, created: !existing };
  });
  const channel = toChannel(row);
  ctx.projection.setChannel(channel);
  return { channel, created };
}

export async function listChannels(db: DbOrTrx): Promise<Channel[]> {
  return (await db.selectFrom('channels').selectAll().orderBy('code').execute()).map(toChannel);
}

export async function getChannel(db: DbOrTrx, code: string): Promise<Channel> {
  const r = await db.selectFrom('channels').selectAll().where('code', '=', code).executeTakeFirst();
  if (!r) throw new AppError('unknown_channel', `Channel '${code}' does not exist`);
  return toChannel(r);
}
