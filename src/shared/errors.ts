// The one error catalogue. Every error body the API returns is { error: { code, message, details? } }
// with a code from this table; the HTTP layer maps codes to statuses here and nowhere else.
// test/api/errors.test.ts checks that this catalogue and the OpenAPI document agree.

export const ERROR_CATALOGUE = {
  validation_failed: { status: 400, summary: 'The request does not match the schema (types, required fields, ranges).' },
  malformed_json: { status: 400, summary: 'The request body is not valid JSON.' },
  malformed_csv: { status: 400, summary: 'The CSV file cannot be read (bad header, encoding or quoting).' },
  invalid_gtin: { status: 400, summary: 'The GTIN has the wrong length or check digit.' },
  invalid_country: { status: 400, summary: 'The country is not an ISO 3166-1 alpha-2 code.' },
  card_data_rejected: { status: 400, summary: 'A text field holds what looks like a card number: the OMS never accepts card numbers (send the payment operator\'s token).' },
  webhook_signature_invalid: { status: 400, summary: 'The webhook signature is missing, wrong or stale (details.reason says which); nothing was applied.' },
  delta_key_required: { status: 400, summary: 'A delta needs a sequence number or an idempotency key.' },
  page_too_large: { status: 400, summary: 'The requested page or batch exceeds the documented maximum.' },
  invalid_cursor: { status: 400, summary: 'The pagination cursor is not one this API issued.' },
  payment_declined: { status: 402, summary: 'The payment operator declined the payment (details.decline_code); the order stays unpaid.' },
  unauthenticated: { status: 401, summary: 'No API key, or the key is unknown or revoked.' },
  forbidden: { status: 403, summary: 'The key is valid but its role or scope does not allow this.' },
  not_found: { status: 404, summary: 'No such resource, or not visible to this key.' },
  unknown_sku: { status: 404, summary: 'The sku code does not exist.' },
  unknown_location: { status: 404, summary: 'The location code does not exist.' },
  unknown_channel: { status: 404, summary: 'The channel code does not exist.' },
  route_not_found: { status: 404, summary: 'No such route.' },
  conflict: { status: 409, summary: 'The resource already exists or was changed concurrently.' },
  insufficient_stock: { status: 409, summary: 'Not enough available stock for the requested reservation.' },
  out_of_stock: { status: 409, summary: 'The order cannot be sourced: details list, per line, what could not be filled.' },
  invalid_state: { status: 409, summary: 'The resource is not in a state that allows this action.' },
  refund_exceeds_captured: { status: 409, summary: 'The refund is more than the order\'s tenders captured and have not refunded yet (details.refundable).' },
  payment_exceeds_due: { status: 422, summary: 'The payment is more than the order still has to pay (details.outstanding).' },
  totals_mismatch: { status: 422, summary: 'The order lines, shipping, totals or tenders do not add up (details.problems lists each).' },
  idempotency_key_reused: { status: 422, summary: 'This Idempotency-Key was already used with a different request body.' },
  idempotency_in_flight: { status: 409, summary: 'A request with this Idempotency-Key is still being processed; retry shortly.' },
  invalid_rule_set: { status: 422, summary: 'The rule set breaks the schema or its own references (details.problems lists every problem).' },
  body_too_large: { status: 413, summary: 'The request body exceeds the configured limit.' },
  unsupported_media_type: { status: 415, summary: 'The content type is not accepted by this route.' },
  rate_limited: { status: 429, summary: 'Too many requests.' },
  internal_error: { status: 500, summary: 'An unexpected failure; it is logged with the request id.' },
  payment_provider_unavailable: { status: 503, summary: 'The payment operator could not be reached; nothing was charged. Retry.' },
  not_ready: { status: 503, summary: 'The service is starting or lost its database.' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;
export const ERROR_CODES = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

/** An expected failure that crosses the HTTP boundary with a stable code. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'AppError';
  }
  get status(): number {
    return ERROR_CATALOGUE[this.code].status;
  }
}

export const notFound = (what: string) => new AppError('not_found', `${what} not found`);
