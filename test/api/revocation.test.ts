/**
 * API processes remember who a token or key is, so authenticating costs no query. A change to
 * who may do what still reaches every process: a session ended, a key revoked or a user demoted
 * through one server is refused by another, also after its notification connection was cut.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, hasPostgres } from '../support/databases.js';
import { runCli, startServerProcess, stop, type ServerProcess } from '../support/processes.js';
import { createSchema, dropSchema } from '../support/runtime.js';
import pg from 'pg';

async function call(server: ServerProcess, method: string, path: string, auth: Record<string, string>, body?: unknown) {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json().catch(() => null)) as Record<string, unknown> | null };
}

async function signIn(server: ServerProcess, email: string, password: string): Promise<Record<string, string>> {
  const { status, body } = await call(server, 'POST', '/api/v1/auth/login', {}, { email, password });
  expect(status).toBe(200);
  return { authorization: `Bearer ${body!.access_token as string}` };
}

/** Until `server` answers `path` with `status` (it must, soon): the notification's way. */
async function eventually(server: ServerProcess, path: string, auth: Record<string, string>, status: number): Promise<void> {
  let last = 0;
  for (let i = 0; i < 100; i += 1) {
    last = (await call(server, 'GET', path, auth)).status;
    if (last === status) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(last).toBe(status);
}

describe.skipIf(!hasPostgres)('revocation across API processes (PostgreSQL)', () => {
  let schema: string;
  let env: Record<string, string>;
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    schema = await createSchema();
    env = { DATABASE_URL: databaseUrl, AISOC_DB_SCHEMA: schema };
    a = await startServerProcess(env);
    b = await startServerProcess(env);
    const created = await runCli(['users', 'create', '--tenant', 'default', '--email', 'ana@example.test', '--role', 'analyst'], { ...env, AISOC_USER_PASSWORD: 'ana-password-123' });
    expect(created.code).toBe(0);
  });
  afterAll(async () => {
    await Promise.all([a, b].filter(Boolean).map((server) => stop(server.child, 'SIGKILL')));
    await dropSchema(schema);
  });

  it('a session ended through one server is refused by the other', async () => {
    const ana = await signIn(a, 'ana@example.test', 'ana-password-123');
    expect((await call(b, 'GET', '/api/v1/users/me', ana)).status).toBe(200);
    expect((await call(a, 'POST', '/api/v1/auth/logout', ana)).status).toBe(204);
    // The server that ended it refuses the token at once.
    expect((await call(a, 'GET', '/api/v1/users/me', ana)).status).toBe(401);
    await eventually(b, '/api/v1/users/me', ana, 401);
  });

  it("a key revoked, or a role's permissions narrowed, through one server takes effect on the other", async () => {
    const admin = await signIn(a, 'admin@aisoc.local', 'changeme');
    const role = { description: 'Triage', permissions: ['profile:read', 'alerts:read', 'cases:read', 'api_keys:write'] };
    expect((await call(a, 'POST', '/api/v1/rbac/roles', admin, { name: 'triage', ...role })).status).toBe(201);
    const created = await runCli(['users', 'create', '--tenant', 'default', '--email', 'tia@example.test', '--role', 'triage'], { ...env, AISOC_USER_PASSWORD: 'tia-password-123' });
    expect(created.code).toBe(0);
    const tia = await signIn(a, 'tia@example.test', 'tia-password-123');
    const key = await call(a, 'POST', '/api/v1/api-keys', tia, { name: 'ci', permissions: ['alerts:read'] });
    expect(key.status).toBe(201);
    const apiKey = { 'x-api-key': key.body!.key as string };

    expect((await call(b, 'GET', '/api/v1/cases', tia)).status).toBe(200);
    const narrowed = await call(a, 'PUT', '/api/v1/rbac/roles/triage', admin, { ...role, permissions: ['profile:read', 'alerts:read', 'api_keys:write'] });
    expect(narrowed.status).toBe(200);
    await eventually(b, '/api/v1/cases', tia, 403);

    expect((await call(b, 'GET', '/api/v1/alerts', apiKey)).status).toBe(200);
    expect((await call(a, 'DELETE', `/api/v1/api-keys/${key.body!.id as string}`, tia)).status).toBe(204);
    await eventually(b, '/api/v1/alerts', apiKey, 401);
  });

  it('after its notification connection is cut, a server still sees a revocation', async () => {
    const ana = await signIn(a, 'ana@example.test', 'ana-password-123');
    expect((await call(b, 'GET', '/api/v1/users/me', ana)).status).toBe(200);
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    const cut = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1`, [`LISTEN "aisoc_principals_${schema}"`]);
    await admin.end();
    expect(cut.rowCount).toBe(2);
    expect((await call(a, 'POST', '/api/v1/auth/logout', ana)).status).toBe(204);
    await eventually(b, '/api/v1/users/me', ana, 401);
  });
});
