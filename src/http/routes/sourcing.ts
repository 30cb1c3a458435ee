// The sourcing engine over HTTP: dry-run plans with their explanation, rule sets as versioned
// data (save, validate, publish, roll back), simulations comparing two rule sets on today's
// stock, and the carrier services plans choose from. Thin: the use cases live in src/sourcing.
import { type Static, Type } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import addFormatsPlugin from 'ajv-formats';
import { canReadChannel } from '../../auth/keys.ts';
import type { CarrierService } from '../../carriers/model.ts';
import type { Ctx } from '../../context.ts';
import { storedOrdersForSimulation } from '../../orders/replay.ts';
import { iso } from '../../shared/clock.ts';
import { AppError } from '../../shared/errors.ts';
import { verdictSample } from '../../sourcing/engine.ts';
import { type AttemptExplanation, CRITERIA, DELIVERY_MODES, type RuleSet, type SourcingResult } from '../../sourcing/model.ts';
import { createRuleSet, getRuleSet, listRuleSets, type Publication, publicationHistory, publishRuleSet, type RuleSetVersion, rollbackRuleSet } from '../../sourcing/rule-sets.ts';
import { RuleSetSchema, validateRuleSet } from '../../sourcing/rules.ts';
import { planSourcing, type RuleSetChoice, type SimulationOrderInput, type SourcingRequest, simulateRuleSets } from '../../sourcing/service.ts';
import type { App } from '../app.ts';
import { requireRole } from '../app.ts';
import { batchCap, Code, Enum, NonNegInt, Page, PageQuery, security, withErrors, Nullable } from '../schemas.ts';

const MAX_LINES = 200;
const MAX_ORDERS = 10_000;
/** How many non-chosen verdicts an attempt shows in a summary explanation. */
const REJECTED_SAMPLE = 10;

const Version = Type.Integer({ minimum: 1, maximum: 2_000_000_000 });

// ---- request ---------------------------------------------------------------------------

const OrderFields = {
  currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217; EUR by default.' })),
  value: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Order value in minor units (conditions on value); by default Σ unit_price × quantity.' })),
  lines: Type.Array(
    Type.Object(
      {
        line_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'L1, L2… by default.' })),
        sku: Code,
        quantity: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
        unit_price: Type.Optional(NonNegInt),
      },
      { additionalProperties: false },
    ),
    { minItems: 1, maxItems: MAX_LINES, description: `At most ${MAX_LINES} lines (more: page_too_large).` },
  ),
  delivery: Type.Object(
    {
      mode: Enum(DELIVERY_MODES),
      country: Type.Optional(Type.String({ pattern: '^[A-Za-z]{2}$', description: 'ISO 3166-1 alpha-2; required for home and pickup_point.' })),
      postal_code: Type.Optional(Type.String({ maxLength: 20 })),
      city: Type.Optional(Type.String({ maxLength: 200 })),
      latitude: Type.Optional(Type.Number({ minimum: -90, maximum: 90 })),
      longitude: Type.Optional(Type.Number({ minimum: -180, maximum: 180 })),
      pickup_location: Type.Optional(Type.String({ ...Code, description: 'The store (location code) for click_and_collect and in_store.' })),
    },
    { additionalProperties: false },
  ),
  exclude_locations: Type.Optional(Type.Array(Code, { maxItems: 1000, description: 'Locations that must not fulfil this order.' })),
  promised_by: Type.Optional(Type.String({ format: 'date-time', description: 'Delivery deadline promised to the customer: carriers must keep it.' })),
  carrier_service: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Pin a carrier service code.' })),
  service_level: Type.Optional(Enum(['standard', 'express'] as const)),
};

const PlanBody = Type.Object({ channel: Type.Optional(Type.String({ ...Code, description: "Defaults to the key's channel." })), ...OrderFields }, { additionalProperties: false });
type PlanInput = Static<typeof PlanBody>;

const SimOrder = Type.Object({ reference: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })), channel: Code, ...OrderFields }, { additionalProperties: false });
type SimOrderInput = Static<typeof SimOrder>;

/** A rule set as sent: any object here, so validateRuleSet can list every problem (422). */
const RuleSetIn = Type.Object({}, { additionalProperties: true, description: 'A RuleSet (components.schemas.RuleSet). Checked by the server, which lists every problem at once (422 invalid_rule_set).' });
const RuleSetBody = Type.Object({ rule_set: RuleSetIn, note: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false });

const SimBody = Type.Object(
  {
    orders: Type.Optional(Type.Array(SimOrder, { minItems: 1, maxItems: MAX_ORDERS, description: `1 to ${MAX_ORDERS.toLocaleString('en')} orders (more: page_too_large). Give orders or stored_orders.` })),
    stored_orders: Type.Optional(
      Type.Object(
        {
          from: Type.String({ format: 'date-time', description: 'Orders captured at or after.' }),
          to: Type.String({ format: 'date-time', description: 'Orders captured before.' }),
          channel: Type.Optional(Code),
        },
        { additionalProperties: false, description: `Replay the orders captured in [from, to) (at most ${MAX_ORDERS.toLocaleString('en')}; more: page_too_large), each as it was asked at capture (full quantities, its delivery groups).` },
      ),
    ),
    baseline: Type.Optional(Type.Union([Version, Type.Literal('published')], { description: "A saved version, or 'published' (default)." })),
    candidate: Type.Union([Version, Type.Object({ rule_set: RuleSetIn }, { additionalProperties: false })], { description: 'A saved version, or an unsaved rule set { rule_set }.' }),
    per_order: Type.Optional(Type.Boolean({ description: 'Also return each order’s outcome under both rule sets.' })),
  },
  { additionalProperties: false },
);
type SimInput = Static<typeof SimBody>;

// ---- response ---------------------------------------------------------------------------

// A record, not an object of optional properties, so the wire keeps the ranking's order.
const Criteria = Type.Record(Type.String({ pattern: `^(${CRITERIA.join('|')})$` }), Nullable(Type.Number()), {
  additionalProperties: false,
  description: `The values the ranking compared, in its order: criterion (${CRITERIA.join(', ')}) → number (null: distance unknown).`,
});
const Verdict = Type.Object({
  location: Type.String(),
  outcome: Enum(['chosen', 'filtered', 'no_stock', 'over_capacity', 'lost', 'not_needed', 'excluded'] as const),
  reason: Type.String(),
  rank: Type.Optional(Type.Integer({ minimum: 1, description: '1 = best-ranked among the candidates that passed the filters and hold stock.' })),
  criteria: Type.Optional(Criteria),
});
const Attempt = Type.Object({
  strategy: Type.String(),
  via: Type.String(),
  lines: Type.Array(Type.String()),
  split: Type.Object({ policy: Type.String(), shipments: Type.Integer(), method: Type.String(), lower_bound: Nullable(Type.Integer()), note: Nullable(Type.String()) }),
  notes: Type.Array(Type.String()),
  candidate_count: Type.Integer({ description: 'Candidates this attempt judged.' }),
  candidates: Type.Optional(Type.Array(Verdict, { description: 'explain=full: every candidate verdict.' })),
  chosen: Type.Optional(Type.Array(Verdict, { description: 'explain=summary: the chosen verdicts.' })),
  rejected_by_outcome: Type.Optional(Type.Record(Type.String(), Type.Integer(), { description: 'explain=summary: non-chosen verdicts counted by outcome.' })),
  rejected_sample: Type.Optional(
    Type.Array(Verdict, { description: `explain=summary: the ${REJECTED_SAMPLE} best-placed non-chosen candidates: lost or not needed by rank, then over_capacity, no_stock, filtered, excluded (each in network order).` }),
  ),
});
const Explanation = Type.Object({
  rule_set: Type.String(),
  destination: Type.Object({ precision: Type.String(), source: Type.String(), distance: Enum(['used', 'approximate', 'ignored'] as const) }),
  strategies: Type.Array(Type.Object({ lines: Type.Array(Type.String()), strategy: Nullable(Type.String()), why: Type.String() })),
  lines: Type.Array(
    Type.Object({
      line_id: Type.String(),
      strategy: Nullable(Type.String()),
      why: Type.String(),
      chosen: Type.Array(Type.Object({ location: Type.String(), quantity: Type.Integer(), criteria: Criteria })),
      fallbacks: Type.Array(Type.String()),
    }),
  ),
  attempts: Type.Array(Attempt),
  carriers: Type.Array(Type.Object({ location: Type.String(), chosen: Nullable(Type.String()), reason: Type.String(), rejected: Type.Array(Type.Object({ service: Type.String(), reason: Type.String() })) })),
});
const Plan = Type.Object({
  lines: Type.Array(
    Type.Object({
      line_id: Type.String(),
      sku: Type.String(),
      quantity: Type.Integer(),
      strategy: Nullable(Type.String()),
      allocations: Type.Array(Type.Object({ location: Type.String(), quantity: Type.Integer() })),
      backorders: Type.Array(Type.Object({ location: Type.String(), quantity: Type.Integer(), promise_date: Type.String({ description: 'YYYY-MM-DD' }) })),
      unfilled: Type.Integer(),
    }),
  ),
  shipments: Type.Array(
    Type.Object({
      location: Type.String(),
      location_type: Type.String(),
      mode: Type.String({ description: 'The delivery mode, or store_transfer when goods travel to the pickup store.' }),
      destination_country: Type.String(),
      lines: Type.Array(Type.Object({ line_id: Type.String(), sku: Type.String(), quantity: Type.Integer() })),
      ready_date: Type.String({ description: 'YYYY-MM-DD the goods can leave.' }),
      weight_g: Nullable(Type.Integer()),
      distance_km: Nullable(Type.Number()),
      shipment_cost: Type.Integer(),
      backorder: Type.Boolean(),
      carrier: Nullable(
        Type.Object({
          service: Nullable(Type.String()),
          cost: Nullable(Type.Integer()),
          currency: Nullable(Type.String()),
          estimated_delivery: Nullable(Type.String()),
          meets_promise: Type.Boolean(),
          reason: Type.String(),
        }),
      ),
    }),
  ),
  fill_rate: Type.Number(),
  complete: Type.Boolean(),
});
const RuleSetRef = Type.Object({ version: Nullable(Type.Integer({ description: 'null: the built-in default rule set.' })), name: Type.String() });
const PlanOut = Type.Object({ rule_set: RuleSetRef, plan: Plan, explanation: Explanation });

const RuleSetSummary = {
  version: Type.Integer(),
  name: Type.String(),
  note: Nullable(Type.String()),
  created_by: Type.String(),
  created_at: Type.String(),
  published: Type.Boolean({ description: 'Whether this version is the one live now.' }),
};
const RuleSetOut = Type.Object({ ...RuleSetSummary, rule_set: Type.Ref('RuleSet') });
const PublicationOut = Type.Object({ version: Type.Integer(), action: Enum(['publish', 'rollback'] as const), published_by: Type.String(), published_at: Type.String(), previous: Nullable(Type.Integer()) });
const Problems = Type.Array(Type.Object({ path: Type.String(), message: Type.String() }));

const Metrics = Type.Object({
  orders: Type.Integer(),
  orders_complete: Type.Integer(),
  split_orders: Type.Integer(),
  units_ordered: Type.Integer(),
  units_allocated: Type.Integer(),
  units_backordered: Type.Integer(),
  units_unfilled: Type.Integer(),
  fill_rate: Type.Number({ description: '(allocated + backordered) / ordered' }),
  shipments: Type.Integer(),
  shipments_per_order: Type.Number(),
  avg_distance_km: Nullable(Type.Number()),
  total_cost: Type.Integer({ description: 'Σ location cost per shipment + carrier cost, minor units.' }),
  avg_cost_per_order: Type.Integer(),
  late_promises: Type.Integer(),
});
const Outcome = Type.Object({ shipments: Type.Integer(), unfilled: Type.Integer(), backordered: Type.Integer(), cost: Type.Integer(), distance_km: Nullable(Type.Number()) });
const SimOut = Type.Object({
  stock_as_of: Type.String(),
  duration_ms: Type.Number(),
  orders_per_second: Type.Number({ description: 'Orders simulated (not rejected) per second, each replayed under both rule sets.' }),
  rule_sets: Type.Array(Type.Object({ label: Enum(['baseline', 'candidate'] as const), version: Nullable(Type.Integer({ description: 'null: the built-in default, or an unsaved rule set.' })), name: Type.String(), metrics: Metrics })),
  per_order: Type.Optional(Type.Array(Type.Object({ reference: Type.String(), baseline: Outcome, candidate: Outcome }))),
  rejected: Type.Array(Type.Object({ index: Type.Integer({ description: '0-based position in orders.' }), reference: Type.String(), code: Type.String(), message: Type.String() })),
});

const WeightBand = Type.Object({ up_to_g: Type.Integer(), cost: Type.Integer() });
const CarrierOut = Type.Object({
  code: Type.String(),
  name: Type.String(),
  carrier: Type.String(),
  modes: Type.Array(Type.String()),
  service_level: Type.String(),
  origin_countries: Type.Array(Type.String()),
  zones: Type.Array(Type.Object({ name: Type.String(), countries: Type.Array(Type.String()) })),
  max_weight_g: Type.Integer(),
  max_length_mm: Type.Integer(),
  max_sum_dimensions_mm: Type.Integer(),
  lead_time_days: Type.Integer(),
  zone_lead_time_days: Type.Record(Type.String(), Type.Integer()),
  cutoff: Type.String(),
  time_zone: Type.String(),
  pickup_point: Type.Boolean(),
  active: Type.Boolean(),
  currency: Type.String(),
  cost_table: Type.Record(Type.String(), Type.Array(WeightBand), { description: 'zone → weight bands, ascending.' }),
});

// ---- mapping ----------------------------------------------------------------------------

export function toRequest(channel: string, b: Omit<PlanInput, 'channel'>): SourcingRequest {
  const d = b.delivery;
  return {
    channel,
    currency: b.currency,
    value: b.value,
    lines: b.lines.map((l) => ({ lineId: l.line_id, sku: l.sku, quantity: l.quantity, unitPrice: l.unit_price })),
    delivery: { mode: d.mode, country: d.country, postalCode: d.postal_code, city: d.city, latitude: d.latitude, longitude: d.longitude, pickupLocation: d.pickup_location },
    excludeLocations: b.exclude_locations,
    promisedBy: b.promised_by === undefined ? null : Date.parse(b.promised_by),
    carrierService: b.carrier_service ?? null,
    serviceLevel: b.service_level ?? null,
  };
}

/** Summary explanation: counts from the engine, and a sample built without materialising every verdict. */
function summarise(a: AttemptExplanation) {
  const sample = verdictSample(a, REJECTED_SAMPLE);
  const counts: Record<string, number> = {};
  for (const [k, v] of Object.entries(a.outcomes) as Array<[string, number | undefined]>) if (k !== 'chosen' && v) counts[k] = v;
  return { chosen: sample.filter((v) => v.outcome === 'chosen'), rejected_by_outcome: counts, rejected_sample: sample.filter((v) => v.outcome !== 'chosen') };
}

function planOut(ruleSet: { version: number | null; name: string }, r: SourcingResult, explain: 'summary' | 'full') {
  const { plan, explanation: e } = r;
  return {
    rule_set: ruleSet,
    plan: {
      lines: plan.lines.map((l) => ({
        line_id: l.lineId,
        sku: l.sku,
        quantity: l.quantity,
        strategy: l.strategy,
        allocations: l.allocations,
        backorders: l.backorders.map((b) => ({ location: b.location, quantity: b.quantity, promise_date: b.promiseDate })),
        unfilled: l.unfilled,
      })),
      shipments: plan.shipments.map((s) => ({
        location: s.location,
        location_type: s.locationType,
        mode: s.mode,
        destination_country: s.destinationCountry,
        lines: s.lines.map((l) => ({ line_id: l.lineId, sku: l.sku, quantity: l.quantity })),
        ready_date: s.readyDate,
        weight_g: s.weightG,
        distance_km: s.distanceKm,
        shipment_cost: s.shipmentCost,
        backorder: s.backorder,
        carrier: s.carrier && { service: s.carrier.service, cost: s.carrier.cost, currency: s.carrier.currency, estimated_delivery: s.carrier.estimatedDelivery, meets_promise: s.carrier.meetsPromise, reason: s.carrier.reason },
      })),
      fill_rate: plan.fillRate,
      complete: plan.complete,
    },
    explanation: {
      rule_set: e.ruleSet,
      destination: e.destination,
      strategies: e.strategies,
      lines: e.lines.map((l) => ({ line_id: l.lineId, strategy: l.strategy, why: l.why, chosen: l.chosen, fallbacks: l.fallbacks })),
      attempts: e.attempts.map((a) => ({
        strategy: a.strategy,
        via: a.via,
        lines: a.lines,
        split: { policy: a.split.policy, shipments: a.split.shipments, method: a.split.method, lower_bound: a.split.lowerBound, note: a.split.note },
        notes: a.notes,
        candidate_count: Object.values(a.outcomes).reduce((x, y) => x + (y ?? 0), 0),
        ...(explain === 'full' ? { candidates: a.candidates } : summarise(a)),
      })),
      carriers: e.carriers,
    },
  };
}

const versionOut = (v: RuleSetVersion) => ({ version: v.version, name: v.name, note: v.note, created_by: v.createdBy, created_at: iso(v.createdAt) as string, published: v.published });
const publicationOut = (p: Publication) => ({ version: p.version, action: p.action, published_by: p.publishedBy, published_at: iso(p.publishedAt) as string, previous: p.previous });

function carrierOut(s: CarrierService) {
  return {
    code: s.code,
    name: s.name,
    carrier: s.carrier,
    modes: s.modes,
    service_level: s.serviceLevel,
    origin_countries: s.originCountries,
    zones: s.zones,
    max_weight_g: s.maxWeightG,
    max_length_mm: s.maxLengthMm,
    max_sum_dimensions_mm: s.maxSumDimensionsMm,
    lead_time_days: s.leadTimeDays,
    zone_lead_time_days: s.zoneLeadTimeDays ?? {},
    cutoff: s.cutoff,
    time_zone: s.timeZone,
    pickup_point: s.pickupPoint,
    active: s.active,
    currency: s.currency,
    cost_table: Object.fromEntries(Object.entries(s.costTable).map(([zone, bands]) => [zone, bands.map((b) => ({ up_to_g: b.upToG, cost: b.cost }))])),
  };
}

// ---- NDJSON simulations ------------------------------------------------------------------

const NDJSON = 'application/x-ndjson';
const ajv = (addFormatsPlugin as unknown as (a: Ajv) => Ajv)(new Ajv({ coerceTypes: false, useDefaults: true, strict: false }));
const checkOrder = ajv.compile(SimOrder);

/** An NDJSON body as received: read (within the body limit) but parsed only after the role check. */
class NdjsonText {
  constructor(readonly text: string) {}
}

/** One order per line; a line that is not JSON or not an order is refused with its number. */
export function parseNdjson(text: string): unknown[] {
  const orders: unknown[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    if (orders.length === MAX_ORDERS) throw new AppError('page_too_large', `At most ${MAX_ORDERS.toLocaleString('en')} orders per call`);
    let order: unknown;
    try {
      order = JSON.parse(line);
    } catch {
      throw new AppError('validation_failed', `line ${i + 1}: not valid JSON`, [{ line: i + 1, message: 'not valid JSON' }]);
    }
    if (!checkOrder(order)) {
      const first = checkOrder.errors?.[0];
      const message = `${first?.instancePath || '/'} ${first?.message ?? 'is invalid'}`;
      throw new AppError('validation_failed', `line ${i + 1}: ${message}`, [{ line: i + 1, message }]);
    }
    orders.push(order);
  }
  return orders;
}

const SimQuery = Type.Object(
  {
    baseline: Type.Optional(Type.Union([Version, Type.Literal('published')], { description: 'NDJSON only: the baseline version or published (default).' })),
    candidate: Type.Optional(Type.Integer({ minimum: 1, description: 'NDJSON only (required there): the candidate version.' })),
    per_order: Type.Optional(Type.Boolean({ description: 'NDJSON only.' })),
  },
  { additionalProperties: false },
);

/**
 * For NDJSON, the orders come from the lines and the settings from the query string; for JSON,
 * everything comes from the body. This runs before Fastify validates (and coerces) the query,
 * so the three values are read here.
 */
async function ndjsonToBody(req: { query: unknown; body: unknown }): Promise<void> {
  const q = req.query as Record<string, string | undefined>;
  const given = q.baseline !== undefined || q.candidate !== undefined || q.per_order !== undefined;
  if (!(req.body instanceof NdjsonText)) {
    if (given) throw new AppError('validation_failed', 'With a JSON body, give baseline, candidate and per_order in the body, not in the query string');
    return;
  }
  const version = (name: string, v: string): number => {
    if (!/^[1-9]\d{0,9}$/.test(v)) throw new AppError('validation_failed', `querystring/${name} must be a rule set version${name === 'baseline' ? " or 'published'" : ''}`);
    return Number(v);
  };
  if (q.candidate === undefined) throw new AppError('validation_failed', 'With an NDJSON body, name the candidate rule set: ?candidate=<version>');
  const body: Record<string, unknown> = { orders: parseNdjson(req.body.text), candidate: version('candidate', q.candidate) };
  if (q.baseline !== undefined) body.baseline = q.baseline === 'published' ? 'published' : version('baseline', q.baseline);
  if (q.per_order !== undefined) {
    if (q.per_order !== 'true' && q.per_order !== 'false') throw new AppError('validation_failed', 'querystring/per_order must be true or false');
    body.per_order = q.per_order === 'true';
  }
  req.body = body;
}

/**
 * The RuleSet schema for the document and response serialisation: a numeric exclusiveMinimum
 * (JSON Schema draft 6+) is a boolean in OpenAPI 3.0, and Fastify's shared-schema compiler
 * (draft 7) refuses the boolean form, so the bound is written as minimum plus a sentence.
 * Rule sets themselves are checked by validateRuleSet, which keeps the exact bound.
 */
function portableBounds(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(portableBounds);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) out[k] = portableBounds(v);
  for (const [k, bound, word] of [['exclusiveMinimum', 'minimum', 'above'], ['exclusiveMaximum', 'maximum', 'below']] as const) {
    if (typeof out[k] !== 'number') continue;
    out[bound] = out[k];
    out.description = [out.description, `Strictly ${word} ${out[k]}.`].filter(Boolean).join(' ');
    delete out[k];
  }
  return out;
}

// ---- routes -------------------------------------------------------------------------------

export function registerSourcingRoutes(app: App, ctx: Ctx): void {
  const db = ctx.store.db;
  app.addSchema(portableBounds(RuleSetSchema) as typeof RuleSetSchema);
  const tags = ['sourcing'];

  app.post(
    '/sourcing/plan',
    {
      schema: {
        tags,
        summary: 'Dry run: the sourcing plan and its explanation for an order, on current stock; reserves nothing',
        description:
          "Admin keys name any channel and may dry-run a saved draft with ?rule_set=<version>; channel keys plan for their own channel (the default), store keys for their POS channel. explain=summary (default) gives each attempt's chosen verdicts, the others counted by outcome and the 10 best-placed; explain=full lists every candidate verdict.",
        security,
        querystring: Type.Object(
          { explain: Type.Optional(Enum(['summary', 'full'] as const, { default: 'summary' })), rule_set: Type.Optional(Type.Integer({ minimum: 1, description: 'Admin only: a saved rule set version instead of the published one.' })) },
          { additionalProperties: false },
        ),
        body: PlanBody,
        response: withErrors({ 200: PlanOut }),
      },
      preValidation: batchCap('lines', MAX_LINES),
    },
    async (req) => {
      const p = requireRole(req, 'channel', 'store');
      const channel = req.body.channel ?? p.channel;
      if (!channel) throw new AppError('validation_failed', 'Name the channel: body.channel');
      // Another channel looks exactly like an unknown channel.
      if (!canReadChannel(p, channel)) throw new AppError('unknown_channel', `Channel '${channel}' does not exist`);
      if (req.query.rule_set !== undefined && p.role !== 'admin') throw new AppError('forbidden', `A ${p.role} key cannot dry-run a draft rule set`);
      const planned = await planSourcing(ctx, toRequest(channel, req.body), { ruleSetVersion: req.query.rule_set });
      return planOut(planned.ruleSet, planned.result, req.query.explain ?? 'summary');
    },
  );

  // ---- rule sets (admin) ----

  app.post(
    '/sourcing/rule-sets',
    {
      schema: {
        tags,
        summary: 'Save a rule set as a new immutable version (not published); an invalid one gets 422 with every problem',
        security,
        body: RuleSetBody,
        response: withErrors({ 201: RuleSetOut }),
      },
    },
    async (req, reply) => {
      const p = requireRole(req);
      const v = await createRuleSet(ctx, req.body.rule_set, p.name, req.body.note ?? null);
      return reply.status(201).send({ ...versionOut(v), rule_set: v.ruleSet });
    },
  );

  app.post(
    '/sourcing/rule-sets/validate',
    {
      schema: { tags, summary: 'Check a rule set without saving it: every problem, with a path and a sentence', security, body: RuleSetBody, response: withErrors({ 200: Type.Object({ valid: Type.Boolean(), problems: Problems }) }) },
    },
    async (req) => {
      requireRole(req);
      const problems = validateRuleSet(req.body.rule_set);
      return { valid: problems.length === 0, problems };
    },
  );

  app.get(
    '/sourcing/rule-sets',
    {
      schema: {
        tags,
        summary: 'Rule set versions, newest first (without their body: GET /sourcing/rule-sets/{version} has it)',
        security,
        querystring: Type.Object({ ...PageQuery, after: Type.Optional(Type.String({ maxLength: 20, description: 'Cursor: the next_cursor of the previous page (a version number).' })) }, { additionalProperties: false }),
        response: withErrors({ 200: Page(Type.Object(RuleSetSummary)) }),
      },
    },
    async (req) => {
      requireRole(req);
      const limit = req.query.limit ?? 100;
      const after = req.query.after;
      if (after !== undefined && !/^[1-9]\d{0,9}$/.test(after)) throw new AppError('invalid_cursor', `'${after}' is not a cursor this API issued`);
      const rows = await listRuleSets(db, { afterVersion: after === undefined ? undefined : Number(after), limit: limit + 1 });
      const page = rows.slice(0, limit);
      return { items: page.map(versionOut), next_cursor: rows.length > limit ? String(page[page.length - 1].version) : null };
    },
  );

  app.get(
    '/sourcing/rule-sets/published',
    {
      schema: {
        tags,
        summary: 'The rule set live now (version null: the built-in default, nothing published yet)',
        security,
        response: withErrors({ 200: Type.Object({ version: Nullable(Type.Integer()), name: Type.String(), published_at: Nullable(Type.String()), rule_set: Type.Ref('RuleSet') }) }),
      },
    },
    async (req) => {
      requireRole(req);
      const live = await ctx.sourcing.rules.get(ctx);
      return { version: live.version, name: live.ruleSet.name, published_at: iso(live.publishedAt), rule_set: live.ruleSet };
    },
  );

  app.get(
    '/sourcing/rule-sets/:version',
    { schema: { tags, summary: 'One rule set version, with its body', security, params: Type.Object({ version: Version }), response: withErrors({ 200: RuleSetOut }) } },
    async (req) => {
      requireRole(req);
      const v = await getRuleSet(db, req.params.version);
      return { ...versionOut(v), rule_set: v.ruleSet };
    },
  );

  app.post(
    '/sourcing/rule-sets/:version/publish',
    {
      schema: { tags, summary: 'Publish a version: every process sources with it within a second', security, params: Type.Object({ version: Version }), response: withErrors({ 200: PublicationOut }) },
    },
    async (req) => publicationOut(await publishRuleSet(ctx, req.params.version, requireRole(req).name)),
  );

  app.post(
    '/sourcing/rule-sets/rollback',
    { schema: { tags, summary: 'Republish the version that was live before the current one (409 invalid_state when there is none)', security, response: withErrors({ 200: PublicationOut }) } },
    async (req) => publicationOut(await rollbackRuleSet(ctx, requireRole(req).name)),
  );

  app.get(
    '/sourcing/publications',
    {
      schema: {
        tags,
        summary: 'Publication history, newest first',
        security,
        querystring: Type.Object({ limit: PageQuery.limit }, { additionalProperties: false }),
        response: withErrors({ 200: Type.Object({ items: Type.Array(PublicationOut) }) }),
      },
    },
    async (req) => {
      requireRole(req);
      return { items: (await publicationHistory(db, req.query.limit ?? 100)).map(publicationOut) };
    },
  );

  // ---- simulations (admin), JSON or NDJSON ----

  app.register(async (scope) => {
    scope.addContentTypeParser(NDJSON, { parseAs: 'string' }, (_req, body, done) => done(null, new NdjsonText(body as string)));
    (scope as unknown as App).post(
      '/sourcing/simulations',
      {
        schema: {
          tags,
          summary: 'Replay orders against two rule sets on one stock picture and compare the outcome; changes nothing',
          description: `JSON: { orders | stored_orders, baseline?, candidate, per_order? } (stored_orders replays the orders captured in a date range). NDJSON (${NDJSON}): one order per line, with baseline, candidate (a version) and per_order in the query string. Orders that cannot be read (unknown sku, channel, location) are listed in rejected; the others run.`,
          security,
          consumes: ['application/json', NDJSON],
          querystring: SimQuery,
          body: SimBody,
          response: withErrors({ 200: SimOut }),
        },
        // The role is checked before the (possibly large) batch is looked at.
        preValidation: [async (req) => void requireRole(req), ndjsonToBody, batchCap('orders', MAX_ORDERS)],
      },
      async (req) => {
        requireRole(req);
        return simulation(ctx, req.body);
      },
    );
  });

  app.get(
    '/carriers',
    {
      schema: {
        tags,
        summary: 'The configured carrier services plans choose from, and the holidays they observe',
        security,
        response: withErrors({ 200: Type.Object({ items: Type.Array(CarrierOut), holidays: Type.Record(Type.String(), Type.Array(Type.String()), { description: 'origin country → YYYY-MM-DD' }) }) }),
      },
    },
    async (req) => {
      requireRole(req, 'channel', 'store');
      return { items: ctx.sourcing.carriers.services.map(carrierOut), holidays: ctx.sourcing.carriers.holidays };
    },
  );
}

async function simulation(ctx: Ctx, body: SimInput) {
  // An order that cannot be read (unknown sku, channel, location, country) is listed as
  // rejected by simulateRuleSets; the rest run.
  if ((body.orders === undefined) === (body.stored_orders === undefined)) throw new AppError('validation_failed', 'Give either orders (a list) or stored_orders (a date range), not both');
  const stored = body.stored_orders;
  const inputs: SimulationOrderInput[] = stored
    ? await storedOrdersForSimulation(ctx, { from: Date.parse(stored.from), to: Date.parse(stored.to), channel: stored.channel }, MAX_ORDERS)
    : (body.orders ?? []).map((o: SimOrderInput, index) => ({ ...toRequest(o.channel, o), reference: o.reference ?? `#${index + 1}` }));
  const candidate: RuleSetChoice = typeof body.candidate === 'number' ? { label: 'candidate', version: body.candidate } : { label: 'candidate', ruleSet: body.candidate.rule_set as unknown as RuleSet } // checked by simulateRuleSets (422);
  const r = await simulateRuleSets(ctx, inputs, [{ label: 'baseline', version: body.baseline ?? 'published' }, candidate]);
  const simulated = inputs.length - r.rejected.length;
  const outcome = (o: (typeof r.perOrder)[number]['outcomes'][number]) => ({ shipments: o.shipments, unfilled: o.unfilled, backordered: o.backordered, cost: o.cost, distance_km: o.distanceKm });
  return {
    stock_as_of: iso(r.stockAsOf) as string,
    duration_ms: Math.round(r.durationMs * 1000) / 1000,
    orders_per_second: r.durationMs > 0 ? Math.round((simulated / r.durationMs) * 1000) : simulated * 1000,
    rule_sets: r.ruleSets.map((s) => ({
      label: s.label as 'baseline' | 'candidate',
      version: s.version,
      name: s.name,
      metrics: {
        orders: s.metrics.orders,
        orders_complete: s.metrics.ordersComplete,
        split_orders: s.metrics.splitOrders,
        units_ordered: s.metrics.unitsOrdered,
        units_allocated: s.metrics.unitsAllocated,
        units_backordered: s.metrics.unitsBackordered,
        units_unfilled: s.metrics.unitsUnfilled,
        fill_rate: s.metrics.fillRate,
        shipments: s.metrics.shipments,
        shipments_per_order: s.metrics.shipmentsPerOrder,
        avg_distance_km: s.metrics.avgDistanceKm,
        total_cost: s.metrics.totalCost,
        avg_cost_per_order: s.metrics.avgCostPerOrder,
        late_promises: s.metrics.latePromises,
      },
    })),
    ...(body.per_order ? { per_order: r.perOrder.map((o) => ({ reference: o.reference, baseline: outcome(o.outcomes[0]), candidate: outcome(o.outcomes[1]) })) } : {}),
    rejected: r.rejected,
  };
}
