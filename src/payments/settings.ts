// Payment policies and operator credentials, from configuration (README: Configuration).
// Secrets come from the environment only: they are never stored in the database or logged.
import { TENDER_METHODS } from '../orders/model.ts';
import { DEFAULT_REFUND_RULE, parseRefundRule, type RefundRule } from './allocation.ts';
import type { CapturePolicy } from './model.ts';

export interface StripeSettings {
  secretKey: string;
  webhookSecrets: string[];
  host?: string;
  port?: number;
  protocol?: 'http' | 'https';
}

export interface PaymentSettings {
  /** Capture at validation, or per fulfilment order when it ships (for the shipped amount). */
  capturePolicy: CapturePolicy;
  /** How a refund is split across the order's tenders. */
  refundRule: RefundRule;
  /** Which operator takes online card payments when the request names none. */
  cardProvider: 'sandbox' | 'stripe';
  /** How long a customer's tracking token works. */
  trackingTokenTtlMs: number;
  /** Provider event ids are remembered this long (at least 30 days) to drop redeliveries. */
  webhookRetentionMs: number;
  /** A capture, void or refund the operator could not take (unavailable) is retried after this. */
  retryDelayMs: number;
  /** An authorization left pending this long (its process died mid-call) is marked failed. */
  authorizeTimeoutMs: number;
  sandbox: { enabled: boolean; secrets: string[]; webhookDelayMs: number; toleranceSec: number };
  stripe: StripeSettings | null;
}

const DAY = 24 * 60 * 60 * 1000;

/** The sandbox's demo signing secret: it signs simulated webhooks only, never real money. */
export const SANDBOX_DEMO_SECRET = 'whsec_sandbox_demo_only';

export const DEFAULT_PAYMENT_SETTINGS: PaymentSettings = {
  capturePolicy: 'on_shipment',
  refundRule: DEFAULT_REFUND_RULE,
  cardProvider: 'sandbox',
  trackingTokenTtlMs: 180 * DAY,
  webhookRetentionMs: 35 * DAY,
  retryDelayMs: 30_000,
  authorizeTimeoutMs: 60 * 60 * 1000,
  sandbox: { enabled: true, secrets: [SANDBOX_DEMO_SECRET], webhookDelayMs: 200, toleranceSec: 300 },
  stripe: null,
};

const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);

export function loadPaymentSettings(env: NodeJS.ProcessEnv, int: (name: string, def: number) => number): PaymentSettings {
  const policy = env.OMS_CAPTURE_POLICY || DEFAULT_PAYMENT_SETTINGS.capturePolicy;
  if (policy !== 'on_validation' && policy !== 'on_shipment') throw new Error(`OMS_CAPTURE_POLICY must be on_validation or on_shipment (got '${policy}')`);
  const stripe: StripeSettings | null = env.OMS_STRIPE_SECRET_KEY
    ? {
        secretKey: env.OMS_STRIPE_SECRET_KEY,
        webhookSecrets: list(env.OMS_STRIPE_WEBHOOK_SECRETS),
        host: env.OMS_STRIPE_API_HOST || undefined,
        port: env.OMS_STRIPE_API_PORT ? Number(env.OMS_STRIPE_API_PORT) : undefined,
        protocol: env.OMS_STRIPE_API_PROTOCOL === 'http' ? 'http' : env.OMS_STRIPE_API_PROTOCOL === 'https' ? 'https' : undefined,
      }
    : null;
  const cardProvider = env.OMS_CARD_PROVIDER || (stripe ? 'stripe' : 'sandbox');
  if (cardProvider !== 'sandbox' && cardProvider !== 'stripe') throw new Error(`OMS_CARD_PROVIDER must be sandbox or stripe (got '${cardProvider}')`);
  if (cardProvider === 'stripe' && !stripe) throw new Error('OMS_CARD_PROVIDER=stripe needs OMS_STRIPE_SECRET_KEY');
  const retentionDays = int('OMS_WEBHOOK_RETENTION_DAYS', 35);
  if (retentionDays < 30) throw new Error('OMS_WEBHOOK_RETENTION_DAYS must be at least 30');
  const sandboxSecrets = list(env.OMS_SANDBOX_WEBHOOK_SECRETS);
  return {
    capturePolicy: policy,
    refundRule: parseRefundRule(env.OMS_REFUND_RULE, TENDER_METHODS),
    cardProvider,
    trackingTokenTtlMs: int('OMS_TRACKING_TOKEN_TTL_DAYS', 180) * DAY,
    webhookRetentionMs: retentionDays * DAY,
    retryDelayMs: int('OMS_PAYMENT_RETRY_MS', DEFAULT_PAYMENT_SETTINGS.retryDelayMs),
    authorizeTimeoutMs: DEFAULT_PAYMENT_SETTINGS.authorizeTimeoutMs,
    sandbox: {
      enabled: env.OMS_SANDBOX_PAYMENTS !== 'off',
      secrets: sandboxSecrets.length ? sandboxSecrets : [SANDBOX_DEMO_SECRET],
      webhookDelayMs: int('OMS_SANDBOX_WEBHOOK_DELAY_MS', 200),
      toleranceSec: 300,
    },
    stripe,
  };
}
