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
  expected_at: number;
  status: string;
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
  channels: ChannelTable;
  api_keys: ApiKeyTable;
  outbox: OutboxTable;
  availability_dirty: AvailabilityDirtyTable;
  availability_published: AvailabilityPublishedTable;
  feed_imports: FeedImportTable;
  sourcing_rule_sets: SourcingRuleSetTable;
  sourcing_publications: SourcingPublicationTable;
  location_capacity_usage: LocationCapacityUsageTable;
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
