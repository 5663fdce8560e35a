/**
 * Commands become events, events become read models: the alert and case aggregates driven
 * through the command handler and read back through the projections' views.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleCommand, type CommandContext } from '../../src/commands/handler.js';
import { alertDecider, alertStream, type AlertCommand } from '../../src/domain/alert.js';
import { caseDecider, caseStream, type CaseCommand } from '../../src/domain/case.js';
import { AppError } from '../../src/domain/errors.js';
import { uuidV7Ids } from '../../src/lib/clock.js';
import type { Runtime } from '../../src/runtime.js';
import { hasPostgres } from '../support/databases.js';
import { testRuntime, type RuntimeKind, type TestRuntime } from '../support/runtime.js';

const analyst: CommandContext = { tenantId: 'acme', actor: { type: 'user', id: 'ana' }, requestId: 'req-1' };
const otherTenant: CommandContext = { tenantId: 'globex', actor: { type: 'user', id: 'gus' } };

const kinds: RuntimeKind[] = hasPostgres ? ['embedded', 'server'] : ['embedded'];

describe.each(kinds)('read models on the %s database', (kind) => {
  let fixture: TestRuntime;
  let rt: Runtime;
  beforeAll(async () => {
    fixture = await testRuntime(kind);
    rt = fixture.runtime;
  });
  afterAll(async () => fixture?.cleanup());

  const alert = (command: AlertCommand, id: string, context = analyst, options = {}) =>
    handleCommand(rt.commands, alertDecider, alertStream(id), command, context, options);
  const kase = (command: CaseCommand, id: string, context = analyst, options = {}) =>
    handleCommand(rt.commands, caseDecider, caseStream(id), command, context, options);

  async function ingest(overrides: Partial<{ title: string; severity: 'low' | 'high' | 'critical' }> = {}, context = analyst) {
    const id = uuidV7Ids.newId();
    const result = await alert(
      {
        type: 'IngestAlert',
        alert: {
          alert_id: id,
          source: 'edr',
          source_ref: `edr-${id}`,
          title: overrides.title ?? 'Suspicious PowerShell',
          severity: overrides.severity ?? 'high',
          occurred_at: '2026-11-29T10:00:00.000Z',
          entities: [{ type: 'host', value: 'WS-042' }, { type: 'user', value: 'jdoe' }],
          techniques: ['T1059.001'],
          raw: { process: 'powershell.exe' },
        },
      },
      id,
      context,
    );
    return { id, ...result };
  }

  it('an ingested alert appears in the alerts read model once the projection passes its position', async () => {
    const { id, position, revision } = await ingest({ title: 'Encoded command line' });
    expect(revision).toBe(0n);
    await rt.daemon.waitFor(position, ['alerts']);
    const row = await rt.database.db.selectFrom('alerts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      tenant_id: 'acme',
      title: 'Encoded command line',
      severity: 'high',
      status: 'new',
      occurrences: 1,
      techniques: ['T1059.001'],
      entity_values: ['ws-042', 'jdoe'],
      revision: '0',
    });
  });

  it('status, severity, tags, assignment and occurrences update the row; the revision follows the stream', async () => {
    const { id } = await ingest();
    await alert({ type: 'ChangeAlertStatus', status: 'acknowledged' }, id);
    await alert({ type: 'ChangeAlertSeverity', severity: 'critical' }, id);
    await alert({ type: 'SetAlertTags', tags: ['phishing', 'vip'] }, id);
    await alert({ type: 'RecordAlertOccurrence', sourceRef: 'again', entities: [{ type: 'ip', value: '10.0.0.9' }] }, id);
    const last = await alert({ type: 'AssignAlert', assignee: 'bob' }, id);
    await rt.daemon.waitFor(last.position, ['alerts']);
    const row = await rt.database.db.selectFrom('alerts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      status: 'acknowledged',
      severity: 'critical',
      severity_rank: 4,
      tags: ['phishing', 'vip'],
      assignee: 'bob',
      occurrences: 2,
      revision: '5',
    });
    expect(row.entity_values).toContain('10.0.0.9');
  });

  it('a command that changes nothing writes nothing', async () => {
    const { id } = await ingest();
    const result = await alert({ type: 'ChangeAlertStatus', status: 'new' }, id);
    expect(result.events).toEqual([]);
    expect(await rt.store.readStream(alertStream(id))).toHaveLength(1);
  });

  it('a refused transition names the allowed ones and writes nothing', async () => {
    const { id } = await ingest();
    await alert({ type: 'ChangeAlertStatus', status: 'resolved' }, id);
    const error = await alert({ type: 'ChangeAlertStatus', status: 'acknowledged' }, id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ kind: 'unprocessable', extra: { allowed_transitions: ['in_progress'] } });
    expect(await rt.store.readStream(alertStream(id))).toHaveLength(2);
  });

  it('an expected revision that is not the current one is a precondition failure', async () => {
    const { id } = await ingest();
    await alert({ type: 'SetAlertTags', tags: ['a'] }, id);
    const error = await alert({ type: 'SetAlertTags', tags: ['b'] }, id, analyst, { expectedRevision: 0n }).catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'precondition_failed' });
  });

  it('another tenant cannot see or change an alert: it does not exist for them', async () => {
    const { id } = await ingest();
    const error = await alert({ type: 'ChangeAlertStatus', status: 'acknowledged' }, id, otherTenant).catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'not_found' });
    expect(await rt.store.readStream(alertStream(id))).toHaveLength(1);
  });

  it('a deleted alert leaves the read model but keeps its history in the log', async () => {
    const { id, position } = await ingest();
    await rt.daemon.waitFor(position, ['alerts']);
    const deleted = await alert({ type: 'DeleteAlert' }, id);
    await rt.daemon.waitFor(deleted.position, ['alerts']);
    expect(await rt.database.db.selectFrom('alerts').select('id').where('id', '=', id).execute()).toEqual([]);
    expect((await rt.store.readStream(alertStream(id))).map((e) => e.type)).toEqual(['alert.ingested', 'alert.deleted']);
    await expect(alert({ type: 'ChangeAlertStatus', status: 'acknowledged' }, id)).rejects.toMatchObject({ kind: 'not_found' });
  });

  it('events carry the metadata of the conventions', async () => {
    const { id } = await ingest();
    const [event] = await rt.store.readStream(alertStream(id));
    expect(event!.metadata).toMatchObject({
      tenant_id: 'acme',
      actor: { type: 'user', id: 'ana' },
      request_id: 'req-1',
      correlation_id: 'req-1',
      causation_id: null,
      schema_version: 1,
    });
    expect(Date.parse(event!.metadata.occurred_at as string)).not.toBeNaN();
  });

  it('a case follows its workflow, links alerts, and its timeline records its own changes', async () => {
    const first = await ingest();
    const second = await ingest();
    const caseId = uuidV7Ids.newId();
    await kase(
      { type: 'OpenCase', case: { case_id: caseId, title: 'Lateral movement on WS-042', severity: 'high', alert_ids: [first.id] } },
      caseId,
      analyst,
      { create: true },
    );
    await kase({ type: 'LinkAlerts', alertIds: [second.id, first.id] }, caseId);
    await kase({ type: 'ChangeCaseStatus', status: 'triaged' }, caseId);
    await kase({ type: 'ChangeCaseStatus', status: 'investigating' }, caseId);
    await kase({ type: 'AddComment', author: 'ana', body: 'Pulled the process tree.' }, caseId);
    await kase({ type: 'AddTimelineEntry', kind: 'note', summary: 'Host isolated by phone' }, caseId);
    await kase({ type: 'ChangeCaseStatus', status: 'resolved', reason: 'Contained' }, caseId);
    const refused = await kase({ type: 'ChangeCaseStatus', status: 'triaged' }, caseId).catch((e: unknown) => e);
    expect(refused).toMatchObject({ kind: 'unprocessable', extra: { allowed_transitions: ['closed'] } });
    await kase({ type: 'ChangeCaseStatus', status: 'closed' }, caseId);
    const reopened = await kase({ type: 'ReopenCase', reason: 'New evidence' }, caseId);
    await rt.daemon.waitFor(reopened.position, ['cases']);

    const db = rt.database.db;
    const row = await db.selectFrom('cases').selectAll().where('id', '=', caseId).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'investigating', alert_count: 2, comment_count: 1, closed_at: null, created_by: 'ana' });
    const links = await db.selectFrom('case_alerts').select('alert_id').where('case_id', '=', caseId).execute();
    expect(links.map((l) => l.alert_id).sort()).toEqual([first.id, second.id].sort());
    const comments = await db.selectFrom('case_comments').selectAll().where('case_id', '=', caseId).execute();
    expect(comments).toMatchObject([{ author: 'ana', body: 'Pulled the process tree.' }]);
    const timeline = await db.selectFrom('case_timeline').select(['kind', 'summary']).where('case_id', '=', caseId).orderBy('occurred_at').orderBy('id').execute();
    expect(timeline.map((t) => t.kind)).toEqual([
      'case_opened',
      'alerts_linked',
      'status_changed',
      'status_changed',
      'comment_added',
      'note',
      'status_changed',
      'status_changed',
      'reopened',
    ]);
  });

  it('opening a case that exists is a conflict', async () => {
    const caseId = uuidV7Ids.newId();
    const open: CaseCommand = { type: 'OpenCase', case: { case_id: caseId, title: 'Dup', severity: 'low' } };
    await kase(open, caseId, analyst, { create: true });
    await expect(kase(open, caseId, analyst, { create: true })).rejects.toMatchObject({ kind: 'conflict' });
  });

  it('concurrent commands that commute all land when retried on conflict', async () => {
    const caseId = uuidV7Ids.newId();
    await kase({ type: 'OpenCase', case: { case_id: caseId, title: 'Busy case', severity: 'medium' } }, caseId, analyst, { create: true });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => kase({ type: 'AddComment', author: 'ana', body: `comment ${i}` }, caseId, analyst, { retryOnConflict: true })),
    );
    const last = results.map((r) => r.position!).sort().at(-1);
    await rt.daemon.waitFor(last, ['cases']);
    const row = await rt.database.db.selectFrom('cases').select('comment_count').where('id', '=', caseId).executeTakeFirstOrThrow();
    expect(row.comment_count).toBe(10);
  });

  it('restarting keeps every event and read model, and projections resume where they stopped', async () => {
    const before = await ingest({ title: 'Before restart' });
    await rt.daemon.waitFor(before.position, ['alerts']);
    const liveAlerts = async () => (await rt.daemon.status()).find((s) => s.name === 'alerts' && s.status === 'live')!;
    const appliedBefore = (await liveAlerts()).events_applied;
    await rt.close();
    rt = await fixture.reopen();
    const after = await ingest({ title: 'After restart' });
    await rt.daemon.waitFor(after.position, ['alerts']);
    const titles = await rt.database.db
      .selectFrom('alerts')
      .select('title')
      .where('id', 'in', [before.id, after.id])
      .orderBy('created_at')
      .execute();
    expect(titles.map((t) => t.title).sort()).toEqual(['After restart', 'Before restart']);
    expect((await liveAlerts()).events_applied).toBe(appliedBefore + 1);
  });
});
