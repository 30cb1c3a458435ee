// Figures, the machine they were measured on, and small statistics helpers.
import os from 'node:os';

export type BackendName = 'sqlite' | 'postgres';

export interface Machine {
  cores: number;
  cpu: string;
  node: string;
  platform: string;
  memory_gb: number;
  /** 1-minute load average when the figure was taken: other work on the machine skews figures. */
  load_1m: number;
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    node: process.version,
    platform: `${os.platform()}-${os.arch()}`,
    memory_gb: Math.round(os.totalmem() / 2 ** 30),
    load_1m: Math.round(os.loadavg()[0] * 100) / 100,
  };
}

export interface Figure {
  name: string;
  backend: BackendName;
  value: number;
  unit: string;
  p50_ms?: number;
  p99_ms?: number;
  /** The same work done straight on the driver, without the OMS, in the same run. */
  ceiling?: number | null;
  ceiling_unit?: string;
  ceiling_p50_ms?: number;
  ceiling_p99_ms?: number;
  /** value ÷ ceiling. */
  ratio?: number | null;
  target?: string;
  meets_target?: boolean;
  [extra: string]: unknown;
}

/** Percentile (0..100) of an unsorted sample, by nearest rank on a sorted copy. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export function summarise(samplesMs: number[]): { p50: number; p99: number; mean: number; n: number } {
  const s = Float64Array.from(samplesMs).sort();
  let sum = 0;
  for (const v of s) sum += v;
  return { p50: percentile(s, 50), p99: percentile(s, 99), mean: s.length ? sum / s.length : Number.NaN, n: s.length };
}

export const round = (v: number, digits = 3): number => {
  if (!Number.isFinite(v)) return v;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};

/** Three significant digits for big numbers, three decimals for small ones. */
export const tidy = (v: number): number => (Math.abs(v) >= 1000 ? Math.round(v) : Math.abs(v) >= 10 ? round(v, 1) : round(v, 3));

export const ratio = (value: number, ceiling: number | null | undefined): number | null =>
  ceiling && Number.isFinite(ceiling) && Number.isFinite(value) ? round(value / ceiling, 3) : null;

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Tracks the peak resident set size while `fn` runs (sampled every 25 ms). */
export async function withPeakRss<T>(fn: () => Promise<T>): Promise<{ result: T; peakRssMb: number; startRssMb: number }> {
  const start = process.memoryUsage.rss();
  let peak = start;
  const t = setInterval(() => {
    const r = process.memoryUsage.rss();
    if (r > peak) peak = r;
  }, 25);
  try {
    const result = await fn();
    const r = process.memoryUsage.rss();
    if (r > peak) peak = r;
    return { result, peakRssMb: Math.round(peak / 2 ** 20), startRssMb: Math.round(start / 2 ** 20) };
  } finally {
    clearInterval(t);
  }
}
