/**
 * AI investigations through real HTTP, with the built-in reasoner: started on a case, run by
 * the reactor, ledger readable while and after it runs, a verdict grounded in the evidence its
 * tools returned, the case timeline noting start and outcome, and a replay that reproduces the
 * ledger exactly. Runs on PostgreSQL when DATABASE_URL is set, else on PGlite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { genesisHash, verifyChain } from '../../src/investigations/ledger.js';
import { LIMITS } from '../response/support.js';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';
import { hasPostgres } from '../support/databases.js';
import { finished, ingest, investigate, openCase } from './support.js';

type Entry = { seq: number; kind: string; payload: Record<string, any>; hash: string; prev_hash: string; input_tokens: number; output_tokens: number };

/** Every evidence id any tool result in the ledger returned. */
/** The investigation entries of a case's timeline, once there are `count` of them. */
async function investigationTimeline(api: TestApi, caller: Caller, caseId: string, count: number): Promise<{ kind: string; data: Record<string, unknown> }[]> {
  for (let i = 0; ; i += 1) {
    const detail = await api.request('GET', `/api/v1/cases/${caseId}`, { token: caller.token });
    const entries = detail.body.timeline.filter((t: { kind: string }) => t.kind.startsWith('investigation_'));
    if (entries.length >= count || i > 400) return entries;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const returnedEvidence = (entries: Entry[]) => new Set(entries.filter((e) => e.kind === 'tool_result').flatMap((e) => e.payload.evidence.map((x: { id: string }) => x.id)));

describe('investigations', () => {
  let api: TestApi;
  let analyst: Caller;
  beforeAll(async () => {
    api = await startTestApi(hasPostgres ? 'server' : 'embedded', LIMITS);
    analyst = await api.user('analyst');
  });
  afterAll(async () => api?.close());

  it('concludes true_positive on credential dumping, lateral movement and deleted shadow copies, citing only evidence its tools returned', async () => {
    const ids = await ingest(api, analyst, [
      { title: 'Mimikatz on FIN-WS-12', severity: 'high', rule: 'credential_dumping', techniques: ['T1003.001'], entities: [{ type: 'host', value: 'FIN-WS-12' }, { type: 'user', value: 'j.doe' }], raw: { cmd: 'mimikatz.exe sekurlsa::logonpasswords' } },
      { title: 'PsExec from FIN-WS-12 to FIN-SRV-02', severity: 'high', techniques: ['T1569.002', 'T1021.002'], entities: [{ type: 'host', value: 'FIN-WS-12' }, { type: 'host', value: 'FIN-SRV-02' }] },
      { title: 'Shadow copies deleted on FIN-SRV-02', severity: 'critical', techniques: ['T1490'], entities: [{ type: 'host', value: 'FIN-SRV-02' }] },
    ]);
    const caseId = await openCase(api, analyst, 'Ransomware precursor on FIN', ids);

    const started = await api.request('POST', `/api/v1/cases/${caseId}/investigations:start`, { token: analyst.token, body: {} });
    expect(started.status).toBe(202);
    expect(started.headers.get('location')).toBe(`/api/v1/investigations/${started.body.id}`);
    expect(started.body).toMatchObject({ case_id: caseId, provider: 'builtin', requested_by: analyst.userId, verdict: null });
    expect(['queued', 'running', 'concluded']).toContain(started.body.status);

    const done = await finished(api, analyst, started.body.id);
    expect(done.status).toBe('concluded');
    expect(done.verdict).toBe('true_positive');
    expect(done.confidence).toBeGreaterThanOrEqual(0.8);
    expect(done.summary).toMatch(/T1003\.001/);
    expect(done.summary).toMatch(/T1490/);
    expect(done.recommended_actions.join(' ')).toMatch(/Isolate .*FIN-SRV-02/);
    expect(done.recommended_actions.join(' ')).toMatch(/credentials of j\.doe/);

    const entries = done.entries as Entry[];
    expect(new Set(entries.map((e) => e.kind))).toEqual(new Set(['prompt', 'response', 'tool_call', 'tool_result', 'evidence', 'decision']));
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i));
    expect(entries[0]!.prev_hash).toBe(genesisHash(done.id));
    expect(verifyChain(done.id, entries as never).valid).toBe(true);
    expect(done.final_hash).toBe(entries.at(-1)!.hash);
    expect(done.usage.input_tokens).toBeGreaterThan(0);
    expect(done.usage.output_tokens).toBeGreaterThan(0);

    // The tools read the real alerts, and the verdict cites alerts and techniques they returned.
    const tools = entries.filter((e) => e.kind === 'tool_call').map((e) => e.payload.name);
    expect(tools).toEqual(expect.arrayContaining(['get_case', 'get_case_alerts', 'technique_details', 'get_alert_raw', 'conclude']));
    const raw = entries.find((e) => e.kind === 'tool_result' && e.payload.name === 'get_alert_raw')!;
    expect(raw.payload.content.raw).toContainEqual({ alert_id: ids[0], truncated: false, payload: { cmd: 'mimikatz.exe sekurlsa::logonpasswords' } });
    const cited = done.evidence.map((e: { id: string }) => e.id);
    expect(cited).toEqual(expect.arrayContaining([`alert:${ids[2]}`, 'technique:T1003.001', 'technique:T1490', `case:${caseId}`]));
    const returned = returnedEvidence(entries);
    for (const id of cited) expect(returned.has(id), id).toBe(true);
    expect(entries.at(-1)).toMatchObject({ kind: 'decision', payload: { verdict: 'true_positive' } });

    // The case's timeline records the start and the conclusion.
    const timeline = await investigationTimeline(api, analyst, caseId, 2);
    expect(timeline.map((t: { kind: string }) => t.kind)).toEqual(['investigation_started', 'investigation_concluded']);
    expect(timeline[1]!.data).toMatchObject({ investigation_id: done.id, verdict: 'true_positive' });

    // A replay re-executes it with the recorded answers and reproduces every entry.
    const replay = await api.request('POST', `/api/v1/cases/${caseId}/investigations:replay`, { token: analyst.token, body: { investigation_id: done.id } });
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual({ identical: true, entries_compared: entries.length, first_difference: null, chain_valid: true });

    // The audit log says what happened, in words.
    const admin = await api.admin();
    let audit: { summary: string }[] = [];
    for (let i = 0; i < 400 && audit.length === 0; i += 1) {
      const page = await api.request('GET', `/api/v1/audit?resource_type=investigation&resource_id=${done.id}&action=investigation.concluded`, { token: admin.token });
      audit = page.body.items;
      if (audit.length === 0) await new Promise((r) => setTimeout(r, 25));
    }
    expect(audit.map((a) => a.summary)).toEqual([`Investigation concluded: true_positive (confidence ${done.confidence}), citing ${cited.length} piece(s) of evidence`]);
  });

  it('concludes false_positive when earlier alerts on the same host were false positives, and sees only its own tenant', async () => {
    // No rule: alerts of one rule on one host would be correlated into one alert.
    const scanner = [{ type: 'host', value: 'SCAN-01' }];
    const earlier = await ingest(api, analyst, Array.from({ length: 4 }, (_, i) => ({ title: `Port sweep ${i} from SCAN-01`, severity: 'medium' as const, techniques: ['T1046'], entities: scanner })));
    for (const id of earlier) {
      const patched = await api.request('PATCH', `/api/v1/alerts/${id}`, { token: analyst.token, body: { status: 'false_positive' } });
      expect(patched.status).toBe(200);
    }
    // Another tenant sees the same host name in many open alerts: none of it may show here.
    const other = await api.user('analyst', 'acme');
    await ingest(api, other, Array.from({ length: 6 }, (_, i) => ({ title: `Port sweep ${i} from SCAN-01 (acme)`, severity: 'high' as const, techniques: ['T1046'], entities: scanner })));

    const [fresh] = await ingest(api, analyst, [{ title: 'Port sweep from SCAN-01 again', severity: 'medium', techniques: ['T1046'], entities: scanner }]);
    const caseId = await openCase(api, analyst, 'Port sweep', [fresh!]);
    const done = await investigate(api, analyst, caseId);
    expect(done.status).toBe('concluded');
    expect(done.verdict).toBe('false_positive');
    expect(done.summary).toMatch(/4 of 4 earlier alerts naming SCAN-01 were false positives/);
    expect(done.evidence.map((e: { id: string }) => e.id)).toContain('history:host:SCAN-01');
    expect(done.recommended_actions[0]).toBe('Close the case as a false positive');

    const history = (done.entries as Entry[]).find((e) => e.kind === 'tool_result' && e.payload.name === 'entity_alert_history')!;
    expect(history.payload.content).toMatchObject({ alerts_total: 5, alerts_outside_case: 4, outside_case_by_status: { false_positive: 4 } });
  });

  it('calls a case benign when its alerts match a known benign pattern, and undetermined when it has no alerts', async () => {
    const ids = await ingest(api, analyst, [
      { title: 'Nessus vulnerability scan from 10.0.0.5', severity: 'low', techniques: ['T1046'], entities: [{ type: 'ip', value: '10.0.0.5' }] },
    ]);
    const benign = await investigate(api, analyst, await openCase(api, analyst, 'Scanner noise', ids));
    expect(benign.verdict).toBe('benign');
    expect(benign.summary).toMatch(/known benign pattern \(nessus\)/);

    const empty = await investigate(api, analyst, await openCase(api, analyst, 'Nothing linked yet', []));
    expect(empty).toMatchObject({ status: 'concluded', verdict: 'needs_more_info' });
    expect(empty.recommended_actions[0]).toMatch(/Link the alerts/);
  });

  it('lists a case’s investigations newest first with cursor pagination, and follows a ledger with after_seq', async () => {
    const ids = await ingest(api, analyst, [{ title: 'Encoded PowerShell on WS-7', severity: 'high', techniques: ['T1059.001', 'T1027'], entities: [{ type: 'host', value: 'WS-7' }] }]);
    const caseId = await openCase(api, analyst, 'PowerShell', ids);
    const runs = [];
    for (let i = 0; i < 3; i += 1) runs.push(await investigate(api, analyst, caseId, { focus: `pass ${i}` }));
    // The list is a read model: it catches up with the ledgers shortly after they end.
    let first = await api.request('GET', `/api/v1/cases/${caseId}/investigations?limit=2`, { token: analyst.token });
    for (let i = 0; i < 400 && first.body.items.some((item: { status: string }) => item.status !== 'concluded'); i += 1) {
      await new Promise((r) => setTimeout(r, 25));
      first = await api.request('GET', `/api/v1/cases/${caseId}/investigations?limit=2`, { token: analyst.token });
    }
    expect(first.status).toBe(200);
    expect(first.body.items.map((i: { id: string }) => i.id)).toEqual([runs[2].id, runs[1].id]);
    expect(first.body.items[0]).toMatchObject({ status: 'concluded', verdict: runs[2].verdict, entry_count: runs[2].entries.length });
    const second = await api.request('GET', `/api/v1/cases/${caseId}/investigations?limit=2&cursor=${first.body.next_cursor}`, { token: analyst.token });
    expect(second.body).toEqual({ items: [expect.objectContaining({ id: runs[0].id })], next_cursor: null });
    const concluded = await api.request('GET', `/api/v1/cases/${caseId}/investigations?verdict=${runs[0].verdict}`, { token: analyst.token });
    expect(concluded.body.items).toHaveLength(3);

    const tail = await api.request('GET', `/api/v1/investigations/${runs[0].id}?after_seq=${runs[0].entries.length - 3}`, { token: analyst.token });
    expect(tail.body.entries.map((e: Entry) => e.seq)).toEqual([runs[0].entries.length - 2, runs[0].entries.length - 1]);
    expect(runs[0].entries[1].payload).toBeDefined();
    expect((runs[0].entries as Entry[])[0]!.payload.new_messages[1].content).toMatch(/pass 0/);
  });

  it('keeps tenants apart and checks permissions: 404 for another tenant, 403 without investigations:run, 422 on a closed case', async () => {
    const ids = await ingest(api, analyst, [{ title: 'Brute force against admin', severity: 'medium', techniques: ['T1110'], entities: [{ type: 'user', value: 'admin' }] }]);
    const caseId = await openCase(api, analyst, 'Brute force', ids);
    const done = await investigate(api, analyst, caseId);
    const stranger = await api.user('admin', 'globex');
    expect((await api.request('GET', `/api/v1/investigations/${done.id}`, { token: stranger.token })).status).toBe(404);
    expect((await api.request('GET', `/api/v1/cases/${caseId}/investigations`, { token: stranger.token })).status).toBe(404);
    expect((await api.request('POST', `/api/v1/cases/${caseId}/investigations:start`, { token: stranger.token, body: {} })).status).toBe(404);
    expect((await api.request('POST', `/api/v1/cases/${caseId}/investigations:replay`, { token: stranger.token, body: { investigation_id: done.id } })).status).toBe(404);

    const otherCase = await openCase(api, analyst, 'Another case', []);
    expect((await api.request('POST', `/api/v1/cases/${otherCase}/investigations:replay`, { token: analyst.token, body: { investigation_id: done.id } })).status).toBe(404);

    const hunter = await api.user('hunter');
    expect((await api.request('GET', `/api/v1/investigations/${done.id}`, { token: hunter.token })).status).toBe(200);
    expect((await api.request('POST', `/api/v1/cases/${caseId}/investigations:start`, { token: hunter.token, body: {} })).status).toBe(403);
    const viewer = await api.user('viewer');
    expect((await api.request('POST', `/api/v1/cases/${caseId}/investigations:replay`, { token: viewer.token, body: { investigation_id: done.id } })).status).toBe(200);

    expect((await api.request('DELETE', `/api/v1/cases/${otherCase}`, { token: analyst.token })).status).toBe(204);
    const refused = await api.request('POST', `/api/v1/cases/${otherCase}/investigations:start`, { token: analyst.token, body: {} });
    expect(refused.status).toBe(422);
  });

  it('an Idempotency-Key repeat answers 200 with the same investigation and starts nothing new', async () => {
    const caseId = await openCase(api, analyst, 'Idempotent', []);
    const headers = { 'Idempotency-Key': 'inv-1' };
    const first = await api.request('POST', `/api/v1/cases/${caseId}/investigations:start`, { token: analyst.token, body: {}, headers });
    expect(first.status).toBe(202);
    await finished(api, analyst, first.body.id);
    const repeat = await api.request('POST', `/api/v1/cases/${caseId}/investigations:start`, { token: analyst.token, body: {}, headers });
    expect(repeat.status).toBe(200);
    expect(repeat.body.id).toBe(first.body.id);
    const list = await api.request('GET', `/api/v1/cases/${caseId}/investigations`, { token: analyst.token });
    expect(list.body.items).toHaveLength(1);
  });
});
