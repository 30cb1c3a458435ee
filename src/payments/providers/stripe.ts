// The Stripe adapter of the PaymentProvider port (see ../provider.ts), on the official SDK.
//
// Card payments are PaymentIntents confirmed server-side with manual capture and multicapture
// requested ('if_available'), so the OMS can capture per shipment and release the rest with
// the last one. Every call carries the OMS idempotency key; the SDK's own retries are off
// (maxNetworkRetries: 0): the OMS retries later with the same key, and Stripe replays.
//
// Errors, in the port's terms:
//   - card errors (402) and invalid requests (400/404, incl. an idempotency-key conflict)
//     → a value: `declined` (authorize) or `failed` (capture, void, refund);
//   - network errors, timeouts, 5xx, 409 (key in use), 429 → throw ProviderUnavailable (note: the
//     SDK itself retries a closed connection once, even with retries off, with the same key);
//   - 401/403 (a wrong or restricted key) → throw ProviderUnavailable as well: nothing happened
//     at Stripe, and the operation succeeds once the configuration is fixed;
//   - anything that is not a Stripe error (a bug) is rethrown as is.
// Nothing is logged here: no secret, no request body, no card data ever leaves this file.
//
// Webhooks: the signature is verified on the RAW body with the SDK (`webhooks.constructEvent`),
// trying every configured secret (rotation: any configured secret matching any v1 of the header).
// The OMS clock (`now`) is passed to the SDK as `receivedAt`. The SDK only rejects timestamps
// that are too OLD; a timestamp more than `toleranceSec` in the future is also rejected here
// (stale_timestamp), like src/payments/signature.ts does (|now − t| > tolerance).
import Stripe from 'stripe';
import {
  type AuthorizeRequest,
  type AuthorizeResult,
  type CaptureRequest,
  type CaptureResult,
  type CardSummary,
  type Headers,
  headerValue,
  type PaymentEvent,
  type PaymentProvider,
  ProviderUnavailable,
  type RefundRequest,
  type RefundResult,
  type VoidRequest,
  type VoidResult,
  type WebhookVerdict,
} from '../provider.ts';

export interface StripeProviderOptions {
  /** `sk_live_…`, `sk_test_…` or a restricted key `rk_…`. */
  secretKey: string;
  /** Webhook signing secrets (`whsec_…`); several during a rotation. */
  webhookSecrets: string[];
  /** API endpoint; defaults to Stripe's (api.stripe.com:443, https). A stand-in in tests. */
  host?: string;
  port?: number;
  protocol?: 'http' | 'https';
  /** Webhook timestamp tolerance, both ways, in seconds. Default 300 (Stripe's). */
  toleranceSec?: number;
  /** Per-request timeout. Default 15 s (the SDK's own default is 80 s). */
  timeoutMs?: number;
}

export const STRIPE_DEFAULT_TIMEOUT_MS = 15_000;
export const STRIPE_DEFAULT_TOLERANCE_SEC = 300;

/** Refund reasons Stripe accepts; any other OMS reason is not sent (it stays in the OMS). */
const STRIPE_REFUND_REASONS = ['duplicate', 'fraudulent', 'requested_by_customer'] as const;
type StripeRefundReason = (typeof STRIPE_REFUND_REASONS)[number];
const isStripeRefundReason = (r: string | undefined): r is StripeRefundReason => r !== undefined && (STRIPE_REFUND_REASONS as readonly string[]).includes(r);

/** Metadata keys the adapter writes and the webhooks read back. */
export const STRIPE_METADATA = { payment: 'oms_payment', order: 'oms_order', operation: 'oms_operation' } as const;

type Rejection = { code: string; message: string; paymentIntent?: Stripe.PaymentIntent };

/** A Stripe error that says the request was refused (nothing happened), or null for a transient one. */
function classify(err: unknown): Rejection | null {
  if (!(err instanceof Stripe.errors.StripeError)) throw err;
  if (err instanceof Stripe.errors.StripeConnectionError || err instanceof Stripe.errors.StripeAPIError || err instanceof Stripe.errors.StripeRateLimitError) return null;
  if (err instanceof Stripe.errors.StripeAuthenticationError || err instanceof Stripe.errors.StripePermissionError) return null;
  const status = err.statusCode;
  if (status === undefined || status >= 500 || status === 429 || status === 409) return null;
  if (err instanceof Stripe.errors.StripeCardError) {
    return { code: err.decline_code ?? err.code ?? 'card_declined', message: err.message, paymentIntent: err.payment_intent };
  }
  // StripeInvalidRequestError (400, 404), StripeIdempotencyError (same key, other parameters), other 4xx.
  return { code: err.code ?? err.rawType ?? 'invalid_request_error', message: err.message, paymentIntent: err.payment_intent };
}

function unavailable(err: unknown): ProviderUnavailable {
  if (err instanceof Stripe.errors.StripeAuthenticationError || err instanceof Stripe.errors.StripePermissionError) {
    return new ProviderUnavailable('stripe', `Stripe refused the API key (${err.statusCode ?? 'auth'}): check the configuration`);
  }
  const status = err instanceof Stripe.errors.StripeError && err.statusCode !== undefined ? ` (HTTP ${err.statusCode})` : '';
  const message = err instanceof Error ? err.message : String(err);
  return new ProviderUnavailable('stripe', `${message}${status}`);
}

const idOf = (x: string | { id: string } | null | undefined): string | null => (x == null ? null : typeof x === 'string' ? x : x.id);

function cardOf(pi: Stripe.PaymentIntent): CardSummary | undefined {
  const charge = pi.latest_charge;
  if (charge === null || typeof charge === 'string') return undefined;
  const card = charge.payment_method_details?.card;
  return card?.brand && card.last4 ? { brand: card.brand, last4: card.last4 } : undefined;
}

function refundStatus(status: string | null): 'succeeded' | 'pending' | 'failed' {
  switch (status) {
    case 'succeeded':
      return 'succeeded';
    case 'failed':
    case 'canceled':
      return 'failed';
    default:
      // pending, requires_action, and any status Stripe may add: not settled yet.
      return 'pending';
  }
}

/** The last t= and every v1= of a `Stripe-Signature` header (the SDK's reading), or null. */
function parseSignatureHeader(header: string): { t: number; v1: number } | null {
  let t: number | null = null;
  let v1 = 0;
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') t = /^\d{1,15}$/.test(value) ? Number(value) : null;
    else if (key === 'v1') v1 += 1;
  }
  return t === null || v1 === 0 ? null : { t, v1 };
}

export class StripeProvider implements PaymentProvider {
  readonly name = 'stripe' as const;
  private readonly stripe: Stripe;
  private readonly webhookSecrets: string[];
  private readonly toleranceSec: number;

  constructor(opts: StripeProviderOptions) {
    if (!opts.secretKey) throw new Error('StripeProvider: secretKey is required');
    this.stripe = new Stripe(opts.secretKey, {
      maxNetworkRetries: 0,
      timeout: opts.timeoutMs ?? STRIPE_DEFAULT_TIMEOUT_MS,
      telemetry: false,
      appInfo: { name: 'open-oms' },
      ...(opts.host !== undefined ? { host: opts.host } : {}),
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      ...(opts.protocol !== undefined ? { protocol: opts.protocol } : {}),
    });
    this.webhookSecrets = opts.webhookSecrets.filter((s) => s.trim() !== '');
    this.toleranceSec = opts.toleranceSec ?? STRIPE_DEFAULT_TOLERANCE_SEC;
  }

  async authorize(req: AuthorizeRequest): Promise<AuthorizeResult> {
    const params: Stripe.PaymentIntentCreateParams = {
      amount: req.amount,
      currency: req.currency.toLowerCase(),
      payment_method: req.token,
      confirm: true,
      capture_method: 'manual',
      // API 2026-09-30 (SDK v23) replaced payment_method_types by allowed_payment_method_types.
      allowed_payment_method_types: ['card'],
      payment_method_options: { card: { request_multicapture: 'if_available' } },
      metadata: { [STRIPE_METADATA.payment]: req.paymentId, [STRIPE_METADATA.order]: req.orderId },
      expand: ['latest_charge'],
      // Without a return URL the OMS cannot send the customer through 3-D Secure: Stripe then
      // fails the confirmation (authentication_required, a decline) instead of waiting.
      ...(req.returnUrl ? { return_url: req.returnUrl } : { error_on_requires_action: true }),
    };
    let pi: Stripe.Response<Stripe.PaymentIntent>;
    try {
      pi = await this.stripe.paymentIntents.create(params, { idempotencyKey: req.idempotencyKey });
    } catch (err) {
      const rejected = classify(err);
      if (!rejected) throw unavailable(err);
      return { outcome: 'declined', providerRef: rejected.paymentIntent?.id ?? null, code: rejected.code, message: rejected.message };
    }
    // A replayed response is the state at the first call. One that could have moved on since
    // (the customer went through 3-D Secure, processing ended) is read again.
    const replayed = pi.lastResponse?.headers?.['idempotent-replayed'] === 'true';
    if (replayed && (pi.status === 'requires_action' || pi.status === 'processing')) {
      try {
        return this.authorizeResult(await this.stripe.paymentIntents.retrieve(pi.id, { expand: ['latest_charge'] }));
      } catch (err) {
        const rejected = classify(err);
        if (!rejected) throw unavailable(err);
        // Not readable (should not happen): the replayed state is still a true answer.
      }
    }
    return this.authorizeResult(pi);
  }

  private authorizeResult(pi: Stripe.PaymentIntent): AuthorizeResult {
    switch (pi.status) {
      case 'requires_capture':
      case 'succeeded': {
        // What the authorization covers: still capturable plus already captured (the latter is 0
        // right after confirmation; not 0 when a replay was refreshed after captures).
        const card = cardOf(pi);
        return { outcome: 'authorized', providerRef: pi.id, authorized: pi.amount_capturable + pi.amount_received, ...(card ? { card } : {}) };
      }
      case 'requires_action': {
        const url = pi.next_action?.redirect_to_url?.url;
        if (url) return { outcome: 'action_required', providerRef: pi.id, actionUrl: url };
        return { outcome: 'declined', providerRef: pi.id, code: 'unsupported_next_action', message: `Stripe asks for a customer action the OMS cannot relay (${pi.next_action?.type ?? 'unknown'})` };
      }
      case 'processing':
        throw new ProviderUnavailable('stripe', `PaymentIntent ${pi.id} is processing; ask again later`);
      case 'requires_payment_method': {
        const e = pi.last_payment_error;
        return { outcome: 'declined', providerRef: pi.id, code: e?.decline_code ?? e?.code ?? 'payment_failed', message: e?.message ?? 'The payment failed' };
      }
      case 'canceled':
        return { outcome: 'declined', providerRef: pi.id, code: 'canceled', message: `The PaymentIntent was canceled (${pi.cancellation_reason ?? 'no reason'})` };
      default:
        return { outcome: 'declined', providerRef: pi.id, code: 'unexpected_status', message: `Unexpected PaymentIntent status ${pi.status}` };
    }
  }

  async capture(req: CaptureRequest): Promise<CaptureResult> {
    const params: Stripe.PaymentIntentCaptureParams = {
      amount_to_capture: req.amount,
      metadata: { [STRIPE_METADATA.operation]: req.operationId },
      // final_capture defaults to true (release the rest); false is only sent when more captures follow.
      ...(req.final ? {} : { final_capture: false }),
    };
    try {
      await this.stripe.paymentIntents.capture(req.providerRef, params, { idempotencyKey: req.idempotencyKey });
      return { outcome: 'captured', amount: req.amount };
    } catch (err) {
      const rejected = classify(err);
      if (!rejected) throw unavailable(err);
      return { outcome: 'failed', code: rejected.code, message: rejected.message };
    }
  }

  async void(req: VoidRequest): Promise<VoidResult> {
    try {
      await this.stripe.paymentIntents.cancel(req.providerRef, {}, { idempotencyKey: req.idempotencyKey });
      return { outcome: 'voided' };
    } catch (err) {
      const rejected = classify(err);
      if (!rejected) throw unavailable(err);
      // Already canceled (by another call, the dashboard, or expiry): the goal is reached.
      if (rejected.paymentIntent?.status === 'canceled') return { outcome: 'voided' };
      return { outcome: 'failed', code: rejected.code, message: rejected.message };
    }
  }

  async refund(req: RefundRequest): Promise<RefundResult> {
    const params: Stripe.RefundCreateParams = {
      payment_intent: req.providerRef,
      amount: req.amount,
      metadata: { [STRIPE_METADATA.operation]: req.operationId },
      ...(isStripeRefundReason(req.reason) ? { reason: req.reason } : {}),
    };
    let refund: Stripe.Refund;
    try {
      refund = await this.stripe.refunds.create(params, { idempotencyKey: req.idempotencyKey });
    } catch (err) {
      const rejected = classify(err);
      if (!rejected) throw unavailable(err);
      return { outcome: 'failed', code: rejected.code, message: rejected.message };
    }
    switch (refundStatus(refund.status)) {
      case 'succeeded':
        return { outcome: 'refunded', refundRef: refund.id, amount: refund.amount };
      case 'pending':
        return { outcome: 'pending', refundRef: refund.id };
      default:
        return { outcome: 'failed', code: refund.failure_reason ?? refund.status ?? 'refund_failed', message: `Refund ${refund.id} ${refund.status ?? 'failed'}` };
    }
  }

  async parseWebhook(rawBody: Buffer, headers: Headers, now: number): Promise<WebhookVerdict> {
    const header = headerValue(headers, 'stripe-signature');
    if (header === undefined || header.trim() === '') return { ok: false, reason: 'missing_signature', message: 'no Stripe-Signature header' };
    const parsed = parseSignatureHeader(header);
    if (!parsed) return { ok: false, reason: 'malformed', message: 'Stripe-Signature must be t=<unix seconds>,v1=<hex>[,v1=<hex>…]' };
    if (rawBody.length === 0) return { ok: false, reason: 'malformed', message: 'empty body' };

    let verified: { event: unknown } | null = null;
    let signedButStale = false;
    let malformed: string | null = null;
    for (const secret of this.webhookSecrets) {
      try {
        verified = { event: this.stripe.webhooks.constructEvent(rawBody, header, secret, this.toleranceSec, undefined, now) };
        break;
      } catch (err) {
        if (!(err instanceof Stripe.errors.StripeSignatureVerificationError)) {
          // The SDK checks the signature first: it matched, and the body is not JSON (or not a v1 event).
          malformed = err instanceof Error ? err.message : 'unparseable body';
          break;
        }
        // Bad signature, or a good one that is too old? Check again without the time window.
        if (this.toleranceSec > 0 && this.signatureMatches(rawBody, header, secret)) signedButStale = true;
      }
    }
    if (malformed !== null) return { ok: false, reason: 'malformed', message: `signed body is not a Stripe event: ${malformed}` };
    if (!verified) {
      if (signedButStale) return this.stale(parsed.t, now);
      return { ok: false, reason: 'bad_signature', message: 'no signature matches the raw body with a configured secret' };
    }
    // The SDK rejects old timestamps only; one too far in the future is refused as well.
    if (this.toleranceSec > 0 && parsed.t - Math.floor(now / 1000) > this.toleranceSec) return this.stale(parsed.t, now);

    const event = verified.event;
    if (!isEventShaped(event)) return { ok: false, reason: 'malformed', message: 'signed body is not a Stripe event (id, type, created, data.object)' };
    try {
      return mapEvent(event);
    } catch (err) {
      return { ok: false, reason: 'malformed', message: `unexpected ${event.type} payload: ${err instanceof Error ? err.message : String(err)}` };
    }
  }

  private signatureMatches(rawBody: Buffer, header: string, secret: string): boolean {
    try {
      this.stripe.webhooks.constructEvent(rawBody, header, secret, 0);
      return true;
    } catch (err) {
      // A parse error after verification still means the signature matched.
      return !(err instanceof Stripe.errors.StripeSignatureVerificationError);
    }
  }

  private stale(t: number, now: number): WebhookVerdict {
    const skew = Math.round(Math.abs(now / 1000 - t));
    return { ok: false, reason: 'stale_timestamp', message: `signature timestamp is ${skew} s away from now (tolerance ${this.toleranceSec} s)` };
  }
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** The minimum the mapping relies on; the rest of the payload is Stripe's (signed) word. */
function isEventShaped(x: unknown): x is Stripe.Event {
  return isObject(x) && typeof x.id === 'string' && typeof x.type === 'string' && typeof x.created === 'number' && isObject(x.data) && isObject(x.data.object);
}

const meta = (m: Stripe.Metadata | null | undefined, key: string): string | undefined => {
  const v = m?.[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
};

/** A Stripe event in the OMS's terms. Exported for tests; `parseWebhook` is the entry point. */
export function mapEvent(event: Stripe.Event): WebhookVerdict {
  const base = { eventId: event.id, occurredAt: event.created * 1000 };
  const ignored = (why: string): WebhookVerdict => ({ ok: true, events: [], ignored: why });
  const one = (e: PaymentEvent): WebhookVerdict => ({ ok: true, events: [e] });
  const fromIntent = (pi: Stripe.PaymentIntent) => {
    const paymentId = meta(pi.metadata, STRIPE_METADATA.payment);
    return { ...base, providerRef: pi.id, ...(paymentId ? { paymentId } : {}) };
  };
  /** A refund, under its PaymentIntent (the charge's, for charge.refunded), with the charge's totals when known. */
  const refundEvent = (r: Stripe.Refund, providerRef: string, paymentId: string | undefined, totals: { refundedTotal?: number; capturedTotal?: number } = {}): PaymentEvent => {
    const operationId = meta(r.metadata, STRIPE_METADATA.operation);
    return {
      ...base,
      providerRef,
      ...(paymentId ? { paymentId } : {}),
      type: 'refund',
      refundRef: r.id,
      amount: r.amount,
      status: refundStatus(r.status),
      ...totals,
      ...(operationId ? { operationId } : {}),
    };
  };
  const fromRefund = (r: Stripe.Refund): PaymentEvent | null => {
    const providerRef = idOf(r.payment_intent);
    return providerRef ? refundEvent(r, providerRef, meta(r.metadata, STRIPE_METADATA.payment)) : null;
  };

  switch (event.type) {
    case 'payment_intent.amount_capturable_updated': {
      const pi = event.data.object;
      const card = cardOf(pi);
      return one({ ...fromIntent(pi), type: 'authorized', authorized: pi.amount_capturable + pi.amount_received, ...(card ? { card } : {}) });
    }
    case 'payment_intent.requires_action': {
      const pi = event.data.object;
      const url = pi.next_action?.redirect_to_url?.url;
      if (!url) return ignored(`${event.type} without a redirect URL (${pi.next_action?.type ?? 'no next_action'})`);
      return one({ ...fromIntent(pi), type: 'action_required', actionUrl: url });
    }
    case 'payment_intent.payment_failed': {
      const pi = event.data.object;
      const e = pi.last_payment_error;
      return one({ ...fromIntent(pi), type: 'failed', code: e?.decline_code ?? e?.code ?? 'payment_failed', message: e?.message ?? 'The payment failed' });
    }
    case 'payment_intent.succeeded': {
      const pi = event.data.object;
      // The capture call writes oms_operation on the PaymentIntent: this snapshot names the last one.
      const operationId = meta(pi.metadata, STRIPE_METADATA.operation);
      return one({ ...fromIntent(pi), type: 'captured', capturedTotal: pi.amount_received, ...(operationId ? { operationId } : {}) });
    }
    case 'charge.captured': {
      const ch = event.data.object;
      const providerRef = idOf(ch.payment_intent);
      if (!providerRef) return ignored(`${event.type} of a charge without a PaymentIntent`);
      const paymentId = meta(ch.metadata, STRIPE_METADATA.payment);
      return one({ ...base, providerRef, ...(paymentId ? { paymentId } : {}), type: 'captured', capturedTotal: ch.amount_captured });
    }
    case 'payment_intent.canceled': {
      const pi = event.data.object;
      return one({ ...fromIntent(pi), type: 'voided' });
    }
    case 'refund.created':
    case 'refund.updated':
    case 'refund.failed':
    case 'charge.refund.updated': {
      const e = fromRefund(event.data.object);
      return e ? one(e) : ignored(`${event.type} of a refund without a PaymentIntent`);
    }
    case 'charge.refunded': {
      // The refunds themselves come as refund.* events. When the charge lists them, each is
      // reported with the charge's totals (refundedTotal, capturedTotal) for the OMS to converge to.
      const ch = event.data.object;
      const providerRef = idOf(ch.payment_intent);
      const listed = ch.refunds?.data ?? [];
      if (!providerRef || listed.length === 0) return ignored(`${event.type} (no refunds listed; the refund.* events carry them)`);
      const paymentId = meta(ch.metadata, STRIPE_METADATA.payment);
      return { ok: true, events: listed.map((r) => refundEvent(r, providerRef, paymentId, { refundedTotal: ch.amount_refunded, capturedTotal: ch.amount_captured })) };
    }
    default:
      return ignored(event.type);
  }
}
