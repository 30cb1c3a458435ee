// Sourcing use cases: turn a request into the engine's input (skus, destination coordinates,
// candidate stock for the channel, today's capacity), run the pure engine, and, for order
// capture, reserve what the plan allocates atomically.
//
// sourceAndReserve: the engine plans on the in-memory projection (fast, maybe a moment
// stale); the reservations are conditional UPDATEs in one transaction, in (location, sku)
// order so concurrent orders never deadlock. If one loses a race, the transaction rolls back,
// the projection is refreshed from the database for those skus, and the order is re-sourced,
// a bounded number of times, before it is refused as out of stock. An order the projection
// cannot fill is planned once more on positions re-read from the database before it is
// refused (another process may have just added stock). Nothing is oversold: the database,
// not the projection, decides.
import type { Ctx } from '../context.ts';
import { LOST_RACE_SQLSTATE, type Trx } from '../db/database.ts';
import { WRITER_STOPPED } from '../db/sqlite-writer.ts';
import { resolvePlace } from '../geo/places.ts';
import { assertCountry } from '../inventory/validate.ts';
import type { Reservation } from '../inventory/stock.ts';
import { WriteBatch } from '../db/bulk.ts';
import { reserveAll, reserveInBatch } from '../inventory/stock.ts';
import { startOfUtcDay } from '../availability/atp.ts';
import { type PositionRow, reloadSupply } from '../availability/projection.ts';
import { allocateSupply, type SupplyHold, type SupplyRequest } from '../inventory/supply.ts';
import { isoDay } from '../shared/clock.ts';
import { AppError } from '../shared/errors.ts';
import { countShipments, countShipmentsTo, type ShipmentsToday } from './capacity.ts';
import { source } from './engine.ts';
import type { Candidate, CandidatePool, DeliveryMode, FutureStock, RuleSet, SourcingOrder, SourcingResult } from './model.ts';
import { assertValidRuleSet, getRuleSet } from './rule-sets.ts';
import { type SimulatedOrder, type SimulationResult, simulate } from './simulate.ts';

export interface SourcingRequestLine {
  lineId?: string;
  sku: string;
  quantity: number;
  /** Unit price in minor units (the order value, for conditions on value). */
  unitPrice?: number;
}

export interface SourcingRequest {
  channel: string;
  currency?: string;
  /** Order value in minor units; by default Σ unitPrice × quantity. */
  value?: number;
  lines: SourcingRequestLine[];
  delivery: {
    mode: DeliveryMode;
    country?: string | null;
    postalCode?: string | null;
    city?: string | null;
    latitude?: number | null;
    longitude?: number | null;
    /** The store for click & collect and in-store orders (a location code). */
    pickupLocation?: string | null;
  };
  excludeLocations?: string[];
  promisedBy?: number | null;
  carrierService?: string | null;
  serviceLevel?: 'standard' | 'express' | null;
}

export interface PlannedSourcing {
  ruleSet: { version: number | null; name: string };
  result: SourcingResult;
}

/** Checks a request against the catalogue and network and builds the engine's order. */
export function buildOrder(ctx: Ctx, req: SourcingRequest): SourcingOrder {
  const p = ctx.projection;
  if (!p.channel(req.channel)) throw new AppError('unknown_channel', `Channel '${req.channel}' does not exist`);
  const unknown = [...new Set(req.lines.map((l) => l.sku).filter((s) => !p.sku(s)))];
  if (unknown.length) throw new AppError('unknown_sku', `Unknown sku(s): ${unknown.slice(0, 10).join(', ')}`, { skus: unknown });
  const ids = req.lines.map((l, i) => l.lineId ?? `L${i + 1}`);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) throw new AppError('validation_failed', `Line id '${dup}' is used twice`);
  const badLoc = (req.excludeLocations ?? []).filter((c) => !p.location(c));
  if (badLoc.length) throw new AppError('unknown_location', `Unknown location(s) to exclude: ${badLoc.join(', ')}`, { locations: badLoc });

  const d = req.delivery;
  // A country, when given, must be one, whatever the mode (it is ignored for pickups).
  if (d.country) assertCountry(d.country);
  let country: string;
  let point: SourcingOrder['destination']['point'] = null;
  let precision: SourcingOrder['destination']['precision'];
  let geoSource: string;
  let pickupLocation: string | null = null;
  if (d.mode === 'click_and_collect' || d.mode === 'in_store') {
    if (!d.pickupLocation) throw new AppError('validation_failed', `Delivery mode ${d.mode} needs delivery.pickup_location (a store code)`);
    const loc = p.location(d.pickupLocation);
    if (!loc) throw new AppError('unknown_location', `Location '${d.pickupLocation}' does not exist`);
    if (d.mode === 'click_and_collect' && !loc.capabilities.includes('click_and_collect')) {
      throw new AppError('validation_failed', `Location '${loc.code}' is not a click & collect pickup point`);
    }
    if (d.mode === 'in_store' && loc.type !== 'store') throw new AppError('validation_failed', `Location '${loc.code}' is not a store`);
    pickupLocation = loc.code;
    country = loc.country;
    point = loc.latitude !== null && loc.longitude !== null ? { latitude: loc.latitude, longitude: loc.longitude } : null;
    precision = point ? 'coordinates' : 'not_found';
    geoSource = point ? `pickup store ${loc.code}` : `pickup store ${loc.code} has no coordinates`;
  } else {
    if (!d.country) throw new AppError('validation_failed', `Delivery mode ${d.mode} needs delivery.country`);
    const geo = resolvePlace({ country: d.country, postalCode: d.postalCode, city: d.city, latitude: d.latitude, longitude: d.longitude });
    country = d.country.toUpperCase();
    point = geo.point;
    precision = geo.precision;
    geoSource = geo.source;
  }
  const value = req.value ?? req.lines.reduce((sum, l) => sum + (l.unitPrice ?? 0) * l.quantity, 0);
  return {
    channel: req.channel,
    value,
    currency: req.currency ?? 'EUR',
    lines: req.lines.map((l, i) => {
      const meta = p.sku(l.sku) as NonNullable<ReturnType<typeof p.sku>>;
      return { lineId: ids[i], sku: l.sku, quantity: l.quantity, demandClass: meta.demandClass, tags: meta.tags, backorderable: meta.backorderable, weightG: meta.weightG };
    }),
    destination: { mode: d.mode, country, point, precision, geoSource, pickupLocation },
    excludeLocations: req.excludeLocations ?? [],
    pinnedCarrierService: req.carrierService ?? null,
    serviceLevel: req.serviceLevel ?? null,
    promisedBy: req.promisedBy ?? null,
  };
}

/**
 * Candidates for a channel: every location it exposes, with what the channel may promise
 * there now and (for channels that sell future stock) the supply expected within its horizon.
 * Synchronous over the projection, so it is one consistent picture.
 */
export function loadCandidates(
  ctx: Ctx,
  channelCode: string,
  skuCodes: string[],
  usedToday: ShipmentsToday,
  now: number,
  /** Count what captures in flight hold as taken (StockProjection.hold); false: committed stock only. */
  withHolds = true,
): CandidatePool {
  const p = ctx.projection;
  const channel = p.channel(channelCode);
  if (!channel) throw new AppError('unknown_channel', `Channel '${channelCode}' does not exist`);
  const { rowOf, locations: shared } = exposedLocations(ctx, channelCode, usedToday);
  let locations = shared;
  const skus = [...new Set(skuCodes)];
  const columns = new Map(skus.map((s, i) => [s, i]));
  const P = skus.length;
  const available = new Int32Array(locations.length * P);
  const horizon = now + channel.futureHorizonDays * 86_400_000;
  skus.forEach((code, col) => {
    const sku = p.sku(code);
    if (!sku) return;
    p.fillAvailable(sku.id, channelCode, rowOf, available, P, col, withHolds);
    if (!channel.futureStock || !sku.backorderable) return;
    for (const s of p.supplyOf(sku.id)) {
      const r = s.locationId < rowOf.length ? rowOf[s.locationId] : -1;
      if (r < 0 || s.quantity <= 0 || s.expectedAt > horizon) continue;
      if (locations === shared) locations = shared.slice();
      if (locations[r].future === NO_FUTURE) locations[r] = { ...locations[r], future: new Map() };
      const c = locations[r];
      const list = c.future.get(code) ?? [];
      const day = Math.max(startOfUtcDay(s.expectedAt), startOfUtcDay(now));
      const same = list.find((f) => f.expectedAt === day);
      if (same) same.quantity += s.quantity;
      else list.push({ expectedAt: day, quantity: s.quantity });
      list.sort((a: FutureStock, b: FutureStock) => a.expectedAt - b.expectedAt);
      c.future.set(code, list);
    }
  });
  return { locations, columns, available };
}

/** Shared by every candidate without incoming supply (never written to). */
const NO_FUTURE: Map<string, FutureStock[]> = new Map();

interface ExposedLocations {
  refVersion: number;
  /** Row of each location in `locations`, indexed by location id (-1: not a candidate). */
  rowOf: Int32Array;
  locations: Candidate[];
  /** Candidates with a daily capacity: their row and capacity, by location id. */
  capped: Map<number, { row: number; capacity: number }>;
  /** The shipment counts the remaining capacities were computed from, and how many of its `counted` are in. */
  capacityFrom: ShipmentsToday | null;
  capacityApplied: number;
}
const exposedCache = new WeakMap<object, Map<string, ExposedLocations>>();

/**
 * A channel's candidate locations, rebuilt only when the network changes: the same array then
 * serves every plan (and the engine's per-array facts with it). Only today's remaining
 * capacity changes from call to call: it is written into the shared candidates here (the
 * engine reads it live; plans run synchronously, one at a time). A plan that needs future
 * stock works on a copy.
 */
function exposedLocations(ctx: Ctx, channelCode: string, usedToday: ShipmentsToday): ExposedLocations {
  const p = ctx.projection;
  let byChannel = exposedCache.get(p);
  if (!byChannel) {
    byChannel = new Map();
    exposedCache.set(p, byChannel);
  }
  let built = byChannel.get(channelCode);
  if (!built || built.refVersion !== p.refVersion) {
    const row = new Map<number, number>();
    const locations: Candidate[] = [];
    const capped: ExposedLocations['capped'] = new Map();
    for (const loc of p.allLocations()) {
      if (!p.isExposed(channelCode, loc.id)) continue;
      row.set(loc.id, locations.length);
      if (loc.dailyCapacity !== null) capped.set(loc.id, { row: locations.length, capacity: loc.dailyCapacity });
      locations.push({
        code: loc.code,
        type: loc.type,
        capabilities: loc.capabilities,
        country: loc.country,
        point: loc.latitude !== null && loc.longitude !== null ? { latitude: loc.latitude, longitude: loc.longitude } : null,
        priority: loc.priority,
        shipmentCost: loc.shipmentCost,
        remainingCapacity: loc.dailyCapacity,
        excluded: false,
        future: NO_FUTURE,
      });
    }
    const rowOf = new Int32Array(Math.max(0, ...row.keys()) + 1).fill(-1);
    for (const [id, r] of row) rowOf[id] = r;
    built = { refVersion: p.refVersion, rowOf, locations, capped, capacityFrom: null, capacityApplied: 0 };
    byChannel.set(channelCode, built);
  }
  // Every capped candidate from a fresh copy of the counts; from the same copy, only the
  // locations counted since the last call (a capture counts one or two: not a thousand writes).
  const counted = usedToday.counted;
  if (built.capacityFrom !== usedToday) {
    for (const [id, c] of built.capped) built.locations[c.row].remainingCapacity = c.capacity - usedToday.get(id);
    built.capacityFrom = usedToday;
  } else {
    for (let x = built.capacityApplied; x < counted.length; x++) {
      const c = built.capped.get(counted[x]);
      if (c) built.locations[c.row].remainingCapacity = c.capacity - usedToday.get(counted[x]);
    }
  }
  built.capacityApplied = counted.length;
  return built;
}

async function rulesFor(ctx: Ctx, version?: number): Promise<{ version: number | null; ruleSet: RuleSet }> {
  if (version !== undefined) {
    const v = await getRuleSet(ctx.store.db, version);
    return { version: v.version, ruleSet: v.ruleSet };
  }
  return ctx.sourcing.rules.get(ctx);
}

/** The dry run: the plan for the current stock, reserving nothing. */
export async function planSourcing(ctx: Ctx, req: SourcingRequest, opts: { ruleSetVersion?: number } = {}): Promise<PlannedSourcing> {
  const order = buildOrder(ctx, req);
  const { version, ruleSet } = await rulesFor(ctx, opts.ruleSetVersion);
  const now = ctx.clock.now();
  const used = await ctx.sourcing.capacity.today(ctx);
  const candidates = loadCandidates(ctx, order.channel, order.lines.map((l) => l.sku), used, now);
  return { ruleSet: { version, name: ruleSet.name }, result: source(order, candidates, ruleSet, now, ctx.sourcing.carriers) };
}

export interface SourcedAndReserved<T> extends PlannedSourcing {
  reservations: Reservation[];
  /** How many plans it took (1 unless a reservation lost a race). */
  attempts: number;
  persisted: T;
}

/** One reserved allocation: which line, where, how many, under which reservation. */
export interface ReservedAllocation {
  lineId: string;
  sku: string;
  location: string;
  locationId: number;
  skuId: number;
  quantity: number;
  reservation: Reservation;
}

export interface GroupsSourced<T> {
  /** One per request (delivery group), in order; `supply`: the incoming units its backorders hold. */
  groups: Array<PlannedSourcing & { allocations: ReservedAllocation[]; supply: SupplyHold[] }>;
  attempts: number;
  persisted: T;
}

export interface ReserveOptions {
  /** Stored on each reservation (the order id, later). */
  reference: string;
  /** Accept a plan with unfilled units (default: refuse it as out of stock). */
  allowPartial?: boolean;
  maxAttempts?: number;
}

export const MAX_SOURCING_ATTEMPTS = 4;

class LostRace extends Error {
  constructor(readonly skuIds: number[]) {
    super('a reservation lost a race');
  }
}

/** Sources and reserves atomically: either every allocation is reserved, or nothing is. */
export async function sourceAndReserve<T = undefined>(
  ctx: Ctx,
  req: SourcingRequest,
  opts: ReserveOptions & { persist?: (trx: Trx, planned: PlannedSourcing, reservations: Reservation[]) => Promise<T> },
): Promise<SourcedAndReserved<T>> {
  const persist = opts.persist;
  const r = await sourceAndReserveGroups<T>(ctx, [req], {
    ...opts,
    persist: async (trx, groups) => (persist ? persist(trx, groups[0], groups[0].allocations.map((a) => a.reservation)) : (undefined as T)),
  });
  const g = r.groups[0];
  return { ruleSet: g.ruleSet, result: g.result, reservations: g.allocations.map((a) => a.reservation), attempts: r.attempts, persisted: r.persisted };
}

/**
 * Sources several delivery groups of one order (each its own destination) and reserves them
 * all in one transaction: a later group plans on the stock the earlier ones left. `persist`
 * runs in the same transaction after the reservations (order capture stores the order there);
 * if it throws, nothing is reserved.
 */
export async function sourceAndReserveGroups<T = undefined>(
  ctx: Ctx,
  reqs: SourcingRequest[],
  opts: ReserveOptions & {
    /** Runs before the batch is written: it may add its own inserts to it, or write directly. */
    persist?: (trx: Trx, groups: GroupsSourced<T>['groups'], batch: WriteBatch) => Promise<T>;
    /**
     * Instead of persist, for a caller whose writes are all inserts: it adds them to the batch
     * and runs no statement. On PostgreSQL the reservations and these inserts are then one
     * statement in autocommit (no BEGIN, no COMMIT: one round trip for the whole capture); on
     * SQLite, one unit of the writer thread. The batch must fail as a whole if it is written a
     * second time (a unique key): a unit in flight when the writer thread stops is retried.
     */
    collect?: (groups: GroupsSourced<T>['groups'], batch: WriteBatch) => Promise<T>;
    /**
     * Runs first in the transaction, before any stock is locked: a change to an existing order
     * locks the order row here, so every transaction touching that order and stock takes its
     * locks in one order (order, then positions) and none deadlocks.
     */
    beforeReserve?: (trx: Trx) => Promise<void>;
  },
): Promise<GroupsSourced<T>> {
  const orders = reqs.map((r) => buildOrder(ctx, r));
  const channelCode = orders[0].channel;
  if (orders.some((o) => o.channel !== channelCode)) throw new AppError('validation_failed', 'Every delivery group of an order belongs to one channel');
  const channel = ctx.projection.channel(channelCode) as NonNullable<ReturnType<typeof ctx.projection.channel>>;
  const max = opts.maxAttempts ?? MAX_SOURCING_ATTEMPTS;
  let last: SourcingResult | null = null;
  let refreshed = false;
  for (let attempt = 1; attempt <= max; attempt++) {
    const { version, ruleSet } = await ctx.sourcing.rules.get(ctx);
    const now = ctx.clock.now();
    const used = await ctx.sourcing.capacity.today(ctx);
    // Units earlier groups took, by location code and sku, deducted from later groups' pools.
    const taken = new Map<string, number>();
    const groups: Array<PlannedSourcing & { allocations: Omit<ReservedAllocation, 'reservation'>[] }> = [];
    let stale = false;
    for (const order of orders) {
      const plan = (withHolds: boolean) => {
        const pool = loadCandidates(ctx, channelCode, order.lines.map((l) => l.sku), used, now, withHolds);
        if (taken.size) deduct(pool, taken);
        return source(order, pool, ruleSet, now, ctx.sourcing.carriers);
      };
      let result = plan(true);
      // Units held by captures still in flight may come back (a capture can fail): never refuse
      // on them. Plan on committed stock; the conditional UPDATE settles who gets it.
      if (!result.plan.complete && ctx.projection.heldUnits > 0) result = plan(false);
      last = result;
      if (!result.plan.complete && !opts.allowPartial) {
        // The projection may lag stock another process just added: refuse only on a plan made
        // from what the database holds now.
        if (refreshed) throw outOfStock(result);
        stale = true;
        break;
      }
      const allocations = result.plan.lines.flatMap((l) =>
        l.allocations.map((a) => {
          const k = `${a.location}\u0000${l.sku}`;
          taken.set(k, (taken.get(k) ?? 0) + a.quantity);
          return { lineId: l.lineId, sku: l.sku, location: a.location, quantity: a.quantity, locationId: (ctx.projection.location(a.location) as { id: number }).id, skuId: (ctx.projection.sku(l.sku) as { id: number }).id };
        }),
      );
      groups.push({ ruleSet: { version, name: ruleSet.name }, result, allocations });
    }
    if (stale) {
      refreshed = true;
      attempt--;
      const skuIds = skuIdsOf(ctx, orders);
      await refreshPositions(ctx, skuIds);
      // Supply another process gave back (a cancelled backorder) may fill it now.
      if (channel.futureStock) await reloadSupply(ctx.store.db, ctx.projection, skuIds);
      continue;
    }
    const all = groups.flatMap((g) => g.allocations);
    // Backorders hold the incoming supply they are promised on (src/inventory/supply.ts), per group.
    const backorders: SupplyRequest[][] = groups.map((g) =>
      g.result.plan.lines.flatMap((l) =>
        l.backorders.map((b) => ({ lineId: l.lineId, locationId: (ctx.projection.location(b.location) as { id: number }).id, skuId: (ctx.projection.sku(l.sku) as { id: number }).id, quantity: b.quantity, promiseDay: Date.parse(`${b.promiseDate}T00:00:00Z`) })),
      ),
    );
    const backorderSkus = [...new Set(backorders.flat().map((b) => b.skuId))];
    const shipFrom = groups.flatMap((g) => g.result.plan.shipments.filter((s) => !s.backorder).map((s) => (ctx.projection.location(s.location) as { id: number }).id));
    const reserveOpts = { buffer: channel.buffer, channelId: channel.id, reference: opts.reference };
    /** The groups with each allocation's reservation (reservations come in allocation order). */
    const withReservations = (reservations: Reservation[]) => {
      let i = 0;
      return groups.map((g) => ({ ...g, allocations: g.allocations.map((a) => ({ ...a, reservation: reservations[i++] })), supply: [] as SupplyHold[] }));
    };
    // Captures in flight in this process plan around these units until this one commits or fails.
    ctx.projection.hold(all);
    let holding = true;
    const unhold = () => {
      if (holding) ctx.projection.unhold(all);
      holding = false;
    };
    try {
      const rows: PositionRow[] = [];
      let out: { groups: ReturnType<typeof withReservations>; persisted: T };
      const writer = ctx.store.writer?.alive ? ctx.store.writer : undefined;
      if ((ctx.store.dialect === 'postgres' || writer) && !opts.persist && !opts.beforeReserve && all.length && !backorderSkus.length) {
        // The reservation UPDATE leads every insert, and nothing is written unless every
        // position had the stock: PostgreSQL's one statement (WriteBatch.flushGuarded), or one
        // unit of SQLite's writer thread, off the event loop (WriteBatch.flushToWriter).
        const batch = new WriteBatch();
        const { lead, reservations } = reserveInBatch(ctx, all, reserveOpts, batch);
        const withRes = withReservations(reservations);
        countShipmentsTo(batch, shipFrom, isoDay(now));
        const persisted = opts.collect ? await opts.collect(withRes, batch) : (undefined as T);
        const group = ctx.store.captureGroup;
        rows.push(...(await (writer ? batch.flushToWriter<PositionRow>(writer, lead) : group ? batch.flushGrouped<PositionRow>(group, lead) : batch.flushGuarded<PositionRow>(ctx.store.db, lead))));
        out = { groups: withRes, persisted };
      } else {
        // Group commit on SQLite: concurrent captures share one COMMIT (src/db/group-commit.ts).
        out = await ctx.store.transact(async (trx) => {
          // Every insert of the capture (reservations, events, capacity, and what persist adds)
          // is written at the end in one go: one round trip on PostgreSQL.
          const batch = new WriteBatch();
          if (opts.beforeReserve) await opts.beforeReserve(trx);
          const reserved = all.length ? await reserveAll(ctx, trx, all, reserveOpts, batch) : { rows: [], reservations: [] };
          if (!reserved) throw new LostRace(all.map((x) => x.skuId));
          rows.push(...reserved.rows);
          const withRes = withReservations(reserved.reservations);
          if (backorderSkus.length) {
            // Taken like stock: incoming units another order took meanwhile are a lost race too.
            const held = await allocateSupply(trx, ctx.store.dialect, backorders.flat(), { reference: opts.reference, now }, batch);
            if (!held) throw new LostRace(backorderSkus);
            // Holds come back per request, in request order: hand each group its own.
            let k = 0;
            backorders.forEach((reqs, gi) => {
              for (const end = k + reqs.length; k < end; k++) withRes[gi].supply.push(...held[k]);
            });
          }
          await countShipments(trx, shipFrom, isoDay(now), ctx.store.dialect, batch);
          const persisted = opts.persist ? await opts.persist(trx, withRes, batch) : opts.collect ? await opts.collect(withRes, batch) : (undefined as T);
          await batch.flush(trx, ctx.store.dialect);
          return { groups: withRes, persisted };
        });
      }
      // The committed rows replace the holds in one synchronous step: no plan counts the units twice or misses them.
      unhold();
      ctx.projection.applyAll(rows);
      ctx.sourcing.capacity.record(shipFrom, now);
      if (backorderSkus.length) await reloadSupply(ctx.store.db, ctx.projection, backorderSkus);
      return { groups: out.groups, attempts: attempt, persisted: out.persisted };
    } catch (e) {
      unhold();
      // A PostgreSQL deadlock (40P01) rolled the transaction back like a lost race: try again.
      // So did the one-statement capture's guard (LOST_RACE_SQLSTATE): a position lacked the stock.
      // SQLite's writer thread stopped with the unit in flight (WRITER_STOPPED): it may or may not
      // have committed; the next attempt writes on the main connection, and a `collect` batch
      // written twice fails on its unique key (capture: the order's reference), so the caller
      // finds what was stored. The positions are read again either way.
      const code = (e as { code?: unknown }).code;
      const retry = code === '40P01' || code === LOST_RACE_SQLSTATE || code === WRITER_STOPPED;
      if (!(e instanceof LostRace) && !retry) throw e;
      refreshed = true;
      const lost = e instanceof LostRace ? e.skuIds : [...all.map((a) => a.skuId), ...backorderSkus];
      await refreshPositions(ctx, lost);
      if (channel.futureStock) await reloadSupply(ctx.store.db, ctx.projection, lost);
    }
  }
  throw outOfStock(last as SourcingResult, `stock kept changing under ${max} attempts to reserve it`);
}

const skuIdsOf = (ctx: Ctx, orders: SourcingOrder[]): number[] =>
  [...new Set(orders.flatMap((o) => o.lines.map((l) => l.sku)))].map((code) => ctx.projection.sku(code)?.id).filter((id): id is number => id !== undefined);

/** Takes units already promised to an earlier group of the same order out of a pool. */
function deduct(pool: CandidatePool, taken: Map<string, number>): void {
  const P = pool.columns.size;
  pool.locations.forEach((loc, row) => {
    for (const [sku, col] of pool.columns) {
      const t = taken.get(`${loc.code}\u0000${sku}`);
      if (t) pool.available[row * P + col] = Math.max(0, pool.available[row * P + col] - t);
    }
  });
}

/** Re-reads the positions of these skus into the projection (after losing a race). */
async function refreshPositions(ctx: Ctx, skuIds: number[]): Promise<void> {
  const ids = [...new Set(skuIds)];
  const rows = await ctx.store.db
    .selectFrom('stock_positions')
    .select(['location_id', 'sku_id', 'on_hand', 'reserved', 'quarantine', 'safety_stock', 'version'])
    .where('sku_id', 'in', ids)
    .execute();
  ctx.projection.applyAll(rows);
}

function outOfStock(result: SourcingResult, why?: string): AppError {
  const lines = result.plan.lines
    .filter((l) => l.unfilled > 0)
    .map((l) => ({ line_id: l.lineId, sku: l.sku, requested: l.quantity, unfilled: l.unfilled, fillable: l.quantity - l.unfilled }));
  const first = lines[0];
  const message = why
    ? `The order cannot be reserved: ${why}`
    : `Not enough stock to source the order: ${lines.map((l) => `${l.unfilled} of ${l.requested} × ${l.sku}`).join(', ')} cannot be filled`;
  return new AppError('out_of_stock', first ? message : `The order cannot be reserved: ${why ?? 'unknown reason'}`, { lines });
}

// ---- simulation --------------------------------------------------------------------------

export interface SimulationOrderInput extends SourcingRequest {
  reference?: string;
}

export type RuleSetChoice = { label: string; version: number | 'published' } | { label: string; ruleSet: RuleSet };

export interface SimulationOutcome {
  stockAsOf: number;
  durationMs: number;
  ruleSets: Array<{ label: string; version: number | null; name: string; metrics: SimulationResult['ruleSets'][number]['metrics'] }>;
  perOrder: SimulationResult['perOrder'];
  /** Orders that could not be read (unknown sku, channel, location): skipped, each with why. */
  rejected: Array<{ index: number; reference: string; code: string; message: string }>;
}

/**
 * Replays orders against rule sets on one stock picture, taken synchronously from the
 * projection (consistent: no update lands while it is copied). Changes nothing.
 */
export async function simulateRuleSets(ctx: Ctx, inputs: SimulationOrderInput[], choices: RuleSetChoice[]): Promise<SimulationOutcome> {
  const sets: Array<{ label: string; version: number | null; rules: RuleSet }> = [];
  for (const c of choices) {
    if ('ruleSet' in c) sets.push({ label: c.label, version: null, rules: assertValidRuleSet(c.ruleSet) });
    else {
      const r = await rulesFor(ctx, c.version === 'published' ? undefined : c.version);
      sets.push({ label: c.label, version: r.version, rules: r.ruleSet });
    }
  }
  const used = await ctx.sourcing.capacity.today(ctx);
  const started = performance.now();
  const now = ctx.clock.now();
  const orders: SimulatedOrder[] = [];
  const rejected: SimulationOutcome['rejected'] = [];
  inputs.forEach((o, index) => {
    const reference = o.reference ?? `#${index + 1}`;
    try {
      orders.push({ reference, order: buildOrder(ctx, o) });
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
      rejected.push({ index, reference, code: e.code, message: e.message });
    }
  });
  const skusByChannel = new Map<string, Set<string>>();
  for (const o of orders) {
    const set = skusByChannel.get(o.order.channel) ?? new Set<string>();
    for (const l of o.order.lines) set.add(l.sku);
    skusByChannel.set(o.order.channel, set);
  }
  const stock = new Map([...skusByChannel].map(([ch, skus]) => [ch, loadCandidates(ctx, ch, [...skus], used, now)]));
  const result = simulate(orders, stock, sets.map((s) => ({ label: s.label, rules: s.rules })), now, ctx.sourcing.carriers);
  return {
    stockAsOf: now,
    durationMs: performance.now() - started,
    ruleSets: result.ruleSets.map((r, i) => ({ label: r.label, version: sets[i].version, name: r.name, metrics: r.metrics })),
    perOrder: result.perOrder,
    rejected,
  };
}
