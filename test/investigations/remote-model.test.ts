/**
 * An investigation driven by a remote model over the OpenAI-compatible wire, here a local test
 * double of that API (no real model can run in CI): the model's tool calls run against the
 * tenant's real data, a rate limit on the way is recorded and waited out, the conclusion cites
 * what a tool returned, and a replay reproduces the ledger without calling the model again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';
import { openaiRateLimited, openaiToolCalls, startFakeOpenAI, type FakeOpenAI, type RecordedRequest } from '../support/fake-openai.js';
import { ingest, investigate, openCase } from './support.js';

/** The evidence ids the tool results in the conversation so far offered. */
function evidenceOffered(request: RecordedRequest): string[] {
  const messages = (request.json as { messages: { role: string; content: string | null }[] }).messages;
  return messages
    .filter((m) => m.role === 'tool' && m.content)
    .flatMap((m) => [...m.content!.matchAll(/"id":"((?:alert|case|raw|technique|history|indicator):[^"]+)"/g)].map((match) => match[1]!));
}

describe('an investigation with a remote model (OpenAI-compatible)', () => {
  let model: FakeOpenAI;
  let api: TestApi;
  let analyst: Caller;

  beforeAll(async () => {
    model = await startFakeOpenAI({ apiKey: 'sk-test-remote' });
    api = await startTestApi('embedded', {
      AISOC_MODEL_PROVIDER: 'openai',
      AISOC_MODEL_BASE_URL: model.baseUrl,
      AISOC_MODEL_API_KEY: 'sk-test-remote',
      AISOC_MODEL_NAME: 'soc-test-model',
    });
    analyst = await api.user('analyst');
  });
  afterAll(async () => {
    await api?.close();
    await model?.close();
  });

  it('runs the tools the model asks for, waits out a 429, and concludes on evidence a tool returned', async () => {
    const [alertId] = await ingest(api, analyst, [
      { title: 'LSASS memory read on FIN-WS-12', severity: 'high', techniques: ['T1003.001'], entities: [{ type: 'host', value: 'FIN-WS-12' }] },
    ]);
    const caseId = await openCase(api, analyst, 'Credential dumping on FIN-WS-12', [alertId!]);
    let cited: string[] = [];
    model.enqueue(
      openaiToolCalls([
        { id: 'call_1', name: 'get_case', arguments: {} },
        { id: 'call_2', name: 'get_case_alerts', arguments: {} },
      ]),
      openaiRateLimited('0'),
      (request) => {
        cited = evidenceOffered(request).filter((id) => id.startsWith('alert:'));
        return openaiToolCalls([
          {
            id: 'call_3',
            name: 'conclude',
            arguments: { verdict: 'true_positive', confidence: 0.9, summary: 'LSASS was read on FIN-WS-12.', recommended_actions: ['Isolate FIN-WS-12'], evidence_ids: cited },
          },
        ]);
      },
    );

    const investigation = await investigate(api, analyst, caseId);
    expect(investigation.status).toBe('concluded');
    expect(investigation.verdict).toBe('true_positive');
    expect(cited).toEqual([`alert:${alertId}`]);
    expect(investigation.evidence.map((e: { id: string }) => e.id)).toEqual(cited);
    const kinds = investigation.entries.map((e: { kind: string }) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['prompt', 'response', 'tool_call', 'tool_result', 'error', 'decision']));
    expect(investigation.entries.find((e: { kind: string }) => e.kind === 'error').payload).toMatchObject({ source: 'model', error_kind: 'rate_limited', will_retry: true });
    // What the model was sent: the key, the tools, and the results of the tools it called.
    expect(model.requests.every((r) => r.headers.authorization === 'Bearer sk-test-remote')).toBe(true);
    expect((model.requests[0]!.json as { model: string }).model).toBe('soc-test-model');
    expect(model.requests.at(-1)!.raw).toContain('FIN-WS-12');

    const calls = model.requests.length;
    const replay = await api.request('POST', `/api/v1/cases/${caseId}/investigations:replay`, { token: analyst.token, body: { investigation_id: investigation.id } });
    expect(replay.status).toBe(200);
    expect(replay.body).toMatchObject({ identical: true, chain_valid: true, first_difference: null });
    expect(model.requests.length).toBe(calls);
  });
});
