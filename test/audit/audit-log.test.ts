/**
 * The audit log through real HTTP: every state-changing call leaves an entry naming who made
 * it, filters narrow it, a tenant sees only its own, no credential ever shows, and paging
 * while events keep arriving neither repeats nor skips an entry.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleCommand, type CommandContext } from '../../src/commands/handler.js';
import { alertDecider, alertStream } from '../../src/domain/alert.js';
import { hasPostgres } from '../support/databases.js';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';

interface Entry {
  id: string;
  occurred_at: string;
  tenant_id: string;
  actor: { type: string; id: string };
  action: string;
  resource_type: string;
  resource_id: string;
  request_id: string | null;
  summary: string;
}

// Generous limits: these tests read the log often, and rate limiting has tests of its own.
const ENV = { AISOC_RATE_LIMIT_USER: '100000', AISOC_RATE_LIMIT_API_KEY: '100000' };

/** Waits until the audit projection has applied everything written so far. */
async function settled(api: TestApi): Promise<void> {
  await api.runtime.daemon.waitFor(await api.runtime.store.headPosition(), ['audit'], 20_000);
}

async function entries(api: TestApi, caller: { token?: string; apiKey?: string }, query = ''): Promise<Entry[]> {
  await settled(api);
  const response = await api.request<{ items: Entry[]; next_cursor: string | null }>('GET', `/api/v1/audit${query}`, caller);
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body.items;
}

/** Every entry the caller can see, page by page. */
async function everything(api: TestApi, caller: Caller, filters: Record<string, string> = {}): Promise<Entry[]> {
  await settled(api);
  const all: Entry[] = [];
  let cursor: string | null = null;
  do {
    const query = new URLSearchParams({ ...filters, limit: '200', ...(cursor ? { cursor } : {}) });
    const response: { status: number; body: { items: Entry[]; next_cursor: string | null } } = await api.request('GET', `/api/v1/audit?${query}`, { token: caller.token });
    expect(response.status).toBe(200);
    all.push(...response.body.items);
    cursor = response.body.next_cursor;
  } while (cursor);
  return all;
}

const ENTRY_FIELDS = ['action', 'actor', 'id', 'occurred_at', 'request_id', 'resource_id', 'resource_type', 'summary', 'tenant_id'];

describe('the audit log over HTTP', () => {
  let api: TestApi;
  let admin: Caller;
  beforeAll(async () => {
    api = await startTestApi('embedded', ENV);
    admin = await api.admin();
  });
  afterAll(async () => api?.close());

  it('signing in leaves session.started, by the user, with the request id of the call', async () => {
    const analyst = await api.user('analyst');
    const login = await api.request('POST', '/api/v1/auth/login', {
      body: { email: analyst.email, password: analyst.password },
      headers: { 'X-Request-Id': 'audit-login-1' },
    });
    expect(login.status).toBe(200);
    const found = await entries(api, admin, `?action=session.started&actor=${analyst.userId}`);
    const entry = found.find((e) => e.request_id === 'audit-login-1');
    expect(entry).toMatchObject({
      tenant_id: 'default',
      actor: { type: 'user', id: analyst.userId },
      action: 'session.started',
      resource_type: 'session',
    });
    expect(entry!.summary).toMatch(/^Signed in/);
    expect(Date.parse(entry!.occurred_at)).not.toBeNaN();
    // Two sign-ins: the one the test helper made and this one, newest first.
    expect(found).toHaveLength(2);
    expect(found[0]!.request_id).toBe('audit-login-1');
  });

  it('a failed sign-in is recorded against the account, by the system', async () => {
    const viewer = await api.user('viewer');
    expect((await api.request('POST', '/api/v1/auth/login', { body: { email: viewer.email, password: 'wrong-password' } })).status).toBe(401);
    const [entry] = await entries(api, admin, `?action=user.login_failed&resource_id=${viewer.userId}`);
    expect(entry).toMatchObject({ actor: { type: 'system', id: 'auth' }, resource_type: 'user', resource_id: viewer.userId });
    expect(entry!.summary).toMatch(/^Failed sign-in from /);
  });

  it('creating an API key, and then writing with it, each name who did it', async () => {
    const created = await api.request('POST', '/api/v1/api-keys', {
      token: admin.token,
      body: { name: 'access robot', permissions: ['rbac:admin', 'audit:read'] },
    });
    expect(created.status).toBe(201);
    const [keyEntry, ...more] = await entries(api, admin, `?resource_type=apikey&resource_id=${created.body.id}`);
    expect(more).toEqual([]);
    expect(keyEntry).toMatchObject({ action: 'apikey.created', actor: { type: 'user', id: admin.userId }, request_id: created.headers.get('x-request-id') });
    expect(keyEntry!.summary).toBe('API key "access robot" created with permissions rbac:admin, audit:read');

    const role = await api.request('POST', '/api/v1/rbac/roles', { apiKey: created.body.key, body: { name: 'robot-made', permissions: ['alerts:read'] } });
    expect(role.status).toBe(201);
    const [roleEntry] = await entries(api, { apiKey: created.body.key }, '?action=role.created&resource_id=default.robot-made');
    expect(roleEntry).toMatchObject({ actor: { type: 'api_key', id: created.body.id }, resource_type: 'role' });
  });

  it('creating, changing and deleting a role each leave an entry by the user', async () => {
    const name = `tier-${randomUUID().slice(0, 6)}`;
    const created = await api.request('POST', '/api/v1/rbac/roles', { token: admin.token, body: { name, description: 'second line', permissions: ['alerts:read'] } });
    expect(created.status).toBe(201);
    const changed = await api.request('PUT', `/api/v1/rbac/roles/${name}`, { token: admin.token, body: { permissions: ['alerts:read', 'cases:read'] } });
    expect(changed.status).toBe(200);
    expect((await api.request('DELETE', `/api/v1/rbac/roles/${name}`, { token: admin.token })).status).toBe(204);
    const found = await entries(api, admin, `?resource_type=role&resource_id=default.${name}`);
    expect(found.map((e) => e.action)).toEqual(['role.deleted', 'role.updated', 'role.created']);
    expect(found.every((e) => e.actor.type === 'user' && e.actor.id === admin.userId)).toBe(true);
    expect(found.map((e) => e.summary)).toEqual([
      `Role ${name} deleted`,
      `Role ${name} changed; permissions now alerts:read, cases:read`,
      `Role ${name} created with permissions alerts:read`,
    ]);
  });

  it('filters combine: actor, actor type, action, resource, and a time range (since inclusive, until exclusive)', async () => {
    const hunter = await api.user('hunter');
    const key = await api.request('POST', '/api/v1/api-keys', { token: hunter.token, body: { name: 'hunt', permissions: ['alerts:read'] } });
    expect(key.status).toBe(201);

    const byHunter = await entries(api, admin, `?actor=${hunter.userId}`);
    expect(byHunter.map((e) => e.action).sort()).toEqual(['apikey.created', 'session.started']);
    expect(await entries(api, admin, `?actor=${hunter.userId}&actor_type=api_key`)).toEqual([]);
    expect((await entries(api, admin, `?actor=${hunter.userId}&action=apikey.created`)).map((e) => e.resource_id)).toEqual([key.body.id]);

    const systemMade = await entries(api, admin, '?actor_type=system&limit=200');
    expect(systemMade.length).toBeGreaterThan(0);
    expect(systemMade.every((e) => e.actor.type === 'system')).toBe(true);
    expect((await entries(api, admin, '?resource_type=session&limit=200')).every((e) => e.resource_type === 'session')).toBe(true);

    const keyEntry = byHunter.find((e) => e.action === 'apikey.created')!;
    const at = encodeURIComponent(keyEntry.occurred_at);
    expect((await entries(api, admin, `?actor=${hunter.userId}&since=${at}`)).map((e) => e.id)).toContain(keyEntry.id);
    expect((await entries(api, admin, `?actor=${hunter.userId}&until=${at}`)).map((e) => e.id)).not.toContain(keyEntry.id);
    const later = encodeURIComponent(new Date(Date.parse(keyEntry.occurred_at) + 1).toISOString());
    expect((await entries(api, admin, `?actor=${hunter.userId}&since=${at}&until=${later}`)).map((e) => e.id)).toEqual([keyEntry.id]);
    expect(await entries(api, admin, `?since=${encodeURIComponent('2999-01-01T00:00:00Z')}`)).toEqual([]);
  });

  it('entries come newest first and pages of any size add up to the whole log', async () => {
    const whole = await everything(api, admin);
    const paged: Entry[] = [];
    let cursor: string | null = null;
    do {
      const response: { body: { items: Entry[]; next_cursor: string | null } } = await api.request('GET', `/api/v1/audit?limit=7${cursor ? `&cursor=${cursor}` : ''}`, { token: admin.token });
      paged.push(...response.body.items);
      cursor = response.body.next_cursor;
    } while (cursor);
    expect(paged.map((e) => e.id)).toEqual(whole.map((e) => e.id));
    const positions = await api.runtime.database.db.selectFrom('audit_log').select(['id', 'position']).where('tenant_id', '=', 'default').execute();
    const positionOf = new Map(positions.map((p) => [p.id, p.position]));
    const order = whole.map((e) => positionOf.get(e.id)!);
    expect(order).toEqual([...order].sort().reverse());
  });

  it('bad parameters are a 400 problem naming the parameter', async () => {
    const bad = async (query: string, path: string) => {
      const response = await api.request('GET', `/api/v1/audit?${query}`, { token: admin.token });
      expect(response.status, query).toBe(400);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      expect(JSON.stringify(response.body.errors), query).toContain(path);
    };
    await bad('actor_type=robot', 'actor_type');
    await bad('since=yesterday', 'since');
    await bad('until=2026-13-45T00:00:00Z', 'until');
    await bad('action=Not%20A%20Type', 'action');
    await bad('resource_type=API-KEY', 'resource_type');
    await bad('actor=', 'actor');
    await bad('limit=0', 'limit');
    await bad('limit=500', 'limit');
    await bad('cursor=not-a-cursor', 'cursor');
    await bad('colour=blue', 'colour');
    await bad('since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z', 'until');
    // Colons need no escaping in a query string: an unescaped time is fine.
    expect((await api.request('GET', '/api/v1/audit?since=2026-01-01T00:00:00Z', { token: admin.token })).status).toBe(200);
  });

  it('needs audit:read: no credentials is 401, a role without it is 403', async () => {
    const none = await api.request('GET', '/api/v1/audit');
    expect(none.status).toBe(401);
    const analyst = await api.user('analyst');
    const refused = await api.request('GET', '/api/v1/audit', { token: analyst.token });
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toContain('audit:read');
  });

  it("a tenant sees only its own entries; another tenant's are not reachable by any filter", async () => {
    const globexAdmin = await api.user('admin', 'globex');
    const key = await api.request('POST', '/api/v1/api-keys', { token: globexAdmin.token, body: { name: 'globex key', permissions: ['alerts:read'] } });
    expect(key.status).toBe(201);

    const seenByGlobex = await everything(api, globexAdmin);
    expect(seenByGlobex.length).toBeGreaterThan(0);
    expect(new Set(seenByGlobex.map((e) => e.tenant_id))).toEqual(new Set(['globex']));
    expect(seenByGlobex.map((e) => e.action)).toEqual(expect.arrayContaining(['tenant.created', 'user.registered', 'session.started', 'apikey.created']));

    const seenByDefault = await everything(api, admin);
    expect(seenByDefault.every((e) => e.tenant_id === 'default')).toBe(true);
    const globexIds = new Set(seenByGlobex.map((e) => e.id));
    expect(seenByDefault.filter((e) => globexIds.has(e.id))).toEqual([]);
    expect(await entries(api, admin, `?resource_id=${key.body.id}`)).toEqual([]);
    expect(await entries(api, admin, `?actor=${globexAdmin.userId}`)).toEqual([]);
  });

  it('no credential appears in any entry: not password hashes, key secrets, tokens or refresh token hashes', async () => {
    const user = await api.user('responder');
    const key = await api.request('POST', '/api/v1/api-keys', { token: user.token, body: { name: 'secret test', permissions: ['profile:read'] } });
    expect((await api.request('POST', '/api/v1/auth/refresh', { body: { refresh_token: user.tokens.refresh_token } })).status).toBe(200);
    await settled(api);

    const db = api.runtime.database.db;
    const secrets = [
      user.password,
      user.token,
      user.tokens.refresh_token,
      key.body.key as string,
      ...(await db.selectFrom('users').select('password_hash').execute()).map((r) => r.password_hash),
      ...(await db.selectFrom('api_keys').select('secret_hash').execute()).map((r) => r.secret_hash),
    ];
    for (const event of (await api.runtime.store.readAll({ maxCount: 100_000 })).events) {
      for (const [name, value] of Object.entries(event.data)) if (/hash|token|secret|password/.test(name)) secrets.push(String(value));
    }
    expect(secrets.length).toBeGreaterThan(6);

    const rows = JSON.stringify(await db.selectFrom('audit_log').selectAll().execute());
    const shown = JSON.stringify(await everything(api, admin));
    for (const secret of secrets) {
      expect(rows).not.toContain(secret);
      expect(shown).not.toContain(secret);
    }
    // Nothing but the documented fields: no event data rides along.
    for (const entry of JSON.parse(shown) as Entry[]) expect(Object.keys(entry).sort()).toEqual(ENTRY_FIELDS);
  });
});

describe.each(hasPostgres ? (['embedded', 'server'] as const) : (['embedded'] as const))('paging the audit log while events arrive (%s)', (kind) => {
  let api: TestApi;
  let admin: Caller;
  const tenant = 'paging';
  beforeAll(async () => {
    api = await startTestApi(kind, ENV);
    admin = await api.user('admin', tenant);
  });
  afterAll(async () => api?.close());

  const context: CommandContext = { tenantId: tenant, actor: { type: 'api_key', id: 'ingest' } };
  /** Ingests alerts and waits for the audit log to have them (by position: on a shared server
   * the head can lag behind what was just committed while other transactions are open). */
  async function ingest(count: number): Promise<void> {
    const positions = await Promise.all(
      Array.from({ length: count }, async () => {
        const id = randomUUID();
        const result = await handleCommand(
          api.runtime.commands,
          alertDecider,
          alertStream(id),
          { type: 'IngestAlert', alert: { alert_id: id, source: 'edr', source_ref: id, title: 'Beaconing', severity: 'low', occurred_at: new Date().toISOString() } },
          context,
        );
        return result.position!;
      }),
    );
    await api.runtime.daemon.waitFor(positions.sort().at(-1), ['audit'], 20_000);
  }

  it('neither repeats nor skips an entry', async () => {
    await ingest(40);
    const before = (await api.runtime.database.db.selectFrom('audit_log').select('id').where('tenant_id', '=', tenant).execute()).map((r) => r.id);
    expect(before.length).toBeGreaterThanOrEqual(43);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response: { status: number; body: { items: Entry[]; next_cursor: string | null } } = await api.request(
        'GET',
        `/api/v1/audit?limit=6${cursor ? `&cursor=${cursor}` : ''}`,
        { token: admin.token },
      );
      expect(response.status).toBe(200);
      seen.push(...response.body.items.map((e) => e.id));
      cursor = response.body.next_cursor;
      pages += 1;
      // New events land at the head, before the first page: never on a later one.
      await ingest(3);
    } while (cursor);

    expect(pages).toBeGreaterThan(5);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...before].sort());
    const now = await api.runtime.database.db.selectFrom('audit_log').select('id').where('tenant_id', '=', tenant).execute();
    expect(now.length).toBe(before.length + 3 * pages);
  });
});
