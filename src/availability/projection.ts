// The in-memory availability projection. Storefronts ask for stock hundreds of times per
// order, so ATP reads are served from here, never from SQL. It is fed by the same
// transactions that change stock (apply* after commit) and, across processes, by the
// outbox follower. Every position carries its row version, so replays and out-of-order
// updates are harmless. The database stays the truth for reservations: a stale read here
// can only make a later reservation fail cleanly.
import { execRaw } from '../db/bulk.ts';
import { ARRAY_ROWS, type Db, type Dialect } from '../db/database.ts';
import { type ChannelRules, type LocationFacts, channelAvailable, exposes, type SupplyLine } from './atp.ts';

export interface PositionRow {
  location_id: number;
  sku_id: number;
  on_hand: number;
  reserved: number;
  quarantine: number;
  safety_stock: number | null;
  version: number;
}

export interface SkuMeta {
  id: number;
  code: string;
  backorderable: boolean;
  /** What sourcing rules select on, and what carriers price. */
  demandClass: string | null;
  tags: string[];
  weightG: number | null;
}

export const SKU_META_COLUMNS = ['id', 'code', 'backorderable', 'demand_class', 'tags', 'weight_g'] as const;

export function toSkuMeta(r: { id: number; code: string; backorderable: number; demand_class: string | null; tags: string; weight_g: number | null }): SkuMeta {
  return { id: r.id, code: r.code, backorderable: r.backorderable === 1, demandClass: r.demand_class, tags: JSON.parse(r.tags) as string[], weightG: r.weight_g };
}

class SkuStock {
  n = 0;
  locIds = new Int32Array(4);
  onHand = new Int32Array(4);
  reserved = new Int32Array(4);
  quarantine = new Int32Array(4);
  /** -1 means "use the location's default". */
  safety = new Int32Array(4);
  version = new Int32Array(4);
  /** Units this process's captures in flight are reserving (not committed yet): sourcing plans around them. */
  held = new Int32Array(4);

  slot(locationId: number): number {
    let lo = 0;
    let hi = this.n - 1;
    const ids = this.locIds;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = ids[mid];
      if (v === locationId) return mid;
      if (v < locationId) lo = mid + 1;
      else hi = mid - 1;
    }
    return -(lo + 1);
  }

  insertAt(at: number, locationId: number): void {
    if (this.n === this.locIds.length) this.grow();
    for (const arr of [this.locIds, this.onHand, this.reserved, this.quarantine, this.safety, this.version, this.held]) {
      arr.copyWithin(at + 1, at, this.n);
    }
    this.locIds[at] = locationId;
    this.version[at] = 0;
    this.held[at] = 0;
    this.n++;
  }

  private grow(): void {
    const cap = this.locIds.length * 2;
    const g = (a: Int32Array) => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    this.locIds = g(this.locIds);
    this.onHand = g(this.onHand);
    this.reserved = g(this.reserved);
    this.quarantine = g(this.quarantine);
    this.safety = g(this.safety);
    this.version = g(this.version);
    this.held = g(this.held);
  }
}

interface ChannelView {
  rules: ChannelRules;
  /** exposed[locationId] = 1 when the channel sees that location. */
  exposed: Uint8Array;
}

export interface LocationAvailability {
  location: LocationFacts;
  onHand: number;
  reserved: number;
  quarantine: number;
  safetyStock: number;
  sellable: number;
  available: number;
}

/** Zeros read in place of `held` when a plan ignores holds (grown as needed, never written). */
let NO_HOLDS = new Int32Array(1024);

export class StockProjection {
  private locations: (LocationFacts | undefined)[] = [];
  private locationByCode = new Map<string, LocationFacts>();
  /** Each location's default safety stock, by location id (the hot loop reads no objects). */
  private defaultSafety = new Int32Array(0);
  private channels = new Map<string, ChannelView>();
  private skusByCode = new Map<string, SkuMeta>();
  private skusById = new Map<number, SkuMeta>();
  private stock = new Map<number, SkuStock>();
  private supply = new Map<number, SupplyLine[]>();
  loaded = false;
  /** Units held by captures in flight, every position together (`hold`). */
  heldUnits = 0;
  /** Bumped whenever locations or channels change: caches of derived reference data key on it. */
  refVersion = 0;

  // ---- reference data -------------------------------------------------------------
  setLocation(loc: LocationFacts): void {
    this.refVersion++;
    const prev = this.locations[loc.id];
    if (prev) this.locationByCode.delete(prev.code);
    this.locations[loc.id] = loc;
    this.locationByCode.set(loc.code, loc);
    if (loc.id >= this.defaultSafety.length) {
      const grown = new Int32Array(Math.max(loc.id + 1, this.defaultSafety.length * 2));
      grown.set(this.defaultSafety);
      this.defaultSafety = grown;
    }
    this.defaultSafety[loc.id] = loc.defaultSafetyStock;
    for (const view of this.channels.values()) this.refreshMask(view);
  }
  location(code: string): LocationFacts | undefined {
    return this.locationByCode.get(code);
  }
  locationById(id: number): LocationFacts | undefined {
    return this.locations[id];
  }
  allLocations(): LocationFacts[] {
    return this.locations.filter((l): l is LocationFacts => l !== undefined);
  }

  setChannel(rules: ChannelRules): void {
    this.refVersion++;
    for (const [code, v] of this.channels) if (v.rules.id === rules.id) this.channels.delete(code);
    const view: ChannelView = { rules, exposed: new Uint8Array(0) };
    this.refreshMask(view);
    this.channels.set(rules.code, view);
  }
  channel(code: string): ChannelRules | undefined {
    return this.channels.get(code)?.rules;
  }
  allChannels(): ChannelRules[] {
    return [...this.channels.values()].map((v) => v.rules);
  }
  isExposed(channelCode: string, locationId: number): boolean {
    return this.channels.get(channelCode)?.exposed[locationId] === 1;
  }
  private refreshMask(view: ChannelView): void {
    const mask = new Uint8Array(this.locations.length + 1);
    for (const loc of this.locations) if (loc && exposes(view.rules, loc)) mask[loc.id] = 1;
    view.exposed = mask;
  }

  setSku(meta: SkuMeta): void {
    const prev = this.skusById.get(meta.id);
    if (prev) this.skusByCode.delete(prev.code);
    this.skusByCode.set(meta.code, meta);
    this.skusById.set(meta.id, meta);
  }
  sku(code: string): SkuMeta | undefined {
    return this.skusByCode.get(code);
  }
  skuById(id: number): SkuMeta | undefined {
    return this.skusById.get(id);
  }

  setSupply(skuId: number, lines: SupplyLine[]): void {
    if (lines.length === 0) this.supply.delete(skuId);
    else this.supply.set(skuId, lines);
  }
  supplyOf(skuId: number): SupplyLine[] {
    return this.supply.get(skuId) ?? [];
  }

  // ---- stock ------------------------------------------------------------------------
  /** Applies a committed row unless a newer version of it is already here. */
  apply(row: PositionRow): void {
    this.applyValues(row.location_id, row.sku_id, row.on_hand, row.reserved, row.quarantine, row.safety_stock, row.version);
  }

  applyValues(locationId: number, skuId: number, onHand: number, reserved: number, quarantine: number, safetyStock: number | null, version: number): void {
    let s = this.stock.get(skuId);
    if (!s) {
      s = new SkuStock();
      this.stock.set(skuId, s);
    }
    let i = s.slot(locationId);
    if (i < 0) {
      i = -i - 1;
      s.insertAt(i, locationId);
    } else if (s.version[i] >= version) {
      return;
    }
    s.onHand[i] = onHand;
    s.reserved[i] = reserved;
    s.quarantine[i] = quarantine;
    s.safety[i] = safetyStock ?? -1;
    s.version[i] = version;
  }

  applyAll(rows: Iterable<PositionRow>): void {
    for (const r of rows) this.apply(r);
  }

  /** Network total for one sku and one channel: the hot path of the availability API. */
  total(skuId: number, channelCode: string): number {
    const view = this.channels.get(channelCode);
    const s = this.stock.get(skuId);
    if (!view || !s) return 0;
    const { exposed, rules } = view;
    const defaults = this.defaultSafety;
    const { locIds, onHand, reserved, quarantine, safety } = s;
    const plain = rules.buffer === 0 && rules.capPercent === null;
    let total = 0;
    for (let i = 0; i < s.n; i++) {
      const locId = locIds[i];
      if (exposed[locId] !== 1) continue;
      const sell = onHand[i] - reserved[i] - quarantine[i] - (safety[i] >= 0 ? safety[i] : defaults[locId]);
      if (sell > 0) total += plain ? sell : channelAvailable(sell, rules);
    }
    return total;
  }

  /** Per-location breakdown for one sku and channel (exposed locations holding a position). */
  perLocation(skuId: number, channelCode: string): LocationAvailability[] {
    const view = this.channels.get(channelCode);
    const s = this.stock.get(skuId);
    if (!view || !s) return [];
    const out: LocationAvailability[] = [];
    for (let i = 0; i < s.n; i++) {
      const locId = s.locIds[i];
      if (view.exposed[locId] !== 1) continue;
      const location = this.locations[locId] as LocationFacts;
      const safetyStock = s.safety[i] >= 0 ? s.safety[i] : location.defaultSafetyStock;
      const raw = s.onHand[i] - s.reserved[i] - s.quarantine[i] - safetyStock;
      const sell = raw > 0 ? raw : 0;
      out.push({
        location,
        onHand: s.onHand[i],
        reserved: s.reserved[i],
        quarantine: s.quarantine[i],
        safetyStock,
        sellable: sell,
        available: channelAvailable(sell, view.rules),
      });
    }
    return out;
  }

  /**
   * Marks units as being reserved by a capture of this process that has not committed yet.
   * Sourcing (fillAvailable) plans around them, so concurrent captures in this process do not
   * all pick the last units of a position and lose the race at the conditional UPDATE; what the
   * availability API and the published figures show stays the committed stock. Every hold is
   * given back with `unhold`, in the same synchronous step as the committed rows are applied
   * (or when the capture fails).
   */
  hold(requests: ReadonlyArray<{ locationId: number; skuId: number; quantity: number }>): void {
    for (const r of requests) this.addHeld(r.locationId, r.skuId, r.quantity);
  }

  unhold(requests: ReadonlyArray<{ locationId: number; skuId: number; quantity: number }>): void {
    // Given back only as far as it is still there (a reload in between cleared it).
    for (const r of requests) this.addHeld(r.locationId, r.skuId, -r.quantity);
  }

  private addHeld(locationId: number, skuId: number, delta: number): void {
    const s = this.stock.get(skuId);
    const i = s ? s.slot(locationId) : -1;
    if (!s || i < 0) return;
    const q = Math.max(delta, -s.held[i]);
    s.held[i] += q;
    this.heldUnits += q;
  }

  /** Units held by captures in flight at one position (tests and diagnosis). */
  heldAt(locationId: number, skuId: number): number {
    const s = this.stock.get(skuId);
    const i = s ? s.slot(locationId) : -1;
    return s && i >= 0 ? s.held[i] : 0;
  }

  /**
   * Writes what the channel may promise of one sku into column `col` of a row-major table:
   * out[rowOf[locationId] * stride + col] for every exposed location with a row (rowOf ≥ 0),
   * less what captures in flight hold (`hold`).
   */
  fillAvailable(skuId: number, channelCode: string, rowOf: Int32Array, out: Int32Array, stride: number, col: number, withHolds = true): void {
    const view = this.channels.get(channelCode);
    const s = this.stock.get(skuId);
    if (!view || !s) return;
    const { exposed, rules } = view;
    const plain = rules.buffer === 0 && rules.capPercent === null;
    const defaults = this.defaultSafety;
    const { locIds, onHand, reserved, quarantine, safety } = s;
    // Without holds, a zero-filled array of the same length stands in (the loop stays one shape).
    const held = withHolds ? s.held : NO_HOLDS.length >= s.n ? NO_HOLDS : (NO_HOLDS = new Int32Array(s.held.length));
    for (let i = 0; i < s.n; i++) {
      const locId = locIds[i];
      if (exposed[locId] !== 1 || locId >= rowOf.length) continue;
      const row = rowOf[locId];
      if (row < 0) continue;
      const sell = onHand[i] - reserved[i] - held[i] - quarantine[i] - (safety[i] >= 0 ? safety[i] : defaults[locId]);
      if (sell <= 0) continue;
      out[row * stride + col] = plain ? sell : channelAvailable(sell, rules);
    }
  }

  positionCount(): number {
    let n = 0;
    for (const s of this.stock.values()) n += s.n;
    return n;
  }

  clear(): void {
    this.locations = [];
    this.locationByCode.clear();
    this.defaultSafety = new Int32Array(0);
    this.channels.clear();
    this.skusByCode.clear();
    this.skusById.clear();
    this.stock.clear();
    this.supply.clear();
    this.heldUnits = 0;
    this.loaded = false;
    this.refVersion++;
  }
}

/** Loads everything from the database; positions are read in keyset pages to bound memory. */
export async function loadProjection(db: Db, dialect: Dialect, projection: StockProjection, toFacts: {
  location: (row: Awaited<ReturnType<typeof selectLocations>>[number]) => LocationFacts;
  channel: (row: Awaited<ReturnType<typeof selectChannels>>[number]) => ChannelRules;
}, opts: { positions?: boolean } = {}): Promise<void> {
  projection.clear();
  for (const row of await selectLocations(db)) projection.setLocation(toFacts.location(row));
  for (const row of await selectChannels(db)) projection.setChannel(toFacts.channel(row));
  let lastSku = 0;
  for (;;) {
    const skus = await db.selectFrom('skus').select(SKU_META_COLUMNS).where('id', '>', lastSku).orderBy('id').limit(50_000).execute();
    if (skus.length === 0) break;
    for (const s of skus) projection.setSku(toSkuMeta(s));
    lastSku = skus[skus.length - 1].id;
  }
  if (opts.positions === false) {
    await reloadSupply(db, projection);
    projection.loaded = true;
    return;
  }
  // Keyset pages over the primary key (a row-value comparison, so both databases seek the
  // index instead of filtering from its start); rows come as arrays on SQLite.
  const pg = dialect === 'postgres';
  const text = `${ARRAY_ROWS}select location_id, sku_id, on_hand, reserved, quarantine, safety_stock, version from stock_positions
    where (location_id, sku_id) > (${pg ? '$1, $2' : '?, ?'})
    order by location_id, sku_id limit 100000`;
  let cursor: [number, number] = [0, 0];
  for (;;) {
    const rows = await execRaw<unknown>(db, text, [cursor[0], cursor[1]]);
    if (rows.length === 0) break;
    for (const r of rows) {
      if (Array.isArray(r)) projection.applyValues(r[0], r[1], r[2], r[3], r[4], r[5], r[6]);
      else projection.apply(r as PositionRow);
    }
    const last = rows[rows.length - 1];
    cursor = Array.isArray(last) ? [last[0], last[1]] : [(last as PositionRow).location_id, (last as PositionRow).sku_id];
  }
  await reloadSupply(db, projection);
  projection.loaded = true;
}

/** Incoming supply free to promise: what is still to come, less what backorders already hold of it. */
export async function reloadSupply(db: Db, projection: StockProjection, skuIds?: number[]): Promise<void> {
  let q = db
    .selectFrom('incoming_supply')
    .select(['sku_id', 'location_id', 'quantity', 'received_quantity', 'allocated', 'expected_at'])
    .where('status', '=', 'open');
  if (skuIds) {
    if (skuIds.length === 0) return;
    q = q.where('sku_id', 'in', skuIds);
  }
  const rows = await q.execute();
  const bySku = new Map<number, SupplyLine[]>();
  for (const id of skuIds ?? []) bySku.set(id, []);
  for (const r of rows) {
    const list = bySku.get(r.sku_id) ?? [];
    list.push({ locationId: r.location_id, quantity: r.quantity - r.received_quantity - r.allocated, expectedAt: r.expected_at });
    bySku.set(r.sku_id, list);
  }
  for (const [skuId, lines] of bySku) projection.setSupply(skuId, lines);
}

const selectLocations = (db: Db) => db.selectFrom('locations').selectAll().execute();
const selectChannels = (db: Db) => db.selectFrom('channels').selectAll().execute();
