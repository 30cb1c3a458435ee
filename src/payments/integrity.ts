// The payment half of the integrity check (invariant 3): every tender's counters equal what its
// operations and the operator's reported figures make them (tenderCounters), captured ≤
// authorized and refunded ≤ captured, and every refund request equals the sum of its parts.
// Read-only; `oms check` and the payment tests run it.
import type { DbOrTrx } from '../db/database.ts';
import { type OperationKind, tenderCounters } from './model.ts';

export interface PaymentIntegrityIssue {
  kind: 'counter_vs_operations' | 'money_invariant' | 'refund_vs_parts';
  payment_id?: string;
  refund_id?: string;
  detail: string;
}

export async function checkPaymentIntegrity(db: DbOrTrx): Promise<{ payments: number; issues: PaymentIntegrityIssue[] }> {
  const issues: PaymentIntegrityIssue[] = [];
  const [payments, sums, refunds, parts] = await Promise.all([
    db.selectFrom('payments').selectAll().execute(),
    db
      .selectFrom('payment_operations')
      .select(['payment_id', 'kind', 'status'])
      .select((eb) => eb.fn.sum<number>('amount').as('total'))
      .groupBy(['payment_id', 'kind', 'status'])
      .execute(),
    db.selectFrom('refunds').select(['id', 'amount', 'status']).execute(),
    db
      .selectFrom('payment_operations')
      .select(['refund_id', 'status'])
      .select((eb) => eb.fn.sum<number>('amount').as('total'))
      .where('refund_id', 'is not', null)
      .groupBy(['refund_id', 'status'])
      .execute(),
  ]);
  const byPayment = new Map<string, Map<string, number>>();
  for (const s of sums) {
    const m = byPayment.get(s.payment_id) ?? new Map<string, number>();
    m.set(`${s.kind}/${s.status}`, Number(s.total));
    byPayment.set(s.payment_id, m);
  }
  for (const p of payments) {
    const m = byPayment.get(p.id) ?? new Map<string, number>();
    const c = tenderCounters((kind: OperationKind, status) => m.get(`${kind}/${status}`) ?? 0, { authorized: p.psp_authorized, captured: p.psp_captured, refunded: p.psp_refunded });
    const stored = { authorized: p.authorized, captured: p.captured, refunded: p.refunded, voided: p.voided, capturePending: p.capture_pending, refundPending: p.refund_pending };
    for (const k of Object.keys(stored) as Array<keyof typeof stored>) {
      if (stored[k] !== c[k]) issues.push({ kind: 'counter_vs_operations', payment_id: p.id, detail: `${k} is ${stored[k]}, its operations make it ${c[k]}` });
    }
    if (!(p.refunded <= p.captured && p.captured <= p.authorized)) issues.push({ kind: 'money_invariant', payment_id: p.id, detail: `authorized ${p.authorized}, captured ${p.captured}, refunded ${p.refunded}` });
  }
  for (const r of refunds) {
    const total = parts.filter((x) => x.refund_id === r.id && x.status !== 'failed').reduce((s, x) => s + Number(x.total), 0);
    const all = parts.filter((x) => x.refund_id === r.id).reduce((s, x) => s + Number(x.total), 0);
    if (all !== r.amount) issues.push({ kind: 'refund_vs_parts', refund_id: r.id, detail: `refund of ${r.amount} has parts adding up to ${all}` });
    else if (r.status === 'succeeded' && total !== r.amount) issues.push({ kind: 'refund_vs_parts', refund_id: r.id, detail: `succeeded refund of ${r.amount} has ${total} in parts not failed` });
  }
  return { payments: payments.length, issues };
}
