/**
 * The copilot through real HTTP: suggestions for alerts, cases and playbooks are derived from
 * their state and history and change as those do; running one writes what the equivalent REST
 * call writes (same events, same actor, audited) and answers with the resulting resource and
 * the event position.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertStream } from '../../src/domain/alert.js';
import { caseStream } from '../../src/domain/case.js';
import { QUIET_CASE_HOURS } from '../../src/copilot/suggestions.js';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';
import { createApiKey, createPlaybook, eventually, find, freshEntities, ingest, kinds, LIMITS, openCase, run, suggestions } from './support.js';

describe('copilot suggestions', () => {
  let api: TestApi;
  let analyst: Caller;
  let admin: Caller;

  beforeAll(async () => {
    api = await startTestApi('embedded', LIMITS);
    [analyst, admin] = await Promise.all([api.user('analyst'), api.admin()]);
  });
  afterAll(async () => api?.close());

  /** The events of a stream after `revision`, as type, data and actor. */
  const eventsAfter = async (stream: string, revision: number) =>
    (await api.runtime.store.readStream(stream)).filter((e) => e.revision > BigInt(revision)).map((e) => ({ type: e.type, data: e.data, actor: (e.metadata as any).actor }));

  it('a new, unassigned, high alert in no case: acknowledge, assign to me, open a case; each goes once done', async () => {
    const { entities } = freshEntities();
    const alertId = await ingest(api, analyst, { entities });
    const first = await suggestions(api, analyst, 'alert', alertId);
    expect(kinds(first)).toEqual(['acknowledge', 'assign_to_me', 'open_case']);
    const acknowledge = find(first, 'acknowledge');
    expect(acknowledge).toMatchObject({
      permission: 'alerts:write',
      permitted: true,
      operation: { method: 'PATCH', path: `/api/v1/alerts/${alertId}`, body: { status: 'acknowledged' } },
    });
    expect(acknowledge.reason).toMatch(/new since it was ingested at/);
    expect(find(first, 'assign_to_me').operation.body).toEqual({ assignee: analyst.userId });
    expect(find(first, 'open_case')).toMatchObject({ permission: 'cases:write', operation: { method: 'POST', path: '/api/v1/cases' } });

    const ran = await run(api, analyst, acknowledge.action_id);
    expect(ran.status, JSON.stringify(ran.body)).toBe(200);
    expect(ran.body.result).toMatchObject({ type: 'alert', id: alertId, location: `/api/v1/alerts/${alertId}`, revision: '1', resource: { status: 'acknowledged' } });
    expect(ran.body.event_position).toBe(ran.headers.get('x-event-position'));

    const second = await suggestions(api, analyst, 'alert', alertId);
    expect(kinds(second)).toEqual(['assign_to_me', 'open_case']);
    const assigned = await api.request('POST', `/api/v1/alerts/${alertId}/assign`, { token: analyst.token, body: { assignee: admin.userId } });
    expect(assigned.status).toBe(200);
    expect(kinds(await suggestions(api, analyst, 'alert', alertId))).toEqual(['open_case']);

    // Unassigned again: the reason cites who did it, from the alert's history.
    await api.request('POST', `/api/v1/alerts/${alertId}/assign`, { token: admin.token, body: { assignee: null } });
    const again = find(await suggestions(api, analyst, 'alert', alertId), 'assign_to_me');
    expect(again.reason).toContain(`user ${admin.userId} unassigned it (from ${admin.userId})`);
  });

  it('running an action writes what the REST call writes: same events, same actor, audited with the request id', async () => {
    const [restAlert, copilotAlert] = [await ingest(api, analyst), await ingest(api, analyst)];
    const viaRest = await api.request('PATCH', `/api/v1/alerts/${restAlert}`, { token: analyst.token, body: { status: 'acknowledged' } });
    expect(viaRest.status).toBe(200);
    const viaCopilot = await run(api, analyst, find(await suggestions(api, analyst, 'alert', copilotAlert), 'acknowledge').action_id);
    expect(viaCopilot.status).toBe(200);
    const [restEvents, copilotEvents] = [await eventsAfter(alertStream(restAlert), 0), await eventsAfter(alertStream(copilotAlert), 0)];
    expect(copilotEvents).toEqual(restEvents);
    expect(copilotEvents).toEqual([{ type: 'alert.status_changed', data: { from: 'new', to: 'acknowledged' }, actor: { type: 'user', id: analyst.userId } }]);
    // The resource as GET shows it.
    const got = await api.request('GET', `/api/v1/alerts/${copilotAlert}`, { token: analyst.token });
    const { raw: _raw, ...withoutRaw } = got.body;
    expect(viaCopilot.body.result.resource).toEqual(withoutRaw);
    expect(got.headers.get('etag')).toBe(`W/"${viaCopilot.body.result.revision}"`);

    // Assigning, too.
    const restAssign = await api.request('POST', `/api/v1/alerts/${restAlert}/assign`, { token: analyst.token, body: { assignee: analyst.userId } });
    expect(restAssign.status).toBe(200);
    expect((await run(api, analyst, find(await suggestions(api, analyst, 'alert', copilotAlert), 'assign_to_me').action_id)).status).toBe(200);
    expect(await eventsAfter(alertStream(copilotAlert), 1)).toEqual(await eventsAfter(alertStream(restAlert), 1));

    // The audit log has it, with the actor and the request id of the run.
    const requestId = viaCopilot.headers.get('x-request-id');
    await eventually(async () => {
      const audit = await api.request('GET', `/api/v1/audit?resource_id=${copilotAlert}&action=alert.status_changed`, { token: admin.token });
      expect(audit.body.items).toEqual([expect.objectContaining({ actor: { type: 'user', id: analyst.userId }, request_id: requestId, resource_type: 'alert' })]);
    });
  });

  it('an alert whose entities had alerts marked false positive: mark it false positive, naming them', async () => {
    const { entities, host } = freshEntities();
    const earlier = await ingest(api, analyst, { entities: [entities[0]], title: 'Backup agent spawns vssadmin', severity: 'low' });
    expect(kinds(await suggestions(api, analyst, 'alert', earlier))).not.toContain('mark_false_positive');
    expect((await api.request('PATCH', `/api/v1/alerts/${earlier}`, { token: admin.token, body: { status: 'false_positive' } })).status).toBe(200);

    const later = await ingest(api, analyst, { entities, severity: 'low' });
    const fp = find(await suggestions(api, analyst, 'alert', later), 'mark_false_positive');
    expect(fp.reason).toContain('"Backup agent spawns vssadmin"');
    expect(fp.reason).toContain(`host ${host}`);
    expect(fp.reason).toContain(`marked by user ${admin.userId}`);
    expect(fp.evidence).toEqual([expect.objectContaining({ type: 'alert', id: earlier })]);
    const ran = await run(api, analyst, fp.action_id);
    expect(ran.status).toBe(200);
    expect(ran.body.result.resource.status).toBe('false_positive');
    expect(kinds(await suggestions(api, analyst, 'alert', later))).toEqual([]);
  });

  it('a high alert in no case: open a case with it and the open alerts on its entities; then a newcomer is offered that case', async () => {
    const { entities } = freshEntities();
    const companion = await ingest(api, analyst, { entities: [entities[1]], severity: 'low' });
    const alertId = await ingest(api, analyst, { entities, severity: 'critical', title: 'Mimikatz on the DC' });
    const openCase = find(await suggestions(api, analyst, 'alert', alertId), 'open_case');
    expect(openCase.operation.body).toMatchObject({ title: 'Mimikatz on the DC', severity: 'critical', alert_ids: [alertId, companion] });
    expect(openCase.evidence.map((e) => e.id)).toEqual([companion]);
    const ran = await run(api, analyst, openCase.action_id);
    expect(ran.status, JSON.stringify(ran.body)).toBe(200);
    expect(ran.body.result).toMatchObject({ type: 'case', resource: { title: 'Mimikatz on the DC', severity: 'critical', alert_count: 2, status: 'new', created_by: analyst.userId } });
    const caseId = ran.body.result.id as string;
    expect(kinds(await suggestions(api, analyst, 'alert', alertId))).not.toContain('open_case');

    const newcomer = await ingest(api, analyst, { entities: [entities[0]], severity: 'low' });
    const link = find(await suggestions(api, analyst, 'alert', newcomer), 'link_to_case');
    expect(link.operation).toEqual({ method: 'PATCH', path: `/api/v1/cases/${caseId}`, body: { link_alert_ids: [newcomer] } });
    expect((await run(api, analyst, link.action_id)).status).toBe(200);
    const theCase = await api.request('GET', `/api/v1/cases/${caseId}`, { token: analyst.token });
    expect(theCase.body.alerts.map((a: { id: string }) => a.id).sort()).toEqual([alertId, companion, newcomer].sort());
  });

  it('a case: triage, investigate, contained once a host is isolated; each through the case workflow', async () => {
    const { entities, host } = freshEntities();
    const alertId = await ingest(api, analyst, { entities });
    const caseId = await openCase(api, analyst, [alertId]);
    const step = async (kind: string, status: string) => {
      const suggestion = find(await suggestions(api, analyst, 'case', caseId), kind);
      const ran = await run(api, analyst, suggestion.action_id);
      expect(ran.status, JSON.stringify(ran.body)).toBe(200);
      expect(ran.body.result.resource.status).toBe(status);
      return suggestion;
    };
    const triage = await step('triage', 'triaged');
    expect(triage.reason).toContain(`user ${analyst.userId} opened it`);
    await step('start_investigation', 'investigating');
    expect(kinds(await suggestions(api, analyst, 'case', caseId))).not.toContain('mark_contained');
    const noted = await api.request('POST', `/api/v1/cases/${caseId}/timeline`, { token: analyst.token, body: { kind: 'containment', summary: 'Host isolated by phone', data: { host } } });
    expect(noted.status).toBe(201);
    const contained = await step('mark_contained', 'contained');
    expect(contained.reason).toContain(host);
    expect(contained.operation.body).toEqual({ status: 'contained', reason: `Contained: isolated ${host}` });
    const theCase = await api.request('GET', `/api/v1/cases/${caseId}`, { token: analyst.token });
    expect(theCase.body.timeline.map((t: { summary: string }) => t.summary)).toEqual([
      'Case opened: Credential dumping',
      'Status new → triaged',
      'Status triaged → investigating',
      'Host isolated by phone',
      `Status investigating → contained: Contained: isolated ${host}`,
    ]);
    // Its alert resolved, the contained case can be resolved.
    expect(kinds(await suggestions(api, analyst, 'case', caseId))).not.toContain('resolve_case');
    await api.request('PATCH', `/api/v1/alerts/${alertId}`, { token: analyst.token, body: { status: 'resolved' } });
    await step('resolve_case', 'resolved');
  });

  it('a case whose host an executor reported isolated (playbook, approval, action request): mark it contained, citing the request', async () => {
    const { entities, host } = freshEntities();
    const alertId = await ingest(api, analyst, { entities });
    const caseId = await openCase(api, analyst, [alertId]);
    for (const status of ['triaged', 'investigating']) {
      expect((await api.request('PATCH', `/api/v1/cases/${caseId}`, { token: analyst.token, body: { status } })).status).toBe(200);
    }
    const playbookId = await createPlaybook(api, admin, [{ id: 'isolate', action: 'isolate_host', inputs: { host: '{{alert.entities.host}}' } }]);
    const started = await api.request('POST', `/api/v1/playbooks/${playbookId}/execute`, { token: analyst.token, body: { case_id: caseId } });
    expect(started.status).toBe(202);
    const runId = started.body.id as string;
    const approval = await eventually(async () => {
      const list = await api.request('GET', `/api/v1/approvals?run_id=${runId}`, { token: admin.token });
      expect(list.body.items).toHaveLength(1);
      return list.body.items[0];
    });
    expect((await api.request('POST', `/api/v1/approvals/${approval.id}:approve`, { token: admin.token })).status).toBe(200);
    const executor = await createApiKey(api, admin, ['actions:execute']);
    const request = await eventually(async () => {
      const list = await api.request('GET', `/api/v1/actions/requests?run_id=${runId}`, { apiKey: executor });
      expect(list.body.items).toHaveLength(1);
      return list.body.items[0];
    });
    expect(kinds(await suggestions(api, analyst, 'case', caseId))).not.toContain('mark_contained');
    expect((await api.request('POST', `/api/v1/actions/requests/${request.id}:complete`, { apiKey: executor, body: { outcome: 'succeeded' } })).status).toBe(200);
    const contained = await eventually(async () => find(await suggestions(api, analyst, 'case', caseId), 'mark_contained'));
    expect(contained.reason).toContain(`${host} (isolate_host request ${request.id} completed`);
    expect(contained.evidence).toEqual([expect.objectContaining({ type: 'action_request', id: request.id })]);
    const ran = await run(api, analyst, contained.action_id);
    expect(ran.status, JSON.stringify(ran.body)).toBe(200);
    expect(ran.body.result.resource.status).toBe('contained');
  });

  it('a case left without a comment for a day: a status update, derived from the case', async () => {
    const alertId = await ingest(api, analyst, { entities: freshEntities().entities, title: 'Beaconing to a rare domain' });
    const caseId = await openCase(api, analyst, [alertId]);
    expect(kinds(await suggestions(api, analyst, 'case', caseId))).not.toContain('comment');
    const clock = api.runtime.commands.clock;
    api.runtime.commands.clock = { now: () => new Date(Date.now() + (QUIET_CASE_HOURS + 1) * 3_600_000) };
    try {
      const comment = find(await suggestions(api, analyst, 'case', caseId), 'comment');
      expect(comment.reason).toMatch(new RegExp(`Nobody has commented since user ${analyst.userId} opened it ${QUIET_CASE_HOURS + 1} hours ago`));
      expect(comment.operation.body.body).toContain('1 alert linked, 1 still open: "Beaconing to a rare domain"');
      const ran = await run(api, analyst, comment.action_id);
      expect(ran.status).toBe(200);
      expect(ran.body.result.resource.comment_count).toBe(1);
      expect(kinds(await suggestions(api, analyst, 'case', caseId))).not.toContain('comment');
    } finally {
      api.runtime.commands.clock = clock;
    }
    const events = await eventsAfter(caseStream(caseId), 0);
    expect(events).toEqual([{ type: 'case.comment_added', data: expect.objectContaining({ author: analyst.userId }), actor: { type: 'user', id: analyst.userId } }]);
  });

  it('a playbook: run it on the most recent open alert it applies to; an alert like one it ran on is offered it', async () => {
    // A tenant of its own: "the most recent open alert" is then this test's.
    const author = await api.user('admin', 'copilot-playbooks');
    const runner = await api.user('analyst', 'copilot-playbooks');
    const playbookId = await createPlaybook(api, author, [{ id: 'isolate', action: 'isolate_host', inputs: { host: '{{alert.entities.host}}', reason: 'Copilot test' } }], 'Isolate the host');
    expect(await suggestions(api, runner, 'playbook', playbookId)).toEqual([]);
    const { entities } = freshEntities();
    const withHost = await ingest(api, runner, { entities, rule: 'edr-credential-dumping' });
    await ingest(api, runner, { entities: [{ type: 'ip', value: '203.0.113.9' }] }); // newer, but no host to isolate
    const [execute] = await suggestions(api, runner, 'playbook', playbookId);
    expect(execute).toMatchObject({
      kind: 'execute_on_alert',
      permission: 'playbooks:execute',
      permitted: true,
      operation: { method: 'POST', path: `/api/v1/playbooks/${playbookId}/execute`, body: { alert_id: withHost } },
    });
    expect(execute!.reason).toContain('1 more recent alert could not fill them in');
    const ran = await run(api, runner, execute!.action_id);
    expect(ran.status, JSON.stringify(ran.body)).toBe(200);
    expect(ran.body.result).toMatchObject({ type: 'playbook_run', resource: { playbook_id: playbookId, subject: { type: 'alert', id: withHost }, requested_by: runner.userId } });
    await eventually(async () => {
      const runView = await api.request('GET', ran.body.result.location, { token: runner.token });
      expect(runView.body.status).toBe('awaiting_approval');
    });
    expect(await suggestions(api, runner, 'playbook', playbookId)).toEqual([]);

    // Another alert of the same rule: the playbook that ran on the first is suggested for it.
    const similar = await ingest(api, runner, { entities: freshEntities().entities, rule: 'edr-credential-dumping' });
    const suggested = find(await suggestions(api, runner, 'alert', similar), 'run_playbook');
    expect(suggested.reason).toContain('same rule edr-credential-dumping');
    expect(suggested.evidence).toEqual([expect.objectContaining({ type: 'playbook_run', id: ran.body.result.id })]);
    expect(suggested.operation.body).toEqual({ alert_id: similar });
  });
});
