// Reference data: locations, skus, channels, incoming supply.
import { Type } from '@sinclair/typebox';
import { requireRole } from '../app.ts';
import type { App } from '../app.ts';
import { CHANNEL_TYPES, type Channel, getChannel, listChannels, upsertChannel } from '../../channels/channels.ts';
import type { Ctx } from '../../context.ts';
import { getLocation, listLocations, upsertLocation } from '../../inventory/locations.ts';
import { CAPABILITIES, FULFILMENT_CHANNELS, LOCATION_TYPES, type Location, type Sku, SUPPLY_KINDS } from '../../inventory/model.ts';
import { getSku, listSkus, upsertSkus, type SkuInput } from '../../inventory/skus.ts';
import { listSupply, upsertSupply } from '../../inventory/supply.ts';
import { iso } from '../../shared/clock.ts';
import { AppError } from '../../shared/errors.ts';
import { batchCap, Code, Enum, Iso, NonNegInt, Page, PageQuery, security, withErrors, Nullable } from '../schemas.ts';
import { canActOnLocation } from '../../auth/keys.ts';


const LocationBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    type: Enum(LOCATION_TYPES),
    fulfilment_channel: Type.Optional(Enum(FULFILMENT_CHANNELS)),
    country: Type.String({ minLength: 2, maxLength: 2 }),
    city: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
    postal_code: Type.Optional(Nullable(Type.String({ maxLength: 20 }))),
    address_line: Type.Optional(Nullable(Type.String({ maxLength: 400 }))),
    latitude: Type.Optional(Nullable(Type.Number({ minimum: -90, maximum: 90 }))),
    longitude: Type.Optional(Nullable(Type.Number({ minimum: -180, maximum: 180 }))),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 50 })),
    capabilities: Type.Optional(Type.Array(Enum(CAPABILITIES), { uniqueItems: true })),
    daily_capacity: Type.Optional(Nullable(NonNegInt)),
    priority: Type.Optional(Type.Integer({ minimum: -1000, maximum: 1000 })),
    shipment_cost: Type.Optional(NonNegInt),
    currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$' })),
    default_safety_stock: Type.Optional(NonNegInt),
    active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const LocationOut = Type.Object({
  code: Type.String(),
  name: Type.String(),
  type: Type.String(),
  fulfilment_channel: Type.String(),
  country: Type.String(),
  city: Nullable(Type.String()),
  postal_code: Nullable(Type.String()),
  address_line: Nullable(Type.String()),
  latitude: Nullable(Type.Number()),
  longitude: Nullable(Type.Number()),
  tags: Type.Array(Type.String()),
  capabilities: Type.Array(Type.String()),
  daily_capacity: Nullable(Type.Integer()),
  priority: Type.Integer(),
  shipment_cost: Type.Integer(),
  currency: Type.String(),
  default_safety_stock: Type.Integer(),
  active: Type.Boolean(),
  snapshot_as_of: Nullable(Type.String()),
  version: Type.Integer(),
  updated_at: Type.String(),
});

export const locationOut = (l: Location) => ({
  code: l.code,
  name: l.name,
  type: l.type,
  fulfilment_channel: l.fulfilmentChannel,
  country: l.country,
  city: l.city,
  postal_code: l.postalCode,
  address_line: l.addressLine,
  latitude: l.latitude,
  longitude: l.longitude,
  tags: l.tags,
  capabilities: l.capabilities,
  daily_capacity: l.dailyCapacity,
  priority: l.priority,
  shipment_cost: l.shipmentCost,
  currency: l.currency,
  default_safety_stock: l.defaultSafetyStock,
  active: l.active,
  snapshot_as_of: iso(l.snapshotAsOf),
  version: l.version,
  updated_at: iso(l.updatedAt) as string,
});

const SkuBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 300 }),
    gtin: Type.Optional(Nullable(Type.String({ maxLength: 14 }))),
    weight_g: Type.Optional(Nullable(NonNegInt)),
    length_mm: Type.Optional(Nullable(NonNegInt)),
    width_mm: Type.Optional(Nullable(NonNegInt)),
    height_mm: Type.Optional(Nullable(NonNegInt)),
    demand_class: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 8 }))),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 50 })),
    backorderable: Type.Optional(Type.Boolean()),
    active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const SkuOut = Type.Object({
  code: Type.String(),
  gtin: Nullable(Type.String()),
  name: Type.String(),
  weight_g: Nullable(Type.Integer()),
  length_mm: Nullable(Type.Integer()),
  width_mm: Nullable(Type.Integer()),
  height_mm: Nullable(Type.Integer()),
  demand_class: Nullable(Type.String()),
  tags: Type.Array(Type.String()),
  backorderable: Type.Boolean(),
  active: Type.Boolean(),
  version: Type.Integer(),
});
const skuOut = (s: Sku) => ({
  code: s.code,
  gtin: s.gtin,
  name: s.name,
  weight_g: s.weightG,
  length_mm: s.lengthMm,
  width_mm: s.widthMm,
  height_mm: s.heightMm,
  demand_class: s.demandClass,
  tags: s.tags,
  backorderable: s.backorderable,
  active: s.active,
  version: s.version,
});
type SkuBodyT = import('@sinclair/typebox').Static<typeof SkuBody>;
const skuIn = (code: string, b: SkuBodyT): SkuInput => ({
  code,
  name: b.name,
  gtin: b.gtin,
  weightG: b.weight_g,
  lengthMm: b.length_mm,
  widthMm: b.width_mm,
  heightMm: b.height_mm,
  demandClass: b.demand_class,
  tags: b.tags,
  backorderable: b.backorderable,
  active: b.active,
});

const ChannelBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    type: Enum(CHANNEL_TYPES),
    location_types: Type.Optional(Type.Array(Enum(LOCATION_TYPES), { uniqueItems: true })),
    location_tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 50 })),
    location_codes: Type.Optional(Type.Array(Code, { maxItems: 5000 })),
    exclude_location_codes: Type.Optional(Type.Array(Code, { maxItems: 5000 })),
    buffer: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    cap_percent: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 100 }))),
    future_stock: Type.Optional(Type.Boolean()),
    future_horizon_days: Type.Optional(Type.Integer({ minimum: 0, maximum: 730 })),
    active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const ChannelOut = Type.Object({
  code: Type.String(),
  name: Type.String(),
  type: Type.String(),
  location_types: Type.Array(Type.String()),
  location_tags: Type.Array(Type.String()),
  location_codes: Type.Array(Type.String()),
  exclude_location_codes: Type.Array(Type.String()),
  buffer: Type.Integer(),
  cap_percent: Nullable(Type.Integer()),
  future_stock: Type.Boolean(),
  future_horizon_days: Type.Integer(),
  active: Type.Boolean(),
  version: Type.Integer(),
});
const channelOut = (c: Channel) => ({
  code: c.code,
  name: c.name,
  type: c.type,
  location_types: c.locationTypes,
  location_tags: c.locationTags,
  location_codes: c.locationCodes,
  exclude_location_codes: c.excludeLocationCodes,
  buffer: c.buffer,
  cap_percent: c.capPercent,
  future_stock: c.futureStock,
  future_horizon_days: c.futureHorizonDays,
  active: c.active,
  version: c.version,
});

const SupplyBody = Type.Object(
  {
    kind: Enum(SUPPLY_KINDS),
    reference: Type.String({ minLength: 1, maxLength: 100 }),
    location: Code,
    sku: Code,
    quantity: Type.Integer({ minimum: 1, maximum: 2_000_000_000 }),
    expected_at: Iso,
  },
  { additionalProperties: false },
);
const SupplyOut = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  reference: Type.String(),
  location: Type.String(),
  sku: Type.String(),
  quantity: Type.Integer(),
  received_quantity: Type.Integer(),
  expected_at: Type.String(),
  status: Type.String(),
});

const CodeParams = Type.Object({ code: Code });

export function registerCatalogRoutes(app: App, ctx: Ctx): void {
  const db = ctx.store.db;

  app.put('/locations/:code', { schema: { tags: ['locations'], summary: 'Create or replace a location', security, params: CodeParams, body: LocationBody, response: withErrors({ 200: LocationOut, 201: LocationOut }) } }, async (req, reply) => {
    requireRole(req);
    const b = req.body;
    const { location, created } = await upsertLocation(ctx, {
      code: req.params.code,
      name: b.name,
      type: b.type,
      fulfilmentChannel: b.fulfilment_channel,
      country: b.country,
      city: b.city,
      postalCode: b.postal_code,
      addressLine: b.address_line,
      latitude: b.latitude,
      longitude: b.longitude,
      tags: b.tags,
      capabilities: b.capabilities,
      dailyCapacity: b.daily_capacity,
      priority: b.priority,
      shipmentCost: b.shipment_cost,
      currency: b.currency,
      defaultSafetyStock: b.default_safety_stock,
      active: b.active,
    });
    return reply.status(created ? 201 : 200).send(locationOut(location));
  });

  app.get('/locations', { schema: { tags: ['locations'], summary: 'List locations (store and integration keys see their own)', security, querystring: Type.Object({ ...PageQuery, type: Type.Optional(Enum(LOCATION_TYPES)) }), response: withErrors({ 200: Page(LocationOut) }) } }, async (req) => {
    const p = requireRole(req, 'store', 'integration', 'channel');
    const limit = req.query.limit ?? 100;
    const items = await listLocations(db, { type: req.query.type, after: req.query.after, limit, ids: p.role === 'store' || p.role === 'integration' ? p.locationIds : undefined });
    return { items: items.map(locationOut), next_cursor: items.length === limit ? items[items.length - 1].code : null };
  });

  app.get('/locations/:code', { schema: { tags: ['locations'], summary: 'Get a location', security, params: CodeParams, response: withErrors({ 200: LocationOut }) } }, async (req) => {
    const p = requireRole(req, 'store', 'integration', 'channel');
    const loc = await getLocation(db, req.params.code).catch(() => null);
    if (!loc || (p.role !== 'admin' && p.role !== 'channel' && !canActOnLocation(p, loc.id))) throw new AppError('unknown_location', `Location '${req.params.code}' does not exist`);
    return locationOut(loc);
  });

  app.put('/skus/:code', { schema: { tags: ['skus'], summary: 'Create or replace a sku', security, params: CodeParams, body: SkuBody, response: withErrors({ 200: SkuOut }) } }, async (req) => {
    requireRole(req);
    const [sku] = await upsertSkus(ctx, [skuIn(req.params.code, req.body)]);
    return skuOut(sku);
  });

  app.post(
    '/skus/batch',
    { schema: { tags: ['skus'], summary: 'Create or replace up to 1,000 skus', security, body: Type.Object({ items: Type.Array(Type.Composite([Type.Object({ code: Code }), SkuBody], { additionalProperties: false }), { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false }), response: withErrors({ 200: Type.Object({ items: Type.Array(SkuOut) }) }) }, preValidation: batchCap('items', 1000) },
    async (req) => {
      requireRole(req);
      const skus = await upsertSkus(ctx, req.body.items.map(({ code, ...rest }) => skuIn(code, rest)));
      return { items: skus.map(skuOut) };
    },
  );

  app.get('/skus', { schema: { tags: ['skus'], summary: 'List skus', security, querystring: Type.Object({ ...PageQuery, demand_class: Type.Optional(Type.String({ maxLength: 8 })) }), response: withErrors({ 200: Page(SkuOut) }) } }, async (req) => {
    requireRole(req, 'store', 'integration', 'channel');
    const limit = req.query.limit ?? 100;
    const items = await listSkus(db, { after: req.query.after, limit, demandClass: req.query.demand_class });
    return { items: items.map(skuOut), next_cursor: items.length === limit ? items[items.length - 1].code : null };
  });

  app.get('/skus/:code', { schema: { tags: ['skus'], summary: 'Get a sku', security, params: CodeParams, response: withErrors({ 200: SkuOut }) } }, async (req) => {
    requireRole(req, 'store', 'integration', 'channel');
    return skuOut(await getSku(db, req.params.code));
  });

  app.put('/channels/:code', { schema: { tags: ['channels'], summary: 'Create or replace a sales channel and its exposure rules', security, params: CodeParams, body: ChannelBody, response: withErrors({ 200: ChannelOut, 201: ChannelOut }) } }, async (req, reply) => {
    requireRole(req);
    const b = req.body;
    const { channel, created } = await upsertChannel(ctx, {
      code: req.params.code,
      name: b.name,
      type: b.type,
      locationTypes: b.location_types,
      locationTags: b.location_tags,
      locationCodes: b.location_codes,
      excludeLocationCodes: b.exclude_location_codes,
      buffer: b.buffer,
      capPercent: b.cap_percent,
      futureStock: b.future_stock,
      futureHorizonDays: b.future_horizon_days,
      active: b.active,
    });
    return reply.status(created ? 201 : 200).send(channelOut(channel));
  });

  app.get('/channels', { schema: { tags: ['channels'], summary: 'List channels (a channel key sees its own)', security, response: withErrors({ 200: Type.Object({ items: Type.Array(ChannelOut) }) }) } }, async (req) => {
    const p = requireRole(req, 'channel', 'store');
    const all = await listChannels(db);
    return { items: all.filter((c) => p.role === 'admin' || c.code === p.channel).map(channelOut) };
  });

  app.get('/channels/:code', { schema: { tags: ['channels'], summary: 'Get a channel', security, params: CodeParams, response: withErrors({ 200: ChannelOut }) } }, async (req) => {
    const p = requireRole(req, 'channel', 'store');
    if (p.role !== 'admin' && p.channel !== req.params.code) throw new AppError('unknown_channel', `Channel '${req.params.code}' does not exist`);
    return channelOut(await getChannel(db, req.params.code));
  });

  app.post('/supply', { schema: { tags: ['supply'], summary: 'Record incoming supply (future stock): PO, transfer or production line', security, body: SupplyBody, response: withErrors({ 200: SupplyOut }) } }, async (req) => {
    const p = requireRole(req, 'integration');
    const loc = ctx.projection.location(req.body.location);
    if (!loc || !canActOnLocation(p, loc.id)) throw new AppError('unknown_location', `Location '${req.body.location}' does not exist`);
    const expectedAt = Date.parse(req.body.expected_at);
    const s = await upsertSupply(ctx, { kind: req.body.kind, reference: req.body.reference, location: req.body.location, sku: req.body.sku, quantity: req.body.quantity, expectedAt });
    return { id: s.id, kind: s.kind, reference: s.reference, location: s.location, sku: s.sku, quantity: s.quantity, received_quantity: s.receivedQuantity, expected_at: iso(s.expectedAt) as string, status: s.status };
  });

  app.get('/supply', { schema: { tags: ['supply'], summary: 'List incoming supply', security, querystring: Type.Object({ ...PageQuery, sku: Type.Optional(Code), location: Type.Optional(Code) }), response: withErrors({ 200: Page(SupplyOut) }) } }, async (req) => {
    const p = requireRole(req, 'integration', 'store');
    const limit = req.query.limit ?? 100;
    let locationId: number | undefined;
    if (req.query.location) {
      const loc = ctx.projection.location(req.query.location);
      if (!loc || !canActOnLocation(p, loc.id)) throw new AppError('unknown_location', `Location '${req.query.location}' does not exist`);
      locationId = loc.id;
    } else if (p.role !== 'admin') throw new AppError('validation_failed', 'A scoped key must name a location');
    const sku = req.query.sku ? ctx.projection.sku(req.query.sku) : undefined;
    if (req.query.sku && !sku) throw new AppError('unknown_sku', `SKU '${req.query.sku}' does not exist`);
    const rows = await listSupply(db, { skuId: sku?.id, locationId, afterId: req.query.after, limit });
    return {
      items: rows.map((r) => ({ id: r.id, kind: r.kind, reference: r.reference, location: r.location, sku: r.sku, quantity: r.quantity, received_quantity: r.received_quantity, expected_at: iso(r.expected_at) as string, status: r.status })),
      next_cursor: rows.length === limit ? rows[rows.length - 1].id : null,
    };
  });
}
