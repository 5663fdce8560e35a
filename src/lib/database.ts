import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { createPgConfig } from '@electric-sql/pglite/node-postgres';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Tables } from '../projections/tables.js';

/**
 * PGlite runs in this thread and settles query promises as microtasks: a loop that keeps the
 * database busy (a rebuild, a writer) would never let timers or sockets run. Handing each
 * result back on the next turn of the event loop keeps the process responsive.
 */
class YieldingClient extends pg.Client {
  override query(...args: unknown[]): any {
    const last = args.at(-1);
    if (typeof last === 'function') {
      args[args.length - 1] = (...results: unknown[]) => setImmediate(() => (last as (...r: unknown[]) => void)(...results));
      return (super.query as (...a: unknown[]) => unknown)(...args);
    }
    const result = (super.query as (...a: unknown[]) => unknown)(...args);
    if (!(result instanceof Promise)) return result;
    return result.then(
      (value) => new Promise((resolve) => setImmediate(resolve, value)),
      (error: unknown) => new Promise((_, reject) => setImmediate(reject, error)),
    );
  }
}

export interface Database {
  pool: pg.Pool;
  db: Kysely<Tables>;
  /** PGlite: one process, one connection; no advisory locks across processes are needed. */
  embedded: boolean;
  close(): Promise<void>;
}

export type DatabaseConfig =
  | { kind: 'server'; url: string; schema?: string; poolSize?: number }
  | { kind: 'embedded'; dataDir: string };

/**
 * Opens the database the read models (and, unless EventStoreDB is configured, the events)
 * live in: a Postgres server, or PGlite under a data directory. Both are a node-postgres pool,
 * so everything above this line runs the same code.
 */
export async function openDatabase(config: DatabaseConfig): Promise<Database> {
  if (config.kind === 'server') {
    // A long-open writing transaction holds back every reader's horizon: cut idle ones short.
    const options = ['-c idle_in_transaction_session_timeout=60s', ...(config.schema ? [`-c search_path=${config.schema}`] : [])];
    const pool = new pg.Pool({ connectionString: config.url, max: config.poolSize ?? 20, options: options.join(' ') });
    pool.on('error', () => undefined);
    await pool.query('SELECT 1');
    return {
      pool,
      db: new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) }),
      embedded: false,
      close: () => pool.end(),
    };
  }
  await mkdir(config.dataDir, { recursive: true });
  const pglite = await PGlite.create(config.dataDir);
  const pool = new pg.Pool({ ...createPgConfig(pglite), Client: YieldingClient });
  return {
    pool,
    db: new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) }),
    embedded: true,
    async close() {
      await pool.end();
      await pglite.close();
    },
  };
}
