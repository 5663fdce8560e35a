import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { ApiResponse, Caller, TestApi } from '../support/api.js';
import { eventually } from '../response/support.js';

export { createApiKey, createPlaybook, eventually, LIMITS, openCase } from '../response/support.js';

export interface SuggestionView {
  action_id: string;
  kind: string;
  title: string;
  reason: string;
  evidence: { type: string; id: string; summary: string; at: string | null }[];
  permission: string;
  permitted: boolean;
  operation: { method: string; path: string; body: Record<string, unknown> };
}

/** Entities no other test uses, so that "alerts on the same entities" are this test's own. */
export function freshEntities() {
  const tag = randomUUID().slice(0, 8);
  return { host: `WS-${tag}`, user: `u-${tag}`, entities: [{ type: 'host', value: `WS-${tag}` }, { type: 'user', value: `u-${tag}` }] };
}

/** An alert through the ingest API, once readable. */
export async function ingest(api: TestApi, caller: Caller, overrides: Record<string, unknown> = {}): Promise<string> {
  const accepted = await api.request('POST', '/api/v1/alerts', {
    token: caller.token,
    body: {
      source: 'edr',
      source_ref: randomUUID(),
      title: `Suspicious process ${randomUUID().slice(0, 6)}`,
      severity: 'high',
      occurred_at: new Date().toISOString(),
      ...overrides,
    },
  });
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
  const id = accepted.body.alerts[0].alert_id as string;
  await eventually(async () => expect((await api.request('GET', `/api/v1/alerts/${id}`, { token: caller.token })).status).toBe(200));
  return id;
}

export async function context(api: TestApi, caller: Caller, type: string, id: string): Promise<ApiResponse<{ revision: string; resource: any; suggestions: SuggestionView[]; resource_id: string }>> {
  return api.request('GET', `/api/v1/copilot/context/${type}/${id}`, { token: caller.token });
}

/** The suggestions for a resource, as a successful read. */
export async function suggestions(api: TestApi, caller: Caller, type: string, id: string): Promise<SuggestionView[]> {
  const response = await context(api, caller, type, id);
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body.suggestions;
}

export const kinds = (list: SuggestionView[]) => list.map((s) => s.kind).sort();

export function find(list: SuggestionView[], kind: string): SuggestionView {
  const found = list.find((s) => s.kind === kind);
  expect(found, `a ${kind} suggestion among ${JSON.stringify(list.map((s) => s.kind))}`).toBeDefined();
  return found!;
}

export const run = (api: TestApi, caller: Caller | { apiKey: string }, actionId: string) =>
  api.request('POST', `/api/v1/copilot/actions/${actionId}:run`, 'apiKey' in caller ? { apiKey: caller.apiKey } : { token: caller.token });
