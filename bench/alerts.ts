/**
 * The alerts benchmark: a real `aisoc serve` process on the Postgres server and NATS
 * JetStream, driven over HTTP.
 *
 *   npx tsx bench/alerts.ts          (writes bench/results/alerts.json)
 *
 * - submit: POST /api/v1/alerts/submit (OCSF/Okta events, examples/alerts/lateral-movement.json,
 *   a new source_ref each time so each call makes a new alert), 16 concurrent clients (autocannon).
 * - ingest: POST /api/v1/alerts in batches of 100 from 8 concurrent clients: the rate of 202s
 *   (`ingest_accept_aps`), and the rate from the first request until every one of those alerts
 *   is in the read model GET /api/v1/alerts reads (`ingest_visible_aps`: queue, fusion, projection).
 * - list: the read model filled up to 1,000,000 alerts, then GET /api/v1/alerts?limit=50 with a
 *   mix of filters, each query followed through next_cursor pages; p50 and p99 of every request.
 *
 * The server runs on a fresh schema (bench_alerts_<random>, dropped at the end) and a fresh NATS
 * namespace (its streams deleted at the end). Progress goes to stderr every 5 s.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { LOAD_SQL } from './alert-log.js';
import { adminQuery, DATABASE_URL, log, progress, machineInfo, runWithCleanup, serverPool, SEVERITIES, SOURCES, TECHNIQUES, TITLES } from './common.js';
import { STREAMING_FLAGS } from '../bin/streaming-flags.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = join(BENCH_DIR, '..');
const RESULT_FILE = join(BENCH_DIR, 'results', 'alerts.json');
const NATS_URL = process.env.BENCH_NATS_URL ?? process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

const SUBMIT_CONNECTIONS = Number(process.env.BENCH_SUBMIT_CONNECTIONS ?? 16);
const SUBMIT_DURATION_S = Number(process.env.BENCH_SUBMIT_DURATION_S ?? 20);
const INGEST_ALERTS = Number(process.env.BENCH_INGEST_ALERTS ?? 20_000);
const INGEST_BATCH = 100;
const INGEST_CONNECTIONS = 8;
const VISIBLE_LIMIT_S = Number(process.env.BENCH_VISIBLE_LIMIT_S ?? 600);
const READ_MODEL_ALERTS = Number(process.env.BENCH_READ_MODEL_ALERTS ?? 1_000_000);
const LOAD_LIMIT_S = Number(process.env.BENCH_LOAD_LIMIT_S ?? 1800);
const LIST_QUERIES = Number(process.env.BENCH_LIST_QUERIES ?? 1000);
const LIST_CONNECTIONS = 4;
const LIST_PAGES = 3;
const LIST_LIMIT = 50;
/** Share of the bulk-loaded alerts in the tenant the list queries run in (the rest in 7 others). */
const LIST_TENANT_SHARE = 0.8;

/** For trying a change out: some of submit,ingest,list (the result file then has null for the rest). */
const PARTS = (process.env.BENCH_ALERTS_PARTS ?? 'submit,ingest,list').split(',');

const RUN = randomBytes(4).toString('hex');
/**
 * BENCH_LIST_SCHEMA=<schema kept by BENCH_KEEP_SCHEMA=1>: the list part alone, again, on that
 * filled read model (no fill, the schema kept), with the token and assignees that run saved.
 */
const REUSED_SCHEMA = process.env.BENCH_LIST_SCHEMA;
const SCHEMA = REUSED_SCHEMA ?? `bench_alerts_${RUN}`;
const keptFile = (schema: string) => join(tmpdir(), `aisoc-bench-${schema}.json`);
const NAMESPACE = `benchal_${RUN}`;

const round = (n: number, digits = 0) => Number(n.toFixed(digits));

// ---------------------------------------------------------------------------------------------
// The server process.

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Server {
  child: ChildProcess;
  url: string;
  env: Record<string, string>;
}

/** Node flags for the server, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to see where its time goes. */
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);

async function startServer(mode: 'serve' | 'reader' = 'serve'): Promise<Server> {
  const port = await freePort();
  const env: Record<string, string> = {
    DATABASE_URL,
    AISOC_DB_SCHEMA: SCHEMA,
    NATS_URL,
    AISOC_NATS_NAMESPACE: NAMESPACE,
    PORT: String(port),
    HOST: '127.0.0.1',
    AISOC_LOG_LEVEL: 'warn',
    AISOC_RATE_LIMIT_USER: '1000000000',
    AISOC_RATE_LIMIT_API_KEY: '1000000000',
    AISOC_ACCESS_TOKEN_TTL_SECONDS: '86400',
    AISOC_DATA_DIR: join(tmpdir(), `aisoc-bench-${RUN}`),
    NODE_ENV: 'development',
  };
  const { DATABASE_URL: _d, NATS_URL: _n, EVENTSTORE_URL: _e, AISOC_DB_SCHEMA: _s, ...rest } = process.env;
  const args = mode === 'serve' ? [join(ROOT, 'bin', 'aisoc.js'), 'serve'] : ['--import', import.meta.resolve('tsx'), join(BENCH_DIR, 'alerts-reader.ts')];
  const child = spawn(process.execPath, [...SERVER_NODE_ARGS, ...args], { cwd: ROOT, env: { ...rest, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-20_000)));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-20_000)));
  // The server's own output, kept whole (BENCH_SERVER_LOG=<file>) when looking into a run.
  if (process.env.BENCH_SERVER_LOG) {
    const file = createWriteStream(process.env.BENCH_SERVER_LOG, { flags: 'a' });
    child.stdout!.on('data', (chunk: string) => file.write(chunk));
    child.stderr!.on('data', (chunk: string) => file.write(chunk));
  }
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${output}`);
    // The reader runs no projections, so it is never "ready" in /readyz's sense.
    const ready = await fetch(`${url}/${mode === 'serve' ? 'readyz' : 'healthz'}`).then((r) => r.status === 200, () => false);
    if (ready) break;
    if (Date.now() > deadline) throw new Error(`server not ready after 120 s:\n${output}`);
    await sleep(250);
  }
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM') log(`server exited (${code ?? signal}):\n${output.slice(-4000)}`);
  });
  return { child, url, env };
}

async function stopServer(server: Server): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = once(server.child, 'exit');
  server.child.kill('SIGTERM');
  await exited;
}

/** Peak resident set of a process (Linux: VmHWM), in MB. */
async function peakRssMb(pid: number): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return match ? Math.round(Number(match[1]) / 1024) : null;
}

/** CPU seconds (user + system) a process has used so far (Linux: /proc/<pid>/stat, 100 ticks a second). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// HTTP helpers.

async function call<T = any>(url: string, init: RequestInit & { expect?: number } = {}): Promise<T> {
  const response = await fetch(url, init);
  const text = await response.text();
  if (response.status !== (init.expect ?? 200)) throw new Error(`${init.method ?? 'GET'} ${url} answered ${response.status}: ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  '2xx': number;
  duration: number;
}
type Autocannon = (options: Record<string, unknown>, done: (error: Error | null, result: AutocannonResult) => void) => NodeJS.EventEmitter;

// ---------------------------------------------------------------------------------------------
// Scenarios.

const pick = <T>(values: readonly T[], n: number): T => values[n % values.length]!;

async function benchSubmit(base: string, apiKey: string, serverPid: number) {
  const { default: autocannon } = (await import('autocannon' as string)) as { default: Autocannon };
  const payload = JSON.parse(await readFile(join(ROOT, 'examples', 'alerts', 'lateral-movement.json'), 'utf8')) as { events: unknown[] };
  const events = JSON.stringify(payload.events);
  let n = 0;
  const run = (seconds: number, label: string) =>
    new Promise<{ result: AutocannonResult; seconds: number }>((resolve, reject) => {
      const meter = progress(label);
      const started = performance.now();
      const instance = autocannon(
        {
          url: `${base}/api/v1/alerts/submit`,
          connections: SUBMIT_CONNECTIONS,
          duration: seconds,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
          requests: [
            {
              method: 'POST',
              path: '/api/v1/alerts/submit',
              // A new source_ref each time: every call is a new alert.
              setupRequest: (request: Record<string, unknown>) => ({ ...request, body: `{"source_ref":"submit-${RUN}-${(n += 1)}","events":${events}}` }),
            },
          ],
        },
        (error, result) => {
          meter.stop();
          if (error) reject(error);
          else resolve({ result, seconds: (performance.now() - started) / 1000 });
        },
      );
      instance.on('response', () => meter.add(1));
    });
  await run(3, 'submit warm-up');
  const cpuBefore = await cpuSeconds(serverPid);
  const { result, seconds } = await run(SUBMIT_DURATION_S, `submit (${SUBMIT_CONNECTIONS} clients)`);
  const cpu = (await cpuSeconds(serverPid)) - cpuBefore;
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`submit: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return {
    submit_aps: round(result['2xx'] / seconds),
    submit_p50_ms: result.latency.p50,
    submit_p99_ms: result.latency.p99,
    /** The server process's CPU time per alert: less sensitive to the machine's other load than rates. */
    submit_server_cpu_ms_per_alert: round((cpu * 1000) / Math.max(1, result['2xx']), 2),
    submit_server_cpu_share: round(cpu / seconds, 2),
    submitted: n,
  };
}

function ingestAlert(n: number, runTag: string) {
  const user = `u${n}.${runTag}@acme.example`;
  return {
    source: pick(SOURCES, n),
    source_ref: `ingest-${runTag}-${n}`,
    title: pick(TITLES, n * 3),
    description: `${pick(TITLES, n * 3)} on WS-${String(n % 5000).padStart(4, '0')} by ${user}. The process tree and command line matched a detection rule.`,
    severity: pick(SEVERITIES, n * 11),
    occurred_at: new Date(Date.now() - (n % 3600) * 1000).toISOString(),
    // A principal entity of its own: every alert is a new one (nothing correlates into another).
    entities: [
      { type: 'user', value: user },
      { type: 'host', value: `WS-${String(n % 5000).padStart(4, '0')}` },
      { type: 'ip', value: `10.${n % 250}.${(n >> 8) % 250}.${(n >> 16) % 250}` },
    ],
    techniques: [pick(TECHNIQUES, n)],
    rule: `rule-${n % 300}`,
    raw: { sensor_id: randomBytes(6).toString('hex'), process: { name: 'powershell.exe', pid: 1000 + (n % 30000), cmdline: `powershell.exe -nop -enc ${randomBytes(24).toString('base64')}` } },
  };
}

async function benchIngest(base: string, apiKey: string, pool: pg.Pool, tenant: string, serverPid: number) {
  const batches = Math.ceil(INGEST_ALERTS / INGEST_BATCH);
  const bodies = Array.from({ length: batches }, (_, b) =>
    JSON.stringify({ alerts: Array.from({ length: Math.min(INGEST_BATCH, INGEST_ALERTS - b * INGEST_BATCH) }, (_, i) => ingestAlert(b * INGEST_BATCH + i, RUN)) }),
  );
  const countVisible = async () =>
    Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM alerts WHERE tenant_id = $1 AND source_ref LIKE $2`, [tenant, `ingest-${RUN}-%`])).rows[0]!.n);
  const since = new Date(Date.now() - 1000).toISOString();
  const meter = progress(`ingest ${INGEST_ALERTS.toLocaleString('en-US')} alerts, ${INGEST_BATCH} a request (${INGEST_CONNECTIONS} clients), accepted`);
  const cpuBefore = await cpuSeconds(serverPid);
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: INGEST_CONNECTIONS }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const answer = await call<{ accepted: number }>(`${base}/api/v1/alerts`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
          body,
          expect: 202,
        });
        meter.add(answer.accepted);
      }
    }),
  );
  const acceptSeconds = (performance.now() - started) / 1000;
  const acceptCpu = (await cpuSeconds(serverPid)) - cpuBefore;
  meter.stop();
  log(`ingest: ${INGEST_ALERTS} accepted in ${acceptSeconds.toFixed(1)} s; waiting for them in the read model`);
  const visibleMeter = progress('ingest, visible in the read model');
  let visible = 0;
  let visibleSeconds = 0;
  for (;;) {
    visible = await countVisible();
    visibleMeter.set(visible);
    visibleSeconds = (performance.now() - started) / 1000;
    if (visible >= INGEST_ALERTS || visibleSeconds > VISIBLE_LIMIT_S) break;
    await sleep(100);
  }
  visibleMeter.stop();
  const visibleCpu = (await cpuSeconds(serverPid)) - cpuBefore;
  // The same, through the API: page GET /alerts (since the run began) and find every one.
  let confirmed = 0;
  let cursor: string | null = null;
  do {
    const params = `since=${encodeURIComponent(since)}&limit=200${cursor ? `&cursor=${cursor}` : ''}`;
    const page: { items: { source_ref: string }[]; next_cursor: string | null } = await call(`${base}/api/v1/alerts?${params}`, { headers: { 'x-api-key': apiKey } });
    confirmed += page.items.filter((a) => a.source_ref.startsWith(`ingest-${RUN}-`)).length;
    cursor = page.next_cursor;
  } while (cursor);
  log(`ingest: ${visible} visible after ${visibleSeconds.toFixed(1)} s; ${confirmed} found paging GET /api/v1/alerts`);
  return {
    ingest_accept_aps: round(INGEST_ALERTS / acceptSeconds),
    ingest_visible_aps: visible >= INGEST_ALERTS ? round(INGEST_ALERTS / visibleSeconds) : null,
    ingest_alerts: INGEST_ALERTS,
    ingest_accept_seconds: round(acceptSeconds, 2),
    ingest_visible_seconds: round(visibleSeconds, 2),
    ingest_visible_completed: visible >= INGEST_ALERTS,
    ingest_accept_server_cpu_ms_per_alert: round((acceptCpu * 1000) / INGEST_ALERTS, 3),
    ingest_visible_server_cpu_ms_per_alert: round((visibleCpu * 1000) / Math.max(1, visible), 3),
    ingest_visible_found_via_api: confirmed,
  };
}

/**
 * Fills the read model up to `target` alerts: `alert.ingested` events (and, as in life, some
 * later status changes and assignments) appended to the log in bulk, with exactly the rows
 * `es_append` writes (bench/alert-log.ts explains why not one append per stream), and applied
 * by the server's own alerts projection as it would apply any other events.
 */
async function fillReadModel(pool: pg.Pool, target: number, tenant: string, assignees: string[]) {
  const existing = Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM alerts')).rows[0]!.n);
  const toLoad = Math.max(0, target - existing);
  const others = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark', 'wayne'];
  const chunk = 2000;
  const day0 = Date.now() - 90 * 86_400_000;
  const span = 90 * 86_400_000;
  const templates = Array.from({ length: 256 }, (_, n) => {
    const host = `WS-${String(n * 19 % 5000).padStart(4, '0')}`;
    const user = pick(['ana', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'], n * 7);
    return {
      host,
      user,
      data: (alertId: string, sourceRef: string, occurredAt: string, source: string) =>
        JSON.stringify({
          alert_id: alertId,
          source,
          source_ref: sourceRef,
          title: pick(TITLES, n * 3),
          description: `${pick(TITLES, n * 3)} on ${host} by ${user}. The process tree and command line matched a detection rule; see raw for the sensor's full record.`,
          severity: pick(SEVERITIES, n * 11),
          occurred_at: occurredAt,
          entities: [
            { type: 'host', value: host },
            { type: 'user', value: `${user}@example.com` },
            { type: 'ip', value: `10.${n % 250}.${(n * 7) % 250}.${(n * 13) % 250}` },
          ],
          techniques: [pick(TECHNIQUES, n), pick(TECHNIQUES, n * 5 + 1)].filter((t, i, all) => all.indexOf(t) === i),
          rule: `rule-${n % 300}`,
          correlation_key: `rule-${n % 300}|user:${user}@example.com`,
          raw: { sensor_id: randomBytes(8).toString('hex'), process: { name: 'powershell.exe', pid: 1000 + n, cmdline: `powershell.exe -nop -w hidden -enc ${randomBytes(48).toString('base64')}` } },
        }),
    };
  });
  log(`read model: ${existing} alerts; loading ${toLoad} more (${Math.round(LIST_TENANT_SHARE * 100)}% in tenant ${tenant})`);
  const meter = progress(`append ${toLoad.toLocaleString('en-US')} alerts' events in bulk`);
  let n = 0;
  let events = 0;
  // Each writer carries its own follow-ups into its next chunk: a follow-up written by the other
  // writer while the chunk creating its stream is still in flight would wait on it (and deadlock).
  const build = (owedIn: string[]) => {
    const parts: string[] = owedIn;
    const owed: string[] = [];
    while (parts.length < chunk && n < toLoad) {
      n += 1;
      const alertId = randomUUID();
      const stream = `alert-${alertId}`;
      const t = templates[n % templates.length]!;
      // Spread over 90 days, in log order (as alerts arrive), with a little jitter.
      const at = new Date(day0 + Math.floor((n / toLoad) * span) + (n % 7) * 13).toISOString();
      const tenantId = (n * 7919) % 1000 < LIST_TENANT_SHARE * 1000 ? tenant : pick(others, n);
      const meta = (type: string, id: string) =>
        `{"tenant_id":"${tenantId}","actor":{"type":"${type}","id":"${id}"},"correlation_id":"${randomUUID()}","causation_id":null,"request_id":"req-${RUN}-${n}","occurred_at":"${at}","schema_version":1}`;
      const source = pick(SOURCES, n * 3 + (n >> 4));
      parts.push(`{"stream":"${stream}","revision":0,"id":"${randomUUID()}","type":"alert.ingested","data":${t.data(alertId, `${source}:${RUN}:${n}`, at, source)},"meta":${meta('api_key', 'ingest')}}`);
      // Later in their lives: a sixth acknowledged, a tenth assigned (a follow-up transaction).
      let revision = 0;
      if (n % 6 === 0) {
        revision += 1;
        owed.push(`{"stream":"${stream}","revision":${revision},"id":"${randomUUID()}","type":"alert.status_changed","data":{"from":"new","to":"acknowledged"},"meta":${meta('user', assignees[0]!)}}`);
      }
      if (n % 10 === 0) {
        revision += 1;
        owed.push(`{"stream":"${stream}","revision":${revision},"id":"${randomUUID()}","type":"alert.assigned","data":{"assignee":"${pick(assignees, n >> 3)}","previous":null},"meta":${meta('user', assignees[0]!)}}`);
      }
    }
    return { parts, owed };
  };
  const writers = 2;
  await Promise.all(
    Array.from({ length: writers }, async () => {
      let owed: string[] = [];
      for (;;) {
        const built = build(owed);
        const parts = built.parts;
        owed = built.owed;
        if (parts.length === 0) return;
        const result = await pool.query(LOAD_SQL, [`[${parts.join(',')}]`]);
        if (result.rowCount !== parts.length) throw new Error(`load chunk wrote ${result.rowCount} of ${parts.length}`);
        events += parts.length;
        meter.add(parts.length);
      }
    }),
  );
  const appendSeconds = meter.stop();
  // The alerts projection builds the read model from the whole log: ProjectionDaemon.rebuild
  // ('alerts') in a process of its own (bench/rebuild-child.ts), which builds version 2 beside
  // the live one, creates its indexes once caught up, and switches readers to it.
  log('rebuilding the alerts read model over the whole log (bench/rebuild-child.ts)');
  const rebuild = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const child = spawn(process.execPath, [...STREAMING_FLAGS.projections, '--import', import.meta.resolve('tsx'), join(BENCH_DIR, 'rebuild-child.ts'), 'server', DATABASE_URL, SCHEMA], {
      cwd: ROOT,
      env: { ...process.env, BENCH_REBUILD_LIMIT_S: String(LOAD_LIMIT_S) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>) : reject(new Error(`rebuild child exited ${code}`))));
  });
  const completed = rebuild.completed === true;
  const projectSeconds = Number(rebuild.seconds);
  const total = Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM alerts')).rows[0]!.n);
  const inTenant = Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM alerts WHERE tenant_id = $1', [tenant])).rows[0]!.n);
  log(`read model: ${total} alerts (${inTenant} in ${tenant}); appended in ${appendSeconds.toFixed(0)} s, rebuilt in ${projectSeconds.toFixed(0)} s`);
  return {
    read_model_alerts: total,
    read_model_alerts_in_list_tenant: inTenant,
    read_model_fill:
      'bulk: alert events appended with the rows es_append writes (bench/alert-log.ts LOAD_SQL), then the alerts projection rebuilt over the whole log (ProjectionDaemon.rebuild, bench/rebuild-child.ts)',
    read_model_fill_events: events,
    read_model_fill_append_seconds: round(appendSeconds, 1),
    read_model_rebuild_seconds: round(projectSeconds, 1),
    read_model_rebuild_eps: round(Number(rebuild.applied ?? rebuild.events_applied) / projectSeconds),
    read_model_rebuild_rss_mb_peak: round(Number(rebuild.max_rss_mb)),
    read_model_fill_completed: completed,
  };
}

interface ListQuery {
  name: string;
  params: Record<string, string>;
}

function listQueries(assignees: string[]): ListQuery[] {
  const day = 86_400_000;
  const now = Date.now();
  const window = (fromDaysAgo: number, days: number) => ({
    since: new Date(now - fromDaysAgo * day).toISOString(),
    until: new Date(now - (fromDaysAgo - days) * day).toISOString(),
  });
  return [
    { name: 'newest', params: {} },
    { name: 'status=new', params: { status: 'new' } },
    { name: 'status=acknowledged', params: { status: 'acknowledged' } },
    { name: 'severity=critical', params: { severity: 'critical' } },
    { name: 'status=new&severity=high', params: { status: 'new', severity: 'high' } },
    { name: 'source', params: { source: 'crowdstrike' } },
    { name: 'technique', params: { technique: 'T1003.001' } },
    { name: 'technique&status', params: { technique: 'T1486', status: 'new' } },
    { name: 'text', params: { q: 'lateral movement' } },
    { name: 'text rare', params: { q: 'WS-0019' } },
    { name: 'last 24h', params: window(1, 1) },
    { name: 'one day, 30 days ago', params: window(30, 1) },
    { name: 'source&week', params: { source: 'defender', ...window(14, 7) } },
    { name: 'assignee', params: { assignee: assignees[1]! } },
    { name: 'assignee&status', params: { assignee: assignees[2]!, status: 'new' } },
    { name: 'severity&text', params: { severity: 'critical', q: 'credential dumping' } },
  ];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function benchList(base: string, token: string, assignees: string[]) {
  const queries = listQueries(assignees);
  const headers = { authorization: `Bearer ${token}` };
  const get = async (params: Record<string, string>) => {
    const started = performance.now();
    // encodeURIComponent, not URLSearchParams: '+' for a space is a reserved character to the validator.
    const query = Object.entries({ limit: String(LIST_LIMIT), ...params }).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
    const response = await fetch(`${base}/api/v1/alerts?${query}`, { headers });
    const text = await response.text();
    // Latency to the last byte; parsing the page is the client's own work, not the server's.
    const ms = performance.now() - started;
    const body = JSON.parse(text) as { items: unknown[]; next_cursor: string | null };
    if (response.status !== 200) throw new Error(`GET /alerts ${JSON.stringify(params)} answered ${response.status}: ${JSON.stringify(body)}`);
    return { ms, body };
  };
  // Warm up: each query once, all pages.
  for (const q of queries) {
    let page = await get(q.params);
    for (let p = 1; p < LIST_PAGES && page.body.next_cursor; p += 1) page = await get({ ...q.params, cursor: page.body.next_cursor });
  }
  const latencies: number[] = [];
  const byQuery = new Map<string, number[]>();
  const meter = progress(`list (${LIST_CONNECTIONS} clients, ${queries.length} filter mixes, up to ${LIST_PAGES} pages each)`);
  let next = 0;
  let emptyPages = 0;
  await Promise.all(
    Array.from({ length: LIST_CONNECTIONS }, async () => {
      while (next < LIST_QUERIES) {
        const q = queries[next++ % queries.length]!;
        let cursor: string | null = null;
        for (let p = 0; p < LIST_PAGES; p += 1) {
          const { ms, body } = await get(cursor ? { ...q.params, cursor } : q.params);
          latencies.push(ms);
          (byQuery.get(q.name) ?? byQuery.set(q.name, []).get(q.name)!).push(ms);
          if (body.items.length === 0) emptyPages += 1;
          meter.add(1);
          cursor = body.next_cursor;
          if (!cursor) break;
        }
      }
    }),
  );
  meter.stop();
  latencies.sort((a, b) => a - b);
  const perQuery = Object.fromEntries(
    [...byQuery].map(([name, ms]) => {
      ms.sort((a, b) => a - b);
      return [name, { p50_ms: round(percentile(ms, 50), 2), p99_ms: round(percentile(ms, 99), 2), requests: ms.length }];
    }),
  );
  return {
    list_p50_ms: round(percentile(latencies, 50), 2),
    list_p99_ms: round(percentile(latencies, 99), 2),
    list_requests: latencies.length,
    list_empty_pages: emptyPages,
    list_by_query: perQuery,
  };
}

// ---------------------------------------------------------------------------------------------

async function machine() {
  const nats = await fetch('http://127.0.0.1:8222/varz')
    .then((r) => r.json() as Promise<{ version?: string }>)
    .then((v) => v.version ?? null, () => null);
  return { ...(await machineInfo()), nats };
}

/** The 1-minute load average every 5 s: this machine is shared, and anything else running shows here. */
function sampleLoad() {
  const samples: number[] = [];
  const timer = setInterval(() => samples.push(loadavg()[0]!), 5000);
  timer.unref();
  return () => {
    clearInterval(timer);
    const mean = samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length);
    return { mean: round(mean, 2), max: round(Math.max(0, ...samples), 2) };
  };
}

let server: Server | undefined;
let cleaning: Promise<void> | undefined;
/** Once, however often called (a signal, then the main's own finally): every caller waits for it. */
function cleanup(): Promise<void> {
  cleaning ??= doCleanup();
  return cleaning;
}

async function doCleanup(): Promise<void> {
  if (server) await stopServer(server).catch(() => undefined);
  // BENCH_KEEP_SCHEMA=1 leaves the schema (for EXPLAIN on the filled read model); drop it by hand.
  if (process.env.BENCH_KEEP_SCHEMA === '1' || REUSED_SCHEMA) log(`kept schema ${SCHEMA}`);
  else await adminQuery(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`).catch((error: unknown) => log(`dropping ${SCHEMA}: ${String(error)}`));
  // The namespace's JetStream streams (ingest queue, event fan-out).
  try {
    const { connect } = await import('@nats-io/transport-node');
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: NATS_URL });
    const jsm = await jetstreamManager(nc);
    for await (const info of jsm.streams.list()) {
      if (info.config.name.startsWith(NAMESPACE.toUpperCase())) await jsm.streams.delete(info.config.name);
    }
    await nc.close();
  } catch (error) {
    log(`deleting the NATS streams of ${NAMESPACE}: ${String(error)}`);
  }
}

/** A fresh schema and a serve process on it: the admin's token, an API key for writes, list assignees. */
async function signIn() {
  await adminQuery(`CREATE SCHEMA ${SCHEMA}`);
  server = await startServer();
  const base = server.url;
  const { access_token } = await call<{ access_token: string }>(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@aisoc.local', password: 'changeme' }),
  });
  const bearer = { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' };
  const me = await call<{ id: string; tenant_id: string }>(`${base}/api/v1/users/me`, { headers: bearer });
  const { key } = await call<{ key: string }>(`${base}/api/v1/api-keys`, {
    method: 'POST',
    headers: bearer,
    body: JSON.stringify({ name: 'bench ingest', permissions: ['alerts:write', 'alerts:read'] }),
    expect: 201,
  });
  return { access_token, key, tenant_id: me.tenant_id, assignees: [me.id, ...Array.from({ length: 7 }, () => randomUUID())] };
}

async function main(): Promise<void> {
  const started = performance.now();
  const load = sampleLoad();
  const machineInfo = await machine();
  log(`machine: ${JSON.stringify(machineInfo)}`);
  log(`schema ${SCHEMA}, NATS namespace ${NAMESPACE}`);
  const pool = serverPool(SCHEMA, 4);
  try {
    const { access_token, key, tenant_id, assignees } = REUSED_SCHEMA
      ? (JSON.parse(await readFile(keptFile(REUSED_SCHEMA), 'utf8')) as { access_token: string; key: string; tenant_id: string; assignees: string[] })
      : await signIn();
    if (process.env.BENCH_KEEP_SCHEMA === '1') await writeFile(keptFile(SCHEMA), JSON.stringify({ access_token, key, tenant_id, assignees }));

    const submitted = server && PARTS.includes('submit') ? await benchSubmit(server.url, key, server.child.pid!) : null;
    log(`submit: ${JSON.stringify(submitted)}`);
    const ingested = server && PARTS.includes('ingest') ? await benchIngest(server.url, key, pool, tenant_id, server.child.pid!) : null;
    log(`ingest: ${JSON.stringify(ingested)}`);
    // The serve process's peak, over submit and ingest.
    const rss = server ? await peakRssMb(server.child.pid!) : null;
    let filled = null;
    let listed: (Awaited<ReturnType<typeof benchList>> & { list_server_cpu_ms_per_request?: number }) | null = null;
    let readerRss = null;
    if (PARTS.includes('list')) {
      if (server) {
        await stopServer(server);
        filled = await fillReadModel(pool, READ_MODEL_ALERTS, tenant_id, assignees);
      }
      // What autovacuum does after a bulk load, done now rather than whenever it gets to it: it
      // would otherwise work through the 1.2 million appended events while the lists run.
      const physical = (await pool.query<{ t: string }>(`SELECT 'alerts_v' || version AS t FROM projections WHERE name = 'alerts' AND status = 'live'`)).rows[0]!.t;
      await pool.query(`VACUUM ANALYZE ${physical}, es_events, es_streams`);
      server = await startServer('reader');
      // The access token from the serve process: its session is in the read model already.
      const cpuBefore = await cpuSeconds(server.child.pid!);
      listed = await benchList(server.url, access_token, assignees);
      listed = { ...listed, list_server_cpu_ms_per_request: round((((await cpuSeconds(server.child.pid!)) - cpuBefore) * 1000) / listed.list_requests, 2) };
      readerRss = await peakRssMb(server.child.pid!);
    }
    log(`list: ${JSON.stringify(listed)}`);

    const result = {
      submit_aps: submitted?.submit_aps ?? null,
      ingest_accept_aps: ingested?.ingest_accept_aps ?? null,
      ingest_visible_aps: ingested?.ingest_visible_aps ?? null,
      list_p50_ms: listed?.list_p50_ms ?? null,
      list_p99_ms: listed?.list_p99_ms ?? null,
      rss_mb_peak: rss,
      rss_mb_peak_reader: readerRss,
      floors: { submit_aps: '>= 1000', ingest_accept_aps: '>= 10000', ingest_visible_aps: '>= 5000', list_p99_ms: '<= 25' },
      submit: { ...submitted, connections: SUBMIT_CONNECTIONS, duration_s: SUBMIT_DURATION_S, payload: 'examples/alerts/lateral-movement.json (19 Okta events), a new source_ref each call' },
      ingest: { ...ingested, batch: INGEST_BATCH, connections: INGEST_CONNECTIONS, queue: 'NATS JetStream' },
      read_model: filled,
      list: { ...listed, connections: LIST_CONNECTIONS, limit: LIST_LIMIT, pages_per_query: LIST_PAGES, queries: LIST_QUERIES, principal: 'user (bearer JWT)', filters: listQueries(assignees).map((q) => q.name) },
      server: {
        process: 'node bin/aisoc.js serve (submit, ingest; rss_mb_peak); bench/alerts-reader.ts, the same app with no projections running (list; rss_mb_peak_reader)',
        database: 'postgres server',
        queue: 'NATS JetStream',
        log_level: server?.env.AISOC_LOG_LEVEL,
        auth_for_writes: 'API key (X-API-Key)',
      },
      machine: { ...machineInfo, loadavg_1m_during: load(), loadavg_at_end: loadavg().map((l) => round(l, 2)), bench_seconds: round((performance.now() - started) / 1000) },
      measured_at: new Date().toISOString(),
    };
    await mkdir(dirname(RESULT_FILE), { recursive: true });
    await writeFile(RESULT_FILE, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
    log(`wrote ${RESULT_FILE} after ${round((performance.now() - started) / 1000)} s`);
  } finally {
    await pool.end();
  }
}

await runWithCleanup(main, cleanup, log);
