import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { AppError } from '../domain/errors.js';
import { DataDirLockedError, lockDataDir, lockOwner } from '../lib/data-dir-lock.js';
import { createLogger } from '../lib/logger.js';
import { openRuntime } from '../runtime.js';
import { remoteOperations } from './control.js';
import { localOperations, type RunOperation } from './operations.js';
import { progressReporter } from './progress.js';
import { readPassword } from './prompt.js';

/**
 * Runs `work` against the store: in this process when it may open it, or through the running
 * server's control socket when the server owns the embedded data directory (PGlite has no
 * lock of its own; two processes on one directory would corrupt it).
 */
async function withOperations<T>(config: Config, work: (run: RunOperation) => Promise<T>, options: { writes?: boolean } = {}): Promise<T> {
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
    // Writes wait for the read models (a user creation checks its tenant exists): for them
    // this process runs the projections while it works, unless a server holds their leases.
    const runtime = await openRuntime(config, logger, { runProjections: options.writes === true });
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
    const { startServer } = await import('../server.js');
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
        status: r.outdated ? `${r.status} (outdated)` : r.status,
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

const audit = program.command('audit').description('The audit log: a signed, hash-chained export of the event log, and its check');

audit
  .command('export')
  .description('Write the event log as hash-chained JSON lines to FILE, and a signed FILE.manifest.json beside it')
  .requiredOption('--out <file>', 'the file to write (it must not exist yet)')
  .option('--tenant <id>', "only this tenant's events")
  .option('--since <time>', 'only events that occurred at or after this RFC 3339 time')
  .option('--until <time>', 'only events that occurred before this RFC 3339 time')
  .action(async (options: { out: string; tenant?: string; since?: string; until?: string }) => {
    const config = loadConfig();
    // A running server writes the file for us: it must not depend on its working directory.
    const out = resolve(options.out);
    const bar = progressReporter('audit export');
    const result = await withOperations(config, (run) =>
      run('audit.export', { out, tenant: options.tenant ?? null, since: options.since ?? null, until: options.until ?? null }, (p) =>
        bar.update(p.events, null, `${p.scanned} scanned`),
      ),
    ).finally(() => bar.stop());
    console.log(`Exported ${result.count} event(s) to ${result.file}; manifest ${result.manifest}, final hash ${result.final_hash}, signed by audit key ${result.key_id}`);
  });

audit
  .command('verify')
  .description('Check an export against its signed manifest; exit code 0 when intact, 1 when not')
  .argument('<file>', 'the export (FILE.manifest.json must be beside it)')
  .action(async (file: string) => {
    const config = loadConfig();
    const bar = progressReporter('audit verify');
    const result = await withOperations(config, (run) => run('audit.verify', { file: resolve(file) }, (p) => bar.update(p.events, null, 'lines checked'))).finally(() =>
      bar.stop(),
    );
    console.log(result.ok ? `OK: ${result.message}` : `FAILED: ${result.message}`);
    if (!result.ok) process.exitCode = 1;
  });

const investigations = program.command('investigations').description("AI investigations: replay one against its ledger, or check its hash chain");

investigations
  .command('replay')
  .description('Re-execute an investigation with its recorded model responses and tool results and compare it with its ledger; exit code 0 when identical, 1 when not')
  .argument('<id>', 'the investigation id')
  .action(async (id: string) => {
    const config = loadConfig();
    const result = await withOperations(config, (run) => run('investigations.replay', { id }));
    console.log(JSON.stringify(result, null, 2));
    if (!result.identical || !result.chain_valid) process.exitCode = 1;
  });

investigations
  .command('verify')
  .description("Check an investigation's hash chain; exit code 0 when intact, 1 naming the first bad entry when not")
  .argument('<id>', 'the investigation id')
  .action(async (id: string) => {
    const config = loadConfig();
    const result = await withOperations(config, (run) => run('investigations.verify', { id }));
    if (result.valid) {
      console.log(`OK: investigation ${id}: ${result.entries} entries, hash chain intact${result.final_hash_matches ? ', final hash matches its conclusion' : ''}`);
      return;
    }
    const why = result.first_bad ? `entry ${result.first_bad.seq}: ${result.first_bad.reason}` : "the final hash does not match the ledger's last entry";
    console.log(`FAILED: investigation ${id}: first bad ${why}`);
    process.exitCode = 1;
  });

const tenants = program.command('tenants').description('Tenants: every user, key and record belongs to one');

tenants
  .command('create')
  .description('Create a tenant')
  .argument('<id>', 'its id: lower-case letters, digits, - and _')
  .option('--name <name>', 'a display name (default: the id)')
  .action(async (id: string, options: { name?: string }) => {
    const config = loadConfig();
    await withOperations(config, (run) => run('tenants.create', { id, name: options.name ?? id }), { writes: true });
    console.log(`Tenant ${id} created`);
  });

const users = program.command('users').description('Users who sign in to the API');

users
  .command('create')
  .description('Create a user; the password comes from AISOC_USER_PASSWORD, else a prompt (or the first line of standard input)')
  .requiredOption('--email <email>', 'their e-mail address, used to sign in')
  .requiredOption('--role <role>', 'admin, analyst, responder, hunter, viewer or a custom role of the tenant')
  .option('--tenant <id>', 'their tenant', 'default')
  .option('--name <name>', 'a display name')
  .action(async (options: { email: string; role: string; tenant: string; name?: string }) => {
    const config = loadConfig();
    const password = await readPassword(`Password for ${options.email}: `);
    const user = await withOperations(
      config,
      (run) => run('users.create', { tenant: options.tenant, email: options.email, role: options.role, name: options.name ?? null, password }),
      { writes: true },
    );
    console.log(`User ${user.email} (${user.role}) created in tenant ${user.tenant} with id ${user.id}`);
  });

users
  .command('set-password')
  .description("Change a user's password (and end their sessions); the password comes as for users create")
  .argument('<email>', 'the user')
  .action(async (email: string) => {
    const config = loadConfig();
    const password = await readPassword(`New password for ${email}: `);
    await withOperations(config, (run) => run('users.set_password', { email, password }), { writes: true });
    console.log(`Password of ${email} changed; their sessions have ended`);
  });

program
  .command('keys')
  .description('Signing keys')
  .command('rotate')
  .description('Start signing with a new key; tokens and exports signed with the old one stay valid')
  .addOption(new Option('--use <use>', 'which key').choices(['jwt', 'audit']).default('jwt'))
  .action(async (options: { use: 'jwt' | 'audit' }) => {
    const config = loadConfig();
    const rotated = await withOperations(config, (run) => run('keys.rotate', { use: options.use }));
    console.log(`New ${rotated.use} signing key ${rotated.kid}`);
  });

// A client of a running server over HTTP, like any other: it never opens the store itself.
program
  .command('submit')
  .description('Send OCSF events to a server as one alert (POST /api/v1/alerts/submit); prints its id, and a summary on stderr')
  .argument('<file>', 'JSON: { "events": [...] } (optionally with overrides such as "title") or a bare array of events')
  .option('--url <url>', 'the server', 'http://localhost:8000')
  .addOption(new Option('--api-key <key>', 'an API key with alerts:write (default: AISOC_API_KEY)').conflicts('token'))
  .option('--token <token>', 'a bearer access token instead (default: AISOC_TOKEN)')
  .option('--idempotency-key <key>', 'makes the call safe to repeat: the same key again answers with the same alert')
  .action(async (file: string, options: { url: string; apiKey?: string; token?: string; idempotencyKey?: string }) => {
    const { readFile } = await import('node:fs/promises');
    let payload: unknown;
    try {
      payload = JSON.parse(await readFile(file, 'utf8'));
    } catch (error) {
      throw new AppError('invalid', `${file} is not a readable JSON file: ${(error as Error).message}`);
    }
    const apiKey = options.apiKey ?? (options.token ? undefined : process.env.AISOC_API_KEY);
    const token = options.token ?? (apiKey ? undefined : process.env.AISOC_TOKEN);
    if (!apiKey && !token) throw new AppError('unauthenticated', 'Give --api-key or --token (or set AISOC_API_KEY or AISOC_TOKEN)');
    const response = await fetch(`${options.url.replace(/\/+$/, '')}/api/v1/alerts/submit`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(apiKey ? { 'x-api-key': apiKey } : { authorization: `Bearer ${token}` }),
        ...(options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : {}),
      },
      body: JSON.stringify(Array.isArray(payload) ? { events: payload } : payload),
    }).catch((error: unknown) => {
      throw new AppError('unavailable', `Cannot reach ${options.url}: ${((error as Error).cause as Error | undefined)?.message ?? (error as Error).message}`);
    });
    const text = await response.text();
    let answer: { id?: string; title?: string; severity?: string; techniques?: string[]; detail?: string; errors?: { path: string; message: string }[] } = {};
    try {
      answer = JSON.parse(text) as typeof answer;
    } catch {
      // not JSON (a proxy's error page): the status and text say it
    }
    if (!response.ok) {
      console.error(`${response.status} ${response.statusText}: ${answer.detail ?? text.slice(0, 500)}`);
      for (const e of answer.errors ?? []) console.error(`  ${e.path}: ${e.message}`);
      process.exitCode = 1;
      return;
    }
    console.log(answer.id);
    const techniques = answer.techniques?.length ? answer.techniques.join(', ') : 'no techniques';
    console.error(`${response.status === 201 ? 'Created' : 'Already submitted under this key'}: [${answer.severity}] ${answer.title} (${techniques})`);
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof AppError || error instanceof DataDirLockedError) {
    console.error(error.message);
  } else {
    console.error(error);
  }
  process.exit(1);
});
