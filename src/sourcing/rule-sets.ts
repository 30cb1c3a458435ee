// Rule sets as versioned data: every save is a new immutable version (validated first), the
// admin publishes one, and a rollback republishes the one before. The published rule set is
// cached per process and re-read at most once per second, so every OMS process picks up a
// publication within a second without a query per plan.
import type { Ctx } from '../context.ts';
import { sql } from 'kysely';
import type { DbOrTrx, Trx } from '../db/database.ts';
import { appendEvents } from '../events/outbox.ts';
import { AppError } from '../shared/errors.ts';
import type { RuleSet } from './model.ts';
import { DEFAULT_RULE_SET } from './presets.ts';
import { validateRuleSet } from './rules.ts';

export interface RuleSetVersion {
  version: number;
  name: string;
  ruleSet: RuleSet;
  note: string | null;
  createdBy: string;
  createdAt: number;
  published: boolean;
}

export interface PublishedRuleSet {
  /** null = the built-in default (nothing published yet). */
  version: number | null;
  ruleSet: RuleSet;
  publishedAt: number | null;
}

/** Refuses a rule set with every problem listed (422 invalid_rule_set). */
export function assertValidRuleSet(body: unknown): RuleSet {
  const problems = validateRuleSet(body);
  if (problems.length) {
    throw new AppError('invalid_rule_set', `The rule set has ${problems.length} problem(s): ${problems.slice(0, 3).map((p) => `${p.path}: ${p.message}`).join('; ')}`, { problems });
  }
  return body as RuleSet;
}

export async function createRuleSet(ctx: Ctx, body: unknown, actor: string, note: string | null = null): Promise<RuleSetVersion> {
  const ruleSet = assertValidRuleSet(body);
  const now = ctx.clock.now();
  return ctx.store.db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('sourcing_rule_sets')
      .values({ name: ruleSet.name, body: JSON.stringify(ruleSet), note, created_by: actor, created_at: now })
      .returning(['id'])
      .executeTakeFirstOrThrow();
    await appendEvents(trx, ctx.store.dialect, now, [
      { type: 'sourcing.rule_set_created', aggregateType: 'rule_set', aggregateId: String(row.id), aggregateSeq: 1, payload: { version: row.id, name: ruleSet.name, by: actor } },
    ]);
    return { version: row.id, name: ruleSet.name, ruleSet, note, createdBy: actor, createdAt: now, published: false };
  });
}

async function currentPublication(db: DbOrTrx) {
  return db.selectFrom('sourcing_publications').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirst();
}

export async function listRuleSets(db: DbOrTrx, f: { afterVersion?: number; limit: number }): Promise<RuleSetVersion[]> {
  const current = await currentPublication(db);
  let q = db.selectFrom('sourcing_rule_sets').selectAll().orderBy('id', 'desc').limit(f.limit);
  if (f.afterVersion) q = q.where('id', '<', f.afterVersion);
  const rows = await q.execute();
  return rows.map((r) => toVersion(r, current?.rule_set_id === r.id));
}

export async function getRuleSet(db: DbOrTrx, version: number): Promise<RuleSetVersion> {
  const row = await db.selectFrom('sourcing_rule_sets').selectAll().where('id', '=', version).executeTakeFirst();
  if (!row) throw new AppError('not_found', `Rule set version ${version} not found`);
  const current = await currentPublication(db);
  return toVersion(row, current?.rule_set_id === row.id);
}

function toVersion(r: { id: number; name: string; body: string; note: string | null; created_by: string; created_at: number }, published: boolean): RuleSetVersion {
  return { version: r.id, name: r.name, ruleSet: JSON.parse(r.body) as RuleSet, note: r.note, createdBy: r.created_by, createdAt: r.created_at, published };
}

export interface Publication {
  version: number;
  action: 'publish' | 'rollback';
  publishedBy: string;
  publishedAt: number;
  previous: number | null;
}

/** Publications are serialised: SQLite's write transactions already are; PostgreSQL takes an advisory lock. */
async function lockPublications(trx: Trx, dialect: Ctx['store']['dialect']): Promise<void> {
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext('oms.sourcing_publications'))`.execute(trx);
}

/**
 * The versions a rollback can return to, oldest first, the live one last: a publish pushes,
 * a rollback pops. Publish v1, v2, v3, then roll back twice: v1 is live, and a third
 * rollback has nothing left to return to.
 */
async function publicationStack(trx: Trx): Promise<number[]> {
  const history = await trx.selectFrom('sourcing_publications').select(['rule_set_id', 'action']).orderBy('id').execute();
  const stack: number[] = [];
  for (const h of history) {
    if (h.action === 'rollback') stack.pop();
    else stack.push(h.rule_set_id);
  }
  return stack;
}

async function insertPublication(ctx: Ctx, trx: Trx, version: number, actor: string, action: 'publish' | 'rollback', now: number): Promise<Publication> {
  const current = await currentPublication(trx);
  await trx.insertInto('sourcing_publications').values({ rule_set_id: version, action, published_by: actor, published_at: now }).execute();
  await appendEvents(trx, ctx.store.dialect, now, [
    { type: 'sourcing.rules_published', aggregateType: 'rule_set', aggregateId: String(version), aggregateSeq: 2, payload: { version, action, previous: current?.rule_set_id ?? null, by: actor } },
  ]);
  return { version, action, publishedBy: actor, publishedAt: now, previous: current?.rule_set_id ?? null };
}

/** Makes `version` the rule set every process sources with (within a second). */
export async function publishRuleSet(ctx: Ctx, version: number, actor: string): Promise<Publication> {
  const now = ctx.clock.now();
  const pub = await ctx.store.db.transaction().execute(async (trx) => {
    await lockPublications(trx, ctx.store.dialect);
    const exists = await trx.selectFrom('sourcing_rule_sets').select('id').where('id', '=', version).executeTakeFirst();
    if (!exists) throw new AppError('not_found', `Rule set version ${version} not found`);
    return insertPublication(ctx, trx, version, actor, 'publish', now);
  });
  ctx.sourcing.rules.invalidate();
  return pub;
}

/** Returns to the version that was live before the current one was published. */
export async function rollbackRuleSet(ctx: Ctx, actor: string): Promise<Publication> {
  const now = ctx.clock.now();
  const pub = await ctx.store.db.transaction().execute(async (trx) => {
    await lockPublications(trx, ctx.store.dialect);
    const stack = await publicationStack(trx);
    if (stack.length === 0) throw new AppError('invalid_state', 'Nothing is published: there is nothing to roll back');
    if (stack.length === 1) throw new AppError('invalid_state', `Version ${stack[0]} is the first version published: there is nothing to roll back to`);
    return insertPublication(ctx, trx, stack[stack.length - 2], actor, 'rollback', now);
  });
  ctx.sourcing.rules.invalidate();
  return pub;
}

export async function publicationHistory(db: DbOrTrx, limit: number): Promise<Publication[]> {
  const rows = await db.selectFrom('sourcing_publications').selectAll().orderBy('id', 'desc').limit(limit + 1).execute();
  return rows.slice(0, limit).map((r, i) => ({ version: r.rule_set_id, action: r.action, publishedBy: r.published_by, publishedAt: r.published_at, previous: rows[i + 1]?.rule_set_id ?? null }));
}

/** The published rule set, cached per process (refreshed at most every `ttlMs`). */
export class PublishedRules {
  private cached: PublishedRuleSet | null = null;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<PublishedRuleSet> | null = null;

  constructor(private readonly ttlMs = 1_000) {}

  invalidate(): void {
    this.checkedAt = Number.NEGATIVE_INFINITY;
  }

  /**
   * The published rule set. Once loaded, a stale copy is served while one refresh runs in the
   * background (a publication reaches every process within about ttlMs either way); only an
   * invalidation (this process published or rolled back) waits for the fresh one.
   */
  async get(ctx: Ctx): Promise<PublishedRuleSet> {
    const now = Date.now();
    if (this.cached && now - this.checkedAt < this.ttlMs) return this.cached;
    this.pending ??= this.load(ctx).finally(() => {
      this.pending = null;
    });
    if (this.cached && this.checkedAt !== Number.NEGATIVE_INFINITY) {
      this.pending.catch(() => {});
      return this.cached;
    }
    return this.pending;
  }

  private async load(ctx: Ctx): Promise<PublishedRuleSet> {
    const startedAt = Date.now();
    const pub = await currentPublication(ctx.store.db);
    if (!pub) this.cached = { version: null, ruleSet: DEFAULT_RULE_SET, publishedAt: null };
    else if (this.cached?.version !== pub.rule_set_id) {
      const row = await ctx.store.db.selectFrom('sourcing_rule_sets').select(['body']).where('id', '=', pub.rule_set_id).executeTakeFirstOrThrow();
      this.cached = { version: pub.rule_set_id, ruleSet: JSON.parse(row.body) as RuleSet, publishedAt: pub.published_at };
    } else this.cached = { ...this.cached, publishedAt: pub.published_at };
    this.checkedAt = startedAt;
    return this.cached as PublishedRuleSet;
  }
}
