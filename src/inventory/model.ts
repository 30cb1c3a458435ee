// Pure inventory model: the vocabulary of stock points and skus, and the small rules
// (GTIN check digit, what "sellable" means) that everything else builds on.

export const LOCATION_TYPES = ['warehouse', 'store', 'supplier', 'marketplace', 'reseller'] as const;
export type LocationType = (typeof LOCATION_TYPES)[number];

export const CAPABILITIES = ['ships', 'click_and_collect', 'order_in_store', 'accepts_returns'] as const;
export type Capability = (typeof CAPABILITIES)[number];

export const FULFILMENT_CHANNELS = ['wms', 'store_app', 'partner_feed'] as const;
export type FulfilmentChannel = (typeof FULFILMENT_CHANNELS)[number];

/** Where a location's work goes when nobody says otherwise (DOMAIN §1). */
export function defaultFulfilmentChannel(type: LocationType): FulfilmentChannel {
  if (type === 'warehouse') return 'wms';
  if (type === 'store') return 'store_app';
  return 'partner_feed';
}

export const MOVEMENT_KINDS = [
  'snapshot',
  'receipt',
  'sale',
  'adjustment',
  'shipment',
  'return',
  'transfer_in',
  'transfer_out',
  'count',
  'quarantine',
  'release_quarantine',
] as const;
export type MovementKind = (typeof MOVEMENT_KINDS)[number];

export const SUPPLY_KINDS = ['purchase_order', 'transfer', 'production'] as const;
export type SupplyKind = (typeof SUPPLY_KINDS)[number];

export interface Location {
  id: number;
  code: string;
  name: string;
  type: LocationType;
  fulfilmentChannel: FulfilmentChannel;
  country: string;
  city: string | null;
  postalCode: string | null;
  addressLine: string | null;
  latitude: number | null;
  longitude: number | null;
  tags: string[];
  capabilities: Capability[];
  dailyCapacity: number | null;
  priority: number;
  shipmentCost: number;
  currency: string;
  defaultSafetyStock: number;
  active: boolean;
  snapshotAsOf: number | null;
  version: number;
  createdAt: number;
  updatedAt: number;
}

export interface Sku {
  id: number;
  code: string;
  gtin: string | null;
  name: string;
  weightG: number | null;
  lengthMm: number | null;
  widthMm: number | null;
  heightMm: number | null;
  demandClass: string | null;
  tags: string[];
  backorderable: boolean;
  active: boolean;
  version: number;
  createdAt: number;
  updatedAt: number;
}

/** GTIN-8/12/13/14: digits only, mod-10 check digit with weights 3,1 from the right. */
export function isValidGtin(gtin: string): boolean {
  if (!/^\d+$/.test(gtin) || ![8, 12, 13, 14].includes(gtin.length)) return false;
  const digits = gtin.split('').map(Number);
  const check = digits.pop() as number;
  let sum = 0;
  for (let i = digits.length - 1, w = 3; i >= 0; i--, w = w === 3 ? 1 : 3) sum += digits[i] * w;
  return (10 - (sum % 10)) % 10 === check;
}

/** Units a location could promise for one sku, before channel rules. Never negative. */
export function sellable(p: { onHand: number; reserved: number; quarantine: number; safetyStock: number }): number {
  const v = p.onHand - p.reserved - p.quarantine - p.safetyStock;
  return v > 0 ? v : 0;
}

export const COUNTRY_RE = /^[A-Z]{2}$/;
