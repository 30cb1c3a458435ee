// More OMS processes on the bench's PostgreSQL schema (`--processes N`): the scale-out the README
// describes (stateless processes on one PostgreSQL, each following the others' outbox), measured.
//
// Each one is `oms serve` (the command a deployment runs, with npm start's node flags), started
// from a child forked through the forker (bench/forker.ts: the bench process itself never forks),
// on a free loopback port, and reported ready once GET /health answers. The child stays alive as
// long as its server does; the bench stops the server with SIGTERM (SIGKILL after 10 s).
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { runChild } from './forker.ts';
import { log, sleep } from './report.ts';

export interface ExtraServer {
  pid: number;
  url: string;
}

interface ServerSpec {
  databaseUrl: string;
  /** Seconds to wait for /health (the projection loads first). */
  readySeconds: number;
}

const OMS = fileURLToPath(new URL('../bin/oms.js', import.meta.url));

/** Starts `count` more OMS processes on `databaseUrl`, one after another (each loads its projection). */
export async function startExtraServers(databaseUrl: string, count: number): Promise<ExtraServer[]> {
  const started: ExtraServer[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const s = await runChild<ExtraServer>(fileURLToPath(import.meta.url), '--oms-server', { databaseUrl, readySeconds: 180 } satisfies ServerSpec);
      log(`  OMS process ${i + 2} (pid ${s.pid}) listening on ${s.url}`);
      started.push(s);
    }
  } catch (e) {
    await stopExtraServers(started);
    throw e;
  }
  return started;
}

/** Whether a process with this pid exists (signal 0 checks without sending). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after 10 s; resolves once every process is gone. */
export async function stopExtraServers(servers: ExtraServer[]): Promise<void> {
  for (const s of servers) if (isAlive(s.pid)) process.kill(s.pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (servers.some((s) => isAlive(s.pid)) && Date.now() < deadline) await sleep(100);
  for (const s of servers) if (isAlive(s.pid)) process.kill(s.pid, 'SIGKILL');
}

/** CPU ms (user + system, every thread) of a process so far, from /proc; null elsewhere or once it is gone. */
export function processCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return null;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function serve(spec: ServerSpec): Promise<{ child: ChildProcess; server: ExtraServer }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--max-semi-space-size=64', OMS, 'serve'], {
    env: { ...process.env, DATABASE_URL: spec.databaseUrl, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: process.env.OMS_BENCH_LOG_LEVEL || 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let exited: string | null = null;
  child.once('exit', (code, signal) => (exited = `exited (${code ?? signal})`));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + spec.readySeconds * 1000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`oms serve ${exited} before answering /health`);
    const ok = await fetch(`${url}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { child, server: { pid: child.pid as number, url } };
    await sleep(250);
  }
  child.kill('SIGKILL');
  throw new Error(`oms serve did not answer /health within ${spec.readySeconds} s`);
}

// The child forked through the forker: starts one server, answers with its pid and URL, and
// lives as long as the server does.
if (process.argv.includes('--oms-server') && process.send) {
  process.once('message', (spec: ServerSpec) => {
    serve(spec)
      .then(({ child, server }) => {
        process.send?.({ ok: true, result: server });
        child.once('exit', () => process.exit(0));
      })
      .catch((e: Error) => process.send?.({ ok: false, error: e.stack ?? String(e) }))
      .finally(() => process.disconnect?.());
  });
}
