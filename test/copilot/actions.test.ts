/**
 * Running copilot actions safely: a suggestion made at an older revision is refused (412) and
 * one the copilot no longer makes is a conflict (409), writing nothing either way; an action
 * needs its own permission besides copilot:read (403); another tenant neither reads nor runs
 * (404); an id the server did not give out is a 4xx.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActionIds } from '../../src/copilot/action-id.js';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';
import { context, createApiKey, find, freshEntities, ingest, kinds, LIMITS, openCase, run, suggestions } from './support.js';

describe('running copilot actions', () => {
  let api: TestApi;
  let analyst: Caller;
  let viewer: Caller;
  let hunter: Caller;
  let outsider: Caller;
  const head = async () => String(await api.runtime.store.headPosition());

  beforeAll(async () => {
    api = await startTestApi('embedded', LIMITS);
    [analyst, viewer, hunter, outsider] = await Promise.all([api.user('analyst'), api.user('viewer'), api.user('hunter'), api.user('analyst', 'other-tenant')]);
  });
  afterAll(async () => api?.close());

  it('a suggestion made before the resource changed: 412, and nothing is written', async () => {
    const alertId = await ingest(api, analyst);
    const acknowledge = find(await suggestions(api, analyst, 'alert', alertId), 'acknowledge');
    expect((await api.request('PATCH', `/api/v1/alerts/${alertId}`, { token: analyst.token, body: { tags: ['seen'] } })).status).toBe(200);
    const before = await head();
    const stale = await run(api, analyst, acknowledge.action_id);
    expect(stale.status, JSON.stringify(stale.body)).toBe(412);
    expect(stale.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(stale.body).toMatchObject({ current_revision: '1' });
    expect(stale.body.detail).toMatch(/stale/);
    expect(await head()).toBe(before);
    expect((await api.request('GET', `/api/v1/alerts/${alertId}`, { token: analyst.token })).body.status).toBe('new');
    // A fresh suggestion runs; running it twice is stale the second time.
    const fresh = find(await suggestions(api, analyst, 'alert', alertId), 'acknowledge');
    expect((await run(api, analyst, fresh.action_id)).status).toBe(200);
    expect((await run(api, analyst, fresh.action_id)).status).toBe(412);
  });

  it('a suggestion the copilot no longer makes, the resource unchanged: 409, and nothing is written', async () => {
    const alertId = await ingest(api, analyst, { entities: freshEntities().entities });
    const openCaseSuggestion = find(await suggestions(api, analyst, 'alert', alertId), 'open_case');
    // A case opened through REST does not change the alert's stream, but the alert is now in a case.
    await openCase(api, analyst, [alertId]);
    const before = await head();
    const conflict = await run(api, analyst, openCaseSuggestion.action_id);
    expect(conflict.status, JSON.stringify(conflict.body)).toBe(409);
    expect(await head()).toBe(before);
    expect((await api.request('GET', `/api/v1/cases?alert_id=${alertId}`, { token: analyst.token })).body.items).toHaveLength(1);
  });

  it('a linked case moved on since the suggestion: 412', async () => {
    const { entities } = freshEntities();
    const first = await ingest(api, analyst, { entities });
    const caseId = await openCase(api, analyst, [first]);
    const newcomer = await ingest(api, analyst, { entities, severity: 'low' });
    const link = find(await suggestions(api, analyst, 'alert', newcomer), 'link_to_case');
    expect((await api.request('PATCH', `/api/v1/cases/${caseId}`, { token: analyst.token, body: { status: 'triaged' } })).status).toBe(200);
    const stale = await run(api, analyst, link.action_id);
    expect(stale.status, JSON.stringify(stale.body)).toBe(412);
    expect(stale.body.detail).toContain(`case ${caseId} is at revision 1`);
  });

  it('the caller sees whether they may run each suggestion; without its permission, 403 and nothing written', async () => {
    const alertId = await ingest(api, analyst);
    const forViewer = await suggestions(api, viewer, 'alert', alertId);
    expect(kinds(forViewer)).toEqual(['acknowledge', 'assign_to_me', 'open_case']);
    expect(forViewer.every((s) => !s.permitted)).toBe(true);
    const before = await head();
    const refused = await run(api, viewer, find(forViewer, 'acknowledge').action_id);
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toContain('alerts:write');
    expect(await head()).toBe(before);

    // A hunter may write alerts but not cases.
    const forHunter = await suggestions(api, hunter, 'alert', alertId);
    expect(find(forHunter, 'open_case')).toMatchObject({ permission: 'cases:write', permitted: false });
    expect(find(forHunter, 'acknowledge')).toMatchObject({ permission: 'alerts:write', permitted: true });
    expect((await run(api, hunter, find(forHunter, 'open_case').action_id)).status).toBe(403);
    expect((await run(api, hunter, find(forHunter, 'acknowledge').action_id)).status).toBe(200);
  });

  it('an API key acts with its own permissions: copilot:read alone reads nothing; with the action\'s permission it runs', async () => {
    const alertId = await ingest(api, analyst);
    const copilotOnly = await createApiKey(api, analyst, ['copilot:read']);
    expect((await api.request('GET', `/api/v1/copilot/context/alert/${alertId}`, { apiKey: copilotOnly })).status).toBe(403);
    const acknowledge = find(await suggestions(api, analyst, 'alert', alertId), 'acknowledge');
    expect((await run(api, { apiKey: copilotOnly }, acknowledge.action_id)).status).toBe(403);
    const able = await createApiKey(api, analyst, ['copilot:read', 'alerts:write']);
    const ran = await run(api, { apiKey: able }, acknowledge.action_id);
    expect(ran.status, JSON.stringify(ran.body)).toBe(200);
    const [event] = await api.runtime.store.readStream(`alert-${alertId}`, { direction: 'backwards', maxCount: 1 });
    expect((event!.metadata as any).actor.type).toBe('api_key');
  });

  it("another tenant's resources and action ids are not found", async () => {
    const alertId = await ingest(api, analyst);
    const caseId = await openCase(api, analyst, [alertId]);
    expect((await context(api, outsider, 'alert', alertId)).status).toBe(404);
    expect((await context(api, outsider, 'case', caseId)).status).toBe(404);
    // The case's id as another type is not found either.
    expect((await context(api, analyst, 'playbook', caseId)).status).toBe(404);
    const triage = find(await suggestions(api, analyst, 'case', caseId), 'triage');
    const before = await head();
    const foreign = await run(api, outsider, triage.action_id);
    expect(foreign.status).toBe(404);
    expect(await head()).toBe(before);
    expect((await api.request('GET', `/api/v1/cases/${caseId}`, { token: analyst.token })).body.status).toBe('new');
  });

  it('an action id given out before a rotation of the signing key still runs; a verifier with no cached key (another process) takes it', async () => {
    const alertId = await ingest(api, analyst);
    const acknowledge = find(await suggestions(api, analyst, 'alert', alertId), 'acknowledge');
    await api.runtime.identity.keyring.rotate('jwt');
    const elsewhere = new ActionIds(api.runtime.identity.keyring, api.runtime.database.db);
    expect(await elsewhere.verify(analyst.tenantId, acknowledge.action_id)).toMatchObject({ r: 'alert', i: alertId, k: 'acknowledge' });
    expect(await elsewhere.verify('other-tenant', acknowledge.action_id)).toBeNull();
    const ran = await run(api, analyst, acknowledge.action_id);
    expect(ran.status, JSON.stringify(ran.body)).toBe(200);
  });

  it('a forged, altered or unknown action id is a 4xx, never run', async () => {
    const alertId = await ingest(api, analyst);
    const { action_id: actionId } = find(await suggestions(api, analyst, 'alert', alertId), 'acknowledge');
    const [prefix, payload, mac] = actionId.split('.') as [string, string, string];
    const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const reencode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const flip = (s: string) => `${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`;
    const before = await head();
    const forged = {
      'another kind, same MAC': `${prefix}.${reencode({ ...decoded, k: 'mark_false_positive' })}.${mac}`,
      'another revision, same MAC': `${prefix}.${reencode({ ...decoded, s: [[`alert-${alertId}`, '5']] })}.${mac}`,
      'a MAC changed': `${prefix}.${payload}.${flip(mac)}`,
      'random bytes': `ca1.${randomBytes(60).toString('base64url')}.${randomBytes(16).toString('base64url')}`,
    };
    for (const [what, id] of Object.entries(forged)) {
      const response = await run(api, analyst, id);
      expect(response.status, `${what}: ${JSON.stringify(response.body)}`).toBe(404);
    }
    for (const malformed of ['nothing-like-an-id', `${actionId}x`, 'ca1.abc.def']) {
      const response = await run(api, analyst, malformed);
      expect(response.status, malformed).toBe(400);
    }
    expect(await head()).toBe(before);
    expect((await api.request('GET', `/api/v1/alerts/${alertId}`, { token: analyst.token })).body.status).toBe('new');
  });
});
