/**
 * Timers are durable: a deadline that passes while the server is down fires once when it is
 * back, a tick that finds the breach already in the log writes nothing (a restart after the
 * append but before the read model saw it), and two server processes on one PostgreSQL,
 * ticking side by side, record one breach per timer.
 */
import { describe, expect, it } from 'vitest';
import type { SlaMeasure, SlaSubjectType } from '../../src/domain/sla.js';
import type { Runtime } from '../../src/runtime.js';
import { startTestApi, type Caller } from '../support/api.js';
import { hasPostgres } from '../support/databases.js';
import { breaches, breachEvents, eventually, extraSchedule, FAST_TICKS, openCase, serve, setSla, sleep, timers } from './support.js';

const MEASURES: SlaMeasure[] = ['acknowledge', 'resolve'];

async function expectOneBreachEach(rt: Runtime, type: SlaSubjectType, ids: string[]): Promise<void> {
  for (const id of ids) {
    for (const measure of MEASURES) expect((await breachEvents(rt, type, id, measure)).length, `${type} ${id} ${measure}`).toBe(1);
  }
}

describe('SLA timers across a restart', () => {
  it('a deadline that passes while the server is down fires once after it comes back', async () => {
    const api = await startTestApi('embedded', FAST_TICKS);
    let restarted: Awaited<ReturnType<typeof serve>> | undefined;
    try {
      const admin: Caller = await api.admin();
      await setSla(api, admin, 'critical', 2, 3);
      const opened = await openCase(api, admin, 'critical', 'Opened before the restart');
      await api.runtime.close();
      const downAt = Date.now();
      expect(downAt, 'the server went down before the first deadline').toBeLessThan(opened.createdAt.getTime() + 2000);
      await sleep(Math.max(0, opened.createdAt.getTime() + 3000 - Date.now()) + 300);

      const rt = await api.fixture.reopen();
      restarted = await serve(rt);
      const server = restarted;
      const list = await eventually(async () => {
        const found = await breaches(server, admin, { subject_id: opened.id });
        return found.length === 2 ? found : false;
      });
      expect(list.map((b) => b.measure).sort()).toEqual(MEASURES);
      for (const breach of list) expect(new Date(breach.breached_at).getTime()).toBeGreaterThan(downAt);
      expect(list.find((b) => b.measure === 'acknowledge')!.deadline).toBe(new Date(opened.createdAt.getTime() + 2000).toISOString());

      await sleep(800);
      expect(await breaches(server, admin, { subject_id: opened.id })).toHaveLength(2);
      await expectOneBreachEach(rt, 'case', [opened.id]);

      // A process that appended the breach and died before its read model saw it comes back to a
      // timer that still looks due: the tick finds the breach in the timer's stream and writes nothing.
      await rt.database.db
        .updateTable('sla_timers')
        .set({ status: 'pending', breached_at: null })
        .where('subject_id', '=', opened.id)
        .execute();
      const head = await rt.store.headPosition();
      expect(await extraSchedule(rt).tick(new Date())).toBe(0);
      expect(await rt.store.headPosition()).toBe(head);
      await expectOneBreachEach(rt, 'case', [opened.id]);
      expect((await timers(rt, opened.id)).acknowledge.status).toBe('pending');
    } finally {
      await restarted?.close();
      await api.close();
    }
  });
});

describe.skipIf(!hasPostgres)('SLA timers with two server processes on one PostgreSQL', () => {
  it('both tick, at once too, and each timer breaches once', async () => {
    const api = await startTestApi('server', FAST_TICKS);
    let other: Awaited<ReturnType<typeof serve>> | undefined;
    try {
      const second = await api.fixture.reopen();
      other = await serve(second);
      const admin = await api.admin();
      await setSla(api, admin, 'critical', 1, 2);
      const opened = await Promise.all(
        Array.from({ length: 16 }, (_, i) => openCase(i % 2 === 0 ? api : other!, admin, 'critical', `Case ${i} on process ${(i % 2) + 1}`)),
      );
      const ids = opened.map((c) => c.id);
      const lastDeadline = Math.max(...opened.map((c) => c.createdAt.getTime())) + 2000;

      // Right as the deadlines pass, more ticks from both processes at once, beside their own schedules.
      const extra = [api.runtime, second, api.runtime, second].map(extraSchedule);
      await sleep(Math.max(0, lastDeadline - Date.now()) + 1);
      await Promise.all(extra.map((s) => s.tick(new Date())));

      const list = await eventually(async () => {
        const found = await breaches(api, admin, { subject_type: 'case' });
        return ids.every((id) => found.filter((b) => b.subject_id === id).length === 2) ? found : false;
      });
      expect(list).toHaveLength(ids.length * 2);
      await sleep(800);
      expect(await breaches(other, admin, { subject_type: 'case' })).toHaveLength(ids.length * 2);
      await expectOneBreachEach(api.runtime, 'case', ids);
    } finally {
      await other?.close();
      await api.close();
    }
  });
});
