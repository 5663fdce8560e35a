/**
 * The two guards that act without anyone asking: the SSRF guard in front of webhooks (no
 * allow-list here, so private, loopback and link-local targets are all refused, by a dry run
 * and by a run's step alike) and approval expiry (a 1 s TTL here: the schedule expires the
 * request, the waiting run stops, and a late decision is a conflict).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalExpirySchedule } from '../../src/reactors/approval-expiry.js';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';
import { createPlaybook, eventually, execute, ingestAlert, LIMITS, runWhen, startReceiver, WEBHOOK_SECRET, type Receiver } from './support.js';

describe('the SSRF guard and approval expiry', () => {
  let api: TestApi;
  let receiver: Receiver;
  let admin: Caller;
  let runner: Caller;
  let approver: Caller;
  let alertId: string;

  beforeAll(async () => {
    receiver = await startReceiver();
    api = await startTestApi('embedded', { ...LIMITS, AISOC_APPROVAL_TTL_SECONDS: '1', AISOC_WEBHOOK_SECRET: WEBHOOK_SECRET });
    [admin, runner, approver] = await Promise.all([api.user('admin'), api.user('analyst'), api.user('responder')]);
    alertId = await ingestAlert(api, runner);
  });
  afterAll(async () => {
    await api?.close();
    await receiver?.close();
  });

  const port = () => new URL(receiver.url).port;

  it.each([
    ['a private address', 'http://10.0.0.1/hook', /refused: 10\.0\.0\.1 is a private address/],
    ['the cloud metadata address', 'http://169.254.169.254/latest/meta-data/', /refused: 169\.254\.169\.254 is a link-local address/],
    ['localhost, by name', () => `http://localhost:${port()}/hook`, /refused: (127\.0\.0\.1|::1) is a loopback address \(localhost resolves to it\)/],
    ['a loopback address', () => `http://127.0.0.1:${port()}/hook`, /refused: 127\.0\.0\.1 is a loopback address/],
    ['an IPv6 unique-local address', 'http://[fd00::1]/hook', /refused: fd00::1 is a unique-local address/],
    ['the unspecified address', 'http://0.0.0.0/hook', /refused: 0\.0\.0\.0 is an unspecified/],
  ])('a dry run of a webhook to %s says it would be refused, and writes nothing', async (_what, url, reason) => {
    const target = typeof url === 'function' ? url() : url;
    const head = await api.runtime.store.headPosition();
    const dry = await api.request('POST', '/api/v1/actions/dry-run', { token: runner.token, body: { action: 'webhook', inputs: { url: target }, alert_id: alertId } });
    expect(dry.status, JSON.stringify(dry.body)).toBe(200);
    expect(dry.body).toMatchObject({ action: 'webhook', risk: 'low', requires_approval: false, approval: null, would_run: false, target: { type: 'url', value: target } });
    expect(dry.body.refusal).toMatch(reason);
    expect(await api.runtime.store.headPosition()).toBe(head);
  });

  it('a run step that calls a refused address fails with the reason, and nothing is sent', async () => {
    const playbookId = await createPlaybook(api, admin, [
      { id: 'metadata', action: 'webhook', inputs: { url: 'http://169.254.169.254/latest/meta-data/iam', body: { alert: '{{alert.id}}' } } },
      { id: 'never', action: 'set_alert_status', inputs: { status: 'resolved' } },
    ]);
    const localId = await createPlaybook(api, admin, [{ id: 'local', action: 'webhook', inputs: { url: `http://localhost:${port()}/hook` } }]);
    const runId = await execute(api, runner, playbookId, { alert_id: alertId });
    const localRun = await execute(api, runner, localId, { alert_id: alertId });
    const failed = await runWhen(api, runner, playbookId, runId, (run) => run.status === 'failed');
    expect(failed.steps[0].detail).toBe(
      'Webhook to http://169.254.169.254/latest/meta-data/iam refused: 169.254.169.254 is a link-local address (cloud metadata services live here), and not allow-listed in AISOC_WEBHOOK_ALLOWLIST',
    );
    expect(failed.steps[1].status).toBe('skipped');
    const local = await runWhen(api, runner, localId, localRun, (run) => run.status === 'failed');
    expect(local.steps[0].detail).toMatch(/is a loopback address \(localhost resolves to it\)/);
    expect(receiver.deliveries).toEqual([]);
    expect((await api.request('GET', `/api/v1/alerts/${alertId}`, { token: runner.token })).body.status).toBe('new');
  });

  it('an approval nobody decides expires once; the waiting run stops, and a late decision is a conflict', async () => {
    const playbookId = await createPlaybook(api, admin, [{ id: 'disable', action: 'disable_user', inputs: { user: '{{alert.entities.user}}' } }]);
    const runId = await execute(api, runner, playbookId, { alert_id: alertId });
    const waiting = await runWhen(api, runner, playbookId, runId, (run) => run.status === 'awaiting_approval' || run.status === 'stopped');
    const approvalId = waiting.steps[0].approval_id as string;
    expect(approvalId).toBeTruthy();

    const stopped = await runWhen(api, runner, playbookId, runId, (run) => run.status === 'stopped');
    expect(stopped.reason).toMatch(new RegExp(`^Approval ${approvalId} expired at .* without a decision$`));
    expect(stopped.steps[0].status).toBe('skipped');
    const expired = await eventually(async () => {
      const approval = await api.request('GET', `/api/v1/approvals/${approvalId}`, { token: approver.token });
      expect(approval.body.status).toBe('expired');
      return approval.body;
    });
    expect(expired.decided_at).toBe(expired.expires_at);
    const late = await api.request('POST', `/api/v1/approvals/${approvalId}:approve`, { token: approver.token });
    expect(late.status).toBe(409);
    expect(late.body.detail).toBe('This request was already expired');

    // Every process runs the schedule, and ticks again after a restart: the expiry is written once.
    const another = approvalExpirySchedule({
      commands: api.runtime.commands,
      db: api.runtime.database.db,
      daemon: api.runtime.daemon,
      config: api.runtime.config,
      logger: api.runtime.logger,
    });
    expect(await another.tick(new Date(Date.now() + 60_000))).toBe(0);
    const events = await api.runtime.store.readStream(`approval-${approvalId}`);
    expect(events.map((e) => e.type)).toEqual(['approval.requested', 'approval.expired']);
  });

  it('a request past its time is refused (409) even before the schedule has expired it', async () => {
    const created = await api.request('POST', '/api/v1/approvals', { token: runner.token, body: { action: 'block_ip', inputs: { ip: '{{alert.entities.ip}}' }, alert_id: alertId } });
    expect(created.status).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const late = await api.request('POST', `/api/v1/approvals/${created.body.id}:reject`, { token: approver.token });
    expect(late.status).toBe(409);
    expect(late.body.detail).toMatch(/^This request (expired at|was already expired)/);
  });
});
