// Builds the benchmark network: L locations × S skus, every position held (5M for the full
// run). Locations, skus and the channel go through the service functions, so their rows,
// events and projection facts are exactly what the OMS would write; the positions and
// their ledger are written set-based (INSERT … SELECT over locations × skus), one
// 'snapshot' movement per position with on_hand_change = on_hand, so the integrity
// invariant on_hand = SUM(on_hand_change) holds from the start.
//
// Standalone: npx tsx bench/generate.ts [--quick] [--backend sqlite|postgres] [--locations N] [--skus N]
import { pathToFileURL } from 'node:url';
import { upsertChannel } from '../src/channels/channels.ts';
import type { Store } from '../src/db/database.ts';
import { upsertLocation, type LocationInput } from '../src/inventory/locations.ts';
import { upsertSkus, type SkuInput } from '../src/inventory/skus.ts';
import { openContext } from '../src/runtime.ts';
import { systemClock } from '../src/shared/clock.ts';
import { type Backend, createBackend } from './backend.ts';
import { log } from './report.ts';

export interface NetworkSpec {
  locations: number;
  skus: number;
  /** The first `warehouses` locations are warehouses, the rest stores. */
  warehouses: number;
}

export const FULL_NETWORK: NetworkSpec = { locations: 1000, skus: 5000, warehouses: 20 };
export const QUICK_NETWORK: NetworkSpec = { locations: 100, skus: 2000, warehouses: 5 };

export interface Network {
  spec: NetworkSpec;
  locations: { id: number; code: string }[];
  skus: { id: number; code: string }[];
  positions: number;
  /** baseline_as_of of every generated position (and snapshot_as_of of every location). */
  asOf: number;
  seconds: { reference: number; positions: number; total: number };
}

/** The channel every figure reads: sees every location, no buffer, no cap. */
export const CHANNEL = 'web';

export const locationCode = (i: number) => `BL${String(i + 1).padStart(5, '0')}`;
export const skuCode = (i: number) => `BS${String(i + 1).padStart(6, '0')}`;

/** Positions per INSERT … SELECT statement (whole locations). */
const POSITIONS_PER_STATEMENT = 250_000;

export async function generateNetwork(backend: Backend, spec: NetworkSpec): Promise<Network> {
  const t0 = performance.now();
  const store: Store = backend.openStore();
  const ctx = await openContext({ dataDir: '/tmp', poolSize: backend.poolSize }, systemClock, store);
  try {
    const existing = await store.db.selectFrom('locations').select('id').limit(1).execute();
    if (existing.length) throw new Error('the bench database is not empty');

    // Reference data through the service functions (one transaction per location, one for the skus).
    for (let i = 0; i < spec.locations; i++) await upsertLocation(ctx, locationInput(i, spec));
    const skuInputs: SkuInput[] = Array.from({ length: spec.skus }, (_, i) => ({
      code: skuCode(i),
      name: `Bench sku ${i + 1}`,
      weightG: 200 + (i % 800),
      demandClass: i % 5 === 0 ? 'A' : i % 5 < 3 ? 'B' : 'C',
      tags: ['bench'],
    }));
    const skus = (await upsertSkus(ctx, skuInputs)).map((s) => ({ id: s.id, code: s.code }));
    await upsertChannel(ctx, { code: CHANNEL, name: 'Web shop (bench)', type: 'web', locationTypes: ['warehouse', 'store'] });
    const locations = Array.from({ length: spec.locations }, (_, i) => {
      const l = ctx.projection.location(locationCode(i));
      if (!l) throw new Error(`location ${locationCode(i)} missing after upsert`);
      return { id: l.id, code: l.code };
    });
    const t1 = performance.now();

    // Positions and their ledger, set-based, a range of whole locations per statement.
    const now = Date.now();
    const asOf = now - 86_400_000;
    const pg = backend.name === 'postgres';
    const ph = (n: number) => (pg ? `$${n}` : '?');
    const positionsSql = `insert into stock_positions (location_id, sku_id, on_hand, reserved, quarantine, safety_stock, baseline_as_of, last_seq, version, updated_at)
      select l.id, s.id, (l.id * 7 + s.id * 13) % 41, 0, 0, case when (l.id + s.id) % 17 = 0 then 2 else null end, ${ph(1)}, null, 1, ${ph(2)}
      from locations l cross join skus s where l.id >= ${ph(3)} and l.id <= ${ph(4)} order by l.id, s.id`;
    const ledgerSql = `insert into stock_movements (location_id, sku_id, kind, quantity, on_hand_change, quarantine_change, occurred_at, recorded_at, source)
      select location_id, sku_id, 'snapshot', on_hand, on_hand, 0, ${ph(1)}, ${ph(2)}, 'bench:generate'
      from stock_positions where location_id >= ${ph(3)} and location_id <= ${ph(4)} order by location_id, sku_id`;
    const ids = locations.map((l) => l.id).sort((a, b) => a - b);
    const perStatement = Math.max(1, Math.floor(POSITIONS_PER_STATEMENT / spec.skus));
    const written = await backend.bulkLoad(['stock_positions', 'stock_movements'], async (exec) => {
      let n = 0;
      for (let i = 0; i < ids.length; i += perStatement) {
        const lo = ids[i];
        const hi = ids[Math.min(ids.length, i + perStatement) - 1];
        await exec(pg ? 'begin' : 'begin immediate');
        await exec(positionsSql, [asOf, now, lo, hi]);
        await exec(ledgerSql, [asOf, now, lo, hi]);
        await exec('commit');
        n += (Math.min(ids.length, i + perStatement) - i) * spec.skus;
        if ((i / perStatement) % 4 === 3) log(`  ${n.toLocaleString('en')} positions…`);
      }
      await exec(`update locations set snapshot_as_of = ${ph(1)}`, [asOf]);
      log('  rebuilding indexes…');
      return n;
    });
    const t2 = performance.now();
    return {
      spec,
      locations,
      skus,
      positions: written,
      asOf,
      seconds: { reference: (t1 - t0) / 1000, positions: (t2 - t1) / 1000, total: (t2 - t0) / 1000 },
    };
  } finally {
    await store.close();
  }
}

function locationInput(i: number, spec: NetworkSpec): LocationInput {
  const warehouse = i < spec.warehouses;
  // Spread over mainland France, deterministic.
  const lat = 43 + ((i * 0.618034) % 1) * 7;
  const lng = -1 + ((i * 0.414214) % 1) * 8;
  return {
    code: locationCode(i),
    name: `${warehouse ? 'Warehouse' : 'Store'} ${i + 1}`,
    type: warehouse ? 'warehouse' : 'store',
    country: 'FR',
    city: `City ${i + 1}`,
    latitude: Math.round(lat * 1e4) / 1e4,
    longitude: Math.round(lng * 1e4) / 1e4,
    tags: warehouse ? ['central'] : ['city'],
    capabilities: warehouse ? ['ships', 'accepts_returns'] : ['ships', 'click_and_collect', 'order_in_store', 'accepts_returns'],
    dailyCapacity: warehouse ? 20_000 : 60,
    priority: warehouse ? 100 : 50,
    shipmentCost: warehouse ? 390 : 690,
    defaultSafetyStock: 0,
  };
}

// ---- standalone ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const base = args.includes('--quick') ? QUICK_NETWORK : FULL_NETWORK;
  const spec: NetworkSpec = { ...base, locations: Number(arg('--locations') ?? base.locations), skus: Number(arg('--skus') ?? base.skus) };
  const name = (arg('--backend') ?? 'sqlite') as 'sqlite' | 'postgres';
  const backend = await createBackend(name, { pgUrl: process.env.OMS_BENCH_DATABASE_URL, poolSize: 10 });
  try {
    log(`generating ${spec.locations} × ${spec.skus} on ${backend.describe}`);
    const net = await generateNetwork(backend, spec);
    log(`generated ${net.positions.toLocaleString('en')} positions in ${net.seconds.total.toFixed(1)} s (reference data ${net.seconds.reference.toFixed(1)} s, positions + ledger ${net.seconds.positions.toFixed(1)} s)`);
    const t = performance.now();
    const ctx = await openContext({ databaseUrl: backend.databaseUrl, dataDir: '/tmp', poolSize: backend.poolSize });
    log(`projection loaded: ${ctx.projection.positionCount().toLocaleString('en')} positions in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    await ctx.store.close();
  } finally {
    await backend.drop();
  }
}

// Run as a script (not when bundled into another entry: the bundle's URL is its entry's too).
if (process.argv[1] && /[\\/]generate\.[cm]?[jt]s$/.test(process.argv[1]) && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
