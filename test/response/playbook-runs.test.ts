/**
 * Playbook runs end to end through real HTTP: a playbook that comments on the case, calls a
 * signed webhook and isolates a host (high risk) runs step by step in the background; the
 * isolation waits for an approval that only someone other than the runner can give, then for
 * an executor to report it done; the run, the approval, the request and the audit log show
 * all of it. Also: a rejection stops the run, deciding twice is a conflict, and a redelivered
 * run event calls no webhook twice.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventRegistry } from '../../src/domain/index.js';
import { playbookRunStream } from '../../src/domain/playbook-run.js';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';
import {
  createApiKey,
  createPlaybook,
  eventually,
  execute,
  ingestAlert,
  LIMITS,
  NAMED_SECRET,
  openCase,
  runWhen,
  startReceiver,
  WEBHOOK_SECRET,
  type Receiver,
} from './support.js';

const hmac = (secret: string, raw: Buffer) => `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;

describe('playbook runs', () => {
  let api: TestApi;
  let receiver: Receiver;
  let author: Caller;
  let runner: Caller;
  let approver: Caller;
  let executorKey: string;
  let alertId: string;
  let caseId: string;

  beforeAll(async () => {
    receiver = await startReceiver();
    api = await startTestApi('embedded', {
      ...LIMITS,
      AISOC_WEBHOOK_ALLOWLIST: '127.0.0.1',
      AISOC_WEBHOOK_SECRET: WEBHOOK_SECRET,
      AISOC_WEBHOOK_SECRETS: JSON.stringify({ soar: NAMED_SECRET }),
    });
    [author, runner, approver] = await Promise.all([api.user('admin'), api.user('analyst'), api.user('responder')]);
    executorKey = await createApiKey(api, approver, ['actions:execute']);
    alertId = await ingestAlert(api, runner);
    caseId = await openCase(api, runner, [alertId]);
  });
  afterAll(async () => {
    await api?.close();
    await receiver?.close();
  });

  it('comments, calls a signed webhook, waits for a four-eyes approval and an executor, then completes; runs, approvals, requests and the audit log show it', async () => {
    const playbookId = await createPlaybook(
      api,
      author,
      [
        { id: 'note', action: 'comment_case', inputs: { body: 'Playbook {{playbook.name}} started on "{{alert.title}}" (run {{run.id}})' } },
        { id: 'notify', action: 'webhook', inputs: { url: `${receiver.url}/hooks/soc`, body: { alert: '{{alert.title}}', host: '{{alert.entities.host}}', run: '{{run.id}}', case: '{{case.id}}' } } },
        { id: 'isolate', action: 'isolate_host', inputs: { host: '{{alert.entities.host}}', reason: 'Credential dumping' } },
      ],
      'Contain credential theft',
    );
    const before = receiver.deliveries.length;
    const runId = await execute(api, runner, playbookId, { case_id: caseId });

    // The first two steps run at once; the isolation waits for an approval.
    const waiting = await runWhen(api, runner, playbookId, runId, (run) => run.status === 'awaiting_approval');
    expect(waiting.steps.map((s: { status: string }) => s.status)).toEqual(['succeeded', 'succeeded', 'awaiting_approval']);
    expect(waiting.steps[2]).toMatchObject({ requires_approval: true, inputs: { host: 'WS-042', reason: 'Credential dumping' } });

    // The webhook arrived once, signed over the exact bytes, with the rendered body.
    const delivered = receiver.deliveries.slice(before);
    expect(delivered).toHaveLength(1);
    const [delivery] = delivered;
    expect(delivery!.path).toBe('/hooks/soc');
    expect(delivery!.headers['content-type']).toBe('application/json');
    expect(delivery!.headers['x-aisoc-signature']).toBe(hmac(WEBHOOK_SECRET, delivery!.raw));
    expect(delivery!.headers['x-aisoc-delivery']).toBeTruthy();
    expect(delivery!.body).toEqual({ alert: 'Credential dumping on WS-042', host: 'WS-042', run: runId, case: caseId });

    // The comment is on the case, rendered, written for the runner.
    const theCase = await api.request('GET', `/api/v1/cases/${caseId}`, { token: runner.token });
    expect(theCase.body.comments.map((c: { body: string; author: string }) => [c.author, c.body])).toContainEqual([
      runner.userId,
      `Playbook Contain credential theft started on "Credential dumping on WS-042" (run ${runId})`,
    ]);

    // The approval shows what would run; the runner cannot decide it, not even through a key of theirs.
    const approvals = await api.request('GET', `/api/v1/approvals?run_id=${runId}`, { token: approver.token });
    expect(approvals.status).toBe(200);
    expect(approvals.body.items).toHaveLength(1);
    const approval = approvals.body.items[0];
    expect(approval).toMatchObject({
      id: waiting.steps[2].approval_id,
      action: 'isolate_host',
      risk: 'high',
      status: 'pending',
      requested_by: runner.userId,
      target: { type: 'host', value: 'WS-042' },
      subject: { type: 'case', id: caseId },
      run_id: runId,
      playbook_id: playbookId,
      step_id: 'isolate',
    });
    const ownDecision = await api.request('POST', `/api/v1/approvals/${approval.id}:approve`, { token: runner.token, body: { comment: 'LGTM' } });
    expect(ownDecision.status).toBe(403);
    expect(ownDecision.body.detail).toMatch(/four eyes/);
    const runnerKey = await createApiKey(api, runner, ['approvals:decide']);
    expect((await api.request('POST', `/api/v1/approvals/${approval.id}:approve`, { apiKey: runnerKey })).status).toBe(403);
    expect((await api.request('GET', `/api/v1/approvals/${approval.id}`, { token: approver.token })).body.status).toBe('pending');

    // Someone else approves; a second decision, either way, is a conflict.
    const approved = await api.request('POST', `/api/v1/approvals/${approval.id}:approve`, { token: approver.token, body: { comment: 'Go ahead' } });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body).toMatchObject({ status: 'approved', decided_by: approver.userId, comment: 'Go ahead' });
    expect((await api.request('POST', `/api/v1/approvals/${approval.id}:approve`, { token: approver.token })).status).toBe(409);
    expect((await api.request('POST', `/api/v1/approvals/${approval.id}:reject`, { token: author.token })).status).toBe(409);

    // The run hands the isolation to the executor, which finds it pending and reports it done.
    const handed = await runWhen(api, runner, playbookId, runId, (run) => run.status === 'awaiting_executor');
    const requestId = handed.steps[2].request_id as string;
    const pending = await eventually(async () => {
      const list = await api.request('GET', '/api/v1/actions/requests?status=pending', { apiKey: executorKey });
      expect(list.status).toBe(200);
      const found = list.body.items.find((r: { id: string }) => r.id === requestId);
      expect(found).toBeDefined();
      return found;
    });
    expect(pending).toMatchObject({
      action: 'isolate_host',
      connector: 'builtin',
      target: { type: 'host', value: 'WS-042' },
      inputs: { host: 'WS-042', reason: 'Credential dumping' },
      run_id: runId,
      step_id: 'isolate',
      approval_id: approval.id,
      status: 'pending',
    });
    const completed = await api.request('POST', `/api/v1/actions/requests/${requestId}:complete`, { apiKey: executorKey, body: { outcome: 'succeeded', detail: 'Isolated by EDR' } });
    expect(completed.status, JSON.stringify(completed.body)).toBe(200);
    expect(completed.body).toMatchObject({ status: 'succeeded', detail: 'Isolated by EDR' });
    expect((await api.request('POST', `/api/v1/actions/requests/${requestId}:complete`, { apiKey: executorKey, body: { outcome: 'failed' } })).status).toBe(409);
    expect((await api.request('GET', '/api/v1/actions/requests?status=pending', { apiKey: executorKey })).body.items.map((r: { id: string }) => r.id)).not.toContain(requestId);

    const done = await runWhen(api, runner, playbookId, runId, (run) => run.status === 'completed');
    expect(done.steps.map((s: { status: string }) => s.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(done.steps[2].detail).toBe('The executor reported success: Isolated by EDR');
    expect(done.finished_at).toBeTruthy();

    // The runs list of the playbook shows it, paged.
    const runs = await api.request('GET', `/api/v1/playbooks/${playbookId}/runs?limit=1`, { token: runner.token });
    expect(runs.status).toBe(200);
    expect(runs.body.items).toHaveLength(1);
    expect(runs.body.items[0]).toMatchObject({ id: runId, status: 'completed', subject: { type: 'case', id: caseId }, requested_by: runner.userId });
    expect((await api.request('GET', `/api/v1/playbooks/${playbookId}/runs?status=running`, { token: runner.token })).body.items).toEqual([]);

    // Every step is in the audit log, with who did it.
    await api.runtime.daemon.waitFor(await api.runtime.store.headPosition(), ['audit'], 20_000);
    const audit = async (query: string) => {
      const page = await api.request('GET', `/api/v1/audit?${query}&limit=200`, { token: author.token });
      expect(page.status).toBe(200);
      return page.body.items as { action: string; actor: { type: string; id: string }; summary: string }[];
    };
    const runEntries = (await audit(`resource_type=playbook_run&resource_id=${runId}`)).reverse();
    expect(runEntries.map((e) => e.action)).toEqual([
      'playbook_run.started',
      'playbook_run.step_started',
      'playbook_run.step_succeeded',
      'playbook_run.step_started',
      'playbook_run.step_succeeded',
      'playbook_run.step_started',
      'playbook_run.step_awaiting_approval',
      'playbook_run.step_approved',
      'playbook_run.step_awaiting_executor',
      'playbook_run.step_succeeded',
      'playbook_run.completed',
    ]);
    expect(runEntries[0]!.actor).toEqual({ type: 'user', id: runner.userId });
    expect(runEntries[0]!.summary).toBe(`Playbook "Contain credential theft" run on case ${caseId} for ${runner.userId}`);
    expect(runEntries.slice(1).every((e) => e.actor.type === 'system' && e.actor.id === 'playbooks')).toBe(true);
    const approvalEntries = (await audit(`resource_type=approval&resource_id=${approval.id}`)).reverse();
    expect(approvalEntries.map((e) => [e.action, e.actor])).toEqual([
      ['approval.requested', { type: 'system', id: 'playbooks' }],
      ['approval.approved', { type: 'user', id: approver.userId }],
    ]);
    expect(approvalEntries[1]!.summary).toBe(`Approval granted by ${approver.userId}: Go ahead`);
    const requestEntries = (await audit(`resource_type=action_request&resource_id=${requestId}`)).reverse();
    expect(requestEntries.map((e) => e.action)).toEqual(['action_request.created', 'action_request.completed']);
    expect(requestEntries[0]!.summary).toBe('Action isolate_host on host "WS-042" requested from the builtin connector');
    expect((await audit('action=playbook.created')).some((e) => e.summary.startsWith('Playbook "Contain credential theft" created with 3 step(s)'))).toBe(true);
    expect((await audit(`action=case.comment_added&resource_id=${caseId}`)).map((e) => e.actor)).toContainEqual({ type: 'system', id: 'playbooks' });
  });

  it('a rejection stops the waiting run: nothing is handed to an executor, and the later steps never run', async () => {
    const playbookId = await createPlaybook(api, author, [
      { id: 'block', action: 'block_ip', inputs: { ip: '{{alert.entities.ip}}', duration_minutes: 60 } },
      { id: 'after', action: 'set_alert_status', inputs: { status: 'resolved' } },
    ]);
    const runId = await execute(api, runner, playbookId, { alert_id: alertId });
    const waiting = await runWhen(api, runner, playbookId, runId, (run) => run.status === 'awaiting_approval');
    const approvalId = waiting.steps[0].approval_id as string;
    const rejected = await api.request('POST', `/api/v1/approvals/${approvalId}:reject`, { token: approver.token, body: { comment: 'Shared NAT address' } });
    expect(rejected.status).toBe(200);
    expect(rejected.body.status).toBe('rejected');
    expect((await api.request('POST', `/api/v1/approvals/${approvalId}:approve`, { token: author.token })).status).toBe(409);

    const stopped = await runWhen(api, runner, playbookId, runId, (run) => run.status === 'stopped');
    expect(stopped.reason).toBe(`Approval ${approvalId} was rejected by ${approver.userId}: Shared NAT address`);
    expect(stopped.steps.map((s: { status: string }) => s.status)).toEqual(['skipped', 'skipped']);
    const requests = await api.request('GET', `/api/v1/actions/requests?run_id=${runId}`, { apiKey: executorKey });
    expect(requests.body.items).toEqual([]);
    expect((await api.request('GET', `/api/v1/alerts/${alertId}`, { token: runner.token })).body.status).toBe('new');
  });

  it('a step that fails fails the run, naming why; the steps after it never run', async () => {
    const playbookId = await createPlaybook(api, author, [
      { id: 'resolve', action: 'set_alert_status', inputs: { status: 'resolved' } },
      { id: 'again', action: 'set_alert_status', inputs: { status: 'acknowledged' } },
      { id: 'never', action: 'comment_case', inputs: { body: 'unreachable' } },
    ]);
    const alert = await ingestAlert(api, runner);
    const runId = await execute(api, runner, playbookId, { alert_id: alert });
    const failed = await runWhen(api, runner, playbookId, runId, (run) => run.status === 'failed');
    expect(failed.steps.map((s: { status: string }) => s.status)).toEqual(['succeeded', 'failed', 'skipped']);
    expect(failed.steps[1].detail).toBe('Cannot go from resolved to acknowledged; allowed from resolved: in_progress');
    expect(failed.reason).toBe(`Step again failed: ${failed.steps[1].detail}`);
    expect((await api.request('GET', `/api/v1/alerts/${alert}`, { token: runner.token })).body.status).toBe('resolved');
  });

  it('opens a case from the alert and comments on it in a later step; a template with no value fails the step clearly', async () => {
    const playbookId = await createPlaybook(api, author, [
      { id: 'open', action: 'open_case', inputs: { title: 'Investigate {{alert.title}}' } },
      { id: 'note', action: 'comment_case', inputs: { body: 'Opened for {{alert.entities.user}} as {{case.title}}' } },
      { id: 'missing', action: 'comment_case', inputs: { body: '{{alert.entities.url}}' } },
    ]);
    const alert = await ingestAlert(api, runner);
    const runId = await execute(api, runner, playbookId, { alert_id: alert });
    const failed = await runWhen(api, runner, playbookId, runId, (run) => run.status === 'failed');
    const opened = failed.steps[0].output.case_id as string;
    expect(failed.steps.map((s: { status: string }) => s.status)).toEqual(['succeeded', 'succeeded', 'failed']);
    expect(failed.steps[2].detail).toBe(`{{alert.entities.url}}: alert ${alert} has no url entity`);
    const theCase = await api.request('GET', `/api/v1/cases/${opened}`, { token: runner.token });
    expect(theCase.body).toMatchObject({ title: 'Investigate Credential dumping on WS-042', severity: 'high', alert_count: 1 });
    expect(theCase.body.comments.map((c: { body: string }) => c.body)).toEqual(['Opened for jdoe as Investigate Credential dumping on WS-042']);
  });

  it('a redelivered run event does not call the webhook again, and writes nothing', async () => {
    const playbookId = await createPlaybook(api, author, [{ id: 'notify', action: 'webhook', inputs: { url: `${receiver.url}/once`, secret: 'soar' } }]);
    const runId = await execute(api, runner, playbookId, { alert_id: alertId });
    await runWhen(api, runner, playbookId, runId, (run) => run.status === 'completed');
    const mine = () => receiver.deliveries.filter((d) => d.body?.run_id === runId);
    expect(mine()).toHaveLength(1);
    expect(mine()[0]!.headers['x-aisoc-signature']).toBe(hmac(NAMED_SECRET, mine()[0]!.raw));
    expect(mine()[0]!.body).toMatchObject({ playbook_id: playbookId, step_id: 'notify', subject: { type: 'alert', id: alertId } });

    // Deliver every event of the run to the reactor once more, as after a crash before its checkpoint.
    const recorded = await api.runtime.store.readStream(playbookRunStream(runId));
    const reactor = api.runtime.daemon.projection('playbook_runs');
    const head = await api.runtime.store.headPosition();
    await reactor.react!(recorded.map((event) => eventRegistry.decode(event)));
    await reactor.react!(recorded.filter((event) => event.type === 'playbook_run.step_started').map((event) => eventRegistry.decode(event)));
    expect(mine()).toHaveLength(1);
    expect(await api.runtime.store.headPosition()).toBe(head);
    expect(mine()[0]!.headers['x-aisoc-delivery']).toBe(recorded.find((e) => e.type === 'playbook_run.step_started')!.id);
  });

  it('a webhook answered with an error fails its step with the status', async () => {
    const playbookId = await createPlaybook(api, author, [{ id: 'notify', action: 'webhook', inputs: { url: `${receiver.url}/broken` } }]);
    receiver.status = 503;
    try {
      const runId = await execute(api, runner, playbookId, { alert_id: alertId });
      const failed = await runWhen(api, runner, playbookId, runId, (run) => run.status === 'failed');
      expect(failed.steps[0].detail).toBe(`Webhook to ${receiver.url}/broken answered HTTP 503`);
    } finally {
      receiver.status = 204;
    }
  });

  it('an Idempotency-Key on execute starts one run: a repeat answers 200 with it and writes nothing', async () => {
    const playbookId = await createPlaybook(api, author, [{ id: 'ack', action: 'comment_case', inputs: { body: 'seen' } }]);
    const headers = { 'Idempotency-Key': `run-${playbookId}` };
    const first = await api.request('POST', `/api/v1/playbooks/${playbookId}/execute`, { token: runner.token, body: { case_id: caseId }, headers });
    expect(first.status).toBe(202);
    expect(first.headers.get('location')).toBe(`/api/v1/playbooks/${playbookId}/runs/${first.body.id}`);
    await runWhen(api, runner, playbookId, first.body.id, (run) => run.status === 'completed');
    const head = await api.runtime.store.headPosition();
    const repeat = await api.request('POST', `/api/v1/playbooks/${playbookId}/execute`, { token: runner.token, body: { case_id: caseId }, headers });
    expect(repeat.status).toBe(200);
    expect(repeat.body).toMatchObject({ id: first.body.id, status: 'completed' });
    expect(await api.runtime.store.headPosition()).toBe(head);
    expect((await api.request('POST', `/api/v1/playbooks/${playbookId}/execute`, { token: runner.token, body: { alert_id: alertId }, headers })).status).toBe(422);
  });

  it('execute refuses a subject that does not exist (422), both subjects or none (400), and an unknown playbook (404)', async () => {
    const playbookId = await createPlaybook(api, author, [{ id: 'ack', action: 'comment_case', inputs: { body: 'seen' } }]);
    const head = await api.runtime.store.headPosition();
    const call = (id: string, body: unknown) => api.request('POST', `/api/v1/playbooks/${id}/execute`, { token: runner.token, body });
    expect((await call(playbookId, { alert_id: '0190a0b0-0000-7000-8000-000000000000' })).status).toBe(422);
    expect((await call(playbookId, { alert_id: alertId, case_id: caseId })).status).toBe(400);
    expect((await call(playbookId, {})).status).toBe(400);
    expect((await call('0190a0b0-0000-7000-8000-000000000000', { alert_id: alertId })).status).toBe(404);
    expect(await api.runtime.store.headPosition()).toBe(head);
  });
});
