// Demo orders, so that a newcomer finds orders in every state to click through: pending
// payment (one waiting for its 3-D Secure step), paid at the sandbox and released, in
// fulfilment, shipped and captured, refunded in part, paid by gift card and card, re-sourced
// after a store rejected it, Order in Store paid at the terminal, click & collect, cancelled
// (its authorization voided). Made through the same use cases as the API.
import type { Ctx } from '../context.ts';
import { type ActorRef, type CaptureGroup, captureOrder } from '../orders/capture.ts';
import { cancelOrder, validateOrder } from '../orders/changes.ts';
import { actOnFulfillment, type FulfillmentActor } from '../orders/fulfilment.ts';
import type { TenderMethod } from '../orders/model.ts';
import type { OrderAggregate } from '../orders/repository.ts';
import { issueGiftCard } from '../payments/providers/gift-card.ts';
import { authorizePayment, createRefund, recordTerminalPayment } from '../payments/service.ts';
import { AppError } from '../shared/errors.ts';

/** A demo gift card (store credit, EUR 100): the startup banner prints its code. */
export const DEMO_GIFT_CARD = 'GC-DEMO-2026-0000-0100';

const ACTOR: ActorRef = { keyId: 'demo', name: 'demo data', role: 'admin' };
const ADMIN: FulfillmentActor = { ...ACTOR, kind: 'admin', locationIds: [] };

const PLACES = [
  { line1: '12 rue de Rivoli', postalCode: '75004', city: 'Paris', country: 'FR', latitude: 48.8559, longitude: 2.3587 },
  { line1: '8 place Bellecour', postalCode: '69002', city: 'Lyon', country: 'FR', latitude: 45.7578, longitude: 4.832 },
  { line1: '3 quai du Port', postalCode: '13002', city: 'Marseille', country: 'FR', latitude: 43.2965, longitude: 5.3698 },
  { line1: '20 rue Nationale', postalCode: '59000', city: 'Lille', country: 'FR', latitude: 50.6372, longitude: 3.0633 },
  { line1: '5 cours de l’Intendance', postalCode: '33000', city: 'Bordeaux', country: 'FR', latitude: 44.8416, longitude: -0.5752 },
];

export interface DemoOrdersSummary {
  orders: number;
  byStatus: Record<string, number>;
}

export async function loadDemoOrders(ctx: Ctx): Promise<DemoOrdersSummary> {
  const p = ctx.projection;
  // Skus every channel can sell many of: the picture stays the same whatever the random stock.
  const deep = p
    .allChannels()
    .map((c) => c.code)
    .reduce<string[] | null>((acc, ch) => {
      const ok = new Set<string>();
      for (let id = 1; ok.size < 40 && id < 5000; id++) {
        const s = p.skuById(id);
        if (s && p.total(s.id, ch) >= 20) ok.add(s.code);
      }
      return acc ? acc.filter((x) => ok.has(x)) : [...ok];
    }, null) ?? [];
  if (deep.length < 6) return { orders: 0, byStatus: {} };
  const stores = p.allLocations().filter((l) => l.type === 'store' && l.capabilities.includes('click_and_collect'));
  let n = 0;
  const sku = () => deep[n++ % deep.length];
  const order = async (channel: string, ref: string, place: number, lines: Array<[number, number]>, opts: { group?: Partial<CaptureGroup>; tender?: TenderMethod; store?: string } = {}) => {
    // Prices include 20 % VAT: the tax is a sixth of each line.
    const items = lines.map(([quantity, unitPrice]) => ({ sku: sku(), quantity, unitPrice, tax: Math.round((quantity * unitPrice) / 6) }));
    const subtotal = items.reduce((s, l) => s + l.quantity * l.unitPrice, 0);
    const shipping = opts.group?.mode && opts.group.mode !== 'home' ? 0 : 490;
    const addr = { name: 'Camille Martin', ...PLACES[place % PLACES.length] };
    const group: CaptureGroup = { mode: 'home', address: addr, shippingPrice: shipping, ...opts.group };
    try {
      const { order, created } = await captureOrder(
        ctx,
        {
          channel,
          externalReference: ref,
          customer: { name: 'Camille Martin', email: `camille.martin+${ref.toLowerCase()}@example.com`, phone: '+33 6 12 34 56 78' },
          billingAddress: addr,
          currency: 'EUR',
          taxIncluded: true,
          lines: items,
          deliveryGroups: [group],
          totals: { subtotal, discount: 0, tax: items.reduce((t, l) => t + l.tax, 0), shipping, total: subtotal + shipping },
          tenders:
            opts.tender === 'gift_card'
              ? [
                  { method: 'gift_card', amount: 2000 },
                  { method: 'card', amount: subtotal + shipping - 2000 },
                ]
              : [{ method: opts.tender ?? 'card', amount: subtotal + shipping }],
          store: opts.store ?? null,
          associate: opts.store ? 'associate-042' : null,
        },
        ACTOR,
      );
      // Loaded before (oms demo --force): leave that order as it is.
      return created ? order : null;
    } catch (e) {
      // A random demo network may lack stock for one of these: skip it, keep the others.
      if (e instanceof AppError && (e.code === 'out_of_stock' || e.code === 'validation_failed')) return null;
      throw e;
    }
  };
  /** Pays the order by its intended tender: card at the sandbox, gift card then card, or the store terminal. */
  const pay = async (o: OrderAggregate, how: 'card' | 'split' | 'terminal' | '3ds') => {
    const total = o.order.total;
    if (how === 'terminal') {
      await recordTerminalPayment(ctx, o.order.id, { terminalId: 'TPE-01', transactionReference: `DEMO-${o.order.external_reference}`, amount: total, currency: o.order.currency, cardBrand: 'visa', cardLast4: '4242' }, ACTOR);
      return;
    }
    let left = total;
    if (how === 'split') {
      const part = Math.min(2000, total - 1);
      await authorizePayment(ctx, o.order.id, { method: 'gift_card', amount: part, token: DEMO_GIFT_CARD }, ACTOR);
      left -= part;
    }
    await authorizePayment(ctx, o.order.id, { method: 'card', amount: left, token: how === '3ds' ? 'tok_sandbox_3ds' : 'tok_sandbox_visa' }, ACTOR);
  };
  const act = async (o: OrderAggregate | null, ...actions: Array<'accept' | 'pick' | 'pack' | 'ship' | 'reject'>) => {
    if (!o) return;
    if (o.order.validated_at === null) {
      const tenders = JSON.parse(o.order.tenders) as Array<{ method: TenderMethod }>;
      const method = tenders[0]?.method;
      if (method === 'card_present') await pay(o, 'terminal');
      else if (method === 'gift_card') await pay(o, 'split');
      else if (method === 'card') await pay(o, 'card');
      else await validateOrder(ctx, o.order.id, ACTOR);
    }
    const fo = o.fulfillments.find((f) => !f.backorder);
    if (!fo) return;
    for (const a of actions) await actOnFulfillment(ctx, fo.id, a, ADMIN, a === 'reject' ? { reason: 'item damaged on the shelf' } : a === 'ship' ? { tracking: `DEMO${fo.id.slice(-8)}` } : {});
  };

  if (!(await ctx.store.db.selectFrom('gift_cards').select('id').where('last4', '=', DEMO_GIFT_CARD.slice(-4)).executeTakeFirst())) {
    await issueGiftCard(ctx.store, ctx.clock, { currency: 'EUR', amount: 10_000, code: DEMO_GIFT_CARD });
  }
  await order('web', 'W-100001', 0, [[1, 3990], [2, 1290]]);
  const action = await order('web', 'W-100007', 4, [[1, 5490]]);
  if (action) await pay(action, '3ds');
  await order('call-centre', 'CC-200001', 1, [[1, 8900]], { tender: 'bank_transfer' });
  await act(await order('web', 'W-100002', 1, [[1, 2490], [1, 5990], [1, 990]], { tender: 'gift_card' }));
  await act(await order('web', 'W-100003', 2, [[2, 1990]]), 'accept', 'pick');
  const shipped = await order('marketplace', 'MKP-300001', 3, [[1, 4590]]);
  await act(shipped, 'accept', 'pick', 'pack', 'ship');
  if (shipped) await createRefund(ctx, shipped.order.id, { amount: 1000, reason: 'goodwill: late delivery' }, ACTOR);
  await act(await order('web', 'W-100004', 4, [[1, 6990]]), 'reject');
  if (stores[0]) await act(await order('web', 'W-100005', 0, [[1, 3490]], { group: { mode: 'click_and_collect', pickupLocation: stores[0].code, address: null } }));
  if (stores[1]) await act(await order('pos', 'POS-400001', 3, [[1, 12900]], { store: stores[1].code, tender: 'card_present' }));
  const cancelled = await order('web', 'W-100006', 2, [[1, 1990]]);
  if (cancelled) {
    await pay(cancelled, 'card');
    await cancelOrder(ctx, cancelled.order.id, { reason: 'customer changed their mind' }, ACTOR);
  }

  const rows = await ctx.store.db.selectFrom('orders').select('status').execute();
  const byStatus: Record<string, number> = {};
  for (const r of rows) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  return { orders: rows.length, byStatus };
}
