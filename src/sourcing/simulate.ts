// Simulation: replay a list of orders against two (or more) rule sets and compare the
// outcome side by side, before publishing a draft. Pure: it takes one stock picture per
// channel, gives each rule set its own copy, and consumes that copy order by order (an
// order sees what the orders before it left), so the rule sets compete on equal terms and
// nothing real changes.
import type { CarrierConfig } from '../carriers/model.ts';
import { isoDay, source } from './engine.ts';
import type { CandidatePool, RuleSet, SourcingOrder } from './model.ts';

export interface SimulatedOrder {
  reference: string;
  order: SourcingOrder;
}

export interface SimulationMetrics {
  orders: number;
  ordersComplete: number;
  splitOrders: number;
  unitsOrdered: number;
  unitsAllocated: number;
  unitsBackordered: number;
  unitsUnfilled: number;
  /** (allocated + backordered) / ordered. */
  fillRate: number;
  shipments: number;
  shipmentsPerOrder: number;
  /** Mean distance from the shipping location to the destination, over shipments with a known distance. */
  avgDistanceKm: number | null;
  /** Σ location cost per shipment + carrier cost, in minor units. */
  totalCost: number;
  avgCostPerOrder: number;
  /** Shipments with a carrier promise that does not meet the order's deadline. */
  latePromises: number;
}

export interface OrderOutcome {
  shipments: number;
  unfilled: number;
  backordered: number;
  cost: number;
  distanceKm: number | null;
}

export interface SimulationResult {
  ruleSets: Array<{ label: string; name: string; metrics: SimulationMetrics }>;
  /** Per order, the outcome under each rule set (same order as ruleSets). */
  perOrder: Array<{ reference: string; outcomes: OrderOutcome[] }>;
}

function clonePool(p: CandidatePool): CandidatePool {
  return {
    locations: p.locations.map((c) => ({ ...c, future: new Map([...c.future].map(([sku, fs]) => [sku, fs.map((f) => ({ ...f }))])) })),
    columns: p.columns,
    available: Int32Array.from(p.available),
  };
}

export function simulate(
  orders: SimulatedOrder[],
  stockByChannel: Map<string, CandidatePool>,
  ruleSets: Array<{ label: string; rules: RuleSet }>,
  now: number,
  carriers?: CarrierConfig,
): SimulationResult {
  const perOrder = orders.map((o) => ({ reference: o.reference, outcomes: [] as OrderOutcome[] }));
  const out: SimulationResult['ruleSets'] = [];
  for (const rs of ruleSets) {
    const stock = new Map([...stockByChannel].map(([ch, pool]) => [ch, clonePool(pool)]));
    const index = new Map([...stock].map(([ch, pool]) => [ch, new Map(pool.locations.map((c, i) => [c.code, i]))]));
    const empty: CandidatePool = { locations: [], columns: new Map(), available: new Int32Array(0) };
    const m: SimulationMetrics = {
      orders: orders.length,
      ordersComplete: 0,
      splitOrders: 0,
      unitsOrdered: 0,
      unitsAllocated: 0,
      unitsBackordered: 0,
      unitsUnfilled: 0,
      fillRate: 0,
      shipments: 0,
      shipmentsPerOrder: 0,
      avgDistanceKm: null,
      totalCost: 0,
      avgCostPerOrder: 0,
      latePromises: 0,
    };
    let distSum = 0;
    let distN = 0;
    orders.forEach((o, i) => {
      const pool = stock.get(o.order.channel) ?? empty;
      const rowOf = index.get(o.order.channel) ?? new Map<string, number>();
      const P = pool.columns.size;
      const { plan } = source(o.order, pool, rs.rules, now, carriers);
      let allocated = 0;
      let backordered = 0;
      let unfilled = 0;
      for (const l of plan.lines) {
        m.unitsOrdered += l.quantity;
        unfilled += l.unfilled;
        const col = pool.columns.get(l.sku);
        for (const a of l.allocations) {
          allocated += a.quantity;
          const r = rowOf.get(a.location);
          if (r !== undefined && col !== undefined) pool.available[r * P + col] -= a.quantity;
        }
        for (const b of l.backorders) {
          backordered += b.quantity;
          const r = rowOf.get(b.location);
          const bucket = r === undefined ? undefined : pool.locations[r].future.get(l.sku)?.find((f) => isoDay(Math.max(f.expectedAt, now)) === b.promiseDate);
          if (bucket) bucket.quantity -= b.quantity;
        }
      }
      let cost = 0;
      let oDist = 0;
      let oDistN = 0;
      for (const s of plan.shipments) {
        cost += s.shipmentCost + (s.carrier?.cost ?? 0);
        if (s.carrier && !s.carrier.meetsPromise) m.latePromises++;
        if (s.distanceKm !== null) {
          distSum += s.distanceKm;
          distN++;
          oDist += s.distanceKm;
          oDistN++;
        }
      }
      m.unitsAllocated += allocated;
      m.unitsBackordered += backordered;
      m.unitsUnfilled += unfilled;
      m.shipments += plan.shipments.length;
      m.totalCost += cost;
      if (plan.complete) m.ordersComplete++;
      if (plan.shipments.length > 1) m.splitOrders++;
      perOrder[i].outcomes.push({ shipments: plan.shipments.length, unfilled, backordered, cost, distanceKm: oDistN ? Math.round((oDist / oDistN) * 10) / 10 : null });
    });
    m.fillRate = m.unitsOrdered ? (m.unitsAllocated + m.unitsBackordered) / m.unitsOrdered : 1;
    m.shipmentsPerOrder = m.orders ? m.shipments / m.orders : 0;
    m.avgDistanceKm = distN ? Math.round((distSum / distN) * 10) / 10 : null;
    m.avgCostPerOrder = m.orders ? Math.round(m.totalCost / m.orders) : 0;
    out.push({ label: rs.label, name: rs.rules.name, metrics: m });
  }
  return { ruleSets: out, perOrder };
}
