import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
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
    const flush = async () => {
      if (upTo === this.position && batch.length === 0) return;
      lastFlush = performance.now();
      await this.commit(this.position, upTo, batch);
      this.position = upTo;
      this.eventsApplied += batch.length;
      if (batch.length > 0) this.lastEventAt = batch.at(-1)!.recorded.created;
      batch = [];
      this.emit('checkpoint', this.position);
    };
    try {
      let next = iterator.next();
      for (;;) {
        const pendingWrite = batch.length > 0 || upTo !== this.position;
        const result: IteratorResult<SubscriptionMessage> | typeof IDLE = pendingWrite
          ? await Promise.race([next, sleep(this.idleFlushMs).then((): typeof IDLE => IDLE)])
          : await next;
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
        } else if (message.kind === 'checkpoint') {
          upTo = message.position;
          // Events to apply are written at once. A checkpoint that only moves the position
          // (nothing here matched) is written at most every checkpointEveryMs while the log
          // keeps moving, else once it goes quiet (idleFlushMs): one transaction per append per
          // projection that ignores it would cost more than the appends themselves.
          if (batch.length > 0 || performance.now() - lastFlush >= this.checkpointEveryMs) await flush();
        } else {
          await flush();
          this.markCaughtUp();
        }
      }
      if (!this.stopped && !leaseLost) await flush();
    } finally {
      clearInterval(renewal);
      await subscription.unsubscribe();
    }
    if (leaseLost) throw new LeaseLost();
  }

  private markCaughtUp(): void {
    if (this.caughtUp) return;
    this.caughtUp = true;
    this.emit('caughtUp', this.position);
  }

  private async commit(from: Position | undefined, to: Position | undefined, batch: StoredEvent[]): Promise<void> {
    if (batch.length > 0 && this.projection.react) await this.projection.react(batch);
    await this.deps.db.transaction().execute(async (trx) => {
      // A read model is derived data, and its checkpoint commits with it: a crash can lose only
      // the last batches and their checkpoint together, which are then applied again. So the
      // commit need not wait for the WAL flush.
      await sql`SET LOCAL synchronous_commit = off`.execute(trx);
      const swapped = await trx
        .updateTable('projections')
        .set({
          position: to ?? null,
          events_applied: sql`events_applied + ${batch.length}`,
          updated_at: sql`now()`,
          error: null,
        })
        .where('name', '=', this.name)
        .where('version', '=', this.version)
        .where('lease_owner', '=', this.deps.owner)
        .where('status', '!=', 'retired')
        .where((eb) => (from === undefined ? eb('position', 'is', null) : eb('position', '=', from)))
        .executeTakeFirst();
      if (Number(swapped.numUpdatedRows) !== 1) throw new LeaseLost();
      if (batch.length > 0 && this.projection.apply) await this.projection.apply(trx.withPlugin(this.tables), batch);
    });
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
