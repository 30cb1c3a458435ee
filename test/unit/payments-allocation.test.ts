// The refund/capture allocation (src/payments/allocation.ts) and the card-number guard
// (src/shared/pan.ts): table-driven rows for the rules, properties for the invariants.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { TenderMethod } from '../../src/orders/model.ts';
import { allocate, CAPTURE_ORDER, DEFAULT_REFUND_RULE, parseRefundRule, type RefundRule, type TenderBalance } from '../../src/payments/allocation.ts';
import { containsCardNumber, luhnValid } from '../../src/shared/pan.ts';
import { TENDER_METHODS } from '../../src/orders/model.ts';

const t = (id: string, method: TenderMethod, available: number, createdAt = 0): TenderBalance => ({ id, method, available, createdAt });
const PROPORTIONAL: RefundRule = { policy: 'proportional', order: DEFAULT_REFUND_RULE.order };

describe('refund allocation, table', () => {
  const rows: Array<[string, number, TenderBalance[], RefundRule, Array<[string, number]> | { shortBy: number }]> = [
    ['card before gift card (default)', 3000, [t('gc', 'gift_card', 2000, 1), t('cc', 'card', 5000, 2)], DEFAULT_REFUND_RULE, [['cc', 3000]]],
    ['card exhausted, then gift card', 6000, [t('gc', 'gift_card', 2000, 1), t('cc', 'card', 5000, 2)], DEFAULT_REFUND_RULE, [['cc', 5000], ['gc', 1000]]],
    ['everything', 7000, [t('gc', 'gift_card', 2000, 1), t('cc', 'card', 5000, 2)], DEFAULT_REFUND_RULE, [['cc', 5000], ['gc', 2000]]],
    ['more than refundable', 7001, [t('gc', 'gift_card', 2000, 1), t('cc', 'card', 5000, 2)], DEFAULT_REFUND_RULE, { shortBy: 1 }],
    ['zero', 0, [t('cc', 'card', 5000)], DEFAULT_REFUND_RULE, []],
    ['nothing refundable', 1, [t('cc', 'card', 0)], DEFAULT_REFUND_RULE, { shortBy: 1 }],
    ['two cards: creation order', 4000, [t('b', 'card', 3000, 2), t('a', 'card', 3000, 1)], DEFAULT_REFUND_RULE, [['a', 3000], ['b', 1000]]],
    ['gift card first when configured', 3000, [t('gc', 'gift_card', 2000, 1), t('cc', 'card', 5000, 2)], { policy: 'sequence', order: ['gift_card', 'card'] }, [['gc', 2000], ['cc', 1000]]],
    ['unlisted methods after listed ones', 100, [t('w', 'wallet', 500, 1), t('cc', 'card', 500, 2)], { policy: 'sequence', order: ['card'] }, [['cc', 100]]],
    ['proportional 1:1', 1001, [t('a', 'card', 1000, 1), t('b', 'gift_card', 1000, 2)], PROPORTIONAL, [['a', 501], ['b', 500]]],
    ['proportional 3:1', 400, [t('a', 'card', 3000, 1), t('b', 'gift_card', 1000, 2)], PROPORTIONAL, [['a', 300], ['b', 100]]],
    ['proportional, all', 4000, [t('a', 'card', 3000, 1), t('b', 'gift_card', 1000, 2)], PROPORTIONAL, [['a', 3000], ['b', 1000]]],
    ['proportional, one cent', 1, [t('a', 'card', 3000, 1), t('b', 'gift_card', 1000, 2)], PROPORTIONAL, [['a', 1]]],
  ];
  it.each(rows)('%s', (_name, amount, tenders, rule, expected) => {
    const r = allocate(amount, tenders, rule);
    if (Array.isArray(expected)) {
      expect(r).toEqual({ ok: true, parts: expected.map(([id, a]) => ({ id, amount: a })) });
    } else {
      expect(r).toEqual({ ok: false, ...expected });
    }
  });

  it('captures take store credit first', () => {
    const r = allocate(2500, [t('cc', 'card', 5000, 1), t('gc', 'gift_card', 2000, 2)], { policy: 'sequence', order: CAPTURE_ORDER });
    expect(r).toEqual({ ok: true, parts: [{ id: 'gc', amount: 2000 }, { id: 'cc', amount: 500 }] });
  });

  it('rejects a negative or fractional amount', () => {
    expect(() => allocate(-1, [], DEFAULT_REFUND_RULE)).toThrow(RangeError);
    expect(() => allocate(1.5, [], DEFAULT_REFUND_RULE)).toThrow(RangeError);
  });

  it.each([
    [undefined, DEFAULT_REFUND_RULE],
    ['proportional', { policy: 'proportional', order: DEFAULT_REFUND_RULE.order }],
    ['sequence:gift_card,card', { policy: 'sequence', order: ['gift_card', 'card'] }],
  ])('parses OMS_REFUND_RULE %s', (text, rule) => {
    expect(parseRefundRule(text, TENDER_METHODS)).toEqual(rule);
  });
  it.each(['fifo', 'sequence:card,cash'])('refuses OMS_REFUND_RULE %s', (text) => {
    expect(() => parseRefundRule(text, TENDER_METHODS)).toThrow(/OMS_REFUND_RULE/);
  });
});

describe('refund allocation, properties', () => {
  const tenders = fc.array(
    fc.record({ method: fc.constantFrom(...TENDER_METHODS), available: fc.integer({ min: 0, max: 1_000_000 }), createdAt: fc.integer({ min: 0, max: 10 }) }),
    { minLength: 0, maxLength: 6 },
  );
  const rules = fc.oneof(
    fc.constant(DEFAULT_REFUND_RULE),
    fc.constant(PROPORTIONAL),
    fc.shuffledSubarray([...TENDER_METHODS]).map((order): RefundRule => ({ policy: 'sequence', order })),
    fc.shuffledSubarray([...TENDER_METHODS]).map((order): RefundRule => ({ policy: 'proportional', order })),
  );

  it('sums exactly to the amount, never exceeds a tender, or says how much is missing', () => {
    fc.assert(
      fc.property(tenders, rules, fc.integer({ min: 0, max: 7_000_000 }), (ts, rule, amount) => {
        const balances = ts.map((x, i) => ({ ...x, id: `t${i}` }));
        const refundable = balances.reduce((s, b) => s + b.available, 0);
        const r = allocate(amount, balances, rule);
        if (amount > refundable) {
          expect(r).toEqual({ ok: false, shortBy: amount - refundable });
          return;
        }
        if (!r.ok) throw new Error('expected an allocation');
        expect(r.parts.reduce((s, p) => s + p.amount, 0)).toBe(amount);
        const ids = new Set<string>();
        for (const p of r.parts) {
          const b = balances.find((x) => x.id === p.id);
          expect(b).toBeDefined();
          expect(p.amount).toBeGreaterThan(0);
          expect(p.amount).toBeLessThanOrEqual(b?.available ?? -1);
          expect(Number.isInteger(p.amount)).toBe(true);
          expect(ids.has(p.id)).toBe(false);
          ids.add(p.id);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('sequence: a tender is used only when every tender ranked before it is exhausted', () => {
    fc.assert(
      fc.property(tenders, fc.integer({ min: 1, max: 3_000_000 }), (ts, amount) => {
        const balances = ts.map((x, i) => ({ ...x, id: `t${i}` }));
        const r = allocate(amount, balances, DEFAULT_REFUND_RULE);
        if (!r.ok) return;
        // All parts but the last take everything their tender had.
        for (const p of r.parts.slice(0, -1)) expect(p.amount).toBe(balances.find((b) => b.id === p.id)?.available);
        // The gift card is touched only if no other tender had anything left.
        const gcUsed = r.parts.some((p) => balances.find((b) => b.id === p.id)?.method === 'gift_card');
        if (gcUsed) {
          for (const b of balances.filter((x) => x.method !== 'gift_card' && x.available > 0)) {
            expect(r.parts.find((p) => p.id === b.id)?.amount).toBe(b.available);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('card numbers in free text', () => {
  it.each([
    ['4111111111111111', true],
    ['4111 1111 1111 1111', true],
    ['4111-1111-1111-1111', true],
    ['my card is 5555555555554444 thanks', true],
    ['378282246310005', true], // Amex, 15 digits
    ['4111111111111112', false], // Luhn fails
    ['call me on +33 6 12 34 56 78', false],
    ['order 123-4567890', false],
    ['12345678901234567890123', false], // longer than any card number
    ['', false],
    ['leave at the door', false],
  ])('%s → %s', (text, expected) => {
    expect(containsCardNumber(text)).toBe(expected);
  });
  it.each([
    ['79927398713', true],
    ['79927398710', false],
    ['0', true],
    ['a1', false],
  ])('luhn %s → %s', (d, ok) => expect(luhnValid(d)).toBe(ok));
});
