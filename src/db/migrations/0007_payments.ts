// Payments (DOMAIN §4). One `payments` row per tender, with its money counters; every call to a
// payment operator is a `payment_operations` row written before the call (the intent, with
// its idempotency key) and completed after it. Refund requests, webhook event ids (dedupe),
// the per-channel order-number series, gift cards, and the sandbox PSP's own books.
//
// Invariant 3 lives in the database: per tender, captured ≤ authorized and refunded ≤ captured.
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database.ts';

export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  // The public order number (per-channel series) and the customer's tracking token (hashed).
  await db.schema.alterTable('orders').addColumn('number', 'text').execute();
  await db.schema.alterTable('orders').addColumn('tracking_token_hash', 'text').execute();
  await db.schema.alterTable('orders').addColumn('tracking_expires_at', 'bigint').execute();
  await db.schema.createIndex('orders_number').on('orders').column('number').unique().execute();
  await db.schema.createIndex('orders_tracking').on('orders').column('tracking_token_hash').unique().execute();

  await db.schema
    .createTable('order_number_series')
    .addColumn('channel_id', 'bigint', (c) => c.primaryKey())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('last_value', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('payments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('order_id', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    // What was asked to be authorized.
    .addColumn('amount', 'bigint', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('authorized', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('captured', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('refunded', 'bigint', (c) => c.notNull().defaultTo(0))
    // Authorization given back unused (a void, or the remainder after a final capture).
    .addColumn('voided', 'bigint', (c) => c.notNull().defaultTo(0))
    // Held by operations in flight: a new capture or refund fits only beside them.
    .addColumn('capture_pending', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('refund_pending', 'bigint', (c) => c.notNull().defaultTo(0))
    // The highest absolute figures the operator reported (webhooks): the counters converge to them.
    .addColumn('psp_authorized', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('psp_captured', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('psp_refunded', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('provider_ref', 'text')
    .addColumn('action_url', 'text')
    .addColumn('card_brand', 'text')
    .addColumn('card_last4', 'text')
    .addColumn('terminal_id', 'text')
    .addColumn('failure_code', 'text')
    .addColumn('failure_message', 'text')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addCheckConstraint(
      'payments_money',
      sql`authorized >= 0 and captured >= 0 and refunded >= 0 and voided >= 0 and capture_pending >= 0 and refund_pending >= 0 and captured <= authorized and refunded <= captured`,
    )
    .execute();
  await db.schema.createIndex('payments_order').on('payments').columns(['order_id']).execute();
  await db.schema.createIndex('payments_provider_ref').on('payments').columns(['provider', 'provider_ref']).unique().execute();

  await db.schema
    .createTable('payment_operations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('payment_id', 'text', (c) => c.notNull())
    .addColumn('order_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('amount', 'bigint', (c) => c.notNull())
    // pending (intent recorded, operator maybe called) → succeeded | failed
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('idempotency_key', 'text', (c) => c.notNull().unique())
    .addColumn('provider_ref', 'text')
    .addColumn('refund_id', 'text')
    .addColumn('fulfillment_id', 'text')
    .addColumn('final', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('failure_code', 'text')
    .addColumn('failure_message', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint')
    // Where the result came from: api (the operator's response), webhook, or external (done outside the OMS).
    .addColumn('source', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('completed_at', 'bigint')
    .addCheckConstraint('payment_operations_amount', sql`amount >= 0`)
    .execute();
  await db.schema.createIndex('payment_operations_payment').on('payment_operations').columns(['payment_id', 'kind']).execute();
  await db.schema.createIndex('payment_operations_ref').on('payment_operations').columns(['payment_id', 'provider_ref']).unique().execute();
  await db.schema.createIndex('payment_operations_due').on('payment_operations').columns(['status', 'next_attempt_at']).execute();
  await db.schema.createIndex('payment_operations_refund').on('payment_operations').columns(['refund_id']).execute();

  await db.schema
    .createTable('refunds')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('order_id', 'text', (c) => c.notNull())
    // refund (asked through the refund API: goodwill, returns) | cancellation (cancelled after capture)
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('amount', 'bigint', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    // JSON [{line_id, quantity, amount}] when the refund is for lines.
    .addColumn('lines', 'text')
    .addColumn('shipping', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addCheckConstraint('refunds_amount', sql`amount > 0`)
    .execute();
  await db.schema.createIndex('refunds_order').on('refunds').columns(['order_id']).execute();

  // Provider event ids already applied (dedupe); kept at least 30 days.
  await db.schema
    .createTable('webhook_events')
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('webhook_events_pk', ['provider', 'event_id'])
    .execute();
  await db.schema.createIndex('webhook_events_received').on('webhook_events').columns(['received_at']).execute();

  // Gift cards (store credit): the code is a bearer secret, stored hashed like an API key.
  await db.schema
    .createTable('gift_cards')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('code_hash', 'text', (c) => c.notNull().unique())
    .addColumn('last4', 'text', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('balance', 'bigint', (c) => c.notNull())
    .addColumn('held', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('expires_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addCheckConstraint('gift_cards_money', sql`balance >= 0 and held >= 0 and held <= balance`)
    .execute();
  await db.schema
    .createTable('gift_card_holds')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('gift_card_id', 'text', (c) => c.notNull())
    .addColumn('amount', 'bigint', (c) => c.notNull())
    .addColumn('captured', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('refunded', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('released', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addCheckConstraint('gift_card_holds_money', sql`captured + released <= amount and refunded <= captured`)
    .execute();
  // Each operation on a gift card once per idempotency key: a replay returns the stored result.
  await db.schema
    .createTable('gift_card_requests')
    .addColumn('idempotency_key', 'text', (c) => c.primaryKey())
    .addColumn('result', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  // The sandbox PSP's own books: it simulates an external operator, so its state is shared by
  // every OMS process (a real PSP keeps it on its side). Nothing in the OMS reads these tables.
  await db.schema
    .createTable('sandbox_psp_payments')
    .addColumn('ref', 'text', (c) => c.primaryKey())
    .addColumn('payment_id', 'text', (c) => c.notNull())
    .addColumn('order_id', 'text', (c) => c.notNull())
    .addColumn('token', 'text', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('amount', 'bigint', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('authorized', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('captured', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('refunded', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('sandbox_psp_requests')
    .addColumn('idempotency_key', 'text', (c) => c.primaryKey())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('result', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
}
