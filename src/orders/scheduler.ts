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

/**
 * One sweep: batches of due work until none is left or `budgetMs` has passed (the rest waits
 * for the next sweep), so a store where thousands of checkouts are abandoned an hour keeps up.
 */
export async function sweepOrders(ctx: Ctx, batch = 100, budgetMs = 2_000): Promise<SweepResult> {
  const until = Date.now() + budgetMs;
  let expired = 0;
  for (let ids = await dueForExpiry(ctx, batch); ids.length; ids = Date.now() < until && ids.length === batch ? await dueForExpiry(ctx, batch) : []) {
    for (const id of ids) if (await expireOrder(ctx, id, SYSTEM_ACTOR)) expired++;
  }
  let deadlinesMissed = 0;
  for (let ids = await overdueFulfillments(ctx, batch); ids.length; ids = Date.now() < until && ids.length === batch ? await overdueFulfillments(ctx, batch) : []) {
    for (const id of ids) if (await missDeadline(ctx, id)) deadlinesMissed++;
  }
  const keysPurged = await purgeIdempotencyKeys(ctx);
  return { expired, deadlinesMissed, keysPurged };
}
