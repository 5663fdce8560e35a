/**
 * SLA timers through real HTTP, with deadlines of a few seconds set by PUT: what breaches and
 * what does not, exactly once, for alerts and cases; severity changes; a deadline observed to
 * the millisecond with a clock the test moves; concurrent ticks; the breach list's filters,
 * pages and tenant scope; and a rebuild of the read model that reproduces it and fires nothing.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SlaMeasure, SlaSubjectType } from '../../src/domain/sla.js';
import { systemClock } from '../../src/lib/clock.js';
import { startTestApi, type Caller, type TestApi } from '../support/api.js';
import {
  breaches,
  breachEvents,
  eventually,
  extraSchedule,
  FAST_TICKS,
  ingestAlert,
  ManualClock,
  openCase,
  setSla,
  sleep,
  timers,
  type Breach,
} from './support.js';

describe('SLA timers', () => {
  let api: TestApi;
  let admin: Caller;
  let analyst: Caller;

  beforeAll(async () => {
    api = await startTestApi('embedded', FAST_TICKS);
    [admin, analyst] = await Promise.all([api.admin(), api.user('analyst')]);
  });
  afterAll(async () => api?.close());

  const patch = (kind: 'alerts' | 'cases', id: string, body: object) =>
    api.request('PATCH', `/api/v1/${kind}/${id}`, { token: analyst.token, body }).then((r) => {
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r;
    });
  const of = (list: Breach[], id: string) => list.filter((b) => b.subject_id === id).map((b) => b.measure).sort();

  /** Each timer of these subjects has at most one breach, in the log as in the read model. */
  async function expectOnce(list: Breach[], subjects: { type: SlaSubjectType; id: string }[]): Promise<void> {
    for (const { type, id } of subjects) {
      for (const measure of ['acknowledge', 'resolve'] as SlaMeasure[]) {
        const listed = list.filter((b) => b.subject_id === id && b.measure === measure).length;
        expect(listed, `${type} ${id} ${measure}`).toBeLessThanOrEqual(1);
        expect((await breachEvents(api.runtime, type, id, measure)).length, `${type} ${id} ${measure} in the log`).toBe(listed);
      }
    }
  }

  it('alerts: left new breaches both measures once; acknowledged in time, none; resolved in time meets the resolve timer', async () => {
    await setSla(api, admin, 'critical', 1, 2);
    await setSla(api, admin, 'high', 4, 5);
    const [idle, worked, acknowledged] = await Promise.all([
      ingestAlert(api, analyst, 'critical', 'Nobody looked at this'),
      ingestAlert(api, analyst, 'high'),
      ingestAlert(api, analyst, 'high'),
    ]);
    await patch('alerts', worked.id, { status: 'acknowledged' });
    await patch('alerts', worked.id, { status: 'resolved' });
    await patch('alerts', acknowledged.id, { status: 'acknowledged' });

    const seen = await eventually(async () => {
      const list = await breaches(api, admin);
      return of(list, idle.id).length === 2 && of(list, acknowledged.id).length === 1 ? list : false;
    });
    const ack = seen.find((b) => b.subject_id === idle.id && b.measure === 'acknowledge')!;
    expect(ack).toMatchObject({ subject_type: 'alert', title: 'Nobody looked at this', severity: 'critical', target_seconds: 1 });
    expect(new Date(ack.deadline).getTime()).toBe(idle.createdAt.getTime() + 1000);
    expect(new Date(ack.breached_at).getTime()).toBeGreaterThan(new Date(ack.deadline).getTime());
    expect(new Date(seen.find((b) => b.subject_id === idle.id && b.measure === 'resolve')!.deadline).getTime()).toBe(idle.createdAt.getTime() + 2000);
    expect(of(seen, acknowledged.id)).toEqual(['resolve']);

    // Past every deadline, and many ticks later: nothing more.
    await sleep(Math.max(0, worked.createdAt.getTime() + 5000 - Date.now()) + 800);
    const later = await breaches(api, admin);
    expect(of(later, idle.id)).toEqual(['acknowledge', 'resolve']);
    expect(of(later, worked.id)).toEqual([]);
    expect(of(later, acknowledged.id)).toEqual(['resolve']);
    await expectOnce(later, [idle, worked, acknowledged].map((a) => ({ type: 'alert' as const, id: a.id })));
    const rows = await timers(api.runtime, worked.id);
    expect([rows.acknowledge.status, rows.resolve.status]).toEqual(['met', 'met']);
    expect((await timers(api.runtime, acknowledged.id)).acknowledge.status).toBe('met');
  });

  it('cases: left new breaches; triaged and resolved in time, or closed from new, do not', async () => {
    await setSla(api, admin, 'critical', 1, 2);
    await setSla(api, admin, 'high', 4, 5);
    const [idle, worked, closed, triagedOnly] = await Promise.all([
      openCase(api, analyst, 'critical', 'Unworked case'),
      openCase(api, analyst, 'high'),
      openCase(api, analyst, 'high'),
      openCase(api, analyst, 'high'),
    ]);
    await patch('cases', worked.id, { status: 'triaged' });
    await patch('cases', worked.id, { status: 'investigating' });
    await patch('cases', worked.id, { status: 'resolved' });
    expect((await api.request('DELETE', `/api/v1/cases/${closed.id}`, { token: analyst.token })).status).toBe(204);
    await patch('cases', triagedOnly.id, { status: 'triaged' });

    await eventually(async () => {
      const list = await breaches(api, admin, { subject_type: 'case' });
      return of(list, idle.id).length === 2 && of(list, triagedOnly.id).length === 1;
    });
    await sleep(Math.max(0, worked.createdAt.getTime() + 5000 - Date.now()) + 800);
    const list = await breaches(api, admin, { subject_type: 'case' });
    expect(of(list, idle.id)).toEqual(['acknowledge', 'resolve']);
    expect(of(list, worked.id)).toEqual([]);
    expect(of(list, closed.id)).toEqual([]);
    expect(of(list, triagedOnly.id)).toEqual(['resolve']);
    await expectOnce(list, [idle, worked, closed, triagedOnly].map((c) => ({ type: 'case' as const, id: c.id })));
    expect((await timers(api.runtime, closed.id)).resolve.status).toBe('met');

    // The list shows the case's current title, and the audit log says what happened.
    await patch('cases', idle.id, { title: 'Unworked case, renamed' });
    expect((await breaches(api, admin, { subject_id: idle.id })).map((b) => b.title)).toEqual(['Unworked case, renamed', 'Unworked case, renamed']);
    const audit = await api.request('GET', `/api/v1/audit?action=sla.breached&resource_id=case.${idle.id}.acknowledge`, { token: admin.token });
    expect(audit.body.items).toEqual([
      expect.objectContaining({ actor: { type: 'system', id: 'sla' }, summary: 'SLA breached: case "Unworked case" (critical) not acknowledged within 1 s' }),
    ]);
  });

  it('a severity change re-fixes running deadlines from the creation time; met measures keep their outcome', async () => {
    await setSla(api, admin, 'critical', 1, 2);
    const [raised, lowered, triagedThenRaised] = await Promise.all([
      openCase(api, analyst, 'low'),
      openCase(api, analyst, 'critical'),
      openCase(api, analyst, 'low'),
    ]);
    await patch('cases', lowered.id, { severity: 'low' });
    await patch('cases', triagedThenRaised.id, { status: 'triaged' });
    await patch('cases', triagedThenRaised.id, { severity: 'critical' });
    await patch('cases', raised.id, { severity: 'critical' });

    const list = await eventually(async () => {
      const all = await breaches(api, admin, { subject_type: 'case' });
      return of(all, raised.id).length === 2 && of(all, triagedThenRaised.id).length === 1 ? all : false;
    });
    const raisedAck = list.find((b) => b.subject_id === raised.id && b.measure === 'acknowledge')!;
    expect(raisedAck.severity).toBe('critical');
    expect(new Date(raisedAck.deadline).getTime()).toBe(raised.createdAt.getTime() + 1000);
    expect(of(list, triagedThenRaised.id)).toEqual(['resolve']);
    await sleep(Math.max(0, lowered.createdAt.getTime() + 2000 - Date.now()) + 800);
    expect(of(await breaches(api, admin), lowered.id)).toEqual([]);
    const rows = await timers(api.runtime, lowered.id);
    expect(rows.acknowledge).toMatchObject({ status: 'pending', severity: 'low', target_seconds: 86_400 });
    expect(rows.acknowledge.deadline!.getTime()).toBe(lowered.createdAt.getTime() + 86_400_000);
  });

  it('deleting an alert cancels its running timers', async () => {
    await setSla(api, admin, 'critical', 1, 2);
    const alert = await ingestAlert(api, analyst, 'critical');
    expect((await api.request('DELETE', `/api/v1/alerts/${alert.id}`, { token: analyst.token })).status).toBe(204);
    await sleep(Math.max(0, alert.createdAt.getTime() + 2000 - Date.now()) + 800);
    expect(of(await breaches(api, admin), alert.id)).toEqual([]);
    const rows = await timers(api.runtime, alert.id);
    expect([rows.acknowledge.status, rows.resolve.status]).toEqual(['cancelled', 'cancelled']);
  });

  it('fires a deadline to the millisecond of the injected clock: not at the deadline, at one millisecond past it', async () => {
    const clock = new ManualClock(new Date());
    api.runtime.commands.clock = clock;
    try {
      await setSla(api, admin, 'medium', 60, 120);
      const opened = await openCase(api, analyst, 'medium', 'Watched to the millisecond');
      const t0 = opened.createdAt.getTime();
      const schedule = extraSchedule(api.runtime);
      // A tick decides only once the read model has reached the head of the log, so what it
      // leaves alone was not due; what it fires shows up once the read model has it.
      const tickAt = async (ms: number) => {
        clock.set(new Date(t0 + ms));
        await schedule.tick(clock.now());
      };
      const listed = () => breaches(api, admin, { subject_id: opened.id });
      await tickAt(60_000);
      expect(await listed()).toEqual([]);
      await tickAt(60_001);
      const [ack] = await eventually(async () => ((await listed()).length === 1 ? listed() : false));
      expect(ack).toMatchObject({ measure: 'acknowledge', deadline: new Date(t0 + 60_000).toISOString(), breached_at: new Date(t0 + 60_001).toISOString() });
      await tickAt(120_000);
      expect((await listed()).length).toBe(1);
      await tickAt(120_001);
      const both = await eventually(async () => ((await listed()).length === 2 ? listed() : false));
      expect(both.map((b) => b.measure)).toEqual(['resolve', 'acknowledge']);
      expect(both[0]).toMatchObject({ deadline: new Date(t0 + 120_000).toISOString(), breached_at: new Date(t0 + 120_001).toISOString() });
    } finally {
      api.runtime.commands.clock = systemClock;
    }
  });

  it('several processes ticking at once still record one breach per timer', async () => {
    await setSla(api, admin, 'critical', 1, 2);
    const clock = new ManualClock(new Date());
    api.runtime.commands.clock = clock;
    try {
      const cases = await Promise.all(Array.from({ length: 12 }, () => openCase(api, analyst, 'critical')));
      clock.set(new Date(Date.now() + 10_000));
      const schedules = Array.from({ length: 4 }, () => extraSchedule(api.runtime));
      await Promise.all(schedules.flatMap((s) => [s.tick(clock.now()), s.tick(clock.now())]));
      const list = await eventually(async () => {
        const all = await breaches(api, admin, { subject_type: 'case' });
        return cases.every((c) => of(all, c.id).length === 2) ? all : false;
      });
      await expectOnce(list, cases.map((c) => ({ type: 'case' as const, id: c.id })));
    } finally {
      api.runtime.commands.clock = systemClock;
    }
  });

  it('lists breaches newest first, filtered and paged without repeats, within the tenant', async () => {
    const all = await breaches(api, admin);
    expect(all.length).toBeGreaterThan(10);
    const order = all.map((b) => `${b.breached_at}|${b.id}`);
    expect(order).toEqual([...order].sort().reverse());

    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { items: Breach[]; next_cursor: string | null } } = await api.request(
        'GET',
        `/api/v1/sla/events?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
        { token: analyst.token },
      );
      expect(page.status).toBe(200);
      paged.push(...page.body.items.map((b) => b.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(paged).toEqual(all.map((b) => b.id));

    const resolves = await breaches(api, admin, { measure: 'resolve', subject_type: 'alert' });
    expect(resolves.length).toBeGreaterThan(0);
    expect(resolves.every((b) => b.measure === 'resolve' && b.subject_type === 'alert')).toBe(true);
    const middle = all[Math.floor(all.length / 2)]!.breached_at;
    const since = await breaches(api, admin, { since: middle });
    const until = await breaches(api, admin, { until: middle });
    expect(since.length + until.length).toBe(all.length);
    expect(since.every((b) => b.breached_at >= middle) && until.every((b) => b.breached_at < middle)).toBe(true);
    expect((await api.request('GET', `/api/v1/sla/events?since=${middle}&until=${middle}`, { token: admin.token })).status).toBe(400);
    expect((await api.request('GET', '/api/v1/sla/events?cursor=bm90LWEtY3Vyc29y', { token: admin.token })).status).toBe(400);
    expect((await api.request('GET', '/api/v1/sla/events?measure=triage', { token: admin.token })).status).toBe(400);

    // Another tenant sees none of these, and its own breaches are invisible here.
    const acme = await api.user('admin', 'acme');
    expect(await breaches(api, acme)).toEqual([]);
    expect(await breaches(api, acme, { subject_id: all[0]!.subject_id })).toEqual([]);
    await setSla(api, acme, 'high', 1, 2);
    const theirs = await openCase(api, acme, 'high', 'Acme case');
    await eventually(async () => (await breaches(api, acme)).length === 2);
    expect(of(await breaches(api, admin), theirs.id)).toEqual([]);
    // Our critical SLA is 1 s; theirs is the default 15 min: their critical case does not breach.
    const calm = await openCase(api, acme, 'critical');
    await sleep(Math.max(0, calm.createdAt.getTime() + 2000 - Date.now()) + 500);
    expect(of(await breaches(api, acme), calm.id)).toEqual([]);
  });

  it('a rebuild of the read model gives the same rows and fires nothing again', async () => {
    const db = api.runtime.database.db;
    const snapshot = async () => ({
      timers: await sql`SELECT * FROM sla_timers ORDER BY subject_id, measure`.execute(db).then((r) => r.rows),
      breaches: await sql`SELECT * FROM sla_breaches ORDER BY id`.execute(db).then((r) => r.rows),
      configs: await sql`SELECT * FROM sla_configs ORDER BY tenant_id, severity`.execute(db).then((r) => r.rows),
    });
    // Nothing is due any more (every short deadline has breached or was met).
    await sleep(500);
    const before = await snapshot();
    const head = await api.runtime.store.headPosition();
    expect(before.breaches.length).toBeGreaterThan(10);
    expect(before.timers.some((t) => (t as { status: string }).status === 'pending')).toBe(true);

    await api.runtime.daemon.rebuild('sla');
    await sleep(1000); // ten ticks on the rebuilt read model
    expect(await snapshot()).toEqual(before);
    expect(await api.runtime.store.headPosition()).toBe(head);
  });
});
