// Stock feeds and positions: deltas, snapshots (JSON and CSV), positions, movements,
// safety stock. Store and integration keys act only on their own locations.
import { Type } from '@sinclair/typebox';
import { canActOnLocation, type Principal } from '../../auth/keys.ts';
import type { Ctx } from '../../context.ts';
import { importStockCsv } from '../../inventory/import.ts';
import { MOVEMENT_KINDS } from '../../inventory/model.ts';
import { applyDelta, listMovements, setSafetyStock } from '../../inventory/stock.ts';
import { applySnapshotChunk, finishFullSnapshot } from '../../inventory/snapshot.ts';
import { iso } from '../../shared/clock.ts';
import { AppError } from '../../shared/errors.ts';
import type { App } from '../app.ts';
import { requireRole } from '../app.ts';
import { batchCap, Code, Enum, Int, Iso, NonNegInt, Page, PageQuery, security, withErrors } from '../schemas.ts';


function scopedLocation(ctx: Ctx, p: Principal, code: string) {
  const loc = ctx.projection.location(code);
  // Outside the key's scope looks exactly like "does not exist": never leak the data.
  if (!loc || !canActOnLocation(p, loc.id)) throw new AppError('unknown_location', `Location '${code}' does not exist`);
  return loc;
}

const Delta = Type.Object(
  {
    location: Code,
    sku: Code,
    quantity: Int,
    kind: Type.Optional(Enum(MOVEMENT_KINDS.filter((k) => k !== 'snapshot'))),
    occurred_at: Type.Optional(Iso),
    seq: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
    idempotency_key: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    reference: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

const DeltaResult = Type.Object({
  location: Type.String(),
  sku: Type.String(),
  status: Type.Union([Type.Literal('applied'), Type.Literal('ignored'), Type.Literal('rejected')]),
  reason: Type.Optional(Type.String()),
  on_hand: Type.Optional(Type.Integer()),
  reserved: Type.Optional(Type.Integer()),
});

const SnapshotBody = Type.Object(
  {
    location: Code,
    as_of: Iso,
    mode: Type.Optional(Type.Union([Type.Literal('full'), Type.Literal('partial')], { description: 'full (default): skus not listed count as zero.' })),
    items: Type.Array(Type.Object({ sku: Code, on_hand: NonNegInt, quarantine: Type.Optional(NonNegInt) }, { additionalProperties: false }), { maxItems: 10_000 }),
  },
  { additionalProperties: false },
);

const ImportSummary = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  rows_read: Type.Integer(),
  applied: Type.Integer(),
  ignored: Type.Integer(),
  rejected: Type.Integer(),
  ignored_reasons: Type.Record(Type.String(), Type.Integer()),
  problems: Type.Array(Type.Object({ line: Type.Integer(), code: Type.String(), message: Type.String() })),
  locations: Type.Array(Type.String()),
});

const PositionOut = Type.Object({
  sku: Type.String(),
  on_hand: Type.Integer(),
  reserved: Type.Integer(),
  quarantine: Type.Integer(),
  safety_stock: Type.Integer(),
  safety_stock_override: Type.Union([Type.Integer(), Type.Null()]),
  available: Type.Integer(),
  baseline_as_of: Type.Union([Type.String(), Type.Null()]),
  version: Type.Integer(),
});

export function registerStockRoutes(app: App, ctx: Ctx, opts: { csvLimit: number }): void {
  const db = ctx.store.db;

  app.post(
    '/stock/deltas',
    {
      schema: {
        tags: ['stock'],
        summary: 'Apply up to 1,000 stock deltas; each needs a seq or an idempotency_key, so replays change nothing',
        security,
        body: Type.Object({ items: Type.Array(Delta, { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false }),
        response: withErrors({ 200: Type.Object({ items: Type.Array(DeltaResult) }) }),
      },
      preValidation: batchCap('items', 1000),
    },
    async (req) => {
      const p = requireRole(req, 'integration', 'store');
      for (const d of req.body.items) scopedLocation(ctx, p, d.location);
      const items = [];
      for (const d of req.body.items) {
        const occurredAt = d.occurred_at ? Date.parse(d.occurred_at) : undefined;
        try {
          const out = await applyDelta(ctx, { location: d.location, sku: d.sku, quantity: d.quantity, kind: d.kind, occurredAt, seq: d.seq, idempotencyKey: d.idempotency_key, reference: d.reference }, `key:${p.keyId}`);
          items.push(out.status === 'applied' ? { location: d.location, sku: d.sku, status: 'applied' as const, on_hand: out.position.on_hand, reserved: out.position.reserved } : { location: d.location, sku: d.sku, status: 'ignored' as const, reason: out.reason });
        } catch (e) {
          // One bad item must not hide the others' outcome when a batch is sent.
          if (e instanceof AppError && req.body.items.length > 1) items.push({ location: d.location, sku: d.sku, status: 'rejected' as const, reason: e.code });
          else throw e;
        }
      }
      return { items };
    },
  );

  app.post(
    '/stock/snapshots',
    { schema: { tags: ['stock'], summary: 'Apply a snapshot (count) of one location at as_of, up to 10,000 rows; larger ones go through /stock/imports', security, body: SnapshotBody, response: withErrors({ 200: ImportSummary }) } },
    async (req) => {
      const p = requireRole(req, 'integration', 'store');
      const loc = scopedLocation(ctx, p, req.body.location);
      const asOf = Date.parse(req.body.as_of);
      const unknown = req.body.items.filter((i) => !ctx.projection.sku(i.sku)).map((i) => i.sku);
      if (unknown.length) throw new AppError('unknown_sku', `Unknown sku code(s): ${unknown.slice(0, 20).join(', ')}`, { skus: unknown });
      const rows = req.body.items.map((i) => ({ skuId: ctx.projection.sku(i.sku)?.id as number, onHand: i.on_hand, quarantine: i.quarantine }));
      const source = `key:${p.keyId}`;
      const mode = req.body.mode ?? 'full';
      const r = await applySnapshotChunk(ctx, loc.id, asOf, rows, source, mode);
      if (!r.stale && mode === 'full') await finishFullSnapshot(ctx, loc.id, asOf, source);
      return { id: 'inline', kind: 'snapshot', rows_read: rows.length, applied: r.applied, ignored: r.ignored, rejected: 0, ignored_reasons: r.ignored ? { [r.stale ? 'stale_snapshot' : 'newer_baseline_or_duplicate']: r.ignored } : {}, problems: [], locations: [loc.code] };
    },
  );

  app.register(async (scope) => {
    scope.addContentTypeParser(['text/csv', 'application/csv'], { bodyLimit: opts.csvLimit }, (_req, payload, done) => done(null, payload));
    (scope as unknown as App).post(
      '/stock/imports',
      {
        bodyLimit: opts.csvLimit,
        schema: {
          tags: ['stock'],
          summary: 'Stream a CSV feed. Snapshot columns: location,sku,on_hand[,quarantine]. Delta columns: location,sku,quantity[,kind,occurred_at,seq,idempotency_key,reference]',
          security,
          consumes: ['text/csv'],
          querystring: Type.Object({ kind: Type.Union([Type.Literal('snapshot'), Type.Literal('delta')]), as_of: Type.Optional(Iso), mode: Type.Optional(Type.Union([Type.Literal('full'), Type.Literal('partial')])) }),
          response: withErrors({ 200: ImportSummary }),
        },
      },
      async (req) => {
        const p = requireRole(req, 'integration', 'store');
        if (!(req.headers['content-type'] ?? '').match(/^(text|application)\/csv/)) throw new AppError('unsupported_media_type', 'Send the feed as text/csv');
        const s = await importStockCsv(ctx, req.body as import('node:stream').Readable, {
          kind: req.query.kind,
          asOf: req.query.as_of ? Date.parse(req.query.as_of) : undefined,
          mode: req.query.mode,
          source: `key:${p.keyId}`,
          allowedLocationIds: p.role === 'admin' ? undefined : p.locationIds,
        });
        return { id: s.id, kind: s.kind, rows_read: s.rowsRead, applied: s.applied, ignored: s.ignored, rejected: s.rejected, ignored_reasons: s.ignoredReasons, problems: s.problems, locations: s.locations };
      },
    );
  });

  app.get(
    '/locations/:code/stock',
    { schema: { tags: ['stock'], summary: "A location's stock positions", security, params: Type.Object({ code: Code }), querystring: Type.Object({ ...PageQuery, sku: Type.Optional(Code) }), response: withErrors({ 200: Page(PositionOut) }) } },
    async (req) => {
      const p = requireRole(req, 'integration', 'store');
      const loc = scopedLocation(ctx, p, req.params.code);
      const limit = req.query.limit ?? 100;
      let q = db
        .selectFrom('stock_positions as p')
        .innerJoin('skus as s', 's.id', 'p.sku_id')
        .select(['s.code as sku', 'p.on_hand', 'p.reserved', 'p.quarantine', 'p.safety_stock', 'p.baseline_as_of', 'p.version'])
        .where('p.location_id', '=', loc.id);
      if (req.query.sku) q = q.where('s.code', '=', req.query.sku);
      if (req.query.after) q = q.where('s.code', '>', req.query.after);
      const rows = await q.orderBy('s.code').limit(limit).execute();
      return {
        items: rows.map((r) => {
          const safety = r.safety_stock ?? loc.defaultSafetyStock;
          return { sku: r.sku, on_hand: r.on_hand, reserved: r.reserved, quarantine: r.quarantine, safety_stock: safety, safety_stock_override: r.safety_stock, available: Math.max(0, r.on_hand - r.reserved - r.quarantine - safety), baseline_as_of: iso(r.baseline_as_of), version: r.version };
        }),
        next_cursor: rows.length === limit ? rows[rows.length - 1].sku : null,
      };
    },
  );

  app.put(
    '/locations/:code/stock/:sku/safety-stock',
    { schema: { tags: ['stock'], summary: "Override one sku's safety stock at a location (null: back to the location default)", security, params: Type.Object({ code: Code, sku: Code }), body: Type.Object({ safety_stock: Type.Union([NonNegInt, Type.Null()]) }, { additionalProperties: false }), response: withErrors({ 200: Type.Object({ sku: Type.String(), location: Type.String(), safety_stock_override: Type.Union([Type.Integer(), Type.Null()]), version: Type.Integer() }) }) } },
    async (req) => {
      const p = requireRole(req, 'integration', 'store');
      scopedLocation(ctx, p, req.params.code);
      const row = await setSafetyStock(ctx, req.params.code, req.params.sku, req.body.safety_stock);
      return { sku: req.params.sku, location: req.params.code, safety_stock_override: row.safety_stock, version: row.version };
    },
  );

  app.get(
    '/locations/:code/movements',
    {
      schema: {
        tags: ['stock'],
        summary: "A location's stock ledger (append-only movements)",
        security,
        params: Type.Object({ code: Code }),
        querystring: Type.Object({ limit: PageQuery.limit, after: Type.Optional(Type.Integer({ minimum: 0 })), sku: Type.Optional(Code) }),
        response: withErrors({
          200: Type.Object({
            items: Type.Array(Type.Object({ id: Type.Integer(), sku: Type.String(), kind: Type.String(), quantity: Type.Integer(), on_hand_change: Type.Integer(), quarantine_change: Type.Integer(), occurred_at: Type.String(), recorded_at: Type.String(), source: Type.String(), idempotency_key: Type.Union([Type.String(), Type.Null()]), seq: Type.Union([Type.Integer(), Type.Null()]), reference: Type.Union([Type.String(), Type.Null()]) })),
            next_cursor: Type.Union([Type.Integer(), Type.Null()]),
          }),
        }),
      },
    },
    async (req) => {
      const p = requireRole(req, 'integration', 'store');
      const loc = scopedLocation(ctx, p, req.params.code);
      const sku = req.query.sku ? ctx.projection.sku(req.query.sku) : undefined;
      if (req.query.sku && !sku) throw new AppError('unknown_sku', `SKU '${req.query.sku}' does not exist`);
      const limit = req.query.limit ?? 100;
      const rows = await listMovements(db, { locationId: loc.id, skuId: sku?.id, afterId: req.query.after, limit });
      return {
        items: rows.map((r) => ({ id: r.id, sku: ctx.projection.skuById(r.sku_id)?.code ?? String(r.sku_id), kind: r.kind, quantity: r.quantity, on_hand_change: r.on_hand_change, quarantine_change: r.quarantine_change, occurred_at: iso(r.occurred_at) as string, recorded_at: iso(r.recorded_at) as string, source: r.source, idempotency_key: r.idempotency_key, seq: r.seq, reference: r.reference })),
        next_cursor: rows.length === limit ? rows[rows.length - 1].id : null,
      };
    },
  );
}
