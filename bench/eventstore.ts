/**
 * The event store benchmark (issue 2): the PostgreSQL adapter on a Postgres server and on
 * PGlite, and Emmett's PostgreSQL event store on the same server, under the same scenarios.
 *
 *   npx tsx bench/eventstore.ts            (writes bench/results/eventstore.json)
 *
 * Scenarios (same event counts for every store, so later scenarios see logs of equal size):
 * - append_single: 8 concurrent writers, each on its own stream, one event per append.
 * - append_batch: 8 concurrent writers, each on its own stream, 100 events per append;
 *   raw_insert: the same rows through plain 100-row INSERTs into a table with the columns and
 *   indexes of es_events, in the same database. Both (and Emmett) run in alternating rounds,
 *   so that they share whatever else the machine is doing.
 * - reader check: 8 concurrent writers, mixed batch sizes, nothing reading; then the whole log
 *   is read back in global order and every event committed during the run (all scenarios) is
 *   looked for: `missed` never came back, `duplicated` came back more than once.
 * - read_all: the whole log read in global order, 1,000 events per page (the check's pass,
 *   then a second, timed pass; the figure is the second).
 * - rebuild: ProjectionDaemon.rebuild('alerts') over a 1,000,000-event alert log, in a child
 *   process (bench/rebuild-child.ts) whose peak RSS is reported.
 * Events carry realistic alert payloads (about 1.35 KB of JSON each).
 *
 * Each run uses fresh Postgres schemas (bench_<random>, dropped at the end) and PGlite data
 * directories under the temp dir (deleted at the end). Progress goes to stderr every 5 s.
 * Emmett is installed for this comparison only, in bench/emmett (npm ci'd when missing).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type pg from 'pg';
import type { EventData, Position } from '../eventstore/port.js';
import { PostgresEventStore } from '../eventstore/postgres/store.js';
import { writeAlertLog } from './alert-log.js';
import { adminQuery, alertIngested, DATABASE_URL, log, machineInfo, newSchemaName, openPglite, progress, runWithCleanup, serverPool, tempDir } from './common.js';
import { STREAMING_FLAGS } from '../bin/streaming-flags.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const RESULT_FILE = join(BENCH_DIR, 'results', 'eventstore.json');
const EMMETT_DIR = join(BENCH_DIR, 'emmett');

const WRITERS = 8;
const SINGLE_EVENTS = Number(process.env.BENCH_SINGLE_EVENTS ?? 8_400);
const BATCH_EVENTS = Number(process.env.BENCH_BATCH_EVENTS ?? 60_000);
const CHECK_EVENTS = Number(process.env.BENCH_CHECK_EVENTS ?? 60_000);
const REBUILD_EVENTS = Number(process.env.BENCH_REBUILD_EVENTS ?? 1_000_000);
/** A rebuild still running after this long is stopped and reported as such (0: no limit). */
const REBUILD_LIMIT_S = Number(process.env.BENCH_REBUILD_LIMIT_S ?? 300);
const ROUNDS = 3;
const READ_PAGE = 1000;
const BATCH = 100;

// ---------------------------------------------------------------------------------------------
// Payloads: a pool of realistic events, re-used with fresh ids so generating them costs the
// timed sections nothing (serialising them is the store's work, and is timed).

const TEMPLATES = Array.from({ length: 512 }, () => alertIngested());
let nextTemplate = 0;
function events(count: number): EventData[] {
  return Array.from({ length: count }, () => {
    const t = TEMPLATES[(nextTemplate += 1) % TEMPLATES.length]!;
    return { id: randomUUID(), type: t.type, data: t.data, metadata: t.metadata };
  });
}

/** Deterministic mixed batch sizes for the reader check. */
const MIXED = [1, 1, 1, 2, 3, 5, 8, 13, 20, 50, 100, 1, 2, 40, 7];

// ---------------------------------------------------------------------------------------------
// What a scenario needs from a store.

type Cursor = unknown;
interface Target {
  label: string;
  append(stream: string, events: EventData[]): Promise<void>;
  readPage(after: Cursor, max: number): Promise<{ ids: string[]; after: Cursor; end: boolean }>;
  /** Every event id whose append returned success during this run. */
  committed: string[];
  /**
   * Resolves once every transaction up to this store's newest one has ended cluster-wide: both
   * stores' global reads stop at that horizon, and on a shared server someone else's open
   * transaction can hold it back for a while (a reader then waits; it does not skip).
   */
  settle(): Promise<number>;
}

/** Waits (up to 120 s) until the snapshot xmin passes `maxTxidSql`; returns the seconds waited. */
async function waitForHorizon(pool: pg.Pool, maxTxidSql: string): Promise<number> {
  const started = performance.now();
  for (;;) {
    const { rows } = await pool.query<{ passed: boolean }>(
      `SELECT coalesce((${maxTxidSql}) < pg_snapshot_xmin(pg_current_snapshot()), true) AS passed`,
    );
    const waited = (performance.now() - started) / 1000;
    if (rows[0]!.passed) return waited;
    if (waited > 120) {
      log('WARNING: the transaction horizon has not passed the newest append after 120 s (a long transaction elsewhere on the server); reading anyway');
      return waited;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function aisocTarget(label: string, store: PostgresEventStore, pool: pg.Pool): Target {
  return {
    label,
    committed: [],
    settle: () => waitForHorizon(pool, 'SELECT max(txid) FROM es_events'),
    async append(stream, batch) {
      await store.appendToStream(stream, batch);
    },
    async readPage(after, max) {
      const page = await store.readAll({ after: after as Position | undefined, maxCount: max });
      return { ids: page.events.map((e) => e.id), after: page.checkpoint, end: page.isEnd };
    },
  };
}

interface Measured {
  events: number;
  seconds: number;
}
const eps = (m: Measured) => Math.round(m.events / m.seconds);

/** `writers` concurrent writers share `total` events; `next` says where and how many. */
async function runWriters(
  scenario: string,
  total: number,
  write: (writer: number, size: number) => Promise<void>,
  sizeOf: (writer: number, k: number) => number,
): Promise<Measured> {
  if (!Number.isInteger(total) || total <= 0) throw new RangeError(`${scenario}: ${total} is not a whole number of events`);
  const meter = progress(scenario);
  const quota = Math.floor(total / WRITERS);
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      let left = w === WRITERS - 1 ? total - quota * (WRITERS - 1) : quota;
      for (let k = 0; left > 0; k += 1) {
        const size = Math.min(sizeOf(w, k), left);
        await write(w, size);
        left -= size;
        meter.add(size);
      }
    }),
  );
  return { events: total, seconds: meter.stop() };
}

async function appendScenario(target: Target, scenario: string, total: number, sizeOf: (w: number, k: number) => number, newStreamEvery = Infinity) {
  const streams = Array.from({ length: WRITERS }, () => `load-${randomUUID()}`);
  return runWriters(
    `${scenario} (${target.label})`,
    total,
    async (w, size) => {
      const batch = events(size);
      await target.append(streams[w]!, batch);
      for (const e of batch) target.committed.push(e.id);
    },
    (w, k) => {
      if (k > 0 && k % newStreamEvery === 0) streams[w] = `load-${randomUUID()}`;
      return sizeOf(w, k);
    },
  );
}

/** Reads the whole log in global order; counts committed events missing or seen twice. */
async function readWholeLog(target: Target, check: boolean): Promise<Measured & { missed: number; duplicated: number; foreign: number }> {
  const meter = progress(`read whole log (${target.label})`);
  const seen = new Map<string, number>();
  let after: Cursor = undefined;
  let read = 0;
  for (;;) {
    const page = await target.readPage(after, READ_PAGE);
    read += page.ids.length;
    meter.add(page.ids.length);
    if (check) for (const id of page.ids) seen.set(id, (seen.get(id) ?? 0) + 1);
    after = page.after;
    if (page.end) break;
  }
  const seconds = meter.stop();
  let missed = 0;
  let duplicated = 0;
  let foreign = 0;
  if (check) {
    const committed = new Set(target.committed);
    for (const id of committed) {
      const times = seen.get(id) ?? 0;
      if (times === 0) missed += 1;
      if (times > 1) duplicated += times - 1;
    }
    for (const id of seen.keys()) if (!committed.has(id)) foreign += 1;
  }
  return { events: read, seconds, missed, duplicated, foreign };
}

// ---------------------------------------------------------------------------------------------
// Raw INSERTs into a table equivalent to es_events (its columns, primary key and indexes).

async function createRawTable(pool: pg.Pool): Promise<void> {
  await pool.query(`CREATE TABLE raw_events (LIKE es_events INCLUDING ALL); CREATE SEQUENCE raw_events_seq;`);
}

function rawInsertWriter(pool: pg.Pool) {
  const streams = Array.from({ length: WRITERS }, () => ({ id: `load-${randomUUID()}`, revision: 0 }));
  return async (w: number, size: number) => {
    const stream = streams[w]!;
    const values: unknown[] = [];
    const tuples: string[] = [];
    for (const e of events(size)) {
      const p = values.length;
      tuples.push(`(0, pg_current_xact_id(), nextval('raw_events_seq'), $${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}, $${p + 5}, $${p + 6}, $${p + 7})`);
      values.push(stream.id, stream.revision, e.id, e.type, 'load', JSON.stringify(e.data), JSON.stringify(e.metadata ?? {}));
      stream.revision += 1;
    }
    await pool.query(
      `INSERT INTO raw_events (epoch, txid, seq, stream_id, revision, event_id, type, category, data, metadata) VALUES ${tuples.join(', ')}`,
      values,
    );
  };
}

// ---------------------------------------------------------------------------------------------
// Emmett (bench/emmett), loaded from its own node_modules.

interface EmmettModule {
  getPostgreSQLEventStore(connectionString: string): {
    schema: { migrate(): Promise<void> };
    appendToStream(stream: string, events: { type: string; data: unknown; metadata?: unknown }[]): Promise<unknown>;
    close(): Promise<void>;
  };
  readMessagesBatch(
    execute: unknown,
    options: { after: bigint; batchSize: number },
  ): Promise<{ messages: { metadata: { messageId: string } }[]; currentGlobalPosition: bigint; areMessagesLeft: boolean }>;
}
interface DumboModule {
  dumbo(options: { connectionString: string }): { execute: unknown; close(): Promise<void> };
}

function ensureEmmettInstalled(): void {
  if (existsSync(join(EMMETT_DIR, 'node_modules', '@event-driven-io', 'emmett-postgresql'))) return;
  log('installing Emmett for the comparison: npm ci --prefix bench/emmett');
  const result = spawnSync('npm', ['ci', '--prefix', EMMETT_DIR, '--ignore-scripts', '--no-audit', '--no-fund'], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error('npm ci --prefix bench/emmett failed');
}

async function emmettVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(join(EMMETT_DIR, 'node_modules', '@event-driven-io', 'emmett-postgresql', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

async function openEmmett(schema: string): Promise<{ target: Target; close(): Promise<void> }> {
  const base = join(EMMETT_DIR, 'node_modules', '@event-driven-io');
  const emmett = (await import(pathToFileURL(join(base, 'emmett-postgresql', 'dist', 'index.js')).href)) as EmmettModule;
  const dumbo = (await import(pathToFileURL(join(base, 'dumbo', 'dist', 'index.js')).href)) as DumboModule;
  const url = new URL(DATABASE_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  const connectionString = url.toString();
  const store = emmett.getPostgreSQLEventStore(connectionString);
  await store.schema.migrate();
  // What Emmett's consumers read $all with: postgreSQLEventStoreMessageBatchPuller calls
  // readMessagesBatch(pool.execute, { after, batchSize }) on a dumbo pool for the same URL.
  const reader = dumbo.dumbo({ connectionString });
  const horizonPool = serverPool(schema, 1);
  const target: Target = {
    label: 'emmett',
    committed: [],
    settle: () => waitForHorizon(horizonPool, 'SELECT max(transaction_id) FROM emt_messages'),
    async append(stream, batch) {
      await store.appendToStream(
        stream,
        batch.map((e) => ({ type: e.type, data: e.data, metadata: { ...e.metadata, messageId: e.id } })),
      );
    },
    async readPage(after, max) {
      const page = await emmett.readMessagesBatch(reader.execute, { after: (after as bigint | undefined) ?? 0n, batchSize: max });
      return { ids: page.messages.map((m) => m.metadata.messageId), after: page.currentGlobalPosition, end: !page.areMessagesLeft };
    },
  };
  return {
    target,
    async close() {
      await horizonPool.end();
      await reader.close();
      await store.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The rebuild, in a child process.

interface RebuildOutcome {
  completed: boolean;
  seconds: number;
  applied: number;
  log_events: number;
  events_applied: number;
  reached_head: boolean;
  store_head_position_correct: boolean;
  rows: number | null;
  rss_before_rebuild_mb: number;
  max_rss_mb: number;
}

function runRebuildChild(args: string[]): Promise<RebuildOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...STREAMING_FLAGS.projections, ...(process.env.BENCH_CHILD_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CHILD_PROF] : []), '--import', import.meta.resolve('tsx'), join(BENCH_DIR, 'rebuild-child.ts'), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, BENCH_REBUILD_LIMIT_S: String(REBUILD_LIMIT_S) },
    });
    // Interrupted (Ctrl-C, SIGTERM), the bench must not leave a rebuild running on its own.
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`rebuild child exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1)!) as RebuildOutcome);
      } catch (error) {
        reject(error);
      }
    });
  });
}

function rebuildFigures(outcome: RebuildOutcome, label: string) {
  if (outcome.completed && !outcome.reached_head) throw new Error(`${label} rebuild did not reach the head: ${JSON.stringify(outcome)}`);
  if (!outcome.store_head_position_correct) log(`${label}: WARNING store.headPosition() is not the last event of the log`);
  log(
    outcome.completed
      ? `${label} rebuild: reached the head after applying ${outcome.events_applied} of ${outcome.log_events} events in ${outcome.seconds.toFixed(1)} s, ${outcome.rows} alert rows, peak RSS ${outcome.max_rss_mb.toFixed(0)} MB`
      : `${label} rebuild STOPPED at the ${REBUILD_LIMIT_S} s limit: ${outcome.events_applied} of ${outcome.log_events} events applied, peak RSS ${outcome.max_rss_mb.toFixed(0)} MB`,
  );
  if (outcome.completed && outcome.events_applied !== outcome.log_events) {
    log(`${label}: WARNING the rebuild reached the head having applied ${outcome.events_applied} of ${outcome.log_events} events: ${outcome.log_events - outcome.events_applied} were skipped`);
  }
  return {
    rebuild_eps: Math.round(outcome.events_applied / outcome.seconds),
    // The events the rebuild really applied: the whole log, or what it had committed when stopped.
    rebuild_events: outcome.events_applied,
    rebuild_log_events: outcome.log_events,
    rebuild_completed: outcome.completed,
    // Events of the log the rebuild passed without applying (a completed rebuild should have none).
    rebuild_skipped_events: outcome.completed ? outcome.log_events - outcome.events_applied : null,
    head_position_correct: outcome.store_head_position_correct,
    rebuild_seconds: Math.round(outcome.seconds * 10) / 10,
    rss_mb_peak: Math.round(outcome.max_rss_mb),
  };
}

// ---------------------------------------------------------------------------------------------
// The runs.

const cleanups: (() => Promise<void>)[] = [];
async function cleanup(): Promise<void> {
  while (cleanups.length > 0) await cleanups.pop()!().catch((error: unknown) => log(`cleanup failed: ${String(error)}`));
}

async function schemaOnServer(prefix: string): Promise<string> {
  const schema = newSchemaName(prefix);
  await adminQuery(`CREATE SCHEMA ${schema}`);
  cleanups.push(() => adminQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
  return schema;
}

/** Append, raw insert, reader check and read for our store and (on the server) Emmett, in rounds. */
async function storeScenarios(ours: Target, oursPool: pg.Pool, emmett: Target | undefined) {
  const all = emmett ? [ours, emmett] : [ours];
  const perRound = (total: number) => Math.max(WRITERS, Math.round(total / ROUNDS / WRITERS) * WRITERS);
  const single = new Map<Target, Measured>(all.map((t) => [t, { events: 0, seconds: 0 }]));
  const batch = new Map<Target, Measured>(all.map((t) => [t, { events: 0, seconds: 0 }]));
  const raw: Measured = { events: 0, seconds: 0 };
  const add = (into: Measured, m: Measured) => {
    into.events += m.events;
    into.seconds += m.seconds;
  };

  // Warm-up: connections, plans, JIT (committed, so part of the log the check reads).
  for (const t of all) await appendScenario(t, 'warm-up', WRITERS * 20, (_w, k) => (k % 2 === 0 ? 1 : BATCH));

  for (let round = 0; round < ROUNDS; round += 1) {
    for (const t of all) add(single.get(t)!, await appendScenario(t, `append_single round ${round + 1}/${ROUNDS}`, perRound(SINGLE_EVENTS), () => 1));
  }
  await createRawTable(oursPool);
  const rawWriter = rawInsertWriter(oursPool);
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const t of all) add(batch.get(t)!, await appendScenario(t, `append_batch round ${round + 1}/${ROUNDS}`, perRound(BATCH_EVENTS), () => BATCH));
    add(raw, await runWriters(`raw_insert round ${round + 1}/${ROUNDS} (${ours.label})`, perRound(BATCH_EVENTS), rawWriter, () => BATCH));
  }
  const check = new Map<Target, Measured>();
  for (const t of all) {
    check.set(t, await appendScenario(t, 'reader check: writers', CHECK_EVENTS, (w, k) => MIXED[(w * 7 + k) % MIXED.length]!, 8));
  }
  const reads = new Map<Target, { checked: Awaited<ReturnType<typeof readWholeLog>>; timed: Measured }>();
  for (const t of all) {
    const waited = await t.settle();
    if (waited > 0.5) log(`${t.label}: waited ${waited.toFixed(1)} s for transactions elsewhere on the server to end before reading`);
    const checked = await readWholeLog(t, true);
    log(`${t.label}: ${t.committed.length} committed, read back ${checked.events}: missed ${checked.missed}, duplicated ${checked.duplicated}, unknown ${checked.foreign}`);
    const timed = await readWholeLog(t, false);
    reads.set(t, { checked, timed });
  }
  const figures = (t: Target) => ({
    append_single_eps: eps(single.get(t)!),
    append_batch_eps: eps(batch.get(t)!),
    read_all_eps: eps(reads.get(t)!.timed),
    read_all_events: reads.get(t)!.timed.events,
    log_events: t.committed.length,
    missed: reads.get(t)!.checked.missed,
    duplicated: reads.get(t)!.checked.duplicated,
  });
  return {
    ours: {
      ...figures(ours),
      raw_insert_eps: eps(raw),
      append_batch_vs_raw: Math.round((eps(batch.get(ours)!) / eps(raw)) * 1000) / 1000,
    },
    emmett: emmett ? figures(emmett) : undefined,
  };
}

async function benchServer() {
  const schema = await schemaOnServer('bench');
  const pool = serverPool(schema);
  cleanups.push(() => pool.end());
  const store = await PostgresEventStore.open(pool);
  const emmettSchema = await schemaOnServer('bench_emmett');
  const emmett = await openEmmett(emmettSchema);
  cleanups.push(() => emmett.close());
  const { ours, emmett: theirs } = await storeScenarios(aisocTarget('postgres', store, pool), pool, emmett.target);

  const rebuildSchema = await schemaOnServer('bench_rebuild');
  const rebuildPool = serverPool(rebuildSchema);
  await PostgresEventStore.open(rebuildPool);
  const logStats = await writeAlertLog(rebuildPool, REBUILD_EVENTS, 'postgres', 2);
  await rebuildPool.query('VACUUM ANALYZE es_events');
  await rebuildPool.end();
  log(`alert log (postgres): ${JSON.stringify(logStats)}`);
  const rebuilt = rebuildFigures(await runRebuildChild(['server', DATABASE_URL, rebuildSchema]), 'postgres');
  return {
    postgres: {
      append_single_eps: ours.append_single_eps,
      append_batch_eps: ours.append_batch_eps,
      raw_insert_eps: ours.raw_insert_eps,
      append_batch_vs_raw: ours.append_batch_vs_raw,
      read_all_eps: ours.read_all_eps,
      ...rebuilt,
      missed: ours.missed,
      duplicated: ours.duplicated,
      read_all_events: ours.read_all_events,
    },
    emmett: {
      append_single_eps: theirs!.append_single_eps,
      append_batch_eps: theirs!.append_batch_eps,
      read_all_eps: theirs!.read_all_eps,
      missed: theirs!.missed,
      duplicated: theirs!.duplicated,
      read_all_events: theirs!.read_all_events,
      read_method:
        'readMessagesBatch(pool.execute, { after, batchSize: 1000 }), the query postgreSQLEventStoreMessageBatchPuller (its consumers/processors) pages $all with, called back to back without the puller\'s sleep',
      version: await emmettVersion(),
    },
  };
}

async function benchPglite() {
  const dir = await tempDir('bench-pglite-');
  cleanups.push(() => dir.remove());
  const embedded = await openPglite(join(dir.path, 'store'));
  cleanups.push(() => embedded.close());
  const store = await PostgresEventStore.open(embedded.pool);
  const { ours } = await storeScenarios(aisocTarget('pglite', store, embedded.pool), embedded.pool, undefined);
  await embedded.close();
  cleanups.pop();

  // openRuntime opens PGlite at <AISOC_DATA_DIR>/pglite.
  const dataDir = join(dir.path, 'runtime');
  const rebuildDb = await openPglite(join(dataDir, 'pglite'));
  await PostgresEventStore.open(rebuildDb.pool);
  const logStats = await writeAlertLog(rebuildDb.pool, REBUILD_EVENTS, 'pglite', 1);
  await rebuildDb.pool.query('VACUUM ANALYZE es_events');
  await rebuildDb.close();
  log(`alert log (pglite): ${JSON.stringify(logStats)}`);
  const rebuilt = rebuildFigures(await runRebuildChild(['pglite', dataDir]), 'pglite');
  return {
    append_single_eps: ours.append_single_eps,
    append_batch_eps: ours.append_batch_eps,
    raw_insert_eps: ours.raw_insert_eps,
    append_batch_vs_raw: ours.append_batch_vs_raw,
    read_all_eps: ours.read_all_eps,
    ...rebuilt,
    missed: ours.missed,
    duplicated: ours.duplicated,
    read_all_events: ours.read_all_events,
  };
}

async function machine() {
  // @electric-sql/pglite resolves to <package>/dist/index.js.
  const pglitePackage = join(dirname(fileURLToPath(import.meta.resolve('@electric-sql/pglite'))), '..', 'package.json');
  const pglite = JSON.parse(await readFile(pglitePackage, 'utf8')) as { version: string };
  return { ...(await machineInfo()), pglite: pglite.version };
}

/** The 1-minute load average every 5 s: this machine has 2 cores, and anything else running shows here. */
function sampleLoad() {
  const samples: number[] = [];
  const timer = setInterval(() => samples.push(loadavg()[0]!), 5000);
  timer.unref();
  return () => {
    clearInterval(timer);
    const mean = samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length);
    return { mean: Math.round(mean * 100) / 100, max: Math.round(Math.max(0, ...samples) * 100) / 100 };
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const load = sampleLoad();
  ensureEmmettInstalled();
  const machineInfo = await machine();
  log(`machine: ${JSON.stringify(machineInfo)}`);
  // BENCH_PARTS=server or =pglite runs one half (for trying out a change); the result file then has null for the other.
  const parts = (process.env.BENCH_PARTS ?? 'server,pglite').split(',');
  const server = parts.includes('server') ? await benchServer() : { postgres: null, emmett: null };
  log(`postgres: ${JSON.stringify(server.postgres)}`);
  log(`emmett: ${JSON.stringify(server.emmett)}`);
  const pglite = parts.includes('pglite') ? await benchPglite() : null;
  log(`pglite: ${JSON.stringify(pglite)}`);
  const result = {
    postgres: server.postgres,
    pglite,
    emmett: server.emmett,
    machine: { ...machineInfo, loadavg_1m_during: load(), bench_seconds: Math.round((performance.now() - started) / 1000) },
    measured_at: new Date().toISOString(),
  };
  await mkdir(dirname(RESULT_FILE), { recursive: true });
  await writeFile(RESULT_FILE, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${RESULT_FILE} after ${Math.round((performance.now() - started) / 1000)} s`);
}

await runWithCleanup(main, cleanup, log);
