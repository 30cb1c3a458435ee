// The `oms` command line: serve, start (first-run friendly), migrate, demo, keys, stock import,
// sourcing simulate, check.
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { createApiKey, ROLES, type Role } from '../auth/keys.ts';
import { RecentMarks } from '../availability/dirty.ts';
import { loadConfig } from '../config.ts';
import type { Ctx } from '../context.ts';
import { loadDemo, isEmpty } from '../demo/network.ts';
import { DEMO_GIFT_CARD } from '../demo/orders.ts';
import { importStockCsv } from '../inventory/import.ts';
import { checkIntegrity } from '../inventory/integrity.ts';
import { checkOrderIntegrity } from '../orders/integrity.ts';
import { checkPaymentIntegrity } from '../payments/integrity.ts';
import { openContext, startRuntime } from '../runtime.ts';
import { parseNdjson, toRequest } from '../http/routes/sourcing.ts';
import { AppError } from '../shared/errors.ts';
import type { RuleSetChoice, SimulationOrderInput } from '../sourcing/service.ts';
import { simulateRuleSets } from '../sourcing/service.ts';

const program = new Command().name('oms').description('Open OMS: unified inventory, availability and orders').showHelpAfterError();

async function withCtx<T>(fn: (ctx: Ctx) => Promise<T>): Promise<T> {
  const config = loadConfig();
  // The CLI serves no availability: reference data is all it needs in memory.
  const ctx = await openContext(config, undefined, undefined, { positions: false });
  ctx.recentMarks = new RecentMarks(config.debounceMs);
  try {
    return await fn(ctx);
  } finally {
    await ctx.store.close();
  }
}

function demoKeyFile(): string {
  return path.join(loadConfig().dataDir, 'demo-admin-key.txt');
}

async function serve(opts: { demoIfEmpty: boolean }): Promise<void> {
  const config = loadConfig();
  const rt = await startRuntime(config, { logger: { level: config.logLevel, redact: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers["stripe-signature"]', 'req.headers["sandbox-signature"]'] } });
  const banner: string[] = [];
  if (opts.demoIfEmpty && (await isEmpty(rt.ctx))) {
    process.stdout.write('Empty store: loading the demo network…\n');
    const s = await loadDemo(rt.ctx);
    const key = await createApiKey(rt.ctx, { name: 'demo admin', role: 'admin' });
    if (rt.ctx.store.dialect === 'sqlite') {
      fs.mkdirSync(config.dataDir, { recursive: true });
      fs.writeFileSync(demoKeyFile(), `${key.secret}\n`, { mode: 0o600 });
    }
    banner.push(`Demo loaded: ${s.locations} locations, ${s.skus} skus, ${s.positions} stock positions, ${s.channels} channels, ${s.orders} orders.`);
    banner.push(`Demo admin key: ${key.secret}`);
  } else if (opts.demoIfEmpty && fs.existsSync(demoKeyFile())) {
    banner.push(`Demo admin key: ${fs.readFileSync(demoKeyFile(), 'utf8').trim()}`);
  }
  const address = await rt.app.listen({ port: config.port, host: config.host });
  const url = address.replace('[::1]', 'localhost');
  banner.push(`Open OMS on ${rt.ctx.store.describe} — listening on ${url}`);
  banner.push(`API docs: ${url}/docs   OpenAPI: ${url}/openapi.json`);
  banner.push(`Try: curl -H "Authorization: Bearer <key>" "${url}/availability/SKU-00001?channel=web&view=locations"`);
  banner.push(`     curl -H "Authorization: Bearer <key>" "${url}/orders?limit=5"`);
  if (rt.ctx.payments.sandbox) {
    banner.push(`Payments: sandbox operator (test tokens tok_sandbox_visa, tok_sandbox_3ds, tok_sandbox_decline…), demo gift card ${DEMO_GIFT_CARD}; capture ${config.payments.capturePolicy.replace('_', ' ')}`);
  }
  process.stdout.write(`\n${banner.join('\n')}\n\n`);
  const shutdown = async () => {
    await rt.stop();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

program
  .command('start')
  .description('Migrate, load the demo network if the store is empty, and serve (what `npm start` runs)')
  .action(() => serve({ demoIfEmpty: true }));

program
  .command('serve')
  .description('Serve the HTTP API (migrates first)')
  .action(() => serve({ demoIfEmpty: false }));

program
  .command('migrate')
  .description('Create or upgrade the schema')
  .action(() => withCtx(async (ctx) => {
    process.stdout.write(`Schema is current on ${ctx.store.describe}\n`);
  }));

program
  .command('demo')
  .description('Load the demo network (refuses a non-empty store unless --force)')
  .option('--force', 'load even if the store already has locations (codes are upserted)')
  .action((o: { force?: boolean }) =>
    withCtx(async (ctx) => {
      if (!o.force && !(await isEmpty(ctx))) throw new AppError('conflict', 'The store is not empty; use --force to upsert the demo anyway');
      const s = await loadDemo(ctx);
      process.stdout.write(`${JSON.stringify(s)}\n`);
    }),
  );

const keys = program.command('keys').description('API keys');
keys
  .command('create')
  .description('Create an API key and print its secret once')
  .addOption(new Option('--role <role>', 'admin | channel | store | integration').choices(ROLES as unknown as string[]).makeOptionMandatory())
  .option('--name <name>', 'a label', 'cli')
  .option('--channel <code>', 'channel code (channel keys; optional for store keys)')
  .option('--locations <codes>', 'comma-separated location codes (store and integration keys)')
  .action((o: { role: Role; name: string; channel?: string; locations?: string }) =>
    withCtx(async (ctx) => {
      const k = await createApiKey(ctx, { name: o.name, role: o.role, channel: o.channel, locations: o.locations?.split(',').map((s) => s.trim()).filter(Boolean) });
      process.stdout.write(`${k.secret}\n`);
    }),
  );

const stock = program.command('stock').description('Stock feeds');
stock
  .command('import <file>')
  .description('Import a stock CSV: snapshot (location,sku,on_hand[,quarantine]) or delta (location,sku,quantity[,kind,occurred_at,seq,idempotency_key])')
  .addOption(new Option('--kind <kind>', 'snapshot or delta').choices(['snapshot', 'delta']).default('snapshot'))
  .option('--as-of <iso>', 'time the snapshot was counted (required for snapshots)')
  .option('--partial', 'a partial snapshot: skus not listed keep their stock')
  .option('--json', 'print the summary as JSON')
  .action((file: string, o: { kind: 'snapshot' | 'delta'; asOf?: string; partial?: boolean; json?: boolean }) =>
    withCtx(async (ctx) => {
      if (!fs.existsSync(file)) throw new AppError('validation_failed', `No such file: ${file}`);
      const asOf = o.asOf ? Date.parse(o.asOf) : undefined;
      if (o.asOf && Number.isNaN(asOf)) throw new AppError('validation_failed', `--as-of must be an ISO 8601 time (got '${o.asOf}')`);
      const size = fs.statSync(file).size;
      const stream = fs.createReadStream(file);
      const bar = new cliProgress.SingleBar({ format: 'import |{bar}| {percentage}% | {rows} rows | {eta_formatted}', noTTYOutput: false, stream: process.stderr }, cliProgress.Presets.shades_classic);
      const tty = process.stderr.isTTY;
      if (tty) bar.start(size, 0, { rows: 0 });
      let rows = 0;
      stream.on('data', (chunk) => tty && bar.increment(chunk.length, { rows }));
      const s = await importStockCsv(ctx, stream, { kind: o.kind, asOf, mode: o.partial ? 'partial' : 'full', source: `cli:${path.basename(file)}`, onProgress: (n) => (rows = n) });
      if (tty) {
        bar.update(size, { rows: s.rowsRead });
        bar.stop();
      }
      if (o.json) {
        process.stdout.write(`${JSON.stringify(s)}\n`);
        return;
      }
      const lines = [`Rows read: ${s.rowsRead}`, `Applied:   ${s.applied}`, `Ignored:   ${s.ignored}${Object.keys(s.ignoredReasons).length ? ` (${Object.entries(s.ignoredReasons).map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''}`, `Rejected:  ${s.rejected}`];
      for (const p of s.problems.slice(0, 50)) lines.push(`  line ${p.line}: ${p.code}: ${p.message}`);
      if (s.problems.length > 50) lines.push(`  … ${s.problems.length - 50} more`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }),
  );

const sourcing = program.command('sourcing').description('Sourcing rules');
sourcing
  .command('simulate <orders>')
  .description(
    'Replay orders (JSON lines: the POST /sourcing/plan body, with channel and an optional reference) against two rule sets on the current stock; changes nothing',
  )
  .requiredOption('--candidate <version|file>', 'the draft: a saved rule set version, or a rule set JSON file')
  .option('--baseline <version>', "what to compare it with: a rule set version, or 'published'", 'published')
  .option('--json', 'print the report as JSON')
  .action(async (file: string, o: { candidate: string; baseline: string; json?: boolean }) => {
    const config = loadConfig();
    // A simulation needs the whole stock picture: the full projection, like a server.
    const ctx = await openContext(config);
    try {
      const parsed = parseNdjson(fs.readFileSync(file, 'utf8')) as Array<Parameters<typeof toRequest>[1] & { channel: string; reference?: string }>;
      // Orders that cannot be read come back in r.rejected, numbered by their place in the file.
      const orders: SimulationOrderInput[] = parsed.map((w, index) => ({ ...toRequest(w.channel, w), reference: w.reference ?? `#${index + 1}` }));
      const version = (v: string, what: string): number => {
        if (!/^[1-9]\d*$/.test(v)) throw new AppError('validation_failed', `${what} must be a rule set version`);
        return Number(v);
      };
      const candidate: RuleSetChoice = /^\d+$/.test(o.candidate)
        ? { label: 'candidate', version: version(o.candidate, '--candidate') }
        : { label: 'candidate', ruleSet: JSON.parse(fs.readFileSync(o.candidate, 'utf8')) };
      const baseline: RuleSetChoice = { label: 'baseline', version: o.baseline === 'published' ? 'published' : version(o.baseline, '--baseline') };
      const r = await simulateRuleSets(ctx, orders, [baseline, candidate]);
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ stock_as_of: new Date(r.stockAsOf).toISOString(), duration_ms: Math.round(r.durationMs), rule_sets: r.ruleSets, rejected: r.rejected })}\n`);
        return;
      }
      const [a, b] = r.ruleSets;
      const name = (x: typeof a) => `${x.label}: ${x.name}${x.version ? ` v${x.version}` : ''}`;
      const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
      const rows: Array<[string, (m: typeof a.metrics) => string]> = [
        ['orders', (m) => String(m.orders)],
        ['complete orders', (m) => String(m.ordersComplete)],
        ['split orders', (m) => String(m.splitOrders)],
        ['shipments per order', (m) => m.shipmentsPerOrder.toFixed(3)],
        ['fill rate', (m) => pct(m.fillRate)],
        ['units backordered', (m) => String(m.unitsBackordered)],
        ['units unfilled', (m) => String(m.unitsUnfilled)],
        ['mean distance (km)', (m) => (m.avgDistanceKm === null ? '–' : String(m.avgDistanceKm))],
        ['mean cost per order (minor units)', (m) => String(m.avgCostPerOrder)],
        ['late promises', (m) => String(m.latePromises)],
      ];
      const out = [`${''.padEnd(36)}${name(a).padEnd(32)}${name(b)}`];
      for (const [label, f] of rows) out.push(`${label.padEnd(36)}${f(a.metrics).padEnd(32)}${f(b.metrics)}`);
      out.push(`${r.rejected.length} order(s) skipped${r.rejected.length ? ':' : ''}`);
      for (const x of r.rejected.slice(0, 20)) out.push(`  ${x.reference} (order ${x.index + 1} of the file): ${x.code}: ${x.message}`);
      process.stdout.write(`${out.join('\n')}\n`);
    } finally {
      await ctx.store.close();
    }
  });

program
  .command('check')
  .description('Integrity check: recompute stock counters from the ledger, orders from their fulfilment orders, payments from their operations; exit 1 on any difference')
  .action(() =>
    withCtx(async (ctx) => {
      const r = await checkIntegrity(ctx.store.db);
      const o = await checkOrderIntegrity(ctx.store.db);
      if (r.issues.length === 0) process.stdout.write(`OK: ${r.positions} positions, counters equal their ledgers\n`);
      for (const i of r.issues) process.stdout.write(`${i.kind} location=${i.location_id} sku=${i.sku_id} counter=${i.counter} recomputed=${i.recomputed}\n`);
      if (r.issues.length) process.stdout.write(`${r.issues.length} difference(s) in ${r.positions} positions\n`);
      if (o.issues.length === 0) process.stdout.write(`OK: ${o.orders} orders, lines equal their fulfilment orders and reservations\n`);
      for (const i of o.issues) process.stdout.write(`${i.kind} order=${i.order_id}${i.line_id ? ` line=${i.line_id}` : ''} ${i.detail}\n`);
      if (o.issues.length) process.stdout.write(`${o.issues.length} difference(s) in ${o.orders} orders\n`);
      const m = await checkPaymentIntegrity(ctx.store.db);
      if (m.issues.length === 0) process.stdout.write(`OK: ${m.payments} payments, counters equal their operations; captured ≤ authorized, refunded ≤ captured\n`);
      for (const i of m.issues) process.stdout.write(`${i.kind} ${i.payment_id ? `payment=${i.payment_id}` : `refund=${i.refund_id}`} ${i.detail}\n`);
      if (m.issues.length) process.stdout.write(`${m.issues.length} difference(s) in ${m.payments} payments\n`);
      if (r.issues.length || o.issues.length || m.issues.length) process.exitCode = 1;
    }),
  );

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof AppError) process.stderr.write(`error: ${e.code}: ${e.message}\n`);
  else process.stderr.write(`error: ${(e as Error).message}\n`);
  process.exit(1);
});
