// HTTP load generator, run in its own process (so it does not share the server's event
// loop): autocannon against 127.0.0.1, bounded in time. The parent sends one LoadSpec over
// IPC and receives one LoadResult. Latencies are taken from autocannon's 'response' events
// (microsecond resolution; its own histogram rounds to whole milliseconds).
import { fileURLToPath } from 'node:url';
import autocannon, { type Request } from 'autocannon';
import { runChild } from './forker.ts';

export type LoadSpec =
  | (Common & { kind: 'get'; paths: string[] })
  | (Common & { kind: 'post'; path: string; body: string })
  | (Common & { kind: 'posts'; path: string; bodies: string[] })
  | (Common & { kind: 'deltas'; path: string; locations: string[]; skus: string[]; keyPrefix: string; seed: number });

interface Common {
  url: string;
  headers: Record<string, string>;
  connections: number;
  duration: number;
  /** Stop after this many requests (0: duration only). */
  amount?: number;
}

export interface LoadResult {
  /** Successful (2xx) responses per second over the run. */
  rps: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  seconds: number;
  p50: number;
  p99: number;
  mean: number;
  statusCodes: Record<string, number>;
}

/** Runs one load in a child process and returns its result. */
export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return runChild<LoadResult>(fileURLToPath(import.meta.url), '--child', spec);
}

function requestsFor(spec: LoadSpec): { method: string; requests: Request[] } {
  if (spec.kind === 'get') {
    let i = 0;
    const paths = spec.paths;
    return { method: 'GET', requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: paths[i++ % paths.length] }) }] };
  }
  if (spec.kind === 'post') return { method: 'POST', requests: [{ method: 'POST', path: spec.path, body: spec.body }] };
  if (spec.kind === 'posts') {
    const { bodies } = spec;
    let k = 0;
    return { method: 'POST', requests: [{ method: 'POST', path: spec.path, setupRequest: (req) => ({ ...req, body: bodies[k++ % bodies.length] }) }] };
  }
  // One delta per request, unique idempotency key, position drawn from a fixed pseudo-random sequence.
  let n = 0;
  let x = spec.seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  const { locations, skus, keyPrefix } = spec;
  return {
    method: 'POST',
    requests: [
      {
        method: 'POST',
        path: spec.path,
        setupRequest: (req) => {
          n++;
          const body = JSON.stringify({
            items: [{ location: locations[next() % locations.length], sku: skus[next() % skus.length], quantity: n % 2 === 0 ? 1 : -1, kind: 'adjustment', idempotency_key: `${keyPrefix}-${n}` }],
          });
          return { ...req, body };
        },
      },
    ],
  };
}

async function child(spec: LoadSpec): Promise<LoadResult> {
  const { method, requests } = requestsFor(spec);
  const latencies: number[] = [];
  const result = await new Promise<import('autocannon').Result>((resolve, reject) => {
    const inst = autocannon(
      {
        url: spec.url,
        method,
        connections: spec.connections,
        duration: spec.duration,
        amount: spec.amount || undefined,
        timeout: 30,
        headers: { ...spec.headers, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
        requests,
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    inst.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status >= 200 && status < 300) latencies.push(ms);
    });
  });
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil((p / 100) * latencies.length) - 1))] : Number.NaN);
  let sum = 0;
  for (const v of latencies) sum += v;
  const statusCodes: Record<string, number> = {};
  for (const [k, v] of Object.entries(result.statusCodeStats ?? {})) statusCodes[k] = v.count;
  return {
    rps: result['2xx'] / result.duration,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: result.duration,
    p50: pct(50),
    p99: pct(99),
    mean: latencies.length ? sum / latencies.length : Number.NaN,
    statusCodes,
  };
}

if (process.argv.includes('--child') && process.send) {
  process.once('message', (spec: LoadSpec) => {
    child(spec)
      .then((result) => process.send?.({ ok: true, result }))
      .catch((e: Error) => process.send?.({ ok: false, error: e.stack ?? String(e) }))
      .finally(() => process.disconnect?.());
  });
}
