// Stored orders as sourcing requests: to re-source part of an order (fulfilment.ts), and to
// replay the orders of a date range against two rule sets (sourcing simulations). A replay
// asks what the order asked at capture: every line's full quantity, its delivery group, and
// the Order-in-Store exclusion; not the locations that later gave up on it.
import type { Ctx } from '../context.ts';
import { AppError } from '../shared/errors.ts';
import type { SimulationOrderInput, SourcingRequest } from '../sourcing/service.ts';
import type { Address } from './capture.ts';
import { loadOrder, type OrderAggregate } from './repository.ts';

/** The sourcing request of one delivery group of a stored order, for these units. */
export function storedGroupRequest(ctx: Ctx, order: OrderAggregate, groupId: string, units: Array<{ lineId: string; quantity: number }>, exclude: readonly number[]): SourcingRequest {
  const g = order.groups.find((x) => x.group_id === groupId);
  if (!g) throw new Error(`order ${order.order.id} has no delivery group ${groupId}`);
  const p = ctx.projection;
  const addr: Address | null = g.address ? JSON.parse(g.address) : g.relay_point ? JSON.parse(g.relay_point).address : null;
  const channel = p.allChannels().find((c) => c.id === order.order.channel_id);
  return {
    channel: channel?.code ?? '',
    currency: order.order.currency,
    value: order.order.total,
    lines: units.map((u) => {
      const l = order.lines.find((x) => x.line_id === u.lineId);
      return { lineId: u.lineId, sku: p.skuById(l?.sku_id ?? -1)?.code ?? '', quantity: u.quantity, unitPrice: l?.unit_price };
    }),
    delivery: {
      mode: g.mode as SourcingRequest['delivery']['mode'],
      country: addr?.country ?? null,
      postalCode: addr?.postalCode ?? null,
      city: addr?.city ?? null,
      latitude: addr?.latitude ?? null,
      longitude: addr?.longitude ?? null,
      pickupLocation: g.pickup_location_id === null ? null : (p.locationById(g.pickup_location_id)?.code ?? null),
    },
    excludeLocations: [...new Set(exclude)].map((id) => p.locationById(id)?.code).filter((c): c is string => !!c),
    carrierService: g.carrier_service,
    serviceLevel: (g.service_level as 'standard' | 'express' | null) ?? null,
  };
}

export interface StoredRange {
  from: number;
  to: number;
  channel?: string;
}

/**
 * The orders captured in [from, to) (optionally of one channel), oldest first, as simulation
 * inputs: one per delivery group, referenced by external reference (and group when several).
 * At most `max` orders; more is page_too_large, so a simulation never silently samples.
 */
export async function storedOrdersForSimulation(ctx: Ctx, range: StoredRange, max: number): Promise<SimulationOrderInput[]> {
  if (!(range.from < range.to)) throw new AppError('validation_failed', 'stored_orders: from must be before to');
  let q = ctx.store.db.selectFrom('orders').select('id').where('created_at', '>=', range.from).where('created_at', '<', range.to);
  if (range.channel !== undefined) {
    const ch = ctx.projection.channel(range.channel);
    if (!ch) throw new AppError('unknown_channel', `Channel '${range.channel}' does not exist`);
    q = q.where('channel_id', '=', ch.id);
  }
  const ids = await q.orderBy('created_at').orderBy('id').limit(max + 1).execute();
  if (ids.length > max) throw new AppError('page_too_large', `More than ${max.toLocaleString('en')} orders in that range: narrow it`);
  const out: SimulationOrderInput[] = [];
  for (const { id } of ids) {
    const a = (await loadOrder(ctx.store.db, id)) as OrderAggregate;
    const excluded = a.order.store_location_id === null ? [] : [a.order.store_location_id];
    for (const g of a.groups) {
      const units = a.lines.filter((l) => l.group_id === g.group_id).map((l) => ({ lineId: l.line_id, quantity: l.quantity }));
      const req = storedGroupRequest(ctx, a, g.group_id, units, g.mode === 'in_store' ? [] : excluded);
      out.push({ ...req, reference: a.groups.length > 1 ? `${a.order.external_reference}/${g.group_id}` : a.order.external_reference });
    }
  }
  return out;
}
