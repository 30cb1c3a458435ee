// Keeps the layering honest (STYLE §12): the pure core imports no I/O, and no domain module
// imports the HTTP edge. A plain import scan: it needs no extra tool and fails loudly.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve('src');
const imports = (file: string): string[] =>
  [...fs.readFileSync(file, 'utf8').matchAll(/^import\s[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]);
const walk = (dir: string): string[] =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));

const PURE = [
  'availability/atp.ts',
  'inventory/model.ts',
  'shared/errors.ts',
  'shared/clock.ts',
  'sourcing/model.ts',
  'sourcing/engine.ts',
  'sourcing/split.ts',
  'sourcing/rules.ts',
  'sourcing/presets.ts',
  'sourcing/simulate.ts',
  'carriers/model.ts',
  'carriers/calendar.ts',
  'carriers/selector.ts',
  'carriers/config.ts',
  'carriers/demo.ts',
];
/** The decision-making cores: synchronous, so no I/O can hide in them (STYLE §3). */
const SYNC = ['sourcing/engine.ts', 'sourcing/split.ts', 'sourcing/simulate.ts', 'carriers/selector.ts', 'availability/atp.ts'];
const IO = [/\/db\//, /^kysely$/, /^pg$/, /^better-sqlite3$/, /\/http\//, /^fastify/, /^node:(fs|net|http)/];

describe('layering', () => {
  it.each(PURE)('%s (pure core) imports no I/O', (f) => {
    const bad = imports(path.join(SRC, f)).filter((i) => IO.some((re) => re.test(i)));
    expect(bad).toEqual([]);
  });

  it.each(SYNC)('%s has no await and no async function', (f) => {
    const text = fs.readFileSync(path.join(SRC, f), 'utf8').replace(/^\s*(\/\/|\*|\/\*).*$/gm, '');
    expect(text).not.toMatch(/\bawait\b|\basync\b|Promise</);
  });

  it('no domain module imports the HTTP edge', () => {
    const domain = ['inventory', 'channels', 'availability', 'auth', 'events', 'db', 'demo', 'sourcing', 'carriers', 'geo'].flatMap((d) => walk(path.join(SRC, d)));
    const bad = domain.flatMap((f) => imports(f).filter((i) => /\/http\//.test(i)).map((i) => `${path.relative(SRC, f)} → ${i}`));
    expect(bad).toEqual([]);
  });
});
