// A small network for tests: a few locations, skus and channels, with literal values.
import { upsertChannel, type ChannelInput } from '../../src/channels/channels.ts';
import type { Ctx } from '../../src/context.ts';
import { upsertLocation } from '../../src/inventory/locations.ts';
import { upsertSkus } from '../../src/inventory/skus.ts';

export async function smallNetwork(ctx: Ctx, channels: ChannelInput[] = [{ code: 'web', name: 'Web', type: 'web' }]): Promise<void> {
  await upsertLocation(ctx, { code: 'WH1', name: 'Warehouse 1', type: 'warehouse', country: 'FR', latitude: 48.85, longitude: 2.35, capabilities: ['ships'], tags: ['central'] });
  await upsertLocation(ctx, { code: 'ST-PARIS', name: 'Store Paris', type: 'store', country: 'FR', latitude: 48.86, longitude: 2.34, capabilities: ['ships', 'click_and_collect'], tags: ['city'] });
  await upsertLocation(ctx, { code: 'ST-LYON', name: 'Store Lyon', type: 'store', country: 'FR', latitude: 45.75, longitude: 4.85, capabilities: ['click_and_collect'], tags: ['city'] });
  await upsertLocation(ctx, { code: 'SUP1', name: 'Supplier', type: 'supplier', country: 'IT', latitude: 45.46, longitude: 9.19, capabilities: ['ships'] });
  await upsertLocation(ctx, { code: 'MKP', name: 'Marketplace', type: 'marketplace', country: 'FR' });
  await upsertSkus(ctx, [
    { code: 'A1', name: 'Shirt', gtin: '4006381333931', demandClass: 'A', backorderable: true },
    { code: 'B1', name: 'Jeans', demandClass: 'B' },
    { code: 'C1', name: 'Bag', demandClass: 'C' },
  ]);
  for (const c of channels) await upsertChannel(ctx, c);
}

export const PARIS_ADDRESS = { line1: '1 rue de Rivoli', postal_code: '75001', city: 'Paris', country: 'FR', latitude: 48.8534, longitude: 2.3488 };

/** A `POST /orders` body: home delivery in Paris, shipping 500, totals that add up, one tender. */
export function homeOrderBody(ref: string, lines: Array<[sku: string, quantity: number, unitPrice: number]>, opts: { tender?: string } = {}) {
  const subtotal = lines.reduce((s, [, q, p]) => s + q * p, 0);
  return {
    external_reference: ref,
    customer: { name: 'Ada', email: 'ada@example.com' },
    currency: 'EUR',
    lines: lines.map(([sku, quantity, unit_price]) => ({ sku, quantity, unit_price })),
    delivery_groups: [{ mode: 'home', address: PARIS_ADDRESS, shipping_price: 500 }],
    totals: { subtotal, discount: 0, tax: 0, shipping: 500, total: subtotal + 500 },
    tenders: [{ method: opts.tender ?? 'card', amount: subtotal + 500 }],
  };
}
