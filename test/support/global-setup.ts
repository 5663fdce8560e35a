import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    natsUrl: string;
    pgliteTemplate: string;
  }
}

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';
const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

async function postgresReachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function tcpReachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port || 4222), timeout: 2000 });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => { socket.destroy(); resolve(false); });
  });
}

/** initdb in WASM takes seconds: do it once per machine and let each test file copy the result. */
async function pgliteTemplate(): Promise<string> {
  const pkg = JSON.parse(await readFile('node_modules/@electric-sql/pglite/package.json', 'utf8')) as { version: string };
  const dir = join(tmpdir(), `aisoc-pglite-template-${pkg.version}`);
  if (await stat(join(dir, 'PG_VERSION')).then(() => true, () => false)) return dir;
  const building = `${dir}.${process.pid}`;
  await rm(building, { recursive: true, force: true });
  await mkdir(building, { recursive: true });
  const db = await PGlite.create(building);
  await db.query('SELECT 1');
  await db.close();
  await rename(building, dir).catch(async () => rm(building, { recursive: true, force: true }));
  return dir;
}

export default async function setup(project: TestProject): Promise<void> {
  const required = process.env.AISOC_REQUIRE_SERVICES === '1';
  const databaseUrl = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  const natsUrl = process.env.NATS_URL ?? DEFAULT_NATS_URL;
  const [hasPostgres, hasNats, template] = await Promise.all([
    postgresReachable(databaseUrl),
    tcpReachable(natsUrl),
    pgliteTemplate(),
  ]);
  const missing = [
    ...(hasPostgres ? [] : [`PostgreSQL at ${databaseUrl}`]),
    ...(hasNats ? [] : [`NATS at ${natsUrl}`]),
  ];
  if (missing.length > 0) {
    if (required) throw new Error(`AISOC_REQUIRE_SERVICES=1 but unreachable: ${missing.join(', ')}`);
    console.warn(`\n[aisoc] unreachable, tests that need it are skipped: ${missing.join(', ')}\n`);
  }
  project.provide('databaseUrl', hasPostgres ? databaseUrl : '');
  project.provide('natsUrl', hasNats ? natsUrl : '');
  project.provide('pgliteTemplate', template);
}
