// Snapshots (counts at `as_of`). A batch of ≤ 10,000 rows, over any number of locations,
// is applied in one transaction with set-based statements:
//   new on_hand = counted + every non-snapshot movement that occurred after as_of.
// Reservations are untouched, so they survive. A row whose position already has a newer
// baseline is ignored; a full count older than its location's last full count is ignored
// as a whole. SQLite serialises writers (BEGIN IMMEDIATE). On PostgreSQL the batch locks its
// locations (NO KEY UPDATE: snapshots of a location run one at a time, deltas' foreign-key
// checks pass) and then every position it counts, created first when missing, before it
// reads the ledger: no delta can commit in between, so none is lost. The counted positions
// come back as one text value per statement (no row objects to build: on a million-row feed
// that was more node CPU than the database spent) and are rewritten by one UPDATE … FROM
// unnest: they exist and are locked, so there is no insert to attempt first.
import { CompiledQuery, sql } from 'kysely';
import { markDirty } from '../availability/dirty.ts';
import type { Ctx } from '../context.ts';
import { bulkInsert, type ColumnType, execRaw, pgArray, valuesList } from '../db/bulk.ts';
import { ARRAY_ROWS, type Dialect, type Trx } from '../db/database.ts';
import { appendEvents } from '../events/outbox.ts';

export const SNAPSHOT_BATCH = 10_000;

export interface SnapshotRow {
  skuId: number;
  onHand: number;
  quarantine?: number;
}

export interface LocatedSnapshotRow extends SnapshotRow {
  locationId: number;
}

export interface BatchResult {
  applied: number;
  ignored: number;
  /** Locations whose full count was older than their last full count: nothing applied. */
  staleLocations: number[];
}

const POSITION_KEY: Array<[string, ColumnType]> = [['location_id', 'bigint'], ['sku_id', 'bigint']];
const POSITION_COUNT: Array<[string, ColumnType]> = [['location_id', 'bigint'], ['sku_id', 'bigint'], ['on_hand', 'integer'], ['quarantine', 'integer']];
const MOVEMENT: Array<[string, ColumnType]> = [['location_id', 'bigint'], ['sku_id', 'bigint'], ['quantity', 'integer'], ['on_hand_change', 'integer'], ['quarantine_change', 'integer']];


/**
 * `locked` is called once the batch holds its locks (its locations and every position it
 * counts, on PostgreSQL; the database, on SQLite), or when it fails or has nothing to do:
 * a batch started after that point can only wait for this one on a location they share.
 */
export async function applySnapshotBatch(
  ctx: Ctx,
  asOf: number,
  rows: LocatedSnapshotRow[],
  source: string,
  mode: 'full' | 'partial' = 'full',
  locked: () => void = () => {},
): Promise<BatchResult> {
  try {
    return await applyBatch(ctx, asOf, rows, source, mode, locked);
  } finally {
    locked();
  }
}

async function applyBatch(ctx: Ctx, asOf: number, rows: LocatedSnapshotRow[], source: string, mode: 'full' | 'partial', locked: () => void): Promise<BatchResult> {
  if (rows.length > SNAPSHOT_BATCH) throw new Error(`snapshot batches are at most ${SNAPSHOT_BATCH} rows`);
  if (rows.length === 0) return { applied: 0, ignored: 0, staleLocations: [] };
  const now = ctx.clock.now();
  const dialect = ctx.store.dialect;
  const pg = dialect === 'postgres';
  const sorted = [...rows].sort((a, b) => a.locationId - b.locationId || a.skuId - b.skuId);
  const locationIds = [...new Set(sorted.map((r) => r.locationId))];

  const result = await ctx.store.db.transaction().execute(async (trx) => {
    const locs = await trx
      .selectFrom('locations')
      .select(['id', 'code', 'snapshot_as_of'])
      .where('id', 'in', locationIds)
      .orderBy('id')
      .$if(pg, (q) => q.forNoKeyUpdate())
      .execute();
    const stale = new Set(mode === 'full' ? locs.filter((l) => l.snapshot_as_of !== null && asOf < l.snapshot_as_of).map((l) => l.id) : []);
    const live = sorted.filter((r) => !stale.has(r.locationId));
    let found = await readPositions(trx, dialect, live, pg);
    let old = align(live, found);
    if (pg) {
      // Positions the batch creates must exist, locked, before the ledger is read: insert the
      // missing ones empty, then read (and lock) them too.
      const missing = live.filter((_, i) => old[i] === undefined);
      if (missing.length) {
        await bulkInsert(trx, dialect, 'stock_positions', POSITION_KEY, missing.map((r) => [r.locationId, r.skuId]), 'on conflict (location_id, sku_id) do nothing', [
          ['on_hand', 'integer', 0],
          ['reserved', 'integer', 0],
          ['quarantine', 'integer', 0],
          ['version', 'integer', 0],
          ['updated_at', 'bigint', now],
        ]);
        found = [...found, ...(await readPositions(trx, dialect, missing, true))].sort((a, b) => key(a[0], a[1]) - key(b[0], b[1]));
        old = align(live, found);
      }
    }
    locked();
    const after = await movementsAfter(trx, [...new Set(live.map((r) => r.locationId))], asOf);

    type Write = { locationId: number; skuId: number; onHand: number; quarantine: number; dOnHand: number; dQuarantine: number; counted: number; prev: OldRow | undefined };
    const writes: Write[] = [];
    let ignored = rows.length - live.length;
    let lastKey = -1;
    for (let i = 0; i < live.length; i++) {
      const r = live[i];
      const k = key(r.locationId, r.skuId);
      const prev = old[i];
      if (k === lastKey || (prev && prev[6] !== null && prev[6] >= asOf)) {
        ignored++;
        continue;
      }
      lastKey = k;
      const a = after.size ? after.get(k) : undefined;
      const onHand = r.onHand + (a?.onHand ?? 0);
      const quarantine = r.quarantine === undefined ? (prev?.[4] ?? 0) : Math.max(0, r.quarantine + (a?.quarantine ?? 0));
      writes.push({ locationId: r.locationId, skuId: r.skuId, onHand, quarantine, dOnHand: onHand - (prev?.[2] ?? 0), dQuarantine: quarantine - (prev?.[4] ?? 0), counted: r.onHand, prev });
    }

    if (pg) await updatePositions(trx, writes, asOf, now);
    else
      await bulkInsert(
        trx,
        dialect,
        'stock_positions',
        POSITION_COUNT,
        writes.map((w) => [w.locationId, w.skuId, w.onHand, w.quarantine]),
        `on conflict (location_id, sku_id) do update set on_hand = excluded.on_hand, quarantine = excluded.quarantine,
         baseline_as_of = excluded.baseline_as_of, version = stock_positions.version + 1, updated_at = excluded.updated_at`,
        [
          ['reserved', 'integer', 0],
          ['baseline_as_of', 'bigint', asOf],
          ['version', 'integer', 1],
          ['updated_at', 'bigint', now],
        ],
      );
    const moved = writes.filter((w) => w.dOnHand !== 0 || w.dQuarantine !== 0);
    await bulkInsert(
      trx,
      dialect,
      'stock_movements',
      MOVEMENT,
      moved.map((w) => [w.locationId, w.skuId, w.counted, w.dOnHand, w.dQuarantine]),
      '',
      [
        ['kind', 'text', 'snapshot'],
        ['occurred_at', 'bigint', asOf],
        ['recorded_at', 'bigint', now],
        ['source', 'text', source],
      ],
    );
    const touched = [...new Set(writes.map((w) => w.locationId))];
    if (mode === 'full' && touched.length) {
      await trx
        .updateTable('locations')
        .set({ snapshot_as_of: asOf })
        .where('id', 'in', touched)
        .where((eb) => eb.or([eb('snapshot_as_of', 'is', null), eb('snapshot_as_of', '<', asOf)]))
        .execute();
    }
    const marked = await markDirty(trx, dialect, moved.map((w) => w.skuId), now, ctx.recentMarks);
    const code = new Map(locs.map((l) => [l.id, l.code]));
    const skusOf = new Map<number, number[]>();
    for (const w of writes) {
      const list = skusOf.get(w.locationId);
      if (list) list.push(w.skuId);
      else skusOf.set(w.locationId, [w.skuId]);
    }
    await appendEvents(
      trx,
      ctx.store.dialect,
      now,
      touched.map((id) => {
        const skuIds = skusOf.get(id) ?? [];
        return {
          type: 'stock.snapshot_applied',
          aggregateType: 'location',
          aggregateId: code.get(id) ?? String(id),
          aggregateSeq: asOf,
          payload: { location: code.get(id), location_id: id, as_of: new Date(asOf).toISOString(), mode, rows_applied: skuIds.length, sku_ids: skuIds },
        };
      }),
    );
    return { applied: writes.length, ignored, staleLocations: [...stale], writes, marked };
  });
  ctx.recentMarks?.committed(result.marked, now);
  // The rows were locked (or the database was), so what we read plus what we wrote is exact.
  for (const w of result.writes) ctx.projection.applyValues(w.locationId, w.skuId, w.onHand, w.prev?.[3] ?? 0, w.quarantine, w.prev?.[5] ?? null, (w.prev?.[7] ?? 0) + 1);
  return { applied: result.applied, ignored: result.ignored, staleLocations: result.staleLocations };
}

/** One location's chunk: the shape the JSON snapshot route, the demo and the tests use. */
export async function applySnapshotChunk(
  ctx: Ctx,
  locationId: number,
  asOf: number,
  rows: SnapshotRow[],
  source: string,
  mode: 'full' | 'partial' = 'full',
): Promise<{ applied: number; ignored: number; stale: boolean }> {
  const r = await applySnapshotBatch(ctx, asOf, rows.map((x) => ({ ...x, locationId })), source, mode);
  return { applied: r.applied, ignored: r.ignored, stale: r.staleLocations.length > 0 };
}

/**
 * Ends a full snapshot: positions of the location that the snapshot did not list are
 * counted as zero (plus movements after `asOf`), in batches.
 */
export async function finishFullSnapshot(ctx: Ctx, locationId: number, asOf: number, source: string): Promise<number> {
  let zeroed = 0;
  for (;;) {
    const ids = await ctx.store.db
      .selectFrom('stock_positions')
      .select('sku_id')
      .where('location_id', '=', locationId)
      .where((eb) => eb.or([eb('baseline_as_of', 'is', null), eb('baseline_as_of', '<', asOf)]))
      .orderBy('sku_id')
      .limit(SNAPSHOT_BATCH)
      .execute();
    if (ids.length === 0) return zeroed;
    const r = await applySnapshotChunk(ctx, locationId, asOf, ids.map((i) => ({ skuId: i.sku_id, onHand: 0 })), source);
    zeroed += r.applied;
    if (r.stale || r.applied === 0) return zeroed;
  }
}

/** Positions are keyed by one number: location id × 2^26 + sku id (both well below 2^26). */
const key = (locationId: number, skuId: number): number => locationId * 67_108_864 + skuId;

/** [location_id, sku_id, on_hand, reserved, quarantine, safety_stock, baseline_as_of, version] */
type OldRow = [number, number, number, number, number, number | null, number | null, number];
const OLD_COLS = 'location_id, sku_id, on_hand, reserved, quarantine, safety_stock, baseline_as_of, version';

/** For each (sorted) batch row, its current position, by a merge over the sorted rows found. */
function align(rows: LocatedSnapshotRow[], found: OldRow[]): (OldRow | undefined)[] {
  const out = new Array<OldRow | undefined>(rows.length);
  let j = 0;
  for (let i = 0; i < rows.length; i++) {
    const k = key(rows[i].locationId, rows[i].skuId);
    while (j < found.length && key(found[j][0], found[j][1]) < k) j++;
    out[i] = j < found.length && key(found[j][0], found[j][1]) === k ? found[j] : undefined;
  }
  return out;
}

/**
 * Current positions of the batch's rows (row-locked on PostgreSQL), sorted by key. A
 * location's rows that cover a dense sku range are read as one primary-key range scan;
 * sparse ones by pairs. Rows come as arrays on SQLite (no object per row); on PostgreSQL
 * each statement returns one text value, eight numbers a position (see packedPositions).
 */
async function readPositions(trx: Trx, dialect: Dialect, rows: LocatedSnapshotRow[], lock: boolean): Promise<OldRow[]> {
  const pg = dialect === 'postgres';
  const out: OldRow[] = [];
  const put = (found: unknown[]) => {
    for (const f of found) {
      if (Array.isArray(f)) out.push(f as OldRow);
      else {
        const o = f as Record<string, number | null>;
        out.push([o.location_id as number, o.sku_id as number, o.on_hand as number, o.reserved as number, o.quarantine as number, o.safety_stock, o.baseline_as_of, o.version as number]);
      }
    }
  };
  const tail = lock ? 'order by location_id, sku_id for update' : 'order by location_id, sku_id';
  const sparse: LocatedSnapshotRow[] = [];
  for (let i = 0; i < rows.length; ) {
    let j = i;
    while (j < rows.length && rows[j].locationId === rows[i].locationId) j++;
    const lo = rows[i].skuId;
    const hi = rows[j - 1].skuId;
    if (hi - lo + 1 <= 2 * (j - i)) {
      if (pg) unpack(await execRaw(trx, packedPositions(`location_id = $1 and sku_id between $2 and $3 ${tail}`), [rows[i].locationId, lo, hi]), out);
      else put(await execRaw(trx, `${ARRAY_ROWS}select ${OLD_COLS} from stock_positions where location_id = ? and sku_id between ? and ? ${tail}`, [rows[i].locationId, lo, hi]));
    } else {
      for (let k = i; k < j; k++) sparse.push(rows[k]);
    }
    i = j;
  }
  if (pg && sparse.length) {
    const pairs = 'select * from unnest($1::bigint[], $2::bigint[])';
    const params = [pgArray(sparse.map((r) => r.locationId), 'bigint'), pgArray(sparse.map((r) => r.skuId), 'bigint')];
    unpack(await execRaw(trx, packedPositions(`(location_id, sku_id) in (${pairs}) ${tail}`), params), out);
  } else {
    for (let i = 0; i < sparse.length; i += 1000) {
      const slice = sparse.slice(i, i + 1000);
      const params: number[] = [];
      for (const r of slice) params.push(r.locationId, r.skuId);
      put(await execRaw(trx, `${ARRAY_ROWS}select ${OLD_COLS} from stock_positions where (location_id, sku_id) in (values ${valuesList(dialect, slice.length, 2)}) ${tail}`, params));
    }
  }
  // Ranges come location by location and the sparse rows after them: one sort restores key order.
  let ordered = true;
  for (let i = 1; i < out.length && ordered; i++) ordered = key(out[i - 1][0], out[i - 1][1]) < key(out[i][0], out[i][1]);
  if (!ordered) out.sort((a, b) => key(a[0], a[1]) - key(b[0], b[1]));
  return out;
}

/**
 * PostgreSQL: the positions matching `where` (which may end with ORDER BY … FOR UPDATE), as
 * one text value "l,s,on_hand,reserved,quarantine,safety,baseline,version,l,s,…" (NULL as
 * an empty field), or NULL when none matches.
 */
function packedPositions(where: string): string {
  return `select string_agg(concat(location_id, ',', sku_id, ',', on_hand, ',', reserved, ',', quarantine, ',', safety_stock, ',', baseline_as_of, ',', version), ',') as p
    from (select ${OLD_COLS} from stock_positions where ${where}) x`;
}

function unpack(result: unknown[], out: OldRow[]): void {
  const text = (result[0] as { p: string | null } | undefined)?.p;
  if (!text) return;
  const f = text.split(',');
  const num = (v: string) => (v === '' ? null : Number(v));
  for (let i = 0; i + 7 < f.length; i += 8) {
    out.push([Number(f[i]), Number(f[i + 1]), Number(f[i + 2]), Number(f[i + 3]), Number(f[i + 4]), num(f[i + 5]), num(f[i + 6]), Number(f[i + 7])]);
  }
}

/**
 * PostgreSQL: rewrites the counted positions, which exist and are locked by this transaction,
 * in one UPDATE … FROM unnest (10,000 rows a statement), cheaper than an INSERT … ON CONFLICT
 * that first tries to insert each row.
 */
async function updatePositions(trx: Trx, writes: Array<{ locationId: number; skuId: number; onHand: number; quarantine: number }>, asOf: number, now: number): Promise<void> {
  const text = `update stock_positions p set on_hand = v.on_hand, quarantine = v.quarantine, baseline_as_of = $5, version = p.version + 1, updated_at = $6
    from unnest($1::bigint[], $2::bigint[], $3::integer[], $4::integer[]) as v(location_id, sku_id, on_hand, quarantine)
    where p.location_id = v.location_id and p.sku_id = v.sku_id`;
  for (let i = 0; i < writes.length; i += SNAPSHOT_BATCH) {
    const slice = writes.slice(i, i + SNAPSHOT_BATCH);
    const params = [
      pgArray(slice.map((w) => w.locationId), 'bigint'),
      pgArray(slice.map((w) => w.skuId), 'bigint'),
      pgArray(slice.map((w) => w.onHand), 'integer'),
      pgArray(slice.map((w) => w.quarantine), 'integer'),
      asOf,
      now,
    ];
    const r = await trx.executeQuery(CompiledQuery.raw(text, params));
    if (Number(r.numAffectedRows ?? 0) !== slice.length) throw new Error(`snapshot: ${slice.length} locked positions to rewrite, ${r.numAffectedRows} rewritten`);
  }
}

async function movementsAfter(trx: Trx, locationIds: number[], asOf: number): Promise<Map<number, { onHand: number; quarantine: number }>> {
  const out = new Map<number, { onHand: number; quarantine: number }>();
  if (locationIds.length === 0) return out;
  for (let i = 0; i < locationIds.length; i += 1000) {
    const ids = locationIds.slice(i, i + 1000);
    const rows = await trx
      .selectFrom('stock_movements')
      .select((eb) => ['location_id', 'sku_id', eb.fn.sum<number>('on_hand_change').as('on_hand'), eb.fn.sum<number>('quarantine_change').as('quarantine')])
      .where('location_id', 'in', ids)
      .where('occurred_at', '>', asOf)
      // A literal, so that the planner matches the partial index (kind <> 'snapshot').
      .where(sql<boolean>`kind <> 'snapshot'`)
      .groupBy(['location_id', 'sku_id'])
      .execute();
    for (const r of rows) out.set(key(r.location_id, r.sku_id), { onHand: Number(r.on_hand), quarantine: Number(r.quarantine) });
  }
  return out;
}
