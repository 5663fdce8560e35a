/**
 * Runs `ProjectionDaemon.rebuild('alerts')` in a process of its own, so that the peak RSS it
 * reports is the rebuild's. Started by bench/eventstore.ts:
 *
 *   node --import tsx bench/rebuild-child.ts server <DATABASE_URL> <schema>
 *   node --import tsx bench/rebuild-child.ts pglite <data dir holding pglite/>
 *
 * The runtime is opened the way the CLI opens it (openRuntime, projections not run here), and
 * the parent starts it with the V8 flags `aisoc projections` runs with (bin/streaming-flags.js).
 * Before timing, the live version 1 is marked as having reached the head of the log (its
 * tables stay empty): `rebuild()` switches once the new version has caught up with the live
 * one, so without a live checkpoint it would switch at once, having built nothing. What is
 * timed is version 2 built from the start of the log to the head, then the switch.
 * Writes one JSON line to stdout; progress goes to stderr every 5 s.
 *
 * BENCH_REBUILD_LIMIT_S (seconds, 0 = none) stops a rebuild that has not finished by then and
 * reports what it had committed: `completed: false` and the real number of events applied.
 */
import { sql } from 'kysely';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/lib/logger.js';
import { openRuntime } from '../src/runtime.js';

const [kind, first, second] = process.argv.slice(2);
const env: Record<string, string> = { AISOC_LOG_LEVEL: 'silent' };
if (kind === 'server' && first && second) Object.assign(env, { DATABASE_URL: first, AISOC_DB_SCHEMA: second });
else if (kind === 'pglite' && first) env.AISOC_DATA_DIR = first;
else throw new Error('usage: rebuild-child.ts server <url> <schema> | pglite <dataDir>');

const label = kind === 'server' ? 'postgres' : 'pglite';
const rssBeforeOpenMb = process.memoryUsage.rss() / 2 ** 20;
const runtime = await openRuntime(loadConfig(env), silentLogger(), { runProjections: false });
const db = runtime.database.db;
// The head of the log by the (epoch, txid, seq) order itself, in the adapter's position format
// (6/20/19 zero-padded digits): the store's own headPosition() is compared with it, not trusted.
const last = await sql<{ epoch: number; txid: string; seq: string }>`
  SELECT e.epoch, e.txid::text AS txid, e.seq::text AS seq FROM es_events e ORDER BY e.epoch DESC, e.txid DESC, e.seq DESC LIMIT 1`
  .execute(db)
  .then((r) => r.rows[0]);
const head = last
  ? `${String(last.epoch).padStart(6, '0')}.${last.txid.padStart(20, '0')}.${last.seq.padStart(19, '0')}`
  : undefined;
const storeHead = await runtime.store.headPosition();
const { count } = await sql<{ count: string }>`SELECT count(*)::text AS count FROM es_events`.execute(db).then((r) => r.rows[0]!);
await db
  .updateTable('projections')
  .set({ position: head ?? null, events_applied: count })
  .where('name', '=', 'alerts')
  .where('status', '=', 'live')
  .execute();
const rssBeforeRebuildMb = process.memoryUsage.rss() / 2 ** 20;

const started = performance.now();
let applied = 0;
let peakSampledMb = rssBeforeRebuildMb;
const sampler = setInterval(() => {
  peakSampledMb = Math.max(peakSampledMb, process.memoryUsage.rss() / 2 ** 20);
}, 250);
const ticker = setInterval(() => {
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(
    `[bench] rebuild alerts (${label}): ${applied.toLocaleString('en-US')} events, ${Math.round(applied / seconds).toLocaleString('en-US')} ev/s, ${seconds.toFixed(0)} s, rss ${Math.round(process.memoryUsage.rss() / 2 ** 20)} MB\n`,
  );
}, 5000);
const limitSeconds = Number(process.env.BENCH_REBUILD_LIMIT_S ?? 0);
const rebuilding = runtime.daemon.rebuild('alerts', (p) => {
  applied = p.applied;
});
const outcome = await Promise.race([
  rebuilding.then(() => 'done' as const),
  ...(limitSeconds > 0 ? [new Promise<'limit'>((resolve) => setTimeout(resolve, limitSeconds * 1000, 'limit').unref())] : []),
]);
const seconds = (performance.now() - started) / 1000;
clearInterval(ticker);
clearInterval(sampler);
if (outcome === 'limit') {
  // Committed progress of the version being built; the batch in flight is not counted.
  const building = await db
    .selectFrom('projections')
    .select(['events_applied'])
    .where('name', '=', 'alerts')
    .where('status', '=', 'building')
    .executeTakeFirst();
  process.stdout.write(
    `${JSON.stringify({
      completed: false,
      seconds,
      applied: Number(building?.events_applied ?? applied),
      log_events: Number(count),
      events_applied: Number(building?.events_applied ?? applied),
      reached_head: false,
      store_head_position_correct: storeHead === head,
      rows: null,
      rss_before_open_mb: rssBeforeOpenMb,
      rss_before_rebuild_mb: rssBeforeRebuildMb,
      rss_sampled_peak_mb: peakSampledMb,
      max_rss_mb: process.resourceUsage().maxRSS / 1024,
    })}\n`,
    () => process.exit(0),
  );
  await new Promise(() => undefined);
}
const result = await rebuilding;
const rows = await sql<{ count: string }>`SELECT count(*)::text AS count FROM alerts`.execute(db).then((r) => Number(r.rows[0]!.count));
const live = await db.selectFrom('projections').select(['version', 'events_applied', 'position']).where('name', '=', 'alerts').where('status', '=', 'live').executeTakeFirstOrThrow();
await runtime.close();
process.stdout.write(
  `${JSON.stringify({
    completed: true,
    seconds,
    applied: result.applied,
    expected: result.expected,
    log_events: Number(count),
    version: live.version,
    events_applied: Number(live.events_applied),
    reached_head: live.position === (head ?? null) || (head !== undefined && live.position !== null && live.position >= head),
    store_head_position_correct: storeHead === head,
    rows,
    rss_before_open_mb: rssBeforeOpenMb,
    rss_before_rebuild_mb: rssBeforeRebuildMb,
    rss_sampled_peak_mb: peakSampledMb,
    max_rss_mb: process.resourceUsage().maxRSS / 1024,
  })}\n`,
);
