// The authorization matrix: roles × scope × route, table-driven, on every backend.
// A cell is either a success status, or the error code a key outside its role (forbidden)
// or outside its scope (unknown_location / unknown_channel: "looks like it does not exist")
// must get. A refused request carries no protected data and changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/keys.ts';
import { type ApiEnv, BACKENDS, createApiEnv } from '../support/backends.ts';
import { smallNetwork } from '../support/fixtures.ts';
import { expectError, fingerprint, type InjectResult, positions, seedStock, STACK_RE, TWO_CHANNELS, type Json } from './helpers.ts';

type Who = 'admin' | 'web' | 'pos' | 'store' | 'integ';
const WHO: Who[] = ['admin', 'web', 'pos', 'store', 'integ'];
type Denied = 'forbidden' | 'unknown_location' | 'unknown_channel' | 'not_found';
type Cell = number | Denied;
const DENIED_STATUS: Record<Denied, number> = { forbidden: 403, unknown_location: 404, unknown_channel: 404, not_found: 404 };

interface Route {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string | (() => string);
  body?: () => unknown;
  expect: Partial<Record<Who, Cell>>;
  /** Checks a successful body (exact values, and that the key sees only its scope). */
  ok?: (body: Json, who: Who) => void;
}

const F = 'forbidden' as const;
const UL = 'unknown_location' as const;
const UC = 'unknown_channel' as const;
const NF = 'not_found' as const;
const ADMIN_ONLY = (ok: number): Partial<Record<Who, Cell>> => ({ admin: ok, web: F, pos: F, store: F, integ: F });

let n = 0;
const uniq = (p: string) => `${p}-${++n}`;
const codes = (b: { items: Array<{ code: string }> }) => b.items.map((i) => i.code);

// Seeded in beforeAll (partial snapshots at 08:00): WH1 A1=10 B1=5; ST-PARIS A1=4 C1=2.
// 'web' exposes every active location; 'pos' only stores.
const ALL_LOCATIONS = ['MKP', 'ST-LYON', 'ST-PARIS', 'SUP1', 'WH1'];
const ROUTES: Route[] = [
  // ---- reads ------------------------------------------------------------------------
  {
    name: 'GET /availability/A1?channel=web',
    method: 'GET',
    url: '/availability/A1?channel=web',
    expect: { admin: 200, web: 200, pos: UC, store: UC, integ: F },
    ok: (b) => expect(b).toEqual({ sku: 'A1', channel: 'web', available: 14, future: [], promise_date: null }),
  },
  {
    name: 'GET /availability/A1?channel=pos',
    method: 'GET',
    url: '/availability/A1?channel=pos',
    expect: { admin: 200, web: UC, pos: 200, store: 200, integ: F },
    ok: (b) => expect(b).toEqual({ sku: 'A1', channel: 'pos', available: 4, future: [], promise_date: null }),
  },
  {
    name: "GET /availability/A1 (the key's own channel)",
    method: 'GET',
    url: '/availability/A1?view=locations',
    expect: { web: 200, pos: 200, store: 200, integ: F },
    ok: (b, who) => {
      const lines = [...b.locations].sort((x: Json, y: Json) => x.location.localeCompare(y.location));
      expect({ ...b, locations: lines }).toEqual(
        who === 'web'
          ? { sku: 'A1', channel: 'web', available: 14, future: [], promise_date: null, locations: [{ location: 'ST-PARIS', type: 'store', available: 4 }, { location: 'WH1', type: 'warehouse', available: 10 }] }
          : { sku: 'A1', channel: 'pos', available: 4, future: [], promise_date: null, locations: [{ location: 'ST-PARIS', type: 'store', available: 4 }] },
      );
    },
  },
  {
    name: 'POST /availability/query (channel web)',
    method: 'POST',
    url: '/availability/query',
    body: () => ({ channel: 'web', skus: ['A1', 'B1'] }),
    expect: { admin: 200, web: 200, pos: UC, store: UC, integ: F },
    ok: (b) =>
      expect(b).toEqual({
        items: [
          { sku: 'A1', channel: 'web', available: 14, future: [], promise_date: null },
          { sku: 'B1', channel: 'web', available: 5, future: [], promise_date: null },
        ],
      }),
  },
  {
    name: 'GET /locations',
    method: 'GET',
    url: '/locations',
    expect: { admin: 200, web: 200, pos: 200, store: 200, integ: 200 },
    ok: (b, who) => expect(codes(b)).toEqual(who === 'store' ? ['ST-PARIS'] : who === 'integ' ? ['WH1'] : ALL_LOCATIONS),
  },
  {
    name: 'GET /locations/WH1',
    method: 'GET',
    url: '/locations/WH1',
    expect: { admin: 200, web: 200, pos: 200, store: UL, integ: 200 },
    ok: (b) => expect([b.code, b.name]).toEqual(['WH1', 'Warehouse 1']),
  },
  {
    name: 'GET /locations/ST-PARIS',
    method: 'GET',
    url: '/locations/ST-PARIS',
    expect: { admin: 200, web: 200, pos: 200, store: 200, integ: UL },
    ok: (b) => expect([b.code, b.name]).toEqual(['ST-PARIS', 'Store Paris']),
  },
  {
    name: 'GET /locations/ST-PARIS/stock',
    method: 'GET',
    url: '/locations/ST-PARIS/stock',
    expect: { admin: 200, web: F, pos: F, store: 200, integ: UL },
    ok: (b) => expect(b.items.map((p: Json) => [p.sku, p.on_hand, p.reserved, p.available])).toEqual([['A1', 4, 0, 4], ['C1', 2, 0, 2]]),
  },
  {
    name: 'GET /locations/WH1/stock',
    method: 'GET',
    url: '/locations/WH1/stock',
    expect: { admin: 200, web: F, pos: F, store: UL, integ: 200 },
    ok: (b) => expect(b.items.map((p: Json) => [p.sku, p.on_hand, p.reserved, p.available])).toEqual([['A1', 10, 0, 10], ['B1', 5, 0, 5]]),
  },
  {
    name: 'GET /locations/WH1/movements',
    method: 'GET',
    url: '/locations/WH1/movements',
    expect: { admin: 200, web: F, pos: F, store: UL, integ: 200 },
    ok: (b) => expect(b.items.map((m: Json) => [m.sku, m.kind, m.on_hand_change])).toEqual([['A1', 'snapshot', 10], ['B1', 'snapshot', 5]]),
  },
  {
    name: 'GET /supply?location=WH1',
    method: 'GET',
    url: '/supply?location=WH1',
    expect: { admin: 200, web: F, pos: F, store: UL, integ: 200 },
    ok: (b) => expect(b).toEqual({ items: [], next_cursor: null }),
  },
  {
    name: 'GET /skus',
    method: 'GET',
    url: '/skus',
    expect: { admin: 200, web: 200, pos: 200, store: 200, integ: 200 },
    ok: (b) => expect(codes(b)).toEqual(['A1', 'B1', 'C1']),
  },
  {
    name: 'GET /channels',
    method: 'GET',
    url: '/channels',
    expect: { admin: 200, web: 200, pos: 200, store: 200, integ: F },
    ok: (b, who) => expect(codes(b)).toEqual(who === 'admin' ? ['pos', 'web'] : who === 'web' ? ['web'] : ['pos']),
  },
  {
    name: 'GET /channels/web',
    method: 'GET',
    url: '/channels/web',
    expect: { admin: 200, web: 200, pos: UC, store: UC, integ: F },
    ok: (b) => expect(b.code).toBe('web'),
  },
  {
    name: 'GET /carriers',
    method: 'GET',
    url: '/carriers',
    expect: { admin: 200, web: 200, pos: 200, store: 200, integ: F },
    ok: (b) => expect(b.items.map((s: Json) => s.code)).toContain('home_standard'),
  },
  { name: 'GET /sourcing/rule-sets', method: 'GET', url: '/sourcing/rule-sets', expect: ADMIN_ONLY(200), ok: (b) => expect(b.next_cursor).toBe(null) },
  {
    name: 'GET /sourcing/rule-sets/published',
    method: 'GET',
    url: '/sourcing/rule-sets/published',
    expect: ADMIN_ONLY(200),
    ok: (b) => expect([b.version, b.name, b.published_at]).toEqual([null, 'default', null]),
  },
  { name: 'GET /sourcing/publications', method: 'GET', url: '/sourcing/publications', expect: ADMIN_ONLY(200), ok: (b) => expect(b).toEqual({ items: [] }) },
  { name: 'GET /api-keys', method: 'GET', url: '/api-keys', expect: ADMIN_ONLY(200), ok: (b) => expect(b.items.length).toBe(7) },
  { name: 'GET /events', method: 'GET', url: '/events', expect: ADMIN_ONLY(200), ok: (b) => expect(b.items.length).toBeGreaterThan(0) },
  { name: 'GET /integrity', method: 'GET', url: '/integrity', expect: ADMIN_ONLY(200), ok: (b) => expect(b).toEqual({ ok: true, positions: 4, issues: [] }) },

  // ---- writes -----------------------------------------------------------------------
  {
    name: 'POST /stock/deltas on WH1',
    method: 'POST',
    url: '/stock/deltas',
    body: () => ({ items: [{ location: 'WH1', sku: 'A1', quantity: 1, idempotency_key: uniq('d-wh1') }] }),
    expect: { admin: 200, web: F, pos: F, store: UL, integ: 200 },
    ok: (b) => expect(b.items.map((i: Json) => [i.location, i.sku, i.status])).toEqual([['WH1', 'A1', 'applied']]),
  },
  {
    name: 'POST /stock/deltas on ST-PARIS',
    method: 'POST',
    url: '/stock/deltas',
    body: () => ({ items: [{ location: 'ST-PARIS', sku: 'A1', quantity: 1, idempotency_key: uniq('d-par') }] }),
    expect: { admin: 200, web: F, pos: F, store: 200, integ: UL },
    ok: (b) => expect(b.items.map((i: Json) => [i.location, i.sku, i.status])).toEqual([['ST-PARIS', 'A1', 'applied']]),
  },
  {
    name: 'POST /stock/snapshots on WH1',
    method: 'POST',
    url: '/stock/snapshots',
    body: () => ({ location: 'WH1', as_of: '2026-06-01T09:00:00Z', mode: 'partial', items: [{ sku: 'C1', on_hand: 3 }] }),
    expect: { admin: 200, web: F, pos: F, store: UL, integ: 200 },
    ok: (b) => expect([b.kind, b.locations, b.rejected]).toEqual(['snapshot', ['WH1'], 0]),
  },
  {
    name: 'PUT /locations/WH1/stock/A1/safety-stock',
    method: 'PUT',
    url: '/locations/WH1/stock/A1/safety-stock',
    body: () => ({ safety_stock: 0 }),
    expect: { admin: 200, web: F, pos: F, store: UL, integ: 200 },
    ok: (b) => expect([b.location, b.sku, b.safety_stock_override]).toEqual(['WH1', 'A1', 0]),
  },
  {
    name: 'POST /supply for WH1',
    method: 'POST',
    url: '/supply',
    body: () => ({ kind: 'purchase_order', reference: uniq('PO'), location: 'WH1', sku: 'A1', quantity: 5, expected_at: '2026-06-10T00:00:00Z' }),
    expect: { admin: 200, web: F, pos: F, store: F, integ: 200 },
    ok: (b) => expect([b.location, b.sku, b.quantity, b.status]).toEqual(['WH1', 'A1', 5, 'open']),
  },
  {
    name: 'PUT /locations/X',
    method: 'PUT',
    url: '/locations/X',
    body: () => ({ name: 'New place', type: 'warehouse', country: 'DE' }),
    expect: ADMIN_ONLY(201),
    ok: (b) => expect([b.code, b.name, b.version]).toEqual(['X', 'New place', 1]),
  },
  {
    name: 'PUT /skus/X',
    method: 'PUT',
    url: '/skus/X',
    body: () => ({ name: 'New sku' }),
    expect: ADMIN_ONLY(200),
    ok: (b) => expect([b.code, b.name, b.version]).toEqual(['X', 'New sku', 1]),
  },
  {
    name: 'PUT /channels/X',
    method: 'PUT',
    url: '/channels/X',
    body: () => ({ name: 'New channel', type: 'marketplace' }),
    expect: ADMIN_ONLY(201),
    ok: (b) => expect([b.code, b.name, b.version]).toEqual(['X', 'New channel', 1]),
  },
  {
    name: 'POST /api-keys',
    method: 'POST',
    url: '/api-keys',
    body: () => ({ name: uniq('made by test'), role: 'channel', channel: 'web' }),
    expect: ADMIN_ONLY(201),
    ok: (b) => {
      expect(b.role).toBe('channel');
      expect(b.secret).toMatch(/^oms_cha_/);
    },
  },
  {
    name: 'POST /reservations',
    method: 'POST',
    url: '/reservations',
    body: () => ({ location: 'WH1', sku: 'B1', quantity: 1 }),
    expect: ADMIN_ONLY(201),
    ok: (b) => expect([b.location, b.sku, b.quantity, b.status]).toEqual(['WH1', 'B1', 1, 'active']),
  },
  {
    name: 'POST /sourcing/plan (channel web)',
    method: 'POST',
    url: '/sourcing/plan',
    body: () => ({ channel: 'web', lines: [{ sku: 'A1', quantity: 1 }], delivery: { mode: 'home', country: 'FR', latitude: 48.85, longitude: 2.35 } }),
    expect: { admin: 200, web: 200, pos: UC, store: UC, integ: F },
    ok: (b) => expect(b.plan.lines[0].allocations).toEqual([{ location: 'WH1', quantity: 1 }]),
  },
  {
    name: "POST /sourcing/plan (the key's own channel)",
    method: 'POST',
    url: '/sourcing/plan',
    body: () => ({ lines: [{ sku: 'A1', quantity: 1 }], delivery: { mode: 'home', country: 'FR', latitude: 48.85, longitude: 2.35 } }),
    expect: { web: 200, pos: 200, store: 200, integ: F },
    // pos exposes only stores: the warehouse is not a candidate.
    ok: (b, who) => expect(b.plan.lines[0].allocations).toEqual([{ location: who === 'web' ? 'WH1' : 'ST-PARIS', quantity: 1 }]),
  },
  {
    name: 'POST /sourcing/rule-sets/validate',
    method: 'POST',
    url: '/sourcing/rule-sets/validate',
    body: () => ({ rule_set: { name: 'x', settings: { homeCountry: 'FR', handlingDays: {}, exactSplitLimit: 8 }, strategies: [] } }),
    expect: ADMIN_ONLY(200),
    ok: (b) => expect(b).toEqual({ valid: false, problems: [{ path: '/strategies', message: 'a rule set needs at least one strategy' }] }),
  },
  {
    name: 'POST /sourcing/rule-sets',
    method: 'POST',
    url: '/sourcing/rule-sets',
    body: () => ({ rule_set: { name: 'all', settings: { homeCountry: 'FR', handlingDays: {}, exactSplitLimit: 8 }, strategies: [{ id: 'all', when: {}, filters: {}, ranking: { mode: 'lexicographic', criteria: [{ criterion: 'priority' }] }, split: { policy: 'minimise' }, fallbacks: [] }] } }),
    expect: ADMIN_ONLY(201),
    ok: (b) => expect([b.name, b.created_by, b.published]).toEqual(['all', 'test admin', false]),
  },
  {
    name: 'POST /sourcing/simulations',
    method: 'POST',
    url: '/sourcing/simulations',
    body: () => ({ orders: [{ channel: 'web', lines: [{ sku: 'A1', quantity: 1 }], delivery: { mode: 'home', country: 'FR' } }], candidate: { rule_set: { name: 'x', settings: { homeCountry: 'FR', handlingDays: {}, exactSplitLimit: 8 }, strategies: [{ id: 'all', when: {}, filters: {}, ranking: { mode: 'lexicographic', criteria: [{ criterion: 'priority' }] }, split: { policy: 'minimise' }, fallbacks: [] }] } } }),
    expect: ADMIN_ONLY(200),
    ok: (b) => expect(b.rule_sets.map((r: Json) => [r.label, r.metrics.units_allocated])).toEqual([['baseline', 1], ['candidate', 1]]),
  },

  // ---- orders: the web order captured by the web key below (2 × A1 from WH1, home), then
  // read, noted, re-addressed, validated and cancelled (admin first, then web: one unit each).
  {
    name: 'POST /orders (channel web)',
    method: 'POST',
    url: '/orders',
    body: () => orderBody(uniq('AUTHZ'), { channel: 'web' }),
    expect: { admin: 201, web: 201, pos: UC, store: UC, integ: F },
    ok: (b, who) => {
      expect([b.channel, b.status, b.lines.map((l: Json) => [l.sku, l.allocated]), b.fulfillment_orders.map((f: Json) => f.location)]).toEqual(['web', 'pending_payment', [['A1', 2]], ['WH1']]);
      if (who === 'web') webOrder = b.id;
    },
  },
  {
    name: "POST /orders (the key's own channel)",
    method: 'POST',
    url: '/orders',
    body: () => orderBody('AUTHZ-own'),
    // pos exposes only stores: ST-PARIS ships its A1.
    expect: { web: 201, pos: 201, integ: F },
    ok: (b, who) => expect([b.channel, b.fulfillment_orders.map((f: Json) => f.location)]).toEqual(who === 'web' ? ['web', ['WH1']] : ['pos', ['ST-PARIS']]),
  },
  {
    name: 'POST /orders (Order in Store, body.store)',
    method: 'POST',
    url: '/orders',
    body: () => orderBody(uniq('AUTHZ-OIS'), { store: 'ST-PARIS' }),
    expect: { web: F, pos: F, integ: F },
  },
  {
    name: 'GET /orders',
    method: 'GET',
    url: '/orders',
    expect: { admin: 200, web: 200, pos: 200, store: 200, integ: 200 },
    // Each key sees its channel's orders (store, integration: those its location fulfils).
    ok: (b, who) => {
      const seen = b.items.map((o: Json) => [o.channel, o.external_reference.replace(/\d+$/, 'n'), o.fulfillment_orders.map((f: Json) => f.location).join()]).sort();
      const web = [['web', 'AUTHZ-n', 'WH1'], ['web', 'AUTHZ-n', 'WH1'], ['web', 'AUTHZ-own', 'WH1']];
      const pos = [['pos', 'AUTHZ-own', 'ST-PARIS']];
      expect(seen).toEqual({ admin: [...pos, ...web], web, pos, store: pos, integ: web }[who]);
    },
  },
  {
    name: 'GET /orders/:id',
    method: 'GET',
    url: () => `/orders/${webOrder}`,
    expect: { admin: 200, web: 200, pos: NF, store: NF, integ: 200 },
    ok: (b) => expect([b.id, b.channel, b.fulfillment_orders.map((f: Json) => f.location)]).toEqual([webOrder, 'web', ['WH1']]),
  },
  {
    name: 'GET /orders/:id/sourcing',
    method: 'GET',
    url: () => `/orders/${webOrder}/sourcing`,
    expect: { admin: 200, web: 200, pos: NF, store: NF, integ: F },
    ok: (b) => expect([b.order_id, b.decisions.length]).toEqual([webOrder, 1]),
  },
  {
    name: 'POST /orders/:id/notes',
    method: 'POST',
    url: () => `/orders/${webOrder}/notes`,
    body: () => ({ text: 'authz note' }),
    expect: { admin: 201, web: 201, pos: NF, store: NF, integ: 201 },
    ok: (b) => expect(b.order_id).toBe(webOrder),
  },
  {
    name: 'GET /orders/:id/timeline',
    method: 'GET',
    url: () => `/orders/${webOrder}/timeline`,
    expect: { admin: 200, web: 200, pos: NF, store: NF, integ: 200 },
    ok: (b) => expect(b.entries.filter((e: Json) => e.type === 'order.note_added').map((e: Json) => e.actor.name)).toEqual(['test admin', 'web channel', 'wms']),
  },
  {
    name: 'PUT /orders/:id/delivery-groups/G1/address',
    method: 'PUT',
    url: () => `/orders/${webOrder}/delivery-groups/G1/address`,
    body: () => ({ address: { line1: '1 place Bellecour', postal_code: '69002', city: 'Lyon', country: 'FR' } }),
    expect: { admin: 200, web: 200, pos: NF, store: NF, integ: F },
    ok: (b) => expect(b.delivery_groups[0].address.city).toBe('Lyon'),
  },
  {
    name: 'POST /orders/:id/payments (a part of the total: the order stays unpaid)',
    method: 'POST',
    url: () => `/orders/${webOrder}/payments`,
    body: () => ({ method: 'card', amount: 100, token: 'tok_sandbox_visa' }),
    expect: { admin: 201, web: 201, pos: NF, store: NF, integ: F },
    ok: (b) => expect([b.payment.status, b.payment.authorized, b.order.status]).toEqual(['authorized', 100, 'pending_payment']),
  },
  {
    name: 'GET /orders/:id/payments',
    method: 'GET',
    url: () => `/orders/${webOrder}/payments`,
    expect: { admin: 200, web: 200, pos: NF, store: NF, integ: F },
    ok: (b) => expect(b.payments.map((x: Json) => [x.order_id, x.amount])).toEqual([
      [webOrder, 100],
      [webOrder, 100],
    ]),
  },
  {
    name: 'GET /orders/:id/refunds',
    method: 'GET',
    url: () => `/orders/${webOrder}/refunds`,
    expect: { admin: 200, web: 200, pos: NF, store: NF, integ: F },
    ok: (b) => expect(b.refunds).toEqual([]),
  },
  {
    name: 'POST /gift-cards',
    method: 'POST',
    url: '/gift-cards',
    body: () => ({ currency: 'EUR', amount: 5000 }),
    expect: ADMIN_ONLY(201),
    ok: (b) => expect([b.balance, b.code.slice(-4).replace('-', '')]).toEqual([5000, b.last4]),
  },
  {
    name: 'POST /orders/:id/validate',
    method: 'POST',
    url: () => `/orders/${webOrder}/validate`,
    body: () => ({}),
    expect: ADMIN_ONLY(200),
    ok: (b) => expect([b.changed, b.order.status]).toEqual([true, 'validated']),
  },
  {
    name: 'POST /orders/:id/tracking-token',
    method: 'POST',
    url: () => `/orders/${webOrder}/tracking-token`,
    expect: { admin: 201, web: 201, pos: NF, store: NF, integ: F },
    ok: (b) => expect([b.order_id, b.tracking_token.startsWith('trk_')]).toEqual([webOrder, true]),
  },
  {
    name: 'POST /orders/:id/cancel (one unit)',
    method: 'POST',
    url: () => `/orders/${webOrder}/cancel`,
    body: () => ({ lines: [{ line_id: 'L1', quantity: 1 }] }),
    expect: { admin: 200, web: 200, pos: NF, store: NF, integ: F },
    ok: (b) => expect(b.lines[0].cancelled).toBeGreaterThan(0),
  },
  {
    name: 'DELETE /api-keys/:id',
    method: 'DELETE',
    url: () => `/api-keys/${throwawayKeyId}`,
    expect: ADMIN_ONLY(204),
  },
];

let throwawayKeyId = '';
/** The web order the order rows read and change (captured by the web key in 'POST /orders'). */
let webOrder = '';

function orderBody(ref: string, extra: Record<string, unknown> = {}) {
  return {
    external_reference: ref,
    customer: { name: 'Ada', email: 'ada@example.com' },
    currency: 'EUR',
    lines: [{ sku: 'A1', quantity: 2, unit_price: 1000 }],
    delivery_groups: [{ mode: 'home', address: { line1: '1 rue de Rivoli', postal_code: '75001', city: 'Paris', country: 'FR' }, shipping_price: 500 }],
    totals: { subtotal: 2000, discount: 0, tax: 0, shipping: 500, total: 2500 },
    tenders: [{ method: 'card', amount: 2500 }],
    ...extra,
  };
}

describe.each(BACKENDS)('authorization matrix (%s)', (backend) => {
  let env: ApiEnv;
  const secrets = {} as Record<Who, string>;
  /** Strings no refused response may contain: names, counters, key material. */
  let protectedStrings: string[] = [];

  beforeAll(async () => {
    env = await createApiEnv(backend);
    await smallNetwork(env.ctx, TWO_CHANNELS);
    await seedStock(env, 'WH1', '2026-06-01T08:00:00Z', [{ sku: 'A1', on_hand: 10 }, { sku: 'B1', on_hand: 5 }]);
    await seedStock(env, 'ST-PARIS', '2026-06-01T08:00:00Z', [{ sku: 'A1', on_hand: 4 }, { sku: 'C1', on_hand: 2 }]);
    secrets.admin = env.adminKey;
    secrets.web = (await createApiKey(env.ctx, { name: 'web channel', role: 'channel', channel: 'web' })).secret;
    secrets.pos = (await createApiKey(env.ctx, { name: 'pos channel', role: 'channel', channel: 'pos' })).secret;
    secrets.store = (await createApiKey(env.ctx, { name: 'paris store', role: 'store', channel: 'pos', locations: ['ST-PARIS'] })).secret;
    secrets.integ = (await createApiKey(env.ctx, { name: 'wms', role: 'integration', locations: ['WH1'] })).secret;
    throwawayKeyId = (await createApiKey(env.ctx, { name: 'to revoke', role: 'channel', channel: 'web' })).principal.keyId;
    await createApiKey(env.ctx, { name: 'other integration', role: 'integration', locations: ['ST-LYON'] });
    const keyRows = await env.ctx.store.db.selectFrom('api_keys').select(['id', 'prefix', 'key_hash']).execute();
    protectedStrings = [
      'Warehouse 1',
      'Store Paris',
      'on_hand',
      'available',
      'items',
      'oms_',
      ...keyRows.flatMap((k) => [k.id, k.prefix, k.key_hash]),
    ];
  });
  afterAll(async () => {
    await env?.close();
  });

  for (const route of ROUTES) {
    describe(route.name, () => {
      for (const who of WHO) {
        const cell = route.expect[who];
        if (cell === undefined) continue;
        const label = typeof cell === 'number' ? `${cell}` : `${DENIED_STATUS[cell]} ${cell}`;
        it(`${who} key → ${label}`, async () => {
          const url = typeof route.url === 'function' ? route.url() : route.url;
          const denied = typeof cell !== 'number';
          const before = denied && route.method !== 'GET' ? await fingerprint(env) : undefined;
          const res = (await env.app.inject({ method: route.method, url, headers: { authorization: `Bearer ${secrets[who]}` }, payload: route.body?.() as never })) as InjectResult;
          if (!denied) {
            expect(res.statusCode, res.body.slice(0, 400)).toBe(cell);
            expect(res.body).not.toMatch(STACK_RE);
            if (route.ok) route.ok(res.statusCode === 204 ? null : res.json(), who);
            return;
          }
          expectError(res, DENIED_STATUS[cell], cell, { details: false });
          for (const s of protectedStrings) expect(res.body, `a refused response leaks '${s}'`).not.toContain(s);
          if (before) expect(await fingerprint(env), 'a refused write changed stored state').toEqual(before);
        });
      }
    });
  }

  describe('scope', () => {
    it('GET /locations with a store key lists only its own location; an integration key only its own', async () => {
      const s = await env.app.inject({ method: 'GET', url: '/locations', headers: env.auth(secrets.store) });
      expect(s.statusCode).toBe(200);
      expect(s.json().items.map((l: Json) => l.code)).toEqual(['ST-PARIS']);
      expect(s.json().next_cursor).toBe(null);
      const typed = await env.app.inject({ method: 'GET', url: '/locations?type=warehouse', headers: env.auth(secrets.store) });
      expect(typed.json()).toEqual({ items: [], next_cursor: null });
      const i = await env.app.inject({ method: 'GET', url: '/locations', headers: env.auth(secrets.integ) });
      expect(i.json().items.map((l: Json) => l.code)).toEqual(['WH1']);
    });

    it('a delta batch touching one location outside the scope is refused as a whole', async () => {
      const before = await fingerprint(env);
      const res = await env.app.inject({
        method: 'POST',
        url: '/stock/deltas',
        headers: env.auth(secrets.store),
        payload: { items: [{ location: 'ST-PARIS', sku: 'A1', quantity: 3, idempotency_key: uniq('mix') }, { location: 'WH1', sku: 'A1', quantity: -3, idempotency_key: uniq('mix') }] },
      });
      expectError(res, 404, 'unknown_location', { details: false });
      expect(await fingerprint(env)).toEqual(before);
    });

    it('an out-of-scope location and a non-existent one look the same to a store key', async () => {
      const a = await env.app.inject({ method: 'GET', url: '/locations/WH1/stock', headers: env.auth(secrets.store) });
      const b = await env.app.inject({ method: 'GET', url: '/locations/NOWHERE/stock', headers: env.auth(secrets.store) });
      expect([a.statusCode, a.json().error.code]).toEqual([b.statusCode, b.json().error.code]);
      expect(a.json().error.message.replace('WH1', '?')).toBe(b.json().error.message.replace('NOWHERE', '?'));
    });

    it('a CSV import by a store key applies its own rows and reports other locations as unknown, existing or not', async () => {
      const wh1Before = await positions(env, 'WH1');
      const parisBefore = await positions(env, 'ST-PARIS');
      const csv = ['location,sku,quantity,idempotency_key', `ST-PARIS,C1,2,${uniq('csv')}`, `WH1,A1,50,${uniq('csv')}`, `NOWHERE,A1,50,${uniq('csv')}`, ''].join('\n');
      const res = await env.app.inject({ method: 'POST', url: '/stock/imports?kind=delta', headers: { ...env.auth(secrets.store), 'content-type': 'text/csv' }, payload: csv });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect([body.applied, body.rejected]).toEqual([1, 2]);
      expect(await positions(env, 'WH1')).toEqual(wh1Before);
      expect((await positions(env, 'ST-PARIS')).C1.on_hand).toBe(parisBefore.C1.on_hand + 2);
      // Scope must not be an oracle: WH1 exists but is outside the key's scope, NOWHERE does not exist.
      const byLine = Object.fromEntries(body.problems.map((p: Json) => [p.line, p.code]));
      expect(byLine).toEqual({ 3: 'unknown_location', 4: 'unknown_location' });
      expect(JSON.stringify(body.problems)).not.toContain('may not');
    });
  });

  describe('authentication', () => {
    const PROBES = [
      { method: 'GET' as const, url: '/locations' },
      { method: 'GET' as const, url: '/api-keys' },
      // Authentication comes before validation: an invalid body still gets 401, not 400.
      { method: 'POST' as const, url: '/stock/deltas', payload: { items: 'not an array' } },
      { method: 'GET' as const, url: '/availability/A1?channel=web' },
    ];

    for (const probe of PROBES) {
      it(`no key → 401 unauthenticated on ${probe.method} ${probe.url}`, async () => {
        const res = await env.app.inject({ ...probe });
        expectError(res, 401, 'unauthenticated', { details: false });
      });
      it(`a wrong key → 401 unauthenticated on ${probe.method} ${probe.url}`, async () => {
        const forged = `oms_adm_${'A'.repeat(32)}`;
        for (const headers of [{ authorization: `Bearer ${forged}` }, { authorization: `Bearer ${secrets.admin}x` }, { 'x-api-key': forged }, { authorization: 'Bearer ' }]) {
          const res = await env.app.inject({ ...probe, headers });
          expectError(res, 401, 'unauthenticated', { details: false });
        }
      });
    }

    it('a key sent as Basic credentials is not accepted; X-Api-Key is', async () => {
      const basic = await env.app.inject({ method: 'GET', url: '/locations', headers: { authorization: `Basic ${Buffer.from(`x:${secrets.admin}`).toString('base64')}` } });
      expectError(basic, 401, 'unauthenticated', { details: false });
      const viaHeader = await env.app.inject({ method: 'GET', url: '/locations', headers: { 'x-api-key': secrets.integ } });
      expect(viaHeader.statusCode).toBe(200);
      expect(viaHeader.json().items.map((l: Json) => l.code)).toEqual(['WH1']);
    });

    it('a revoked key → 401 unauthenticated, and the listing shows it revoked', async () => {
      const k = await createApiKey(env.ctx, { name: 'short-lived', role: 'store', locations: ['ST-PARIS'] });
      const use = () => env.app.inject({ method: 'GET', url: '/locations/ST-PARIS/stock', headers: env.auth(k.secret) });
      expect((await use()).statusCode).toBe(200);
      const del = await env.app.inject({ method: 'DELETE', url: `/api-keys/${k.principal.keyId}`, headers: env.auth() });
      expect(del.statusCode).toBe(204);
      expect(del.body).toBe('');
      env.keys.forget();
      expectError(await use(), 401, 'unauthenticated', { details: false });
      const list = await env.app.inject({ method: 'GET', url: '/api-keys', headers: env.auth() });
      const row = list.json().items.find((i: Json) => i.id === k.principal.keyId);
      expect(row.revoked_at).toBe('2026-06-01T10:00:00.000Z');
      expect(list.body).not.toContain(k.secret);
      // Revoking again is harmless; an unknown id is not_found.
      expect((await env.app.inject({ method: 'DELETE', url: `/api-keys/${k.principal.keyId}`, headers: env.auth() })).statusCode).toBe(204);
      expectError(await env.app.inject({ method: 'DELETE', url: '/api-keys/key_nope', headers: env.auth() }), 404, 'not_found');
    });

    it('GET /api-keys never returns secrets or hashes', async () => {
      const res = await env.app.inject({ method: 'GET', url: '/api-keys', headers: env.auth() });
      expect(res.statusCode).toBe(200);
      const hashes = await env.ctx.store.db.selectFrom('api_keys').select('key_hash').execute();
      for (const h of hashes) expect(res.body).not.toContain(h.key_hash);
      for (const s of Object.values(secrets)) expect(res.body).not.toContain(s);
      for (const item of res.json().items) expect(Object.keys(item).sort()).toEqual(['channel', 'created_at', 'id', 'locations', 'name', 'prefix', 'revoked_at', 'role']);
    });
  });
});
