// Rule sets are data: this module owns their JSON schema (also published in the OpenAPI
// document) and the checks a schema cannot express (unique ids, known fallback targets, no
// fallback cycle, value ranges). validateRuleSet returns every problem at once, with a path
// and a sentence, so a retailer editing rules can fix them in one go.
import { type Static, Type } from '@sinclair/typebox';
import { Ajv, type ErrorObject } from 'ajv';
import { CAPABILITIES, COUNTRY_RE, LOCATION_TYPES } from '../inventory/model.ts';
import { CRITERIA, DELIVERY_MODES, type RuleSet } from './model.ts';

const Str = (max = 64) => Type.String({ minLength: 1, maxLength: max });
const Country = Type.String({ pattern: '^[A-Z]{2}$', description: 'ISO 3166-1 alpha-2' });
const lit = <T extends readonly string[]>(xs: T) => Type.Unsafe<T[number]>({ type: 'string', enum: [...xs] });
const Days = Type.Optional(Type.Integer({ minimum: 0, maximum: 60 }));

export const RuleSetSchema = Type.Object(
  {
    name: Str(100),
    settings: Type.Object(
      {
        homeCountry: Country,
        handlingDays: Type.Object({ warehouse: Days, store: Days, supplier: Days, marketplace: Days, reseller: Days }, { additionalProperties: false }),
        exactSplitLimit: Type.Integer({ minimum: 0, maximum: 30, description: 'Above this many candidates holding stock, split minimisation is greedy with a bound.' }),
      },
      { additionalProperties: false },
    ),
    strategies: Type.Array(
      Type.Object(
        {
          id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9_-]*$' }),
          description: Type.Optional(Str(500)),
          when: Type.Object(
            {
              channels: Type.Optional(Type.Array(Str(), { maxItems: 100 })),
              modes: Type.Optional(Type.Array(lit(DELIVERY_MODES), { minItems: 1, maxItems: 4 })),
              destination: Type.Optional(lit(['domestic', 'abroad'] as const)),
              countries: Type.Optional(Type.Array(Country, { minItems: 1, maxItems: 250 })),
              demandClasses: Type.Optional(Type.Array(Str(16), { minItems: 1, maxItems: 20 })),
              skuTags: Type.Optional(Type.Array(Str(), { minItems: 1, maxItems: 100 })),
              minValue: Type.Optional(Type.Integer({ minimum: 0 })),
              maxValue: Type.Optional(Type.Integer({ minimum: 0 })),
            },
            { additionalProperties: false },
          ),
          filters: Type.Object(
            {
              locationTypes: Type.Optional(Type.Array(lit(LOCATION_TYPES), { minItems: 1, maxItems: 5 })),
              capabilities: Type.Optional(Type.Union([Type.Literal('auto'), Type.Array(lit(CAPABILITIES), { maxItems: 4 })])),
              sameCountry: Type.Optional(Type.Boolean()),
              maxDistanceKm: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 20_000 })),
              atPickupLocation: Type.Optional(Type.Boolean()),
              fullOrderOnly: Type.Optional(Type.Boolean()),
              underCapacity: Type.Optional(Type.Boolean()),
              excludeLocations: Type.Optional(Type.Array(Str(), { maxItems: 1000 })),
            },
            { additionalProperties: false },
          ),
          ranking: Type.Object(
            {
              mode: lit(['lexicographic', 'weighted'] as const),
              criteria: Type.Array(
                Type.Object(
                  {
                    criterion: lit(CRITERIA),
                    weight: Type.Optional(Type.Number({ minimum: 0, maximum: 1000 })),
                    tolerance: Type.Optional(Type.Number({ minimum: 0 })),
                  },
                  { additionalProperties: false },
                ),
                { minItems: 1, maxItems: CRITERIA.length },
              ),
            },
            { additionalProperties: false },
          ),
          split: Type.Union([
            Type.Object({ policy: Type.Literal('none') }, { additionalProperties: false }),
            Type.Object({ policy: Type.Literal('minimise') }, { additionalProperties: false }),
            Type.Object({ policy: Type.Literal('max'), maxShipments: Type.Integer({ minimum: 1, maximum: 50 }) }, { additionalProperties: false }),
          ]),
          fallbacks: Type.Array(
            Type.Union([
              Type.Object({ type: Type.Literal('strategy'), strategy: Str() }, { additionalProperties: false }),
              Type.Object({ type: Type.Literal('dropship') }, { additionalProperties: false }),
              Type.Object({ type: Type.Literal('backorder'), horizonDays: Type.Integer({ minimum: 1, maximum: 365 }) }, { additionalProperties: false }),
              Type.Object({ type: Type.Literal('unfilled') }, { additionalProperties: false }),
            ]),
            { maxItems: 10 },
          ),
          transferToPickup: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
      { maxItems: 100 },
    ),
  },
  { additionalProperties: false, $id: 'RuleSet', title: 'RuleSet' },
);

// The schema and the model describe the same shape; this line fails to compile if they drift.
type _Same = Static<typeof RuleSetSchema> extends RuleSet ? (RuleSet extends Static<typeof RuleSetSchema> ? true : never) : never;
const _same: _Same = true;
void _same;

export interface RuleProblem {
  path: string;
  message: string;
}

const ajv = new Ajv({ allErrors: true, strict: false });
const check = ajv.compile(RuleSetSchema);

/** Every problem with a rule set, or [] when it can be saved. */
export function validateRuleSet(input: unknown): RuleProblem[] {
  if (!check(input)) return dedupe((check.errors ?? []).map((e) => describe(e, input)));
  const rs = input as RuleSet;
  const problems: RuleProblem[] = [];
  if (rs.strategies.length === 0) problems.push({ path: '/strategies', message: 'a rule set needs at least one strategy' });
  const ids = new Map<string, number>();
  rs.strategies.forEach((s, i) => {
    const at = `/strategies/${i}`;
    if (ids.has(s.id)) problems.push({ path: `${at}/id`, message: `duplicate strategy id '${s.id}' (also strategy ${ids.get(s.id)})` });
    ids.set(s.id, i);
    const { minValue, maxValue, countries, destination } = s.when;
    if (minValue !== undefined && maxValue !== undefined && minValue > maxValue) problems.push({ path: `${at}/when`, message: `minValue ${minValue} is above maxValue ${maxValue}` });
    for (const c of countries ?? []) if (!COUNTRY_RE.test(c)) problems.push({ path: `${at}/when/countries`, message: `'${c}' is not a country code` });
    if (destination && countries) problems.push({ path: `${at}/when`, message: 'use either destination (domestic/abroad) or countries, not both' });
    if (s.ranking.mode === 'weighted') {
      s.ranking.criteria.forEach((c, j) => {
        if (c.weight === undefined) problems.push({ path: `${at}/ranking/criteria/${j}/weight`, message: `weighted ranking needs a weight for '${c.criterion}'` });
      });
      if (s.ranking.criteria.every((c) => !c.weight)) problems.push({ path: `${at}/ranking/criteria`, message: 'weighted ranking needs at least one weight above 0' });
    }
    const seen = new Set<string>();
    s.ranking.criteria.forEach((c, j) => {
      if (seen.has(c.criterion)) problems.push({ path: `${at}/ranking/criteria/${j}`, message: `criterion '${c.criterion}' is listed twice` });
      seen.add(c.criterion);
    });
    if (s.filters.atPickupLocation && s.transferToPickup) problems.push({ path: `${at}`, message: 'atPickupLocation and transferToPickup contradict each other' });
    const terminal = s.fallbacks.findIndex((f) => f.type === 'unfilled');
    if (terminal >= 0 && terminal < s.fallbacks.length - 1) problems.push({ path: `${at}/fallbacks/${terminal + 1}`, message: "nothing can follow the 'unfilled' fallback" });
  });
  rs.strategies.forEach((s, i) => {
    s.fallbacks.forEach((f, j) => {
      if (f.type !== 'strategy') return;
      if (!ids.has(f.strategy)) problems.push({ path: `/strategies/${i}/fallbacks/${j}/strategy`, message: `unknown strategy '${f.strategy}'` });
      else if (f.strategy === s.id) problems.push({ path: `/strategies/${i}/fallbacks/${j}/strategy`, message: `strategy '${s.id}' falls back to itself` });
    });
  });
  const cycle = findCycle(rs);
  if (cycle) problems.push({ path: '/strategies', message: `fallback cycle: ${cycle.join(' → ')}` });
  return problems;
}

/** A fallback chain that comes back to where it started, or null. */
function findCycle(rs: RuleSet): string[] | null {
  const edges = new Map(rs.strategies.map((s) => [s.id, s.fallbacks.flatMap((f) => (f.type === 'strategy' && f.strategy !== s.id ? [f.strategy] : []))]));
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (id: string): string[] | null => {
    if (state.get(id) === 2) return null;
    if (state.get(id) === 1) return [...stack.slice(stack.indexOf(id)), id];
    state.set(id, 1);
    stack.push(id);
    for (const next of edges.get(id) ?? []) {
      if (!edges.has(next)) continue;
      const c = visit(next);
      if (c) return c;
    }
    stack.pop();
    state.set(id, 2);
    return null;
  };
  for (const id of edges.keys()) {
    const c = visit(id);
    if (c) return c;
  }
  return null;
}

function describe(e: ErrorObject, input: unknown): RuleProblem {
  const path = e.instancePath || '/';
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return { path, message: `unknown field '${String(p.additionalProperty)}'` };
    case 'required':
      return { path, message: `missing field '${String(p.missingProperty)}'` };
    case 'const':
    case 'enum':
      return { path, message: `unknown value ${JSON.stringify(valueAt(input, path))}${path.endsWith('/criterion') ? ` (criteria: ${CRITERIA.join(', ')})` : ''}` };
    default:
      return { path, message: e.message ?? 'invalid' };
  }
}

function valueAt(input: unknown, path: string): unknown {
  let v: unknown = input;
  for (const k of path.split('/').slice(1)) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

/** Union branches report the same path many times; keep the most useful one per path. */
function dedupe(list: RuleProblem[]): RuleProblem[] {
  const byPath = new Map<string, RuleProblem>();
  for (const p of list) {
    const prev = byPath.get(p.path);
    if (!prev || (prev.message.startsWith('must') && !p.message.startsWith('must'))) byPath.set(p.path, p);
  }
  return [...byPath.values()];
}
