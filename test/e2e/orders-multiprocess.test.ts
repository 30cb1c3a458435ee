// Order capture across real OMS processes on one PostgreSQL (PostgreSQL only):
// - two `oms serve` processes take 200 concurrent captures over HTTP for 37 units;
// - one process is SIGKILLed in the middle of a capture storm and restarted, and every client
//   retries its unanswered request (same Idempotency-Key, same body) until it gets an answer:
//   each acknowledged order exists exactly once and holds exactly its reserved stock.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/keys.ts';
import type { Ctx } from '../../src/context.ts';
import { checkIntegrity } from '../../src/inventory/integrity.ts';
import { upsertLocation } from '../../src/inventory/locations.ts';
import { upsertSkus } from '../../src/inventory/skus.ts';
import { applySnapshotChunk } from '../../src/inventory/snapshot.ts';
import { openContext } from '../../src/runtime.ts';
import { createPgSchema, PG_URL } from '../support/backends.ts';
import { smallNetwork } from '../support/fixtures.ts';

const OMS = path.resolve('bin/oms.js');
const ADDRESS = { line1: '1 rue de Rivoli', postal_code: '75001', city: 'Paris', country: 'FR', latitude: 48.8534, longitude: 2.3488 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function orderBody(ref: string, sku: string, quantity: number, unitPrice = 1000) {
  const subtotal = quantity * unitPrice;
  return {
    external_reference: ref,
    customer: { name: 'Ada', email: 'ada@example.com' },
    currency: 'EUR',
    lines: [{ sku, quantity, unit_price: unitPrice }],
    delivery_groups: [{ mode: 'home', address: ADDRESS, shipping_price: 500 }],
    totals: { subtotal, discount: 0, tax: 0, shipping: 500, total: subtotal + 500 },
    tenders: [{ method: 'card', amount: subtotal + 500 }],
  };
}

/** Spawned `oms serve` processes: started with a deadline, always killed at the end. */
class Servers {
  readonly children: ChildProcess[] = [];
  constructor(private url: string) {}

  start(extraEnv: Record<string, string> = {}): Promise<{ child: ChildProcess; base: string }> {
    const child = spawn(process.execPath, [OMS, 'serve'], {
      env: { ...process.env, DATABASE_URL: this.url, PORT: '0', LOG_LEVEL: 'warn', OMS_FOLLOW_MS: '100', ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.push(child);
    return new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`serve did not listen within 30 s: ${out}`));
      }, 30_000);
      child.stdout?.on('data', (b: Buffer) => {
        out += b.toString();
        const m = out.match(/listening on (http:\/\/[^\s]+)/);
        if (m) {
          clearTimeout(timer);
          resolve({ child, base: m[1] });
        }
      });
      child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`serve exited (${code ?? signal}) before listening: ${out}`));
      });
    });
  }

  /** Kills every process still alive (SIGTERM, then SIGKILL), whatever the tests did. */
  async stopAll(): Promise<void> {
    const alive = this.children.filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(
      alive.map(
        (c) =>
          new Promise<void>((resolve) => {
            const hard = setTimeout(() => c.kill('SIGKILL'), 3_000);
            c.once('exit', () => {
              clearTimeout(hard);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
  }
}

/** Runs `oms check` on the database: exit status and output. */
function omsCheck(url: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [OMS, 'check'], { env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn' }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

/** What the database holds for one sku and the orders whose reference starts with prefix. */
async function stored(ctx: Ctx, sku: string, prefix: string) {
  const db = ctx.store.db;
  const skuId = ctx.projection.sku(sku)?.id as number;
  const orders = await db.selectFrom('orders').select(['id', 'external_reference', 'channel_id']).where('external_reference', 'like', `${prefix}%`).execute();
  const ids = orders.map((o) => o.id);
  const lines = ids.length ? await db.selectFrom('order_lines').select(['order_id', 'quantity', 'allocated']).where('order_id', 'in', ids).execute() : [];
  const pos = await db.selectFrom('stock_positions').select(['reserved']).where('sku_id', '=', skuId).execute();
  const res = await db.selectFrom('reservations').select(['id', 'quantity', 'reference']).where('sku_id', '=', skuId).where('status', '=', 'active').execute();
  const dupRefs = await db
    .selectFrom('orders')
    .select(['channel_id', 'external_reference', (eb) => eb.fn.countAll<number>().as('n')])
    .where('external_reference', 'like', `${prefix}%`)
    .groupBy(['channel_id', 'external_reference'])
    .having((eb) => eb.fn.countAll(), '>', 1)
    .execute();
  const orderIds = new Set(ids);
  return {
    orders,
    dupRefs,
    orderedUnits: lines.reduce((s, l) => s + Number(l.quantity), 0),
    allocatedUnits: lines.reduce((s, l) => s + Number(l.allocated), 0),
    reservedCounter: pos.reduce((s, p) => s + Number(p.reserved), 0),
    activeReservations: res.reduce((s, r) => s + Number(r.quantity), 0),
    orphanReservations: res.filter((r) => !orderIds.has(r.reference as string)),
  };
}

async function seedNetwork(url: string, skus: string[]): Promise<{ admin: string; web: string }> {
  const ctx = await openContext({ databaseUrl: url, dataDir: '/tmp', poolSize: 2 });
  try {
    await smallNetwork(ctx);
    // ST-LYON ships parcels: home delivery may source from WH1, ST-PARIS and ST-LYON.
    await upsertLocation(ctx, { code: 'ST-LYON', name: 'Store Lyon', type: 'store', country: 'FR', latitude: 45.75, longitude: 4.85, capabilities: ['ships', 'click_and_collect'], tags: ['city'] });
    await upsertSkus(
      ctx,
      skus.map((code) => ({ code, name: `Race ${code}`, demandClass: 'B' })),
    );
    const admin = (await createApiKey(ctx, { name: 'admin', role: 'admin' })).secret;
    const web = (await createApiKey(ctx, { name: 'web', role: 'channel', channel: 'web' })).secret;
    return { admin, web };
  } finally {
    await ctx.store.close();
  }
}

describe.skipIf(!PG_URL)('order capture across two OMS processes on one PostgreSQL', () => {
  let url = '';
  let dropSchema = async () => {};
  let servers: Servers | null = null;
  const bases: string[] = [];
  let keys = { admin: '', web: '' };

  beforeAll(async () => {
    const s = await createPgSchema('omp');
    url = s.url;
    dropSchema = s.drop;
    keys = await seedNetwork(url, ['MP1']);
    servers = new Servers(url);
    const started = await Promise.all([servers.start(), servers.start()]);
    bases.push(...started.map((x) => x.base));
  }, 60_000);

  afterAll(async () => {
    await servers?.stopAll();
    await dropSchema();
  });

  it('200 concurrent captures split across both processes for 37 units: 37 orders, 163 out_of_stock, no 5xx', async () => {
    // Stock through the admin API of process 0; process 1 follows it through the outbox.
    const asOf = new Date(Date.now() - 60_000).toISOString();
    for (const [location, on_hand] of [
      ['WH1', 20],
      ['ST-PARIS', 10],
      ['ST-LYON', 7],
    ] as const) {
      const r = await fetch(`${bases[0]}/stock/snapshots`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keys.admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ location, as_of: asOf, mode: 'partial', items: [{ sku: 'MP1', on_hand }] }),
        signal: AbortSignal.timeout(10_000),
      });
      expect(r.status, await r.text()).toBe(200);
    }
    for (const base of bases) {
      let seen: Record<string, number> = {};
      for (let i = 0; i < 100; i++) {
        const r = await fetch(`${base}/availability/MP1?channel=web&view=locations`, { headers: { authorization: `Bearer ${keys.web}` }, signal: AbortSignal.timeout(5_000) });
        const body = (await r.json()) as { locations: Array<{ location: string; available: number }> };
        seen = Object.fromEntries(body.locations.filter((l) => l.available > 0).map((l) => [l.location, l.available]));
        if (Object.values(seen).reduce((a, b) => a + b, 0) === 37) break;
        await sleep(100);
      }
      expect(seen, base).toEqual({ WH1: 20, 'ST-PARIS': 10, 'ST-LYON': 7 });
    }

    const t0 = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const r = await fetch(`${bases[i % 2]}/orders`, {
          method: 'POST',
          headers: { authorization: `Bearer ${keys.web}`, 'content-type': 'application/json' },
          body: JSON.stringify(orderBody(`mp-${i}`, 'MP1', 1)),
          signal: AbortSignal.timeout(30_000),
        });
        const text = await r.text();
        let json: { id?: string; error?: { code?: string } } = {};
        try {
          json = JSON.parse(text);
        } catch {
          // reported through text
        }
        return { i, status: r.status, code: json.error?.code ?? null, id: json.id ?? null, text };
      }),
    );
    const ms = Math.round(performance.now() - t0);
    const tally: Record<string, number> = {};
    for (const a of answers) tally[`${a.status} ${a.code ?? ''}`.trim()] = (tally[`${a.status} ${a.code ?? ''}`.trim()] ?? 0) + 1;
    const perProcess = [0, 1].map((k) => answers.filter((a) => a.i % 2 === k && a.status === 201).length);
    expect(answers.filter((a) => a.status >= 500)).toEqual([]);
    expect(tally, `${ms} ms; orders per process ${perProcess.join(' + ')}`).toEqual({ '201': 37, '409 out_of_stock': 163 });
    const won = answers.filter((a) => a.status === 201);
    expect(new Set(won.map((a) => a.id)).size).toBe(37);
    for (const a of answers.filter((x) => x.status === 409)) {
      const body = JSON.parse(a.text) as { error: { code: string; message: string; details?: { lines?: Array<{ sku: string; unfilled: number }> } } };
      expect(Object.keys(body), a.text).toEqual(['error']);
      expect(body.error.details?.lines?.[0]?.sku, a.text).toBe('MP1');
      expect(body.error.details?.lines?.[0]?.unfilled, a.text).toBe(1);
    }

    const ctx = await openContext({ databaseUrl: url, dataDir: '/tmp', poolSize: 2 });
    try {
      const s = await stored(ctx, 'MP1', 'mp-');
      expect(s.orders).toHaveLength(37);
      expect(new Set(s.orders.map((o) => o.id))).toEqual(new Set(won.map((a) => a.id)));
      expect(s.dupRefs).toEqual([]);
      expect(s.reservedCounter).toBe(37);
      expect(s.activeReservations).toBe(37);
      expect(s.orderedUnits).toBe(37);
      expect(s.allocatedUnits).toBe(37);
      expect(s.orphanReservations).toEqual([]);
      expect((await checkIntegrity(ctx.store.db)).issues).toEqual([]);
    } finally {
      await ctx.store.close();
    }
    const check = await omsCheck(url);
    expect(check.code, check.out).toBe(0);
    expect(check.out).toMatch(/^OK: /m);
  });
});

interface Outcome {
  i: number;
  status: number;
  id: string | null;
  text: string;
  attempts: number;
  networkErrors: number;
  inFlight409: number;
  replayed: boolean;
}

/**
 * A capture storm: `clients` workers send `orders` captures, each with its own Idempotency-Key
 * and external reference, and retry the same request (same key, same body) after a network
 * error or a 409 idempotency_in_flight until it is answered or the deadline passes.
 * `base(client, failures)` says where a client sends; `onAck` sees each 2xx.
 */
async function captureStorm(opts: {
  orders: number;
  clients: number;
  prefix: string;
  sku: string;
  qty: (i: number) => number;
  key: string;
  base: (client: number, networkErrors: number) => string;
  onAck: (acked: number) => void;
  deadline: number;
}): Promise<{ outcomes: Outcome[]; unanswered: number[] }> {
  const outcomes: Outcome[] = [];
  const unanswered: number[] = [];
  let acked = 0;
  let next = 0;
  const send = async (client: number, i: number): Promise<void> => {
    const body = JSON.stringify(orderBody(`${opts.prefix}${i}`, opts.sku, opts.qty(i)));
    let attempts = 0;
    let networkErrors = 0;
    let inFlight409 = 0;
    while (Date.now() < opts.deadline) {
      attempts++;
      let r: Response;
      let text: string;
      try {
        r = await fetch(`${opts.base(client, networkErrors)}/orders`, {
          method: 'POST',
          headers: { authorization: `Bearer ${opts.key}`, 'content-type': 'application/json', 'idempotency-key': `idem-${opts.prefix}${i}` },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        text = await r.text();
      } catch {
        // Connection refused or reset (the process died), or a timeout: retry the same request.
        networkErrors++;
        await sleep(100);
        continue;
      }
      let json: { id?: string; error?: { code?: string } } = {};
      try {
        json = JSON.parse(text);
      } catch {
        // reported through text
      }
      if (r.status === 409 && json.error?.code === 'idempotency_in_flight') {
        inFlight409++;
        await sleep(200);
        continue;
      }
      outcomes.push({ i, status: r.status, id: json.id ?? null, text: text.slice(0, 300), attempts, networkErrors, inFlight409, replayed: r.headers.get('idempotent-replayed') === 'true' });
      if (r.status >= 200 && r.status < 300) opts.onAck(++acked);
      return;
    }
    unanswered.push(i);
  };
  await Promise.all(
    Array.from({ length: opts.clients }, async (_, client) => {
      while (next < opts.orders) await send(client, next++);
    }),
  );
  return { outcomes, unanswered };
}

const stormStats = (outcomes: Outcome[], ms: number) => {
  const interrupted = outcomes.filter((o) => o.networkErrors > 0);
  return {
    ms,
    interrupted: interrupted.length,
    interruptedThen201: interrupted.filter((o) => o.status === 201 && !o.replayed).length,
    interruptedThen200: interrupted.filter((o) => o.status === 200).length,
    replayed: outcomes.filter((o) => o.replayed).length,
    waitedOnLease: outcomes.filter((o) => o.inFlight409 > 0).length,
  };
};

describe.skipIf(!PG_URL)('order capture survives a SIGKILLed OMS process', () => {
  let url = '';
  let dropSchema = async () => {};
  let servers: Servers | null = null;
  let keys = { admin: '', web: '' };
  const LEASE_MS = 1000;
  const serverEnv = { OMS_IDEMPOTENCY_LEASE_MS: String(LEASE_MS) };
  const ORDERS = 150;
  const CLIENTS = 16;
  const KILL_AFTER = 50; // acknowledged orders before the kill
  const qty = (i: number) => 1 + (i % 3);
  const expectedUnits = Array.from({ length: ORDERS }, (_, i) => qty(i)).reduce((a, b) => a + b, 0);

  beforeAll(async () => {
    const s = await createPgSchema('omc');
    url = s.url;
    dropSchema = s.drop;
    keys = await seedNetwork(url, ['CR1', 'CR2']);
    const ctx = await openContext({ databaseUrl: url, dataDir: '/tmp', poolSize: 2 });
    try {
      // Enough stock for every order (150 orders of at most 3 units).
      const loc = ctx.projection.location('WH1')?.id as number;
      const sku = (code: string) => ctx.projection.sku(code)?.id as number;
      await applySnapshotChunk(ctx, loc, Date.now() - 60_000, [{ skuId: sku('CR1'), onHand: 1000 }, { skuId: sku('CR2'), onHand: 1000 }], 'test', 'partial');
    } finally {
      await ctx.store.close();
    }
    servers = new Servers(url);
  }, 60_000);

  afterAll(async () => {
    await servers?.stopAll();
    await dropSchema();
  });

  /** The database after a storm: every acknowledged order once, holding exactly its stock. */
  async function expectStoredExactlyOnce(sku: string, prefix: string, outcomes: Outcome[], base: string, stats: object): Promise<void> {
    const bad = outcomes.filter((o) => o.status !== 200 && o.status !== 201);
    expect(bad, JSON.stringify(stats)).toEqual([]);
    expect(outcomes).toHaveLength(ORDERS);
    const ackedIds = new Map(outcomes.map((o) => [`${prefix}${o.i}`, o.id as string]));
    expect(new Set(ackedIds.values()).size, 'one order id per reference').toBe(ORDERS);

    const ctx = await openContext({ databaseUrl: url, dataDir: '/tmp', poolSize: 2 });
    try {
      const s = await stored(ctx, sku, prefix);
      expect(s.dupRefs).toEqual([]);
      expect(s.orders, JSON.stringify(stats)).toHaveLength(ackedIds.size);
      for (const o of s.orders) expect(o.id, o.external_reference).toBe(ackedIds.get(o.external_reference));
      expect(s.orderedUnits).toBe(expectedUnits);
      expect(s.allocatedUnits).toBe(expectedUnits);
      expect(s.reservedCounter).toBe(expectedUnits);
      expect(s.activeReservations).toBe(expectedUnits);
      expect(s.orphanReservations).toEqual([]);
      // Every key ended with its response stored.
      const open = await ctx.store.db.selectFrom('idempotency_keys').select(['key', 'state']).where('key', 'like', `idem-${prefix}%`).where('state', '<>', 'done').execute();
      expect(open).toEqual([]);
      expect((await checkIntegrity(ctx.store.db)).issues).toEqual([]);
    } finally {
      await ctx.store.close();
    }

    // Replaying every key now returns the order that was acknowledged for it.
    const replays = await Promise.all(
      Array.from({ length: ORDERS }, async (_, i) => {
        const r = await fetch(`${base}/orders`, {
          method: 'POST',
          headers: { authorization: `Bearer ${keys.web}`, 'content-type': 'application/json', 'idempotency-key': `idem-${prefix}${i}` },
          body: JSON.stringify(orderBody(`${prefix}${i}`, sku, qty(i))),
          signal: AbortSignal.timeout(10_000),
        });
        const json = (await r.json()) as { id?: string };
        return { i, status: r.status, id: json.id, replayed: r.headers.get('idempotent-replayed') };
      }),
    );
    for (const r of replays) {
      expect(r.status, `${prefix}${r.i}`).toBeLessThan(300);
      expect(r.replayed, `${prefix}${r.i}`).toBe('true');
      expect(r.id, `${prefix}${r.i}`).toBe(ackedIds.get(`${prefix}${r.i}`));
    }
    const check = await omsCheck(url);
    expect(check.code, check.out).toBe(0);
  }

  it('150 orders from 16 clients, SIGKILL mid-storm, restart, retries with the same keys: each acknowledged order exactly once', async () => {
    const srv = servers as Servers;
    let current = await srv.start(serverEnv);
    const first = current.child;
    let restarted: Promise<void> = Promise.resolve();
    let killed = false;
    const t0 = performance.now();
    const { outcomes, unanswered } = await captureStorm({
      orders: ORDERS,
      clients: CLIENTS,
      prefix: 'cr-',
      sku: 'CR1',
      qty,
      key: keys.web,
      base: () => current.base,
      deadline: Date.now() + 45_000,
      onAck: (acked) => {
        if (acked < KILL_AFTER || killed) return;
        killed = true;
        first.kill('SIGKILL');
        restarted = (async () => {
          await new Promise<void>((r) => (first.exitCode !== null || first.signalCode !== null ? r() : first.once('exit', () => r())));
          current = await srv.start(serverEnv);
        })();
      },
    });
    await restarted;
    const stats = stormStats(outcomes, Math.round(performance.now() - t0));
    console.info(`restart storm: ${JSON.stringify(stats)}`);
    expect(killed).toBe(true);
    expect(unanswered, `no answer within the deadline: ${JSON.stringify(stats)}`).toEqual([]);
    // The kill interrupted requests in flight: their clients retried them.
    expect(stats.interrupted, JSON.stringify(stats)).toBeGreaterThan(0);
    await expectStoredExactlyOnce('CR1', 'cr-', outcomes, current.base, stats);
  }, 90_000);

  it('two processes, one SIGKILLed mid-storm: clients fail over at once, wait out the lease, each order exactly once', async () => {
    const srv = servers as Servers;
    const [a, b] = await Promise.all([srv.start(serverEnv), srv.start(serverEnv)]);
    let killed = false;
    const t0 = performance.now();
    const { outcomes, unanswered } = await captureStorm({
      orders: ORDERS,
      clients: CLIENTS,
      prefix: 'fo-',
      sku: 'CR2',
      qty,
      key: keys.web,
      // Half the clients start on A; after a failure every client goes to B, the survivor.
      base: (client, failures) => (client % 2 === 0 && failures === 0 && !killed ? a.base : b.base),
      deadline: Date.now() + 45_000,
      onAck: (acked) => {
        if (acked < KILL_AFTER || killed) return;
        killed = true;
        a.child.kill('SIGKILL');
      },
    });
    const stats = stormStats(outcomes, Math.round(performance.now() - t0));
    console.info(`failover storm: ${JSON.stringify(stats)}`);
    expect(killed).toBe(true);
    expect(unanswered, `no answer within the deadline: ${JSON.stringify(stats)}`).toEqual([]);
    expect(stats.interrupted, JSON.stringify(stats)).toBeGreaterThan(0);
    // Requests A had begun hold their key until the lease ends: B made their retries wait.
    expect(stats.waitedOnLease, JSON.stringify(stats)).toBeGreaterThan(0);
    await expectStoredExactlyOnce('CR2', 'fo-', outcomes, b.base, stats);
  }, 90_000);
});
