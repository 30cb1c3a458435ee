// The order scheduler inside the service: expires unpaid orders, re-sources fulfilment orders
// whose location missed its acceptance deadline, and forgets old idempotency keys. Every step
// is a conditional update, so several OMS processes may sweep at once: each order or
// fulfilment order is handled by exactly one of them.
import type { Ctx } from '../context.ts';
import { expireOrder, dueForExpiry } from './changes.ts';
import { missDeadline, overdueFulfillments, SYSTEM_ACTOR } from './fulfilment.ts';
import { purgeIdempotencyKeys } from './idempotency.ts';

export interface SweepResult {
  expired: number;
  deadlinesMissed: number;
  keysPurged: number;
}

export async function sweepOrders(ctx: Ctx, batch = 100): Promise<SweepResult> {
  let expired = 0;
  for (const id of await dueForExpiry(ctx, batch)) if (await expireOrder(ctx, id, SYSTEM_ACTOR)) expired++;
  let deadlinesMissed = 0;
  for (const id of await overdueFulfillments(ctx, batch)) if (await missDeadline(ctx, id)) deadlinesMissed++;
  const keysPurged = await purgeIdempotencyKeys(ctx);
  return { expired, deadlinesMissed, keysPurged };
}
