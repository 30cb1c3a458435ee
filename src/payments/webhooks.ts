// Webhooks in (POST /webhooks/payments/:provider). The adapter verifies the signature on the
// raw body and parses typed events; each event is applied once (its id is kept at least 30
// days, inserted in the same transaction as its effect), in any order, converging to the
// operator's truth: absolute figures raise the counters' floor, and an event for an operation
// still pending completes it, so a webhook that beats the API response does not make a second
// capture or refund (the response then finds the operation done and changes nothing).
import type { Ctx } from '../context.ts';
import type { Trx } from '../db/database.ts';
import { lockOrder } from '../orders/status.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import type { Headers, PaymentEvent, ProviderName } from './provider.ts';
import { finishPending, lockPayment, operationRow, type PaymentRow, planOrderMoney, refreshRefund, runOperations, settle, SYSTEM_ACTOR, validateIfCovered } from './service.ts';

export interface WebhookResult {
  received: number;
  applied: number;
  duplicates: number;
  /** Events about payments this OMS does not know (another system's, or already purged). */
  unknown: number;
  ignored?: string;
}

export async function ingestWebhook(ctx: Ctx, provider: ProviderName, rawBody: Buffer, headers: Headers): Promise<WebhookResult> {
  const adapter = ctx.payments.provider(provider);
  const verdict = await adapter.parseWebhook(rawBody, headers, ctx.clock.now());
  if (!verdict.ok) throw new AppError('webhook_signature_invalid', `Webhook refused: ${verdict.message}`, { reason: verdict.reason });
  const out: WebhookResult = { received: verdict.events.length, applied: 0, duplicates: 0, unknown: 0, ...(verdict.ignored ? { ignored: verdict.ignored } : {}) };
  for (const [i, event] of verdict.events.entries()) {
    const r = await applyEvent(ctx, provider, event, i === 0 ? event.eventId : `${event.eventId}#${i}`);
    out[r]++;
  }
  return out;
}

async function findPayment(ctx: Ctx, provider: ProviderName, e: PaymentEvent): Promise<{ id: string; order_id: string } | undefined> {
  const db = ctx.store.db;
  if (e.paymentId) {
    const byId = await db.selectFrom('payments').select(['id', 'order_id']).where('id', '=', e.paymentId).where('provider', '=', provider).executeTakeFirst();
    if (byId) return byId;
  }
  return db.selectFrom('payments').select(['id', 'order_id']).where('provider', '=', provider).where('provider_ref', '=', e.providerRef).executeTakeFirst();
}

async function applyEvent(ctx: Ctx, provider: ProviderName, e: PaymentEvent, dedupeId: string): Promise<'applied' | 'duplicates' | 'unknown'> {
  const target = await findPayment(ctx, provider, e);
  if (!target) return 'unknown';
  const now = ctx.clock.now();
  const result = await ctx.store.db.transaction().execute(async (trx): Promise<{ r: 'applied' | 'duplicates'; ops: string[] }> => {
    // Same lock order as every payment change: the order, then the payment.
    await lockOrder(trx, target.order_id);
    let p = (await lockPayment(trx, target.id)) as PaymentRow;
    const fresh = await trx
      .insertInto('webhook_events')
      .values({ provider, event_id: dedupeId, type: e.type, received_at: now })
      .onConflict((oc) => oc.columns(['provider', 'event_id']).doNothing())
      .returning('event_id')
      .executeTakeFirst();
    if (!fresh) return { r: 'duplicates', ops: [] };
    p = await applyToPayment(ctx, trx, p, e, now);
    return { r: 'applied', ops: await planOrderMoney(ctx, trx, p.order_id) };
  });
  if (result.ops.length) await runOperations(ctx, result.ops);
  return result.r;
}

const pendingOp = (trx: Trx, paymentId: string, kind: string, opId?: string) => {
  let q = trx.selectFrom('payment_operations').selectAll().where('payment_id', '=', paymentId).where('kind', '=', kind).where('status', '=', 'pending');
  if (opId) q = q.where('id', '=', opId);
  return q.orderBy('created_at').executeTakeFirst();
};

const completeOp = (trx: Trx, opId: string, now: number, set: { status: 'succeeded' | 'failed'; amount?: number; provider_ref?: string; failure_code?: string; failure_message?: string }) => {
  const { status, ...extra } = set;
  return finishPending(trx, opId, now, 'webhook', status, extra);
};

async function applyToPayment(ctx: Ctx, trx: Trx, p: PaymentRow, e: PaymentEvent, now: number): Promise<PaymentRow> {
  const raise = async (set: { psp_authorized?: number; psp_captured?: number; psp_refunded?: number }) => {
    // The operator's figures only ever raise the floor (max), so order and replays do not matter.
    const a = Math.max(p.psp_authorized, set.psp_authorized ?? 0, set.psp_captured ?? 0, set.psp_refunded ?? 0);
    const c = Math.max(p.psp_captured, set.psp_captured ?? 0, set.psp_refunded ?? 0);
    const r = Math.max(p.psp_refunded, set.psp_refunded ?? 0);
    if (a !== p.psp_authorized || c !== p.psp_captured || r !== p.psp_refunded) {
      await trx.updateTable('payments').set({ psp_authorized: a, psp_captured: c, psp_refunded: r }).where('id', '=', p.id).execute();
      p = { ...p, psp_authorized: a, psp_captured: c, psp_refunded: r };
    }
  };
  switch (e.type) {
    case 'authorized': {
      const op = await pendingOp(trx, p.id, 'authorize');
      if (op) await completeOp(trx, op.id, now, { status: 'succeeded', amount: e.authorized, provider_ref: e.providerRef });
      await trx
        .updateTable('payments')
        .set({ provider_ref: p.provider_ref ?? e.providerRef, card_brand: e.card?.brand ?? p.card_brand, card_last4: e.card?.last4 ?? p.card_last4, action_url: null })
        .where('id', '=', p.id)
        .execute();
      p = { ...p, provider_ref: p.provider_ref ?? e.providerRef, card_brand: e.card?.brand ?? p.card_brand, card_last4: e.card?.last4 ?? p.card_last4 };
      await raise({ psp_authorized: e.authorized });
      p = await settle(ctx, trx, p, now, { phase: 'authorized', source: 'webhook' });
      await validateIfCovered(ctx, trx, p.order_id, SYSTEM_ACTOR);
      return p;
    }
    case 'action_required': {
      if (p.status !== 'pending') return p;
      await trx.updateTable('payments').set({ action_url: e.actionUrl, provider_ref: p.provider_ref ?? e.providerRef }).where('id', '=', p.id).execute();
      return settle(ctx, trx, { ...p, provider_ref: p.provider_ref ?? e.providerRef }, now, { phase: 'requires_action', source: 'webhook' });
    }
    case 'failed': {
      const op = await pendingOp(trx, p.id, 'authorize');
      if (op) await completeOp(trx, op.id, now, { status: 'failed', failure_code: e.code, failure_message: e.message });
      if (p.authorized > 0) return p;
      await trx.updateTable('payments').set({ failure_code: e.code, failure_message: e.message, action_url: null }).where('id', '=', p.id).execute();
      return settle(ctx, trx, { ...p, failure_code: e.code, failure_message: e.message }, now, { phase: 'failed', source: 'webhook' });
    }
    case 'captured': {
      const op = e.operationId ? await pendingOp(trx, p.id, 'capture', e.operationId) : undefined;
      if (op) await completeOp(trx, op.id, now, { status: 'succeeded' });
      await raise({ psp_captured: e.capturedTotal });
      return settle(ctx, trx, p, now, { source: 'webhook', ...(op ? { operationId: op.id } : {}) });
    }
    case 'voided': {
      const op = await pendingOp(trx, p.id, 'void');
      if (op) await completeOp(trx, op.id, now, { status: 'succeeded' });
      else {
        // Cancelled at the operator (its dashboard, or an authorization that lapsed): release what is left.
        const left = p.authorized - p.voided - p.captured;
        if (left > 0) {
          await trx.insertInto('payment_operations').values(operationRow(newId('pop'), p.id, p.order_id, 'void', left, now, { source: 'external', providerRef: null })).execute();
        }
      }
      return settle(ctx, trx, p, now, { source: 'webhook' });
    }
    case 'refund': {
      // Ours (named by operation id, or by the refund reference the API answer recorded), or one made at the operator.
      const op =
        (e.operationId ? await pendingOp(trx, p.id, 'refund', e.operationId) : undefined) ??
        (await trx.selectFrom('payment_operations').selectAll().where('payment_id', '=', p.id).where('kind', '=', 'refund').where('provider_ref', '=', e.refundRef).executeTakeFirst());
      const known = op ?? (e.operationId ? await trx.selectFrom('payment_operations').selectAll().where('id', '=', e.operationId).where('payment_id', '=', p.id).executeTakeFirst() : undefined);
      if (known) {
        if (known.status === 'pending' && e.status !== 'pending') {
          const done = await completeOp(trx, known.id, now, { status: e.status === 'succeeded' ? 'succeeded' : 'failed', provider_ref: e.refundRef, ...(e.status === 'failed' ? { failure_code: 'refund_failed', failure_message: 'The operator reported the refund failed' } : {}) });
          if (done?.refund_id) await refreshRefund(trx, done.refund_id, now);
        } else if (known.status === 'pending') {
          await trx.updateTable('payment_operations').set({ provider_ref: e.refundRef }).where('id', '=', known.id).execute();
        }
      } else if (e.status === 'succeeded') {
        await trx
          .insertInto('payment_operations')
          .values(operationRow(newId('pop'), p.id, p.order_id, 'refund', e.amount, now, { source: 'external', providerRef: e.refundRef }))
          .onConflict((oc) => oc.columns(['payment_id', 'provider_ref']).doNothing())
          .execute();
      }
      await raise({ psp_captured: e.capturedTotal, psp_refunded: e.refundedTotal });
      return settle(ctx, trx, p, now, { source: 'webhook', ...(known ? { operationId: known.id } : {}) });
    }
  }
}

