// The integrity check (invariant 6): recomputes every counter from its ledger and
// reports each difference. Read-only; `oms check` and the concurrency tests run it.
import { sql } from 'kysely';
import type { DbOrTrx } from '../db/database.ts';

export interface IntegrityIssue {
  kind: 'on_hand_vs_ledger' | 'quarantine_vs_ledger' | 'reserved_vs_reservations' | 'negative_reserved' | 'ledger_without_position';
  location_id: number;
  sku_id: number;
  counter: number;
  recomputed: number;
}

export async function checkIntegrity(db: DbOrTrx): Promise<{ positions: number; issues: IntegrityIssue[] }> {
  const issues: IntegrityIssue[] = [];
  const ledger = await sql<{ location_id: number; sku_id: number; on_hand: number; quarantine: number; l_on_hand: number | null; l_quarantine: number | null }>`
    select p.location_id, p.sku_id, p.on_hand, p.quarantine, m.l_on_hand, m.l_quarantine
    from stock_positions p
    left join (select location_id, sku_id, sum(on_hand_change) as l_on_hand, sum(quarantine_change) as l_quarantine
               from stock_movements group by location_id, sku_id) m
      on m.location_id = p.location_id and m.sku_id = p.sku_id
    where p.on_hand <> coalesce(m.l_on_hand, 0) or p.quarantine <> coalesce(m.l_quarantine, 0)`.execute(db);
  for (const r of ledger.rows) {
    const lOn = Number(r.l_on_hand ?? 0);
    const lQ = Number(r.l_quarantine ?? 0);
    if (r.on_hand !== lOn) issues.push({ kind: 'on_hand_vs_ledger', location_id: r.location_id, sku_id: r.sku_id, counter: r.on_hand, recomputed: lOn });
    if (r.quarantine !== lQ) issues.push({ kind: 'quarantine_vs_ledger', location_id: r.location_id, sku_id: r.sku_id, counter: r.quarantine, recomputed: lQ });
  }
  const orphans = await sql<{ location_id: number; sku_id: number; total: number }>`
    select m.location_id, m.sku_id, sum(m.on_hand_change) as total from stock_movements m
    left join stock_positions p on p.location_id = m.location_id and p.sku_id = m.sku_id
    where p.sku_id is null group by m.location_id, m.sku_id`.execute(db);
  for (const r of orphans.rows) issues.push({ kind: 'ledger_without_position', location_id: r.location_id, sku_id: r.sku_id, counter: 0, recomputed: Number(r.total) });
  const reserved = await sql<{ location_id: number; sku_id: number; reserved: number; active: number | null }>`
    select p.location_id, p.sku_id, p.reserved, r.active
    from stock_positions p
    left join (select location_id, sku_id, sum(quantity) as active from reservations where status = 'active' group by location_id, sku_id) r
      on r.location_id = p.location_id and r.sku_id = p.sku_id
    where p.reserved <> coalesce(r.active, 0) or p.reserved < 0`.execute(db);
  for (const r of reserved.rows) {
    const active = Number(r.active ?? 0);
    if (r.reserved < 0) issues.push({ kind: 'negative_reserved', location_id: r.location_id, sku_id: r.sku_id, counter: r.reserved, recomputed: active });
    else issues.push({ kind: 'reserved_vs_reservations', location_id: r.location_id, sku_id: r.sku_id, counter: r.reserved, recomputed: active });
  }
  const count = await db.selectFrom('stock_positions').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return { positions: Number(count.n), issues };
}
