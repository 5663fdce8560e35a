import { EventEmitter } from 'node:events';
import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import type { EventStore, Position, SubscriptionMessage } from '../../eventstore/port.js';
import type { EventRegistry, StoredEvent } from '../domain/registry.js';
import type { Logger } from '../lib/logger.js';
import { VersionedTables, type Projection } from './projection.js';
import type { Tables } from './tables.js';

export interface RunnerDeps {
  db: Kysely<Tables>;
  store: EventStore;
  registry: EventRegistry;
  logger: Logger;
  /** Identifies this process in lease rows. */
  owner: string;
}

export interface RunnerOptions {
  batchSize?: number;
  leaseMs?: number;
  /** A partial batch is written after this long without new messages. */
  idleFlushMs?: number;
  /** While the log keeps moving, a checkpoint with nothing applied is written at most this often. */
  checkpointEveryMs?: number;
}

class LeaseLost extends Error {}
const IDLE = Symbol('idle');
const COMMITTED = Symbol('committed');
const YIELD_EVERY = 25;

/**
 * Feeds one version of one projection from `$all`. One active instance per version across
 * processes, by lease row; the checkpoint is a compare-and-swap in the same transaction as
 * the batch's read-model writes, so a batch is applied exactly once even if two instances
 * ever overlap.
 *
 * Emits `checkpoint` (position) after every commit, `caughtUp` when it reaches the head,
 * `error` (Error) when a batch fails, `retired` when its version was replaced.
 */
export class ProjectionRunner extends EventEmitter {
  /** Last committed checkpoint, as this process knows it. */
  position: Position | undefined;
  caughtUp = false;
  /** When the newest event applied was recorded: how fresh the read model is. */
  lastEventAt: Date | undefined;
  lastError: string | undefined;
  eventsApplied = 0;
  /** Consecutive failed batches, for back-off; a commit resets it. */
  private failures = 0;
  private stopped = false;
  private retired = false;
  private running: Promise<void> | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private readonly tables: VersionedTables;
  private readonly batchSize: number;
  private readonly leaseMs: number;
  private readonly idleFlushMs: number;
  private readonly checkpointEveryMs: number;

  constructor(
    private readonly deps: RunnerDeps,
    readonly projection: Projection,
    readonly version: number,
    options: RunnerOptions = {},
  ) {
    super();
    this.tables = new VersionedTables(projection, version);
    this.batchSize = options.batchSize ?? 500;
    this.leaseMs = options.leaseMs ?? 10_000;
    this.idleFlushMs = options.idleFlushMs ?? 20;
    this.checkpointEveryMs = options.checkpointEveryMs ?? 50;
  }

  get name(): string {
    return this.projection.name;
  }

  get isRetired(): boolean {
    return this.retired;
  }

  start(): this {
    this.running ??= this.loop();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.unsubscribe?.();
    await this.running;
    await this.deps.db
      .updateTable('projections')
      .set({ lease_owner: null, lease_until: null })
      .where('name', '=', this.name)
      .where('version', '=', this.version)
      .where('lease_owner', '=', this.deps.owner)
      .execute()
      .catch(() => undefined);
  }

  private async loop(): Promise<void> {
    while (!this.stopped && !this.retired) {
      try {
        const claimed = await this.claim();
        if (claimed === 'retired') {
          this.retired = true;
          this.emit('retired');
          return;
        }
        if (claimed === 'held') {
          await sleep(this.leaseMs / 3);
          continue;
        }
        await this.consume((claimed.position ?? undefined) as Position | undefined);
      } catch (error) {
        if (this.stopped) return;
        if (error instanceof LeaseLost) continue;
        this.lastError = error instanceof Error ? error.message : String(error);
        this.deps.logger.error({ err: error, projection: this.name, version: this.version }, 'projection batch failed');
        this.emit('error', error);
        await this.recordError(this.lastError);
        this.failures += 1;
        await sleep(Math.min(50 * 2 ** this.failures, 30_000));
      }
    }
  }

  private async claim(): Promise<{ position: string | null } | 'held' | 'retired'> {
    const leaseSeconds = this.leaseMs / 1000;
    const claimed = await this.deps.db
      .updateTable('projections')
      .set({ lease_owner: this.deps.owner, lease_until: sql`now() + make_interval(secs => ${leaseSeconds})` })
      .where('name', '=', this.name)
      .where('version', '=', this.version)
      .where('status', '!=', 'retired')
      .where((eb) =>
        eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', this.deps.owner), eb('lease_until', '<', sql<Date>`now()`)]),
      )
      .returning(['position'])
      .executeTakeFirst();
    if (claimed) return claimed;
    const row = await this.deps.db
      .selectFrom('projections')
      .select('status')
      .where('name', '=', this.name)
      .where('version', '=', this.version)
      .executeTakeFirst();
    return !row || row.status === 'retired' ? 'retired' : 'held';
  }

  private async renew(): Promise<boolean> {
    const renewed = await this.deps.db
      .updateTable('projections')
      .set({ lease_until: sql`now() + make_interval(secs => ${this.leaseMs / 1000})` })
      .where('name', '=', this.name)
      .where('version', '=', this.version)
      .where('lease_owner', '=', this.deps.owner)
      .where('status', '!=', 'retired')
      .executeTakeFirst();
    return Number(renewed.numUpdatedRows) === 1;
  }

  private async consume(from: Position | undefined): Promise<void> {
    this.position = from;
    const subscription = this.deps.store.subscribeToAll({
      after: from,
      filter: this.projection.filter,
      batchSize: this.batchSize,
    });
    this.unsubscribe = () => subscription.unsubscribe();
    let leaseLost = false;
    const renewal = setInterval(() => {
      this.renew().then(
        (held) => {
          if (!held) {
            leaseLost = true;
            void subscription.unsubscribe();
          }
        },
        () => undefined,
      );
    }, this.leaseMs / 3);

    const iterator = subscription[Symbol.asyncIterator]();
    let batch: StoredEvent[] = [];
    let upTo = from;
    let lastFlush = performance.now();
    // While catching up, batches are written while the next ones are gathered and decoded: up
    // to two commits in flight, so that the database writes batch n while this process prepares
    // n + 1. The database keeps them in order: each moves the checkpoint from where the one
    // before leaves it, so it waits on that row until the one before commits (and finds the
    // checkpoint not where it expects, and gives up, if that one failed). Only a projection's
    // independent writes (applyIndependent) come before that wait, and go on meanwhile. Once
    // live, and always for a reactor (whose side effects go one batch at a time), a flush waits
    // for its commit: live events arrive a few at a time, and meanwhile the next batch gathers
    // (reading on would make many small commits, measured at 15 % more CPU per ingested alert).
    let queued = from;
    const commits: Promise<typeof COMMITTED>[] = [];
    let checkpointHeld = Promise.resolve();
    const flush = async () => {
      if (upTo === queued && batch.length === 0) return;
      lastFlush = performance.now();
      const [after, to, events] = [queued, upTo, batch];
      batch = [];
      queued = to;
      while (commits.length >= 2) await commits.shift();
      const turn = checkpointHeld;
      let locked!: () => void;
      checkpointHeld = new Promise<void>((resolve) => (locked = resolve));
      const commit = this.commit(after, to, events, turn, locked).then((): typeof COMMITTED => {
        this.position = to;
        this.eventsApplied += events.length;
        if (events.length > 0) this.lastEventAt = events.at(-1)!.recorded.created;
        this.emit('checkpoint', to);
        return COMMITTED;
      });
      // Observed by the loop's race or a later flush; never left unhandled meanwhile.
      commit.catch(() => undefined);
      commits.push(commit);
      if (this.caughtUp || this.projection.react) while (commits.length > 0) await commits.shift();
    };
    const settle = async () => {
      await flush();
      while (commits.length > 0) await commits.shift();
    };
    try {
      let next = iterator.next();
      for (;;) {
        const pendingWrite = batch.length > 0 || upTo !== queued;
        const result: IteratorResult<SubscriptionMessage> | typeof IDLE | typeof COMMITTED = await Promise.race([
          next,
          ...commits.slice(0, 1),
          ...(pendingWrite ? [sleep(this.idleFlushMs).then((): typeof IDLE => IDLE)] : []),
        ]);
        if (result === COMMITTED) {
          commits.shift();
          continue;
        }
        if (result === IDLE) {
          await flush();
          continue;
        }
        if (result.done) break;
        next = iterator.next();
        const message = result.value;
        if (message.kind === 'event') {
          batch.push(this.deps.registry.decode(message.event));
          upTo = message.event.position;
          if (batch.length >= this.batchSize) await flush();
          // Decoding a page is a run of microtasks that would hold off the replies the commit
          // in flight waits for: give the event loop a turn now and then.
          else if (commits.length > 0 && batch.length % YIELD_EVERY === 0) await setImmediate();
        } else if (message.kind === 'checkpoint') {
          upTo = message.position;
          // Events to apply are written at once. A checkpoint that only moves the position
          // (nothing here matched) is written at most every checkpointEveryMs while the log
          // keeps moving, else once it goes quiet (idleFlushMs): one transaction per append per
          // projection that ignores it would cost more than the appends themselves.
          if (batch.length > 0 || performance.now() - lastFlush >= this.checkpointEveryMs) await flush();
        } else {
          await settle();
          this.markCaughtUp();
        }
      }
      if (!this.stopped && !leaseLost) await settle();
    } finally {
      clearInterval(renewal);
      // Commits still in flight settle before anyone reads the checkpoint to start again.
      await Promise.allSettled(commits);
      await subscription.unsubscribe();
    }
    if (leaseLost) throw new LeaseLost();
  }

  private markCaughtUp(): void {
    if (this.caughtUp) return;
    this.caughtUp = true;
    this.emit('caughtUp', this.position);
  }

  /**
   * `turn` settles once the commit before this one holds (or will never take) the checkpoint
   * row; `locked` is called once this one does (or will not), for the commit after it.
   */
  private async commit(
    from: Position | undefined,
    to: Position | undefined,
    batch: StoredEvent[],
    turn: Promise<void>,
    locked: () => void,
  ): Promise<void> {
    try {
      if (batch.length > 0 && this.projection.react) await this.projection.react(batch);
      await this.deps.db.transaction().execute(async (trx) => {
        // A read model is derived data, and its checkpoint commits with it: a crash can lose only
        // the last batches and their checkpoint together, which are then applied again. So the
        // commit need not wait for the WAL flush.
        await sql`SET LOCAL synchronous_commit = off`.execute(trx);
        const tables = trx.withPlugin(this.tables);
        const dependent = batch.length > 0 && this.projection.applyIndependent ? await this.projection.applyIndependent(tables, batch) : batch;
        await turn;
        // The compare-and-swap is in the SET, not the WHERE: a row that the snapshot shows at
        // another position would be skipped at once, without waiting for the commit before
        // this one to move it here.
        const moves = from === undefined ? sql<boolean>`position IS NULL` : sql<boolean>`position = ${from}`;
        const swapped = await trx
          .updateTable('projections')
          .set({
            position: sql`CASE WHEN ${moves} THEN ${to ?? null}::text ELSE position END`,
            events_applied: sql`CASE WHEN ${moves} THEN events_applied + ${batch.length} ELSE events_applied END`,
            updated_at: sql`now()`,
            error: null,
          })
          .where('name', '=', this.name)
          .where('version', '=', this.version)
          .where('lease_owner', '=', this.deps.owner)
          .where('status', '!=', 'retired')
          .returning(sql<boolean>`position IS NOT DISTINCT FROM ${to ?? null}::text`.as('moved'))
          .executeTakeFirst()
          .finally(locked);
        if (!swapped?.moved) throw new LeaseLost();
        if (dependent.length > 0 && this.projection.apply) await this.projection.apply(tables, dependent);
      });
    } finally {
      locked();
    }
    this.lastError = undefined;
    this.failures = 0;
  }

  private async recordError(message: string): Promise<void> {
    await this.deps.db
      .updateTable('projections')
      .set({ error: message.slice(0, 2000) })
      .where('name', '=', this.name)
      .where('version', '=', this.version)
      .execute()
      .catch(() => undefined);
  }
}
