import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import { WrongExpectedVersionError, type EventStore, type JsonObject } from '../../eventstore/port.js';
import { eventMetadata, type CommandContext, type CommandDeps } from '../commands/handler.js';
import type { Config } from '../config.js';
import { AppError, notFound } from '../domain/errors.js';
import {
  investigationDecider,
  investigationStream,
  isFinished,
  type InvestigationCommand,
  type InvestigationEvent,
  type InvestigationState,
  type LedgerEntry,
} from '../domain/investigation.js';
import type { Actor, EventRegistry } from '../domain/registry.js';
import type { Logger } from '../lib/logger.js';
import type { Tables } from '../projections/tables.js';
import { Divergence, firstDifference, runInvestigation, type Difference, type Outcome } from './investigator.js';
import { verifyChain, type ChainCheck } from './ledger.js';
import type { ModelProvider } from './model.js';
import { createModelProvider } from './providers/index.js';
import { createToolBox } from './tools.js';

/** Who writes the ledger. */
export const INVESTIGATOR_ACTOR: Actor = { type: 'system', id: 'investigator' };

/** The one place the investigator gets its model from (the configured provider). */
export function modelProviderFor(config: Config): ModelProvider {
  return createModelProvider(config);
}

type Started = Extract<InvestigationEvent, { type: 'investigation.started' }>['data'];
type Terminal = Extract<InvestigationEvent, { type: 'investigation.concluded' | 'investigation.failed' }>;

/** An investigation as its stream holds it. */
export interface Ledger {
  id: string;
  tenantId: string;
  started: Started;
  startedEventId: string;
  startedAt: string;
  updatedAt: string;
  entries: LedgerEntry[];
  terminal: Terminal | null;
  state: InvestigationState;
  revision: bigint;
}

/** Reads an investigation's stream; another tenant's investigation is not found (tenantId null: any tenant, for operators). */
export async function loadLedger(store: EventStore, registry: EventRegistry, id: string, tenantId: string | null): Promise<Ledger | null> {
  const recorded = await store.readStream(investigationStream(id));
  if (recorded.length === 0) return null;
  let state = investigationDecider.initialState();
  let ledger: Ledger | null = null;
  for (const raw of recorded) {
    const { event, metadata } = registry.decode<InvestigationEvent>(raw);
    if (tenantId !== null && metadata.tenant_id !== tenantId) return null;
    state = investigationDecider.evolve(state, event);
    if (event.type === 'investigation.started') {
      ledger = {
        id,
        tenantId: metadata.tenant_id,
        started: event.data,
        startedEventId: raw.id,
        startedAt: metadata.occurred_at,
        updatedAt: metadata.occurred_at,
        entries: [],
        terminal: null,
        state,
        revision: raw.revision,
      };
      continue;
    }
    if (!ledger) continue;
    ledger.updatedAt = metadata.occurred_at;
    ledger.revision = raw.revision;
    if (event.type === 'investigation.entry_recorded') ledger.entries.push(event.data);
    else ledger.terminal = event;
  }
  if (ledger) ledger.state = state;
  return ledger;
}

/**
 * Appends to one investigation's stream from state it keeps in memory (one read at the start,
 * not one per entry), at the revision it last wrote: a concurrent writer is a conflict, and
 * the loser stops.
 */
class LedgerWriter {
  constructor(
    private readonly commands: CommandDeps,
    private readonly streamId: string,
    private state: InvestigationState,
    private revision: bigint,
    private readonly context: CommandContext,
  ) {}

  /** Decides the commands in order and appends what they decide in one append. */
  async run(...commands: InvestigationCommand[]): Promise<void> {
    const now = this.commands.clock.now();
    const events: InvestigationEvent[] = [];
    let state = this.state;
    for (const command of commands) {
      const decided = investigationDecider.decide(command, state, { now, newId: () => this.commands.ids.newId() });
      events.push(...decided);
      state = decided.reduce(investigationDecider.evolve, state);
    }
    if (events.length === 0) return;
    const metadata = eventMetadata(this.context, now);
    const result = await this.commands.store.appendToStream(
      this.streamId,
      events.map((event) => ({
        id: this.commands.ids.newId(),
        type: event.type,
        data: this.commands.registry.toJson(event),
        metadata: { ...metadata, schema_version: this.commands.registry.versionOf(event.type) } as unknown as JsonObject,
      })),
      { expectedRevision: this.revision },
    );
    this.revision = result.nextExpectedRevision;
    this.state = state;
  }
}

export interface ExecuteDeps {
  commands: CommandDeps;
  db: Kysely<Tables>;
  logger: Logger;
}

export interface ExecuteOptions {
  provider: ModelProvider;
  modelAttempts?: number;
  maxRetryDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Called with each entry appended (tests stop a run half way with it). */
  onAppended?: (entries: LedgerEntry[]) => Promise<void> | void;
  /**
   * Append what the run has recorded before each model call, so that its progress shows while
   * the model thinks. Default: for every provider but the built-in reasoner, which answers at
   * once (its run is appended when it ends, in one go).
   */
  flushBeforeModelCalls?: boolean;
}

/**
 * Runs an investigation to its end, or resumes one a restart interrupted: the recorded entries
 * are substituted (and checked) up to where the ledger stops, then the run goes on live. A run
 * that has ended is left alone. Model errors end as `failed`, never as an exception; an outage
 * of the store is thrown (the reactor retries, and the retry resumes).
 */
export async function executeInvestigation(deps: ExecuteDeps, id: string, options: ExecuteOptions): Promise<Outcome | null> {
  const { commands } = deps;
  const ledger = await loadLedger(commands.store, commands.registry, id, null);
  if (!ledger || isFinished(ledger.state.status)) return null;
  const context: CommandContext = { tenantId: ledger.tenantId, actor: INVESTIGATOR_ACTOR, correlationId: id, causationId: ledger.startedEventId };
  const writer = new LedgerWriter(commands, investigationStream(id), ledger.state, ledger.revision, context);
  const pending: LedgerEntry[] = [];
  /** Appends the pending entries, and with them what `then` decides (the end of the run). */
  const flush = async (...then: InvestigationCommand[]) => {
    const entries = pending.splice(0);
    await writer.run(...(entries.length > 0 ? [{ type: 'RecordEntries' as const, entries }] : []), ...then);
    if (entries.length > 0) await options.onAppended?.(entries);
  };
  const flushBeforeModelCalls = options.flushBeforeModelCalls ?? options.provider.name !== 'builtin';
  const tools = createToolBox({ db: deps.db, store: commands.store, tenantId: ledger.tenantId, caseId: ledger.started.case_id });
  let outcome: Outcome;
  try {
    try {
      outcome = await runInvestigation({
        brief: { investigationId: id, caseId: ledger.started.case_id, maxTurns: ledger.started.max_turns, focus: ledger.started.focus },
        provider: options.provider,
        tools,
        recorded: ledger.entries,
        now: () => commands.clock.now(),
        sleep: options.sleep ?? ((ms) => sleep(ms).then(() => undefined)),
        modelAttempts: options.modelAttempts,
        maxRetryDelayMs: options.maxRetryDelayMs,
        beforeLive: flushBeforeModelCalls ? () => flush() : undefined,
        onToolError: (error, tool) => deps.logger.warn({ err: error, investigation_id: id, tool }, 'an investigation tool failed'),
        async emit(entry) {
          const recorded = ledger.entries[entry.seq];
          if (!recorded) {
            pending.push(entry);
            return;
          }
          const difference = firstDifference(recorded, entry);
          if (difference) throw new Divergence(difference.seq, difference.field, difference.recorded, difference.replayed);
        },
      });
    } catch (error) {
      if (!(error instanceof Divergence)) throw error;
      await flush({ type: 'FailInvestigation', reason: `The run could not be resumed: entry ${error.seq} of the ledger differs from its re-execution at ${error.field}` });
      return { status: 'failed', reason: error.message, entries: error.seq };
    }
    if (outcome.status === 'concluded') await flush({ type: 'ConcludeInvestigation', conclusion: outcome.conclusion });
    else if (outcome.status === 'failed') await flush({ type: 'FailInvestigation', reason: outcome.reason });
    else await flush();
    return outcome;
  } catch (error) {
    if (error instanceof WrongExpectedVersionError || (error instanceof AppError && error.kind === 'conflict')) {
      deps.logger.warn({ investigation_id: id }, 'another worker is writing this investigation; leaving it to them');
      return null;
    }
    throw error;
  }
}

export interface ReplayResult {
  identical: boolean;
  entries_compared: number;
  first_difference: Difference | null;
  chain_valid: boolean;
}

const NO_LIVE_MODEL: ModelProvider = {
  name: 'replay',
  model: 'none',
  complete: () => Promise.reject(new Error('A replay never calls a model')),
};

/**
 * Re-executes an investigation with its recorded model responses, tool results, timestamps and
 * durations substituted (no model and no tool is called) and compares every re-executed entry
 * with the recorded one, hashes included: an unaltered ledger comes back byte for byte.
 */
export async function replayLedger(ledger: Ledger): Promise<ReplayResult> {
  const chain = verifyChain(ledger.id, ledger.entries);
  let first: Difference | null = null;
  let compared = 0;
  let produced = 0;
  try {
    await runInvestigation({
      brief: { investigationId: ledger.id, caseId: ledger.started.case_id, maxTurns: ledger.started.max_turns, focus: ledger.started.focus },
      provider: NO_LIVE_MODEL,
      tools: null,
      recorded: ledger.entries,
      now: () => new Date(0),
      sleep: async () => undefined,
      async emit(entry) {
        produced += 1;
        const recorded = ledger.entries[entry.seq];
        if (!recorded) {
          first ??= { seq: entry.seq, field: 'entry', recorded: null, replayed: entry.kind };
          return;
        }
        compared += 1;
        first ??= firstDifference(recorded, entry);
      },
    });
  } catch (error) {
    if (!(error instanceof Divergence)) throw error;
    first ??= { seq: error.seq, field: error.field, recorded: error.recordedValue, replayed: error.replayedValue };
  }
  if (!first && produced < ledger.entries.length) {
    first = { seq: produced, field: 'entry', recorded: ledger.entries[produced]!.kind, replayed: null };
  }
  return { identical: first === null, entries_compared: compared, first_difference: first, chain_valid: chain.valid };
}

export async function replayInvestigation(store: EventStore, registry: EventRegistry, id: string, tenantId: string | null): Promise<ReplayResult> {
  const ledger = await loadLedger(store, registry, id, tenantId);
  if (!ledger) throw notFound('Investigation');
  return replayLedger(ledger);
}

export interface VerifyResult extends ChainCheck {
  investigation_id: string;
  entries: number;
  /** The concluded/failed event names the last entry's hash: does it? */
  final_hash_matches: boolean | null;
}

export async function verifyInvestigation(store: EventStore, registry: EventRegistry, id: string, tenantId: string | null): Promise<VerifyResult> {
  const ledger = await loadLedger(store, registry, id, tenantId);
  if (!ledger) throw notFound('Investigation');
  const check = verifyChain(id, ledger.entries);
  const terminal = ledger.terminal;
  const finalHash = ledger.entries.at(-1)?.hash ?? null;
  const final_hash_matches = terminal ? terminal.data.final_hash === finalHash && terminal.data.entry_count === ledger.entries.length : null;
  return { ...check, valid: check.valid && final_hash_matches !== false, investigation_id: id, entries: ledger.entries.length, final_hash_matches };
}
