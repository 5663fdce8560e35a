/**
 * Playbooks, dry runs and approval requests through real HTTP, without runs: what a playbook
 * must be to be created, what a dry run answers (and that it writes nothing), approval
 * requests asked for by hand, and that nothing of one tenant (playbooks, runs, approvals,
 * action requests) is visible or reachable from another.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';
import { createApiKey, createPlaybook, execute, ingestAlert, LIMITS, openCase, runWhen, WEBHOOK_SECRET } from './support.js';

describe('playbooks, dry runs and approvals', () => {
  let api: TestApi;
  let admin: Caller;
  let analyst: Caller;
  let responder: Caller;
  let alertId: string;
  let caseId: string;

  beforeAll(async () => {
    api = await startTestApi('embedded', { ...LIMITS, AISOC_WEBHOOK_SECRET: WEBHOOK_SECRET, AISOC_WEBHOOK_ALLOWLIST: 'hooks.example.com,192.0.2.0/24' });
    [admin, analyst, responder] = await Promise.all([api.user('admin'), api.user('analyst'), api.user('responder')]);
    alertId = await ingestAlert(api, analyst);
    caseId = await openCase(api, analyst, [alertId]);
  });
  afterAll(async () => api?.close());

  const head = () => api.runtime.store.headPosition();
  const create = (body: unknown, headers: Record<string, string> = {}) => api.request('POST', '/api/v1/playbooks', { token: admin.token, body, headers });

  describe('creating a playbook', () => {
    it('answers 201 with Location and ETag, lists it newest first, and reads it back with each step\'s risk', async () => {
      const created = await create({
        name: 'Phishing triage',
        steps: [
          { id: 'ack', action: 'set_alert_status', inputs: { status: 'acknowledged' } },
          { id: 'isolate', action: 'isolate_host', inputs: { host: '{{alert.entities.host}}' } },
        ],
      });
      expect(created.status).toBe(201);
      expect(created.headers.get('location')).toBe(`/api/v1/playbooks/${created.body.id}`);
      expect(created.headers.get('etag')).toBe('W/"0"');
      expect(created.body).toMatchObject({ name: 'Phishing triage', description: '', created_by: admin.userId });
      expect(created.body.steps.map((s: { id: string; risk: string; requires_approval: boolean }) => [s.id, s.risk, s.requires_approval])).toEqual([
        ['ack', 'low', false],
        ['isolate', 'high', true],
      ]);
      const read = await api.request('GET', `/api/v1/playbooks/${created.body.id}`, { token: analyst.token });
      expect(read.status).toBe(200);
      expect(read.body).toEqual(created.body);
      const list = await api.request('GET', '/api/v1/playbooks?limit=1', { token: analyst.token });
      expect(list.body.items[0].id).toBe(created.body.id);
    });

    it('refuses, with 422 naming each problem, an unknown action, an unknown template field, a step id used twice, and inputs that would not fit', async () => {
      const before = await head();
      const refused = async (steps: unknown[]) => {
        const response = await create({ name: 'Broken', steps });
        expect(response.status, JSON.stringify(response.body)).toBe(422);
        return response.body.errors as { path: string; message: string }[];
      };
      expect(await refused([{ id: 'a', action: 'launch_missiles' }])).toEqual([
        { path: '/body/steps/0/action', message: expect.stringMatching(/^unknown action launch_missiles; known: .*isolate_host/) },
      ]);
      expect(await refused([{ id: 'a', action: 'comment_case', inputs: { body: 'Host {{alert.hostname}} and {{ case.owner }}' } }])).toEqual([
        { path: '/body/steps/0/inputs/body', message: expect.stringMatching(/^unknown template field \{\{alert\.hostname\}\}/) },
        { path: '/body/steps/0/inputs/body', message: expect.stringMatching(/^unknown template field \{\{case\.owner\}\}/) },
      ]);
      expect(await refused([{ id: 'a', action: 'comment_case', inputs: { body: 'Unclosed {{alert.title' } }])).toEqual([
        { path: '/body/steps/0/inputs/body', message: 'a {{ has no matching }} (or the other way round)' },
      ]);
      expect(await refused([{ id: 'a', action: 'comment_case', inputs: { body: 'x' } }, { id: 'a', action: 'comment_case', inputs: { body: 'y' } }])).toEqual([
        { path: '/body/steps/1/id', message: 'step id a is used twice' },
      ]);
      expect(await refused([{ id: 'a', action: 'set_alert_status', inputs: { status: '{{alert.title}}' } }])).toEqual([
        { path: '/body/steps/0/inputs/status', message: expect.stringMatching(/Invalid option/) },
      ]);
      expect(await refused([{ id: 'a', action: 'block_ip', inputs: { ip: '{{alert.entities.host}}' } }])).toEqual([
        { path: '/body/steps/0/inputs/ip', message: expect.any(String) },
      ]);
      expect(await refused([{ id: 'a', action: 'isolate_host', inputs: { host: 'h', force: true } }])).toEqual([
        { path: '/body/steps/0/inputs', message: expect.stringMatching(/force/) },
      ]);
      expect(await refused([{ id: 'a', action: 'webhook', inputs: { url: 'https://hooks.example.com/x', secret: 'nope' } }])).toEqual([
        { path: '/body/steps/0/inputs/secret', message: 'no webhook secret named nope is configured (AISOC_WEBHOOK_SECRETS)' },
      ]);
      expect(await refused([{ id: 'a', action: 'webhook', inputs: { url: 'ftp://hooks.example.com/x' } }])).toEqual([
        { path: '/body/steps/0/inputs/url', message: 'must be an http:// or https:// URL' },
      ]);
      expect((await create({ name: '   ', steps: [{ id: 'a', action: 'comment_case', inputs: { body: 'x' } }] })).status).toBe(400);
      expect(await head()).toBe(before);
    });

    it('an Idempotency-Key repeat answers 200 with the same playbook and writes nothing; other steps under it are refused', async () => {
      const key = randomUUID();
      const body = { name: 'Keyed', steps: [{ id: 'a', action: 'comment_case', inputs: { body: 'x' } }] };
      const first = await create(body, { 'Idempotency-Key': key });
      expect(first.status).toBe(201);
      const before = await head();
      const repeat = await create(body, { 'Idempotency-Key': key });
      expect(repeat.status).toBe(200);
      expect(repeat.body).toEqual(first.body);
      expect(await head()).toBe(before);
      expect((await create({ ...body, steps: [{ id: 'a', action: 'comment_case', inputs: { body: 'y' } }] }, { 'Idempotency-Key': key })).status).toBe(422);
    });

    it('needs playbooks:write to create and playbooks:execute to run', async () => {
      const viewer = await api.user('viewer');
      expect((await api.request('POST', '/api/v1/playbooks', { token: analyst.token, body: { name: 'x', steps: [{ id: 'a', action: 'comment_case', inputs: { body: 'x' } }] } })).status).toBe(403);
      const id = await createPlaybook(api, admin, [{ id: 'a', action: 'comment_case', inputs: { body: 'x' } }]);
      expect((await api.request('POST', `/api/v1/playbooks/${id}/execute`, { token: viewer.token, body: { case_id: caseId } })).status).toBe(403);
      expect((await api.request('GET', `/api/v1/playbooks/${id}/runs`, { token: viewer.token })).status).toBe(200);
    });
  });

  describe('dry runs', () => {
    const dryRun = (body: unknown) => api.request('POST', '/api/v1/actions/dry-run', { token: analyst.token, body });

    it('say what an action would do, rendered, with the approval it needs, and append nothing', async () => {
      const before = await head();
      const isolate = await dryRun({ action: 'isolate_host', inputs: { host: '{{alert.entities.host}}', reason: 'Seen on {{case.title}}' }, alert_id: alertId });
      expect(isolate.status, JSON.stringify(isolate.body)).toBe(200);
      expect(isolate.body).toMatchObject({
        action: 'isolate_host',
        risk: 'high',
        subject: { type: 'alert', id: alertId },
        inputs: { host: 'WS-042', reason: 'Seen on Credential dumping' },
        target: { type: 'host', value: 'WS-042' },
        requires_approval: true,
        approval: { permission: 'approvals:decide', four_eyes: true, expires_in_seconds: 3600 },
        would_run: true,
        refusal: null,
      });
      expect(isolate.body.effect).toMatch(/isolate host WS-042/);

      const status = await dryRun({ action: 'set_alert_status', inputs: { status: 'in_progress' }, case_id: caseId });
      expect(status.body).toMatchObject({ would_run: true, effect: `Change the status of alert ${alertId} from new to in_progress`, target: { type: 'alert', value: alertId } });
      const comment = await dryRun({ action: 'comment_case', inputs: { body: 'On {{alert.title}}' }, alert_id: alertId });
      expect(comment.body).toMatchObject({ would_run: true, target: { type: 'case', value: caseId }, inputs: { body: 'On Credential dumping on WS-042' } });
      const opened = await dryRun({ action: 'open_case', inputs: {}, alert_id: alertId });
      expect(opened.body.effect).toBe(`Open a case "Credential dumping on WS-042" (high) with alert ${alertId} linked`);

      // Allow-listed by name, and by network: resolving a name is the one thing a dry run does outside.
      const byName = await dryRun({ action: 'webhook', inputs: { url: 'http://192.0.2.10/hook' } });
      expect(byName.body).toMatchObject({ would_run: true, refusal: null, subject: null });
      expect(await head()).toBe(before);
    });

    it('say when an action would be refused as things are', async () => {
      const resolvedAlert = await ingestAlert(api, analyst);
      await api.request('PATCH', `/api/v1/alerts/${resolvedAlert}`, { token: analyst.token, body: { status: 'resolved' } });
      const before = await head();
      const refused = await dryRun({ action: 'set_alert_status', inputs: { status: 'in_progress', alert_id: randomUUID() } });
      expect(refused.body).toMatchObject({ would_run: false, refusal: 'Alert was not found' });
      const transition = await dryRun({ action: 'set_alert_status', inputs: { status: 'acknowledged' }, alert_id: resolvedAlert });
      expect(transition.body).toMatchObject({ would_run: false, refusal: 'Cannot go from resolved to acknowledged; allowed from resolved: in_progress' });
      const noCase = await dryRun({ action: 'comment_case', inputs: { body: 'x' }, alert_id: resolvedAlert });
      expect(noCase.body.refusal).toMatch(/^There is no case to act on/);
      expect(await head()).toBe(before);
    });

    it('refuse an unknown action, a template without a value and inputs that do not fit (422), and a subject of nobody (422)', async () => {
      const before = await head();
      expect((await dryRun({ action: 'launch_missiles', inputs: {} })).status).toBe(422);
      const noValue = await dryRun({ action: 'isolate_host', inputs: { host: '{{alert.entities.url}}' }, alert_id: alertId });
      expect(noValue.status).toBe(422);
      expect(noValue.body.detail).toBe(`{{alert.entities.url}}: alert ${alertId} has no url entity`);
      const noAlert = await dryRun({ action: 'isolate_host', inputs: { host: '{{alert.entities.host}}' } });
      expect(noAlert.body.detail).toBe('{{alert.entities.host}}: no alert_id was given');
      expect((await dryRun({ action: 'block_ip', inputs: { ip: 'not-an-ip' } })).status).toBe(422);
      expect((await dryRun({ action: 'block_ip', inputs: { ip: '192.0.2.1' }, alert_id: randomUUID() })).status).toBe(422);
      expect((await dryRun({ action: 'block_ip', inputs: { ip: '192.0.2.1' }, alert_id: alertId, case_id: caseId })).status).toBe(400);
      expect(await head()).toBe(before);
    });

    it('the action types are listed with their risk and inputs', async () => {
      const list = await api.request('GET', '/api/v1/actions', { token: analyst.token });
      expect(list.status).toBe(200);
      const byName = Object.fromEntries(list.body.items.map((a: { name: string }) => [a.name, a]));
      expect(Object.keys(byName).sort()).toEqual(['assign_alert', 'block_ip', 'comment_case', 'disable_user', 'isolate_host', 'open_case', 'set_alert_status', 'webhook']);
      expect(byName.isolate_host).toMatchObject({ risk: 'high', requires_approval: true, inputs: { type: 'object', required: ['host'] } });
      expect(byName.webhook).toMatchObject({ risk: 'low', requires_approval: false });
    });
  });

  describe('approval requests asked for by hand', () => {
    it('are created (201, Location), read, listed, repeated under an Idempotency-Key, and decided by someone else only once', async () => {
      const key = randomUUID();
      const body = { action: 'disable_user', inputs: { user: '{{alert.entities.user}}', reason: 'Impossible travel' }, alert_id: alertId, reason: 'Account takeover suspected' };
      const created = await api.request('POST', '/api/v1/approvals', { token: analyst.token, body, headers: { 'Idempotency-Key': key } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.headers.get('location')).toBe(`/api/v1/approvals/${created.body.id}`);
      expect(created.body).toMatchObject({
        action: 'disable_user',
        risk: 'high',
        inputs: { user: 'jdoe', reason: 'Impossible travel' },
        target: { type: 'user', value: 'jdoe' },
        subject: { type: 'alert', id: alertId },
        reason: 'Account takeover suspected',
        status: 'pending',
        requested_by: analyst.userId,
        run_id: null,
        decided_by: null,
      });
      expect(Date.parse(created.body.expires_at) - Date.parse(created.body.created_at)).toBe(3600 * 1000);
      const before = await head();
      const repeat = await api.request('POST', '/api/v1/approvals', { token: analyst.token, body, headers: { 'Idempotency-Key': key } });
      expect(repeat.status).toBe(200);
      expect(repeat.body.id).toBe(created.body.id);
      expect(await head()).toBe(before);

      const pending = await api.request('GET', '/api/v1/approvals?status=pending&action=disable_user', { token: responder.token });
      expect(pending.body.items.map((a: { id: string }) => a.id)).toContain(created.body.id);
      expect((await api.request('POST', `/api/v1/approvals/${created.body.id}:reject`, { token: analyst.token })).status).toBe(403);
      const rejected = await api.request('POST', `/api/v1/approvals/${created.body.id}:reject`, { token: responder.token });
      expect(rejected.status).toBe(200);
      expect(rejected.body).toMatchObject({ status: 'rejected', decided_by: responder.userId, comment: null });
      expect((await api.request('POST', `/api/v1/approvals/${created.body.id}:reject`, { token: admin.token })).status).toBe(409);
      expect((await api.request('GET', `/api/v1/approvals/${created.body.id}`, { token: responder.token })).body.status).toBe('rejected');
      expect((await api.request('GET', '/api/v1/approvals?status=pending', { token: responder.token })).body.items.map((a: { id: string }) => a.id)).not.toContain(created.body.id);
    });

    it('refuse an unknown action or inputs that do not fit (422), a missing subject (400), and an unknown approval (404)', async () => {
      const before = await head();
      const ask = (body: unknown) => api.request('POST', '/api/v1/approvals', { token: analyst.token, body });
      expect((await ask({ action: 'launch_missiles', alert_id: alertId })).status).toBe(422);
      expect((await ask({ action: 'block_ip', inputs: { ip: 'x' }, alert_id: alertId })).status).toBe(422);
      expect((await ask({ action: 'block_ip', inputs: { ip: '192.0.2.1' } })).status).toBe(400);
      expect((await api.request('POST', `/api/v1/approvals/${randomUUID()}:approve`, { token: responder.token })).status).toBe(404);
      expect(await head()).toBe(before);
    });
  });

  it("nothing of another tenant's is visible or reachable: playbooks, runs, approvals, action requests", async () => {
    const playbookId = await createPlaybook(api, admin, [{ id: 'isolate', action: 'isolate_host', inputs: { host: '{{alert.entities.host}}' } }]);
    const runId = await execute(api, analyst, playbookId, { alert_id: alertId });
    const waiting = await runWhen(api, analyst, playbookId, runId, (run) => run.status === 'awaiting_approval');
    const approvalId = waiting.steps[0].approval_id as string;
    expect((await api.request('POST', `/api/v1/approvals/${approvalId}:approve`, { token: responder.token })).status).toBe(200);
    const handed = await runWhen(api, analyst, playbookId, runId, (run) => run.status === 'awaiting_executor');
    const requestId = handed.steps[0].request_id as string;

    const other = await api.user('admin', 'umbrella');
    const otherKey = await createApiKey(api, other, ['actions:execute']);
    const otherAlert = await ingestAlert(api, other);
    const before = await head();
    const as = (method: string, path: string, body?: unknown) => api.request(method, path, { token: other.token, ...(body !== undefined ? { body } : {}) });
    expect((await as('GET', `/api/v1/playbooks/${playbookId}`)).status).toBe(404);
    expect((await as('GET', `/api/v1/playbooks/${playbookId}/runs`)).status).toBe(404);
    expect((await as('GET', `/api/v1/playbooks/${playbookId}/runs/${runId}`)).status).toBe(404);
    expect((await as('POST', `/api/v1/playbooks/${playbookId}/execute`, { alert_id: otherAlert })).status).toBe(404);
    expect((await as('GET', '/api/v1/playbooks')).body.items).toEqual([]);
    expect((await as('GET', `/api/v1/approvals/${approvalId}`)).status).toBe(404);
    expect((await as('POST', `/api/v1/approvals/${approvalId}:reject`)).status).toBe(404);
    expect((await as('GET', '/api/v1/approvals')).body.items).toEqual([]);
    expect((await api.request('GET', '/api/v1/actions/requests', { apiKey: otherKey })).body.items).toEqual([]);
    expect((await api.request('POST', `/api/v1/actions/requests/${requestId}:complete`, { apiKey: otherKey, body: { outcome: 'failed' } })).status).toBe(404);
    // Naming another tenant's alert or case in a body: 422, as if it did not exist.
    const mine = await createPlaybook(api, other, [{ id: 'a', action: 'comment_case', inputs: { body: 'x' } }]);
    expect((await as('POST', `/api/v1/playbooks/${mine}/execute`, { alert_id: alertId })).status).toBe(422);
    expect((await as('POST', `/api/v1/playbooks/${mine}/execute`, { case_id: caseId })).status).toBe(422);
    expect((await as('POST', '/api/v1/actions/dry-run', { action: 'open_case', alert_id: alertId })).status).toBe(422);
    expect((await as('POST', '/api/v1/approvals', { action: 'open_case', alert_id: alertId })).status).toBe(422);
    // An action's own inputs naming another tenant's alert or case: refused like a missing one.
    const dry = await as('POST', '/api/v1/actions/dry-run', { action: 'set_alert_status', inputs: { status: 'resolved', alert_id: alertId } });
    expect(dry.body).toMatchObject({ would_run: false, refusal: 'Resource was not found' });
    expect(await head()).not.toBe(before); // the other tenant's playbook
    expect((await api.request('GET', `/api/v1/actions/requests?status=pending`, { token: responder.token })).body.items.map((r: { id: string }) => r.id)).toContain(requestId);
  });
});
