// What every use case receives: the store, the clock and the availability projection.
// Built once in the composition root (src/app.ts), passed explicitly, no container.
import type { RecentMarks } from './availability/dirty.ts';
import type { StockProjection } from './availability/projection.ts';
import type { Store } from './db/database.ts';
import type { CarrierConfig } from './carriers/model.ts';
import type { OrderSettings } from './orders/settings.ts';
import type { Payments } from './payments/runtime.ts';
import type { Clock } from './shared/clock.ts';
import type { CapacityUsage } from './sourcing/capacity.ts';
import type { PublishedRules } from './sourcing/rule-sets.ts';

export interface Ctx {
  store: Store;
  clock: Clock;
  projection: StockProjection;
  /** Dirty marks this process committed recently (see RecentMarks); optional. */
  recentMarks?: RecentMarks;
  /** Sourcing state per process: the published rules (cached), carriers, capacity used today. */
  sourcing: { rules: PublishedRules; carriers: CarrierConfig; capacity: CapacityUsage };
  /** Order policies (payment window, idempotency, acceptance deadlines). */
  orders: OrderSettings;
  /** Payment operators and policies; the hooks order changes call to square an order's money. */
  payments: Payments;
}
