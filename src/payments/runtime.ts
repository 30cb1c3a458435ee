// The payment operators this process talks to, built from configuration, and the hooks the
// order use cases call: planWithin (in their transaction: record the money operations an order
// change makes due) and run (after commit: call the operators).
import type { Ctx } from '../context.ts';
import type { Store, Trx } from '../db/database.ts';
import type { Clock } from '../shared/clock.ts';
import { AppError } from '../shared/errors.ts';
import { CardTerminalProvider } from './providers/card-terminal.ts';
import { GiftCardProvider } from './providers/gift-card.ts';
import { type SandboxDelivery, SandboxProvider } from './providers/sandbox.ts';
import { StripeProvider } from './providers/stripe.ts';
import type { PaymentProvider, ProviderName } from './provider.ts';
import { planOrderMoney, runOperations } from './service.ts';
import type { PaymentSettings } from './settings.ts';

export class Payments {
  private readonly providers = new Map<ProviderName, PaymentProvider>();
  readonly sandbox: SandboxProvider | null;
  /**
   * Where the sandbox's signed webhooks go. By default they wait here (tests deliver them by
   * hand, in any order, as often as they like); the server delivers them to its own webhook
   * route after a short delay, as a real operator would (see startRuntime).
   */
  deliverSandbox: (d: SandboxDelivery) => void = (d) => {
    this.sandboxOutbox.push(d);
    if (this.sandboxOutbox.length > 1000) this.sandboxOutbox.shift();
  };
  readonly sandboxOutbox: SandboxDelivery[] = [];
  /** Unexpected adapter failures (never with secrets or bodies). */
  log?: (message: string) => void;
  private ctx: Ctx | null = null;

  constructor(
    readonly settings: PaymentSettings,
    store: Store,
    clock: Clock,
    opts: { actionBaseUrl?: string; extra?: PaymentProvider[] } = {},
  ) {
    this.sandbox = settings.sandbox.enabled
      ? new SandboxProvider({ store, clock, secrets: settings.sandbox.secrets, toleranceSec: settings.sandbox.toleranceSec, actionBaseUrl: opts.actionBaseUrl, emit: (d) => this.deliverSandbox(d) })
      : null;
    if (this.sandbox) this.providers.set('sandbox', this.sandbox);
    this.providers.set('gift_card', new GiftCardProvider({ store, clock }));
    this.providers.set('card_terminal', new CardTerminalProvider());
    if (settings.stripe) {
      this.providers.set('stripe', new StripeProvider({ ...settings.stripe }));
    }
    for (const p of opts.extra ?? []) this.providers.set(p.name, p);
  }

  bind(ctx: Ctx): this {
    this.ctx = ctx;
    return this;
  }

  /** Replaces an adapter (tests wrap one to count calls or inject a race). */
  use(provider: PaymentProvider): void {
    this.providers.set(provider.name, provider);
  }

  has(name: ProviderName): boolean {
    return this.providers.has(name);
  }

  provider(name: ProviderName): PaymentProvider {
    const p = this.providers.get(name);
    if (!p) throw new AppError('validation_failed', `The payment provider '${name}' is not configured on this OMS`);
    return p;
  }

  async planWithin(trx: Trx, orderIds: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const id of orderIds) out.push(...(await planOrderMoney(this.bound(), trx, id)));
    return out;
  }

  async run(operationIds: string[]): Promise<void> {
    await runOperations(this.bound(), operationIds);
  }

  private bound(): Ctx {
    if (!this.ctx) throw new Error('Payments used before bind(ctx)');
    return this.ctx;
  }
}
