/**
 * `aisoc submit` against a running server, over HTTP with an API key: it prints the alert's id,
 * and on a refusal prints the problem's detail and exits 1.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startServerProcess, stop, type ServerProcess } from '../support/processes.js';
import { freshDataDir } from '../support/runtime.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/alerts/lateral-movement.json', import.meta.url));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('aisoc submit', () => {
  let server: ServerProcess | undefined;
  let apiKey: string;
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'aisoc-submit-'));
    server = await startServerProcess({ AISOC_DATA_DIR: await freshDataDir() });
    const login = await fetch(`${server.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'admin@aisoc.local', password: 'changeme' }),
    });
    const { access_token } = (await login.json()) as { access_token: string };
    const created = await fetch(`${server.url}/api/v1/api-keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${access_token}` },
      body: JSON.stringify({ name: 'submit-cli', permissions: ['alerts:read', 'alerts:write'] }),
    });
    expect(created.status).toBe(201);
    apiKey = ((await created.json()) as { key: string }).key;
  });
  afterAll(async () => {
    if (server) await stop(server.child, 'SIGKILL');
    await rm(scratch, { recursive: true, force: true });
  });

  it('posts the file to the server and prints the id of the alert it made', async () => {
    const result = await runCli(['submit', EXAMPLE, '--url', `${server!.url}/`, '--api-key', apiKey, '--idempotency-key', 'demo-1'], {});
    expect(result.code, result.stderr).toBe(0);
    const id = result.stdout.trim();
    expect(id).toMatch(UUID);
    expect(result.stderr).toMatch(/^Created: \[critical\] Lateral movement from WS-0142 to 6 hosts/);
    const read = await fetch(`${server!.url}/api/v1/alerts/${id}`, { headers: { 'x-api-key': apiKey } });
    expect(read.status).toBe(200);
    expect(((await read.json()) as { title: string }).title).toMatch(/^Lateral movement/);
  });

  it('takes a bare array of events (key from AISOC_API_KEY); a refusal prints the problem and exits 1', async () => {
    const file = join(scratch, 'bare.json');
    await writeFile(file, JSON.stringify([{ class_uid: 2004, time: Date.now(), finding_info: { title: 'x' } }]));
    const refused = await runCli(['submit', file, '--url', server!.url], { AISOC_API_KEY: apiKey });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain('422');
    expect(refused.stderr).toContain('class_uid 2004 (event 0) is not supported; supported: OCSF Authentication (class_uid 3002)');
    expect(refused.stderr).toContain('/body/events/0: class_uid 2004 is not supported');
  });

  it('with a key the server does not know: the problem detail, exit code 1', async () => {
    const result = await runCli(['submit', EXAMPLE, '--url', server!.url, '--api-key', `aisoc_${'0'.repeat(32)}_${'A'.repeat(43)}`], {});
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('401');
    expect(result.stderr).toContain('The API key is not valid');
  });
});
