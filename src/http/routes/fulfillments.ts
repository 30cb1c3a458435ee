// Fulfilment orders over HTTP: the work list of a location (store app, WMS), one fulfilment
// order, and its transitions. Store and integration keys see and move only their own
// locations' fulfilment orders; another location's is not found. Thin: src/orders does the work.
import { Type } from '@sinclair/typebox';
import type { Principal } from '../../auth/keys.ts';
import type { Ctx } from '../../context.ts';
import { requireOrder } from '../../orders/changes.ts';
import { actOnFulfillment, type FulfillmentActor, visibleFulfillment } from '../../orders/fulfilment.ts';
import { FULFILLMENT_ACTIONS, FULFILLMENT_STATUSES, FULFILLMENT_TRANSITIONS } from '../../orders/model.ts';
import { MAX_ORDER_PAGE, searchFulfillments } from '../../orders/queries.ts';
import type { App } from '../app.ts';
import { requireRole } from '../app.ts';
import { Code, Enum, security, withErrors } from '../schemas.ts';
import { FulfillmentOut, fulfillmentOut } from './orders.ts';

const fulfillmentActor = (p: Principal): FulfillmentActor => ({ keyId: p.keyId, name: p.name, role: p.role, kind: p.role === 'admin' ? 'admin' : 'location', locationIds: p.locationIds });

const Params = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });

const transitionsDoc = Object.entries(FULFILLMENT_TRANSITIONS)
  .map(([action, r]) => `- \`${action}\`: ${r.from.join(' | ')} → ${r.to} (${r.actors.join(', ')}). ${r.summary}`)
  .join('\n');

export function registerFulfillmentRoutes(app: App, ctx: Ctx): void {
  const tags = ['fulfillment'];

  app.get(
    '/fulfillment-orders',
    {
      schema: {
        tags,
        summary: 'Fulfilment orders, oldest first: the work list of your locations',
        security,
        querystring: Type.Object(
          {
            location: Type.Optional(Code),
            status: Type.Optional(Type.Array(Enum(FULFILLMENT_STATUSES), { maxItems: FULFILLMENT_STATUSES.length })),
            limit: Type.Optional(Type.Integer({ minimum: 1, default: 50, description: `At most ${MAX_ORDER_PAGE} (more: page_too_large).` })),
            after: Type.Optional(Type.String({ maxLength: 64 })),
          },
          { additionalProperties: false },
        ),
        response: withErrors({ 200: Type.Object({ items: Type.Array(FulfillmentOut), next_cursor: Type.Union([Type.String(), Type.Null()]) }) }),
      },
    },
    async (req) => {
      const p = requireRole(req, 'store', 'integration');
      const { ids, next } = await searchFulfillments(ctx, p.role === 'admin' ? null : p.locationIds, { location: req.query.location, status: req.query.status, limit: req.query.limit ?? 50, after: req.query.after });
      const items = [];
      for (const id of ids) items.push(fulfillmentOut(ctx, (await visibleFulfillment(ctx, id, fulfillmentActor(p))).fo));
      return { items, next_cursor: next };
    },
  );

  app.get(
    '/fulfillment-orders/:id',
    { schema: { tags, summary: 'One fulfilment order', security, params: Params, response: withErrors({ 200: FulfillmentOut }) } },
    async (req) => {
      const p = requireRole(req, 'store', 'integration');
      return fulfillmentOut(ctx, (await visibleFulfillment(ctx, req.params.id, fulfillmentActor(p))).fo);
    },
  );

  app.post(
    '/fulfillment-orders/:id/:action',
    {
      schema: {
        tags,
        summary: 'Move a fulfilment order: accept, reject, pick, pack, ship (the location); release, cancel (admin)',
        description: `The state machine:\n${transitionsDoc}\n\nA rejection (reason required), a short pick, or a deadline missed re-sources the units elsewhere, that location excluded; what cannot be sourced is cancelled from the order. Another location's fulfilment order is not found.`,
        security,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }), action: Enum(FULFILLMENT_ACTIONS) }, { additionalProperties: false }),
        body: Type.Optional(
          Type.Object(
            {
              reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500, description: 'reject (required), cancel.' })),
              lines: Type.Optional(
                Type.Array(Type.Object({ line_id: Type.String({ minLength: 1, maxLength: 64 }), picked: Type.Integer({ minimum: 0, maximum: 100_000 }) }, { additionalProperties: false }), {
                  maxItems: 200,
                  description: 'pick: quantity picked per line; lines left out were picked in full.',
                }),
              ),
              tracking: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'ship: the carrier tracking number.' })),
            },
            { additionalProperties: false },
          ),
        ),
        response: withErrors({
          200: Type.Object({
            fulfillment: FulfillmentOut,
            order_status: Type.String(),
            created: Type.Array(Type.String(), { description: 'Fulfilment orders created by re-sourcing.' }),
            cancelled: Type.Array(Type.Object({ line_id: Type.String(), quantity: Type.Integer() }), { description: 'Units sourced nowhere else, cancelled from the order.' }),
          }),
        }),
      },
    },
    async (req) => {
      const p = requireRole(req, 'store', 'integration');
      const b = req.body ?? {};
      const r = await actOnFulfillment(ctx, req.params.id, req.params.action, fulfillmentActor(p), {
        reason: b.reason ?? null,
        lines: b.lines?.map((l) => ({ lineId: l.line_id, picked: l.picked })),
        tracking: b.tracking ?? null,
      });
      const order = await requireOrder(ctx, r.orderId);
      return {
        fulfillment: fulfillmentOut(ctx, order.fulfillments.find((f) => f.id === r.fulfillmentId) as (typeof order.fulfillments)[number]),
        order_status: order.order.status,
        created: r.created,
        cancelled: r.cancelled.map((c) => ({ line_id: c.lineId, quantity: c.quantity })),
      };
    },
  );
}
