// Payments (DOMAIN §4): authorize a tender, record a card-present payment, keep each tender's
// money counters, validate the order its tenders cover, and square the order's money with
// what it is worth (capture what is due, refund a cancellation, release authorizations).
//
// Every call to an operator is an operation: recorded first, in a transaction, with its
// idempotency key (the intent); then the operator is called with no transaction open; then
// the result is recorded, conditionally on the operation still being pending. A webhook that
// reports the same result first completes it instead, and the late response changes nothing:
// each operation takes effect once. Money counters are recomputed from the operations and the
// operator's own figures, never added to in application code; the database checks
// captured ≤ authorized and refunded ≤ captured.
import type { Selectable } from 'kysely';
import type { Ctx } from '../context.ts';
import type { Trx } from '../db/database.ts';
import type { PaymentOperationTable, PaymentTable } from '../db/schema.ts';
import { appendEvents, type DomainEvent } from '../events/outbox.ts';
import type { ActorRef } from '../orders/capture.ts';
import { validateWithin, type Validated } from '../orders/changes.ts';
import type { TenderMethod } from '../orders/model.ts';
import { lockOrder } from '../orders/status.ts';
import { AppError, notFound } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { allocate, CAPTURE_ORDER } from './allocation.ts';
import { derivePaymentStatus, lineUnitsValue, type OperationKind, orderValue, planMoney, tenderCounters } from './model.ts';
import { type AuthorizeResult, type CaptureResult, type ProviderName, ProviderUnavailable, type RefundResult, type VoidResult } from './provider.ts';

export type PaymentRow = Selectable<PaymentTable>;
export type OperationRow = Selectable<PaymentOperationTable>;

/** Who acts when an operator's webhook or the scheduler changes a payment. */
export const SYSTEM_ACTOR: ActorRef = { keyId: 'system', name: 'payments', role: 'system' };

// ---- locks and counters --------------------------------------------------------------------------

/** Row-locks the payment (PostgreSQL; SQLite holds the write lock) and returns it as committed. */
export async function lockPayment(trx: Trx, id: string): Promise<PaymentRow | undefined> {
  return trx
    .updateTable('payments')
    .set((eb) => ({ version: eb('version', '+', 0) }))
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

type Phase = 'pending' | 'requires_action' | 'failed' | 'authorized';
const phaseOf = (p: PaymentRow): Phase => (p.status === 'pending' || p.status === 'requires_action' || p.status === 'failed' ? p.status : 'authorized');

/** Recomputes the payment's counters from its operations (tenderCounters); appends one event per change. */
export async function settle(ctx: Ctx, trx: Trx, p: PaymentRow, now: number, opts: { phase?: Phase; source?: string; operationId?: string } = {}): Promise<PaymentRow> {
  const sums = await trx
    .selectFrom('payment_operations')
    .select(['kind', 'status'])
    .select((eb) => eb.fn.sum<number>('amount').as('total'))
    .where('payment_id', '=', p.id)
    .groupBy(['kind', 'status'])
    .execute();
  const c = tenderCounters((kind, status) => Number(sums.find((r) => r.kind === kind && r.status === status)?.total ?? 0), { authorized: p.psp_authorized, captured: p.psp_captured, refunded: p.psp_refunded });
  const { authorized, captured, refunded, voided, capturePending, refundPending } = c;
  const phase = opts.phase ?? (authorized > 0 ? 'authorized' : phaseOf(p));
  const status = derivePaymentStatus(phase, c);

  const base = { payment_id: p.id, order_id: p.order_id, provider: p.provider, method: p.method, currency: p.currency, authorized, captured, refunded, status, ...(opts.source ? { source: opts.source } : {}), ...(opts.operationId ? { operation_id: opts.operationId } : {}) };
  const events: Array<{ type: string; payload: object }> = [];
  if (authorized > p.authorized) events.push({ type: 'payment.authorized', payload: { ...base, amount: authorized - p.authorized, card: p.card_brand ? { brand: p.card_brand, last4: p.card_last4 } : null } });
  if (captured > p.captured) events.push({ type: 'payment.captured', payload: { ...base, amount: captured - p.captured } });
  if (voided > p.voided) events.push({ type: 'payment.voided', payload: { ...base, amount: voided - p.voided } });
  if (refunded > p.refunded) events.push({ type: 'payment.refunded', payload: { ...base, amount: refunded - p.refunded } });
  if (status === 'failed' && p.status !== 'failed') events.push({ type: 'payment.failed', payload: { ...base, code: p.failure_code, message: p.failure_message } });

  const same =
    authorized === p.authorized && captured === p.captured && refunded === p.refunded && voided === p.voided && status === p.status && capturePending === p.capture_pending && refundPending === p.refund_pending;
  if (same) return p;
  const row = await trx
    .updateTable('payments')
    .set((eb) => ({ authorized, captured, refunded, voided, status, capture_pending: capturePending, refund_pending: refundPending, version: eb('version', '+', events.length), updated_at: now }))
    .where('id', '=', p.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  if (events.length) {
    const first = row.version - events.length + 1;
    await appendEvents(
      trx,
      ctx.store.dialect,
      now,
      events.map((e, i): DomainEvent => ({ type: e.type, aggregateType: 'payment', aggregateId: p.id, aggregateSeq: first + i, payload: e.payload })),
    );
  }
  return row;
}

/** What a tender still has to give: authorization free to capture, capture free to refund. */
const freeToCapture = (p: PaymentRow) => Math.max(0, p.authorized - p.voided - p.captured - p.capture_pending);
const freeToRefund = (p: PaymentRow) => Math.max(0, p.captured - p.refunded - p.refund_pending);

/** A new operation row: pending (an intent) or already succeeded (what a terminal reported). */
export function operationRow(id: string, paymentId: string, orderId: string, kind: OperationKind, amount: number, now: number, done: { source: string; providerRef: string | null } | null) {
  return {
    id,
    payment_id: paymentId,
    order_id: orderId,
    kind,
    amount,
    status: done ? 'succeeded' : 'pending',
    idempotency_key: done?.source === 'external' ? `ext_${id}` : `oms_${id}`,
    provider_ref: done?.providerRef ?? null,
    refund_id: null,
    fulfillment_id: null,
    failure_code: null,
    failure_message: null,
    next_attempt_at: null,
    source: done?.source ?? null,
    created_at: now,
    completed_at: done ? now : null,
  };
}

/**
 * Records an operation's intent on a locked, settled payment, if it fits beside what is
 * already in flight (the check that keeps twenty parallel refunds within the capture).
 */
async function intend(trx: Trx, p: PaymentRow, kind: Exclude<OperationKind, 'authorize'>, amount: number, now: number, opts: { refundId?: string; final?: boolean; retryAfterMs: number }): Promise<OperationRow | null> {
  if (kind === 'capture' && (amount <= 0 || amount > freeToCapture(p))) return null;
  if (kind === 'refund' && (amount <= 0 || amount > freeToRefund(p))) return null;
  if (kind === 'void' && amount <= 0) return null;
  // The caller runs it right after commit; the scheduler takes it over only after this.
  const row = { ...operationRow(newId('pop'), p.id, p.order_id, kind, amount, now, null), refund_id: opts.refundId ?? null, final: opts.final ? 1 : 0, next_attempt_at: now + opts.retryAfterMs };
  return trx
    .insertInto('payment_operations')
    .values(row)
    .returningAll()
    .executeTakeFirstOrThrow();
}

// ---- squaring an order's money ---------------------------------------------------------------------

/**
 * In the caller's transaction (the order row already locked by the change), records what the
 * order's money needs now (planMoney): captures, a cancellation refund, releases. Returns the
 * operations to run once the transaction has committed.
 */
export async function planOrderMoney(ctx: Ctx, trx: Trx, orderId: string): Promise<string[]> {
  const ids = await trx.selectFrom('payments').select('id').where('order_id', '=', orderId).orderBy('id').execute();
  if (ids.length === 0) return [];
  const now = ctx.clock.now();
  const o = await trx.selectFrom('orders').selectAll().where('id', '=', orderId).executeTakeFirstOrThrow();
  const payments: PaymentRow[] = [];
  for (const { id } of ids) payments.push((await lockPayment(trx, id)) as PaymentRow);
  const [lines, groups, onRequest] = await Promise.all([
    trx.selectFrom('order_lines').select(['group_id', 'quantity', 'cancelled', 'shipped', 'unit_price', 'discount', 'tax']).where('order_id', '=', orderId).execute(),
    trx.selectFrom('delivery_groups').select(['group_id', 'shipping_price']).where('order_id', '=', orderId).execute(),
    refundedOnRequest(trx, orderId),
  ]);
  const value = orderValue({
    subtotal: o.subtotal,
    discountTotal: o.discount_total,
    taxTotal: o.tax_total,
    shippingTotal: o.shipping_total,
    total: o.total,
    lines: lines.map((l) => ({ groupId: l.group_id, quantity: l.quantity, cancelled: l.cancelled, shipped: l.shipped, unitPrice: l.unit_price, discount: l.discount, tax: l.tax })),
    groups: groups.map((g) => ({ groupId: g.group_id, shippingPrice: g.shipping_price })),
  });
  const live = payments.filter((p) => p.authorized > 0);
  const plan = planMoney({
    policy: ctx.payments.settings.capturePolicy,
    validated: o.validated_at !== null,
    active: value.active,
    shipped: value.shipped,
    refundedOnRequest: onRequest,
    held: live.reduce((s, p) => s + p.captured + p.capture_pending - p.refunded - p.refund_pending, 0),
    free: live.reduce((s, p) => s + freeToCapture(p), 0),
  });
  const ops: string[] = [];
  const retryAfterMs = ctx.payments.settings.retryDelayMs;
  const byId = new Map(payments.map((p) => [p.id, p]));
  if (plan.capture > 0) {
    const parts = allocate(
      plan.capture,
      live.map((p) => ({ id: p.id, method: p.method as TenderMethod, available: freeToCapture(p), createdAt: p.created_at })),
      { policy: 'sequence', order: CAPTURE_ORDER },
    );
    for (const part of parts.ok ? parts.parts : []) {
      const p = byId.get(part.id) as PaymentRow;
      // The last capture of a tender lets the operator release what it still holds.
      const op = await intend(trx, p, 'capture', part.amount, now, { final: plan.final || part.amount === freeToCapture(p), retryAfterMs });
      if (op) {
        ops.push(op.id);
        byId.set(p.id, await settle(ctx, trx, p, now));
      }
    }
  }
  if (plan.refund > 0) {
    const current = [...byId.values()].filter((p) => p.authorized > 0);
    const refundable = current.reduce((s, p) => s + freeToRefund(p), 0);
    // What cannot be refunded yet (a capture still in flight) is refunded once it completes.
    const amount = Math.min(plan.refund, refundable);
    if (amount > 0) {
      const refundId = newId('rfd');
      await trx
        .insertInto('refunds')
        .values({ id: refundId, order_id: orderId, kind: 'cancellation', amount, status: 'pending', reason: 'cancelled after capture', lines: null, shipping: 0, created_by: SYSTEM_ACTOR.keyId, created_at: now, updated_at: now })
        .execute();
      ops.push(...(await refundParts(ctx, trx, current, amount, refundId, now, byId)));
    }
  }
  if (plan.release) {
    for (const p of [...byId.values()]) {
      const free = freeToCapture(p);
      if (free <= 0 || p.capture_pending > 0 || p.provider === 'card_terminal') continue;
      const pendingVoid = await trx.selectFrom('payment_operations').select('id').where('payment_id', '=', p.id).where('kind', '=', 'void').where('status', '=', 'pending').executeTakeFirst();
      if (pendingVoid) continue;
      const op = await intend(trx, p, 'void', free, now, { retryAfterMs });
      if (op) {
        ops.push(op.id);
        byId.set(p.id, await settle(ctx, trx, p, now));
      }
    }
  }
  return ops;
}

/** Refunds asked through the refund API, or made at the operator: they lower what the customer owes. */
async function refundedOnRequest(trx: Trx, orderId: string): Promise<number> {
  const row = await trx
    .selectFrom('payment_operations as po')
    .leftJoin('refunds as r', 'r.id', 'po.refund_id')
    .select((eb) => eb.fn.sum<number>('po.amount').as('total'))
    .where('po.order_id', '=', orderId)
    .where('po.kind', '=', 'refund')
    .where('po.status', 'in', ['pending', 'succeeded'])
    .where((eb) => eb.or([eb('r.kind', 'is', null), eb('r.kind', '=', 'refund')]))
    .executeTakeFirst();
  return Number(row?.total ?? 0);
}

/** Splits a refund across the tenders by the retailer's rule and records one intent per part. */
async function refundParts(ctx: Ctx, trx: Trx, payments: PaymentRow[], amount: number, refundId: string, now: number, byId: Map<string, PaymentRow>): Promise<string[]> {
  const allocation = allocate(
    amount,
    payments.map((p) => ({ id: p.id, method: p.method as TenderMethod, available: freeToRefund(p), createdAt: p.created_at })),
    ctx.payments.settings.refundRule,
  );
  if (!allocation.ok) throw new AppError('refund_exceeds_captured', `The refund is ${allocation.shortBy} more than the order's tenders can refund`, { short_by: allocation.shortBy });
  const ops: string[] = [];
  for (const part of allocation.parts) {
    const p = byId.get(part.id) as PaymentRow;
    const op = await intend(trx, p, 'refund', part.amount, now, { refundId, retryAfterMs: ctx.payments.settings.retryDelayMs });
    if (!op) throw new AppError('refund_exceeds_captured', `Tender ${p.id} cannot refund ${part.amount} now`);
    ops.push(op.id);
    byId.set(p.id, await settle(ctx, trx, p, now));
  }
  return ops;
}

// ---- validation --------------------------------------------------------------------------------------

/** Validates the order when its tenders cover its total (authorized online, or captured at the terminal). */
export async function validateIfCovered(ctx: Ctx, trx: Trx, orderId: string, actor: ActorRef): Promise<Validated | null> {
  const o = await trx.selectFrom('orders').select(['total', 'validated_at', 'close_reason']).where('id', '=', orderId).executeTakeFirstOrThrow();
  if (o.validated_at !== null || o.close_reason !== null) return null;
  const rows = await trx.selectFrom('payments').select(['authorized', 'voided', 'refunded']).where('order_id', '=', orderId).execute();
  const covered = rows.reduce((s, p) => s + Math.max(0, p.authorized - p.voided - p.refunded), 0);
  if (covered < o.total) return null;
  return validateWithin(ctx, trx, orderId, actor, 'payment');
}

// ---- running operations ------------------------------------------------------------------------------

type Outcome = AuthorizeResult | CaptureResult | VoidResult | RefundResult;

async function callProvider(ctx: Ctx, op: OperationRow, p: PaymentRow, auth?: { token: string; returnUrl?: string }): Promise<Outcome> {
  const provider = ctx.payments.provider(p.provider as ProviderName);
  const key = op.idempotency_key;
  switch (op.kind) {
    case 'authorize':
      if (!auth) throw new ProviderUnavailable(provider.name, 'authorization cannot be resumed without its token');
      return provider.authorize({ idempotencyKey: key, paymentId: p.id, orderId: p.order_id, amount: op.amount, currency: p.currency, token: auth.token, returnUrl: auth.returnUrl });
    case 'capture':
      return provider.capture({ idempotencyKey: key, operationId: op.id, providerRef: p.provider_ref as string, amount: op.amount, currency: p.currency, final: op.final === 1 });
    case 'void':
      return provider.void({ idempotencyKey: key, operationId: op.id, providerRef: p.provider_ref as string });
    default:
      return provider.refund({ idempotencyKey: key, operationId: op.id, providerRef: p.provider_ref as string, amount: op.amount, currency: p.currency });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Calls the operator for a pending operation (a transient failure is retried twice with the
 * same idempotency key; then the operation waits for the scheduler) and records the result.
 * Returns the outcome, or null when the operator could not be reached.
 */
export async function executeOperation(ctx: Ctx, opId: string, auth?: { token: string; returnUrl?: string }): Promise<{ outcome: Outcome; validated: Validated | null } | null> {
  const db = ctx.store.db;
  const op = await db.selectFrom('payment_operations').selectAll().where('id', '=', opId).where('status', '=', 'pending').executeTakeFirst();
  if (!op) return null;
  const p = await db.selectFrom('payments').selectAll().where('id', '=', op.payment_id).executeTakeFirstOrThrow();
  const backoff = ctx.payments.settings.retryDelayMs * 2 ** Math.min(op.attempts, 6);
  await db.updateTable('payment_operations').set((eb) => ({ attempts: eb('attempts', '+', 1), next_attempt_at: op.kind === 'authorize' ? null : ctx.clock.now() + backoff })).where('id', '=', op.id).execute();
  let outcome: Outcome | null = null;
  for (let attempt = 0; attempt < 3 && !outcome; attempt++) {
    try {
      outcome = await callProvider(ctx, op, p, auth);
    } catch (e) {
      // Unreachable, or an answer the adapter could not read: nothing is known to have happened.
      if (!(e instanceof ProviderUnavailable)) ctx.payments.log?.(`payment operation ${op.id} (${op.kind}) failed: ${(e as Error).message}`);
      if (attempt < 2) await sleep(25 * 4 ** attempt);
    }
  }
  if (!outcome) return null;
  return { outcome, validated: await completeOperation(ctx, op.id, outcome, 'api') };
}

/** Runs operations one after another (they may touch one order's tenders), then whatever they make due. */
export async function runOperations(ctx: Ctx, ids: string[]): Promise<void> {
  for (const id of ids) await executeOperation(ctx, id);
}

/**
 * Records an operator's answer for a pending operation. If the operation is no longer pending
 * (its webhook came first), nothing changes: the effect happened once already.
 */
export async function completeOperation(ctx: Ctx, opId: string, outcome: Outcome, source: 'api' | 'webhook' | 'terminal' | 'scheduler'): Promise<Validated | null> {
  const now = ctx.clock.now();
  const head = await ctx.store.db.selectFrom('payment_operations').select(['order_id', 'payment_id', 'kind']).where('id', '=', opId).executeTakeFirstOrThrow();
  let validated: Validated | null = null;
  const follow = await ctx.store.db.transaction().execute(async (trx): Promise<string[]> => {
    await lockOrder(trx, head.order_id);
    let p = (await lockPayment(trx, head.payment_id)) as PaymentRow;
    const finish = (status: 'succeeded' | 'failed', extra: OperationResult = {}) => finishPending(trx, opId, now, source, status, extra);
    switch (outcome.outcome) {
      case 'authorized': {
        const done = await finish('succeeded', { amount: outcome.authorized, provider_ref: outcome.providerRef });
        if (!done) return [];
        await trx
          .updateTable('payments')
          .set({ provider_ref: outcome.providerRef, card_brand: outcome.card?.brand ?? p.card_brand, card_last4: outcome.card?.last4 ?? p.card_last4, action_url: null, failure_code: null, failure_message: null })
          .where('id', '=', p.id)
          .execute();
        p = await settle(ctx, trx, { ...p, provider_ref: outcome.providerRef, card_brand: outcome.card?.brand ?? p.card_brand, card_last4: outcome.card?.last4 ?? p.card_last4 }, now, { phase: 'authorized', source, operationId: opId });
        validated = await validateIfCovered(ctx, trx, p.order_id, SYSTEM_ACTOR);
        break;
      }
      case 'action_required': {
        // The customer acts at the operator; the outcome comes back by webhook.
        await trx.updateTable('payment_operations').set({ provider_ref: outcome.providerRef }).where('id', '=', opId).where('status', '=', 'pending').execute();
        await trx.updateTable('payments').set({ provider_ref: outcome.providerRef, action_url: outcome.actionUrl }).where('id', '=', p.id).execute();
        p = await settle(ctx, trx, { ...p, provider_ref: outcome.providerRef }, now, { phase: p.status === 'pending' ? 'requires_action' : phaseOf(p) });
        return [];
      }
      case 'declined':
      case 'failed': {
        const done = await finish('failed', { failure_code: outcome.code, failure_message: outcome.message });
        if (!done) return [];
        if (head.kind === 'authorize') {
          await trx.updateTable('payments').set({ failure_code: outcome.code, failure_message: outcome.message, provider_ref: outcome.outcome === 'declined' ? (outcome.providerRef ?? p.provider_ref) : p.provider_ref }).where('id', '=', p.id).execute();
          p = await settle(ctx, trx, { ...p, failure_code: outcome.code, failure_message: outcome.message }, now, { phase: p.authorized > 0 ? 'authorized' : 'failed', source, operationId: opId });
        } else {
          // The operator refused a capture, void or refund (an authorization that lapsed, a
          // refund it will not make): said on the timeline for a person to look at, and not
          // planned again from here, so a refusal cannot loop; the order's next change re-plans.
          p = await settle(ctx, trx, p, now, { source, operationId: opId });
          const row = await trx.updateTable('payments').set((eb) => ({ version: eb('version', '+', 1) })).where('id', '=', p.id).returning('version').executeTakeFirstOrThrow();
          await appendEvents(trx, ctx.store.dialect, now, [
            {
              type: 'payment.operation_failed',
              aggregateType: 'payment',
              aggregateId: p.id,
              aggregateSeq: row.version,
              payload: { payment_id: p.id, order_id: p.order_id, provider: p.provider, operation_id: opId, kind: head.kind, code: outcome.code, message: outcome.message },
            },
          ]);
          await updateRefundStatus(trx, opId, now);
          return [];
        }
        break;
      }
      case 'captured': {
        const done = await finish('succeeded');
        if (!done) return [];
        p = await settle(ctx, trx, p, now, { source, operationId: opId });
        break;
      }
      case 'voided': {
        const done = await finish('succeeded');
        if (!done) return [];
        p = await settle(ctx, trx, p, now, { source, operationId: opId });
        break;
      }
      case 'refunded': {
        const done = await finish('succeeded', { provider_ref: outcome.refundRef, amount: outcome.amount });
        if (!done) return [];
        p = await settle(ctx, trx, p, now, { source, operationId: opId });
        break;
      }
      case 'pending': {
        // Accepted by the operator, settled later (webhook, or the store's terminal).
        await trx.updateTable('payment_operations').set({ provider_ref: outcome.refundRef, next_attempt_at: null }).where('id', '=', opId).where('status', '=', 'pending').execute();
        return [];
      }
    }
    await updateRefundStatus(trx, opId, now);
    return planOrderMoney(ctx, trx, p.order_id);
  });
  if (follow.length) await runOperations(ctx, follow);
  return validated;
}

type OperationResult = { amount?: number; provider_ref?: string | null; failure_code?: string; failure_message?: string };

/**
 * Completes an operation only if it is still pending (the API answer, its webhook or the store's
 * terminal, whichever comes first): returns it, or undefined when another already did.
 */
export function finishPending(trx: Trx, opId: string, now: number, source: string, status: 'succeeded' | 'failed', extra: OperationResult = {}): Promise<OperationRow | undefined> {
  return trx
    .updateTable('payment_operations')
    .set({ status, completed_at: now, source, next_attempt_at: null, ...extra })
    .where('id', '=', opId)
    .where('status', '=', 'pending')
    .returningAll()
    .executeTakeFirst();
}

/** A refund request is succeeded when every part is, failed when none did, partially failed otherwise. */
async function updateRefundStatus(trx: Trx, opId: string, now: number): Promise<void> {
  const op = await trx.selectFrom('payment_operations').select('refund_id').where('id', '=', opId).executeTakeFirst();
  if (op?.refund_id) await refreshRefund(trx, op.refund_id, now);
}

export async function refreshRefund(trx: Trx, refundId: string, now: number): Promise<void> {
  const parts = await trx.selectFrom('payment_operations').select('status').where('refund_id', '=', refundId).execute();
  const n = (s: string) => parts.filter((x) => x.status === s).length;
  const status = n('pending') > 0 ? 'pending' : n('failed') === 0 ? 'succeeded' : n('succeeded') === 0 ? 'failed' : 'partially_failed';
  await trx.updateTable('refunds').set({ status, updated_at: now }).where('id', '=', refundId).execute();
}

// ---- use cases ---------------------------------------------------------------------------------------

export interface AuthorizeInput {
  method: TenderMethod;
  provider?: ProviderName;
  amount: number;
  token: string;
  returnUrl?: string;
}

export interface PaymentOutcome {
  payment: PaymentRow;
  /** Set when this payment validated the order. */
  validated: Validated | null;
  /** The same terminal transaction was reported before: nothing changed. */
  replayed?: boolean;
}

/** A new tender row (status pending until its first operation settles it). */
function paymentRow(id: string, orderId: string, now: number, actor: ActorRef, set: { provider: ProviderName; method: TenderMethod; currency: string; amount: number; providerRef?: string; card?: { brand: string; last4: string }; terminalId?: string }) {
  return {
    id,
    order_id: orderId,
    provider: set.provider,
    method: set.method,
    currency: set.currency,
    amount: set.amount,
    status: 'pending',
    provider_ref: set.providerRef ?? null,
    action_url: null,
    card_brand: set.card?.brand ?? null,
    card_last4: set.card?.last4 ?? null,
    terminal_id: set.terminalId ?? null,
    failure_code: null,
    failure_message: null,
    created_by: actor.keyId,
    version: 1,
    created_at: now,
    updated_at: now,
  };
}

/** Which operator takes a method when the request names none. */
function providerFor(ctx: Ctx, method: TenderMethod, named?: ProviderName): ProviderName {
  if (named) return named;
  if (method === 'gift_card') return 'gift_card';
  if (method === 'card_present') return 'card_terminal';
  return ctx.payments.settings.cardProvider;
}

/** What the order's tenders do not cover yet (pending and awaiting-action attempts count as covering). */
async function outstanding(trx: Trx, orderId: string, total: number): Promise<number> {
  const rows = await trx.selectFrom('payments').select(['status', 'amount', 'authorized', 'voided', 'refunded']).where('order_id', '=', orderId).execute();
  const held = rows.reduce((s, p) => s + (p.status === 'pending' || p.status === 'requires_action' ? p.amount : p.status === 'failed' ? 0 : Math.max(0, p.authorized - p.voided - p.refunded)), 0);
  return total - held;
}

async function openOrderForPayment(trx: Trx, orderId: string, currency: string | undefined): Promise<{ total: number; currency: string }> {
  const locked = await lockOrder(trx, orderId);
  if (!locked) throw notFound(`Order '${orderId}'`);
  const o = await trx.selectFrom('orders').select(['total', 'currency', 'validated_at', 'close_reason', 'status']).where('id', '=', orderId).executeTakeFirstOrThrow();
  if (o.close_reason !== null) throw new AppError('invalid_state', `Order '${orderId}' is ${o.status}: it can no longer be paid`);
  if (o.validated_at !== null) throw new AppError('invalid_state', `Order '${orderId}' is already validated: its tenders cover it`);
  if (currency && currency !== o.currency) throw new AppError('validation_failed', `The payment is in ${currency}, the order in ${o.currency}`);
  return o;
}

/** Authorizes a tender online (card, wallet or gift card) for an unpaid order. */
export async function authorizePayment(ctx: Ctx, orderId: string, input: AuthorizeInput, actor: ActorRef): Promise<PaymentOutcome> {
  const providerName = providerFor(ctx, input.method, input.provider);
  ctx.payments.provider(providerName);
  if (providerName === 'card_terminal') throw new AppError('validation_failed', 'Card-present payments are reported by the store terminal: POST /orders/{id}/payments/terminal');
  const now = ctx.clock.now();
  const { paymentId, opId } = await ctx.store.db.transaction().execute(async (trx) => {
    const o = await openOrderForPayment(trx, orderId, undefined);
    const left = await outstanding(trx, orderId, o.total);
    if (input.amount > left) throw new AppError('payment_exceeds_due', `The order has ${left} left to pay; this payment is for ${input.amount}`, { outstanding: left });
    const paymentId = newId('pay');
    const opId = newId('pop');
    await trx.insertInto('payments').values(paymentRow(paymentId, orderId, now, actor, { provider: providerName, method: input.method, currency: o.currency, amount: input.amount })).execute();
    await trx.insertInto('payment_operations').values(operationRow(opId, paymentId, orderId, 'authorize', input.amount, now, null)).execute();
    return { paymentId, opId };
  });
  const done = await executeOperation(ctx, opId, { token: input.token, returnUrl: input.returnUrl });
  if (!done) {
    // The operator could not be reached: the attempt fails here; its webhook may still authorize it later.
    await completeOperation(ctx, opId, { outcome: 'declined', providerRef: null, code: 'provider_unavailable', message: 'The payment operator could not be reached' }, 'api');
    throw new AppError('payment_provider_unavailable', `The ${providerName} payment operator could not be reached; nothing was charged. Retry with a new attempt.`, { payment_id: paymentId });
  }
  return finishOutcome(ctx, paymentId, orderId, done.validated);
}

/** The payment as it stands, and the order's validation: its tracking token only if this call validated it. */
async function finishOutcome(ctx: Ctx, paymentId: string, orderId: string, validated: Validated | null): Promise<PaymentOutcome> {
  const payment = await ctx.store.db.selectFrom('payments').selectAll().where('id', '=', paymentId).executeTakeFirstOrThrow();
  if (payment.status === 'failed') {
    throw new AppError('payment_declined', `The payment was declined: ${payment.failure_message ?? payment.failure_code}`, { payment_id: paymentId, decline_code: payment.failure_code });
  }
  if (validated) return { payment, validated };
  const o = await ctx.store.db.selectFrom('orders').select(['number', 'validated_at']).where('id', '=', orderId).executeTakeFirstOrThrow();
  return { payment, validated: o.validated_at === null ? null : { changed: false, number: o.number } };
}

export interface TerminalInput {
  terminalId: string;
  transactionReference: string;
  amount: number;
  currency: string;
  cardBrand: string;
  cardLast4: string;
}

/**
 * A card-present payment the store's terminal approved: authorized and captured at once.
 * Reporting the same terminal transaction again returns the payment already recorded.
 */
export async function recordTerminalPayment(ctx: Ctx, orderId: string, input: TerminalInput, actor: ActorRef): Promise<PaymentOutcome> {
  const now = ctx.clock.now();
  let replayed = false;
  const { paymentId, validated, ops } = await ctx.store.db.transaction().execute(async (trx): Promise<{ paymentId: string; validated: Validated | null; ops: string[] }> => {
    const known = await trx.selectFrom('payments').selectAll().where('provider', '=', 'card_terminal').where('provider_ref', '=', input.transactionReference).executeTakeFirst();
    if (known) {
      if (known.order_id !== orderId || known.amount !== input.amount) throw new AppError('conflict', `Terminal transaction '${input.transactionReference}' was already reported for another order or amount`);
      replayed = true;
      return { paymentId: known.id, validated: null, ops: [] };
    }
    await openOrderForPayment(trx, orderId, input.currency);
    const o = await trx.selectFrom('orders').select('total').where('id', '=', orderId).executeTakeFirstOrThrow();
    const left = await outstanding(trx, orderId, o.total);
    if (input.amount > left) throw new AppError('payment_exceeds_due', `The order has ${left} left to pay; the terminal reported ${input.amount}`, { outstanding: left });
    const id = newId('pay');
    await trx
      .insertInto('payments')
      .values(
        paymentRow(id, orderId, now, actor, {
          provider: 'card_terminal',
          method: 'card_present',
          currency: input.currency,
          amount: input.amount,
          providerRef: input.transactionReference,
          card: { brand: input.cardBrand.toLowerCase(), last4: input.cardLast4 },
          terminalId: input.terminalId,
        }),
      )
      .execute();
    // Approved at the terminal: authorized and captured at once (the authorization names the transaction).
    await trx.insertInto('payment_operations').values(operationRow(newId('pop'), id, orderId, 'authorize', input.amount, now, { source: 'terminal', providerRef: input.transactionReference })).execute();
    await trx.insertInto('payment_operations').values(operationRow(newId('pop'), id, orderId, 'capture', input.amount, now, { source: 'terminal', providerRef: null })).execute();
    const p = (await lockPayment(trx, id)) as PaymentRow;
    await settle(ctx, trx, p, now, { phase: 'authorized', source: 'terminal' });
    const v = await validateIfCovered(ctx, trx, orderId, actor);
    // Other tenders of the order (a gift card beside the card) may be due for capture now.
    return { paymentId: id, validated: v, ops: await planOrderMoney(ctx, trx, orderId) };
  });
  await runOperations(ctx, ops);
  return { ...(await finishOutcome(ctx, paymentId, orderId, validated)), replayed };
}

/** The store's terminal did the card-present refund it was asked for: the refund is done. */
export async function confirmTerminalRefund(ctx: Ctx, paymentId: string, opId: string, terminalReference: string): Promise<OperationRow> {
  const op = await ctx.store.db.selectFrom('payment_operations').selectAll().where('id', '=', opId).where('payment_id', '=', paymentId).executeTakeFirst();
  if (!op) throw notFound(`Operation '${opId}' of payment '${paymentId}'`);
  const p = await ctx.store.db.selectFrom('payments').select('provider').where('id', '=', paymentId).executeTakeFirstOrThrow();
  if (p.provider !== 'card_terminal' || op.kind !== 'refund') throw new AppError('invalid_state', 'Only a card-present refund is confirmed by the store terminal');
  if (op.status === 'pending') await completeOperation(ctx, opId, { outcome: 'refunded', refundRef: terminalReference, amount: op.amount }, 'terminal');
  return ctx.store.db.selectFrom('payment_operations').selectAll().where('id', '=', opId).executeTakeFirstOrThrow();
}

export interface RefundInput {
  amount?: number;
  lines?: Array<{ lineId: string; quantity: number }>;
  shipping?: number;
  reason?: string | null;
}

/**
 * Refunds an amount, or lines (their shipped units' value, plus shipping if asked), split
 * across the order's tenders by the retailer's rule, each part through its tender's operator.
 * The intents are recorded under the order lock: parallel refunds never add up to more than
 * was captured.
 */
export async function createRefund(ctx: Ctx, orderId: string, input: RefundInput, actor: ActorRef): Promise<string> {
  const now = ctx.clock.now();
  const { refundId, ops } = await ctx.store.db.transaction().execute(async (trx) => {
    const locked = await lockOrder(trx, orderId);
    if (!locked) throw notFound(`Order '${orderId}'`);
    const o = await trx.selectFrom('orders').selectAll().where('id', '=', orderId).executeTakeFirstOrThrow();
    if (o.validated_at === null) throw new AppError('invalid_state', `Order '${orderId}' is ${o.status}: nothing was paid to refund`);
    let amount = input.amount ?? 0;
    let lines: Array<{ line_id: string; quantity: number; amount: number }> | null = null;
    if (input.lines) {
      const rows = await trx.selectFrom('order_lines').selectAll().where('order_id', '=', orderId).execute();
      const done = await refundedQuantities(trx, orderId);
      const problems: string[] = [];
      lines = [];
      const asked = new Map<string, number>();
      for (const l of input.lines) asked.set(l.lineId, (asked.get(l.lineId) ?? 0) + l.quantity);
      for (const [lineId, quantity] of asked) {
        const row = rows.find((r) => r.line_id === lineId);
        if (!row) {
          problems.push(`line ${lineId} does not exist`);
          continue;
        }
        const left = row.shipped - (done.get(lineId) ?? 0);
        if (quantity > left) problems.push(`line ${lineId}: ${quantity} to refund, ${left} shipped and not refunded yet`);
        const value = lineUnitsValue(
          { subtotal: o.subtotal, discountTotal: o.discount_total, taxTotal: o.tax_total, shippingTotal: o.shipping_total, total: o.total },
          { groupId: row.group_id, quantity: row.quantity, cancelled: row.cancelled, shipped: row.shipped, unitPrice: row.unit_price, discount: row.discount, tax: row.tax },
          quantity,
        );
        lines.push({ line_id: lineId, quantity, amount: value });
      }
      if (problems.length) throw new AppError('invalid_state', `Cannot refund: ${problems.join('; ')}`, { problems });
      amount = lines.reduce((s, l) => s + l.amount, 0) + (input.shipping ?? 0);
    }
    if (!(amount > 0)) throw new AppError('validation_failed', 'A refund needs an amount or lines worth more than 0');
    const payments: PaymentRow[] = [];
    for (const { id } of await trx.selectFrom('payments').select('id').where('order_id', '=', orderId).orderBy('id').execute()) payments.push((await lockPayment(trx, id)) as PaymentRow);
    const refundable = payments.reduce((s, p) => s + freeToRefund(p), 0);
    if (amount > refundable) throw new AppError('refund_exceeds_captured', `The order's tenders can refund ${refundable} now; ${amount} was asked`, { refundable, asked: amount });
    const refundId = newId('rfd');
    await trx
      .insertInto('refunds')
      .values({ id: refundId, order_id: orderId, kind: 'refund', amount, status: 'pending', reason: input.reason ?? null, lines: lines ? JSON.stringify(lines) : null, shipping: input.shipping ?? 0, created_by: actor.keyId, created_at: now, updated_at: now })
      .execute();
    const byId = new Map(payments.map((p) => [p.id, p]));
    const ops = await refundParts(ctx, trx, payments, amount, refundId, now, byId);
    return { refundId, ops };
  });
  await runOperations(ctx, ops);
  return refundId;
}

async function refundedQuantities(trx: Trx, orderId: string): Promise<Map<string, number>> {
  const rows = await trx.selectFrom('refunds').select('lines').where('order_id', '=', orderId).where('kind', '=', 'refund').where('status', '!=', 'failed').where('lines', 'is not', null).execute();
  const out = new Map<string, number>();
  for (const r of rows) for (const l of JSON.parse(r.lines as string) as Array<{ line_id: string; quantity: number }>) out.set(l.line_id, (out.get(l.line_id) ?? 0) + l.quantity);
  return out;
}

// ---- the scheduler's part --------------------------------------------------------------------------------

/**
 * Resumes captures, voids and refunds whose operator could not be reached (same idempotency
 * key), fails authorizations left pending by a process that died mid-call, and forgets
 * webhook event ids past their retention. Safe with several OMS processes: an operation is
 * claimed by a conditional update before it runs.
 */
export async function sweepPayments(ctx: Ctx, limit = 50): Promise<{ resumed: number; abandoned: number; purged: number }> {
  const db = ctx.store.db;
  const now = ctx.clock.now();
  const due = await db
    .selectFrom('payment_operations')
    .select(['id', 'next_attempt_at'])
    .where('status', '=', 'pending')
    .where('kind', '!=', 'authorize')
    .where('next_attempt_at', '<=', now)
    .orderBy('next_attempt_at')
    .limit(limit)
    .execute();
  let resumed = 0;
  for (const d of due) {
    const claimed = await db
      .updateTable('payment_operations')
      .set({ next_attempt_at: now + ctx.payments.settings.retryDelayMs })
      .where('id', '=', d.id)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '=', d.next_attempt_at)
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) continue;
    await executeOperation(ctx, d.id);
    resumed++;
  }
  const stale = await db
    .selectFrom('payment_operations')
    .select('id')
    .where('status', '=', 'pending')
    .where('kind', '=', 'authorize')
    .where('created_at', '<=', now - ctx.payments.settings.authorizeTimeoutMs)
    .limit(limit)
    .execute();
  for (const s of stale) await completeOperation(ctx, s.id, { outcome: 'declined', providerRef: null, code: 'abandoned', message: 'The authorization did not complete in time' }, 'scheduler');
  const purged = await db.deleteFrom('webhook_events').where('received_at', '<=', now - ctx.payments.settings.webhookRetentionMs).executeTakeFirst();
  return { resumed, abandoned: stale.length, purged: Number(purged.numDeletedRows) };
}
