/**
 * POST /api/v1/alerts/submit through real HTTP: OCSF events become one alert, written at once
 * (201), repeat-safe under an Idempotency-Key, bounded, redacted, and scoped to the tenant.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertStream } from '../../src/domain/alert.js';
import { alertIdOf } from '../../src/ingest/fusion.js';
import { startTestApi, type ApiResponse, type Caller, type TestApi } from '../support/api.js';

const EXAMPLE = JSON.parse(readFileSync(new URL('../../examples/alerts/lateral-movement.json', import.meta.url), 'utf8')) as { events: unknown[] };

const T0 = Date.parse('2025-06-02T08:00:00Z');
const minutes = (n: number) => T0 + n * 60_000;

/** An OCSF Authentication event (class 3002); each test uses users of its own. */
function signIn(user: string, ok: boolean, at: number, extra: Record<string, unknown> = {}) {
  return {
    class_uid: 3002,
    activity_id: 1,
    time: at,
    status_id: ok ? 1 : 2,
    metadata: { product: { name: 'Windows Security', vendor_name: 'Microsoft' }, version: '1.1.0' },
    user: { name: user },
    src_endpoint: { ip: '192.0.2.10' },
    ...extra,
  };
}

function oktaSignIn(user: string, at: string, place: { city: string; country: string; lat: number; lon: number }, ip: string) {
  return {
    uuid: randomUUID(),
    published: at,
    eventType: 'user.session.start',
    severity: 'INFO',
    actor: { id: `00u${randomUUID().slice(0, 8)}`, type: 'User', alternateId: user, displayName: user },
    client: { ipAddress: ip, geographicalContext: { city: place.city, country: place.country, geolocation: { lat: place.lat, lon: place.lon } } },
    outcome: { result: 'SUCCESS', reason: null },
  };
}

const burst = (user: string, failures: number) => [
  ...Array.from({ length: failures }, (_, i) => signIn(user, false, minutes(i))),
  signIn(user, true, minutes(failures)),
];

function expectProblem(response: ApiResponse, status: number): void {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(response.body).toMatchObject({ status, request_id: response.headers.get('x-request-id') });
}

describe('POST /api/v1/alerts/submit', () => {
  let api: TestApi;
  let analyst: Caller;
  beforeAll(async () => {
    api = await startTestApi();
    analyst = await api.user('analyst');
  });
  afterAll(async () => api?.close());

  const submit = (body: unknown, options: { caller?: Caller; key?: string } = {}) =>
    api.request('POST', '/api/v1/alerts/submit', {
      token: (options.caller ?? analyst).token,
      body,
      headers: options.key ? { 'Idempotency-Key': options.key } : {},
    });
  const head = async () => String(await api.runtime.store.headPosition());

  it('answers 201 with the alert derived from the events, Location, ETag and X-Event-Position; its author reads it at once', async () => {
    const user = `u-${randomUUID().slice(0, 8)}`;
    const response = await submit({ events: burst(user, 6) });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    const alert = response.body;
    expect(alert).toMatchObject({
      source: 'windows-security',
      title: `Successful sign-in for ${user} after 6 failed attempts`,
      severity: 'high',
      status: 'new',
      techniques: ['T1110', 'T1078'],
      rule: 'ocsf.brute_force_success',
      correlation_key: null,
      occurrences: 1,
      occurred_at: new Date(minutes(0)).toISOString(),
    });
    expect(alert.source_ref).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(alert.id).toBe(alertIdOf('default', alert.source, alert.source_ref));
    expect(alert.entities).toEqual(expect.arrayContaining([{ type: 'user', value: user }, { type: 'ip', value: '192.0.2.10' }]));
    expect(alert.description).toContain('6 failed sign-ins');
    expect(alert.raw.events).toHaveLength(7);
    expect(response.headers.get('location')).toBe(`/api/v1/alerts/${alert.id}`);
    expect(response.headers.get('etag')).toBe('W/"0"');
    expect(response.headers.get('x-event-position')).toBeTruthy();

    const read = await api.request('GET', `/api/v1/alerts/${alert.id}`, { token: analyst.token });
    expect(read.status).toBe(200);
    expect(read.body).toEqual(alert);
  });

  it('the canonical example is a critical lateral-movement alert with its techniques and hosts', async () => {
    const response = await submit(EXAMPLE);
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    const alert = response.body;
    expect(alert.title).toMatch(/^Lateral movement from WS-0142 to 6 hosts via PsExec, WMI, admin shares, SMB, RDP/);
    expect(alert.severity).toBe('critical');
    expect(alert.rule).toBe('ocsf.lateral_movement');
    expect(alert.techniques).toEqual(expect.arrayContaining(['T1021.002', 'T1021.001', 'T1569.002', 'T1570', 'T1047', 'T1059.001', 'T1110', 'T1078', 'T1571']));
    const hosts = alert.entities.filter((e: { type: string }) => e.type === 'host').map((e: { value: string }) => e.value);
    expect(hosts).toEqual(expect.arrayContaining(['WS-0142', 'FS-01', 'DC-01', 'SQL-02', 'APP-04', 'APP-05', 'HR-03']));
    expect(alert.entities).toContainEqual({ type: 'user', value: 'jdoe@acme.example' });
    expect(alert.entities).toContainEqual({ type: 'url', value: 'http://198.51.100.23/stage2.ps1' });
    // The Okta session id is a secret-looking field: stored redacted.
    expect(alert.raw.events[5].authenticationContext.externalSessionId).toBe('[REDACTED]');
  });

  it('two sign-ins of one user too far apart for the time between them are impossible travel', async () => {
    const user = `traveller-${randomUUID().slice(0, 8)}@acme.example`;
    const response = await submit({
      events: [
        oktaSignIn(user, '2025-06-02T08:00:00.000Z', { city: 'New York', country: 'United States', lat: 40.7128, lon: -74.006 }, '198.51.100.7'),
        oktaSignIn(user, '2025-06-02T09:30:00.000Z', { city: 'London', country: 'United Kingdom', lat: 51.5074, lon: -0.1278 }, '203.0.113.9'),
      ],
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    expect(response.body.source).toBe('okta');
    expect(response.body.title).toMatch(new RegExp(`^Impossible travel: ${user} signed in from New York, United States and London, United Kingdom, 55\\d\\d km apart in 90 minutes`));
    expect(response.body.severity).toBe('high');
    expect(response.body.techniques).toEqual(['T1078']);
  });

  it('overrides win over derived values; the id is that of POST /alerts for the same source and source_ref, so an ingested alert is a 409', async () => {
    const sourceRef = `case-${randomUUID()}`;
    const user = `o-${randomUUID().slice(0, 8)}`;
    const overridden = await submit({
      events: burst(user, 5),
      title: 'Analyst-titled',
      severity: 'critical',
      source: 'siem',
      source_ref: sourceRef,
      techniques: ['T1110.001'],
      description: 'Written by hand',
    });
    expect(overridden.status, JSON.stringify(overridden.body)).toBe(201);
    expect(overridden.body).toMatchObject({ title: 'Analyst-titled', severity: 'critical', source: 'siem', source_ref: sourceRef, techniques: ['T1110.001'], description: 'Written by hand' });
    expect(overridden.body.id).toBe(alertIdOf('default', 'siem', sourceRef));

    const ingestedRef = `edr-${randomUUID()}`;
    const accepted = await api.request('POST', '/api/v1/alerts', {
      token: analyst.token,
      body: { source: 'edr', source_ref: ingestedRef, title: 'From the queue', severity: 'low', occurred_at: new Date().toISOString() },
    });
    expect(accepted.status).toBe(202);
    const ingestedId = accepted.body.alerts[0].alert_id;
    for (let i = 0; i < 200 && (await api.request('GET', `/api/v1/alerts/${ingestedId}`, { token: analyst.token })).status !== 200; i += 1) {
      await new Promise((r) => setTimeout(r, 25));
    }
    const before = await head();
    const duplicate = await submit({ events: burst(user, 5), source: 'edr', source_ref: ingestedRef });
    expectProblem(duplicate, 409);
    expect(duplicate.body.alert_id).toBe(ingestedId);
    expect(await head()).toBe(before);
  });

  it('the same events again, without an Idempotency-Key, name the same alert: 409, nothing written', async () => {
    const events = burst(`d-${randomUUID().slice(0, 8)}`, 5);
    const first = await submit({ events });
    expect(first.status).toBe(201);
    const before = await head();
    // The same events in another order and with keys in another order are the same events.
    const again = await submit({ events: [...events].reverse().map((e) => Object.fromEntries(Object.entries(e).reverse())) });
    expectProblem(again, 409);
    expect(again.body.alert_id).toBe(first.body.id);
    expect(await head()).toBe(before);
  });

  it('Idempotency-Key: a repeat answers 200 with the same alert and writes nothing; a different request under the key is a 422', async () => {
    const key = `key-${randomUUID()}`;
    const body = { events: burst(`i-${randomUUID().slice(0, 8)}`, 5) };
    const first = await submit(body, { key });
    expect(first.status, JSON.stringify(first.body)).toBe(201);

    const before = await head();
    const repeat = await submit(body, { key });
    expect(repeat.status, JSON.stringify(repeat.body)).toBe(200);
    expect(repeat.body).toEqual(first.body);
    expect(repeat.headers.get('etag')).toBe('W/"0"');
    expect(repeat.headers.get('location')).toBe(`/api/v1/alerts/${first.body.id}`);
    expect(repeat.headers.get('x-event-position')).toBeNull();
    expect(await head()).toBe(before);

    const changed = await submit({ ...body, title: 'Something else' }, { key });
    expectProblem(changed, 422);
    expect(changed.body.errors).toEqual([{ path: '/headers/idempotency-key', message: 'reused with a different body' }]);
    expect(await head()).toBe(before);

    // The key is the caller's own: someone else's identical call is not a repeat of it.
    const colleague = await api.user('analyst');
    const beforeColleague = await head();
    expectProblem(await submit(body, { caller: colleague, key }), 409);
    expect(await head()).toBe(beforeColleague);
  });

  it('an Idempotency-Key that is not 1-255 visible ASCII characters is a 400', async () => {
    const before = await head();
    expectProblem(await submit({ events: burst('k', 5) }, { key: 'has spaces in it' }), 400);
    expectProblem(await submit({ events: burst('k', 5) }, { key: 'x'.repeat(256) }), 400);
    expect(await head()).toBe(before);
  });

  it('caps: more than 1,000 events, an event over 64 KB, a body over 10 MB are 413 problems, and nothing is written', async () => {
    const before = await head();
    const many = await submit({ events: Array.from({ length: 1001 }, (_, i) => signIn('many', false, minutes(i))) });
    expectProblem(many, 413);
    expect(many.body.detail).toContain('1000');

    const big = await submit({ events: [signIn('big', true, T0), signIn('big', true, T0, { message: 'x'.repeat(64 * 1024) })] });
    expectProblem(big, 413);
    expect(big.body.errors).toEqual([{ path: '/body/events/1', message: expect.stringContaining('at most 65536') }]);

    const huge = await api.request('POST', '/api/v1/alerts/submit', {
      token: analyst.token,
      rawBody: JSON.stringify({ events: Array.from({ length: 200 }, () => ({ class_uid: 3002, message: 'y'.repeat(60 * 1024) })) }),
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(huge, 413);
    expect(await head()).toBe(before);
  });

  it('events that are not OCSF, or lack what the rules read, are 400 problems naming each one', async () => {
    const before = await head();
    const notOcsf = await submit({ events: [signIn('a', true, T0), { hello: 'world' }] });
    expectProblem(notOcsf, 400);
    expect(notOcsf.body.errors).toEqual([{ path: '/body/events/1/class_uid', message: expect.stringContaining('not an OCSF event') }]);

    const { user: _user, ...anonymous } = signIn('b', true, T0);
    const missing = await submit({ events: [anonymous, { ...signIn('c', true, T0), time: 'yesterday' }, { class_uid: 1007, time: T0, process: { name: 'x.exe' } }] });
    expectProblem(missing, 400);
    expect(missing.body.errors.map((e: { path: string }) => e.path)).toEqual(['/body/events/0/user', '/body/events/1/time', '/body/events/2/device']);

    const okta = await submit({ events: [{ eventType: 'user.session.start', published: '2025-06-02T08:00:00Z', outcome: { result: 'SUCCESS' } }] });
    expectProblem(okta, 400);
    expect(okta.body.errors).toContainEqual({ path: '/body/events/0/actor', message: expect.any(String) });

    // U+0000 would reach the log and then stop the read models that copy the text.
    const nul = await submit({ events: [signIn('nul\u0000user', true, T0)] });
    expectProblem(nul, 400);
    expect(nul.body.errors).toEqual([{ path: '/body/events/0/user/name', message: 'contains U+0000' }]);

    const notObjects = await submit({ events: ['text'] });
    expectProblem(notObjects, 400);
    expectProblem(await submit({ events: [] }), 400);
    expectProblem(await submit({ events: [signIn('d', true, T0)], colour: 'blue' }), 400);
    expect(await head()).toBe(before);
  });

  it('an OCSF class or Okta event type it does not read is a 422 naming the supported ones', async () => {
    const before = await head();
    const fileActivity = await submit({ events: [signIn('e', true, T0), { class_uid: 1001, time: T0, file: { name: 'a.txt' } }] });
    expectProblem(fileActivity, 422);
    expect(fileActivity.body.detail).toContain('class_uid 1001');
    expect(fileActivity.body.detail).toContain('Authentication (class_uid 3002), Process Activity (class_uid 1007), Network Activity (class_uid 4001)');
    expect(fileActivity.body.errors).toEqual([{ path: '/body/events/1', message: 'class_uid 1001 is not supported' }]);

    const lock = await submit({ events: [{ eventType: 'user.account.lock', published: '2025-06-02T08:00:00Z' }] });
    expectProblem(lock, 422);
    expect(lock.body.detail).toContain('Okta eventType user.account.lock');
    expect(await head()).toBe(before);
  });

  it('secret-looking fields are redacted at any depth before anything is stored', async () => {
    const secrets = ['hunter2-password', 'sk_live_0123456789', 'Bearer eyJhbGciOi.secret', 'sid=abcdef', 'ghp_tokenvalue', '-----BEGIN PRIVATE KEY-----'];
    const event = signIn(`r-${randomUUID().slice(0, 8)}`, true, T0, {
      unmapped: {
        Password: secrets[0],
        nested: [{ api_key: secrets[1] }, { http: { headers: { Authorization: secrets[2], Cookie: secrets[3] } } }],
        'X-Access-Token': secrets[4],
        privateKey: { pem: secrets[5] },
        harmless: 'kept',
      },
    });
    const response = await submit({ events: [event] });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    const read = await api.request('GET', `/api/v1/alerts/${response.body.id}`, { token: analyst.token });
    expect(read.body.raw.events[0].unmapped).toEqual({
      Password: '[REDACTED]',
      nested: [{ api_key: '[REDACTED]' }, { http: { headers: { Authorization: '[REDACTED]', Cookie: '[REDACTED]' } } }],
      'X-Access-Token': '[REDACTED]',
      privateKey: '[REDACTED]',
      harmless: 'kept',
    });
    const stored = JSON.stringify(await api.runtime.store.readStream(alertStream(response.body.id)), (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value));
    for (const secret of secrets) {
      expect(JSON.stringify(read.body)).not.toContain(secret);
      expect(stored).not.toContain(secret);
    }
  });

  it("tenants are apart: another tenant's identical submit is its own alert, and neither sees the other's", async () => {
    const globex = await api.user('analyst', 'globex');
    const body = { events: burst(`t-${randomUUID().slice(0, 8)}`, 5) };
    const ours = await submit(body, { key: 'shared-key' });
    expect(ours.status).toBe(201);
    // Same events, same Idempotency-Key, another tenant: neither a repeat nor a duplicate.
    const theirs = await submit(body, { caller: globex, key: 'shared-key' });
    expect(theirs.status, JSON.stringify(theirs.body)).toBe(201);
    expect(theirs.body.id).not.toBe(ours.body.id);
    expect(theirs.body).toMatchObject({ tenant_id: 'globex', source_ref: ours.body.source_ref });
    expect(theirs.body.id).toBe(alertIdOf('globex', theirs.body.source, theirs.body.source_ref));
    expectProblem(await api.request('GET', `/api/v1/alerts/${ours.body.id}`, { token: globex.token }), 404);
    expectProblem(await api.request('GET', `/api/v1/alerts/${theirs.body.id}`, { token: analyst.token }), 404);
    const listed = await api.request('GET', '/api/v1/alerts?limit=200', { token: globex.token });
    expect(listed.body.items.map((a: { id: string }) => a.id)).toEqual([theirs.body.id]);
  });

  it('needs alerts:write', async () => {
    const responder = await api.user('responder');
    expectProblem(await submit({ events: burst('p', 5) }, { caller: responder }), 403);
  });
});
