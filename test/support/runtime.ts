import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/lib/logger.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { databaseUrl } from './databases.js';

export type RuntimeKind = 'embedded' | 'server';

export interface TestRuntime {
  runtime: Runtime;
  env: Record<string, string>;
  /** Opens another runtime on the same database: a second process, or a restart. */
  reopen(options?: { runProjections?: boolean }): Promise<Runtime>;
  cleanup(): Promise<void>;
}

/** An embedded data directory with PGlite already initialised (initdb is slow in WASM). */
export async function freshDataDir(): Promise<string> {
  const dataDir = await mkdtemp(join(tmpdir(), 'aisoc-data-'));
  await cp(inject('pgliteTemplate'), join(dataDir, 'pglite'), { recursive: true });
  return dataDir;
}

export async function createSchema(): Promise<string> {
  const schema = `rt_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  return schema;
}

export async function dropSchema(schema: string): Promise<void> {
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
}

export async function testRuntime(kind: RuntimeKind, extraEnv: Record<string, string> = {}): Promise<TestRuntime> {
  const env: Record<string, string> = {
    AISOC_LOG_LEVEL: 'silent',
    AISOC_POLL_INTERVAL_MS: '10',
    // Its own NATS streams and subjects, so test files sharing the NATS server stay apart.
    AISOC_NATS_NAMESPACE: `t${randomBytes(5).toString('hex')}`,
    ...extraEnv,
  };
  let dispose: () => Promise<void>;
  if (kind === 'embedded') {
    const dataDir = await freshDataDir();
    env.AISOC_DATA_DIR = dataDir;
    dispose = () => rm(dataDir, { recursive: true, force: true });
  } else {
    const schema = await createSchema();
    Object.assign(env, { DATABASE_URL: databaseUrl, AISOC_DB_SCHEMA: schema });
    dispose = () => dropSchema(schema);
  }
  const open = (runProjections = true) => openRuntime(loadConfig(env), silentLogger(), { runProjections });
  const opened: Runtime[] = [];
  const runtime = await open();
  opened.push(runtime);
  return {
    runtime,
    env,
    async reopen(options = {}) {
      const another = await open(options.runProjections ?? true);
      opened.push(another);
      return another;
    },
    async cleanup() {
      for (const r of opened) await r.close().catch(() => undefined);
      await dispose();
    },
  };
}
