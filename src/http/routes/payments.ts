// Payments over HTTP: authorize a tender online, report a card-present payment from the store
// terminal, refunds, the operators' webhooks (raw body), the sandbox's 3-D Secure page, gift
// cards, and the customer's tracking token. Thin: the use cases live in src/payments.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Principal } from '../../auth/keys.ts';
import type { Ctx } from '../../context.ts';
import type { TenderMethod } from '../../orders/model.ts';
import { reissueTrackingToken, requireOrder } from '../../orders/changes.ts';
import { orderByTrackingToken } from '../../orders/queries.ts';
import { PAYMENT_STATUSES } from '../../payments/model.ts';
import { PROVIDER_NAMES, type ProviderName } from '../../payments/provider.ts';
import { issueGiftCard } from '../../payments/providers/gift-card.ts';
import { authorizePayment, confirmTerminalRefund, createRefund, type OperationRow, type PaymentRow, recordTerminalPayment } from '../../payments/service.ts';
import { ingestWebhook } from '../../payments/webhooks.ts';
import { iso } from '../../shared/clock.ts';
import { AppError, notFound } from '../../shared/errors.ts';
import type { App } from '../app.ts';
import { requireRole } from '../app.ts';
import { Enum, Nullable, security, withErrors } from '../schemas.ts';
import { actorOf, changeableOrder, OrderOut, orderOut, replayable, visibleOrder } from './orders.ts';

const Money = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'Minor units (cents).' });
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });
const IdempotencyHeader = Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'Printable ASCII; replays the first successful response (24 h).' })) });

const OperationOut = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  amount: Type.Integer(),
  status: Type.String(),
  provider_ref: Nullable(Type.String()),
  refund_id: Nullable(Type.String()),
  source: Nullable(Type.String({ description: 'api (the operator answered), webhook, terminal, external (done at the operator), scheduler.' })),
  failure_code: Nullable(Type.String()),
  created_at: Type.String(),
  completed_at: Nullable(Type.String()),
});

const PaymentOut = Type.Object({
  id: Type.String(),
  order_id: Type.String(),
  provider: Enum(PROVIDER_NAMES),
  method: Type.String(),
  currency: Type.String(),
  amount: Type.Integer({ description: 'What was asked to be authorized.' }),
  status: Enum(PAYMENT_STATUSES),
  authorized: Type.Integer(),
  captured: Type.Integer(),
  refunded: Type.Integer(),
  voided: Type.Integer({ description: 'Authorization given back unused.' }),
  capture_pending: Type.Integer(),
  refund_pending: Type.Integer(),
  card: Nullable(Type.Object({ brand: Type.String(), last4: Type.String() })),
  terminal_id: Nullable(Type.String()),
  action_url: Nullable(Type.String({ description: 'Where the customer completes a 3-D Secure step (status requires_action).' })),
  failure: Nullable(Type.Object({ code: Nullable(Type.String()), message: Nullable(Type.String()) })),
  created_at: Type.String(),
  operations: Type.Optional(Type.Array(OperationOut)),
});

const opOut = (o: OperationRow) => ({
  id: o.id,
  kind: o.kind,
  amount: o.amount,
  status: o.status,
  provider_ref: o.provider_ref,
  refund_id: o.refund_id,
  source: o.source,
  failure_code: o.failure_code,
  created_at: iso(o.created_at) as string,
  completed_at: iso(o.completed_at),
});

function paymentOut(p: PaymentRow, ops?: OperationRow[]) {
  return {
    id: p.id,
    order_id: p.order_id,
    provider: p.provider as ProviderName,
    method: p.method,
    currency: p.currency,
    amount: p.amount,
    status: p.status as (typeof PAYMENT_STATUSES)[number],
    authorized: p.authorized,
    captured: p.captured,
    refunded: p.refunded,
    voided: p.voided,
    capture_pending: p.capture_pending,
    refund_pending: p.refund_pending,
    card: p.card_brand && p.card_last4 ? { brand: p.card_brand, last4: p.card_last4 } : null,
    terminal_id: p.terminal_id,
    action_url: p.action_url,
    failure: p.failure_code ? { code: p.failure_code, message: p.failure_message } : null,
    created_at: iso(p.created_at) as string,
    ...(ops ? { operations: ops.filter((o) => o.payment_id === p.id).map(opOut) } : {}),
  };
}

const PaymentResult = Type.Object({
  payment: PaymentOut,
  order: OrderOut,
  tracking_token: Type.Optional(Type.String({ description: 'Shown once, to the caller whose payment validated the order: give it to the customer (GET /tracking/{token}).' })),
});

const RefundOut = Type.Object({
  id: Type.String(),
  order_id: Type.String(),
  kind: Type.String({ description: 'refund (asked through this API) or cancellation (the OMS refunds lines cancelled after capture).' }),
  amount: Type.Integer(),
  status: Type.String({ description: 'pending, succeeded, partially_failed or failed.' }),
  reason: Nullable(Type.String()),
  lines: Nullable(Type.Array(Type.Object({ line_id: Type.String(), quantity: Type.Integer(), amount: Type.Integer() }))),
  shipping: Type.Integer(),
  parts: Type.Array(Type.Object({ payment_id: Type.String(), method: Type.String(), amount: Type.Integer(), status: Type.String(), operation_id: Type.String() })),
  created_at: Type.String(),
});

async function refundsOf(ctx: Ctx, orderId: string, only?: string) {
  let q = ctx.store.db.selectFrom('refunds').selectAll().where('order_id', '=', orderId);
  if (only) q = q.where('id', '=', only);
  const refunds = await q.orderBy('created_at').orderBy('id').execute();
  if (refunds.length === 0) return [];
  const parts = await ctx.store.db
    .selectFrom('payment_operations as po')
    .innerJoin('payments as p', 'p.id', 'po.payment_id')
    .select(['po.id', 'po.refund_id', 'po.payment_id', 'po.amount', 'po.status', 'p.method'])
    .where('po.refund_id', 'in', refunds.map((r) => r.id))
    .orderBy('po.id')
    .execute();
  return refunds.map((r) => ({
    id: r.id,
    order_id: r.order_id,
    kind: r.kind,
    amount: r.amount,
    status: r.status,
    reason: r.reason,
    lines: r.lines ? (JSON.parse(r.lines) as Array<{ line_id: string; quantity: number; amount: number }>) : null,
    shipping: r.shipping,
    parts: parts.filter((x) => x.refund_id === r.id).map((x) => ({ payment_id: x.payment_id, method: x.method, amount: x.amount, status: x.status, operation_id: x.id })),
    created_at: iso(r.created_at) as string,
  }));
}

/** A store reports terminal payments for orders it captured, or that are collected there. */
async function terminalStoreOrder(ctx: Ctx, p: Principal, orderId: string): Promise<void> {
  if (p.role === 'admin') return;
  if (p.role !== 'store') throw new AppError('forbidden', 'Only a store key (or an admin) reports card-present payments');
  const o = await ctx.store.db.selectFrom('orders').select('store_location_id').where('id', '=', orderId).executeTakeFirst();
  if (!o) throw notFound(`Order '${orderId}'`);
  const pickups = await ctx.store.db.selectFrom('delivery_groups').select('pickup_location_id').where('order_id', '=', orderId).execute();
  const stores = [o.store_location_id, ...pickups.map((g) => g.pickup_location_id)].filter((x): x is number => x !== null);
  if (!stores.some((s) => p.locationIds.includes(s))) throw notFound(`Order '${orderId}'`);
}

const AuthorizeIn = Type.Object(
  {
    method: Enum(['card', 'wallet', 'gift_card'] as const),
    provider: Type.Optional(Enum(['sandbox', 'stripe', 'gift_card'] as const, { description: 'Default: gift_card for gift cards, the configured card operator (OMS_CARD_PROVIDER) otherwise.' })),
    amount: Money,
    token: Type.String({
      minLength: 1,
      maxLength: 255,
      description: "The operator's payment token (from its client-side SDK) or the gift card code. Never a card number: one is refused (card_data_rejected). Sandbox tokens: tok_sandbox_visa, tok_sandbox_mastercard, tok_sandbox_decline, tok_sandbox_insufficient_funds, tok_sandbox_3ds, tok_sandbox_transient.",
    }),
    return_url: Type.Optional(Type.String({ format: 'uri', maxLength: 2000 })),
  },
  { additionalProperties: false },
);

const TerminalIn = Type.Object(
  {
    terminal_id: Type.String({ minLength: 1, maxLength: 64 }),
    transaction_reference: Type.String({ minLength: 1, maxLength: 128, description: "The terminal's (or its acquirer's) reference of the approved transaction; reporting it again returns the same payment." }),
    amount: Money,
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
    card_brand: Type.String({ minLength: 1, maxLength: 32 }),
    card_last4: Type.String({ pattern: '^[0-9]{4}$' }),
  },
  { additionalProperties: false },
);

const RefundIn = Type.Object(
  {
    amount: Type.Optional(Money),
    lines: Type.Optional(Type.Array(Type.Object({ line_id: Type.String({ minLength: 1, maxLength: 64 }), quantity: Type.Integer({ minimum: 1, maximum: 1_000_000 }) }, { additionalProperties: false }), { minItems: 1, maxItems: 200 })),
    shipping: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Shipping to refund with the lines, minor units.' })),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

const TrackingOut = Type.Object({
  number: Nullable(Type.String()),
  status: Type.String(),
  placed_at: Type.String(),
  lines: Type.Array(Type.Object({ sku: Type.String(), quantity: Type.Integer(), shipped: Type.Integer(), cancelled: Type.Integer() })),
  shipments: Type.Array(Type.Object({ status: Type.String(), mode: Type.String(), carrier_service: Nullable(Type.String()), tracking: Nullable(Type.String()), estimated_delivery: Nullable(Type.String()) })),
});

export function registerPaymentRoutes(app: App, ctx: Ctx): void {
  const tags = ['payments'];

  app.post(
    '/orders/:id/payments',
    {
      schema: {
        tags,
        summary: 'Authorize a tender online (card, wallet, gift card) for an unpaid order',
        description:
          'The order is validated (public number, fulfilment released) as soon as its tenders cover its total; the response then carries the tracking token, once. A 3-D Secure step answers `requires_action` with `action_url`; the outcome arrives by the operator\'s webhook. Declined: 402 payment_declined, the order stays pending_payment. `Idempotency-Key` replays the first successful response.',
        security,
        params: IdParams,
        headers: IdempotencyHeader,
        body: AuthorizeIn,
        response: withErrors({ 201: PaymentResult }),
      },
    },
    async (req, reply) => {
      const p = requireRole(req, 'channel', 'store');
      await changeableOrder(ctx, p, req.params.id);
      return replayable(ctx, req, reply, async () => {
        const b = req.body;
        const r = await authorizePayment(ctx, req.params.id, { method: b.method as TenderMethod, provider: b.provider, amount: b.amount, token: b.token, returnUrl: b.return_url }, actorOf(p));
        return { status: 201, payload: { payment: paymentOut(r.payment), order: orderOut(ctx, await requireOrder(ctx, req.params.id)), ...(r.validated?.trackingToken ? { tracking_token: r.validated.trackingToken } : {}) } };
      });
    },
  );

  app.post(
    '/orders/:id/payments/terminal',
    {
      schema: {
        tags,
        summary: 'Store: report a card-present payment approved at the store terminal (authorized and captured)',
        description: 'For orders the store captured (Order in Store) or that are collected there. Reporting the same terminal transaction again returns the payment already recorded (200).',
        security,
        params: IdParams,
        body: TerminalIn,
        response: withErrors({ 201: PaymentResult, 200: PaymentResult }),
      },
    },
    async (req, reply) => {
      const p = requireRole(req, 'store');
      await terminalStoreOrder(ctx, p, req.params.id);
      const b = req.body;
      const r = await recordTerminalPayment(
        ctx,
        req.params.id,
        { terminalId: b.terminal_id, transactionReference: b.transaction_reference, amount: b.amount, currency: b.currency, cardBrand: b.card_brand, cardLast4: b.card_last4 },
        actorOf(p),
      );
      reply.status(r.replayed ? 200 : 201);
      return { payment: paymentOut(r.payment), order: orderOut(ctx, await requireOrder(ctx, req.params.id)), ...(r.validated?.trackingToken ? { tracking_token: r.validated.trackingToken } : {}) };
    },
  );

  app.get(
    '/orders/:id/payments',
    {
      schema: { tags, summary: "The order's payments (tenders) with their money counters and operations", security, params: IdParams, response: withErrors({ 200: Type.Object({ order_id: Type.String(), payments: Type.Array(PaymentOut) }) }) },
    },
    async (req) => {
      const p = requireRole(req, 'channel', 'store', 'integration');
      if (p.role === 'integration') throw new AppError('forbidden', 'An integration key does not see payments');
      const a = await visibleOrder(ctx, p, req.params.id);
      const [pays, ops] = await Promise.all([
        ctx.store.db.selectFrom('payments').selectAll().where('order_id', '=', a.order.id).orderBy('created_at').orderBy('id').execute(),
        ctx.store.db.selectFrom('payment_operations').selectAll().where('order_id', '=', a.order.id).orderBy('created_at').orderBy('id').execute(),
      ]);
      return { order_id: a.order.id, payments: pays.map((x) => paymentOut(x, ops)) };
    },
  );

  app.post(
    '/orders/:id/refunds',
    {
      schema: {
        tags,
        summary: 'Refund an amount, or shipped lines, across the original tenders',
        description:
          'Split by the refund rule (OMS_REFUND_RULE; default: cards first, gift card last), each part through its tender\'s operator. Never more than was captured: 409 refund_exceeds_captured. A card-present part waits for the store terminal (pending). `Idempotency-Key` replays the first response.',
        security,
        params: IdParams,
        headers: IdempotencyHeader,
        body: RefundIn,
        response: withErrors({ 201: RefundOut }),
      },
    },
    async (req, reply) => {
      const p = requireRole(req, 'channel', 'store');
      const b = req.body;
      if ((b.amount === undefined) === (b.lines === undefined)) throw new AppError('validation_failed', 'Give either amount or lines');
      if (b.shipping !== undefined && b.lines === undefined) throw new AppError('validation_failed', 'shipping goes with lines; with amount, include it in the amount');
      await changeableOrder(ctx, p, req.params.id);
      return replayable(ctx, req, reply, async () => {
        const id = await createRefund(ctx, req.params.id, { amount: b.amount, lines: b.lines?.map((l) => ({ lineId: l.line_id, quantity: l.quantity })), shipping: b.shipping, reason: b.reason ?? null }, actorOf(p));
        const [r] = await refundsOf(ctx, req.params.id, id);
        return { status: 201, payload: r };
      });
    },
  );

  app.get(
    '/orders/:id/refunds',
    { schema: { tags, summary: "The order's refunds and how each was split", security, params: IdParams, response: withErrors({ 200: Type.Object({ order_id: Type.String(), refunds: Type.Array(RefundOut) }) }) } },
    async (req) => {
      const p = requireRole(req, 'channel', 'store');
      const a = await visibleOrder(ctx, p, req.params.id);
      return { order_id: a.order.id, refunds: await refundsOf(ctx, a.order.id) };
    },
  );

  app.post(
    '/payments/:id/operations/:operation/confirm',
    {
      schema: {
        tags,
        summary: 'Store: the terminal did the card-present refund it was asked for',
        security,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }), operation: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }),
        body: Type.Object({ terminal_reference: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
        response: withErrors({ 200: OperationOut }),
      },
    },
    async (req) => {
      const p = requireRole(req, 'store');
      const pay = await ctx.store.db.selectFrom('payments').select('order_id').where('id', '=', req.params.id).executeTakeFirst();
      if (!pay) throw notFound(`Payment '${req.params.id}'`);
      await terminalStoreOrder(ctx, p, pay.order_id);
      return opOut(await confirmTerminalRefund(ctx, req.params.id, req.params.operation, req.body.terminal_reference));
    },
  );

  app.post(
    '/orders/:id/tracking-token',
    {
      schema: {
        tags,
        summary: "Issue a new customer tracking token for a validated order (the previous one stops working)",
        security,
        params: IdParams,
        response: withErrors({ 201: Type.Object({ order_id: Type.String(), number: Nullable(Type.String()), tracking_token: Type.String(), expires_at: Type.String() }) }),
      },
    },
    async (req, reply) => {
      const p = requireRole(req, 'channel', 'store');
      await changeableOrder(ctx, p, req.params.id);
      const t = await reissueTrackingToken(ctx, req.params.id);
      reply.status(201);
      return { order_id: t.orderId, number: t.number, tracking_token: t.token, expires_at: iso(t.expiresAt) as string };
    },
  );

  app.get(
    '/tracking/:token',
    {
      config: { public: true },
      schema: {
        tags,
        summary: 'Public: the customer follows their order with the tracking token (no API key)',
        description: 'Shows the number, status, lines and shipments, nothing personal. An unknown or expired token is 404.',
        params: Type.Object({ token: Type.String({ minLength: 10, maxLength: 100 }) }, { additionalProperties: false }),
        response: withErrors({ 200: TrackingOut }),
      },
    },
    async (req) => {
      const o = await orderByTrackingToken(ctx, req.params.token);
      if (!o) throw notFound('Order for this tracking token');
      const a = await requireOrder(ctx, o.id);
      return {
        number: o.number,
        status: o.status,
        placed_at: iso(o.createdAt) as string,
        lines: a.lines.map((l) => ({ sku: ctx.projection.skuById(l.sku_id)?.code ?? String(l.sku_id), quantity: l.quantity, shipped: l.shipped, cancelled: l.cancelled })),
        shipments: a.fulfillments
          .filter((f) => f.status !== 'rejected' && f.status !== 'cancelled')
          .map((f) => ({ status: f.status, mode: f.mode, carrier_service: f.carrier_service, tracking: f.tracking, estimated_delivery: f.estimated_delivery })),
      };
    },
  );

  app.post(
    '/gift-cards',
    {
      schema: {
        tags,
        summary: 'Admin: issue a gift card (store credit); its code is shown once',
        security,
        body: Type.Object({ currency: Type.String({ pattern: '^[A-Z]{3}$' }), amount: Money, expires_at: Type.Optional(Type.String({ format: 'date-time' })) }, { additionalProperties: false }),
        response: withErrors({ 201: Type.Object({ id: Type.String(), code: Type.String(), last4: Type.String(), currency: Type.String(), balance: Type.Integer() }) }),
      },
    },
    async (req, reply) => {
      requireRole(req);
      const b = req.body;
      const g = await issueGiftCard(ctx.store, ctx.clock, { currency: b.currency, amount: b.amount, expiresAt: b.expires_at ? Date.parse(b.expires_at) : null });
      reply.status(201);
      return { id: g.id, code: g.code, last4: g.last4, currency: b.currency, balance: b.amount };
    },
  );

  // ---- webhooks in: the raw body, in a scope of its own (no JSON parsing before the signature check)
  app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_req, body, done) => done(null, body));
    scope.post(
      '/webhooks/payments/:provider',
      {
        config: { public: true },
        schema: {
          tags,
          summary: "Payment operators' webhooks (sandbox, stripe): signature checked on the raw body",
          description:
            'No API key: the signature is the authentication (HMAC over the raw body with a timestamp, 300 s tolerance, several signatures accepted during a secret rotation). Each event id is applied once (kept 35 days); events may come twice, late or out of order. A bad signature is 400 webhook_signature_invalid.',
          params: Type.Object({ provider: Enum(['sandbox', 'stripe'] as const) }, { additionalProperties: false }),
          response: withErrors({ 200: Type.Object({ received: Type.Integer(), applied: Type.Integer(), duplicates: Type.Integer(), unknown: Type.Integer(), ignored: Type.Optional(Type.String()) }) }),
        },
      },
      async (req) => {
        const provider = req.params.provider as ProviderName;
        if (!ctx.payments.has(provider)) throw notFound(`Payment provider '${provider}'`);
        const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        return ingestWebhook(ctx, provider, raw, req.headers);
      },
    );
  });

  // ---- the sandbox operator's customer pages (3-D Secure), only when the sandbox is on
  if (ctx.payments.sandbox) {
    const sandbox = ctx.payments.sandbox;
    const RefParams = Type.Object({ ref: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_]+$' }) }, { additionalProperties: false });
    app.get(
      '/sandbox/actions/:ref',
      { config: { public: true }, schema: { tags: ['sandbox'], summary: "Sandbox: the customer's 3-D Secure page (approve or decline)", params: RefParams } },
      async (req, reply) => {
        const ref = req.params.ref;
        reply.type('text/html; charset=utf-8');
        return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sandbox 3-D Secure</title></head><body style="font-family:sans-serif;max-width:28rem;margin:3rem auto">
<h1>Sandbox bank</h1><p>Confirm the payment <code>${ref}</code>. This page simulates the card issuer's 3-D Secure step; no money moves.</p>
<form method="post" action="/sandbox/actions/${ref}?outcome=approve"><button type="submit" id="approve">Approve</button></form>
<form method="post" action="/sandbox/actions/${ref}?outcome=decline"><button type="submit" id="decline">Decline</button></form></body></html>`;
      },
    );
    app.register(async (plain) => {
      const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 4096 }, (_req, _body, done) => done(null, null));
      scope.post(
        '/sandbox/actions/:ref',
        {
          config: { public: true },
          schema: {
            tags: ['sandbox'],
            summary: 'Sandbox: complete the 3-D Secure step; the sandbox then sends its signed webhook',
            params: RefParams,
            querystring: Type.Object({ outcome: Enum(['approve', 'decline'] as const) }, { additionalProperties: false }),
            response: withErrors({ 200: Type.Object({ ok: Type.Boolean(), status: Type.String() }) }),
          },
        },
        async (req) => sandbox.completeAction(req.params.ref, req.query.outcome),
      );
    });
  }
}
