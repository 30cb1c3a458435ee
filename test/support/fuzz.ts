// Generated bad input, shared by the fuzz suites (test/orders/fuzz.test.ts,
// test/api/fuzz-openapi.test.ts): odd values, mutations of a valid JSON document, and the
// answer contract every request must meet whatever it sent.
import fc from 'fast-check';
import { expect } from 'vitest';
import { createApiKey } from '../../src/auth/keys.ts';
import { upsertChannel } from '../../src/channels/channels.ts';
import { type InjectResult, type Json, seedStock, STACK_RE } from '../api/helpers.ts';
import { type ApiEnv, createApiEnv } from './backends.ts';
import { smallNetwork } from './fixtures.ts';

/** Values that break naive code: other types, extremes, odd strings, prototype keys. */
const ODD = [
  null,
  true,
  false,
  0,
  -1,
  1,
  -0.5,
  1.5,
  2 ** 31,
  2 ** 53,
  -(2 ** 53),
  1e308,
  -1e308,
  '',
  ' ',
  '0',
  '-1',
  'null',
  'NaN',
  'Infinity',
  '1e999',
  '__proto__',
  'constructor',
  '\u0000',
  '\ud835\udc9c\u00e9',
  "' or 1=1 --",
  '2026-02-30T25:61:00Z',
  'x'.repeat(5000),
  {},
  [],
  [null],
  JSON.parse('{"__proto__":{"polluted":true}}'),
];

const oddValue = fc.oneof(fc.constantFrom(...ODD), fc.jsonValue({ maxDepth: 2 }), fc.string({ maxLength: 80 }), fc.integer(), fc.double());

type Path = Array<string | number>;

/** Every path to a value of a JSON document, the root excluded. */
function pathsOf(v: unknown, at: Path = [], out: Path[] = []): Path[] {
  const entries: Array<[string | number, unknown]> = Array.isArray(v) ? v.map((x, i) => [i, x]) : v && typeof v === 'object' ? Object.entries(v) : [];
  for (const [k, x] of entries) {
    out.push([...at, k]);
    pathsOf(x, [...at, k], out);
  }
  return out;
}

/** Words of this API: a string replaced by one of them often passes the schema and reaches the handler. */
const TOKENS = ['A1', 'B1', 'C1', 'NOPE', 'WH1', 'ST-PARIS', 'ST-LYON', 'SUP1', 'MKP', 'FR', 'DE', 'US', 'XX', 'EUR', 'USD', 'JPY', 'home', 'pickup_point', 'click_and_collect', 'in_store', 'card', 'gift_card', 'bank_transfer', 'cash_on_delivery', 'L1', 'L2', 'G1', 'G9', 'standard', 'express', 'web', 'pos', 'mkt'];

export interface Mutation {
  at: number;
  /** similar: another value of the same type (a number for a number, a string for a string). */
  kind: 'similar' | 'delete' | 'set' | 'wrap' | 'stringify' | 'duplicate';
  value: unknown;
  num: number;
  str: string;
}

export const mutation = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom<Mutation['kind']>('similar', 'similar', 'similar', 'delete', 'set', 'wrap', 'stringify', 'duplicate'),
  value: oddValue,
  num: fc.oneof(fc.integer({ min: -5, max: 100_000 }), fc.constantFrom(0, 1, 2, 2 ** 31, 2 ** 53, 1e15, -1e15, 0.5, 90.5, -180.5)),
  str: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 40 })),
});

/** The document with the mutations applied, each at a path chosen among those it then has. */
export function mutate(doc: unknown, ms: Mutation[]): unknown {
  const out = structuredClone(doc) as Json;
  for (const m of ms) {
    const paths = pathsOf(out);
    if (paths.length === 0) break;
    const path = paths[m.at % paths.length];
    const parent = path.slice(0, -1).reduce((o: Json, k) => o[k], out);
    const key = path[path.length - 1];
    const old = parent[key];
    if (m.kind === 'delete') {
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key];
    } else if (m.kind === 'similar') parent[key] = typeof old === 'number' ? m.num : typeof old === 'string' ? m.str : m.value;
    else if (m.kind === 'set') parent[key] = m.value;
    else if (m.kind === 'wrap') parent[key] = [old];
    else if (m.kind === 'stringify') parent[key] = typeof old === 'string' ? Number(old) : JSON.stringify(old);
    else if (Array.isArray(parent)) parent.push(structuredClone(old));
    else parent[`${String(key)}_2`] = old;
  }
  return out;
}

/** The answer contract for any request: below 500; an error is `{ error: { code, message } }` without a stack. */
export function expectClean(res: InjectResult, what: string): void {
  const ctx = `${what} → ${res.statusCode} ${res.body.slice(0, 300)}`;
  expect(res.statusCode, ctx).toBeLessThan(500);
  expect(res.body, ctx).not.toMatch(STACK_RE);
  if (res.statusCode < 400) return;
  const body = res.json();
  expect(Object.keys(body), ctx).toEqual(['error']);
  expect(body.error.code, ctx).toMatch(/^[a-z][a-z0-9_]*$/);
  expect(typeof body.error.message, ctx).toBe('string');
  expect(body.error.message.length, ctx).toBeGreaterThan(0);
}

/** The callers of the fuzz suites: a key per role (`none` sends no key). */
export type FuzzCaller = 'admin' | 'web' | 'mkt' | 'paris' | 'lyon' | 'wms' | 'none';

/**
 * The fuzz suites' environment: the small network with the web, store and marketplace
 * channels, stock at WH1 and ST-PARIS, and a key per caller.
 */
export async function fuzzEnv(backend: 'sqlite' | 'postgres'): Promise<{ env: ApiEnv; keys: Record<FuzzCaller, string> }> {
  const env = await createApiEnv(backend);
  await smallNetwork(env.ctx, [
    { code: 'web', name: 'Web', type: 'web' },
    { code: 'pos', name: 'Point of sale', type: 'store' },
  ]);
  await upsertChannel(env.ctx, { code: 'mkt', name: 'Marketplace', type: 'marketplace' });
  await seedStock(env, 'WH1', '2026-06-01T09:00:00Z', [
    { sku: 'A1', on_hand: 1000 },
    { sku: 'B1', on_hand: 1000 },
    { sku: 'C1', on_hand: 100 },
  ]);
  await seedStock(env, 'ST-PARIS', '2026-06-01T09:00:00Z', [
    { sku: 'A1', on_hand: 50 },
    { sku: 'B1', on_hand: 20 },
  ]);
  const key = async (input: Parameters<typeof createApiKey>[1]) => (await createApiKey(env.ctx, input)).secret;
  return {
    env,
    keys: {
      admin: env.adminKey,
      web: await key({ name: 'web shop', role: 'channel', channel: 'web' }),
      mkt: await key({ name: 'marketplace', role: 'channel', channel: 'mkt' }),
      paris: await key({ name: 'paris store', role: 'store', channel: 'pos', locations: ['ST-PARIS'] }),
      lyon: await key({ name: 'lyon store', role: 'store', channel: 'pos', locations: ['ST-LYON'] }),
      wms: await key({ name: 'wms', role: 'integration', locations: ['WH1'] }),
      none: '',
    },
  };
}
