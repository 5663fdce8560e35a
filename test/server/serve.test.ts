/**
 * `npm start` (aisoc serve) on the embedded default: it owns its data directory, answers
 * health and readiness, lets the CLI in through its control socket, and survives a crash.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startServerProcess, stop, type ServerProcess } from '../support/processes.js';
import { READ_MODELS } from '../../src/runtime.js';
import { freshDataDir } from '../support/runtime.js';

const READ_MODEL_NAMES = READ_MODELS.map((projection) => projection.name);

describe('the server process on the embedded default', () => {
  let dataDir: string;
  let env: Record<string, string>;
  let server: ServerProcess | undefined;

  beforeAll(async () => {
    dataDir = await freshDataDir();
    env = { AISOC_DATA_DIR: dataDir };
    server = await startServerProcess(env);
  });
  afterAll(async () => {
    if (server) await stop(server.child, 'SIGKILL');
  });

  it('answers /healthz and, once its read models are caught up, /readyz', async () => {
    expect(await (await fetch(`${server!.url}/healthz`)).json()).toEqual({ status: 'ok' });
    let ready: Response | undefined;
    for (let i = 0; i < 100 && ready?.status !== 200; i += 1) {
      ready = await fetch(`${server!.url}/readyz`);
      if (ready.status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ready!.status).toBe(200);
    expect(await ready!.json()).toMatchObject({ status: 'ready', checks: { event_store: { ok: true }, projections: { ok: true } } });
  });

  it('carries X-Request-Id in and out, and answers unknown routes with a problem', async () => {
    const response = await fetch(`${server!.url}/no-such-route`, { headers: { 'X-Request-Id': 'trace-123' } });
    expect(response.status).toBe(404);
    expect(response.headers.get('x-request-id')).toBe('trace-123');
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(await response.json()).toMatchObject({ status: 404, request_id: 'trace-123' });
  });

  it('serves Prometheus metrics', async () => {
    const text = await (await fetch(`${server!.url}/metrics`)).text();
    expect(text).toContain('aisoc_http_request_duration_seconds');
    expect(text).toContain('aisoc_projection_catching_up{projection="alerts",version="1"} 0');
  });

  it('a CLI command while the server runs goes through its control socket, never opening the data directory', async () => {
    const result = await runCli(['projections', 'status', '--json'], env);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('control socket');
    const statuses = JSON.parse(result.stdout) as { name: string; status: string }[];
    expect(statuses.every((s) => s.status === 'live')).toBe(true);
    expect(statuses.map((s) => s.name)).toEqual(expect.arrayContaining(READ_MODEL_NAMES));
  });

  it('a rebuild asked of the CLI runs in the server and reports progress', async () => {
    const result = await runCli(['projections', 'rebuild', '--all'], env);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('alerts: version 2 is live');
    expect(result.stdout).toContain('cases: version 2 is live');
    expect(result.stdout).toContain('identity: version 2 is live');
    expect(result.stdout).toContain('audit: version 2 is live');
    expect(result.stderr).toMatch(/alerts v2 .*(done|switching)/);
  });

  it('a second server on the same data directory refuses to start, with a clear message', async () => {
    await expect(startServerProcess(env)).rejects.toThrow(/in use by process \d+/);
  });

  it('after a SIGKILL, the server starts again at once on the same data directory and keeps its state', async () => {
    await stop(server!.child, 'SIGKILL');
    server = await startServerProcess(env);
    const result = await runCli(['projections', 'status', '--json'], env);
    const live = (JSON.parse(result.stdout) as { name: string; status: string; version: number }[]).filter((s) => s.status === 'live');
    // The read models as rebuilt; reactors are never rebuilt (that would act twice).
    const versions = Object.fromEntries(live.map((s) => [s.name, s.version]));
    expect(Object.keys(versions)).toEqual(expect.arrayContaining(READ_MODEL_NAMES));
    for (const name of Object.keys(versions)) expect(versions[name], name).toBe(READ_MODEL_NAMES.includes(name) ? 2 : 1);
  });

  it('after a clean stop the lock is released and the CLI opens the data directory itself', async () => {
    expect(await stop(server!.child, 'SIGTERM')).toBe(0);
    server = undefined;
    await expect(access(join(dataDir, 'aisoc.lock'))).rejects.toThrow();
    const result = await runCli(['projections', 'status', '--json'], env);
    expect(result.code).toBe(0);
    expect(result.stderr).not.toContain('control socket');
  });

  it('refuses a bad configuration value with a message naming it', async () => {
    const result = await runCli(['serve'], { ...env, PORT: 'eighty' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('PORT');
  });
});
