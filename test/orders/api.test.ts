// Order capture and changes end to end through the HTTP API, on every backend: validation
// (nothing stored when refused), out of stock, one order per (channel, external reference),
// Idempotency-Key semantics, Order in Store, several delivery groups, cancellation, address
// changes, notes and the timeline, search and scope, and manual validation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/keys.ts';
import { upsertChannel } from '../../src/channels/channels.ts';
import { checkIntegrity } from '../../src/inventory/integrity.ts';
import { sweepOrders } from '../../src/orders/scheduler.ts';
import { expectError, fingerprint, type InjectResult, type Json, positions, seedStock } from '../api/helpers.ts';
import { type ApiEnv, BACKENDS, createApiEnv } from '../support/backends.ts';
import { smallNetwork } from '../support/fixtures.ts';

// ---- bodies ------------------------------------------------------------------------------------

const PARIS = { line1: '1 rue de Rivoli', postal_code: '75001', city: 'Paris', country: 'FR', latitude: 48.8534, longitude: 2.3488 };
const BERLIN = { line1: 'Unter den Linden 1', postal_code: '10117', city: 'Berlin', country: 'DE', latitude: 52.517, longitude: 13.389 };
const LYON = { line1: '1 place Bellecour', postal_code: '69002', city: 'Lyon', country: 'FR', latitude: 45.7578, longitude: 4.832 };
const HOME = (over: Record<string, unknown> = {}) => ({ mode: 'home', address: PARIS, shipping_price: 500, ...over });
const CC = (store: string, over: Record<string, unknown> = {}) => ({ mode: 'click_and_collect', pickup_location: store, ...over });
const RELAY = (address: Record<string, unknown>, over: Record<string, unknown> = {}) => ({ mode: 'pickup_point', relay_point: { id: 'RP-1', name: 'Tabac', address }, shipping_price: 390, ...over });

interface LineIn {
  sku: string;
  quantity: number;
  unit_price?: number;
  discount?: number;
  tax?: number;
  delivery_group?: string;
  line_id?: string;
}

/** A capture body whose totals and tenders add up (prices include tax: total = subtotal − discount + shipping). */
function orderBody(ref: string, lines: LineIn[], opts: { groups?: Array<Record<string, unknown>>; extra?: Record<string, unknown>; email?: string } = {}): Json {
  const ls = lines.map((l) => ({ unit_price: 1000, ...l }));
  const groups = opts.groups ?? [HOME()];
  const subtotal = ls.reduce((s, l) => s + l.quantity * l.unit_price, 0);
  const discount = ls.reduce((s, l) => s + (l.discount ?? 0), 0);
  const tax = ls.reduce((s, l) => s + (l.tax ?? 0), 0);
  const shipping = groups.reduce((s, g) => s + ((g.shipping_price as number | undefined) ?? 0), 0);
  const total = subtotal - discount + shipping;
  return {
    external_reference: ref,
    customer: { name: 'Ada Lovelace', email: opts.email ?? 'ada@example.com', phone: '+33100000000' },
    currency: 'EUR',
    lines: ls,
    delivery_groups: groups,
    totals: { subtotal, discount, tax, shipping, total },
    tenders: [{ method: 'card', amount: total }],
    ...opts.extra,
  };
}

// ---- environment -------------------------------------------------------------------------------

/** Channels of every environment: web and pos see every location; mkt is a second sales channel. */
const CHANNELS = [
  { code: 'web', name: 'Web', type: 'web' as const },
  { code: 'pos', name: 'Point of sale', type: 'store' as const },
];

interface Keys {
  web: string;
  web2: string;
  mkt: string;
  paris: string;
  lyon: string;
  wms: string;
}

/** A fresh database with the small network, a marketplace channel and a key per role. */
async function setup(backend: 'sqlite' | 'postgres', stock: Record<string, Array<{ sku: string; on_hand: number }>>): Promise<{ env: ApiEnv; keys: Keys }> {
  const env = await createApiEnv(backend);
  await smallNetwork(env.ctx, CHANNELS);
  await upsertChannel(env.ctx, { code: 'mkt', name: 'Marketplace', type: 'marketplace' });
  for (const [loc, items] of Object.entries(stock)) await seedStock(env, loc, '2026-06-01T09:00:00Z', items);
  const key = async (input: Parameters<typeof createApiKey>[1]) => (await createApiKey(env.ctx, input)).secret;
  const keys: Keys = {
    web: await key({ name: 'web shop', role: 'channel', channel: 'web' }),
    web2: await key({ name: 'web shop (second key)', role: 'channel', channel: 'web' }),
    mkt: await key({ name: 'marketplace', role: 'channel', channel: 'mkt' }),
    paris: await key({ name: 'paris store', role: 'store', channel: 'pos', locations: ['ST-PARIS'] }),
    lyon: await key({ name: 'lyon store', role: 'store', channel: 'pos', locations: ['ST-LYON'] }),
    wms: await key({ name: 'wms', role: 'integration', locations: ['WH1'] }),
  };
  return { env, keys };
}

/** Tables the order feature writes, on top of the shared fingerprint (stock, events, keys, availability). */
const ORDER_TABLES = ['orders', 'order_lines', 'delivery_groups', 'fulfillment_orders', 'fulfillment_lines', 'order_sourcing', 'idempotency_keys', 'location_capacity_usage', 'availability_dirty'] as const;

async function everything(env: ApiEnv): Promise<Record<string, unknown>> {
  const out = await fingerprint(env);
  for (const t of ORDER_TABLES) {
    const rows = await (env.ctx.store.db as Json).selectFrom(t).selectAll().execute();
    out[t] = rows.map((r: Record<string, unknown>) => JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).sort();
  }
  return out;
}

const count = async (env: ApiEnv, table: 'orders' | 'reservations' | 'fulfillment_orders', where?: [string, string]): Promise<number> => {
  let q = (env.ctx.store.db as Json).selectFrom(table).select((eb: Json) => eb.fn.countAll().as('n'));
  if (where) q = q.where(where[0], '=', where[1]);
  return Number((await q.executeTakeFirstOrThrow()).n);
};

const post = (env: ApiEnv, key: string, url: string, payload: unknown, headers: Record<string, string> = {}) =>
  env.app.inject({ method: 'POST', url, headers: { ...env.auth(key), ...headers }, payload: payload as never }) as Promise<InjectResult>;
const get = (env: ApiEnv, key: string, url: string) => env.app.inject({ method: 'GET', url, headers: env.auth(key) }) as Promise<InjectResult>;
const capture = (env: ApiEnv, key: string, body: unknown, headers: Record<string, string> = {}) => post(env, key, '/orders', body, headers);

async function captured(env: ApiEnv, key: string, body: unknown): Promise<Json> {
  const r = await capture(env, key, body);
  expect(r.statusCode, r.body).toBe(201);
  return r.json();
}

let seq = 0;
const uniq = (p: string) => `${p}-${++seq}`;

async function restock(env: ApiEnv, location: string, sku: string, quantity: number): Promise<void> {
  const r = await post(env, env.adminKey, '/stock/deltas', { items: [{ location, sku, quantity, idempotency_key: uniq('restock') }] });
  expect(r.statusCode, r.body).toBe(200);
  expect(r.json().items[0].status, r.body).toBe('applied');
}

async function integrityOk(env: ApiEnv): Promise<void> {
  expect((await checkIntegrity(env.ctx.store.db)).issues).toEqual([]);
}

const fulfil = async (env: ApiEnv, foId: string, steps: Array<'accept' | 'pick' | 'pack' | 'ship'>) => {
  for (const action of steps) {
    const r = await post(env, env.adminKey, `/fulfillment-orders/${foId}/${action}`, action === 'ship' ? { tracking: uniq('TRK') } : {});
    expect(r.statusCode, `${action}: ${r.body}`).toBe(200);
  }
};

describe.each(BACKENDS)('orders API (%s)', (backend) => {
  // ---- 1. capture validation -------------------------------------------------------------------
  describe('capture validation: every refused request stores nothing', () => {
    let env: ApiEnv;
    let keys: Keys;
    beforeAll(async () => {
      ({ env, keys } = await setup(backend, { WH1: [{ sku: 'A1', on_hand: 10 }, { sku: 'B1', on_hand: 5 }], 'ST-PARIS': [{ sku: 'A1', on_hand: 2 }] }));
    });
    afterAll(async () => env?.close());

    const ok = () => orderBody('V-1', [{ sku: 'A1', quantity: 1 }, { sku: 'B1', quantity: 2, unit_price: 2500 }]);
    const edit = (fn: (b: Json) => void) => () => {
      const b = ok();
      fn(b);
      return b;
    };
    type Who = 'web' | 'admin' | 'paris' | 'wms';
    interface Case {
      name: string;
      body: () => unknown;
      status: number;
      code: string;
      who?: Who;
      headers?: Record<string, string>;
      /** The first validation detail's path (string), or the message (RegExp). */
      why?: string | RegExp;
    }
    const CASES: Case[] = [
      { name: 'unknown sku', body: edit((b) => (b.lines[1].sku = 'NOPE')), status: 404, code: 'unknown_sku', why: /NOPE/ },
      { name: 'quantity 0', body: edit((b) => (b.lines[0].quantity = 0)), status: 400, code: 'validation_failed', why: 'body/lines/0/quantity' },
      { name: 'negative quantity', body: edit((b) => (b.lines[1].quantity = -2)), status: 400, code: 'validation_failed', why: 'body/lines/1/quantity' },
      { name: 'fractional quantity', body: edit((b) => (b.lines[0].quantity = 1.5)), status: 400, code: 'validation_failed', why: 'body/lines/0/quantity' },
      { name: 'quantity as a string', body: edit((b) => (b.lines[0].quantity = '1')), status: 400, code: 'validation_failed', why: 'body/lines/0/quantity' },
      { name: 'negative unit_price', body: edit((b) => (b.lines[0].unit_price = -1)), status: 400, code: 'validation_failed', why: 'body/lines/0/unit_price' },
      { name: 'negative discount', body: edit((b) => (b.lines[0].discount = -100)), status: 400, code: 'validation_failed', why: 'body/lines/0/discount' },
      { name: "currency 'XXY' (3 letters, not ISO 4217)", body: edit((b) => (b.currency = 'XXY')), status: 400, code: 'validation_failed', why: /ISO 4217/ },
      { name: "currency 'eur' (lower case)", body: edit((b) => (b.currency = 'eur')), status: 400, code: 'validation_failed', why: 'body/currency' },
      { name: "currency 'EURO'", body: edit((b) => (b.currency = 'EURO')), status: 400, code: 'validation_failed', why: 'body/currency' },
      { name: "home address country 'XX'", body: edit((b) => (b.delivery_groups[0].address = { ...PARIS, country: 'XX' })), status: 400, code: 'invalid_country' },
      { name: "billing address country 'ZZ'", body: edit((b) => (b.billing_address = { ...PARIS, country: 'ZZ' })), status: 400, code: 'invalid_country' },
      { name: "relay point country 'QQ'", body: edit((b) => (b.delivery_groups = [RELAY({ ...PARIS, country: 'QQ' }, { shipping_price: 500 })])), status: 400, code: 'invalid_country' },
      { name: "home address country 'FRA'", body: edit((b) => (b.delivery_groups[0].address = { ...PARIS, country: 'FRA' })), status: 400, code: 'validation_failed', why: 'body/delivery_groups/0/address/country' },
      { name: 'home delivery without an address', body: edit((b) => delete b.delivery_groups[0].address), status: 400, code: 'validation_failed', why: /address/ },
      { name: 'pickup_point without a relay point', body: edit((b) => (b.delivery_groups = [{ mode: 'pickup_point', shipping_price: 500 }])), status: 400, code: 'validation_failed', why: /relay_point/ },
      { name: 'click_and_collect at a warehouse (not a pickup point)', body: edit((b) => (b.delivery_groups = [CC('WH1', { shipping_price: 500 })])), status: 400, code: 'validation_failed', why: /WH1/ },
      { name: 'click_and_collect at a store without the capability', body: edit((b) => (b.delivery_groups = [CC('SUP1', { shipping_price: 500 })])), status: 400, code: 'validation_failed', why: /SUP1/ },
      { name: 'click_and_collect at an unknown location', body: edit((b) => (b.delivery_groups = [CC('NOWHERE', { shipping_price: 500 })])), status: 404, code: 'unknown_location' },
      { name: 'click_and_collect without pickup_location', body: edit((b) => (b.delivery_groups = [{ mode: 'click_and_collect', shipping_price: 500 }])), status: 400, code: 'validation_failed', why: /pickup_location/ },
      { name: 'in_store at a warehouse', body: edit((b) => (b.delivery_groups = [{ mode: 'in_store', pickup_location: 'WH1', shipping_price: 500 }])), status: 400, code: 'validation_failed', why: /not a store/ },
      { name: 'unknown delivery mode', body: edit((b) => (b.delivery_groups[0].mode = 'drone')), status: 400, code: 'validation_failed', why: 'body/delivery_groups/0/mode' },
      { name: 'no lines', body: edit((b) => (b.lines = [])), status: 400, code: 'validation_failed', why: 'body/lines' },
      { name: 'no delivery groups', body: edit((b) => (b.delivery_groups = [])), status: 400, code: 'validation_failed', why: 'body/delivery_groups' },
      { name: 'an undeclared field', body: edit((b) => (b.priority = 'high')), status: 400, code: 'validation_failed', why: 'body' },
      { name: 'no external_reference', body: edit((b) => delete b.external_reference), status: 400, code: 'validation_failed', why: 'body' },
      { name: 'an invalid email', body: edit((b) => (b.customer.email = 'not-an-email')), status: 400, code: 'validation_failed', why: 'body/customer/email' },
      { name: 'promised_by not a date-time', body: edit((b) => (b.promised_by = 'tomorrow')), status: 400, code: 'validation_failed', why: 'body/promised_by' },
      { name: 'the same line id twice', body: edit((b) => { b.lines[0].line_id = 'X'; b.lines[1].line_id = 'X'; }), status: 400, code: 'validation_failed', why: /X/ },
      { name: 'the same group id twice', body: edit((b) => (b.delivery_groups = [HOME({ group_id: 'G', shipping_price: 250 }), HOME({ group_id: 'G', shipping_price: 250 })])), status: 400, code: 'validation_failed', why: /twice/ },
      { name: 'a line naming a group the order does not have', body: edit((b) => (b.lines[0].delivery_group = 'G9')), status: 400, code: 'validation_failed', why: /G9/ },
      {
        name: 'two groups and a line that names none',
        body: edit((b) => {
          b.delivery_groups = [HOME({ group_id: 'H', shipping_price: 250 }), CC('ST-PARIS', { group_id: 'C', shipping_price: 250 })];
          b.lines[1].delivery_group = 'C';
        }),
        status: 400,
        code: 'validation_failed',
        why: /must name its delivery group/,
      },
      {
        name: 'a delivery group without lines',
        body: edit((b) => {
          b.delivery_groups = [HOME({ group_id: 'H', shipping_price: 250 }), CC('ST-PARIS', { group_id: 'C', shipping_price: 250 })];
          for (const l of b.lines) l.delivery_group = 'H';
        }),
        status: 400,
        code: 'validation_failed',
        why: /no lines/,
      },
      { name: 'totals.subtotal off by one', body: edit((b) => (b.totals.subtotal += 1)), status: 422, code: 'totals_mismatch' },
      { name: 'totals.total off by one (tenders follow)', body: edit((b) => { b.totals.total += 1; b.tenders[0].amount += 1; }), status: 422, code: 'totals_mismatch' },
      { name: 'totals.shipping not the groups’ shipping', body: edit((b) => { b.totals.shipping = 0; b.totals.total -= 500; b.tenders[0].amount -= 500; }), status: 422, code: 'totals_mismatch' },
      { name: 'a line discount that the totals ignore', body: edit((b) => (b.lines[0].discount = 100)), status: 422, code: 'totals_mismatch' },
      {
        name: 'a discount larger than the line',
        body: () => orderBody('V-1', [{ sku: 'A1', quantity: 1, unit_price: 100, discount: 200 }], { groups: [HOME({ shipping_price: 500 })] }),
        status: 422,
        code: 'totals_mismatch',
        why: /exceeds/,
      },
      { name: 'tax added although prices include tax', body: edit((b) => { b.lines[0].tax = 200; b.totals.tax = 200; b.totals.total += 200; b.tenders[0].amount += 200; }), status: 422, code: 'totals_mismatch' },
      { name: 'tenders short of the total', body: edit((b) => (b.tenders = [{ method: 'card', amount: b.totals.total - 1 }])), status: 422, code: 'totals_mismatch', why: /tenders/ },
      { name: 'tenders above the total', body: edit((b) => (b.tenders = [{ method: 'card', amount: b.totals.total }, { method: 'gift_card', amount: 1 }])), status: 422, code: 'totals_mismatch', why: /tenders/ },
      { name: 'a body above the 2 MiB limit', body: edit((b) => (b.customer.name = 'x'.repeat(2.5 * 1024 * 1024))), status: 413, code: 'body_too_large' },
      { name: '201 lines (at most 200)', body: () => orderBody('V-1', Array.from({ length: 201 }, (_, i) => ({ sku: 'A1', quantity: 1, line_id: `L${i}` }))), status: 400, code: 'page_too_large' },
      { name: 'a channel key naming another channel', body: edit((b) => (b.channel = 'mkt')), status: 404, code: 'unknown_channel' },
      { name: 'an admin key naming an unknown channel', who: 'admin', body: edit((b) => (b.channel = 'nochan')), status: 404, code: 'unknown_channel' },
      { name: 'an admin key naming no channel', who: 'admin', body: ok, status: 400, code: 'validation_failed', why: /channel/ },
      { name: 'a channel key capturing an Order in Store (body.store)', body: edit((b) => (b.store = 'ST-PARIS')), status: 403, code: 'forbidden' },
      { name: 'a store key naming a store it does not act for', who: 'paris', body: edit((b) => (b.store = 'ST-LYON')), status: 404, code: 'unknown_location' },
      { name: 'an admin Order in Store at a warehouse', who: 'admin', body: edit((b) => { b.channel = 'pos'; b.store = 'WH1'; }), status: 400, code: 'validation_failed', why: /not a store/ },
      { name: 'an integration key', who: 'wms', body: ok, status: 403, code: 'forbidden' },
      { name: 'an Idempotency-Key with a space', body: ok, headers: { 'idempotency-key': 'a b' }, status: 400, code: 'validation_failed' },
      { name: 'an Idempotency-Key of 256 characters', body: ok, headers: { 'idempotency-key': 'k'.repeat(256) }, status: 400, code: 'validation_failed' },
    ];

    it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const before = await everything(env);
      const secret = c.who === 'admin' ? env.adminKey : keys[c.who ?? 'web'];
      const res = await capture(env, secret, c.body(), c.headers);
      const body = expectError(res, c.status, c.code);
      if (typeof c.why === 'string') expect(body.error.details?.[0]?.path, res.body).toBe(c.why);
      else if (c.why) expect(body.error.message, res.body).toMatch(c.why);
      if (c.code === 'totals_mismatch') expect(body.error.details.problems.length, res.body).toBeGreaterThan(0);
      expect(await everything(env)).toEqual(before);
    });

    it('the valid counterpart is captured (201), so each case above fails for its own reason', async () => {
      const before = await positions(env, 'WH1');
      const r = await capture(env, keys.web, ok());
      expect(r.statusCode, r.body).toBe(201);
      const o = r.json();
      expect([o.channel, o.external_reference, o.status, o.currency]).toEqual(['web', 'V-1', 'pending_payment', 'EUR']);
      expect(o.totals).toEqual({ subtotal: 6000, discount: 0, tax: 0, shipping: 500, total: 6500 });
      expect(o.lines.map((l: Json) => [l.line_id, l.sku, l.quantity, l.allocated, l.backordered, l.cancelled])).toEqual([
        ['L1', 'A1', 1, 1, 0, 0],
        ['L2', 'B1', 2, 2, 0, 0],
      ]);
      expect(String(r.headers['content-type'])).toMatch(/^application\/json/);
      const after = await positions(env, 'WH1');
      const paris = await positions(env, 'ST-PARIS');
      // A1 (class A) goes to the warehouse first; every unit is reserved once, somewhere.
      expect(after.A1.reserved + paris.A1.reserved).toBe(before.A1.reserved + 1);
      expect(after.B1.reserved).toBe(before.B1.reserved + 2);
      await integrityOk(env);
    });

    it('prices without tax: the total adds the tax, and must', async () => {
      const body = orderBody('V-TAX', [{ sku: 'A1', quantity: 1, unit_price: 1000, tax: 200 }], { extra: { tax_included: false } });
      body.totals.total += 200;
      body.tenders[0].amount += 200;
      const wrong = structuredClone(body);
      wrong.totals.total -= 200;
      wrong.tenders[0].amount -= 200;
      const before = await everything(env);
      expectError(await capture(env, keys.web, wrong), 422, 'totals_mismatch');
      expect(await everything(env)).toEqual(before);
      const o = await captured(env, keys.web, body);
      expect(o.totals).toEqual({ subtotal: 1000, discount: 0, tax: 200, shipping: 500, total: 1700 });
    });

    it('200 lines are accepted (the cap is inclusive)', async () => {
      await restock(env, 'WH1', 'C1', 200);
      const r = await capture(env, keys.web, orderBody('V-200', Array.from({ length: 200 }, () => ({ sku: 'C1', quantity: 1, unit_price: 10 }))));
      expect(r.statusCode, r.body.slice(0, 400)).toBe(201);
      expect(r.json().lines).toHaveLength(200);
    });
  });

  // ---- 2. out of stock -------------------------------------------------------------------------
  describe('out of stock', () => {
    let env: ApiEnv;
    let keys: Keys;
    beforeAll(async () => {
      ({ env, keys } = await setup(backend, { WH1: [{ sku: 'A1', on_hand: 10 }, { sku: 'B1', on_hand: 2 }, { sku: 'C1', on_hand: 1 }] }));
    });
    afterAll(async () => env?.close());

    it('is a clean 409 out_of_stock listing each short line, and stores nothing', async () => {
      const before = await everything(env);
      const r = await capture(env, keys.web, orderBody('OOS-1', [{ sku: 'A1', quantity: 1 }, { sku: 'B1', quantity: 3 }, { sku: 'C1', quantity: 4 }]));
      const body = expectError(r, 409, 'out_of_stock');
      expect(body.error.details).toEqual({
        lines: [
          { line_id: 'L2', sku: 'B1', requested: 3, unfilled: 1, fillable: 2 },
          { line_id: 'L3', sku: 'C1', requested: 4, unfilled: 3, fillable: 1 },
        ],
      });
      expect(await everything(env)).toEqual(before);
      expect(await count(env, 'orders')).toBe(0);
    });

    it('a sku no location holds is out of stock too', async () => {
      await addUnstockedSku(env, 'Z9');
      const before = await everything(env);
      const r = await capture(env, keys.web, orderBody('OOS-2', [{ sku: 'Z9', quantity: 1 }]));
      expect(expectError(r, 409, 'out_of_stock').error.details.lines).toEqual([{ line_id: 'L1', sku: 'Z9', requested: 1, unfilled: 1, fillable: 0 }]);
      expect(await everything(env)).toEqual(before);
    });

    it('the same order within stock is captured', async () => {
      const o = await captured(env, keys.web, orderBody('OOS-1', [{ sku: 'A1', quantity: 1 }, { sku: 'B1', quantity: 2 }, { sku: 'C1', quantity: 1 }]));
      expect(o.lines.map((l: Json) => l.allocated)).toEqual([1, 2, 1]);
      expect(await positions(env, 'WH1')).toEqual({ A1: { on_hand: 10, reserved: 1, quarantine: 0 }, B1: { on_hand: 2, reserved: 2, quarantine: 0 }, C1: { on_hand: 1, reserved: 1, quarantine: 0 } });
      await integrityOk(env);
    });
  });

  // ---- 3. one order per (channel, external reference) ------------------------------------------
  describe('(channel, external_reference) is unique', () => {
    let env: ApiEnv;
    let keys: Keys;
    beforeAll(async () => {
      ({ env, keys } = await setup(backend, { WH1: [{ sku: 'A1', on_hand: 10 }, { sku: 'B1', on_hand: 3 }, { sku: 'C1', on_hand: 4 }] }));
    });
    afterAll(async () => env?.close());

    it('capturing the same order again answers 200 with the stored order, reserving nothing more', async () => {
      const first = await captured(env, keys.web, orderBody('U-1', [{ sku: 'A1', quantity: 2 }]));
      const stock = await positions(env, 'WH1');
      const before = await everything(env);
      const again = await capture(env, keys.web, orderBody('U-1', [{ sku: 'A1', quantity: 2 }]));
      expect(again.statusCode, again.body).toBe(200);
      expect(again.json()).toEqual(first);
      // Another key of the same channel, and a body that differs: still the stored order, unchanged.
      const other = await capture(env, keys.web2, orderBody('U-1', [{ sku: 'A1', quantity: 5 }]));
      expect(other.statusCode, other.body).toBe(200);
      expect(other.json()).toEqual(first);
      expect(await positions(env, 'WH1')).toEqual(stock);
      expect(await everything(env)).toEqual(before);
    });

    it('the same reference in another channel is another order', async () => {
      const web = (await get(env, keys.web, '/orders?external_reference=U-1')).json().items[0];
      const mkt = await captured(env, keys.mkt, orderBody('U-1', [{ sku: 'A1', quantity: 1 }]));
      expect(mkt.id).not.toBe(web.id);
      expect(mkt.channel).toBe('mkt');
    });

    it('20 parallel captures of one reference store one order and reserve its stock once', async () => {
      // B1: 3 in stock, the order takes all 3: a duplicate must still answer with the order, not out_of_stock.
      const body = orderBody('U-PAR', [{ sku: 'B1', quantity: 3 }, { sku: 'C1', quantity: 1 }]);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => capture(env, i % 2 ? keys.web : keys.web2, body)));
      const statuses = results.map((r) => r.statusCode).sort();
      expect(statuses, results.map((r) => r.body.slice(0, 200)).join('\n')).toEqual([...Array(19).fill(200), 201]);
      const ids = new Set(results.map((r) => r.json().id));
      expect(ids.size).toBe(1);
      expect(await count(env, 'orders', ['external_reference', 'U-PAR'])).toBe(1);
      const wh1 = await positions(env, 'WH1');
      expect(wh1.B1).toEqual({ on_hand: 3, reserved: 3, quarantine: 0 });
      expect(wh1.C1).toEqual({ on_hand: 4, reserved: 1, quarantine: 0 });
      const [id] = [...ids];
      expect(await count(env, 'reservations', ['reference', id])).toBe(2);
      await integrityOk(env);
    });
  });

  // ---- 4. Idempotency-Key ----------------------------------------------------------------------
  describe('Idempotency-Key', () => {
    let env: ApiEnv;
    let keys: Keys;
    beforeAll(async () => {
      ({ env, keys } = await setup(backend, { WH1: [{ sku: 'A1', on_hand: 50 }, { sku: 'B1', on_hand: 1 }, { sku: 'C1', on_hand: 20 }] }));
    });
    afterAll(async () => env?.close());
    const idem = (key: string) => ({ 'idempotency-key': key });

    it('the same key and body, 10 in parallel: one order; every success is byte-identical, replays say so', async () => {
      const body = orderBody('I-1', [{ sku: 'A1', quantity: 1 }, { sku: 'C1', quantity: 2 }]);
      const results = await Promise.all(Array.from({ length: 10 }, () => capture(env, keys.web, body, idem('key-1'))));
      const originals = results.filter((r) => r.statusCode === 201 && r.headers['idempotent-replayed'] === undefined);
      expect(originals, results.map((r) => `${r.statusCode} ${r.body.slice(0, 120)}`).join('\n')).toHaveLength(1);
      const original = originals[0];
      for (const r of results) {
        if (r === original) continue;
        if (r.statusCode === 409) {
          // Still running when this one arrived: refused, to retry.
          expectError(r, 409, 'idempotency_in_flight');
          continue;
        }
        expect(r.statusCode, r.body).toBe(201);
        expect(r.headers['idempotent-replayed']).toBe('true');
        expect(r.body).toBe(original.body);
      }
      // Once the first has finished, every retry is a replay, byte for byte.
      for (let i = 0; i < 3; i++) {
        const r = await capture(env, keys.web, body, idem('key-1'));
        expect(r.statusCode, r.body).toBe(201);
        expect(r.headers['idempotent-replayed']).toBe('true');
        expect(String(r.headers['content-type'])).toMatch(/^application\/json/);
        expect(r.body).toBe(original.body);
      }
      expect(await count(env, 'orders', ['external_reference', 'I-1'])).toBe(1);
      expect((await positions(env, 'WH1')).A1.reserved).toBe(1);
      // The replay is the first response, not the order as it is now.
      const id = original.json().id;
      const note = await post(env, keys.web, `/orders/${id}/notes`, { text: 'changes the version' });
      expect(note.statusCode, note.body).toBe(201);
      const replay = await capture(env, keys.web, body, idem('key-1'));
      expect(replay.body).toBe(original.body);
      expect((await get(env, keys.web, `/orders/${id}`)).json().version).toBeGreaterThan(original.json().version);
    });

    it('a request without the header is not remembered: the original response is not replayed for it', async () => {
      const r = await capture(env, keys.web, orderBody('I-1', [{ sku: 'A1', quantity: 1 }, { sku: 'C1', quantity: 2 }]));
      expect(r.statusCode).toBe(200);
      expect(r.headers['idempotent-replayed']).toBeUndefined();
    });

    it('the same key with another body is 422 idempotency_key_reused, and changes nothing', async () => {
      const before = await everything(env);
      const other = orderBody('I-1', [{ sku: 'A1', quantity: 2 }, { sku: 'C1', quantity: 2 }]);
      expectError(await capture(env, keys.web, other, idem('key-1')), 422, 'idempotency_key_reused');
      expectError(await capture(env, keys.web, orderBody('I-OTHER', [{ sku: 'A1', quantity: 1 }]), idem('key-1')), 422, 'idempotency_key_reused');
      expect(await everything(env)).toEqual(before);
    });

    it('the same request with its fields in another order, or a default sent explicitly, is the same request: replayed', async () => {
      const body = orderBody('I-ORDER', [{ sku: 'A1', quantity: 1 }]);
      const first = await capture(env, keys.web, body, idem('key-order'));
      expect(first.statusCode, first.body).toBe(201);
      const reordered = Object.fromEntries(Object.entries({ ...body, tax_included: true }).reverse());
      const again = await capture(env, keys.web, reordered, idem('key-order'));
      expect([again.statusCode, again.headers['idempotent-replayed'], again.body]).toEqual([201, 'true', first.body]);
    });

    it('keys belong to the API key: another caller using the same key gets its own result, never the first response', async () => {
      const body = orderBody('I-1', [{ sku: 'A1', quantity: 1 }, { sku: 'C1', quantity: 2 }]);
      const first = await capture(env, keys.web, body, idem('key-1'));
      // Another channel: its own order, 201, not web's order.
      const mkt = await capture(env, keys.mkt, body, idem('key-1'));
      expect(mkt.statusCode, mkt.body).toBe(201);
      expect(mkt.headers['idempotent-replayed']).toBeUndefined();
      expect(mkt.json().channel).toBe('mkt');
      expect(mkt.json().id).not.toBe(first.json().id);
      // Another key of the same channel: the same order (by reference), but not a replay.
      const web2 = await capture(env, keys.web2, body, idem('key-1'));
      expect(web2.statusCode, web2.body).toBe(200);
      expect(web2.headers['idempotent-replayed']).toBeUndefined();
      expect(web2.json().id).toBe(first.json().id);
      // And another caller's different body under the same key is not "reused" for it.
      const mkt2 = await capture(env, keys.web2, orderBody('I-WEB2', [{ sku: 'C1', quantity: 1 }]), idem('key-2'));
      expect(mkt2.statusCode, mkt2.body).toBe(201);
    });

    it('a refused request (out of stock) frees its key: the retry after restocking succeeds', async () => {
      const body = orderBody('I-OOS', [{ sku: 'B1', quantity: 2 }]);
      const before = await everything(env);
      expectError(await capture(env, keys.web, body, idem('key-oos')), 409, 'out_of_stock');
      expect(await everything(env)).toEqual(before);
      expectError(await capture(env, keys.web, body, idem('key-oos')), 409, 'out_of_stock');
      await restock(env, 'WH1', 'B1', 1);
      const ok = await capture(env, keys.web, body, idem('key-oos'));
      expect(ok.statusCode, ok.body).toBe(201);
      expect(ok.headers['idempotent-replayed']).toBeUndefined();
      const replay = await capture(env, keys.web, body, idem('key-oos'));
      expect([replay.statusCode, replay.headers['idempotent-replayed'], replay.body]).toEqual([201, 'true', ok.body]);
    });

    it('a refused request (bad input) frees its key too', async () => {
      const bad = orderBody('I-BAD', [{ sku: 'A1', quantity: 1 }]);
      bad.totals.subtotal += 1;
      expectError(await capture(env, keys.web, bad, idem('key-bad')), 422, 'totals_mismatch');
      const good = orderBody('I-BAD', [{ sku: 'A1', quantity: 1 }]);
      const r = await capture(env, keys.web, good, idem('key-bad'));
      expect(r.statusCode, r.body).toBe(201);
    });

    it('a key held by a request that died is refused until its lease ends, then taken over without a second order', async () => {
      const body = orderBody('I-LEASE', [{ sku: 'C1', quantity: 1 }]);
      const first = await capture(env, keys.web, body, idem('key-lease'));
      expect(first.statusCode, first.body).toBe(201);
      // Pretend the process died after storing the order but before remembering the response.
      const now = env.clock.now();
      await env.ctx.store.db.updateTable('idempotency_keys').set({ state: 'in_flight', status_code: null, response: null, locked_until: now + env.ctx.orders.idempotencyLeaseMs }).where('key', '=', 'key-lease').execute();
      expectError(await capture(env, keys.web, body, idem('key-lease')), 409, 'idempotency_in_flight');
      env.clock.advance(env.ctx.orders.idempotencyLeaseMs + 1);
      const retry = await capture(env, keys.web, body, idem('key-lease'));
      expect(retry.statusCode, retry.body).toBe(200);
      expect(retry.json().id).toBe(first.json().id);
      expect(await count(env, 'orders', ['external_reference', 'I-LEASE'])).toBe(1);
      const replay = await capture(env, keys.web, body, idem('key-lease'));
      expect([replay.statusCode, replay.headers['idempotent-replayed'], replay.body]).toEqual([200, 'true', retry.body]);
    });

    it('keys expire after idempotencyTtlMs: then the key is free for a new request', async () => {
      const ttl = env.ctx.orders.idempotencyTtlMs;
      const first = await capture(env, keys.web, orderBody('I-TTL-1', [{ sku: 'C1', quantity: 1 }]), idem('key-ttl'));
      expect(first.statusCode, first.body).toBe(201);
      env.clock.advance(ttl - 1);
      expectError(await capture(env, keys.web, orderBody('I-TTL-2', [{ sku: 'C1', quantity: 1 }]), idem('key-ttl')), 422, 'idempotency_key_reused');
      const replay = await capture(env, keys.web, orderBody('I-TTL-1', [{ sku: 'C1', quantity: 1 }]), idem('key-ttl'));
      expect([replay.statusCode, replay.headers['idempotent-replayed'], replay.body]).toEqual([201, 'true', first.body]);
      env.clock.advance(1);
      const second = await capture(env, keys.web, orderBody('I-TTL-2', [{ sku: 'C1', quantity: 1 }]), idem('key-ttl'));
      expect(second.statusCode, second.body).toBe(201);
      expect(second.headers['idempotent-replayed']).toBeUndefined();
      expect(second.json().external_reference).toBe('I-TTL-2');
      // The scheduler forgets expired keys.
      env.clock.advance(ttl);
      expect((await sweepOrders(env.ctx)).keysPurged).toBeGreaterThan(0);
      expect(await env.ctx.store.db.selectFrom('idempotency_keys').selectAll().where('expires_at', '<=', env.clock.now()).execute()).toEqual([]);
      await integrityOk(env);
    });
  });

  // ---- 5. Order in Store -----------------------------------------------------------------------
  describe('Order in Store', () => {
    let env: ApiEnv;
    let keys: Keys;
    beforeAll(async () => {
      ({ env, keys } = await setup(backend, {
        WH1: [{ sku: 'A1', on_hand: 10 }, { sku: 'B1', on_hand: 5 }, { sku: 'C1', on_hand: 5 }],
        'ST-PARIS': [{ sku: 'A1', on_hand: 3 }, { sku: 'C1', on_hand: 3 }],
      }));
    });
    afterAll(async () => env?.close());
    const locationsOf = (o: Json) => o.fulfillment_orders.map((f: Json) => f.location).sort();

    it('controls: for a web order, ST-PARIS is the store sourcing picks', async () => {
      // Slow mover (C1) to a Paris home: a store within 150 km; click & collect at ST-PARIS: ST-PARIS itself.
      const home = await captured(env, keys.web, orderBody('CTRL-1', [{ sku: 'C1', quantity: 1 }]));
      expect(locationsOf(home)).toEqual(['ST-PARIS']);
      const cc = await captured(env, keys.web, orderBody('CTRL-2', [{ sku: 'A1', quantity: 1 }], { groups: [CC('ST-PARIS')] }));
      expect(locationsOf(cc)).toEqual(['ST-PARIS']);
      for (const o of [home, cc]) expect((await post(env, keys.web, `/orders/${o.id}/cancel`, {})).statusCode).toBe(200);
    });

    it('a store associate orders home an item the store lacks: sourced elsewhere, store and associate recorded', async () => {
      const o = await captured(env, keys.paris, orderBody('OIS-1', [{ sku: 'B1', quantity: 2 }, { sku: 'C1', quantity: 1 }], { extra: { associate: 'alice' } }));
      expect([o.channel, o.store, o.associate]).toEqual(['pos', 'ST-PARIS', 'alice']);
      expect(locationsOf(o)).toEqual(['WH1']);
      expect(o.fulfillment_orders[0].mode).toBe('home');
      const tl = (await get(env, keys.paris, `/orders/${o.id}/timeline`)).json();
      const created = tl.entries.find((e: Json) => e.type === 'order.created');
      expect(created.data.store).toBe('ST-PARIS');
      expect(created.actor).toMatchObject({ name: 'paris store', role: 'store' });
      const paris = await positions(env, 'ST-PARIS');
      expect([paris.A1.reserved, paris.C1.reserved]).toEqual([0, 0]);
      const sourcing = (await get(env, keys.paris, `/orders/${o.id}/sourcing`)).json();
      expect(sourcing.decisions).toHaveLength(1);
      expect(JSON.stringify(sourcing.decisions[0].decision.shipments)).not.toContain('ST-PARIS');
    });

    it('click and collect back to the capturing store: the store is excluded even though it holds the item', async () => {
      const o = await captured(env, keys.paris, orderBody('OIS-2', [{ sku: 'A1', quantity: 2 }], { groups: [CC('ST-PARIS')], extra: { store: 'ST-PARIS', associate: 'bob' } }));
      expect([o.store, o.associate, o.delivery_groups[0].pickup_location]).toEqual(['ST-PARIS', 'bob', 'ST-PARIS']);
      expect(locationsOf(o)).toEqual(['WH1']);
      expect(o.fulfillment_orders[0].mode).toBe('store_transfer');
      expect((await positions(env, 'ST-PARIS')).A1.reserved).toBe(0);
    });

    it('what only the capturing store could fill is out of stock, and nothing is stored', async () => {
      // WH1 has C1: 5 − 1 (OIS-1) = 4 left; ST-PARIS has 3 more, but it is excluded.
      const before = await everything(env);
      const r = await capture(env, keys.paris, orderBody('OIS-3', [{ sku: 'C1', quantity: 6 }]));
      expect(expectError(r, 409, 'out_of_stock').error.details.lines).toEqual([{ line_id: 'L1', sku: 'C1', requested: 6, unfilled: 2, fillable: 4 }]);
      expect(await everything(env)).toEqual(before);
      // The web channel, for the same order, may use ST-PARIS.
      const web = await captured(env, keys.web, orderBody('OIS-3', [{ sku: 'C1', quantity: 6 }]));
      expect(locationsOf(web)).toContain('ST-PARIS');
      expect((await post(env, keys.web, `/orders/${web.id}/cancel`, {})).statusCode).toBe(200);
    });

    it('in_store (take now) is served by the store itself', async () => {
      const o = await captured(env, keys.paris, orderBody('OIS-4', [{ sku: 'A1', quantity: 1 }], { groups: [{ mode: 'in_store' }] }));
      expect(locationsOf(o)).toEqual(['ST-PARIS']);
      expect(o.delivery_groups[0].pickup_location).toBe('ST-PARIS');
    });

    it('a store key without a channel captures into the store (POS) channel', async () => {
      const noChannel = (await createApiKey(env.ctx, { name: 'paris tablet', role: 'store', locations: ['ST-PARIS'] })).secret;
      const o = await captured(env, noChannel, orderBody('OIS-5', [{ sku: 'B1', quantity: 1 }]));
      expect([o.channel, o.store]).toEqual(['pos', 'ST-PARIS']);
    });

    it('a store key without a channel captures only into a store (POS) channel, never into web', async () => {
      const noChannel = (await createApiKey(env.ctx, { name: 'paris kiosk', role: 'store', locations: ['ST-PARIS'] })).secret;
      const before = await everything(env);
      expectError(await capture(env, noChannel, { ...orderBody('OIS-6', [{ sku: 'B1', quantity: 1 }]), channel: 'web' }), 404, 'unknown_channel');
      expect(await everything(env)).toEqual(before);
    });

    it('the capturing store sees its order with every fulfilment order; another store does not see it; a channel key cannot capture with body.store', async () => {
      const id = (await get(env, keys.paris, '/orders?external_reference=OIS-1')).json().items[0].id;
      const mine = await get(env, keys.paris, `/orders/${id}`);
      expect(mine.statusCode).toBe(200);
      expect(locationsOf(mine.json())).toEqual(['WH1']);
      expectError(await get(env, keys.lyon, `/orders/${id}`), 404, 'not_found');
      const before = await everything(env);
      expectError(await capture(env, keys.web, orderBody('OIS-6', [{ sku: 'B1', quantity: 1 }], { extra: { store: 'ST-PARIS' } })), 403, 'forbidden');
      expectError(await capture(env, keys.lyon, orderBody('OIS-6', [{ sku: 'B1', quantity: 1 }], { extra: { store: 'ST-PARIS' } })), 404, 'unknown_location');
      expect(await everything(env)).toEqual(before);
      await integrityOk(env);
    });

    it('another store of the same POS channel reusing the reference does not get the order (no data across stores)', async () => {
      const mine = (await get(env, keys.paris, '/orders?external_reference=OIS-1')).json().items[0];
      const before = await everything(env);
      const r = await capture(env, keys.lyon, orderBody('OIS-1', [{ sku: 'B1', quantity: 1 }], { email: 'someone@example.com' }));
      expectError(r, 409, 'conflict');
      for (const secret of [mine.id, mine.customer.email, mine.customer.name, 'alice']) expect(r.body).not.toContain(secret);
      expect(await everything(env)).toEqual(before);
      // The capturing store itself still gets its order back, and may cancel it; the other store may not.
      const again = await capture(env, keys.paris, orderBody('OIS-1', [{ sku: 'B1', quantity: 2 }, { sku: 'C1', quantity: 1 }], { extra: { associate: 'alice' } }));
      expect([again.statusCode, again.json().id]).toEqual([200, mine.id]);
      expectError(await post(env, keys.lyon, `/orders/${mine.id}/cancel`, {}), 404, 'not_found');
      const c = await post(env, keys.paris, `/orders/${mine.id}/cancel`, { reason: 'customer left' });
      expect([c.statusCode, c.json().status]).toEqual([200, 'cancelled']);
    });
  });

  // ---- 6. several delivery groups --------------------------------------------------------------
  describe('several delivery groups in one order', () => {
    let env: ApiEnv;
    let keys: Keys;
    beforeAll(async () => {
      ({ env, keys } = await setup(backend, { WH1: [{ sku: 'A1', on_hand: 5 }, { sku: 'B1', on_hand: 3 }, { sku: 'C1', on_hand: 10 }], 'ST-PARIS': [{ sku: 'C1', on_hand: 2 }] }));
    });
    afterAll(async () => env?.close());

    it('home and click & collect in one order: each line ships with its group', async () => {
      const body = orderBody(
        'MG-1',
        [
          { sku: 'A1', quantity: 1, delivery_group: 'HOME', line_id: 'H1' },
          { sku: 'B1', quantity: 1, delivery_group: 'HOME', line_id: 'H2' },
          { sku: 'C1', quantity: 2, delivery_group: 'PICKUP', line_id: 'P1' },
        ],
        { groups: [HOME({ group_id: 'HOME', address: LYON }), CC('ST-PARIS', { group_id: 'PICKUP', shipping_price: 0 })] },
      );
      const o = await captured(env, keys.web, body);
      expect(o.delivery_groups.map((g: Json) => [g.group_id, g.mode, g.pickup_location, g.address?.city ?? null])).toEqual([
        ['HOME', 'home', null, 'Lyon'],
        ['PICKUP', 'click_and_collect', 'ST-PARIS', null],
      ]);
      expect(o.lines.map((l: Json) => [l.line_id, l.delivery_group, l.allocated])).toEqual([
        ['H1', 'HOME', 1],
        ['H2', 'HOME', 1],
        ['P1', 'PICKUP', 2],
      ]);
      // Each fulfilment order belongs to one group and carries only that group's lines.
      const linesOf = (g: string) => o.fulfillment_orders.filter((f: Json) => f.delivery_group === g).flatMap((f: Json) => f.lines.map((l: Json) => l.line_id)).sort();
      expect(linesOf('HOME')).toEqual(['H1', 'H2']);
      expect(linesOf('PICKUP')).toEqual(['P1']);
      // The pickup store holds the whole pickup group: it serves it; the home group ships from the warehouse.
      expect(o.fulfillment_orders.map((f: Json) => [f.delivery_group, f.location, f.mode]).sort()).toEqual([
        ['HOME', 'WH1', 'home'],
        ['PICKUP', 'ST-PARIS', 'click_and_collect'],
      ]);
      const wh1 = await positions(env, 'WH1');
      expect([wh1.A1.reserved, wh1.B1.reserved, wh1.C1.reserved]).toEqual([1, 1, 0]);
      expect((await positions(env, 'ST-PARIS')).C1.reserved).toBe(2);
      await integrityOk(env);
    });

    it('one sku in two groups is checked against the stock of both together', async () => {
      // B1: 3 in stock, 1 reserved above: 2 left. 1 home + 2 click & collect = 3 > 2.
      const before = await everything(env);
      const body = orderBody(
        'MG-2',
        [
          { sku: 'B1', quantity: 1, delivery_group: 'H' },
          { sku: 'B1', quantity: 2, delivery_group: 'C' },
        ],
        { groups: [HOME({ group_id: 'H' }), CC('ST-PARIS', { group_id: 'C' })] },
      );
      const r = await capture(env, keys.web, body);
      const lines = expectError(r, 409, 'out_of_stock').error.details.lines;
      expect(lines.reduce((s: number, l: Json) => s + l.unfilled, 0), r.body).toBe(1);
      expect(await everything(env)).toEqual(before);
    });

    it('two lines of one sku in one group are checked against their sum', async () => {
      const before = await everything(env);
      const r = await capture(env, keys.web, orderBody('MG-3', [{ sku: 'B1', quantity: 2 }, { sku: 'B1', quantity: 2 }]));
      const lines = expectError(r, 409, 'out_of_stock').error.details.lines;
      expect(lines.reduce((s: number, l: Json) => s + l.unfilled, 0), r.body).toBe(2);
      expect(await everything(env)).toEqual(before);
    });

    it('lines of one sku that fit together are reserved in full, never beyond the stock', async () => {
      const o = await captured(env, keys.web, orderBody('MG-4', [{ sku: 'B1', quantity: 1, delivery_group: 'H' }, { sku: 'B1', quantity: 1, delivery_group: 'C' }], { groups: [HOME({ group_id: 'H' }), CC('ST-PARIS', { group_id: 'C' })] }));
      expect(o.lines.map((l: Json) => l.allocated)).toEqual([1, 1]);
      expect((await positions(env, 'WH1')).B1).toEqual({ on_hand: 3, reserved: 3, quarantine: 0 });
      expectError(await capture(env, keys.web, orderBody('MG-5', [{ sku: 'B1', quantity: 1 }])), 409, 'out_of_stock');
      await integrityOk(env);
    });
  });

  // ---- 7. cancellation -------------------------------------------------------------------------
  describe('cancel', () => {
    let env: ApiEnv;
    let keys: Keys;
    beforeAll(async () => {
      ({ env, keys } = await setup(backend, { WH1: [{ sku: 'A1', on_hand: 10 }, { sku: 'B1', on_hand: 10 }, { sku: 'C1', on_hand: 10 }], 'ST-PARIS': [{ sku: 'B1', on_hand: 5 }] }));
    });
    afterAll(async () => env?.close());
    const cancel = (key: string, id: string, body: unknown = {}) => post(env, key, `/orders/${id}/cancel`, body);
    const reservationsOf = async (id: string) => (await env.ctx.store.db.selectFrom('reservations').select(['status', 'quantity']).where('reference', '=', id).execute()).map((r) => [r.status, r.quantity]);
    const zeroReserved = async () => {
      for (const loc of ['WH1', 'ST-PARIS']) for (const p of Object.values(await positions(env, loc))) expect(p.reserved).toBe(0);
    };

    it('the whole order: every reservation is released, status cancelled, order.cancelled on the timeline', async () => {
      const o = await captured(env, keys.web, orderBody('C-1', [{ sku: 'A1', quantity: 2 }, { sku: 'B1', quantity: 1 }, { sku: 'C1', quantity: 3 }]));
      expect((await positions(env, 'WH1')).A1.reserved).toBe(2);
      const r = await cancel(keys.web, o.id, { reason: 'customer changed their mind' });
      expect(r.statusCode, r.body).toBe(200);
      const c = r.json();
      expect(c.status).toBe('cancelled');
      expect(c.expires_at).toBe(null);
      expect(c.lines.map((l: Json) => [l.line_id, l.quantity, l.allocated, l.backordered, l.cancelled])).toEqual([
        ['L1', 2, 0, 0, 2],
        ['L2', 1, 0, 0, 1],
        ['L3', 3, 0, 0, 3],
      ]);
      expect(c.fulfillment_orders.map((f: Json) => f.status)).toEqual(o.fulfillment_orders.map(() => 'cancelled'));
      await zeroReserved();
      expect((await reservationsOf(o.id)).every(([s]) => s === 'released')).toBe(true);
      const tl = (await get(env, keys.web, `/orders/${o.id}/timeline`)).json().entries;
      const ev = tl.find((e: Json) => e.type === 'order.cancelled');
      expect(ev.data).toMatchObject({ status: 'cancelled', reason: 'customer changed their mind' });
      expect(ev.actor).toMatchObject({ name: 'web shop', role: 'channel' });
      expect(tl.filter((e: Json) => e.type === 'fulfillment.cancelled')).toHaveLength(o.fulfillment_orders.length);
      // Cancelling it again: nothing left, nothing changes.
      const before = await everything(env);
      expectError(await cancel(keys.web, o.id), 409, 'invalid_state');
      expectError(await cancel(keys.web, o.id, { lines: [{ line_id: 'L1', quantity: 1 }] }), 409, 'invalid_state');
      expect(await everything(env)).toEqual(before);
      await integrityOk(env);
    });

    it('some lines: only those units are released; cancelling the rest cancels the order', async () => {
      const o = await captured(env, keys.web, orderBody('C-2', [{ sku: 'A1', quantity: 3 }, { sku: 'B1', quantity: 2 }]));
      const r = await cancel(keys.web, o.id, { lines: [{ line_id: 'L1', quantity: 1 }] });
      expect(r.statusCode, r.body).toBe(200);
      const c = r.json();
      expect(c.status).toBe('pending_payment');
      expect(c.lines.map((l: Json) => [l.line_id, l.allocated, l.cancelled])).toEqual([
        ['L1', 2, 1],
        ['L2', 2, 0],
      ]);
      expect(c.fulfillment_orders.flatMap((f: Json) => f.lines.map((l: Json) => [l.line_id, l.quantity])).sort()).toEqual([
        ['L1', 2],
        ['L2', 2],
      ]);
      // A1 comes from WH1 (class A: warehouse first); B1 from wherever sourcing chose.
      const wh1 = await positions(env, 'WH1');
      const paris = await positions(env, 'ST-PARIS');
      expect([wh1.A1.reserved, wh1.B1.reserved + paris.B1.reserved]).toEqual([2, 2]);
      const tl = (await get(env, keys.web, `/orders/${o.id}/timeline`)).json().entries;
      expect(tl.map((e: Json) => e.type)).toEqual(['order.created', ...o.fulfillment_orders.map(() => 'fulfillment.created'), 'order.lines_cancelled']);
      expect(tl[tl.length - 1].data.lines).toEqual([{ line_id: 'L1', quantity: 1 }]);
      const rest = await cancel(keys.web, o.id, { lines: [{ line_id: 'L1', quantity: 2 }, { line_id: 'L2', quantity: 2 }] });
      expect(rest.statusCode, rest.body).toBe(200);
      expect(rest.json().status).toBe('cancelled');
      expect(rest.json().fulfillment_orders.map((f: Json) => f.status)).toEqual(c.fulfillment_orders.map(() => 'cancelled'));
      await zeroReserved();
      await integrityOk(env);
    });

    it('asking more than can be cancelled is 409 invalid_state and changes nothing', async () => {
      const o = await captured(env, keys.web, orderBody('C-3', [{ sku: 'A1', quantity: 2 }, { sku: 'B1', quantity: 1 }]));
      const before = await everything(env);
      for (const lines of [
        [{ line_id: 'L1', quantity: 3 }],
        [{ line_id: 'L1', quantity: 1 }, { line_id: 'L2', quantity: 2 }],
        [{ line_id: 'L9', quantity: 1 }],
        // The same line twice: 2 + 1 is more than the 2 ordered.
        [{ line_id: 'L1', quantity: 2 }, { line_id: 'L1', quantity: 1 }],
      ]) {
        const r = await cancel(keys.web, o.id, { lines });
        expect(r.statusCode, `${JSON.stringify(lines)}: ${r.body}`).toBe(409);
        expectError(r, 409, 'invalid_state');
      }
      expectError(await cancel(keys.web, o.id, { lines: [{ line_id: 'L1', quantity: 0 }] }), 400, 'validation_failed');
      expectError(await cancel(keys.web, o.id, { lines: [] }), 400, 'validation_failed');
      expect(await everything(env)).toEqual(before);
      // The same line twice within what is left is one cancellation of the sum.
      const ok = await cancel(keys.web, o.id, { lines: [{ line_id: 'L1', quantity: 1 }, { line_id: 'L1', quantity: 1 }] });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json().lines.map((l: Json) => [l.line_id, l.quantity, l.allocated, l.cancelled])).toEqual([
        ['L1', 2, 0, 2],
        ['L2', 1, 1, 0],
      ]);
      expect((await positions(env, 'WH1')).A1.reserved).toBe(0);
      expect((await cancel(keys.web, o.id)).json().status).toBe('cancelled');
      await zeroReserved();
      await integrityOk(env);
    });

    it('who may cancel: the order’s channel, the admin; not another channel, not a store that did not capture it, not a WMS', async () => {
      const o = await captured(env, keys.web, orderBody('C-4', [{ sku: 'B1', quantity: 1 }], { groups: [CC('ST-PARIS')] }));
      expect(o.fulfillment_orders.map((f: Json) => f.location)).toEqual(['ST-PARIS']);
      const before = await everything(env);
      expectError(await cancel(keys.mkt, o.id), 404, 'not_found');
      expectError(await cancel(keys.paris, o.id), 403, 'forbidden');
      expectError(await cancel(keys.lyon, o.id), 404, 'not_found');
      expectError(await cancel(keys.wms, o.id), 403, 'forbidden');
      expectError(await cancel(keys.web, 'ord_01ARZ3NDEKTSV4RRFFQ69G5FAV'), 404, 'not_found');
      expect(await everything(env)).toEqual(before);
      const r = await cancel(env.adminKey, o.id);
      expect([r.statusCode, r.json().status]).toEqual([200, 'cancelled']);
    });

    it('after shipping: shipped units cannot be cancelled; the rest of the order can', async () => {
      const o = await captured(
        env,
        keys.web,
        orderBody('C-5', [{ sku: 'A1', quantity: 2, delivery_group: 'H' }, { sku: 'B1', quantity: 1, delivery_group: 'C' }], { groups: [HOME({ group_id: 'H' }), CC('ST-PARIS', { group_id: 'C' })] }),
      );
      expect(o.fulfillment_orders.map((f: Json) => [f.delivery_group, f.location]).sort()).toEqual([
        ['C', 'ST-PARIS'],
        ['H', 'WH1'],
      ]);
      const v = await post(env, env.adminKey, `/orders/${o.id}/validate`, {});
      expect(v.statusCode, v.body).toBe(200);
      const home = o.fulfillment_orders.find((f: Json) => f.delivery_group === 'H');
      await fulfil(env, home.id, ['accept', 'pick', 'pack', 'ship']);
      const shipped = (await get(env, keys.web, `/orders/${o.id}`)).json();
      expect(shipped.status).toBe('partially_shipped');
      const before = await everything(env);
      expectError(await cancel(keys.web, o.id, { lines: [{ line_id: 'L1', quantity: 1 }] }), 409, 'invalid_state');
      expectError(await cancel(keys.web, o.id, { lines: [{ line_id: 'L1', quantity: 2 }, { line_id: 'L2', quantity: 1 }] }), 409, 'invalid_state');
      expect(await everything(env)).toEqual(before);
      // "Everything" now means what has not shipped: L2 at ST-PARIS.
      const r = await cancel(keys.web, o.id);
      expect(r.statusCode, r.body).toBe(200);
      const c = r.json();
      expect(c.lines.map((l: Json) => [l.line_id, l.shipped, l.cancelled])).toEqual([
        ['L1', 2, 0],
        ['L2', 0, 1],
      ]);
      expect(c.status).toBe('shipped');
      expect(c.fulfillment_orders.map((f: Json) => [f.location, f.status]).sort()).toEqual([
        ['ST-PARIS', 'cancelled'],
        ['WH1', 'shipped'],
      ]);
      expect((await positions(env, 'ST-PARIS')).B1).toEqual({ on_hand: 5, reserved: 0, quarantine: 0 });
      expect((await positions(env, 'WH1')).A1.on_hand).toBe(8);
      const tl = (await get(env, keys.web, `/orders/${o.id}/timeline`)).json().entries;
      expect(tl.map((e: Json) => e.type)).toContain('order.lines_cancelled');
      expectError(await cancel(keys.web, o.id), 409, 'invalid_state');
      await zeroReserved();
      await integrityOk(env);
    });

    it('backordered units are cancelled first (they hold no stock), then reserved ones', async () => {
      // A channel that sells future stock: A1 (backorderable) has 10 more coming to WH1 in 5 days.
      await upsertChannel(env.ctx, { code: 'pre', name: 'Pre-order', type: 'web', futureStock: true, futureHorizonDays: 30 });
      const pre = (await createApiKey(env.ctx, { name: 'pre-order shop', role: 'channel', channel: 'pre' })).secret;
      const supply = await post(env, env.adminKey, '/supply', { kind: 'purchase_order', reference: 'PO-A1', location: 'WH1', sku: 'A1', quantity: 10, expected_at: '2026-06-06T00:00:00Z' });
      expect(supply.statusCode, supply.body).toBe(200);
      // WH1 holds 8 A1 (2 shipped above): 8 reserved, 2 backordered.
      expect((await positions(env, 'WH1')).A1).toEqual({ on_hand: 8, reserved: 0, quarantine: 0 });
      const o = await captured(env, pre, orderBody('C-6', [{ sku: 'A1', quantity: 10 }]));
      expect(o.lines.map((l: Json) => [l.allocated, l.backordered, l.cancelled])).toEqual([[8, 2, 0]]);
      expect(o.fulfillment_orders.map((f: Json) => [f.location, f.backorder, f.lines[0].quantity]).sort()).toEqual([
        ['WH1', false, 8],
        ['WH1', true, 2],
      ]);
      expect((await positions(env, 'WH1')).A1.reserved).toBe(8);
      const r = await cancel(pre, o.id, { lines: [{ line_id: 'L1', quantity: 3 }] });
      expect(r.statusCode, r.body).toBe(200);
      const c = r.json();
      expect(c.lines.map((l: Json) => [l.allocated, l.backordered, l.cancelled])).toEqual([[7, 0, 3]]);
      expect(c.fulfillment_orders.map((f: Json) => [f.backorder, f.status, f.lines[0].quantity]).sort()).toEqual([
        [false, 'created', 7],
        [true, 'cancelled', 0],
      ]);
      expect((await positions(env, 'WH1')).A1.reserved).toBe(7);
      expect((await cancel(pre, o.id)).json().status).toBe('cancelled');
      await zeroReserved();
      await integrityOk(env);
    });
  });

  // ---- 8. delivery address ---------------------------------------------------------------------
  describe('delivery address change', () => {
    let env: ApiEnv;
    let keys: Keys;
    beforeAll(async () => {
      ({ env, keys } = await setup(backend, { WH1: [{ sku: 'A1', on_hand: 20 }, { sku: 'B1', on_hand: 20 }] }));
    });
    afterAll(async () => env?.close());
    const put = (key: string, id: string, group: string, payload: unknown) =>
      env.app.inject({ method: 'PUT', url: `/orders/${id}/delivery-groups/${group}/address`, headers: env.auth(key), payload: payload as never }) as Promise<InjectResult>;

    it('before release: the address changes and the carrier is chosen again for the new destination', async () => {
      const o = await captured(env, keys.web, orderBody('AD-1', [{ sku: 'A1', quantity: 1 }]));
      expect(o.fulfillment_orders.map((f: Json) => [f.location, f.carrier_service])).toEqual([['WH1', 'home_standard']]);
      const r = await put(keys.web, o.id, 'G1', { address: BERLIN });
      expect(r.statusCode, r.body).toBe(200);
      const c = r.json();
      expect(c.delivery_groups[0].address).toMatchObject({ city: 'Berlin', country: 'DE', postal_code: '10117' });
      expect(c.fulfillment_orders.map((f: Json) => [f.location, f.carrier_service])).toEqual([['WH1', 'international']]);
      expect(c.fulfillment_orders[0].estimated_delivery).not.toBe(o.fulfillment_orders[0].estimated_delivery);
      // Lower-case country codes are normalised.
      const back = await put(keys.web, o.id, 'G1', { address: { ...LYON, country: 'fr' } });
      expect(back.statusCode, back.body).toBe(200);
      expect(back.json().delivery_groups[0].address.country).toBe('FR');
      expect(back.json().fulfillment_orders[0].carrier_service).toBe('home_standard');
      const tl = (await get(env, keys.web, `/orders/${o.id}/timeline`)).json().entries;
      const changes = tl.filter((e: Json) => e.type === 'order.address_changed');
      expect(changes.map((e: Json) => [e.data.country, e.data.carriers[0].service])).toEqual([
        ['DE', 'international'],
        ['FR', 'home_standard'],
      ]);
      expect(changes[0].actor).toMatchObject({ name: 'web shop', role: 'channel' });
    });

    it('a relay point no carrier serves is 409 and changes nothing; one it serves is taken', async () => {
      const o = await captured(env, keys.web, orderBody('AD-2', [{ sku: 'B1', quantity: 1 }], { groups: [RELAY(PARIS)] }));
      expect(o.fulfillment_orders.map((f: Json) => f.carrier_service)).toEqual(['relay_point']);
      const before = await everything(env);
      const NEW_YORK = { line1: '350 5th Ave', postal_code: '10118', city: 'New York', country: 'US', latitude: 40.7484, longitude: -73.9857 };
      const r = await put(keys.web, o.id, 'G1', { relay_point: { id: 'RP-US', address: NEW_YORK } });
      expect(expectError(r, 409, 'invalid_state').error.message).toMatch(/US/);
      const gb = await put(keys.web, o.id, 'G1', { relay_point: { id: 'RP-GB', address: { line1: '1 Strand', postal_code: 'WC2N 5HR', city: 'London', country: 'GB' } } });
      expectError(gb, 409, 'invalid_state');
      expect(await everything(env)).toEqual(before);
      const be = await put(keys.web, o.id, 'G1', { relay_point: { id: 'RP-BE', name: 'Librairie', address: { line1: 'Grand-Place 1', postal_code: '1000', city: 'Bruxelles', country: 'BE', latitude: 50.8467, longitude: 4.3525 } } });
      expect(be.statusCode, be.body).toBe(200);
      expect(be.json().delivery_groups[0].relay_point).toMatchObject({ id: 'RP-BE', name: 'Librairie', address: { country: 'BE' } });
      expect(be.json().fulfillment_orders[0].carrier_service).toBe('relay_point');
    });

    it('bad requests change nothing', async () => {
      const o = await captured(
        env,
        keys.web,
        orderBody('AD-3', [{ sku: 'A1', quantity: 1, delivery_group: 'H' }, { sku: 'B1', quantity: 1, delivery_group: 'C' }], { groups: [HOME({ group_id: 'H' }), CC('ST-PARIS', { group_id: 'C' })] }),
      );
      const before = await everything(env);
      expectError(await put(keys.web, o.id, 'H', { address: { ...BERLIN, country: 'XX' } }), 400, 'invalid_country');
      expectError(await put(keys.web, o.id, 'H', { address: { ...BERLIN, country: 'DEU' } }), 400, 'validation_failed');
      expectError(await put(keys.web, o.id, 'H', { relay_point: { id: 'RP', address: BERLIN } }), 400, 'validation_failed');
      expectError(await put(keys.web, o.id, 'H', {}), 400, 'validation_failed');
      expectError(await put(keys.web, o.id, 'C', { address: BERLIN }), 409, 'invalid_state');
      expectError(await put(keys.web, o.id, 'NOPE', { address: BERLIN }), 404, 'not_found');
      expectError(await put(keys.mkt, o.id, 'H', { address: BERLIN }), 404, 'not_found');
      expectError(await put(keys.wms, o.id, 'H', { address: BERLIN }), 403, 'forbidden');
      expect(await everything(env)).toEqual(before);
    });

    it('after validation (released) the address can no longer change: 409, nothing changed', async () => {
      const o = await captured(env, keys.web, orderBody('AD-4', [{ sku: 'A1', quantity: 1 }]));
      const v = await post(env, env.adminKey, `/orders/${o.id}/validate`, {});
      expect(v.json().order.fulfillment_orders.map((f: Json) => f.status)).toEqual(['released']);
      const before = await everything(env);
      expectError(await put(keys.web, o.id, 'G1', { address: LYON }), 409, 'invalid_state');
      expect(await everything(env)).toEqual(before);
    });

    it('on a cancelled order: 409, nothing changed', async () => {
      const o = await captured(env, keys.web, orderBody('AD-5', [{ sku: 'A1', quantity: 1 }]));
      expect((await post(env, keys.web, `/orders/${o.id}/cancel`, {})).statusCode).toBe(200);
      const before = await everything(env);
      expectError(await put(keys.web, o.id, 'G1', { address: LYON }), 409, 'invalid_state');
      expect(await everything(env)).toEqual(before);
      await integrityOk(env);
    });
  });

  // ---- 9. notes and the timeline ---------------------------------------------------------------
  describe('notes and the timeline', () => {
    let env: ApiEnv;
    let keys: Keys;
    beforeAll(async () => {
      ({ env, keys } = await setup(backend, { WH1: [{ sku: 'A1', on_hand: 10 }, { sku: 'B1', on_hand: 10 }] }));
    });
    afterAll(async () => env?.close());
    const note = (key: string, id: string, text: unknown) => post(env, key, `/orders/${id}/notes`, { text });

    it('notes appear on the timeline with who wrote them, and the timeline is the order’s events in order, without secrets', async () => {
      const o = await captured(env, keys.web, orderBody('N-1', [{ sku: 'A1', quantity: 1 }, { sku: 'B1', quantity: 1 }]));
      const n1 = await note(keys.web, o.id, 'Customer asked for gift wrap');
      expect(n1.statusCode, n1.body).toBe(201);
      expect(n1.json()).toEqual({ order_id: o.id, version: o.version + 1 });
      expect((await note(env.adminKey, o.id, 'Checked by support')).statusCode).toBe(201);
      expect((await note(keys.wms, o.id, 'Parcel will be late')).statusCode).toBe(201);
      const r = await get(env, keys.web, `/orders/${o.id}/timeline`);
      expect(r.statusCode, r.body).toBe(200);
      const tl = r.json();
      expect(tl.order_id).toBe(o.id);
      const notes = tl.entries.filter((e: Json) => e.type === 'order.note_added');
      expect(notes.map((e: Json) => [e.data.text, e.actor.name, e.actor.role])).toEqual([
        ['Customer asked for gift wrap', 'web shop', 'channel'],
        ['Checked by support', 'test admin', 'admin'],
        ['Parcel will be late', 'wms', 'integration'],
      ]);
      for (const e of tl.entries) {
        expect(Object.keys(e.actor).sort()).toEqual(['key_id', 'name', 'role']);
        expect(e.actor.key_id).toMatch(/^key_/);
      }
      // No key material anywhere: secrets, their prefixes, their hashes.
      const rows = await env.ctx.store.db.selectFrom('api_keys').select(['prefix', 'key_hash']).execute();
      for (const secret of [...Object.values(keys), env.adminKey]) expect(r.body).not.toContain(secret);
      for (const k of rows) {
        expect(r.body).not.toContain(k.prefix);
        expect(r.body).not.toContain(k.key_hash);
      }
      expect(r.body).not.toMatch(/oms_/);
      // The timeline is exactly the events of the order and its fulfilment orders, in commit order.
      const ids = new Set([o.id, ...o.fulfillment_orders.map((f: Json) => f.id)]);
      const events = (await get(env, env.adminKey, '/events?limit=1000')).json().items.filter((e: Json) => ids.has(e.aggregate_id));
      expect(
        tl.entries.map((e: Json) => ({ seq: e.seq, at: e.at, type: e.type, aggregate_id: e.aggregate_id, actor: e.actor, data: e.data })),
      ).toEqual(
        events.map((e: Json) => {
          const { actor, ...data } = e.payload;
          return { seq: e.id, at: e.occurred_at, type: e.type, aggregate_id: e.aggregate_id, actor: actor ?? null, data };
        }),
      );
      expect(tl.entries.map((e: Json) => e.type)).toEqual(['order.created', ...o.fulfillment_orders.map(() => 'fulfillment.created'), 'order.note_added', 'order.note_added', 'order.note_added']);
      const seqs = tl.entries.map((e: Json) => e.seq);
      expect(seqs).toEqual([...seqs].sort((a: number, b: number) => a - b));
      // The order's own events carry its versions 1, 2, 3, … with no gap.
      const orderSeqs = events.filter((e: Json) => e.aggregate_id === o.id).map((e: Json) => e.aggregate_seq);
      const now = (await get(env, keys.web, `/orders/${o.id}`)).json();
      expect(orderSeqs).toEqual(Array.from({ length: now.version }, (_, i) => i + 1));
    });

    it('10 notes in parallel: each is one event, versions never collide', async () => {
      const o = await captured(env, keys.web, orderBody('N-2', [{ sku: 'A1', quantity: 1 }]));
      const rs = await Promise.all(Array.from({ length: 10 }, (_, i) => note(keys.web, o.id, `note ${i}`)));
      for (const r of rs) expect(r.statusCode, r.body).toBe(201);
      const tl = (await get(env, keys.web, `/orders/${o.id}/timeline`)).json().entries;
      expect(tl.filter((e: Json) => e.type === 'order.note_added').map((e: Json) => e.data.text).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `note ${i}`).sort());
      const events = (await get(env, env.adminKey, '/events?limit=1000')).json().items.filter((e: Json) => e.aggregate_id === o.id);
      expect(events.map((e: Json) => e.aggregate_seq)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
      expect((await get(env, keys.web, `/orders/${o.id}`)).json().version).toBe(11);
    });

    it('who may add a note, and bad notes: refused, nothing changes', async () => {
      const id = (await get(env, keys.web, '/orders?external_reference=N-1')).json().items[0].id;
      const before = await everything(env);
      expectError(await note(keys.mkt, id, 'not mine'), 404, 'not_found');
      expectError(await note(keys.paris, id, 'not mine'), 404, 'not_found');
      expectError(await note(keys.web, id, ''), 400, 'validation_failed');
      expectError(await note(keys.web, id, 'x'.repeat(2001)), 400, 'validation_failed');
      expectError(await note(keys.web, id, 42), 400, 'validation_failed');
      expectError(await note(keys.web, 'ord_01ARZ3NDEKTSV4RRFFQ69G5FAV', 'no order'), 404, 'not_found');
      expectError(await get(env, keys.mkt, `/orders/${id}/timeline`), 404, 'not_found');
      expect(await everything(env)).toEqual(before);
    });
  });

  // ---- 10. search and scope ----------------------------------------------------------------------
  describe('search and scope', () => {
    let env: ApiEnv;
    let keys: Keys;
    const T0 = Date.parse('2026-06-01T10:00:00Z');
    const MIN = 60_000;
    /** external reference → order */
    const o: Record<string, Json> = {};
    beforeAll(async () => {
      ({ env, keys } = await setup(backend, {
        WH1: [{ sku: 'A1', on_hand: 50 }, { sku: 'B1', on_hand: 50 }, { sku: 'C1', on_hand: 50 }],
        'ST-PARIS': [{ sku: 'C1', on_hand: 10 }],
      }));
      // Seven web orders, a minute apart: W0…W5 home from WH1, W6 click & collect at ST-PARIS.
      for (let i = 0; i < 7; i++) {
        env.clock.set(T0 + i * MIN);
        const body =
          i < 6
            ? orderBody(`W${i}`, [{ sku: i % 2 ? 'B1' : 'A1', quantity: 1 }], { email: `C${i % 3}@Example.com` })
            : orderBody('W6', [{ sku: 'C1', quantity: 1 }], { groups: [CC('ST-PARIS')], email: 'c0@example.com' });
        o[`W${i}`] = await captured(env, keys.web, body);
      }
      env.clock.set(T0 + 10 * MIN);
      o.M0 = await captured(env, keys.mkt, orderBody('M0', [{ sku: 'A1', quantity: 1 }]));
      // M1: one group from WH1, one at ST-PARIS.
      o.M1 = await captured(
        env,
        keys.mkt,
        orderBody('M1', [{ sku: 'A1', quantity: 1, delivery_group: 'H' }, { sku: 'C1', quantity: 1, delivery_group: 'C' }], { groups: [HOME({ group_id: 'H' }), CC('ST-PARIS', { group_id: 'C' })] }),
      );
      o.S0 = await captured(env, keys.paris, orderBody('S0', [{ sku: 'B1', quantity: 1 }]));
      expect(o.W6.fulfillment_orders.map((f: Json) => f.location)).toEqual(['ST-PARIS']);
      expect(o.M1.fulfillment_orders.map((f: Json) => f.location).sort()).toEqual(['ST-PARIS', 'WH1']);
      for (const r of ['W0', 'W1', 'W2', 'W3', 'W4', 'W5', 'M0', 'S0']) expect(o[r].fulfillment_orders.map((f: Json) => f.location), r).toEqual(['WH1']);
      expect((await post(env, keys.web, `/orders/${o.W1.id}/cancel`, {})).json().status).toBe('cancelled');
      expect((await post(env, env.adminKey, `/orders/${o.W2.id}/validate`, {})).json().order.status).toBe('validated');
    });
    afterAll(async () => env?.close());

    /** The external references of a search, in the order returned (all pages). */
    async function refs(key: string, query: string, limit = 200): Promise<string[]> {
      const out: string[] = [];
      let after: string | null = null;
      for (let page = 0; page < 50; page++) {
        const r = await get(env, key, `/orders?${query}${query ? '&' : ''}limit=${limit}${after ? `&after=${after}` : ''}`);
        expect(r.statusCode, r.body).toBe(200);
        out.push(...r.json().items.map((i: Json) => i.external_reference));
        after = r.json().next_cursor;
        if (!after) return out;
      }
      throw new Error('too many pages');
    }

    it('cursor pagination: 7 orders by 3 are 3 + 3 + 1, each exactly once, newest first', async () => {
      const pages: string[][] = [];
      let after: string | null = null;
      do {
        const r = await get(env, keys.web, `/orders?limit=3${after ? `&after=${after}` : ''}`);
        expect(r.statusCode, r.body).toBe(200);
        pages.push(r.json().items.map((i: Json) => i.external_reference));
        after = r.json().next_cursor;
      } while (after && pages.length < 10);
      expect(pages).toEqual([
        ['W6', 'W5', 'W4'],
        ['W3', 'W2', 'W1'],
        ['W0'],
      ]);
      // A page that ends exactly at the last order says so (no empty extra page).
      const seven = await get(env, keys.web, '/orders?limit=7');
      expect([seven.json().items.length, seven.json().next_cursor]).toEqual([7, null]);
    });

    it('filters: status, channel, location, from/to, email, external_reference, sku (admin sees every channel)', async () => {
      const admin = env.adminKey;
      expect(await refs(admin, '')).toEqual(['S0', 'M1', 'M0', 'W6', 'W5', 'W4', 'W3', 'W2', 'W1', 'W0']);
      expect(await refs(admin, 'status=cancelled')).toEqual(['W1']);
      expect(await refs(admin, 'status=validated')).toEqual(['W2']);
      expect(await refs(admin, 'status=validated&status=cancelled')).toEqual(['W2', 'W1']);
      expect(await refs(admin, 'status=pending_payment&channel=web')).toEqual(['W6', 'W5', 'W4', 'W3', 'W0']);
      expect(await refs(admin, 'channel=mkt')).toEqual(['M1', 'M0']);
      expect(await refs(admin, 'channel=pos')).toEqual(['S0']);
      expect(await refs(admin, 'location=ST-PARIS')).toEqual(['S0', 'M1', 'W6']);
      expect(await refs(admin, 'location=WH1&channel=web')).toEqual(['W5', 'W4', 'W3', 'W2', 'W1', 'W0']);
      expect(await refs(admin, `from=${new Date(T0 + 2 * MIN).toISOString()}&to=${new Date(T0 + 4 * MIN).toISOString()}`)).toEqual(['W3', 'W2']);
      expect(await refs(admin, `from=${new Date(T0 + 6 * MIN).toISOString()}&channel=web`)).toEqual(['W6']);
      expect(await refs(admin, `to=${new Date(T0 + 1).toISOString()}`)).toEqual(['W0']);
      expect(await refs(admin, 'email=c1@example.com')).toEqual(['W4', 'W1']);
      expect(await refs(admin, 'email=C0%40EXAMPLE.COM&channel=web')).toEqual(['W6', 'W3', 'W0']);
      expect(await refs(admin, 'external_reference=W3')).toEqual(['W3']);
      expect(await refs(admin, 'sku=B1')).toEqual(['S0', 'W5', 'W3', 'W1']);
      expect(await refs(admin, 'sku=C1')).toEqual(['M1', 'W6']);
      expect(await refs(admin, 'sku=A1&status=pending_payment&channel=web')).toEqual(['W4', 'W0']);
      // Unknown codes match nothing.
      for (const q of ['sku=NOPE', 'location=NOWHERE', 'channel=nochan', 'external_reference=W9', 'email=nobody@example.com']) expect(await refs(admin, q), q).toEqual([]);
      // Paging through a filter gives the same set as one page.
      expect(await refs(admin, 'location=WH1', 2)).toEqual(await refs(admin, 'location=WH1'));
    });

    it('bad paging: limit above 200 is page_too_large, a foreign cursor is invalid_cursor', async () => {
      expectError(await get(env, keys.web, '/orders?limit=201'), 400, 'page_too_large');
      expect((await get(env, keys.web, '/orders?limit=200')).statusCode).toBe(200);
      expectError(await get(env, keys.web, '/orders?limit=0'), 400, 'validation_failed');
      expectError(await get(env, keys.web, '/orders?limit=abc'), 400, 'validation_failed');
      for (const c of ['garbage', '1', 'ord_', `ord_${'0'.repeat(25)}`, `ful_${o.W3.id.slice(4)}`, `${o.W3.id}x`, "ord_' or 1=1 --"]) {
        expectError(await get(env, keys.web, `/orders?after=${encodeURIComponent(c)}`), 400, 'invalid_cursor');
      }
      expectError(await get(env, keys.web, '/orders?status=lost'), 400, 'validation_failed');
      expectError(await get(env, keys.web, '/orders?from=yesterday'), 400, 'validation_failed');
      expectError(await get(env, keys.web, '/orders?debug=1'), 400, 'validation_failed');
      // A well-formed cursor continues after that id.
      expect(await refs(keys.web, `after=${o.W3.id}`)).toEqual(['W2', 'W1', 'W0']);
    });

    it('a channel key sees only its channel: in search, by id, timeline, sourcing and changes', async () => {
      expect(await refs(keys.mkt, '')).toEqual(['M1', 'M0']);
      expect(await refs(keys.mkt, 'channel=web')).toEqual([]);
      expect(await refs(keys.mkt, 'external_reference=W3')).toEqual([]);
      expect(await refs(keys.web, '')).toEqual(['W6', 'W5', 'W4', 'W3', 'W2', 'W1', 'W0']);
      const before = await everything(env);
      const id = o.W3.id;
      for (const url of [`/orders/${id}`, `/orders/${id}/timeline`, `/orders/${id}/sourcing`]) {
        const r = await get(env, keys.mkt, url);
        expectError(r, 404, 'not_found');
        for (const leak of ['external_reference', 'example.com', 'Ada']) expect(r.body).not.toContain(leak);
        // Another channel's order and a non-existent one look the same.
        const none = await get(env, keys.mkt, url.replace(id, 'ord_01ARZ3NDEKTSV4RRFFQ69G5FAV'));
        expect(r.json().error.message.replace(id, '?')).toBe(none.json().error.message.replace('ord_01ARZ3NDEKTSV4RRFFQ69G5FAV', '?'));
      }
      expectError(await post(env, keys.mkt, `/orders/${id}/notes`, { text: 'x' }), 404, 'not_found');
      expectError(await post(env, keys.mkt, `/orders/${id}/cancel`, {}), 404, 'not_found');
      expect(await everything(env)).toEqual(before);
    });

    it('a store key sees the orders it captured or fulfils, and only its own fulfilment orders of the others', async () => {
      expect(await refs(keys.paris, '')).toEqual(['S0', 'M1', 'W6']);
      expect(await refs(keys.lyon, '')).toEqual([]);
      const m1 = (await get(env, keys.paris, `/orders/${o.M1.id}`)).json();
      expect(m1.fulfillment_orders.map((f: Json) => f.location)).toEqual(['ST-PARIS']);
      expect(m1.lines).toHaveLength(2);
      // The order it captured: every fulfilment order (it answers the customer for all of it).
      const s0 = (await get(env, keys.paris, `/orders/${o.S0.id}`)).json();
      expect(s0.fulfillment_orders.map((f: Json) => f.location)).toEqual(['WH1']);
      expectError(await get(env, keys.paris, `/orders/${o.W3.id}`), 404, 'not_found');
      expectError(await get(env, keys.lyon, `/orders/${o.S0.id}`), 404, 'not_found');
      // Search results show the same restricted bodies.
      const page = (await get(env, keys.paris, '/orders?external_reference=M1')).json().items[0];
      expect(page.fulfillment_orders.map((f: Json) => f.location)).toEqual(['ST-PARIS']);
    });

    it('an integration key for WH1 sees only orders with a WH1 fulfilment order, and only WH1’s fulfilment orders', async () => {
      expect(await refs(keys.wms, '')).toEqual(['S0', 'M1', 'M0', 'W5', 'W4', 'W3', 'W2', 'W1', 'W0']);
      const r = await get(env, keys.wms, '/orders?limit=200');
      for (const item of r.json().items) expect(item.fulfillment_orders.map((f: Json) => f.location), item.external_reference).toEqual(['WH1']);
      expectError(await get(env, keys.wms, `/orders/${o.W6.id}`), 404, 'not_found');
      const m1 = (await get(env, keys.wms, `/orders/${o.M1.id}`)).json();
      expect(m1.fulfillment_orders.map((f: Json) => f.location)).toEqual(['WH1']);
      expect(await refs(keys.wms, 'location=ST-PARIS')).toEqual(['S0', 'M1']);
    });

    it('the timeline shows a location-scoped key only its own fulfilment orders’ events, like the order body', async () => {
      const paris = o.M1.fulfillment_orders.find((f: Json) => f.location === 'ST-PARIS').id;
      const wh1 = o.M1.fulfillment_orders.find((f: Json) => f.location === 'WH1').id;
      const forWms = (await get(env, keys.wms, `/orders/${o.M1.id}/timeline`)).json().entries;
      expect(forWms.filter((e: Json) => e.aggregate === 'fulfillment_order').map((e: Json) => e.aggregate_id)).toEqual([wh1]);
      expect(JSON.stringify(forWms)).not.toContain(paris);
      const forParis = (await get(env, keys.paris, `/orders/${o.M1.id}/timeline`)).json().entries;
      expect(forParis.filter((e: Json) => e.aggregate === 'fulfillment_order').map((e: Json) => e.aggregate_id)).toEqual([paris]);
      // The channel sees everything.
      const forMkt = (await get(env, keys.mkt, `/orders/${o.M1.id}/timeline`)).json().entries;
      expect(forMkt.filter((e: Json) => e.aggregate === 'fulfillment_order').map((e: Json) => e.aggregate_id).sort()).toEqual([paris, wh1].sort());
      expect(forWms.filter((e: Json) => e.aggregate === 'order').map((e: Json) => e.type)).toEqual(forMkt.filter((e: Json) => e.aggregate === 'order').map((e: Json) => e.type));
    });
  });

  // ---- 11. manual validation -------------------------------------------------------------------
  describe('validate', () => {
    let env: ApiEnv;
    let keys: Keys;
    beforeAll(async () => {
      ({ env, keys } = await setup(backend, { WH1: [{ sku: 'A1', on_hand: 10 }, { sku: 'B1', on_hand: 10 }] }));
    });
    afterAll(async () => env?.close());
    const validate = (key: string, id: string) => post(env, key, `/orders/${id}/validate`, {});

    it('is for the admin only; twice changes nothing the second time', async () => {
      const o = await captured(env, keys.web, orderBody('VA-1', [{ sku: 'A1', quantity: 2 }], { extra: { tenders: [{ method: 'bank_transfer', amount: 2500 }] } }));
      // A manual tender gets the longer payment deadline.
      expect(Date.parse(o.expires_at) - Date.parse(o.created_at)).toBe(env.ctx.orders.manualPaymentTtlMs);
      const before = await everything(env);
      for (const k of [keys.web, keys.paris, keys.wms]) expectError(await validate(k, o.id), 403, 'forbidden');
      expect(await everything(env)).toEqual(before);
      const r = await validate(env.adminKey, o.id);
      expect(r.statusCode, r.body).toBe(200);
      const v = r.json();
      expect(v.changed).toBe(true);
      expect([v.order.status, v.order.expires_at, v.order.validated_at]).toEqual(['validated', null, new Date(env.clock.now()).toISOString()]);
      expect(v.order.fulfillment_orders.map((f: Json) => [f.status, f.accept_by !== null])).toEqual([['released', true]]);
      const tl = (await get(env, keys.web, `/orders/${o.id}/timeline`)).json().entries;
      expect(tl.map((e: Json) => e.type)).toEqual(['order.created', 'fulfillment.created', 'order.validated', 'fulfillment.released']);
      expect(tl[2].actor).toMatchObject({ name: 'test admin', role: 'admin' });
      const after = await everything(env);
      const again = await validate(env.adminKey, o.id);
      expect(again.statusCode, again.body).toBe(200);
      expect(again.json().changed).toBe(false);
      expect(again.json().order).toEqual(v.order);
      expect(await everything(env)).toEqual(after);
      expect((await positions(env, 'WH1')).A1.reserved).toBe(2);
    });

    it('two admins validating at once: one changes it, the other sees it done', async () => {
      const o = await captured(env, keys.web, orderBody('VA-2', [{ sku: 'B1', quantity: 1 }]));
      const rs = await Promise.all(Array.from({ length: 5 }, () => validate(env.adminKey, o.id)));
      expect(rs.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200]);
      expect(rs.filter((r) => r.json().changed)).toHaveLength(1);
      const tl = (await get(env, keys.web, `/orders/${o.id}/timeline`)).json().entries;
      expect(tl.filter((e: Json) => e.type === 'order.validated')).toHaveLength(1);
      expect(tl.filter((e: Json) => e.type === 'fulfillment.released')).toHaveLength(1);
    });

    it('a cancelled order cannot be validated: 409, nothing changed', async () => {
      const o = await captured(env, keys.web, orderBody('VA-3', [{ sku: 'A1', quantity: 1 }]));
      expect((await post(env, keys.web, `/orders/${o.id}/cancel`, {})).statusCode).toBe(200);
      const before = await everything(env);
      expectError(await validate(env.adminKey, o.id), 409, 'invalid_state');
      expect(await everything(env)).toEqual(before);
    });

    it('a validated order cancelled afterwards cannot be validated again: 409, not a silent no-op', async () => {
      const o = await captured(env, keys.web, orderBody('VA-50', [{ sku: 'A1', quantity: 1 }]));
      expect((await validate(env.adminKey, o.id)).statusCode).toBe(200);
      expect((await post(env, keys.web, `/orders/${o.id}/cancel`, {})).statusCode).toBe(200);
      const before = await everything(env);
      expectError(await validate(env.adminKey, o.id), 409, 'invalid_state');
      expect(await everything(env)).toEqual(before);
    });

    it('an unpaid order expires after paymentTtlMs, releasing its stock; then it cannot be validated (409)', async () => {
      const reserved = (await positions(env, 'WH1')).A1.reserved;
      const o = await captured(env, keys.web, orderBody('VA-4', [{ sku: 'A1', quantity: 3 }]));
      expect(Date.parse(o.expires_at) - Date.parse(o.created_at)).toBe(env.ctx.orders.paymentTtlMs);
      expect((await positions(env, 'WH1')).A1.reserved).toBe(reserved + 3);
      env.clock.advance(env.ctx.orders.paymentTtlMs - 1);
      expect((await sweepOrders(env.ctx)).expired).toBe(0);
      expect((await get(env, keys.web, `/orders/${o.id}`)).json().status).toBe('pending_payment');
      env.clock.advance(1);
      expect((await sweepOrders(env.ctx)).expired).toBe(1);
      const x = (await get(env, keys.web, `/orders/${o.id}`)).json();
      expect([x.status, x.expires_at]).toEqual(['expired', null]);
      expect(x.fulfillment_orders.map((f: Json) => f.status)).toEqual(['cancelled']);
      expect(x.lines.map((l: Json) => [l.allocated, l.cancelled])).toEqual([[0, 3]]);
      expect((await positions(env, 'WH1')).A1.reserved).toBe(reserved);
      const before = await everything(env);
      expectError(await validate(env.adminKey, o.id), 409, 'invalid_state');
      expectError(await post(env, keys.web, `/orders/${o.id}/cancel`, {}), 409, 'invalid_state');
      expect(await everything(env)).toEqual(before);
      // The validated order of the first test did not expire.
      expect((await get(env, keys.web, '/orders?external_reference=VA-1')).json().items[0].status).toBe('validated');
      await integrityOk(env);
    });

    it('an unknown order is 404', async () => {
      expectError(await validate(env.adminKey, 'ord_01ARZ3NDEKTSV4RRFFQ69G5FAV'), 404, 'not_found');
    });

    it('the note given with a manual validation is kept on the timeline', async () => {
      const o = await captured(env, keys.web, orderBody('VA-5', [{ sku: 'B1', quantity: 1 }]));
      const r = await post(env, env.adminKey, `/orders/${o.id}/validate`, { note: 'Bank transfer received, ref 4711' });
      expect(r.statusCode, r.body).toBe(200);
      const tl = (await get(env, keys.web, `/orders/${o.id}/timeline`)).json().entries;
      const validated = tl.find((e: Json) => e.type === 'order.validated');
      expect(validated.data.note).toBe('Bank transfer received, ref 4711');
      expectError(await post(env, env.adminKey, `/orders/${o.id}/validate`, { note: 'x'.repeat(1001) }), 400, 'validation_failed');
    });
  });
});

async function addUnstockedSku(env: ApiEnv, code: string): Promise<void> {
  const r = await env.app.inject({ method: 'PUT', url: `/skus/${code}`, headers: env.auth(), payload: { name: 'Nobody has it' } });
  expect(r.statusCode, r.body).toBe(200);
}
