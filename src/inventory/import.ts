// Streams a stock feed CSV (snapshot or deltas) into the store in chunks of at most
// 10,000 rows, so memory stays flat and readers stay responsive during a 1M-row import.
// Good rows apply; every broken row is reported with its line and reason.
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { parse as parseCsvSync } from 'csv-parse/sync';
import type { Ctx } from '../context.ts';
import { appendEvents } from '../events/outbox.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { MOVEMENT_KINDS, type MovementKind } from './model.ts';
import { applyDelta } from './stock.ts';
import { applySnapshotBatch, finishFullSnapshot, type LocatedSnapshotRow, SNAPSHOT_BATCH } from './snapshot.ts';

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

export async function importStockCsv(ctx: Ctx, input: Readable, opts: ImportOptions): Promise<ImportSummary> {
  if (opts.kind === 'snapshot' && opts.asOf === undefined) throw new AppError('validation_failed', 'A snapshot import needs as_of');
  const startedAt = ctx.clock.now();
  const summary: ImportSummary = { id: newId('imp'), kind: opts.kind, rowsRead: 0, applied: 0, ignored: 0, rejected: 0, ignoredReasons: {}, problems: [], locations: [] };
  const reject = (line: number, code: string, message: string) => {
    summary.rejected++;
    if (summary.problems.length < MAX_PROBLEMS) summary.problems.push({ line, code, message });
  };
  const ignore = (reason: string, n = 1) => {
    summary.ignored += n;
    summary.ignoredReasons[reason] = (summary.ignoredReasons[reason] ?? 0) + n;
  };
  // Rows are applied in batches of SNAPSHOT_BATCH, whatever the mix of locations.
  let batch: LocatedSnapshotRow[] = [];
  const seenLocations = new Set<number>();
  const staleLocations = new Set<number>();

  // On PostgreSQL, batches are applied while the next ones are read: parsing costs the node
  // process about a third of what applying costs the database, and they run on different
  // cores; and two batches may be applied at once, on two connections: a batch starts once
  // the previous one holds its locks (its locations and positions), so a batch that shares a
  // location with an earlier one waits for it to commit, and which of two rows for one
  // position wins is the same as applying them one by one in file order; batches over other
  // locations do not wait. A location found stale is known to the reader a batch or two
  // later; its rows in those batches are found stale by applySnapshotBatch itself, and
  // counted the same way. SQLite applies a batch in the node process itself: nothing to
  // overlap, so each batch is applied before the next is read, as before.
  const overlap = ctx.store.dialect === 'postgres';
  const maxInFlight = overlap ? 2 : 1;
  const inFlight = new Set<Promise<void>>();
  let previousLocked: Promise<void> = Promise.resolve();
  let failure: { error: unknown } | undefined;
  const rethrow = () => {
    if (failure) throw failure.error;
  };
  const apply = async (rows: LocatedSnapshotRow[], locked: () => void) => {
    const r = await applySnapshotBatch(ctx, opts.asOf as number, rows, opts.source, opts.mode ?? 'full', locked);
    summary.applied += r.applied;
    const staleRows = r.staleLocations.length ? rows.filter((x) => r.staleLocations.includes(x.locationId)).length : 0;
    for (const id of r.staleLocations) staleLocations.add(id);
    if (staleRows) ignore('stale_snapshot', staleRows);
    if (r.ignored - staleRows > 0) ignore('newer_baseline_or_duplicate', r.ignored - staleRows);
  };
  /** Starts applying the batch read so far, once there is room; `wait` then awaits every batch. */
  const flush = async (wait: boolean) => {
    if (batch.length) {
      while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
      rethrow();
      const rows = batch;
      batch = [];
      const previous = previousLocked;
      let locked = () => {};
      previousLocked = new Promise<void>((resolve) => {
        locked = resolve;
      });
      const run = async () => {
        await previous;
        if (!failure) await apply(rows, locked);
      };
      // Caught here and rethrown by a later flush: never an unhandled rejection.
      const p: Promise<void> = run()
        .catch((error: unknown) => {
          failure ??= { error };
        })
        .finally(() => {
          locked();
          inFlight.delete(p);
        });
      inFlight.add(p);
    }
    if (wait || !overlap) while (inFlight.size) await Promise.race(inFlight);
    rethrow();
  };

  // Line by line, so that a broken line (a stray quote, say) is rejected alone and can never
  // swallow the lines after it. Stock feeds carry codes and integers: no field spans lines.
  let header: string[] | null = null;
  let line = 0;
  try {
    for await (const batchOfLines of lineBatches(input)) {
      for (const raw of batchOfLines) {
        line++;
        // Let the batch in flight take its next step (its statements are short; the database
        // would otherwise wait for the reader to finish the next 10,000 lines).
        if ((line & 255) === 0 && inFlight.size) await new Promise<void>((resolve) => setImmediate(resolve));
        const text = line === 1 ? raw.replace(/^\uFEFF/, '') : raw;
        if (text.trim() === '') continue;
        let fields: string[];
        try {
          fields = splitCsvLine(text);
        } catch (e) {
          if (!header) throw new AppError('malformed_csv', `The CSV header cannot be read: ${(e as Error).message}`);
          summary.rowsRead++;
          reject(line, 'malformed_row', `Line ${line} cannot be read as CSV: ${(e as Error).message}`);
          continue;
        }
        if (!header) {
          header = fields.map((c) => c.trim().toLowerCase());
          const need = opts.kind === 'snapshot' ? ['location', 'sku', 'on_hand'] : ['location', 'sku', 'quantity'];
          const missing = need.filter((c) => !header?.includes(c));
          if (missing.length) throw new AppError('malformed_csv', `The CSV header must contain ${need.join(', ')} (missing: ${missing.join(', ')})`);
          continue;
        }
        const record: Record<string, string> = {};
        for (let i = 0; i < header.length; i++) record[header[i]] = (fields[i] ?? '').trim();
        summary.rowsRead++;
        if (summary.rowsRead % 10_000 === 0) opts.onProgress?.(summary.rowsRead);
        if (fields.length > header.length) {
          reject(line, 'malformed_row', `Line ${line} has ${fields.length} fields; the header has ${header.length}`);
          continue;
        }
        const loc = ctx.projection.location(record.location ?? '');
        // A location outside the key's scope is reported exactly like one that does not exist.
        if (!loc || (opts.allowedLocationIds && !opts.allowedLocationIds.includes(loc.id))) {
          reject(line, 'unknown_location', `Unknown location '${record.location ?? ''}'`);
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
          batch.push({ locationId: loc.id, skuId: sku.id, onHand, quarantine });
          if (batch.length >= SNAPSHOT_BATCH) await flush(false);
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
    }
  } catch (e) {
    // Never leave a batch running behind a failed import.
    await Promise.all([...inFlight]);
    throw e;
  }
  await flush(true);
  const headerChecked = header !== null;
  if (!headerChecked) throw new AppError('malformed_csv', 'The CSV is empty: it needs a header line');
  if (summary.rowsRead === 0) throw new AppError('malformed_csv', 'The CSV has a header but no data rows');
  if (opts.kind === 'snapshot' && (opts.mode ?? 'full') === 'full') {
    if (summary.rejected > 0) {
      // A rejected row is a count we could not read: zeroing "unlisted" skus could wipe it.
      summary.problems.push({ line: 0, code: 'full_snapshot_incomplete', message: 'Rows were rejected, so skus missing from the file were not set to zero; fix the rows and send the file again' });
    } else {
      for (const id of seenLocations) if (!staleLocations.has(id)) await finishFullSnapshot(ctx, id, opts.asOf as number, opts.source);
    }
  }
  summary.locations = [...seenLocations].map((id) => ctx.projection.locationById(id)?.code ?? String(id));
  await recordImport(ctx, summary, opts, startedAt);
  return summary;
}

/**
 * The lines of a stream, a chunk's worth at a time: a promise per chunk rather than per line
 * (readline's async iterator costs about a microsecond a line, a second per million rows).
 */
async function* lineBatches(input: Readable): AsyncGenerator<string[]> {
  const decoder = new StringDecoder('utf8');
  let tail = '';
  const strip = (l: string) => (l.endsWith('\r') ? l.slice(0, -1) : l);
  for await (const chunk of input) {
    const parts = (tail + (typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer))).split('\n');
    tail = parts.pop() ?? '';
    yield parts.map(strip);
  }
  const last = tail + decoder.end();
  if (last) yield [strip(last)];
}

/** Splits one CSV line; plain lines take the fast path, quoted ones go through csv-parse. */
export function splitCsvLine(text: string): string[] {
  if (!text.includes('"')) return text.split(',');
  const rows = parseCsvSync(text, { relax_column_count: true }) as string[][];
  if (rows.length !== 1) throw new Error('a quoted field is not closed on this line');
  return rows[0];
}

function parseCount(v: string | undefined, signed: boolean): number | null {
  if (v === undefined || !(signed ? /^-?\d{1,10}$/ : /^\d{1,10}$/).test(v)) return null;
  const n = Number(v);
  return Math.abs(n) <= 2_000_000_000 ? n : null;
}

async function recordImport(ctx: Ctx, s: ImportSummary, opts: ImportOptions, startedAt: number): Promise<void> {
  const now = ctx.clock.now();
  await ctx.store.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('feed_imports')
      .values({ id: s.id, kind: s.kind, source: opts.source, as_of: opts.asOf ?? null, status: 'completed', rows_applied: s.applied, rows_ignored: s.ignored, rows_rejected: s.rejected, problems: JSON.stringify(s.problems), started_at: startedAt, finished_at: now })
      .execute();
    await appendEvents(trx, ctx.store.dialect, now, [
      {
        type: 'stock.import_completed',
        aggregateType: 'feed_import',
        aggregateId: s.id,
        aggregateSeq: 1,
        payload: { id: s.id, kind: s.kind, source: opts.source, as_of: opts.asOf === undefined ? null : new Date(opts.asOf).toISOString(), rows_read: s.rowsRead, applied: s.applied, ignored: s.ignored, rejected: s.rejected, locations: s.locations },
      },
    ]);
  });
}
