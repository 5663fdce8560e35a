import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { Caller, TestApi } from '../support/api.js';

export const WEBHOOK_SECRET = 'test-webhook-secret-0123456789';
export const NAMED_SECRET = 'named-webhook-secret-9876543210';

// Generous limits: these tests poll runs, and rate limiting has tests of its own.
export const LIMITS = { AISOC_RATE_LIMIT_USER: '100000', AISOC_RATE_LIMIT_API_KEY: '100000' };

export interface Delivery {
  path: string;
  headers: IncomingHttpHeaders;
  /** The exact bytes received: what the signature covers. */
  raw: Buffer;
  body: any;
}

/** A webhook receiver on 127.0.0.1 that keeps what it gets. */
export interface Receiver {
  url: string;
  deliveries: Delivery[];
  /** The status it answers with. */
  status: number;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const receiver = { deliveries: [] as Delivery[], status: 204 } as Receiver;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        body = undefined;
      }
      receiver.deliveries.push({ path: req.url ?? '', headers: req.headers, raw, body });
      res.statusCode = receiver.status;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return receiver;
}

/** Polls until `check` passes (it throws until then), for what reactors and schedules do in the background. */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** An alert through the ingest API, once readable. */
export async function ingestAlert(api: TestApi, caller: Caller, overrides: Record<string, unknown> = {}): Promise<string> {
  const accepted = await api.request('POST', '/api/v1/alerts', {
    token: caller.token,
    body: {
      source: 'edr',
      source_ref: randomUUID(),
      title: 'Credential dumping on WS-042',
      severity: 'high',
      occurred_at: new Date().toISOString(),
      entities: [
        { type: 'user', value: 'jdoe' },
        { type: 'host', value: 'WS-042' },
        { type: 'ip', value: '198.51.100.7' },
      ],
      ...overrides,
    },
  });
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
  const id = accepted.body.alerts[0].alert_id as string;
  await eventually(async () => expect((await api.request('GET', `/api/v1/alerts/${id}`, { token: caller.token })).status).toBe(200));
  return id;
}

export async function openCase(api: TestApi, caller: Caller, alertIds: string[]): Promise<string> {
  const opened = await api.request('POST', '/api/v1/cases', { token: caller.token, body: { title: 'Credential dumping', severity: 'high', alert_ids: alertIds } });
  expect(opened.status, JSON.stringify(opened.body)).toBe(201);
  return opened.body.id as string;
}

export async function createPlaybook(api: TestApi, caller: Caller, steps: unknown[], name = `Playbook ${randomUUID().slice(0, 8)}`): Promise<string> {
  const created = await api.request('POST', '/api/v1/playbooks', { token: caller.token, body: { name, description: 'For a test', steps } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body.id as string;
}

export async function execute(api: TestApi, caller: Caller, playbookId: string, subject: { alert_id: string } | { case_id: string }): Promise<string> {
  const started = await api.request('POST', `/api/v1/playbooks/${playbookId}/execute`, { token: caller.token, body: subject });
  expect(started.status, JSON.stringify(started.body)).toBe(202);
  return started.body.id as string;
}

/** The run as `GET /playbooks/{id}/runs/{run_id}` shows it, once `predicate` holds. */
export async function runWhen(api: TestApi, caller: Caller, playbookId: string, runId: string, predicate: (run: any) => boolean, timeoutMs?: number): Promise<any> {
  return eventually(async () => {
    const run = await api.request('GET', `/api/v1/playbooks/${playbookId}/runs/${runId}`, { token: caller.token });
    expect(run.status, JSON.stringify(run.body)).toBe(200);
    expect(predicate(run.body), JSON.stringify(run.body, null, 1)).toBe(true);
    return run.body;
  }, timeoutMs);
}

export async function createApiKey(api: TestApi, caller: Caller, permissions: string[]): Promise<string> {
  const created = await api.request('POST', '/api/v1/api-keys', { token: caller.token, body: { name: `key-${randomUUID()}`, permissions } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body.key as string;
}
