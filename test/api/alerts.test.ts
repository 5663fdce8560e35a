/**
 * Alerts through real HTTP: accepted for fusion, deduplicated and correlated, then triaged.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';

const alert = (overrides: Record<string, unknown> = {}) => ({
  source: 'edr',
  source_ref: randomUUID(),
  title: 'Suspicious PowerShell encoded command',
  description: 'powershell.exe -enc on a workstation',
  severity: 'high',
  occurred_at: new Date().toISOString(),
  entities: [
    { type: 'host', value: 'WS-042' },
    { type: 'user', value: 'jdoe' },
  ],
  techniques: ['T1059.001'],
  raw: { process: 'powershell.exe', command_line: '-enc SQBFAFgA' },
  ...overrides,
});

describe('alerts', () => {
  let api: TestApi;
  let analyst: Caller;
  beforeAll(async () => {
    api = await startTestApi();
    analyst = await api.user('analyst');
  });
  afterAll(async () => api?.close());

  const ingest = (body: unknown, caller = analyst) => api.request('POST', '/api/v1/alerts', { token: caller.token, body });

  /** Fusion runs after the 202: wait until the alert is readable. */
  async function visible(id: string, caller = analyst, predicate: (a: any) => boolean = () => true): Promise<any> {
    for (let i = 0; i < 200; i += 1) {
      const response = await api.request('GET', `/api/v1/alerts/${id}`, { token: caller.token });
      if (response.status === 200 && predicate(response.body)) return response;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`alert ${id} never became visible`);
  }

  it('accepts one alert with 202 and ids, and fusion makes it readable with its raw payload and an ETag', async () => {
    const sent = alert();
    const accepted = await ingest(sent);
    expect(accepted.status).toBe(202);
    expect(accepted.body.accepted).toBe(1);
    const [{ alert_id }] = accepted.body.alerts;
    const read = await visible(alert_id);
    expect(read.body).toMatchObject({ id: alert_id, title: sent.title, severity: 'high', status: 'new', occurrences: 1, raw: sent.raw, techniques: ['T1059.001'] });
    expect(read.headers.get('etag')).toBe('W/"0"');
  });

  it('reads back text with quotes, backslashes, braces, commas, NULL and line breaks as it was sent', async () => {
    const awkward = ['say "hi"', 'C:\\Windows\\cmd.exe', '{a,b}', 'NULL', 'two\nlines', ' spaced ', 'ünï €'];
    const sent = alert({
      title: awkward.join(' | '),
      description: awkward.join('\t'),
      entities: awkward.map((value) => ({ type: 'file', value })),
    });
    const id = (await ingest(sent)).body.alerts[0].alert_id;
    await visible(id);
    const tagged = await api.request('PATCH', `/api/v1/alerts/${id}`, { token: analyst.token, body: { tags: awkward } });
    expect(tagged.status).toBe(200);
    const read = (await visible(id, analyst, (a) => a.tags.length > 0)).body;
    expect(read).toMatchObject({ title: sent.title, description: sent.description, entities: sent.entities, tags: awkward });
    const listed = await api.request('GET', `/api/v1/alerts?source=edr&q=${encodeURIComponent('cmd.exe')}`, { token: analyst.token });
    expect(listed.body.items.find((a: { id: string }) => a.id === id)).toMatchObject({ title: sent.title, entities: sent.entities, tags: awkward });
  });

  it('the same source reference is the same alert: a second sighting counts, no second alert', async () => {
    const sent = alert();
    const first = (await ingest(sent)).body.alerts[0].alert_id;
    const second = (await ingest({ ...sent, entities: [...sent.entities, { type: 'ip', value: '10.1.2.3' }] })).body.alerts[0].alert_id;
    expect(second).toBe(first);
    const read = await visible(first, analyst, (a) => a.occurrences === 2);
    expect(read.body.entities).toContainEqual({ type: 'ip', value: '10.1.2.3' });
  });

  it('a rule firing again on the same principal within the window joins the open alert; once it is resolved, a new one opens', async () => {
    const rule = `rule-${randomUUID().slice(0, 8)}`;
    const user = `user-${randomUUID().slice(0, 8)}`;
    const entities = [{ type: 'user', value: user }];
    const first = (await ingest(alert({ rule, entities }))).body.alerts[0].alert_id;
    await visible(first);
    const second = (await ingest(alert({ rule, entities, title: 'Same rule, another event' }))).body.alerts[0].alert_id;
    expect(second).not.toBe(first);
    const merged = await visible(second, analyst, (a) => a.occurrences === 2);
    expect(merged.body.id).toBe(first);

    await api.request('PATCH', `/api/v1/alerts/${first}`, { token: analyst.token, body: { status: 'resolved' } });
    const third = (await ingest(alert({ rule, entities }))).body.alerts[0].alert_id;
    const fresh = await visible(third);
    expect(fresh.body.id).toBe(third);
    expect(fresh.body.correlation_key).toBe(`${rule}|user:${user}`);
  });

  it('a batch of 200 is accepted in one request and every alert becomes visible', async () => {
    const source = `batch-${randomUUID().slice(0, 8)}`;
    const response = await ingest({ alerts: Array.from({ length: 200 }, (_, i) => alert({ source, title: `Batch alert ${i}` })) });
    expect(response.status).toBe(202);
    expect(response.body.accepted).toBe(200);
    await visible(response.body.alerts[199].alert_id);
    let seen = 0;
    let cursor: string | null = null;
    do {
      const page: any = await api.request('GET', `/api/v1/alerts?source=${source}&limit=200${cursor ? `&cursor=${cursor}` : ''}`, { token: analyst.token });
      seen += page.body.items.length;
      cursor = page.body.next_cursor;
    } while (cursor);
    for (let i = 0; seen < 200 && i < 100; i += 1) {
      await new Promise((r) => setTimeout(r, 50));
      seen = (await api.request('GET', `/api/v1/alerts?source=${source}&limit=200`, { token: analyst.token })).body.items.length;
    }
    expect(seen).toBe(200);
  });

  it('an invalid alert in a batch refuses the whole batch and queues nothing', async () => {
    const source = `bad-${randomUUID().slice(0, 8)}`;
    const response = await ingest({ alerts: [alert({ source }), { ...alert({ source }), severity: 'apocalyptic' }] });
    expect(response.status).toBe(400);
    await new Promise((r) => setTimeout(r, 300));
    expect((await api.request('GET', `/api/v1/alerts?source=${source}`, { token: analyst.token })).body.items).toEqual([]);
  });

  it('PATCH follows the status workflow, honours If-Match, and the author reads its own write', async () => {
    const id = (await ingest(alert())).body.alerts[0].alert_id;
    await visible(id);
    const stale = await api.request('PATCH', `/api/v1/alerts/${id}`, { token: analyst.token, headers: { 'If-Match': 'W/"7"' }, body: { status: 'acknowledged' } });
    expect(stale.status).toBe(412);
    const changed = await api.request('PATCH', `/api/v1/alerts/${id}`, {
      token: analyst.token,
      headers: { 'If-Match': 'W/"0"' },
      body: { status: 'acknowledged', severity: 'critical', tags: ['vip'] },
    });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ status: 'acknowledged', severity: 'critical', tags: ['vip'] });
    expect(changed.headers.get('etag')).toBe('W/"3"');
    expect(changed.headers.get('x-event-position')).toBeTruthy();
    const refused = await api.request('PATCH', `/api/v1/alerts/${id}`, { token: analyst.token, body: { status: 'new' } });
    expect(refused.status).toBe(422);
    expect(refused.body.allowed_transitions).toEqual(['in_progress', 'resolved', 'false_positive']);
  });

  it('assigns to a user of the tenant, and refuses anyone else', async () => {
    const id = (await ingest(alert())).body.alerts[0].alert_id;
    await visible(id);
    const responder = await api.user('responder');
    const assigned = await api.request('POST', `/api/v1/alerts/${id}/assign`, { token: analyst.token, body: { assignee: responder.userId } });
    expect(assigned.status).toBe(200);
    expect(assigned.body.assignee).toBe(responder.userId);
    const mine = await api.request('GET', `/api/v1/alerts?assignee=${responder.userId}`, { token: analyst.token });
    expect(mine.body.items.map((a: { id: string }) => a.id)).toContain(id);
    expect((await api.request('POST', `/api/v1/alerts/${id}/assign`, { token: analyst.token, body: { assignee: randomUUID() } })).status).toBe(422);
  });

  it('delete hides the alert from reads; its history stays in the audit log', async () => {
    const id = (await ingest(alert())).body.alerts[0].alert_id;
    await visible(id);
    expect((await api.request('DELETE', `/api/v1/alerts/${id}`, { token: analyst.token })).status).toBe(204);
    expect((await api.request('GET', `/api/v1/alerts/${id}`, { token: analyst.token })).status).toBe(404);
    const admin = await api.admin();
    const audit = await api.request('GET', `/api/v1/audit?resource_type=alert&resource_id=${id}`, { token: admin.token });
    expect(audit.body.items.map((e: { action: string }) => e.action)).toEqual(['alert.deleted', 'alert.ingested']);
  });

  it('filters by status, severity, technique, words and time', async () => {
    const source = `filters-${randomUUID().slice(0, 8)}`;
    const ids = (
      await ingest({
        alerts: [
          alert({ source, severity: 'low', title: 'Mimikatz credential dump', techniques: ['T1003.001'] }),
          alert({ source, severity: 'critical', title: 'Ransomware note dropped', techniques: ['T1486'] }),
        ],
      })
    ).body.alerts.map((a: { alert_id: string }) => a.alert_id);
    await visible(ids[1]);
    const list = async (query: string) =>
      (await api.request('GET', `/api/v1/alerts?source=${source}&${query}`, { token: analyst.token })).body.items.map((a: { id: string }) => a.id);
    expect(await list('severity=critical')).toEqual([ids[1]]);
    expect(await list('technique=T1003.001')).toEqual([ids[0]]);
    expect(await list('q=ransomware')).toEqual([ids[1]]);
    expect(await list('status=new')).toHaveLength(2);
    expect(await list(`since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).toEqual([]);
    expect((await api.request('GET', '/api/v1/alerts?severity=apocalyptic', { token: analyst.token })).status).toBe(400);
  });

  it('finds words, hosts, addresses and file names of the title and description', async () => {
    const source = `words-${randomUUID().slice(0, 8)}`;
    const ids = (
      await ingest({
        alerts: [
          alert({ source, title: 'Beacon from WS-0019', description: 'cmd.exe reached 10.0.0.1 as Dave@Example.com' }),
          alert({ source, title: 'Beacon from WS-0190', description: 'powershell.exe reached 10.0.0.12' }),
        ],
      })
    ).body.alerts.map((a: { alert_id: string }) => a.alert_id);
    await visible(ids[1]);
    const search = async (q: string) => {
      const response = await api.request('GET', `/api/v1/alerts?source=${source}&q=${encodeURIComponent(q)}`, { token: analyst.token });
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      return response.body.items.map((a: { id: string }) => a.id).sort();
    };
    const both = [...ids].sort();
    expect(await search('ws-0019')).toEqual([ids[0]]);
    expect(await search('10.0.0.1')).toEqual([ids[0]]);
    expect(await search('CMD.EXE')).toEqual([ids[0]]);
    expect(await search('dave@example.com')).toEqual([ids[0]]);
    expect(await search('beacon reached')).toEqual(both);
    expect(await search('beacon mimikatz')).toEqual([]);
    expect(await search('ws')).toEqual(both);
    expect(await search('--')).toEqual([]);
  });

  it("another tenant's alerts are not found and not listed", async () => {
    const id = (await ingest(alert())).body.alerts[0].alert_id;
    await visible(id);
    const other = await api.user('admin', 'globex');
    expect((await api.request('GET', `/api/v1/alerts/${id}`, { token: other.token })).status).toBe(404);
    expect((await api.request('PATCH', `/api/v1/alerts/${id}`, { token: other.token, body: { status: 'resolved' } })).status).toBe(404);
    expect((await api.request('GET', '/api/v1/alerts?limit=200', { token: other.token })).body.items).toEqual([]);
  });
});
