// Builds the Fastify app: schemas and OpenAPI, the one error model, authentication, routes.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import addFormatsPlugin from 'ajv-formats';
import Fastify, { type FastifyError, type FastifyInstance, LogController } from 'fastify';
import type { KeyVerifier, Principal } from '../auth/keys.ts';
import type { Ctx } from '../context.ts';
import { isUniqueViolation } from '../inventory/stock.ts';
import { AppError, ERROR_CATALOGUE, type ErrorCode } from '../shared/errors.ts';
import { containsCardNumber } from '../shared/pan.ts';
import { ErrorBody } from './schemas.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerAvailabilityRoutes } from './routes/availability.ts';
import { registerCatalogRoutes } from './routes/catalog.ts';
import { registerFulfillmentRoutes } from './routes/fulfillments.ts';
import { registerOrderRoutes } from './routes/orders.ts';
import { registerPaymentRoutes } from './routes/payments.ts';
import { registerSourcingRoutes } from './routes/sourcing.ts';
import { registerStockRoutes } from './routes/stock.ts';
import { registerSystemRoutes } from './routes/system.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    public?: boolean;
  }
}

export interface AppOptions {
  ctx: Ctx;
  keys: KeyVerifier;
  logger?: boolean | object;
  bodyLimit?: number;
  csvLimit?: number;
  isReady?: () => boolean;
  /** Requests slower than this are logged at warn level. */
  slowMs?: number;
}

export type App = FastifyInstance<
  import('node:http').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  import('fastify').FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** No per-request log lines: see the onResponse hook for what is logged. */
class QuietRequests extends LogController {
  override isLogDisabled(): boolean {
    return true;
  }
}

const addFormats = (ajv: Ajv): Ajv => {
  (addFormatsPlugin as unknown as (a: Ajv) => Ajv)(ajv);
  return ajv;
};

export function errorBody(code: ErrorCode, message: string, details?: unknown) {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

export async function buildApp(opts: AppOptions): Promise<App> {
  const app = Fastify({
    logger: opts.logger ?? false,
    // Availability is asked hundreds of times per order: one log line per request would cost
    // more than the answer. Server errors and slow requests are logged (onResponse below).
    logController: new QuietRequests(),
    bodyLimit: opts.bodyLimit ?? 2 * 1024 * 1024,
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as App;

  // JSON bodies are validated strictly (no type coercion: null stays null, "5" is not 5);
  // querystrings and path params are strings on the wire and are coerced.
  const strict = addFormats(new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false }));
  const coercing = addFormats(new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false, strict: false }));
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema));
  // Only JSON and (on the import route) CSV bodies are accepted: text/plain gets 415.
  app.removeContentTypeParser('text/plain');

  app.decorateRequest('principal', null);
  app.addSchema(ErrorBody);

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Open OMS API',
        version: '0.1.0',
        description:
          'Unified inventory and availability. Every error body is `{ error: { code, message, details? } }` with a code from the error catalogue (`x-error-catalogue`).',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'API key: `Authorization: Bearer oms_…`' } } },
    },
    transformObject: (doc) => ({
      ...('openapiObject' in doc ? doc.openapiObject : {}),
      'x-error-catalogue': Object.fromEntries(Object.entries(ERROR_CATALOGUE).map(([k, v]) => [k, { status: v.status, summary: v.summary }])),
    }),
    refResolver: { buildLocalReference: (json, _base, _frag, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.setErrorHandler((err: FastifyError | AppError | Error, req, reply) => {
    if (err instanceof AppError) return reply.status(err.status).send(errorBody(err.code, err.message, err.details));
    const fe = err as FastifyError;
    if (fe.validation) {
      const first = fe.validation[0];
      const where = `${fe.validationContext ?? 'body'}${first?.instancePath ?? ''}`;
      return reply.status(400).send(errorBody('validation_failed', `${where} ${first?.message ?? 'is invalid'}`.trim(), fe.validation.map((v) => ({ path: `${fe.validationContext}${v.instancePath}`, message: v.message }))));
    }
    switch (fe.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reply.status(413).send(errorBody('body_too_large', 'The request body is larger than this route accepts'));
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply.status(415).send(errorBody('unsupported_media_type', `Content type '${req.headers['content-type'] ?? ''}' is not accepted here`));
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return reply.status(400).send(errorBody('malformed_json', 'The request body is not valid JSON'));
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return reply.status(400).send(errorBody('validation_failed', 'Content-Length does not match the body'));
    }
    if (isUniqueViolation(err)) return reply.status(409).send(errorBody('conflict', 'This conflicts with an existing record (a unique field is already used)'));
    if (err instanceof SyntaxError) return reply.status(400).send(errorBody('malformed_json', 'The request body is not valid JSON'));
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply.status(400).send(errorBody('validation_failed', fe.message));
    }
    req.log.error({ err }, 'unhandled error');
    return reply.status(500).send(errorBody('internal_error', `Unexpected error; request id ${req.id}`));
  });

  app.addHook('onResponse', async (req, reply) => {
    const ms = reply.elapsedTime;
    if (reply.statusCode >= 500 || ms >= (opts.slowMs ?? 1000)) {
      req.log.warn({ method: req.method, url: req.url.split('?')[0], status: reply.statusCode, ms: Math.round(ms) }, 'slow or failed request');
    } else if (req.log.level === 'debug' || req.log.level === 'trace') {
      req.log.debug({ method: req.method, url: req.url.split('?')[0], status: reply.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
    }
  });

  // No card number ever enters the OMS (PCI DSS): any JSON text field holding one is refused
  // before a handler sees it, so it is never stored or logged. Identifiers (references, codes,
  // skus) are exempt: a marketplace order number may pass the Luhn check by chance.
  app.addHook('preHandler', async (req) => {
    const body = req.body;
    if (body === null || typeof body !== 'object' || Buffer.isBuffer(body)) return;
    const path = findCardNumber(body, '');
    if (path !== null) throw new AppError('card_data_rejected', `${path || 'the body'} looks like a card number. The OMS never accepts card numbers: send the payment operator's token instead.`, { path });
  });

  app.setNotFoundHandler((req, reply) => reply.status(404).send(errorBody('route_not_found', `No route ${req.method} ${req.url.split('?')[0]}`)));

  // Authentication: every route but the public ones needs a valid key.
  app.addHook('onRequest', async (req) => {
    const url = req.routeOptions.url;
    // The interactive docs are public like /openapi.json: a browser must open them without a key.
    if (req.routeOptions.config?.public || !url || url === '/docs' || url.startsWith('/docs/')) return;
    const header = req.headers.authorization;
    const secret = header?.startsWith('Bearer ') ? header.slice(7).trim() : (req.headers['x-api-key'] as string | undefined);
    if (!secret) throw new AppError('unauthenticated', 'Send an API key: Authorization: Bearer <key>');
    const principal = await opts.keys.verify(secret);
    if (!principal) throw new AppError('unauthenticated', 'The API key is unknown or revoked');
    req.principal = principal;
  });

  registerSystemRoutes(app, opts);
  registerCatalogRoutes(app, opts.ctx);
  registerStockRoutes(app, opts.ctx, { csvLimit: opts.csvLimit ?? 1024 * 1024 * 1024 });
  registerAvailabilityRoutes(app, opts.ctx);
  registerAdminRoutes(app, opts.ctx, opts.keys);
  registerSourcingRoutes(app, opts.ctx);
  registerOrderRoutes(app, opts.ctx);
  registerFulfillmentRoutes(app, opts.ctx);
  registerPaymentRoutes(app, opts.ctx);
  return app;
}

const IDENTIFIER_KEY = /(^|_)(reference|ref|sku|gtin|id|code|key)$/;

/** The JSON path of the first text field that holds a Luhn-valid card number, or null. */
export function findCardNumber(v: unknown, path: string): string | null {
  // The path is written only for a hit: every request body is walked, and a path string per
  // field (a few dozen per order) cost more than the walk.
  const at: Array<string | number> = [];
  if (!hasCardNumber(v, at, 0)) return null;
  let out = path;
  for (let i = at.length - 1; i >= 0; i--) {
    const step = at[i];
    out = typeof step === 'number' ? `${out}[${step}]` : out ? `${out}.${step}` : step;
  }
  return out;
}

/** True when a card number is in v; `at` then holds the way to it, innermost step first. */
function hasCardNumber(v: unknown, at: Array<string | number>, depth: number): boolean {
  if (depth > 20) return false;
  if (typeof v === 'string') return containsCardNumber(v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      if (hasCardNumber(v[i], at, depth + 1)) {
        at.push(i);
        return true;
      }
    }
    return false;
  }
  if (v !== null && typeof v === 'object') {
    for (const k in v) {
      if (!Object.hasOwn(v, k) || IDENTIFIER_KEY.test(k)) continue;
      if (hasCardNumber((v as Record<string, unknown>)[k], at, depth + 1)) {
        at.push(k);
        return true;
      }
    }
  }
  return false;
}

/** Role gate used by routes; scope checks happen in the handlers that know the resource. */
export function requireRole(req: { principal: Principal | null }, ...roles: Principal['role'][]): Principal {
  const p = req.principal;
  if (!p) throw new AppError('unauthenticated', 'Send an API key');
  if (p.role !== 'admin' && !roles.includes(p.role)) throw new AppError('forbidden', `A ${p.role} key cannot do this`);
  return p;
}
