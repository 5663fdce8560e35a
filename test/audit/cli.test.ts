/**
 * `npx aisoc audit export` and `audit verify` as an operator runs them: while the server owns
 * the embedded data directory (through its control socket: the server writes the file, so the
 * CLI hands it an absolute path) and after it has stopped (the CLI opens the directory itself).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD } from '../../src/commands/seed.js';
import { CLI, startServerProcess, stop, type CliResult, type ServerProcess } from '../support/processes.js';
import { freshDataDir } from '../support/runtime.js';

/** The CLI in a working directory of our choosing, without the service URLs CI exports. */
async function cli(args: string[], env: Record<string, string>, cwd: string): Promise<CliResult> {
  const { DATABASE_URL: _d, NATS_URL: _n, EVENTSTORE_URL: _e, AISOC_DB_SCHEMA: _s, ...rest } = process.env;
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...rest, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

describe('the audit CLI on the embedded default', () => {
  let dataDir: string;
  let work: string;
  let env: Record<string, string>;
  let server: ServerProcess | undefined;

  beforeAll(async () => {
    dataDir = await freshDataDir();
    work = await mkdtemp(join(tmpdir(), 'aisoc-audit-cli-'));
    env = { AISOC_DATA_DIR: dataDir };
    server = await startServerProcess(env);
    const login = await fetch(`${server.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: DEFAULT_ADMIN_EMAIL, password: DEFAULT_ADMIN_PASSWORD }),
    });
    expect(login.status).toBe(200);
    const { access_token } = (await login.json()) as { access_token: string };
    const key = await fetch(`${server.url}/api/v1/api-keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${access_token}` },
      body: JSON.stringify({ name: 'exporter', permissions: ['audit:read'] }),
    });
    expect(key.status).toBe(201);
  });
  afterAll(async () => {
    if (server) await stop(server.child, 'SIGKILL');
    await rm(work, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
  });

  it('exports through the running server to a path relative to where the CLI runs, and verifies it', async () => {
    const exported = await cli(['audit', 'export', '--out', 'exports/all.jsonl', '--tenant', 'default'], env, work);
    expect(exported.code, exported.stderr).toBe(1);
    expect(exported.stderr).toContain('cannot create');

    await cli(['audit', 'export', '--out', 'all.jsonl', '--tenant', 'default'], env, work).then((result) => {
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain('control socket');
      expect(result.stdout).toMatch(/^Exported \d+ event\(s\) to .*all\.jsonl; manifest .*all\.jsonl\.manifest\.json/);
    });
    const lines = (await readFile(join(work, 'all.jsonl'), 'utf8')).trim().split('\n');
    const types = lines.map((l) => (JSON.parse(l) as { event: { type: string } }).event.type);
    expect(types).toEqual(['tenant.created', 'useremail.claimed', 'user.registered', 'session.started', 'apikey.created']);

    const verified = await cli(['audit', 'verify', 'all.jsonl'], env, work);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout.trim().split('\n')).toHaveLength(1);
    expect(verified.stdout).toMatch(/^OK: .*all\.jsonl is intact: 5 event\(s\)/);
  });

  it('refuses to overwrite an export and explains a bad time', async () => {
    const again = await cli(['audit', 'export', '--out', 'all.jsonl'], env, work);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists');
    const badTime = await cli(['audit', 'export', '--out', 'x.jsonl', '--since', 'last tuesday'], env, work);
    expect(badTime.code).toBe(1);
    expect(badTime.stderr).toContain('since');
  });

  it('a tampered export fails verification with exit code 1 and one line naming the line and the kind', async () => {
    const lines = (await readFile(join(work, 'all.jsonl'), 'utf8')).trim().split('\n');
    await writeFile(join(work, 'tampered.jsonl'), [lines[0], lines[1], lines[3], lines[4]].map((l) => `${l}\n`).join(''));
    await writeFile(join(work, 'tampered.jsonl.manifest.json'), await readFile(join(work, 'all.jsonl.manifest.json')));
    const result = await cli(['audit', 'verify', 'tampered.jsonl'], env, work);
    expect(result.code).toBe(1);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    expect(result.stdout).toMatch(/^FAILED: .*tampered\.jsonl: line 3: removed: seq 3 missing/);
  });

  it('verifies without the server too, opening the data directory itself', async () => {
    expect(await stop(server!.child, 'SIGTERM')).toBe(0);
    server = undefined;
    const result = await cli(['audit', 'verify', join(work, 'all.jsonl')], env, work);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toContain('control socket');
    expect(result.stdout).toContain('is intact');
  });
});
