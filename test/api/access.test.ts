/**
 * API keys, roles and permissions, tenants and rate limits, through real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUserRole } from '../../src/commands/identity.js';
import { hasPostgres } from '../support/databases.js';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';

describe('API keys', () => {
  let api: TestApi;
  let analyst: Caller;
  beforeAll(async () => {
    api = await startTestApi();
    analyst = await api.user('analyst');
  });
  afterAll(async () => api?.close());

  const createKey = (caller: Caller, body: object) => api.request('POST', '/api/v1/api-keys', { token: caller.token, body });

  it('a key is shown once, works as X-API-Key with the permissions it was given, and is stored only hashed', async () => {
    const created = await createKey(analyst, { name: 'siem forwarder', permissions: ['alerts:read', 'profile:read'] });
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^aisoc_[0-9a-f]{32}_/);
    expect(created.headers.get('location')).toBe(`/api/v1/api-keys/${created.body.id}`);
    expect(created.headers.get('x-event-position')).toBeTruthy();

    const shown = await api.request('GET', `/api/v1/api-keys/${created.body.id}`, { token: analyst.token });
    expect(shown.status).toBe(200);
    expect(shown.body.key).toBeUndefined();
    const stored = await api.runtime.database.db.selectFrom('api_keys').select('secret_hash').where('id', '=', created.body.id).executeTakeFirstOrThrow();
    expect(created.body.key).not.toContain(stored.secret_hash);

    const asKey = await api.request('GET', '/api/v1/users/me', { apiKey: created.body.key });
    expect(asKey.status).toBe(200);
    expect(asKey.body).toMatchObject({ authenticated_by: 'api_key', api_key_id: created.body.id, email: analyst.email });
    expect(asKey.body.permissions).toEqual(['alerts:read', 'profile:read']);
    expect(asKey.headers.get('x-ratelimit-limit')).toBe('1000');
    // Only what it was given: listing keys needs api_keys:read, which this key lacks.
    expect((await api.request('GET', '/api/v1/api-keys', { apiKey: created.body.key })).status).toBe(403);
  });

  it('a key cannot carry a permission its creator lacks', async () => {
    const response = await createKey(analyst, { name: 'too much', permissions: ['rbac:admin'] });
    expect(response.status).toBe(403);
    expect(response.body.detail).toContain('rbac:admin');
  });

  it('an expired key, a revoked key and a forged key are refused', async () => {
    const expired = await createKey(analyst, { name: 'short', permissions: ['profile:read'], expires_at: new Date(Date.now() + 1500).toISOString() });
    expect(expired.status).toBe(201);
    expect((await api.request('GET', '/api/v1/users/me', { apiKey: expired.body.key })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1700));
    expect((await api.request('GET', '/api/v1/users/me', { apiKey: expired.body.key })).status).toBe(401);

    const revoked = await createKey(analyst, { name: 'revoke me', permissions: ['profile:read'] });
    expect((await api.request('DELETE', `/api/v1/api-keys/${revoked.body.id}`, { token: analyst.token })).status).toBe(204);
    expect((await api.request('GET', '/api/v1/users/me', { apiKey: revoked.body.key })).status).toBe(401);

    const forged = `${revoked.body.key.slice(0, -6)}AAAAAA`;
    expect((await api.request('GET', '/api/v1/users/me', { apiKey: forged })).status).toBe(401);
    expect((await api.request('GET', '/api/v1/users/me', { apiKey: 'not-a-key' })).status).toBe(401);
  });

  it('a key in the past is refused at creation', async () => {
    const response = await createKey(analyst, { name: 'stale', permissions: ['profile:read'], expires_at: '2020-01-01T00:00:00Z' });
    expect(response.status).toBe(400);
  });

  it("demoting the owner narrows the owner's keys at once", async () => {
    const hunter = await api.user('hunter');
    const key = (await createKey(hunter, { name: 'hunting', permissions: ['alerts:write', 'profile:read'] })).body.key as string;
    expect((await api.request('GET', '/api/v1/users/me', { apiKey: key })).body.permissions).toContain('alerts:write');
    await setUserRole(api.runtime.identity, 'default', hunter.userId, 'viewer', { type: 'system', id: 'test' });
    expect((await api.request('GET', '/api/v1/users/me', { apiKey: key })).body.permissions).toEqual(['profile:read']);
  });

  it("someone else's key is not found, neither by id nor in the list, nor can it be revoked", async () => {
    const other = await api.user('analyst');
    const theirs = await createKey(other, { name: 'theirs', permissions: ['profile:read'] });
    expect((await api.request('GET', `/api/v1/api-keys/${theirs.body.id}`, { token: analyst.token })).status).toBe(404);
    expect((await api.request('DELETE', `/api/v1/api-keys/${theirs.body.id}`, { token: analyst.token })).status).toBe(404);
    const mine = await api.request('GET', '/api/v1/api-keys?limit=200', { token: analyst.token });
    expect(mine.body.items.map((k: { id: string }) => k.id)).not.toContain(theirs.body.id);
    expect((await api.request('GET', '/api/v1/users/me', { apiKey: theirs.body.key })).status).toBe(200);
  });

  it('the list pages by cursor without repeats', async () => {
    const caller = await api.user('analyst');
    for (let i = 0; i < 5; i += 1) await createKey(caller, { name: `k${i}`, permissions: ['profile:read'] });
    const first = await api.request('GET', '/api/v1/api-keys?limit=2', { token: caller.token });
    const second = await api.request('GET', `/api/v1/api-keys?limit=2&cursor=${first.body.next_cursor}`, { token: caller.token });
    const third = await api.request('GET', `/api/v1/api-keys?limit=2&cursor=${second.body.next_cursor}`, { token: caller.token });
    const names = [...first.body.items, ...second.body.items, ...third.body.items].map((k: { name: string }) => k.name);
    expect(names).toEqual(['k4', 'k3', 'k2', 'k1', 'k0']);
    expect(third.body.next_cursor).toBeNull();
    expect((await api.request('GET', '/api/v1/api-keys?cursor=not-a-cursor', { token: caller.token })).status).toBe(400);
  });
});

describe('roles and permissions', () => {
  let api: TestApi;
  let admin: Caller;
  beforeAll(async () => {
    api = await startTestApi();
    admin = await api.admin();
  });
  afterAll(async () => api?.close());

  it('lists the built-in roles and permissions', async () => {
    const roles = await api.request('GET', '/api/v1/rbac/roles', { token: admin.token });
    expect(roles.body.items.map((r: { name: string }) => r.name)).toEqual(['admin', 'analyst', 'hunter', 'responder', 'viewer']);
    const permissions = await api.request('GET', '/api/v1/rbac/permissions?limit=200', { token: admin.token });
    expect(permissions.body.items.map((p: { name: string }) => p.name)).toContain('audit:read');
  });

  it('a custom role grants exactly its permissions; changing it takes effect at once', async () => {
    const created = await api.request('POST', '/api/v1/rbac/roles', {
      token: admin.token,
      body: { name: 'keyholder', description: 'manages keys', permissions: ['profile:read', 'api_keys:read'] },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('etag')).toBe('W/"0"');
    const holder = await api.user('keyholder');
    expect((await api.request('GET', '/api/v1/api-keys', { token: holder.token })).status).toBe(200);
    expect((await api.request('POST', '/api/v1/api-keys', { token: holder.token, body: { name: 'x', permissions: ['profile:read'] } })).status).toBe(403);

    const updated = await api.request('PUT', '/api/v1/rbac/roles/keyholder', {
      token: admin.token,
      headers: { 'If-Match': 'W/"0"' },
      body: { description: 'manages keys', permissions: ['profile:read', 'api_keys:read', 'api_keys:write'] },
    });
    expect(updated.status).toBe(200);
    expect(updated.headers.get('etag')).toBe('W/"1"');
    expect((await api.request('POST', '/api/v1/api-keys', { token: holder.token, body: { name: 'x', permissions: ['profile:read'] } })).status).toBe(201);

    const stale = await api.request('PUT', '/api/v1/rbac/roles/keyholder', {
      token: admin.token,
      headers: { 'If-Match': 'W/"0"' },
      body: { permissions: ['profile:read'] },
    });
    expect(stale.status).toBe(412);
    expect((await api.request('DELETE', '/api/v1/rbac/roles/keyholder', { token: admin.token })).status).toBe(409);
  });

  it('built-in roles and permissions cannot be changed or deleted, nor their names taken', async () => {
    expect((await api.request('PUT', '/api/v1/rbac/roles/viewer', { token: admin.token, body: { permissions: ['rbac:admin'] } })).status).toBe(409);
    expect((await api.request('DELETE', '/api/v1/rbac/roles/admin', { token: admin.token })).status).toBe(409);
    expect((await api.request('POST', '/api/v1/rbac/roles', { token: admin.token, body: { name: 'admin', permissions: [] } })).status).toBe(409);
    expect((await api.request('DELETE', '/api/v1/rbac/permissions/audit:read', { token: admin.token })).status).toBe(409);
  });

  it('a role may only grant permissions that exist; a permission a role grants cannot be deleted', async () => {
    expect(
      (await api.request('POST', '/api/v1/rbac/roles', { token: admin.token, body: { name: 'dreamer', permissions: ['dreams:read'] } })).status,
    ).toBe(422);
    expect((await api.request('POST', '/api/v1/rbac/permissions', { token: admin.token, body: { name: 'dreams:read', description: 'Read dreams' } })).status).toBe(201);
    expect((await api.request('POST', '/api/v1/rbac/roles', { token: admin.token, body: { name: 'dreamer', permissions: ['dreams:read'] } })).status).toBe(201);
    expect((await api.request('DELETE', '/api/v1/rbac/permissions/dreams:read', { token: admin.token })).status).toBe(409);
    expect((await api.request('DELETE', '/api/v1/rbac/roles/dreamer', { token: admin.token })).status).toBe(204);
    expect((await api.request('DELETE', '/api/v1/rbac/permissions/dreams:read', { token: admin.token })).status).toBe(204);
    expect((await api.request('GET', '/api/v1/rbac/permissions/dreams:read', { token: admin.token })).status).toBe(404);
  });

  it('changing roles needs rbac:admin', async () => {
    const analyst = await api.user('analyst');
    expect((await api.request('POST', '/api/v1/rbac/roles', { token: analyst.token, body: { name: 'mine', permissions: [] } })).status).toBe(403);
  });
});

describe('tenants', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(async () => api?.close());

  it("another tenant's roles, permissions and keys are not found and not listed", async () => {
    const acme = await api.user('admin', 'acme');
    const globex = await api.user('admin', 'globex');
    await api.request('POST', '/api/v1/rbac/roles', { token: acme.token, body: { name: 'acme-only', permissions: ['profile:read'] } });
    await api.request('POST', '/api/v1/rbac/permissions', { token: acme.token, body: { name: 'acme:secret' } });
    const key = await api.request('POST', '/api/v1/api-keys', { token: acme.token, body: { name: 'acme key', permissions: ['profile:read'] } });

    expect((await api.request('GET', '/api/v1/rbac/roles/acme-only', { token: globex.token })).status).toBe(404);
    expect((await api.request('GET', '/api/v1/rbac/permissions/acme:secret', { token: globex.token })).status).toBe(404);
    expect((await api.request('GET', `/api/v1/api-keys/${key.body.id}`, { token: globex.token })).status).toBe(404);
    expect((await api.request('DELETE', `/api/v1/api-keys/${key.body.id}`, { token: globex.token })).status).toBe(404);
    const roles = await api.request('GET', '/api/v1/rbac/roles?limit=200', { token: globex.token });
    expect(roles.body.items.map((r: { name: string }) => r.name)).not.toContain('acme-only');
    const keys = await api.request('GET', '/api/v1/api-keys?limit=200', { token: globex.token });
    expect(keys.body.items.map((k: { id: string }) => k.id)).not.toContain(key.body.id);
    // A role name is per tenant: globex may have its own.
    expect((await api.request('POST', '/api/v1/rbac/roles', { token: globex.token, body: { name: 'acme-only', permissions: [] } })).status).toBe(201);
  });
});

describe('rate limits', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi('embedded', { AISOC_RATE_LIMIT_USER: '5' });
  });
  afterAll(async () => api?.close());

  it('every authenticated response says the limit, what is left and when it resets; beyond it, 429 with Retry-After', async () => {
    const user = await api.user('viewer');
    const seen: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      const response = await api.request('GET', '/api/v1/users/me', { token: user.token });
      expect(response.status).toBe(200);
      expect(response.headers.get('x-ratelimit-limit')).toBe('5');
      seen.push(Number(response.headers.get('x-ratelimit-remaining')));
      expect(Number(response.headers.get('x-ratelimit-reset'))).toBeGreaterThan(0);
    }
    expect(seen).toEqual([4, 3, 2, 1, 0]);
    const over = await api.request('GET', '/api/v1/users/me', { token: user.token });
    expect(over.status).toBe(429);
    expect(over.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(over.headers.get('x-ratelimit-remaining')).toBe('0');
    // Another principal has a budget of its own.
    const other = await api.user('viewer');
    expect((await api.request('GET', '/api/v1/users/me', { token: other.token })).status).toBe(200);
  });
});

describe.skipIf(!hasPostgres)('rate limits across API processes', () => {
  it('two API processes on one Postgres share a principal\'s counter', async () => {
    const first = await startTestApi('server', { AISOC_RATE_LIMIT_USER: '6' });
    try {
      const second = await first.fixture.reopen({ runProjections: false });
      const user = await first.user('viewer');
      const { createApp } = await import('../../src/api/app.js');
      const { createServer } = await import('node:http');
      const server = createServer(createApp(second));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const secondUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const headers = { authorization: `Bearer ${user.token}` };
      for (let i = 0; i < 3; i += 1) expect((await first.request('GET', '/api/v1/users/me', { token: user.token })).status).toBe(200);
      await first.runtime.identity.counters.sync();
      for (let i = 0; i < 3; i += 1) expect((await fetch(`${secondUrl}/api/v1/users/me`, { headers })).status).toBe(200);
      await second.identity.counters.sync();
      await first.runtime.identity.counters.sync();
      expect((await first.request('GET', '/api/v1/users/me', { token: user.token })).status).toBe(429);
      expect((await fetch(`${secondUrl}/api/v1/users/me`, { headers })).status).toBe(429);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    } finally {
      await first.close();
    }
  });
});
