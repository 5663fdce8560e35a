import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { createPgConfig } from '@electric-sql/pglite/node-postgres';
import pg from 'pg';
import { inject } from 'vitest';

export const databaseUrl = inject('databaseUrl');
export const natsUrl = inject('natsUrl');
export const hasPostgres = databaseUrl !== '';
export const hasNats = natsUrl !== '';

export interface TestDatabase {
  pool: pg.Pool;
  /** The Postgres schema (server) or data directory (PGlite) this database lives in. */
  where: string;
  /** Another pool on the same database, for tests that want a second process' view. */
  newPool(): pg.Pool;
  drop(): Promise<void>;
}

/** A schema of its own on the shared Postgres server, so test files can run in parallel. */
export async function serverDatabase(prefix = 't'): Promise<TestDatabase> {
  if (!hasPostgres) throw new Error('PostgreSQL is not reachable');
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const pools: pg.Pool[] = [];
  const newPool = (max = 20) => {
    const pool = new pg.Pool({ connectionString: databaseUrl, options: `-c search_path=${schema}`, max });
    pools.push(pool);
    return pool;
  };
  return {
    pool: newPool(),
    where: schema,
    newPool: () => newPool(),
    async drop() {
      await Promise.all(pools.map((p) => p.end()));
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      await client.query(`DROP SCHEMA ${schema} CASCADE`);
      await client.end();
    },
  };
}

/** A PGlite database in a data directory of its own, copied from the template. */
export async function embeddedDatabase(): Promise<TestDatabase & { pglite: PGlite; dataDir: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'aisoc-test-'));
  await cp(inject('pgliteTemplate'), dataDir, { recursive: true });
  const pglite = await PGlite.create(dataDir);
  const pool = new pg.Pool(createPgConfig(pglite));
  return {
    pool,
    pglite,
    dataDir,
    where: dataDir,
    newPool: () => pool,
    async drop() {
      await pool.end();
      await pglite.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
