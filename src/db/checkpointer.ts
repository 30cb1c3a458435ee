// WAL checkpoints off the event loop, for the SQLite store of a running server.
//
// A checkpoint copies the pages the WAL holds into the database file and syncs both. On the
// OMS's connection it runs inside the COMMIT that crosses wal_autocheckpoint, synchronously:
// every request waits for it (measured in order.capture.http: ~0.18 ms an order of COMMIT time,
// and a stall of tens of milliseconds every few seconds). Here a thread with its own connection
// runs PASSIVE checkpoints every intervalMs (they never wait for, nor block, the writer), and the
// OMS's connection keeps a far larger wal_autocheckpoint as a backstop: when the WAL reaches it,
// the connection checkpoints what little the thread has not copied yet, and the next write
// starts the WAL again from its beginning (SQLite restarts a WAL only once it is wholly copied,
// which a thread racing a busy writer may never see). If the thread fails, the connection's
// own checkpoints take over again at the usual threshold.
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type SQLite from 'better-sqlite3';

/** The OMS connection's wal_autocheckpoint without a checkpoint thread (pages, ~40 MB). */
export const FOREGROUND_CHECKPOINT_PAGES = 10_000;

export interface CheckpointerOptions {
  intervalMs?: number;
  /** wal_autocheckpoint of the OMS's connection while the thread runs (pages). */
  backstopPages?: number;
  onError?: (message: string) => void;
  /** Each checkpoint the thread made: frames in the WAL, frames copied (tests, diagnostics). */
  onCheckpoint?: (r: { log: number; checkpointed: number }) => void;
}

export function startCheckpointer(raw: SQLite.Database, file: string, opts: CheckpointerOptions = {}): () => Promise<void> {
  const backstop = opts.backstopPages ?? 50_000;
  const worker = new Worker(new URL('./checkpoint-thread.js', import.meta.url), { workerData: { file, intervalMs: opts.intervalMs ?? 200, report: Boolean(opts.onCheckpoint) } });
  worker.unref();
  raw.pragma(`wal_autocheckpoint = ${backstop}`);
  let running = true;
  /** The connection checkpoints on its own again; false if that was already so. */
  const handBack = (): boolean => {
    if (!running) return false;
    running = false;
    if (raw.open) raw.pragma(`wal_autocheckpoint = ${FOREGROUND_CHECKPOINT_PAGES}`);
    return true;
  };
  const fallBack = (why: string) => {
    if (!handBack()) return;
    opts.onError?.(`WAL checkpoint thread stopped (${why}); the database connection checkpoints again`);
  };
  worker.on('message', (m: { kind: 'checkpoint'; log: number; checkpointed: number } | { kind: 'error'; message: string }) => {
    if (m.kind === 'checkpoint') opts.onCheckpoint?.(m);
    else opts.onError?.(`WAL checkpoint failed: ${m.message}`);
  });
  worker.on('error', (e) => fallBack(e instanceof Error ? e.message : String(e)));
  worker.on('exit', (code) => fallBack(`exit code ${code}`));
  return async () => {
    if (!handBack()) return;
    const exited = once(worker, 'exit');
    // The thread is unref'd: held again until it has exited, or a process with nothing else to
    // do would end here and what awaits this (closing the store) would never run.
    worker.ref();
    worker.postMessage('stop');
    await exited;
  };
}
