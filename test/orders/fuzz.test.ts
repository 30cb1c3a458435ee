// Bad input, generated: valid requests of the order and fulfilment API, mutated at random
// (a field deleted, replaced by a value of another type, an extreme number, a long or odd
// string, wrapped in an array…), and random sequences of changes on stored orders by every kind
// of caller. Whatever arrives, the answer is below 500, an error is the one error model with a
// machine-readable code and no stack trace, and the books balance afterwards (stock = ledger,
// orders = fulfilment orders). Seeded: the same cases every run; a failure prints its case.
// To search wider: FZ_SEED=n FZ_RUNS=4000 FZ_SEQ_RUNS=300 npx vitest run test/orders/fuzz.test.ts
// (on 2026-11-27, seeds 20261127, 1, 2 and 3 at those sizes, both backends: nothing found).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectBooksBalance, type InjectResult, type Json, seedStock } from '../api/helpers.ts';
import { expectClean, type FuzzCaller, fuzzEnv, mutate, mutation } from '../support/fuzz.ts';
import { type ApiEnv, BACKENDS, } from '../support/backends.ts';
import { PARIS_ADDRESS, } from '../support/fixtures.ts';

const SEED = Number(process.env.FZ_SEED ?? 20261127);

const HOME = { mode: 'home', address: PARIS_ADDRESS, shipping_price: 500 };

function validOrder(ref: string): Json {
  const lines = [
    { sku: 'A1', quantity: 1, unit_price: 1000, line_id: 'L1' },
    { sku: 'B1', quantity: 2, unit_price: 2500, discount: 100, line_id: 'L2' },
  ];
  const subtotal = 6000;
  return {
    external_reference: ref,
    customer: { name: 'Ada Lovelace', email: 'ada@example.com', phone: '+33100000000' },
    billing_address: PARIS_ADDRESS,
    currency: 'EUR',
    lines,
    delivery_groups: [{ group_id: 'G1', ...HOME }],
    totals: { subtotal, discount: 100, tax: 0, shipping: 500, total: subtotal - 100 + 500 },
    tenders: [{ method: 'card', amount: subtotal - 100 + 500 }],
  };
}

/**
 * Totals and tenders recomputed from the (mutated) lines and groups where they are numbers, so a
 * changed quantity, price or sku reaches sourcing instead of stopping at totals_mismatch.
 */
function addUp(b: Json): void {
  if (!b || typeof b !== 'object' || !Array.isArray(b.lines) || !Array.isArray(b.delivery_groups) || !b.totals || typeof b.totals !== 'object') return;
  const num = (v: unknown) => (typeof v === 'number' ? v : 0);
  const subtotal = b.lines.reduce((s: number, l: Json) => s + num(l?.quantity) * num(l?.unit_price), 0);
  const discount = b.lines.reduce((s: number, l: Json) => s + num(l?.discount), 0);
  const shipping = b.delivery_groups.reduce((s: number, g: Json) => s + num(g?.shipping_price), 0);
  Object.assign(b.totals, { subtotal, discount, shipping, total: subtotal - discount + shipping });
  if (Array.isArray(b.tenders) && b.tenders[0] && typeof b.tenders[0] === 'object') {
    b.tenders[0].amount = subtotal - discount + shipping;
    b.tenders.length = 1;
  }
}

type Who = Exclude<FuzzCaller, 'none'>;

describe.each(BACKENDS)('generated bad input on the order API (%s)', (backend) => {
  let env: ApiEnv;
  let keys: Record<Who, string>;
  const send = (who: Who, method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    env.app.inject({ method, url, headers: { ...env.auth(keys[who]), ...headers }, ...(payload === undefined ? {} : { payload: payload as never }) }) as Promise<InjectResult>;

  beforeAll(async () => {
    ({ env, keys } = await fuzzEnv(backend));
  });
  afterAll(async () => env?.close());

  it('the valid capture body this suite mutates is captured', async () => {
    const r = await send('web', 'POST', '/orders', validOrder('FZ-valid'));
    expect(r.statusCode, r.body).toBe(201);
  });

  it('mutated capture bodies: never a 5xx, every refusal in the error model, one stored order per 201', async () => {
    let n = 0;
    const created = new Set<string>();
    const before = Number((await env.ctx.store.db.selectFrom('orders').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.constantFrom<Who>('web', 'web', 'admin', 'paris', 'wms'), fc.boolean(), async (ms, who, reconcile) => {
        const body = mutate(validOrder(`FZ-${++n}`), ms.length > 1 && reconcile ? ms.slice(0, 1) : ms) as Json;
        if (reconcile) addUp(body);
        // An admin names the channel; a store key captures Order in Store for its own store.
        if (who === 'admin' && body && typeof body === 'object' && !Array.isArray(body) && !('channel' in body)) body.channel = 'web';
        const r = await send(who, 'POST', '/orders', body);
        expectClean(r, `${who} POST /orders ${JSON.stringify(ms).slice(0, 300)}`);
        if (r.statusCode === 201) created.add(r.json().id);
      }),
      { seed: SEED, numRuns: Number(process.env.FZ_RUNS ?? 300) },
    );
    const after = Number((await env.ctx.store.db.selectFrom('orders').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    expect(after - before).toBe(created.size);
    await expectBooksBalance(env.ctx.store.db);
  });

  it('bodies that are not an object, or not JSON, are refused in the error model', async () => {
    const raw = (payload: string, type = 'application/json') =>
      env.app.inject({ method: 'POST', url: '/orders', headers: { ...env.auth(keys.web), 'content-type': type }, payload }) as Promise<InjectResult>;
    for (const [payload, type] of [
      ['', 'application/json'],
      ['{', 'application/json'],
      ['[]', 'application/json'],
      ['null', 'application/json'],
      ['"order"', 'application/json'],
      ['42', 'application/json'],
      ['{"a":1,"a":2}', 'application/json'],
      ['{"__proto__":{"x":1}}', 'application/json'],
      ['{"constructor":{"prototype":{"x":1}}}', 'application/json'],
      ['external_reference=1', 'application/x-www-form-urlencoded'],
      ['<order/>', 'application/xml'],
      [JSON.stringify(validOrder('FZ-text')), 'text/plain'],
    ] as const) {
      const r = await raw(payload, type);
      expectClean(r, `POST /orders ${type} ${payload.slice(0, 40)}`);
      expect(r.statusCode, `${type} ${payload.slice(0, 40)}`).toBeGreaterThanOrEqual(400);
    }
  });

  it('random changes on stored orders, by every kind of caller, in random order: never a 5xx, and the books balance', async () => {
    // The capture property above may have reserved much of the stock.
    await seedStock(env, 'WH1', '2026-06-02T09:00:00Z', [
      { sku: 'A1', on_hand: 100_000 },
      { sku: 'B1', on_hand: 100_000 },
    ]);
    const orders: Array<{ id: string; fos: string[] }> = [];
    for (let i = 0; i < 6; i++) {
      const r = await send('web', 'POST', '/orders', validOrder(`FZ-seq-${i}`));
      expect(r.statusCode, r.body).toBe(201);
      const o = r.json();
      orders.push({ id: o.id, fos: o.fulfillment_orders.map((f: Json) => f.id) });
    }
    const bodies: Record<string, unknown> = {
      cancel: { lines: [{ line_id: 'L2', quantity: 1 }], reason: 'customer asked' },
      address: { address: { ...PARIS_ADDRESS, line1: '2 rue de Rivoli' } },
      notes: { text: 'call before delivery' },
      validate: { note: 'bank transfer received' },
      reject: { reason: 'damaged' },
      pick: { lines: [{ line_id: 'L1', picked: 0 }] },
      ship: { tracking: 'TRK-1' },
    };
    const step = fc.record({
      who: fc.constantFrom<Who>('admin', 'web', 'mkt', 'paris', 'lyon', 'wms'),
      order: fc.nat(),
      fo: fc.nat(),
      op: fc.constantFrom('cancel', 'address', 'notes', 'validate', 'accept', 'reject', 'pick', 'pack', 'ship', 'release', 'fo-cancel', 'nonsense', 'get', 'timeline', 'sourcing', 'list'),
      mutations: fc.array(mutation, { maxLength: 2 }),
      query: fc.dictionary(fc.constantFrom('status', 'channel', 'location', 'from', 'to', 'email', 'external_reference', 'sku', 'limit', 'after', 'other'), fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('0', '-1', '1001', 'pending_payment', 'web', 'WH1', '2026-01-01T00:00:00Z', 'nope'))),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 10, maxLength: 25 }), async (steps) => {
        for (const s of steps) {
          const o = orders[s.order % orders.length];
          const fo = o.fos.length ? o.fos[s.fo % o.fos.length] : 'fo_missing';
          const body = (base: unknown) => mutate(base ?? {}, s.mutations);
          let r: InjectResult;
          let what: string;
          if (s.op === 'get' || s.op === 'timeline' || s.op === 'sourcing') {
            what = `GET /orders/${o.id}/${s.op}`;
            r = await send(s.who, 'GET', s.op === 'get' ? `/orders/${o.id}` : `/orders/${o.id}/${s.op}`);
          } else if (s.op === 'list') {
            const qs = new URLSearchParams(s.query as Record<string, string>).toString();
            what = `GET /orders?${qs}`;
            r = await send(s.who, 'GET', `/orders?${qs}`);
          } else if (s.op === 'cancel' || s.op === 'notes' || s.op === 'validate') {
            what = `POST /orders/:id/${s.op}`;
            r = await send(s.who, 'POST', `/orders/${o.id}/${s.op}`, body(bodies[s.op]));
          } else if (s.op === 'address') {
            what = 'PUT address';
            r = await send(s.who, 'PUT', `/orders/${o.id}/delivery-groups/G1/address`, body(bodies.address));
          } else {
            const action = s.op === 'fo-cancel' ? 'cancel' : s.op;
            what = `POST /fulfillment-orders/:id/${action}`;
            r = await send(s.who, 'POST', `/fulfillment-orders/${fo}/${action}`, body(bodies[s.op] ?? {}));
            if (r.statusCode === 200) for (const id of r.json().created as string[]) o.fos.push(id);
          }
          expectClean(r, `${s.who} ${what} ${JSON.stringify(s.mutations).slice(0, 200)}`);
        }
      }),
      { seed: SEED, numRuns: Number(process.env.FZ_SEQ_RUNS ?? 12) },
    );
    await expectBooksBalance(env.ctx.store.db);
  });
});
