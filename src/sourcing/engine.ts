// The sourcing engine: source(order, candidates, rules, now) → { plan, explanation }.
// Pure and synchronous: no I/O, no await, no clock but `now`. The same input always gives
// the same plan, so a plan can be replayed, simulated and explained after the fact.
//
// How it decides (docs/sourcing.md has the long form):
//  1. each line gets the first strategy whose conditions match the order and the line's sku;
//     lines with the same strategy are sourced together (split and full-order rules apply to
//     that group);
//  2. a strategy filters the candidates, ranks the rest, and allocates by its split policy;
//  3. what is left goes through the strategy's fallbacks in order (another strategy, supplier
//     drop-ship, backorder on future stock, unfilled);
//  4. allocations become shipments, one per location, each with a ready date; the carrier
//     selection (carriers.ts) adds the service, cost and delivery promise.
import type { CarrierConfig } from '../carriers/model.ts';
import { selectCarrier } from '../carriers/selector.ts';
import type { Capability } from '../inventory/model.ts';
import type {
  AttemptExplanation,
  Candidate,
  CarrierNote,
  CandidateVerdict,
  Criterion,
  Fallback,
  LineExplanation,
  PlanLine,
  RuleSet,
  Shipment,
  SourcingOrder,
  SourcingResult,
  Strategy,
} from './model.ts';
import { CRITERION_BETTER } from './model.ts';
import { minimiseCover } from './split.ts';

const DAY = 86_400_000;
const startOfDay = (t: number) => t - (((t % DAY) + DAY) % DAY);
export const isoDay = (t: number) => new Date(startOfDay(t)).toISOString().slice(0, 10);

/** Great-circle distance in km (haversine, mean Earth radius). */
export function haversineKm(lat1: number, lng1: number, lat2: number, lng2: number): number {
  const r = Math.PI / 180;
  const dLat = (lat2 - lat1) * r;
  const dLng = (lng2 - lng1) * r;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.sin(dLng / 2) ** 2;
  return 12_742 * Math.asin(Math.min(1, Math.sqrt(a)));
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** The drop-ship fallback: suppliers that ship, fastest then cheapest, fewest shipments. */
const DROPSHIP: Strategy = {
  id: 'dropship',
  when: {},
  filters: { locationTypes: ['supplier'], capabilities: 'auto' },
  ranking: { mode: 'lexicographic', criteria: [{ criterion: 'lead_time' }, { criterion: 'shipment_cost' }, { criterion: 'distance' }] },
  split: { policy: 'minimise' },
  fallbacks: [],
};

interface Work {
  order: SourcingOrder;
  candidates: Candidate[];
  rules: RuleSet;
  now: number;
  strategies: Map<string, Strategy>;
  /** Distance per candidate index (km); NaN when unknown. */
  distance: Float64Array;
  distanceMode: 'used' | 'approximate' | 'ignored';
  /** Units already allocated in this plan, per candidate and sku (so fallbacks never reuse them). */
  used: Map<string, number>[];
  futureUsed: Map<string, number>;
  /** Candidates this plan already ships from (a second line there costs no extra capacity). */
  shipsFrom: Set<number>;
  excluded: Set<string>;
  lines: Map<string, PlanLine>;
  lineNotes: Map<string, LineExplanation>;
  attempts: AttemptExplanation[];
  backorderShip: Map<string, { expectedAt: number; lines: Map<string, number> }>;
}

/**
 * Sources one delivery group. `carriers`, when given, picks a service for each shipment
 * (cheapest that keeps order.promisedBy; see src/carriers/selector.ts).
 */
export function source(order: SourcingOrder, candidates: Candidate[], rules: RuleSet, now: number, carriers?: CarrierConfig): SourcingResult {
  const dest = order.destination;
  const distanceMode = !dest.point || dest.precision === 'not_found' ? 'ignored' : dest.precision === 'region' ? 'approximate' : 'used';
  const distance = new Float64Array(candidates.length).fill(Number.NaN);
  if (dest.point) {
    const { latitude, longitude } = dest.point;
    for (let i = 0; i < candidates.length; i++) {
      const p = candidates[i].point;
      if (p) distance[i] = haversineKm(latitude, longitude, p.latitude, p.longitude);
    }
  }
  const w: Work = {
    order,
    candidates,
    rules,
    now,
    strategies: new Map(rules.strategies.map((s) => [s.id, s])),
    distance,
    distanceMode,
    used: candidates.map(() => new Map()),
    futureUsed: new Map(),
    shipsFrom: new Set(),
    excluded: new Set(order.excludeLocations),
    lines: new Map(),
    lineNotes: new Map(),
    attempts: [],
    backorderShip: new Map(),
  };

  // 1. strategy per line, lines grouped by strategy (in rule-set order).
  const groups = new Map<string, string[]>();
  const unmatched: string[] = [];
  const strategyWhy: SourcingResult['explanation']['strategies'] = [];
  for (const line of order.lines) {
    w.lines.set(line.lineId, { lineId: line.lineId, sku: line.sku, quantity: line.quantity, strategy: null, allocations: [], backorders: [], unfilled: line.quantity });
    const s = rules.strategies.find((st) => matches(st, order, line, rules));
    w.lineNotes.set(line.lineId, { lineId: line.lineId, strategy: s?.id ?? null, why: s ? whyMatched(s, order) : 'no strategy of the rule set matches this order and sku', chosen: [], fallbacks: [] });
    if (!s) unmatched.push(line.lineId);
    else groups.set(s.id, [...(groups.get(s.id) ?? []), line.lineId]);
  }
  for (const st of rules.strategies) {
    const ids = groups.get(st.id);
    if (!ids) continue;
    strategyWhy.push({ lines: ids, strategy: st.id, why: whyMatched(st, order) });
    for (const id of ids) (w.lines.get(id) as PlanLine).strategy = st.id;
    run(w, st, ids, 'selected', new Set());
  }
  if (unmatched.length) strategyWhy.push({ lines: unmatched, strategy: null, why: 'no strategy of the rule set matches; the lines are unfilled' });

  const lines = order.lines.map((l) => w.lines.get(l.lineId) as PlanLine);
  const built = buildShipments(w, lines);
  const shipments = built.map((b) => b.shipment);
  const carrierNotes = carriers ? built.map((b) => assignCarrier(w, b, carriers)) : [];
  let ordered = 0;
  let filled = 0;
  for (const l of lines) {
    ordered += l.quantity;
    filled += l.quantity - l.unfilled;
  }
  return {
    plan: { lines, shipments, fillRate: ordered ? filled / ordered : 1, complete: filled === ordered },
    explanation: {
      ruleSet: rules.name,
      destination: { precision: dest.precision, source: dest.geoSource, distance: distanceMode },
      strategies: strategyWhy,
      lines: order.lines.map((l) => w.lineNotes.get(l.lineId) as LineExplanation),
      attempts: w.attempts,
      carriers: carrierNotes,
    },
  };
}

// ---- strategy selection --------------------------------------------------------------

function matches(s: Strategy, o: SourcingOrder, line: SourcingOrder['lines'][number], rules: RuleSet): boolean {
  const c = s.when;
  if (c.channels && !c.channels.includes(o.channel)) return false;
  if (c.modes && !c.modes.includes(o.destination.mode)) return false;
  if (c.destination === 'domestic' && o.destination.country !== rules.settings.homeCountry) return false;
  if (c.destination === 'abroad' && o.destination.country === rules.settings.homeCountry) return false;
  if (c.countries && !c.countries.includes(o.destination.country)) return false;
  if (c.minValue !== undefined && o.value < c.minValue) return false;
  if (c.maxValue !== undefined && o.value > c.maxValue) return false;
  if (c.demandClasses && (line.demandClass === null || !c.demandClasses.includes(line.demandClass))) return false;
  if (c.skuTags && !line.tags.some((t) => c.skuTags?.includes(t))) return false;
  return true;
}

function whyMatched(s: Strategy, o: SourcingOrder): string {
  const c = s.when;
  const parts: string[] = [];
  if (c.channels) parts.push(`channel ${o.channel}`);
  if (c.modes) parts.push(`delivery ${o.destination.mode}`);
  if (c.destination) parts.push(`destination ${o.destination.country} is ${c.destination}`);
  if (c.countries) parts.push(`destination ${o.destination.country}`);
  if (c.minValue !== undefined || c.maxValue !== undefined) parts.push(`order value ${o.value}`);
  if (c.demandClasses) parts.push(`demand class ${c.demandClasses.join('/')}`);
  if (c.skuTags) parts.push(`sku tag ${c.skuTags.join('/')}`);
  return parts.length ? `strategy '${s.id}' matched: ${parts.join(', ')}` : `strategy '${s.id}' matches every order (no conditions)`;
}

// ---- one strategy over a group of lines -----------------------------------------------

interface Eligible {
  idx: number;
  /** Units it can give each group line now (after earlier allocations in this plan). */
  units: Int32Array;
  values: Record<Criterion, number>;
}

function available(w: Work, idx: number, sku: string): number {
  const v = (w.candidates[idx].available.get(sku) ?? 0) - (w.used[idx].get(sku) ?? 0);
  return Math.max(v, 0);
}

function remainingOf(w: Work, ids: string[]): Int32Array {
  return Int32Array.from(ids, (id) => (w.lines.get(id) as PlanLine).unfilled);
}

/** Why a location cannot serve this strategy at all (null = it passes the location filters). */
function locationFilter(w: Work, s: Strategy, idx: number): { outcome: CandidateVerdict['outcome']; reason: string } | null {
  const c = w.candidates[idx];
  const f = s.filters;
  const dest = w.order.destination;
  if (c.excluded) return { outcome: 'excluded', reason: 'excluded from sourcing (inactive or blocked)' };
  if (w.excluded.has(c.code)) return { outcome: 'excluded', reason: 'excluded for this order (the ordering store, or a location that declined it)' };
  if (f.excludeLocations?.includes(c.code)) return { outcome: 'filtered', reason: 'filtered out by the strategy exclude list' };
  if (f.atPickupLocation && c.code !== dest.pickupLocation) return { outcome: 'filtered', reason: `filtered out: only the pickup store ${dest.pickupLocation ?? '(none)'} may serve` };
  if (f.locationTypes && !f.locationTypes.includes(c.type)) return { outcome: 'filtered', reason: `filtered out by location type: ${c.type} not in ${f.locationTypes.join('/')}` };
  const caps = requiredCapabilities(s, c.code, dest.pickupLocation, dest.mode);
  const missing = caps.filter((cap) => !c.capabilities.includes(cap));
  if (missing.length) return { outcome: 'filtered', reason: `filtered out by capabilities: lacks ${missing.join(', ')}` };
  if (f.sameCountry && c.country !== dest.country) return { outcome: 'filtered', reason: `filtered out by same country: ${c.country} ≠ ${dest.country}` };
  if (f.maxDistanceKm !== undefined && w.distanceMode !== 'ignored') {
    const d = w.distance[idx];
    if (Number.isNaN(d)) return { outcome: 'filtered', reason: 'filtered out by maximum distance: the location has no coordinates' };
    if (d > f.maxDistanceKm) return { outcome: 'filtered', reason: `filtered out by maximum distance: ${round1(d)} km > ${f.maxDistanceKm} km` };
  }
  if (f.underCapacity && c.remainingCapacity !== null && c.remainingCapacity <= 0 && !w.shipsFrom.has(idx)) {
    return { outcome: 'over_capacity', reason: 'over capacity: no shipments left today' };
  }
  return null;
}

function requiredCapabilities(s: Strategy, code: string, pickup: string | null, mode: SourcingOrder['destination']['mode']): Capability[] {
  const caps = s.filters.capabilities ?? 'auto';
  if (caps !== 'auto') return caps;
  if ((mode === 'click_and_collect' || mode === 'in_store') && code === pickup) return mode === 'click_and_collect' ? ['click_and_collect'] : [];
  return ['ships'];
}

function criterionValues(w: Work, idx: number, need: Int32Array, ids: string[]): Record<Criterion, number> {
  const c = w.candidates[idx];
  let depth = 0;
  let short = 0;
  for (let l = 0; l < ids.length; l++) {
    if (need[l] === 0) continue;
    const have = available(w, idx, (w.lines.get(ids[l]) as PlanLine).sku);
    if (have < need[l]) short++;
    depth += have > need[l] ? have - need[l] : 0;
  }
  return {
    distance: w.distance[idx],
    priority: c.priority,
    stock_depth: depth,
    shipment_cost: c.shipmentCost,
    lead_time: w.rules.settings.handlingDays[c.type] ?? 0,
    shipments: short,
  };
}

/** Negative when a ranks before b. Unknown distances sort last; with no destination the criterion is skipped. */
function compare(w: Work, s: Strategy, a: Eligible, b: Eligible, scores: Map<number, number> | null): number {
  if (scores) {
    const d = (scores.get(a.idx) as number) - (scores.get(b.idx) as number);
    if (d !== 0) return d;
  } else {
    for (const rc of s.ranking.criteria) {
      const d = criterionDiff(w, rc.criterion, a.values[rc.criterion], b.values[rc.criterion], rc.tolerance ?? 0);
      if (d !== 0) return d;
    }
  }
  const ca = w.candidates[a.idx].code;
  const cb = w.candidates[b.idx].code;
  return ca < cb ? -1 : ca > cb ? 1 : 0;
}

function criterionDiff(w: Work, crit: Criterion, va: number, vb: number, tolerance: number): number {
  if (crit === 'distance') {
    if (w.distanceMode === 'ignored') return 0;
    const na = Number.isNaN(va);
    const nb = Number.isNaN(vb);
    if (na || nb) return na === nb ? 0 : na ? 1 : -1;
  }
  if (Math.abs(va - vb) <= tolerance) return 0;
  return CRITERION_BETTER[crit] === 'lower' ? va - vb : vb - va;
}

/** Weighted score (lower is better): each criterion min-max normalised over the eligible set. */
function weightedScores(w: Work, s: Strategy, el: Eligible[]): Map<number, number> {
  const scores = new Map<number, number>(el.map((e) => [e.idx, 0]));
  let weights = 0;
  for (const rc of s.ranking.criteria) {
    const weight = rc.weight ?? 0;
    if (weight === 0 || (rc.criterion === 'distance' && w.distanceMode === 'ignored')) continue;
    weights += weight;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (const e of el) {
      const v = e.values[rc.criterion];
      if (Number.isNaN(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const span = max - min;
    for (const e of el) {
      const v = e.values[rc.criterion];
      let n = Number.isNaN(v) ? 1 : span > 0 ? (v - min) / span : 0;
      if (!Number.isNaN(v) && CRITERION_BETTER[rc.criterion] === 'higher') n = 1 - n;
      scores.set(e.idx, (scores.get(e.idx) as number) + weight * n);
    }
  }
  if (weights > 0) for (const [k, v] of scores) scores.set(k, v / weights);
  return scores;
}

function run(w: Work, s: Strategy, ids: string[], via: string, visited: Set<string>): void {
  visited.add(s.id);
  const need = remainingOf(w, ids);
  const skus = ids.map((id) => (w.lines.get(id) as PlanLine).sku);
  const verdicts: CandidateVerdict[] = new Array(w.candidates.length);
  const eligible: Eligible[] = [];
  const notes: string[] = [];
  if (s.filters.maxDistanceKm !== undefined && w.distanceMode === 'ignored') {
    notes.push(`destination not found (${w.order.destination.geoSource}): the ${s.filters.maxDistanceKm} km limit is not applied and distance does not rank`);
  } else if (w.distanceMode === 'ignored' && s.ranking.criteria.some((c) => c.criterion === 'distance')) {
    notes.push(`destination not found (${w.order.destination.geoSource}): distance does not rank`);
  } else if (w.distanceMode === 'approximate') {
    notes.push(`distances are approximate: ${w.order.destination.geoSource}`);
  }

  for (let i = 0; i < w.candidates.length; i++) {
    const code = w.candidates[i].code;
    const rejected = locationFilter(w, s, i);
    if (rejected) {
      verdicts[i] = { location: code, ...rejected };
      continue;
    }
    const units = new Int32Array(ids.length);
    let any = 0;
    let full = true;
    let firstShort = -1;
    for (let l = 0; l < ids.length; l++) {
      const have = available(w, i, skus[l]);
      units[l] = Math.min(have, need[l]);
      any += units[l];
      if (have < need[l]) {
        full = false;
        if (firstShort < 0) firstShort = l;
      }
    }
    if (any === 0) {
      verdicts[i] = { location: code, outcome: 'no_stock', reason: `no stock for ${skus.filter((_, l) => need[l] > 0).join(', ')}` };
      continue;
    }
    if (s.filters.fullOrderOnly && !full) {
      verdicts[i] = { location: code, outcome: 'filtered', reason: `filtered out by full order only: has ${available(w, i, skus[firstShort])} of ${need[firstShort]} ${skus[firstShort]}` };
      continue;
    }
    eligible.push({ idx: i, units, values: criterionValues(w, i, need, ids) });
  }

  const scores = s.ranking.mode === 'weighted' ? weightedScores(w, s, eligible) : null;
  eligible.sort((a, b) => compare(w, s, a, b, scores));

  const { chosen, split } = allocate(w, s, eligible, need);
  // Allocate: in rank order within the chosen set, each location gives what it can.
  const left = Int32Array.from(need);
  const chosenSet = new Set<number>();
  for (const e of chosen) {
    let took = false;
    for (let l = 0; l < ids.length; l++) {
      const take = Math.min(e.units[l], left[l]);
      if (take <= 0) continue;
      left[l] -= take;
      took = true;
      const line = w.lines.get(ids[l]) as PlanLine;
      const code = w.candidates[e.idx].code;
      const existing = line.allocations.find((a) => a.location === code);
      if (existing) existing.quantity += take;
      else line.allocations.push({ location: code, quantity: take });
      line.unfilled -= take;
      const used = w.used[e.idx];
      used.set(skus[l], (used.get(skus[l]) ?? 0) + take);
      (w.lineNotes.get(ids[l]) as LineExplanation).chosen.push({ location: code, quantity: take, criteria: shown(w, s, e) });
    }
    if (took) {
      chosenSet.add(e.idx);
      w.shipsFrom.add(e.idx);
    }
  }
  const best = eligible.find((e) => chosenSet.has(e.idx));
  for (const e of eligible) {
    const code = w.candidates[e.idx].code;
    if (chosenSet.has(e.idx)) {
      verdicts[e.idx] = { location: code, outcome: 'chosen', reason: chosenReason(w, s, e, split.method), criteria: shown(w, s, e) };
    } else {
      verdicts[e.idx] = { location: code, ...lostReason(w, s, e, best, split.policy, scores), criteria: shown(w, s, e) };
    }
  }
  w.attempts.push({ strategy: s.id, via, lines: ids, split: { ...split, shipments: chosenSet.size }, candidates: verdicts, notes });

  // Fallbacks, in order, for whatever is still unfilled.
  for (const f of s.fallbacks) {
    const open = ids.filter((id) => (w.lines.get(id) as PlanLine).unfilled > 0);
    if (open.length === 0) break;
    for (const id of open) (w.lineNotes.get(id) as LineExplanation).fallbacks.push(describeFallback(f));
    if (f.type === 'unfilled') break;
    if (f.type === 'strategy') {
      const next = w.strategies.get(f.strategy);
      if (next && !visited.has(next.id)) run(w, next, open, `fallback of '${s.id}'`, visited);
    } else if (f.type === 'dropship') {
      if (!visited.has(DROPSHIP.id)) run(w, DROPSHIP, open, `fallback of '${s.id}'`, visited);
    } else {
      backorder(w, s, open, f.horizonDays);
    }
  }
}

function describeFallback(f: Fallback): string {
  if (f.type === 'strategy') return `strategy '${f.strategy}'`;
  if (f.type === 'backorder') return `backorder on future stock within ${f.horizonDays} days`;
  if (f.type === 'dropship') return 'supplier drop-ship';
  return 'left unfilled';
}

function allocate(w: Work, s: Strategy, el: Eligible[], need: Int32Array): { chosen: Eligible[]; split: Omit<AttemptExplanation['split'], 'shipments'> } {
  const policy = s.split.policy;
  if (el.length === 0) return { chosen: [], split: { policy, method: 'none', lowerBound: null, note: 'no eligible candidate' } };
  if (policy === 'none') {
    const one = el.find((e) => e.units.every((u, l) => u >= need[l]));
    return { chosen: one ? [one] : [], split: { policy, method: 'single', lowerBound: 1, note: one ? null : 'no single location holds the whole group' } };
  }
  // Cap each line at what all eligible candidates hold together, so a cover always exists.
  const target = new Int32Array(need.length);
  for (let l = 0; l < need.length; l++) {
    let sum = 0;
    for (const e of el) sum += e.units[l];
    target[l] = Math.min(sum, need[l]);
  }
  const limit = w.rules.settings.exactSplitLimit;
  if (policy === 'minimise') {
    const cover = minimiseCover({ avail: el.map((e) => e.units), need: target, exactLimit: limit });
    return { chosen: cover.chosen.map((i) => el[i]), split: { policy, method: cover.method, lowerBound: cover.lowerBound, note: cover.note } };
  }
  // max N: fill in rank order when that fits in N shipments; else the fewest-shipment cover
  // when it fits; else the N locations covering the most units.
  const maxN = s.split.policy === 'max' ? s.split.maxShipments : 1;
  const ranked = rankedFill(el, target);
  if (ranked.length <= maxN) return { chosen: ranked, split: { policy: `max ${maxN}`, method: 'ranked', lowerBound: null, note: null } };
  const cover = minimiseCover({ avail: el.map((e) => e.units), need: target, exactLimit: limit });
  if (cover.chosen.length <= maxN) {
    return { chosen: cover.chosen.map((i) => el[i]), split: { policy: `max ${maxN}`, method: cover.method, lowerBound: cover.lowerBound, note: `filling by rank needed ${ranked.length} shipments` } };
  }
  const greedy = cover.chosen.slice(0, maxN).map((i) => el[i]);
  return { chosen: greedy, split: { policy: `max ${maxN}`, method: cover.method, lowerBound: cover.lowerBound, note: `the order needs ${cover.chosen.length} shipments; at most ${maxN} allowed, the rest falls back` } };
}

function rankedFill(el: Eligible[], target: Int32Array): Eligible[] {
  const left = Int32Array.from(target);
  let remaining = left.reduce((a, b) => a + b, 0);
  const out: Eligible[] = [];
  for (const e of el) {
    if (remaining === 0) break;
    let took = 0;
    for (let l = 0; l < left.length; l++) {
      const t = Math.min(e.units[l], left[l]);
      left[l] -= t;
      took += t;
    }
    if (took > 0) {
      out.push(e);
      remaining -= took;
    }
  }
  return out;
}

function shown(w: Work, s: Strategy, e: Eligible): Partial<Record<Criterion, number | null>> {
  const out: Partial<Record<Criterion, number | null>> = {};
  for (const rc of s.ranking.criteria) {
    const v = e.values[rc.criterion];
    out[rc.criterion] = rc.criterion === 'distance' ? (Number.isNaN(v) || w.distanceMode === 'ignored' ? null : round1(v)) : v;
  }
  return out;
}

function fmt(w: Work, crit: Criterion, v: number): string {
  if (crit === 'distance') return Number.isNaN(v) ? 'unknown distance' : `${round1(v)} km`;
  if (crit === 'lead_time') return `${v} day(s)`;
  if (crit === 'stock_depth') return `${v} left`;
  if (crit === 'shipments') return `${v} line(s) short`;
  if (crit === 'shipment_cost') return `cost ${v}`;
  void w;
  return `priority ${v}`;
}

function chosenReason(w: Work, s: Strategy, e: Eligible, method: string): string {
  const crit = s.ranking.criteria.map((rc) => `${rc.criterion} ${fmt(w, rc.criterion, e.values[rc.criterion])}`).join(', ');
  const how = method === 'single' ? 'holds the whole group' : method === 'ranked' ? 'filled in rank order' : `in the ${method} fewest-shipment cover`;
  return `chosen (${s.ranking.mode} ranking: ${crit}; ${how})`;
}

function lostReason(
  w: Work,
  s: Strategy,
  e: Eligible,
  best: Eligible | undefined,
  policy: string,
  scores: Map<number, number> | null,
): { outcome: CandidateVerdict['outcome']; reason: string } {
  if (!best) {
    if (policy === 'none') return { outcome: 'lost', reason: 'cannot hold the whole group in one shipment (split policy none)' };
    return { outcome: 'not_needed', reason: 'not needed' };
  }
  const bestCode = w.candidates[best.idx].code;
  if (scores) {
    const a = scores.get(e.idx) as number;
    const b = scores.get(best.idx) as number;
    if (a > b) return { outcome: 'lost', reason: `lost on weighted score: ${a.toFixed(3)} vs ${b.toFixed(3)} (${bestCode})` };
  } else {
    for (const rc of s.ranking.criteria) {
      const d = criterionDiff(w, rc.criterion, e.values[rc.criterion], best.values[rc.criterion], rc.tolerance ?? 0);
      if (d > 0) return { outcome: 'lost', reason: `lost on ${rc.criterion}: ${fmt(w, rc.criterion, e.values[rc.criterion])} vs ${fmt(w, rc.criterion, best.values[rc.criterion])} (${bestCode})` };
      if (d < 0) return notChosen(policy);
    }
    if (policy !== 'minimise' && w.candidates[e.idx].code > bestCode) return { outcome: 'lost', reason: `lost on the tie-break: equal on every criterion, ${bestCode} comes first by code` };
  }
  return notChosen(policy);
}

function notChosen(policy: string): { outcome: CandidateVerdict['outcome']; reason: string } {
  if (policy === 'none') return { outcome: 'lost', reason: 'cannot hold the whole group in one shipment (split policy none)' };
  return { outcome: 'not_needed', reason: `not needed: fewer shipments without it (split policy ${policy})` };
}

// ---- backorders on future stock --------------------------------------------------------

function backorder(w: Work, s: Strategy, ids: string[], horizonDays: number): void {
  const horizon = w.now + horizonDays * DAY;
  const notes: string[] = [];
  const verdicts: CandidateVerdict[] = [];
  const open = new Set<number>();
  for (let i = 0; i < w.candidates.length; i++) {
    const r = locationFilter(w, s, i);
    if (r) verdicts.push({ location: w.candidates[i].code, ...r });
    else open.add(i);
  }
  const chosen = new Set<number>();
  for (const id of ids) {
    const line = w.lines.get(id) as PlanLine;
    const spec = w.order.lines.find((l) => l.lineId === id);
    if (!spec?.backorderable) {
      notes.push(`${line.sku}: not backorderable`);
      continue;
    }
    const buckets: Array<{ idx: number; expectedAt: number; qty: number; key: string }> = [];
    for (const i of open) {
      for (const f of w.candidates[i].future.get(line.sku) ?? []) {
        if (f.expectedAt > horizon) continue;
        const key = `${i}:${line.sku}:${f.expectedAt}`;
        const qty = f.quantity - (w.futureUsed.get(key) ?? 0);
        if (qty > 0) buckets.push({ idx: i, expectedAt: f.expectedAt, qty, key });
      }
    }
    buckets.sort((a, b) => a.expectedAt - b.expectedAt || (w.candidates[a.idx].code < w.candidates[b.idx].code ? -1 : 1));
    for (const b of buckets) {
      if (line.unfilled === 0) break;
      const take = Math.min(b.qty, line.unfilled);
      line.unfilled -= take;
      w.futureUsed.set(b.key, (w.futureUsed.get(b.key) ?? 0) + take);
      const code = w.candidates[b.idx].code;
      line.backorders.push({ location: code, quantity: take, promiseDate: isoDay(Math.max(b.expectedAt, w.now)) });
      chosen.add(b.idx);
      const ship = w.backorderShip.get(code) ?? { expectedAt: b.expectedAt, lines: new Map<string, number>() };
      ship.expectedAt = Math.max(ship.expectedAt, b.expectedAt);
      ship.lines.set(id, (ship.lines.get(id) ?? 0) + take);
      w.backorderShip.set(code, ship);
    }
    if (line.unfilled > 0) notes.push(`${line.sku}: ${line.unfilled} unit(s) not covered by supply within ${horizonDays} days`);
  }
  for (const i of open) {
    const code = w.candidates[i].code;
    verdicts.push(chosen.has(i) ? { location: code, outcome: 'chosen', reason: 'earliest incoming supply' } : { location: code, outcome: 'no_stock', reason: 'no usable incoming supply within the horizon' });
  }
  w.attempts.push({ strategy: `${s.id}:backorder`, via: `fallback of '${s.id}'`, lines: ids, split: { policy: 'backorder', method: 'ranked', lowerBound: null, shipments: chosen.size, note: null }, candidates: verdicts, notes });
}

// ---- shipments -------------------------------------------------------------------------

interface Built {
  shipment: Shipment;
  /** When goods can leave (handling time, supply dates): the carrier's cut-off applies to it. */
  readyAt: number;
  originCountry: string;
}

function buildShipments(w: Work, lines: PlanLine[]): Built[] {
  const byCode = new Map(w.candidates.map((c, i) => [c.code, i]));
  const dest = w.order.destination;
  const weights = new Map(w.order.lines.map((l) => [l.lineId, l.weightG]));
  const out: Built[] = [];
  const make = (code: string, items: Array<{ lineId: string; sku: string; quantity: number }>, readyAt: number, isBackorder: boolean): Built => {
    const idx = byCode.get(code) as number;
    const c = w.candidates[idx];
    let weight: number | null = 0;
    for (const it of items) {
      const g = weights.get(it.lineId);
      weight = g == null || weight === null ? null : weight + g * it.quantity;
    }
    const atPickup = (dest.mode === 'click_and_collect' || dest.mode === 'in_store') && code === dest.pickupLocation;
    const mode = (dest.mode === 'click_and_collect' || dest.mode === 'in_store') && !atPickup ? 'store_transfer' : dest.mode;
    const handling = w.rules.settings.handlingDays[c.type] ?? 0;
    const d = w.distance[idx];
    const shipment: Shipment = {
      location: code,
      locationType: c.type,
      mode,
      destinationCountry: dest.country,
      lines: items,
      readyDate: isoDay(readyAt + handling * DAY),
      weightG: weight,
      distanceKm: Number.isNaN(d) ? null : round1(d),
      shipmentCost: atPickup ? 0 : c.shipmentCost,
      carrier: null,
      backorder: isBackorder,
    };
    return { shipment, readyAt: readyAt + handling * DAY, originCountry: c.country };
  };
  const now = new Map<string, Array<{ lineId: string; sku: string; quantity: number }>>();
  for (const l of lines) {
    for (const a of l.allocations) {
      const list = now.get(a.location) ?? [];
      list.push({ lineId: l.lineId, sku: l.sku, quantity: a.quantity });
      now.set(a.location, list);
    }
  }
  for (const [code, items] of now) out.push(make(code, items, w.now, false));
  const skuOf = new Map(lines.map((l) => [l.lineId, l.sku]));
  for (const [code, b] of w.backorderShip) {
    const items = [...b.lines].map(([lineId, quantity]) => ({ lineId, sku: skuOf.get(lineId) as string, quantity }));
    out.push(make(code, items, Math.max(b.expectedAt, w.now), true));
  }
  return out;
}

// ---- carriers -------------------------------------------------------------------------

function assignCarrier(w: Work, b: Built, config: CarrierConfig): CarrierNote {
  const s = b.shipment;
  if (s.mode === 'click_and_collect' || s.mode === 'in_store') {
    s.carrier = { service: null, cost: 0, currency: null, estimatedDelivery: s.readyDate, meetsPromise: true, reason: 'collected at the store: no carrier' };
    return { location: s.location, chosen: null, reason: s.carrier.reason, rejected: [] };
  }
  const choice = selectCarrier(
    {
      mode: s.mode,
      originCountry: b.originCountry,
      destinationCountry: s.destinationCountry,
      weightG: s.weightG ?? 0,
      readyAt: b.readyAt,
      promisedBy: w.order.promisedBy ?? null,
      pinnedService: w.order.pinnedCarrierService ?? null,
      serviceLevel: w.order.serviceLevel ?? null,
    },
    config.services,
    { holidays: config.holidays },
  );
  const weightNote = s.weightG === null ? ' (weight unknown: priced as the lightest band)' : '';
  s.carrier = {
    service: choice.service?.code ?? null,
    cost: choice.cost,
    currency: choice.currency,
    estimatedDelivery: choice.estimatedDelivery,
    meetsPromise: choice.meetsPromise,
    reason: choice.explanation.reason + weightNote,
  };
  return { location: s.location, chosen: choice.service?.code ?? null, reason: s.carrier.reason, rejected: choice.explanation.rejected };
}
