/**
 * The investigator's loop with scripted model providers: the grounding check refuses a
 * conclusion citing evidence no tool returned, model errors (rate limits with Retry-After,
 * timeouts, malformed answers, a provider that throws anything) are recorded as error entries,
 * retried within a bound, and end the run as failed with a reason, never as an exception.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleCommand } from '../../src/commands/handler.js';
import { investigationDecider, investigationStream, type LedgerEntry } from '../../src/domain/investigation.js';
import { runInvestigation, type Outcome } from '../../src/investigations/investigator.js';
import { verifyChain } from '../../src/investigations/ledger.js';
import { ModelError, type ModelProvider, type ModelRequest, type ModelTurn, type ToolCall } from '../../src/investigations/model.js';
import { executeInvestigation, loadLedger, replayLedger } from '../../src/investigations/runner.js';
import { TOOL_SPECS, type ToolBox } from '../../src/investigations/tools.js';
import { silentLogger } from '../../src/lib/logger.js';
import { testRuntime, type TestRuntime } from '../support/runtime.js';

const turn = (calls: Omit<ToolCall, 'id'>[], content = ''): ModelTurn => ({
  content,
  toolCalls: calls.map((c, i) => ({ id: `c${i}`, ...c })),
  usage: { inputTokens: 10, outputTokens: 5 },
  stopReason: 'tool_calls',
});

/** A provider that plays a script: each step answers or throws. */
function scripted(steps: ((request: ModelRequest) => ModelTurn)[]): ModelProvider & { calls: number } {
  const provider = {
    name: 'scripted',
    model: 'test',
    calls: 0,
    async complete(request: ModelRequest) {
      const step = steps[Math.min(provider.calls, steps.length - 1)]!;
      provider.calls += 1;
      return step(request);
    },
  };
  return provider;
}

/** Tools over fixed data: one alert. */
const tools: ToolBox = {
  specs: TOOL_SPECS,
  async run(name) {
    if (name === 'get_case_alerts') return { content: { alerts: [{ id: 'a1', title: 'Mimikatz' }] }, evidence: [{ id: 'alert:a1', kind: 'alert', summary: 'Mimikatz' }] };
    throw new Error(`unexpected tool ${name}`);
  },
};

const conclude = (evidence_ids: string[]) => ({
  name: 'conclude',
  arguments: { verdict: 'true_positive', confidence: 0.9, summary: 'Credential dumping', recommended_actions: ['Reset credentials'], evidence_ids },
});

async function run(provider: ModelProvider, options: { sleeps?: number[]; maxTurns?: number } = {}): Promise<{ outcome: Outcome; entries: LedgerEntry[] }> {
  const entries: LedgerEntry[] = [];
  const outcome = await runInvestigation({
    brief: { investigationId: '018f0000-0000-7000-8000-000000000001', caseId: 'c1', maxTurns: options.maxTurns ?? 6, focus: null },
    provider,
    tools,
    recorded: [],
    now: () => new Date('2026-11-29T12:00:00Z'),
    sleep: async (ms) => void options.sleeps?.push(ms),
    emit: async (entry) => void entries.push(entry),
  });
  return { outcome, entries };
}

describe('the investigator loop', () => {
  it('refuses a conclusion that cites evidence no tool returned, records why, and accepts a grounded one', async () => {
    const provider = scripted([
      () => turn([{ name: 'get_case_alerts', arguments: {} }]),
      () => turn([conclude(['alert:a1', 'alert:made-up'])]),
      (request) => {
        // The refusal reached the model as the conclude call's tool result.
        const last = request.messages.at(-1)!;
        expect(last).toMatchObject({ role: 'tool', name: 'conclude' });
        expect(JSON.parse(last.content as string)).toMatchObject({ refused: true });
        return turn([conclude(['alert:a1'])]);
      },
    ]);
    const { outcome, entries } = await run(provider);
    expect(outcome.status).toBe('concluded');
    const error = entries.find((e) => e.kind === 'error')!;
    expect(error.payload).toMatchObject({ source: 'grounding', unknown_evidence_ids: ['alert:made-up'] });
    const decisions = entries.filter((e) => e.kind === 'decision');
    expect(decisions).toHaveLength(1);
    expect(decisions[0]!.payload.evidence).toEqual([{ id: 'alert:a1', kind: 'alert', summary: 'Mimikatz' }]);
    expect(verifyChain('018f0000-0000-7000-8000-000000000001', entries).valid).toBe(true);
  });

  it('fails a run whose model keeps citing made-up evidence', async () => {
    const { outcome, entries } = await run(scripted([() => turn([conclude(['alert:nope'])])]));
    expect(outcome).toMatchObject({ status: 'failed', reason: expect.stringMatching(/refused 3 times.*alert:nope/) });
    expect(entries.filter((e) => e.kind === 'error')).toHaveLength(3);
    expect(entries.some((e) => e.kind === 'decision')).toBe(false);
  });

  it('retries a rate-limited call after its Retry-After, recording each error, then goes on', async () => {
    const sleeps: number[] = [];
    let calls = 0;
    const provider: ModelProvider = {
      name: 'scripted',
      model: 'test',
      async complete() {
        calls += 1;
        if (calls <= 2) throw new ModelError('rate_limited', 'HTTP 429 Too Many Requests', { status: 429, retryAfterMs: 1500 });
        return calls === 3 ? turn([{ name: 'get_case_alerts', arguments: {} }]) : turn([conclude(['alert:a1'])]);
      },
    };
    const { outcome, entries } = await run(provider, { sleeps });
    expect(outcome.status).toBe('concluded');
    const errors = entries.filter((e) => e.kind === 'error');
    expect(errors.map((e) => e.payload)).toEqual([
      { source: 'model', error_kind: 'rate_limited', message: 'HTTP 429 Too Many Requests', status: 429, retry_after_ms: 1500, attempt: 1, will_retry: true, retry_in_ms: 1500 },
      { source: 'model', error_kind: 'rate_limited', message: 'HTTP 429 Too Many Requests', status: 429, retry_after_ms: 1500, attempt: 2, will_retry: true, retry_in_ms: 1500 },
    ]);
    expect(sleeps).toEqual([1500, 1500]);
  });

  it('ends as failed with a reason when every attempt times out, and when the provider throws something else', async () => {
    const timeouts = await run(scripted([() => { throw new ModelError('timeout', 'no answer within 60000 ms'); }]), { sleeps: [] });
    expect(timeouts.outcome).toEqual({ status: 'failed', reason: 'The model call failed after 3 attempts: timeout: no answer within 60000 ms', entries: 4 });
    expect(timeouts.entries.map((e) => e.kind)).toEqual(['prompt', 'error', 'error', 'error']);

    const broken = await run(scripted([() => { throw new TypeError('cannot read properties of undefined'); }]), { sleeps: [] });
    expect(broken.outcome).toMatchObject({ status: 'failed', reason: expect.stringMatching(/malformed: The provider failed unexpectedly: cannot read properties/) });

    const http = await run(scripted([() => { throw new ModelError('http', 'HTTP 401 Unauthorized', { status: 401 }); }]), { sleeps: [] });
    expect(http.outcome).toMatchObject({ status: 'failed', reason: 'The model call failed: http: HTTP 401 Unauthorized' });
    expect(http.entries.filter((e) => e.kind === 'error')).toHaveLength(1);
  });

  it('nudges a model that answers without tools, and gives up when it never concludes', async () => {
    const chatty = await run(scripted([() => ({ ...turn([]), content: 'I think it is fine.', stopReason: 'end' })]));
    expect(chatty.outcome).toMatchObject({ status: 'failed', reason: expect.stringMatching(/without calling conclude/) });
    const looping = await run(scripted([() => turn([{ name: 'get_case_alerts', arguments: {} }])]), { maxTurns: 3 });
    expect(looping.outcome).toMatchObject({ status: 'failed', reason: 'No conclusion within 3 model turns' });
  });
});

describe('a failing run in the store', () => {
  let fixture: TestRuntime;
  beforeAll(async () => {
    fixture = await testRuntime('embedded');
    // Nothing runs the reactor here: this test drives the run itself.
    await fixture.runtime.daemon.stop();
  });
  afterAll(async () => fixture?.cleanup());

  it('is recorded as failed with its reason, its errors in the ledger, and replays identically', async () => {
    const rt = fixture.runtime;
    const id = rt.commands.ids.newId();
    await handleCommand(rt.commands, investigationDecider, investigationStream(id), {
      type: 'StartInvestigation',
      investigation: { investigation_id: id, case_id: rt.commands.ids.newId(), requested_by: 'u1', provider: 'scripted', model: 'test', max_turns: 5, focus: null },
    }, { tenantId: 'default', actor: { type: 'user', id: 'u1' } });
    const provider = scripted([() => { throw new ModelError('rate_limited', 'slow down', { status: 429, retryAfterMs: 10 }); }]);
    const outcome = await executeInvestigation({ commands: rt.commands, db: rt.database.db, logger: silentLogger() }, id, { provider, sleep: async () => undefined });
    expect(outcome).toMatchObject({ status: 'failed' });
    const ledger = (await loadLedger(rt.store, rt.commands.registry, id, 'default'))!;
    expect(ledger.state.status).toBe('failed');
    expect(ledger.terminal).toMatchObject({ type: 'investigation.failed', data: { reason: 'The model call failed after 3 attempts: rate_limited: slow down', entry_count: 4 } });
    expect(ledger.entries.map((e) => e.kind)).toEqual(['prompt', 'error', 'error', 'error']);
    expect(await replayLedger(ledger)).toEqual({ identical: true, entries_compared: 4, first_difference: null, chain_valid: true });
    // Another tenant does not see it.
    expect(await loadLedger(rt.store, rt.commands.registry, id, 'acme')).toBeNull();
  });
});
