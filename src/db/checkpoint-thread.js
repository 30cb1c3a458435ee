// A SQLite WAL checkpointer on a thread and connection of its own (src/db/checkpointer.ts).
// Plain JavaScript: it needs only better-sqlite3, not the project's TypeScript.
import { parentPort, workerData } from 'node:worker_threads';
import SQLite from 'better-sqlite3';

const { file, intervalMs, report } = workerData;
const db = new SQLite(file, { fileMustExist: true });
// The checkpoint syncs the WAL and the database file as the OMS's own connection would.
db.pragma('synchronous = NORMAL');
let timer = null;
let stopped = false;

function tick() {
  timer = null;
  if (stopped) return;
  try {
    // PASSIVE: copies what it can and never waits for (or blocks) a reader or the writer.
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    // Only when someone listens (tests): otherwise a message every interval for nothing.
    if (report) parentPort.postMessage({ kind: 'checkpoint', log: r.log, checkpointed: r.checkpointed });
  } catch (e) {
    parentPort.postMessage({ kind: 'error', message: e instanceof Error ? e.message : String(e) });
  }
  timer = setTimeout(tick, intervalMs);
}

parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  stopped = true;
  if (timer) clearTimeout(timer);
  db.close();
  parentPort.close();
});

tick();
