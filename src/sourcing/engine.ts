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
import { isoDay } from '../shared/clock.ts';
import type { Capability } from '../inventory/model.ts';
import type {
  AttemptExplanation,
  Candidate,
  CandidatePool,
  CandidateOutcome,
  CandidateVerdict,
  CarrierNote,
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
export { isoDay };

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

const CAPS: Capability[] = ['ships', 'click_and_collect', 'order_in_store', 'accepts_returns'];
const capBit = (c: Capability) => 1 << CAPS.indexOf(c);

// Scratch buffers reused from plan to plan: source() is synchronous, so no two plans ever
// share them at once. Large typed arrays are costly to allocate and to collect, and a plan
// over 1,000 locations needs a dozen of them. Nothing an explanation reads later lives here.
const pools = new Map<string, Int32Array | Float64Array | Uint8Array>();
function scratch<T extends Int32Array | Float64Array | Uint8Array>(name: string, size: number, make: (n: number) => T): T {
  let a = pools.get(name) as T | undefined;
  if (!a || a.length < size) {
    a = make(Math.max(size, 1024));
    pools.set(name, a);
  }
  a.fill(0, 0, size);
  return a;
}
const i32 = (n: number) => new Int32Array(n);
const f64 = (n: number) => new Float64Array(n);
const u8 = (n: number) => new Uint8Array(n);

/** What never changes for a list of candidates: computed once per list, reused by every plan on it. */
interface StaticFacts {
  capMask: Uint8Array;
  /** cos(latitude) of each candidate (NaN without coordinates): half of haversine's trigonometry, once per network. */
  cosLat: Float64Array;
  index: Map<string, number>;
  byType: Map<string, { all: Int32Array; excluded: number }>;
  /** Per strategy: 1 for each candidate that passes its filters that depend on nothing but the two (staticPasses). */
  passes: WeakMap<Strategy, Uint8Array>;
  /** No two candidates share a code: a candidate's index then says whether it is the pickup store. */
  uniqueCodes: boolean;
}
const factsCache = new WeakMap<Candidate[], StaticFacts>();

function staticFacts(candidates: Candidate[]): StaticFacts {
  let f = factsCache.get(candidates);
  if (f) return f;
  f = { capMask: new Uint8Array(candidates.length), cosLat: new Float64Array(candidates.length), index: new Map(), byType: new Map(), passes: new WeakMap(), uniqueCodes: true };
  const lists = new Map<string, { all: number[]; excluded: number }>();
  candidates.forEach((c, i) => {
    const facts = f as StaticFacts;
    let mask = 0;
    for (const cap of c.capabilities) mask |= capBit(cap);
    facts.capMask[i] = mask;
    facts.cosLat[i] = c.point ? Math.cos(c.point.latitude * (Math.PI / 180)) : Number.NaN;
    facts.index.set(c.code, i);
    let t = lists.get(c.type);
    if (!t) {
      t = { all: [], excluded: 0 };
      lists.set(c.type, t);
    }
    t.all.push(i);
    if (c.excluded) t.excluded++;
  });
  for (const [type, t] of lists) f.byType.set(type, { all: Int32Array.from(t.all), excluded: t.excluded });
  f.uniqueCodes = f.index.size === candidates.length;
  factsCache.set(candidates, f);
  return f;
}

interface Work {
  order: SourcingOrder;
  candidates: Candidate[];
  rules: RuleSet;
  now: number;
  strategies: Map<string, Strategy>;
  /** Distance per candidate index (km; NaN when unknown), filled by dist() on first use. */
  distance: Float64Array;
  distanceKnown: Uint8Array;
  /** The order's own exclusions (the verdicts built later read this, never the scratch buffers). */
  excludedCodes: ReadonlySet<string>;
  distanceMode: 'used' | 'approximate' | 'ignored';
  /** Distinct skus of the order: stock and used are candidate × sku matrices (row-major). */
  skuIndex: Map<string, number>;
  skuCount: number;
  stock: Int32Array;
  /** Units already allocated in this plan (so fallbacks never reuse them). */
  used: Int32Array;
  /** Candidate index of each location code. */
  index: ReadonlyMap<string, number>;
  facts: StaticFacts;
  /** The candidate at the destination's pickup location (-1: none). */
  pickupIndex: number;
  /** Capabilities of each candidate as a bit mask (CAPS order). */
  capMask: Uint8Array;
  /** cos(latitude) per candidate, and of the destination (NaN: none). */
  cosLat: Float64Array;
  destCosLat: number;
  /** 1 when the order excludes the candidate (Order in Store at S, re-sourcing). */
  orderExcluded: Uint8Array;
  /** 1 when this plan already ships from the candidate (a second line costs no extra capacity). */
  shipsFrom: Uint8Array;
  /** Candidate indices per location type, and how many of them are excluded (network or order). */
  byType: Map<string, { all: Int32Array; excluded: number }>;
  futureUsed: Map<string, number>;
  lines: Map<string, PlanLine>;
  lineNotes: Map<string, LineExplanation>;
  attempts: AttemptExplanation[];
  backorderShip: Map<string, { expectedAt: number; lines: Map<string, number> }>;
}

/**
 * Sources one delivery group. `carriers`, when given, picks a service for each shipment
 * (cheapest that keeps order.promisedBy; see src/carriers/selector.ts).
 */
export function source(order: SourcingOrder, pool: CandidatePool, rules: RuleSet, now: number, carriers?: CarrierConfig): SourcingResult {
  const candidates = pool.locations;
  const dest = order.destination;
  const n = candidates.length;
  const distanceMode = !dest.point || dest.precision === 'not_found' ? 'ignored' : dest.precision === 'region' ? 'approximate' : 'used';
  // Distances are computed on first use: a strategy limited to 20 warehouses of a 1,000-location
  // network needs 20 of them.
  const distance = scratch('distance', n, f64);
  const distanceKnown = scratch('distanceKnown', n, u8);
  const skuIndex = new Map<string, number>();
  for (const l of order.lines) if (!skuIndex.has(l.sku)) skuIndex.set(l.sku, skuIndex.size);
  const K = skuIndex.size;
  const P = pool.columns.size;
  // The engine reads the candidate × order-sku matrix, never writes it. A pool built for this
  // order (loadCandidates: its distinct skus in line order) already is that matrix; any other
  // pool's columns are copied into one.
  let same = P === K;
  for (const [sku, k] of skuIndex) if (pool.columns.get(sku) !== k) same = false;
  let stock = pool.available;
  if (!same) {
    stock = scratch('stock', n * K, i32);
    for (const [sku, k] of skuIndex) {
      const col = pool.columns.get(sku);
      if (col === undefined) continue;
      for (let i = 0; i < n; i++) {
        const q = pool.available[i * P + col];
        if (q > 0) stock[i * K + k] = q;
      }
    }
  }
  const facts = staticFacts(candidates);
  const orderExcluded = scratch('orderExcluded', n, u8);
  const excluded = new Set(order.excludeLocations);
  const byType = new Map<string, { all: Int32Array; excluded: number }>();
  for (const [type, t] of facts.byType) byType.set(type, { all: t.all, excluded: t.excluded });
  for (const code of excluded) {
    const i = facts.index.get(code);
    if (i === undefined || orderExcluded[i]) continue;
    orderExcluded[i] = 1;
    const t = byType.get(candidates[i].type);
    if (t && !candidates[i].excluded) t.excluded++;
  }
  const w: Work = {
    order,
    candidates,
    rules,
    now,
    strategies: new Map(rules.strategies.map((s) => [s.id, s])),
    distance,
    distanceKnown,
    excludedCodes: excluded,
    distanceMode,
    skuIndex,
    skuCount: K,
    stock,
    used: scratch('used', n * K, i32),
    index: facts.index,
    facts,
    pickupIndex: order.destination.pickupLocation ? (facts.index.get(order.destination.pickupLocation) ?? -1) : -1,
    capMask: facts.capMask,
    cosLat: facts.cosLat,
    destCosLat: order.destination.point ? Math.cos(order.destination.point.latitude * (Math.PI / 180)) : Number.NaN,
    orderExcluded,
    shipsFrom: scratch('shipsFrom', n, u8),
    byType,
    futureUsed: new Map(),
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

  const lines: PlanLine[] = [];
  for (const l of order.lines) lines.push(w.lines.get(l.lineId) as PlanLine);
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

/**
 * A strategy compiled for one attempt: its filters as sets and masks, its reason strings
 * built once (a plan names every candidate, so per-candidate string work is what costs).
 */
interface Compiled {
  s: Strategy;
  types: ReadonlySet<string> | null;
  typeReasons: Map<string, string>;
  /** False once the caller visits only candidates of the strategy's types (run does). */
  checkTypes: boolean;
  exclude: ReadonlySet<string> | null;
  /** staticPasses of this strategy over the plan's candidates. */
  passes: Uint8Array;
  /**
   * The order filters as fields of this one object shape (orderFilter reads them per
   * candidate; strategies' filter objects have as many shapes as key sets): same country,
   * the distance limit (NaN: none, or no destination to measure from), today's capacity.
   */
  sameCountry: boolean;
  maxKm: number;
  underCapacity: boolean;
  /** Capabilities needed at the pickup store and anywhere else (bit masks). */
  needAtPickup: number;
  needElsewhere: number;
  missingReasons: Map<number, string>;
  /** "filtered out by same country" per candidate country (one string per country, not per candidate). */
  countryReasons: Map<string, string>;
  pickupReason: string;
  criteria: Criterion[];
  // The per-criterion arrays below are typed arrays, read in the engine's hottest loops. Arrays
  // made by Array#map change elements kind with the tier of the code that made them (packed when
  // interpreted, holey once optimized), and code optimized for one kind then bails out on the
  // other: with on-stack-replaced code that did not stop (V8 11, Node 20), thousands of times
  // a run. A typed array has one map.
  tolerance: Float64Array;
  /** 1 when lower is better, -1 when higher is; and which criterion is distance (1). */
  sign: Int8Array;
  isDistance: Uint8Array;
  /** Criteria the ranking skips (distance without a destination): 1. */
  skip: Uint8Array;
  /**
   * Distance criteria computed only when read (LATER in the values until then): in a
   * lexicographic ranking where an earlier criterion decides first, distance only breaks ties,
   * and most candidates never need it.
   */
  later: Uint8Array;
  /** What criterionValue reads for each criterion (VALUE_…). */
  valueKinds: Int8Array;
  /** The outcome of the last locationFilter call that rejected (saves an object per candidate). */
  outcome: CandidateOutcome;
  /** The distance of the last candidate rejected as TOO_FAR. */
  farKm: number;
}

/**
 * What compile reads from a strategy alone, built once per strategy object (rule sets are
 * replaced when they change, never edited in place), with the criterion arrays per distance
 * mode and the reason sentences that depend on the strategy and a candidate only.
 */
interface StrategyFacts {
  types: ReadonlySet<string> | null;
  exclude: ReadonlySet<string> | null;
  /** Capabilities needed away from the pickup store; 'auto' strategies need ships there. */
  needElsewhere: number;
  auto: boolean;
  typeReasons: Map<string, string>;
  missingReasons: Map<number, string>;
  criteria: Criterion[];
  tolerance: Float64Array;
  sign: Int8Array;
  isDistance: Uint8Array;
  byMode: Map<Work['distanceMode'], { skip: Uint8Array; later: Uint8Array; valueKinds: Int8Array }>;
}
const strategyFacts = new WeakMap<Strategy, StrategyFacts>();

function factsOf(s: Strategy): StrategyFacts {
  let sf = strategyFacts.get(s);
  if (sf) return sf;
  const f = s.filters;
  const caps = f.capabilities ?? 'auto';
  let needElsewhere = 0;
  if (caps === 'auto') needElsewhere = capBit('ships');
  else for (const c of caps) needElsewhere |= capBit(c);
  const criteria: Criterion[] = [];
  for (const c of s.ranking.criteria) criteria.push(c.criterion);
  sf = {
    types: f.locationTypes ? new Set(f.locationTypes) : null,
    exclude: f.excludeLocations?.length ? new Set(f.excludeLocations) : null,
    needElsewhere,
    auto: caps === 'auto',
    typeReasons: new Map(),
    missingReasons: new Map(),
    criteria,
    tolerance: Float64Array.from(s.ranking.criteria, (c) => c.tolerance ?? 0),
    sign: Int8Array.from(criteria, (c) => (CRITERION_BETTER[c] === 'lower' ? 1 : -1)),
    isDistance: Uint8Array.from(criteria, (c) => (c === 'distance' ? 1 : 0)),
    byMode: new Map(),
  };
  strategyFacts.set(s, sf);
  return sf;
}

function compile(w: Work, s: Strategy): Compiled {
  const sf = factsOf(s);
  const dest = w.order.destination;
  const needElsewhere = sf.needElsewhere;
  const needAtPickup = sf.auto ? (dest.mode === 'click_and_collect' ? capBit('click_and_collect') : dest.mode === 'in_store' ? 0 : needElsewhere) : needElsewhere;
  let ranking = sf.byMode.get(w.distanceMode);
  if (!ranking) {
    const criteria = sf.criteria;
    const skip = Uint8Array.from(criteria, (c) => (c === 'distance' && w.distanceMode === 'ignored' ? 1 : 0));
    const later = Uint8Array.from(criteria, (c, j) => (s.ranking.mode === 'lexicographic' && c === 'distance' && !skip[j] && skip.slice(0, j).some((skipped) => !skipped) ? 1 : 0));
    ranking = { skip, later, valueKinds: Int8Array.from(criteria, (c, j) => valueKind(c, later[j] === 1)) };
    sf.byMode.set(w.distanceMode, ranking);
  }
  return {
    s,
    types: sf.types,
    typeReasons: sf.typeReasons,
    checkTypes: true,
    exclude: sf.exclude,
    passes: staticPasses(w, s, sf),
    sameCountry: s.filters.sameCountry === true,
    maxKm: s.filters.maxDistanceKm !== undefined && w.distanceMode !== 'ignored' ? s.filters.maxDistanceKm : Number.NaN,
    underCapacity: s.filters.underCapacity === true,
    needAtPickup,
    needElsewhere,
    missingReasons: sf.missingReasons,
    countryReasons: new Map(),
    pickupReason: `filtered out: only the pickup store ${dest.pickupLocation ?? '(none)'} may serve`,
    criteria: sf.criteria,
    tolerance: sf.tolerance,
    sign: sf.sign,
    isDistance: sf.isDistance,
    skip: ranking.skip,
    later: ranking.later,
    valueKinds: ranking.valueKinds,
    outcome: 'filtered',
    // A double from the start: a field first holding a small integer changes representation
    // (and map) when a distance is stored.
    farKm: Number.NaN,
  };
}

/**
 * The rejected candidates of one attempt, kept small for the explanation built later: a code per
 * candidate into the attempt's few distinct (outcome, reason) pairs, plus the one number some
 * sentences need (a distance, the units held). Per-candidate arrays of strings and outcomes,
 * kept alive by the explanation, were promoted to old space on every plan.
 */
class Rejections {
  readonly code: Uint16Array;
  private readonly kinds: Array<{ outcome: CandidateOutcome; reason: string }> = [{ outcome: 'filtered', reason: '' }];
  // outcome → reason → code. Two levels, not an `${outcome}|${reason}` key: set() runs for up to
  // every candidate of every attempt, and the reasons are mostly the same few string objects.
  private readonly index = new Map<CandidateOutcome, Map<string, number>>();
  private lastOutcome: CandidateOutcome | null = null;
  private lastReason = '';
  private lastCode = 0;
  /** Candidates recorded per kind (index = code), kept as they are set: counting is then one write per kind. */
  private perKind: number[] = [0];
  readonly extra = new Map<number, number>();

  constructor(n: number) {
    this.code = new Uint16Array(n);
  }

  set(i: number, outcome: CandidateOutcome, reason: string, extra?: number): void {
    let c: number;
    if (this.lastOutcome === outcome && this.lastReason === reason) c = this.lastCode;
    else {
      let byReason = this.index.get(outcome);
      if (!byReason) {
        byReason = new Map();
        this.index.set(outcome, byReason);
      }
      let found = byReason.get(reason);
      if (found === undefined) {
        found = this.kinds.length;
        if (found > 65_535) throw new Error('too many distinct rejection reasons in one attempt');
        this.kinds.push({ outcome, reason });
        this.perKind.push(0);
        byReason.set(reason, found);
      }
      c = found;
      this.lastOutcome = outcome;
      this.lastReason = reason;
      this.lastCode = c;
    }
    // A candidate is recorded once per attempt; were it recorded again, it moves to its new kind.
    this.perKind[this.code[i]]--;
    this.perKind[c]++;
    this.code[i] = c;
    if (extra !== undefined) this.extra.set(i, extra);
  }

  /** Adds the rejections of each outcome to `counts`: one write per kind. */
  countInto(counts: Partial<Record<CandidateOutcome, number>>): void {
    const per = this.perKind;
    for (let c = 1; c < per.length; c++) {
      if (per[c] === 0) continue;
      const o = this.kinds[c].outcome;
      counts[o] = (counts[o] ?? 0) + per[c];
    }
  }

  outcome(i: number): CandidateOutcome | undefined {
    const c = this.code[i];
    return c ? this.kinds[c].outcome : undefined;
  }

  reason(i: number): string {
    return this.kinds[this.code[i]].reason;
  }
}

/** Rejected outcomes, closest to being chosen first (the order of short explanations). */
const REJECTED_ORDER: CandidateOutcome[] = ['over_capacity', 'no_stock', 'filtered', 'excluded'];

const EXCLUDED_NETWORK = 'excluded from sourcing (inactive or blocked)';
const EXCLUDED_ORDER = 'excluded for this order (the ordering store, or a location that declined it)';
const EXCLUDED_STRATEGY = 'filtered out by the strategy exclude list';
const NO_COORDINATES = 'filtered out by maximum distance: the location has no coordinates';
const OVER_CAPACITY = 'over capacity: no shipments left today';
/** Marks a candidate beyond the maximum distance; see Compiled.farKm. */
const TOO_FAR = 'filtered out by maximum distance';
/** Followed by the line's position in the group; the sentence is written on demand. */
const FULL_ORDER = 'filtered out by full order only';
const tooFar = (km: number, max: number | undefined) => `${TOO_FAR}: ${round1(km)} km > ${max} km`;

/**
 * For one strategy over one list of candidates: 1 for each candidate that is not excluded from
 * sourcing, not on the strategy's exclude list, of one of its location types, and has the
 * capabilities it needs away from a pickup store. Those checks read nothing an order or the
 * stock changes (the list is rebuilt when the network changes), so they run once per list and
 * strategy, not once per plan.
 */
function staticPasses(w: Work, s: Strategy, sf: StrategyFacts): Uint8Array {
  let passes = w.facts.passes.get(s);
  if (passes) return passes;
  const { types, exclude, needElsewhere } = sf;
  const n = w.candidates.length;
  passes = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = w.candidates[i];
    if (c.excluded || exclude?.has(c.code) || (types && !types.has(c.type)) || needElsewhere & ~w.capMask[i]) continue;
    passes[i] = 1;
  }
  w.facts.passes.set(s, passes);
  return passes;
}

/**
 * Why a location cannot serve this strategy at all (null = it passes the location filters);
 * the outcome of a rejection is left in k.outcome.
 */
function locationFilter(w: Work, k: Compiled, i: number): string | null {
  const c = w.candidates[i];
  const f = k.s.filters;
  const dest = w.order.destination;
  k.outcome = 'excluded';
  if (c.excluded) return EXCLUDED_NETWORK;
  if (w.orderExcluded[i]) return EXCLUDED_ORDER;
  k.outcome = 'filtered';
  if (k.exclude?.has(c.code)) return EXCLUDED_STRATEGY;
  const atPickup = c.code === dest.pickupLocation;
  if (f.atPickupLocation && !atPickup) return k.pickupReason;
  if (k.checkTypes && k.types && !k.types.has(c.type)) {
    let reason = k.typeReasons.get(c.type);
    if (!reason) {
      reason = `filtered out by location type: ${c.type} not in ${f.locationTypes?.join('/')}`;
      k.typeReasons.set(c.type, reason);
    }
    return reason;
  }
  const missing = (atPickup ? k.needAtPickup : k.needElsewhere) & ~w.capMask[i];
  if (missing) {
    let reason = k.missingReasons.get(missing);
    if (!reason) {
      reason = `filtered out by capabilities: lacks ${CAPS.filter((cap) => missing & capBit(cap)).join(', ')}`;
      k.missingReasons.set(missing, reason);
    }
    return reason;
  }
  return orderFilter(w, k, i);
}

/**
 * The filters that depend on the order and on today's capacity (the rest of locationFilter):
 * run alone for a candidate that passes the strategy's static checks, is not excluded for
 * this order and is not its pickup store, for a strategy not limited to the pickup store.
 */
function orderFilter(w: Work, k: Compiled, i: number): string | null {
  const c = w.candidates[i];
  const dest = w.order.destination;
  k.outcome = 'filtered';
  if (k.sameCountry && c.country !== dest.country) {
    let reason = k.countryReasons.get(c.country);
    if (!reason) {
      reason = `filtered out by same country: ${c.country} ≠ ${dest.country}`;
      k.countryReasons.set(c.country, reason);
    }
    return reason;
  }
  const maxKm = k.maxKm;
  if (!Number.isNaN(maxKm)) {
    // A degree of latitude is 111 km everywhere: farther apart than that in latitude alone is
    // too far without any trigonometry (the exact distance is computed if someone reads why).
    const p = c.point;
    const to = dest.point;
    if (p && to && Math.abs(p.latitude - to.latitude) * 111.19 > maxKm) {
      k.farKm = Number.NaN;
      return TOO_FAR;
    }
    if (!w.distanceKnown[i]) measure(w, i);
    const d = w.distance[i];
    if (Number.isNaN(d)) return NO_COORDINATES;
    if (d > maxKm) {
      // Formatting a distance costs more than the whole check: the run loop keeps the number
      // and the sentence is written only if the explanation is read.
      k.farKm = d;
      return TOO_FAR;
    }
  }
  if (k.underCapacity && c.remainingCapacity !== null && c.remainingCapacity <= 0 && !w.shipsFrom[i]) {
    k.outcome = 'over_capacity';
    return OVER_CAPACITY;
  }
  return null;
}

/** Distance from candidate i to the destination in km (NaN when either point is unknown). */
function dist(w: Work, i: number): number {
  if (!w.distanceKnown[i]) measure(w, i);
  return w.distance[i];
}

/**
 * Fills w.distance[i]. Returns nothing: a double returned from a call that is not inlined is
 * boxed in a fresh heap number, and the filter asks for a distance per candidate.
 */
function measure(w: Work, i: number): void {
  w.distance[i] = kmFrom(w, i);
  w.distanceKnown[i] = 1;
}

/**
 * haversineKm from the destination to candidate i with both cosines precomputed (the
 * candidate list's and the order's, stable data: no scratch buffer): the same operations in
 * the same order, so the same value to the last bit (the explanation shows it).
 */
function kmFrom(w: Work, i: number): number {
  const p = w.candidates[i].point;
  const d = w.order.destination.point;
  if (!p || !d) return Number.NaN;
  const r = Math.PI / 180;
  const dLat = (p.latitude - d.latitude) * r;
  const dLng = (p.longitude - d.longitude) * r;
  const a = Math.sin(dLat / 2) ** 2 + w.destCosLat * w.cosLat[i] * Math.sin(dLng / 2) ** 2;
  return 12_742 * Math.asin(Math.min(1, Math.sqrt(a)));
}

/** `known` when it is a number, else the distance from stable data (no scratch buffer). */
function kmTo(w: Work, i: number, known: number): number {
  return Number.isNaN(known) ? kmFrom(w, i) : known;
}

/** Units candidate i can still give sku k. */
function available(w: Work, i: number, k: number): number {
  const at = i * w.skuCount + k;
  const v = w.stock[at] - w.used[at];
  return v > 0 ? v : 0;
}

/** The eligible candidates of one attempt, best-ranked first, as flat arrays. */
interface Ranked {
  m: number;
  /** Candidate index at each rank. */
  idx: Int32Array;
  /** units[r * L + l]: what the candidate at rank r can give line l (capped at the need); a scratch buffer, read by the decision only (a fallback attempt reuses it). */
  units: Int32Array;
  /** vals[r * C + j]: its value on the strategy's j-th criterion. */
  vals: Float64Array;
  /** Weighted score at each rank (weighted rankings only). */
  scores: Float64Array | null;
}

/** What the filter loop reads for each criterion (a number to switch on: it runs per candidate and criterion). */
const VALUE_DISTANCE = 0;
const VALUE_DISTANCE_LATER = 1;
const VALUE_PRIORITY = 2;
const VALUE_STOCK_DEPTH = 3;
const VALUE_SHIPMENT_COST = 4;
const VALUE_LEAD_TIME = 5;
const VALUE_SHIPMENTS = 6;

function valueKind(crit: Criterion, later: boolean): number {
  switch (crit) {
    case 'distance':
      return later ? VALUE_DISTANCE_LATER : VALUE_DISTANCE;
    case 'priority':
      return VALUE_PRIORITY;
    case 'stock_depth':
      return VALUE_STOCK_DEPTH;
    case 'shipment_cost':
      return VALUE_SHIPMENT_COST;
    case 'lead_time':
      return VALUE_LEAD_TIME;
    default:
      return VALUE_SHIPMENTS;
  }
}

function criterionValue(w: Work, kind: number, i: number, depth: number, short: number): number {
  switch (kind) {
    case VALUE_DISTANCE:
      // Not dist(): its double result would be boxed on return, once per ranked candidate.
      if (!w.distanceKnown[i]) measure(w, i);
      return w.distance[i];
    case VALUE_DISTANCE_LATER:
      return w.distanceKnown[i] ? w.distance[i] : LATER;
    case VALUE_PRIORITY:
      return w.candidates[i].priority;
    case VALUE_STOCK_DEPTH:
      return depth;
    case VALUE_SHIPMENT_COST:
      return w.candidates[i].shipmentCost;
    case VALUE_LEAD_TIME:
      return w.rules.settings.handlingDays[w.candidates[i].type] ?? 0;
    default:
      return short;
  }
}

/** A distance not computed yet (Compiled.later); real distances are ≥ 0 or NaN. */
const LATER = -1;

/**
 * The value of the candidate at position r on criterion j. A distance left for later is
 * computed from the candidate and the destination (stable data, not the plan's scratch
 * buffers: verdicts may be read after the next plan) and kept.
 */
function valueAt(w: Work, k: Compiled, ranked: Ranked, r: number, j: number): number {
  const at = r * k.criteria.length + j;
  const v = ranked.vals[at];
  if (v !== LATER || !k.later[j]) return v;
  const km = kmTo(w, ranked.idx[r], Number.NaN);
  ranked.vals[at] = km;
  return km;
}

/** Negative when value a ranks before value b on the j-th criterion. Unknown distances sort last. */
function diffAt(k: Compiled, j: number, va: number, vb: number): number {
  if (k.isDistance[j]) {
    const na = Number.isNaN(va);
    const nb = Number.isNaN(vb);
    if (na || nb) return na === nb ? 0 : na ? 1 : -1;
  }
  const d = va - vb;
  const t = k.tolerance[j];
  if (d <= t && d >= -t) return 0;
  return k.sign[j] * d;
}

/** Weighted score (lower is better): each criterion min-max normalised over the eligible set. */
function weightedScores(k: Compiled, m: number, vals: Float64Array): Float64Array {
  const scores = new Float64Array(m);
  const C = k.criteria.length;
  let weights = 0;
  k.s.ranking.criteria.forEach((rc, j) => {
    const weight = rc.weight ?? 0;
    if (weight === 0 || k.skip[j]) return;
    weights += weight;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let e = 0; e < m; e++) {
      const v = vals[e * C + j];
      if (Number.isNaN(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const span = max - min;
    const higher = CRITERION_BETTER[rc.criterion] === 'higher';
    for (let e = 0; e < m; e++) {
      const v = vals[e * C + j];
      let x = Number.isNaN(v) ? 1 : span > 0 ? (v - min) / span : 0;
      if (higher && !Number.isNaN(v)) x = 1 - x;
      scores[e] += weight * x;
    }
  });
  if (weights > 0) for (let e = 0; e < m; e++) scores[e] /= weights;
  return scores;
}

function run(w: Work, s: Strategy, ids: string[], via: string, visited: Set<string>): void {
  visited.add(s.id);
  const k = compile(w, s);
  const n = w.candidates.length;
  const L = ids.length;
  const C = k.criteria.length;
  // Built by push, not Array#map: see Compiled (elements kinds).
  const lines: PlanLine[] = [];
  for (const id of ids) lines.push(w.lines.get(id) as PlanLine);
  const need = new Int32Array(L);
  const lineSku = new Int32Array(L);
  for (let l = 0; l < L; l++) {
    need[l] = lines[l].unfilled;
    lineSku[l] = w.skuIndex.get(lines[l].sku) as number;
  }
  // Rejections are recorded as (outcome, reason) per candidate; the verdict objects of the
  // explanation are only built when someone reads them (see attemptWithVerdicts).
  const rejections = new Rejections(n);
  /** Distances of the candidates rejected as too far (their sentence is written on demand). */
  const reasonOf = (i: number): string => {
    const r = rejections.reason(i);
    if (r === TOO_FAR) return tooFar(kmTo(w, i, Number.NaN), s.filters.maxDistanceKm);
    if (r.startsWith(FULL_ORDER)) {
      const l = Number(r.slice(FULL_ORDER.length));
      return `${FULL_ORDER}: has ${rejections.extra.get(i)} of ${need[l]} ${lines[l].sku}`;
    }
    return r;
  };
  const notes: string[] = [];
  if (s.filters.maxDistanceKm !== undefined && w.distanceMode === 'ignored') {
    notes.push(`destination not found (${w.order.destination.geoSource}): the ${s.filters.maxDistanceKm} km limit is not applied and distance does not rank`);
  } else if (w.distanceMode === 'ignored' && k.criteria.includes('distance')) {
    notes.push(`destination not found (${w.order.destination.geoSource}): distance does not rank`);
  } else if (w.distanceMode === 'approximate') {
    notes.push(`distances are approximate: ${w.order.destination.geoSource}`);
  }
  const noStock = `no stock for ${lines.filter((_, l) => need[l] > 0).map((l) => l.sku).join(', ')}`;

  // Filter, and gather what each eligible candidate offers, in candidate order.
  // Fallback attempts run only after this one is done with these buffers.
  const elIdx = scratch('elIdx', n, i32);
  const elUnits = scratch('elUnits', n * L, i32);
  const elVals = scratch('elVals', n * C, f64);
  // A strategy limited to some location types only visits those; the others are filtered
  // out by type, and their verdicts are written only if the explanation is read.
  // The candidates of each type are listed once per network (StaticFacts.byType, ascending):
  // one type is that list as it is, several are merged in candidate order into a scratch buffer.
  let visit: Int32Array | null = null;
  let count = n;
  if (k.types && [...w.byType.keys()].some((t) => !k.types?.has(t))) {
    const lists: Int32Array[] = [];
    for (const t of k.types) {
      const list = w.byType.get(t)?.all;
      if (list?.length) lists.push(list);
    }
    if (lists.length === 1) {
      visit = lists[0];
      count = lists[0].length;
    } else {
      const merged = scratch('visit', n, i32);
      let c = 0;
      for (let i = 0; i < n; i++) if (k.types.has(w.candidates[i].type)) merged[c++] = i;
      visit = merged;
      count = c;
    }
  }
  // Either every type of the network is allowed, or only the allowed types are visited.
  k.checkTypes = false;
  const skipped = { filtered: 0, excluded: 0 };
  if (visit && k.types) {
    for (const [t, v] of w.byType) {
      if (k.types?.has(t)) continue;
      skipped.excluded += v.excluded;
      skipped.filtered += v.all.length - v.excluded;
    }
  }
  const fullOrderReason = s.filters.fullOrderOnly ? Array.from({ length: L }, (_, l) => `${FULL_ORDER}${l}`) : [];
  const m = gather(w, k, visit, count, need, lineSku, rejections, noStock, fullOrderReason, elIdx, elUnits, elVals);

  // Rank. Only what the decision needs is ranked now: the best location holding the whole
  // group is one linear scan (the usual answer); a full sort happens only when the split
  // policy needs the order, or when someone reads the explanation's ranks.
  const scores0 = s.ranking.mode === 'weighted' ? weightedScores(k, m, elVals) : null;
  // What the explanation keeps (idx, vals, scores) is in typed arrays of its own (plain arrays
  // of this size were promoted to old space on every plan), copied out of the scratch buffers
  // natively. The units are read in place: only the decision below needs them.
  let ranked: Ranked = { m, idx: elIdx.slice(0, m), units: elUnits, vals: elVals.slice(0, m * C), scores: scores0 };
  const cmp = (rk: Ranked, a: number, b: number): number => {
    if (rk.scores) {
      const d = rk.scores[a] - rk.scores[b];
      if (d !== 0) return d;
    } else {
      for (let j = 0; j < C; j++) {
        if (k.skip[j]) continue;
        const d = k.later[j] ? diffAt(k, j, valueAt(w, k, rk, a, j), valueAt(w, k, rk, b, j)) : diffAt(k, j, rk.vals[a * C + j], rk.vals[b * C + j]);
        if (d !== 0) return d;
      }
    }
    const ca = w.candidates[rk.idx[a]].code;
    const cb = w.candidates[rk.idx[b]].code;
    return ca < cb ? -1 : ca > cb ? 1 : 0;
  };
  const policy = s.split.policy;
  const holder = policy === 'none' || policy === 'minimise' ? bestHolder(ranked, need, cmp) : -1;
  let sorted = false;
  let decided: { chosen: number[]; split: Omit<AttemptExplanation['split'], 'shipments'> } | null = null;
  if (holder >= 0) decided = { chosen: [holder], split: { policy, method: 'single', lowerBound: 1, note: null } };
  else if (policy === 'none') decided = { chosen: [], split: { policy, method: m ? 'single' : 'none', lowerBound: m ? 1 : null, note: m ? 'no single location holds the whole group' : 'no eligible candidate' } };
  else if (s.split.policy === 'max' && m > 0) decided = fillByScan(ranked, s.split.maxShipments, L, need, cmp);
  if (!decided) {
    ranked = permuted(ranked, L, C, cmp);
    sorted = true;
  }
  const finalRanked = ranked;
  /** Positions in rank order (sorted on first use when the decision did not need it). */
  let byRank: Int32Array | null = null;
  const rankOrder = (): Int32Array => {
    byRank ??= sorted ? positions(m) : positions(m).sort((a, b) => cmp(finalRanked, a, b));
    return byRank;
  };

  const { chosen, split } = decided ?? allocate(w, s, ranked, L, need);
  // Allocate: in rank order within the chosen set, each location gives what it can (checked
  // again against what is left, so two lines of one sku never take the same unit twice).
  const left = Int32Array.from(need);
  const chosenRanks: number[] = [];
  for (const r of chosen) {
    const i = ranked.idx[r];
    const code = w.candidates[i].code;
    let took = false;
    let criteria: Partial<Record<Criterion, number | null>> | null = null;
    for (let l = 0; l < L; l++) {
      const take = Math.min(ranked.units[r * L + l], left[l], available(w, i, lineSku[l]));
      if (take <= 0) continue;
      left[l] -= take;
      took = true;
      const line = lines[l];
      const existing = line.allocations.find((a) => a.location === code);
      if (existing) existing.quantity += take;
      else line.allocations.push({ location: code, quantity: take });
      line.unfilled -= take;
      w.used[i * w.skuCount + lineSku[l]] += take;
      criteria ??= shown(w, k, ranked, r);
      (w.lineNotes.get(ids[l]) as LineExplanation).chosen.push({ location: code, quantity: take, criteria });
    }
    if (took) {
      chosenRanks.push(r);
      w.shipsFrom[i] = 1;
    }
  }
  // The best chosen location: what every other candidate is compared with.
  const best = chosenRanks.length ? chosenRanks.reduce((a, b) => (cmp(finalRanked, a, b) <= 0 ? a : b)) : -1;
  const chosenSet = new Set(chosenRanks);
  let rankAt: Int32Array | null = null;
  /** Rank of position r: from the full order when it exists, else by counting who ranks before it. */
  const rankOfPosition = (r: number): number => {
    if (sorted) return r + 1;
    if (rankAt) return rankAt[r];
    let before = 0;
    for (let x = 0; x < m; x++) if (x !== r && cmp(finalRanked, x, r) < 0) before++;
    return before + 1;
  };
  const verdictAt = (r: number, rank = rankOfPosition(r)): CandidateVerdict => {
    const location = w.candidates[finalRanked.idx[r]].code;
    const criteria = shown(w, k, finalRanked, r);
    if (chosenSet.has(r)) return { location, outcome: 'chosen', reason: chosenReason(w, k, finalRanked, r, split.method), rank, criteria };
    return { location, ...lostReason(w, k, finalRanked, r, best, split.policy), rank, criteria };
  };
  /** The `count` best positions, in rank order, without sorting them all (a bounded insertion). */
  const topPositions = (count: number): number[] => {
    if (sorted || byRank) return Array.from(rankOrder().subarray(0, count));
    const top: number[] = [];
    for (let x = 0; x < m; x++) {
      if (top.length === count && cmp(finalRanked, x, top[count - 1]) >= 0) continue;
      let at = top.length;
      while (at > 0 && cmp(finalRanked, x, top[at - 1]) < 0) at--;
      top.splice(at, 0, x);
      if (top.length > count) top.pop();
    }
    return top;
  };
  const counts: Partial<Record<CandidateOutcome, number>> = {};
  if (skipped.filtered) counts.filtered = skipped.filtered;
  if (skipped.excluded) counts.excluded = skipped.excluded;
  rejections.countInto(counts);
  /**
   * The verdict of a candidate the loop never visited (filtered by type, or excluded before
   * that check). Built later, so it reads only what cannot change: never the scratch buffers.
   */
  const unvisited = (i: number): CandidateVerdict => {
    const c = w.candidates[i];
    const f = s.filters;
    if (c.excluded) return { location: c.code, outcome: 'excluded', reason: EXCLUDED_NETWORK };
    if (w.excludedCodes.has(c.code)) return { location: c.code, outcome: 'excluded', reason: EXCLUDED_ORDER };
    if (k.exclude?.has(c.code)) return { location: c.code, outcome: 'filtered', reason: EXCLUDED_STRATEGY };
    if (f.atPickupLocation && c.code !== w.order.destination.pickupLocation) return { location: c.code, outcome: 'filtered', reason: k.pickupReason };
    return { location: c.code, outcome: 'filtered', reason: `filtered out by location type: ${c.type} not in ${f.locationTypes?.join('/')}` };
  };
  let counted = false;
  const outcomeCounts = () => {
    if (!counted) {
      // Counted as integers, one write per outcome: this visits every ranked candidate. Under
      // split policy none, every candidate not chosen lost; else those lostOn says lost, and the
      // rest were not needed (the outcomes lostReason gives).
      let lost = 0;
      if (split.policy !== 'none') {
        for (let r = 0; r < m; r++) if (!chosenSet.has(r) && lostOn(w, k, finalRanked, r, best, split.policy) !== NOT_LOST) lost++;
      } else lost = m - chosenSet.size;
      const add = (o: CandidateOutcome, count: number) => {
        if (count > 0) counts[o] = (counts[o] ?? 0) + count;
      };
      add('chosen', chosenSet.size);
      add('lost', lost);
      add('not_needed', m - chosenSet.size - lost);
      counted = true;
    }
    return counts;
  };
  const rankOf = () => {
    const at = new Int32Array(n).fill(-1);
    for (let r = 0; r < m; r++) at[finalRanked.idx[r]] = r;
    return at;
  };
  const attempt = attemptWithVerdicts(
    { strategy: s.id, via, lines: ids, split: { ...split, shipments: chosenRanks.length }, notes },
    {
      outcomes: outcomeCounts,
      all: () => {
        if (!rankAt) {
          const ranks = new Int32Array(m);
          rankOrder().forEach((pos, i) => {
            ranks[pos] = i + 1;
          });
          rankAt = ranks;
        }
        const at = rankOf();
        return w.candidates.map((c, i) => {
          if (at[i] >= 0) return verdictAt(at[i]);
          const o = rejections.outcome(i);
          return o !== undefined ? { location: c.code, outcome: o, reason: reasonOf(i) } : unvisited(i);
        });
      },
      sample: (limit) => {
        const out: CandidateVerdict[] = [];
        const top = topPositions(limit + chosenRanks.length);
        const rankInTop = new Map(top.map((pos, i) => [pos, i + 1]));
        for (const r of chosenRanks) out.push(verdictAt(r, rankInTop.get(r)));
        for (const r of top) {
          if (out.length >= chosenRanks.length + limit) break;
          if (!chosenSet.has(r)) out.push(verdictAt(r, rankInTop.get(r)));
        }
        // Then the rejected, closest to being chosen first, each class in network order.
        const eligible = new Set(finalRanked.idx);
        for (const cls of REJECTED_ORDER) {
          for (let i = 0; i < n && out.length < chosenRanks.length + limit; i++) {
            const o = rejections.outcome(i);
            if (o === cls) out.push({ location: w.candidates[i].code, outcome: cls, reason: reasonOf(i) });
            else if (o === undefined && !eligible.has(i)) {
              const v = unvisited(i);
              if (v.outcome === cls) out.push(v);
            }
          }
        }
        return out;
      },
    },
  );
  w.attempts.push(attempt);

  // Fallbacks, in order, for whatever is still unfilled.
  for (const f of s.fallbacks) {
    const open = ids.filter((id) => (w.lines.get(id) as PlanLine).unfilled > 0);
    if (open.length === 0) break;
    const described = describeFallback(f);
    for (const id of open) {
      // The first note replaces the empty array rather than being pushed into it: an empty array
      // literal is born holding small integers (its elements kind), and optimized code that saw
      // only those bails out on every string pushed (see Compiled).
      const note = w.lineNotes.get(id) as LineExplanation;
      if (note.fallbacks.length === 0) note.fallbacks = [described];
      else note.fallbacks.push(described);
    }
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

// The loops over every candidate live in functions of their own, not in run(): a long loop in a
// function called a few times gets on-stack-replaced code, and V8 11 (Node 20) kept entering
// such code after it bailed out on a branch or map it had not seen, thousands of times a run.

/**
 * Filters the visited candidates and gathers, in candidate order, what each eligible one offers
 * (units per line, criterion values); records the rejected. Returns how many are eligible.
 */
function gather(
  w: Work,
  k: Compiled,
  visit: Int32Array | null,
  count: number,
  need: Int32Array,
  lineSku: Int32Array,
  rejections: Rejections,
  noStock: string,
  fullOrderReason: string[],
  elIdx: Int32Array,
  elUnits: Int32Array,
  elVals: Float64Array,
): number {
  const L = need.length;
  const C = k.criteria.length;
  const fullOrderOnly = k.s.filters.fullOrderOnly === true;
  // The static checks were made once for the list (k.passes): a candidate that passed them
  // and is neither excluded for this order nor its pickup store only needs the order's own
  // filters. The others take the whole filter, in its order, for the same verdict.
  const passes = k.passes;
  const orderExcluded = w.orderExcluded;
  const fast = w.facts.uniqueCodes && !k.s.filters.atPickupLocation;
  const pickup = w.pickupIndex;
  let m = 0;
  for (let x = 0; x < count; x++) {
    const i = visit ? visit[x] : x;
    const rejected = fast && passes[i] === 1 && orderExcluded[i] === 0 && i !== pickup ? orderFilter(w, k, i) : locationFilter(w, k, i);
    if (rejected !== null) {
      rejections.set(i, k.outcome, rejected);
      continue;
    }
    let any = 0;
    let short = 0;
    let depth = 0;
    let firstShort = -1;
    const row = m * L;
    for (let l = 0; l < L; l++) {
      const have = available(w, i, lineSku[l]);
      const q = need[l];
      const u = have < q ? have : q;
      elUnits[row + l] = u;
      any += u;
      if (q === 0) continue;
      if (have < q) {
        short++;
        if (firstShort < 0) firstShort = l;
      } else depth += have - q;
    }
    if (any === 0) {
      rejections.set(i, 'no_stock', noStock);
      continue;
    }
    if (fullOrderOnly && short > 0) {
      const l = firstShort;
      rejections.set(i, 'filtered', fullOrderReason[l], available(w, i, lineSku[l]));
      continue;
    }
    for (let j = 0; j < C; j++) elVals[m * C + j] = criterionValue(w, k.valueKinds[j], i, depth, short);
    elIdx[m++] = i;
  }
  return m;
}

/** Compares two positions of a Ranked: negative when a ranks before b. */
type RankCmp = (rk: Ranked, a: number, b: number) => number;

/** The best-ranked position holding every line's need, or -1. */
function bestHolder(ranked: Ranked, need: Int32Array, cmp: RankCmp): number {
  const L = need.length;
  let holder = -1;
  for (let e = 0; e < ranked.m; e++) {
    let all = true;
    for (let l = 0; l < L && all; l++) if (ranked.units[e * L + l] < need[l]) all = false;
    if (all && (holder < 0 || cmp(ranked, e, holder) < 0)) holder = e;
  }
  return holder;
}

/** The ranked candidates in rank order (a full sort). */
function permuted(ranked: Ranked, L: number, C: number, cmp: RankCmp): Ranked {
  const m = ranked.m;
  const order = positions(m).sort((a, b) => cmp(ranked, a, b));
  const out: Ranked = { m, idx: new Int32Array(m), units: scratch('rankedUnits2', m * L, i32), vals: new Float64Array(m * C), scores: ranked.scores ? new Float64Array(m) : null };
  for (let r = 0; r < m; r++) {
    const e = order[r];
    out.idx[r] = ranked.idx[e];
    for (let l = 0; l < L; l++) out.units[r * L + l] = ranked.units[e * L + l];
    for (let j = 0; j < C; j++) out.vals[r * C + j] = ranked.vals[e * C + j];
    if (out.scores && ranked.scores) out.scores[r] = ranked.scores[e];
  }
  return out;
}

/** 0 … m−1, as a typed array (one map, whatever code made it: see Compiled). */
function positions(m: number): Int32Array {
  const out = new Int32Array(m);
  for (let i = 0; i < m; i++) out[i] = i;
  return out;
}

function describeFallback(f: Fallback): string {
  if (f.type === 'strategy') return `strategy '${f.strategy}'`;
  if (f.type === 'backorder') return `backorder on future stock within ${f.horizonDays} days`;
  if (f.type === 'dropship') return 'supplier drop-ship';
  return 'left unfilled';
}

/** Each line's need capped at what all eligible candidates hold together, so a cover always exists. */
function fillTarget(units: Int32Array, m: number, L: number, need: Int32Array): Int32Array {
  const target = new Int32Array(L);
  for (let l = 0; l < L; l++) {
    let sum = 0;
    for (let r = 0; r < m; r++) sum += units[r * L + l];
    target[l] = Math.min(sum, need[l]);
  }
  return target;
}

/** At most this many scans for the best unpicked location before fillByScan leaves it to a sort. */
const MAX_FILL_SCANS = 8;

/**
 * Split policy max N, filled in rank order without sorting: each step scans for the best
 * location not yet picked (usually one or two steps, where a sort of every eligible location
 * costs m·log m comparisons). Picks the same locations as rankedFill over the sorted ranking
 * (the ranking is a total order: ties fall to the code). Null when that needs more than N
 * shipments or too many scans: allocate() then decides on the full ranking.
 */
function fillByScan(
  ranked: Ranked,
  maxN: number,
  L: number,
  need: Int32Array,
  cmp: RankCmp,
): { chosen: number[]; split: Omit<AttemptExplanation['split'], 'shipments'> } | null {
  const { m, units } = ranked;
  const left = fillTarget(units, m, L, need);
  let remaining = 0;
  for (let l = 0; l < L; l++) remaining += left[l];
  const picked = new Uint8Array(m);
  const chosen: number[] = [];
  for (let scan = 0; remaining > 0; scan++) {
    if (scan === MAX_FILL_SCANS) return null;
    let best = -1;
    for (let e = 0; e < m; e++) if (!picked[e] && (best < 0 || cmp(ranked, e, best) < 0)) best = e;
    if (best < 0) break;
    picked[best] = 1;
    let took = 0;
    for (let l = 0; l < L; l++) {
      const t = Math.min(units[best * L + l], left[l]);
      left[l] -= t;
      took += t;
    }
    if (took === 0) continue;
    chosen.push(best);
    remaining -= took;
    if (chosen.length > maxN) return null;
  }
  return { chosen, split: { policy: `max ${maxN}`, method: 'ranked', lowerBound: null, note: null } };
}

/** The ranks that fulfil, for the policies that need the full ranking (minimise without a single holder, max N). */
function allocate(w: Work, s: Strategy, ranked: Ranked, L: number, need: Int32Array): { chosen: number[]; split: Omit<AttemptExplanation['split'], 'shipments'> } {
  const policy = s.split.policy;
  const { m, units } = ranked;
  if (m === 0) return { chosen: [], split: { policy, method: 'none', lowerBound: null, note: 'no eligible candidate' } };
  const target = fillTarget(units, m, L, need);
  const cover = () => minimiseCover({ avail: units, rows: m, width: L, need: target, exactLimit: w.rules.settings.exactSplitLimit });
  if (policy === 'minimise') {
    const c = cover();
    return { chosen: c.chosen, split: { policy, method: c.method, lowerBound: c.lowerBound, note: c.note } };
  }
  // max N: fill in rank order when that fits in N shipments; else the fewest-shipment cover
  // when it fits; else the N locations covering the most units.
  const maxN = s.split.policy === 'max' ? s.split.maxShipments : 1;
  const label = `max ${maxN}`;
  const filled = rankedFill(units, m, L, target);
  if (filled.length <= maxN) return { chosen: filled, split: { policy: label, method: 'ranked', lowerBound: null, note: null } };
  const c = cover();
  if (c.chosen.length <= maxN) return { chosen: c.chosen, split: { policy: label, method: c.method, lowerBound: c.lowerBound, note: `filling by rank needed ${filled.length} shipments` } };
  return {
    chosen: c.chosen.slice(0, maxN),
    split: { policy: label, method: c.method, lowerBound: c.lowerBound, note: `the order needs ${c.chosen.length} shipments; at most ${maxN} allowed, the rest falls back` },
  };
}

function rankedFill(units: Int32Array, m: number, L: number, target: Int32Array): number[] {
  const left = Int32Array.from(target);
  let remaining = left.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  for (let r = 0; r < m && remaining > 0; r++) {
    let took = 0;
    for (let l = 0; l < L; l++) {
      const t = Math.min(units[r * L + l], left[l]);
      left[l] -= t;
      took += t;
    }
    if (took > 0) {
      out.push(r);
      remaining -= took;
    }
  }
  return out;
}

function shown(w: Work, k: Compiled, ranked: Ranked, r: number): Partial<Record<Criterion, number | null>> {
  const out: Partial<Record<Criterion, number | null>> = {};
  const C = k.criteria.length;
  for (let j = 0; j < C; j++) {
    const crit = k.criteria[j];
    const v = valueAt(w, k, ranked, r, j);
    out[crit] = crit === 'distance' ? (Number.isNaN(v) || w.distanceMode === 'ignored' ? null : round1(v)) : v;
  }
  return out;
}

function fmt(crit: Criterion, v: number): string {
  if (crit === 'distance') return Number.isNaN(v) ? 'unknown distance' : `${round1(v)} km`;
  if (crit === 'lead_time') return `${v} day(s)`;
  if (crit === 'stock_depth') return `${v} left`;
  if (crit === 'shipments') return `${v} line(s) short`;
  if (crit === 'shipment_cost') return `cost ${v}`;
  return `priority ${v}`;
}

function chosenReason(w: Work, k: Compiled, ranked: Ranked, r: number, method: string): string {
  const crit = k.criteria.map((c, j) => `${c} ${fmt(c, valueAt(w, k, ranked, r, j))}`).join(', ');
  const how = method === 'single' ? 'holds the whole group' : method === 'ranked' ? 'filled in rank order' : `in the ${method} fewest-shipment cover`;
  return `chosen (${k.s.ranking.mode} ranking: ${crit}; ${how})`;
}

/** lostOn: the candidate was not needed (or, under split policy none, could not hold the group). */
const NOT_LOST = -1;
/** lostOn: equal on every criterion, and the best comes first by code. */
const LOST_ON_TIE = -2;
/** lostOn: a worse weighted score. */
const LOST_ON_SCORE = -3;

/**
 * Why the candidate at rank r was not chosen, as a number: the criterion it lost on (≥ 0),
 * LOST_ON_TIE, LOST_ON_SCORE or NOT_LOST. It runs for every ranked candidate of every
 * attempt (the decision record counts outcomes), so it allocates nothing.
 */
function lostOn(w: Work, k: Compiled, ranked: Ranked, r: number, best: number, policy: string): number {
  if (best < 0) return NOT_LOST;
  if (ranked.scores) return ranked.scores[r] > ranked.scores[best] ? LOST_ON_SCORE : NOT_LOST;
  const C = k.criteria.length;
  for (let j = 0; j < C; j++) {
    if (k.skip[j]) continue;
    const d = k.later[j] ? diffAt(k, j, valueAt(w, k, ranked, r, j), valueAt(w, k, ranked, best, j)) : diffAt(k, j, ranked.vals[r * C + j], ranked.vals[best * C + j]);
    if (d > 0) return j;
    if (d < 0) return NOT_LOST;
  }
  if (policy !== 'minimise' && w.candidates[ranked.idx[r]].code > w.candidates[ranked.idx[best]].code) return LOST_ON_TIE;
  return NOT_LOST;
}

function lostReason(w: Work, k: Compiled, ranked: Ranked, r: number, best: number, policy: string): { outcome: CandidateOutcome; reason: string } {
  const on = lostOn(w, k, ranked, r, best, policy);
  // A weighted ranking under split policy none names the scores even when this one is not worse.
  if (best < 0 || (on === NOT_LOST && !(ranked.scores && policy === 'none'))) return notChosen(policy);
  const bestCode = w.candidates[ranked.idx[best]].code;
  if (on === LOST_ON_TIE) return { outcome: 'lost', reason: `lost on the tie-break: equal on every criterion, ${bestCode} comes first by code` };
  if (ranked.scores) return { outcome: 'lost', reason: `lost on weighted score: ${ranked.scores[r].toFixed(3)} vs ${ranked.scores[best].toFixed(3)} (${bestCode})` };
  const crit = k.criteria[on];
  return { outcome: 'lost', reason: `lost on ${crit}: ${fmt(crit, valueAt(w, k, ranked, r, on))} vs ${fmt(crit, valueAt(w, k, ranked, best, on))} (${bestCode})` };
}

function notChosen(policy: string): { outcome: CandidateOutcome; reason: string } {
  if (policy === 'none') return { outcome: 'lost', reason: 'cannot hold the whole group in one shipment (split policy none)' };
  return { outcome: 'not_needed', reason: `not needed: fewer shipments without it (split policy ${policy})` };
}

// ---- the explanation's candidate list, built on demand ------------------------------------

interface VerdictSource {
  outcomes: () => Partial<Record<CandidateOutcome, number>>;
  all: () => CandidateVerdict[];
  sample: (limit: number) => CandidateVerdict[];
}

/** Where an attempt keeps its verdict builder: a non-enumerable symbol, invisible to JSON and to equality checks. */
const VERDICTS = Symbol('verdicts');

/** Its verdicts once built (a non-enumerable slot, defined with the attempt). */
const VERDICTS_BUILT = Symbol('verdicts built');

type LazyAttempt = AttemptExplanation & { [VERDICTS]: VerdictSource; [VERDICTS_BUILT]: CandidateVerdict[] | null };

// The getters are the same two functions for every attempt of every plan. A getter made per
// attempt (a closure over its verdict source) gave each plan's attempts hidden classes of their
// own, reachable from the long-lived ones: every plan's working data then survived the next
// young-generation collection and was promoted, and the collector's pauses set the p99.
function readOutcomes(this: LazyAttempt): Partial<Record<CandidateOutcome, number>> {
  return this[VERDICTS].outcomes();
}
function readCandidates(this: LazyAttempt): CandidateVerdict[] {
  this[VERDICTS_BUILT] ??= this[VERDICTS].all();
  return this[VERDICTS_BUILT];
}

/**
 * Adds `candidates` (every candidate's verdict) to an attempt as an enumerable property that
 * is built on first read: a plan over 1,000 locations names all of them, but a caller that
 * only needs the plan, the counts or a sample never pays for 1,000 sentences.
 */
function attemptWithVerdicts(base: Omit<AttemptExplanation, 'candidates' | 'outcomes'>, src: VerdictSource): AttemptExplanation {
  const attempt = base as AttemptExplanation;
  Object.defineProperty(attempt, VERDICTS, { enumerable: false, value: src });
  Object.defineProperty(attempt, VERDICTS_BUILT, { enumerable: false, writable: true, value: null });
  Object.defineProperty(attempt, 'outcomes', { enumerable: true, get: readOutcomes });
  Object.defineProperty(attempt, 'candidates', { enumerable: true, get: readCandidates });
  return attempt;
}

/** The chosen candidates of an attempt and the `limit` best-placed others (for short explanations). */
export function verdictSample(attempt: AttemptExplanation, limit: number): CandidateVerdict[] {
  const src = (attempt as AttemptExplanation & { [VERDICTS]?: VerdictSource })[VERDICTS];
  return src?.sample(limit) ?? [...attempt.candidates.filter((c) => c.outcome === 'chosen'), ...attempt.candidates.filter((c) => c.outcome !== 'chosen').slice(0, limit)];
}

// ---- backorders on future stock --------------------------------------------------------

function backorder(w: Work, s: Strategy, ids: string[], horizonDays: number): void {
  const horizon = w.now + horizonDays * DAY;
  const notes: string[] = [];
  const verdicts: CandidateVerdict[] = [];
  const open = new Set<number>();
  const k = compile(w, s);
  for (let i = 0; i < w.candidates.length; i++) {
    const r = locationFilter(w, k, i);
    if (r !== null) verdicts.push({ location: w.candidates[i].code, outcome: k.outcome, reason: r === TOO_FAR ? tooFar(kmTo(w, i, k.farKm), s.filters.maxDistanceKm) : r });
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
  const counts: Partial<Record<CandidateOutcome, number>> = {};
  for (const v of verdicts) counts[v.outcome] = (counts[v.outcome] ?? 0) + 1;
  w.attempts.push(
    attemptWithVerdicts(
      { strategy: `${s.id}:backorder`, via: `fallback of '${s.id}'`, lines: ids, split: { policy: 'backorder', method: 'ranked', lowerBound: null, shipments: chosen.size, note: null }, notes },
      { outcomes: () => counts, all: () => verdicts, sample: (limit) => [...verdicts.filter((v) => v.outcome === 'chosen'), ...verdicts.filter((v) => v.outcome !== 'chosen').slice(0, limit)] },
    ),
  );
}

// ---- shipments -------------------------------------------------------------------------

interface Built {
  shipment: Shipment;
  /** When goods can leave (handling time, supply dates): the carrier's cut-off applies to it. */
  readyAt: number;
  originCountry: string;
}

function buildShipments(w: Work, lines: PlanLine[]): Built[] {
  const dest = w.order.destination;
  const weights = new Map(w.order.lines.map((l) => [l.lineId, l.weightG]));
  const out: Built[] = [];
  const make = (code: string, items: Array<{ lineId: string; sku: string; quantity: number }>, readyAt: number, isBackorder: boolean): Built => {
    const idx = w.index.get(code) as number;
    const c = w.candidates[idx];
    let weight: number | null = 0;
    for (const it of items) {
      const g = weights.get(it.lineId);
      weight = g == null || weight === null ? null : weight + g * it.quantity;
    }
    const atPickup = (dest.mode === 'click_and_collect' || dest.mode === 'in_store') && code === dest.pickupLocation;
    const mode = (dest.mode === 'click_and_collect' || dest.mode === 'in_store') && !atPickup ? 'store_transfer' : dest.mode;
    const handling = w.rules.settings.handlingDays[c.type] ?? 0;
    const d = dist(w, idx);
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
