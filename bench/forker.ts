// Forks the bench's load generators through a small process started before the bench grows
// (bench/forker-process.js says why: a fork of the server's process costs it page faults).
import { type ChildProcess, fork, type Serializable } from 'node:child_process';
import { fileURLToPath } from 'node:url';

let forker: ChildProcess | null = null;
let nextId = 1;
const waiting = new Map<number, (m: { ok: boolean; result?: unknown; error?: string }) => void>();

/** Starts the forker: call first thing, before the network and the server are loaded. */
export function startForker(): void {
  if (forker) return;
  forker = fork(fileURLToPath(new URL('./forker-process.js', import.meta.url)), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  forker.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    w?.(m);
    if (waiting.size === 0) forker?.channel?.unref();
  });
  forker.on('exit', (code) => {
    forker = null;
    for (const w of waiting.values()) w({ ok: false, error: `the forker exited with code ${code}` });
    waiting.clear();
  });
  forker.channel?.unref();
  forker.unref();
}

/**
 * Runs `module` with `flag` in a child process, sends it `spec` and resolves with the result
 * it sends back ({ ok, result } or { ok: false, error }). Through the forker when it runs,
 * else forked from this process.
 */
export function runChild<T>(module: string, flag: string, spec: Serializable): Promise<T> {
  return new Promise((resolve, reject) => {
    const settle = (m: { ok: boolean; result?: unknown; error?: string }) => {
      if (m.ok) resolve(m.result as T);
      else reject(new Error(`${flag.replace(/^--/, '')} child failed: ${m.error}`));
    };
    if (forker?.connected) {
      const id = nextId++;
      waiting.set(id, settle);
      forker.channel?.ref();
      forker.send({ id, module, flag, spec });
      return;
    }
    const child = fork(module, [flag], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let done = false;
    child.once('message', (m: { ok: boolean; result?: unknown; error?: string }) => {
      done = true;
      settle(m);
      child.disconnect();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (!done) reject(new Error(`${flag} child exited with code ${code}`));
    });
    child.send(spec);
  });
}
