// Order policies a retailer tunes by configuration (README: Configuration), with defaults.
import type { LocationType } from '../inventory/model.ts';

export interface OrderSettings {
  /** An order still pending_payment this long after capture expires and releases its stock. */
  paymentTtlMs: number;
  /** The same for orders paid only by manual tenders (bank transfer, cash on delivery, PO). */
  manualPaymentTtlMs: number;
  /** How long an Idempotency-Key is remembered. */
  idempotencyTtlMs: number;
  /** A request holding a key this long without finishing (its process died) lets a retry take over. */
  idempotencyLeaseMs: number;
  /** A released fulfilment order not accepted within this time is re-sourced elsewhere. */
  acceptDeadlineMs: Record<LocationType, number>;
}

const MIN = 60_000;
export const DEFAULT_ORDER_SETTINGS: OrderSettings = {
  paymentTtlMs: 30 * MIN,
  manualPaymentTtlMs: 72 * 60 * MIN,
  idempotencyTtlMs: 24 * 60 * MIN,
  idempotencyLeaseMs: 10_000,
  acceptDeadlineMs: { store: 120 * MIN, warehouse: 240 * MIN, supplier: 24 * 60 * MIN, marketplace: 24 * 60 * MIN, reseller: 24 * 60 * MIN },
};

/** "store=120,warehouse=240" (minutes) over the defaults; unknown types or bad numbers throw. */
export function parseDeadlines(text: string | undefined, base = DEFAULT_ORDER_SETTINGS.acceptDeadlineMs): Record<LocationType, number> {
  const out = { ...base };
  if (!text) return out;
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [type, minutes] = part.split('=');
    const n = Number(minutes);
    if (!(type in out) || !Number.isFinite(n) || n <= 0) throw new Error(`OMS_ACCEPT_DEADLINES: '${part}' is not <location type>=<minutes>`);
    out[type as LocationType] = n * MIN;
  }
  return out;
}
