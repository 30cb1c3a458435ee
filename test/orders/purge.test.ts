// Expired idempotency keys are forgotten in set-based batches: thousands in one sweep, the
// live ones kept.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { purgeIdempotencyKeys } from '../../src/orders/idempotency.ts';
import { BACKENDS, createTestEnv, type TestEnv } from '../support/backends.ts';

describe.each(BACKENDS)('idempotency key purge on %s', (backend) => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv(backend);
  });
  afterAll(async () => env?.close());

  it('purges every expired key in batches and keeps the live ones', async () => {
    const now = env.clock.now();
    const row = (i: number, expiresAt: number) => ({ scope: 'key_a', key: `k${i}`, request_hash: 'h', state: 'done', status_code: 201, response: '{}', locked_until: 0, created_at: now - 1, expires_at: expiresAt });
    const expired = Array.from({ length: 4500 }, (_, i) => row(i, now - 1 - (i % 300)));
    const live = Array.from({ length: 7 }, (_, i) => row(10_000 + i, now + 1000));
    for (let i = 0; i < expired.length; i += 500) await env.ctx.store.db.insertInto('idempotency_keys').values(expired.slice(i, i + 500)).execute();
    await env.ctx.store.db.insertInto('idempotency_keys').values(live).execute();
    expect(await purgeIdempotencyKeys(env.ctx, 1000, 3)).toBeGreaterThanOrEqual(3000);
    expect(await purgeIdempotencyKeys(env.ctx, 1000, 3)).toBeGreaterThan(0);
    const left = await env.ctx.store.db.selectFrom('idempotency_keys').select('key').orderBy('key').execute();
    expect(left.map((r) => r.key)).toEqual(live.map((r) => r.key).sort());
    expect(await purgeIdempotencyKeys(env.ctx)).toBe(0);
  });
});
