// The sandbox payment operator (DOMAIN §4): a simulated PSP, built in, deterministic, used by
// the demo and by the tests. It behaves like a real operator seen through the PaymentProvider
// port: idempotency keys, declines as values, transient failures as ProviderUnavailable,
// 3-D Secure, partial and final captures, voids, partial refunds, and asynchronous webhooks
// signed like a real PSP's (Stripe's scheme, header `sandbox-signature`, see ../signature.ts).
//
// Its books are the tables sandbox_psp_payments / sandbox_psp_requests, so every OMS process
// on one database talks to the same simulated PSP. Each call is one short transaction of its
// own on store.db; money moves only through conditional updates (`… where captured + x <=
// authorized`), never read-modify-write, so two concurrent refunds cannot exceed what was
// captured. Each idempotency key has one sandbox_psp_requests row: its insert decides which of
// two concurrent calls with one key does the work (the other waits for its commit, then reads
// the stored result); a replay returns the stored result, with no second effect or webhook.
//
// Deterministic test tokens (SANDBOX_TOKENS):
//
//   token                           | authorize outcome
//   --------------------------------+---------------------------------------------------------
//   tok_sandbox_visa                | authorized, card visa •4242
//   tok_sandbox_mastercard          | authorized, card mastercard •4444
//   tok_sandbox_decline             | declined card_declined (payment.failed webhook)
//   tok_sandbox_insufficient_funds  | declined insufficient_funds (payment.failed webhook)
//   tok_sandbox_3ds                 | action_required, actionUrl `${actionBaseUrl}/sandbox/actions/<ref>`;
//                                   |   completeAction(ref, 'approve') → authorized (visa •3220),
//                                   |   completeAction(ref, 'decline') → failed authentication_failed
//   tok_sandbox_transient           | the first call with an idempotency key throws
//                                   |   ProviderUnavailable; a retry with the same key authorizes
//                                   |   (visa •4242); another key starts over
//   anything else                   | declined invalid_payment_method, providerRef null, no
//                                   |   payment created and no webhook (the PSP rejects the call)
//
// Payment statuses in the books: action_required → authorized | failed; authorized →
// partially_captured → captured (a final capture releases what remains authorized: nothing
// more can be captured) ; authorized | action_required → voided.
//
// Webhooks: after every state change it has committed, the sandbox builds the event JSON
// (SandboxWebhookBody), signs it with every configured secret at the clock's current time and
// hands it to `emit` (the composition root delivers it; tests collect it). Event types:
// payment.authorized, payment.action_required, payment.failed, payment.captured,
// payment.voided, refund.succeeded. A failed call (amount_too_large, invalid_state…) changes
// nothing and raises no webhook. Secrets are never logged nor put in an error message.
import type { Selectable } from 'kysely';
import { sql } from 'kysely';
import type { Store, Trx } from '../../db/database.ts';
import type { SandboxPspPaymentTable } from '../../db/schema.ts';
import type { Clock } from '../../shared/clock.ts';
import { newId } from '../../shared/ids.ts';
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
import { signPayload, verifySignature } from '../signature.ts';

export const SANDBOX_SIGNATURE_HEADER = 'sandbox-signature';

export type SandboxTokenBehaviour =
  | { kind: 'authorized'; card: CardSummary }
  | { kind: 'declined'; code: string; message: string }
  | { kind: 'action_required'; card: CardSummary }
  | { kind: 'transient'; card: CardSummary };

/** The deterministic test tokens (see the table at the top of this file). */
export const SANDBOX_TOKENS: Readonly<Record<string, SandboxTokenBehaviour>> = Object.freeze({
  tok_sandbox_visa: { kind: 'authorized', card: { brand: 'visa', last4: '4242' } },
  tok_sandbox_mastercard: { kind: 'authorized', card: { brand: 'mastercard', last4: '4444' } },
  tok_sandbox_decline: { kind: 'declined', code: 'card_declined', message: 'The card was declined.' },
  tok_sandbox_insufficient_funds: { kind: 'declined', code: 'insufficient_funds', message: 'The card has insufficient funds.' },
  tok_sandbox_3ds: { kind: 'action_required', card: { brand: 'visa', last4: '3220' } },
  tok_sandbox_transient: { kind: 'transient', card: { brand: 'visa', last4: '4242' } },
});

const tokenBehaviour = (token: string): SandboxTokenBehaviour | undefined => (Object.hasOwn(SANDBOX_TOKENS, token) ? SANDBOX_TOKENS[token] : undefined);

export type SandboxEventType = 'payment.authorized' | 'payment.action_required' | 'payment.failed' | 'payment.captured' | 'payment.voided' | 'refund.succeeded';

export type SandboxPaymentStatus = 'action_required' | 'authorized' | 'failed' | 'partially_captured' | 'captured' | 'voided';

/** The webhook JSON body the sandbox sends (snake_case, like a PSP's). */
export interface SandboxWebhookBody {
  id: string;
  type: SandboxEventType;
  /** Unix seconds. */
  created: number;
  data: {
    payment: {
      ref: string;
      payment_id: string;
      order_id: string;
      amount: number;
      currency: string;
      status: string;
      authorized: number;
      captured: number;
      refunded: number;
      card?: CardSummary;
      /** Present while the payment waits for the customer (3-D Secure). */
      action_url?: string;
    };
    capture?: { amount: number; operation_id: string };
    refund?: { ref: string; amount: number; status: 'succeeded'; operation_id: string };
    failure?: { code: string; message: string };
  };
}

/** One webhook, ready to be POSTed: the exact bytes that were signed, and the headers. */
export interface SandboxDelivery {
  rawBody: Buffer;
  headers: Record<string, string>;
  eventId: string;
  type: string;
}

export interface SandboxProviderOptions {
  store: Store;
  clock: Clock;
  /** Webhook signing secrets: every one signs each event (rotation); any one verifies. */
  secrets: string[];
  toleranceSec?: number;
  /** Prefix of the 3-D Secure action URL (e.g. the OMS's public base URL); default ''. */
  actionBaseUrl?: string;
  emit?: (d: SandboxDelivery) => void;
}

type PaymentRow = Selectable<SandboxPspPaymentTable>;
type Op = 'authorize' | 'capture' | 'void' | 'refund';
interface StoredResult<R> {
  op: Op;
  result: R;
}
/** What an operation returns from inside its transaction: a result, or "simulate an outage". */
type Outcome<R> = { kind: 'done'; result: R } | { kind: 'unavailable' };

const CAPTURABLE: SandboxPaymentStatus[] = ['authorized', 'partially_captured'];
const VOIDABLE: SandboxPaymentStatus[] = ['authorized', 'action_required'];

const isAmount = (n: number, min: number): boolean => Number.isSafeInteger(n) && n >= min;

export class SandboxProvider implements PaymentProvider {
  readonly name = 'sandbox' as const;
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #secrets: string[];
  readonly #toleranceSec: number;
  readonly #actionBaseUrl: string;
  readonly #emit: ((d: SandboxDelivery) => void) | undefined;

  constructor(opts: SandboxProviderOptions) {
    if (opts.secrets.length === 0) throw new Error('SandboxProvider: at least one webhook secret is required');
    this.#store = opts.store;
    this.#clock = opts.clock;
    this.#secrets = [...opts.secrets];
    this.#toleranceSec = opts.toleranceSec ?? 300;
    this.#actionBaseUrl = (opts.actionBaseUrl ?? '').replace(/\/+$/, '');
    this.#emit = opts.emit;
  }

  actionUrl(ref: string): string {
    return `${this.#actionBaseUrl}/sandbox/actions/${encodeURIComponent(ref)}`;
  }

  async authorize(req: AuthorizeRequest): Promise<AuthorizeResult> {
    const reused: AuthorizeResult = { outcome: 'declined', providerRef: null, code: 'idempotency_key_reused', message: 'This idempotency key was used for another kind of call.' };
    return this.#run<AuthorizeResult>('authorize', req.idempotencyKey, reused, async (trx, attempt, events) => {
      const decline = (code: string, message: string): Outcome<AuthorizeResult> => ({ kind: 'done', result: { outcome: 'declined', providerRef: null, code, message } });
      if (!isAmount(req.amount, 1)) return decline('invalid_amount', 'The amount must be a positive integer in minor units.');
      if (!/^[A-Z]{3}$/.test(req.currency)) return decline('invalid_currency', 'The currency must be an ISO 4217 code in upper case.');
      const behaviour = tokenBehaviour(req.token);
      if (!behaviour) return decline('invalid_payment_method', 'Unknown payment method token.');
      if (behaviour.kind === 'transient' && attempt === 1) return { kind: 'unavailable' };

      const now = this.#clock.now();
      const ref = newId('sbpay');
      const status: SandboxPaymentStatus = behaviour.kind === 'declined' ? 'failed' : behaviour.kind === 'action_required' ? 'action_required' : 'authorized';
      const authorized = status === 'authorized' ? req.amount : 0;
      const row = await trx
        .insertInto('sandbox_psp_payments')
        .values({ ref, payment_id: req.paymentId, order_id: req.orderId, token: req.token, currency: req.currency, amount: req.amount, status, authorized, captured: 0, refunded: 0, created_at: now, updated_at: now })
        .returningAll()
        .executeTakeFirstOrThrow();
      switch (behaviour.kind) {
        case 'declined':
          events.push(this.#event('payment.failed', row, { failure: { code: behaviour.code, message: behaviour.message } }));
          return { kind: 'done', result: { outcome: 'declined', providerRef: ref, code: behaviour.code, message: behaviour.message } };
        case 'action_required':
          events.push(this.#event('payment.action_required', row));
          return { kind: 'done', result: { outcome: 'action_required', providerRef: ref, actionUrl: this.actionUrl(ref) } };
        default:
          events.push(this.#event('payment.authorized', row));
          return { kind: 'done', result: { outcome: 'authorized', providerRef: ref, authorized, card: { ...behaviour.card } } };
      }
    });
  }

  /**
   * The customer's answer to the 3-D Secure challenge (the sandbox's action page calls it).
   * Only a payment waiting for the customer moves; completing twice changes nothing and
   * returns ok: false with the payment's current status ('not_found' for an unknown ref).
   */
  async completeAction(ref: string, outcome: 'approve' | 'decline'): Promise<{ ok: boolean; status: string }> {
    const events: SandboxWebhookBody[] = [];
    const res = await this.#store.db.transaction().execute(async (trx) => {
      const approve = outcome === 'approve';
      const row = await trx
        .updateTable('sandbox_psp_payments')
        .set((eb) => ({ status: approve ? 'authorized' : 'failed', authorized: approve ? eb.ref('amount') : 0, updated_at: this.#clock.now() }))
        .where('ref', '=', ref)
        .where('status', '=', 'action_required')
        .returningAll()
        .executeTakeFirst();
      if (row) {
        events.push(
          approve
            ? this.#event('payment.authorized', row)
            : this.#event('payment.failed', row, { failure: { code: 'authentication_failed', message: 'The customer failed 3-D Secure authentication.' } }),
        );
        return { ok: true, status: row.status };
      }
      const current = await trx.selectFrom('sandbox_psp_payments').select('status').where('ref', '=', ref).executeTakeFirst();
      return { ok: false, status: current?.status ?? 'not_found' };
    });
    this.#deliver(events);
    return res;
  }

  async capture(req: CaptureRequest): Promise<CaptureResult> {
    const reused: CaptureResult = { outcome: 'failed', code: 'idempotency_key_reused', message: 'This idempotency key was used for another kind of call.' };
    return this.#run<CaptureResult>('capture', req.idempotencyKey, reused, async (trx, _attempt, events) => {
      const fail = (code: string, message: string): Outcome<CaptureResult> => ({ kind: 'done', result: { outcome: 'failed', code, message } });
      // A final capture of 0 closes a partly captured payment (releases the rest); otherwise > 0.
      if (!isAmount(req.amount, req.final ? 0 : 1)) return fail('invalid_amount', 'The amount must be a positive integer in minor units.');
      const amount = req.amount;
      const row = await trx
        .updateTable('sandbox_psp_payments')
        .set((eb) => ({ captured: eb('captured', '+', amount), status: req.final ? 'captured' : 'partially_captured', updated_at: this.#clock.now() }))
        .where('ref', '=', req.providerRef)
        .where('currency', '=', req.currency)
        .where('status', 'in', CAPTURABLE)
        .where(sql<boolean>`captured + ${amount} <= authorized`)
        .where(sql<boolean>`captured + ${amount} > 0`)
        .returningAll()
        .executeTakeFirst();
      if (row) {
        events.push(this.#event('payment.captured', row, { capture: { amount, operation_id: req.operationId } }));
        return { kind: 'done', result: { outcome: 'captured', amount } };
      }
      const current = await this.#find(trx, req.providerRef);
      if (!current) return fail('not_found', 'No such payment.');
      if (current.currency !== req.currency) return fail('currency_mismatch', `The payment is in ${current.currency}.`);
      if (!(CAPTURABLE as string[]).includes(current.status)) return fail('invalid_state', `The payment is ${current.status}: nothing can be captured.`);
      if (amount === 0) return fail('invalid_amount', 'Nothing captured yet: void the payment instead.');
      return fail('amount_too_large', `At most ${current.authorized - current.captured} can still be captured.`);
    });
  }

  async void(req: VoidRequest): Promise<VoidResult> {
    const reused: VoidResult = { outcome: 'failed', code: 'idempotency_key_reused', message: 'This idempotency key was used for another kind of call.' };
    return this.#run<VoidResult>('void', req.idempotencyKey, reused, async (trx, _attempt, events) => {
      const fail = (code: string, message: string): Outcome<VoidResult> => ({ kind: 'done', result: { outcome: 'failed', code, message } });
      const row = await trx
        .updateTable('sandbox_psp_payments')
        // After partial captures, a void releases what is left and closes the payment (captured).
        .set({ status: sql<string>`case when captured > 0 then 'captured' else 'voided' end`, updated_at: this.#clock.now() })
        .where('ref', '=', req.providerRef)
        .where('status', 'in', [...VOIDABLE, 'partially_captured'])
        .returningAll()
        .executeTakeFirst();
      if (row) {
        events.push(this.#event('payment.voided', row));
        return { kind: 'done', result: { outcome: 'voided' } };
      }
      const current = await this.#find(trx, req.providerRef);
      if (!current) return fail('not_found', 'No such payment.');
      // Already voided (by another key, or in the dashboard): the effect holds; no new webhook.
      if (current.status === 'voided') return { kind: 'done', result: { outcome: 'voided' } };
      if (current.captured > 0) return fail('already_captured', 'The payment has captures: refund it instead.');
      return fail('invalid_state', `The payment is ${current.status}: it cannot be voided.`);
    });
  }

  async refund(req: RefundRequest): Promise<RefundResult> {
    const reused: RefundResult = { outcome: 'failed', code: 'idempotency_key_reused', message: 'This idempotency key was used for another kind of call.' };
    return this.#run<RefundResult>('refund', req.idempotencyKey, reused, async (trx, _attempt, events) => {
      const fail = (code: string, message: string): Outcome<RefundResult> => ({ kind: 'done', result: { outcome: 'failed', code, message } });
      if (!isAmount(req.amount, 1)) return fail('invalid_amount', 'The amount must be a positive integer in minor units.');
      const amount = req.amount;
      const row = await trx
        .updateTable('sandbox_psp_payments')
        .set((eb) => ({ refunded: eb('refunded', '+', amount), updated_at: this.#clock.now() }))
        .where('ref', '=', req.providerRef)
        .where('currency', '=', req.currency)
        .where(sql<boolean>`refunded + ${amount} <= captured`)
        .returningAll()
        .executeTakeFirst();
      if (row) {
        const refundRef = newId('sbre');
        events.push(this.#event('refund.succeeded', row, { refund: { ref: refundRef, amount, status: 'succeeded', operation_id: req.operationId } }));
        return { kind: 'done', result: { outcome: 'refunded', refundRef, amount } };
      }
      const current = await this.#find(trx, req.providerRef);
      if (!current) return fail('not_found', 'No such payment.');
      if (current.currency !== req.currency) return fail('currency_mismatch', `The payment is in ${current.currency}.`);
      return fail('amount_too_large', `At most ${current.captured - current.refunded} can still be refunded.`);
    });
  }

  async parseWebhook(rawBody: Buffer, headers: Headers, now: number): Promise<WebhookVerdict> {
    const verdict = verifySignature(rawBody, headerValue(headers, SANDBOX_SIGNATURE_HEADER), this.#secrets, now, this.#toleranceSec);
    if (!verdict.ok) return verdict;
    let body: unknown;
    try {
      body = JSON.parse(rawBody.toString('utf8'));
    } catch {
      return { ok: false, reason: 'malformed', message: 'the body is not JSON' };
    }
    return toEvents(body);
  }

  /**
   * One call under one idempotency key, in one transaction: the request row is inserted (or
   * found), its attempt counter bumped while it has no result (this locks it: a concurrent
   * call with the same key waits, then finds the result); a stored result is returned as is.
   * Webhooks go out after the commit; a simulated outage commits the attempt, then throws.
   */
  async #run<R>(op: Op, key: string, reused: R, effect: (trx: Trx, attempt: number, events: SandboxWebhookBody[]) => Promise<Outcome<R>>): Promise<R> {
    const events: SandboxWebhookBody[] = [];
    const outcome = await this.#store.db.transaction().execute(async (trx): Promise<Outcome<R>> => {
      await trx
        .insertInto('sandbox_psp_requests')
        .values({ idempotency_key: key, attempts: 0, result: null, created_at: this.#clock.now() })
        .onConflict((oc) => oc.column('idempotency_key').doNothing())
        .execute();
      const claimed = await trx
        .updateTable('sandbox_psp_requests')
        .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
        .where('idempotency_key', '=', key)
        .where('result', 'is', null)
        .returning('attempts')
        .executeTakeFirst();
      if (!claimed) {
        const stored = await trx.selectFrom('sandbox_psp_requests').select('result').where('idempotency_key', '=', key).executeTakeFirstOrThrow();
        const parsed = JSON.parse(stored.result ?? 'null') as StoredResult<R> | null;
        return { kind: 'done', result: parsed && parsed.op === op ? parsed.result : reused };
      }
      const out = await effect(trx, claimed.attempts, events);
      if (out.kind === 'done') {
        const stored: StoredResult<R> = { op, result: out.result };
        await trx.updateTable('sandbox_psp_requests').set({ result: JSON.stringify(stored) }).where('idempotency_key', '=', key).execute();
      }
      return out;
    });
    if (outcome.kind === 'unavailable') throw new ProviderUnavailable('sandbox', 'The sandbox PSP is temporarily unavailable (simulated); retry with the same idempotency key.');
    this.#deliver(events);
    return outcome.result;
  }

  #find(trx: Trx, ref: string): Promise<PaymentRow | undefined> {
    return trx.selectFrom('sandbox_psp_payments').selectAll().where('ref', '=', ref).executeTakeFirst();
  }

  #event(type: SandboxEventType, row: PaymentRow, extra: Omit<SandboxWebhookBody['data'], 'payment'> = {}): SandboxWebhookBody {
    const behaviour = tokenBehaviour(row.token);
    const card = behaviour && behaviour.kind !== 'declined' ? { ...behaviour.card } : undefined;
    return {
      id: newId('sbevt'),
      type,
      created: Math.floor(this.#clock.now() / 1000),
      data: {
        payment: {
          ref: row.ref,
          payment_id: row.payment_id,
          order_id: row.order_id,
          amount: Number(row.amount),
          currency: row.currency,
          status: row.status,
          authorized: Number(row.authorized),
          captured: Number(row.captured),
          refunded: Number(row.refunded),
          ...(card && row.status !== 'action_required' && row.status !== 'failed' ? { card } : {}),
          ...(row.status === 'action_required' ? { action_url: this.actionUrl(row.ref) } : {}),
        },
        ...extra,
      },
    };
  }

  /** Signs each event with every secret at the current time and hands it over (after commit). */
  #deliver(events: SandboxWebhookBody[]): void {
    if (!this.#emit) return;
    for (const e of events) {
      const rawBody = Buffer.from(JSON.stringify(e), 'utf8');
      const signature = signPayload(rawBody, this.#secrets, Math.floor(this.#clock.now() / 1000));
      try {
        this.#emit({ rawBody, headers: { 'content-type': 'application/json', [SANDBOX_SIGNATURE_HEADER]: signature }, eventId: e.id, type: e.type });
      } catch {
        // Delivery is the receiver's business (a real PSP's webhooks are asynchronous): the
        // operation is committed and its result stands.
      }
    }
  }
}

// ---- Parsing a webhook body into PaymentEvents (shape-checked; nothing is trusted blindly).

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (o: Obj, k: string): string | undefined => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
const int = (o: Obj, k: string): number | undefined => (Number.isSafeInteger(o[k]) ? (o[k] as number) : undefined);

const malformed = (message: string): WebhookVerdict => ({ ok: false, reason: 'malformed', message });

function toEvents(body: unknown): WebhookVerdict {
  if (!isObj(body)) return malformed('the body is not a JSON object');
  const id = str(body, 'id');
  const type = str(body, 'type');
  const created = int(body, 'created');
  if (!id || !type || created === undefined) return malformed('id, type and created are required');
  const known: string[] = ['payment.authorized', 'payment.action_required', 'payment.failed', 'payment.captured', 'payment.voided', 'refund.succeeded'];
  if (!known.includes(type)) return { ok: true, events: [], ignored: type };
  const data = body.data;
  if (!isObj(data) || !isObj(data.payment)) return malformed('data.payment is required');
  const p = data.payment;
  const ref = str(p, 'ref');
  if (!ref) return malformed('data.payment.ref is required');
  const paymentId = str(p, 'payment_id');
  const base = { eventId: id, providerRef: ref, occurredAt: created * 1000, ...(paymentId ? { paymentId } : {}) };
  const totals = { authorized: int(p, 'authorized'), captured: int(p, 'captured'), refunded: int(p, 'refunded') };

  switch (type) {
    case 'payment.authorized': {
      if (totals.authorized === undefined) return malformed('data.payment.authorized is required');
      let card: CardSummary | undefined;
      if (isObj(p.card)) {
        const brand = str(p.card, 'brand');
        const last4 = str(p.card, 'last4');
        if (brand && last4) card = { brand, last4 };
      }
      return { ok: true, events: [{ ...base, type: 'authorized', authorized: totals.authorized, ...(card ? { card } : {}) }] };
    }
    case 'payment.action_required': {
      const actionUrl = str(p, 'action_url');
      if (actionUrl === undefined) return malformed('data.payment.action_url is required');
      return { ok: true, events: [{ ...base, type: 'action_required', actionUrl }] };
    }
    case 'payment.failed': {
      const f = isObj(data.failure) ? data.failure : {};
      return { ok: true, events: [{ ...base, type: 'failed', code: str(f, 'code') ?? 'failed', message: str(f, 'message') ?? '' }] };
    }
    case 'payment.captured': {
      if (totals.captured === undefined) return malformed('data.payment.captured is required');
      const c = isObj(data.capture) ? data.capture : {};
      const operationId = str(c, 'operation_id');
      const amount = int(c, 'amount');
      const event: PaymentEvent = { ...base, type: 'captured', capturedTotal: totals.captured, ...(operationId ? { operationId } : {}), ...(amount !== undefined ? { amount } : {}) };
      return { ok: true, events: [event] };
    }
    case 'payment.voided':
      return { ok: true, events: [{ ...base, type: 'voided' }] };
    default: {
      // refund.succeeded
      const r = data.refund;
      if (!isObj(r)) return malformed('data.refund is required');
      const refundRef = str(r, 'ref');
      const amount = int(r, 'amount');
      if (!refundRef || amount === undefined) return malformed('data.refund.ref and amount are required');
      const operationId = str(r, 'operation_id');
      const event: PaymentEvent = {
        ...base,
        type: 'refund',
        refundRef,
        amount,
        status: 'succeeded',
        ...(operationId ? { operationId } : {}),
        ...(totals.refunded !== undefined ? { refundedTotal: totals.refunded } : {}),
        ...(totals.captured !== undefined ? { capturedTotal: totals.captured } : {}),
      };
      return { ok: true, events: [event] };
    }
  }
}
