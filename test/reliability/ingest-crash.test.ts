/**
 * Nothing acknowledged is ever lost: the server is killed (SIGKILL) in the middle of a
 * 20,000-alert ingest and started again; every alert it answered 202 for is there, once.
 * And with its queue (NATS) down, the server answers 503 rather than a 202 it cannot keep.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, hasNats, hasPostgres } from '../support/databases.js';
import { startOwnNatsServer, type OwnNatsServer } from '../support/nats-server.js';
import { startServerProcess, stop, type ServerProcess } from '../support/processes.js';
import { createSchema, dropSchema, freshDataDir } from '../support/runtime.js';

const TOTAL = 20_000;
const BATCH = 100;
const IN_FLIGHT = 4;

/**
 * Signs in as a client would: a server started right after a SIGKILL on PostgreSQL waits for
 * the dead one's projection lease to run out before its read models move on, and meanwhile
 * answers a sign-in with 503 (retry shortly).
 */
async function signIn(url: string): Promise<string> {
  for (let attempt = 0; attempt < 60; attempt += 1) {
    const response = await fetch(`${url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'admin@aisoc.local', password: 'changeme' }),
    });
    if (response.status === 200) return ((await response.json()) as { access_token: string }).access_token;
    expect(response.status).toBe(503);
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('no sign-in within 30 s');
}

function batchOf(source: string, index: number) {
  return {
    alerts: Array.from({ length: BATCH }, (_, i) => ({
      source,
      source_ref: `ref-${index * BATCH + i}`,
      title: `Crash test alert ${index * BATCH + i}`,
      severity: 'medium',
      occurred_at: new Date().toISOString(),
      entities: [{ type: 'host', value: `host-${i % 17}` }],
    })),
  };
}

/**
 * Sends every batch not yet acknowledged, a few at a time, until told the server is gone.
 * Returns the alert ids acknowledged with 202.
 */
const refusals: string[] = [];

async function ingest(url: string, token: string, source: string, pending: Set<number>, acknowledged: Map<number, string[]>, stopAfter?: number): Promise<void> {
  const queue = [...pending];
  let sent = 0;
  const worker = async () => {
    for (;;) {
      const index = queue.shift();
      if (index === undefined) return;
      if (stopAfter !== undefined && sent >= stopAfter) return;
      sent += 1;
      try {
        const response = await fetch(`${url}/api/v1/alerts`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify(batchOf(source, index)),
        });
        if (response.status === 202) {
          const body = (await response.json()) as { alerts: { alert_id: string }[] };
          acknowledged.set(index, body.alerts.map((a) => a.alert_id));
          pending.delete(index);
        } else {
          refusals.push(`${response.status} ${await response.text()}`);
        }
      } catch {
        return; // the server went away mid-request: this batch was not acknowledged
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

async function countAlerts(url: string, token: string, source: string): Promise<{ ids: Set<string>; rows: number }> {
  const ids = new Set<string>();
  let rows = 0;
  let cursor: string | null = null;
  do {
    const response = await fetch(`${url}/api/v1/alerts?source=${source}&limit=200${cursor ? `&cursor=${cursor}` : ''}`, { headers: { authorization: `Bearer ${token}` } });
    if (response.status !== 200) throw new Error(`GET /alerts answered ${response.status}: ${await response.text()}`);
    const page = (await response.json()) as { items: { id: string }[]; next_cursor: string | null };
    for (const item of page.items) ids.add(item.id);
    rows += page.items.length;
    cursor = page.next_cursor;
  } while (cursor);
  return { ids, rows };
}

async function crashAndRecover(env: Record<string, string>): Promise<void> {
  const source = `crash-${randomUUID().slice(0, 8)}`;
  const pending = new Set(Array.from({ length: TOTAL / BATCH }, (_, i) => i));
  const acknowledged = new Map<number, string[]>();
  let server: ServerProcess = await startServerProcess(env);
  try {
    let token = await signIn(server.url);
    // Kill the server while batches are in flight, about half way through.
    let done = false;
    const sending = ingest(server.url, token, source, pending, acknowledged).finally(() => (done = true));
    while (acknowledged.size < TOTAL / BATCH / 2) {
      if (done) throw new Error(`the server refused batches before the crash: ${refusals.slice(0, 3).join('; ')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await stop(server.child, 'SIGKILL');
    await sending;
    const beforeCrash = acknowledged.size;
    expect(beforeCrash).toBeGreaterThan(0);
    expect(beforeCrash).toBeLessThan(TOTAL / BATCH);

    server = await startServerProcess(env);
    token = await signIn(server.url);
    // The client sends again what was not acknowledged (in-flight batches among them).
    for (let round = 0; pending.size > 0; round += 1) {
      if (round === 20) throw new Error(`batches still refused after 20 rounds: ${refusals.slice(-3).join('; ')}`);
      await ingest(server.url, token, source, pending, acknowledged);
      if (pending.size > 0) await new Promise((r) => setTimeout(r, 500));
    }
    const expected = new Set([...acknowledged.values()].flat());
    expect(expected.size).toBe(TOTAL);

    let seen = { ids: new Set<string>(), rows: 0 };
    for (let waited = 0; waited < 240_000 && seen.ids.size < TOTAL; waited += 1000) {
      seen = await countAlerts(server.url, token, source);
      if (seen.ids.size < TOTAL) await new Promise((r) => setTimeout(r, 1000));
    }
    expect(seen.rows).toBe(TOTAL);
    expect(seen.ids).toEqual(expected);
  } finally {
    await stop(server.child, 'SIGKILL');
  }
}

describe('ingest survives a crash', () => {
  // One user sends all 200 batches and reads them back: well past the default 100 a minute.
  const unlimited = { AISOC_RATE_LIMIT_USER: '1000000' };

  it('on the embedded default (the queue is a table in PGlite), every acknowledged alert is there exactly once', async () => {
    await crashAndRecover({ ...unlimited, AISOC_DATA_DIR: await freshDataDir() });
  }, 600_000);

  // The way it scales out: PostgreSQL server for events and read models, JetStream as the queue
  // (a NATS server of the test's own, so that stopping it disturbs no one else).
  describe.skipIf(!hasNats || !hasPostgres)('on PostgreSQL with NATS JetStream as the queue', () => {
    let nats: OwnNatsServer;
    let schema: string;
    let env: Record<string, string>;
    beforeAll(async () => {
      nats = await startOwnNatsServer();
      schema = await createSchema();
      env = { ...unlimited, DATABASE_URL: databaseUrl, AISOC_DB_SCHEMA: schema, NATS_URL: nats.url };
    });
    afterAll(async () => {
      await nats?.dispose();
      if (schema) await dropSchema(schema);
    });

    it('every acknowledged alert is there exactly once', async () => {
      await crashAndRecover(env);
    }, 600_000);

    it('with NATS stopped, POST /alerts answers 503 and accepts nothing; once it is back, 202 again', async () => {
      const server = await startServerProcess(env);
      try {
        const token = await signIn(server.url);
        const source = `outage-${randomUUID().slice(0, 8)}`;
        await nats.stop();
        const refused = await fetch(`${server.url}/api/v1/alerts`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify(batchOf(source, 0)),
        });
        expect(refused.status).toBe(503);
        expect(refused.headers.get('retry-after')).toBeTruthy();
        expect(((await refused.json()) as { detail: string }).detail).toContain('not reachable');
        await nats.start();
        let accepted = 0;
        for (let i = 0; i < 60 && accepted !== 202; i += 1) {
          accepted = (
            await fetch(`${server.url}/api/v1/alerts`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
              body: JSON.stringify(batchOf(source, 1)),
            })
          ).status;
          if (accepted !== 202) await new Promise((r) => setTimeout(r, 500));
        }
        expect(accepted).toBe(202);
      } finally {
        await stop(server.child, 'SIGKILL');
      }
    }, 180_000);
  });
});
