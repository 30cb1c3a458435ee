// The PaymentProvider port (DOMAIN §4): the narrow, typed surface the OMS needs from a payment
// operator. Adapters: sandbox (built in, the demo default), card_terminal (card present, in
// store), gift_card (store credit, built in) and stripe (official SDK). Every call carries an
// idempotency key that the adapter passes to the operator, so a retry after a crash or a
// timeout has the effect of one call. Amounts are integer minor units.
//
// Expected outcomes (declined, failed) are values. A transient failure (network, 5xx, rate
// limit) throws ProviderUnavailable: the operation stays pending and is retried later with
// the same idempotency key.

export const PROVIDER_NAMES = ['sandbox', 'stripe', 'card_terminal', 'gift_card'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** Brand and last four digits: all the OMS ever keeps of a card. */
export interface CardSummary {
  brand: string;
  last4: string;
}

export interface AuthorizeRequest {
  idempotencyKey: string;
  /** The OMS payment id, sent to the operator as metadata so webhooks can name it. */
  paymentId: string;
  orderId: string;
  amount: number;
  /** ISO 4217, upper case. */
  currency: string;
  /** The operator's payment-method token (from its client-side SDK), never a card number. */
  token: string;
  /** Where the customer comes back to after a customer action (3-D Secure). */
  returnUrl?: string;
}

export type AuthorizeResult =
  | { outcome: 'authorized'; providerRef: string; authorized: number; card?: CardSummary }
  | { outcome: 'action_required'; providerRef: string; actionUrl: string }
  | { outcome: 'declined'; providerRef: string | null; code: string; message: string };

export interface CaptureRequest {
  idempotencyKey: string;
  /** The OMS operation id (metadata, so the webhook of this capture names it). */
  operationId: string;
  providerRef: string;
  amount: number;
  currency: string;
  /** The last capture of this payment: the operator releases what remains authorized. */
  final: boolean;
}
export type CaptureResult = { outcome: 'captured'; amount: number } | { outcome: 'failed'; code: string; message: string };

export interface VoidRequest {
  idempotencyKey: string;
  operationId: string;
  providerRef: string;
}
export type VoidResult = { outcome: 'voided' } | { outcome: 'failed'; code: string; message: string };

export interface RefundRequest {
  idempotencyKey: string;
  /** The OMS operation id, sent as metadata: the refund's webhook names it. */
  operationId: string;
  providerRef: string;
  amount: number;
  currency: string;
  reason?: string;
}
export type RefundResult =
  | { outcome: 'refunded'; refundRef: string; amount: number }
  /** Accepted, settled later (the webhook, or the POS for a card-present refund, says how it ended). */
  | { outcome: 'pending'; refundRef: string }
  | { outcome: 'failed'; code: string; message: string };

/**
 * What a verified webhook says happened, in the OMS's terms. `paymentId` / `operationId` are
 * the OMS ids the adapter sent as metadata (absent for what was done outside the OMS, e.g. in
 * the operator's dashboard). Totals, when the operator sends them, are absolute figures for
 * the whole payment (the provider's truth): the OMS converges to them.
 */
export type PaymentEvent = { eventId: string; providerRef: string; paymentId?: string; occurredAt: number } & (
  | { type: 'authorized'; authorized: number; card?: CardSummary }
  | { type: 'action_required'; actionUrl: string }
  | { type: 'failed'; code: string; message: string }
  | { type: 'captured'; operationId?: string; amount?: number; capturedTotal: number }
  | { type: 'voided' }
  | { type: 'refund'; operationId?: string; refundRef: string; amount: number; status: 'succeeded' | 'pending' | 'failed'; refundedTotal?: number; capturedTotal?: number }
);

export type WebhookVerdict =
  | { ok: true; events: PaymentEvent[]; ignored?: string }
  | { ok: false; reason: 'missing_signature' | 'bad_signature' | 'stale_timestamp' | 'malformed'; message: string };

export type Headers = Readonly<Record<string, string | string[] | undefined>>;

export interface PaymentProvider {
  readonly name: ProviderName;
  authorize(req: AuthorizeRequest): Promise<AuthorizeResult>;
  capture(req: CaptureRequest): Promise<CaptureResult>;
  void(req: VoidRequest): Promise<VoidResult>;
  refund(req: RefundRequest): Promise<RefundResult>;
  /** Verifies the signature on the raw body (never a re-serialised one) and parses the events. */
  parseWebhook(rawBody: Buffer, headers: Headers, now: number): Promise<WebhookVerdict>;
}

/** A transient failure: nothing is known to have happened; retry with the same idempotency key. */
export class ProviderUnavailable extends Error {
  constructor(
    readonly provider: ProviderName,
    message: string,
  ) {
    super(message);
    this.name = 'ProviderUnavailable';
  }
}

export const headerValue = (h: Headers, name: string): string | undefined => {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
};
