// WAL checkpoints on a thread of their own: the thread copies the WAL into the database while
// the OMS's connection writes, the connection's backstop lets the WAL start again, nothing
// written is lost, and a thread that stops hands checkpoints back to the connection.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqlite } from '../../src/db/database.ts';
import { FOREGROUND_CHECKPOINT_PAGES } from '../../src/db/checkpointer.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function scratch() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oms-ckpt-'));
  dirs.push(dir);
  const file = path.join(dir, 'oms.sqlite');
  const { raw, store } = openSqlite(file);
  raw.exec('create table t (id integer primary key, pad text not null)');
  return { raw, store, file };
}

/** Writes `n` transactions of ~40 KB each (about 10 WAL pages). */
function write(raw: ReturnType<typeof scratch>['raw'], n: number, from = 0): void {
  const ins = raw.prepare('insert into t (id, pad) values (?, ?)');
  for (let i = 0; i < n; i++) raw.transaction(() => ins.run(from + i, 'x'.repeat(40_000)))();
}

const until = async (check: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('WAL checkpoints on a thread', () => {
  it('the thread copies what the connection writes, and the backstop restarts the WAL', async () => {
    const { raw, store } = scratch();
    const seen: Array<{ log: number; checkpointed: number }> = [];
    const stop = store.backgroundCheckpoints?.({ intervalMs: 10, backstopPages: 300, onCheckpoint: (r) => seen.push(r) });
    expect(stop).toBeDefined();
    expect(raw.pragma('wal_autocheckpoint', { simple: true })).toBe(300);
    write(raw, 20);
    await until(() => seen.some((r) => r.log > 0 && r.checkpointed === r.log));
    // Past the backstop, the connection checkpoints the rest and the WAL starts over: it never
    // holds much more than the backstop, however much is written.
    for (let round = 0; round < 10; round++) {
      write(raw, 15, 1_000 + round * 100);
      await new Promise((r) => setTimeout(r, 15));
    }
    const frames = (raw.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>)[0].log;
    expect(frames).toBeLessThan(300 + 200);
    await stop?.();
    expect(raw.pragma('wal_autocheckpoint', { simple: true })).toBe(FOREGROUND_CHECKPOINT_PAGES);
    expect(raw.prepare('select count(*) as n from t').get()).toEqual({ n: 20 + 150 });
    expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
    await store.close();
  });

  it('what was written survives a reopen, with the thread stopped before the close', async () => {
    const { raw, store, file } = scratch();
    const stop = store.backgroundCheckpoints?.({ intervalMs: 5 });
    write(raw, 50);
    await stop?.();
    await store.close();
    const again = openSqlite(file);
    expect(again.raw.prepare('select count(*) as n from t').get()).toEqual({ n: 50 });
    expect(again.raw.pragma('integrity_check', { simple: true })).toBe('ok');
    await again.store.close();
  });

  it('an in-memory store has no file to checkpoint', () => {
    const { store } = openSqlite(':memory:');
    expect(store.backgroundCheckpoints).toBeUndefined();
  });

  it('a thread that cannot open the file stops, and the connection checkpoints again', async () => {
    const { raw, store, file } = scratch();
    const errors: string[] = [];
    // The thread opens the file by its path: moved away, it is not there (the connection keeps
    // its open file).
    fs.renameSync(file, `${file}.moved`);
    const stop = store.backgroundCheckpoints?.({ intervalMs: 5, onError: (m) => errors.push(m) });
    expect(raw.pragma('wal_autocheckpoint', { simple: true })).toBe(50_000);
    await until(() => errors.length > 0);
    expect(errors[0]).toMatch(/checkpoint thread stopped/);
    expect(raw.pragma('wal_autocheckpoint', { simple: true })).toBe(FOREGROUND_CHECKPOINT_PAGES);
    fs.renameSync(`${file}.moved`, file);
    await stop?.();
    await store.close();
  });
});
