/**
 * Cases through real HTTP: opened with alerts, worked along the workflow, commented, closed and
 * reopened, with the timeline recording all of it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';

describe('cases', () => {
  let api: TestApi;
  let analyst: Caller;
  let alertIds: string[];
  beforeAll(async () => {
    api = await startTestApi();
    analyst = await api.user('analyst');
    const accepted = await api.request('POST', '/api/v1/alerts', {
      token: analyst.token,
      body: {
        alerts: [1, 2, 3].map((i) => ({
          source: 'edr',
          source_ref: randomUUID(),
          title: `Lateral movement step ${i}`,
          severity: 'high',
          occurred_at: new Date().toISOString(),
        })),
      },
    });
    alertIds = accepted.body.alerts.map((a: { alert_id: string }) => a.alert_id);
    for (let i = 0; i < 200; i += 1) {
      const page = await api.request('GET', '/api/v1/alerts?source=edr&limit=200', { token: analyst.token });
      if (alertIds.every((id) => page.body.items.some((a: { id: string }) => a.id === id))) break;
      await new Promise((r) => setTimeout(r, 25));
    }
  });
  afterAll(async () => api?.close());

  const open = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    api.request('POST', '/api/v1/cases', { token: analyst.token, body: { title: 'Lateral movement on WS-042', severity: 'high', ...body }, headers });

  it('opens a case with alerts linked: 201, Location, ETag, and the detail shows its alerts and timeline', async () => {
    const response = await open({ alert_ids: alertIds.slice(0, 2), description: 'PsExec from WS-042' });
    expect(response.status).toBe(201);
    expect(response.headers.get('location')).toBe(`/api/v1/cases/${response.body.id}`);
    expect(response.headers.get('etag')).toBe('W/"0"');
    expect(response.body).toMatchObject({ status: 'new', alert_count: 2, created_by: analyst.userId });
    expect(response.body.alerts.map((a: { id: string }) => a.id).sort()).toEqual(alertIds.slice(0, 2).sort());
    expect(response.body.timeline.map((t: { kind: string }) => t.kind)).toEqual(['case_opened']);
  });

  it('an Idempotency-Key repeat answers 200 with the same case and writes nothing; a different request under it is refused', async () => {
    const key = randomUUID();
    const first = await open({ title: 'Phishing wave' }, { 'Idempotency-Key': key });
    expect(first.status).toBe(201);
    const head = await api.runtime.store.headPosition();
    const repeat = await open({ title: 'Phishing wave' }, { 'Idempotency-Key': key });
    expect(repeat.status).toBe(200);
    expect(repeat.body.id).toBe(first.body.id);
    expect(await api.runtime.store.headPosition()).toBe(head);
    expect((await open({ title: 'Something else' }, { 'Idempotency-Key': key })).status).toBe(422);
  });

  it('moves along the workflow, refuses a skipped step naming the allowed ones, and records each move in the timeline', async () => {
    const id = (await open({})).body.id;
    const patch = (body: object, headers: Record<string, string> = {}) => api.request('PATCH', `/api/v1/cases/${id}`, { token: analyst.token, body, headers });
    expect((await patch({ status: 'triaged' })).status).toBe(200);
    const skipped = await patch({ status: 'resolved' });
    expect(skipped.status).toBe(422);
    expect(skipped.body.allowed_transitions).toEqual(['investigating', 'closed']);
    expect((await patch({ status: 'investigating' })).status).toBe(200);
    const resolved = await patch({ status: 'resolved', reason: 'Contained by isolating the host' });
    expect(resolved.body.status).toBe('resolved');
    expect(resolved.body.timeline.map((t: { summary: string }) => t.summary)).toEqual([
      'Case opened: Lateral movement on WS-042',
      'Status new → triaged',
      'Status triaged → investigating',
      'Status investigating → resolved: Contained by isolating the host',
    ]);
    expect((await patch({ status: 'investigating' }, { 'If-Match': 'W/"1"' })).status).toBe(412);
  });

  it('DELETE closes; a closed case reopens to investigating with a reason, and only so', async () => {
    const id = (await open({})).body.id;
    expect((await api.request('DELETE', `/api/v1/cases/${id}`, { token: analyst.token })).status).toBe(204);
    const closed = await api.request('GET', `/api/v1/cases/${id}`, { token: analyst.token });
    expect(closed.body.status).toBe('closed');
    expect(closed.body.closed_at).toBeTruthy();
    const patch = (body: object) => api.request('PATCH', `/api/v1/cases/${id}`, { token: analyst.token, body });
    expect((await patch({ title: 'Renamed' })).status).toBe(422);
    expect((await patch({ status: 'investigating' })).status).toBe(422);
    const wrong = await patch({ status: 'triaged', reason: 'New evidence' });
    expect(wrong.status).toBe(422);
    expect(wrong.body.allowed_transitions).toEqual(['investigating']);
    const reopened = await patch({ status: 'investigating', reason: 'New evidence from the EDR' });
    expect(reopened.status).toBe(200);
    expect(reopened.body).toMatchObject({ status: 'investigating', closed_at: null });
    expect(reopened.body.timeline.at(-1)).toMatchObject({ kind: 'reopened', summary: 'Reopened: New evidence from the EDR' });
  });

  it('comments and timeline entries are added and shown in order, with who added them', async () => {
    const id = (await open({})).body.id;
    const comment = await api.request('POST', `/api/v1/cases/${id}/comments`, { token: analyst.token, body: { body: 'Pulled the process tree.' } });
    expect(comment.status).toBe(201);
    expect(comment.body).toMatchObject({ author: analyst.userId, body: 'Pulled the process tree.' });
    const entry = await api.request('POST', `/api/v1/cases/${id}/timeline`, {
      token: analyst.token,
      body: { kind: 'containment', summary: 'Host isolated by phone', data: { host: 'WS-042' } },
    });
    expect(entry.status).toBe(201);
    const detail = await api.request('GET', `/api/v1/cases/${id}`, { token: analyst.token });
    expect(detail.body.comments).toEqual([comment.body]);
    expect(detail.body.comment_count).toBe(1);
    expect(detail.body.timeline.map((t: { kind: string }) => t.kind)).toEqual(['case_opened', 'comment_added', 'containment']);
    expect(detail.body.timeline[2]).toMatchObject({ actor: { type: 'user', id: analyst.userId }, data: { host: 'WS-042' } });
  });

  it('links alerts later; an alert that is not the tenant\'s is refused', async () => {
    const id = (await open({ alert_ids: [alertIds[0]] })).body.id;
    const linked = await api.request('PATCH', `/api/v1/cases/${id}`, { token: analyst.token, body: { link_alert_ids: [alertIds[2], alertIds[0]] } });
    expect(linked.status).toBe(200);
    expect(linked.body.alert_count).toBe(2);
    const byAlert = await api.request('GET', `/api/v1/cases?alert_id=${alertIds[2]}`, { token: analyst.token });
    expect(byAlert.body.items.map((c: { id: string }) => c.id)).toContain(id);
    expect((await api.request('PATCH', `/api/v1/cases/${id}`, { token: analyst.token, body: { link_alert_ids: [randomUUID()] } })).status).toBe(422);
  });

  it('lists with filters and pages', async () => {
    const tag = randomUUID().slice(0, 8);
    for (const severity of ['low', 'critical', 'critical']) await open({ title: `Filtered ${tag}`, severity });
    const critical = await api.request('GET', `/api/v1/cases?severity=critical&q=${tag}`, { token: analyst.token });
    expect(critical.body.items).toHaveLength(2);
    const first = await api.request('GET', `/api/v1/cases?q=${tag}&limit=2`, { token: analyst.token });
    const second = await api.request('GET', `/api/v1/cases?q=${tag}&limit=2&cursor=${first.body.next_cursor}`, { token: analyst.token });
    expect([...first.body.items, ...second.body.items].map((c: { severity: string }) => c.severity)).toEqual(['critical', 'critical', 'low']);
  });

  it("another tenant's cases are not found, not listed and not changed", async () => {
    const id = (await open({})).body.id;
    const other = await api.user('admin', 'initech');
    expect((await api.request('GET', `/api/v1/cases/${id}`, { token: other.token })).status).toBe(404);
    expect((await api.request('PATCH', `/api/v1/cases/${id}`, { token: other.token, body: { status: 'triaged' } })).status).toBe(404);
    expect((await api.request('POST', `/api/v1/cases/${id}/comments`, { token: other.token, body: { body: 'hi' } })).status).toBe(404);
    expect((await api.request('GET', '/api/v1/cases', { token: other.token })).body.items).toEqual([]);
    expect((await api.request('POST', '/api/v1/cases', { token: other.token, body: { title: 'x', severity: 'low', alert_ids: alertIds } })).status).toBe(422);
  });
});
