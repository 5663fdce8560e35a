import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { Caller, TestApi } from '../support/api.js';

export interface AlertSpec {
  title: string;
  severity: 'informational' | 'low' | 'medium' | 'high' | 'critical';
  rule?: string;
  description?: string;
  techniques?: string[];
  entities?: { type: string; value: string }[];
  raw?: Record<string, unknown>;
}

/** Ingests alerts through the API and waits until they can be read; answers their ids in order. */
export async function ingest(api: TestApi, caller: Caller, alerts: AlertSpec[]): Promise<string[]> {
  const accepted = await api.request('POST', '/api/v1/alerts', {
    token: caller.token,
    body: { alerts: alerts.map((a) => ({ source: 'edr', source_ref: randomUUID(), occurred_at: new Date().toISOString(), ...a })) },
  });
  expect(accepted.status).toBe(202);
  const ids: string[] = accepted.body.alerts.map((a: { alert_id: string }) => a.alert_id);
  for (let i = 0; i < 400; i += 1) {
    const found = await Promise.all(ids.map((id) => api.request('GET', `/api/v1/alerts/${id}`, { token: caller.token })));
    if (found.every((r) => r.status === 200)) return ids;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the alerts were not ingested');
}

export async function openCase(api: TestApi, caller: Caller, title: string, alertIds: string[]): Promise<string> {
  const opened = await api.request('POST', '/api/v1/cases', { token: caller.token, body: { title, severity: 'high', alert_ids: alertIds } });
  expect(opened.status).toBe(201);
  return opened.body.id as string;
}

/** Polls the investigation until it has ended. */
export async function finished(api: TestApi, caller: Caller, id: string): Promise<any> {
  for (let i = 0; i < 600; i += 1) {
    const response = await api.request('GET', `/api/v1/investigations/${id}`, { token: caller.token });
    expect(response.status).toBe(200);
    if (response.body.status === 'concluded' || response.body.status === 'failed') return response.body;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`investigation ${id} did not end`);
}

export async function investigate(api: TestApi, caller: Caller, caseId: string, body: Record<string, unknown> = {}): Promise<any> {
  const started = await api.request('POST', `/api/v1/cases/${caseId}/investigations:start`, { token: caller.token, body });
  expect(started.status).toBe(202);
  return finished(api, caller, started.body.id);
}
