// Administration: API keys, reservations (until orders exist), the outbox and the integrity check.
import { Type } from '@sinclair/typebox';
import { createApiKey, type KeyVerifier, listApiKeys, revokeApiKey, ROLES } from '../../auth/keys.ts';
import type { Ctx } from '../../context.ts';
import { readEvents } from '../../events/outbox.ts';
import { checkIntegrity } from '../../inventory/integrity.ts';
import { endReservation, reserve } from '../../inventory/stock.ts';
import { iso } from '../../shared/clock.ts';
import type { App } from '../app.ts';
import { requireRole } from '../app.ts';
import { Code, security, withErrors } from '../schemas.ts';

export function registerAdminRoutes(app: App, ctx: Ctx, keys: KeyVerifier): void {
  const db = ctx.store.db;
  const KeyOut = Type.Object({ id: Type.String(), name: Type.String(), prefix: Type.String(), role: Type.String(), channel: Type.Union([Type.String(), Type.Null()]), locations: Type.Array(Type.String()), created_at: Type.String(), revoked_at: Type.Union([Type.String(), Type.Null()]) });

  app.post(
    '/api-keys',
    {
      schema: {
        tags: ['admin'],
        summary: 'Create an API key; the secret is shown once and stored only as a hash',
        security,
        body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }), role: Type.Union(ROLES.map((r) => Type.Literal(r))), channel: Type.Optional(Code), locations: Type.Optional(Type.Array(Code, { maxItems: 1000 })) }, { additionalProperties: false }),
        response: withErrors({ 201: Type.Object({ id: Type.String(), secret: Type.String(), prefix: Type.String(), role: Type.String() }) }),
      },
    },
    async (req, reply) => {
      requireRole(req);
      const k = await createApiKey(ctx, req.body);
      return reply.status(201).send({ id: k.principal.keyId, secret: k.secret, prefix: k.prefix, role: k.principal.role });
    },
  );

  app.get('/api-keys', { schema: { tags: ['admin'], summary: 'List API keys (never their secrets)', security, response: withErrors({ 200: Type.Object({ items: Type.Array(KeyOut) }) }) } }, async (req) => {
    requireRole(req);
    const rows = await listApiKeys(db);
    return {
      items: rows.map((r) => ({
        id: r.id,
        name: r.name,
        prefix: r.prefix,
        role: r.role,
        channel: r.channel_id === null ? null : (ctx.projection.allChannels().find((c) => c.id === r.channel_id)?.code ?? null),
        locations: (JSON.parse(r.location_ids) as number[]).map((id) => ctx.projection.locationById(id)?.code ?? String(id)),
        created_at: iso(r.created_at) as string,
        revoked_at: iso(r.revoked_at),
      })),
    };
  });

  app.delete('/api-keys/:id', { schema: { tags: ['admin'], summary: 'Revoke an API key', security, params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: withErrors({ 204: Type.Null() }) } }, async (req, reply) => {
    requireRole(req);
    await revokeApiKey(ctx, req.params.id);
    keys.forget();
    return reply.status(204).send(null);
  });

  app.post(
    '/reservations',
    {
      schema: {
        tags: ['stock'],
        summary: 'Reserve stock at a location (admin; order capture reserves through the same function)',
        security,
        body: Type.Object({ location: Code, sku: Code, quantity: Type.Integer({ minimum: 1, maximum: 1_000_000 }), reference: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }),
        response: withErrors({ 201: Type.Object({ id: Type.String(), location: Type.String(), sku: Type.String(), quantity: Type.Integer(), status: Type.String() }) }),
      },
    },
    async (req, reply) => {
      requireRole(req);
      const r = await reserve(ctx, req.body);
      return reply.status(201).send({ id: r.id, location: req.body.location, sku: req.body.sku, quantity: r.quantity, status: r.status });
    },
  );

  app.delete('/reservations/:id', { schema: { tags: ['stock'], summary: 'Release a reservation (idempotent)', security, params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: withErrors({ 200: Type.Object({ id: Type.String(), released: Type.Boolean() }) }) } }, async (req) => {
    requireRole(req);
    const r = await endReservation(ctx, req.params.id, 'released');
    return { id: req.params.id, released: r.changed };
  });

  app.get(
    '/events',
    {
      schema: {
        tags: ['admin'],
        summary: 'Read the outbox in order (at-least-once delivery comes with the events issue)',
        security,
        querystring: Type.Object({ after: Type.Optional(Type.Integer({ minimum: 0 })), type: Type.Optional(Type.String({ maxLength: 64 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }),
        response: withErrors({ 200: Type.Object({ items: Type.Array(Type.Object({ id: Type.Integer(), event_id: Type.String(), type: Type.String(), aggregate_type: Type.String(), aggregate_id: Type.String(), aggregate_seq: Type.Integer(), occurred_at: Type.String(), payload: Type.Unknown() })) }) }),
      },
    },
    async (req) => {
      requireRole(req);
      const rows = await readEvents(db, { afterId: req.query.after, type: req.query.type, limit: req.query.limit ?? 100 });
      return { items: rows.map((e) => ({ id: e.id, event_id: e.eventId, type: e.type, aggregate_type: e.aggregateType, aggregate_id: e.aggregateId, aggregate_seq: e.aggregateSeq, occurred_at: iso(e.occurredAt) as string, payload: e.payload })) };
    },
  );

  app.get(
    '/integrity',
    {
      schema: {
        tags: ['admin'],
        summary: 'Recompute counters from the ledger and reservations; lists every difference',
        security,
        response: withErrors({ 200: Type.Object({ ok: Type.Boolean(), positions: Type.Integer(), issues: Type.Array(Type.Object({ kind: Type.String(), location_id: Type.Integer(), sku_id: Type.Integer(), counter: Type.Integer(), recomputed: Type.Integer() })) }) }),
      },
    },
    async (req) => {
      requireRole(req);
      const r = await checkIntegrity(db);
      return { ok: r.issues.length === 0, positions: r.positions, issues: r.issues.slice(0, 1000) };
    },
  );
}
