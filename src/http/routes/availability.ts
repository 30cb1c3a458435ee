// Availability (ATP) for a sales channel: one sku (GET) or up to 1,000 (POST), as a network
// total, per location, or near a point. Served from the in-memory projection.
import { Type } from '@sinclair/typebox';
import { canReadChannel } from '../../auth/keys.ts';
import { type AvailabilityQuery, type AvailabilityView, queryAvailability, type SkuAvailability } from '../../availability/service.ts';
import type { Ctx } from '../../context.ts';
import { iso } from '../../shared/clock.ts';
import { AppError } from '../../shared/errors.ts';
import type { App } from '../app.ts';
import { requireRole } from '../app.ts';
import { batchCap, Code, security, withErrors } from '../schemas.ts';

const View = Type.Union([Type.Literal('total'), Type.Literal('locations'), Type.Literal('near')], { default: 'total' });
const NearFields = {
  lat: Type.Optional(Type.Number({ minimum: -90, maximum: 90 })),
  lng: Type.Optional(Type.Number({ minimum: -180, maximum: 180 })),
  radius_km: Type.Optional(Type.Number({ minimum: 0.001, maximum: 20_000, default: 50 })),
  quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'With quantity, promise_date is the first day it can be promised.' })),
};

const AvailabilityOut = Type.Object({
  sku: Type.String(),
  channel: Type.String(),
  available: Type.Integer(),
  future: Type.Array(Type.Object({ expected_at: Type.String(), quantity: Type.Integer() })),
  promise_date: Type.Union([Type.String(), Type.Null()]),
  locations: Type.Optional(Type.Array(Type.Object({ location: Type.String(), type: Type.String(), available: Type.Integer(), distance_km: Type.Optional(Type.Number()) }))),
});

const out = (a: SkuAvailability) => ({
  sku: a.sku,
  channel: a.channel,
  available: a.available,
  future: a.future.map((f) => ({ expected_at: iso(f.expectedAt) as string, quantity: f.quantity })),
  promise_date: a.promiseDate === null ? null : (iso(a.promiseDate) as string).slice(0, 10),
  locations: a.locations?.map((l) => (l.distanceKm === undefined ? { location: l.location, type: l.type, available: l.available } : { location: l.location, type: l.type, available: l.available, distance_km: l.distanceKm })),
});

function buildQuery(
  req: { principal: import('../../auth/keys.ts').Principal | null },
  q: { channel?: string; view?: AvailabilityView; lat?: number; lng?: number; radius_km?: number; quantity?: number },
  skus: string[],
): AvailabilityQuery {
  const p = requireRole(req, 'channel', 'store');
  const channel = q.channel ?? p.channel;
  if (!channel) throw new AppError('validation_failed', 'Name the channel: ?channel=<code>');
  // Another channel's view looks exactly like an unknown channel.
  if (!canReadChannel(p, channel)) throw new AppError('unknown_channel', `Channel '${channel}' does not exist`);
  const view = q.view ?? 'total';
  if (view === 'near' && (q.lat === undefined || q.lng === undefined)) throw new AppError('validation_failed', 'view=near needs lat and lng');
  return { channel, skus, view, quantity: q.quantity, near: view === 'near' ? { latitude: q.lat as number, longitude: q.lng as number, radiusKm: q.radius_km ?? 50 } : undefined };
}

export function registerAvailabilityRoutes(app: App, ctx: Ctx): void {
  app.get(
    '/availability/:sku',
    {
      schema: {
        tags: ['availability'],
        summary: 'Availability of one sku for a channel',
        security,
        params: Type.Object({ sku: Code }),
        querystring: Type.Object({ channel: Type.Optional(Code), view: Type.Optional(View), ...NearFields }, { additionalProperties: false }),
        response: withErrors({ 200: AvailabilityOut }),
      },
    },
    async (req) => out(queryAvailability(ctx, buildQuery(req, req.query, [req.params.sku]))[0]),
  );

  app.post(
    '/availability/query',
    {
      schema: {
        tags: ['availability'],
        summary: 'Availability of up to 1,000 skus for a channel in one call',
        security,
        body: Type.Object({ channel: Type.Optional(Code), skus: Type.Array(Code, { minItems: 1, maxItems: 1000 }), view: Type.Optional(View), ...NearFields }, { additionalProperties: false }),
        response: withErrors({ 200: Type.Object({ items: Type.Array(AvailabilityOut) }) }),
      },
      preValidation: batchCap('skus', 1000),
    },
    async (req) => ({ items: queryAvailability(ctx, buildQuery(req, req.body, req.body.skus)).map(out) }),
  );
}
