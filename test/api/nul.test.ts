/**
 * A NUL character cannot reach an event: PostgreSQL text cannot hold it, and a read model
 * copying it would stop. Any JSON body carrying one is refused, and nothing is written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';

describe('NUL characters', () => {
  let api: TestApi;
  let analyst: Caller;
  beforeAll(async () => {
    api = await startTestApi();
    analyst = await api.user('analyst');
  });
  afterAll(async () => api?.close());

  it.each([
    ['a title', { title: 'bad\u0000title' }, '/body/alerts/0/title'],
    ['deep in the raw payload', { raw: { process: { cmd: ['ok', 'x\u0000y'] } } }, '/body/alerts/0/raw/process/cmd/1'],
  ])('in %s is refused with 400 naming where, and nothing is queued', async (_, field, path) => {
    const head = await api.runtime.store.headPosition();
    const depth = await api.runtime.ingest.depth();
    const response = await api.request('POST', '/api/v1/alerts', {
      token: analyst.token,
      body: { alerts: [{ source: 'edr', source_ref: 'nul-1', title: 'ok', severity: 'low', occurred_at: new Date().toISOString(), ...field }] },
    });
    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual([{ path, message: 'contains U+0000' }]);
    expect(await api.runtime.ingest.depth()).toBe(depth);
    expect(await api.runtime.store.headPosition()).toBe(head);
  });
});
