// bench/orders.ts: the WAL's frames named by table and index (wal_pages), and the target turned
// into CPU per order (cpu_budget_ms_per_order), the process's I/O counters (syscalls_per_order).
import { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { cpuBudget, type Floor, ioCounters, type OrderLoadResult, type RawRun, walPagesByBtree } from '../../bench/orders.ts';

const dir = mkdtempSync(join(tmpdir(), 'oms-bench-wal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('wal_pages', () => {
  it('names every frame of the current WAL by its table or index, with the commits', () => {
    const file = join(dir, 'wal.sqlite');
    const db = new SQLite(file);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('wal_autocheckpoint = 0');
      db.exec('create table t (id integer primary key, k text, v text); create index t_k on t (k)');
      db.pragma('wal_checkpoint(TRUNCATE)');
      const insert = db.prepare('insert into t (k, v) values (?, ?)');
      // Five commits of keys at random places: the index takes pages all over, the table appends.
      for (let c = 0; c < 5; c++) db.transaction(() => {
        for (let i = 0; i < 400; i++) insert.run(Math.random().toString(36).slice(2), 'x'.repeat(200));
      })();
      const w = walPagesByBtree(file);
      expect(w).not.toBeNull();
      if (!w) return;
      expect(Object.keys(w.share_by_btree)).toEqual(expect.arrayContaining(['t', 't_k']));
      const shares = Object.values(w.share_by_btree);
      expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 2);
      expect(w.frames).toBeGreaterThan(5);
      expect(w.frames_per_commit).toBeCloseTo(w.frames / 5, 1);
      // Once copied and truncated, there is nothing to name.
      db.pragma('wal_checkpoint(TRUNCATE)');
      expect(walPagesByBtree(file)).toBeNull();
    } finally {
      db.close();
    }
  });

  it('is null without a WAL', () => {
    expect(walPagesByBtree(join(dir, 'none.sqlite'))).toBeNull();
  });
});

describe('cpu_budget_ms_per_order', () => {
  it('is the cores over the target, less the load generator, the bare HTTP exchange and the raw transaction', () => {
    const oms = { cpuMs: 110, ok: 1000 } as OrderLoadResult;
    const floor: Floor = { rps: 17_000, p99: 13, serverCpuMs: 0.05, loadCpuMs: 0.06 };
    const raw = { cpuMsPerOrder: 0.1 } as RawRun;
    const b = cpuBudget(3000, 1.2, 300, oms, floor, raw);
    const atTarget = (cpus().length * 1000) / 3000;
    expect(b.at_target).toBeCloseTo(atTarget, 3);
    expect(b.load_generator).toBeCloseTo(0.11, 4);
    expect(b.left_at_target).toBeCloseTo(atTarget - 0.11 - 0.05 - 0.1, 3);
    // The process's 1.2 ms and PostgreSQL's 300 ms over 1,000 orders, less the two floors.
    expect(b.oms_beyond_floors).toBeCloseTo(1.2 + 0.3 - 0.05 - 0.1, 3);
  });
});

describe('syscalls_per_order', () => {
  it.runIf(process.platform === 'linux')('counts this process\'s read and write calls and the bytes written', () => {
    const file = join(dir, 'io.bin');
    const fd = openSync(file, 'w');
    try {
      const before = ioCounters();
      for (let i = 0; i < 5; i++) writeSync(fd, Buffer.alloc(1000, 1));
      fsyncSync(fd);
      readFileSync(file);
      const after = ioCounters();
      // Other threads of this process (vitest's) may write too: at least ours are counted.
      expect(after.writes - before.writes).toBeGreaterThanOrEqual(5);
      expect(after.written - before.written).toBeGreaterThanOrEqual(5000);
      expect(after.reads - before.reads).toBeGreaterThanOrEqual(1);
    } finally {
      closeSync(fd);
    }
  });
});
