import { hostname } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { Gauge } from 'prom-client';
import type { EventStore } from '../eventstore/port.js';
import { PostgresEventStore } from '../eventstore/postgres/store.js';
import { sql } from 'kysely';
import { Keyring, KEYRING_DDL } from './auth/keyring.js';
import type { CommandDeps } from './commands/handler.js';
import type { IdentityDeps } from './commands/identity.js';
import type { Config } from './config.js';
import { eventRegistry } from './domain/index.js';
import { systemClock, uuidV7Ids } from './lib/clock.js';
import { openDatabase, type Database } from './lib/database.js';
import { PrincipalCache } from './auth/principal-cache.js';
import { instrumentStore } from './lib/instrumented-store.js';
import type { Logger } from './lib/logger.js';
import { Metrics } from './lib/metrics.js';
import { COUNTERS_DDL, SharedCounters } from './lib/shared-counters.js';
import type { IngestQueue } from './ingest/batch.js';
import { DatabaseIngestQueue, INGEST_QUEUE_DDL } from './ingest/database-queue.js';
import { fuseBatches } from './ingest/fusion.js';
import { withDdlLock } from './projections/catalog.js';
import { alertsProjection } from './projections/alerts.js';
import { approvalsProjection } from './projections/approvals.js';
import { auditProjection } from './projections/audit.js';
import { casesProjection } from './projections/cases.js';
import { ProjectionDaemon } from './projections/daemon.js';
import { identityProjection, PRINCIPALS_CHANNEL_PREFIX } from './projections/identity.js';
import { investigationsProjection } from './projections/investigations.js';
import { ensureEventsStream, natsForwarder } from './projections/nats-forwarder.js';
import { playbooksProjection } from './projections/playbooks.js';
import { slaProjection } from './projections/sla.js';
import { reactions } from './reactors/index.js';
import { startSchedules } from './reactors/scheduler.js';
import type { Projection } from './projections/projection.js';

export const READ_MODELS: readonly Projection[] = [alertsProjection, casesProjection, identityProjection, auditProjection, slaProjection, playbooksProjection, approvalsProjection, investigationsProjection];

export interface Runtime {
  config: Config;
  logger: Logger;
  database: Database;
  store: EventStore;
  metrics: Metrics;
  daemon: ProjectionDaemon;
  commands: CommandDeps;
  identity: IdentityDeps;
  /** Set when NATS_URL is: JetStream for ingest and the event fan-out. */
  nats: NatsConnection | null;
  /** Where accepted alerts wait for fusion: JetStream with NATS, the database without. */
  ingest: IngestQueue;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Run the projections here (the server); a one-off CLI process leaves them to the server. */
  runProjections: boolean;
}

/**
 * The composition root: the same wiring on the embedded default (PGlite under the data
 * directory) and on servers (DATABASE_URL, EVENTSTORE_URL).
 */
export async function openRuntime(config: Config, logger: Logger, options: RuntimeOptions): Promise<Runtime> {
  const database = await openDatabase(
    config.DATABASE_URL
      ? { kind: 'server', url: config.DATABASE_URL, schema: config.AISOC_DB_SCHEMA }
      : { kind: 'embedded', dataDir: join(config.dataDir, 'pglite') },
  );
  const metrics = new Metrics();
  let rawStore: EventStore;
  try {
    // The gRPC and NATS clients are heavy: loaded only where configured.
    rawStore = config.EVENTSTORE_URL
      ? new (await import('../eventstore/esdb/store.js')).EventStoreDBEventStore(config.EVENTSTORE_URL)
      : await PostgresEventStore.open(database.pool, { pollIntervalMs: config.AISOC_POLL_INTERVAL_MS });
  } catch (error) {
    await database.close();
    throw error;
  }
  const store = instrumentStore(rawStore, metrics);
  let nats: NatsConnection | null = null;
  const projections = [...READ_MODELS];
  if (config.NATS_URL) {
    try {
      const { connect: connectNats } = await import('@nats-io/transport-node');
      const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
      // noAsyncTraces: a stack captured for every publish and request cost ~4 % of the server's CPU
      // under ingest; errors still say what failed, only not from where it was called.
      nats = await connectNats({ servers: config.NATS_URL, name: `aisoc-${process.pid}`, maxReconnectAttempts: -1, noAsyncTraces: true });
      await ensureEventsStream(await jetstreamManager(nats), config.AISOC_NATS_NAMESPACE);
      projections.push(natsForwarder(jetstream(nats), config.AISOC_NATS_NAMESPACE));
    } catch (error) {
      await nats?.close();
      await store.close();
      await database.close();
      throw new Error(`NATS at ${config.NATS_URL} is not usable: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const commands: CommandDeps = { store, registry: eventRegistry, clock: systemClock, ids: uuidV7Ids };
  const daemon = new ProjectionDaemon(
    { db: database.db, store, registry: eventRegistry, logger, owner: `${hostname()}:${process.pid}` },
    projections,
    { runAll: options.runProjections },
  );
  const { reactors, schedules } = reactions({ commands, db: database.db, daemon, config, logger });
  daemon.register(...reactors);
  await daemon.start();
  await withDdlLock(database.db, (trx) => sql.raw(`${KEYRING_DDL}\n${COUNTERS_DDL}\n${INGEST_QUEUE_DDL}`).execute(trx));
  metrics.watchProjections(daemon);
  if (!database.embedded) watchOldestTransaction(metrics, database);
  const scheduler = options.runProjections ? startSchedules(schedules, logger, () => commands.clock.now()) : undefined;
  const ingest: IngestQueue = nats
    ? await (await import('./ingest/jetstream-queue.js')).JetStreamIngestQueue.open(nats, logger, { namespace: config.AISOC_NATS_NAMESPACE })
    : new DatabaseIngestQueue(database.db, logger);
  const fusion = options.runProjections
    ? ingest.consume((batches) => fuseBatches(commands, { correlationWindowSeconds: config.AISOC_CORRELATION_WINDOW_SECONDS }, batches))
    : undefined;
  const counters = new SharedCounters(database.db);
  counters.start();
  const principals = new PrincipalCache();
  const stopListening = await database.listen(PRINCIPALS_CHANNEL_PREFIX + database.schema, principals);
  const identity: IdentityDeps = {
    principals,
    commands,
    db: database.db,
    daemon,
    keyring: new Keyring(database.db, uuidV7Ids),
    counters,
    settings: {
      accessTokenTtlSeconds: config.AISOC_ACCESS_TOKEN_TTL_SECONDS,
      sessionTtlSeconds: config.AISOC_SESSION_TTL_SECONDS,
      loginMaxFailuresPerAccount: config.AISOC_LOGIN_MAX_FAILURES,
      loginMaxFailuresPerAddress: config.AISOC_LOGIN_MAX_FAILURES_PER_ADDRESS,
      loginWindowSeconds: config.AISOC_LOGIN_WINDOW_SECONDS,
    },
  };
  return {
    config,
    logger,
    database,
    store,
    metrics,
    daemon,
    commands,
    identity,
    nats,
    ingest,
    async close() {
      await scheduler?.stop();
      await fusion?.stop();
      await ingest.close();
      await counters.stop().catch(() => undefined);
      await stopListening();
      await daemon.stop();
      await nats?.drain().catch(() => undefined);
      await store.close();
      await database.close();
    },
  };
}

/** A long-open writing transaction holds every reader's horizon back: make it visible. */
function watchOldestTransaction(metrics: Metrics, database: Database): void {
  new Gauge({
    name: 'aisoc_postgres_oldest_transaction_seconds',
    help: 'Age of the oldest transaction holding a transaction id (it holds back projections)',
    registers: [metrics.registry],
    async collect() {
      const { rows } = await database.pool.query<{ age: number | null }>(
        'SELECT extract(epoch FROM now() - min(xact_start))::float8 AS age FROM pg_stat_activity WHERE backend_xid IS NOT NULL',
      );
      this.set(rows[0]?.age ?? 0);
    },
  });
}
