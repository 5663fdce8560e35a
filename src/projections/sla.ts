import { sql, type Insertable } from 'kysely';
import { ALERT_CATEGORY, type AlertEvent } from '../domain/alert.js';
import { CASE_CATEGORY, type CaseEvent } from '../domain/case.js';
import type { StoredEvent } from '../domain/registry.js';
import {
  DEFAULT_SLA,
  measuresMet,
  SLA_CATEGORY,
  SLA_CONFIG_CATEGORY,
  SLA_MEASURES,
  targetOf,
  type SlaEvent,
  type SlaMeasure,
  type SlaSubjectType,
  type SlaTargets,
} from '../domain/sla.js';
import type { Severity } from '../domain/values.js';
import type { Projection } from './projection.js';

/**
 * - pending: the deadline runs; nothing met it yet.
 * - met: met at or before the deadline.
 * - late: met after the deadline, before its breach was recorded: still due for one.
 * - breached: the breach is recorded (whatever happened after).
 * - cancelled: the subject was deleted while the timer ran.
 * - none: no SLA applies at the severity the subject had.
 */
export type SlaTimerStatus = 'pending' | 'met' | 'late' | 'breached' | 'cancelled' | 'none';

/** One row per (subject, measure), alive for the subject's whole life. */
export interface SlaTimerRow {
  subject_type: SlaSubjectType;
  subject_id: string;
  measure: SlaMeasure;
  tenant_id: string;
  title: string;
  /** The severity whose target fixed the deadline. */
  severity: Severity;
  subject_created_at: Date;
  target_seconds: number | null;
  deadline: Date | null;
  /** The event that fixed the deadline: the creation, or a severity change. */
  fixed_by: string;
  satisfied_at: Date | null;
  breached_at: Date | null;
  cancelled_at: Date | null;
  status: SlaTimerStatus;
}

/** Only the severities a tenant changed; the others are DEFAULT_SLA. */
export interface SlaConfigRow {
  tenant_id: string;
  severity: Severity;
  time_to_acknowledge_seconds: number | null;
  time_to_resolve_seconds: number | null;
  /** The configuration stream's revision. */
  revision: string;
  updated_at: Date;
  updated_by: string;
}

export interface SlaBreachRow {
  /** The `sla.breached` event's id. */
  id: string;
  tenant_id: string;
  subject_type: SlaSubjectType;
  subject_id: string;
  measure: SlaMeasure;
  severity: Severity;
  /** The subject's current title. */
  title: string;
  target_seconds: number;
  deadline: Date;
  breached_at: Date;
}

export interface SlaTables {
  sla_configs: SlaConfigRow;
  sla_timers: SlaTimerRow;
  sla_breaches: SlaBreachRow;
}

/** The timer states the schedule fires from. */
export const DUE_STATUSES = ['pending', 'late'] as const satisfies readonly SlaTimerStatus[];

function statusOf(row: Omit<SlaTimerRow, 'status'>): SlaTimerStatus {
  if (row.breached_at) return 'breached';
  if (row.cancelled_at) return 'cancelled';
  if (!row.deadline) return 'none';
  if (!row.satisfied_at) return 'pending';
  return row.satisfied_at.getTime() <= row.deadline.getTime() ? 'met' : 'late';
}

/** Neither met, breached nor cancelled: a severity change may still move its deadline. */
const running = (row: SlaTimerRow) => !row.satisfied_at && !row.breached_at && !row.cancelled_at;

const EVENT_TYPES = [
  'alert.ingested',
  'alert.status_changed',
  'alert.severity_changed',
  'alert.deleted',
  'case.opened',
  'case.details_changed',
  'case.status_changed',
  'sla_config.changed',
  'sla.breached',
] as const;

type Relevant = AlertEvent | CaseEvent | SlaEvent;

const idAfter = (category: string, streamId: string) => streamId.slice(category.length + 1);
const timerKey = (type: SlaSubjectType, id: string, measure: SlaMeasure) => `${type}\u0000${id}\u0000${measure}`;
const configKey = (tenantId: string, severity: Severity) => `${tenantId}\u0000${severity}`;

/** The subject an alert or case event is about; undefined for the SLA's own events. */
function subjectOf(stored: StoredEvent): { type: SlaSubjectType; id: string } | undefined {
  const streamId = stored.recorded.streamId;
  if (streamId.startsWith(`${ALERT_CATEGORY}-`)) return { type: 'alert', id: idAfter(ALERT_CATEGORY, streamId) };
  if (streamId.startsWith(`${CASE_CATEGORY}-`)) return { type: 'case', id: idAfter(CASE_CATEGORY, streamId) };
  return undefined;
}

/**
 * A batch's view of the read model: the rows it touches, loaded once, changed in memory in log
 * order and written back at the end. Configuration changes are folded in the same order as the
 * alerts and cases, so the targets a subject gets are those in force at its place in the log:
 * a rebuild computes the same deadlines.
 */
class Batch {
  readonly timers = new Map<string, SlaTimerRow>();
  readonly configs = new Map<string, SlaConfigRow>();
  readonly dirtyTimers = new Set<string>();
  readonly dirtyConfigs = new Set<string>();
  readonly breaches: Insertable<SlaBreachRow>[] = [];
  /** Subjects renamed in this batch: their recorded breaches follow. */
  readonly titles = new Map<string, { tenantId: string; type: SlaSubjectType; id: string; title: string }>();

  targets(tenantId: string, severity: Severity): SlaTargets {
    return this.configs.get(configKey(tenantId, severity)) ?? DEFAULT_SLA[severity];
  }

  put(row: Omit<SlaTimerRow, 'status'>): void {
    const key = timerKey(row.subject_type, row.subject_id, row.measure);
    this.timers.set(key, { ...row, status: statusOf(row) });
    this.dirtyTimers.add(key);
  }

  timersOf(type: SlaSubjectType, id: string): SlaTimerRow[] {
    return SLA_MEASURES.flatMap((measure) => this.timers.get(timerKey(type, id, measure)) ?? []);
  }

  open(stored: StoredEvent, type: SlaSubjectType, id: string, title: string, severity: Severity): void {
    const createdAt = new Date(stored.metadata.occurred_at);
    const targets = this.targets(stored.metadata.tenant_id, severity);
    for (const measure of SLA_MEASURES) {
      const target = targetOf(targets, measure);
      this.put({
        subject_type: type,
        subject_id: id,
        measure,
        tenant_id: stored.metadata.tenant_id,
        title,
        severity,
        subject_created_at: createdAt,
        target_seconds: target,
        deadline: target === null ? null : new Date(createdAt.getTime() + target * 1000),
        fixed_by: stored.recorded.id,
        satisfied_at: null,
        breached_at: null,
        cancelled_at: null,
      });
    }
  }

  /**
   * A severity change re-fixes the deadlines still running (and sets one where the old
   * severity had none): the new severity's targets in force now, counted from the creation.
   * A measure already met or breached keeps its outcome.
   */
  resetSeverity(stored: StoredEvent, type: SlaSubjectType, id: string, severity: Severity): void {
    for (const row of this.timersOf(type, id)) {
      if (!running(row)) continue;
      const target = targetOf(this.targets(row.tenant_id, severity), row.measure);
      this.put({
        ...row,
        severity,
        target_seconds: target,
        deadline: target === null ? null : new Date(row.subject_created_at.getTime() + target * 1000),
        fixed_by: stored.recorded.id,
      });
    }
  }

  statusChanged(stored: StoredEvent, type: SlaSubjectType, id: string, from: string, to: string): void {
    const at = new Date(stored.metadata.occurred_at);
    for (const measure of measuresMet(type, from, to)) {
      const row = this.timers.get(timerKey(type, id, measure));
      if (row && !row.satisfied_at) this.put({ ...row, satisfied_at: at });
    }
  }

  rename(stored: StoredEvent, type: SlaSubjectType, id: string, title: string): void {
    for (const row of this.timersOf(type, id)) this.put({ ...row, title });
    this.titles.set(`${type}\u0000${id}`, { tenantId: stored.metadata.tenant_id, type, id, title });
  }

  cancel(stored: StoredEvent, type: SlaSubjectType, id: string): void {
    const at = new Date(stored.metadata.occurred_at);
    for (const row of this.timersOf(type, id)) if (running(row)) this.put({ ...row, cancelled_at: at });
  }

  apply(stored: StoredEvent<Relevant>): void {
    const { event, metadata } = stored;
    const subject = subjectOf(stored);
    switch (event.type) {
      case 'alert.ingested':
        return this.open(stored, 'alert', subject!.id, event.data.title, event.data.severity);
      case 'case.opened':
        return this.open(stored, 'case', subject!.id, event.data.title, event.data.severity);
      case 'alert.status_changed':
      case 'case.status_changed':
        return this.statusChanged(stored, subject!.type, subject!.id, event.data.from, event.data.to);
      case 'alert.severity_changed':
        return this.resetSeverity(stored, 'alert', subject!.id, event.data.to);
      case 'case.details_changed':
        if (event.data.title !== undefined) this.rename(stored, 'case', subject!.id, event.data.title);
        if (event.data.severity !== undefined) this.resetSeverity(stored, 'case', subject!.id, event.data.severity);
        return;
      case 'alert.deleted':
        return this.cancel(stored, 'alert', subject!.id);
      case 'sla_config.changed': {
        const key = configKey(metadata.tenant_id, event.data.severity);
        this.configs.set(key, {
          tenant_id: metadata.tenant_id,
          severity: event.data.severity,
          time_to_acknowledge_seconds: event.data.time_to_acknowledge_seconds,
          time_to_resolve_seconds: event.data.time_to_resolve_seconds,
          revision: String(stored.recorded.revision),
          updated_at: new Date(metadata.occurred_at),
          updated_by: metadata.actor.id,
        });
        this.dirtyConfigs.add(key);
        return;
      }
      case 'sla.breached': {
        const d = event.data;
        const row = this.timers.get(timerKey(d.subject_type, d.subject_id, d.measure));
        const breachedAt = new Date(d.breached_at);
        if (row && !row.breached_at) this.put({ ...row, breached_at: breachedAt });
        this.breaches.push({
          id: stored.recorded.id,
          tenant_id: metadata.tenant_id,
          subject_type: d.subject_type,
          subject_id: d.subject_id,
          measure: d.measure,
          severity: d.severity,
          title: row?.title ?? d.title,
          target_seconds: d.target_seconds,
          deadline: new Date(d.deadline),
          breached_at: breachedAt,
        });
        return;
      }
      default:
        return;
    }
  }
}

const TIMER_COLUMNS = [
  'subject_type', 'subject_id', 'measure', 'tenant_id', 'title', 'severity', 'subject_created_at', 'target_seconds',
  'deadline', 'fixed_by', 'satisfied_at', 'breached_at', 'cancelled_at', 'status',
] as const satisfies readonly (keyof SlaTimerRow)[];
const CONFIG_COLUMNS = [
  'tenant_id', 'severity', 'time_to_acknowledge_seconds', 'time_to_resolve_seconds', 'revision', 'updated_at', 'updated_by',
] as const satisfies readonly (keyof SlaConfigRow)[];

/** PostgreSQL caps a statement at 65,535 parameters. */
const CHUNK = Math.floor(60_000 / TIMER_COLUMNS.length);

const excluded = (columns: readonly string[], key: readonly string[]) =>
  Object.fromEntries(columns.filter((c) => !key.includes(c)).map((c) => [c, sql.ref(`excluded.${c}`)]));

/**
 * The SLA read model: each tenant's configuration, one timer per (subject, measure) with its
 * deadline and outcome, and the recorded breaches. Derived only from events (the deadline
 * comes from the subject's creation time and the configuration events before it in the log;
 * a timer is breached only by an `sla.breached` event), so a rebuild reproduces it and does
 * not make the schedule fire again.
 */
export const slaProjection: Projection<SlaTables> = {
  name: 'sla',
  filter: { categories: [ALERT_CATEGORY, CASE_CATEGORY, SLA_CONFIG_CATEGORY, SLA_CATEGORY], eventTypes: EVENT_TYPES },
  tables: ['sla_configs', 'sla_timers', 'sla_breaches'],
  createTables: (t) => /* sql */ `
    CREATE TABLE ${t('sla_configs')} (
      tenant_id text NOT NULL,
      severity text NOT NULL,
      time_to_acknowledge_seconds integer,
      time_to_resolve_seconds integer,
      revision bigint NOT NULL,
      updated_at timestamptz NOT NULL,
      updated_by text NOT NULL,
      PRIMARY KEY (tenant_id, severity)
    );
    CREATE TABLE ${t('sla_timers')} (
      subject_type text NOT NULL,
      subject_id uuid NOT NULL,
      measure text NOT NULL,
      tenant_id text NOT NULL,
      title text NOT NULL,
      severity text NOT NULL,
      subject_created_at timestamptz NOT NULL,
      target_seconds integer,
      deadline timestamptz,
      fixed_by uuid NOT NULL,
      satisfied_at timestamptz,
      breached_at timestamptz,
      cancelled_at timestamptz,
      status text NOT NULL,
      PRIMARY KEY (subject_type, subject_id, measure)
    );
    CREATE INDEX ${t('sla_timers')}_due ON ${t('sla_timers')} (deadline) WHERE status IN ('pending', 'late');
    CREATE INDEX ${t('sla_timers')}_subject ON ${t('sla_timers')} (subject_id);
    CREATE TABLE ${t('sla_breaches')} (
      id uuid PRIMARY KEY,
      tenant_id text NOT NULL,
      subject_type text NOT NULL,
      subject_id uuid NOT NULL,
      measure text NOT NULL,
      severity text NOT NULL,
      title text NOT NULL,
      target_seconds integer NOT NULL,
      deadline timestamptz NOT NULL,
      breached_at timestamptz NOT NULL
    );
    CREATE INDEX ${t('sla_breaches')}_tenant_breached ON ${t('sla_breaches')} (tenant_id, breached_at DESC, id DESC);
    CREATE INDEX ${t('sla_breaches')}_tenant_subject ON ${t('sla_breaches')} (tenant_id, subject_id, breached_at DESC, id DESC);
  `,
  async apply(trx, events) {
    const stored = events as StoredEvent<Relevant>[];
    const batch = new Batch();
    const subjectIds = [...new Set(stored.flatMap((e) => subjectOf(e)?.id ?? []))];
    const tenants = [...new Set(stored.map((e) => e.metadata.tenant_id))];
    const breachedSubjects = stored.flatMap((e) => (e.event.type === 'sla.breached' ? [e.event.data.subject_id] : []));
    const ids = [...new Set([...subjectIds, ...breachedSubjects])];
    for (let i = 0; i < ids.length; i += CHUNK) {
      const rows = await trx.selectFrom('sla_timers').selectAll().where('subject_id', 'in', ids.slice(i, i + CHUNK)).execute();
      for (const row of rows) batch.timers.set(timerKey(row.subject_type, row.subject_id, row.measure), row as SlaTimerRow);
    }
    if (tenants.length > 0) {
      const rows = await trx.selectFrom('sla_configs').selectAll().where('tenant_id', 'in', tenants).execute();
      for (const row of rows) batch.configs.set(configKey(row.tenant_id, row.severity), row as SlaConfigRow);
    }

    for (const event of stored) batch.apply(event);

    const configs = [...batch.dirtyConfigs].map((key) => batch.configs.get(key)!);
    if (configs.length > 0) {
      await trx
        .insertInto('sla_configs')
        .values(configs)
        .onConflict((oc) => oc.columns(['tenant_id', 'severity']).doUpdateSet(excluded(CONFIG_COLUMNS, ['tenant_id', 'severity'])))
        .execute();
    }
    const timers = [...batch.dirtyTimers].map((key) => batch.timers.get(key)!);
    for (let i = 0; i < timers.length; i += CHUNK) {
      await trx
        .insertInto('sla_timers')
        .values(timers.slice(i, i + CHUNK))
        .onConflict((oc) =>
          oc.columns(['subject_type', 'subject_id', 'measure']).doUpdateSet(excluded(TIMER_COLUMNS, ['subject_type', 'subject_id', 'measure'])),
        )
        .execute();
    }
    if (batch.breaches.length > 0) await trx.insertInto('sla_breaches').values(batch.breaches).execute();
    for (const { tenantId, type, id, title } of batch.titles.values()) {
      await trx
        .updateTable('sla_breaches')
        .set({ title })
        .where('tenant_id', '=', tenantId)
        .where('subject_id', '=', id)
        .where('subject_type', '=', type)
        .execute();
    }
  },
};
