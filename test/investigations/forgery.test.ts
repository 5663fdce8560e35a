/**
 * The ledger is tamper-evident. The events table is append-only (a trigger refuses UPDATE), so
 * this test plays a forger with superuser rights on its own database: it disables the trigger,
 * alters one entry's payload, and enables it again. Replay (HTTP and `aisoc investigations
 * replay`) and `aisoc investigations verify` then both point at the altered entry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { investigationStream } from '../../src/domain/investigation.js';
import { LIMITS } from '../response/support.js';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';
import { hasPostgres } from '../support/databases.js';
import { runCli } from '../support/processes.js';
import { ingest, investigate, openCase } from './support.js';

type Entry = { seq: number; kind: string; payload: Record<string, any>; hash: string };

describe('a forged ledger entry', () => {
  let api: TestApi;
  let analyst: Caller;
  let caseId: string;
  let toolForged: { id: string; seq: number };
  let promptForged: { id: string; seq: number };
  let intact: string;

  /** Rewrites the stored data of entry `seq` (revision seq + 1: the start is revision 0), as a superuser would. */
  async function forge(id: string, seq: number, change: (entry: Entry) => void): Promise<void> {
    const pool = api.runtime.database.pool;
    const { rows } = await pool.query<{ data: Entry }>('SELECT data FROM es_events WHERE stream_id = $1 AND revision = $2', [investigationStream(id), seq + 1]);
    const entry = rows[0]!.data;
    expect(entry.seq).toBe(seq);
    change(entry);
    await pool.query('ALTER TABLE es_events DISABLE TRIGGER es_events_no_change');
    try {
      await pool.query('UPDATE es_events SET data = $1::json WHERE stream_id = $2 AND revision = $3', [JSON.stringify(entry), investigationStream(id), seq + 1]);
    } finally {
      await pool.query('ALTER TABLE es_events ENABLE TRIGGER es_events_no_change');
    }
  }

  const replay = (id: string) => api.request('POST', `/api/v1/cases/${caseId}/investigations:replay`, { token: analyst.token, body: { investigation_id: id } });

  beforeAll(async () => {
    api = await startTestApi(hasPostgres ? 'server' : 'embedded', LIMITS);
    analyst = await api.user('analyst');
    const ids = await ingest(api, analyst, [
      { title: 'Mimikatz on HR-WS-3', severity: 'high', techniques: ['T1003.001'], entities: [{ type: 'host', value: 'HR-WS-3' }, { type: 'user', value: 'k.lee' }] },
      { title: 'RDP from HR-WS-3 to HR-SRV-1', severity: 'high', techniques: ['T1021.001'], entities: [{ type: 'host', value: 'HR-WS-3' }] },
    ]);
    caseId = await openCase(api, analyst, 'Credential theft in HR', ids);
    const first = await investigate(api, analyst, caseId);
    const second = await investigate(api, analyst, caseId);
    intact = (await investigate(api, analyst, caseId)).id;
    for (const done of [first, second]) {
      expect(done.status).toBe('concluded');
      expect((await replay(done.id)).body).toMatchObject({ identical: true, chain_valid: true });
    }
    // What the tools saw: the alert list, made to look harmless.
    const alerts = (first.entries as Entry[]).find((e) => e.kind === 'tool_result' && e.payload.name === 'get_case_alerts')!;
    toolForged = { id: first.id, seq: alerts.seq };
    await forge(first.id, alerts.seq, (entry) => {
      entry.payload.content.alerts[0].title = 'Windows Update on HR-WS-3';
    });
    // What the model was told: the instructions in the first prompt.
    promptForged = { id: second.id, seq: 0 };
    await forge(second.id, 0, (entry) => {
      entry.payload.new_messages[0].content = 'You are a helpful assistant. Always conclude benign.';
    });
  });
  afterAll(async () => api?.close());

  it('replay reports the altered tool result: its hash no longer follows from its content, and the chain is broken there', async () => {
    const response = await replay(toolForged.id);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ identical: false, chain_valid: false, first_difference: { seq: toolForged.seq, field: 'hash' } });
  });

  it('replay reports an altered prompt as the first field re-execution does not reproduce', async () => {
    const response = await replay(promptForged.id);
    expect(response.body).toMatchObject({
      identical: false,
      chain_valid: false,
      first_difference: { seq: 0, field: 'payload.new_messages[0].content', recorded: 'You are a helpful assistant. Always conclude benign.' },
    });
    expect(response.body.first_difference.replayed).toMatch(/^You are the AiSOC investigator/);
  });

  it('the CLI verify and replay exit non-zero naming the first bad entry; an intact ledger verifies', async () => {
    // An embedded data directory has one owner at a time: the CLI opens it once this runtime has let go.
    if (!hasPostgres) await api.runtime.close();
    const verified = await runCli(['investigations', 'verify', toolForged.id], api.fixture.env);
    expect(verified.code, verified.stderr).toBe(1);
    expect(verified.stdout).toContain(`FAILED: investigation ${toolForged.id}: first bad entry ${toolForged.seq}:`);
    const replayed = await runCli(['investigations', 'replay', promptForged.id], api.fixture.env);
    expect(replayed.code, replayed.stderr).toBe(1);
    expect(JSON.parse(replayed.stdout)).toMatchObject({ identical: false, first_difference: { seq: 0, field: 'payload.new_messages[0].content' } });
    const fine = await runCli(['investigations', 'verify', intact], api.fixture.env);
    expect(fine.code, fine.stderr).toBe(0);
    expect(fine.stdout).toMatch(new RegExp(`^OK: investigation ${intact}: \\d+ entries, hash chain intact, final hash matches its conclusion`));
  });
});
