// A local stand-in for the part of the Stripe API the OMS uses, for tests: a node:http server on
// 127.0.0.1 (port 0) that the official SDK talks to (host/port/protocol options).
//
// Routes: POST /v1/payment_intents, GET /v1/payment_intents/:id, POST /v1/payment_intents/:id/capture,
// POST /v1/payment_intents/:id/cancel, POST /v1/refunds. Bodies are form-encoded with Stripe's
// bracket notation (metadata[k]=v, a[b][c]=v, expand[0]=x); unknown parameters are refused
// (parameter_unknown), as Stripe does. Bearer auth is checked (401 otherwise).
//
// Idempotency, as Stripe documents it: the first result for a key is saved (successes and card
// declines; not parameter errors, which are refused before anything executes, nor the injected
// faults, which model a failure in front of the API); the same key with the same method, path
// and parameters replays it with `Idempotent-Replayed: true`; other parameters → 400
// idempotency_error. GET ignores the key.
//
// Test payment methods: pm_card_visa (approved, visa 4242), pm_card_mastercard (approved,
// mastercard 4444), pm_card_chargeDeclined (402, generic_decline), pm_card_chargeDeclinedInsufficientFunds
// (402, insufficient_funds), pm_card_authenticationRequired (requires_action, redirect_to_url when
// a return_url is given; 402 authentication_required with error_on_requires_action).
//
// Every state change records the event Stripe would send (`events`); `signedDelivery` builds a
// webhook delivery (raw body + Stripe-Signature) with the SDK's generateTestHeaderString.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

/** A parsed form body: strings, nested objects (a[b]=…) and arrays (a[0]=…, a[]=…). */
export type FormValue = string | FormValue[] | FormObject;
export type FormObject = { [k: string]: FormValue };

export type RouteName =
  | 'POST /v1/payment_intents'
  | 'GET /v1/payment_intents/:id'
  | 'POST /v1/payment_intents/:id/capture'
  | 'POST /v1/payment_intents/:id/cancel'
  | 'POST /v1/refunds'
  | 'unknown';

export interface RecordedRequest {
  method: string;
  route: RouteName;
  path: string;
  idempotencyKey: string | undefined;
  params: FormObject;
  status: number;
  replayed: boolean;
  injected: boolean;
}

export type FaultMode = 'status' | 'reset' | 'hang';
export interface Fault {
  /** 'status' (default): answer `status`; 'reset': destroy the socket; 'hang': never answer. */
  mode?: FaultMode;
  /** For mode 'status': 500 (default), 502, 503, 429… */
  status?: number;
}

export type RefundStatus = 'succeeded' | 'pending' | 'requires_action' | 'failed' | 'canceled';

type Card = { brand: string; last4: string; outcome: 'approve' | 'decline' | 'authenticate'; declineCode: string; message: string };

const CARDS: Record<string, Card> = {
  pm_card_visa: { brand: 'visa', last4: '4242', outcome: 'approve', declineCode: '', message: '' },
  pm_card_mastercard: { brand: 'mastercard', last4: '4444', outcome: 'approve', declineCode: '', message: '' },
  pm_card_chargeDeclined: { brand: 'visa', last4: '0002', outcome: 'decline', declineCode: 'generic_decline', message: 'Your card was declined.' },
  pm_card_chargeDeclinedInsufficientFunds: { brand: 'visa', last4: '9995', outcome: 'decline', declineCode: 'insufficient_funds', message: 'Your card has insufficient funds.' },
  pm_card_authenticationRequired: { brand: 'visa', last4: '3184', outcome: 'authenticate', declineCode: '', message: '' },
};

type PaymentIntentState = {
  id: string;
  object: 'payment_intent';
  amount: number;
  amount_capturable: number;
  amount_received: number;
  allowed_payment_method_types: string[];
  canceled_at: number | null;
  cancellation_reason: string | null;
  capture_method: string;
  client_secret: string;
  confirmation_method: 'automatic';
  created: number;
  currency: string;
  description: string | null;
  last_payment_error: JsonObject | null;
  latest_charge: string | null;
  livemode: false;
  metadata: { [k: string]: string };
  next_action: JsonObject | null;
  payment_method: string | null;
  payment_method_options: JsonObject;
  payment_method_types: string[];
  status: string;
};

type ChargeState = {
  id: string;
  object: 'charge';
  amount: number;
  amount_captured: number;
  amount_refunded: number;
  captured: boolean;
  created: number;
  currency: string;
  failure_code: string | null;
  failure_message: string | null;
  livemode: false;
  metadata: { [k: string]: string };
  outcome: JsonObject;
  paid: boolean;
  payment_intent: string;
  payment_method: string;
  payment_method_details: JsonObject;
  refunded: boolean;
  status: string;
};

type RefundState = {
  id: string;
  object: 'refund';
  amount: number;
  charge: string;
  created: number;
  currency: string;
  failure_reason: string | null;
  metadata: { [k: string]: string };
  payment_intent: string;
  reason: string | null;
  status: RefundStatus;
};

export type StandinEvent = {
  id: string;
  object: 'event';
  api_version: string;
  created: number;
  data: { object: JsonObject; previous_attributes?: JsonObject };
  livemode: false;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: JsonObject,
    /** Saved for the idempotency key (the request executed, e.g. a card decline). */
    readonly saved = false,
  ) {
    super(typeof body.message === 'string' ? body.message : 'error');
  }
}

const invalid = (message: string, code: string | null, param: string | null, extra: JsonObject = {}): HttpError =>
  new HttpError(400, { type: 'invalid_request_error', message, ...(code ? { code } : {}), ...(param ? { param } : {}), ...extra });
const missing = (what: string, id: string, param: string): HttpError =>
  new HttpError(404, { type: 'invalid_request_error', code: 'resource_missing', message: `No such ${what}: '${id}'`, param });

const json = (x: unknown): JsonObject => JSON.parse(JSON.stringify(x)) as JsonObject;
const newId = (prefix: string): string => `${prefix}_${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}`;

// ---------------------------------------------------------------------------------------------
// Form bodies, Stripe's bracket notation.

/** `a[b][0]=x&a[b][1]=y&c=z` → { a: { b: ['x', 'y'] }, c: 'z' } */
export function parseForm(body: string): FormObject {
  const root: FormObject = {};
  for (const [rawKey, value] of new URLSearchParams(body)) {
    const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(rawKey);
    if (!m) throw invalid(`Invalid parameter name: ${rawKey}`, 'parameter_unknown', rawKey);
    const path = [m[1], ...[...m[2].matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1])];
    let node: FormObject = root;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i] === '' ? String(Object.keys(node).length) : path[i];
      if (i === path.length - 1) {
        node[seg] = value;
      } else {
        const next = node[seg];
        if (next === undefined) node[seg] = {};
        else if (typeof next === 'string' || Array.isArray(next)) throw invalid(`Invalid parameter: ${rawKey}`, 'parameter_invalid', rawKey);
        node = node[seg] as FormObject;
      }
    }
  }
  return arraysOf(root) as FormObject;
}

/** Objects whose keys are 0..n-1 become arrays (qs' indexed format). */
function arraysOf(v: FormValue): FormValue {
  if (typeof v === 'string' || Array.isArray(v)) return v;
  const keys = Object.keys(v);
  for (const k of keys) v[k] = arraysOf(v[k]);
  if (keys.length > 0 && keys.every((k, i) => k === String(i))) return keys.map((k) => v[k]);
  return v;
}

/** A stable text of parameters: key order does not matter (idempotency fingerprint). */
function canonical(v: FormValue): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return `{${Object.keys(v)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
    .join(',')}}`;
}

const str = (p: FormObject, key: string): string | undefined => {
  const v = p[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalid(`Invalid ${key}: must be a string`, 'parameter_invalid_string', key);
  return v;
};
const obj = (p: FormObject, key: string): FormObject | undefined => {
  const v = p[key];
  if (v === undefined) return undefined;
  if (typeof v === 'string' && v === '') return {};
  if (typeof v === 'string' || Array.isArray(v)) throw invalid(`Invalid ${key}: must be an object`, 'parameter_invalid', key);
  return v;
};
const list = (p: FormObject, key: string): string[] | undefined => {
  const v = p[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string')) throw invalid(`Invalid array: ${key}`, 'parameter_invalid', key);
  return v;
};
const int = (p: FormObject, key: string): number | undefined => {
  const v = str(p, key);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw invalid(`Invalid integer: ${v}`, 'parameter_invalid_integer', key);
  return Number(v);
};
const bool = (p: FormObject, key: string): boolean | undefined => {
  const v = str(p, key);
  if (v === undefined) return undefined;
  if (v !== 'true' && v !== 'false') throw invalid(`Invalid boolean: ${v}`, 'parameter_invalid_boolean', key);
  return v === 'true';
};
const oneOf = <T extends string>(p: FormObject, key: string, allowed: readonly T[]): T | undefined => {
  const v = str(p, key);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw invalid(`Invalid ${key}: must be one of ${allowed.join(', ')}`, 'parameter_invalid', key);
  return v as T;
};
function metadataOf(p: FormObject): { [k: string]: string } {
  const m = obj(p, 'metadata') ?? {};
  const out: { [k: string]: string } = {};
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== 'string') throw invalid(`Invalid metadata[${k}]: must be a string`, 'parameter_invalid', `metadata[${k}]`);
    if (k.length > 40 || v.length > 500) throw invalid('Metadata keys are at most 40 characters, values 500', 'parameter_invalid', `metadata[${k}]`);
    out[k] = v;
  }
  return out;
}
function onlyKnown(p: FormObject, known: readonly string[]): void {
  for (const k of Object.keys(p)) if (!known.includes(k)) throw invalid(`Received unknown parameter: ${k}`, 'parameter_unknown', k);
}

// ---------------------------------------------------------------------------------------------

export interface StripeStandinOptions {
  /** The key the SDK must present (Bearer). Default `sk_test_standin`. */
  secretKey?: string;
  /** The clock for `created` fields (ms). Default Date.now. */
  clock?: () => number;
}

export class StripeStandin {
  readonly secretKey: string;
  readonly host = '127.0.0.1';
  /** Calls received per route, injected faults and replays included. */
  readonly calls: Record<RouteName, number> = {
    'POST /v1/payment_intents': 0,
    'GET /v1/payment_intents/:id': 0,
    'POST /v1/payment_intents/:id/capture': 0,
    'POST /v1/payment_intents/:id/cancel': 0,
    'POST /v1/refunds': 0,
    unknown: 0,
  };
  /** Objects actually created (a replay creates nothing). */
  readonly created = { paymentIntents: 0, charges: 0, refunds: 0 };
  readonly requests: RecordedRequest[] = [];
  /** The events Stripe would send, in order. */
  readonly events: StandinEvent[] = [];

  private readonly intents = new Map<string, PaymentIntentState>();
  private readonly charges = new Map<string, ChargeState>();
  private readonly refunds = new Map<string, RefundState>();
  private readonly idempotency = new Map<string, { fingerprint: string; status: number; body: string }>();
  private readonly faults: Fault[] = [];
  private readonly refundStatuses: RefundStatus[] = [];
  private readonly clock: () => number;
  private server: Server | null = null;
  /** The request being executed, named by the events it causes (Stripe's event.request). */
  private currentRequest: { id: string | null; idempotency_key: string | null } = { id: null, idempotency_key: null };
  private listenPort = 0;

  private constructor(opts: StripeStandinOptions) {
    this.secretKey = opts.secretKey ?? 'sk_test_standin';
    this.clock = opts.clock ?? Date.now;
  }

  static async start(opts: StripeStandinOptions = {}): Promise<StripeStandin> {
    const s = new StripeStandin(opts);
    const server = createServer((req, res) => s.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    s.server = server;
    s.listenPort = (server.address() as AddressInfo).port;
    return s;
  }

  get port(): number {
    return this.listenPort;
  }
  get url(): string {
    return `http://${this.host}:${this.listenPort}`;
  }
  /** What StripeProvider needs to talk to this server. */
  connection(): { secretKey: string; host: string; port: number; protocol: 'http' } {
    return { secretKey: this.secretKey, host: this.host, port: this.listenPort, protocol: 'http' };
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /** The next `n` calls fail (before reaching the API: nothing executes, nothing is saved). */
  failNext(n: number, fault: Fault = {}): void {
    for (let i = 0; i < n; i++) this.faults.push(fault);
  }

  /** The status of the next refunds created (then `succeeded` again). */
  nextRefundStatus(...statuses: RefundStatus[]): void {
    this.refundStatuses.push(...statuses);
  }

  /** Resets the counters and the request log (objects and idempotency keys are kept). */
  resetCounters(): void {
    for (const k of Object.keys(this.calls) as RouteName[]) this.calls[k] = 0;
    this.created.paymentIntents = this.created.charges = this.created.refunds = 0;
    this.requests.length = 0;
    this.events.length = 0;
  }

  paymentIntent(id: string): PaymentIntentState | undefined {
    const pi = this.intents.get(id);
    return pi ? structuredClone(pi) : undefined;
  }
  charge(id: string): ChargeState | undefined {
    const ch = this.charges.get(id);
    return ch ? structuredClone(ch) : undefined;
  }
  refund(id: string): RefundState | undefined {
    const r = this.refunds.get(id);
    return r ? structuredClone(r) : undefined;
  }
  /** Requests to a route, in order. */
  requestsTo(route: RouteName): RecordedRequest[] {
    return this.requests.filter((r) => r.route === route);
  }
  eventsOfType(type: string): StandinEvent[] {
    return this.events.filter((e) => e.type === type);
  }

  /** The customer went through 3-D Secure (or failed to). */
  completeAction(paymentIntentId: string, succeed = true): void {
    const pi = this.intents.get(paymentIntentId);
    if (pi?.status !== 'requires_action' || !pi.payment_method) throw new Error(`completeAction: ${paymentIntentId} does not require an action`);
    pi.next_action = null;
    const card = CARDS[pi.payment_method];
    if (succeed) this.approve(pi, card);
    else {
      pi.status = 'requires_payment_method';
      pi.last_payment_error = {
        type: 'invalid_request_error',
        code: 'payment_intent_authentication_failure',
        message: 'We are unable to authenticate your payment method. Please choose a different payment method and try again.',
      };
      this.emit('payment_intent.payment_failed', pi, null);
    }
  }

  /** A pending refund settles (refund.updated, charge.refund.updated). */
  settleRefund(refundId: string, status: 'succeeded' | 'failed' | 'canceled'): void {
    const r = this.refunds.get(refundId);
    if (!r) throw new Error(`settleRefund: no refund ${refundId}`);
    const ch = this.charges.get(r.charge)!;
    if (status !== 'succeeded' && r.status !== 'failed' && r.status !== 'canceled') {
      ch.amount_refunded -= r.amount;
      ch.refunded = false;
      r.failure_reason = status === 'failed' ? 'lost_or_stolen_card' : null;
    }
    r.status = status;
    this.emit('refund.updated', r, null);
    this.emit('charge.refund.updated', r, null);
  }

  // -------------------------------------------------------------------------------------------

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => this.respond(req, res, Buffer.concat(chunks).toString('utf8')));
  }

  private respond(req: IncomingMessage, res: ServerResponse, body: string): void {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', this.url);
    const { route, id } = routeOf(method, url.pathname);
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const idempotencyKey = header('idempotency-key');
    const requestId = newId('req');
    const record: RecordedRequest = { method, route, path: url.pathname, idempotencyKey, params: {}, status: 0, replayed: false, injected: false };
    this.calls[route] += 1;
    this.requests.push(record);

    const send = (status: number, payload: string, extra: Record<string, string> = {}): void => {
      record.status = status;
      res.writeHead(status, {
        'content-type': 'application/json',
        'request-id': requestId,
        'stripe-version': header('stripe-version') ?? '2026-10-28.endive',
        ...(idempotencyKey && method === 'POST' ? { 'idempotency-key': idempotencyKey } : {}),
        ...extra,
      });
      res.end(payload);
    };

    const fault = this.faults.shift();
    if (fault) {
      record.injected = true;
      const mode = fault.mode ?? 'status';
      if (mode === 'reset') {
        record.status = -1;
        req.socket.destroy();
        return;
      }
      if (mode === 'hang') {
        record.status = -1;
        return;
      }
      const status = fault.status ?? 500;
      const error =
        status === 429
          ? { type: 'invalid_request_error', code: 'rate_limit', message: 'Too many requests hit the API too quickly.' }
          : { type: 'api_error', message: 'An unknown error occurred (stand-in fault).' };
      send(status, JSON.stringify({ error }));
      return;
    }

    const auth = header('authorization');
    if (auth !== `Bearer ${this.secretKey}`) {
      send(401, JSON.stringify({ error: { type: 'invalid_request_error', message: 'Invalid API Key provided.' } }));
      return;
    }

    let params: FormObject;
    try {
      params = method === 'GET' ? parseForm(url.search.slice(1)) : parseForm(body);
    } catch (err) {
      const e = err instanceof HttpError ? err : invalid('Invalid request body', null, null);
      send(e.status, JSON.stringify({ error: e.body }));
      return;
    }
    record.params = params;

    // Idempotency (POST only).
    const fingerprint = `${method} ${url.pathname} ${canonical(params)}`;
    if (method === 'POST' && idempotencyKey) {
      const saved = this.idempotency.get(idempotencyKey);
      if (saved) {
        if (saved.fingerprint !== fingerprint) {
          const e = {
            type: 'idempotency_error',
            message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
          };
          send(400, JSON.stringify({ error: e }));
          return;
        }
        record.replayed = true;
        send(saved.status, saved.body, { 'idempotent-replayed': 'true', 'original-request': 'req_original' });
        return;
      }
    }

    let status = 200;
    let payload: string;
    let save = true;
    try {
      payload = JSON.stringify(this.execute(route, id, params, idempotencyKey ?? null, requestId), null, 2);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      status = err.status;
      payload = JSON.stringify({ error: err.body }, null, 2);
      save = err.saved;
    }
    if (method === 'POST' && idempotencyKey && save) this.idempotency.set(idempotencyKey, { fingerprint, status, body: payload });
    send(status, payload);
  }

  private execute(route: RouteName, id: string | null, p: FormObject, idempotencyKey: string | null, requestId: string): JsonObject {
    this.currentRequest = { id: requestId, idempotency_key: idempotencyKey };
    switch (route) {
      case 'POST /v1/payment_intents':
        return this.createIntent(p);
      case 'GET /v1/payment_intents/:id': {
        onlyKnown(p, ['expand']);
        return this.render(this.intent(id!), p);
      }
      case 'POST /v1/payment_intents/:id/capture':
        return this.capture(this.intent(id!), p);
      case 'POST /v1/payment_intents/:id/cancel':
        return this.cancel(this.intent(id!), p);
      case 'POST /v1/refunds':
        return this.createRefund(p);
      default:
        throw new HttpError(404, { type: 'invalid_request_error', message: 'Unrecognized request URL. Please see https://stripe.com/docs' });
    }
  }

  private now(): number {
    return Math.floor(this.clock() / 1000);
  }

  private intent(id: string): PaymentIntentState {
    const pi = this.intents.get(id);
    if (!pi) throw missing('payment_intent', id, 'intent');
    return pi;
  }

  /** The PaymentIntent as the API returns it, with `expand[]=latest_charge` honoured. */
  private render(pi: PaymentIntentState, p: FormObject): JsonObject {
    const out = json(pi);
    const expand = list(p, 'expand') ?? [];
    for (const e of expand) if (e !== 'latest_charge' && e !== 'payment_method') throw invalid(`This property cannot be expanded (${e}).`, null, 'expand');
    if (expand.includes('latest_charge') && pi.latest_charge) out.latest_charge = json(this.charges.get(pi.latest_charge));
    if (expand.includes('payment_method') && pi.payment_method) out.payment_method = { id: pi.payment_method, object: 'payment_method', type: 'card' };
    return out;
  }

  private emit(type: string, object: PaymentIntentState | ChargeState | RefundState, previous: JsonObject | null): void {
    this.events.push({
      id: newId('evt'),
      object: 'event',
      api_version: '2026-10-28.endive',
      created: this.now(),
      data: { object: json(object), ...(previous ? { previous_attributes: previous } : {}) },
      livemode: false,
      pending_webhooks: 1,
      request: { ...this.currentRequest },
      type,
    });
  }

  private createIntent(p: FormObject): JsonObject {
    onlyKnown(p, [
      'amount',
      'currency',
      'payment_method',
      'confirm',
      'capture_method',
      'payment_method_types',
      'allowed_payment_method_types',
      'automatic_payment_methods',
      'payment_method_options',
      'metadata',
      'return_url',
      'error_on_requires_action',
      'expand',
      'description',
      'customer',
      'receipt_email',
      'statement_descriptor',
      'statement_descriptor_suffix',
      'setup_future_usage',
      'off_session',
      'use_stripe_sdk',
    ]);
    const amount = int(p, 'amount');
    if (amount === undefined) throw invalid('Missing required param: amount.', 'parameter_missing', 'amount');
    if (amount < 50) throw invalid('Amount must be at least 50 cents (0.50 in the currency).', 'amount_too_small', 'amount');
    if (amount > 99_999_999) throw invalid('Amount must be no more than 999,999.99.', 'amount_too_large', 'amount');
    const currency = str(p, 'currency');
    if (currency === undefined) throw invalid('Missing required param: currency.', 'parameter_missing', 'currency');
    if (!/^[a-zA-Z]{3}$/.test(currency)) throw invalid(`Invalid currency: ${currency}.`, 'parameter_invalid', 'currency');
    const confirm = bool(p, 'confirm') ?? false;
    const captureMethod = oneOf(p, 'capture_method', ['automatic', 'automatic_async', 'manual'] as const) ?? 'automatic_async';
    const types = list(p, 'allowed_payment_method_types') ?? list(p, 'payment_method_types');
    if (types && !types.includes('card')) {
      throw invalid('The PaymentIntent does not allow card payments.', 'payment_intent_incompatible_payment_method', 'payment_method');
    }
    const apm = obj(p, 'automatic_payment_methods');
    if (apm && types) throw invalid('You cannot pass automatic_payment_methods with payment_method_types.', 'parameters_exclusive', 'automatic_payment_methods');
    const cardOptions = obj(obj(p, 'payment_method_options') ?? {}, 'card') ?? {};
    onlyKnown(cardOptions, ['request_multicapture', 'capture_method', 'request_three_d_secure']);
    const multicapture = oneOf(cardOptions, 'request_multicapture', ['if_available', 'never'] as const) ?? 'never';
    const returnUrl = str(p, 'return_url');
    const errorOnAction = bool(p, 'error_on_requires_action') ?? false;
    if (returnUrl !== undefined && !confirm) throw invalid('return_url can only be passed with confirm=true.', 'parameter_invalid', 'return_url');
    if (errorOnAction && !confirm) throw invalid('error_on_requires_action can only be passed with confirm=true.', 'parameter_invalid', 'error_on_requires_action');
    if (returnUrl !== undefined && !/^https?:\/\//.test(returnUrl)) throw invalid('Not a valid URL', 'url_invalid', 'return_url');
    const pm = str(p, 'payment_method');
    if (confirm && pm === undefined) throw invalid('You cannot confirm this PaymentIntent because it is missing a payment method.', 'payment_intent_unexpected_state', 'payment_method');
    const card = pm === undefined ? undefined : CARDS[pm];
    if (pm !== undefined && !card) throw missing('PaymentMethod', pm, 'payment_method');
    const metadata = metadataOf(p);
    list(p, 'expand');

    const id = newId('pi');
    const pi: PaymentIntentState = {
      id,
      object: 'payment_intent',
      amount,
      amount_capturable: 0,
      amount_received: 0,
      allowed_payment_method_types: types ?? ['card'],
      canceled_at: null,
      cancellation_reason: null,
      capture_method: captureMethod,
      client_secret: `${id}_secret_${randomBytes(8).toString('hex')}`,
      confirmation_method: 'automatic',
      created: this.now(),
      currency: currency.toLowerCase(),
      description: str(p, 'description') ?? null,
      last_payment_error: null,
      latest_charge: null,
      livemode: false,
      metadata,
      next_action: null,
      payment_method: pm ?? null,
      payment_method_options: { card: { request_multicapture: multicapture } },
      payment_method_types: ['card'],
      status: pm === undefined ? 'requires_payment_method' : 'requires_confirmation',
    };
    this.intents.set(id, pi);
    this.created.paymentIntents += 1;
    this.emit('payment_intent.created', pi, null);
    if (!confirm || !card) return this.render(pi, p);

    if (card.outcome === 'decline') this.decline(pi, card, 'card_declined', card.declineCode, card.message);
    if (card.outcome === 'authenticate') {
      if (errorOnAction) {
        this.decline(pi, card, 'authentication_required', 'authentication_required', 'Your card was declined. This transaction requires authentication.');
      }
      pi.status = 'requires_action';
      pi.next_action =
        returnUrl !== undefined
          ? { type: 'redirect_to_url', redirect_to_url: { url: `${this.url}/3ds/${id}`, return_url: returnUrl } }
          : { type: 'use_stripe_sdk', use_stripe_sdk: { type: 'three_d_secure_redirect', stripe_js: `${this.url}/3ds/${id}` } };
      this.emit('payment_intent.requires_action', pi, null);
      return this.render(pi, p);
    }
    this.approve(pi, card);
    return this.render(pi, p);
  }

  private newCharge(pi: PaymentIntentState, card: Card, status: 'succeeded' | 'failed'): ChargeState {
    const multicapture = pi.payment_method_options.card as { request_multicapture: string };
    const ch: ChargeState = {
      id: newId('ch'),
      object: 'charge',
      amount: pi.amount,
      amount_captured: 0,
      amount_refunded: 0,
      captured: false,
      created: this.now(),
      currency: pi.currency,
      failure_code: status === 'failed' ? 'card_declined' : null,
      failure_message: status === 'failed' ? card.message : null,
      livemode: false,
      metadata: { ...pi.metadata },
      outcome: { type: status === 'failed' ? 'issuer_declined' : 'authorized', network_status: status === 'failed' ? 'declined_by_network' : 'approved_by_network' },
      paid: status === 'succeeded',
      payment_intent: pi.id,
      payment_method: pi.payment_method ?? '',
      payment_method_details: {
        type: 'card',
        card: {
          brand: card.brand,
          last4: card.last4,
          exp_month: 12,
          exp_year: 2034,
          funding: 'credit',
          network: card.brand,
          multicapture: { status: multicapture.request_multicapture === 'if_available' ? 'available' : 'unavailable' },
        },
      },
      refunded: false,
      status,
    };
    this.charges.set(ch.id, ch);
    this.created.charges += 1;
    pi.latest_charge = ch.id;
    return ch;
  }

  /** A declined confirmation: 402, saved for the idempotency key (the request executed). */
  private decline(pi: PaymentIntentState, card: Card, code: string, declineCode: string, message: string): never {
    const ch = this.newCharge(pi, card, 'failed');
    pi.status = 'requires_payment_method';
    pi.last_payment_error = { type: 'card_error', code, decline_code: declineCode, message, charge: ch.id, payment_method: { id: pi.payment_method, object: 'payment_method', type: 'card' } };
    this.emit('charge.failed', ch, null);
    this.emit('payment_intent.payment_failed', pi, null);
    throw new HttpError(
      402,
      { type: 'card_error', code, decline_code: declineCode, message, charge: ch.id, payment_intent: json(pi), doc_url: `https://docs.stripe.com/error-codes/${code.replace(/_/g, '-')}` },
      true,
    );
  }

  private approve(pi: PaymentIntentState, card: Card): void {
    const ch = this.newCharge(pi, card, 'succeeded');
    pi.last_payment_error = null;
    this.emit('charge.succeeded', ch, null);
    if (pi.capture_method === 'manual') {
      pi.status = 'requires_capture';
      pi.amount_capturable = pi.amount;
      this.emit('payment_intent.amount_capturable_updated', pi, null);
    } else {
      ch.captured = true;
      ch.amount_captured = pi.amount;
      pi.status = 'succeeded';
      pi.amount_received = pi.amount;
      this.emit('payment_intent.succeeded', pi, null);
    }
  }

  private capture(pi: PaymentIntentState, p: FormObject): JsonObject {
    onlyKnown(p, ['amount_to_capture', 'final_capture', 'metadata', 'expand', 'statement_descriptor', 'statement_descriptor_suffix', 'application_fee_amount']);
    const snapshot = json(pi);
    if (pi.status !== 'requires_capture') {
      throw invalid(`This PaymentIntent could not be captured because it has a status of ${pi.status}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.`, 'payment_intent_unexpected_state', null, {
        payment_intent: snapshot,
      });
    }
    const amount = int(p, 'amount_to_capture') ?? pi.amount_capturable;
    if (amount <= 0) throw invalid('amount_to_capture must be greater than 0.', 'parameter_invalid_integer', 'amount_to_capture');
    if (amount > pi.amount_capturable) {
      throw invalid(`The amount to capture (${amount}) is greater than the amount capturable (${pi.amount_capturable}).`, 'amount_too_large', 'amount_to_capture', { payment_intent: snapshot });
    }
    const final = bool(p, 'final_capture') ?? true;
    const ch = this.charges.get(pi.latest_charge!)!;
    const mc = (ch.payment_method_details.card as { multicapture: { status: string } }).multicapture.status;
    if (!final && mc !== 'available') {
      throw invalid('final_capture=false can only be used when multicapture is available for this PaymentIntent.', 'payment_intent_invalid_parameter', 'final_capture');
    }
    Object.assign(pi.metadata, metadataOf(p));
    pi.amount_received += amount;
    pi.amount_capturable = final ? 0 : pi.amount_capturable - amount;
    ch.captured = true;
    ch.amount_captured = pi.amount_received;
    this.emit('charge.captured', ch, null);
    if (pi.amount_capturable === 0) {
      pi.status = 'succeeded';
      this.emit('payment_intent.succeeded', pi, null);
    } else {
      this.emit('payment_intent.amount_capturable_updated', pi, null);
    }
    return this.render(pi, p);
  }

  private cancel(pi: PaymentIntentState, p: FormObject): JsonObject {
    onlyKnown(p, ['cancellation_reason', 'expand']);
    const reason = oneOf(p, 'cancellation_reason', ['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned'] as const);
    const cancelable = ['requires_payment_method', 'requires_capture', 'requires_confirmation', 'requires_action'];
    if (!cancelable.includes(pi.status)) {
      throw invalid(
        `You cannot cancel this PaymentIntent because it has a status of ${pi.status}. Only a PaymentIntent with one of the following statuses may be canceled: ${cancelable.join(', ')}.`,
        'payment_intent_unexpected_state',
        null,
        { payment_intent: json(pi) },
      );
    }
    pi.amount_capturable = 0;
    pi.next_action = null;
    pi.cancellation_reason = reason ?? 'requested_by_customer';
    pi.canceled_at = this.now();
    if (pi.amount_received > 0) {
      // Multicapture, partially captured: the rest is released, what was captured stays.
      pi.status = 'succeeded';
      this.emit('payment_intent.succeeded', pi, null);
    } else {
      pi.status = 'canceled';
      this.emit('payment_intent.canceled', pi, null);
    }
    return this.render(pi, p);
  }

  private createRefund(p: FormObject): JsonObject {
    onlyKnown(p, ['payment_intent', 'charge', 'amount', 'metadata', 'reason', 'expand', 'refund_application_fee', 'reverse_transfer', 'instructions_email']);
    const piId = str(p, 'payment_intent');
    const chId = str(p, 'charge');
    if (piId === undefined && chId === undefined) throw invalid('One of the following params should be provided for this request: payment_intent or charge.', 'parameter_missing', 'payment_intent');
    let pi: PaymentIntentState;
    if (piId !== undefined) pi = this.intent(piId);
    else {
      const c = this.charges.get(chId!);
      if (!c) throw missing('charge', chId!, 'charge');
      pi = this.intent(c.payment_intent);
    }
    const ch = pi.latest_charge ? this.charges.get(pi.latest_charge) : undefined;
    if (ch?.status !== 'succeeded' || ch.amount_captured === 0) {
      throw invalid(`This PaymentIntent (${pi.id}) does not have a successful charge to refund.`, 'charge_not_refundable', 'payment_intent');
    }
    const refundable = ch.amount_captured - ch.amount_refunded;
    const amount = int(p, 'amount') ?? refundable;
    if (amount <= 0) throw invalid('Refund amount must be greater than 0.', 'parameter_invalid_integer', 'amount');
    if (refundable === 0) throw invalid(`Charge ${ch.id} has already been refunded.`, 'charge_already_refunded', null);
    if (amount > refundable) {
      throw invalid(`Refund amount (${amount}) is greater than unrefunded amount on charge (${refundable}).`, 'amount_too_large', 'amount');
    }
    const reason = oneOf(p, 'reason', ['duplicate', 'fraudulent', 'requested_by_customer'] as const);
    const metadata = metadataOf(p);
    const status = this.refundStatuses.shift() ?? 'succeeded';
    const r: RefundState = {
      id: newId('re'),
      object: 'refund',
      amount,
      charge: ch.id,
      created: this.now(),
      currency: ch.currency,
      failure_reason: status === 'failed' ? 'lost_or_stolen_card' : null,
      metadata,
      payment_intent: pi.id,
      reason: reason ?? null,
      status,
    };
    this.refunds.set(r.id, r);
    this.created.refunds += 1;
    if (status !== 'failed' && status !== 'canceled') {
      ch.amount_refunded += amount;
      ch.refunded = ch.amount_refunded === ch.amount_captured;
    }
    this.emit('refund.created', r, null);
    this.emit('charge.refunded', ch, null);
    return json(r);
  }
}

function routeOf(method: string, path: string): { route: RouteName; id: string | null } {
  if (method === 'POST' && path === '/v1/payment_intents') return { route: 'POST /v1/payment_intents', id: null };
  if (method === 'POST' && path === '/v1/refunds') return { route: 'POST /v1/refunds', id: null };
  let m = /^\/v1\/payment_intents\/([^/]+)$/.exec(path);
  if (m && method === 'GET') return { route: 'GET /v1/payment_intents/:id', id: decodeURIComponent(m[1]) };
  m = /^\/v1\/payment_intents\/([^/]+)\/(capture|cancel)$/.exec(path);
  if (m && method === 'POST') {
    return { route: m[2] === 'capture' ? 'POST /v1/payment_intents/:id/capture' : 'POST /v1/payment_intents/:id/cancel', id: decodeURIComponent(m[1]) };
  }
  return { route: 'unknown', id: null };
}

// ---------------------------------------------------------------------------------------------
// Webhook deliveries.

/**
 * The `Stripe-Signature` header for `payload`, one v1 per secret (what Stripe sends during a
 * secret rotation: the old and the new secret both sign), built with the SDK's
 * generateTestHeaderString.
 */
export function signatureHeader(payload: string, secrets: string[], timestampSec: number): string {
  if (secrets.length === 0) throw new Error('signatureHeader: at least one secret');
  const v1 = secrets.flatMap((secret) =>
    Stripe.webhooks
      .generateTestHeaderString({ payload, secret, timestamp: timestampSec })
      .split(',')
      .filter((part) => part.startsWith('v1=')),
  );
  return [`t=${timestampSec}`, ...v1].join(',');
}

export interface Delivery {
  rawBody: Buffer;
  headers: { 'content-type': string; 'stripe-signature': string };
}

/**
 * A webhook delivery of `event` (an object is serialised as Stripe does, pretty-printed; a
 * string is sent as is), signed with each of `secrets` at `timestampSec`.
 */
export function signedDelivery(event: object | string, opts: { secrets: string | string[]; timestampSec: number }): Delivery {
  const payload = typeof event === 'string' ? event : JSON.stringify(event, null, 2);
  const secrets = typeof opts.secrets === 'string' ? [opts.secrets] : opts.secrets;
  return {
    rawBody: Buffer.from(payload, 'utf8'),
    headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': signatureHeader(payload, secrets, opts.timestampSec) },
  };
}

/** A hand-made event (for types the stand-in does not produce, or edited objects). */
export function makeEvent(type: string, object: JsonObject, opts: { id?: string; created?: number } = {}): StandinEvent {
  return {
    id: opts.id ?? newId('evt'),
    object: 'event',
    api_version: '2026-10-28.endive',
    created: opts.created ?? Math.floor(Date.now() / 1000),
    data: { object },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  };
}
