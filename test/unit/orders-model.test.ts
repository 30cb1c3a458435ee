// The pure order model (src/orders/model.ts): the fulfilment state machine as data, the
// derived order status, and the money check of a captured order. Table-driven: one row per
// case that matters.
import { describe, expect, it } from 'vitest';
import {
  type Actor,
  checkTotals,
  DEAD,
  deriveOrderStatus,
  FULFILLMENT_ACTIONS,
  FULFILLMENT_STATUSES,
  FULFILLMENT_TRANSITIONS,
  type FulfillmentAction,
  type FulfillmentStatus,
  HANDED_OVER,
  type MoneyLine,
  type OrderStatus,
  type StatusInput,
  TERMINAL_FULFILLMENT,
  type Totals,
  transition,
} from '../../src/orders/model.ts';

const ACTORS: Actor[] = ['location', 'admin'];

// ---- the fulfilment state machine ----------------------------------------------------------

type Expect = { to: FulfillmentStatus; event: string } | 'forbidden' | 'invalid_state';

const TRANSITION_ROWS: Array<[FulfillmentStatus, FulfillmentAction, Actor, Expect, string?]> = [
  // release: the OMS only (on validation, or by hand for a backorder)
  ['created', 'release', 'admin', { to: 'released', event: 'fulfillment.released' }],
  ['created', 'release', 'location', 'forbidden'],
  ['released', 'release', 'admin', 'invalid_state'],
  // accept: the location (or the admin for it), once
  ['released', 'accept', 'location', { to: 'accepted', event: 'fulfillment.accepted' }],
  ['released', 'accept', 'admin', { to: 'accepted', event: 'fulfillment.accepted' }],
  ['created', 'accept', 'location', 'invalid_state'],
  ['accepted', 'accept', 'location', 'invalid_state'],
  // reject: before picking starts
  ['released', 'reject', 'location', { to: 'rejected', event: 'fulfillment.rejected' }],
  ['accepted', 'reject', 'location', { to: 'rejected', event: 'fulfillment.rejected' }],
  ['released', 'reject', 'admin', { to: 'rejected', event: 'fulfillment.rejected' }],
  ['created', 'reject', 'location', 'invalid_state'],
  ['picking', 'reject', 'location', 'invalid_state'],
  ['shipped', 'reject', 'location', 'invalid_state'],
  ['rejected', 'reject', 'location', 'invalid_state'],
  // pick, pack, ship: in that order
  ['accepted', 'pick', 'location', { to: 'picking', event: 'fulfillment.picked' }],
  ['released', 'pick', 'location', 'invalid_state'],
  ['picking', 'pick', 'location', 'invalid_state'],
  ['picking', 'pack', 'location', { to: 'packed', event: 'fulfillment.packed' }],
  ['accepted', 'pack', 'location', 'invalid_state'],
  ['packed', 'pack', 'location', 'invalid_state'],
  ['packed', 'ship', 'location', { to: 'shipped', event: 'fulfillment.shipped' }],
  ['packed', 'ship', 'admin', { to: 'shipped', event: 'fulfillment.shipped' }],
  ['packed', 'ship', 'location', { to: 'in_transit_to_store', event: 'fulfillment.shipped' }, 'store_transfer'],
  ['packed', 'ship', 'location', { to: 'shipped', event: 'fulfillment.shipped' }, 'home'],
  ['picking', 'ship', 'location', 'invalid_state'],
  ['accepted', 'ship', 'location', 'invalid_state'],
  ['shipped', 'ship', 'location', 'invalid_state'],
  // cancel: the OMS only, before the goods leave
  ['created', 'cancel', 'admin', { to: 'cancelled', event: 'fulfillment.cancelled' }],
  ['released', 'cancel', 'admin', { to: 'cancelled', event: 'fulfillment.cancelled' }],
  ['accepted', 'cancel', 'admin', { to: 'cancelled', event: 'fulfillment.cancelled' }],
  ['picking', 'cancel', 'admin', { to: 'cancelled', event: 'fulfillment.cancelled' }],
  ['packed', 'cancel', 'admin', { to: 'cancelled', event: 'fulfillment.cancelled' }],
  ['released', 'cancel', 'location', 'forbidden'],
  ['shipped', 'cancel', 'admin', 'invalid_state'],
  ['in_transit_to_store', 'cancel', 'admin', 'invalid_state'],
  ['cancelled', 'cancel', 'admin', 'invalid_state'],
  // the actor is checked first: a location asking for an admin action is forbidden whatever the status
  ['shipped', 'cancel', 'location', 'forbidden'],
  ['released', 'release', 'location', 'forbidden'],
];

describe('transition()', () => {
  it.each(TRANSITION_ROWS)('%s --%s (%s)--> %j %s', (status, action, actor, expected, mode) => {
    const r = transition(status, action, actor, mode);
    if (expected === 'forbidden') {
      expect(r.ok).toBe(false);
      // The HTTP layer maps a reason starting with "Only" to 403 forbidden, anything else to 409.
      if (!r.ok) expect(r.reason).toMatch(/^Only /);
    } else if (expected === 'invalid_state') {
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(/^Cannot /);
    } else {
      expect(r).toEqual({ ok: true, to: expected.to, event: expected.event });
    }
  });

  it('agrees with FULFILLMENT_TRANSITIONS for every (status, action, actor)', () => {
    for (const status of FULFILLMENT_STATUSES) {
      for (const action of FULFILLMENT_ACTIONS) {
        for (const actor of ACTORS) {
          const rule = FULFILLMENT_TRANSITIONS[action];
          const r = transition(status, action, actor);
          const allowed = rule.actors.includes(actor) && rule.from.includes(status);
          expect(r.ok, `${status} ${action} ${actor}`).toBe(allowed);
          if (r.ok) expect(r).toEqual({ ok: true, to: rule.to, event: rule.event });
          else if (!rule.actors.includes(actor)) expect(r.reason).toMatch(/^Only /);
          else expect(r.reason).toMatch(/^Cannot /);
        }
      }
    }
  });

  it('only the admin releases and cancels; the location does the work', () => {
    expect(FULFILLMENT_TRANSITIONS.release.actors).toEqual(['admin']);
    expect(FULFILLMENT_TRANSITIONS.cancel.actors).toEqual(['admin']);
    for (const a of ['accept', 'reject', 'pick', 'pack', 'ship'] as const) expect(FULFILLMENT_TRANSITIONS[a].actors).toContain('location');
  });

  // Delivery, arrival at the pickup store and collection come with the shipping issue
  // (model.ts): no action reaches them yet. When one does, remove it from this list.
  const NOT_YET_REACHABLE: FulfillmentStatus[] = ['delivered', 'ready_for_pickup', 'collected'];

  it("every status is reachable from 'created' through the table (except those the shipping issue adds)", () => {
    const seen = new Set<FulfillmentStatus>(['created']);
    const queue: FulfillmentStatus[] = ['created'];
    while (queue.length) {
      const s = queue.shift() as FulfillmentStatus;
      for (const action of FULFILLMENT_ACTIONS) {
        for (const actor of ACTORS) {
          for (const mode of [undefined, 'store_transfer']) {
            const r = transition(s, action, actor, mode);
            if (r.ok && !seen.has(r.to)) {
              seen.add(r.to);
              queue.push(r.to);
            }
          }
        }
      }
    }
    const unreachable = FULFILLMENT_STATUSES.filter((s) => !seen.has(s));
    expect(unreachable).toEqual(NOT_YET_REACHABLE);
  });

  it('terminal statuses have no outgoing transition, for any actor or mode', () => {
    expect(TERMINAL_FULFILLMENT.length).toBeGreaterThan(0);
    for (const status of TERMINAL_FULFILLMENT) {
      for (const rule of Object.values(FULFILLMENT_TRANSITIONS)) expect(rule.from, `${status} in ${rule.event}`).not.toContain(status);
      for (const action of FULFILLMENT_ACTIONS) {
        for (const actor of ACTORS) {
          for (const mode of [undefined, 'store_transfer']) expect(transition(status, action, actor, mode).ok, `${status} ${action} ${actor}`).toBe(false);
        }
      }
    }
  });

  it('rejected and cancelled are dead ends, and both happen only before the goods leave', () => {
    for (const d of DEAD) expect(TERMINAL_FULFILLMENT).toContain(d);
    for (const action of ['reject', 'cancel'] as const) {
      for (const s of HANDED_OVER) expect(FULFILLMENT_TRANSITIONS[action].from).not.toContain(s);
    }
  });

  it('no transition leads into a status it starts from (no self-loops)', () => {
    for (const [action, rule] of Object.entries(FULFILLMENT_TRANSITIONS)) expect(rule.from, action).not.toContain(rule.to);
  });
});

// ---- the derived order status ----------------------------------------------------------------

type Line = StatusInput['lines'][number];
const line = (quantity: number, over: Partial<Line> = {}): Line => ({ quantity, cancelled: 0, shipped: 0, ...over });
const fos = (...s: FulfillmentStatus[]) => s.map((status) => ({ status }));
const input = (over: Partial<StatusInput>): StatusInput => ({ validated: true, closeReason: null, lines: [line(2), line(1)], fulfillments: fos('released'), ...over });

const STATUS_ROWS: Array<[string, StatusInput, OrderStatus]> = [
  ['captured, unpaid', input({ validated: false, fulfillments: fos('created') }), 'pending_payment'],
  ['unpaid with a backorder', input({ validated: false, fulfillments: fos('created', 'created') }), 'pending_payment'],
  ['expired unpaid', input({ validated: false, closeReason: 'expired', lines: [line(2, { cancelled: 2 })], fulfillments: fos('cancelled') }), 'expired'],
  ['expired wins over everything else', input({ validated: false, closeReason: 'expired', fulfillments: fos('created') }), 'expired'],
  ['closed as cancelled', input({ closeReason: 'cancelled', lines: [line(2, { cancelled: 2 })], fulfillments: fos('cancelled') }), 'cancelled'],
  ['every line cancelled (validated)', input({ lines: [line(2, { cancelled: 2 }), line(1, { cancelled: 1 })], fulfillments: fos('rejected') }), 'cancelled'],
  ['every line cancelled (unpaid)', input({ validated: false, lines: [line(2, { cancelled: 2 })], fulfillments: fos('cancelled') }), 'cancelled'],
  ['some lines cancelled, the rest released', input({ lines: [line(2, { cancelled: 2 }), line(1)], fulfillments: fos('cancelled', 'released') }), 'validated'],
  ['validated, released', input({ fulfillments: fos('released') }), 'validated'],
  ['validated, backorder still created', input({ fulfillments: fos('released', 'created') }), 'validated'],
  ['validated, every fulfilment order dead but units still open', input({ fulfillments: fos('rejected') }), 'validated'],
  ['one accepted', input({ fulfillments: fos('accepted', 'released') }), 'in_fulfilment'],
  ['picking', input({ fulfillments: fos('picking') }), 'in_fulfilment'],
  ['packed', input({ fulfillments: fos('packed') }), 'in_fulfilment'],
  ['in transit to the pickup store', input({ fulfillments: fos('in_transit_to_store') }), 'in_fulfilment'],
  ['one of two shipped', input({ lines: [line(2, { shipped: 2 }), line(1)], fulfillments: fos('shipped', 'packed') }), 'partially_shipped'],
  ['one shipped, one still released', input({ lines: [line(2, { shipped: 2 }), line(1)], fulfillments: fos('shipped', 'released') }), 'partially_shipped'],
  ['one shipped, one in transit to the store', input({ lines: [line(2, { shipped: 2 }), line(1, { shipped: 1 })], fulfillments: fos('shipped', 'in_transit_to_store') }), 'partially_shipped'],
  ['all shipped', input({ lines: [line(2, { shipped: 2 }), line(1, { shipped: 1 })], fulfillments: fos('shipped', 'shipped') }), 'shipped'],
  ['shipped and delivered', input({ lines: [line(2, { shipped: 2 }), line(1, { shipped: 1 })], fulfillments: fos('delivered', 'shipped') }), 'shipped'],
  ['ready for pickup', input({ lines: [line(2, { shipped: 2 }), line(1, { shipped: 1 })], fulfillments: fos('ready_for_pickup') }), 'ready_for_pickup'],
  ['all delivered', input({ lines: [line(2, { shipped: 2 }), line(1, { shipped: 1 })], fulfillments: fos('delivered', 'delivered') }), 'completed'],
  ['collected', input({ lines: [line(2, { shipped: 2 }), line(1, { shipped: 1 })], fulfillments: fos('collected') }), 'completed'],
  ['rejected fulfilment order ignored: the re-sourced one shipped', input({ lines: [line(2, { shipped: 2 }), line(1, { shipped: 1 })], fulfillments: fos('rejected', 'shipped') }), 'shipped'],
  ['cancelled fulfilment order ignored: the other one is accepted', input({ fulfillments: fos('cancelled', 'accepted') }), 'in_fulfilment'],
  ['rejected and cancelled ignored: the last one delivered', input({ lines: [line(2, { shipped: 2 }), line(1, { shipped: 1 })], fulfillments: fos('rejected', 'cancelled', 'delivered') }), 'completed'],
  ['part cancelled, the rest shipped', input({ lines: [line(2, { shipped: 2 }), line(1, { cancelled: 1 })], fulfillments: fos('shipped', 'cancelled') }), 'shipped'],
  ['some units returned', input({ lines: [line(2, { shipped: 2, returned: 1 }), line(1, { shipped: 1 })], fulfillments: fos('delivered') }), 'partially_returned'],
  ['every shipped unit returned', input({ lines: [line(2, { shipped: 2, returned: 2 }), line(1, { shipped: 1, returned: 1 })], fulfillments: fos('delivered') }), 'returned'],
  ['returned after a part was cancelled', input({ lines: [line(2, { shipped: 2, returned: 2 }), line(1, { cancelled: 1 })], fulfillments: fos('delivered', 'cancelled') }), 'returned'],
];

describe('deriveOrderStatus()', () => {
  it.each(STATUS_ROWS)('%s → %s', (_name, i, expected) => expect(deriveOrderStatus(i)).toBe(expected));
});

// ---- totals ---------------------------------------------------------------------------------

const ml = (lineId: string, quantity: number, unitPrice: number, discount = 0, tax = 0): MoneyLine => ({ lineId, quantity, unitPrice, discount, tax });
const totals = (subtotal: number, discount: number, tax: number, shipping: number, total: number): Totals => ({ subtotal, discount, tax, shipping, total });

const TOTAL_ROWS: Array<[string, MoneyLine[], number[], Totals, boolean, string[]]> = [
  ['tax included: the total does not add it', [ml('L1', 2, 1000, 0, 333), ml('L2', 1, 500, 100, 67)], [500], totals(2500, 100, 400, 500, 2900), true, []],
  ['tax excluded: the total adds it', [ml('L1', 2, 1000, 0, 400), ml('L2', 1, 500, 100, 80)], [500], totals(2500, 100, 480, 500, 3380), false, []],
  ['tax included but the total adds it', [ml('L1', 2, 1000, 0, 333)], [500], totals(2000, 0, 333, 500, 2833), true, ['totals.total']],
  ['tax excluded but the total leaves it out', [ml('L1', 2, 1000, 0, 400)], [500], totals(2000, 0, 400, 500, 2500), false, ['totals.total']],
  ['several delivery groups: shipping summed', [ml('L1', 1, 1000)], [500, 300], totals(1000, 0, 0, 800, 1800), true, []],
  ['a discount equal to the line value is fine', [ml('L1', 2, 1000, 2000)], [0], totals(2000, 2000, 0, 0, 0), true, []],
  ['a discount larger than the line value', [ml('L1', 1, 1000, 1500), ml('L2', 1, 2000)], [0], totals(3000, 1500, 0, 0, 1500), true, ['line L1']],
  ['subtotal wrong', [ml('L1', 2, 1000)], [500], totals(1999, 0, 0, 500, 2500), true, ['totals.subtotal']],
  ['discount wrong', [ml('L1', 2, 1000, 100)], [500], totals(2000, 0, 0, 500, 2400), true, ['totals.discount']],
  ['tax wrong', [ml('L1', 2, 1000, 0, 333)], [500], totals(2000, 0, 300, 500, 2500), true, ['totals.tax']],
  ['shipping wrong', [ml('L1', 2, 1000)], [500], totals(2000, 0, 0, 400, 2500), true, ['totals.shipping']],
  ['total wrong', [ml('L1', 2, 1000)], [500], totals(2000, 0, 0, 500, 2400), true, ['totals.total']],
  ['every figure wrong: each reported', [ml('L1', 1, 1000, 2000, 10)], [500], totals(1, 2, 3, 4, 5), false, ['line L1', 'totals.subtotal', 'totals.discount', 'totals.tax', 'totals.shipping', 'totals.total']],
];

describe('checkTotals()', () => {
  it.each(TOTAL_ROWS)('%s', (_name, lines, shipping, claimed, taxIncluded, expected) => {
    const r = checkTotals(lines, shipping, claimed, taxIncluded);
    expect(r.problems).toHaveLength(expected.length);
    for (const [i, prefix] of expected.entries()) expect(r.problems[i].startsWith(`${prefix}:`) || r.problems[i].startsWith(`${prefix} `), r.problems[i]).toBe(true);
  });

  it('returns the recomputed totals', () => {
    const lines = [ml('L1', 3, 1000, 500, 450), ml('L2', 1, 250, 0, 25)];
    expect(checkTotals(lines, [500], totals(0, 0, 0, 0, 0), false).totals).toEqual({ subtotal: 3250, discount: 500, tax: 475, shipping: 500, total: 3725 });
    expect(checkTotals(lines, [500], totals(0, 0, 0, 0, 0), true).totals).toEqual({ subtotal: 3250, discount: 500, tax: 475, shipping: 500, total: 3250 });
  });
});
