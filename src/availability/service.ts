// Availability use cases: answers from the in-memory projection, shaped for the API.
import { getDistance } from 'geolib';
import type { Ctx } from '../context.ts';
import { AppError } from '../shared/errors.ts';
import { type ChannelRules, type FutureBucket, futureAvailable, promiseDate } from './atp.ts';
import type { StockProjection } from './projection.ts';

export type AvailabilityView = 'total' | 'locations' | 'near';

export interface AvailabilityQuery {
  channel: string;
  skus: string[];
  view: AvailabilityView;
  near?: { latitude: number; longitude: number; radiusKm: number };
  quantity?: number;
}

export interface LocationLine {
  location: string;
  type: string;
  available: number;
  distanceKm?: number;
}

export interface SkuAvailability {
  sku: string;
  channel: string;
  available: number;
  future: FutureBucket[];
  promiseDate: number | null;
  locations?: LocationLine[];
}

export function requireChannel(projection: StockProjection, code: string): ChannelRules {
  const rules = projection.channel(code);
  if (!rules) throw new AppError('unknown_channel', `Channel '${code}' does not exist`);
  if (!rules.active) throw new AppError('invalid_state', `Channel '${code}' is inactive`);
  return rules;
}

export function queryAvailability(ctx: Ctx, q: AvailabilityQuery): SkuAvailability[] {
  const p = ctx.projection;
  const rules = requireChannel(p, q.channel);
  const unknown = q.skus.filter((s) => !p.sku(s));
  if (unknown.length) {
    throw new AppError('unknown_sku', `Unknown sku code(s): ${unknown.slice(0, 20).join(', ')}${unknown.length > 20 ? ', …' : ''}`, { skus: unknown });
  }
  const now = ctx.clock.now();
  return q.skus.map((code) => {
    const meta = p.sku(code) as NonNullable<ReturnType<StockProjection['sku']>>;
    const future = futureAvailable(rules, meta.backorderable, p.supplyOf(meta.id), (id) => p.isExposed(q.channel, id), now);
    if (q.view === 'total') {
      const available = p.total(meta.id, q.channel);
      return { sku: code, channel: q.channel, available, future, promiseDate: q.quantity ? promiseDate(q.quantity, available, future, now) : null };
    }
    const near = q.view === 'near' ? q.near : undefined;
    let lines: LocationLine[] = p.perLocation(meta.id, q.channel).map(({ location, available }) => {
      const line: LocationLine = { location: location.code, type: location.type, available };
      if (near && location.latitude !== null && location.longitude !== null) {
        const metres = getDistance({ latitude: near.latitude, longitude: near.longitude }, { latitude: location.latitude, longitude: location.longitude });
        line.distanceKm = Math.round(metres / 100) / 10;
      }
      return line;
    });
    if (near) {
      // Near a point: only located stock points within the radius, nearest first.
      lines = lines.filter((l) => l.distanceKm !== undefined && l.distanceKm <= near.radiusKm).sort((a, b) => (a.distanceKm as number) - (b.distanceKm as number));
    }
    const available = lines.reduce((s, l) => s + l.available, 0);
    return { sku: code, channel: q.channel, available, future: q.view === 'near' ? [] : future, promiseDate: q.quantity ? promiseDate(q.quantity, available, q.view === 'near' ? [] : future, now) : null, locations: lines };
  });
}
