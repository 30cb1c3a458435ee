// The transactional outbox: every state change appends its event in the same transaction.
// Delivery (webhooks, NATS) reads from here in a later issue; the availability projection
// of other OMS processes already follows it.
import type { DbOrTrx } from '../db/database.ts';
import { newId } from '../shared/ids.ts';

/** Identifies this OMS process in the outbox rows it writes. */
export const PROCESS_ORIGIN = newId('proc');

export interface DomainEvent {
  type: string;
  aggregateType: string;
  aggregateId: string;
  aggregateSeq: number;
  payload: object;
}

export async function appendEvents(trx: DbOrTrx, now: number, events: DomainEvent[]): Promise<void> {
  if (events.length === 0) return;
  // Bounded batches keep the parameter count under SQLite's and PostgreSQL's limits.
  for (let i = 0; i < events.length; i += 500) {
    await trx
      .insertInto('outbox')
      .values(
        events.slice(i, i + 500).map((e) => ({
          event_id: newId('evt'),
          type: e.type,
          aggregate_type: e.aggregateType,
          aggregate_id: e.aggregateId,
          aggregate_seq: e.aggregateSeq,
          payload: JSON.stringify(e.payload),
          origin: PROCESS_ORIGIN,
          occurred_at: now,
        })),
      )
      .execute();
  }
}

export interface StoredEvent {
  id: number;
  eventId: string;
  type: string;
  aggregateType: string;
  aggregateId: string;
  aggregateSeq: number;
  payload: unknown;
  occurredAt: number;
}

export async function readEvents(db: DbOrTrx, opts: { afterId?: number; type?: string; limit?: number }): Promise<StoredEvent[]> {
  let q = db.selectFrom('outbox').selectAll().where('id', '>', opts.afterId ?? 0);
  if (opts.type) q = q.where('type', '=', opts.type);
  const rows = await q.orderBy('id').limit(opts.limit ?? 100).execute();
  return rows.map((r) => ({
    id: r.id,
    eventId: r.event_id,
    type: r.type,
    aggregateType: r.aggregate_type,
    aggregateId: r.aggregate_id,
    aggregateSeq: r.aggregate_seq,
    payload: JSON.parse(r.payload),
    occurredAt: r.occurred_at,
  }));
}
