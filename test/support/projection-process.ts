/**
 * A separate process running one ledger projection, for tests that kill it (SIGKILL) and
 * watch another process take over. Configured by the environment of the test runtime.
 */
import { loadConfig } from '../../src/config.js';
import { eventRegistry } from '../../src/domain/index.js';
import { openDatabase } from '../../src/lib/database.js';
import { silentLogger } from '../../src/lib/logger.js';
import { PostgresEventStore } from '../../eventstore/postgres/store.js';
import { ProjectionDaemon } from '../../src/projections/daemon.js';
import { ledgerProjection } from './ledger-projection.js';

const config = loadConfig();
const database = await openDatabase({ kind: 'server', url: config.DATABASE_URL!, schema: config.AISOC_DB_SCHEMA });
const store = await PostgresEventStore.open(database.pool, { pollIntervalMs: 10 });
const daemon = new ProjectionDaemon(
  { db: database.db, store, registry: eventRegistry, logger: silentLogger(), owner: process.env.OWNER! },
  [ledgerProjection(process.env.PROJECTION!)],
  { batchSize: 7, leaseMs: Number(process.env.LEASE_MS ?? 1500) },
);
await daemon.start();
const runner = daemon.localRunners()[0]!;
runner.on('checkpoint', (position: string) => process.stdout.write(`${JSON.stringify({ checkpoint: position })}\n`));
process.stdout.write(`${JSON.stringify({ started: true })}\n`);
