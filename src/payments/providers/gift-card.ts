// The built-in gift card (store credit) provider: the retailer is its own payment operator.
// A gift card code is a bearer secret: stored as a SHA-256 hash, shown once when issued, and
// only its last four characters are kept in clear. Authorize holds part of the balance,
// capture debits it, void gives the hold back, refund credits the card.
//
// Each operation is one short transaction of its own (like a call to an outside operator) and
// runs once per idempotency key: the request row is claimed first, so a concurrent or later
// replay returns the stored result and has no second effect.
import { createHash, randomBytes } from 'node:crypto';
import type { Store, Trx } from '../../db/database.ts';
import type { Clock } from '../../shared/clock.ts';
import { newId } from '../../shared/ids.ts';
import type {
  AuthorizeRequest,
  AuthorizeResult,
  CaptureRequest,
  CaptureResult,
  PaymentProvider,
  RefundRequest,
  RefundResult,
  VoidRequest,
  VoidResult,
  WebhookVerdict,
} from '../provider.ts';

export const hashGiftCardCode = (code: string) => createHash('sha256').update(code.trim().toUpperCase()).digest('hex');

/** A new code: 16 characters from an alphabet without look-alikes, grouped by four. */
export function newGiftCardCode(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(16);
  let s = '';
  for (let i = 0; i < 16; i++) s += alphabet[bytes[i] % alphabet.length];
  return `GC-${s.slice(0, 4)}-${s.slice(4, 8)}-${s.slice(8, 12)}-${s.slice(12)}`;
}

export async function issueGiftCard(store: Store, clock: Clock, input: { currency: string; amount: number; code?: string; expiresAt?: number | null }): Promise<{ id: string; code: string; last4: string }> {
  const code = (input.code ?? newGiftCardCode()).trim().toUpperCase();
  const id = newId('gc');
  const now = clock.now();
  const last4 = code.replace(/[^A-Z0-9]/g, '').slice(-4);
  await store.db
    .insertInto('gift_cards')
    .values({ id, code_hash: hashGiftCardCode(code), last4, currency: input.currency, balance: input.amount, held: 0, expires_at: input.expiresAt ?? null, created_at: now, updated_at: now })
    .execute();
  return { id, code, last4 };
}

type Stored<T> = { done: true; result: T } | { done: false };

export class GiftCardProvider implements PaymentProvider {
  readonly name = 'gift_card' as const;
  constructor(private readonly opts: { store: Store; clock: Clock }) {}

  /** Runs `fn` once per key, in one transaction with the claim of the key. */
  private async once<T>(key: string, fn: (trx: Trx, now: number) => Promise<T>): Promise<T> {
    const now = this.opts.clock.now();
    return this.opts.store.db.transaction().execute(async (trx) => {
      const claimed = await trx
        .insertInto('gift_card_requests')
        .values({ idempotency_key: key, result: '', created_at: now })
        .onConflict((oc) => oc.column('idempotency_key').doNothing())
        .returning('idempotency_key')
        .executeTakeFirst();
      if (!claimed) {
        const row = await trx.selectFrom('gift_card_requests').select('result').where('idempotency_key', '=', key).executeTakeFirstOrThrow();
        const stored = JSON.parse(row.result || '{"done":false}') as Stored<T>;
        if (stored.done) return stored.result;
      }
      const result = await fn(trx, now);
      await trx.updateTable('gift_card_requests').set({ result: JSON.stringify({ done: true, result }) }).where('idempotency_key', '=', key).execute();
      return result;
    });
  }

  async authorize(req: AuthorizeRequest): Promise<AuthorizeResult> {
    return this.once(req.idempotencyKey, async (trx, now): Promise<AuthorizeResult> => {
      const card = await trx.selectFrom('gift_cards').selectAll().where('code_hash', '=', hashGiftCardCode(req.token)).executeTakeFirst();
      if (!card) return { outcome: 'declined', providerRef: null, code: 'invalid_gift_card', message: 'No gift card has this code' };
      if (card.expires_at !== null && card.expires_at <= now) return { outcome: 'declined', providerRef: null, code: 'expired_card', message: 'The gift card has expired' };
      if (card.currency !== req.currency) return { outcome: 'declined', providerRef: null, code: 'currency_mismatch', message: `The gift card is in ${card.currency}, the order in ${req.currency}` };
      const held = await trx
        .updateTable('gift_cards')
        .set((eb) => ({ held: eb('held', '+', req.amount), updated_at: now }))
        .where('id', '=', card.id)
        .where((eb) => eb(eb('balance', '-', eb.ref('held')), '>=', req.amount))
        .returning('id')
        .executeTakeFirst();
      if (!held) return { outcome: 'declined', providerRef: null, code: 'insufficient_funds', message: 'The gift card balance is too low' };
      const ref = newId('gch');
      await trx.insertInto('gift_card_holds').values({ id: ref, gift_card_id: card.id, amount: req.amount, created_at: now }).execute();
      return { outcome: 'authorized', providerRef: ref, authorized: req.amount, card: { brand: 'gift_card', last4: card.last4 } };
    });
  }

  async capture(req: CaptureRequest): Promise<CaptureResult> {
    return this.once(req.idempotencyKey, async (trx, now): Promise<CaptureResult> => {
      const hold = await trx
        .updateTable('gift_card_holds')
        .set((eb) => ({ captured: eb('captured', '+', req.amount), released: req.final ? eb(eb('amount', '-', eb.ref('captured')), '-', req.amount) : eb.ref('released') }))
        .where('id', '=', req.providerRef)
        .where((eb) => eb(eb(eb('captured', '+', eb.ref('released')), '+', req.amount), '<=', eb.ref('amount')))
        .returning(['gift_card_id', 'amount', 'captured', 'released'])
        .executeTakeFirst();
      if (!hold) return { outcome: 'failed', code: 'amount_too_large', message: 'The capture exceeds what the hold has left' };
      const release = req.final ? hold.released : 0;
      await trx
        .updateTable('gift_cards')
        .set((eb) => ({ balance: eb('balance', '-', req.amount), held: eb(eb('held', '-', req.amount), '-', release), updated_at: now }))
        .where('id', '=', hold.gift_card_id)
        .execute();
      return { outcome: 'captured', amount: req.amount };
    });
  }

  async void(req: VoidRequest): Promise<VoidResult> {
    return this.once(req.idempotencyKey, async (trx, now): Promise<VoidResult> => {
      const before = await trx.selectFrom('gift_card_holds').selectAll().where('id', '=', req.providerRef).executeTakeFirst();
      if (!before) return { outcome: 'failed', code: 'unknown_hold', message: 'No such gift card hold' };
      const hold = await trx
        .updateTable('gift_card_holds')
        .set((eb) => ({ released: eb('amount', '-', eb.ref('captured')) }))
        .where('id', '=', req.providerRef)
        .where((eb) => eb(eb('captured', '+', eb.ref('released')), '<', eb.ref('amount')))
        .returning(['gift_card_id', 'amount', 'captured', 'released'])
        .executeTakeFirst();
      if (!hold) return { outcome: 'voided' };
      const freed = hold.released - before.released;
      await trx
        .updateTable('gift_cards')
        .set((eb) => ({ held: eb('held', '-', freed), updated_at: now }))
        .where('id', '=', hold.gift_card_id)
        .execute();
      return { outcome: 'voided' };
    });
  }

  async refund(req: RefundRequest): Promise<RefundResult> {
    return this.once(req.idempotencyKey, async (trx, now): Promise<RefundResult> => {
      const hold = await trx
        .updateTable('gift_card_holds')
        .set((eb) => ({ refunded: eb('refunded', '+', req.amount) }))
        .where('id', '=', req.providerRef)
        .where((eb) => eb(eb('refunded', '+', req.amount), '<=', eb.ref('captured')))
        .returning('gift_card_id')
        .executeTakeFirst();
      if (!hold) return { outcome: 'failed', code: 'amount_too_large', message: 'The refund exceeds what was captured' };
      await trx
        .updateTable('gift_cards')
        .set((eb) => ({ balance: eb('balance', '+', req.amount), updated_at: now }))
        .where('id', '=', hold.gift_card_id)
        .execute();
      return { outcome: 'refunded', refundRef: `gcr_${req.operationId}`, amount: req.amount };
    });
  }

  async parseWebhook(): Promise<WebhookVerdict> {
    return { ok: false, reason: 'malformed', message: 'The gift card provider sends no webhooks' };
  }
}
