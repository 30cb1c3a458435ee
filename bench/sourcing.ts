// Sourcing figures (issue #3): plans in process and over HTTP, simulation throughput, and the
// split quality of the greedy cover against the exact one. Orders are generated
// deterministically over the bench network (5 lines, destinations spread over France).
import { rng } from '../src/demo/network.ts';
import { source } from '../src/sourcing/engine.ts';
import type { RuleSet } from '../src/sourcing/model.ts';
import { DEFAULT_RULE_SET } from '../src/sourcing/presets.ts';
import { buildOrder, loadCandidates, planSourcing, type SimulationOrderInput, type SourcingRequest, simulateRuleSets } from '../src/sourcing/service.ts';
import { minimiseCover } from '../src/sourcing/split.ts';
import type { FigureContext } from './figures.ts';
import { CHANNEL } from './generate.ts';
import { runLoad } from './load.ts';
import { type Figure, log, round, summarise } from './report.ts';

const TARGET = { p50: 0.5, p99: 2 };

/** Deterministic orders: `lines` distinct skus, 1–2 units each, mostly home delivery. */
export function benchOrders(fx: FigureContext, count: number, lines: number, seed: number): SimulationOrderInput[] {
  const r = rng(seed);
  const skus = fx.net.skus;
  const stores = fx.net.locations.slice(fx.net.spec.warehouses);
  return Array.from({ length: count }, (_, i) => {
    const picked = new Set<string>();
    while (picked.size < Math.min(lines, skus.length)) picked.add(skus[Math.floor(r() * skus.length)].code);
    const kind = r();
    const delivery: SourcingRequest['delivery'] =
      kind < 0.15 && stores.length
        ? { mode: 'click_and_collect', pickupLocation: stores[Math.floor(r() * stores.length)].code }
        : { mode: kind < 0.3 ? 'pickup_point' : 'home', country: 'FR', latitude: 43 + r() * 7, longitude: -1 + r() * 8 };
    return { reference: `bench-${i}`, channel: CHANNEL, lines: [...picked].map((sku) => ({ sku, quantity: 1 + Math.floor(r() * 2), unitPrice: 1990 })), delivery };
  });
}

/** sourcing.plan: planSourcing in process (candidates from the projection + engine + carriers); ceiling = the engine alone. */
export async function sourcingPlan(fx: FigureContext): Promise<Figure> {
  const ctx = fx.rt.ctx;
  const orders = benchOrders(fx, 2000, 5, 11);
  const deadline = () => performance.now() + fx.duration * 1000;
  for (let i = 0; i < 300; i++) await planSourcing(ctx, orders[i % orders.length]);
  const full: number[] = [];
  let end = deadline();
  let t0 = performance.now();
  for (let i = 0; performance.now() < end && i < 200_000; i++) {
    const s = performance.now();
    await planSourcing(ctx, orders[i % orders.length]);
    full.push(performance.now() - s);
  }
  const fullSeconds = (performance.now() - t0) / 1000;
  // The engine alone, on candidates built beforehand.
  const used = await ctx.sourcing.capacity.today(ctx);
  const now = ctx.clock.now();
  const { ruleSet } = await ctx.sourcing.rules.get(ctx);
  const prepared = orders.slice(0, 500).map((o) => {
    const order = buildOrder(ctx, o);
    return { order, candidates: loadCandidates(ctx, order.channel, order.lines.map((l) => l.sku), used, now) };
  });
  const engine: number[] = [];
  end = deadline();
  t0 = performance.now();
  for (let i = 0; performance.now() < end && i < 200_000; i++) {
    const p = prepared[i % prepared.length];
    const s = performance.now();
    source(p.order, p.candidates, ruleSet, now, ctx.sourcing.carriers);
    engine.push(performance.now() - s);
  }
  const engineSeconds = (performance.now() - t0) / 1000;
  const f = summarise(full);
  const e = summarise(engine);
  const value = full.length / fullSeconds;
  const ceiling = engine.length / engineSeconds;
  const sample = (await planSourcing(ctx, orders[0])).result;
  return {
    name: 'sourcing.plan',
    ...fx.common,
    value: round(value, 0),
    unit: 'plans/s',
    p50_ms: round(f.p50, 3),
    p99_ms: round(f.p99, 3),
    ceiling: round(ceiling, 0),
    ceiling_unit: 'engine-only plans/s',
    ceiling_p50_ms: round(e.p50, 3),
    ceiling_p99_ms: round(e.p99, 3),
    ratio: round(value / ceiling, 3),
    candidates: sample.explanation.attempts[0]?.candidates.length ?? 0,
    lines_per_order: 5,
    plans: full.length,
    target: `p50 ≤ ${TARGET.p50} ms and p99 ≤ ${TARGET.p99} ms`,
    meets_target: fx.quick ? undefined : f.p50 <= TARGET.p50 && f.p99 <= TARGET.p99,
  };
}

/** sourcing.plan.http: POST /sourcing/plan (channel key, summary explanation), rotating orders. */
export async function sourcingPlanHttp(fx: FigureContext): Promise<Figure> {
  const bodies = benchOrders(fx, 500, 5, 23).map(({ reference: _, ...o }) => JSON.stringify(toWire(o)));
  const spec = { url: fx.address, headers: { authorization: `Bearer ${fx.channelKey}` }, connections: fx.connections, duration: fx.duration, kind: 'posts' as const, path: '/sourcing/plan', bodies };
  await runLoad({ ...spec, duration: fx.warmup });
  const r = await runLoad(spec);
  if (r.non2xx || r.errors) log(`  /sourcing/plan: ${r.non2xx} non-2xx (${JSON.stringify(r.statusCodes)}), ${r.errors} errors`);
  return {
    name: 'sourcing.plan.http',
    ...fx.common,
    value: round(r.rps, 0),
    unit: 'req/s',
    p50_ms: round(r.p50, 3),
    p99_ms: round(r.p99, 3),
    non_2xx: r.non2xx,
    connections: fx.connections,
  };
}

function toWire(o: SourcingRequest): unknown {
  const d = o.delivery;
  return {
    channel: o.channel,
    lines: o.lines.map((l) => ({ sku: l.sku, quantity: l.quantity, unit_price: l.unitPrice })),
    delivery: d.mode === 'click_and_collect' ? { mode: d.mode, pickup_location: d.pickupLocation } : { mode: d.mode, country: d.country, latitude: d.latitude, longitude: d.longitude },
  };
}

/** A draft to compare with the published presets: warehouses only, fewest shipments. */
export const WAREHOUSE_ONLY: RuleSet = {
  name: 'warehouse-only',
  settings: DEFAULT_RULE_SET.settings,
  strategies: [
    {
      id: 'warehouses',
      when: {},
      filters: { locationTypes: ['warehouse'], capabilities: 'auto' },
      ranking: { mode: 'lexicographic', criteria: [{ criterion: 'shipments' }, { criterion: 'distance' }] },
      split: { policy: 'minimise' },
      fallbacks: [{ type: 'unfilled' }],
    },
  ],
};

/** sourcing.simulate: a 10,000-order JSON-lines file replayed against the presets and a draft. */
export async function sourcingSimulate(fx: FigureContext): Promise<Figure> {
  const count = fx.quick ? 2000 : 10_000;
  const file = benchOrders(fx, count, 3, 37)
    .map((o) => JSON.stringify(o))
    .join('\n');
  const t0 = performance.now();
  const orders = file.split('\n').map((l) => JSON.parse(l) as SimulationOrderInput);
  const out = await simulateRuleSets(fx.rt.ctx, orders, [
    { label: 'baseline', version: 'published' },
    { label: 'candidate', ruleSet: WAREHOUSE_ONLY },
  ]);
  const seconds = (performance.now() - t0) / 1000;
  const [a, b] = out.ruleSets.map((r) => r.metrics);
  return {
    name: 'sourcing.simulate',
    ...fx.common,
    value: round((count * 2) / seconds, 0),
    unit: 'order replays/s (2 rule sets)',
    seconds: round(seconds, 2),
    orders: count,
    rejected: out.rejected.length,
    baseline: { shipments_per_order: round(a.shipmentsPerOrder, 3), fill_rate: round(a.fillRate, 4), avg_distance_km: a.avgDistanceKm, avg_cost_per_order: a.avgCostPerOrder },
    candidate: { shipments_per_order: round(b.shipmentsPerOrder, 3), fill_rate: round(b.fillRate, 4), avg_distance_km: b.avgDistanceKm, avg_cost_per_order: b.avgCostPerOrder },
  };
}

/**
 * sourcing.split: shipments per order of the greedy cover against the exact minimum on random
 * multi-line orders where no single location holds everything (the cases where it matters).
 */
export function sourcingSplit(common: FigureContext['common'], instances = 5000): Figure {
  const r = rng(5);
  let greedySum = 0;
  let exactSum = 0;
  let worse = 0;
  let maxGap = 0;
  let n = 0;
  let exactMs = 0;
  let greedyMs = 0;
  while (n < instances) {
    const lines = 2 + Math.floor(r() * 5);
    const cands = 8 + Math.floor(r() * 9);
    const avail = Int32Array.from({ length: cands * lines }, () => (r() < 0.35 ? 1 + Math.floor(r() * 3) : 0));
    const need = Int32Array.from({ length: lines }, (_, l) => {
      let sum = 0;
      for (let c = 0; c < cands; c++) sum += avail[c * lines + l];
      return Math.min(1 + Math.floor(r() * 3), sum);
    });
    if (need.every((q) => q === 0)) continue;
    let t = performance.now();
    const greedy = minimiseCover({ avail, rows: cands, width: lines, need, exactLimit: 0 });
    greedyMs += performance.now() - t;
    if (greedy.method === 'single') continue;
    t = performance.now();
    const exact = minimiseCover({ avail, rows: cands, width: lines, need, exactLimit: 64, budget: 5_000_000 });
    exactMs += performance.now() - t;
    n++;
    greedySum += greedy.chosen.length;
    exactSum += exact.chosen.length;
    if (greedy.chosen.length > exact.chosen.length) worse++;
    maxGap = Math.max(maxGap, greedy.chosen.length - exact.chosen.length);
  }
  return {
    name: 'sourcing.split',
    ...common,
    value: round(greedySum / exactSum, 4),
    unit: 'greedy ÷ exact mean shipments per order',
    greedy_mean_shipments: round(greedySum / n, 3),
    exact_mean_shipments: round(exactSum / n, 3),
    greedy_worse_share: round(worse / n, 4),
    max_extra_shipments: maxGap,
    instances: n,
    greedy_ms_per_order: round(greedyMs / n, 4),
    exact_ms_per_order: round(exactMs / n, 4),
  };
}
