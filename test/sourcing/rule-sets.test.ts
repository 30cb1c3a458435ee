// Rule sets as versioned data, on every backend: saves are immutable versions, publishing
// and rolling back form a stack, and a refused rule set changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppError } from '../../src/shared/errors.ts';
import type { RuleSet } from '../../src/sourcing/model.ts';
import { DEFAULT_RULE_SET } from '../../src/sourcing/presets.ts';
import { createRuleSet, getRuleSet, publicationHistory, publishRuleSet, rollbackRuleSet } from '../../src/sourcing/rule-sets.ts';
import { BACKENDS, createTestEnv, type TestEnv } from '../support/backends.ts';

const named = (name: string): RuleSet => ({ ...DEFAULT_RULE_SET, name });

describe.each(BACKENDS)('rule sets on %s', (backend) => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv(backend);
  });
  afterAll(async () => env?.close());

  const live = async () => {
    env.ctx.sourcing.rules.invalidate();
    return (await env.ctx.sourcing.rules.get(env.ctx)).ruleSet.name;
  };

  it('serves the built-in presets until something is published', async () => {
    expect(await env.ctx.sourcing.rules.get(env.ctx)).toMatchObject({ version: null, ruleSet: { name: 'default' } });
    await expect(rollbackRuleSet(env.ctx, 'admin')).rejects.toMatchObject({ code: 'invalid_state' });
  });

  it('publish pushes, rollback pops: v3 → v2 → v1, then nothing to roll back to', async () => {
    const v = [];
    for (const name of ['one', 'two', 'three']) v.push((await createRuleSet(env.ctx, named(name), 'admin')).version);
    for (const version of v) await publishRuleSet(env.ctx, version, 'admin');
    expect(await live()).toBe('three');
    expect((await rollbackRuleSet(env.ctx, 'admin')).version).toBe(v[1]);
    expect(await live()).toBe('two');
    expect((await rollbackRuleSet(env.ctx, 'admin')).version).toBe(v[0]);
    expect(await live()).toBe('one');
    const err = (await rollbackRuleSet(env.ctx, 'admin').catch((e) => e)) as AppError;
    expect(err.code).toBe('invalid_state');
    expect(await live()).toBe('one');
    expect((await publicationHistory(env.ctx.store.db, 10)).map((p) => [p.version, p.action])).toEqual([
      [v[0], 'rollback'],
      [v[1], 'rollback'],
      [v[2], 'publish'],
      [v[1], 'publish'],
      [v[0], 'publish'],
    ]);
  });

  it.each([
    ['an unknown criterion', (r: RuleSet) => (r.strategies[0].ranking.criteria = [{ criterion: 'speed' as never }]), /unknown value .{0,4}speed.{0,4} \(criteria: distance/],
    ['an empty strategy list', (r: RuleSet) => (r.strategies = []), /at least one strategy/],
    ['a fallback cycle', (r: RuleSet) => (r.strategies[2].fallbacks = [{ type: 'strategy', strategy: 'cc-pickup-store' }]), /fallback cycle: cc-pickup-store → cc-nearby-store → cc-warehouse → cc-pickup-store/],
    ['a negative radius', (r: RuleSet) => (r.strategies[1].filters.maxDistanceKm = -5), /\/strategies\/1\/filters\/maxDistanceKm/],
    ['a fallback to an unknown strategy', (r: RuleSet) => (r.strategies[0].fallbacks = [{ type: 'strategy', strategy: 'nope' }]), /unknown strategy 'nope'/],
    ['duplicate ids', (r: RuleSet) => (r.strategies[1].id = r.strategies[0].id), /duplicate strategy id/],
  ])('refuses %s on save, and nothing published changes', async (_, breakIt, message) => {
    const before = await live();
    const versions = await env.ctx.store.db.selectFrom('sourcing_rule_sets').select('id').execute();
    const bad = structuredClone(DEFAULT_RULE_SET);
    breakIt(bad);
    const err = (await createRuleSet(env.ctx, bad, 'admin').catch((e) => e)) as AppError;
    expect(err.code).toBe('invalid_rule_set');
    expect(JSON.stringify((err.details as { problems: unknown[] }).problems)).toMatch(message);
    expect(await live()).toBe(before);
    expect(await env.ctx.store.db.selectFrom('sourcing_rule_sets').select('id').execute()).toHaveLength(versions.length);
  });

  it('a saved version is immutable and readable as saved', async () => {
    const saved = await createRuleSet(env.ctx, named('frozen'), 'alice', 'for the sale');
    expect(await getRuleSet(env.ctx.store.db, saved.version)).toMatchObject({ name: 'frozen', note: 'for the sale', createdBy: 'alice', ruleSet: named('frozen'), published: false });
  });
});
