// PostgreSQL: concurrent order captures written as one statement.
//
// A capture is one guarded statement (WriteBatch.flushGuarded): the reservation UPDATE leads a
// dozen inserts, and nothing stays unless every position had the stock. Run one by one, each
// costs PostgreSQL a statement's fixed work (executor start-up for a dozen CTEs, the cached
// plan, the commit's WAL flush: ~30 % of its CPU per capture in a profile) and the OMS a round
// trip (its driver's serialisation and a loopback write that costs the sender ~0.1 ms). Here at
// most `inFlight` capture statements run at once; captures arriving meanwhile wait, and the
// next statement carries all of them (up to `maxUnits`): one UPDATE over every position they
// reserve (quantities summed, LeadCombiner), each table's rows in one insert, one commit.
//
// All or nothing: if the combined statement fails (a capture lost its stock to another order,
// a reference already stored, a deadlock…), nothing of it stayed and each capture runs again
// alone, exactly as without the group, and gets its own answer. Only a failure that is not a
// statement's (the connection dropped: the outcome is unknown) goes to every capture of it, as
// it would have alone. A lone capture, or one whose lead cannot combine, runs alone too.
//
// A statement may wait on a row lock (a stock import holding a chunk of positions, another
// process's capture): captures queued behind it must not all wait for rows they never touch.
// When the oldest waiting capture has waited `burstAfterMs` and the statements in flight have
// not finished, one more statement takes the queue, up to `maxInFlight`.
import { type GuardedLead, combinedParts, execRaw, guardedStatement, type PendingInsert } from './bulk.ts';
import type { Db } from './database.ts';

interface Unit {
  /** When it was queued (performance.now()). */
  at: number;
  lead: GuardedLead;
  parts: PendingInsert[];
  resolve: (rows: unknown[]) => void;
  reject: (e: unknown) => void;
}

/** A SQLSTATE (5 characters): the server refused the statement, so nothing of it stayed. */
const isStatementError = (e: unknown): boolean => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
};

export class PgCaptureGroup {
  private readonly queue: Unit[] = [];
  private running = 0;
  private burstTimer: NodeJS.Timeout | null = null;
  /** Since the start (diagnosis, the bench): statements sent (reruns included), captures, captures run again alone after a combined statement failed. */
  statements = 0;
  units = 0;
  reruns = 0;
  /** Statements sent beyond `inFlight` because the queue waited `burstAfterMs`. */
  bursts = 0;
  /** Why combined statements failed (SQLSTATE → count; diagnosis). */
  readonly failures = new Map<string, number>();

  private readonly inFlight: number;
  private readonly maxUnits: number;
  private readonly maxInFlight: number;
  private readonly burstAfterMs: number;

  constructor(
    private readonly db: Db,
    opts: {
      /** Capture statements running at once; captures arriving meanwhile join the next one. */
      inFlight: number;
      /** At most this many captures in one statement (default 64). */
      maxUnits?: number;
      /** Statements at once when the queue keeps waiting (default: inFlight). */
      maxInFlight?: number;
      /** How long the oldest queued capture waits before one more statement is sent (default 25 ms). */
      burstAfterMs?: number;
    },
  ) {
    this.inFlight = opts.inFlight;
    this.maxUnits = opts.maxUnits ?? 64;
    this.maxInFlight = Math.max(opts.inFlight, opts.maxInFlight ?? opts.inFlight);
    this.burstAfterMs = opts.burstAfterMs ?? 25;
  }

  /** Writes `lead` and `parts` as flushGuarded would, resolving with the rows `lead` returns. */
  run<R>(lead: GuardedLead, parts: PendingInsert[]): Promise<R[]> {
    return new Promise<R[]>((resolve, reject) => {
      this.queue.push({ at: performance.now(), lead, parts, resolve: resolve as (rows: unknown[]) => void, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.inFlight && this.queue.length > 0) this.sendQueued();
    this.armBurst();
  }

  /** One statement for the captures at the head of the queue. */
  private sendQueued(): void {
    const units = this.queue.splice(0, this.maxUnits);
    this.running++;
    void this.send(units).finally(() => {
      this.running--;
      this.pump();
    });
  }

  /** While captures wait and every statement runs, check again when the oldest has waited burstAfterMs. */
  private armBurst(): void {
    if (this.burstTimer || this.queue.length === 0 || this.running >= this.maxInFlight) return;
    const wait = Math.max(0, this.queue[0].at + this.burstAfterMs - performance.now());
    this.burstTimer = setTimeout(() => {
      this.burstTimer = null;
      const waited = this.queue.length > 0 && performance.now() - this.queue[0].at >= this.burstAfterMs;
      if (waited && this.running < this.maxInFlight) {
        this.bursts++;
        this.sendQueued();
      }
      this.armBurst();
    }, wait);
    // A queued capture keeps the process alive through its own promise, not through this timer.
    this.burstTimer.unref();
  }

  private async send(units: Unit[]): Promise<void> {
    const combiner = units[0].lead.combiner;
    if (units.length === 1 || !combiner || units.some((u) => u.lead.combiner !== combiner)) {
      await Promise.all(units.map((u) => this.alone(u)));
      return;
    }
    this.statements++;
    this.units += units.length;
    let rows: unknown[];
    try {
      const st = guardedStatement(
        combiner.combine(units.map((u) => u.lead)),
        combinedParts(units.map((u) => u.parts)),
      );
      rows = await execRaw(this.db, st.text, st.params);
    } catch (e) {
      if (!isStatementError(e)) {
        for (const u of units) u.reject(e);
        return;
      }
      this.reruns += units.length;
      const code = (e as { code: string }).code;
      this.failures.set(code, (this.failures.get(code) ?? 0) + 1);
      await Promise.all(units.map((u) => this.alone(u, true)));
      return;
    }
    for (const u of units) u.resolve(combiner.share(u.lead, rows));
  }

  private async alone(u: Unit, rerun = false): Promise<void> {
    this.statements++;
    if (!rerun) this.units++;
    try {
      const st = guardedStatement(u.lead, u.parts);
      u.resolve(await execRaw(this.db, st.text, st.params));
    } catch (e) {
      u.reject(e);
    }
  }
}
