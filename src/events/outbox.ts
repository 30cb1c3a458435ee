// The transactional outbox: every state change appends its event in the same transaction.
// Delivery (webhooks, NATS) reads from here in a later issue; the availability projection
// of other OMS processes already follows it.
import { bulkInsert, type WriteBatch } from '../db/bulk.ts';
import type { DbOrTrx, Dialect } from '../db/database.ts';
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

const EVENT_COLUMNS: Array<[string, 'text' | 'bigint']> = [
  ['event_id', 'text'],
  ['type', 'text'],
  ['aggregate_type', 'text'],
  ['aggregate_id', 'text'],
  ['aggregate_seq', 'bigint'],
  ['payload', 'text'],
  ['occurred_at', 'bigint'],
];
// occurred_at is a column of each row, not a constant of the statement: events of one
// transaction stamped a moment apart still go out in one insert (see WriteBatch.insert).
const eventRows = (events: DomainEvent[], now: number) => events.map((e) => [newId('evt'), e.type, e.aggregateType, e.aggregateId, e.aggregateSeq, JSON.stringify(e.payload), now]);
const EVENT_CONSTANTS: Array<[string, 'text' | 'bigint', unknown]> = [['origin', 'text', PROCESS_ORIGIN]];

export async function appendEvents(trx: DbOrTrx, dialect: Dialect, now: number, events: DomainEvent[]): Promise<void> {
  if (events.length === 0) return;
  // One shape of statement whatever the count: a debouncer pass can append thousands.
  await bulkInsert(trx, dialect, 'outbox', EVENT_COLUMNS, eventRows(events, now), '', EVENT_CONSTANTS);
}

/** The same, written with the batch's other inserts (still in the caller's transaction). */
export function appendEventsTo(batch: WriteBatch, now: number, events: DomainEvent[]): void {
  batch.insert('outbox', EVENT_COLUMNS, eventRows(events, now), '', EVENT_CONSTANTS);
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
