/**
 * Tenants and users from the command line, with and without a running server, and the
 * default admin password: a warning in development, a refusal to start in production.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startServerProcess, stop, type ServerProcess } from '../support/processes.js';
import { freshDataDir } from '../support/runtime.js';

async function login(url: string, email: string, password: string): Promise<number> {
  const response = await fetch(`${url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  return response.status;
}

describe('tenants and users from the command line', () => {
  let env: Record<string, string>;
  let server: ServerProcess | undefined;
  beforeAll(async () => {
    env = { AISOC_DATA_DIR: await freshDataDir() };
  });
  afterAll(async () => {
    if (server) await stop(server.child, 'SIGKILL');
  });

  it('a fresh install is seeded with the default admin, and says the password must change', async () => {
    server = await startServerProcess(env);
    expect(server.output()).toContain('still has the default password');
    expect(await login(server.url, 'admin@aisoc.local', 'changeme')).toBe(200);
    await stop(server.child);
    server = undefined;
  });

  it('creates a tenant and users with no server running; the password can come from the environment or standard input', async () => {
    expect((await runCli(['tenants', 'create', 'acme', '--name', 'Acme Corp'], env)).code).toBe(0);
    const fromEnv = await runCli(['users', 'create', '--email', 'Ana@Acme.test', '--role', 'analyst', '--tenant', 'acme'], {
      ...env,
      AISOC_USER_PASSWORD: 'correct horse battery',
    });
    expect(fromEnv.code).toBe(0);
    expect(fromEnv.stdout).toContain('ana@acme.test (analyst) created in tenant acme');
    const fromStdin = await runCli(['users', 'create', '--email', 'bob@acme.test', '--role', 'viewer', '--tenant', 'acme'], env, 'piped password 1\n');
    expect(fromStdin.code).toBe(0);
  });

  it('refuses a duplicate e-mail address, an unknown role and a short password, saying why', async () => {
    const duplicate = await runCli(['users', 'create', '--email', 'ana@acme.test', '--role', 'viewer', '--tenant', 'acme'], { ...env, AISOC_USER_PASSWORD: 'long enough pw' });
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr).toContain('already exists');
    const role = await runCli(['users', 'create', '--email', 'c@acme.test', '--role', 'wizard', '--tenant', 'acme'], { ...env, AISOC_USER_PASSWORD: 'long enough pw' });
    expect(role.stderr).toContain('No role named wizard');
    const short = await runCli(['users', 'create', '--email', 'd@acme.test', '--role', 'viewer', '--tenant', 'acme'], { ...env, AISOC_USER_PASSWORD: 'short' });
    expect(short.stderr).toContain('at least 8 characters');
  });

  it('the users it created sign in to the server; with the server running it goes through the server', async () => {
    server = await startServerProcess(env);
    expect(await login(server.url, 'ana@acme.test', 'correct horse battery')).toBe(200);
    expect(await login(server.url, 'bob@acme.test', 'piped password 1')).toBe(200);
    const created = await runCli(['users', 'create', '--email', 'carol@acme.test', '--role', 'responder', '--tenant', 'acme'], { ...env, AISOC_USER_PASSWORD: 'carol password' });
    expect(created.code).toBe(0);
    expect(created.stderr).toContain('control socket');
    expect(await login(server.url, 'carol@acme.test', 'carol password')).toBe(200);
  });

  it('set-password changes the password: the old one stops working', async () => {
    const changed = await runCli(['users', 'set-password', 'carol@acme.test'], { ...env, AISOC_USER_PASSWORD: 'carol second password' });
    expect(changed.code).toBe(0);
    expect(await login(server!.url, 'carol@acme.test', 'carol password')).toBe(401);
    expect(await login(server!.url, 'carol@acme.test', 'carol second password')).toBe(200);
  });

  it('with NODE_ENV=production the server refuses to start while the default admin password is unchanged', async () => {
    await stop(server!.child);
    server = undefined;
    await expect(startServerProcess({ ...env, NODE_ENV: 'production' })).rejects.toThrow(/Refusing to start with NODE_ENV=production/);
    expect((await runCli(['users', 'set-password', 'admin@aisoc.local'], { ...env, AISOC_USER_PASSWORD: 'a real admin password' })).code).toBe(0);
    server = await startServerProcess({ ...env, NODE_ENV: 'production' });
    expect(await login(server.url, 'admin@aisoc.local', 'a real admin password')).toBe(200);
  });
});
