// Streams a stock feed CSV (snapshot or deltas) into the store in chunks of at most
// 10,000 rows, so memory stays flat and readers stay responsive during a 1M-row import.
// Good rows apply; every broken row is reported with its line and reason.
import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import type { Ctx } from '../context.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { MOVEMENT_KINDS, type MovementKind } from './model.ts';
import { applyDelta, applySnapshotChunk, finishFullSnapshot, type SnapshotRow } from './stock.ts';

export interface ImportOptions {
  kind: 'snapshot' | 'delta';
  asOf?: number;
  mode?: 'full' | 'partial';
  source: string;
  /** Locations the caller may write; undefined = any. */
  allowedLocationIds?: number[];
  onProgress?: (rowsRead: number) => void;
}

export interface ImportProblem {
  line: number;
  code: string;
  message: string;
}

export interface ImportSummary {
  id: string;
  kind: 'snapshot' | 'delta';
  rowsRead: number;
  applied: number;
  ignored: number;
  rejected: number;
  ignoredReasons: Record<string, number>;
  problems: ImportProblem[];
  locations: string[];
}

const MAX_PROBLEMS = 1000;
const CHUNK = 10_000;
const MAX_BUFFERED = 50_000;

export async function importStockCsv(ctx: Ctx, input: Readable, opts: ImportOptions): Promise<ImportSummary> {
  if (opts.kind === 'snapshot' && opts.asOf === undefined) throw new AppError('validation_failed', 'A snapshot import needs as_of');
  const summary: ImportSummary = { id: newId('imp'), kind: opts.kind, rowsRead: 0, applied: 0, ignored: 0, rejected: 0, ignoredReasons: {}, problems: [], locations: [] };
  const reject = (line: number, code: string, message: string) => {
    summary.rejected++;
    if (summary.problems.length < MAX_PROBLEMS) summary.problems.push({ line, code, message });
  };
  const ignore = (reason: string, n = 1) => {
    summary.ignored += n;
    summary.ignoredReasons[reason] = (summary.ignoredReasons[reason] ?? 0) + n;
  };
  const buffers = new Map<number, SnapshotRow[]>();
  let buffered = 0;
  const seenLocations = new Set<number>();
  const staleLocations = new Set<number>();

  const flush = async (locationId: number) => {
    const rows = buffers.get(locationId);
    if (!rows || rows.length === 0) return;
    buffers.set(locationId, []);
    buffered -= rows.length;
    const r = await applySnapshotChunk(ctx, locationId, opts.asOf as number, rows, opts.source, opts.mode ?? 'full');
    summary.applied += r.applied;
    if (r.stale) {
      staleLocations.add(locationId);
      ignore('stale_snapshot', r.ignored);
    } else if (r.ignored) ignore('newer_baseline_or_duplicate', r.ignored);
  };

  const parser = input.pipe(
    parse({ columns: (h: string[]) => h.map((c) => c.trim().toLowerCase()), relax_column_count: true, skip_empty_lines: true, trim: true, skip_records_with_error: true, bom: true, info: true }),
  );
  parser.on('skip', (err: { lines?: number; message: string }) => reject(err.lines ?? 0, 'malformed_row', err.message));
  let headerChecked = false;
  try {
    for await (const rec of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
      const { record, info } = rec;
      const line = info.lines;
      if (!headerChecked) {
        const need = opts.kind === 'snapshot' ? ['location', 'sku', 'on_hand'] : ['location', 'sku', 'quantity'];
        const missing = need.filter((c) => !(c in record));
        if (missing.length) throw new AppError('malformed_csv', `The CSV header must contain ${need.join(', ')} (missing: ${missing.join(', ')})`);
        headerChecked = true;
      }
      summary.rowsRead++;
      if (summary.rowsRead % 10_000 === 0) opts.onProgress?.(summary.rowsRead);
      const loc = ctx.projection.location(record.location ?? '');
      if (!loc) {
        reject(line, 'unknown_location', `Unknown location '${record.location ?? ''}'`);
        continue;
      }
      if (opts.allowedLocationIds && !opts.allowedLocationIds.includes(loc.id)) {
        reject(line, 'forbidden', `This key may not write location '${loc.code}'`);
        continue;
      }
      const sku = ctx.projection.sku(record.sku ?? '');
      if (!sku) {
        reject(line, 'unknown_sku', `Unknown sku '${record.sku ?? ''}'`);
        continue;
      }
      if (opts.kind === 'snapshot') {
        const onHand = parseCount(record.on_hand, false);
        const quarantine = record.quarantine === undefined || record.quarantine === '' ? undefined : parseCount(record.quarantine, false);
        if (onHand === null || quarantine === null) {
          reject(line, 'validation_failed', `on_hand and quarantine must be whole numbers ≥ 0 (got '${record.on_hand}'${record.quarantine ? `, '${record.quarantine}'` : ''})`);
          continue;
        }
        if (staleLocations.has(loc.id)) {
          ignore('stale_snapshot');
          continue;
        }
        seenLocations.add(loc.id);
        let buf = buffers.get(loc.id);
        if (!buf) buffers.set(loc.id, (buf = []));
        buf.push({ skuId: sku.id, onHand, quarantine });
        buffered++;
        if (buf.length >= CHUNK) await flush(loc.id);
        else if (buffered >= MAX_BUFFERED) {
          const largest = [...buffers.entries()].sort((a, b) => b[1].length - a[1].length)[0];
          await flush(largest[0]);
        }
      } else {
        const quantity = parseCount(record.quantity, true);
        if (quantity === null) {
          reject(line, 'validation_failed', `quantity must be a whole number (got '${record.quantity}')`);
          continue;
        }
        const kind = (record.kind || 'adjustment') as MovementKind;
        if (!MOVEMENT_KINDS.includes(kind) || kind === 'snapshot') {
          reject(line, 'validation_failed', `Unknown movement kind '${record.kind}'`);
          continue;
        }
        const seq = record.seq ? parseCount(record.seq, false) : undefined;
        const occurredAt = record.occurred_at ? Date.parse(record.occurred_at) : undefined;
        if (seq === null || (occurredAt !== undefined && Number.isNaN(occurredAt))) {
          reject(line, 'validation_failed', 'seq must be a whole number and occurred_at an ISO 8601 time');
          continue;
        }
        try {
          const out = await applyDelta(ctx, { location: loc.code, sku: sku.code, quantity, kind, seq, occurredAt, idempotencyKey: record.idempotency_key || undefined, reference: record.reference || undefined }, opts.source);
          if (out.status === 'applied') summary.applied++;
          else ignore(out.reason);
          seenLocations.add(loc.id);
        } catch (e) {
          if (e instanceof AppError) reject(line, e.code, e.message);
          else throw e;
        }
      }
    }
  } catch (e) {
    if (e instanceof AppError) throw e;
    const err = e as { code?: string; message?: string };
    if (typeof err.code === 'string' && err.code.startsWith('CSV_')) throw new AppError('malformed_csv', `The CSV cannot be read: ${err.message}`);
    throw e;
  }
  if (!headerChecked && summary.rejected === 0) throw new AppError('malformed_csv', 'The CSV has no data rows');
  for (const id of buffers.keys()) await flush(id);
  if (opts.kind === 'snapshot' && (opts.mode ?? 'full') === 'full') {
    for (const id of seenLocations) if (!staleLocations.has(id)) await finishFullSnapshot(ctx, id, opts.asOf as number, opts.source);
  }
  summary.locations = [...seenLocations].map((id) => ctx.projection.locationById(id)?.code ?? String(id));
  await recordImport(ctx, summary, opts);
  return summary;
}

function parseCount(v: string | undefined, signed: boolean): number | null {
  if (v === undefined || !(signed ? /^-?\d{1,10}$/ : /^\d{1,10}$/).test(v)) return null;
  const n = Number(v);
  return Math.abs(n) <= 2_000_000_000 ? n : null;
}

async function recordImport(ctx: Ctx, s: ImportSummary, opts: ImportOptions): Promise<void> {
  const now = ctx.clock.now();
  await ctx.store.db
    .insertInto('feed_imports')
    .values({ id: s.id, kind: s.kind, source: opts.source, as_of: opts.asOf ?? null, status: 'completed', rows_applied: s.applied, rows_ignored: s.ignored, rows_rejected: s.rejected, problems: JSON.stringify(s.problems), started_at: now, finished_at: now })
    .execute();
}
