import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { createApp } from '../../src/api/app.js';
import type { Clock } from '../../src/commands/handler.js';
import { slaTimerStream, type SlaMeasure, type SlaSubjectType } from '../../src/domain/sla.js';
import { silentLogger } from '../../src/lib/logger.js';
import type { SlaTimerRow } from '../../src/projections/sla.js';
import type { Runtime } from '../../src/runtime.js';
import { slaSchedule } from '../../src/sla/schedule.js';
import type { ApiResponse, Caller, RequestOptions, TestApi } from '../support/api.js';

/** Ticks fast, so a 1 s deadline is seen within a tenth of a second of passing; polls freely. */
export const FAST_TICKS = { AISOC_SLA_TICK_MS: '100', AISOC_RATE_LIMIT_USER: '100000' };

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` passes (it throws or returns false until then). */
export async function eventually<T>(check: () => Promise<T | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const result = await check();
      if (result !== false) return result as T;
      if (Date.now() > deadline) throw new Error('eventually: still false');
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await sleep(50);
  }
}

type Requester = Pick<TestApi, 'request'>;

export async function setSla(api: Requester, caller: Caller, severity: string, acknowledge: number | null, resolve: number | null): Promise<ApiResponse> {
  const response = await api.request('PUT', `/api/v1/sla/configs/${severity}`, {
    token: caller.token,
    body: { time_to_acknowledge_seconds: acknowledge, time_to_resolve_seconds: resolve },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response;
}

/** An alert through the ingest queue; resolves once it can be read, with its creation time. */
export async function ingestAlert(api: Requester, caller: Caller, severity: string, title = `SLA test alert ${randomUUID().slice(0, 8)}`) {
  const accepted = await api.request('POST', '/api/v1/alerts', {
    token: caller.token,
    body: { source: 'sla-test', source_ref: randomUUID(), title, severity, occurred_at: new Date().toISOString() },
  });
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
  const id = accepted.body.alerts[0].alert_id as string;
  const alert = await eventually(async () => {
    const read = await api.request('GET', `/api/v1/alerts/${id}`, { token: caller.token });
    return read.status === 200 ? read.body : false;
  });
  return { id, title, createdAt: new Date(alert.created_at as string) };
}

export async function openCase(api: Requester, caller: Caller, severity: string, title = `SLA test case ${randomUUID().slice(0, 8)}`) {
  const created = await api.request('POST', '/api/v1/cases', { token: caller.token, body: { title, severity } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return { id: created.body.id as string, title, createdAt: new Date(created.body.created_at as string) };
}

export interface Breach {
  id: string;
  subject_type: SlaSubjectType;
  subject_id: string;
  title: string;
  measure: SlaMeasure;
  severity: string;
  target_seconds: number;
  deadline: string;
  breached_at: string;
}

/** Every breach the caller can see (all pages), with optional filters. */
export async function breaches(api: Requester, caller: Caller, query: Record<string, string> = {}): Promise<Breach[]> {
  const items: Breach[] = [];
  let cursor: string | null = null;
  do {
    const params = new URLSearchParams({ ...query, limit: '200', ...(cursor ? { cursor } : {}) });
    const page: ApiResponse = await api.request('GET', `/api/v1/sla/events?${params}`, { token: caller.token });
    expect(page.status, JSON.stringify(page.body)).toBe(200);
    items.push(...(page.body.items as Breach[]));
    cursor = page.body.next_cursor as string | null;
  } while (cursor);
  return items;
}

/** The `sla.breached` events in a timer's own stream: the log, not a read model. */
export async function breachEvents(rt: Runtime, type: SlaSubjectType, id: string, measure: SlaMeasure) {
  return (await rt.store.readStream(slaTimerStream(type, id, measure))).filter((e) => e.type === 'sla.breached');
}

export async function timers(rt: Runtime, subjectId: string): Promise<Record<SlaMeasure, SlaTimerRow>> {
  const rows = await rt.database.db.selectFrom('sla_timers').selectAll().where('subject_id', '=', subjectId).execute();
  return Object.fromEntries(rows.map((row) => [row.measure, row])) as Record<SlaMeasure, SlaTimerRow>;
}

/** Another schedule over the same runtime: as if one more process ticked beside it. */
export const extraSchedule = (rt: Runtime) =>
  slaSchedule({ commands: rt.commands, db: rt.database.db, daemon: rt.daemon, config: rt.config, logger: silentLogger() });

/** A clock that only moves when told to. */
export class ManualClock implements Clock {
  constructor(private at: Date) {}
  now(): Date {
    return new Date(this.at);
  }
  set(at: Date): void {
    this.at = new Date(at);
  }
}

/** The API over HTTP on another runtime of the same database (after a restart, say). */
export async function serve(rt: Runtime): Promise<Requester & { close(): Promise<void> }> {
  const server: Server = createServer(createApp(rt, { validateResponses: true }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
      const headers: Record<string, string> = { ...options.headers };
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      const body = options.body === undefined ? undefined : JSON.stringify(options.body);
      if (body !== undefined) headers['content-type'] = 'application/json';
      const response = await fetch(`${url}${path}`, { method, headers, body });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: (text ? JSON.parse(text) : undefined) as T };
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}
