// The composition root: opens the store, migrates, loads the projection, wires the
// background loops (outbox follower, availability debouncer) and the HTTP app.
import { KeyVerifier } from './auth/keys.ts';
import { AvailabilityReconciler, publishAvailabilityChanges } from './availability/debounce.ts';
import { RecentMarks } from './availability/dirty.ts';
import { OutboxFollower } from './availability/follower.ts';
import { loadProjection, StockProjection } from './availability/projection.ts';
import { toChannel } from './channels/channels.ts';
import type { Config } from './config.ts';
import type { Ctx } from './context.ts';
import { openStore, type Store } from './db/database.ts';
import { migrate } from './db/migrate.ts';
import { type App, buildApp } from './http/app.ts';
import { toLocationFacts } from './inventory/locations.ts';
import { loadCarrierConfig } from './carriers/load.ts';
import { loadPlaces } from './geo/places.ts';
import { type Clock, systemClock } from './shared/clock.ts';
import { CapacityUsage } from './sourcing/capacity.ts';
import { sweepOrders } from './orders/scheduler.ts';
import { DEFAULT_ORDER_SETTINGS, type OrderSettings } from './orders/settings.ts';
import { Payments } from './payments/runtime.ts';
import { sweepPayments } from './payments/service.ts';
import { DEFAULT_PAYMENT_SETTINGS, type PaymentSettings } from './payments/settings.ts';
import { PublishedRules } from './sourcing/rule-sets.ts';

/**
 * Opens the store and loads the projection. `positions: false` loads only the reference data
 * (locations, skus, channels, supply): enough for the CLI's imports and keys, in a fraction of
 * the memory and time of a server's full availability picture.
 */
export async function openContext(
  config: Pick<Config, 'databaseUrl' | 'dataDir'> & { poolSize?: number; pgPrepared?: boolean; pgCaptureGroups?: number; carriersFile?: string | null; orders?: OrderSettings; payments?: PaymentSettings; publicUrl?: string | null },
  clock: Clock = systemClock,
  store?: Store,
  opts: { positions?: boolean } = {},
): Promise<Ctx> {
  const s = store ?? openStore(config);
  await migrate(s);
  const ctx: Ctx = {
    store: s,
    clock,
    projection: new StockProjection(),
    sourcing: { rules: new PublishedRules(), carriers: loadCarrierConfig(config.carriersFile), capacity: new CapacityUsage() },
    orders: structuredClone(config.orders ?? DEFAULT_ORDER_SETTINGS),
    payments: new Payments(config.payments ?? DEFAULT_PAYMENT_SETTINGS, s, clock, { actionBaseUrl: config.publicUrl ?? '' }),
  };
  ctx.payments.bind(ctx);
  await reload(ctx, opts);
  return ctx;
}

export async function reload(ctx: Ctx, opts: { positions?: boolean } = {}): Promise<void> {
  await loadProjection(ctx.store.db, ctx.store.dialect, ctx.projection, { location: toLocationFacts, channel: toChannel }, opts);
}

export interface Runtime {
  ctx: Ctx;
  app: App;
  keys: KeyVerifier;
  follower: OutboxFollower;
  stop(): Promise<void>;
}

export async function startRuntime(config: Config, opts: { logger?: boolean | object; clock?: Clock; background?: boolean } = {}): Promise<Runtime> {
  const ctx = await openContext(config, opts.clock);
  // The offline place index (postal codes → coordinates) takes ~2 s to build: pay it before
  // serving, not on the first order that carries only a postal code.
  loadPlaces();
  ctx.recentMarks = new RecentMarks(config.debounceMs);
  const keys = new KeyVerifier(ctx);
  const follower = new OutboxFollower(ctx);
  await follower.init();
  const app = await buildApp({ ctx, keys, logger: opts.logger, bodyLimit: config.bodyLimit, csvLimit: config.csvLimit });
  const stopCheckpoints = config.sqliteCheckpointThread ? ctx.store.backgroundCheckpoints?.({ onError: (message) => app.log.error(message) }) : undefined;
  if (ctx.store.writer) ctx.store.writer.onError = (message) => app.log.error(message);
  const timers: NodeJS.Timeout[] = [];
  if (opts.background !== false) {
    const loop = (ms: number, fn: () => Promise<unknown>) => {
      let busy = false;
      const t = setInterval(() => {
        if (busy) return;
        busy = true;
        fn()
          .catch((err) => app.log.error({ err }, 'background loop failed'))
          .finally(() => {
            busy = false;
          });
      }, ms);
      t.unref();
      timers.push(t);
    };
    loop(config.followMs, () => follower.poll());
    loop(config.debounceMs, () => publishAvailabilityChanges(ctx, { settleMs: config.debounceMs }));
    const reconciler = new AvailabilityReconciler(ctx);
    loop(config.reconcileMs, () => reconciler.tick());
    loop(config.orderSweepMs, () => sweepOrders(ctx));
    loop(config.orderSweepMs, () => sweepPayments(ctx));
    // The sandbox operator calls back like a real one: a moment after each operation, its
    // signed webhook is POSTed to this OMS's webhook route (in process: Fastify's inject runs
    // the whole route, raw-body parser and signature check included, without a socket).
    ctx.payments.log = (message) => app.log.warn(message);
    ctx.payments.deliverSandbox = (d) => {
      const t = setTimeout(() => {
        app
          .inject({ method: 'POST', url: '/webhooks/payments/sandbox', headers: d.headers, payload: d.rawBody })
          .then((r) => {
            if (r.statusCode !== 200) app.log.warn({ status: r.statusCode, event: d.eventId }, 'sandbox webhook refused');
          })
          .catch((err) => app.log.warn({ err: (err as Error).message }, 'sandbox webhook not delivered'));
      }, config.payments.sandbox.webhookDelayMs);
      t.unref();
    };
  }
  return {
    ctx,
    app,
    keys,
    follower,
    async stop() {
      for (const t of timers) clearInterval(t);
      await app.close();
      await stopCheckpoints?.();
      await ctx.store.close();
    },
  };
}
