// Several OMS processes on one PostgreSQL: real `oms serve` processes race for the last
// units and follow each other's changes through the outbox. PostgreSQL only.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/keys.ts';
import { checkIntegrity } from '../../src/inventory/integrity.ts';
import { applySnapshotChunk } from '../../src/inventory/snapshot.ts';
import { openContext } from '../../src/runtime.ts';
import { createPgSchema, PG_URL } from '../support/backends.ts';
import { smallNetwork } from '../support/fixtures.ts';

const OMS = path.resolve('bin/oms.js');

describe.skipIf(!PG_URL)('several OMS processes on one PostgreSQL', () => {
  let url = '';
  let dropSchema = async () => {};
  const servers: ChildProcess[] = [];
  const bases: string[] = [];
  let key = '';

  const startServer = () =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [OMS, 'serve'], { env: { ...process.env, DATABASE_URL: url, PORT: '0', LOG_LEVEL: 'warn', OMS_FOLLOW_MS: '100' }, stdio: ['ignore', 'pipe', 'pipe'] });
      servers.push(child);
      let out = '';
      const timer = setTimeout(() => reject(new Error(`serve timed out: ${out}`)), 30_000);
      child.stdout?.on('data', (b: Buffer) => {
        out += b.toString();
        const m = out.match(/listening on (http:\/\/[^\s]+)/);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
      child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
    });

  beforeAll(async () => {
    const pgSchema = await createPgSchema('mp');
    url = pgSchema.url;
    dropSchema = pgSchema.drop;
    const ctx = await openContext({ databaseUrl: url, dataDir: '/tmp', poolSize: 2 });
    await smallNetwork(ctx);
    const loc = ctx.projection.location('WH1');
    await applySnapshotChunk(ctx, loc?.id as number, Date.now() - 60_000, [{ skuId: ctx.projection.sku('A1')?.id as number, onHand: 50 }], 'test', 'partial');
    key = (await createApiKey(ctx, { name: 'admin', role: 'admin' })).secret;
    await ctx.store.close();
    bases.push(...(await Promise.all([startServer(), startServer()])));
  }, 60_000);

  afterAll(async () => {
    for (const s of servers) s.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await dropSchema();
  });

  const headers = () => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });

  it('200 reservations for 50 units across two processes reserve exactly 50', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        fetch(`${bases[i % 2]}/reservations`, { method: 'POST', headers: headers(), body: JSON.stringify({ location: 'WH1', sku: 'A1', quantity: 1, reference: `r${i}` }) }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: { code: string } } })),
      ),
    );
    const won = results.filter((r) => r.status === 201).length;
    expect(won).toBe(50);
    expect(results.filter((r) => r.status !== 201).every((r) => r.status === 409 && r.body.error?.code === 'insufficient_stock')).toBe(true);
    const ctx = await openContext({ databaseUrl: url, dataDir: '/tmp', poolSize: 1 });
    expect((await checkIntegrity(ctx.store.db)).issues).toEqual([]);
    await ctx.store.close();
  });

  it('a change made through one process shows in the other’s availability', async () => {
    const integration = await fetch(`${bases[0]}/api-keys`, { method: 'POST', headers: headers(), body: JSON.stringify({ name: 'wms', role: 'integration', locations: ['ST-PARIS'] }) }).then((r) => r.json() as Promise<{ secret: string }>);
    const delta = await fetch(`${bases[0]}/stock/deltas`, { method: 'POST', headers: { authorization: `Bearer ${integration.secret}`, 'content-type': 'application/json' }, body: JSON.stringify({ items: [{ location: 'ST-PARIS', sku: 'B1', quantity: 9, idempotency_key: 'mp-1' }] }) });
    expect(delta.status).toBe(200);
    let seen = -1;
    for (let i = 0; i < 50 && seen !== 9; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const r = (await (await fetch(`${bases[1]}/availability/B1?channel=web&view=locations`, { headers: headers() })).json()) as { locations: { location: string; available: number }[] };
      seen = r.locations.find((l) => l.location === 'ST-PARIS')?.available ?? 0;
    }
    expect(seen).toBe(9);
  });
});
