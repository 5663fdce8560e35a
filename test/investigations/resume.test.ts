/**
 * An investigation survives a restart. A server process records the start and begins the run,
 * then dies half way (here: its reactor is stopped, and the run it was doing stops after its
 * second append). A new process on the same database picks the started event up again, re-executes
 * with the recorded entries substituted, and goes on live from where the ledger stops: the
 * recorded entries stay as they were, the rest follows, and the whole ledger replays identically.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../../src/domain/investigation.js';
import { verifyChain } from '../../src/investigations/ledger.js';
import { createBuiltinReasoner } from '../../src/investigations/reasoner.js';
import { executeInvestigation, loadLedger, replayLedger } from '../../src/investigations/runner.js';
import { silentLogger } from '../../src/lib/logger.js';
import { LIMITS } from '../response/support.js';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';
import { hasPostgres } from '../support/databases.js';
import { ingest, openCase } from './support.js';

class Crash extends Error {}

describe('an interrupted investigation', () => {
  let api: TestApi;
  let analyst: Caller;
  beforeAll(async () => {
    api = await startTestApi(hasPostgres ? 'server' : 'embedded', LIMITS);
    analyst = await api.user('analyst');
  });
  afterAll(async () => api?.close());

  it('resumes on restart from its ledger and concludes, keeping what was recorded', async () => {
    const ids = await ingest(api, analyst, [
      { title: 'Impossible travel for m.ortiz', severity: 'high', rule: 'impossible_travel', techniques: ['T1078'], entities: [{ type: 'user', value: 'm.ortiz' }], raw: { from: 'Lisbon', to: 'Sydney', minutes: 40 } },
      { title: 'Mimikatz on SALES-WS-9', severity: 'high', techniques: ['T1003.001'], entities: [{ type: 'user', value: 'm.ortiz' }, { type: 'host', value: 'SALES-WS-9' }] },
    ]);
    const caseId = await openCase(api, analyst, 'Account takeover', ids);

    // The first process: its reactor stops; the start is recorded; the run dies after its second append.
    const first = api.runtime;
    await first.daemon.stop();
    const started = await api.request('POST', `/api/v1/cases/${caseId}/investigations:start`, { token: analyst.token, body: {} });
    expect(started.status).toBe(202);
    const id = started.body.id as string;
    let appends = 0;
    await expect(
      executeInvestigation({ commands: first.commands, db: first.database.db, logger: silentLogger() }, id, {
        provider: createBuiltinReasoner(),
        // As with a remote model: what the run recorded is appended before each model call.
        flushBeforeModelCalls: true,
        onAppended: () => {
          appends += 1;
          if (appends === 2) throw new Crash('the process died');
        },
      }),
    ).rejects.toBeInstanceOf(Crash);
    const before = (await loadLedger(first.store, first.commands.registry, id, analyst.tenantId))!;
    expect(before.state.status).toBe('running');
    expect(before.entries.length).toBeGreaterThan(2);
    expect(before.entries.at(-1)!.kind).toBe('prompt');

    // The second process: its reactor finds the started event it never finished, and resumes.
    const second = await api.fixture.reopen();
    let after = before;
    for (let i = 0; i < 400 && after.state.status === 'running'; i += 1) {
      await new Promise((r) => setTimeout(r, 25));
      after = (await loadLedger(second.store, second.commands.registry, id, analyst.tenantId))!;
    }
    expect(after.state.status).toBe('concluded');
    expect(after.terminal).toMatchObject({ data: { verdict: 'true_positive' } });
    expect(after.entries.slice(0, before.entries.length)).toEqual(before.entries);
    expect(after.entries.length).toBeGreaterThan(before.entries.length);
    expect(after.entries.map((e: LedgerEntry) => e.seq)).toEqual(after.entries.map((_, i) => i));
    expect(verifyChain(id, after.entries).valid).toBe(true);
    expect(await replayLedger(after)).toEqual({ identical: true, entries_compared: after.entries.length, first_difference: null, chain_valid: true });

    // The case's timeline says it started once and concluded once.
    let kinds: string[] = [];
    for (let i = 0; i < 400 && kinds.length < 2; i += 1) {
      kinds = (await second.database.db.selectFrom('case_timeline').select('kind').where('case_id', '=', caseId).where('kind', 'like', 'investigation_%').orderBy('occurred_at').orderBy('id').execute()).map((r) => r.kind);
      if (kinds.length < 2) await new Promise((r) => setTimeout(r, 25));
    }
    expect(kinds).toEqual(['investigation_started', 'investigation_concluded']);
  });
});
