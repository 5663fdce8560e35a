import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { canonicalJson } from '../audit/canonical.js';
import { AppError } from '../domain/errors.js';
import { Verdict, type EntryKind, type EvidenceItem, type LedgerEntry } from '../domain/investigation.js';
import { estimateTokens, genesisHash, seal } from './ledger.js';
import { CONCLUDE_TOOL, ModelError, type ChatMessage, type ModelProvider, type ModelTurn, type ToolCall } from './model.js';
import { TOOL_SPECS, type ToolBox, type ToolOutput } from './tools.js';

/**
 * The investigator: drives a model through a case with tools until it concludes, and writes
 * every step as a ledger entry. One loop serves three uses:
 * - a live run (every model turn and tool result is new),
 * - a resume after a restart (the recorded entries are substituted for the model's answers,
 *   the tools' results and the timestamps, up to where the ledger stops; then it goes on live),
 * - a replay (everything is substituted; nothing live is called; the re-executed entries are
 *   compared with the recorded ones).
 * Whatever is not substituted (prompts, tool calls, evidence, decisions, refusals) is computed
 * again by this code, so a replay also checks that the run follows from what it recorded.
 */
export const SYSTEM_PROMPT = [
  'You are the AiSOC investigator, a security analyst working one case.',
  'Use the tools to read the case, its alerts and their raw events, the history of its entities, related cases, how common its indicators are and what its ATT&CK techniques mean.',
  'Then call `conclude` exactly once with a verdict (true_positive, false_positive, benign or needs_more_info), a confidence between 0 and 1, a summary, recommended actions and the ids of the evidence you rely on.',
  'Cite only evidence ids that tool results listed under "evidence": a conclusion citing any other id is refused.',
].join('\n');

export interface InvestigationBrief {
  investigationId: string;
  caseId: string;
  maxTurns: number;
  focus: string | null;
}

export function briefMessage(brief: InvestigationBrief): string {
  return `Investigate case ${brief.caseId}.${brief.focus ? `\nThe requester asks you to look at: ${brief.focus}` : ''}`;
}

export interface EngineOptions {
  brief: InvestigationBrief;
  provider: ModelProvider;
  /** null when nothing may run live (a replay). */
  tools: ToolBox | null;
  /** Entries recorded earlier: substituted, in order, for what they recorded. */
  recorded: readonly LedgerEntry[];
  now(): Date;
  sleep(ms: number): Promise<void>;
  /** Every entry, in order, as it is produced. */
  emit(entry: LedgerEntry): Promise<void>;
  /** Called before anything live (a model call): the moment to make progress visible. */
  beforeLive?(): Promise<void>;
  /** Model calls are tried this often before the run fails (default 3). */
  modelAttempts?: number;
  /** Longest wait between attempts (default 30 s; a Retry-After longer than this is cut short). */
  maxRetryDelayMs?: number;
  onToolError?(error: unknown, tool: string): void;
}

export interface Conclusion {
  verdict: Verdict;
  confidence: number;
  summary: string;
  recommended_actions: string[];
  evidence: EvidenceItem[];
}

export type Outcome =
  | { status: 'concluded'; conclusion: Conclusion; entries: number }
  | { status: 'failed'; reason: string; entries: number }
  /** A replay (or a resume without live calls) that ran out of recorded entries. */
  | { status: 'incomplete'; entries: number };

/** The recorded entry at `seq` is not what re-execution needs there. */
export class Divergence extends Error {
  constructor(
    readonly seq: number,
    readonly field: string,
    readonly recordedValue: unknown,
    readonly replayedValue: unknown,
  ) {
    super(`Entry ${seq} diverges from the ledger at ${field}`);
    this.name = 'Divergence';
  }
}

const ConclusionArgs = z.object({
  verdict: Verdict,
  confidence: z.number().min(0).max(1),
  summary: z.string().trim().min(1).max(4000),
  recommended_actions: z.array(z.string().max(500)).max(20),
  evidence_ids: z.array(z.string().max(300)).max(200),
});

const MAX_REFUSALS = 2;
const MAX_NUDGES = 2;
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** A tool message as the prompt entry records it: its content is in the tool_result entry. */
function recordedMessage(message: ChatMessage): Record<string, unknown> {
  switch (message.role) {
    case 'tool':
      return { role: 'tool', tool_call_id: message.toolCallId, name: message.name, content_sha256: sha256(message.content) };
    case 'assistant':
      return { role: 'assistant', content: message.content, tool_calls: message.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })) };
    default:
      return { role: message.role, content: message.content };
  }
}

function modelErrorOf(error: unknown): ModelError {
  if (error instanceof ModelError) return error;
  return new ModelError('malformed', `The provider failed unexpectedly: ${error instanceof Error ? error.message : String(error)}`);
}

const RETRYABLE = new Set(['timeout', 'rate_limited', 'network', 'malformed']);

export async function runInvestigation(options: EngineOptions): Promise<Outcome> {
  const { brief, provider, tools, recorded } = options;
  const attempts = options.modelAttempts ?? 3;
  const maxDelay = options.maxRetryDelayMs ?? 30_000;
  const specs = tools?.specs ?? TOOL_SPECS;

  let seq = 0;
  let previous = genesisHash(brief.investigationId);
  const recordedAt = () => recorded[seq];
  /** Timestamps of computed entries: the recorded ones where the ledger has them. */
  const stamp = () => {
    const r = recordedAt();
    return r ? { at: r.at, duration_ms: r.duration_ms } : { at: options.now().toISOString(), duration_ms: 0 };
  };
  const produce = async (kind: EntryKind, payload: Record<string, unknown>, extra: { at: string; duration_ms: number; input_tokens?: number; output_tokens?: number }) => {
    const entry = seal({ kind, payload, at: extra.at, duration_ms: extra.duration_ms, input_tokens: extra.input_tokens ?? 0, output_tokens: extra.output_tokens ?? 0 }, seq, previous);
    seq += 1;
    previous = entry.hash;
    await options.emit(entry);
    return entry;
  };
  const failed = (reason: string): Outcome => ({ status: 'failed', reason, entries: seq });
  const incomplete = (): Outcome => ({ status: 'incomplete', entries: seq });

  const messages: ChatMessage[] = [
    { role: 'system', content: SYSTEM_PROMPT },
    { role: 'user', content: briefMessage(brief) },
  ];
  let prompted = 0;
  const evidence = new Map<string, EvidenceItem>();
  let refusals = 0;
  let nudges = 0;

  /** One model turn, with its retries: the turn, a failure, or the end of what was recorded. */
  async function callModel(): Promise<ModelTurn | { failed: string } | 'incomplete'> {
    for (let attempt = 1; ; attempt += 1) {
      const r = recordedAt();
      let turn: ModelTurn | undefined;
      let error: ModelError | undefined;
      let timing: { at: string; duration_ms: number };
      if (r) {
        timing = { at: r.at, duration_ms: r.duration_ms };
        if (r.kind === 'response') {
          const p = r.payload as { content?: unknown; tool_calls?: unknown; stop_reason?: unknown };
          turn = {
            content: typeof p.content === 'string' ? p.content : '',
            toolCalls: Array.isArray(p.tool_calls) ? (p.tool_calls as ToolCall[]) : [],
            stopReason: (p.stop_reason as ModelTurn['stopReason']) ?? 'end',
            usage: { inputTokens: r.input_tokens, outputTokens: r.output_tokens },
          };
        } else if (r.kind === 'error' && r.payload.source === 'model') {
          const p = r.payload as { error_kind?: string; message?: string; status?: number; retry_after_ms?: number };
          error = new ModelError((p.error_kind ?? 'http') as ModelError['kind'], String(p.message ?? ''), {
            ...(p.status === undefined ? {} : { status: p.status }),
            ...(p.retry_after_ms === undefined ? {} : { retryAfterMs: p.retry_after_ms }),
          });
        } else {
          throw new Divergence(seq, 'kind', r.kind, 'response');
        }
      } else {
        if (!tools) return 'incomplete';
        await options.beforeLive?.();
        const at = options.now().toISOString();
        const started = performance.now();
        try {
          turn = normalizeTurn(await provider.complete({ messages: [...messages], tools: specs }), seq);
        } catch (caught) {
          error = modelErrorOf(caught);
        }
        timing = { at, duration_ms: performance.now() - started };
      }
      if (turn) {
        await produce(
          'response',
          { content: turn.content, tool_calls: turn.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })), stop_reason: turn.stopReason },
          { ...timing, input_tokens: turn.usage.inputTokens, output_tokens: turn.usage.outputTokens },
        );
        return turn;
      }
      const willRetry = RETRYABLE.has(error!.kind) && attempt < attempts;
      const delay = Math.min(maxDelay, error!.details.retryAfterMs ?? 250 * 2 ** (attempt - 1));
      await produce(
        'error',
        {
          source: 'model',
          error_kind: error!.kind,
          message: error!.message.slice(0, 2000),
          ...(error!.details.status === undefined ? {} : { status: error!.details.status }),
          ...(error!.details.retryAfterMs === undefined ? {} : { retry_after_ms: error!.details.retryAfterMs }),
          attempt,
          will_retry: willRetry,
          ...(willRetry ? { retry_in_ms: delay } : {}),
        },
        timing,
      );
      if (!willRetry) return { failed: `The model call failed${attempt > 1 ? ` after ${attempt} attempts` : ''}: ${error!.kind}: ${error!.message}`.slice(0, 4000) };
      // Only a live retry waits; a substituted one has nothing to wait for.
      if (!r) await options.sleep(delay);
    }
  }

  async function runTool(call: ToolCall): Promise<ToolOutput & { ok: boolean; error?: string } | 'incomplete'> {
    const r = recordedAt();
    let result: ToolOutput & { ok: boolean; error?: string };
    let timing: { at: string; duration_ms: number };
    if (r) {
      if (r.kind !== 'tool_result') throw new Divergence(seq, 'kind', r.kind, 'tool_result');
      const p = r.payload as { ok?: boolean; content?: Record<string, unknown>; evidence?: EvidenceItem[]; error?: string };
      result = { ok: p.ok === true, content: p.content ?? {}, evidence: Array.isArray(p.evidence) ? p.evidence : [], ...(p.error === undefined ? {} : { error: p.error }) };
      timing = { at: r.at, duration_ms: r.duration_ms };
    } else {
      if (!tools) return 'incomplete';
      const at = options.now().toISOString();
      const started = performance.now();
      try {
        result = { ok: true, ...(await tools.run(call.name, call.arguments)) };
      } catch (error) {
        options.onToolError?.(error, call.name);
        result = { ok: false, content: {}, evidence: [], error: error instanceof AppError ? error.message : `The tool ${call.name} failed` };
      }
      timing = { at, duration_ms: performance.now() - started };
    }
    await produce(
      'tool_result',
      { tool_call_id: call.id, name: call.name, ok: result.ok, content: result.content, evidence: result.evidence, ...(result.error === undefined ? {} : { error: result.error }) },
      timing,
    );
    return result;
  }

  for (let turnNo = 1; turnNo <= brief.maxTurns; turnNo += 1) {
    const fresh = messages.slice(prompted);
    prompted = messages.length;
    await produce(
      'prompt',
      {
        turn: turnNo,
        message_count: messages.length,
        messages_sha256: sha256(canonicalJson(messages.map(recordedMessage))),
        new_messages: fresh.map(recordedMessage),
        ...(turnNo === 1 ? { tools: specs.map((s) => s.name) } : {}),
      },
      { ...stamp(), input_tokens: estimateTokens(fresh.map((m) => m.content).join('\n')) },
    );
    const answer = await callModel();
    if (answer === 'incomplete') return incomplete();
    if ('failed' in answer) return failed(answer.failed);
    messages.push({ role: 'assistant', content: answer.content, toolCalls: answer.toolCalls });

    if (answer.toolCalls.length === 0) {
      nudges += 1;
      if (nudges > MAX_NUDGES) return failed(`The model stopped ${nudges} times without calling ${CONCLUDE_TOOL}`);
      messages.push({ role: 'user', content: `Call the tools you need, then call ${CONCLUDE_TOOL} with your verdict.` });
      continue;
    }

    for (const call of answer.toolCalls) {
      await produce('tool_call', { tool_call_id: call.id, name: call.name, arguments: call.arguments }, stamp());
      if (call.name !== CONCLUDE_TOOL) {
        const result = await runTool(call);
        if (result === 'incomplete') return incomplete();
        const added = result.evidence.filter((item) => !evidence.has(item.id));
        for (const item of result.evidence) if (!evidence.has(item.id)) evidence.set(item.id, item);
        messages.push({
          role: 'tool',
          toolCallId: call.id,
          name: call.name,
          content: canonicalJson(result.ok ? { result: result.content, evidence: result.evidence } : { error: result.error ?? 'failed' }),
        });
        if (added.length > 0) await produce('evidence', { tool_call_id: call.id, items: added }, stamp());
        continue;
      }

      // The conclusion: well-formed, and grounded in evidence the tools returned.
      const parsed = ConclusionArgs.safeParse(call.arguments);
      let refusal: { reason: string; payload: Record<string, unknown> } | null = null;
      if (!parsed.success) {
        refusal = {
          reason: 'The conclusion is malformed',
          payload: { source: 'conclusion', problem: 'malformed', issues: parsed.error.issues.map((i) => ({ path: i.path.join('/'), message: i.message })) },
        };
      } else {
        const cited = [...new Set(parsed.data.evidence_ids)];
        const unknown = cited.filter((id) => !evidence.has(id));
        if (unknown.length > 0) {
          refusal = {
            reason: `The conclusion cites evidence no tool returned: ${unknown.join(', ')}`.slice(0, 2000),
            payload: { source: 'grounding', problem: 'ungrounded', unknown_evidence_ids: unknown },
          };
        } else if (cited.length === 0 && parsed.data.verdict !== 'needs_more_info') {
          refusal = { reason: 'A verdict other than needs_more_info must cite evidence', payload: { source: 'grounding', problem: 'no_evidence' } };
        } else {
          const conclusion: Conclusion = {
            verdict: parsed.data.verdict,
            confidence: Math.round(parsed.data.confidence * 1000) / 1000,
            summary: parsed.data.summary,
            recommended_actions: parsed.data.recommended_actions,
            evidence: cited.map((id) => evidence.get(id)!),
          };
          await produce('decision', { tool_call_id: call.id, ...conclusion }, stamp());
          return { status: 'concluded', conclusion, entries: seq };
        }
      }
      refusals += 1;
      await produce('error', { ...refusal.payload, message: refusal.reason, tool_call_id: call.id, refusal: refusals }, stamp());
      if (refusals > MAX_REFUSALS) return failed(`The conclusion was refused ${refusals} times; last: ${refusal.reason}`.slice(0, 4000));
      messages.push({ role: 'tool', toolCallId: call.id, name: call.name, content: canonicalJson({ refused: true, reason: refusal.reason }) });
    }
  }
  return failed(`No conclusion within ${brief.maxTurns} model turns`);
}

/** Provider answers made safe to record: every call has an id and object arguments. */
function normalizeTurn(turn: ModelTurn, seq: number): ModelTurn {
  if (!turn || typeof turn !== 'object' || !Array.isArray(turn.toolCalls)) throw new ModelError('malformed', 'The provider answered without a list of tool calls');
  return {
    content: typeof turn.content === 'string' ? turn.content : '',
    toolCalls: turn.toolCalls.map((call, i) => ({
      id: typeof call.id === 'string' && call.id !== '' ? call.id : `call_${seq}_${i + 1}`,
      name: String(call.name),
      arguments: call.arguments && typeof call.arguments === 'object' && !Array.isArray(call.arguments) ? JSON.parse(JSON.stringify(call.arguments)) : {},
    })),
    stopReason: turn.stopReason ?? 'end',
    usage: { inputTokens: Math.max(0, Math.round(turn.usage?.inputTokens ?? 0)), outputTokens: Math.max(0, Math.round(turn.usage?.outputTokens ?? 0)) },
  };
}

// ---------------------------------------------------------------------------------------------
// Comparison of a re-executed entry with the recorded one.

export interface Difference {
  seq: number;
  field: string;
  recorded: unknown;
  replayed: unknown;
}

const FIELDS = ['seq', 'at', 'duration_ms', 'input_tokens', 'output_tokens', 'kind', 'payload', 'prev_hash', 'hash'] as const;

/** The first field (a dotted path into the payload) where two entries differ, or null. */
export function firstDifference(recorded: LedgerEntry, replayed: LedgerEntry): Difference | null {
  for (const field of FIELDS) {
    const path = diffPath(recorded[field], replayed[field], field);
    if (path) return { seq: replayed.seq, ...path };
  }
  return null;
}

function diffPath(a: unknown, b: unknown, path: string): { field: string; recorded: unknown; replayed: unknown } | null {
  if (canonicalOrNull(a) === canonicalOrNull(b)) return null;
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';
  if (isObject(a) && isObject(b) && Array.isArray(a) === Array.isArray(b)) {
    const keys = Array.isArray(a) ? [...Array(Math.max((a as unknown as unknown[]).length, (b as unknown as unknown[]).length)).keys()].map(String) : [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const key of keys) {
      const inner = diffPath(a[key], b[key], Array.isArray(a) ? `${path}[${key}]` : `${path}.${key}`);
      if (inner) return inner;
    }
  }
  return { field: path, recorded: a ?? null, replayed: b ?? null };
}

function canonicalOrNull(value: unknown): string {
  try {
    return value === undefined ? 'undefined' : canonicalJson(value);
  } catch {
    return String(value);
  }
}
