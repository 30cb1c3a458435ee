// The published contract: GET /openapi.json is a valid OpenAPI 3.0 document whose error
// model is the error catalogue, whose security matches what the server enforces, and whose
// response schemas are what the server really sends (no undeclared or internal fields).
import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE } from '../../src/shared/errors.ts';
import { type ApiEnv, BACKENDS, createApiEnv } from '../support/backends.ts';
import { smallNetwork } from '../support/fixtures.ts';
import { expectError, seedStock, TWO_CHANNELS, type Json } from './helpers.ts';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;
const ERROR_REF = '#/components/schemas/ErrorBody';

type Schema = Record<string, Json>;
type Op = { path: string; method: string; op: Json };

function operations(doc: Json): Op[] {
  const out: Op[] = [];
  for (const [path, item] of Object.entries<Json>(doc.paths)) for (const m of METHODS) if (item[m]) out.push({ path, method: m, op: item[m] });
  return out;
}

/** Literal values a string schema allows: `enum`, or an anyOf/oneOf of single-value enums/consts. */
function enumValues(s: Schema): string[] {
  if (Array.isArray(s.enum)) return s.enum;
  const alts = s.anyOf ?? s.oneOf;
  if (Array.isArray(alts)) return alts.flatMap((a: Schema) => (a.const !== undefined ? [a.const] : enumValues(a)));
  return [];
}

/**
 * Every way `value` departs from `schema` (a dereferenced OpenAPI 3.0 schema): undeclared
 * properties (objects are closed here: the server serialises only what it declares),
 * missing required ones, wrong types.
 */
function conformance(value: unknown, schema: Schema, at = '$'): string[] {
  if (!schema || Object.keys(schema).length === 0) return [];
  if (value === null) return schema.nullable || schema.type === 'null' || (schema.anyOf ?? schema.oneOf ?? []).some((a: Schema) => a.nullable || a.type === 'null') ? [] : [`${at}: null not allowed`];
  const alts = schema.anyOf ?? schema.oneOf;
  if (alts) {
    const results = alts.map((a: Schema) => conformance(value, a, at));
    return results.some((r: string[]) => r.length === 0) ? [] : [`${at}: matches no alternative (${results.map((r: string[]) => r[0]).join(' | ')})`];
  }
  if (schema.allOf) return schema.allOf.flatMap((a: Schema) => conformance(value, { ...a, additionalProperties: true }, at));
  const t = schema.type;
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) return [`${at}: ${JSON.stringify(value)} not in enum`];
  switch (t) {
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return [`${at}: not an object`];
      const props = schema.properties ?? {};
      const problems: string[] = [];
      for (const k of schema.required ?? []) if (!(k in (value as object))) problems.push(`${at}.${k}: required but missing`);
      for (const [k, v] of Object.entries(value as object)) {
        const pattern = Object.entries<Schema>(schema.patternProperties ?? {}).find(([re]) => new RegExp(re).test(k));
        if (k in props) problems.push(...conformance(v, props[k], `${at}.${k}`));
        else if (pattern) problems.push(...conformance(v, pattern[1], `${at}.${k}`));
        else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') problems.push(...conformance(v, schema.additionalProperties, `${at}.${k}`));
        else if (schema.additionalProperties !== true) problems.push(`${at}.${k}: not declared`);
      }
      return problems;
    }
    case 'array':
      if (!Array.isArray(value)) return [`${at}: not an array`];
      return value.flatMap((v, i) => conformance(v, schema.items ?? {}, `${at}[${i}]`));
    case 'string':
      return typeof value === 'string' ? [] : [`${at}: not a string`];
    case 'integer':
      return Number.isInteger(value) ? [] : [`${at}: not an integer`];
    case 'number':
      return typeof value === 'number' ? [] : [`${at}: not a number`];
    case 'boolean':
      return typeof value === 'boolean' ? [] : [`${at}: not a boolean`];
    default:
      return [];
  }
}

describe.each(BACKENDS)('OpenAPI document (%s)', (backend) => {
  let env: ApiEnv;
  let doc: Json;

  beforeAll(async () => {
    env = await createApiEnv(backend);
    await smallNetwork(env.ctx, TWO_CHANNELS);
    await seedStock(env, 'WH1', '2026-06-01T08:00:00Z', [{ sku: 'A1', on_hand: 10 }, { sku: 'B1', on_hand: 5 }]);
    const supply = await env.app.inject({ method: 'POST', url: '/supply', headers: env.auth(), payload: { kind: 'purchase_order', reference: 'PO-1', location: 'WH1', sku: 'A1', quantity: 5, expected_at: '2026-06-10T00:00:00Z' } });
    expect(supply.statusCode, supply.body).toBe(200);
    const res = await env.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    doc = res.json();
  });
  afterAll(async () => {
    await env?.close();
  });

  describe('the document', () => {
    it('is public JSON, OpenAPI 3.0.x, and validates with swagger-parser', async () => {
      const res = await env.app.inject({ method: 'GET', url: '/openapi.json' });
      expect(res.statusCode).toBe(200);
      expect(String(res.headers['content-type'])).toMatch(/^application\/json/);
      expect(doc.openapi).toMatch(/^3\.0\.\d+$/);
      const validated = await SwaggerParser.validate(structuredClone(doc));
      expect((validated as Json).openapi).toBe(doc.openapi);
      expect(operations(doc).length).toBeGreaterThanOrEqual(29);
    });

    it("ErrorBody's code enum is exactly the catalogue's codes", () => {
      const body = doc.components?.schemas?.ErrorBody;
      expect(body).toBeDefined();
      expect(body.required).toEqual(['error']);
      expect(Object.keys(body.properties)).toEqual(['error']);
      const err = body.properties.error;
      expect([...err.required].sort()).toEqual(['code', 'message']);
      expect(Object.keys(err.properties).sort()).toEqual(['code', 'details', 'message']);
      const codes = enumValues(err.properties.code);
      expect(codes.length).toBe(new Set(codes).size);
      expect([...codes].sort()).toEqual(Object.keys(ERROR_CATALOGUE).sort());
    });

    it('x-error-catalogue equals the catalogue', () => {
      expect(doc['x-error-catalogue']).toEqual(ERROR_CATALOGUE);
    });

    it("every documented 4xx/5xx response is the ErrorBody, and only catalogue statuses are documented", () => {
      const statuses = new Set(Object.values(ERROR_CATALOGUE).map((e) => String(e.status)));
      const bad: string[] = [];
      let count = 0;
      for (const { path, method, op } of operations(doc)) {
        for (const [status, resp] of Object.entries<Json>(op.responses ?? {})) {
          if (Number(status) < 400) continue;
          count++;
          if (!statuses.has(status)) bad.push(`${method} ${path} ${status}: not a catalogue status`);
          const content = resp.content ?? {};
          if (Object.keys(content).join() !== 'application/json' || content['application/json'].schema?.$ref !== ERROR_REF) bad.push(`${method} ${path} ${status}: ${JSON.stringify(content)}`);
        }
      }
      expect(bad).toEqual([]);
      expect(count).toBeGreaterThan(0);
    });

    it('every secured operation documents every error status of the catalogue', () => {
      const statuses = [...new Set(Object.values(ERROR_CATALOGUE).map((e) => String(e.status)))].sort();
      const bad: string[] = [];
      for (const { path, method, op } of operations(doc)) {
        if (!op.security?.length) continue;
        const documented = Object.keys(op.responses ?? {}).filter((s) => Number(s) >= 400).sort();
        if (documented.join() !== statuses.join()) bad.push(`${method} ${path}: ${documented.join(',')}`);
      }
      expect(bad).toEqual([]);
    });

    it('declared security matches enforcement: secured operations answer 401 without a key, the others do not', async () => {
      const mismatches: string[] = [];
      for (const { path, method, op } of operations(doc)) {
        const url = path.replace(/\{[^}]+\}/g, (p) => (p === '{sku}' ? 'A1' : p === '{code}' ? 'WH1' : 'x1'));
        const hasBody = method === 'post' || method === 'put';
        const res = await env.app.inject({ method: method.toUpperCase() as 'GET', url, ...(hasBody ? { payload: {} } : {}) });
        const secured = (op.security ?? doc.security ?? []).length > 0;
        if (secured) {
          if (res.statusCode !== 401 || res.json().error?.code !== 'unauthenticated') mismatches.push(`${method} ${path}: secured but answered ${res.statusCode}`);
        } else if (res.statusCode === 401 || res.statusCode === 403) mismatches.push(`${method} ${path}: public but answered ${res.statusCode}`);
      }
      expect(mismatches).toEqual([]);
      const sec = doc.components?.securitySchemes?.apiKey;
      expect(sec).toMatchObject({ type: 'http', scheme: 'bearer' });
    });
  });

  describe('public routes', () => {
    it('/health and /ready answer without a key', async () => {
      const h = await env.app.inject({ method: 'GET', url: '/health' });
      expect([h.statusCode, h.json()]).toEqual([200, { status: 'ok' }]);
      const r = await env.app.inject({ method: 'GET', url: '/ready' });
      expect([r.statusCode, r.json()]).toEqual([200, { status: 'ready', backend }]);
      // A wrong key does not turn a public route into a 401.
      const hk = await env.app.inject({ method: 'GET', url: '/health', headers: { authorization: 'Bearer nope' } });
      expect(hk.statusCode).toBe(200);
    });

    async function getFollowing(url: string, headers: Record<string, string> = {}) {
      let res = await env.app.inject({ method: 'GET', url, headers });
      for (let hops = 0; hops < 3 && res.statusCode >= 300 && res.statusCode < 400; hops++) {
        const next = String(res.headers.location);
        res = await env.app.inject({ method: 'GET', url: next.startsWith('/') ? next : `/docs/${next.replace(/^\.\//, '')}`, headers });
      }
      return res;
    }

    it('GET /docs serves the Swagger UI HTML (following any redirect)', async () => {
      const res = await getFollowing('/docs', env.auth());
      expect(res.statusCode).toBe(200);
      expect(String(res.headers['content-type'])).toMatch(/^text\/html/);
      expect(res.body).toContain('swagger-ui');
    });

    it('GET /docs, its assets and its spec are public like /openapi.json (a browser sends no key)', async () => {
      const page = await getFollowing('/docs');
      expect(page.statusCode, page.body.slice(0, 200)).toBe(200);
      expect(String(page.headers['content-type'])).toMatch(/^text\/html/);
      const css = await env.app.inject({ method: 'GET', url: '/docs/static/swagger-ui.css' });
      expect(css.statusCode).toBe(200);
      const spec = await env.app.inject({ method: 'GET', url: '/docs/json' });
      expect(spec.statusCode).toBe(200);
      expect(spec.json().openapi).toBe(doc.openapi);
    });

    it('any error from the /docs routes uses the one error model', async () => {
      for (const headers of [{}, { authorization: 'Bearer wrong' }]) {
        for (const url of ['/docs', '/docs/', '/docs/json', '/docs/static/nope.js']) {
          const res = await env.app.inject({ method: 'GET', url, headers });
          if (res.statusCode >= 400) expect(res.json(), `${url} ${res.statusCode} ${res.body}`).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
        }
      }
      expectError(await env.app.inject({ method: 'GET', url: '/docs/static/nope.js', headers: env.auth() }), 404, 'route_not_found');
    });
  });

  describe('responses contain only declared fields', () => {
    let deref: Json;
    beforeAll(async () => {
      deref = await SwaggerParser.dereference(structuredClone(doc));
    });

    const CALLS: Array<{ method: 'GET' | 'POST' | 'PUT'; url: string; path: string; payload?: unknown; status: number }> = [
      { method: 'GET', url: '/locations/WH1', path: '/locations/{code}', status: 200 },
      { method: 'GET', url: '/locations', path: '/locations', status: 200 },
      { method: 'GET', url: '/skus/A1', path: '/skus/{code}', status: 200 },
      { method: 'GET', url: '/skus', path: '/skus', status: 200 },
      { method: 'GET', url: '/channels/web', path: '/channels/{code}', status: 200 },
      { method: 'GET', url: '/channels', path: '/channels', status: 200 },
      { method: 'GET', url: '/locations/WH1/stock', path: '/locations/{code}/stock', status: 200 },
      { method: 'GET', url: '/locations/WH1/movements', path: '/locations/{code}/movements', status: 200 },
      { method: 'GET', url: '/supply?location=WH1', path: '/supply', status: 200 },
      { method: 'GET', url: '/availability/A1?channel=web&view=locations', path: '/availability/{sku}', status: 200 },
      { method: 'POST', url: '/availability/query', path: '/availability/query', payload: { channel: 'web', skus: ['A1', 'B1'], view: 'near', lat: 48.85, lng: 2.35 }, status: 200 },
      { method: 'GET', url: '/api-keys', path: '/api-keys', status: 200 },
      { method: 'GET', url: '/events', path: '/events', status: 200 },
      { method: 'GET', url: '/integrity', path: '/integrity', status: 200 },
      { method: 'POST', url: '/stock/deltas', path: '/stock/deltas', payload: { items: [{ location: 'WH1', sku: 'B1', quantity: 2, seq: 1 }, { location: 'WH1', sku: 'B1', quantity: 2, seq: 1 }] }, status: 200 },
      { method: 'POST', url: '/stock/snapshots', path: '/stock/snapshots', payload: { location: 'WH1', as_of: '2026-06-01T09:00:00Z', mode: 'partial', items: [{ sku: 'C1', on_hand: 1 }] }, status: 200 },
      { method: 'POST', url: '/reservations', path: '/reservations', payload: { location: 'WH1', sku: 'A1', quantity: 1 }, status: 201 },
      { method: 'PUT', url: '/locations/NEW', path: '/locations/{code}', payload: { name: 'New', type: 'store', country: 'ES' }, status: 201 },
      { method: 'GET', url: '/health', path: '/health', status: 200 },
      { method: 'GET', url: '/ready', path: '/ready', status: 200 },
    ];

    for (const c of CALLS) {
      it(`${c.method} ${c.url} → ${c.status}, exactly as documented`, async () => {
        const res = await env.app.inject({ method: c.method, url: c.url, headers: env.auth(), payload: c.payload as never });
        expect(res.statusCode, res.body.slice(0, 300)).toBe(c.status);
        const schema = deref.paths[c.path]?.[c.method.toLowerCase()]?.responses?.[String(c.status)]?.content?.['application/json']?.schema;
        expect(schema, `${c.method} ${c.path} documents no ${c.status} JSON schema`).toBeDefined();
        expect(conformance(res.json(), schema)).toEqual([]);
      });
    }

    it('GET /locations/WH1 carries no id, internal columns or timestamps beyond the documented ones', async () => {
      const res = await env.app.inject({ method: 'GET', url: '/locations/WH1', headers: env.auth() });
      const body = res.json();
      for (const k of ['id', 'cap_ships', 'cap_click_and_collect', 'cap_order_in_store', 'cap_accepts_returns', 'created_at', 'location_id']) expect(body).not.toHaveProperty(k);
      expect(Object.keys(body).sort()).toEqual(Object.keys(deref.paths['/locations/{code}'].get.responses['200'].content['application/json'].schema.properties).sort());
      expect(body.capabilities).toEqual(['ships']);
    });

    it('stock positions carry no internal ids or sequence counters', async () => {
      const res = await env.app.inject({ method: 'GET', url: '/locations/WH1/stock', headers: env.auth() });
      for (const item of res.json().items) for (const k of ['location_id', 'sku_id', 'last_seq', 'updated_at']) expect(item).not.toHaveProperty(k);
    });

    it('an error body conforms to the documented ErrorBody', async () => {
      const res = await env.app.inject({ method: 'GET', url: '/locations/NOWHERE', headers: env.auth() });
      expectError(res, 404, 'unknown_location');
      expect(conformance(res.json(), deref.components.schemas.ErrorBody)).toEqual([]);
    });
  });
});
