import { z } from 'zod';
import type { Decider } from './decider.js';
import { AppError, notFound } from './errors.js';
import { defineEvent, type EventOf } from './event-types.js';
import { Id, Timestamp } from './values.js';

/**
 * An investigation of a case by the AI investigator. Its stream is its ledger: after the
 * start, every prompt, model response, tool call, tool result, evidence citation, decision and
 * error is one `investigation.entry_recorded` event, hash-chained to the one before (see
 * src/investigations/ledger.ts for the hash). The run ends with `concluded` or `failed`.
 */
export const INVESTIGATION_CATEGORY = 'investigation';
export const investigationStream = (id: string) => `${INVESTIGATION_CATEGORY}-${id}`;

export const Verdict = z.enum(['true_positive', 'false_positive', 'benign', 'needs_more_info']);
export type Verdict = z.infer<typeof Verdict>;

export const EntryKind = z.enum(['prompt', 'response', 'tool_call', 'tool_result', 'evidence', 'decision', 'error']);
export type EntryKind = z.infer<typeof EntryKind>;

export const Hash = z.string().regex(/^[0-9a-f]{64}$/);

/** One ledger entry as it is stored (and hashed: everything but `hash`). */
export const LedgerEntrySchema = z.object({
  seq: z.number().int().min(0),
  at: Timestamp,
  duration_ms: z.number().int().min(0),
  input_tokens: z.number().int().min(0),
  output_tokens: z.number().int().min(0),
  kind: EntryKind,
  payload: z.record(z.string(), z.unknown()),
  prev_hash: Hash,
  hash: Hash,
});
export type LedgerEntry = z.infer<typeof LedgerEntrySchema>;

export const EvidenceItem = z.object({ id: z.string().min(1).max(300), kind: z.string().max(64), summary: z.string().max(1000) });
export type EvidenceItem = z.infer<typeof EvidenceItem>;

export const InvestigationStarted = defineEvent(
  'investigation.started',
  z.object({
    investigation_id: Id,
    case_id: Id,
    /** The user (or key) who asked for it. */
    requested_by: Id,
    /** The model provider and model the run was started with. */
    provider: z.string().max(64),
    model: z.string().max(200),
    /** The most model turns before the run gives up. */
    max_turns: z.number().int().min(1).max(100),
    /** What the requester wants looked at, passed to the model as is. */
    focus: z.string().max(2000).nullable().default(null),
  }),
);
export const InvestigationEntryRecorded = defineEvent('investigation.entry_recorded', LedgerEntrySchema);
export const InvestigationConcluded = defineEvent(
  'investigation.concluded',
  z.object({
    verdict: Verdict,
    confidence: z.number().min(0).max(1),
    summary: z.string().min(1).max(4000),
    recommended_actions: z.array(z.string().max(500)).max(20),
    evidence: z.array(EvidenceItem).max(200),
    entry_count: z.number().int().min(1),
    final_hash: Hash,
  }),
);
export const InvestigationFailed = defineEvent(
  'investigation.failed',
  z.object({ reason: z.string().min(1).max(4000), entry_count: z.number().int().min(0), final_hash: Hash.nullable() }),
);

export const INVESTIGATION_EVENTS = [InvestigationStarted, InvestigationEntryRecorded, InvestigationConcluded, InvestigationFailed] as const;
export type InvestigationEvent = EventOf<(typeof INVESTIGATION_EVENTS)[number]>;

export type InvestigationStatus = 'queued' | 'running' | 'concluded' | 'failed';

export interface InvestigationState {
  exists: boolean;
  caseId: string;
  status: InvestigationStatus;
  entryCount: number;
  lastHash: string | null;
}

export type InvestigationCommand =
  | { type: 'StartInvestigation'; investigation: z.input<typeof InvestigationStarted.schema> }
  | { type: 'RecordEntries'; entries: LedgerEntry[] }
  | { type: 'ConcludeInvestigation'; conclusion: Omit<z.input<typeof InvestigationConcluded.schema>, 'entry_count' | 'final_hash'> }
  | { type: 'FailInvestigation'; reason: string };

const initialState = (): InvestigationState => ({ exists: false, caseId: '', status: 'queued', entryCount: 0, lastHash: null });

function evolve(state: InvestigationState, event: InvestigationEvent): InvestigationState {
  switch (event.type) {
    case 'investigation.started':
      return { ...state, exists: true, caseId: event.data.case_id, status: 'queued' };
    case 'investigation.entry_recorded':
      return { ...state, status: 'running', entryCount: state.entryCount + 1, lastHash: event.data.hash };
    case 'investigation.concluded':
      return { ...state, status: 'concluded' };
    case 'investigation.failed':
      return { ...state, status: 'failed' };
  }
}

export const isFinished = (status: InvestigationStatus) => status === 'concluded' || status === 'failed';

function decide(command: InvestigationCommand, state: InvestigationState): InvestigationEvent[] {
  if (command.type === 'StartInvestigation') {
    if (state.exists) throw new AppError('conflict', 'This investigation already exists');
    return [InvestigationStarted(command.investigation)];
  }
  if (!state.exists) throw notFound('Investigation');
  if (isFinished(state.status)) throw new AppError('conflict', `The investigation has ${state.status}; its ledger is closed`);
  switch (command.type) {
    case 'RecordEntries': {
      // The chain is checked where it is extended: each entry follows the last one recorded.
      let seq = state.entryCount;
      let previous = state.lastHash;
      for (const entry of command.entries) {
        if (entry.seq !== seq) throw new AppError('conflict', `Ledger entry ${entry.seq} recorded where ${seq} was due`);
        if (previous !== null && entry.prev_hash !== previous) throw new AppError('conflict', `Ledger entry ${entry.seq} does not follow the previous entry's hash`);
        previous = entry.hash;
        seq += 1;
      }
      return command.entries.map((entry) => InvestigationEntryRecorded(entry));
    }
    case 'ConcludeInvestigation':
      if (state.lastHash === null) throw new AppError('unprocessable', 'An investigation concludes only after its ledger has entries');
      return [InvestigationConcluded({ ...command.conclusion, entry_count: state.entryCount, final_hash: state.lastHash })];
    case 'FailInvestigation':
      return [InvestigationFailed({ reason: command.reason.slice(0, 4000), entry_count: state.entryCount, final_hash: state.lastHash })];
  }
}

export const investigationDecider: Decider<InvestigationCommand, InvestigationEvent, InvestigationState> = { initialState, evolve, decide };
