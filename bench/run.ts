// The benchmark harness: `npm run bench -- [name-prefix…] [--quick] [--backend sqlite|postgres]`.
// For each backend it generates the network, starts the real server (startRuntime, which
// loads the projection), then measures each selected figure next to its raw ceiling: the
// same query or write done straight on the driver, in the same run. One JSON object per
// figure on stdout; progress on stderr; all figures in bench/results.json.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApiKey } from '../src/auth/keys.ts';
import { loadConfig } from '../src/config.ts';
import { startForker } from './forker.ts';
import { startRuntime, type Runtime } from '../src/runtime.ts';
import { type Backend, createBackend, DEFAULT_PG_URL, type RawDriver } from './backend.ts';
import { atpBatch, atpHttp, feedDelta, feedSnapshot, type FigureContext, setupLoad } from './figures.ts';
import { FULL_NETWORK, generateNetwork, QUICK_NETWORK } from './generate.ts';
import { orderCaptureCpu, orderCaptureHttp } from './orders.ts';
import { sourcingPlan, sourcingPlanHttp, sourcingSimulate, sourcingSplit } from './sourcing.ts';
import { type BackendName, type Figure, log, machine, round } from './report.ts';

const FIGURES = [
  'setup.generate',
  'setup.load',
  'atp.http',
  'atp.batch',
  'feed.delta',
  'feed.snapshot',
  'sourcing.plan',
  'sourcing.plan.http',
  'sourcing.simulate',
  'sourcing.split',
  'order.capture.cpu',
  'order.capture.http',
] as const;

interface Options {
  prefixes: string[];
  quick: boolean;
  backends: BackendName[];
  connections: number;
  duration?: number;
  check: boolean;
  processes: number;
}

const USAGE = `Usage: npm run bench -- [name-prefix…] [--quick] [--backend sqlite|postgres] [--connections N] [--duration S] [--check] [--processes N]
Figures: ${FIGURES.join(', ')}
PostgreSQL: OMS_BENCH_DATABASE_URL (default ${DEFAULT_PG_URL}); the bench works in a fresh schema it drops at the end.`;

function parseArgs(argv: string[]): Options {
  const o: Options = { prefixes: [], quick: false, backends: ['sqlite', 'postgres'], connections: 10, check: false, processes: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--check') o.check = true;
    else if (a === '--backend' || a.startsWith('--backend=')) {
      const v = a.includes('=') ? a.split('=')[1] : value();
      if (v !== 'sqlite' && v !== 'postgres') throw new Error(`--backend must be sqlite or postgres\n${USAGE}`);
      o.backends = [v];
    } else if (a === '--connections') o.connections = positive(a, value());
    else if (a === '--duration') o.duration = positive(a, value());
    else if (a === '--processes') {
      o.processes = positive(a, value());
      if (!Number.isInteger(o.processes)) throw new Error(`--processes must be a whole number\n${USAGE}`);
    }
    else if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (a.startsWith('-')) throw new Error(`unknown option ${a}\n${USAGE}`);
    else o.prefixes.push(a);
  }
  const unknown = o.prefixes.filter((p) => !FIGURES.some((f) => f.startsWith(p)));
  if (unknown.length) throw new Error(`no figure starts with ${unknown.join(', ')}\n${USAGE}`);
  return o;
}

function positive(name: string, v: string): number {
  const n = Number(v);
  if (!(n > 0)) throw new Error(`${name} must be a positive number`);
  return n;
}

const resultsFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results.json');
const results: Figure[] = [];
let failures = 0;

function emit(f: Figure): void {
  const m = machine();
  const ordered: Figure = { ...f, machine: m };
  results.push(ordered);
  process.stdout.write(`${JSON.stringify(ordered)}\n`);
  fs.writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
}

/** Things to undo if the run is interrupted (drop the PostgreSQL schema, delete the SQLite file). */
const cleanups = new Set<() => Promise<void>>();
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    interrupted = true;
    log(`${sig}: cleaning up…`);
    Promise.allSettled([...cleanups].map((c) => c())).finally(() => process.exit(130));
  });
}

async function runBackend(name: BackendName, o: Options): Promise<void> {
  const wanted = (fig: string) => o.prefixes.length === 0 || o.prefixes.some((p) => fig.startsWith(p));
  const spec = o.quick ? QUICK_NETWORK : FULL_NETWORK;
  const poolSize = loadConfig().poolSize;
  const backend: Backend = await createBackend(name, { pgUrl: process.env.OMS_BENCH_DATABASE_URL || DEFAULT_PG_URL, poolSize });
  const dropBackend = () => backend.drop();
  cleanups.add(dropBackend);
  let rt: Runtime | null = null;
  let raw: RawDriver | null = null;
  try {
    log(`${name}: generating ${spec.locations.toLocaleString('en')} locations × ${spec.skus.toLocaleString('en')} skus on ${backend.describe}`);
    const net = await generateNetwork(backend, spec);
    log(`${name}: ${net.positions.toLocaleString('en')} positions + ledger in ${net.seconds.total.toFixed(1)} s`);
    // OMS_BENCH_BACKGROUND=0 runs the server without its outbox follower and debouncer loops (diagnosis only).
    const background = process.env.OMS_BENCH_BACKGROUND !== '0';
    const common = {
      backend: name,
      quick: o.quick,
      network: `${spec.locations}x${spec.skus}`,
      background,
    };
    if (wanted('setup.generate')) {
      emit({
        name: 'setup.generate',
        ...common,
        value: round(net.positions / net.seconds.positions, 0),
        unit: 'positions/s',
        seconds: round(net.seconds.total, 2),
        reference_data_s: round(net.seconds.reference, 2),
        positions_and_ledger_s: round(net.seconds.positions, 2),
        positions: net.positions,
      });
    }

    log(`${name}: starting the server (startRuntime loads the projection)…`);
    const tLoad = performance.now();
    const config = { ...loadConfig(), databaseUrl: backend.databaseUrl, host: '127.0.0.1', port: 0, poolSize };
    rt = await startRuntime(config, { background, logger: { level: process.env.OMS_BENCH_LOG_LEVEL || 'warn', stream: process.stderr } });
    const loadSeconds = (performance.now() - tLoad) / 1000;
    const stopRuntime = async () => {
      await rt?.stop();
    };
    cleanups.add(stopRuntime);
    const address = await rt.app.listen({ host: '127.0.0.1', port: 0 });
    log(`${name}: ${rt.ctx.projection.positionCount().toLocaleString('en')} positions in the projection after ${loadSeconds.toFixed(1)} s; listening on ${address}`);
    raw = backend.openRaw();
    const channelKey = await createApiKey(rt.ctx, { name: 'bench channel', role: 'channel', channel: 'web' });
    const feedKey = await createApiKey(rt.ctx, { name: 'bench feed', role: 'integration', locations: net.locations.map((l) => l.code) });
    const fx: FigureContext = {
      backend,
      net,
      rt,
      raw,
      address,
      channelKey: channelKey.secret,
      feedKey: feedKey.secret,
      quick: o.quick,
      connections: o.connections,
      duration: o.duration ?? (o.quick ? 3 : 10),
      warmup: o.quick ? 1 : 3,
      processes: o.processes,
      onInterrupt: (undo) => {
        cleanups.add(undo);
        return () => cleanups.delete(undo);
      },
      common,
    };
    const figures: [string, () => Promise<Figure>][] = [
      ['setup.load', () => setupLoad(fx, loadSeconds)],
      ['atp.http', () => atpHttp(fx)],
      ['atp.batch', () => atpBatch(fx)],
      ['sourcing.plan', () => sourcingPlan(fx)],
      ['sourcing.plan.http', () => sourcingPlanHttp(fx)],
      ['sourcing.simulate', () => sourcingSimulate(fx)],
      // Pure (no database): measured once, with the first backend.
      ...(name === o.backends[0] ? ([['sourcing.split', async () => sourcingSplit(fx.common)]] as [string, () => Promise<Figure>][]) : []),
      ['feed.delta', () => feedDelta(fx)],
      ['feed.snapshot', () => feedSnapshot(fx)],
      // Last: they reserve stock and store orders.
      ['order.capture.cpu', () => orderCaptureCpu(fx)],
      ['order.capture.http', () => orderCaptureHttp(fx)],
    ];
    for (const [fig, run] of figures) {
      if (!wanted(fig) || interrupted) continue;
      log(`${name}: ${fig}…`);
      try {
        emit(await run());
      } catch (e) {
        failures++;
        log(`${name}: ${fig} failed: ${(e as Error).stack ?? e}`);
      }
    }
    if (o.quick || o.check) {
      log(`${name}: integrity check…`);
      const { checkIntegrity } = await import('../src/inventory/integrity.ts');
      const r = await checkIntegrity(rt.ctx.store.db);
      if (r.issues.length) {
        failures++;
        log(`${name}: INTEGRITY: ${r.issues.length} issue(s), e.g. ${JSON.stringify(r.issues.slice(0, 3))}`);
      } else log(`${name}: integrity ok over ${r.positions.toLocaleString('en')} positions`);
    }
    cleanups.delete(stopRuntime);
  } finally {
    await raw?.close().catch(() => {});
    await rt?.stop().catch((e) => log(`stop failed: ${e}`));
    await backend.drop().catch((e) => log(`cleanup failed: ${e}`));
    cleanups.delete(dropBackend);
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  // Before anything grows this process: load generators are forked from the forker, not from here.
  startForker();
  const m = machine();
  log(`machine: ${m.cores} × ${m.cpu}, ${m.memory_gb} GB, node ${m.node}; ${o.quick ? 'quick' : 'full'} run; backends ${o.backends.join(', ')}${o.prefixes.length ? `; figures ${o.prefixes.join(', ')}…` : ''}`);
  for (const b of o.backends) {
    if (interrupted) break;
    try {
      await runBackend(b, o);
    } catch (e) {
      failures++;
      log(`${b}: failed: ${(e as Error).stack ?? e}`);
    }
  }
  log(`${results.length} figure(s) written to ${path.relative(process.cwd(), resultsFile)}${failures ? `; ${failures} failure(s)` : ''}`);
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(2);
});
