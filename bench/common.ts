/**
 * Shared pieces of the event store benchmark: realistic alert events, database openers
 * (a fresh schema on the Postgres server, a fresh PGlite data directory), progress lines.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { createPgConfig } from '@electric-sql/pglite/node-postgres';
import pg from 'pg';
import type { EventData, JsonObject } from '../eventstore/port.js';

export const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

// ---------------------------------------------------------------------------------------------
// Events: what an EDR/SIEM alert looks like when it reaches AiSOC (about 1.2 KB of JSON).

export const SOURCES = ['crowdstrike', 'sentinelone', 'defender', 'splunk', 'elastic', 'okta', 'guardduty'] as const;
export const SEVERITIES = ['informational', 'low', 'medium', 'high', 'critical'] as const;
export const TECHNIQUES = ['T1059.001', 'T1003.001', 'T1566.001', 'T1078', 'T1021.001', 'T1486', 'T1047', 'T1105', 'T1055', 'T1218.011'];
export const TITLES = [
  'Suspicious PowerShell encoded command',
  'Credential dumping via LSASS access',
  'Phishing attachment opened by user',
  'Impossible travel sign-in',
  'Lateral movement over RDP',
  'Ransomware-like file renames',
  'WMI remote process creation',
  'Tool transfer from rare external domain',
];
const TENANTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark', 'wayne', 'tyrell'];
const USERS = ['ana', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'];

let counter = 0;
const pick = <T>(values: readonly T[], n: number): T => values[n % values.length]!;

/** Metadata as the command handler writes it. */
export function metadataFor(tenant: string, at: Date): JsonObject {
  return {
    tenant_id: tenant,
    actor: { type: 'api_key', id: `ingest-${tenant}` },
    correlation_id: randomUUID(),
    causation_id: null,
    request_id: `req-${randomBytes(8).toString('hex')}`,
    occurred_at: at.toISOString(),
    schema_version: 1,
  };
}

export interface AlertSeed {
  alertId: string;
  tenant: string;
}

/** An `alert.ingested` event with a realistic payload; valid against the domain schema. */
export function alertIngested(seed: AlertSeed = { alertId: randomUUID(), tenant: pick(TENANTS, counter) }): EventData {
  const n = (counter += 1);
  const at = new Date(Date.UTC(2026, 10, 1) + n * 997);
  const host = `WS-${String(n % 5000).padStart(4, '0')}`;
  const user = pick(USERS, n * 7);
  const source = pick(SOURCES, n);
  return {
    id: randomUUID(),
    type: 'alert.ingested',
    data: {
      alert_id: seed.alertId,
      source,
      source_ref: `${source}:${randomBytes(12).toString('hex')}`,
      title: pick(TITLES, n * 3),
      description: `${pick(TITLES, n * 3)} on ${host} by ${user}. The process tree and command line matched a detection rule; see raw for the sensor's full record.`,
      severity: pick(SEVERITIES, n * 11),
      occurred_at: at.toISOString(),
      entities: [
        { type: 'host', value: host },
        { type: 'user', value: `${user}@${seed.tenant}.example` },
        { type: 'ip', value: `10.${n % 250}.${(n >> 8) % 250}.${(n >> 16) % 250}` },
        { type: 'hash', value: randomBytes(32).toString('hex') },
      ],
      techniques: [pick(TECHNIQUES, n), pick(TECHNIQUES, n * 5 + 1)].filter((t, i, all) => all.indexOf(t) === i),
      rule: `rule-${n % 300}`,
      correlation_key: `${host}:${pick(TECHNIQUES, n)}`,
      raw: {
        sensor_id: randomBytes(8).toString('hex'),
        process: { name: 'powershell.exe', pid: 1000 + (n % 30000), ppid: 400 + (n % 700), cmdline: `powershell.exe -nop -w hidden -enc ${randomBytes(48).toString('base64')}` },
        parent: { name: 'winword.exe', path: 'C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE' },
        network: { remote_ip: `203.0.113.${n % 250}`, remote_port: 443, direction: 'outbound' },
        confidence: (n % 100) / 100,
      },
    },
    metadata: metadataFor(seed.tenant, at),
  };
}

export function alertStatusChanged(tenant: string, from: string, to: string): EventData {
  return { id: randomUUID(), type: 'alert.status_changed', data: { from, to }, metadata: metadataFor(tenant, new Date()) };
}

export function alertAssigned(tenant: string, assignee: string | null, previous: string | null): EventData {
  return { id: randomUUID(), type: 'alert.assigned', data: { assignee, previous }, metadata: metadataFor(tenant, new Date()) };
}

export const tenantOf = (n: number) => pick(TENANTS, n);
export const userOf = (n: number) => pick(USERS, n);

// ---------------------------------------------------------------------------------------------
// Databases.

export async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

export const newSchemaName = (prefix = 'bench') => `${prefix}_${randomBytes(5).toString('hex')}`;

export function serverPool(schema: string, max = 20): pg.Pool {
  // The same options as src/lib/database.ts uses for a server.
  const pool = new pg.Pool({
    connectionString: DATABASE_URL,
    max,
    options: `-c idle_in_transaction_session_timeout=60s -c search_path=${schema}`,
  });
  pool.on('error', () => undefined);
  return pool;
}

export interface Embedded {
  pglite: PGlite;
  pool: pg.Pool;
  close(): Promise<void>;
}

/** PGlite behind its node-postgres adapter, as src/lib/database.ts opens it. */
export async function openPglite(dataDir: string): Promise<Embedded> {
  await mkdir(dataDir, { recursive: true });
  const pglite = await PGlite.create(dataDir);
  const pool = new pg.Pool(createPgConfig(pglite));
  return {
    pglite,
    pool,
    async close() {
      await pool.end();
      await pglite.close();
    },
  };
}

export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------------------------------------
// Progress and timing.

/** A line to stderr every `everyMs` while a long scenario runs. */
export function progress(scenario: string, everyMs = 5000) {
  const started = performance.now();
  let count = 0;
  const line = () => {
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(`[bench] ${scenario}: ${count.toLocaleString('en-US')} events, ${Math.round(count / seconds).toLocaleString('en-US')} ev/s, ${seconds.toFixed(0)} s\n`);
  };
  const timer = setInterval(line, everyMs);
  return {
    add(n: number) {
      count += n;
    },
    set(n: number) {
      count = n;
    },
    get count() {
      return count;
    },
    stop() {
      clearInterval(timer);
      return (performance.now() - started) / 1000;
    },
  };
}

export const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

/** Runs a bench's main, cleaning up after it, also when interrupted (SIGINT, SIGTERM). */
export async function runWithCleanup(main: () => Promise<void>, cleanup: () => Promise<void>, log: (line: string) => void): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  try {
    await main();
  } finally {
    await cleanup();
  }
}

/** The machine a bench ran on: hardware, versions and PostgreSQL's settings that bear on it. */
export async function machineInfo() {
  const admin = serverPool('public', 1);
  const { rows } = await admin.query<{ version: string; shared_buffers: string; synchronous_commit: string }>(
    `SELECT current_setting('server_version') AS version, current_setting('shared_buffers') AS shared_buffers, current_setting('synchronous_commit') AS synchronous_commit`,
  );
  await admin.end();
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memory_gb: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()}`,
    node: process.version,
    postgres: rows[0]!.version,
    postgres_shared_buffers: rows[0]!.shared_buffers,
    postgres_synchronous_commit: rows[0]!.synchronous_commit,
    loadavg_at_start: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}
