// The Stripe adapter against the local Stripe stand-in (test/support/stripe-standin.ts), through
// the official SDK: operations, idempotency, transient failures, webhook signatures and mapping.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuthorizeRequest, type PaymentEvent, ProviderUnavailable, type WebhookVerdict } from '../../src/payments/provider.ts';
import { StripeProvider } from '../../src/payments/providers/stripe.ts';
import { type Delivery, makeEvent, type StandinEvent, StripeStandin, signatureHeader, signedDelivery } from '../support/stripe-standin.ts';

const SECRET_NEW = 'whsec_new_0123456789abcdef';
const SECRET_OLD = 'whsec_old_fedcba9876543210';

let standin: StripeStandin;
let stripe: StripeProvider;

beforeAll(async () => {
  standin = await StripeStandin.start();
  stripe = new StripeProvider({ ...standin.connection(), webhookSecrets: [SECRET_NEW], timeoutMs: 2_000 });
});
afterAll(async () => {
  await standin.close();
});

let seq = 0;
const key = (label: string): string => `oms-${label}-${++seq}`;
const authReq = (over: Partial<AuthorizeRequest> = {}): AuthorizeRequest => ({
  idempotencyKey: key('auth'),
  paymentId: `pay_${seq}`,
  orderId: 'ord_1',
  amount: 10_000,
  currency: 'EUR',
  token: 'pm_card_visa',
  ...over,
});

async function authorized(over: Partial<AuthorizeRequest> = {}): Promise<string> {
  const r = await stripe.authorize(authReq(over));
  if (r.outcome !== 'authorized') throw new Error(`expected authorized, got ${r.outcome}`);
  return r.providerRef;
}

/** The last request the stand-in received on a route. */
const last = (route: Parameters<StripeStandin['requestsTo']>[0]) => standin.requestsTo(route).at(-1)!;

describe('authorize', () => {
  it('approves: manual capture, multicapture requested, metadata, card summary', async () => {
    const req = authReq({ paymentId: 'pay_A', orderId: 'ord_A' });
    const r = await stripe.authorize(req);
    expect(r).toEqual({ outcome: 'authorized', providerRef: expect.stringMatching(/^pi_/), authorized: 10_000, card: { brand: 'visa', last4: '4242' } });
    const sent = last('POST /v1/payment_intents');
    expect(sent.idempotencyKey).toBe(req.idempotencyKey);
    expect(sent.params).toMatchObject({
      amount: '10000',
      currency: 'eur',
      payment_method: 'pm_card_visa',
      confirm: 'true',
      capture_method: 'manual',
      allowed_payment_method_types: ['card'],
      payment_method_options: { card: { request_multicapture: 'if_available' } },
      metadata: { oms_payment: 'pay_A', oms_order: 'ord_A' },
      expand: ['latest_charge'],
      error_on_requires_action: 'true',
    });
    expect(sent.params.return_url).toBeUndefined();
  });

  it('approves a mastercard', async () => {
    const r = await stripe.authorize(authReq({ token: 'pm_card_mastercard' }));
    expect(r).toMatchObject({ outcome: 'authorized', card: { brand: 'mastercard', last4: '4444' } });
  });

  it('declines (402 card_error): decline_code, message, the PaymentIntent that failed', async () => {
    const r = await stripe.authorize(authReq({ token: 'pm_card_chargeDeclined' }));
    expect(r).toEqual({ outcome: 'declined', providerRef: expect.stringMatching(/^pi_/), code: 'generic_decline', message: 'Your card was declined.' });
    const r2 = await stripe.authorize(authReq({ token: 'pm_card_chargeDeclinedInsufficientFunds' }));
    expect(r2).toMatchObject({ outcome: 'declined', code: 'insufficient_funds', message: 'Your card has insufficient funds.' });
  });

  it('declines invalid requests (400) with their code', async () => {
    expect(await stripe.authorize(authReq({ amount: 49 }))).toMatchObject({ outcome: 'declined', providerRef: null, code: 'amount_too_small' });
    expect(await stripe.authorize(authReq({ amount: 12.5 }))).toMatchObject({ outcome: 'declined', providerRef: null, code: 'parameter_invalid_integer' });
    expect(await stripe.authorize(authReq({ token: 'pm_card_nope' }))).toMatchObject({ outcome: 'declined', providerRef: null, code: 'resource_missing' });
  });

  it('asks for a customer action (3-D Secure) with a return URL, then answers the outcome on retry', async () => {
    const req = authReq({ token: 'pm_card_authenticationRequired', returnUrl: 'https://shop.example/return' });
    const r = await stripe.authorize(req);
    expect(r).toEqual({ outcome: 'action_required', providerRef: expect.stringMatching(/^pi_/), actionUrl: expect.stringContaining('/3ds/') });
    if (r.outcome !== 'action_required') return;
    expect(last('POST /v1/payment_intents').params.return_url).toBe('https://shop.example/return');

    // The customer authenticates; the OMS retries with the same key: the replay is stale, so the
    // adapter reads the PaymentIntent again.
    standin.completeAction(r.providerRef);
    const gets = standin.calls['GET /v1/payment_intents/:id'];
    const again = await stripe.authorize(req);
    expect(again).toEqual({ outcome: 'authorized', providerRef: r.providerRef, authorized: 10_000, card: { brand: 'visa', last4: '3184' } });
    expect(last('POST /v1/payment_intents').replayed).toBe(true);
    expect(standin.calls['GET /v1/payment_intents/:id']).toBe(gets + 1);
  });

  it('declines an authentication it cannot relay (no return URL): authentication_required', async () => {
    const r = await stripe.authorize(authReq({ token: 'pm_card_authenticationRequired' }));
    expect(r).toMatchObject({ outcome: 'declined', code: 'authentication_required' });
  });

  it('an idempotent replay returns the same PaymentIntent and creates nothing', async () => {
    const req = authReq();
    const before = { calls: standin.calls['POST /v1/payment_intents'], created: standin.created.paymentIntents };
    const a = await stripe.authorize(req);
    const b = await stripe.authorize(req);
    expect(b).toEqual(a);
    expect(standin.calls['POST /v1/payment_intents'] - before.calls).toBe(2);
    expect(standin.created.paymentIntents - before.created).toBe(1);
    const [first, second] = standin.requestsTo('POST /v1/payment_intents').slice(-2);
    expect([first.replayed, second.replayed]).toEqual([false, true]);
    expect([first.idempotencyKey, second.idempotencyKey]).toEqual([req.idempotencyKey, req.idempotencyKey]);
  });

  it('a decline is replayed too (the request executed)', async () => {
    const req = authReq({ token: 'pm_card_chargeDeclined' });
    const created = standin.created.paymentIntents;
    const a = await stripe.authorize(req);
    const b = await stripe.authorize(req);
    expect(b).toEqual(a);
    expect(standin.created.paymentIntents - created).toBe(1);
  });

  it('the same key with other parameters is refused (idempotency_error)', async () => {
    const req = authReq();
    await stripe.authorize(req);
    expect(await stripe.authorize({ ...req, amount: 20_000 })).toMatchObject({ outcome: 'declined', code: 'idempotency_error' });
  });

  it('a transient failure (500) throws ProviderUnavailable; the retry with the same key makes one PaymentIntent', async () => {
    const req = authReq();
    const created = standin.created.paymentIntents;
    standin.failNext(1);
    const err = await stripe.authorize(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailable);
    expect((err as ProviderUnavailable).provider).toBe('stripe');
    expect(standin.created.paymentIntents).toBe(created);
    expect(await stripe.authorize(req)).toMatchObject({ outcome: 'authorized' });
    expect(standin.created.paymentIntents - created).toBe(1);
  });

  it('429, a reset connection, a timeout and a rejected API key are all ProviderUnavailable', async () => {
    standin.failNext(1, { status: 429 });
    await expect(stripe.authorize(authReq())).rejects.toBeInstanceOf(ProviderUnavailable);
    standin.failNext(1, { status: 503 });
    await expect(stripe.authorize(authReq())).rejects.toBeInstanceOf(ProviderUnavailable);
    // The SDK retries a closed connection once by itself (same idempotency key); a second one is ours.
    const req = authReq();
    standin.failNext(1, { mode: 'reset' });
    expect(await stripe.authorize(req)).toMatchObject({ outcome: 'authorized' });
    expect(standin.requestsTo('POST /v1/payment_intents').slice(-2).map((r) => [r.idempotencyKey, r.injected])).toEqual([
      [req.idempotencyKey, true],
      [req.idempotencyKey, false],
    ]);
    standin.failNext(2, { mode: 'reset' });
    await expect(stripe.authorize(authReq())).rejects.toBeInstanceOf(ProviderUnavailable);

    const impatient = new StripeProvider({ ...standin.connection(), webhookSecrets: [SECRET_NEW], timeoutMs: 150 });
    standin.failNext(1, { mode: 'hang' });
    await expect(impatient.authorize(authReq())).rejects.toBeInstanceOf(ProviderUnavailable);

    const wrongKey = new StripeProvider({ ...standin.connection(), secretKey: 'sk_test_wrong', webhookSecrets: [SECRET_NEW] });
    await expect(wrongKey.authorize(authReq())).rejects.toThrow(/API key/);
  });
});

describe('capture, void, refund', () => {
  it('captures part (not final, the rest stays capturable), then the rest (final)', async () => {
    const pi = await authorized();
    const k1 = key('cap');
    expect(await stripe.capture({ idempotencyKey: k1, operationId: 'op_c1', providerRef: pi, amount: 4_000, currency: 'EUR', final: false })).toEqual({
      outcome: 'captured',
      amount: 4_000,
    });
    const sent = last('POST /v1/payment_intents/:id/capture');
    expect(sent.idempotencyKey).toBe(k1);
    expect(sent.path).toBe(`/v1/payment_intents/${pi}/capture`);
    expect(sent.params).toEqual({ amount_to_capture: '4000', final_capture: 'false', metadata: { oms_operation: 'op_c1' } });
    expect(standin.paymentIntent(pi)).toMatchObject({ status: 'requires_capture', amount_received: 4_000, amount_capturable: 6_000 });

    expect(await stripe.capture({ idempotencyKey: key('cap'), operationId: 'op_c2', providerRef: pi, amount: 6_000, currency: 'EUR', final: true })).toEqual({
      outcome: 'captured',
      amount: 6_000,
    });
    expect(standin.paymentIntent(pi)).toMatchObject({ status: 'succeeded', amount_received: 10_000, amount_capturable: 0, metadata: { oms_operation: 'op_c2' } });
  });

  it('a final partial capture releases the remainder', async () => {
    const pi = await authorized();
    await stripe.capture({ idempotencyKey: key('cap'), operationId: 'op', providerRef: pi, amount: 3_000, currency: 'EUR', final: true });
    expect(standin.paymentIntent(pi)).toMatchObject({ status: 'succeeded', amount_received: 3_000, amount_capturable: 0 });
  });

  it('a capture above what is capturable fails (amount_too_large)', async () => {
    const pi = await authorized();
    await stripe.capture({ idempotencyKey: key('cap'), operationId: 'op', providerRef: pi, amount: 7_000, currency: 'EUR', final: false });
    const r = await stripe.capture({ idempotencyKey: key('cap'), operationId: 'op', providerRef: pi, amount: 3_001, currency: 'EUR', final: true });
    expect(r).toMatchObject({ outcome: 'failed', code: 'amount_too_large' });
    expect(standin.paymentIntent(pi)).toMatchObject({ amount_received: 7_000, amount_capturable: 3_000 });
  });

  it('a capture retried with its key after a 500 or a lost answer captures once', async () => {
    const pi = await authorized();
    const req = { idempotencyKey: key('cap'), operationId: 'op', providerRef: pi, amount: 2_500, currency: 'EUR', final: false };
    standin.failNext(1);
    await expect(stripe.capture(req)).rejects.toBeInstanceOf(ProviderUnavailable);
    expect(await stripe.capture(req)).toEqual({ outcome: 'captured', amount: 2_500 });
    expect(await stripe.capture(req)).toEqual({ outcome: 'captured', amount: 2_500 });
    expect(last('POST /v1/payment_intents/:id/capture').replayed).toBe(true);
    expect(standin.paymentIntent(pi)).toMatchObject({ amount_received: 2_500, amount_capturable: 7_500 });
  });

  it('a capture of an unknown PaymentIntent fails (resource_missing)', async () => {
    const r = await stripe.capture({ idempotencyKey: key('cap'), operationId: 'op', providerRef: 'pi_missing', amount: 100, currency: 'EUR', final: true });
    expect(r).toMatchObject({ outcome: 'failed', code: 'resource_missing' });
  });

  it('voids; voiding again is still voided; voiding a captured payment fails', async () => {
    const pi = await authorized();
    const k = key('void');
    expect(await stripe.void({ idempotencyKey: k, operationId: 'op_v', providerRef: pi })).toEqual({ outcome: 'voided' });
    expect(last('POST /v1/payment_intents/:id/cancel')).toMatchObject({ idempotencyKey: k, path: `/v1/payment_intents/${pi}/cancel` });
    expect(standin.paymentIntent(pi)).toMatchObject({ status: 'canceled', amount_capturable: 0 });
    expect(await stripe.void({ idempotencyKey: key('void'), operationId: 'op_v2', providerRef: pi })).toEqual({ outcome: 'voided' });

    const captured = await authorized();
    await stripe.capture({ idempotencyKey: key('cap'), operationId: 'op', providerRef: captured, amount: 10_000, currency: 'EUR', final: true });
    expect(await stripe.void({ idempotencyKey: key('void'), operationId: 'op_v3', providerRef: captured })).toMatchObject({
      outcome: 'failed',
      code: 'payment_intent_unexpected_state',
    });
    standin.failNext(1, { status: 502 });
    await expect(stripe.void({ idempotencyKey: key('void'), operationId: 'op_v4', providerRef: captured })).rejects.toBeInstanceOf(ProviderUnavailable);
  });

  it('refunds part, then refuses a refund above captured − refunded', async () => {
    const pi = await authorized();
    await stripe.capture({ idempotencyKey: key('cap'), operationId: 'op', providerRef: pi, amount: 8_000, currency: 'EUR', final: true });
    const k = key('refund');
    const r = await stripe.refund({ idempotencyKey: k, operationId: 'op_r1', providerRef: pi, amount: 3_000, currency: 'EUR', reason: 'requested_by_customer' });
    expect(r).toEqual({ outcome: 'refunded', refundRef: expect.stringMatching(/^re_/), amount: 3_000 });
    expect(last('POST /v1/refunds')).toMatchObject({
      idempotencyKey: k,
      params: { payment_intent: pi, amount: '3000', metadata: { oms_operation: 'op_r1' }, reason: 'requested_by_customer' },
    });

    // An OMS reason Stripe does not know is not sent.
    await stripe.refund({ idempotencyKey: key('refund'), operationId: 'op_r2', providerRef: pi, amount: 1_000, currency: 'EUR', reason: 'damaged_item' });
    expect(last('POST /v1/refunds').params.reason).toBeUndefined();

    const over = await stripe.refund({ idempotencyKey: key('refund'), operationId: 'op_r3', providerRef: pi, amount: 4_001, currency: 'EUR' });
    expect(over).toMatchObject({ outcome: 'failed', code: 'amount_too_large' });
    expect(await stripe.refund({ idempotencyKey: key('refund'), operationId: 'op_r4', providerRef: pi, amount: 4_000, currency: 'EUR' })).toMatchObject({
      outcome: 'refunded',
      amount: 4_000,
    });
  });

  it('a refund of an uncaptured payment fails; pending and failed refunds map; 500 is ProviderUnavailable', async () => {
    const pi = await authorized();
    expect(await stripe.refund({ idempotencyKey: key('refund'), operationId: 'op', providerRef: pi, amount: 100, currency: 'EUR' })).toMatchObject({
      outcome: 'failed',
      code: 'charge_not_refundable',
    });
    await stripe.capture({ idempotencyKey: key('cap'), operationId: 'op', providerRef: pi, amount: 10_000, currency: 'EUR', final: true });
    standin.nextRefundStatus('pending', 'failed');
    expect(await stripe.refund({ idempotencyKey: key('refund'), operationId: 'op', providerRef: pi, amount: 100, currency: 'EUR' })).toEqual({
      outcome: 'pending',
      refundRef: expect.stringMatching(/^re_/),
    });
    expect(await stripe.refund({ idempotencyKey: key('refund'), operationId: 'op', providerRef: pi, amount: 100, currency: 'EUR' })).toMatchObject({
      outcome: 'failed',
      code: 'lost_or_stolen_card',
    });
    standin.failNext(1);
    await expect(stripe.refund({ idempotencyKey: key('refund'), operationId: 'op', providerRef: pi, amount: 100, currency: 'EUR' })).rejects.toBeInstanceOf(ProviderUnavailable);
  });

  it('every POST the stand-in received carried an idempotency key', () => {
    const posts = standin.requests.filter((r) => r.method === 'POST');
    expect(posts.length).toBeGreaterThan(20);
    for (const r of posts) expect(r.idempotencyKey, `${r.route}`).toMatch(/^oms-/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('webhook signatures', () => {
  const NOW = Date.parse('2026-03-01T12:00:00Z');
  const T = NOW / 1000;
  const event = makeEvent(
    'payment_intent.canceled',
    { id: 'pi_sig', object: 'payment_intent', amount: 1000, amount_capturable: 0, amount_received: 0, metadata: { oms_payment: 'pay_sig' }, status: 'canceled' },
    { id: 'evt_sig', created: T - 5 },
  );
  const body = JSON.stringify(event, null, 2);
  const withSecrets = (...secrets: string[]) => new StripeProvider({ secretKey: 'sk_test_x', webhookSecrets: secrets, host: '127.0.0.1', port: 9, protocol: 'http' });
  const sign = (payload: string, secrets: string[], t = T): Delivery => ({
    rawBody: Buffer.from(payload, 'utf8'),
    headers: { 'content-type': 'application/json', 'stripe-signature': signatureHeader(payload, secrets, t) },
  });
  const flipOneByte = (d: Delivery): Delivery => {
    const raw = Buffer.from(d.rawBody);
    const i = raw.indexOf('pay_sig');
    raw[i + 4] = 'S'.charCodeAt(0); // pay_sig → pay_Sig
    return { ...d, rawBody: raw };
  };

  type Vector = { name: string; configured: string[]; delivery: () => { rawBody: Buffer; headers: Record<string, string> }; verdict: 'ok' | Exclude<WebhookVerdict, { ok: true }>['reason'] };
  const vectors: Vector[] = [
    { name: 'valid', configured: [SECRET_NEW], delivery: () => sign(body, [SECRET_NEW]), verdict: 'ok' },
    { name: 'one byte of the body changed', configured: [SECRET_NEW], delivery: () => flipOneByte(sign(body, [SECRET_NEW])), verdict: 'bad_signature' },
    { name: 'wrong secret', configured: [SECRET_NEW], delivery: () => sign(body, ['whsec_someone_else']), verdict: 'bad_signature' },
    { name: 'timestamp −301 s', configured: [SECRET_NEW], delivery: () => sign(body, [SECRET_NEW], T - 301), verdict: 'stale_timestamp' },
    { name: 'timestamp +301 s', configured: [SECRET_NEW], delivery: () => sign(body, [SECRET_NEW], T + 301), verdict: 'stale_timestamp' },
    { name: 'timestamp −300 s (edge, inside)', configured: [SECRET_NEW], delivery: () => sign(body, [SECRET_NEW], T - 300), verdict: 'ok' },
    { name: 'timestamp +300 s (edge, inside)', configured: [SECRET_NEW], delivery: () => sign(body, [SECRET_NEW], T + 300), verdict: 'ok' },
    { name: 'stale AND wrong secret: the signature is judged first', configured: [SECRET_NEW], delivery: () => sign(body, ['whsec_x'], T - 1000), verdict: 'bad_signature' },
    { name: 'rotation: two v1, the new secret configured', configured: [SECRET_NEW], delivery: () => sign(body, [SECRET_OLD, SECRET_NEW]), verdict: 'ok' },
    { name: 'rotation: two v1, only the old secret configured', configured: [SECRET_OLD], delivery: () => sign(body, [SECRET_OLD, SECRET_NEW]), verdict: 'ok' },
    { name: 'rotation: both configured, signed with the new only', configured: [SECRET_OLD, SECRET_NEW], delivery: () => sign(body, [SECRET_NEW]), verdict: 'ok' },
    { name: 'rotation: both configured, signed with the old only', configured: [SECRET_OLD, SECRET_NEW], delivery: () => sign(body, [SECRET_OLD]), verdict: 'ok' },
    { name: 'retired secret: signed with the old only, new configured', configured: [SECRET_NEW], delivery: () => sign(body, [SECRET_OLD]), verdict: 'bad_signature' },
    { name: 'rotation, stale', configured: [SECRET_OLD, SECRET_NEW], delivery: () => sign(body, [SECRET_OLD, SECRET_NEW], T - 301), verdict: 'stale_timestamp' },
    {
      name: 'body re-serialised (JSON.parse → JSON.stringify) instead of raw',
      configured: [SECRET_NEW],
      delivery: () => ({ ...sign(body, [SECRET_NEW]), rawBody: Buffer.from(JSON.stringify(JSON.parse(body))) }),
      verdict: 'bad_signature',
    },
    { name: 'missing header', configured: [SECRET_NEW], delivery: () => ({ rawBody: Buffer.from(body), headers: { 'content-type': 'application/json' } }), verdict: 'missing_signature' },
    { name: 'empty header', configured: [SECRET_NEW], delivery: () => ({ rawBody: Buffer.from(body), headers: { 'stripe-signature': '' } }), verdict: 'missing_signature' },
    { name: 'header without v1', configured: [SECRET_NEW], delivery: () => ({ rawBody: Buffer.from(body), headers: { 'stripe-signature': `t=${T}` } }), verdict: 'malformed' },
    { name: 'no secret configured', configured: [], delivery: () => sign(body, [SECRET_NEW]), verdict: 'bad_signature' },
    { name: 'valid signature, body not JSON', configured: [SECRET_NEW], delivery: () => sign('{"id": "evt_1", ', [SECRET_NEW]), verdict: 'malformed' },
    { name: 'valid signature, JSON but not an event', configured: [SECRET_NEW], delivery: () => sign('[1,2,3]', [SECRET_NEW]), verdict: 'malformed' },
  ];

  it.each(vectors)('$name → $verdict', async ({ configured, delivery, verdict }) => {
    const d = delivery();
    const v = await withSecrets(...configured).parseWebhook(d.rawBody, d.headers, NOW);
    if (verdict === 'ok') {
      expect(v).toEqual({ ok: true, events: [{ eventId: 'evt_sig', providerRef: 'pi_sig', paymentId: 'pay_sig', occurredAt: (T - 5) * 1000, type: 'voided' }] });
    } else {
      expect(v).toMatchObject({ ok: false, reason: verdict });
    }
  });

  it('uses the OMS clock, not the machine clock', async () => {
    const d = signedDelivery(event, { secrets: SECRET_NEW, timestampSec: T });
    // Years away from the machine clock, right on the OMS clock.
    expect(await withSecrets(SECRET_NEW).parseWebhook(d.rawBody, d.headers, NOW + 10_000)).toMatchObject({ ok: true });
    expect(await withSecrets(SECRET_NEW).parseWebhook(d.rawBody, d.headers, NOW + 400_000)).toMatchObject({ ok: false, reason: 'stale_timestamp' });
  });

  it('a header given as an array (several headers) uses the first', async () => {
    const d = sign(body, [SECRET_NEW]);
    expect(await withSecrets(SECRET_NEW).parseWebhook(d.rawBody, { 'stripe-signature': [d.headers['stripe-signature'], 'junk'] }, NOW)).toMatchObject({ ok: true });
  });
});

describe('webhook event mapping', () => {
  /** The stand-in's events since `from`, delivered (signed, at their own time) and mapped. */
  async function deliver(events: StandinEvent[]): Promise<Array<{ type: string; verdict: WebhookVerdict }>> {
    const out: Array<{ type: string; verdict: WebhookVerdict }> = [];
    for (const e of events) {
      const d = signedDelivery(e, { secrets: SECRET_NEW, timestampSec: e.created });
      out.push({ type: e.type, verdict: await stripe.parseWebhook(d.rawBody, d.headers, e.created * 1000) });
    }
    return out;
  }
  const mapped = async (events: StandinEvent[], type: string): Promise<PaymentEvent[]> => {
    const all = await deliver(events.filter((e) => e.type === type));
    expect(all.length, `events of type ${type}`).toBeGreaterThan(0);
    return all.flatMap(({ verdict }) => (verdict.ok ? verdict.events : []));
  };
  const since = (n: number): StandinEvent[] => standin.events.slice(n);

  it('payment_intent.amount_capturable_updated → authorized; created and charge.succeeded are ignored', async () => {
    const from = standin.events.length;
    const pi = await authorized({ paymentId: 'pay_map1' });
    const evts = since(from);
    const [e] = await mapped(evts, 'payment_intent.amount_capturable_updated');
    const source = evts.find((x) => x.type === 'payment_intent.amount_capturable_updated')!;
    expect(e).toEqual({ eventId: source.id, providerRef: pi, paymentId: 'pay_map1', occurredAt: source.created * 1000, type: 'authorized', authorized: 10_000 });
    for (const { type, verdict } of await deliver(evts.filter((x) => x.type === 'payment_intent.created' || x.type === 'charge.succeeded'))) {
      expect(verdict).toEqual({ ok: true, events: [], ignored: type });
    }
  });

  it('payment_intent.requires_action → action_required; payment_failed → failed', async () => {
    let from = standin.events.length;
    const r = await stripe.authorize(authReq({ paymentId: 'pay_map2', token: 'pm_card_authenticationRequired', returnUrl: 'https://shop.example/r' }));
    if (r.outcome !== 'action_required') throw new Error(r.outcome);
    expect(await mapped(since(from), 'payment_intent.requires_action')).toEqual([
      expect.objectContaining({ type: 'action_required', providerRef: r.providerRef, paymentId: 'pay_map2', actionUrl: r.actionUrl }),
    ]);
    from = standin.events.length;
    standin.completeAction(r.providerRef, false);
    expect(await mapped(since(from), 'payment_intent.payment_failed')).toEqual([
      expect.objectContaining({ type: 'failed', providerRef: r.providerRef, paymentId: 'pay_map2', code: 'payment_intent_authentication_failure' }),
    ]);

    from = standin.events.length;
    await stripe.authorize(authReq({ paymentId: 'pay_map3', token: 'pm_card_chargeDeclined' }));
    expect(await mapped(since(from), 'payment_intent.payment_failed')).toEqual([
      expect.objectContaining({ type: 'failed', paymentId: 'pay_map3', code: 'generic_decline', message: 'Your card was declined.' }),
    ]);
  });

  it('charge.captured and payment_intent.succeeded → captured with the captured total', async () => {
    const pi = await authorized({ paymentId: 'pay_map4' });
    let from = standin.events.length;
    await stripe.capture({ idempotencyKey: key('cap'), operationId: 'op_m1', providerRef: pi, amount: 4_000, currency: 'EUR', final: false });
    expect(await mapped(since(from), 'charge.captured')).toEqual([expect.objectContaining({ type: 'captured', providerRef: pi, paymentId: 'pay_map4', capturedTotal: 4_000 })]);
    // After a partial capture, the authorization still covers the whole amount.
    expect(await mapped(since(from), 'payment_intent.amount_capturable_updated')).toEqual([expect.objectContaining({ type: 'authorized', authorized: 10_000 })]);

    from = standin.events.length;
    await stripe.capture({ idempotencyKey: key('cap'), operationId: 'op_m2', providerRef: pi, amount: 5_000, currency: 'EUR', final: true });
    expect(await mapped(since(from), 'charge.captured')).toEqual([expect.objectContaining({ type: 'captured', capturedTotal: 9_000 })]);
    expect(await mapped(since(from), 'payment_intent.succeeded')).toEqual([
      expect.objectContaining({ type: 'captured', providerRef: pi, paymentId: 'pay_map4', operationId: 'op_m2', capturedTotal: 9_000 }),
    ]);
  });

  it('payment_intent.canceled → voided', async () => {
    const pi = await authorized({ paymentId: 'pay_map5' });
    const from = standin.events.length;
    await stripe.void({ idempotencyKey: key('void'), operationId: 'op', providerRef: pi });
    expect(await mapped(since(from), 'payment_intent.canceled')).toEqual([expect.objectContaining({ type: 'voided', providerRef: pi, paymentId: 'pay_map5' })]);
  });

  it('refund.created / refund.updated / charge.refund.updated → refund; charge.refunded without refunds listed is ignored', async () => {
    const pi = await authorized({ paymentId: 'pay_map6' });
    await stripe.capture({ idempotencyKey: key('cap'), operationId: 'op', providerRef: pi, amount: 10_000, currency: 'EUR', final: true });
    let from = standin.events.length;
    const r = await stripe.refund({ idempotencyKey: key('refund'), operationId: 'op_ref1', providerRef: pi, amount: 2_000, currency: 'EUR' });
    if (r.outcome !== 'refunded') throw new Error(r.outcome);
    expect(await mapped(since(from), 'refund.created')).toEqual([
      expect.objectContaining({ type: 'refund', providerRef: pi, refundRef: r.refundRef, amount: 2_000, status: 'succeeded', operationId: 'op_ref1' }),
    ]);
    const [charged] = await deliver(since(from).filter((e) => e.type === 'charge.refunded'));
    expect(charged.verdict).toMatchObject({ ok: true, events: [], ignored: expect.stringContaining('charge.refunded') });

    standin.nextRefundStatus('pending');
    from = standin.events.length;
    const p = await stripe.refund({ idempotencyKey: key('refund'), operationId: 'op_ref2', providerRef: pi, amount: 1_000, currency: 'EUR' });
    if (p.outcome !== 'pending') throw new Error(p.outcome);
    expect(await mapped(since(from), 'refund.created')).toEqual([expect.objectContaining({ refundRef: p.refundRef, status: 'pending', operationId: 'op_ref2' })]);
    from = standin.events.length;
    standin.settleRefund(p.refundRef, 'failed');
    expect(await mapped(since(from), 'refund.updated')).toEqual([expect.objectContaining({ type: 'refund', refundRef: p.refundRef, amount: 1_000, status: 'failed' })]);
    expect(await mapped(since(from), 'charge.refund.updated')).toEqual([expect.objectContaining({ type: 'refund', refundRef: p.refundRef, status: 'failed' })]);
  });

  async function parse(e: StandinEvent): Promise<WebhookVerdict> {
    const d = signedDelivery(e, { secrets: SECRET_NEW, timestampSec: e.created });
    return stripe.parseWebhook(d.rawBody, d.headers, e.created * 1000);
  }

  it('charge.refunded listing its refunds → one refund event each, with the charge totals', async () => {
    const refund = (id: string, amount: number, status: string, op: string) => ({
      id,
      object: 'refund',
      amount,
      status,
      payment_intent: 'pi_cr',
      charge: 'ch_cr',
      metadata: { oms_operation: op },
    });
    const e = makeEvent(
      'charge.refunded',
      {
        id: 'ch_cr',
        object: 'charge',
        amount: 5_000,
        amount_captured: 5_000,
        amount_refunded: 3_000,
        payment_intent: 'pi_cr',
        metadata: { oms_payment: 'pay_cr' },
        refunds: { object: 'list', data: [refund('re_1', 1_000, 'succeeded', 'op_1'), refund('re_2', 2_000, 'pending', 'op_2')], has_more: false },
      },
      { id: 'evt_cr', created: 1_770_000_000 },
    );
    expect(await parse(e)).toEqual({
      ok: true,
      events: [
        { eventId: 'evt_cr', occurredAt: 1_770_000_000_000, providerRef: 'pi_cr', paymentId: 'pay_cr', type: 'refund', refundRef: 're_1', amount: 1_000, status: 'succeeded', refundedTotal: 3_000, capturedTotal: 5_000, operationId: 'op_1' },
        { eventId: 'evt_cr', occurredAt: 1_770_000_000_000, providerRef: 'pi_cr', paymentId: 'pay_cr', type: 'refund', refundRef: 're_2', amount: 2_000, status: 'pending', refundedTotal: 3_000, capturedTotal: 5_000, operationId: 'op_2' },
      ],
    });
  });

  it('refund.failed → refund failed; events done outside the OMS carry no OMS ids; unknown types are ignored', async () => {
    const failed = makeEvent('refund.failed', { id: 're_f', object: 'refund', amount: 700, status: 'failed', payment_intent: 'pi_f', metadata: {} }, { id: 'evt_f', created: 1_770_000_000 });
    expect(await parse(failed)).toEqual({
      ok: true,
      events: [{ eventId: 'evt_f', occurredAt: 1_770_000_000_000, providerRef: 'pi_f', type: 'refund', refundRef: 're_f', amount: 700, status: 'failed' }],
    });
    const canceled = makeEvent('payment_intent.canceled', { id: 'pi_dash', object: 'payment_intent', metadata: {} }, { id: 'evt_d', created: 1_770_000_000 });
    expect(await parse(canceled)).toEqual({ ok: true, events: [{ eventId: 'evt_d', occurredAt: 1_770_000_000_000, providerRef: 'pi_dash', type: 'voided' }] });
    const other = makeEvent('customer.created', { id: 'cus_1', object: 'customer' }, { created: 1_770_000_000 });
    expect(await parse(other)).toEqual({ ok: true, events: [], ignored: 'customer.created' });
  });
});
