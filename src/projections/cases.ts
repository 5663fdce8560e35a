import { sql, type Insertable, type Transaction } from 'kysely';
import { CASE_CATEGORY, type CaseEvent } from '../domain/case.js';
import type { StoredEvent } from '../domain/registry.js';
import { SEVERITY_RANK } from '../domain/values.js';
import type { Projection } from './projection.js';

export interface CaseRow {
  id: string;
  tenant_id: string;
  title: string;
  description: string;
  severity: string;
  severity_rank: number;
  status: string;
  assignee: string | null;
  tags: string[];
  alert_count: number;
  comment_count: number;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  closed_at: Date | null;
  revision: string;
}

export interface CaseAlertRow {
  case_id: string;
  alert_id: string;
  tenant_id: string;
  linked_at: Date;
}

export interface CaseCommentRow {
  id: string;
  case_id: string;
  tenant_id: string;
  author: string;
  body: string;
  created_at: Date;
}

export interface CaseTimelineRow {
  id: string;
  case_id: string;
  tenant_id: string;
  kind: string;
  summary: string;
  actor_type: string;
  actor_id: string;
  occurred_at: Date;
  data: Record<string, unknown>;
}

export interface CasesTables {
  cases: CaseRow;
  case_alerts: CaseAlertRow;
  case_comments: CaseCommentRow;
  case_timeline: CaseTimelineRow;
}

const CASE_COLUMNS = [
  'id', 'tenant_id', 'title', 'description', 'severity', 'severity_rank', 'status', 'assignee', 'tags',
  'alert_count', 'comment_count', 'created_by', 'created_at', 'updated_at', 'closed_at', 'revision',
] as const satisfies readonly (keyof CaseRow)[];

const caseIdOf = (streamId: string) => streamId.slice(CASE_CATEGORY.length + 1);

function evolveCase(row: CaseRow | undefined, { event, metadata, recorded }: StoredEvent<CaseEvent>): CaseRow | undefined {
  const at = new Date(metadata.occurred_at);
  const touched = (next: CaseRow): CaseRow => ({ ...next, updated_at: at, revision: String(recorded.revision) });
  if (event.type === 'case.opened') {
    const d = event.data;
    return touched({
      id: d.case_id,
      tenant_id: metadata.tenant_id,
      title: d.title,
      description: d.description,
      severity: d.severity,
      severity_rank: SEVERITY_RANK[d.severity],
      status: 'new',
      assignee: d.assignee,
      tags: d.tags,
      alert_count: d.alert_ids.length,
      comment_count: 0,
      created_by: metadata.actor.id,
      created_at: at,
      updated_at: at,
      closed_at: null,
      revision: '0',
    });
  }
  if (!row) return undefined;
  switch (event.type) {
    case 'case.details_changed': {
      const { severity, ...rest } = event.data;
      return touched({ ...row, ...rest, ...(severity ? { severity, severity_rank: SEVERITY_RANK[severity] } : {}) });
    }
    case 'case.assigned':
      return touched({ ...row, assignee: event.data.assignee });
    case 'case.alerts_linked':
      return touched({ ...row, alert_count: row.alert_count + event.data.alert_ids.length });
    case 'case.status_changed':
      return touched({ ...row, status: event.data.to, closed_at: event.data.to === 'closed' ? at : null });
    case 'case.reopened':
      return touched({ ...row, status: event.data.to, closed_at: null });
    case 'case.comment_added':
      return touched({ ...row, comment_count: row.comment_count + 1 });
    case 'case.timeline_entry_added':
      return touched(row);
  }
}

/** What the timeline shows for each change of the case. */
function timelineEntry({ event, metadata, recorded }: StoredEvent<CaseEvent>): Insertable<CaseTimelineRow> {
  const base = {
    id: recorded.id,
    case_id: caseIdOf(recorded.streamId),
    tenant_id: metadata.tenant_id,
    actor_type: metadata.actor.type,
    actor_id: metadata.actor.id,
    occurred_at: new Date(metadata.occurred_at),
  };
  const entry = (kind: string, summary: string, data: Record<string, unknown> = {}) => ({
    ...base,
    kind,
    summary,
    data: JSON.stringify(data) as unknown as Record<string, unknown>,
  });
  switch (event.type) {
    case 'case.opened':
      return entry('case_opened', `Case opened: ${event.data.title}`, { severity: event.data.severity, alert_ids: event.data.alert_ids });
    case 'case.details_changed':
      return entry('details_changed', `Changed ${Object.keys(event.data).join(', ')}`, event.data);
    case 'case.assigned':
      return entry('assigned', event.data.assignee ? `Assigned to ${event.data.assignee}` : 'Unassigned', event.data);
    case 'case.alerts_linked':
      return entry('alerts_linked', `Linked ${event.data.alert_ids.length} alert(s)`, event.data);
    case 'case.status_changed':
      return entry('status_changed', `Status ${event.data.from} → ${event.data.to}${event.data.reason ? `: ${event.data.reason}` : ''}`, event.data);
    case 'case.reopened':
      return entry('reopened', `Reopened: ${event.data.reason}`, event.data);
    case 'case.comment_added':
      return entry('comment_added', `Comment by ${event.data.author}`, { comment_id: event.data.comment_id });
    case 'case.timeline_entry_added':
      return {
        ...entry(event.data.kind, event.data.summary, event.data.data),
        id: event.data.entry_id,
        occurred_at: new Date(event.data.occurred_at),
      };
  }
}

export const casesProjection: Projection<CasesTables> = {
  name: 'cases',
  filter: { categories: [CASE_CATEGORY] },
  tables: ['cases', 'case_alerts', 'case_comments', 'case_timeline'],
  createTables: (t) => /* sql */ `
    CREATE TABLE ${t('cases')} (
      id uuid PRIMARY KEY,
      tenant_id text NOT NULL,
      title text NOT NULL,
      description text NOT NULL,
      severity text NOT NULL,
      severity_rank smallint NOT NULL,
      status text NOT NULL,
      assignee text,
      tags text[] NOT NULL,
      alert_count integer NOT NULL,
      comment_count integer NOT NULL,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      closed_at timestamptz,
      revision bigint NOT NULL,
      search tsvector GENERATED ALWAYS AS (to_tsvector('simple', title || ' ' || description)) STORED
    );
    CREATE INDEX ${t('cases')}_tenant_created ON ${t('cases')} (tenant_id, created_at DESC, id DESC);
    CREATE INDEX ${t('cases')}_search ON ${t('cases')} USING gin (search);
    CREATE INDEX ${t('cases')}_tenant_status ON ${t('cases')} (tenant_id, status, created_at DESC, id DESC);
    CREATE TABLE ${t('case_alerts')} (
      case_id uuid NOT NULL,
      alert_id uuid NOT NULL,
      tenant_id text NOT NULL,
      linked_at timestamptz NOT NULL,
      PRIMARY KEY (case_id, alert_id)
    );
    CREATE INDEX ${t('case_alerts')}_alert ON ${t('case_alerts')} (tenant_id, alert_id);
    CREATE TABLE ${t('case_comments')} (
      id uuid PRIMARY KEY,
      case_id uuid NOT NULL,
      tenant_id text NOT NULL,
      author text NOT NULL,
      body text NOT NULL,
      created_at timestamptz NOT NULL
    );
    CREATE INDEX ${t('case_comments')}_case ON ${t('case_comments')} (case_id, created_at, id);
    CREATE TABLE ${t('case_timeline')} (
      id uuid PRIMARY KEY,
      case_id uuid NOT NULL,
      tenant_id text NOT NULL,
      kind text NOT NULL,
      summary text NOT NULL,
      actor_type text NOT NULL,
      actor_id text NOT NULL,
      occurred_at timestamptz NOT NULL,
      data jsonb NOT NULL
    );
    CREATE INDEX ${t('case_timeline')}_case ON ${t('case_timeline')} (case_id, occurred_at, id);
  `,
  async apply(trx, events) {
    const stored = events as StoredEvent<CaseEvent>[];
    const ids = [...new Set(stored.map((e) => caseIdOf(e.recorded.streamId)))];
    // Not the generated search column: the rows are written back whole.
    const existing = await trx.selectFrom('cases').select(CASE_COLUMNS).where('id', 'in', ids).execute();
    const rows = new Map<string, CaseRow | undefined>(existing.map((row) => [row.id, row as CaseRow]));
    const links: Insertable<CaseAlertRow>[] = [];
    const comments: Insertable<CaseCommentRow>[] = [];
    for (const e of stored) {
      const caseId = caseIdOf(e.recorded.streamId);
      rows.set(caseId, evolveCase(rows.get(caseId), e));
      const at = new Date(e.metadata.occurred_at);
      const linked = e.event.type === 'case.opened' || e.event.type === 'case.alerts_linked' ? e.event.data.alert_ids : [];
      for (const alertId of linked) links.push({ case_id: caseId, alert_id: alertId, tenant_id: e.metadata.tenant_id, linked_at: at });
      if (e.event.type === 'case.comment_added') {
        const { comment_id, author, body } = e.event.data;
        comments.push({ id: comment_id, case_id: caseId, tenant_id: e.metadata.tenant_id, author, body, created_at: at });
      }
    }
    const upserts = ids.flatMap((id) => (rows.get(id) ? [rows.get(id)!] : []));
    if (upserts.length > 0) await upsertCases(trx, upserts);
    if (links.length > 0) await trx.insertInto('case_alerts').values(links).onConflict((oc) => oc.doNothing()).execute();
    if (comments.length > 0) await trx.insertInto('case_comments').values(comments).execute();
    await trx.insertInto('case_timeline').values(stored.map(timelineEntry)).execute();
  },
};

async function upsertCases(trx: Transaction<CasesTables>, rows: CaseRow[]): Promise<void> {
  await trx
    .insertInto('cases')
    .values(rows)
    .onConflict((oc) =>
      oc.column('id').doUpdateSet(Object.fromEntries(CASE_COLUMNS.filter((c) => c !== 'id').map((c) => [c, sql.ref(`excluded.${c}`)]))),
    )
    .execute();
}
