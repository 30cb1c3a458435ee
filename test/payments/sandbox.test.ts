// The sandbox PSP: each test token's outcome, idempotency (replays, a transient outage, the
// same key in parallel), 3-D Secure, captures, voids, refunds, 20 parallel refunds that must
// never exceed what was captured, and its signed webhooks parsed back into PaymentEvents. Then
// the signature scheme's vectors (rotation, tampering, staleness, re-serialisation).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AuthorizeResult, type PaymentEvent, ProviderUnavailable } from '../../src/payments/provider.ts';
import { SANDBOX_TOKENS, type SandboxDelivery, SandboxProvider, type SandboxWebhookBody } from '../../src/payments/providers/sandbox.ts';
import { signPayload, verifySignature } from '../../src/payments/signature.ts';
import { BACKENDS, createTestEnv, type TestEnv } from '../support/backends.ts';

const SECRET = 'whsec_sandbox_test';
const key = (label: string): string => `${label}-${randomUUID()}`;

for (const backend of BACKENDS)
  describe(`sandbox PSP on ${backend}`, () => {
    let env: TestEnv;
    let psp: SandboxProvider;
    let sent: SandboxDelivery[];

    beforeAll(async () => {
      env = await createTestEnv(backend);
    });
    afterAll(async () => env?.close());
    beforeEach(() => {
      sent = [];
      psp = new SandboxProvider({ store: env.ctx.store, clock: env.clock, secrets: [SECRET], actionBaseUrl: 'https://oms.test', emit: (d) => sent.push(d) });
    });

    const authorize = (token: string, over: { amount?: number; idempotencyKey?: string; paymentId?: string } = {}): Promise<AuthorizeResult> =>
      psp.authorize({ idempotencyKey: over.idempotencyKey ?? key('auth'), paymentId: over.paymentId ?? key('pay'), orderId: 'ord_1', amount: over.amount ?? 10_000, currency: 'EUR', token });
    const authorized = async (amount = 10_000): Promise<string> => {
      const r = await authorize('tok_sandbox_visa', { amount });
      if (r.outcome !== 'authorized') throw new Error(`expected authorized, got ${r.outcome}`);
      return r.providerRef;
    };
    const capture = (providerRef: string, amount: number, final: boolean, idempotencyKey = key('cap')) =>
      psp.capture({ idempotencyKey, operationId: key('op'), providerRef, amount, currency: 'EUR', final });
    const refund = (providerRef: string, amount: number, idempotencyKey = key('ref'), provider = psp) =>
      provider.refund({ idempotencyKey, operationId: key('op'), providerRef, amount, currency: 'EUR' });
    const types = (): string[] => sent.map((d) => d.type);
    const body = (d: SandboxDelivery): SandboxWebhookBody => JSON.parse(d.rawBody.toString('utf8')) as SandboxWebhookBody;
    const row = (ref: string) => env.ctx.store.db.selectFrom('sandbox_psp_payments').selectAll().where('ref', '=', ref).executeTakeFirstOrThrow();

    describe('test tokens', () => {
      it.each([
        ['tok_sandbox_visa', { outcome: 'authorized', authorized: 10_000, card: { brand: 'visa', last4: '4242' } }, ['payment.authorized']],
        ['tok_sandbox_mastercard', { outcome: 'authorized', authorized: 10_000, card: { brand: 'mastercard', last4: '4444' } }, ['payment.authorized']],
        ['tok_sandbox_decline', { outcome: 'declined', code: 'card_declined' }, ['payment.failed']],
        ['tok_sandbox_insufficient_funds', { outcome: 'declined', code: 'insufficient_funds' }, ['payment.failed']],
        ['tok_sandbox_3ds', { outcome: 'action_required' }, ['payment.action_required']],
        ['tok_unknown', { outcome: 'declined', code: 'invalid_payment_method', providerRef: null }, []],
        ['constructor', { outcome: 'declined', code: 'invalid_payment_method', providerRef: null }, []],
      ])('%s', async (token, expected, webhooks) => {
        const r = await authorize(token);
        expect(r).toMatchObject(expected);
        if (!('providerRef' in expected)) expect(r.providerRef).toMatch(/^sbpay_[0-9A-Z]{26}$/);
        if (r.outcome === 'action_required') expect(r.actionUrl).toBe(`https://oms.test/sandbox/actions/${r.providerRef}`);
        expect(types()).toEqual(webhooks);
      });

      it('exports the token table', () => {
        expect(Object.keys(SANDBOX_TOKENS).sort()).toEqual(
          ['tok_sandbox_3ds', 'tok_sandbox_decline', 'tok_sandbox_insufficient_funds', 'tok_sandbox_mastercard', 'tok_sandbox_transient', 'tok_sandbox_visa'].sort(),
        );
      });

      it('declines a bad amount without creating anything', async () => {
        expect(await authorize('tok_sandbox_visa', { amount: 0 })).toMatchObject({ outcome: 'declined', code: 'invalid_amount', providerRef: null });
        expect(await authorize('tok_sandbox_visa', { amount: 1.5 })).toMatchObject({ outcome: 'declined', code: 'invalid_amount' });
        expect(sent).toEqual([]);
      });
    });

    describe('idempotency', () => {
      it('tok_sandbox_transient: the first call throws, a retry with the same key authorizes, another key starts over', async () => {
        const k = key('transient');
        const paymentId = key('pay');
        await expect(authorize('tok_sandbox_transient', { idempotencyKey: k, paymentId })).rejects.toBeInstanceOf(ProviderUnavailable);
        expect(sent).toEqual([]);
        const req = await env.ctx.store.db.selectFrom('sandbox_psp_requests').selectAll().where('idempotency_key', '=', k).executeTakeFirstOrThrow();
        expect(req).toMatchObject({ attempts: 1, result: null });
        const retry = await authorize('tok_sandbox_transient', { idempotencyKey: k, paymentId });
        expect(retry).toMatchObject({ outcome: 'authorized', authorized: 10_000, card: { brand: 'visa', last4: '4242' } });
        expect(await authorize('tok_sandbox_transient', { idempotencyKey: k, paymentId })).toEqual(retry);
        expect(types()).toEqual(['payment.authorized']);
        const after = await env.ctx.store.db.selectFrom('sandbox_psp_requests').selectAll().where('idempotency_key', '=', k).executeTakeFirstOrThrow();
        expect(after.attempts).toBe(2);

        await expect(authorize('tok_sandbox_transient', { idempotencyKey: key('transient') })).rejects.toBeInstanceOf(ProviderUnavailable);
      });

      it('a replay with the same key returns the stored result: one payment, one webhook', async () => {
        const k = key('replay');
        const paymentId = key('pay');
        const first = await authorize('tok_sandbox_visa', { idempotencyKey: k, paymentId });
        const again = await authorize('tok_sandbox_visa', { idempotencyKey: k, paymentId });
        expect(again).toEqual(first);
        const rows = await env.ctx.store.db.selectFrom('sandbox_psp_payments').select('ref').where('payment_id', '=', paymentId).execute();
        expect(rows).toHaveLength(1);
        expect(sent).toHaveLength(1);

        // A replayed capture / refund does not move money twice.
        const ref = first.providerRef as string;
        const ck = key('cap');
        expect(await capture(ref, 4_000, false, ck)).toEqual({ outcome: 'captured', amount: 4_000 });
        expect(await capture(ref, 4_000, false, ck)).toEqual({ outcome: 'captured', amount: 4_000 });
        const rk = key('ref');
        const r1 = await refund(ref, 1_000, rk);
        expect(await refund(ref, 1_000, rk)).toEqual(r1);
        expect(await row(ref)).toMatchObject({ captured: 4_000, refunded: 1_000 });
        expect(types()).toEqual(['payment.authorized', 'payment.captured', 'refund.succeeded']);
      });

      it('the same key in parallel does the work once', async () => {
        const k = key('parallel');
        const paymentId = key('pay');
        const results = await Promise.all(Array.from({ length: 8 }, () => authorize('tok_sandbox_visa', { idempotencyKey: k, paymentId })));
        for (const r of results) expect(r).toEqual(results[0]);
        const rows = await env.ctx.store.db.selectFrom('sandbox_psp_payments').select('ref').where('payment_id', '=', paymentId).execute();
        expect(rows).toHaveLength(1);
        expect(sent).toHaveLength(1);
      });

      it('a key reused for another kind of call does nothing', async () => {
        const ref = await authorized();
        const k = key('auth');
        await authorize('tok_sandbox_visa', { idempotencyKey: k });
        expect(await capture(ref, 100, false, k)).toMatchObject({ outcome: 'failed', code: 'idempotency_key_reused' });
        expect((await row(ref)).captured).toBe(0);
      });
    });

    describe('3-D Secure', () => {
      it('approve authorizes once; completing again changes nothing', async () => {
        const r = await authorize('tok_sandbox_3ds', { amount: 7_500 });
        const ref = r.providerRef as string;
        expect(await capture(ref, 100, false)).toMatchObject({ outcome: 'failed', code: 'invalid_state' });
        expect(await psp.completeAction(ref, 'approve')).toEqual({ ok: true, status: 'authorized' });
        expect(await psp.completeAction(ref, 'approve')).toEqual({ ok: false, status: 'authorized' });
        expect(await psp.completeAction(ref, 'decline')).toEqual({ ok: false, status: 'authorized' });
        expect(await row(ref)).toMatchObject({ status: 'authorized', authorized: 7_500 });
        expect(types()).toEqual(['payment.action_required', 'payment.authorized']);
        expect(body(sent[1]).data.payment.card).toEqual({ brand: 'visa', last4: '3220' });
        expect(await capture(ref, 7_500, true)).toEqual({ outcome: 'captured', amount: 7_500 });
      });

      it('decline fails the payment; completing again changes nothing', async () => {
        const ref = (await authorize('tok_sandbox_3ds')).providerRef as string;
        expect(await psp.completeAction(ref, 'decline')).toEqual({ ok: true, status: 'failed' });
        expect(await psp.completeAction(ref, 'approve')).toEqual({ ok: false, status: 'failed' });
        expect(await row(ref)).toMatchObject({ status: 'failed', authorized: 0 });
        expect(types()).toEqual(['payment.action_required', 'payment.failed']);
        expect(body(sent[1]).data.failure).toMatchObject({ code: 'authentication_failed' });
        expect(await psp.completeAction('sbpay_nope', 'approve')).toEqual({ ok: false, status: 'not_found' });
      });
    });

    describe('capture, void, refund', () => {
      it('captures partially, then finally (the rest is released)', async () => {
        const ref = await authorized(10_000);
        expect(await capture(ref, 3_000, false)).toEqual({ outcome: 'captured', amount: 3_000 });
        expect(await capture(ref, 2_000, false)).toEqual({ outcome: 'captured', amount: 2_000 });
        expect(await row(ref)).toMatchObject({ status: 'partially_captured', captured: 5_000 });
        expect(await capture(ref, 2_000, true)).toEqual({ outcome: 'captured', amount: 2_000 });
        expect(await row(ref)).toMatchObject({ status: 'captured', authorized: 10_000, captured: 7_000 });
        expect(await capture(ref, 1_000, false)).toMatchObject({ outcome: 'failed', code: 'invalid_state' });
        const captured = sent.filter((d) => d.type === 'payment.captured').map((d) => body(d));
        expect(captured.map((b) => [b.data.capture?.amount, b.data.payment.captured])).toEqual([
          [3_000, 3_000],
          [2_000, 5_000],
          [2_000, 7_000],
        ]);
      });

      it('a final capture of 0 closes a partly captured payment', async () => {
        const ref = await authorized(10_000);
        expect(await capture(ref, 0, true)).toMatchObject({ outcome: 'failed', code: 'invalid_amount' });
        await capture(ref, 4_000, false);
        expect(await capture(ref, 0, true)).toEqual({ outcome: 'captured', amount: 0 });
        expect(await row(ref)).toMatchObject({ status: 'captured', captured: 4_000 });
      });

      it('refuses an over-capture, a capture of a declined payment, of an unknown ref, in another currency', async () => {
        const ref = await authorized(10_000);
        await capture(ref, 6_000, false);
        expect(await capture(ref, 4_001, false)).toMatchObject({ outcome: 'failed', code: 'amount_too_large' });
        expect(await capture(ref, 4_001, true)).toMatchObject({ outcome: 'failed', code: 'amount_too_large' });
        expect((await row(ref)).captured).toBe(6_000);
        const declined = (await authorize('tok_sandbox_decline')).providerRef as string;
        expect(await capture(declined, 100, true)).toMatchObject({ outcome: 'failed', code: 'invalid_state' });
        expect(await capture('sbpay_nope', 100, true)).toMatchObject({ outcome: 'failed', code: 'not_found' });
        expect(await psp.capture({ idempotencyKey: key('cap'), operationId: 'op', providerRef: ref, amount: 100, currency: 'USD', final: false })).toMatchObject({
          outcome: 'failed',
          code: 'currency_mismatch',
        });
      });

      it('voids an uncaptured payment, not a captured one', async () => {
        const ref = await authorized();
        expect(await psp.void({ idempotencyKey: key('void'), operationId: 'op', providerRef: ref })).toEqual({ outcome: 'voided' });
        expect((await row(ref)).status).toBe('voided');
        expect(await capture(ref, 100, true)).toMatchObject({ outcome: 'failed', code: 'invalid_state' });
        // Voiding again (another key): the effect holds, no second webhook.
        expect(await psp.void({ idempotencyKey: key('void'), operationId: 'op', providerRef: ref })).toEqual({ outcome: 'voided' });
        expect(types()).toEqual(['payment.authorized', 'payment.voided']);

        // After a partial capture, a void releases the rest and closes the payment.
        const partial = await authorized();
        await capture(partial, 100, false);
        expect(await psp.void({ idempotencyKey: key('void'), operationId: 'op', providerRef: partial })).toEqual({ outcome: 'voided' });
        expect((await row(partial)).status).toBe('captured');
        expect(await capture(partial, 100, false)).toMatchObject({ outcome: 'failed' });
        const captured = await authorized();
        await capture(captured, 100, true);
        expect(await psp.void({ idempotencyKey: key('void'), operationId: 'op', providerRef: captured })).toMatchObject({ outcome: 'failed', code: 'already_captured' });
        const declined = (await authorize('tok_sandbox_decline')).providerRef as string;
        expect(await psp.void({ idempotencyKey: key('void'), operationId: 'op', providerRef: declined })).toMatchObject({ outcome: 'failed', code: 'invalid_state' });
      });

      it('refunds partially and refuses an over-refund', async () => {
        const ref = await authorized(10_000);
        expect(await refund(ref, 100)).toMatchObject({ outcome: 'failed', code: 'amount_too_large' });
        await capture(ref, 8_000, true);
        const r = await refund(ref, 3_000);
        expect(r).toMatchObject({ outcome: 'refunded', amount: 3_000 });
        if (r.outcome === 'refunded') expect(r.refundRef).toMatch(/^sbre_/);
        expect(await refund(ref, 5_001)).toMatchObject({ outcome: 'failed', code: 'amount_too_large' });
        expect(await refund(ref, 5_000)).toMatchObject({ outcome: 'refunded', amount: 5_000 });
        expect(await refund(ref, 1)).toMatchObject({ outcome: 'failed', code: 'amount_too_large' });
        expect(await row(ref)).toMatchObject({ captured: 8_000, refunded: 8_000 });
        const refunds = sent.filter((d) => d.type === 'refund.succeeded').map((d) => body(d).data);
        expect(refunds.map((d) => [d.refund?.amount, d.payment.refunded, d.payment.captured])).toEqual([
          [3_000, 3_000, 8_000],
          [5_000, 8_000, 8_000],
        ]);
      });

      it('20 parallel refunds of 10% each: at most 10 succeed, never more than captured', async () => {
        const ref = await authorized(10_000);
        await capture(ref, 10_000, true);
        // Half of them through another OMS process (its own pool on PostgreSQL).
        const peer = await env.openPeer();
        const other = new SandboxProvider({ store: peer.store, clock: env.clock, secrets: [SECRET], emit: (d) => sent.push(d) });
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => refund(ref, 1_000, key(`par${i}`), i % 2 ? other : psp)));
        const ok = results.filter((r) => r.outcome === 'refunded');
        expect(ok).toHaveLength(10);
        for (const r of results) if (r.outcome === 'failed') expect(r.code).toBe('amount_too_large');
        const sum = ok.reduce((s, r) => s + (r.outcome === 'refunded' ? r.amount : 0), 0);
        expect(sum).toBe(10_000);
        expect(await row(ref)).toMatchObject({ captured: 10_000, refunded: 10_000 });
        const totals = sent.filter((d) => d.type === 'refund.succeeded').map((d) => body(d).data.payment.refunded);
        expect(totals).toHaveLength(10);
        expect(Math.max(...totals)).toBe(10_000);
        expect(new Set(totals).size).toBe(10);
      });
    });

    describe('webhooks', () => {
      const parseAll = async (deliveries: SandboxDelivery[], now = env.clock.now()): Promise<PaymentEvent[]> => {
        const out: PaymentEvent[] = [];
        for (const d of deliveries) {
          const v = await psp.parseWebhook(d.rawBody, d.headers, now);
          if (!v.ok) throw new Error(`${v.reason}: ${v.message}`);
          out.push(...v.events);
        }
        return out;
      };

      it('every emitted webhook parses back into the expected event', async () => {
        const paymentId = key('pay');
        const auth = await authorize('tok_sandbox_visa', { paymentId, amount: 10_000 });
        const ref = auth.providerRef as string;
        env.clock.advance(60_000);
        await psp.capture({ idempotencyKey: key('cap'), operationId: 'op_cap_1', providerRef: ref, amount: 6_000, currency: 'EUR', final: true });
        const r = await psp.refund({ idempotencyKey: key('ref'), operationId: 'op_ref_1', providerRef: ref, amount: 2_500, currency: 'EUR' });
        const refundRef = r.outcome === 'refunded' ? r.refundRef : '';
        const declined = await authorize('tok_sandbox_insufficient_funds', { paymentId: 'pay_declined' });
        const threeDs = await authorize('tok_sandbox_3ds', { paymentId: 'pay_3ds', amount: 500 });
        await psp.completeAction(threeDs.providerRef as string, 'approve');
        const voidable = await authorize('tok_sandbox_mastercard', { paymentId: 'pay_void', amount: 900 });
        await psp.void({ idempotencyKey: key('void'), operationId: 'op_void', providerRef: voidable.providerRef as string });

        for (const d of sent) {
          expect(d.headers['sandbox-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
          expect(d.eventId).toMatch(/^sbevt_/);
          expect(body(d).id).toBe(d.eventId);
        }
        const t0 = Date.parse('2026-06-01T10:00:00Z');
        const t1 = t0 + 60_000;
        const events = await parseAll(sent);
        expect(events).toEqual([
          { eventId: sent[0].eventId, providerRef: ref, paymentId, occurredAt: t0, type: 'authorized', authorized: 10_000, card: { brand: 'visa', last4: '4242' } },
          { eventId: sent[1].eventId, providerRef: ref, paymentId, occurredAt: t1, type: 'captured', operationId: 'op_cap_1', amount: 6_000, capturedTotal: 6_000 },
          { eventId: sent[2].eventId, providerRef: ref, paymentId, occurredAt: t1, type: 'refund', operationId: 'op_ref_1', refundRef, amount: 2_500, status: 'succeeded', refundedTotal: 2_500, capturedTotal: 6_000 },
          { eventId: sent[3].eventId, providerRef: declined.providerRef, paymentId: 'pay_declined', occurredAt: t1, type: 'failed', code: 'insufficient_funds', message: expect.any(String) },
          { eventId: sent[4].eventId, providerRef: threeDs.providerRef, paymentId: 'pay_3ds', occurredAt: t1, type: 'action_required', actionUrl: `https://oms.test/sandbox/actions/${threeDs.providerRef}` },
          { eventId: sent[5].eventId, providerRef: threeDs.providerRef, paymentId: 'pay_3ds', occurredAt: t1, type: 'authorized', authorized: 500, card: { brand: 'visa', last4: '3220' } },
          { eventId: sent[6].eventId, providerRef: voidable.providerRef, paymentId: 'pay_void', occurredAt: t1, type: 'authorized', authorized: 900, card: { brand: 'mastercard', last4: '4444' } },
          { eventId: sent[7].eventId, providerRef: voidable.providerRef, paymentId: 'pay_void', occurredAt: t1, type: 'voided' },
        ]);
        env.clock.set(t0);
      });

      it('signs with every secret (rotation) and verifies with any', async () => {
        const rotating = new SandboxProvider({ store: env.ctx.store, clock: env.clock, secrets: ['old', 'new'], emit: (d) => sent.push(d) });
        await rotating.authorize({ idempotencyKey: key('auth'), paymentId: 'p', orderId: 'o', amount: 100, currency: 'EUR', token: 'tok_sandbox_visa' });
        const d = sent[0];
        expect(d.headers['sandbox-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
        for (const secrets of [['old'], ['new'], ['new', 'old']]) {
          const receiver = new SandboxProvider({ store: env.ctx.store, clock: env.clock, secrets });
          expect((await receiver.parseWebhook(d.rawBody, d.headers, env.clock.now())).ok).toBe(true);
        }
        const stranger = new SandboxProvider({ store: env.ctx.store, clock: env.clock, secrets: ['other'] });
        expect(await stranger.parseWebhook(d.rawBody, d.headers, env.clock.now())).toMatchObject({ ok: false, reason: 'bad_signature' });
      });

      it('rejects a tampered, stale, unsigned or re-serialised webhook', async () => {
        await authorize('tok_sandbox_visa');
        const d = sent[0];
        const now = env.clock.now();
        const tampered = Buffer.from(d.rawBody.toString('utf8').replace('"amount":10000', '"amount":10001'));
        expect(await psp.parseWebhook(tampered, d.headers, now)).toMatchObject({ ok: false, reason: 'bad_signature' });
        expect(await psp.parseWebhook(d.rawBody, d.headers, now + 301_000)).toMatchObject({ ok: false, reason: 'stale_timestamp' });
        expect(await psp.parseWebhook(d.rawBody, {}, now)).toMatchObject({ ok: false, reason: 'missing_signature' });
        const reserialised = Buffer.from(JSON.stringify(JSON.parse(d.rawBody.toString('utf8')), null, 2));
        expect(await psp.parseWebhook(reserialised, d.headers, now)).toMatchObject({ ok: false, reason: 'bad_signature' });
        // Header names arrive lower-cased (Node); an array value takes its first element.
        expect((await psp.parseWebhook(d.rawBody, { 'sandbox-signature': [d.headers['sandbox-signature']] }, now)).ok).toBe(true);
      });

      it('a signed body that is not JSON is malformed; an unknown type is ignored', async () => {
        const now = env.clock.now();
        const ts = Math.floor(now / 1000);
        const bad = Buffer.from('{"id":"sbevt_1",');
        expect(await psp.parseWebhook(bad, { 'sandbox-signature': signPayload(bad, [SECRET], ts) }, now)).toMatchObject({ ok: false, reason: 'malformed' });
        const unknown = Buffer.from(JSON.stringify({ id: 'sbevt_2', type: 'payment.disputed', created: ts, data: {} }));
        expect(await psp.parseWebhook(unknown, { 'sandbox-signature': signPayload(unknown, [SECRET], ts) }, now)).toEqual({ ok: true, events: [], ignored: 'payment.disputed' });
        const noPayment = Buffer.from(JSON.stringify({ id: 'sbevt_3', type: 'payment.voided', created: ts, data: {} }));
        expect(await psp.parseWebhook(noPayment, { 'sandbox-signature': signPayload(noPayment, [SECRET], ts) }, now)).toMatchObject({ ok: false, reason: 'malformed' });
      });
    });
  });

describe('webhook signature vectors', () => {
  const NOW = Date.parse('2026-06-01T10:00:00Z');
  const TS = NOW / 1000;
  const BODY = Buffer.from('{"id":"sbevt_01","type":"payment.captured","data":{"amount":1200}}');
  const flip = Buffer.from(BODY);
  flip[BODY.indexOf('1200')] = '2'.charCodeAt(0);
  const reserialised = Buffer.from(JSON.stringify(JSON.parse(BODY.toString('utf8')), null, 1));
  const rotated = signPayload(BODY, ['whsec_old', 'whsec_new'], TS);

  type Vector = [name: string, body: Buffer, header: string | undefined, secrets: string[], verdict: 'ok' | 'missing_signature' | 'bad_signature' | 'stale_timestamp' | 'malformed'];
  const vectors: Vector[] = [
    ['valid', BODY, signPayload(BODY, ['s1'], TS), ['s1'], 'ok'],
    ['valid, string body signed', BODY, signPayload(BODY.toString('utf8'), ['s1'], TS), ['s1'], 'ok'],
    ['one byte of the body changed', flip, signPayload(BODY, ['s1'], TS), ['s1'], 'bad_signature'],
    ['wrong secret', BODY, signPayload(BODY, ['s1'], TS), ['s2'], 'bad_signature'],
    ['no secret configured', BODY, signPayload(BODY, ['s1'], TS), [], 'bad_signature'],
    ['timestamp −300 s (at the edge)', BODY, signPayload(BODY, ['s1'], TS - 300), ['s1'], 'ok'],
    ['timestamp +300 s (at the edge)', BODY, signPayload(BODY, ['s1'], TS + 300), ['s1'], 'ok'],
    ['timestamp −301 s', BODY, signPayload(BODY, ['s1'], TS - 301), ['s1'], 'stale_timestamp'],
    ['timestamp +301 s', BODY, signPayload(BODY, ['s1'], TS + 301), ['s1'], 'stale_timestamp'],
    ['stale and forged: the signature is checked first', BODY, signPayload(BODY, ['s1'], TS - 301), ['s2'], 'bad_signature'],
    ['timestamp altered in the header', BODY, signPayload(BODY, ['s1'], TS).replace(`t=${TS}`, `t=${TS + 1}`), ['s1'], 'bad_signature'],
    ['rotation: verifier has only the new secret', BODY, rotated, ['whsec_new'], 'ok'],
    ['rotation: verifier has only the old secret', BODY, rotated, ['whsec_old'], 'ok'],
    ['rotation: verifier has both', BODY, rotated, ['whsec_new', 'whsec_old'], 'ok'],
    ['rotation: verifier has neither', BODY, rotated, ['whsec_other'], 'bad_signature'],
    ['re-serialised body', reserialised, signPayload(BODY, ['s1'], TS), ['s1'], 'bad_signature'],
    ['missing header', BODY, undefined, ['s1'], 'missing_signature'],
    ['empty header', BODY, '', ['s1'], 'missing_signature'],
    ['garbage header', BODY, 'garbage', ['s1'], 'malformed'],
    ['no timestamp', BODY, signPayload(BODY, ['s1'], TS).replace(/^t=\d+,/, ''), ['s1'], 'malformed'],
    ['non-numeric timestamp', BODY, signPayload(BODY, ['s1'], TS).replace(/^t=\d+/, 't=soon'), ['s1'], 'malformed'],
    ['no v1', BODY, `t=${TS}`, ['s1'], 'malformed'],
    ['v1 not hex', BODY, `t=${TS},v1=zz`, ['s1'], 'bad_signature'],
    ['v1 truncated', BODY, signPayload(BODY, ['s1'], TS).slice(0, -2), ['s1'], 'bad_signature'],
    ['only a v0 signature', BODY, signPayload(BODY, ['s1'], TS).replace('v1=', 'v0='), ['s1'], 'malformed'],
  ];

  it.each(vectors)('%s', (_name, body, header, secrets, verdict) => {
    const v = verifySignature(body, header, secrets, NOW);
    expect(v.ok ? 'ok' : v.reason).toBe(verdict);
  });

  it('signs one v1 per secret, HMAC-SHA256 over t.body', () => {
    expect(signPayload('{}', ['a', 'b', 'c'], TS).split(',')).toHaveLength(4);
    // Reference value computed with `openssl dgst -sha256 -hmac secret`: HMAC-SHA256('secret', '1700000000.{}')
    expect(signPayload('{}', ['secret'], 1_700_000_000)).toBe('t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163');
    expect(() => signPayload('{}', [], TS)).toThrow();
  });

  it('honours a custom tolerance', () => {
    const header = signPayload(BODY, ['s1'], TS - 61);
    expect(verifySignature(BODY, header, ['s1'], NOW, 60)).toMatchObject({ ok: false, reason: 'stale_timestamp' });
    expect(verifySignature(BODY, header, ['s1'], NOW, 61)).toEqual({ ok: true });
  });
});
