// Payments end to end through the HTTP API, on every backend: an order captured, authorized at
// the sandbox (with and without 3-D Secure), validated with its number, fulfilled, captured on
// shipment, refunded over a split tender; declines; Order in Store paid at the terminal;
// cancellations that void or refund; card numbers refused; and the integrity check after each.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/keys.ts';
import { sweepOrders } from '../../src/orders/scheduler.ts';
import type { SandboxDelivery } from '../../src/payments/providers/sandbox.ts';
import { sweepPayments } from '../../src/payments/service.ts';
import { closeBalanced, expectError, type Json, positions, seedStock } from '../api/helpers.ts';
import { type ApiEnv, BACKENDS, createApiEnv } from '../support/backends.ts';
import { homeOrderBody, smallNetwork } from '../support/fixtures.ts';

describe.each(BACKENDS)('payments through the API on %s', (backend) => {
  let env: ApiEnv;
  let web: string;
  let paris: string;
  let wms: string;
  let storeApp: string;

  beforeEach(async () => {
    env = await createApiEnv(backend);
    await smallNetwork(env.ctx, [
      { code: 'web', name: 'Web', type: 'web' },
      { code: 'pos', name: 'Stores', type: 'store' },
    ]);
    web = (await createApiKey(env.ctx, { name: 'web', role: 'channel', channel: 'web' })).secret;
    paris = (await createApiKey(env.ctx, { name: 'paris store', role: 'store', channel: 'pos', locations: ['ST-PARIS'] })).secret;
    wms = (await createApiKey(env.ctx, { name: 'wms', role: 'integration', locations: ['WH1'] })).secret;
    storeApp = (await createApiKey(env.ctx, { name: 'lyon app', role: 'store', locations: ['ST-LYON'] })).secret;
    env.clock.advance(1000);
    await seedStock(env, 'WH1', new Date(env.clock.now() - 500).toISOString(), [
      { sku: 'A1', on_hand: 50 },
      { sku: 'B1', on_hand: 50 },
    ]);
    env.ctx.payments.settings.capturePolicy = 'on_shipment';
  });

  afterEach(() => closeBalanced(env));

  // ---- helpers ----------------------------------------------------------------------------

  async function capture(ref: string, lines: Array<[string, number, number]>, key = web): Promise<Json> {
    const r = await env.app.inject({ method: 'POST', url: '/orders', headers: env.auth(key), payload: homeOrderBody(ref, lines) });
    expect(r.statusCode, r.body).toBe(201);
    return r.json();
  }
  const pay = (orderId: string, body: object, key = web, headers: Record<string, string> = {}) =>
    env.app.inject({ method: 'POST', url: `/orders/${orderId}/payments`, headers: { ...env.auth(key), ...headers }, payload: body });
  async function payOk(orderId: string, body: object, key = web): Promise<Json> {
    const r = await pay(orderId, body, key);
    expect(r.statusCode, r.body).toBe(201);
    return r.json();
  }
  const getOrder = async (id: string, key = web): Promise<Json> => (await env.app.inject({ method: 'GET', url: `/orders/${id}`, headers: env.auth(key) })).json();
  const payments = async (id: string, key = web): Promise<Json[]> => {
    const r = await env.app.inject({ method: 'GET', url: `/orders/${id}/payments`, headers: env.auth(key) });
    expect(r.statusCode, r.body).toBe(200);
    return r.json().payments;
  };
  const deliver = (d: SandboxDelivery) => env.app.inject({ method: 'POST', url: '/webhooks/payments/sandbox', headers: d.headers, payload: d.rawBody });
  const outbox = () => env.ctx.payments.sandboxOutbox.splice(0);
  async function shipAll(orderId: string): Promise<void> {
    const o = await getOrder(orderId);
    for (const f of o.fulfillment_orders.filter((x: Json) => x.status === 'released')) {
      const key = f.location === 'WH1' ? wms : env.adminKey;
      for (const [action, payload] of [['accept', {}], ['pick', {}], ['pack', {}], ['ship', { tracking: 'TRK1' }]] as const) {
        const r = await env.app.inject({ method: 'POST', url: `/fulfillment-orders/${f.id}/${action}`, headers: env.auth(key), payload });
        expect(r.statusCode, `${action}: ${r.body}`).toBe(200);
      }
    }
  }
  const timelineTypes = async (id: string): Promise<string[]> => (await env.app.inject({ method: 'GET', url: `/orders/${id}/timeline`, headers: env.auth(web) })).json().entries.map((e: Json) => e.type);

  // ---- the whole flow ------------------------------------------------------------------------

  it('3-D Secure → webhook → validated with a number → shipped → captured on shipment → tracked', async () => {
    const o = await capture('3DS-1', [['A1', 2, 2500]]);
    const r = await payOk(o.id, { method: 'card', amount: 5500, token: 'tok_sandbox_3ds' });
    expect(r.payment).toMatchObject({ status: 'requires_action', provider: 'sandbox', authorized: 0 });
    expect(r.payment.action_url).toMatch(/\/sandbox\/actions\/sbpay_/);
    expect(r.order).toMatchObject({ status: 'pending_payment', number: null });
    expect(r.tracking_token).toBeUndefined();

    // The customer approves at the "bank"; the sandbox sends its signed webhook.
    const ref = (r.payment.action_url as string).split('/').pop();
    const page = await env.app.inject({ method: 'GET', url: `/sandbox/actions/${ref}` });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Approve');
    const done = await env.app.inject({ method: 'POST', url: `/sandbox/actions/${ref}?outcome=approve` });
    expect(done.json()).toMatchObject({ ok: true });
    const hooks = outbox();
    expect(hooks.map((h) => h.type)).toEqual(['payment.action_required', 'payment.authorized']);
    for (const h of hooks) {
      const applied = await deliver(h);
      expect(applied.statusCode, applied.body).toBe(200);
      expect(applied.json()).toMatchObject({ applied: 1 });
    }

    let order = await getOrder(o.id);
    expect(order.status).toBe('validated');
    expect(order.number).toBe('WEB-000001');
    expect(order.fulfillment_orders.every((f: Json) => f.status === 'released')).toBe(true);
    expect((await payments(o.id))[0]).toMatchObject({ status: 'authorized', authorized: 5500, captured: 0, card: { brand: 'visa' } });

    // The token was issued to nobody in clear (a webhook validated it): the channel asks for one.
    const t = await env.app.inject({ method: 'POST', url: `/orders/${o.id}/tracking-token`, headers: env.auth(web) });
    expect(t.statusCode, t.body).toBe(201);
    const tracked = await env.app.inject({ method: 'GET', url: `/tracking/${t.json().tracking_token}` });
    expect(tracked.statusCode, tracked.body).toBe(200);
    expect(tracked.json()).toMatchObject({ number: 'WEB-000001', status: 'validated' });
    expect(JSON.stringify(tracked.json())).not.toContain('ada@example.com');
    expectError(await env.app.inject({ method: 'GET', url: '/tracking/trk_not-a-real-token-at-all' }), 404, 'not_found');

    await shipAll(o.id);
    order = await getOrder(o.id);
    expect(order.status).toBe('shipped');
    const [p] = await payments(o.id);
    expect(p).toMatchObject({ status: 'captured', authorized: 5500, captured: 5500, capture_pending: 0 });
    const types = await timelineTypes(o.id);
    expect(types).toEqual(expect.arrayContaining(['order.created', 'payment.authorized', 'order.validated', 'fulfillment.shipped', 'payment.captured']));
    expect(types.indexOf('payment.authorized')).toBeLessThan(types.indexOf('order.validated'));

    // The capture's own webhook arrives later: nothing changes.
    for (const d of outbox()) expect((await deliver(d)).statusCode).toBe(200);
    expect((await payments(o.id))[0]).toMatchObject({ captured: 5500, refunded: 0 });
  });

  it('split tender: gift card + card validates on the second, captures gift card first, refunds the card first', async () => {
    const gc = await env.app.inject({ method: 'POST', url: '/gift-cards', headers: env.auth(), payload: { currency: 'EUR', amount: 2000 } });
    expect(gc.statusCode, gc.body).toBe(201);
    const o = await capture('SPLIT-1', [['A1', 2, 2500]]);
    const first = await payOk(o.id, { method: 'gift_card', amount: 2000, token: gc.json().code });
    expect(first.payment).toMatchObject({ provider: 'gift_card', status: 'authorized', card: { brand: 'gift_card', last4: gc.json().last4 } });
    expect(first.order.status).toBe('pending_payment');
    // More than is left to pay is refused.
    expectError(await pay(o.id, { method: 'card', amount: 3501, token: 'tok_sandbox_visa' }), 422, 'payment_exceeds_due');
    const second = await payOk(o.id, { method: 'card', amount: 3500, token: 'tok_sandbox_visa' });
    expect(second.order).toMatchObject({ status: 'validated', number: 'WEB-000001' });
    expect(second.tracking_token).toMatch(/^trk_[A-Za-z0-9_-]{32}$/);
    expect((await env.app.inject({ method: 'GET', url: `/tracking/${second.tracking_token}` })).statusCode).toBe(200);

    await shipAll(o.id);
    const byMethod = async () => Object.fromEntries((await payments(o.id)).map((p: Json) => [p.method, p]));
    let p = await byMethod();
    expect(p.gift_card).toMatchObject({ captured: 2000 });
    expect(p.card).toMatchObject({ captured: 3500 });

    const refund = (body: object) => env.app.inject({ method: 'POST', url: `/orders/${o.id}/refunds`, headers: env.auth(web), payload: body });
    const r1 = await refund({ amount: 3000, reason: 'goodwill' });
    expect(r1.statusCode, r1.body).toBe(201);
    expect(r1.json()).toMatchObject({ status: 'succeeded', amount: 3000, parts: [{ method: 'card', amount: 3000, status: 'succeeded' }] });
    const r2 = await refund({ lines: [{ line_id: 'L1', quantity: 1 }] });
    expect(r2.statusCode, r2.body).toBe(201);
    expect(r2.json().amount).toBe(2500);
    expect(r2.json().parts.map((x: Json) => [x.method, x.amount])).toEqual([
      ['card', 500],
      ['gift_card', 2000],
    ]);
    expectError(await refund({ amount: 1 }), 409, 'refund_exceeds_captured');
    // The line has one shipped unit left to refund, but no money: refused, nothing stored.
    expectError(await refund({ lines: [{ line_id: 'L1', quantity: 2 }] }), 409, 'invalid_state');
    p = await byMethod();
    expect(p.card).toMatchObject({ captured: 3500, refunded: 3500, status: 'refunded' });
    expect(p.gift_card).toMatchObject({ captured: 2000, refunded: 2000 });
    // The store credit went back on the card.
    const card = await env.ctx.store.db.selectFrom('gift_cards').select(['balance', 'held']).where('id', '=', gc.json().id).executeTakeFirstOrThrow();
    expect(card).toEqual({ balance: 2000, held: 0 });
    const list = await env.app.inject({ method: 'GET', url: `/orders/${o.id}/refunds`, headers: env.auth(web) });
    expect(list.json().refunds.map((x: Json) => x.amount)).toEqual([3000, 2500]);
  });

  it('a declined card leaves the order unpaid; it expires and its stock goes back; never validated', async () => {
    const o = await capture('DECL-1', [['A1', 3, 1000]]);
    const before = (await positions(env, 'WH1')).A1.reserved;
    expect(before).toBe(3);
    const r = await pay(o.id, { method: 'card', amount: 3500, token: 'tok_sandbox_decline' });
    const body = expectError(r, 402, 'payment_declined');
    expect(body.error.details).toMatchObject({ decline_code: 'card_declined' });
    expect((await getOrder(o.id)).status).toBe('pending_payment');
    expect((await payments(o.id))[0]).toMatchObject({ status: 'failed', authorized: 0 });
    // Its failure webhook arrives: still unpaid.
    for (const d of outbox()) await deliver(d);
    expect((await getOrder(o.id)).status).toBe('pending_payment');
    env.clock.advance(env.ctx.orders.paymentTtlMs + 1);
    await sweepOrders(env.ctx);
    const after = await getOrder(o.id);
    expect(after).toMatchObject({ status: 'expired', number: null });
    expect((await positions(env, 'WH1')).A1.reserved).toBe(0);
    expect(await timelineTypes(o.id)).not.toContain('order.validated');
  });

  it('an authorization that lands after the order expired is released (void), never validates it', async () => {
    const o = await capture('LATE-1', [['A1', 1, 1000]]);
    const r = await payOk(o.id, { method: 'card', amount: 1500, token: 'tok_sandbox_3ds' });
    outbox();
    env.clock.advance(env.ctx.orders.paymentTtlMs + 1);
    await sweepOrders(env.ctx);
    expect((await getOrder(o.id)).status).toBe('expired');
    const ref = (r.payment.action_url as string).split('/').pop();
    await env.app.inject({ method: 'POST', url: `/sandbox/actions/${ref}?outcome=approve` });
    for (const d of outbox()) {
      const r = await deliver(d);
      expect(r.statusCode, r.body).toBe(200);
    }
    expect((await getOrder(o.id)).status).toBe('expired');
    expect((await payments(o.id))[0]).toMatchObject({ authorized: 1500, voided: 1500, captured: 0, status: 'voided' });
  });

  it('a partly paid order expires: the gift card it held is given back', async () => {
    const gc = (await env.app.inject({ method: 'POST', url: '/gift-cards', headers: env.auth(), payload: { currency: 'EUR', amount: 3000 } })).json();
    const o = await capture('PART-1', [['A1', 2, 2000]]);
    await payOk(o.id, { method: 'gift_card', amount: 2000, token: gc.code });
    expectError(await pay(o.id, { method: 'card', amount: 2500, token: 'tok_sandbox_insufficient_funds' }), 402, 'payment_declined');
    const held = () => env.ctx.store.db.selectFrom('gift_cards').select(['balance', 'held']).where('id', '=', gc.id).executeTakeFirstOrThrow();
    expect(await held()).toEqual({ balance: 3000, held: 2000 });
    env.clock.advance(env.ctx.orders.paymentTtlMs + 1);
    await sweepOrders(env.ctx);
    expect((await getOrder(o.id)).status).toBe('expired');
    expect(await held()).toEqual({ balance: 3000, held: 0 });
    const gift = (await payments(o.id)).find((p: Json) => p.method === 'gift_card');
    expect(gift).toMatchObject({ status: 'voided', authorized: 2000, voided: 2000 });
  });

  it('cancellation before capture voids; after capture (capture at validation) refunds', async () => {
    const a = await capture('CXL-1', [['A1', 1, 1000]]);
    await payOk(a.id, { method: 'card', amount: 1500, token: 'tok_sandbox_visa' });
    const c1 = await env.app.inject({ method: 'POST', url: `/orders/${a.id}/cancel`, headers: env.auth(web), payload: { reason: 'customer changed mind' } });
    expect(c1.statusCode, c1.body).toBe(200);
    expect((await payments(a.id))[0]).toMatchObject({ status: 'voided', voided: 1500, captured: 0, refunded: 0 });

    env.ctx.payments.settings.capturePolicy = 'on_validation';
    const b = await capture('CXL-2', [['A1', 1, 1000], ['B1', 1, 2000]]);
    await payOk(b.id, { method: 'card', amount: 3500, token: 'tok_sandbox_visa' });
    expect((await payments(b.id))[0]).toMatchObject({ status: 'captured', captured: 3500 });
    // One line cancelled after capture: its value comes back.
    const c2 = await env.app.inject({ method: 'POST', url: `/orders/${b.id}/cancel`, headers: env.auth(web), payload: { lines: [{ line_id: 'L2', quantity: 1 }] } });
    expect(c2.statusCode, c2.body).toBe(200);
    expect((await payments(b.id))[0]).toMatchObject({ captured: 3500, refunded: 2000 });
    // The rest: the whole order (and its shipping) comes back.
    const c3 = await env.app.inject({ method: 'POST', url: `/orders/${b.id}/cancel`, headers: env.auth(web), payload: {} });
    expect(c3.statusCode, c3.body).toBe(200);
    expect((await payments(b.id))[0]).toMatchObject({ captured: 3500, refunded: 3500, status: 'refunded' });
    const refunds = (await env.app.inject({ method: 'GET', url: `/orders/${b.id}/refunds`, headers: env.auth(web) })).json().refunds;
    expect(refunds.map((x: Json) => [x.kind, x.amount, x.status])).toEqual([
      ['cancellation', 2000, 'succeeded'],
      ['cancellation', 1500, 'succeeded'],
    ]);
  });

  it('Order in Store paid at the card terminal: validated and captured at once; a replay changes nothing; a refund waits for the terminal', async () => {
    const body = { ...homeOrderBody('POS-1', [['A1', 1, 4000]]), store: 'ST-PARIS', associate: 'Marie' };
    const c = await env.app.inject({ method: 'POST', url: '/orders', headers: env.auth(paris), payload: body });
    expect(c.statusCode, c.body).toBe(201);
    const id = c.json().id;
    const report = { terminal_id: 'TPE-PARIS-01', transaction_reference: 'TX-0001', amount: 4500, currency: 'EUR', card_brand: 'Visa', card_last4: '4242' };
    const term = (key: string, payload: object = report) => env.app.inject({ method: 'POST', url: `/orders/${id}/payments/terminal`, headers: env.auth(key), payload });
    // Another store, a channel key: not theirs.
    expectError(await term(storeApp), 404, 'not_found');
    expectError(await term(web), 403, 'forbidden');
    const r = await term(paris);
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json().payment).toMatchObject({ provider: 'card_terminal', method: 'card_present', status: 'captured', authorized: 4500, captured: 4500, terminal_id: 'TPE-PARIS-01', card: { brand: 'visa', last4: '4242' } });
    expect(r.json().order).toMatchObject({ status: 'validated', number: 'POS-000001' });
    expect(r.json().tracking_token).toBeDefined();
    const again = await term(paris);
    expect(again.statusCode).toBe(200);
    expect(again.json().payment.id).toBe(r.json().payment.id);
    expect(again.json().tracking_token).toBeUndefined();
    expectError(await term(paris, { ...report, amount: 100 }), 409, 'conflict');

    // Refund at the terminal: pending until the store confirms it.
    const rf = await env.app.inject({ method: 'POST', url: `/orders/${id}/refunds`, headers: env.auth(paris), payload: { amount: 1000 } });
    expect(rf.statusCode, rf.body).toBe(201);
    expect(rf.json()).toMatchObject({ status: 'pending', parts: [{ method: 'card_present', amount: 1000, status: 'pending' }] });
    const opId = rf.json().parts[0].operation_id;
    const payId = rf.json().parts[0].payment_id;
    expect((await payments(id, paris))[0]).toMatchObject({ refunded: 0, refund_pending: 1000 });
    const confirm = await env.app.inject({ method: 'POST', url: `/payments/${payId}/operations/${opId}/confirm`, headers: env.auth(paris), payload: { terminal_reference: 'TX-0001-R1' } });
    expect(confirm.statusCode, confirm.body).toBe(200);
    expect(confirm.json()).toMatchObject({ status: 'succeeded', source: 'terminal' });
    expect((await payments(id, paris))[0]).toMatchObject({ refunded: 1000, refund_pending: 0, status: 'partially_refunded' });
    const rs = (await env.app.inject({ method: 'GET', url: `/orders/${id}/refunds`, headers: env.auth(paris) })).json().refunds;
    expect(rs[0].status).toBe('succeeded');
  });

  it('an operator that fails transiently is retried with the same idempotency key: one authorization', async () => {
    const o = await capture('TRANS-1', [['A1', 1, 1000]]);
    const r = await payOk(o.id, { method: 'card', amount: 1500, token: 'tok_sandbox_transient' });
    expect(r.payment).toMatchObject({ status: 'authorized', authorized: 1500 });
    expect(r.order.status).toBe('validated');
    const ops = await env.ctx.store.db.selectFrom('payment_operations').select(['idempotency_key', 'attempts']).where('order_id', '=', o.id).execute();
    expect(ops).toHaveLength(1);
    const calls = await env.ctx.store.db.selectFrom('sandbox_psp_requests').select('attempts').where('idempotency_key', '=', ops[0].idempotency_key).executeTakeFirstOrThrow();
    expect(calls.attempts).toBe(2);
    expect(await env.ctx.store.db.selectFrom('sandbox_psp_payments').select('ref').where('order_id', '=', o.id).execute()).toHaveLength(1);
  });

  it('keeps webhook event ids 35 days (at least 30), then forgets them', async () => {
    const o = await capture('KEEP-1', [['A1', 1, 1000]]);
    await payOk(o.id, { method: 'card', amount: 1500, token: 'tok_sandbox_visa' });
    const [d] = outbox();
    expect((await deliver(d)).json()).toMatchObject({ applied: 1 });
    const count = async () => (await env.ctx.store.db.selectFrom('webhook_events').select('event_id').execute()).length;
    env.clock.advance(30 * 24 * 3600_000);
    expect((await sweepPayments(env.ctx)).purged).toBe(0);
    expect(await count()).toBe(1);
    env.clock.advance(5 * 24 * 3600_000 + 1);
    expect((await sweepPayments(env.ctx)).purged).toBe(1);
    expect(await count()).toBe(0);
  });

  it('an Idempotency-Key replays the authorization: one payment, one call', async () => {
    const o = await capture('IDEM-1', [['A1', 1, 1000]]);
    const body = { method: 'card', amount: 1500, token: 'tok_sandbox_visa' };
    const a = await pay(o.id, body, web, { 'idempotency-key': 'pay-IDEM-1' });
    const b = await pay(o.id, body, web, { 'idempotency-key': 'pay-IDEM-1' });
    expect(a.statusCode).toBe(201);
    expect(b.statusCode).toBe(201);
    expect(b.headers['idempotent-replayed']).toBe('true');
    expect(b.body).toBe(a.body);
    expect(await payments(o.id)).toHaveLength(1);
    expectError(await pay(o.id, { ...body, amount: 1400 }, web, { 'idempotency-key': 'pay-IDEM-1' }), 422, 'idempotency_key_reused');
  });

  it('refuses card numbers anywhere in free text, and as a token', async () => {
    const o = await capture('PAN-1', [['A1', 1, 1000]]);
    const r1 = await pay(o.id, { method: 'card', amount: 1500, token: '4111111111111111' });
    expect(expectError(r1, 400, 'card_data_rejected').error.details).toEqual({ path: 'token' });
    const r2 = await env.app.inject({ method: 'POST', url: `/orders/${o.id}/notes`, headers: env.auth(web), payload: { text: 'card 4111 1111 1111 1111 exp 12/29' } });
    expectError(r2, 400, 'card_data_rejected');
    const body = homeOrderBody('PAN-2', [['A1', 1, 1000]]);
    body.customer.name = 'Ada 5555-5555-5555-4444';
    expectError(await env.app.inject({ method: 'POST', url: '/orders', headers: env.auth(web), payload: body }), 400, 'card_data_rejected');
    // Nothing of it was stored: no order, no note.
    expect(await timelineTypes(o.id)).not.toContain('order.note_added');
    const list = await env.app.inject({ method: 'GET', url: '/orders?external_reference=PAN-2', headers: env.auth(web) });
    expect(list.json().items ?? []).toHaveLength(0);
    // An identifier that happens to pass the Luhn check is fine.
    const ok = await env.app.inject({ method: 'POST', url: '/orders', headers: env.auth(web), payload: homeOrderBody('4111111111111111', [['A1', 1, 1000]]) });
    expect(ok.statusCode, ok.body).toBe(201);
  });

  it('refuses a webhook with a bad signature, and a payment on a validated or foreign order', async () => {
    const o = await capture('SIG-1', [['A1', 1, 1000]]);
    await payOk(o.id, { method: 'card', amount: 1500, token: 'tok_sandbox_visa' });
    const [d] = outbox();
    const tampered = Buffer.from(d.rawBody.toString().replace('"amount":1500', '"amount":1501'));
    const bad = await env.app.inject({ method: 'POST', url: '/webhooks/payments/sandbox', headers: d.headers, payload: tampered });
    expect(expectError(bad, 400, 'webhook_signature_invalid').error.details).toEqual({ reason: 'bad_signature' });
    const none = await env.app.inject({ method: 'POST', url: '/webhooks/payments/sandbox', headers: { 'content-type': 'application/json' }, payload: d.rawBody });
    expect(expectError(none, 400, 'webhook_signature_invalid').error.details).toEqual({ reason: 'missing_signature' });
    env.clock.advance(301_000);
    expect(expectError(await deliver(d), 400, 'webhook_signature_invalid').error.details).toEqual({ reason: 'stale_timestamp' });
    expectError(await pay(o.id, { method: 'card', amount: 1, token: 'tok_sandbox_visa' }), 409, 'invalid_state');
    const other = (await createApiKey(env.ctx, { name: 'pos', role: 'channel', channel: 'pos' })).secret;
    expectError(await pay(o.id, { method: 'card', amount: 1, token: 'tok_sandbox_visa' }, other), 404, 'not_found');
    expectError(await env.app.inject({ method: 'GET', url: `/orders/${o.id}/payments`, headers: env.auth(other) }), 404, 'not_found');
  });
});
