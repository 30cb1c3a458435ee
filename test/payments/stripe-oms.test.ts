// The OMS with the Stripe adapter, against the local Stripe stand-in (not Stripe itself), on
// every backend: an order authorized with a PaymentIntent (manual capture), validated, shipped
// and captured, refunded in part; every event Stripe would send delivered twice, shuffled, with
// a rotated secret, changes nothing more; a decline and a 3-D Secure step.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/keys.ts';
import { StripeProvider } from '../../src/payments/providers/stripe.ts';
import { closeBalanced, expectError, type Json, seedStock } from '../api/helpers.ts';
import { type ApiEnv, BACKENDS, createApiEnv } from '../support/backends.ts';
import { homeOrderBody, smallNetwork } from '../support/fixtures.ts';
import { signedDelivery, StripeStandin } from '../support/stripe-standin.ts';

const OLD_SECRET = 'whsec_old_test';
const NEW_SECRET = 'whsec_new_test';

describe.each(BACKENDS)('the OMS on Stripe (stand-in) on %s', (backend) => {
  let standin: StripeStandin;
  let env: ApiEnv;
  let web: string;
  let wms: string;

  beforeAll(async () => {
    standin = await StripeStandin.start();
  });
  afterAll(async () => standin?.close());

  beforeEach(async () => {
    env = await createApiEnv(backend);
    await smallNetwork(env.ctx);
    web = (await createApiKey(env.ctx, { name: 'web', role: 'channel', channel: 'web' })).secret;
    wms = (await createApiKey(env.ctx, { name: 'wms', role: 'integration', locations: ['WH1'] })).secret;
    env.clock.set(Date.now());
    await seedStock(env, 'WH1', new Date(env.clock.now() - 500).toISOString(), [{ sku: 'A1', on_hand: 50 }]);
    // A secret rotation in progress: the OMS accepts the new and the old secret.
    env.ctx.payments.use(new StripeProvider({ ...standin.connection(), webhookSecrets: [NEW_SECRET, OLD_SECRET] }));
    env.ctx.payments.settings.cardProvider = 'stripe';
    env.ctx.payments.settings.capturePolicy = 'on_shipment';
    standin.resetCounters();
  });

  afterEach(() => closeBalanced(env));

  const capture = async (ref: string, units: number): Promise<Json> => {
    const r = await env.app.inject({ method: 'POST', url: '/orders', headers: env.auth(web), payload: homeOrderBody(ref, [['A1', units, 2000]]) });
    expect(r.statusCode, r.body).toBe(201);
    return r.json();
  };
  const pay = (orderId: string, body: object) => env.app.inject({ method: 'POST', url: `/orders/${orderId}/payments`, headers: env.auth(web), payload: body });
  const payment = async (orderId: string): Promise<Json> => (await env.app.inject({ method: 'GET', url: `/orders/${orderId}/payments`, headers: env.auth(web) })).json().payments[0];
  const hook = (event: object, secrets: string[]) => {
    const d = signedDelivery(event, { secrets, timestampSec: Math.floor(env.clock.now() / 1000) });
    return env.app.inject({ method: 'POST', url: '/webhooks/payments/stripe', headers: d.headers, payload: d.rawBody });
  };

  it('authorize → validated → shipped → captured → partial refund; every event twice, shuffled, changes nothing more', async () => {
    const o = await capture('STRIPE-1', 2);
    const r = await pay(o.id, { method: 'card', amount: 4500, token: 'pm_card_visa' });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json().payment).toMatchObject({ provider: 'stripe', status: 'authorized', authorized: 4500, card: { brand: 'visa', last4: '4242' } });
    expect(r.json().order).toMatchObject({ status: 'validated', number: 'WEB-000001' });
    // The OMS's idempotency key reached Stripe.
    const created = standin.requestsTo('POST /v1/payment_intents');
    expect(created).toHaveLength(1);
    expect(created[0].idempotencyKey).toMatch(/^oms_pop_/);

    const order = (await env.app.inject({ method: 'GET', url: `/orders/${o.id}`, headers: env.auth(web) })).json();
    for (const f of order.fulfillment_orders) {
      for (const [action, payload] of [['accept', {}], ['pick', {}], ['pack', {}], ['ship', { tracking: 'T' }]] as const) {
        const x = await env.app.inject({ method: 'POST', url: `/fulfillment-orders/${f.id}/${action}`, headers: env.auth(wms), payload });
        expect(x.statusCode, x.body).toBe(200);
      }
    }
    expect(await payment(o.id)).toMatchObject({ status: 'captured', captured: 4500 });
    expect(standin.requestsTo('POST /v1/payment_intents/:id/capture')).toHaveLength(1);

    const rf = await env.app.inject({ method: 'POST', url: `/orders/${o.id}/refunds`, headers: env.auth(web), payload: { amount: 1500 } });
    expect(rf.statusCode, rf.body).toBe(201);
    expect(rf.json()).toMatchObject({ status: 'succeeded', parts: [{ amount: 1500, status: 'succeeded' }] });
    expect(await payment(o.id)).toMatchObject({ captured: 4500, refunded: 1500, status: 'partially_refunded' });

    // Everything Stripe sent, twice, shuffled, half signed with the old secret: one effect each (none new).
    const events = [...standin.events, ...standin.events].reverse();
    expect(events.length).toBeGreaterThan(4);
    for (const [i, e] of events.entries()) {
      const res = await hook(e, i % 2 ? [OLD_SECRET] : [NEW_SECRET]);
      expect(res.statusCode, res.body).toBe(200);
    }
    expect(await payment(o.id)).toMatchObject({ authorized: 4500, captured: 4500, refunded: 1500 });
    const refunds = await env.ctx.store.db.selectFrom('payment_operations').select('id').where('order_id', '=', o.id).where('kind', '=', 'refund').execute();
    expect(refunds).toHaveLength(1);
    expect(standin.created.refunds).toBe(1);
    // A secret this OMS does not have: refused.
    expect(expectError(await hook(standin.events[0], ['whsec_someone_else']), 400, 'webhook_signature_invalid').error.details).toEqual({ reason: 'bad_signature' });
  });

  it('a decline leaves the order unpaid; a 3-D Secure step completes by webhook', async () => {
    const a = await capture('STRIPE-2', 1);
    const d = await pay(a.id, { method: 'card', amount: 2500, token: 'pm_card_chargeDeclined' });
    expect(expectError(d, 402, 'payment_declined').error.details).toMatchObject({ decline_code: 'generic_decline' });

    const b = await capture('STRIPE-3', 1);
    const r = await pay(b.id, { method: 'card', amount: 2500, token: 'pm_card_authenticationRequired', return_url: 'https://shop.example/return' });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json().payment.status).toBe('requires_action');
    const pi = (await env.ctx.store.db.selectFrom('payments').select('provider_ref').where('order_id', '=', b.id).executeTakeFirstOrThrow()).provider_ref as string;
    const before = standin.events.length;
    standin.completeAction(pi, true);
    for (const e of standin.events.slice(before)) expect((await hook(e, [NEW_SECRET])).statusCode).toBe(200);
    const order = (await env.app.inject({ method: 'GET', url: `/orders/${b.id}`, headers: env.auth(web) })).json();
    expect(order).toMatchObject({ status: 'validated', number: expect.stringMatching(/^WEB-/) });
    expect(await payment(b.id)).toMatchObject({ status: 'authorized', authorized: 2500 });
  });
});
