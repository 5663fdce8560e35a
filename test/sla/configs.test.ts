/**
 * SLA configuration through real HTTP: the five severities with their defaults, changes that
 * honour If-Match, input that is refused without writing anything, who may change it, and one
 * tenant's configuration staying its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';
import { setSla } from './support.js';

describe('SLA configuration', () => {
  let api: TestApi;
  let admin: Caller;
  let analyst: Caller;
  const head = async () => String(await api.runtime.store.headPosition());
  const put = (severity: string, body: unknown, headers: Record<string, string> = {}, caller = admin) =>
    api.request('PUT', `/api/v1/sla/configs/${severity}`, { token: caller.token, body, headers });
  const list = async (caller: Caller) => {
    const response = await api.request('GET', '/api/v1/sla/configs', { token: caller.token });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body.items as Record<string, any>[];
  };

  beforeAll(async () => {
    api = await startTestApi();
    admin = await api.admin();
    analyst = await api.user('analyst');
  });
  afterAll(async () => api?.close());

  it('lists the five severities, most severe first, with the documented defaults and ETag W/"0"', async () => {
    const tenant = await api.user('admin', 'fresh');
    const items = await list(tenant);
    expect(items).toEqual([
      { severity: 'critical', time_to_acknowledge_seconds: 900, time_to_resolve_seconds: 14_400 },
      { severity: 'high', time_to_acknowledge_seconds: 3600, time_to_resolve_seconds: 86_400 },
      { severity: 'medium', time_to_acknowledge_seconds: 14_400, time_to_resolve_seconds: 259_200 },
      { severity: 'low', time_to_acknowledge_seconds: 86_400, time_to_resolve_seconds: 604_800 },
      { severity: 'informational', time_to_acknowledge_seconds: null, time_to_resolve_seconds: null },
    ].map((item) => ({ ...item, is_default: true, etag: 'W/"0"', updated_at: null, updated_by: null })));
  });

  it('pages like every list', async () => {
    const first = await api.request('GET', '/api/v1/sla/configs?limit=2', { token: analyst.token });
    expect(first.body.items.map((i: { severity: string }) => i.severity)).toEqual(['critical', 'high']);
    const rest = await api.request('GET', `/api/v1/sla/configs?limit=10&cursor=${first.body.next_cursor}`, { token: analyst.token });
    expect(rest.body.items.map((i: { severity: string }) => i.severity)).toEqual(['medium', 'low', 'informational']);
    expect(rest.body.next_cursor).toBeNull();
  });

  it('changes one severity: 200 with the new values and ETag, listed as changed, audited', async () => {
    const changed = await put('high', { time_to_acknowledge_seconds: 1800, time_to_resolve_seconds: 43_200 }, { 'If-Match': 'W/"0"' });
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    expect(changed.headers.get('etag')).toBe('W/"1"');
    expect(changed.headers.get('x-event-position')).toBeTruthy();
    expect(changed.body).toMatchObject({
      severity: 'high',
      time_to_acknowledge_seconds: 1800,
      time_to_resolve_seconds: 43_200,
      is_default: false,
      etag: 'W/"1"',
      updated_by: admin.userId,
    });
    const high = (await list(analyst)).find((i) => i.severity === 'high');
    expect(high).toEqual(changed.body);
    const audit = await api.request('GET', '/api/v1/audit?action=sla_config.changed', { token: admin.token });
    expect(audit.body.items[0]).toMatchObject({
      resource_type: 'sla_config',
      resource_id: 'default.high',
      summary: 'SLA for high set: acknowledge within 30 min, resolve within 12 h',
    });
  });

  it('honours If-Match: a stale ETag is 412 and changes nothing; the current one, or none, goes through', async () => {
    await setSla(api, admin, 'medium', 600, 7200);
    const current = (await list(admin)).find((i) => i.severity === 'medium')!.etag as string;
    const before = await head();
    const stale = await put('medium', { time_to_acknowledge_seconds: 60, time_to_resolve_seconds: 120 }, { 'If-Match': 'W/"0"' });
    expect(stale.status).toBe(412);
    expect(stale.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await head()).toBe(before);
    const fresh = await put('medium', { time_to_acknowledge_seconds: 60, time_to_resolve_seconds: 120 }, { 'If-Match': current });
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get('etag')).not.toBe(current);
    const unconditional = await put('medium', { time_to_acknowledge_seconds: 61, time_to_resolve_seconds: 120 });
    expect(unconditional.status).toBe(200);
  });

  it('setting the values it already has writes nothing and keeps the ETag', async () => {
    const first = await setSla(api, admin, 'low', 3600, 7200);
    const before = await head();
    const again = await setSla(api, admin, 'low', 3600, 7200);
    expect(await head()).toBe(before);
    expect(again.headers.get('etag')).toBe(first.headers.get('etag'));
    expect(again.headers.get('x-event-position')).toBeNull();
  });

  it('null turns a measure off; both null means no SLA at that severity', async () => {
    const some = await setSla(api, admin, 'informational', null, 86_400);
    expect(some.body).toMatchObject({ time_to_acknowledge_seconds: null, time_to_resolve_seconds: 86_400 });
    const none = await setSla(api, admin, 'informational', null, null);
    expect(none.body).toMatchObject({ time_to_acknowledge_seconds: null, time_to_resolve_seconds: null, is_default: false });
  });

  it('refuses bad input with a 4xx problem naming the field, and writes nothing', async () => {
    const refused: [unknown, number, string | undefined][] = [
      [{ time_to_acknowledge_seconds: 7200, time_to_resolve_seconds: 3600 }, 422, '/body/time_to_acknowledge_seconds'],
      [{ time_to_acknowledge_seconds: 0, time_to_resolve_seconds: 3600 }, 400, undefined],
      [{ time_to_acknowledge_seconds: -5, time_to_resolve_seconds: 3600 }, 400, undefined],
      [{ time_to_acknowledge_seconds: 1.5, time_to_resolve_seconds: 3600 }, 400, undefined],
      [{ time_to_acknowledge_seconds: '60', time_to_resolve_seconds: 3600 }, 400, undefined],
      [{ time_to_acknowledge_seconds: 60, time_to_resolve_seconds: 366 * 86_400 + 1 }, 400, undefined],
      [{ time_to_acknowledge_seconds: 60 }, 400, undefined],
      [{ time_to_acknowledge_seconds: 60, time_to_resolve_seconds: 120, extra: 1 }, 400, undefined],
      [[60, 120], 400, undefined],
    ];
    const before = await head();
    for (const [body, status, path] of refused) {
      const response = await put('critical', body);
      expect(response.status, `${JSON.stringify(body)}: ${JSON.stringify(response.body)}`).toBe(status);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      if (path) expect(response.body.errors).toEqual([expect.objectContaining({ path })]);
    }
    const unknownSeverity = await put('urgent', { time_to_acknowledge_seconds: 60, time_to_resolve_seconds: 120 });
    expect(unknownSeverity.status).toBe(400);
    const badEtag = await put('critical', { time_to_acknowledge_seconds: 60, time_to_resolve_seconds: 120 }, { 'If-Match': 'yesterday' });
    expect(badEtag.status).toBe(400);
    expect(await head()).toBe(before);
    expect((await list(admin)).find((i) => i.severity === 'critical')).toMatchObject({ is_default: true, time_to_acknowledge_seconds: 900 });
  });

  it('needs sla:write to change and sla:read to read: an analyst reads and may not change', async () => {
    expect((await list(analyst)).length).toBe(5);
    const response = await put('critical', { time_to_acknowledge_seconds: 60, time_to_resolve_seconds: 120 }, {}, analyst);
    expect(response.status).toBe(403);
  });

  it("keeps each tenant's configuration its own", async () => {
    const acme = await api.user('admin', 'acme');
    await setSla(api, acme, 'critical', 120, 240);
    const ours = (await list(admin)).find((i) => i.severity === 'critical');
    expect(ours).toMatchObject({ time_to_acknowledge_seconds: 900, is_default: true });
    const theirs = (await list(acme)).find((i) => i.severity === 'critical');
    expect(theirs).toMatchObject({ time_to_acknowledge_seconds: 120, time_to_resolve_seconds: 240, etag: 'W/"1"' });
    // Our change to high is not theirs either.
    expect((await list(acme)).find((i) => i.severity === 'high')).toMatchObject({ is_default: true, time_to_acknowledge_seconds: 3600 });
  });
});
