// The README's promise, end to end with real processes: `oms start` on an empty data dir
// loads the demo and serves it with a printed admin key; `oms stock import` reports applied,
// ignored and rejected rows; `oms check` passes. Embedded SQLite only (a fresh machine's path).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { homeOrderBody } from '../support/fixtures.ts';

const run = promisify(execFile);
const OMS = path.resolve('bin/oms.js');

describe('oms CLI and npm start', () => {
  let dir: string;
  let server: ChildProcess;
  let url = '';
  let key = '';
  const env = () => ({ ...process.env, OMS_DATA_DIR: dir, PORT: '0', LOG_LEVEL: 'warn', DATABASE_URL: '' });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oms-e2e-'));
    server = spawn(process.execPath, [OMS, 'start'], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`start timed out:\n${out}`)), 50_000);
      server.stdout?.on('data', (b: Buffer) => {
        out += b.toString();
        const u = out.match(/listening on (http:\/\/[^\s]+)/);
        const k = out.match(/Demo admin key: (oms_\S+)/);
        if (u && k) {
          url = u[1];
          key = k[1];
          clearTimeout(timer);
          resolve();
        }
      });
      server.on('exit', (code) => reject(new Error(`oms start exited with ${code}:\n${out}`)));
    });
  }, 60_000);

  afterAll(async () => {
    server?.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves the demo network with the printed admin key', async () => {
    expect((await fetch(`${url}/ready`)).status).toBe(200);
    const res = await fetch(`${url}/availability/SKU-00001?channel=web&view=locations`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { available: number; locations: unknown[] };
    expect(body.locations.length).toBeGreaterThan(0);
    const locs = (await (await fetch(`${url}/locations?limit=1000`, { headers: { authorization: `Bearer ${key}` } })).json()) as { items: { type: string }[] };
    const count = (t: string) => locs.items.filter((l) => l.type === t).length;
    expect([count('warehouse'), count('store') >= 40, count('supplier'), count('marketplace'), count('reseller')]).toEqual([2, true, 2, 1, 1]);
    expect(fs.readFileSync(path.join(dir, 'demo-admin-key.txt'), 'utf8').trim()).toBe(key);
    // The presets are published as rule set version 1, and a plan for a Lyon postal code ships.
    const auth = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const live = (await (await fetch(`${url}/sourcing/rule-sets/published`, { headers: auth })).json()) as { version: number; name: string };
    expect([live.version, live.name]).toEqual([1, 'default']);
    const planned = await fetch(`${url}/sourcing/plan`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ channel: 'web', lines: [{ sku: 'SKU-00001', quantity: 1 }], delivery: { mode: 'home', country: 'FR', postal_code: '69003', city: 'Lyon' } }),
    });
    expect(planned.status).toBe(200);
    const plan = (await planned.json()) as { plan: { shipments: { carrier: { service: string } | null }[] }; explanation: { destination: { precision: string } } };
    expect(plan.explanation.destination.precision).toBe('postal_code');
    expect(plan.plan.shipments.length).toBeGreaterThan(0);
    expect(plan.plan.shipments[0].carrier?.service).toBeTruthy();
  });

  it('imports a CSV with broken rows and reports each one, then the integrity check passes', async () => {
    const csv = path.join(dir, 'feed.csv');
    fs.writeFileSync(csv, ['location,sku,on_hand', 'WH-PARIS-NORD,SKU-00001,77', 'WH-PARIS-NORD,NOPE,5', 'NOWHERE,SKU-00002,5', 'WH-PARIS-NORD,SKU-00003,-4', 'WH-PARIS-NORD,SKU-00004,12'].join('\n'));
    const { stdout } = await run(process.execPath, [OMS, 'stock', 'import', csv, '--kind', 'snapshot', '--as-of', new Date().toISOString(), '--partial', '--json'], { env: env() });
    const s = JSON.parse(stdout) as { applied: number; rejected: number; problems: { line: number; code: string }[] };
    expect(s.applied).toBe(2);
    expect(s.rejected).toBe(3);
    expect(s.problems.map((p) => [p.line, p.code])).toEqual([
      [3, 'unknown_sku'],
      [4, 'unknown_location'],
      [5, 'validation_failed'],
    ]);
    const check = await run(process.execPath, [OMS, 'check'], { env: env() });
    expect(check.stdout).toMatch(/^OK: \d+ positions/);
    // The running server follows the outbox and sees the CLI's import.
    await new Promise((r) => setTimeout(r, 800));
    const res = await fetch(`${url}/availability/SKU-00001?channel=marketplace&view=locations`, { headers: { authorization: `Bearer ${key}` } });
    const body = (await res.json()) as { locations: { location: string; available: number }[] };
    // marketplace channel: buffer 2, cap 50% → min(77 - 2, floor(77 * 0.5)) = 38
    expect(body.locations.find((l) => l.location === 'WH-PARIS-NORD')?.available).toBe(38);
  });

  it('simulates a JSON-lines order file against the published presets and a draft file', async () => {
    const orders = path.join(dir, 'orders.jsonl');
    const home = { mode: 'home', country: 'FR', postal_code: '69003' };
    fs.writeFileSync(
      orders,
      [
        { reference: 'o1', channel: 'web', lines: [{ sku: 'SKU-00001', quantity: 1 }], delivery: home },
        { reference: 'o2', channel: 'web', lines: [{ sku: 'NOPE', quantity: 1 }], delivery: home },
        { reference: 'o3', channel: 'web', lines: [{ sku: 'SKU-00002', quantity: 1 }], delivery: { mode: 'click_and_collect', pickup_location: 'ST-LYON' } },
      ]
        .map((o) => JSON.stringify(o))
        .join('\n'),
    );
    const draft = path.join(dir, 'draft.json');
    const { DEFAULT_RULE_SET } = await import('../../src/sourcing/presets.ts');
    fs.writeFileSync(draft, JSON.stringify({ ...DEFAULT_RULE_SET, name: 'warehouses-only', strategies: [{ ...DEFAULT_RULE_SET.strategies.at(-1), filters: { locationTypes: ['warehouse'], capabilities: 'auto' } }] }));
    const { stdout } = await run(process.execPath, [OMS, 'sourcing', 'simulate', orders, '--candidate', draft, '--json'], { env: env() });
    const r = JSON.parse(stdout) as { rule_sets: { label: string; name: string; version: number | null; metrics: { orders: number } }[]; rejected: { index: number; reference: string; code: string }[] };
    expect(r.rule_sets.map((x) => [x.label, x.name, x.version, x.metrics.orders])).toEqual([
      ['baseline', 'default', 1, 2],
      ['candidate', 'warehouses-only', null, 2],
    ]);
    expect(r.rejected.map((x) => [x.index, x.reference, x.code])).toEqual([[1, 'o2', 'unknown_sku']]);
    const table = await run(process.execPath, [OMS, 'sourcing', 'simulate', orders, '--candidate', draft], { env: env() });
    expect(table.stdout).toMatch(/shipments per order/);
    expect(table.stdout).toMatch(/1 order\(s\) skipped/);
  });

  it('creates scoped keys', async () => {
    const { stdout } = await run(process.execPath, [OMS, 'keys', 'create', '--role', 'channel', '--channel', 'web'], { env: env() });
    const secret = stdout.trim();
    expect(secret).toMatch(/^oms_cha_/);
    await new Promise((r) => setTimeout(r, 100));
    expect((await fetch(`${url}/availability/SKU-00001?channel=web`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(200);
    expect((await fetch(`${url}/availability/SKU-00001?channel=pos`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(404);
  });

  // Last: it stops the server. A clean stop closes the writer and checkpoint threads and every
  // connection: SQLite then checkpoints the WAL into the file and deletes it.
  it('stops cleanly on SIGTERM: threads and connections closed, the WAL checkpointed away', async () => {
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const captured = await fetch(`${url}/orders`, { method: 'POST', headers, body: JSON.stringify({ ...homeOrderBody('cli-stop-1', [['SKU-00001', 1, 1000]]), channel: 'web' }) });
    expect(captured.status, await captured.clone().text()).toBe(201);
    expect(fs.existsSync(path.join(dir, 'oms.sqlite-wal'))).toBe(true);
    const exited = new Promise<[number | null, string | null]>((resolve) => server.once('exit', (code, signal) => resolve([code, signal])));
    server.kill('SIGTERM');
    expect(await exited).toEqual([0, null]);
    expect(fs.existsSync(path.join(dir, 'oms.sqlite-wal'))).toBe(false);
  });
});
