// The figures. Each measures the OMS and, in the same run, its raw ceiling: the same work
// done straight on the driver (better-sqlite3 / pg), without the OMS.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { importStockCsv } from '../src/inventory/import.ts';
import type { Runtime } from '../src/runtime.ts';
import type { Backend, RawDriver } from './backend.ts';
import { CHANNEL, type Network } from './generate.ts';
import { type LoadResult, type LoadSpec, runLoad } from './load.ts';
import { type Figure, log, ratio, round, sleep, summarise, tidy, withPeakRss } from './report.ts';

export interface FigureContext {
  backend: Backend;
  net: Network;
  rt: Runtime;
  raw: RawDriver;
  /** http://127.0.0.1:<port> of the OMS. */
  address: string;
  channelKey: string;
  feedKey: string;
  quick: boolean;
  connections: number;
  /** Seconds per measurement. */
  duration: number;
  /** Seconds of unrecorded load before each HTTP measurement. */
  warmup: number;
  /** OMS processes serving order.capture.http on PostgreSQL (--processes; this one and N−1 `oms serve`). */
  processes: number;
  /** Registers what to undo if the bench is interrupted (Ctrl-C); the function removes it again. */
  onInterrupt: (undo: () => Promise<void>) => () => void;
  common: { backend: Figure['backend']; quick: boolean; network: string; background: boolean };
}

const TARGETS = {
  atpHttp: { sqlite: { rps: 20_000, p99: 5 }, postgres: { rps: 8_000, p99: Number.POSITIVE_INFINITY } },
  snapshotSeconds: { sqlite: 5, postgres: 10 },
};

/** A warm-up run (not recorded), then the measured run. */
async function measure(spec: LoadSpec, warmup: number): Promise<LoadResult> {
  if (warmup > 0) await runLoad({ ...spec, duration: warmup });
  const r = await runLoad(spec);
  if (r.non2xx || r.errors || r.timeouts) log(`  ${spec.url}: ${r.non2xx} non-2xx (${JSON.stringify(r.statusCodes)}), ${r.errors} errors, ${r.timeouts} timeouts`);
  return r;
}

/** A bare Fastify server (no OMS) on 127.0.0.1 with the raw ceiling routes. */
async function ceilingServer(fx: FigureContext) {
  const app = Fastify({ logger: false });
  const ids = new Map(fx.net.skus.map((s) => [s.code, s.id]));
  app.get('/ping', async () => ({ ok: true }));
  app.get<{ Params: { sku: string }; Querystring: { channel?: string } }>('/availability/:sku', async (req, reply) => {
    const id = ids.get(req.params.sku);
    if (id === undefined) return reply.status(404).send({ error: 'unknown sku' });
    return { sku: req.params.sku, channel: req.query.channel ?? CHANNEL, available: await fx.raw.available(id) };
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, close: () => app.close() };
}

/** The OMS and the raw driver must agree, or the comparison means nothing. */
async function crossCheck(fx: FigureContext, count: number): Promise<string> {
  const step = Math.max(1, Math.floor(fx.net.skus.length / count));
  const bad: string[] = [];
  for (let i = 0; i < fx.net.skus.length && bad.length < 3; i += step) {
    const s = fx.net.skus[i];
    const oms = fx.rt.ctx.projection.total(s.id, CHANNEL);
    const raw = await fx.raw.available(s.id);
    if (oms !== raw) bad.push(`${s.code}: oms ${oms}, raw ${raw}`);
  }
  if (bad.length) log(`  WARNING: OMS and raw availability differ: ${bad.join('; ')}`);
  return bad.length ? `mismatch: ${bad.join('; ')}` : 'ok';
}

// ---- setup.load -----------------------------------------------------------------------

/** Projection load time (startRuntime → openContext → reload) next to a raw keyset scan of every position. */
export async function setupLoad(fx: FigureContext, loadSeconds: number): Promise<Figure> {
  const t = performance.now();
  const rows = await rawScanPositions(fx.backend);
  const ceiling = (performance.now() - t) / 1000;
  return {
    name: 'setup.load',
    ...fx.common,
    value: round(loadSeconds, 2),
    unit: 's',
    ceiling: round(ceiling, 2),
    ratio: ratio(loadSeconds, ceiling),
    positions: fx.rt.ctx.projection.positionCount(),
    ceiling_rows: rows,
    rss_mb: Math.round(process.memoryUsage.rss() / 2 ** 20),
    heap_used_mb: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
    note: 'value: startRuntime() until the projection is loaded; ceiling: raw keyset scan of stock_positions in pages of 100,000 rows',
  };
}

async function rawScanPositions(backend: Backend): Promise<number> {
  const cols = 'location_id, sku_id, on_hand, reserved, quarantine, safety_stock, version';
  let n = 0;
  if (backend.name === 'sqlite') {
    const { default: SQLite } = await import('better-sqlite3');
    const db = new SQLite(backend.databaseUrl.slice('sqlite:'.length), { readonly: true });
    try {
      const page = db.prepare(`select ${cols} from stock_positions where (location_id, sku_id) > (?, ?) order by location_id, sku_id limit 100000`).raw();
      let cursor = [0, 0];
      for (;;) {
        const rows = page.all(cursor[0], cursor[1]) as number[][];
        if (rows.length === 0) break;
        n += rows.length;
        const last = rows[rows.length - 1];
        cursor = [last[0], last[1]];
      }
    } finally {
      db.close();
    }
    return n;
  }
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: backend.databaseUrl });
  await c.connect();
  try {
    let cursor = [0, 0];
    for (;;) {
      const r = await c.query({
        name: 'bench_scan',
        text: `select ${cols} from stock_positions where (location_id, sku_id) > ($1, $2) order by location_id, sku_id limit 100000`,
        values: cursor,
        rowMode: 'array',
      });
      if (r.rows.length === 0) break;
      n += r.rows.length;
      const last = r.rows[r.rows.length - 1] as number[];
      cursor = [Number(last[0]), Number(last[1])];
    }
  } finally {
    await c.end();
  }
  return n;
}

// ---- atp.http -------------------------------------------------------------------------

export async function atpHttp(fx: FigureContext): Promise<Figure> {
  const check = await crossCheck(fx, 20);
  const skus = fx.net.skus.slice(0, 1000).map((s) => s.code);
  const paths = skus.map((c) => `/availability/${c}?channel=${CHANNEL}`);
  const base = { kind: 'get' as const, paths, connections: fx.connections, duration: fx.duration };
  const oms = await measure({ ...base, url: fx.address, headers: { authorization: `Bearer ${fx.channelKey}` } }, fx.warmup);
  const ceilingApp = await ceilingServer(fx);
  let ceiling: LoadResult;
  let bare: LoadResult;
  try {
    ceiling = await measure({ ...base, url: ceilingApp.url, headers: {} }, fx.warmup);
    bare = await measure({ ...base, paths: ['/ping'], url: ceilingApp.url, headers: {} }, fx.warmup);
  } finally {
    await ceilingApp.close();
  }
  const t = TARGETS.atpHttp[fx.backend.name];
  return {
    name: 'atp.http',
    ...fx.common,
    value: Math.round(oms.rps),
    unit: 'req/s',
    p50_ms: round(oms.p50),
    p99_ms: round(oms.p99),
    ceiling: Math.round(ceiling.rps),
    ceiling_p50_ms: round(ceiling.p50),
    ceiling_p99_ms: round(ceiling.p99),
    ratio: ratio(oms.rps, ceiling.rps),
    target: fx.backend.name === 'sqlite' ? `>= ${t.rps} req/s with p99 <= ${t.p99} ms` : `>= ${t.rps} req/s`,
    meets_target: !fx.quick ? oms.rps >= t.rps && oms.p99 <= t.p99 : undefined,
    bare_http_rps: Math.round(bare.rps),
    bare_http_p99_ms: round(bare.p99),
    requests: oms.ok,
    non2xx: oms.non2xx + oms.errors + oms.timeouts,
    connections: fx.connections,
    duration_s: round(oms.seconds, 2),
    skus_rotated: skus.length,
    locations_per_sku: fx.net.locations.length,
    consistency: check,
    ceiling_query: fx.raw.atpSql,
    note: 'ceiling: bare Fastify route doing one raw availability SUM per request on the driver; bare_http: the same server answering a constant',
  };
}

// ---- atp.batch ------------------------------------------------------------------------

export async function atpBatch(fx: FigureContext): Promise<Figure> {
  const skus = fx.net.skus.slice(0, 1000);
  const body = JSON.stringify({ channel: CHANNEL, skus: skus.map((s) => s.code) });
  // Agreement: the HTTP answer and the raw query give the same totals.
  const res = await fetch(`${fx.address}/availability/query`, { method: 'POST', headers: { authorization: `Bearer ${fx.channelKey}`, 'content-type': 'application/json' }, body });
  if (!res.ok) throw new Error(`POST /availability/query: ${res.status} ${await res.text()}`);
  const answer = (await res.json()) as { items: { sku: string; available: number }[] };
  const rawTotals = await fx.raw.availableMany(skus.map((s) => s.id));
  const byCode = new Map(skus.map((s) => [s.code, s.id]));
  const differ = answer.items.filter((i) => (rawTotals.get(byCode.get(i.sku) as number) ?? 0) !== i.available).length;
  if (differ) log(`  WARNING: ${differ} of ${skus.length} batch totals differ between the OMS and the raw query`);

  const oms = await measure({ kind: 'post', url: fx.address, path: '/availability/query', body, headers: { authorization: `Bearer ${fx.channelKey}` }, connections: 1, duration: fx.duration }, fx.warmup);

  // Ceiling: the same 1,000-sku sum, one raw SQL query per call, one call at a time.
  const ids = skus.map((s) => s.id);
  await fx.raw.availableMany(ids);
  const lat: number[] = [];
  const end = performance.now() + fx.duration * 1000;
  while (performance.now() < end || lat.length < 5) {
    const t = performance.now();
    await fx.raw.availableMany(ids);
    lat.push(performance.now() - t);
  }
  const c = summarise(lat);
  return {
    name: 'atp.batch',
    ...fx.common,
    value: round(oms.mean),
    unit: 'ms/call',
    p50_ms: round(oms.p50),
    p99_ms: round(oms.p99),
    ceiling: round(c.mean),
    ceiling_p50_ms: round(c.p50),
    ceiling_p99_ms: round(c.p99),
    ratio: ratio(oms.mean, c.mean),
    calls: oms.ok,
    ceiling_calls: c.n,
    skus_per_call: skus.length,
    positions_per_call: skus.length * fx.net.locations.length,
    consistency: differ ? `${differ} totals differ` : 'ok',
    note: 'lower is better; value: POST /availability/query with 1,000 skus, one call at a time over HTTP; ceiling: one raw grouped SUM over the same skus on the driver (no HTTP)',
  };
}

// ---- feed.delta -----------------------------------------------------------------------

export async function feedDelta(fx: FigureContext): Promise<Figure> {
  const locations = fx.net.locations.map((l) => l.code);
  const skus = fx.net.skus.map((s) => s.code);
  const runId = `${process.pid}-${Date.now().toString(36)}`;
  const spec = (prefix: string, duration: number, seed: number): LoadSpec => ({
    kind: 'deltas',
    url: fx.address,
    path: '/stock/deltas',
    headers: { authorization: `Bearer ${fx.feedKey}` },
    connections: fx.connections,
    duration,
    locations,
    skus,
    keyPrefix: `bench-${runId}-${prefix}`,
    seed,
  });
  if (fx.warmup > 0) await runLoad(spec('warm', fx.warmup, 7));
  const oms = await runLoad(spec('run', fx.duration, 11));
  if (oms.non2xx || oms.errors || oms.timeouts) log(`  deltas: ${oms.non2xx} non-2xx (${JSON.stringify(oms.statusCodes)}), ${oms.errors} errors, ${oms.timeouts} timeouts`);
  const drain = await drainDirty(fx, fx.quick ? 30 : 120);

  // Ceiling: single-row UPDATEs of the same kind of position, each its own transaction.
  // It touches updated_at only, so counters and ledger stay in agreement.
  let x = 12345;
  const L = fx.net.locations;
  const S = fx.net.skus;
  const pick = (): [number, number] => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const l = L[x % L.length].id;
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return [l, S[x % S.length].id];
  };
  await fx.raw.singleRowUpdates(Math.min(1, fx.warmup), fx.connections, pick);
  const c = await fx.raw.singleRowUpdates(fx.duration, fx.connections, pick);
  const ceiling = c.count / c.seconds;
  return {
    name: 'feed.delta',
    ...fx.common,
    value: Math.round(oms.rps),
    unit: 'deltas/s',
    p50_ms: round(oms.p50),
    p99_ms: round(oms.p99),
    ceiling: Math.round(ceiling),
    ceiling_p50_ms: round(c.p50),
    ceiling_p99_ms: round(c.p99),
    ratio: ratio(oms.rps, ceiling),
    requests: oms.ok,
    non2xx: oms.non2xx + oms.errors + oms.timeouts,
    connections: fx.connections,
    duration_s: round(oms.seconds, 2),
    dirty_drain_s: drain,
    note: 'value: POST /stock/deltas, one delta per request, unique idempotency keys, random positions; ceiling: raw single-row UPDATE per statement (autocommit) on the driver, no HTTP',
  };
}

async function dirtyCount(fx: FigureContext): Promise<number> {
  const r = await fx.rt.ctx.store.db.selectFrom('availability_dirty').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Waits until the availability debouncer has consumed every dirty mark; returns the seconds waited. */
async function drainDirty(fx: FigureContext, maxSeconds: number): Promise<number | null> {
  if (!fx.common.background) return null;
  const t = performance.now();
  for (;;) {
    const n = await dirtyCount(fx);
    if (n === 0) return round((performance.now() - t) / 1000, 2);
    if ((performance.now() - t) / 1000 > maxSeconds) {
      log(`  ${n} dirty marks still pending after ${maxSeconds} s`);
      return null;
    }
    await sleep(200);
  }
}

// ---- feed.snapshot --------------------------------------------------------------------

export async function feedSnapshot(fx: FigureContext): Promise<Figure> {
  const target = fx.quick ? 100_000 : 1_000_000;
  const skus = fx.net.skus;
  const locCount = Math.min(fx.net.locations.length, Math.ceil(target / skus.length));
  const locations = fx.net.locations.slice(0, locCount);
  const counted = (l: number, s: number) => (l * 11 + s * 3) % 37;
  const file = path.join(os.tmpdir(), `oms-bench-snapshot-${process.pid}.csv`);
  let rows = 0;
  {
    const out = fs.createWriteStream(file);
    const write = (s: string) => (out.write(s) ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r())));
    await write('location,sku,on_hand\n');
    for (const l of locations) {
      const lines: string[] = [];
      for (const s of skus) {
        if (rows >= target) break;
        lines.push(`${l.code},${s.code},${counted(l.id, s.id)}\n`);
        rows++;
      }
      await write(lines.join(''));
    }
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  }
  const sizeMb = fs.statSync(file).size / 2 ** 20;
  try {
    await drainDirty(fx, 60);
    const asOf = Date.now();
    // Ceiling first: the same 1M (location, sku) rows, sorted, upserted straight on the
    // driver (positions only: no ledger, events or dirty marks), 1,000 rows per statement
    // and 10,000 per transaction. It writes each position's current on_hand with a baseline
    // just older than the import's, so counters, ledger and projection stay in agreement
    // and the import below still applies every row.
    const writes = (await fx.raw.positionsAt(locations.map((l) => l.id))).slice(0, rows);
    const changed = writes.filter((w) => w.onHand !== counted(w.locationId, w.skuId)).length;
    const tc = performance.now();
    await fx.raw.upsertPositions(writes, asOf - 1, Date.now());
    const ceilingSeconds = (performance.now() - tc) / 1000;
    await sleep(500);

    const t = performance.now();
    const { result: s, peakRssMb, startRssMb } = await withPeakRss(() =>
      importStockCsv(fx.rt.ctx, fs.createReadStream(file, { highWaterMark: 1 << 20 }), { kind: 'snapshot', asOf, mode: 'partial', source: 'bench:snapshot' }),
    );
    const seconds = (performance.now() - t) / 1000;
    if (s.rejected || s.applied !== rows) log(`  WARNING: import applied ${s.applied} of ${rows} rows, ${s.rejected} rejected, ${s.ignored} ignored ${JSON.stringify(s.problems.slice(0, 3))}`);
    // What the availability debouncer then has to digest (bounded wait).
    const pending = await dirtyCount(fx);
    const drain = await drainDirty(fx, fx.quick ? 30 : 90);
    const value = rows / seconds;
    const ceiling = rows / ceilingSeconds;
    const limit = TARGETS.snapshotSeconds[fx.backend.name];
    return {
      name: 'feed.snapshot',
      ...fx.common,
      value: Math.round(value),
      unit: 'rows/s',
      seconds: round(seconds, 2),
      ceiling: Math.round(ceiling),
      ceiling_seconds: round(ceilingSeconds, 2),
      ratio: ratio(value, ceiling),
      target: `1,000,000 rows in <= ${limit} s`,
      meets_target: !fx.quick ? seconds <= limit : undefined,
      rows,
      changed_rows: changed,
      applied: s.applied,
      rejected: s.rejected,
      locations: locCount,
      csv_mb: tidy(sizeMb),
      peak_rss_mb: peakRssMb,
      rss_before_mb: startRssMb,
      rss_growth_mb: peakRssMb - startRssMb,
      dirty_marks_after: pending,
      dirty_drain_s: drain,
      note: 'value: importStockCsv (mode partial) of a CSV file (changed_rows: counts that differ from the stored on_hand) into the populated network, ledger + events included; ceiling: sorted 1,000-row upserts of the same positions on the driver, 10,000 per transaction, positions only',
    };
  } finally {
    fs.rmSync(file, { force: true });
  }
}
