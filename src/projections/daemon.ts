import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import type { Position } from '../../eventstore/port.js';
import { AppError } from '../domain/errors.js';
import { CATALOG_DDL, positionAtLeast, withDdlLock } from './catalog.js';
import { definitionOf, isReactor, physicalTable, type Projection } from './projection.js';
import { ProjectionRunner, type RunnerDeps, type RunnerOptions } from './runner.js';
import type { Tables } from './tables.js';

export interface ProjectionStatus {
  name: string;
  kind: 'read_model' | 'reactor';
  version: number;
  status: 'building' | 'live' | 'retired';
  /** Built by other code than this process runs: replaced by a rebuild, not fed. */
  outdated: boolean;
  position: string | null;
  events_applied: number;
  lease_owner: string | null;
  lease_until: Date | null;
  error: string | null;
  /** Whether this process runs it and has reached the head at least once. */
  local: { running: boolean; caught_up: boolean } | null;
}

export interface RebuildProgress {
  phase: 'building' | 'switching' | 'done';
  version: number;
  applied: number;
  /** The live version's count: what the new version is expected to reach. */
  expected: number | null;
}

export interface DaemonOptions extends RunnerOptions {
  /** How often to look for versions another process created (a rebuild run from the CLI). */
  catalogPollMs?: number;
  /** Run the live and building versions in this process (false for a one-off CLI process). */
  runAll?: boolean;
}

const key = (name: string, version: number) => `${name}@${version}`;

/**
 * Runs every projection's current versions, answers "has the read model passed this
 * position?" for read-your-writes, and rebuilds a projection beside its live version.
 */
export class ProjectionDaemon {
  private readonly runners = new Map<string, ProjectionRunner>();
  private readonly byName: Map<string, Projection>;
  private started = false;
  private catalogTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /**
   * Versions seen live in the catalog (`name@version`). A version only leaves `live` for
   * `retired`, and only for a version at least as far along, so what such a version's runner
   * here has committed is in the live read model for good.
   */
  private readonly seenLive = new Set<string>();
  /** Read-your-writes waiters, woken by local checkpoints (see nextCheckpoint). */
  private readonly waiters = new Set<{ names: ReadonlySet<string>; position: Position; done: () => void }>();

  readonly projections: Projection[];

  constructor(
    private readonly deps: RunnerDeps,
    projections: readonly Projection[],
    private readonly options: DaemonOptions = {},
  ) {
    this.projections = [...projections];
    this.byName = new Map(projections.map((p) => [p.name, p]));
  }

  /** Adds projections that need the daemon to exist first (reactors waiting on read models). */
  register(...projections: Projection[]): void {
    if (this.started) throw new Error('Projections are registered before the daemon starts');
    for (const projection of projections) {
      if (this.byName.has(projection.name)) throw new Error(`Projection ${projection.name} is registered twice`);
      this.projections.push(projection);
      this.byName.set(projection.name, projection);
    }
  }

  private get db(): Kysely<Tables> {
    return this.deps.db;
  }

  /** Creates the catalog and version 1 of any projection seen for the first time. */
  async initialize(): Promise<void> {
    await withDdlLock(this.db, async (trx) => {
      await sql.raw(CATALOG_DDL).execute(trx);
      for (const projection of this.projections) {
        const existing = await trx.selectFrom('projections').select('version').where('name', '=', projection.name).executeTakeFirst();
        if (existing) continue;
        const ddl = [projection.createTables((t) => physicalTable(t, 1)), ...(projection.createIndexes?.((t) => physicalTable(t, 1)) ?? [])].join(';\n');
        if (ddl.trim()) await sql.raw(ddl).execute(trx);
        await trx
          .insertInto('projections')
          .values({ name: projection.name, version: 1, status: 'live', activated_at: new Date(), definition: definitionOf(projection) })
          .execute();
        await pointViewsAt(trx, projection, 1);
      }
    });
  }

  async start(): Promise<void> {
    this.started = true;
    await this.initialize();
    if (this.options.runAll === false) return;
    await this.syncWithCatalog();
    const poll = this.options.catalogPollMs ?? 2000;
    // One at a time: a switch in progress builds indexes, which can outlast the interval.
    let syncing = false;
    this.catalogTimer = setInterval(() => {
      if (syncing) return;
      syncing = true;
      void this.syncWithCatalog()
        .catch(() => undefined)
        .finally(() => (syncing = false));
    }, poll);
    this.catalogTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.catalogTimer);
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
    this.runners.clear();
  }

  /**
   * Starts a runner for every live or building version this process does not run yet. A read
   * model whose live version was built by other code (an earlier release) is not fed by this
   * code: a version with this code's definition is built beside it, and replaces it once it
   * has reached the head. Readers meanwhile read the old version as it was.
   */
  private async syncWithCatalog(): Promise<void> {
    if (this.stopped) return;
    const rows = await this.db.selectFrom('projections').select(['name', 'version', 'status', 'definition']).where('status', '!=', 'retired').execute();
    for (const row of rows) {
      if (row.status === 'live') this.seenLive.add(key(row.name, row.version));
      const projection = this.byName.get(row.name);
      if (!projection) continue;
      const live = rows.find((r) => r.name === row.name && r.status === 'live');
      const building = rows.find((r) => r.name === row.name && r.status === 'building');
      if (this.isOutdated(projection, row.definition)) {
        // The live version of other code: this code's is built beside it (build() replaces a
        // build other code left). Such a build beside a live version of this code is not needed.
        if (row.status === 'live' && (!building || this.isOutdated(projection, building.definition))) await this.build(row.name);
        if (row.status === 'building' && live && !this.isOutdated(projection, live.definition)) {
          await withDdlLock(this.db, (trx) => retireBuild(trx, projection, row.version));
        }
        continue;
      }
      const runner = this.runnerFor(projection, row.version);
      if (row.status === 'building' && runner.caughtUp && (!live || this.isOutdated(projection, live.definition))) {
        await this.switchToBuilt(row.name).catch((error: unknown) => this.deps.logger.warn({ err: error, projection: row.name }, 'switching to the rebuilt version failed'));
      }
    }
    for (const [k, runner] of this.runners) {
      if (runner.isRetired) this.runners.delete(k);
    }
  }

  private isOutdated(projection: Projection, definition: string | null): boolean {
    return !isReactor(projection) && definition !== definitionOf(projection);
  }

  private runnerFor(projection: Projection, version: number): ProjectionRunner {
    const k = key(projection.name, version);
    let runner = this.runners.get(k);
    if (!runner || runner.isRetired) {
      runner = new ProjectionRunner(this.deps, projection, version, this.options);
      runner.on('error', () => undefined);
      runner.on('checkpoint', (at: Position | undefined) => this.checkpointed(projection.name, at));
      runner.once('retired', () => this.runners.delete(k));
      this.runners.set(k, runner);
      runner.start();
    }
    return runner;
  }

  /** Local runners, for metrics. */
  localRunners(): ProjectionRunner[] {
    return [...this.runners.values()];
  }

  /** The projections readers depend on (reactors are not among them). */
  get readModels(): string[] {
    return this.projections.filter((p) => !isReactor(p)).map((p) => p.name);
  }

  /** Ready when every read model run here has reached the head at least once. */
  isCaughtUp(): boolean {
    const live = [...this.runners.values()].filter((r) => !r.isRetired);
    return this.readModels.every((name) => live.some((r) => r.name === name && r.caughtUp));
  }

  /**
   * Waits until the live version of each named projection has passed `position`, so that a
   * client reads its own write. Bounded: a 503 when the read models lag too far behind.
   */
  async waitFor(position: Position | undefined, names: readonly string[] = this.readModels, timeoutMs = 5000): Promise<void> {
    if (position === undefined) return;
    const deadline = Date.now() + timeoutMs;
    for (let delay = 2; ; delay = Math.min(delay * 2, 25)) {
      // Answered here, without the catalog, when this process runs those read models and has
      // committed that far (the usual case: the write was made here).
      if (names.every((name) => this.committedHere(name, position))) return;
      const rows = await this.db
        .selectFrom('projections')
        .select(['name', 'version', 'position'])
        .where('status', '=', 'live')
        .where('name', 'in', [...names])
        .execute();
      for (const row of rows) this.seenLive.add(key(row.name, row.version));
      if (rows.length === names.length && rows.every((r) => positionAtLeast(r.position, position))) return;
      if (Date.now() >= deadline) {
        throw new AppError('unavailable', 'The read models have not caught up with this write yet; retry shortly', { retryAfterSeconds: 1 });
      }
      const behind = new Set(names.filter((name) => !rows.some((r) => r.name === name && positionAtLeast(r.position, position))));
      await this.nextCheckpoint(delay, behind, position);
    }
  }

  /** Whether a runner here of a version seen live has committed `position` (see seenLive). */
  private committedHere(name: string, position: Position): boolean {
    for (const runner of this.runners.values()) {
      if (runner.name === name && this.seenLive.has(key(name, runner.version)) && positionAtLeast(runner.position ?? null, position)) return true;
    }
    return false;
  }

  /**
   * Resolves when a local runner of one of `names` commits a checkpoint at or past `position`
   * (only then can the catalog have changed in this waiter's favour), or after `ms`: another
   * process may run it. Checkpoints of other projections, or short of the position, do not
   * wake the waiter: with many requests waiting, each would cost a catalog query.
   */
  private nextCheckpoint(ms: number, names: ReadonlySet<string>, position: Position): Promise<void> {
    return new Promise((resolve) => {
      // Every projection waited on runs here: its checkpoints say when to look, and the timer
      // is only a fallback (a lease lost to another process).
      const live = [...this.runners.values()];
      const local = [...names].every((name) => live.some((r) => r.name === name && r.caughtUp && !r.isRetired));
      const waiter = {
        names,
        position,
        done: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(waiter.done, local ? Math.max(ms, 25) : ms);
      this.waiters.add(waiter);
    });
  }

  /** A local runner committed a checkpoint: wake whoever waits for that projection to get there. */
  private checkpointed(name: string, at: Position | undefined): void {
    for (const waiter of this.waiters) {
      if (waiter.names.has(name) && positionAtLeast(at ?? null, waiter.position)) waiter.done();
    }
  }

  async status(): Promise<ProjectionStatus[]> {
    const rows = await this.db.selectFrom('projections').selectAll().orderBy('name').orderBy('version').execute();
    return rows.map((row) => {
      const runner = this.runners.get(key(row.name, row.version));
      const projection = this.byName.get(row.name);
      return {
        name: row.name,
        kind: projection && isReactor(projection) ? 'reactor' : 'read_model',
        version: row.version,
        status: row.status,
        outdated: projection !== undefined && row.status !== 'retired' && this.isOutdated(projection, row.definition),
        position: row.position,
        events_applied: Number(row.events_applied),
        lease_owner: row.lease_owner,
        lease_until: row.lease_until,
        error: row.error,
        local: runner ? { running: !runner.isRetired, caught_up: runner.caughtUp } : null,
      };
    });
  }

  projection(name: string): Projection {
    const projection = this.byName.get(name);
    if (!projection) throw new AppError('not_found', `No projection named ${name}; known: ${[...this.byName.keys()].join(', ')}`);
    return projection;
  }

  /**
   * Creates the next version of a projection (or takes over a build another process of this
   * code left unfinished; one that other code left is given up) and runs it from the start of
   * the log beside the live version.
   */
  async build(name: string): Promise<ProjectionRunner> {
    const projection = this.projection(name);
    if (isReactor(projection)) throw new AppError('invalid', `${name} has side effects; rebuilding it would fire them again`);
    const definition = definitionOf(projection);
    const version = await withDdlLock(this.db, async (trx) => {
      const building = await trx
        .selectFrom('projections')
        .select(['version', 'definition'])
        .where('name', '=', name)
        .where('status', '=', 'building')
        .executeTakeFirst();
      if (building?.definition === definition) return building.version;
      // Started by other code: what it built is not what this code would.
      if (building) await retireBuild(trx, projection, building.version);
      const { max } = await trx
        .selectFrom('projections')
        .select((eb) => eb.fn.max('version').as('max'))
        .where('name', '=', name)
        .executeTakeFirstOrThrow();
      const next = (max ?? 0) + 1;
      for (const table of projection.tables) await sql.raw(`DROP TABLE IF EXISTS ${physicalTable(table, next)}`).execute(trx);
      await sql.raw(projection.createTables((t) => physicalTable(t, next))).execute(trx);
      await trx.insertInto('projections').values({ name, version: next, status: 'building', definition }).execute();
      return next;
    });
    return this.runnerFor(projection, version);
  }

  /**
   * Makes a caught-up building version live: in one transaction, with the live version's
   * checkpoint row locked (its runner cannot commit meanwhile), and only if the new version
   * has got at least as far. Readers move with the views. Returns false if it is behind.
   */
  async switchToBuilt(name: string): Promise<boolean> {
    const projection = this.projection(name);
    const building = await this.db.selectFrom('projections').select('version').where('name', '=', name).where('status', '=', 'building').executeTakeFirst();
    if (building && projection.createIndexes) {
      // Two at a time, each on its own connection: an index build uses one core.
      const pending = projection.createIndexes((t) => physicalTable(t, building.version));
      const builder = async () => {
        for (let statement = pending.shift(); statement; statement = pending.shift()) await sql.raw(statement).execute(this.db);
      };
      await Promise.all([builder(), builder()]);
    }
    const retired = await this.db.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom('projections')
        .select(['version', 'status', 'position'])
        .where('name', '=', name)
        .where('status', 'in', ['live', 'building'])
        .orderBy('version')
        .forUpdate()
        .execute();
      const live = rows.find((r) => r.status === 'live');
      const building = rows.find((r) => r.status === 'building');
      if (!building) throw new AppError('conflict', `${name} has no version being built`);
      if (live && !positionAtLeast(building.position, live.position)) return null;
      if (live) {
        await trx.updateTable('projections').set({ status: 'retired', lease_owner: null }).where('name', '=', name).where('version', '=', live.version).execute();
      }
      await trx
        .updateTable('projections')
        .set({ status: 'live', activated_at: new Date() })
        .where('name', '=', name)
        .where('version', '=', building.version)
        .execute();
      await pointViewsAt(trx, projection, building.version);
      return live?.version ?? 0;
    });
    if (retired === null) return false;
    if (retired > 0) await this.dropVersion(projection, retired);
    return true;
  }

  /** Builds the next version and switches to it once it has caught up; reports progress. */
  async rebuild(name: string, onProgress: (progress: RebuildProgress) => void = () => undefined): Promise<RebuildProgress> {
    const runner = await this.build(name);
    const expectedOf = async () => {
      const live = await this.db
        .selectFrom('projections')
        .select('events_applied')
        .where('name', '=', name)
        .where('status', '=', 'live')
        .executeTakeFirst();
      return live ? Number(live.events_applied) : null;
    };
    const report = async (phase: RebuildProgress['phase']): Promise<RebuildProgress> => {
      const row = await this.db
        .selectFrom('projections')
        .select('events_applied')
        .where('name', '=', name)
        .where('version', '=', runner.version)
        .executeTakeFirst();
      const applied = Number(row?.events_applied ?? 0);
      const progress = { phase, version: runner.version, applied, expected: phase === 'done' ? applied : await expectedOf() };
      onProgress(progress);
      return progress;
    };
    for (;;) {
      // Whoever holds its lease (this process or a server's daemon) builds it; the switch
      // itself checks positions under lock, so it is safe to try whenever it looks close.
      const positions = await this.db
        .selectFrom('projections')
        .select(['status', 'position'])
        .where('name', '=', name)
        .where('status', 'in', ['live', 'building'])
        .execute();
      const live = positions.find((p) => p.status === 'live');
      const building = positions.find((p) => p.status === 'building');
      if (!building) throw new AppError('conflict', `Version ${runner.version} of ${name} was retired or switched by another process`);
      if (!live || positionAtLeast(building.position, live.position)) {
        await report('switching');
        if (await this.switchToBuilt(name)) return report('done');
        await sleep(20);
        continue;
      }
      await report('building');
      if (runner.lastError) throw new Error(`Rebuild of ${name} failed: ${runner.lastError}`);
      await sleep(200);
    }
  }

  private async dropVersion(projection: Projection, version: number): Promise<void> {
    // The retired runner's next commit fails its compare-and-swap before touching these tables.
    const runner = this.runners.get(key(projection.name, version));
    await runner?.stop();
    this.runners.delete(key(projection.name, version));
    await withDdlLock(this.db, async (trx) => {
      for (const table of projection.tables) await sql.raw(`DROP TABLE IF EXISTS ${physicalTable(table, version)}`).execute(trx);
    });
  }
}

/** Gives up a version being built (its runner's next commit fails its compare-and-swap). */
async function retireBuild(trx: Kysely<any>, projection: Projection, version: number): Promise<void> {
  const retired = await trx
    .updateTable('projections')
    .set({ status: 'retired', lease_owner: null })
    .where('name', '=', projection.name)
    .where('version', '=', version)
    .where('status', '=', 'building')
    .executeTakeFirst();
  // Switched live meanwhile (by the process that built it): not given up after all.
  if (Number(retired.numUpdatedRows) === 0) return;
  for (const table of projection.tables) await sql.raw(`DROP TABLE IF EXISTS ${physicalTable(table, version)}`).execute(trx);
}

async function pointViewsAt(trx: Kysely<any>, projection: Projection, version: number): Promise<void> {
  for (const table of projection.tables) {
    await sql.raw(`DROP VIEW IF EXISTS ${table}; CREATE VIEW ${table} AS SELECT * FROM ${physicalTable(table, version)}`).execute(trx);
  }
}
