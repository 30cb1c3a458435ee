// Alternating runs of one figure on two builds: a git revision (the base, default HEAD) and the
// working tree. On a shared machine a single run moves by ±15–25 %; a change smaller than that
// shows only across alternating pairs, each pair in the opposite order to the one before (so a
// machine getting slower or faster over the session weighs on both sides alike).
//
//   npm run bench:ab -- order.capture.cpu                       # 3 pairs, SQLite, against HEAD
//   npm run bench:ab -- order.capture.http --base main~2 --pairs 4 --backend postgres
//
// The base is checked out in a temporary git worktree sharing this tree's node_modules, removed
// at the end. Every run is that tree's `npm run bench -- <figure> --backend <b>` (the
// environment passes through: OMS_PG_POOL…); the figure's JSON line is kept. Prints each run, then per
// field the mean and range of each side and new ÷ base of the means.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Figure, log, machine, round } from './report.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Fields compared when --fields is not given (a dotted path reads inside an object). */
export const DEFAULT_FIELDS = [
  'value',
  'p50_ms',
  'p99_ms',
  'ratio',
  'process_cpu_ms_per_order',
  'cpu_ms_per_order.process',
  'cpu_ms_per_order.event_loop_thread',
  'writer_thread_busy_ms_per_order',
  'writer_thread.busy_ms_per_order',
  'postgres_cpu_ms_per_order',
  'machine.load_1m',
];

export interface Side {
  runs: number[];
  mean: number;
  min: number;
  max: number;
}

/** A dotted field of a figure, if it is a finite number. */
export function field(f: Record<string, unknown>, dotted: string): number | null {
  let v: unknown = f;
  for (const k of dotted.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Per field present on both sides: each side's runs, mean and range, and new ÷ base of the means. */
export function compare(base: Figure[], next: Figure[], fields: string[]): Array<{ field: string; base: Side; next: Side; ratio: number | null }> {
  const side = (figs: Figure[], name: string): Side | null => {
    const runs = figs.map((f) => field(f, name)).filter((v): v is number => v !== null);
    if (runs.length === 0) return null;
    return { runs, mean: round(runs.reduce((a, b) => a + b, 0) / runs.length, 4), min: Math.min(...runs), max: Math.max(...runs) };
  };
  const out = [];
  for (const name of fields) {
    const b = side(base, name);
    const n = side(next, name);
    if (!b || !n) continue;
    out.push({ field: name, base: b, next: n, ratio: b.mean !== 0 ? round(n.mean / b.mean, 3) : null });
  }
  return out;
}

interface Options {
  figure: string;
  base: string;
  backend: 'sqlite' | 'postgres';
  pairs: number;
  fields: string[];
}

function parseArgs(argv: string[]): Options {
  const o: Options = { figure: '', base: 'HEAD', backend: 'sqlite', pairs: 3, fields: DEFAULT_FIELDS };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--base') o.base = value();
    else if (a === '--backend') {
      const v = value();
      if (v !== 'sqlite' && v !== 'postgres') throw new Error('--backend must be sqlite or postgres');
      o.backend = v;
    } else if (a === '--pairs') {
      o.pairs = Number(value());
      if (!Number.isInteger(o.pairs) || o.pairs < 1) throw new Error('--pairs must be a positive integer');
    } else if (a === '--fields') o.fields = value().split(',');
    else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else o.figure = a;
  }
  if (!o.figure) throw new Error('usage: npm run bench:ab -- <figure> [--base REV] [--backend sqlite|postgres] [--pairs N] [--fields a,b.c]');
  return o;
}

/** One `bench <figure>` run in `dir`: the figure's JSON object (the first whose name is the figure). */
function runOnce(dir: string, o: Options): Promise<Figure> {
  return new Promise((resolve, reject) => {
    // Each tree's own `npm run bench` script: the base runs with the node flags it had.
    const child = spawn('npm', ['run', '--silent', 'bench', '--', o.figure, '--backend', o.backend], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const figures = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Figure);
      const fig = figures.find((f) => f.name === o.figure) ?? figures[0];
      if (code !== 0 || !fig) reject(new Error(`bench in ${dir} exited with ${code}:\n${err.split('\n').slice(-15).join('\n')}`));
      else resolve(fig);
    });
  });
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const rev = execFileSync('git', ['rev-parse', '--short', o.base], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
  const worktree = fs.mkdtempSync(path.join(os.tmpdir(), 'oms-ab-'));
  const m = machine();
  log(`machine: ${m.cores} × ${m.cpu}, node ${m.node}; ${o.figure} on ${o.backend}, ${o.pairs} alternating pair(s): base ${rev} against the working tree${dirty ? ' (with uncommitted changes)' : ''}`);
  execFileSync('git', ['worktree', 'add', '--detach', '--force', worktree, rev], { cwd: ROOT, stdio: 'ignore' });
  try {
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(worktree, 'node_modules'));
    const lockOf = (dir: string) => fs.readFileSync(path.join(dir, 'package-lock.json'), 'utf8');
    if (lockOf(worktree) !== lockOf(ROOT)) log('WARNING: the base has another package-lock.json; it runs with this tree’s node_modules');
    const base: Figure[] = [];
    const next: Figure[] = [];
    for (let p = 0; p < o.pairs; p++) {
      const order: Array<['base' | 'new', string, Figure[]]> = [
        ['base', worktree, base],
        ['new', ROOT, next],
      ];
      if (p % 2 === 1) order.reverse();
      for (const [label, dir, into] of order) {
        const f = await runOnce(dir, o);
        into.push(f);
        log(`pair ${p + 1} ${label.padEnd(4)} ${o.fields.map((k) => `${k}=${field(f, k) ?? '–'}`).join(' ')}`);
      }
    }
    const rows = compare(base, next, o.fields);
    const result = { figure: o.figure, backend: o.backend, base: rev, pairs: o.pairs, machine: m, fields: rows };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    const w = Math.max(...rows.map((r) => r.field.length));
    process.stderr.write(`\n${'field'.padEnd(w)}  base mean [range]            new mean [range]             new ÷ base\n`);
    for (const r of rows) {
      const s = (x: Side) => `${x.mean} [${x.min}–${x.max}]`.padEnd(28);
      process.stderr.write(`${r.field.padEnd(w)}  ${s(r.base)} ${s(r.next)} ${r.ratio ?? '–'}\n`);
    }
  } finally {
    execFileSync('git', ['worktree', 'remove', '--force', worktree], { cwd: ROOT, stdio: 'ignore' });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(2);
  });
}
