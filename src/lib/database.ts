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
  /** The schema the tables live in (`current_schema()`): it scopes notification channels. */
  schema: string;
  /**
   * LISTEN on a channel (PostgreSQL NOTIFY, delivered on commit). `listening` is called each
   * time notifications start to flow (again), `lost` when they may have been missed (a dropped
   * connection: reconnected with backoff). Resolves once listening; the result stops it.
   * Embedded, there is no other process to hear from: it only reports `listening`.
   */
  listen(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface ListenHandlers {
  notify(payload: string): void;
  listening(): void;
  lost(): void;
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
    const { rows } = await pool.query<{ schema: string }>('SELECT current_schema() AS schema');
    return {
      pool,
      db: new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) }),
      embedded: false,
      schema: rows[0]!.schema,
      listen: (channel, handlers) => listenOnServer({ connectionString: config.url, options: options.join(' ') }, channel, handlers),
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
    schema: 'public',
    async listen(_channel, handlers) {
      // One process owns the data directory: every change is made by this process, whose
      // writers say what they changed themselves (see PrincipalCache). PGlite's notifications
      // would arrive inside the pool's protocol stream, which its node-postgres adapter does
      // not expect, so nothing is LISTENed here.
      handlers.listening();
      return async () => undefined;
    },
    async close() {
      await pool.end();
      await pglite.close();
    },
  };
}

const quoteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** A dedicated connection (LISTEN is per session), reconnected with backoff when it drops. */
async function listenOnServer(connection: pg.ClientConfig, channel: string, handlers: ListenHandlers): Promise<() => Promise<void>> {
  let client: pg.Client | undefined;
  let stopped = false;
  const connect = async (): Promise<void> => {
    const next = new pg.Client(connection);
    next.on('error', () => undefined);
    next.on('notification', (message) => {
      if (message.channel === channel) handlers.notify(message.payload ?? '');
    });
    try {
      await next.connect();
      await next.query(`LISTEN ${quoteIdentifier(channel)}`);
    } catch (error) {
      await next.end().catch(() => undefined);
      throw error;
    }
    client = next;
    next.once('end', () => {
      if (stopped) return;
      handlers.lost();
      void reconnect(1);
    });
    handlers.listening();
  };
  const reconnect = async (attempt: number): Promise<void> => {
    await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 5000)).unref());
    if (stopped) return;
    await connect().catch(() => reconnect(attempt + 1));
  };
  await connect();
  return async () => {
    stopped = true;
    await client?.end().catch(() => undefined);
  };
}
