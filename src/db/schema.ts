// Table types for Kysely. Timestamps are epoch milliseconds (portable across SQLite and
// PostgreSQL); booleans are 0/1 integers; JSON is stored as text and parsed by repositories.
import type { Generated } from 'kysely';

export interface LocationTable {
  id: Generated<number>;
  code: string;
  name: string;
  type: string;
  fulfilment_channel: string;
  country: string;
  city: string | null;
  postal_code: string | null;
  address_line: string | null;
  latitude: number | null;
  longitude: number | null;
  tags: string;
  cap_ships: number;
  cap_click_and_collect: number;
  cap_order_in_store: number;
  cap_accepts_returns: number;
  daily_capacity: number | null;
  priority: number;
  shipment_cost: number;
  currency: string;
  default_safety_stock: number;
  active: number;
  snapshot_as_of: number | null;
  version: number;
  created_at: number;
  updated_at: number;
}

export interface SkuTable {
  id: Generated<number>;
  code: string;
  gtin: string | null;
  name: string;
  weight_g: number | null;
  length_mm: number | null;
  width_mm: number | null;
  height_mm: number | null;
  demand_class: string | null;
  tags: string;
  backorderable: number;
  active: number;
  version: number;
  created_at: number;
  updated_at: number;
}

export interface StockPositionTable {
  location_id: number;
  sku_id: number;
  on_hand: number;
  reserved: number;
  quarantine: number;
  safety_stock: number | null;
  baseline_as_of: number | null;
  last_seq: number | null;
  version: number;
  updated_at: number;
}

export interface StockMovementTable {
  id: Generated<number>;
  location_id: number;
  sku_id: number;
  kind: string;
  quantity: number;
  on_hand_change: number;
  quarantine_change: number;
  occurred_at: number;
  recorded_at: number;
  source: string;
  idempotency_key: string | null;
  seq: number | null;
  reference: string | null;
}

export interface ReservationTable {
  id: string;
  location_id: number;
  sku_id: number;
  quantity: number;
  status: string;
  channel_id: number | null;
  reference: string | null;
  created_at: number;
  updated_at: number;
}

export interface IncomingSupplyTable {
  id: string;
  kind: string;
  reference: string;
  location_id: number;
  sku_id: number;
  quantity: number;
  received_quantity: number;
  /** Units held by active supply allocations (backorders promised on this row). */
  allocated: Generated<number>;
  expected_at: number;
  status: string;
  created_at: number;
  updated_at: number;
}

export interface SupplyAllocationTable {
  id: string;
  supply_id: string;
  order_id: string;
  fulfillment_id: string;
  line_id: string;
  /** Units still held (a partial release lowers it; the row stays active). */
  quantity: number;
  status: 'active' | 'released' | 'converted';
  created_at: number;
  updated_at: number;
}

export interface ChannelTable {
  id: Generated<number>;
  code: string;
  name: string;
  type: string;
  location_types: string;
  location_tags: string;
  location_codes: string;
  exclude_location_codes: string;
  buffer: number;
  cap_percent: number | null;
  future_stock: number;
  future_horizon_days: number;
  active: number;
  version: number;
  created_at: number;
  updated_at: number;
}

export interface ApiKeyTable {
  id: string;
  name: string;
  prefix: string;
  key_hash: string;
  role: string;
  channel_id: number | null;
  location_ids: string;
  created_at: number;
  revoked_at: number | null;
}

export interface OutboxTable {
  id: Generated<number>;
  event_id: string;
  type: string;
  aggregate_type: string;
  aggregate_id: string;
  aggregate_seq: number;
  payload: string;
  /** The OMS process that wrote it, so its own projection updates are not applied twice. */
  origin: string;
  occurred_at: number;
  published_at: number | null;
}

export interface AvailabilityDirtyTable {
  id: Generated<number>;
  sku_id: number;
  marked_at: number;
}

export interface AvailabilityPublishedTable {
  sku_id: number;
  channel_id: number;
  available: number;
  published_at: number;
}

export interface FeedImportTable {
  id: string;
  kind: string;
  source: string;
  as_of: number | null;
  status: string;
  rows_applied: number;
  rows_ignored: number;
  rows_rejected: number;
  problems: string;
  started_at: number;
  finished_at: number | null;
}

export interface Database {
  locations: LocationTable;
  skus: SkuTable;
  stock_positions: StockPositionTable;
  stock_movements: StockMovementTable;
  reservations: ReservationTable;
  incoming_supply: IncomingSupplyTable;
  supply_allocations: SupplyAllocationTable;
  channels: ChannelTable;
  api_keys: ApiKeyTable;
  outbox: OutboxTable;
  availability_dirty: AvailabilityDirtyTable;
  availability_published: AvailabilityPublishedTable;
  feed_imports: FeedImportTable;
  sourcing_rule_sets: SourcingRuleSetTable;
  sourcing_publications: SourcingPublicationTable;
  location_capacity_usage: LocationCapacityUsageTable;
  orders: OrderTable;
  order_lines: OrderLineTable;
  delivery_groups: DeliveryGroupTable;
  fulfillment_orders: FulfillmentOrderTable;
  fulfillment_lines: FulfillmentLineTable;
  order_sourcing: OrderSourcingTable;
  idempotency_keys: IdempotencyKeyTable;
  order_number_series: OrderNumberSeriesTable;
  payments: PaymentTable;
  payment_operations: PaymentOperationTable;
  refunds: RefundTable;
  webhook_events: WebhookEventTable;
  gift_cards: GiftCardTable;
  gift_card_holds: GiftCardHoldTable;
  gift_card_requests: GiftCardRequestTable;
  sandbox_psp_payments: SandboxPspPaymentTable;
  sandbox_psp_requests: SandboxPspRequestTable;
}

export interface SourcingRuleSetTable {
  id: Generated<number>;
  name: string;
  /** The rule set as JSON (validated before it is saved). */
  body: string;
  note: string | null;
  created_by: string;
  created_at: number;
}

export interface SourcingPublicationTable {
  id: Generated<number>;
  rule_set_id: number;
  action: 'publish' | 'rollback';
  published_by: string;
  published_at: number;
}

export interface LocationCapacityUsageTable {
  location_id: number;
  /** UTC day, YYYY-MM-DD. */
  day: string;
  used: number;
}

export interface OrderTable {
  id: string;
  channel_id: number;
  external_reference: string;
  status: string;
  currency: string;
  customer_email: string | null;
  /** JSON: name, email, phone. */
  customer: string;
  /** JSON address, or null. */
  billing_address: string | null;
  subtotal: number;
  discount_total: number;
  tax_total: number;
  shipping_total: number;
  total: number;
  /** JSON: the intended tenders (payment comes with the payments issue). */
  tenders: string;
  /** API key id that captured the order. */
  captured_by: string;
  /** Order in Store: the store whose associate captured it. */
  store_location_id: number | null;
  associate: string | null;
  /** JSON number[]: locations that must not fulfil this order (Order in Store, rejections). */
  excluded_location_ids: string;
  validated_at: number | null;
  validated_by: string | null;
  expires_at: number | null;
  closed_at: number | null;
  close_reason: string | null;
  version: number;
  created_at: number;
  updated_at: number;
  /** The public order number, given on validation (per-channel series). */
  number: Generated<string | null>;
  /** SHA-256 of the customer's tracking token (the token itself is never stored). */
  tracking_token_hash: Generated<string | null>;
  tracking_expires_at: Generated<number | null>;
}

export interface OrderLineTable {
  order_id: string;
  line_id: string;
  group_id: string;
  sku_id: number;
  quantity: number;
  unit_price: number;
  discount: number;
  tax: number;
  allocated: number;
  backordered: number;
  cancelled: number;
  shipped: number;
}

export interface DeliveryGroupTable {
  order_id: string;
  group_id: string;
  mode: string;
  address: string | null;
  pickup_location_id: number | null;
  relay_point: string | null;
  service_level: string | null;
  carrier_service: string | null;
  shipping_price: number;
}

export interface FulfillmentOrderTable {
  id: string;
  order_id: string;
  group_id: string;
  location_id: number;
  status: string;
  mode: string;
  backorder: number;
  ready_date: string;
  carrier_service: string | null;
  estimated_delivery: string | null;
  accept_by: number | null;
  reason: string | null;
  tracking: string | null;
  version: number;
  created_at: number;
  updated_at: number;
}

export interface FulfillmentLineTable {
  fulfillment_id: string;
  line_id: string;
  sku_id: number;
  quantity: number;
  picked: number | null;
  shipped: number;
  reservation_id: string | null;
}

export interface OrderSourcingTable {
  id: Generated<number>;
  order_id: string;
  reason: string;
  rule_set_version: number | null;
  decision: string;
  created_at: number;
}

export interface IdempotencyKeyTable {
  scope: string;
  key: string;
  request_hash: string;
  state: string;
  status_code: number | null;
  response: string | null;
  locked_until: number;
  created_at: number;
  expires_at: number;
}

export interface OrderNumberSeriesTable {
  channel_id: number;
  prefix: string;
  last_value: number;
}

export interface PaymentTable {
  id: string;
  order_id: string;
  provider: string;
  method: string;
  currency: string;
  amount: number;
  /** pending | requires_action | authorized | failed | voided | closed */
  status: string;
  authorized: Generated<number>;
  captured: Generated<number>;
  refunded: Generated<number>;
  voided: Generated<number>;
  capture_pending: Generated<number>;
  refund_pending: Generated<number>;
  psp_authorized: Generated<number>;
  psp_captured: Generated<number>;
  psp_refunded: Generated<number>;
  provider_ref: string | null;
  action_url: string | null;
  card_brand: string | null;
  card_last4: string | null;
  terminal_id: string | null;
  failure_code: string | null;
  failure_message: string | null;
  created_by: string;
  version: number;
  created_at: number;
  updated_at: number;
}

export interface PaymentOperationTable {
  id: string;
  payment_id: string;
  order_id: string;
  /** authorize | capture | void | refund */
  kind: string;
  amount: number;
  /** pending | succeeded | failed */
  status: string;
  idempotency_key: string;
  provider_ref: string | null;
  refund_id: string | null;
  fulfillment_id: string | null;
  final: Generated<number>;
  failure_code: string | null;
  failure_message: string | null;
  attempts: Generated<number>;
  next_attempt_at: number | null;
  source: string | null;
  created_at: number;
  completed_at: number | null;
}

export interface RefundTable {
  id: string;
  order_id: string;
  /** refund (the refund API) | cancellation (cancelled after capture) */
  kind: string;
  amount: number;
  /** pending | succeeded | partially_failed | failed */
  status: string;
  reason: string | null;
  lines: string | null;
  shipping: Generated<number>;
  created_by: string;
  created_at: number;
  updated_at: number;
}

export interface WebhookEventTable {
  provider: string;
  event_id: string;
  type: string;
  received_at: number;
}

export interface GiftCardTable {
  id: string;
  code_hash: string;
  last4: string;
  currency: string;
  balance: number;
  held: Generated<number>;
  expires_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface GiftCardHoldTable {
  id: string;
  gift_card_id: string;
  amount: number;
  captured: Generated<number>;
  refunded: Generated<number>;
  released: Generated<number>;
  created_at: number;
}

export interface GiftCardRequestTable {
  idempotency_key: string;
  result: string;
  created_at: number;
}

export interface SandboxPspPaymentTable {
  ref: string;
  payment_id: string;
  order_id: string;
  token: string;
  currency: string;
  amount: number;
  status: string;
  authorized: Generated<number>;
  captured: Generated<number>;
  refunded: Generated<number>;
  created_at: number;
  updated_at: number;
}

export interface SandboxPspRequestTable {
  idempotency_key: string;
  attempts: number;
  result: string | null;
  created_at: number;
}
