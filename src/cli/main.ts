import { Command, Option } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { AppError } from '../domain/errors.js';
import { DataDirLockedError, lockDataDir, lockOwner } from '../lib/data-dir-lock.js';
import { createLogger } from '../lib/logger.js';
import { openRuntime } from '../runtime.js';
import { startServer } from '../server.js';
import { remoteOperations } from './control.js';
import { localOperations, type RunOperation } from './operations.js';
import { progressReporter } from './progress.js';

/**
 * Runs `work` against the store: in this process when it may open it, or through the running
 * server's control socket when the server owns the embedded data directory (PGlite has no
 * lock of its own; two processes on one directory would corrupt it).
 */
async function withOperations<T>(config: Config, work: (run: RunOperation) => Promise<T>): Promise<T> {
  let release = async () => undefined as void;
  if (!config.DATABASE_URL) {
    const owner = await lockOwner(config.dataDir);
    if (owner) {
      if (!owner.socket) throw new DataDirLockedError(config.dataDir, owner);
      console.error(`The server (pid ${owner.pid}) owns ${config.dataDir}; asking it through its control socket.`);
      return work(remoteOperations(owner.socket));
    }
    release = await lockDataDir(config.dataDir, null);
  }
  const logger = createLogger({ level: config.AISOC_LOG_LEVEL === 'info' ? 'warn' : config.AISOC_LOG_LEVEL });
  try {
    const runtime = await openRuntime(config, logger, { runProjections: false });
    try {
      return await work(localOperations(runtime));
    } finally {
      await runtime.close();
    }
  } finally {
    await release();
  }
}

const program = new Command('aisoc').description('AiSOC: an event-sourced security operations backend').showHelpAfterError();

program
  .command('serve')
  .description('Start the API server (embedded store under AISOC_DATA_DIR unless DATABASE_URL is set)')
  .action(async () => {
    const config = loadConfig();
    const logger = createLogger({ level: config.AISOC_LOG_LEVEL });
    const server = await startServer(config, logger);
    const shutdown = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      server.close().then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });

const projections = program.command('projections').description('Read models: status and rebuild');

projections
  .command('status')
  .description("Each projection version's state, checkpoint and lag")
  .option('--json', 'print JSON')
  .action(async (options: { json?: boolean }) => {
    const config = loadConfig();
    const reports = await withOperations(config, (run) => run('projections.status', {}));
    if (options.json) {
      console.log(JSON.stringify(reports, null, 2));
      return;
    }
    console.table(
      reports.map((r) => ({
        projection: r.name,
        version: r.version,
        status: r.status,
        checkpoint: r.position ?? '(start)',
        applied: r.events_applied,
        lag: r.lag === null ? '-' : `${r.lag.events}${r.lag.capped ? '+' : ''} events`,
        error: r.error ?? '',
      })),
    );
  });

projections
  .command('rebuild')
  .description('Build a new version of read models from the start of the log beside the live one, then switch readers to it')
  .argument('[names...]', 'projections to rebuild')
  .addOption(new Option('--all', 'rebuild every projection'))
  .action(async (names: string[], options: { all?: boolean }) => {
    const config = loadConfig();
    await withOperations(config, async (run) => {
      const targets = options.all
        ? (await run('projections.status', {})).filter((r) => r.status === 'live' && r.kind === 'read_model').map((r) => r.name)
        : names;
      if (targets.length === 0) throw new AppError('invalid', 'Name the projections to rebuild, or pass --all');
      const bars = new Map<string, ReturnType<typeof progressReporter>>();
      const results = await run('projections.rebuild', { names: targets }, (p) => {
        let bar = bars.get(p.name);
        if (!bar) bars.set(p.name, (bar = progressReporter(`${p.name} v${p.version}`)));
        bar.update(p.applied, p.expected, p.phase);
      });
      for (const bar of bars.values()) bar.stop();
      for (const r of results) console.log(`${r.name}: version ${r.version} is live (${r.applied} events applied)`);
    });
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof AppError || error instanceof DataDirLockedError) {
    console.error(error.message);
  } else {
    console.error(error);
  }
  process.exit(1);
});
