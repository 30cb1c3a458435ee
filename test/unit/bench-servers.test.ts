// bench/servers.ts: the extra `oms serve` processes of `npm run bench -- … --processes N`.
// One real server on a scratch SQLite file: started, answering, measured, stopped.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive, processCpuMs, startExtraServers, stopExtraServers } from '../../bench/servers.ts';

const dir = mkdtempSync(join(tmpdir(), 'oms-bench-servers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bench extra OMS processes', () => {
  it('starts oms serve on a free loopback port, reports its CPU, and stops it', async () => {
    const [s] = await startExtraServers(`sqlite:${join(dir, 'oms.sqlite')}`, 1);
    try {
      expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const health = await fetch(`${s.url}/health`);
      expect(await health.json()).toEqual({ status: 'ok' });
      // The API answers with the store's data: a key is required, and the error is the API's.
      const orders = await fetch(`${s.url}/orders`);
      expect(orders.status).toBe(401);
      if (process.platform === 'linux') expect(processCpuMs(s.pid)).toBeGreaterThan(0);
    } finally {
      await stopExtraServers([s]);
    }
    expect(isAlive(s.pid)).toBe(false);
    expect(processCpuMs(s.pid)).toBeNull();
  }, 60_000);
});
