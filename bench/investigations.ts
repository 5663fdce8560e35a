/**
 * The investigations benchmark (issue 5):
 * - run: the built-in reasoner on a case with 10 alerts, from the start event being appended
 *   to the concluded event being in the store, through the reactor as a server runs it
 *   (RUNS runs, after WARMUP); `run_p50_ms`, `run_p95_ms`.
 * - replay: `replayInvestigation` (read the stream, re-execute with everything substituted,
 *   compare every entry and check the chain) of a ledger of exactly 1,000 entries, written by
 *   a scripted provider that calls the real tools; `replay_1000_ms` is the median of REPLAYS.
 * Both on the embedded default (PGlite) and, when it is reachable, on the Postgres server;
 * the top-level figures are the embedded default's.
 *
 *   npx tsx bench/investigations.ts      # writes bench/results/investigations.json
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { handleCommand, type CommandContext } from '../src/commands/handler.js';
import { loadConfig } from '../src/config.js';
import { alertDecider, alertStream } from '../src/domain/alert.js';
import { caseDecider, caseStream } from '../src/domain/case.js';
import { investigationDecider, investigationStream } from '../src/domain/investigation.js';
import { createLogger } from '../src/lib/logger.js';
import type { ModelProvider, ModelTurn, ToolCall } from '../src/investigations/model.js';
import { BUILTIN_MODEL } from '../src/investigations/reasoner.js';
import { executeInvestigation, replayInvestigation } from '../src/investigations/runner.js';
import { openRuntime, type Runtime } from '../src/runtime.js';
import { DATABASE_URL, log, newSchemaName, tempDir } from './common.js';

const RUNS = Number(process.env.BENCH_INVESTIGATION_RUNS ?? 30);
const WARMUP = 3;
const REPLAYS = Number(process.env.BENCH_REPLAYS ?? 7);
const ALERTS = 10;
const TENANT = 'default';
const ctx: CommandContext = { tenantId: TENANT, actor: { type: 'user', id: 'bench' } };

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
const round = (n: number) => Math.round(n * 10) / 10;

/** A case with 10 alerts like a real intrusion: techniques, entities, raw payloads. */
async function seedCase(rt: Runtime): Promise<string> {
  const alertIds: string[] = [];
  const kinds = [
    ['Mimikatz on FIN-WS-12', 'high', ['T1003.001']],
    ['PsExec from FIN-WS-12', 'high', ['T1569.002', 'T1021.002']],
    ['Encoded PowerShell on FIN-WS-12', 'medium', ['T1059.001', 'T1027']],
    ['whoami and net group on FIN-WS-12', 'low', ['T1033', 'T1087.002']],
    ['RDP to FIN-SRV-02', 'medium', ['T1021.001']],
    ['Service created on FIN-SRV-02', 'medium', ['T1543.003']],
    ['certutil download on FIN-SRV-02', 'high', ['T1105', 'T1140']],
    ['nltest domain trusts', 'low', ['T1482']],
    ['DNS tunnelling from FIN-SRV-02', 'medium', ['T1071.004']],
    ['Shadow copies deleted on FIN-SRV-02', 'critical', ['T1490']],
  ] as const;
  for (const [i, [title, severity, techniques]] of kinds.entries()) {
    const id = rt.commands.ids.newId();
    alertIds.push(id);
    await handleCommand(rt.commands, alertDecider, alertStream(id), {
      type: 'IngestAlert',
      alert: {
        alert_id: id,
        source: 'edr',
        source_ref: `bench-${id}`,
        title,
        severity,
        occurred_at: new Date().toISOString(),
        techniques: [...techniques],
        entities: [
          { type: 'host', value: i < 4 ? 'FIN-WS-12' : 'FIN-SRV-02' },
          { type: 'user', value: 'j.doe' },
        ],
        raw: { process: { cmd_line: `${title} -- sample command line ${i}` }, device: { hostname: i < 4 ? 'FIN-WS-12' : 'FIN-SRV-02' } },
      },
    }, ctx);
  }
  const caseId = rt.commands.ids.newId();
  const opened = await handleCommand(rt.commands, caseDecider, caseStream(caseId), {
    type: 'OpenCase',
    case: { case_id: caseId, title: 'Intrusion on FIN', severity: 'critical', alert_ids: alertIds },
  }, ctx);
  await rt.daemon.waitFor(opened.position, ['alerts', 'cases'], 30_000);
  return caseId;
}

async function start(rt: Runtime, caseId: string, provider: { name: string; model: string }, maxTurns = 12): Promise<string> {
  const id = rt.commands.ids.newId();
  await handleCommand(rt.commands, investigationDecider, investigationStream(id), {
    type: 'StartInvestigation',
    investigation: { investigation_id: id, case_id: caseId, requested_by: 'bench', provider: provider.name, model: provider.model, max_turns: maxTurns, focus: null },
  }, ctx, { create: true });
  return id;
}

/**
 * Start to concluded, through the reactor: from before the start is appended until a
 * subscription (woken by the append, as the reactor is) delivers the conclusion.
 */
async function timedRun(rt: Runtime, caseId: string): Promise<{ ms: number; entries: number }> {
  const subscription = rt.store.subscribeToAll({
    after: await rt.store.headPosition(),
    filter: { categories: ['investigation'], eventTypes: ['investigation.concluded', 'investigation.failed'] },
  });
  try {
    const began = performance.now();
    const id = await start(rt, caseId, { name: 'builtin', model: BUILTIN_MODEL });
    for await (const message of subscription) {
      if (message.kind !== 'event' || message.event.streamId !== investigationStream(id)) continue;
      if (message.event.type === 'investigation.failed') throw new Error(`the run failed: ${JSON.stringify(message.event.data)}`);
      return { ms: performance.now() - began, entries: Number(message.event.revision) - 1 };
    }
    throw new Error('the subscription ended');
  } finally {
    await subscription.unsubscribe();
  }
}

/**
 * A provider that calls the real tools many times so the ledger has exactly 1,000 entries:
 * turn 1 calls get_case, get_case_alerts and 10 more get_case (2 evidence entries come of it),
 * turns 2-45 call get_case 10 times, turn 46 concludes: 45 x 2 + 452 x 2 + 2 + 4 = 1,000.
 */
function thousandEntryProvider(caseId: string): ModelProvider {
  return {
    name: 'scripted',
    model: 'bench-1000',
    async complete(request): Promise<ModelTurn> {
      const turn = request.messages.filter((m) => m.role === 'assistant').length + 1;
      const call = (name: string, i: number, args: Record<string, unknown> = {}): ToolCall => ({ id: `t${turn}_${i}`, name, arguments: args });
      let calls: ToolCall[];
      if (turn === 1) calls = [call('get_case', 0), call('get_case_alerts', 1), ...Array.from({ length: 10 }, (_, i) => call('get_case', i + 2))];
      else if (turn <= 45) calls = Array.from({ length: 10 }, (_, i) => call('get_case', i));
      else calls = [call('conclude', 0, { verdict: 'needs_more_info', confidence: 0.4, summary: 'Synthetic 1,000-entry ledger', recommended_actions: [], evidence_ids: [`case:${caseId}`] })];
      return { content: `turn ${turn}`, toolCalls: calls, usage: { inputTokens: 100, outputTokens: 10 }, stopReason: 'tool_calls' };
    },
  };
}

async function measure(rt: Runtime, label: string) {
  const caseId = await seedCase(rt);
  log(`${label}: ${WARMUP} warm-up runs, then ${RUNS} timed runs`);
  const runs: number[] = [];
  let entries = 0;
  for (let i = 0; i < WARMUP + RUNS; i += 1) {
    const run = await timedRun(rt, caseId);
    if (i >= WARMUP) runs.push(run.ms);
    entries = run.entries;
  }

  log(`${label}: writing a 1,000-entry ledger`);
  const provider = thousandEntryProvider(caseId);
  // Written directly (not through the reactor) with the scripted provider.
  await rt.daemon.stop();
  const id = await start(rt, caseId, provider, 50);
  const outcome = await executeInvestigation({ commands: rt.commands, db: rt.database.db, logger: rt.logger }, id, { provider });
  if (outcome?.status !== 'concluded' || outcome.entries !== 1000) throw new Error(`the 1,000-entry ledger came out as ${JSON.stringify(outcome)}`);
  const replays: number[] = [];
  for (let i = 0; i < REPLAYS + 1; i += 1) {
    const began = performance.now();
    const result = await replayInvestigation(rt.store, rt.commands.registry, id, null);
    const ms = performance.now() - began;
    if (!result.identical || !result.chain_valid || result.entries_compared !== 1000) throw new Error(`replay was not identical: ${JSON.stringify(result)}`);
    if (i > 0) replays.push(ms);
  }
  return {
    run_p50_ms: round(percentile(runs, 50)),
    run_p95_ms: round(percentile(runs, 95)),
    run_entries: entries,
    runs: RUNS,
    replay_1000_ms: round(percentile(replays, 50)),
    replay_1000_max_ms: round(Math.max(...replays)),
    replays: REPLAYS,
  };
}

async function main(): Promise<void> {
  const logger = createLogger({ level: 'warn' });
  const results: Record<string, unknown> = {};

  const dir = await tempDir('aisoc-bench-inv-');
  try {
    const rt = await openRuntime(loadConfig({ AISOC_DATA_DIR: dir.path, AISOC_LOG_LEVEL: 'warn' }), logger, { runProjections: true });
    try {
      results.pglite = await measure(rt, 'pglite');
    } finally {
      await rt.close();
    }
  } finally {
    await dir.remove();
  }

  let postgres: string | null = null;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  try {
    await admin.connect();
    postgres = ((await admin.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]!.v);
  } catch {
    log(`no Postgres at ${DATABASE_URL}: the embedded default only`);
  }
  if (postgres) {
    const schema = newSchemaName('bench_inv');
    await admin.query(`CREATE SCHEMA ${schema}`);
    try {
      const rt = await openRuntime(loadConfig({ DATABASE_URL, AISOC_DB_SCHEMA: schema, AISOC_LOG_LEVEL: 'warn' }), logger, { runProjections: true });
      try {
        results.postgres = await measure(rt, 'postgres');
      } finally {
        await rt.close();
      }
    } finally {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    }
  }
  await admin.end().catch(() => undefined);

  const embedded = results.pglite as { run_p50_ms: number; replay_1000_ms: number };
  const output = {
    run_p50_ms: embedded.run_p50_ms,
    replay_1000_ms: embedded.replay_1000_ms,
    floors: { run_p50_ms: 200, replay_1000_ms: 1000 },
    within_floors: embedded.run_p50_ms <= 200 && embedded.replay_1000_ms <= 1000,
    alerts_per_case: ALERTS,
    ...results,
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memory_gb: Math.round(totalmem() / 2 ** 30),
      os: `${platform()} ${release()}`,
      node: process.version,
      postgres,
      loadavg_at_end: loadavg(),
    },
    measured_at: new Date().toISOString(),
  };
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/investigations.json', `${JSON.stringify(output, null, 2)}\n`);
  console.log(JSON.stringify(output, null, 2));
}

await main();
