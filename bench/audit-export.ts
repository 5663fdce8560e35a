/**
 * The audit export benchmark: `audit export` over a 1,000,000-event log on the PostgreSQL
 * server, in a process of its own, with its peak RSS.
 *
 *   npx tsx bench/audit-export.ts            (writes bench/results/audit-export.json)
 *
 * 1. A fresh schema (bench_audit_<random>) is filled through `appendToStream`, 1,000 events per
 *    append by 4 concurrent writers: realistic `alert.ingested` events (bench/common.ts, about
 *    1.35 KB of JSON each, 8 tenants). They go to streams of their own category (`load-…`), as
 *    in the event store benchmark: 1,000 ingested alerts in one `alert-<id>` stream would be a
 *    log the domain could not have written, and the export reads events, not aggregates.
 * 2. A child process (this file, `child export`) opens the runtime as the CLI does, projections
 *    not run there, and runs the `audit.export` operation (the CLI's code path) over the whole
 *    log, no filter: every event is read, canonicalised, hashed and written. It reports its
 *    time and `process.resourceUsage().maxRSS`.
 * 3. A second child (`child verify`) runs `audit.verify` on the file: a check that the export
 *    is whole at this size, and the verify rate.
 * The schema and the export file are removed at the end. Progress goes to stderr every 5 s.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EventData } from '../eventstore/port.js';
import { PostgresEventStore } from '../eventstore/postgres/store.js';
import { STREAMING_FLAGS } from '../bin/streaming-flags.js';
import { adminQuery, alertIngested, DATABASE_URL, log, newSchemaName, progress, serverPool, tempDir } from './common.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const RESULT_FILE = join(BENCH_DIR, 'results', 'audit-export.json');
const EVENTS = Number(process.env.BENCH_AUDIT_EVENTS ?? 1_000_000);
const BATCH = 1000;
const WRITERS = 4;

interface ChildReport {
  count: number;
  seconds: number;
  max_rss_mb: number;
  /** After the runtime is open, before the operation: what loading the code under tsx costs. */
  rss_before_mb: number;
  ok?: boolean;
  message?: string;
}

// ---------------------------------------------------------------------------------------------
// The child: one operation, as the CLI runs it, in a process whose peak RSS is its own.

async function child(operation: 'export' | 'verify', schema: string, file: string): Promise<void> {
  const [{ loadConfig }, { silentLogger }, { openRuntime }, { localOperations }] = await Promise.all([
    import('../src/config.js'),
    import('../src/lib/logger.js'),
    import('../src/runtime.js'),
    import('../src/cli/operations.js'),
  ]);
  const runtime = await openRuntime(loadConfig({ DATABASE_URL, AISOC_DB_SCHEMA: schema, AISOC_LOG_LEVEL: 'silent' }), silentLogger(), { runProjections: false });
  const run = localOperations(runtime);
  const rssBefore = process.memoryUsage.rss() / 2 ** 20;
  const started = performance.now();
  let done = 0;
  const ticker = setInterval(() => {
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(
      `[bench] audit ${operation}: ${done.toLocaleString('en-US')} events, ${Math.round(done / seconds).toLocaleString('en-US')} ev/s, ${seconds.toFixed(0)} s, rss ${Math.round(process.memoryUsage.rss() / 2 ** 20)} MB\n`,
    );
  }, 5000);
  let report: ChildReport;
  if (operation === 'export') {
    const result = await run('audit.export', { out: file }, (p) => (done = p.events));
    report = { count: result.count, seconds: (performance.now() - started) / 1000, max_rss_mb: 0, rss_before_mb: rssBefore };
  } else {
    const result = await run('audit.verify', { file }, (p) => (done = p.events));
    report = { count: result.ok ? result.count : done, seconds: (performance.now() - started) / 1000, max_rss_mb: 0, rss_before_mb: rssBefore, ok: result.ok, message: result.message };
  }
  clearInterval(ticker);
  await runtime.close();
  report.max_rss_mb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

function runChild(operation: 'export' | 'verify', schema: string, file: string): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    // The flags the CLI runs its audit commands with (bin/aisoc.js).
    const proc = spawn(process.execPath, [...STREAMING_FLAGS.audit, '--import', import.meta.resolve('tsx'), fileURLToPath(import.meta.url), 'child', operation, schema, file], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    proc.once('error', reject);
    proc.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`audit ${operation} child exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1)!) as ChildReport);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The parent: fill, measure, clean up.

/** A few hundred realistic payloads, re-used with fresh ids: generating 1M costs more than appending them. */
const TEMPLATES = Array.from({ length: 512 }, () => alertIngested());
let nextTemplate = 0;
const batch = (size: number): EventData[] =>
  Array.from({ length: size }, () => {
    const t = TEMPLATES[(nextTemplate += 1) % TEMPLATES.length]!;
    return { id: randomUUID(), type: t.type, data: t.data, metadata: t.metadata };
  });

async function fill(store: PostgresEventStore, total: number): Promise<number> {
  const meter = progress(`append ${total.toLocaleString('en-US')} events`);
  let left = total;
  await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      while (left > 0) {
        const size = Math.min(BATCH, left);
        left -= size;
        await store.appendToStream(`load-${randomUUID()}`, batch(size), { expectedRevision: 'no_stream' });
        meter.add(size);
      }
    }),
  );
  const seconds = meter.stop();
  return Math.round(total / seconds);
}

async function main(): Promise<void> {
  const loadAtStart = loadavg().map((l) => Math.round(l * 100) / 100);
  const schema = newSchemaName('bench_audit');
  const dir = await tempDir('aisoc-audit-bench-');
  const file = join(dir.path, 'audit.jsonl');
  await adminQuery(`CREATE SCHEMA ${schema}`);
  try {
    const pool = serverPool(schema);
    const store = await PostgresEventStore.open(pool);
    const appendEps = await fill(store, EVENTS);
    await pool.query('VACUUM ANALYZE es_events');
    await store.close();
    await pool.end();

    log(`export ${EVENTS.toLocaleString('en-US')} events in a child process`);
    const exported = await runChild('export', schema, file);
    if (exported.count !== EVENTS) throw new Error(`the export wrote ${exported.count} events, not ${EVENTS}`);
    const fileMb = (await stat(file)).size / 2 ** 20;
    log(`export: ${exported.count} events in ${exported.seconds.toFixed(1)} s, ${fileMb.toFixed(0)} MB, peak RSS ${exported.max_rss_mb.toFixed(0)} MB`);

    log('verify the export in a child process');
    const verified = await runChild('verify', schema, file);
    if (!verified.ok) throw new Error(`the export does not verify: ${verified.message}`);
    log(`verify: ${verified.count} events in ${verified.seconds.toFixed(1)} s, peak RSS ${verified.max_rss_mb.toFixed(0)} MB`);

    const result = {
      audit_export_eps: Math.round(exported.count / exported.seconds),
      audit_export_rss_mb: Math.round(exported.max_rss_mb),
      events: exported.count,
      measured_at: new Date().toISOString(),
      audit_export_rss_before_export_mb: Math.round(exported.rss_before_mb),
      audit_export_seconds: Math.round(exported.seconds * 10) / 10,
      audit_export_file_mb: Math.round(fileMb),
      audit_verify_eps: Math.round(verified.count / verified.seconds),
      audit_verify_rss_mb: Math.round(verified.max_rss_mb),
      append_eps: appendEps,
      method:
        'PostgreSQL server; log filled by appendToStream, 1,000 realistic alert.ingested events (~1.35 KB JSON) per append, 4 writers; ' +
        'export = the audit.export operation (whole log, no filter) in a child process opened as the CLI opens the runtime; ' +
        "rss = that child's process.resourceUsage().maxRSS; rss_before_export = its RSS with the runtime open (tsx + the application's modules), before the export starts",
      machine: { cores: cpus().length, loadavg_at_start: loadAtStart },
    };
    await mkdir(dirname(RESULT_FILE), { recursive: true });
    await writeFile(RESULT_FILE, `${JSON.stringify(result, null, 2)}\n`);
    log(`wrote ${RESULT_FILE}`);
    // The API platform's figures (issue 3) carry the export's two headline numbers too.
    const platformFile = join(BENCH_DIR, 'results', 'api-platform.json');
    const platform = JSON.parse(await readFile(platformFile, 'utf8').catch(() => '{}')) as Record<string, unknown>;
    await writeFile(platformFile, `${JSON.stringify({ ...platform, audit_export_eps: result.audit_export_eps, audit_export_rss_mb: result.audit_export_rss_mb, audit_export_events: result.events }, null, 2)}\n`);
  } finally {
    await dir.remove();
    await adminQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  }
}

const [mode, operation, schema, file] = process.argv.slice(2);
if (mode === 'child') {
  if ((operation !== 'export' && operation !== 'verify') || !schema || !file) throw new Error('usage: audit-export.ts child export|verify <schema> <file>');
  await child(operation, schema, file);
} else {
  await main();
}
