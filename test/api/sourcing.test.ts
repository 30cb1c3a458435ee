// The sourcing API on every backend: dry-run plans and their explanation, channel scope,
// bad input, carriers, simulations (JSON and NDJSON), and the rule-set lifecycle (save,
// refuse with every problem, publish, roll back). Runs in file order on one network.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/keys.ts';
import { upsertChannel } from '../../src/channels/channels.ts';
import type { Ctx } from '../../src/context.ts';
import { upsertLocation } from '../../src/inventory/locations.ts';
import { upsertSkus } from '../../src/inventory/skus.ts';
import { DEFAULT_RULE_SET } from '../../src/sourcing/presets.ts';
import { type ApiEnv, BACKENDS, createApiEnv } from '../support/backends.ts';
import { expectError, fingerprint, type InjectResult, type Json, seedStock } from './helpers.ts';

// Two warehouses, stores in Paris and Lyon (with click & collect), a Paris outlet that ships
// but is no pickup point, an Italian supplier, and 12 empty stores that only add candidates.
const EMPTY_STORES = Array.from({ length: 12 }, (_, i) => `ST-R${String(i + 1).padStart(2, '0')}`);
const ALL = ['WH1', 'WH2', 'ST-PARIS', 'ST-LYON', 'ST-OUTLET', 'SUP1', ...EMPTY_STORES];

async function network(ctx: Ctx): Promise<void> {
  const loc = (code: string, type: 'warehouse' | 'store' | 'supplier', country: string, latitude: number, longitude: number, priority: number, shipmentCost: number, capabilities: Array<'ships' | 'click_and_collect'>) =>
    upsertLocation(ctx, { code, name: code, type, country, latitude, longitude, priority, shipmentCost, capabilities });
  await loc('WH1', 'warehouse', 'FR', 48.9, 2.5, 100, 400, ['ships']);
  await loc('WH2', 'warehouse', 'FR', 45.73, 5.08, 90, 420, ['ships']);
  await loc('ST-PARIS', 'store', 'FR', 48.8566, 2.3522, 50, 550, ['ships', 'click_and_collect']);
  await loc('ST-LYON', 'store', 'FR', 45.764, 4.8357, 50, 500, ['ships', 'click_and_collect']);
  await loc('ST-OUTLET', 'store', 'FR', 48.8, 2.12, 50, 500, ['ships']);
  await loc('SUP1', 'supplier', 'IT', 45.46, 9.19, 10, 300, ['ships']);
  for (const [i, code] of EMPTY_STORES.entries()) await loc(code, 'store', 'FR', 43.5 + i * 0.4, -0.5 + i * 0.6, 50, 500, ['ships']);
  await upsertSkus(ctx, [
    { code: 'A1', name: 'Shirt', demandClass: 'A', weightG: 500 },
    { code: 'B1', name: 'Jeans', demandClass: 'B', weightG: 300 },
    { code: 'C1', name: 'Bag', demandClass: 'C', weightG: 1200 },
  ]);
  await upsertChannel(ctx, { code: 'web', name: 'Web', type: 'web' });
  await upsertChannel(ctx, { code: 'pos', name: 'Point of sale', type: 'store', locationTypes: ['store'] });
}

// B1 is only in stores: the default rule set fills it, a warehouse-only one cannot.
const STOCK: Record<string, Array<{ sku: string; on_hand: number }>> = {
  WH1: [{ sku: 'A1', on_hand: 10 }, { sku: 'C1', on_hand: 10 }],
  WH2: [{ sku: 'A1', on_hand: 20 }],
  'ST-PARIS': [{ sku: 'A1', on_hand: 4 }, { sku: 'B1', on_hand: 3 }, { sku: 'C1', on_hand: 2 }],
  'ST-LYON': [{ sku: 'B1', on_hand: 2 }, { sku: 'C1', on_hand: 5 }],
};

const PARIS = { mode: 'home', country: 'FR', latitude: 48.8534, longitude: 2.3488 };
const order = (lines: Array<[string, number]>, extra: Record<string, unknown> = {}) => ({ lines: lines.map(([sku, quantity]) => ({ sku, quantity })), delivery: PARIS, ...extra });

type Strategy = Record<string, unknown> & { id: string };
const strategy = (id: string, filters: Record<string, unknown>, fallbacks: unknown[] = [{ type: 'unfilled' }], criteria = ['shipments', 'priority', 'distance']): Strategy => ({
  id,
  when: {},
  filters: { capabilities: 'auto', ...filters },
  ranking: { mode: 'lexicographic', criteria: criteria.map((criterion) => ({ criterion })) },
  split: { policy: 'minimise' },
  fallbacks,
});
const ruleSet = (name: string, strategies: Strategy[]) => ({ name, settings: { homeCountry: 'FR', handlingDays: { warehouse: 0, store: 0, supplier: 2 }, exactSplitLimit: 16 }, strategies });
const WAREHOUSE_ONLY = ruleSet('warehouse-only', [strategy('warehouse-only', { locationTypes: ['warehouse'] })]);
const STORES_FIRST = ruleSet('stores-first', [
  strategy('stores-first', { locationTypes: ['store'] }, [{ type: 'strategy', strategy: 'warehouse-fallback' }], ['shipments', 'distance']),
  strategy('warehouse-fallback', { locationTypes: ['warehouse'] }),
]);

describe.each(BACKENDS)('sourcing API (%s)', (backend) => {
  let env: ApiEnv;
  const keys = {} as Record<'web' | 'pos' | 'store' | 'integ', string>;
  const call = (method: 'GET' | 'POST', url: string, payload?: unknown, key?: string): Promise<InjectResult> =>
    env.app.inject({ method, url, headers: env.auth(key), payload: payload as never }) as Promise<InjectResult>;
  const ok = async (method: 'GET' | 'POST', url: string, payload?: unknown, status = 200, key?: string): Promise<Json> => {
    const r = await call(method, url, payload, key);
    expect(r.statusCode, r.body.slice(0, 500)).toBe(status);
    return r.json();
  };
  const plan = (body: unknown, query = '', key?: string) => call('POST', `/sourcing/plan${query}`, body, key);

  beforeAll(async () => {
    env = await createApiEnv(backend);
    await network(env.ctx);
    for (const [location, items] of Object.entries(STOCK)) await seedStock(env, location, '2026-06-01T08:00:00Z', items);
    keys.web = (await createApiKey(env.ctx, { name: 'web channel', role: 'channel', channel: 'web' })).secret;
    keys.pos = (await createApiKey(env.ctx, { name: 'pos channel', role: 'channel', channel: 'pos' })).secret;
    keys.store = (await createApiKey(env.ctx, { name: 'paris store', role: 'store', channel: 'pos', locations: ['ST-PARIS'] })).secret;
    keys.integ = (await createApiKey(env.ctx, { name: 'wms', role: 'integration', locations: ['WH1'] })).secret;
  });
  afterAll(async () => {
    await env?.close();
  });

  describe('POST /sourcing/plan (dry run)', () => {
    it('plans A1 from the first-priority warehouse and B1 from the nearest store, and reserves nothing', async () => {
      const before = await fingerprint(env);
      const body = await ok('POST', '/sourcing/plan', { channel: 'web', ...order([['A1', 2], ['B1', 1]]) });
      expect(body.rule_set).toEqual({ version: null, name: 'default' });
      expect(body.plan.lines).toEqual([
        { line_id: 'L1', sku: 'A1', quantity: 2, strategy: 'warehouse-first-a', allocations: [{ location: 'WH1', quantity: 2 }], backorders: [], unfilled: 0 },
        { line_id: 'L2', sku: 'B1', quantity: 1, strategy: 'home-standard', allocations: [{ location: 'ST-PARIS', quantity: 1 }], backorders: [], unfilled: 0 },
      ]);
      expect([body.plan.fill_rate, body.plan.complete]).toEqual([1, true]);
      const ships = body.plan.shipments.map((s: Json) => [s.location, s.location_type, s.mode, s.destination_country, s.lines, s.weight_g, s.shipment_cost, s.backorder]);
      expect(ships).toEqual([
        ['WH1', 'warehouse', 'home', 'FR', [{ line_id: 'L1', sku: 'A1', quantity: 2 }], 1000, 400, false],
        ['ST-PARIS', 'store', 'home', 'FR', [{ line_id: 'L2', sku: 'B1', quantity: 1 }], 300, 550, false],
      ]);
      for (const s of body.plan.shipments) {
        expect(s.ready_date).toBe('2026-06-01');
        expect(s.distance_km).toBeLessThan(15);
        expect(s.carrier).toMatchObject({ service: expect.any(String), cost: expect.any(Number), currency: 'EUR', meets_promise: true });
      }
      const e = body.explanation;
      expect(e.rule_set).toBe('default');
      expect(e.destination).toEqual({ precision: 'coordinates', source: expect.any(String), distance: 'used' });
      expect(e.strategies.map((s: Json) => [s.strategy, s.lines])).toEqual([
        ['warehouse-first-a', ['L1']],
        ['home-standard', ['L2']],
      ]);
      expect(e.lines[1]).toEqual({ line_id: 'L2', strategy: 'home-standard', why: expect.any(String), chosen: [{ location: 'ST-PARIS', quantity: 1, criteria: { shipments: 0, priority: 50, distance: expect.any(Number) } }], fallbacks: [] });
      expect(e.carriers.map((c: Json) => c.location)).toEqual(['WH1', 'ST-PARIS']);
      expect(await fingerprint(env), 'a dry run changed stored state or availability').toEqual(before);
    });

    it('explain=summary keeps each attempt small: chosen in full, the rest counted, the 10 best-placed shown', async () => {
      const body = await ok('POST', '/sourcing/plan', { channel: 'web', ...order([['B1', 1]]) });
      const [a] = body.explanation.attempts;
      expect([a.strategy, a.via, a.lines, a.candidate_count]).toEqual(['home-standard', 'selected', ['L1'], ALL.length]);
      expect(a).not.toHaveProperty('candidates');
      expect(a.split).toEqual({ policy: 'minimise', shipments: 1, method: 'single', lower_bound: 1, note: null });
      expect(a.chosen).toEqual([{ location: 'ST-PARIS', outcome: 'chosen', reason: expect.stringContaining('chosen'), rank: 1, criteria: { shipments: 0, priority: 50, distance: expect.any(Number) } }]);
      // WH1, WH2, ST-OUTLET and the 12 empty stores hold no B1; the supplier is not a warehouse or store.
      expect(a.rejected_by_outcome).toEqual({ lost: 1, no_stock: 15, filtered: 1 });
      expect(a.rejected_sample).toHaveLength(10);
      expect(a.rejected_sample[0]).toEqual({ location: 'ST-LYON', outcome: 'lost', reason: expect.stringContaining('lost on distance'), rank: 2, criteria: { shipments: 0, priority: 50, distance: expect.any(Number) } });
      expect(a.rejected_sample.slice(1).map((v: Json) => v.outcome)).toEqual(Array(9).fill('no_stock'));
      // Criteria keep the ranking's order (shipments, then priority, then distance).
      expect(Object.keys(a.chosen[0].criteria)).toEqual(['shipments', 'priority', 'distance']);
    });

    it('explain=full names every exposed candidate with its verdict', async () => {
      const body = await ok('POST', '/sourcing/plan?explain=full', { channel: 'web', ...order([['B1', 1]]) });
      const [a] = body.explanation.attempts;
      expect(a).not.toHaveProperty('rejected_sample');
      expect(a.candidates.map((v: Json) => v.location).sort()).toEqual([...ALL].sort());
      const byLoc = Object.fromEntries(a.candidates.map((v: Json) => [v.location, v]));
      expect([byLoc['ST-PARIS'].outcome, byLoc['ST-LYON'].outcome, byLoc.WH1.outcome, byLoc.SUP1.outcome]).toEqual(['chosen', 'lost', 'no_stock', 'filtered']);
      expect(byLoc.SUP1.reason).toContain('location type');
      expect(byLoc.WH1).not.toHaveProperty('criteria');
    });

    it('a channel key plans for its own channel by default; another channel looks like an unknown one', async () => {
      const own = await ok('POST', '/sourcing/plan', order([['A1', 1]]), 200, keys.web);
      expect(own.plan.lines[0].allocations).toEqual([{ location: 'WH1', quantity: 1 }]);
      // pos sees only stores: the warehouse strategy finds nothing and falls back to home-standard.
      const pos = await ok('POST', '/sourcing/plan', order([['A1', 1]]), 200, keys.pos);
      expect(pos.plan.lines[0].allocations).toEqual([{ location: 'ST-PARIS', quantity: 1 }]);
      expect(pos.explanation.attempts.map((a: Json) => [a.strategy, a.via])).toEqual([
        ['warehouse-first-a', 'selected'],
        ['home-standard', "fallback of 'warehouse-first-a'"],
      ]);
      const viaStore = await ok('POST', '/sourcing/plan', order([['A1', 1]]), 200, keys.store);
      expect(viaStore.plan.lines[0].allocations).toEqual([{ location: 'ST-PARIS', quantity: 1 }]);

      const other = expectError(await plan({ channel: 'pos', ...order([['A1', 1]]) }, '', keys.web), 404, 'unknown_channel', { details: false });
      const missing = expectError(await plan({ channel: 'nope', ...order([['A1', 1]]) }, '', keys.web), 404, 'unknown_channel', { details: false });
      expect(other.error.message.replace('pos', '?')).toBe(missing.error.message.replace('nope', '?'));
      expectError(await plan({ channel: 'web', ...order([['A1', 1]]) }, '', keys.store), 404, 'unknown_channel');
      expectError(await plan(order([['A1', 1]]), '', keys.integ), 403, 'forbidden');
      expectError(await plan(order([['A1', 1]])), 400, 'validation_failed');
      // Only an admin may dry-run a draft.
      expectError(await plan(order([['A1', 1]]), '?rule_set=1', keys.web), 403, 'forbidden');
    });

    it('click & collect: the pickup store itself when it holds the order; a store that is no pickup point is refused', async () => {
      const cc = await ok('POST', '/sourcing/plan', { channel: 'web', lines: [{ sku: 'A1', quantity: 1 }], delivery: { mode: 'click_and_collect', pickup_location: 'ST-PARIS' } });
      expect(cc.plan.lines[0]).toMatchObject({ strategy: 'cc-pickup-store', allocations: [{ location: 'ST-PARIS', quantity: 1 }] });
      expect(cc.plan.shipments[0]).toMatchObject({ location: 'ST-PARIS', mode: 'click_and_collect', shipment_cost: 0, carrier: { service: null, reason: 'collected at the store: no carrier' } });
      // Lyon holds no A1 and no store within 30 km does: a warehouse ships it to the store.
      const transfer = await ok('POST', '/sourcing/plan', { channel: 'web', lines: [{ sku: 'A1', quantity: 1 }], delivery: { mode: 'click_and_collect', pickup_location: 'ST-LYON' } });
      expect(transfer.plan.lines[0].allocations).toEqual([{ location: 'WH1', quantity: 1 }]);
      expect(transfer.plan.shipments[0]).toMatchObject({ location: 'WH1', mode: 'store_transfer' });
      expect(transfer.explanation.attempts.map((a: Json) => a.strategy)).toEqual(['cc-pickup-store', 'cc-nearby-store', 'cc-warehouse']);

      const notPickup = expectError(await plan({ channel: 'web', lines: [{ sku: 'A1', quantity: 1 }], delivery: { mode: 'click_and_collect', pickup_location: 'ST-OUTLET' } }), 400, 'validation_failed');
      expect(notPickup.error.message).toContain('ST-OUTLET');
      expectError(await plan({ channel: 'web', lines: [{ sku: 'A1', quantity: 1 }], delivery: { mode: 'click_and_collect' } }), 400, 'validation_failed');
      expectError(await plan({ channel: 'web', lines: [{ sku: 'A1', quantity: 1 }], delivery: { mode: 'in_store', pickup_location: 'WH1' } }), 400, 'validation_failed');
      expectError(await plan({ channel: 'web', lines: [{ sku: 'A1', quantity: 1 }], delivery: { mode: 'click_and_collect', pickup_location: 'NOWHERE' } }), 404, 'unknown_location');
    });

    it('refuses bad input with the right code', async () => {
      const unknown = expectError(await plan({ channel: 'web', ...order([['A1', 1], ['NOPE', 1]]) }), 404, 'unknown_sku');
      expect(unknown.error.details).toEqual({ skus: ['NOPE'] });
      expectError(await plan({ channel: 'web', ...order([['A1', 0]]) }), 400, 'validation_failed');
      expectError(await plan({ channel: 'web', ...order([]) }), 400, 'validation_failed');
      const many = Array.from({ length: 201 }, () => ['A1', 1] as [string, number]);
      expectError(await plan({ channel: 'web', ...order(many) }), 400, 'page_too_large');
      expectError(await plan({ channel: 'web', ...order([['A1', 1]]), colour: 'red' }), 400, 'validation_failed');
      expectError(await plan({ channel: 'web', lines: [{ sku: 'A1', quantity: 1 }], delivery: { mode: 'home' } }), 400, 'validation_failed');
      expectError(await plan({ channel: 'web', lines: [{ sku: 'A1', quantity: 1 }], delivery: { mode: 'drone', country: 'FR' } }), 400, 'validation_failed');
      expectError(await plan({ channel: 'web', lines: [{ sku: 'A1', quantity: 1 }], delivery: { ...PARIS, country: 'XX' } }), 400, 'invalid_country');
      expectError(await plan({ channel: 'web', ...order([['A1', 1]]), promised_by: 'tomorrow' }), 400, 'validation_failed');
      expectError(await plan({ channel: 'web', ...order([['A1', 1]]), exclude_locations: ['NOWHERE'] }), 404, 'unknown_location');
      expectError(await plan({ channel: 'web', lines: [{ line_id: 'x', sku: 'A1', quantity: 1 }, { line_id: 'x', sku: 'B1', quantity: 1 }], delivery: PARIS }), 400, 'validation_failed');
      expectError(await plan({ channel: 'web', ...order([['A1', 1]]) }, '?explain=everything'), 400, 'validation_failed');
      expectError(await plan({ channel: 'web', ...order([['A1', 1]]) }, '?rule_set=999999'), 404, 'not_found');
    });

    it('excluded locations, a pinned carrier service and a promise reach the engine', async () => {
      const body = await ok('POST', '/sourcing/plan', { channel: 'web', ...order([['A1', 1]]), exclude_locations: ['WH1'], carrier_service: 'home_express', promised_by: '2026-06-30T00:00:00Z' });
      expect(body.plan.lines[0].allocations).toEqual([{ location: 'WH2', quantity: 1 }]);
      expect(body.plan.shipments[0].carrier).toMatchObject({ service: 'home_express', meets_promise: true });
    });
  });

  describe('GET /carriers', () => {
    it('lists the configured services to admin, channel and store keys; not to integrations', async () => {
      for (const key of [undefined, keys.web, keys.store]) {
        const body = await ok('GET', '/carriers', undefined, 200, key);
        const home = body.items.find((s: Json) => s.code === 'home_standard');
        expect(home).toMatchObject({ carrier: expect.any(String), modes: ['home'], service_level: 'standard', origin_countries: ['FR'], zones: [{ name: 'domestic', countries: ['@origin'] }], max_weight_g: 30_000, lead_time_days: 2, cutoff: '16:00', time_zone: 'Europe/Paris', pickup_point: false, active: true, currency: 'EUR' });
        expect(home.cost_table.domestic[0]).toEqual({ up_to_g: 250, cost: 495 });
        expect(body.holidays.FR).toContain('2026-12-25');
      }
      expectError(await call('GET', '/carriers', undefined, keys.integ), 403, 'forbidden');
    });
  });

  describe('POST /sourcing/simulations', () => {
    // S1 splits under the default (A1 warehouse, C1 a store near Paris) and not warehouse-only;
    // S2's B1 is only in stores: filled by the default, unfilled warehouse-only; S3 is unknown.
    const ORDERS = [
      { reference: 'S1', channel: 'web', ...order([['A1', 1], ['C1', 1]]) },
      { reference: 'S2', channel: 'web', ...order([['B1', 2]]) },
      { reference: 'S3', channel: 'web', ...order([['NOPE', 1]]) },
      { reference: 'S4', channel: 'web', ...order([['A1', 3]]) },
    ];
    let draft = 0;

    const expectComparison = (body: Json, candidateVersion: number | null) => {
      const [base, cand] = body.rule_sets;
      expect([base.label, base.version, base.name]).toEqual(['baseline', null, 'default']);
      expect([cand.label, cand.version, cand.name]).toEqual(['candidate', candidateVersion, 'warehouse-only']);
      expect(base.metrics).toMatchObject({ orders: 3, orders_complete: 3, split_orders: 1, units_ordered: 7, units_allocated: 7, units_backordered: 0, units_unfilled: 0, fill_rate: 1, shipments: 4, late_promises: 0 });
      expect(cand.metrics).toMatchObject({ orders: 3, orders_complete: 2, split_orders: 0, units_ordered: 7, units_allocated: 5, units_backordered: 0, units_unfilled: 2, shipments: 2, late_promises: 0 });
      expect(base.metrics.shipments_per_order).toBeCloseTo(4 / 3, 10);
      expect(cand.metrics.shipments_per_order).toBeCloseTo(2 / 3, 10);
      expect(cand.metrics.fill_rate).toBeCloseTo(5 / 7, 10);
      expect(base.metrics.total_cost).toBeGreaterThan(cand.metrics.total_cost);
      expect(base.metrics.avg_cost_per_order).toBe(Math.round(base.metrics.total_cost / 3));
      expect(body.rejected).toEqual([{ index: 2, reference: 'S3', code: 'unknown_sku', message: expect.stringContaining('NOPE') }]);
      expect(body.stock_as_of).toBe('2026-06-01T10:00:00.000Z');
      expect(body.duration_ms).toBeGreaterThanOrEqual(0);
      expect(body.orders_per_second).toBeGreaterThan(0);
    };

    it('JSON: the default preset against an unsaved warehouse-only draft, changing nothing', async () => {
      const before = await fingerprint(env);
      const body = await ok('POST', '/sourcing/simulations', { orders: ORDERS, candidate: { rule_set: WAREHOUSE_ONLY }, per_order: true });
      expectComparison(body, null);
      expect(body.per_order.map((o: Json) => [o.reference, o.baseline.shipments, o.baseline.unfilled, o.candidate.shipments, o.candidate.unfilled])).toEqual([
        ['S1', 2, 0, 1, 0],
        ['S2', 1, 0, 0, 2],
        ['S4', 1, 0, 1, 0],
      ]);
      expect(await fingerprint(env)).toEqual(before);
      const quiet = await ok('POST', '/sourcing/simulations', { orders: ORDERS, baseline: 'published', candidate: { rule_set: WAREHOUSE_ONLY } });
      expect(quiet).not.toHaveProperty('per_order');
    });

    it('NDJSON: one order per line, a saved draft as candidate, settings in the query string', async () => {
      draft = (await ok('POST', '/sourcing/rule-sets', { rule_set: WAREHOUSE_ONLY, note: 'simulation draft' }, 201)).version;
      const ndjson = `${ORDERS.map((o) => JSON.stringify(o)).join('\n')}\n\n`;
      const r = await env.app.inject({ method: 'POST', url: `/sourcing/simulations?candidate=${draft}&baseline=published&per_order=true`, headers: { ...env.auth(), 'content-type': 'application/x-ndjson' }, payload: ndjson });
      expect(r.statusCode, r.body.slice(0, 500)).toBe(200);
      expectComparison(r.json(), draft);
      expect(r.json().per_order).toHaveLength(3);
    });

    it('NDJSON: a bad line is refused with its number; the settings must be in the query string', async () => {
      const send = (url: string, payload: string) => env.app.inject({ method: 'POST', url, headers: { ...env.auth(), 'content-type': 'application/x-ndjson' }, payload }) as Promise<InjectResult>;
      const good = JSON.stringify(ORDERS[0]);
      const notJson = expectError(await send(`/sourcing/simulations?candidate=${draft}`, `${good}\n{not json\n${good}`), 400, 'validation_failed');
      expect(notJson.error.message).toContain('line 2');
      const bad = JSON.stringify({ ...ORDERS[0], lines: [{ sku: 'A1', quantity: 0 }] });
      const badOrder = expectError(await send(`/sourcing/simulations?candidate=${draft}`, `${good}\n${good}\n${bad}`), 400, 'validation_failed');
      expect(badOrder.error.message).toMatch(/^line 3: \/lines\/0\/quantity/);
      expectError(await send('/sourcing/simulations', good), 400, 'validation_failed');
      expectError(await send('/sourcing/simulations?candidate=latest', good), 400, 'validation_failed');
      expectError(await send(`/sourcing/simulations?candidate=${draft}`, ''), 400, 'validation_failed');
      // The body limit holds for NDJSON too (2 MiB in these tests).
      expectError(await send(`/sourcing/simulations?candidate=${draft}`, `${good}\n`.repeat(Math.ceil((2.1 * 1024 * 1024) / (good.length + 1)))), 413, 'body_too_large');
      expectError(await send(`/sourcing/simulations?candidate=${draft}`, Array(10_001).fill('{"channel":"web","lines":[{"sku":"A1","quantity":1}],"delivery":{"mode":"home","country":"FR"}}').join('\n')), 400, 'page_too_large');
    });

    it('JSON: refuses a bad candidate with every problem, too many orders, and query-string settings', async () => {
      const bad = expectError(await call('POST', '/sourcing/simulations', { orders: ORDERS, candidate: { rule_set: { ...WAREHOUSE_ONLY, strategies: [] } } }), 422, 'invalid_rule_set');
      expect(bad.error.details.problems).toEqual([{ path: '/strategies', message: 'a rule set needs at least one strategy' }]);
      const tooMany = Array.from({ length: 10_001 }, () => ({ channel: 'web', lines: [{ sku: 'A1', quantity: 1 }], delivery: { mode: 'home', country: 'FR' } }));
      expectError(await call('POST', '/sourcing/simulations', { orders: tooMany, candidate: draft }), 400, 'page_too_large');
      expectError(await call('POST', `/sourcing/simulations?candidate=${draft}`, { orders: ORDERS, candidate: draft }), 400, 'validation_failed');
      expectError(await call('POST', '/sourcing/simulations', { orders: ORDERS }), 400, 'validation_failed');
      expectError(await call('POST', '/sourcing/simulations', { orders: ORDERS, candidate: 999_999 }), 404, 'not_found');
      // An order with an invalid country is rejected alone, like an unknown sku.
      const xx = await ok('POST', '/sourcing/simulations', { orders: [{ ...ORDERS[0], delivery: { ...PARIS, country: 'XX' } }, ORDERS[1]], candidate: draft });
      expect(xx.rejected).toEqual([{ index: 0, reference: 'S1', code: 'invalid_country', message: expect.any(String) }]);
      expect(xx.rule_sets[0].metrics.orders).toBe(1);
    });
  });

  describe('rule sets', () => {
    const published = async () => ok('GET', '/sourcing/rule-sets/published');
    const versions: Record<string, number> = {};

    it('before any publication the built-in default is live, in full, and there is nothing to roll back', async () => {
      const live = await published();
      expect(live).toEqual({ version: null, name: 'default', published_at: null, rule_set: DEFAULT_RULE_SET });
      expectError(await call('POST', '/sourcing/rule-sets/rollback'), 409, 'invalid_state');
      expect(await ok('GET', '/sourcing/publications')).toEqual({ items: [] });
    });

    it('validate checks without saving', async () => {
      const before = await ok('GET', '/sourcing/rule-sets');
      expect(await ok('POST', '/sourcing/rule-sets/validate', { rule_set: STORES_FIRST })).toEqual({ valid: true, problems: [] });
      const bad = await ok('POST', '/sourcing/rule-sets/validate', { rule_set: { ...STORES_FIRST, strategies: [STORES_FIRST.strategies[0]] } });
      expect(bad).toEqual({ valid: false, problems: [{ path: '/strategies/0/fallbacks/0/strategy', message: "unknown strategy 'warehouse-fallback'" }] });
      expect(await ok('GET', '/sourcing/rule-sets')).toEqual(before);
    });

    it('saves valid rule sets as new unpublished versions, created by the key', async () => {
      for (const [label, rs] of [['v1', WAREHOUSE_ONLY], ['v2', STORES_FIRST], ['draft', { ...WAREHOUSE_ONLY, name: 'draft' }]] as const) {
        const body = await ok('POST', '/sourcing/rule-sets', { rule_set: rs, ...(label === 'v1' ? { note: 'first' } : {}) }, 201);
        expect(body).toEqual({ version: expect.any(Number), name: rs.name, note: label === 'v1' ? 'first' : null, created_by: 'test admin', created_at: '2026-06-01T10:00:00.000Z', published: false, rule_set: rs });
        versions[label] = body.version;
      }
      expect(versions.v2).toBeGreaterThan(versions.v1);
      const one = await ok('GET', `/sourcing/rule-sets/${versions.v2}`);
      expect(one).toMatchObject({ version: versions.v2, name: 'stores-first', rule_set: STORES_FIRST });
      expectError(await call('GET', '/sourcing/rule-sets/999999'), 404, 'not_found');
      expectError(await call('GET', '/sourcing/rule-sets/abc'), 400, 'validation_failed');
    });

    it('lists versions newest first, without their body, page by page', async () => {
      const all = await ok('GET', '/sourcing/rule-sets');
      expect(all.items.map((i: Json) => i.version)).toEqual([...all.items.map((i: Json) => i.version)].sort((a: number, b: number) => b - a));
      expect(all.items[0]).toEqual({ version: versions.draft, name: 'draft', note: null, created_by: 'test admin', created_at: '2026-06-01T10:00:00.000Z', published: false });
      expect(all.next_cursor).toBe(null);
      const first = await ok('GET', '/sourcing/rule-sets?limit=2');
      expect(first.items.map((i: Json) => i.version)).toEqual([versions.draft, versions.v2]);
      expect(first.next_cursor).toBe(String(versions.v2));
      const second = await ok('GET', `/sourcing/rule-sets?limit=2&after=${first.next_cursor}`);
      expect(second.items[0].version).toBe(versions.v1);
      expectError(await call('GET', '/sourcing/rule-sets?after=abc'), 400, 'invalid_cursor');
    });

    it('publishes v1, then v2: plans use v2 at once', async () => {
      const p1 = await ok('POST', `/sourcing/rule-sets/${versions.v1}/publish`);
      expect(p1).toEqual({ version: versions.v1, action: 'publish', published_by: 'test admin', published_at: '2026-06-01T10:00:00.000Z', previous: null });
      env.clock.advance(60_000);
      const p2 = await ok('POST', `/sourcing/rule-sets/${versions.v2}/publish`);
      expect(p2).toEqual({ version: versions.v2, action: 'publish', published_by: 'test admin', published_at: '2026-06-01T10:01:00.000Z', previous: versions.v1 });
      expect(await published()).toMatchObject({ version: versions.v2, name: 'stores-first', published_at: '2026-06-01T10:01:00.000Z', rule_set: STORES_FIRST });
      expect((await ok('GET', `/sourcing/rule-sets/${versions.v2}`)).published).toBe(true);
      expect((await ok('GET', `/sourcing/rule-sets/${versions.v1}`)).published).toBe(false);

      // A1 under stores-first: the nearest store holding it.
      const body = await ok('POST', '/sourcing/plan', { channel: 'web', ...order([['A1', 1]]) });
      expect(body.rule_set).toEqual({ version: versions.v2, name: 'stores-first' });
      expect(body.explanation.rule_set).toBe('stores-first');
      expect(body.explanation.strategies.map((s: Json) => s.strategy)).toEqual(['stores-first']);
      expect(body.plan.lines[0].allocations).toEqual([{ location: 'ST-PARIS', quantity: 1 }]);
      // 5 A1 wanted, 4 in the store: the warehouse fallback gives the last one.
      const five = await ok('POST', '/sourcing/plan', { channel: 'web', ...order([['A1', 5]]) });
      expect(five.plan.lines[0].allocations).toEqual([{ location: 'ST-PARIS', quantity: 4 }, { location: 'WH1', quantity: 1 }]);
      expect(five.explanation.attempts.map((a: Json) => [a.strategy, a.via])).toEqual([
        ['stores-first', 'selected'],
        ['warehouse-fallback', "fallback of 'stores-first'"],
      ]);
      expectError(await call('POST', '/sourcing/rule-sets/999999/publish'), 404, 'not_found');
    });

    it('refuses invalid rule sets with 422 and every problem, and the published one stays', async () => {
      const live = await published();
      const list = await ok('GET', '/sourcing/rule-sets');
      const base = WAREHOUSE_ONLY.strategies[0];
      const cases: Array<[string, unknown, { path: string; message: RegExp }]> = [
        ['unknown criterion', ruleSet('bad', [{ ...base, ranking: { mode: 'lexicographic', criteria: [{ criterion: 'colour' }] } }]), { path: '/strategies/0/ranking/criteria/0/criterion', message: /unknown value "colour".*distance/ }],
        ['empty strategy list', ruleSet('bad', []), { path: '/strategies', message: /at least one strategy/ }],
        [
          'fallback cycle',
          ruleSet('bad', [strategy('a', {}, [{ type: 'strategy', strategy: 'b' }]), strategy('b', {}, [{ type: 'strategy', strategy: 'c' }]), strategy('c', {}, [{ type: 'strategy', strategy: 'a' }])]),
          { path: '/strategies', message: /fallback cycle: a → b → c → a/ },
        ],
        ['negative radius', ruleSet('bad', [{ ...base, filters: { maxDistanceKm: -5 } }]), { path: '/strategies/0/filters/maxDistanceKm', message: /must be > 0/ }],
        ['duplicate ids', ruleSet('bad', [base, base]), { path: '/strategies/1/id', message: /duplicate strategy id 'warehouse-only'/ }],
      ];
      for (const [name, rs, problem] of cases) {
        const res = await call('POST', '/sourcing/rule-sets', { rule_set: rs });
        const body = expectError(res, 422, 'invalid_rule_set');
        expect(body.error.details.problems, name).toContainEqual({ path: problem.path, message: expect.stringMatching(problem.message) });
        for (const p of body.error.details.problems) expect(Object.keys(p).sort(), name).toEqual(['message', 'path']);
        const check = await ok('POST', '/sourcing/rule-sets/validate', { rule_set: rs });
        expect(check.valid, name).toBe(false);
        expect(check.problems, name).toEqual(body.error.details.problems);
      }
      // Several problems at once come back together.
      const many = expectError(await call('POST', '/sourcing/rule-sets', { rule_set: ruleSet('bad', [base, { ...base, fallbacks: [{ type: 'strategy', strategy: 'ghost' }] }]) }), 422, 'invalid_rule_set');
      expect(many.error.details.problems.length).toBeGreaterThanOrEqual(2);
      // Not an object at all: the schema refuses it before the rule-set checks.
      expectError(await call('POST', '/sourcing/rule-sets', { rule_set: 'warehouse-only' }), 400, 'validation_failed');
      expect(await published()).toEqual(live);
      expect(await ok('GET', '/sourcing/rule-sets')).toEqual(list);
    });

    it('an admin dry-runs a saved draft with ?rule_set=, while v2 stays live', async () => {
      const body = await ok('POST', `/sourcing/plan?rule_set=${versions.draft}`, { channel: 'web', ...order([['A1', 1]]) });
      expect(body.rule_set).toEqual({ version: versions.draft, name: 'draft' });
      expect(body.plan.lines[0]).toMatchObject({ strategy: 'warehouse-only', allocations: [{ location: 'WH1', quantity: 1 }] });
      expect((await published()).version).toBe(versions.v2);
    });

    it('rollback makes v1 live again; the history tells the story', async () => {
      env.clock.advance(60_000);
      const back = await ok('POST', '/sourcing/rule-sets/rollback');
      expect(back).toEqual({ version: versions.v1, action: 'rollback', published_by: 'test admin', published_at: '2026-06-01T10:02:00.000Z', previous: versions.v2 });
      expect((await published()).version).toBe(versions.v1);
      const body = await ok('POST', '/sourcing/plan', { channel: 'web', ...order([['A1', 1]]) });
      expect(body.rule_set).toEqual({ version: versions.v1, name: 'warehouse-only' });
      expect(body.explanation.strategies.map((s: Json) => s.strategy)).toEqual(['warehouse-only']);
      expect(body.plan.lines[0].allocations).toEqual([{ location: 'WH1', quantity: 1 }]);
      const history = await ok('GET', '/sourcing/publications');
      expect(history.items.map((p: Json) => [p.version, p.action, p.previous, p.published_at])).toEqual([
        [versions.v1, 'rollback', versions.v2, '2026-06-01T10:02:00.000Z'],
        [versions.v2, 'publish', versions.v1, '2026-06-01T10:01:00.000Z'],
        [versions.v1, 'publish', null, '2026-06-01T10:00:00.000Z'],
      ]);
      expect((await ok('GET', '/sourcing/publications?limit=1')).items).toHaveLength(1);
    });
  });

  describe('roles', () => {
    const ADMIN_ONLY: Array<['GET' | 'POST', string, unknown?]> = [
      ['GET', '/sourcing/rule-sets'],
      ['GET', '/sourcing/rule-sets/published'],
      ['GET', '/sourcing/rule-sets/1'],
      ['POST', '/sourcing/rule-sets', { rule_set: WAREHOUSE_ONLY }],
      ['POST', '/sourcing/rule-sets/validate', { rule_set: WAREHOUSE_ONLY }],
      ['POST', '/sourcing/rule-sets/1/publish'],
      ['POST', '/sourcing/rule-sets/rollback'],
      ['GET', '/sourcing/publications'],
      ['POST', '/sourcing/simulations', { orders: [{ channel: 'web', ...order([['A1', 1]]) }], candidate: 1 }],
    ];
    it('rule sets and simulations are for admin keys only: 403 forbidden, nothing changed', async () => {
      const before = await fingerprint(env);
      const live = await ok('GET', '/sourcing/rule-sets/published');
      const history = await ok('GET', '/sourcing/publications');
      for (const [method, url, payload] of ADMIN_ONLY) {
        for (const key of [keys.web, keys.pos, keys.store, keys.integ]) expectError(await call(method, url, payload, key), 403, 'forbidden', { details: false });
      }
      // The role comes first: a non-admin gets 403 even for a batch it got wrong.
      const ndjson = await env.app.inject({ method: 'POST', url: '/sourcing/simulations', headers: { ...env.auth(keys.web), 'content-type': 'application/x-ndjson' }, payload: '{"channel":"web"}' });
      expectError(ndjson as InjectResult, 403, 'forbidden', { details: false });
      expect(await fingerprint(env)).toEqual(before);
      expect(await ok('GET', '/sourcing/rule-sets/published')).toEqual(live);
      expect(await ok('GET', '/sourcing/publications')).toEqual(history);
    });
  });
});
