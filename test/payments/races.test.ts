// Money under races, on every backend: webhooks delivered three times (serially, in parallel,
// shuffled) converge to the operator's truth with one effect each; a webhook that beats the
// API response makes no second refund or capture; twenty parallel 10% refunds never exceed the
// capture (two OMS processes on PostgreSQL); a capture the operator could not take is resumed
// once by racing schedulers; the database refuses refunded > captured.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/keys.ts';
import type { Ctx } from '../../src/context.ts';
import { checkPaymentIntegrity } from '../../src/payments/integrity.ts';
import { type CaptureRequest, type PaymentProvider, ProviderUnavailable, type RefundRequest } from '../../src/payments/provider.ts';
import type { SandboxDelivery, SandboxProvider } from '../../src/payments/providers/sandbox.ts';
import { createRefund, sweepPayments } from '../../src/payments/service.ts';
import { closeBalanced, expectError, type Json, seedStock } from '../api/helpers.ts';
import { type ApiEnv, BACKENDS, createApiEnv } from '../support/backends.ts';
import { homeOrderBody, smallNetwork } from '../support/fixtures.ts';

/** A seeded shuffle (mulberry32): the same order on every run. */
function shuffle<T>(xs: T[], seed: number): T[] {
  let a = seed >>> 0;
  const rnd = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Delegates to the sandbox; lets a test act between the operator's answer and its recording. */
class Wrapped implements PaymentProvider {
  readonly name = 'sandbox' as const;
  calls = { capture: 0, refund: 0 };
  beforeReturn: (() => Promise<void>) | null = null;
  unavailable = false;
  refuseCaptures = false;
  constructor(private readonly inner: SandboxProvider) {}
  authorize = (r: Parameters<PaymentProvider['authorize']>[0]) => this.inner.authorize(r);
  void = (r: Parameters<PaymentProvider['void']>[0]) => this.inner.void(r);
  parseWebhook = (raw: Buffer, h: Parameters<PaymentProvider['parseWebhook']>[1], now: number) => this.inner.parseWebhook(raw, h, now);
  async capture(r: CaptureRequest) {
    this.calls.capture++;
    if (this.unavailable) throw new ProviderUnavailable('sandbox', 'down for the test');
    if (this.refuseCaptures) return { outcome: 'failed' as const, code: 'authorization_expired', message: 'The authorization has expired' };
    const out = await this.inner.capture(r);
    await this.beforeReturn?.();
    return out;
  }
  async refund(r: RefundRequest) {
    this.calls.refund++;
    const out = await this.inner.refund(r);
    await this.beforeReturn?.();
    return out;
  }
}

describe.each(BACKENDS)('payment races on %s', (backend) => {
  let env: ApiEnv;
  let web: string;
  let wms: string;

  beforeEach(async () => {
    env = await createApiEnv(backend);
    await smallNetwork(env.ctx);
    web = (await createApiKey(env.ctx, { name: 'web', role: 'channel', channel: 'web' })).secret;
    wms = (await createApiKey(env.ctx, { name: 'wms', role: 'integration', locations: ['WH1'] })).secret;
    env.clock.advance(1000);
    await seedStock(env, 'WH1', new Date(env.clock.now() - 500).toISOString(), [{ sku: 'A1', on_hand: 100 }]);
    env.ctx.payments.settings.capturePolicy = 'on_shipment';
  });

  afterEach(() => closeBalanced(env));

  const sandbox = () => env.ctx.payments.sandbox as SandboxProvider;
  const outbox = () => env.ctx.payments.sandboxOutbox.splice(0);
  const deliver = (d: SandboxDelivery) => env.app.inject({ method: 'POST', url: '/webhooks/payments/sandbox', headers: d.headers, payload: d.rawBody });

  /** An order of `units` × 2,000 + 500 shipping, authorized at the sandbox by card; returns ids. */
  async function paidOrder(ref: string, units: number): Promise<{ orderId: string; paymentId: string; providerRef: string; total: number }> {
    const c = await env.app.inject({ method: 'POST', url: '/orders', headers: env.auth(web), payload: homeOrderBody(ref, [['A1', units, 2000]]) });
    expect(c.statusCode, c.body).toBe(201);
    const total = units * 2000 + 500;
    const r = await env.app.inject({ method: 'POST', url: `/orders/${c.json().id}/payments`, headers: env.auth(web), payload: { method: 'card', amount: total, token: 'tok_sandbox_visa' } });
    expect(r.statusCode, r.body).toBe(201);
    const p = await env.ctx.store.db.selectFrom('payments').selectAll().where('id', '=', r.json().payment.id).executeTakeFirstOrThrow();
    return { orderId: c.json().id, paymentId: p.id, providerRef: p.provider_ref as string, total };
  }
  const payment = (id: string) => env.ctx.store.db.selectFrom('payments').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const eventsOf = async (paymentId: string, type: string) => {
    const rows = await env.ctx.store.db.selectFrom('outbox').select('payload').where('aggregate_id', '=', paymentId).where('type', '=', type).execute();
    return rows.map((r) => JSON.parse(r.payload).amount as number);
  };
  async function shipAll(orderId: string): Promise<void> {
    const o = (await env.app.inject({ method: 'GET', url: `/orders/${orderId}`, headers: env.auth(web) })).json();
    for (const f of o.fulfillment_orders.filter((x: Json) => x.status === 'released')) {
      for (const [action, payload] of [['accept', {}], ['pick', {}], ['pack', {}], ['ship', { tracking: 'T' }]] as const) {
        const r = await env.app.inject({ method: 'POST', url: `/fulfillment-orders/${f.id}/${action}`, headers: env.auth(wms), payload });
        expect(r.statusCode, `${action}: ${r.body}`).toBe(200);
      }
    }
  }

  describe.each(['serial', 'parallel', 'shuffled'] as const)('every webhook delivered three times (%s)', (mode) => {
    it('has exactly one effect each, and the money converges to the model', async () => {
      const { paymentId, providerRef } = await paidOrder(`HOOK-${mode}`, 5); // 10,500 authorized
      outbox();
      // Things happen at the operator, outside this OMS (its dashboard): only webhooks tell us.
      const psp = sandbox();
      const op = (n: string) => ({ idempotencyKey: `dash-${mode}-${n}`, operationId: `dash-${n}`, providerRef, currency: 'EUR' });
      expect(await psp.capture({ ...op('c1'), amount: 6000, final: false })).toEqual({ outcome: 'captured', amount: 6000 });
      expect((await psp.refund({ ...op('r1'), amount: 1000 })).outcome).toBe('refunded');
      expect((await psp.refund({ ...op('r2'), amount: 2500 })).outcome).toBe('refunded');
      expect(await psp.capture({ ...op('c2'), amount: 1500, final: false })).toEqual({ outcome: 'captured', amount: 1500 });
      const hooks = outbox();
      expect(hooks).toHaveLength(4);
      const model = { authorized: 10_500, captured: 7500, refunded: 3500 };

      const triple = hooks.flatMap((h) => [h, h, h]);
      const results =
        mode === 'serial'
          ? await (async () => {
              const out = [];
              for (const h of triple) out.push(await deliver(h));
              return out;
            })()
          : await Promise.all((mode === 'parallel' ? triple : shuffle(triple, 20261126)).map((h) => deliver(h)));
      for (const r of results) expect(r.statusCode, r.body).toBe(200);
      const applied = results.reduce((s, r) => s + r.json().applied, 0);
      const duplicates = results.reduce((s, r) => s + r.json().duplicates, 0);
      expect(applied).toBe(4);
      expect(duplicates).toBe(8);

      const p = await payment(paymentId);
      expect({ authorized: p.authorized, captured: p.captured, refunded: p.refunded }).toEqual(model);
      // One effect each: the refunds recorded once, the events add up to the model.
      const refunds = await env.ctx.store.db.selectFrom('payment_operations').select(['amount', 'source']).where('payment_id', '=', paymentId).where('kind', '=', 'refund').orderBy('amount').execute();
      expect(refunds).toEqual([
        { amount: 1000, source: 'external' },
        { amount: 2500, source: 'external' },
      ]);
      expect((await eventsOf(paymentId, 'payment.refunded')).reduce((s, x) => s + x, 0)).toBe(3500);
      expect((await eventsOf(paymentId, 'payment.captured')).reduce((s, x) => s + x, 0)).toBe(7500);
      expect((await eventsOf(paymentId, 'payment.authorized')).reduce((s, x) => s + x, 0)).toBe(10_500);
    });
  });

  it('a refund webhook that beats the API response: one refund, one operator call', async () => {
    env.ctx.payments.settings.capturePolicy = 'on_validation';
    const { orderId, paymentId } = await paidOrder('RACE-R', 5);
    expect((await payment(paymentId)).captured).toBe(10_500);
    outbox();
    const wrapped = new Wrapped(sandbox());
    env.ctx.payments.use(wrapped);
    // The operator's webhook arrives (and is applied) before its API answer is recorded.
    wrapped.beforeReturn = async () => {
      for (const d of outbox()) expect((await deliver(d)).json()).toMatchObject({ applied: 1 });
    };
    const r = await env.app.inject({ method: 'POST', url: `/orders/${orderId}/refunds`, headers: env.auth(web), payload: { amount: 3000 } });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json()).toMatchObject({ status: 'succeeded', amount: 3000 });
    expect(wrapped.calls.refund).toBe(1);
    const ops = await env.ctx.store.db.selectFrom('payment_operations').select(['status', 'source', 'amount']).where('payment_id', '=', paymentId).where('kind', '=', 'refund').execute();
    expect(ops).toEqual([{ status: 'succeeded', source: 'webhook', amount: 3000 }]);
    expect((await payment(paymentId)).refunded).toBe(3000);
    expect(await eventsOf(paymentId, 'payment.refunded')).toEqual([3000]);
  });

  it('a capture webhook that beats the API response: one capture', async () => {
    const { orderId, paymentId } = await paidOrder('RACE-C', 3);
    outbox();
    const wrapped = new Wrapped(sandbox());
    env.ctx.payments.use(wrapped);
    wrapped.beforeReturn = async () => {
      for (const d of outbox()) await deliver(d);
    };
    await shipAll(orderId);
    expect(wrapped.calls.capture).toBe(1);
    const p = await payment(paymentId);
    expect(p).toMatchObject({ captured: 6500, capture_pending: 0 });
    expect(await eventsOf(paymentId, 'payment.captured')).toEqual([6500]);
  });

  it('twenty parallel 10% refunds on one captured tender: at most ten succeed, never more than captured', async () => {
    env.ctx.payments.settings.capturePolicy = 'on_validation';
    const { orderId, paymentId } = await paidOrder('TWENTY', 5); // 10,500 captured at validation
    expect((await payment(paymentId)).captured).toBe(10_500);
    // Two OMS processes on PostgreSQL (a peer with its own pool); one process on SQLite.
    const peer: Ctx = await env.openPeer();
    peer.payments.settings.capturePolicy = 'on_validation';
    const actor = { keyId: 'test', name: 'test', role: 'admin' };
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => createRefund(i % 2 ? peer : env.ctx, orderId, { amount: 1050, reason: `r${i}` }, actor)));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter((r) => r.status === 'rejected');
    expect(ok).toBeLessThanOrEqual(10);
    expect(ok).toBe(10);
    for (const r of refused) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'refund_exceeds_captured' });
    const p = await payment(paymentId);
    expect(p.refunded).toBe(10_500);
    expect(p.refunded).toBeLessThanOrEqual(p.captured);
    // The operator agrees: it refunded exactly that.
    const psp = await env.ctx.store.db.selectFrom('sandbox_psp_payments').select(['captured', 'refunded']).where('payment_id', '=', paymentId).executeTakeFirstOrThrow();
    expect(psp).toEqual({ captured: 10_500, refunded: 10_500 });
    expectError(await env.app.inject({ method: 'POST', url: `/orders/${orderId}/refunds`, headers: env.auth(web), payload: { amount: 1 } }), 409, 'refund_exceeds_captured');
  });

  it('a capture the operator could not take waits, then racing schedulers make it once', async () => {
    const { orderId, paymentId } = await paidOrder('RESUME', 2);
    const wrapped = new Wrapped(sandbox());
    env.ctx.payments.use(wrapped);
    wrapped.unavailable = true;
    await shipAll(orderId);
    let p = await payment(paymentId);
    expect(p).toMatchObject({ captured: 0, capture_pending: 4500 });
    expect((await env.app.inject({ method: 'GET', url: `/orders/${orderId}`, headers: env.auth(web) })).json().status).toBe('shipped');
    wrapped.unavailable = false;
    const peer = await env.openPeer();
    peer.payments.use(wrapped);
    env.clock.advance(env.ctx.payments.settings.retryDelayMs * 10);
    const swept = await Promise.all([sweepPayments(env.ctx), sweepPayments(peer), sweepPayments(env.ctx)]);
    expect(swept.reduce((s, x) => s + x.resumed, 0)).toBe(1);
    p = await payment(paymentId);
    expect(p).toMatchObject({ captured: 4500, capture_pending: 0, status: 'captured' });
    const psp = await env.ctx.store.db.selectFrom('sandbox_psp_payments').select(['captured']).where('payment_id', '=', paymentId).executeTakeFirstOrThrow();
    expect(psp.captured).toBe(4500);
  });

  it('a capture the operator refuses is on the timeline, once: no retry loop', async () => {
    const { orderId, paymentId } = await paidOrder('REFUSED', 1);
    const wrapped = new Wrapped(sandbox());
    env.ctx.payments.use(wrapped);
    wrapped.refuseCaptures = true;
    await shipAll(orderId);
    expect(wrapped.calls.capture).toBe(1);
    expect(await payment(paymentId)).toMatchObject({ captured: 0, capture_pending: 0, status: 'authorized' });
    const failed = await env.ctx.store.db.selectFrom('outbox').select('payload').where('aggregate_id', '=', paymentId).where('type', '=', 'payment.operation_failed').execute();
    expect(failed.map((f) => JSON.parse(f.payload))).toEqual([expect.objectContaining({ kind: 'capture', code: 'authorization_expired' })]);
    const timeline = (await env.app.inject({ method: 'GET', url: `/orders/${orderId}/timeline`, headers: env.auth(web) })).json().entries.map((e: Json) => e.type);
    expect(timeline).toContain('payment.operation_failed');
  });

  it('the database refuses a tender refunded beyond its capture', async () => {
    env.ctx.payments.settings.capturePolicy = 'on_validation';
    const { paymentId } = await paidOrder('CHECK', 1);
    await expect(env.ctx.store.db.updateTable('payments').set((eb) => ({ refunded: eb('captured', '+', 1) })).where('id', '=', paymentId).execute()).rejects.toThrow();
    await expect(env.ctx.store.db.updateTable('payments').set((eb) => ({ captured: eb('authorized', '+', 1) })).where('id', '=', paymentId).execute()).rejects.toThrow();
    // A counter changed behind the operations' back is reported by the integrity check (then put back).
    await env.ctx.store.db.updateTable('payments').set({ refunded: 1 }).where('id', '=', paymentId).execute();
    expect((await checkPaymentIntegrity(env.ctx.store.db)).issues).toEqual([{ kind: 'counter_vs_operations', payment_id: paymentId, detail: 'refunded is 1, its operations make it 0' }]);
    await env.ctx.store.db.updateTable('payments').set({ refunded: 0 }).where('id', '=', paymentId).execute();
  });
});
