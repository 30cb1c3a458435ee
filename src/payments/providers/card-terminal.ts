// The card terminal in store (card present). The OMS does not drive the terminal: the store's
// terminal, or the POS in front of it, reports the approved transaction through the store API
// (POST /orders/:id/payments/terminal), and it counts as authorized and captured at once.
// A refund of a card-present payment is done on the terminal (a referenced refund, card
// present): the OMS records it as pending, and the store reports it done with the terminal's
// reference (POST /payments/:id/operations/:op/confirm). Nothing here calls a network.
import type {
  AuthorizeResult,
  CaptureRequest,
  CaptureResult,
  PaymentProvider,
  RefundRequest,
  RefundResult,
  VoidResult,
  WebhookVerdict,
} from '../provider.ts';

export class CardTerminalProvider implements PaymentProvider {
  readonly name = 'card_terminal' as const;

  async authorize(): Promise<AuthorizeResult> {
    return { outcome: 'declined', providerRef: null, code: 'card_present_only', message: 'A card-present payment is reported by the store terminal, not authorized online' };
  }

  /** Card-present payments are captured by the terminal: there is nothing left to capture. */
  async capture(req: CaptureRequest): Promise<CaptureResult> {
    return { outcome: 'failed', code: 'already_captured', message: `Terminal transaction ${req.providerRef} was captured at the terminal` };
  }

  async void(): Promise<VoidResult> {
    return { outcome: 'failed', code: 'already_captured', message: 'A card-present payment cannot be voided: refund it at the terminal' };
  }

  async refund(req: RefundRequest): Promise<RefundResult> {
    return { outcome: 'pending', refundRef: `terminal:${req.operationId}` };
  }

  async parseWebhook(): Promise<WebhookVerdict> {
    return { ok: false, reason: 'malformed', message: 'The card terminal reports through the store API, not webhooks' };
  }
}
