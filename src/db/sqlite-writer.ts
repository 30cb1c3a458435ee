// SQLite: order capture's writes on a thread of their own.
//
// better-sqlite3 runs every statement synchronously on the calling thread. On the event loop,
// a capture's SQL (the conditional reservation UPDATE, a dozen inserts, its share of the group's
// COMMIT) took ~0.6 of the ~1.7 ms of event-loop time an order cost (order.capture.http, 64
// clients), while the machine's other core sat partly idle. Here a worker thread with its own
// connection to the same file (WAL: readers never wait for it) runs those units with group
// commit (src/db/writer-thread.js); the event loop only posts the unit and applies the answer.
//
// A unit is what PostgreSQL runs as one guarded statement (WriteBatch.flushGuarded): a lead
// UPDATE … RETURNING that must change `expected` rows, then inserts, all or nothing. A lost race
// comes back as an error with LOST_RACE_SQLSTATE, a failed statement with SQLite's error code
// (SQLITE_CONSTRAINT_UNIQUE…), exactly as the callers already handle them on either backend.
// Nothing is answered before its COMMIT. Every other write of the process (Kysely, on the main
// connection) still works: the two connections take SQLite's one write lock in turn.
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { FOREGROUND_CHECKPOINT_PAGES } from './checkpointer.ts';
import { CONNECTION_PRAGMAS, LOST_RACE_SQLSTATE } from './database.ts';

/** The code of a unit refused or cut short because the thread stopped (it may have committed). */
export const WRITER_STOPPED = 'OMS_WRITER_STOPPED';

/** Distinct statement texts the thread keeps by number. */
const MAX_TEXTS = 2000;

export interface WriterStatement {
  text: string;
  params: unknown[];
}

export interface GuardedUnit {
  /** An UPDATE … RETURNING that must return `expected` rows, else nothing of the unit stays. */
  lead: WriterStatement & { expected: number };
  statements: WriterStatement[];
}

interface Answer {
  id: number;
  rows?: unknown[];
  lost?: true;
  error?: { code: string | null; message: string };
  texts?: string[] | null;
}

/** An error as better-sqlite3 would have thrown it on this thread: same code, same message. */
class WriterError extends Error {
  constructor(
    message: string,
    readonly code: string | null,
  ) {
    super(message);
    this.name = 'SqliteError';
  }
}

export class SqliteWriter {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, { resolve: (a: Answer) => void; reject: (e: unknown) => void }>();
  private nextId = 1;
  /** Statement texts already sent to the thread, by number. */
  private readonly textIds = new Map<string, number>();
  private stopping: Promise<void> | null = null;
  /** False once the thread has stopped (closed or failed): callers write on the main connection. */
  alive = true;
  /** Diagnosis (tests, the bench): receives the statements each unit ran, in the caller's async context. */
  onStatements: ((texts: string[]) => void) | null = null;
  /** Since the start (diagnosis, the bench): statements the thread ran (BEGIN and COMMIT included), its busy time, its groups. */
  statements = 0;
  busyMs = 0;
  groups = 0;
  /** Told when the thread stops on its own (the server logs it). */
  onError: ((message: string) => void) | null = null;

  constructor(
    private readonly file: string,
    private readonly opts: {
      /** At most this many units share one COMMIT (bounds how long the write lock is held). */
      maxUnits?: number;
      /** While busy, how long a first unit waits for others to join its group (ms). */
      windowMs?: number;
    } = {},
  ) {}

  /** The thread starts with the first unit: tools and tests that capture nothing never pay for it. */
  private start(): Worker {
    const worker = new Worker(new URL('./writer-thread.js', import.meta.url), {
      workerData: {
        file: this.file,
        pragmas: [...CONNECTION_PRAGMAS, 'cache_size = -65536', `wal_autocheckpoint = ${FOREGROUND_CHECKPOINT_PAGES}`],
        maxUnits: this.opts.maxUnits ?? 64,
        windowMs: this.opts.windowMs ?? 2,
        stoppedCode: WRITER_STOPPED,
      },
    });
    worker.on('message', (m: { answers: Answer[]; statements: number; busyMs: number }) => {
      this.statements += m.statements;
      this.busyMs += m.busyMs;
      this.groups++;
      for (const a of m.answers) {
        const p = this.pending.get(a.id);
        if (!p) continue;
        this.pending.delete(a.id);
        p.resolve(a);
      }
    });
    const fail = (why: string) => {
      if (!this.alive) return;
      this.alive = false;
      if (!this.stopping) this.onError?.(`SQLite writer thread stopped (${why}); captures write on the main connection`);
      for (const p of this.pending.values()) p.reject(new WriterError(`the SQLite writer thread stopped (${why})`, WRITER_STOPPED));
      this.pending.clear();
    };
    worker.on('error', (e) => fail(e instanceof Error ? e.message : String(e)));
    worker.on('exit', (code) => fail(`exit code ${code}`));
    this.worker = worker;
    return worker;
  }

  /** Runs one unit in the writer's next group; resolves after its COMMIT with the lead's rows. */
  async run<R>(unit: GuardedUnit): Promise<R[]> {
    if (!this.alive || this.stopping) throw new WriterError('the SQLite writer thread is not running', WRITER_STOPPED);
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    const trace = this.onStatements !== null;
    // The thread holds the process open only while units are in flight.
    if (this.pending.size === 0) worker.ref();
    const message = this.encode(id, trace, unit);
    const answer = await new Promise<Answer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage(message);
    }).finally(() => {
      if (this.pending.size === 0 && this.alive) worker.unref();
    });
    if (answer.texts) this.onStatements?.(answer.texts);
    if (answer.lost) throw new WriterError('a position lacked the stock when the capture was written', LOST_RACE_SQLSTATE);
    if (answer.error) throw new WriterError(answer.error.message, answer.error.code);
    return (answer.rows ?? []) as R[];
  }

  /**
   * A unit as one flat array (src/db/writer-thread.js decodes it): [id, trace, expected,
   * statement count, then per statement (the lead first): number, text or null, parameter
   * count, the parameters]. Cloning one array of values costs the event loop half of what the
   * same unit as objects and nested arrays did (each object's keys are written out too).
   * A statement's text crosses once: later units send its number (the texts are long, a dozen
   * an order, and the same few shapes repeat). Past MAX_TEXTS shapes, texts are sent every
   * time, with number 0.
   */
  private encode(id: number, trace: boolean, unit: GuardedUnit): unknown[] {
    // Filled by push, never preallocated: `new Array(n)` makes a holey array, which V8's
    // serializer writes as a sparse one, index by index (a capture's unit: 48 µs to clone,
    // against 16 µs packed).
    const out: unknown[] = [id, trace ? 1 : 0, unit.lead.expected, 1 + unit.statements.length];
    this.encodeStatement(out, unit.lead);
    for (const st of unit.statements) this.encodeStatement(out, st);
    return out;
  }

  private encodeStatement(out: unknown[], st: WriterStatement): void {
    let n = this.textIds.get(st.text);
    let text: string | null = null;
    if (n === undefined) {
      text = st.text;
      n = this.textIds.size >= MAX_TEXTS ? 0 : this.textIds.size + 1;
      if (n > 0) this.textIds.set(st.text, n);
    }
    const params = st.params;
    out.push(n, text, params.length);
    for (let i = 0; i < params.length; i++) out.push(params[i]);
  }

  /** Stops the thread; units still waiting are rejected. */
  close(): Promise<void> {
    if (!this.stopping) {
      const worker = this.worker;
      this.stopping = (async () => {
        if (!worker || !this.alive) return;
        const exited = once(worker, 'exit');
        // An idle thread is unref'd: without this, a process with nothing else to do would end
        // before the thread's exit is seen, and whatever awaits close() (the store's own close,
        // the server's shutdown) would never run.
        worker.ref();
        worker.postMessage('stop');
        await exited;
      })();
    }
    return this.stopping;
  }
}
